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

DTYPE_CODES = {"f32": 1, "f16": 2, "bf16": 3}
TOKEN_RECORD = np.dtype([("token", "<u4"), ("logprob", "<f4")])

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


MASK_FOLLOWS = 0x0001  # header flag: a mask frame follows the logits (DECODE, PROBS, STEP, BATCH STEP, VERIFY, BATCH VERIFY)


def header(msg_type: int, request_id: int, flags: int = 0) -> bytes:
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, msg_type, flags, request_id)


def encode_mask(mask) -> bytes:
    """An allowed-token bitmask as sent: uint32 or int32 words, shape (rows, ceil(V/32)) or
    (ceil(V/32),) for every row; bit j of word w allows token 32*w + j (llguidance's layout)."""
    mask = np.ascontiguousarray(mask)
    if mask.dtype not in (np.uint32, np.int32):
        raise ValueError("a mask is a uint32 or int32 array of ceil(vocab / 32) words per row")
    return mask.view(np.uint32).astype("<u4", copy=False).tobytes()


def to_bfloat16(array: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns (uint16), rounding to nearest even, as the Swift client does."""
    bits = np.ascontiguousarray(array, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = np.isnan(array)
    out = rounded.astype("<u2")
    out[nan] = 0x7FC0
    return out


def encode_rows(logits: np.ndarray, dtype: str) -> bytes:
    """Row-major little-endian bytes of a (rows, vocab) array in the wire dtype."""
    if dtype == "f32":
        return np.ascontiguousarray(logits, dtype="<f4").tobytes()
    if dtype == "f16":
        return np.ascontiguousarray(logits, dtype="<f2").tobytes()
    if dtype == "bf16":
        return to_bfloat16(np.asarray(logits, dtype=np.float32)).tobytes()
    raise ValueError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_CODES)}")


@dataclass
class Reply:
    msg_type: int
    request_id: int
    body: list[bytes]


class Client:
    """A DEALER connection to one or more daemons. Not thread-safe: one client per thread."""

    def __init__(self, endpoints: str | list[str], timeout: float = 10.0, context: zmq.Context | None = None):
        self.timeout = timeout
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
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
        logits = np.asarray(logits)
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
        results = []
        for index, entry in enumerate(steps):
            frames = body[4 * index:4 * index + 4]
            if not frames[0]:
                code, = struct.unpack_from("<I", frames[1])
                results.append(LogitdError(code, frames[1][4:].decode("utf-8", "replace")))
            else:
                results.append(entry[0]._apply(frames))
        return results

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
        results = []
        for index, entry in enumerate(entries):
            frames = body[4 * index:4 * index + 4]
            if not frames[0]:
                code, = struct.unpack_from("<I", frames[1])
                results.append(LogitdError(code, frames[1][4:].decode("utf-8", "replace")))
            else:
                results.append(entry[0]._apply_verified(frames))
        return results

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
        logits = np.asarray(logits)
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


# --- Sessions (docs/PROTOCOL.md, "Decoding sessions") -------------------------------------------

STEP_DESCRIPTOR = struct.Struct("<QIBBHII")
STEP_SUMMARY = struct.Struct("<QIIIBBH")
VERIFY_DESCRIPTOR = struct.Struct("<QIIBBBBIII")
VERIFY_SUMMARY = struct.Struct("<QIIIBBHII")
DRAFT_LAYOUTS = {"none": 0, "dense": 1, "sparse": 2}
SEQUENCE_RECORD = np.dtype([("sequence", "<u4"), ("token", "<u4"), ("logprob", "<f4"), ("finish", "u1"), ("pad", "V3")])
BEAM_RECORD = np.dtype([("parent", "<u4"), ("token", "<u4"), ("score", "<f8")])
FINISH_REASONS = {0: None, 1: "eos", 2: "stop_sequence", 3: "max_tokens"}


@dataclass
class StepResult:
    """What one STEP returned."""
    step: int
    done: bool
    kind: str                      # "sequences" or "beams"
    tokens: list[dict]             # sequences: {"sequence", "token", "logprob", "finish_reason"}
    beams: list[dict]              # beams: {"parent", "token", "score"}
    alternatives: list[list[tuple[int, float]]]
    stable_prefix_length: int
    finished: list[dict]           # beams: hypotheses kept this step
    result: dict | None            # the final result, once done


@dataclass
class VerifyResult:
    """What one VERIFY returned: `accepted` draft tokens, then `tokens` — the accepted ones and
    the correction (on a rejection) or bonus token (all accepted), unless a stop condition cut
    the run — each {"sequence", "token", "logprob", "finish_reason"}."""
    step: int
    done: bool
    sequence: int
    accepted: int
    tokens: list[dict]
    alternatives: list[list[tuple[int, float]]]
    result: dict | None


class Session:
    """A decoding session: `step(logits)` once per model step until `done`.

    For greedy/sample, send one row per unfinished sequence (ascending sequence number); for beam,
    one row per live beam, in the order of the last step's `beams` (`live_prefixes` gives the tokens
    of each)."""

    def __init__(self, client: "Client", opened: dict, auto_recover: bool = True):
        self.client = client
        self.id = opened["session"]
        self.seed = opened["seed"]
        self.parameters = opened["parameters"]
        self.strategy = self.parameters["strategy"]
        self.vocab_size = self.parameters["vocab_size"]
        self.next_step = opened["step"]
        self.done = False
        self.result: dict | None = None
        # When a daemon answers UNKNOWN_SESSION (it restarted, or is another one), re-open the
        # session there from its history and retry the step: the tokens are the same.
        self.auto_recover = auto_recover
        n = self.parameters["n"] if self.strategy != "beam" else 1
        self.sequences: list[list[int]] = [[] for _ in range(n)]
        self.logprob_sums: list[float] = [0.0] * n
        self.finished: list[str | None] = [None] * n
        self.live_prefixes: list[list[int]] = [[]]  # beam search: the tokens of each live beam
        self.live_scores: list[float] = [0.0]
        self.kept: list[dict] = []                  # beam search: the kept hypotheses, best first

    @property
    def rows_expected(self) -> int:
        if self.strategy == "beam":
            return len(self.live_prefixes)
        return sum(1 for reason in self.finished if reason is None)

    def history(self) -> dict:
        """Where the session stands, as OPEN's `history` takes it."""
        if self.strategy == "beam":
            beams = [{"tokens": p, "score": s} for p, s in zip(self.live_prefixes, self.live_scores)]
            return {"beams": beams, "finished": self.kept}
        return {"sequences": self.sequences, "logprob_sums": self.logprob_sums}

    def recover(self) -> None:
        """Re-open this session on the daemon from its history (same seed, same parameters)."""
        parameters = dict(self.parameters, seed=self.seed, history=self.history())
        body, = self.client.request(OPEN, [json.dumps(parameters).encode()], OPENED)
        opened = json.loads(body)
        assert opened["step"] == self.next_step, "the daemon continues where this session stands"
        self.id = opened["session"]

    def step(self, logits: np.ndarray, dtype: str = "f32", mask=None) -> StepResult:
        """One step: a row per live sequence (beam: per live beam, in order), and optionally an
        allowed-token mask per row or one for all (see encode_mask)."""
        logits = np.asarray(logits)
        if logits.ndim == 1:
            logits = logits[None, :]
        rows, vocab = logits.shape
        frames = [None, encode_rows(logits, dtype)]
        def send() -> list[bytes]:
            frames[0] = STEP_DESCRIPTOR.pack(self.id, self.next_step, DTYPE_CODES[dtype], 0, 0, rows, vocab)
            return self.client.request(STEP, frames, (STEP_TOKENS, DONE), mask=mask)
        try:
            body = send()
        except LogitdError as error:
            if not (self.auto_recover and error.name == "UNKNOWN_SESSION"):
                raise
            self.recover()
            body = send()
        return self._apply(body)

    def step_sparse(self, tokens: np.ndarray, logits: np.ndarray, mask=None) -> StepResult:
        """One step with rows given as candidates: `tokens` and `logits` of shape (rows, K); every
        other token of a row is -inf. A model can send its top K instead of the whole vocabulary.
        A mask spans the whole vocabulary; candidates it disallows are dropped."""
        tokens = np.atleast_2d(np.asarray(tokens))
        logits = np.atleast_2d(np.asarray(logits, dtype="<f4"))
        rows, k = tokens.shape
        pairs = np.empty((rows, k), dtype=[("token", "<u4"), ("logit", "<f4")])
        pairs["token"], pairs["logit"] = tokens, logits
        descriptor = STEP_DESCRIPTOR.pack(self.id, self.next_step, 1, 1, 0, rows, k)
        return self._apply(self.client.request(STEP, [descriptor, pairs.tobytes()], (STEP_TOKENS, DONE), mask=mask))

    def verify(self, draft_tokens, target_rows, draft_probs=None, sequence: int = 0, dtype: str = "f32", mask=None) -> "VerifyResult":
        """VERIFY: speculative decoding for one sequence. `draft_tokens`: the k tokens a draft
        proposed; `target_rows`: the target model's k + 1 rows (the row that scored draft token 1,
        …, the row after the last); `draft_probs`: the draft's distribution at each of the k
        positions — (k, vocab) probabilities, a (tokens, probs) pair of (k, K) arrays, or None for
        a point mass on each draft token (n-gram or prompt lookup). `mask`: k + 1 mask rows or one
        for all. Returns the accepted tokens and one more; the session advances by those."""
        tokens = np.asarray(draft_tokens, dtype="<u4").ravel()
        rows = np.atleast_2d(np.asarray(target_rows))
        k = len(tokens)
        if draft_probs is None:
            layout, draft, candidates = "none", b"", 0
        elif isinstance(draft_probs, tuple):
            ids, probs = (np.atleast_2d(np.asarray(a)) for a in draft_probs)
            pairs = np.empty(ids.shape, dtype=[("token", "<u4"), ("prob", "<f4")])
            pairs["token"], pairs["prob"] = ids, probs
            layout, draft, candidates = "sparse", pairs.tobytes(), ids.shape[1]
        else:
            layout, draft, candidates = "dense", encode_rows(np.atleast_2d(draft_probs), dtype), 0
        frames = [None, tokens.tobytes(), encode_rows(rows, dtype), draft]

        def send() -> list[bytes]:
            frames[0] = VERIFY_DESCRIPTOR.pack(self.id, self.next_step, sequence, DTYPE_CODES[dtype], 0, DRAFT_LAYOUTS[layout], 0,
                                               k, rows.shape[1], candidates)
            return self.client.request(VERIFY, frames, VERIFIED, mask=mask)
        try:
            body = send()
        except LogitdError as error:
            if not (self.auto_recover and error.name == "UNKNOWN_SESSION"):
                raise
            self.recover()
            body = send()
        return self._apply_verified(body)

    def _apply_verified(self, body: list[bytes]) -> "VerifyResult":
        summary, records, alternatives, extra = body
        _, step, _, _, _, flags, per_record, sequence, accepted = VERIFY_SUMMARY.unpack(summary)
        result = self._apply([summary[:STEP_SUMMARY.size], records, alternatives, extra])
        return VerifyResult(step=step, done=result.done, sequence=sequence, accepted=accepted, tokens=result.tokens,
                            alternatives=result.alternatives, result=result.result)

    def _apply(self, body: list[bytes]) -> StepResult:
        """Reads one step's four reply frames and updates the session's state."""
        summary, records, alternatives, extra = body
        session, step, count, stable, kind, flags, per_record = STEP_SUMMARY.unpack(summary)
        done = bool(flags & 1)
        result = StepResult(step=step, done=done, kind="beams" if kind == 1 else "sequences", tokens=[], beams=[],
                            alternatives=[], stable_prefix_length=stable, finished=[], result=None)
        if kind == 1:
            for parent, token, score in np.frombuffer(records, dtype=BEAM_RECORD).tolist():
                result.beams.append({"parent": parent, "token": token, "score": score})
            self.live_prefixes = [self.live_prefixes[b["parent"]] + [b["token"]] for b in result.beams]
            self.live_scores = [b["score"] for b in result.beams]
            if extra and not done:
                result.finished = json.loads(extra)["sequences"]
                # The daemon keeps the best beam_width hypotheses, older first among equals.
                merged = sorted(enumerate(self.kept + result.finished), key=lambda item: (-item[1]["score"], item[0]))
                self.kept = [h for _, h in merged][:self.parameters["beam_width"]]
        else:
            for record in np.frombuffer(records, dtype=SEQUENCE_RECORD):
                sequence, token = int(record["sequence"]), int(record["token"])
                reason = FINISH_REASONS[int(record["finish"])]
                result.tokens.append({"sequence": sequence, "token": token, "logprob": float(record["logprob"]),
                                      "finish_reason": reason})
                self.sequences[sequence].append(token)
                self.logprob_sums[sequence] += float(record["logprob"])
                self.finished[sequence] = reason
            if per_record:
                flat = np.frombuffer(alternatives, dtype=TOKEN_RECORD)
                result.alternatives = [[(int(t), float(lp)) for t, lp in flat[i:i + per_record].tolist()]
                                       for i in range(0, len(flat), per_record)]
        if done:
            result.result = json.loads(extra)
            self.result = result.result
            self.done = True
        # Greedy/sample: the step index is the longest sequence's length (one more per STEP, the
        # tokens returned per VERIFY); beam: steps decoded.
        self.next_step = max(len(t) for t in self.sequences) if kind == 0 else self.next_step + 1
        return result

    def events(self, model):
        """Steps until done, asking `model(session)` for each step's logits; yields every StepResult."""
        while not self.done:
            yield self.step(model(self))

    def close(self) -> dict:
        body, = self.client.request(CLOSE, [struct.pack("<Q", self.id)], CLOSED)
        self.done = True
        self.result = json.loads(body)
        return self.result
