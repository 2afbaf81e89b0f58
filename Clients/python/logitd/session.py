"""A decoding session on the daemon: STEP, VERIFY, recovery from history."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .wire import (BEAM_RECORD, CLOSE, CLOSED, DONE, DRAFT_LAYOUTS, DTYPE_CODES, FINISH_REASONS, OPEN, OPENED, SEQUENCE_RECORD, STEP,
                   STEP_DESCRIPTOR, STEP_SUMMARY, STEP_TOKENS, TOKEN_RECORD, VERIFIED, VERIFY, VERIFY_DESCRIPTOR, VERIFY_SUMMARY,
                   LogitdError, as_array, encode_rows)

if TYPE_CHECKING:
    from . import Client


@dataclass
class StepResult:
    """What one STEP returned."""
    step: int
    done: bool
    kind: str                      # "sequences" or "beams"
    tokens: list[dict]             # sequences: {"sequence", "token", "logprob", "finish_reason", "forced"}
    beams: list[dict]              # beams: {"parent", "token", "score"}
    alternatives: list[list[tuple[int, float]]]
    stable_prefix_length: int
    finished: list[dict]           # beams: hypotheses kept this step
    result: dict | None            # the final result, once done
    # Per record, with return_rank / logprob_token_ids / return_support: {"rank", "token_logprobs"
    # ({id: log p}), "support" (ids, ascending), "support_mask" (uint32 words, for "mask")}.
    details: list[dict] = field(default_factory=list)


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
        self.mirostat_mu: list[float] | None = None  # mirostat: each sequence's μ after the last step

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
        history = {"sequences": self.sequences, "logprob_sums": self.logprob_sums}
        if self.mirostat_mu is not None:
            history["mirostat_mu"] = self.mirostat_mu
        return history

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
        logits = as_array(logits)
        if logits.ndim == 1:
            logits = logits[None, :]
        rows, vocab = logits.shape
        frames = [None, encode_rows(logits, dtype)]
        def send() -> list[bytes]:
            frames[0] = STEP_DESCRIPTOR.pack(self.id, self.next_step, DTYPE_CODES[dtype], 0, 0, rows, vocab)
            return self.client.request(STEP, frames, (STEP_TOKENS, DONE), mask=mask)
        return self._apply(self._recovering(send))

    def _recovering(self, send) -> list[bytes]:
        """`send()`'s reply; when the daemon does not know the session (it restarted, or is
        another one), the session is re-opened there from its history and sent again."""
        try:
            return send()
        except LogitdError as error:
            if not (self.auto_recover and error.name == "UNKNOWN_SESSION"):
                raise
            self.recover()
            return send()

    def step_sparse(self, tokens: np.ndarray, logits: np.ndarray, mask=None, log_normalisers=None) -> StepResult:
        """One step with rows given as candidates: `tokens` and `logits` of shape (rows, K); every
        other token of a row is -inf. A model can send its top K instead of the whole vocabulary.
        A mask spans the whole vocabulary; candidates it disallows are dropped. With
        `log_normalisers` (each full row's log Σ exp, shape (rows,)), raw log-probabilities are exact
        (layout 2) rather than renormalised over the K candidates."""
        tokens = np.atleast_2d(np.asarray(tokens))
        logits = np.atleast_2d(np.asarray(logits, dtype="<f4"))
        rows, k = tokens.shape
        pair = np.dtype([("token", "<u4"), ("logit", "<f4")])
        if log_normalisers is None:
            layout, packed = 1, np.empty((rows, k), dtype=pair)
            packed["token"], packed["logit"] = tokens, logits
        else:
            layout, packed = 2, np.empty(rows, dtype=[("lse", "<f4"), ("pairs", pair, (k,))])
            packed["lse"] = np.asarray(log_normalisers, dtype="<f4")
            packed["pairs"]["token"], packed["pairs"]["logit"] = tokens, logits
        descriptor = STEP_DESCRIPTOR.pack(self.id, self.next_step, 1, layout, 0, rows, k)
        return self._apply(self.client.request(STEP, [descriptor, packed.tobytes()], (STEP_TOKENS, DONE), mask=mask))

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
        return self._apply_verified(self._recovering(send))

    def _apply_verified(self, body: list[bytes]) -> "VerifyResult":
        summary, records, alternatives, extra = body
        _, step, _, _, _, flags, per_record, sequence, accepted = VERIFY_SUMMARY.unpack(summary)
        result = self._apply([summary[:STEP_SUMMARY.size], records, alternatives, extra])
        return VerifyResult(step=step, done=result.done, sequence=sequence, accepted=accepted, tokens=result.tokens,
                            alternatives=result.alternatives, result=result.result)

    def _apply(self, body: list[bytes]) -> StepResult:
        """Reads one step's four reply frames and updates the session's state."""
        summary, records, alternatives, extra, *details = body
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
                                      "finish_reason": reason, "forced": bool(record["flags"] & 1)})
                self.sequences[sequence].append(token)
                self.logprob_sums[sequence] += float(record["logprob"])
                self.finished[sequence] = reason
            if per_record:
                flat = np.frombuffer(alternatives, dtype=TOKEN_RECORD)
                result.alternatives = [[(int(t), float(lp)) for t, lp in flat[i:i + per_record].tolist()]
                                       for i in range(0, len(flat), per_record)]
            if flags & 2:
                result.details = self._details(details[0], len(result.tokens))
            if extra and not done:
                self.mirostat_mu = json.loads(extra)["mirostat_mu"]
        if done:
            result.result = json.loads(extra)
            self.result = result.result
            self.done = True
        # Greedy/sample: the step index is the longest sequence's length (one more per STEP, the
        # tokens returned per VERIFY); beam: steps decoded.
        self.next_step = max(len(t) for t in self.sequences) if kind == 0 else self.next_step + 1
        return result

    def _details(self, frame: bytes, records: int) -> list[dict]:
        """The details frame (docs/PROTOCOL.md, STEP reply frame 5), one dict per record."""
        p = self.parameters
        named, support, words = p["logprob_token_ids"], p["return_support"], (self.vocab_size + 31) // 32
        out, offset = [], 0
        for _ in range(records):
            record = {}
            if p["return_rank"]:
                record["rank"], = struct.unpack_from("<I", frame, offset)
                offset += 4
            if named:
                values = np.frombuffer(frame, "<f4", len(named), offset)
                record["token_logprobs"] = dict(zip(named, values.tolist()))
                offset += 4 * len(named)
            if support == "ids":
                count, = struct.unpack_from("<I", frame, offset)
                record["support"] = np.frombuffer(frame, "<u4", count, offset + 4).astype(np.int64)
                offset += 4 + 4 * count
            elif support == "mask":
                mask = np.frombuffer(frame, "<u4", words, offset)
                bits = (mask[:, None] >> np.arange(32, dtype=np.uint32)) & 1
                record["support_mask"] = mask
                record["support"] = np.flatnonzero(bits.ravel()).astype(np.int64)
                offset += 4 * words
            out.append(record)
        return out

    def events(self, model):
        """Steps until done, asking `model(session)` for each step's logits; yields every StepResult."""
        while not self.done:
            yield self.step(model(self))

    def close(self) -> dict:
        body, = self.client.request(CLOSE, [struct.pack("<Q", self.id)], CLOSED)
        self.done = True
        self.result = json.loads(body)
        return self.result
