"""logitd's wire protocol (docs/PROTOCOL.md): message types, frame layouts, error names, and the
encoding of rows and masks. Shared by the client and its sessions."""

from __future__ import annotations

import struct

import numpy as np

MAGIC = b"LGTD"
PROTOCOL_VERSION = 1
HEADER = struct.Struct("<4sBBHQ")
DESCRIPTOR = struct.Struct("<BBHII")

HELLO, PING, DECODE, PROBS = 0x01, 0x02, 0x03, 0x04
WELCOME, PONG, TOKENS, PROBABILITIES, ERROR = 0x81, 0x82, 0x83, 0x84, 0xFF
OPEN, STEP, CLOSE = 0x10, 0x11, 0x13
OPENED, STEP_TOKENS, BATCH_TOKENS, CLOSED, DONE = 0x90, 0x91, 0x92, 0x93, 0x9F
BATCH_STEP = 0x12
VERIFY, BATCH_VERIFY, VERIFIED, BATCH_VERIFIED = 0x14, 0x15, 0x94, 0x95
SCORE, CLASSIFY, SCORED, CLASSIFIED = 0x16, 0x17, 0x96, 0x97

DTYPE_CODES = {"f32": 1, "f16": 2, "bf16": 3}
TOKEN_RECORD = np.dtype([("token", "<u4"), ("logprob", "<f4")])
SCORE_RECORD = np.dtype([("logprob", "<f4"), ("raw_logprob", "<f4"), ("rank", "<u4"), ("entropy", "<f4")])

ERROR_NAMES = {
    1: "MALFORMED_HEADER", 2: "BAD_MAGIC", 3: "UNSUPPORTED_VERSION", 4: "UNKNOWN_TYPE",
    5: "UNKNOWN_FLAGS", 6: "BAD_FRAME_COUNT", 7: "BAD_DESCRIPTOR", 8: "BAD_SHAPE",
    9: "SIZE_MISMATCH", 10: "INVALID_LOGITS", 11: "ALL_MASKED", 12: "BAD_PARAMETERS",
    13: "UNKNOWN_STRATEGY", 14: "MESSAGE_TOO_LARGE", 15: "SHUTTING_DOWN", 16: "INTERNAL",
    17: "NO_CANDIDATES", 18: "UNKNOWN_SESSION", 19: "SESSION_CLOSED", 20: "SESSION_EXPIRED",
    21: "WRONG_STEP", 22: "TOO_MANY_SESSIONS", 23: "BAD_DRAFT",
}


class LogitdError(Exception):
    """The daemon answered with ERROR."""

    def __init__(self, code: int, message: str):
        self.code = code
        self.name = ERROR_NAMES.get(code, f"UNKNOWN_ERROR_{code}")
        self.message = message
        super().__init__(f"{self.name}: {message}")


class LogitdTimeout(Exception):
    """No reply within the client's timeout."""


MASK_FOLLOWS = 0x0001  # header flag: a mask frame follows the request's frames (DECODE, PROBS, STEP, BATCH STEP, VERIFY, BATCH VERIFY, SCORE, CLASSIFY)


def header(msg_type: int, request_id: int, flags: int = 0) -> bytes:
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, msg_type, flags, request_id)


def as_array(data) -> np.ndarray:
    """Anything array-like as a numpy array, without a copy where its layout allows: numpy arrays,
    objects with `__array__` (a torch CPU tensor), and DLPack-only objects (`__dlpack__`)."""
    if isinstance(data, np.ndarray):
        return data
    if not hasattr(data, "__array__") and hasattr(data, "__dlpack__"):
        return np.from_dlpack(data)
    return np.asarray(data)


def _frame(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array as one flat buffer, shared with it (pyzmq sends it
    without copying; the client waits for the reply, so the array must not change meanwhile)."""
    return memoryview(array.reshape(-1).view(np.uint8))


def encode_mask(mask) -> memoryview:
    """An allowed-token bitmask as sent: uint32 or int32 words, shape (rows, ceil(V/32)) or
    (ceil(V/32),) for every row; bit j of word w allows token 32*w + j (llguidance's layout)."""
    mask = np.ascontiguousarray(as_array(mask))
    if mask.dtype not in (np.uint32, np.int32):
        raise ValueError("a mask is a uint32 or int32 array of ceil(vocab / 32) words per row")
    return _frame(np.ascontiguousarray(mask.view(np.uint32), dtype="<u4"))


def to_bfloat16(array: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), rounding to nearest even, as the Swift client does."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(array)
    out = rounded.astype("<u2")
    out[nan] = 0x7FC0
    return out


def encode_rows(logits, dtype: str) -> memoryview:
    """Row-major little-endian bytes of a (rows, vocab) array in the wire dtype, shared with the
    array when it already is C-contiguous in that dtype (no copy)."""
    logits = as_array(logits)
    if dtype == "f32":
        return _frame(np.ascontiguousarray(logits, dtype="<f4"))
    if dtype == "f16":
        return _frame(np.ascontiguousarray(logits, dtype="<f2"))
    if dtype == "bf16":
        return _frame(to_bfloat16(np.asarray(logits, dtype=np.float32)))
    raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_CODES)}")

STEP_DESCRIPTOR = struct.Struct("<QIBBHII")
STEP_SUMMARY = struct.Struct("<QIIIBBH")
VERIFY_DESCRIPTOR = struct.Struct("<QIIBBBBIII")
VERIFY_SUMMARY = struct.Struct("<QIIIBBHII")
DRAFT_LAYOUTS = {"none": 0, "dense": 1, "sparse": 2}
SEQUENCE_RECORD = np.dtype([("sequence", "<u4"), ("token", "<u4"), ("logprob", "<f4"), ("finish", "u1"), ("flags", "u1"), ("pad", "V2")])
BEAM_RECORD = np.dtype([("parent", "<u4"), ("token", "<u4"), ("score", "<f8")])
FINISH_REASONS = {0: None, 1: "eos", 2: "stop_sequence", 3: "max_tokens"}
