"""OPEN's parameters over the wire: exact 64-bit seeds, the per-session bounds WELCOME publishes,
the samplers' options, and a named error for every bad value."""

from __future__ import annotations

import numpy as np
import pytest

from logitd import Client, LogitdError
from test_sessions import VOCAB, run, toy_logits


def test_seeds_are_exact_64_bit_integers_end_to_end(daemon):
    """2^64 − 1 and 2^53 + 1 (which a Double would round to 2^53) come back exactly in OPENED, and a
    session re-opened with a seed the daemon drew decodes the same tokens."""
    with Client(daemon.endpoint) as client:
        def sample(seed=None):
            extra = {} if seed is None else {"seed": seed}
            session = client.open(vocab_size=VOCAB, strategy="sample", n=4, max_new_tokens=12, **extra)
            run(session)
            return session.seed, session.parameters["seed"], session.sequences
        for seed in [2**64 - 1, 2**53 + 1]:
            echoed, resolved, tokens = sample(seed)
            assert echoed == resolved == seed
            assert sample(seed)[2] == tokens
        assert sample(2**53 + 1)[2] != sample(2**53)[2], "2^53 + 1 is not rounded to 2^53"
        drawn, _, tokens = sample()
        assert sample(drawn)[2] == tokens
        with pytest.raises(LogitdError) as refused:
            client.open(vocab_size=VOCAB, strategy="sample", seed=2**64)
        assert refused.value.name == "BAD_PARAMETERS" and "18446744073709551615" in refused.value.message


@pytest.mark.parametrize("key, cutoff", [("epsilon_cutoff", 0.03), ("eta_cutoff", 0.2)])
def test_epsilon_and_eta_sampling_draw_only_tokens_above_their_cutoff(daemon, key, cutoff):
    """256 draws from one row through the daemon: every token drawn has probability at least the
    cutoff (eta: min(ε, √ε·e^−H)), and the resolved parameters echo it."""
    logits = toy_logits([3, 1]).astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    entropy = -(p * np.log(p)).sum()
    threshold = cutoff if key == "epsilon_cutoff" else min(cutoff, np.sqrt(cutoff) * np.exp(-entropy))
    assert 0 < (p < threshold).sum() < VOCAB - 1, "the cutoff removes some tokens, not all"
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", seed=3, n=256, max_new_tokens=1, **{key: cutoff})
        assert session.parameters[key] == pytest.approx(cutoff)
        result = session.step(np.repeat(toy_logits([3, 1])[None, :], 256, axis=0))
    drawn = {record["token"] for record in result.tokens}
    assert all(p[token] >= threshold for token in drawn), sorted((p[t], t) for t in drawn)[:3]
    assert len(drawn) > 1


def test_welcome_publishes_every_session_bound(daemon):
    with Client(daemon.endpoint) as client:
        limits = client.hello()["limits"]
        assert {k: limits[k] for k in ["max_n", "max_beam_width", "max_logprobs", "max_new_tokens", "max_list_length", "max_draft_tokens"]} == {
            "max_n": 256, "max_beam_width": 128, "max_logprobs": 20, "max_new_tokens": 2**20, "max_list_length": 2**20, "max_draft_tokens": 32}
        # At each bound itself a session opens.
        client.open(vocab_size=10, n=256, logprobs=20, max_new_tokens=2**20).close()
        client.open(vocab_size=10, strategy="beam", beam_width=128, max_new_tokens=2).close()


@pytest.mark.parametrize("parameters, mentions", [
    ({}, '"vocab_size" is required'),
    ({"vocab_size": 10, "temprature": 1}, 'unknown parameter "temprature"'),
    ({"vocab_size": 10, "strategy": "beam", "beam_width": 0}, "beam_width"),
    ({"vocab_size": 10, "early_stopping": "sometimes"}, "early_stopping"),
    ({"vocab_size": 10, "top_p": 0}, "top_p"),
    ({"vocab_size": 10, "epsilon_cutoff": 1}, "epsilon_cutoff"),
    ({"vocab_size": 10, "banned_token_ids": [10]}, "outside the vocabulary"),
    ({"vocab_size": 10, "order": ["top_k", "warp_speed"]}, '"order"'),
    ({"vocab_size": 10, "n": 2, "strategy": "beam"}, '"n"'),
    # The per-session bounds WELCOME publishes, refused past them, naming the limit (the list
    # lengths are tested at the parser with small limits: a million-token list is slow to send).
    ({"vocab_size": 10, "n": 257}, '"n" is 257; the limit is max_n = 256'),
    ({"vocab_size": 10, "strategy": "beam", "beam_width": 129}, '"beam_width" is 129; the limit is max_beam_width = 128'),
    ({"vocab_size": 10, "logprobs": 21}, '"logprobs" is 21; the limit is max_logprobs = 20'),
    ({"vocab_size": 10, "max_new_tokens": 2**20 + 1}, '"max_new_tokens" is 1048577; the limit is max_new_tokens = 1048576'),
])
def test_bad_open_parameters(daemon, parameters, mentions):
    with Client(daemon.endpoint) as client:
        with pytest.raises(LogitdError) as error:
            client.open(**parameters)
        assert error.value.name == "BAD_PARAMETERS"
        assert mentions in error.value.message
