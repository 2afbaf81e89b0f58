"""Reported log-probabilities over the wire: each logprobs_mode against a float64 reference, the raw
rank, named tokens, the support as ids and as a mask, sparse rows, batches mixing sessions with and
without a details frame, and a named error for every bad option."""

from __future__ import annotations

import numpy as np
import pytest

from logitd import Client, LogitdError

VOCAB = 300
NAMED = [0, 5, 17, 42, 299]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x[np.isfinite(x)].max()
    return x - m - np.log(np.exp(x - m).sum())


def rows(step: int, count: int, dtype: str) -> np.ndarray:
    """Deterministic rows, rounded to what `dtype` carries (so the reference sees the daemon's values)."""
    rng = np.random.default_rng(1000 + step)
    x = rng.normal(0, 2.5, size=(count, VOCAB)).astype(np.float32)
    if dtype == "f16":
        return x.astype(np.float16)
    if dtype == "bf16":
        return (x.view(np.uint32) & 0xFFFF0000).view(np.float32)
    return x


def top_k_set(x: np.ndarray, k: int) -> np.ndarray:
    threshold = np.sort(x)[-k]
    return np.flatnonzero(x >= threshold)


def references(x: np.ndarray, temperature: float, k: int) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    kept = top_k_set(x, k)
    truncated = np.full_like(x, -np.inf)
    truncated[kept] = x[kept] / temperature
    return {"raw": log_softmax(x), "temperature": log_softmax(x / temperature), "processed": log_softmax(truncated)}


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
@pytest.mark.parametrize("mode", ["processed", "raw", "temperature"])
def test_every_mode_against_float64(daemon, mode, dtype):
    """Sampling with temperature 0.7 and top-k 20, n = 2, 6 steps: every record's log-probability,
    its alternatives and the named tokens' in `mode`; ranks in the raw row; support as ids."""
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", n=2, seed=11, temperature=0.7, top_k=20, max_new_tokens=6,
                              logprobs=3, logprobs_mode=mode, return_rank=True, logprob_token_ids=NAMED, return_support="ids")
        assert session.parameters["logprobs_mode"] == mode and session.parameters["return_support"] == "ids"
        step = 0
        while not session.done:
            x = rows(step, session.rows_expected, dtype)
            result = session.step(x, dtype=dtype)
            assert len(result.details) == len(result.tokens)
            for row, record, alternatives, details in zip(x, result.tokens, result.alternatives, result.details):
                values = np.asarray(row, dtype=np.float64)
                reference = references(values, 0.7, 20)[mode]
                token = record["token"]
                assert record["logprob"] == pytest.approx(reference[token], rel=2e-4, abs=2e-4)
                assert details["rank"] == int((values >= values[token]).sum())
                for named, logprob in details["token_logprobs"].items():
                    if np.isinf(reference[named]):
                        assert logprob == -np.inf
                    else:
                        assert logprob == pytest.approx(reference[named], rel=2e-4, abs=2e-4)
                assert list(details["support"]) == list(top_k_set(values, 20))
                order = sorted(range(VOCAB), key=lambda t: (-reference[t], t))[:3]
                assert [t for t, _ in alternatives] == order
            step += 1


def test_support_as_mask_and_greedy_temperature_mode(daemon):
    """Greedy with a repetition penalty: "temperature" mode is the edited row (no warpers run), the
    support is every token the edits left, as a mask in the documented layout."""
    prompt = [3, 4, 5]
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, prompt_token_ids=prompt, repetition_penalty=2.0, banned_token_ids=[7],
                              max_new_tokens=3, logprobs_mode="temperature", return_support="mask")
        x = rows(0, 1, "f32")[0]
        result = session.step(x)
        edited = x.astype(np.float64)
        for t in prompt:
            edited[t] = edited[t] * 2 if edited[t] < 0 else edited[t] / 2
        edited[7] = -np.inf
        token = result.tokens[0]["token"]
        assert token == int(np.argmax(edited))
        assert result.tokens[0]["logprob"] == pytest.approx(log_softmax(edited)[token], abs=2e-5)
        allowed = np.ones(VOCAB, dtype=bool)
        allowed[7] = False
        details = result.details[0]
        padded = np.zeros(-(-VOCAB // 32) * 32, dtype=bool)
        padded[:VOCAB] = allowed
        assert np.array_equal(details["support_mask"], np.packbits(padded, bitorder="little").view("<u4"))
        assert list(details["support"]) == [t for t in range(VOCAB) if t != 7]


def test_sparse_rows_report_like_dense_rows(daemon):
    """A top-40 sparse row reports what the dense row with -inf elsewhere reports, in raw mode."""
    x = rows(5, 1, "f32")[0]
    top = np.argsort(-x, kind="stable")[:40]
    dense = np.full(VOCAB, -np.inf, dtype=np.float32)
    dense[top] = x[top]
    options = dict(vocab_size=VOCAB, strategy="sample", seed=3, top_p=0.8, max_new_tokens=2, logprobs=2, logprobs_mode="raw",
                   return_rank=True, logprob_token_ids=[int(top[0]), int(top[39]), 1], return_support="ids")
    with Client(daemon.endpoint) as client:
        a = client.open(**options).step(dense)
        b = client.open(**options).step_sparse(top[None, :], x[top][None, :])
    assert a.tokens[0]["token"] == b.tokens[0]["token"]
    assert b.tokens[0]["logprob"] == pytest.approx(a.tokens[0]["logprob"], abs=1e-5)
    assert a.details[0]["rank"] == b.details[0]["rank"]
    assert list(a.details[0]["support"]) == list(b.details[0]["support"])
    assert b.details[0]["token_logprobs"][1] == -np.inf
    for t in (int(top[0]), int(top[39])):
        assert b.details[0]["token_logprobs"][t] == pytest.approx(a.details[0]["token_logprobs"][t], abs=1e-5)
    assert [t for t, _ in a.alternatives[0]] == [t for t, _ in b.alternatives[0]]
    assert [lp for _, lp in a.alternatives[0]] == pytest.approx([lp for _, lp in b.alternatives[0]], abs=1e-5)


def test_batches_mix_sessions_with_and_without_details(daemon):
    """BATCH STEP over three sessions — plain, with details, plain — each entry read with its own
    number of frames, the results those of single STEPs."""
    x = rows(9, 3, "f32")
    with Client(daemon.endpoint) as client:
        def sessions():
            return [client.open(vocab_size=VOCAB, max_new_tokens=2),
                    client.open(vocab_size=VOCAB, max_new_tokens=2, return_rank=True, logprob_token_ids=[1, 2]),
                    client.open(vocab_size=VOCAB, max_new_tokens=2, logprobs=1)]
        batched = client.batch_step([(s, x[i]) for i, s in enumerate(sessions())])
        single = [s.step(x[i]) for i, s in enumerate(sessions())]
    for a, b in zip(batched, single):
        assert a.tokens == b.tokens and a.details == b.details and a.alternatives == b.alternatives
    assert batched[1].details[0]["rank"] == 1 and set(batched[1].details[0]["token_logprobs"]) == {1, 2}
    assert batched[0].details == [] and batched[2].details == []


def test_bad_report_options_are_named(daemon):
    with Client(daemon.endpoint) as client:
        limit = client.hello()["limits"]["max_logprob_token_ids"]
        assert limit == 256
        cases = [
            (dict(logprobs_mode="logits"), '"logprobs_mode" is "logits"; known: processed, raw, temperature'),
            (dict(return_rank=1), '"return_rank" must be true or false'),
            (dict(return_support="bits"), '"return_support" must be false, "ids" or "mask"'),
            (dict(logprob_token_ids=[3, VOCAB]), f'"logprob_token_ids" holds {VOCAB}; token ids must be below vocab_size'),
            (dict(logprob_token_ids=[0] * (limit + 1)), f'"logprob_token_ids" is {limit + 1}; the limit is max_logprob_token_ids = {limit}'),
            (dict(strategy="beam", logprobs_mode="raw"), 'are for greedy and sample sessions'),
            (dict(strategy="beam", return_rank=True), 'are for greedy and sample sessions'),
        ]
        for options, message in cases:
            with pytest.raises(LogitdError) as refused:
                client.open(vocab_size=VOCAB, **options)
            assert refused.value.name == "BAD_PARAMETERS" and message in refused.value.message, options
        client.open(vocab_size=VOCAB, logprob_token_ids=[0] * limit)


def test_verify_refuses_details_sessions_and_leaves_them_unchanged(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, logprobs_mode="raw", max_new_tokens=4)
        x = rows(2, 3, "f32")
        with pytest.raises(LogitdError) as refused:
            session.verify([1, 2], x)
        assert refused.value.name == "BAD_PARAMETERS" and "VERIFY reports processed log-probabilities only" in refused.value.message
        result = session.step(x[0])
        assert result.step == 0 and result.tokens[0]["token"] == int(np.argmax(x[0]))
        assert result.tokens[0]["logprob"] == pytest.approx(log_softmax(x[0])[int(np.argmax(x[0]))], abs=2e-5)


def test_a_top_k_frame_with_its_log_sum_exp_gives_exact_raw_log_probabilities(daemon):
    """Layout 2: the full row's log Σ exp travels with its top 30; raw-mode records, alternatives and
    named tokens equal the full row's log-softmax, where layout 1 renormalises over the 30. The same
    token is chosen either way."""
    x = rows(11, 1, "f32")[0].astype(np.float64)
    top = np.argsort(-x, kind="stable")[:30]
    lse = float(x.max() + np.log(np.exp(x - x.max()).sum()))
    full = log_softmax(x)
    options = dict(vocab_size=VOCAB, strategy="sample", seed=8, top_k=10, max_new_tokens=2, logprobs=3, logprobs_mode="raw",
                   logprob_token_ids=[int(top[5])])
    with Client(daemon.endpoint) as client:
        exact = client.open(**options).step_sparse(top[None, :], x[top][None, :].astype(np.float32), log_normalisers=[lse])
        renormalised = client.open(**options).step_sparse(top[None, :], x[top][None, :].astype(np.float32))
        session = client.open(**options)
        for bad, message in ((np.inf, "must be finite"), (lse - 1.0, "is below its own candidates'")):
            with pytest.raises(LogitdError) as refused:
                session.step_sparse(top[None, :], x[top][None, :].astype(np.float32), log_normalisers=[bad])
            assert refused.value.name == "INVALID_LOGITS" and message in refused.value.message
        assert session.step_sparse(top[None, :], x[top][None, :].astype(np.float32), log_normalisers=[lse]).step == 0
    token = exact.tokens[0]["token"]
    assert token == renormalised.tokens[0]["token"]
    assert exact.tokens[0]["logprob"] == pytest.approx(full[token], abs=2e-5)
    assert renormalised.tokens[0]["logprob"] == pytest.approx(log_softmax(x[top])[list(top).index(token)], abs=2e-5)
    assert exact.tokens[0]["logprob"] < renormalised.tokens[0]["logprob"]
    assert [t for t, _ in exact.alternatives[0]] == [int(t) for t in top[:3]]
    assert [lp for _, lp in exact.alternatives[0]] == pytest.approx(full[top[:3]], abs=2e-5)
    assert exact.details[0]["token_logprobs"][int(top[5])] == pytest.approx(full[top[5]], abs=2e-5)
