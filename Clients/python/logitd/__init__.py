"""Python client for logitd, written from docs/PROTOCOL.md with pyzmq and numpy only.

    from logitd import Client
    with Client("tcp://127.0.0.1:5555") as client:
        print(client.hello())
        tokens, logprobs = client.decode(np.array([[1.0, 3.0, 2.0]], dtype=np.float32))
"""

from __future__ import annotations

import itertools
import json
import struct
import time
from dataclasses import dataclass

import numpy as np
import zmq

from .session import Session, StepResult, VerifyResult
from .wire import (BATCH_STEP, BATCH_TOKENS, BATCH_VERIFIED, BATCH_VERIFY, BEAM_RECORD, CLOSE, CLOSED, DECODE, DESCRIPTOR,
                   DONE, DRAFT_LAYOUTS, DTYPE_CODES, ERROR, ERROR_NAMES, FINISH_REASONS, HEADER, HELLO, MAGIC, MASK_FOLLOWS,
                   OPEN, OPENED, PING, PONG, PROBABILITIES, PROBS, PROTOCOL_VERSION, SEQUENCE_RECORD, STEP, STEP_DESCRIPTOR,
                   SCORE, SCORE_RECORD, SCORED, CLASSIFY, CLASSIFIED,
                   STEP_SUMMARY, STEP_TOKENS, TOKEN_RECORD, TOKENS, VERIFIED, VERIFY, VERIFY_DESCRIPTOR, VERIFY_SUMMARY,
                   WELCOME, LogitdError, LogitdTimeout, as_array, encode_mask, encode_rows, header, to_bfloat16)

__all__ = [  # the client, its sessions, and the wire's names (docs/PROTOCOL.md) for hand-built frames
    "Client", "Session", "StepResult", "VerifyResult", "LogitdError", "LogitdTimeout", "as_array", "read_key", "encode_mask", "encode_rows", "header",
    "to_bfloat16", "BATCH_STEP", "BATCH_TOKENS", "BATCH_VERIFIED", "BATCH_VERIFY", "BEAM_RECORD", "CLOSE", "CLOSED", "DECODE",
    "DESCRIPTOR", "DONE", "DRAFT_LAYOUTS", "DTYPE_CODES", "ERROR", "ERROR_NAMES", "FINISH_REASONS", "HEADER", "HELLO", "MAGIC",
    "MASK_FOLLOWS", "OPEN", "OPENED", "PING", "PONG", "PROBABILITIES", "PROBS", "PROTOCOL_VERSION", "SEQUENCE_RECORD", "STEP",
    "STEP_DESCRIPTOR", "STEP_SUMMARY", "STEP_TOKENS", "TOKEN_RECORD", "TOKENS", "VERIFIED", "VERIFY", "VERIFY_DESCRIPTOR",
    "VERIFY_SUMMARY", "WELCOME", "SCORE", "SCORE_RECORD", "SCORED", "CLASSIFY", "CLASSIFIED",
]


@dataclass
class Reply:
    msg_type: int
    request_id: int
    body: list[bytes]


class Client:
    """A DEALER connection to one or more daemons. Not thread-safe: one client per thread."""

    def __init__(self, endpoints: str | list[str], timeout: float = 10.0, context: zmq.Context | None = None,
                 server_key: str | None = None, public_key: str | None = None, secret_key: str | None = None):
        """With `server_key` (the daemon's CURVE public key) and this client's `public_key` and
        `secret_key` (Z85 text, as `logitd keygen` writes them; see `read_key`), the connection is
        CURVE-encrypted and the daemon knows this client by its public key."""
        self.timeout = timeout
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None:
            if public_key is None or secret_key is None:
                raise ValueError("CURVE needs the server's public key and this client's public and secret keys")
            self._socket.curve_serverkey = server_key.encode()
            self._socket.curve_publickey = public_key.encode()
            self._socket.curve_secretkey = secret_key.encode()
        for endpoint in [endpoints] if isinstance(endpoints, str) else endpoints:
            self._socket.connect(endpoint)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, msg_type: int, frames: list[bytes], expecting: int | tuple[int, ...], mask=None) -> list[bytes]:
        """Send a request of `msg_type`; return the body frames of a reply of type `expecting`
        (one type, or a tuple of acceptable ones). With `mask`, the mask frame follows the others
        and the header says so."""
        request_id = next(self._ids)
        extra = [] if mask is None else [encode_mask(mask)]
        flags = 0 if mask is None else MASK_FOLLOWS
        self._socket.send_multipart([header(msg_type, request_id, flags), *frames, *extra], copy=False)
        reply = self._receive(request_id)
        if reply.msg_type == ERROR:
            code, = struct.unpack_from("<I", reply.body[0])
            raise LogitdError(code, reply.body[0][4:].decode("utf-8", "replace"))
        accepted = expecting if isinstance(expecting, tuple) else (expecting,)
        if reply.msg_type not in accepted:
            raise RuntimeError(f"expected reply type {accepted}, got 0x{reply.msg_type:02x}")
        return reply.body

    def _receive(self, request_id: int) -> Reply:
        # Replies to earlier requests that timed out may still arrive: skip them.
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1):
                raise LogitdTimeout(f"no reply from logitd within {self.timeout} s")
            frames = self._socket.recv_multipart()
            magic, version, msg_type, _flags, reply_id = HEADER.unpack(frames[0])
            if magic != MAGIC or version != PROTOCOL_VERSION:
                raise RuntimeError("reply is not logitd protocol version 1")
            if reply_id == request_id:
                return Reply(msg_type, reply_id, frames[1:])

    def probs(self, logits: np.ndarray, temperature: float = 1.0, top_n: int = 0, dtype: str = "f32", mask=None):
        """PROBS: softmax(logits / temperature) per row (over the tokens `mask` allows, if given).
        With top_n = 0, an array (rows, vocab); otherwise (token ids, probabilities), each
        (rows, top_n), most probable first."""
        logits = as_array(logits)
        if logits.ndim == 1:
            logits = logits[None, :]
        rows, vocab = logits.shape
        info, body = self.request(PROBS, [
            DESCRIPTOR.pack(DTYPE_CODES[dtype], 0, 0, rows, vocab),
            json.dumps({"temperature": temperature, "top_n": top_n}).encode(),
            encode_rows(logits, dtype),
        ], PROBABILITIES, mask=mask)
        if top_n == 0:
            return np.frombuffer(body, dtype="<f4").reshape(rows, vocab)
        records = np.frombuffer(body, dtype=TOKEN_RECORD).reshape(rows, top_n)
        return records["token"].astype(np.int64), records["logprob"].astype(np.float32)

    def score(self, logits: np.ndarray, tokens, dtype: str = "f32", mask=None, **processors) -> np.ndarray:
        """SCORE: row i scored as the distribution of tokens[i] after `prompt_token_ids` and
        tokens[:i], under the stated processors (OPEN's keys; none: the raw rows). Returns a record
        array with fields logprob, raw_logprob, rank, entropy (one per row)."""
        logits = np.atleast_2d(as_array(logits))
        rows, vocab = logits.shape
        body, = self.request(SCORE, [
            DESCRIPTOR.pack(DTYPE_CODES[dtype], 0, 0, rows, vocab),
            json.dumps(processors).encode() if processors else b"",
            encode_rows(logits, dtype),
            np.asarray(tokens, dtype="<u4").tobytes(),
        ], SCORED, mask=mask)
        return np.frombuffer(body, dtype=SCORE_RECORD)

    def classify(self, logits: np.ndarray, token_ids, temperature: float = 1.0, dtype: str = "f32", mask=None):
        """CLASSIFY: per row, softmax(logits[token_ids] / temperature) and ln of the classes' total
        probability under the whole row. Returns (probabilities (rows, C), log masses (rows,))."""
        logits = np.atleast_2d(as_array(logits))
        rows, vocab = logits.shape
        probabilities, masses = self.request(CLASSIFY, [
            DESCRIPTOR.pack(DTYPE_CODES[dtype], 0, 0, rows, vocab),
            json.dumps({"token_ids": [int(t) for t in token_ids], "temperature": temperature}).encode(),
            encode_rows(logits, dtype),
        ], CLASSIFIED, mask=mask)
        return np.frombuffer(probabilities, "<f4").reshape(rows, len(token_ids)), np.frombuffer(masses, "<f4")

    def batch_step(self, steps: list[tuple], dtype: str = "f32") -> list:
        """BATCH STEP: one step of several sessions (same vocab_size) in one message, decoded in
        parallel. Each entry is (session, logits) or (session, logits, mask); when any entry has a
        mask, the batch carries a mask frame and entries without one allow every token. Returns, per
        entry in order, its StepResult or the LogitdError that refused it."""
        vocab = steps[0][0].vocab_size
        blocks = [np.atleast_2d(np.asarray(entry[1])) for entry in steps]
        table = struct.pack("<BBHIII", DTYPE_CODES[dtype], 0, 0, len(steps), vocab, 0) + b"".join(
            struct.pack("<QII", entry[0].id, entry[0].next_step, block.shape[0]) for entry, block in zip(steps, blocks))
        masks = [entry[2] if len(entry) > 2 else None for entry in steps]
        mask = None
        if any(m is not None for m in masks):
            words = (vocab + 31) // 32
            mask = np.concatenate([np.broadcast_to(np.full(words, 0xFFFFFFFF, np.uint32) if m is None else np.asarray(m).view(np.uint32),
                                                   (block.shape[0], words)) for m, block in zip(masks, blocks)])
        body = self.request(BATCH_STEP, [table, b"".join(encode_rows(block, dtype) for block in blocks)], BATCH_TOKENS, mask=mask)
        return _batch_results(body, [entry[0]._apply for entry in steps])

    def batch_verify(self, entries: list[tuple], dtype: str = "f32") -> list:
        """BATCH VERIFY: a VERIFY of each of several sessions (same vocab_size, dense target rows)
        in one message. Each entry is (session, draft_tokens, target_rows[, draft_probs[,
        sequence]]), as Session.verify takes them; draft_probs is a dense (k, vocab) array or None,
        the same kind for every entry. Returns, per entry in order, its VerifyResult or the
        LogitdError that refused it."""
        vocab = entries[0][0].vocab_size
        tokens = [np.asarray(e[1], dtype="<u4").ravel() for e in entries]
        rows = [np.atleast_2d(np.asarray(e[2])) for e in entries]
        probs = [e[3] if len(e) > 3 else None for e in entries]
        layout = "none" if all(q is None for q in probs) else "dense"
        if layout == "dense" and any(q is None for q in probs):
            raise ValueError("every entry of a batch uses the same draft layout")
        table = struct.pack("<BBBBIII", DTYPE_CODES[dtype], 0, DRAFT_LAYOUTS[layout], 0, len(entries), vocab, 0) + b"".join(
            struct.pack("<QIIII", e[0].id, e[0].next_step, e[4] if len(e) > 4 else 0, len(t), 0) for e, t in zip(entries, tokens))
        drafts = b"" if layout == "none" else b"".join(encode_rows(np.atleast_2d(q), dtype) for q in probs)
        body = self.request(BATCH_VERIFY, [table, b"".join(t.tobytes() for t in tokens), b"".join(encode_rows(r, dtype) for r in rows), drafts],
                            BATCH_VERIFIED)
        return _batch_results(body, [entry[0]._apply_verified for entry in entries])

    def open(self, **parameters) -> "Session":
        """OPEN a decoding session; parameters as in docs/PROTOCOL.md (`vocab_size` is required)."""
        body, = self.request(OPEN, [json.dumps(parameters).encode()], OPENED)
        return Session(self, json.loads(body))

    def hello(self) -> dict:
        """What the daemon speaks and accepts (the WELCOME JSON)."""
        body, = self.request(HELLO, [], WELCOME)
        return json.loads(body)

    def ping(self, payload: bytes | None = None) -> bytes | None:
        body = self.request(PING, [] if payload is None else [payload], PONG)
        return body[0] if body else None

    def decode(self, logits: np.ndarray, dtype: str = "f32", strategy: str | None = None, mask=None,
               **parameters) -> tuple[np.ndarray, np.ndarray]:
        """One token per row of `logits` (shape (rows, vocab), or (vocab,) for one row), among the
        tokens `mask` allows when given (see encode_mask).

        Returns (token ids, log-probabilities), both of length rows."""
        logits = as_array(logits)
        if logits.ndim == 1:
            logits = logits[None, :]
        if logits.ndim != 2:
            raise ValueError("logits must have shape (rows, vocab) or (vocab,)")
        if strategy is not None:
            parameters["strategy"] = strategy
        rows, vocab = logits.shape
        body, = self.request(DECODE, [
            DESCRIPTOR.pack(DTYPE_CODES[dtype], 0, 0, rows, vocab),
            json.dumps(parameters).encode() if parameters else b"",
            encode_rows(logits, dtype),
        ], TOKENS, mask=mask)
        records = np.frombuffer(body, dtype=TOKEN_RECORD)
        return records["token"].astype(np.int64), records["logprob"].astype(np.float32)


def read_key(path: str) -> str:
    """The key in a file `logitd keygen` wrote (NAME.pub or NAME.key): its line that is a 40-character
    Z85 key ("#" comments are skipped; Z85 itself may start with "#")."""
    for line in open(path, encoding="utf-8").read().splitlines():
        line = line.strip()
        if len(line) == 40 and " " not in line:
            return line
    raise ValueError(f"{path} holds no 40-character Z85 key")


# --- Sessions (docs/PROTOCOL.md, "Decoding sessions") -------------------------------------------


def _batch_results(body: list[bytes], apply: list) -> list:
    """A batch reply's four frames per entry (five when its summary's flag bit 1 says a details
    frame follows), in order: each entry's result (`apply[i]` reads its frames), or the LogitdError
    of an entry refused (an empty first frame, then its ERROR body)."""
    results, at = [], 0
    for read in apply:
        count = 5 if body[at] and body[at][21] & 2 else 4
        frames = body[at:at + count]
        at += count
        if frames[0]:
            results.append(read(frames))
        else:
            code, = struct.unpack_from("<I", frames[1])
            results.append(LogitdError(code, frames[1][4:].decode("utf-8", "replace")))
    return results
