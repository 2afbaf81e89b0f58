"""Speculative decoding with logitd: a cheap draft model proposes k tokens, the target model scores
them in one pass, and VERIFY keeps a prefix and adds one token — with exactly the target's
distribution. Both models are toys (logits from a seeded hash of the prefix; the draft is a blurred
copy of the target).

    python3 Clients/python/examples/speculative.py --endpoint tcp://127.0.0.1:5555

It prints the acceptance rate and the tokens each target pass yields, and, counting the first token
over many seeds, how far speculative and plain sampling each are from the target's distribution.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from logitd import Client  # noqa: E402

VOCAB = 32
TEMPERATURE = 0.8


@functools.lru_cache(maxsize=None)
def target_logits(prefix: tuple[int, ...]) -> np.ndarray:
    state = 1469598103934665603
    for token in prefix:
        state = ((state ^ (token + 1)) * 1099511628211) % 2**64
    return np.random.default_rng(state).normal(0, 2, VOCAB).astype(np.float32)


@functools.lru_cache(maxsize=None)
def draft_probs(prefix: tuple[int, ...]) -> np.ndarray:
    """The draft's distribution after its own processing (the same temperature): what it samples."""
    noise = np.random.default_rng(len(prefix) * 7919 + sum(prefix)).normal(0, 0.6, VOCAB)
    logits = (target_logits(prefix) + noise) / TEMPERATURE
    q = np.exp(logits - logits.max())
    return q / q.sum()


def speculative(client: Client, seed: int, k: int, tokens: int, rng) -> tuple[list[int], int, int]:
    """One sequence by VERIFY: returns its tokens, draft tokens proposed and accepted."""
    session = client.open(vocab_size=VOCAB, strategy="sample", temperature=TEMPERATURE, seed=seed, max_new_tokens=tokens)
    proposed = accepted = 0
    while not session.done:
        prefix = session.sequences[0]
        draft, qs = [], []
        for _ in range(k):  # the draft model runs k times ...
            q = draft_probs(tuple(prefix + draft))
            draft.append(int(rng.choice(VOCAB, p=q)))
            qs.append(q)
        rows = np.stack([target_logits(tuple(prefix + draft[:i])) for i in range(k + 1)])  # ... the target once
        result = session.verify(draft, rows, np.stack(qs).astype(np.float32))
        proposed += k
        accepted += result.accepted
    return session.sequences[0], proposed, accepted


def plain(client: Client, seed: int, tokens: int) -> list[int]:
    session = client.open(vocab_size=VOCAB, strategy="sample", temperature=TEMPERATURE, seed=seed, max_new_tokens=tokens)
    while not session.done:
        session.step(target_logits(tuple(session.sequences[0])))
    return session.sequences[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    parser.add_argument("--seeds", type=int, default=2000)
    parser.add_argument("--k", type=int, default=4, help="draft tokens per VERIFY")
    parser.add_argument("--tokens", type=int, default=12, help="tokens per sequence")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    first_speculative = np.zeros(VOCAB)
    first_plain = np.zeros(VOCAB)
    proposed = accepted = passes = 0
    with Client(args.endpoint) as client:
        for seed in range(args.seeds):
            sequence, p, a = speculative(client, seed, args.k, args.tokens, rng)
            proposed, accepted, passes = proposed + p, accepted + a, passes + p // args.k
            first_speculative[sequence[0]] += 1
            first_plain[plain(client, seed + 10**6, 1)[0]] += 1
        print(f"speculative {args.seeds} sequences of {args.tokens} tokens, k = {args.k}: "
              f"acceptance rate {accepted / proposed:.3f}, {args.seeds * args.tokens / passes:.2f} tokens per target pass")
        # The target's distribution of the first token, and how far each method's counts are from it.
        logits = target_logits(()).astype(np.float64) / TEMPERATURE
        p = np.exp(logits - logits.max())
        p /= p.sum()
        for name, counts in [("speculative", first_speculative), ("plain", first_plain)]:
            distance = 0.5 * np.abs(counts / counts.sum() - p).sum()
            statistic = ((counts - args.seeds * p) ** 2 / (args.seeds * p)).sum()
            print(f"first token, {name:11}: total variation from the target {distance:.3f}, chi-square {statistic:.1f} ({VOCAB - 1} df)")


if __name__ == "__main__":
    main()
