"""Structured output: valid JSON for a schema from a toy model, with llguidance computing each
step's allowed-token masks and logitd decoding under them — greedy, sampling and beam search.

    python3 Clients/python/examples/json_output.py --endpoint tcp://127.0.0.1:5555

The toy model's logits are a seeded hash of the prefix: left to itself it writes no JSON at all
(--unconstrained shows it). The tokenizer is a byte-level BPE trained here, with the `tokenizers`
package, on a few thousand JSON documents; llguidance reads it from its JSON, as it reads any Hugging
Face tokenizer. Each step's masks are computed in a thread while the model's forward pass runs: the
mask depends only on the tokens so far, and llguidance releases the GIL.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import llguidance
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from logitd import Client  # noqa: E402
from logitd.constraints import ConstrainedSession, Grammar  # noqa: E402

VOCAB = 512
EOS = 0

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Z][a-z]{1,9}$"},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "color": {"enum": ["red", "green", "blue"]},
        "tags": {"type": "array", "items": {"enum": ["cat", "dog", "alpha"]}, "maxItems": 3},
    },
    "required": ["name", "age", "color"],
    "additionalProperties": False,
}


def build_tokenizer(vocab: int = VOCAB) -> Tokenizer:
    """A byte-level BPE with `<eos>` as token 0, trained on JSON written from a fixed seed."""
    rng = random.Random(0)
    words = ["name", "age", "color", "tags", "id", "items", "size", "red", "green", "blue", "cat", "dog", "alpha"]

    def value(depth: int):
        pick = rng.random()
        if pick < 0.3:
            return rng.randint(-50, 1000)
        if pick < 0.55:
            return rng.choice(words)
        if pick < 0.65:
            return rng.choice([True, False, None])
        if depth < 2 and pick < 0.85:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        if depth < 2:
            return {rng.choice(words): value(depth + 1) for _ in range(rng.randint(1, 3))}
        return rng.choice(words)

    corpus = [json.dumps({rng.choice(words): value(0) for _ in range(rng.randint(1, 4))}) for _ in range(4000)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<eos>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer


def guidance_tokenizer(tokenizer: Tokenizer, vocab: int = VOCAB) -> llguidance.LLTokenizer:
    """llguidance's view of the same tokenizer, over the model's whole vocabulary."""
    return llguidance.LLTokenizer(tokenizer.to_str(), n_vocab=vocab, eos_token=EOS)


def toy_logits(prefix: list[int], vocab: int = VOCAB) -> np.ndarray:
    """A toy model: logits from a seeded hash of the prefix (FNV-1a over the token ids)."""
    state = 1469598103934665603
    for token in prefix:
        state = ((state ^ (token + 1)) * 1099511628211) % 2**64
    logits = np.random.default_rng(state).normal(0, 2, size=vocab).astype(np.float32)
    logits[EOS] += 0.25 * len(prefix) - 4  # the model wants to stop more as the text grows
    return logits


STRATEGIES = {
    "greedy": dict(strategy="greedy"),
    "sample": dict(strategy="sample", temperature=0.8, top_p=0.95),
    "beam": dict(strategy="beam", beam_width=4, num_return=2),
}


def generate(client: Client, tokenizer: llguidance.LLTokenizer | None, grammar: Grammar | None, strategy: str,
             seed: int = 1, max_new_tokens: int = 64) -> list[dict]:
    """One session of `strategy`; with a grammar, every step masked by llguidance. Returns the
    session's results with their text (and, constrained, whether each is a complete sentence)."""
    session = client.open(vocab_size=VOCAB, eos_token_ids=[EOS], max_new_tokens=max_new_tokens, seed=seed,
                          **STRATEGIES[strategy])
    if grammar is None:
        while not session.done:
            rows = session.live_prefixes if strategy == "beam" else \
                [t for t, r in zip(session.sequences, session.finished) if r is None]
            session.step(np.stack([toy_logits(p) for p in rows]))
        return [dict(s, text=None) for s in session.result["sequences"]]
    constrained = ConstrainedSession(session, tokenizer, grammar)
    with ThreadPoolExecutor(max_workers=1) as pool:
        while not constrained.done:
            masks = pool.submit(constrained.masks)  # the grammar engine works ...
            logits = np.stack([toy_logits(p) for p in constrained.prefixes()])  # ... while the model does
            constrained.step(logits, masks.result())
    return constrained.results()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    parser.add_argument("--schema", type=pathlib.Path, help="a JSON schema file (default: a person record)")
    parser.add_argument("--seeds", type=int, default=3, help="sampling runs, seeds 1…N")
    parser.add_argument("--unconstrained", action="store_true", help="also show the toy model without masks")
    args = parser.parse_args()

    schema = json.loads(args.schema.read_text()) if args.schema else SCHEMA
    tokenizer = build_tokenizer()
    guidance = guidance_tokenizer(tokenizer)
    grammar = Grammar.json_schema(schema)
    with Client(args.endpoint) as client:
        runs = [("greedy", 1)] + [("sample", seed) for seed in range(1, args.seeds + 1)] + [("beam", 1)]
        for strategy, seed in runs:
            label = f"{strategy} (seed {seed})" if strategy == "sample" else strategy
            for result in generate(client, guidance, grammar, strategy, seed):
                print(f"{label:16} {result['text']}")
        if args.unconstrained:
            for result in generate(client, None, None, "greedy"):
                tokens = [t for t in result["tokens"] if t != EOS]
                print(f"{'unconstrained':16} {tokenizer.decode(tokens)!r}")


if __name__ == "__main__":
    main()
