"""A first look at logitd: a model process hands it logits, logitd hands back tokens.

Until the translation demo lands, this is what `make demo` runs against the daemon it started.
Usage: python3 Demos/hello_logitd.py [--endpoint tcp://127.0.0.1:5555]
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Clients" / "python"))
from logitd import Client  # noqa: E402

# "the cat sat on the ___": a toy model's raw scores for a few candidate next words.
CANDIDATES = ["mat", "sofa", "floor", "roof", "moon", "keyboard"]
LOGITS = np.array([3.2, 2.1, 1.9, 0.4, -1.0, 1.2], dtype=np.float32)


def bar(p: float, width: int = 30) -> str:
    return "#" * max(1, round(p * width)) if p > 0.005 else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    args = parser.parse_args()

    with Client(args.endpoint, timeout=10) as client:
        welcome = client.hello()
        print(f"connected to logitd {welcome['server']} (protocol {welcome['protocol']}, "
              f"{welcome['workers']} workers, dtypes {', '.join(welcome['dtypes'])})\n")

        print('the cat sat on the ___')
        probabilities = np.exp(LOGITS - LOGITS.max())
        probabilities /= probabilities.sum()
        for word, logit, p in zip(CANDIDATES, LOGITS, probabilities):
            print(f"  {word:<9} logit {logit:5.1f}  p {p:5.3f}  {bar(p)}")
        tokens, logprobs = client.decode(LOGITS)
        print(f"  greedy → {CANDIDATES[tokens[0]]!r} (log p = {logprobs[0]:.4f}, "
              f"p = {np.exp(logprobs[0]):.3f})\n")

        rng = np.random.default_rng(0)
        vocab = 128_256
        batch = rng.normal(0, 3, size=(8, vocab)).astype(np.float32)
        print(f"a batch of 8 rows × {vocab:,} logits, in each wire dtype:")
        for dtype in ("f32", "f16", "bf16"):
            start = time.perf_counter()
            tokens, logprobs = client.decode(batch, dtype=dtype)
            elapsed = (time.perf_counter() - start) * 1000
            print(f"  {dtype:>4}: tokens {tokens.tolist()}  ({elapsed:.1f} ms round trip)")
        print(f"  numpy argmax: {batch.argmax(axis=1).tolist()}")


if __name__ == "__main__":
    main()
