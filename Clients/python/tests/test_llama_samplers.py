"""llama.cpp's samplers over the wire: top-n-σ, XTC, dynamic temperature and mirostat 2.0 — what
every draw may be, mirostat's μ in each reply following its update rule, reproducibility from the
seed, and named errors. (Recovery of a mirostat + XTC session across a daemon restart is in
test_sessions.py; the reference semantics are tested in DecodingTests.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

from logitd import Client, LogitdError

VOCAB = 120


def row(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 2.0, VOCAB).astype(np.float32)


def probabilities(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max())
    return e / e.sum()


def draws(client: Client, x: np.ndarray, count: int = 64, **options) -> list[int]:
    session = client.open(vocab_size=VOCAB, strategy="sample", n=count, max_new_tokens=1, seed=3, **options)
    return [t["token"] for t in session.step(np.tile(x, (count, 1))).tokens]


def test_top_n_sigma_draws_only_within_n_sigma_of_the_maximum(daemon):
    x = row(1)
    threshold = x.max() - 1.0 * x.astype(np.float64).std()
    with Client(daemon.endpoint) as client:
        drawn = draws(client, x, 128, top_n_sigma=1.0, temperature=3.0)
    assert all(x[t] >= threshold for t in drawn)
    assert len(set(drawn)) > 1


def test_xtc_that_always_fires_never_draws_the_top_choices(daemon):
    x = row(2)
    p = probabilities(x)
    above = np.flatnonzero(p >= 0.05)
    assert len(above) >= 3, "the row must have several tokens above the threshold"
    least = above[np.argmin(p[above])]
    with Client(daemon.endpoint) as client:
        drawn = draws(client, x, 128, xtc_probability=1.0, xtc_threshold=0.05)
        plain = draws(client, x, 128)
    assert not (set(drawn) & (set(above) - {least}))
    assert set(plain) & (set(above) - {least}), "without XTC the top choices are drawn"


def test_dynamic_temperature_is_echoed_and_reproducible(daemon):
    x = row(3)
    with Client(daemon.endpoint) as client:
        a = draws(client, x, 32, temperature=0.8, dynatemp_range=0.6, dynatemp_exponent=1.5)
        b = draws(client, x, 32, temperature=0.8, dynatemp_range=0.6, dynatemp_exponent=1.5)
        session = client.open(vocab_size=VOCAB, dynatemp_range=0.6, dynatemp_exponent=1.5)
    assert a == b
    assert session.parameters["dynatemp_range"] == pytest.approx(0.6) and session.parameters["dynatemp_exponent"] == 1.5


def test_mirostat_reports_mu_after_every_step_by_its_update_rule(daemon):
    tau, eta = 3.0, 0.2
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", n=2, seed=9, mirostat_tau=tau, mirostat_eta=eta, max_new_tokens=8)
        mu = [2 * tau, 2 * tau]
        for step in range(7):
            result = session.step(np.stack([row(10 + step), row(20 + step)]))
            for record in result.tokens:
                surprise = -record["logprob"] / math.log(2)
                mu[record["sequence"]] -= eta * (surprise - tau)
            assert session.mirostat_mu == pytest.approx(mu, abs=1e-4)
            assert session.history()["mirostat_mu"] == session.mirostat_mu
        with pytest.raises(LogitdError) as refused:
            session.verify([1], np.stack([row(1), row(2)]))
        assert refused.value.name == "BAD_PARAMETERS" and "mirostat" in refused.value.message


def test_bad_sampler_options_are_named(daemon):
    cases = [
        (dict(top_n_sigma=-1), '"top_n_sigma" must be a finite number ≥ 0'),
        (dict(xtc_probability=2), '"xtc_probability" must be in [0, 1]'),
        (dict(xtc_threshold=-0.5), '"xtc_threshold" must be in [0, 1]'),
        (dict(dynatemp_range=-1), '"dynatemp_range" must be a finite number ≥ 0'),
        (dict(dynatemp_exponent=0), '"dynatemp_exponent" must be a finite number > 0'),
        (dict(mirostat_tau=-3), '"mirostat_tau" must be a finite number ≥ 0'),
        (dict(mirostat_eta=0), '"mirostat_eta" must be a finite number > 0'),
        (dict(order=["mirostat", "xtc", "top_n_sigma", "temperature"], history={"sequences": [[1]], "mirostat_mu": [1, 2]}),
         '"mirostat_mu" needs one μ per sequence'),
    ]
    with Client(daemon.endpoint) as client:
        for options, message in cases:
            with pytest.raises(LogitdError) as refused:
                client.open(vocab_size=VOCAB, strategy="sample", **options)
            assert refused.value.name == "BAD_PARAMETERS" and message in refused.value.message, (options, refused.value.message)


def test_dry_penalises_the_token_that_would_extend_a_repeat(daemon):
    """Prompt 5 6 7 5 6: token 7 would extend the repeat "5 6" (n = 2 = allowed length), so DRY
    subtracts multiplier · base^0 = 0.8 from it, and greedy picks token 8 instead; a sequence breaker
    at 6 stops the repeat from reaching back."""
    x = np.full(VOCAB, -5.0, dtype=np.float32)
    x[7], x[8] = 1.0, 0.5
    with Client(daemon.endpoint) as client:
        plain = client.open(vocab_size=VOCAB, prompt_token_ids=[5, 6, 7, 5, 6], max_new_tokens=1).step(x)
        dry = client.open(vocab_size=VOCAB, prompt_token_ids=[5, 6, 7, 5, 6], max_new_tokens=1, dry_multiplier=0.8).step(x)
        broken = client.open(vocab_size=VOCAB, prompt_token_ids=[5, 6, 7, 5, 6], max_new_tokens=1, dry_multiplier=0.8,
                             dry_sequence_breakers=[[6]]).step(x)
        with pytest.raises(LogitdError) as refused:
            client.open(vocab_size=VOCAB, dry_multiplier=1, dry_sequence_breakers=[[VOCAB]])
    assert plain.tokens[0]["token"] == 7 and broken.tokens[0]["token"] == 7
    assert dry.tokens[0]["token"] == 8
    edited = x.astype(np.float64)
    edited[7] -= 0.8
    expected = edited[8] - edited.max() - np.log(np.exp(edited - edited.max()).sum())
    assert dry.tokens[0]["logprob"] == pytest.approx(expected, abs=1e-5)
    assert refused.value.name == "BAD_PARAMETERS" and "dry_sequence_breakers" in refused.value.message
