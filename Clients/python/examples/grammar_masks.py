"""llguidance masks for a model process written in a language without llguidance bindings: JSON
lines on stdin and stdout. The Swift integration tests drive their sessions with it.

    python3 Clients/python/examples/grammar_masks.py --schema '{"type": "object", ...}'

It prints {"vocab": V, "eos": E} once (the tokenizer of examples/json_output.py), then answers,
one line each:

    {"prefixes": [[17, 4], [17, 9]]}  →  {"masks": [[w0, w1, …], …]}   u32 words per prefix, as sent
    {"check": [17, 4, 0]}             →  {"complete": true, "text": "…"}  EOS removed

The service is stateless for its caller: it keeps a matcher per prefix it was last asked about and
extends a parent's copy by one token for a prefix one token longer, so following a session (its
sequences, or its beams as they branch) costs one consume per row per step.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import llguidance
import llguidance.numpy as llnumpy
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from json_output import EOS, VOCAB, build_tokenizer, guidance_tokenizer  # noqa: E402
from logitd.constraints import Grammar  # noqa: E402


class MaskService:
    def __init__(self, tokenizer: llguidance.LLTokenizer, grammar: Grammar):
        self.tokenizer = tokenizer
        self.grammar = grammar
        self.executor = llguidance.LLExecutor()
        self.matchers: dict[tuple[int, ...], llguidance.LLMatcher] = {}

    def matcher(self, prefix: tuple[int, ...]) -> llguidance.LLMatcher:
        if prefix in self.matchers:
            return self.matchers[prefix]
        parent = self.matchers.get(prefix[:-1]) if prefix else None
        if parent is not None:
            matcher = parent.deep_copy()
            ok = matcher.consume_token(prefix[-1])
        else:
            matcher = llguidance.LLMatcher(self.tokenizer, self.grammar.source, log_level=0)
            ok = matcher.consume_tokens(list(prefix))
        if not ok:
            raise ValueError(f"the prefix {list(prefix)} does not follow the grammar: {matcher.get_error()}")
        return matcher

    def masks(self, prefixes: list[list[int]]) -> list[list[int]]:
        matchers = {tuple(p): self.matcher(tuple(p)) for p in prefixes}  # rows with equal prefixes share one
        unique = list(matchers)
        words = np.zeros((len(unique), (VOCAB + 31) // 32), dtype=np.int32)
        llnumpy.fill_next_token_bitmask_par(self.executor, [(matchers[p], i) for i, p in enumerate(unique)], words)
        self.matchers = matchers  # the rows of this step are the parents of the next one
        return words.view(np.uint32)[[unique.index(tuple(p)) for p in prefixes]].tolist()

    def check(self, tokens: list[int]) -> dict:
        tokens = [t for t in tokens if t != EOS]
        matcher = llguidance.LLMatcher(self.tokenizer, self.grammar.source, log_level=0)
        complete = matcher.consume_tokens(tokens) and matcher.is_accepting()
        return {"complete": complete, "text": self.tokenizer.decode_str(tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--schema", help="a JSON schema (text)")
    kind.add_argument("--regex")
    kind.add_argument("--lark")
    args = parser.parse_args()
    grammar = Grammar.json_schema(json.loads(args.schema)) if args.schema else \
        Grammar.regex(args.regex) if args.regex else Grammar.lark(args.lark)
    service = MaskService(guidance_tokenizer(build_tokenizer()), grammar)
    print(json.dumps({"vocab": VOCAB, "eos": EOS}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"masks": service.masks(request["prefixes"])} if "prefixes" in request else service.check(request["check"])
        except ValueError as error:
            reply = {"error": str(error)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
