"""Structured output with llguidance: grammar masks for a logitd session, computed client-side.

A model process that must produce JSON matching a schema (or text matching a regex or a Lark
grammar) wraps its session in a `ConstrainedSession`. It keeps one llguidance matcher per live
sequence (beam search: per live beam), fills the allowed-token mask of every row the next step
sends, and advances each matcher by the token logitd chose for it:

    from logitd import Client
    from logitd.constraints import ConstrainedSession, Grammar
    import llguidance

    tokenizer = llguidance.LLTokenizer(hf_tokenizer_json, n_vocab=V, eos_token=EOS)
    with Client(endpoint) as client:
        session = client.open(vocab_size=V, eos_token_ids=[EOS], strategy="beam", beam_width=4)
        constrained = ConstrainedSession(session, tokenizer, Grammar.json_schema(schema))
        while not constrained.done:
            masks = constrained.masks()          # may run while the forward pass does (no GIL)
            constrained.step(model(constrained.prefixes()), masks)
        print(constrained.json())

The mask is computed before the row it constrains exists, from the tokens alone, so a model process
computes it in a thread while its forward pass for the same step runs (llguidance releases the GIL):
see examples/json_output.py. A grammar that is complete leaves only EOS allowed, so logitd ends the
sequence itself (finish reason "eos"); the session's eos_token_ids must therefore hold the
tokenizer's EOS. Needs llguidance (PyPI); the client proper does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import llguidance
import llguidance.numpy as llnumpy
import numpy as np

from . import Session, StepResult


@dataclass(frozen=True)
class Grammar:
    """An llguidance grammar, compiled from a JSON schema, a regular expression or Lark."""
    source: str

    @staticmethod
    def json_schema(schema: dict | str, compact: bool = True) -> "Grammar":
        """JSON matching `schema`; `compact` fixes the separators to ", " and ": " with no other
        whitespace (llguidance's default lets the model put any whitespace between items)."""
        overrides = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "} if compact else None
        return Grammar(llguidance.LLMatcher.grammar_from_json_schema(schema, overrides=overrides))

    @staticmethod
    def regex(pattern: str) -> "Grammar":
        return Grammar(llguidance.LLMatcher.grammar_from_regex(pattern))

    @staticmethod
    def lark(source: str) -> "Grammar":
        return Grammar(llguidance.LLMatcher.grammar_from_lark(source))


class ConstraintError(Exception):
    """The grammar is invalid, or a matcher refused a token logitd returned (which a correct mask
    makes impossible)."""


class ConstrainedSession:
    """A logitd session whose every row is masked by a grammar: one matcher per live sequence or
    beam, built from the session's history (so a session recovered from its history, on any
    daemon or in a new process, continues under the same constraint)."""

    def __init__(self, session: Session, tokenizer: llguidance.LLTokenizer, grammar: Grammar):
        if tokenizer.vocab_size != session.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens and the session {session.vocab_size}; "
                             "build the LLTokenizer with n_vocab=vocab_size")
        if tokenizer.eos_token not in session.parameters.get("eos_token_ids", []):
            raise ValueError(f"the session's eos_token_ids must hold the tokenizer's EOS ({tokenizer.eos_token}): "
                             "a complete grammar allows only EOS, and logitd ends the sequence on it")
        self.session = session
        self.tokenizer = tokenizer
        self.grammar = grammar
        self._executor = llguidance.LLExecutor()
        self._words = (session.vocab_size + 31) // 32
        self._matchers: list[llguidance.LLMatcher] = [self._matcher(tokens) for tokens in self.prefixes()]

    def _matcher(self, tokens: list[int]) -> llguidance.LLMatcher:
        matcher = llguidance.LLMatcher(self.tokenizer, self.grammar.source, log_level=0)
        if matcher.is_error():
            raise ConstraintError(f"invalid grammar: {matcher.get_error()}")
        if tokens and not matcher.consume_tokens(tokens):
            raise ConstraintError(f"the history {tokens} does not follow the grammar: {matcher.get_error()}")
        return matcher

    @property
    def done(self) -> bool:
        return self.session.done

    def prefixes(self) -> list[list[int]]:
        """The tokens of each row the next step sends, in the order the session wants them."""
        if self.session.strategy == "beam":
            return [list(prefix) for prefix in self.session.live_prefixes]
        return [list(tokens) for tokens, reason in zip(self.session.sequences, self.session.finished) if reason is None]

    def masks(self) -> np.ndarray:
        """The next step's masks, (rows, ceil(V / 32)) int32 in llguidance's layout, computed in
        parallel; it reads only the matchers, so it may run while the model's forward pass does."""
        masks = np.zeros((len(self._matchers), self._words), dtype=np.int32)
        llnumpy.fill_next_token_bitmask_par(self._executor, [(m, i) for i, m in enumerate(self._matchers)], masks)
        return masks

    def step(self, logits: np.ndarray, masks: np.ndarray | None = None, dtype: str = "f32") -> StepResult:
        """STEP with each row masked (with `masks`, if computed ahead, else computed now), then
        advance the matchers by the chosen tokens."""
        result = self.session.step(logits, dtype=dtype, mask=self.masks() if masks is None else masks)
        self.advance(result)
        return result

    def advance(self, result: StepResult) -> None:
        """Follows a step's result (from `step`, or from a BATCH STEP the caller sent with
        `masks()`): each sequence's matcher consumes its token; beam search clones the matcher of
        every parent that branched and drops those of pruned beams."""
        if result.kind == "beams":
            children: dict[int, int] = {}
            for beam in result.beams:
                children[beam["parent"]] = children.get(beam["parent"], 0) + 1
            matchers = []
            for beam in result.beams:
                parent = beam["parent"]
                children[parent] -= 1
                # The last child takes the parent's matcher itself; the others a copy.
                matcher = self._matchers[parent] if children[parent] == 0 else self._matchers[parent].deep_copy()
                self._consume(matcher, beam["token"])
                matchers.append(matcher)
            self._matchers = matchers
        else:
            live = []
            for matcher, record in zip(self._matchers, result.tokens):
                self._consume(matcher, record["token"])
                if record["finish_reason"] is None:
                    live.append(matcher)
            self._matchers = live

    @staticmethod
    def _consume(matcher: llguidance.LLMatcher, token: int) -> None:
        if not matcher.consume_token(token):
            raise ConstraintError(f"the grammar refused token {token}: {matcher.get_error()}")

    def results(self) -> list[dict]:
        """The session's result sequences (or hypotheses, best first), each with its "text" (EOS
        removed) and whether it is "complete": a whole sentence of the grammar. Under the masks only
        a sequence cut short (max_new_tokens, a stop sequence) can be incomplete; beam search has no
        filler hypotheses (docs/DECODING.md), so every hypothesis is a real, complete one."""
        if self.session.result is None:
            raise ConstraintError("the session is not done")
        eos = set(self.session.parameters.get("eos_token_ids", []))
        results = []
        for sequence in self.session.result["sequences"]:
            tokens = [t for t in sequence["tokens"] if t not in eos]
            matcher = llguidance.LLMatcher(self.tokenizer, self.grammar.source, log_level=0)
            complete = matcher.consume_tokens(tokens) and matcher.is_accepting()
            results.append(dict(sequence, text=self.tokenizer.decode_str(tokens), complete=complete))
        return results

    def json(self) -> list:
        """The complete results parsed as JSON (for a JSON-schema grammar), in result order."""
        return [json.loads(result["text"]) for result in self.results() if result["complete"]]
