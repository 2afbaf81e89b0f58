"""A complete model loop against logitd: a toy model produces logits from the prefix, logitd picks
the tokens. The Swift `model-loop` executable does the same with the same toy model, so the two
must print the same thing.

    python3 Clients/python/examples/model_loop.py --endpoint tcp://127.0.0.1:5555 --strategy beam
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from logitd import Client  # noqa: E402

VOCAB = 64
EOS = 0
MASK = 2**64 - 1


def toy_logits(prefix: list[int]) -> np.ndarray:
    """Logits from an integer hash of the prefix, computed so that Swift gets the same floats."""
    state = 1469598103934665603
    for token in prefix:
        state = ((state ^ (token + 1)) * 1099511628211) & MASK
    values = []
    for i in range(VOCAB):
        mixed = ((state ^ ((i * 0x9E3779B97F4A7C15) & MASK)) * 0xBF58476D1CE4E5B9) & MASK
        value = (mixed >> 40) / 16777216 * 8 - 4
        if i == EOS:
            value += 0.5 * len(prefix) - 3
        values.append(value)
    return np.array(values, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    parser.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="greedy")
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=16, help="max new tokens")
    args = parser.parse_args()

    parameters = dict(vocab_size=VOCAB, strategy=args.strategy, max_new_tokens=args.steps, eos_token_ids=[EOS],
                      seed=args.seed)
    if args.strategy == "sample":
        parameters.update(temperature=0.9, top_p=0.95, n=2)
    if args.strategy == "beam":
        parameters.update(beam_width=args.beam_width, num_return=min(3, args.beam_width))
    with Client(args.endpoint) as client:
        session = client.open(**parameters)
        for event in session.events(lambda s: np.stack(
                [toy_logits(p) for p in s.live_prefixes] if s.strategy == "beam" else
                [toy_logits(t) for t, r in zip(s.sequences, s.finished) if r is None])):
            pass
        for index, sequence in enumerate(session.result["sequences"]):
            tokens = " ".join(str(t) for t in sequence["tokens"])
            if args.strategy == "beam":
                print(f"hypothesis {index} score {sequence['score']:.6f}: {tokens}")
            else:
                print(f"sequence {index} ({sequence['finish_reason']}): {tokens}")


if __name__ == "__main__":
    main()
