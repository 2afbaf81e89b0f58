"""SCORE and CLASSIFY over the wire, against float64 references: observed tokens' log-probabilities
under stated processors with the history they imply, raw log-probabilities, ranks, entropies,
perplexity; classification over named tokens; masks; named errors."""

from __future__ import annotations

import numpy as np
import pytest

from logitd import Client, LogitdError
from test_logprobs import log_softmax

VOCAB = 200


def rows(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 2.0, size=(count, VOCAB)).astype(np.float32)


def entropy(logprobs: np.ndarray) -> float:
    finite = np.isfinite(logprobs)
    return float(-(np.exp(logprobs[finite]) * logprobs[finite]).sum())


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_raw_scores_and_perplexity(daemon, dtype):
    x = rows(12, 1)
    if dtype == "f16":
        x = x.astype(np.float16)
    elif dtype == "bf16":
        x = (x.view(np.uint32) & 0xFFFF0000).view(np.float32)
    tokens = np.random.default_rng(2).integers(0, VOCAB, size=12)
    with Client(daemon.endpoint) as client:
        scored = client.score(x, tokens, dtype=dtype)
    values = x.astype(np.float64)
    reference = np.array([log_softmax(values[i])[t] for i, t in enumerate(tokens)])
    assert scored["logprob"] == pytest.approx(reference, abs=2e-5)
    assert np.array_equal(scored["logprob"], scored["raw_logprob"])
    assert list(scored["rank"]) == [int((values[i] >= values[i, t]).sum()) for i, t in enumerate(tokens)]
    assert scored["entropy"] == pytest.approx([entropy(log_softmax(r)) for r in values], rel=1e-5)
    assert np.exp(-scored["logprob"].mean()) == pytest.approx(np.exp(-reference.mean()), rel=1e-5)


def test_processors_see_the_prompt_and_the_observed_tokens_before_each_row(daemon):
    """Repetition penalty over prompt + earlier observed tokens, then temperature and top-k: row i's
    processed log-probability equals the float64 chain's with exactly that history."""
    x = rows(8, 3)
    prompt = [1, 2, 3]
    tokens = [int(np.argsort(-x[i])[i % 5]) for i in range(8)]
    tokens[5] = tokens[2]     # a repeated token, which the penalty sees
    with Client(daemon.endpoint) as client:
        scored = client.score(x, tokens, prompt_token_ids=prompt, repetition_penalty=1.8, temperature=0.8, top_k=10)
    for i, t in enumerate(tokens):
        edited = x[i].astype(np.float64)
        for seen in set(prompt + tokens[:i]):
            edited[seen] = edited[seen] * 1.8 if edited[seen] < 0 else edited[seen] / 1.8
        edited /= 0.8
        kept = edited >= np.sort(edited)[-10]
        processed = np.where(kept, edited, -np.inf)
        reference = log_softmax(processed)
        if np.isinf(reference[t]):
            assert scored["logprob"][i] == -np.inf
        else:
            assert scored["logprob"][i] == pytest.approx(reference[t], abs=2e-5)
        assert scored["raw_logprob"][i] == pytest.approx(log_softmax(x[i])[t], abs=2e-5)
        assert scored["entropy"][i] == pytest.approx(entropy(reference), rel=1e-4)


def test_a_mask_applies_to_every_score(daemon):
    x = rows(2, 4)
    allowed = np.zeros(VOCAB, dtype=bool)
    allowed[[3, 9, 40]] = True
    words = np.packbits(np.pad(allowed, (0, -VOCAB % 32)), bitorder="little").view("<u4")
    with Client(daemon.endpoint) as client:
        scored = client.score(x, [9, 5], mask=words)
    constrained = np.where(allowed, x[0].astype(np.float64), -np.inf)
    assert scored["logprob"][0] == pytest.approx(log_softmax(constrained)[9], abs=2e-5)
    assert scored["logprob"][1] == -np.inf and scored["raw_logprob"][1] == -np.inf
    assert scored["rank"][1] == VOCAB


def test_classify_against_float64(daemon):
    x = rows(5, 6)
    classes = [10, 20, 30]
    with Client(daemon.endpoint) as client:
        for temperature in (1.0, 0.5):
            probabilities, masses = client.classify(x, classes, temperature=temperature)
            scaled = x.astype(np.float64) / temperature
            for i in range(5):
                subset = scaled[i, classes]
                expected = np.exp(subset - subset.max())
                assert probabilities[i] == pytest.approx(expected / expected.sum(), abs=1e-6)
                assert masses[i] == pytest.approx(np.log(np.exp(log_softmax(scaled[i])[classes]).sum()), abs=1e-5)


def test_bad_score_and_classify_requests_are_named(daemon):
    x = rows(3, 7)
    with Client(daemon.endpoint) as client:
        cases = [
            (lambda: client.score(x, [1, 2]), "SIZE_MISMATCH", "the observed tokens frame has 8 bytes; 3 rows need 12"),
            (lambda: client.score(x, [1, VOCAB, 2]), "BAD_PARAMETERS", f"the observed token of row 1 is {VOCAB}"),
            (lambda: client.score(x, [1, 2, 3], temperature=0), "BAD_PARAMETERS", '"temperature" must be > 0'),
            (lambda: client.score(x, [1, 2, 3], beam_width=2), "BAD_PARAMETERS", 'unknown parameter "beam_width"'),
            (lambda: client.score(x, [1, 2, 3], prompt_token_ids=[-1]), "BAD_PARAMETERS", '"prompt_token_ids" holds -1'),
            (lambda: client.classify(x, []), "BAD_PARAMETERS", '"token_ids" is required'),
            (lambda: client.classify(x, [4, 4]), "BAD_PARAMETERS", "names a token twice"),
            (lambda: client.classify(x, [VOCAB]), "BAD_PARAMETERS", f'"token_ids" holds {VOCAB}'),
            (lambda: client.classify(x, [1], temperature=-1), "BAD_PARAMETERS", '"temperature" must be a finite number > 0'),
        ]
        for call, name, message in cases:
            with pytest.raises(LogitdError) as refused:
                call()
            assert refused.value.name == name and message in refused.value.message, (name, refused.value)
        masked = np.zeros((3, -(-VOCAB // 32)), dtype=np.uint32)
        masked[:, 0] = 1
        with pytest.raises(LogitdError) as refused:
            client.classify(x, [5, 6], mask=masked)
        assert refused.value.name == "NO_CANDIDATES" and "row 0" in refused.value.message
        assert client.score(x, [1, 2, 3])["rank"].shape == (3,)
