"""The thinking budget over the wire: forced end tokens marked in the records, their
log-probabilities, recovery in the middle of forcing, and named errors."""

from __future__ import annotations

import numpy as np
import pytest

from logitd import Client, LogitdError

VOCAB = 64
THINK, END = [60], [61, 62]


def model(tokens: list[int]) -> np.ndarray:
    """Never closes its thinking on its own: the end tokens are very unlikely."""
    rng = np.random.default_rng(len(tokens))
    x = rng.normal(0, 1, VOCAB).astype(np.float32)
    x[61:63] = -8
    return x


def run(session, steps: int) -> list[dict]:
    records = []
    for _ in range(steps):
        if session.done:
            break
        rows = np.stack([model(session.sequences[i]) for i, f in enumerate(session.finished) if f is None])
        records += session.step(rows).tokens
    return records


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - x.max() - np.log(np.exp(x - x.max()).sum())


def test_the_budget_forces_the_end_sequence_and_marks_it(daemon):
    options = dict(vocab_size=VOCAB, strategy="sample", seed=4, n=2, top_k=5, temperature=0.7, prompt_token_ids=[1] + THINK,
                   think_start_token_ids=THINK, think_end_token_ids=END, thinking_budget=4, max_new_tokens=9)
    with Client(daemon.endpoint) as client:
        session = client.open(**options)
        assert session.parameters["thinking_budget"] == 4 and session.parameters["think_end_token_ids"] == END
        records = run(session, 9)
    for sequence in range(2):
        tokens = session.sequences[sequence]
        assert tokens[4:6] == END, tokens
        mine = [r for r in records if r["sequence"] == sequence]
        assert [r["forced"] for r in mine] == [False] * 4 + [True, True] + [False] * 3
        # A forced token's log-probability is the untruncated chain's (here: temperature only).
        for position in (4, 5):
            expected = log_softmax(model(tokens[:position]) / 0.7)[tokens[position]]
            assert mine[position]["logprob"] == pytest.approx(expected, abs=1e-4)


def test_recovery_in_the_middle_of_forcing_forces_the_rest(make_daemon):
    options = dict(vocab_size=VOCAB, strategy="sample", seed=6, prompt_token_ids=THINK, think_start_token_ids=THINK,
                   think_end_token_ids=END, thinking_budget=3, max_new_tokens=8)
    reference_daemon = make_daemon()
    with Client(reference_daemon.endpoint) as client:
        reference = client.open(**options)
        run(reference, 8)
    first = make_daemon()
    endpoint = first.endpoint
    with Client(endpoint, timeout=10) as client:
        session = client.open(**options)
        run(session, 4)                 # three free tokens and the first forced one
        assert session.sequences[0][3] == END[0]
        first.process.kill()
        first.process.wait()
        make_daemon(endpoint=endpoint)
        run(session, 8)
    assert session.sequences == reference.sequences
    assert session.sequences[0][3:5] == END


def test_bad_thinking_options_are_named(daemon):
    cases = [
        (dict(thinking_budget=3), '"thinking_budget" needs "think_start_token_ids" and "think_end_token_ids"'),
        (dict(think_start_token_ids=[1]), 'need "thinking_budget"'),
        (dict(thinking_budget=-1, think_start_token_ids=[1], think_end_token_ids=[2]), '"thinking_budget" must be ≥ 0'),
        (dict(thinking_budget=2, think_start_token_ids=[1], think_end_token_ids=[VOCAB]), f"hold {VOCAB}"),
        (dict(strategy="beam", thinking_budget=2, think_start_token_ids=[1], think_end_token_ids=[2]), "for greedy and sample sessions"),
    ]
    with Client(daemon.endpoint) as client:
        for options, message in cases:
            with pytest.raises(LogitdError) as refused:
                client.open(vocab_size=VOCAB, **options)
            assert refused.value.name == "BAD_PARAMETERS" and message in refused.value.message, (options, refused.value.message)
        session = client.open(vocab_size=VOCAB, thinking_budget=1, think_start_token_ids=[1], think_end_token_ids=[2])
        with pytest.raises(LogitdError) as refused:
            session.verify([3], np.zeros((2, VOCAB), np.float32))
        assert refused.value.name == "BAD_PARAMETERS" and "thinking budget" in refused.value.message
