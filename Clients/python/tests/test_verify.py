"""VERIFY over the wire (docs/PROTOCOL.md, "VERIFY → VERIFIED"): speculative decoding against a real
daemon — plain greedy equivalence, the target distribution under sampling, the same tokens alone,
batched, on another daemon and after a recovery, and a named ERROR for every malformed draft."""

from __future__ import annotations

import functools
import struct

import numpy as np
import pytest

from conftest import raw_dealer
from logitd import VERIFY, Client, LogitdError, header

VOCAB = 12
K = 4


def target(prefix: list[int]) -> np.ndarray:
    """The target toy model: logits from a seeded hash of the prefix."""
    return _target(tuple(prefix))


def prefix_seed(salt: int, prefix: tuple[int, ...]) -> int:
    for token in prefix:
        salt = (salt * 1_000_003 + token + 1) % 2**32
    return salt


@functools.lru_cache(maxsize=None)
def _target(prefix: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(prefix_seed(7, prefix)).normal(0, 1.5, VOCAB).astype(np.float32)


def draft_q(prefix: list[int]) -> np.ndarray:
    """The draft toy model's distribution: a blurred copy of the target's softmax."""
    return _draft_q(tuple(prefix))


@functools.lru_cache(maxsize=None)
def _draft_q(prefix: tuple[int, ...]) -> np.ndarray:
    logits = 0.6 * _target(prefix) + np.random.default_rng(prefix_seed(99, prefix)).normal(0, 1, VOCAB)
    q = np.exp(logits - logits.max())
    return (q / q.sum()).astype(np.float32)


def propose(prefix: list[int], k: int, rng) -> tuple[list[int], np.ndarray, np.ndarray]:
    """k draft tokens sampled from the draft, their q rows, and the target's k + 1 rows."""
    tokens, qs = [], []
    for _ in range(k):
        q = draft_q(prefix + tokens)
        weights = q.astype(np.float64)
        tokens.append(int(rng.choice(VOCAB, p=weights / weights.sum())))
        qs.append(q)
    rows = np.stack([target(prefix + tokens[:i]) for i in range(k + 1)])
    return tokens, rows, np.stack(qs)


def run_verified(session, rng, k: int = K, use_q: bool = True) -> list[int]:
    """Generates the whole sequence 0 by VERIFY alone."""
    while not session.done:
        prefix = session.sequences[0]
        tokens, rows, qs = propose(prefix, k, rng)
        session.verify(tokens, rows, qs if use_q else None)
    return session.sequences[0]


def test_greedy_verification_equals_plain_greedy_through_the_daemon(daemon):
    parameters = dict(vocab_size=VOCAB, max_new_tokens=20, repetition_penalty=1.4, no_repeat_ngram_size=2)
    with Client(daemon.endpoint) as client:
        plain = client.open(**parameters)
        while not plain.done:
            plain.step(target(plain.sequences[0]))
        rng = np.random.default_rng(1)
        verified = client.open(**parameters)
        accepted = 0
        while not verified.done:
            prefix = verified.sequences[0]
            # A draft right for a random number of tokens, then wrong.
            right = [t for t in plain.sequences[0][len(prefix):len(prefix) + K]]
            good = int(rng.integers(0, K + 1))
            tokens = (right[:good] + [(t + 1) % VOCAB for t in right[good:]] + [0] * K)[:K]
            rows = np.stack([target(prefix + tokens[:i]) for i in range(K + 1)])
            result = verified.verify(tokens, rows)
            accepted += result.accepted
        assert verified.sequences == plain.sequences
        assert verified.result["sequences"][0]["tokens"] == plain.result["sequences"][0]["tokens"]
        assert accepted > 0


def test_sampled_tokens_follow_the_target_distribution(make_daemon):
    """20,000 verifications (k = 1 … 4) of seeded sessions: the first token is distributed as plain
    sampling from the processed target row (chi-square, p > 1e-3), and k = 1 accepts Σ min(p, q)."""
    temperature = 0.8
    p = np.exp(target([]).astype(np.float64) / temperature)
    p /= p.sum()
    rng = np.random.default_rng(2)
    counts = np.zeros(VOCAB)
    accepted = 0
    trials = 20_000
    per_session = 100  # sequences of one session are independent draws (seed, sequence, position)
    with Client(make_daemon().endpoint) as client:
        for trial in range(trials):
            if trial % per_session == 0:
                session = client.open(vocab_size=VOCAB, strategy="sample", seed=trial, n=per_session, temperature=temperature, max_new_tokens=6)
            k = 1 + trial % 4
            tokens, rows, qs = propose([], k, rng)
            result = session.verify(tokens, rows, qs, sequence=trial % per_session)
            counts[result.tokens[0]["token"]] += 1
            if k == 1:
                accepted += result.accepted
    expected = trials * p
    statistic = ((counts - expected) ** 2 / expected).sum()
    assert statistic < 31.26, (counts, expected)  # chi-square 0.999 quantile, 11 degrees of freedom
    q = draft_q([]).astype(np.float64)
    rate = np.minimum(p, q / q.sum()).sum()
    n = trials // 4
    assert abs(accepted - n * rate) < 4 * np.sqrt(n * rate * (1 - rate)) + 1


@pytest.mark.parametrize("use_q", [True, False], ids=["draft probabilities", "point mass"])
def test_the_same_seed_gives_the_same_tokens_alone_batched_on_another_daemon_and_after_recovery(make_daemon, use_q):
    parameters = dict(vocab_size=VOCAB, strategy="sample", seed=5, top_p=0.9, max_new_tokens=24, repetition_penalty=1.2)
    first, second = make_daemon(), make_daemon()
    with Client(first.endpoint) as a, Client(second.endpoint) as b:
        reference = run_verified(a.open(**parameters), np.random.default_rng(3), use_q=use_q)
        assert run_verified(b.open(**parameters), np.random.default_rng(3), use_q=use_q) == reference
        # Batched beside another session.
        batched, other = a.open(**parameters), a.open(**dict(parameters, seed=6))
        rng, other_rng = np.random.default_rng(3), np.random.default_rng(4)
        while not batched.done:
            entries = []
            for session, generator in [(batched, rng), (other, other_rng)]:
                if not session.done:
                    tokens, rows, qs = propose(session.sequences[0], K, generator)
                    entries.append((session, tokens, rows, qs if use_q else None))
            results = a.batch_verify(entries)
            assert not any(isinstance(r, Exception) for r in results), results
        assert batched.sequences[0] == reference
    # Recovery: the daemon dies mid-session; a new one continues from the history.
    third = make_daemon()
    with Client(third.endpoint) as c:
        session = c.open(**parameters)
        rng = np.random.default_rng(3)
        for _ in range(2):
            tokens, rows, qs = propose(session.sequences[0], K, rng)
            session.verify(tokens, rows, qs if use_q else None)
        third.process.kill()
        third.process.wait()
        make_daemon(endpoint=third.endpoint)
        assert run_verified(session, rng, use_q=use_q) == reference


def test_each_sequence_verifies_its_own_draft_and_steps_continue(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", seed=8, n=3, max_new_tokens=10)
        rng = np.random.default_rng(5)
        lengths = []
        for sequence in range(3):
            prefix = session.sequences[sequence]
            tokens, rows, qs = propose(prefix, 1 + sequence, rng)
            result = session.verify(tokens, rows, qs, sequence=sequence)
            assert result.sequence == sequence and all(r["sequence"] == sequence for r in result.tokens)
            lengths.append(len(session.sequences[sequence]))
        assert session.next_step == max(lengths)
        # A STEP then takes a row per unfinished sequence, each at its own position.
        live = [s for s, reason in enumerate(session.finished) if reason is None]
        result = session.step(np.stack([target(session.sequences[s]) for s in live]))
        assert [r["sequence"] for r in result.tokens] == live
        assert [len(s) for s in session.sequences] == [n + 1 for n in lengths]


def test_masks_constrain_every_position(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, max_new_tokens=10)
        allowed = np.zeros(VOCAB, dtype=bool)
        allowed[[2, 5, 7]] = True
        words = (allowed.astype(np.uint32) << np.arange(VOCAB, dtype=np.uint32)).sum().astype(np.uint32).reshape(1)
        tokens = [5, 2, 7]
        rows = np.stack([target(tokens[:i]) for i in range(4)])
        result = session.verify(tokens, rows, mask=words)
        assert all(allowed[r["token"]] for r in result.tokens)
        best = [int(np.flatnonzero(allowed)[np.argmax(row[allowed])]) for row in rows]
        expected = []
        for i, token in enumerate(tokens + [None]):
            expected.append(best[i])
            if token != best[i]:
                break
        assert [r["token"] for r in result.tokens] == expected


def test_sparse_targets_and_sparse_drafts(daemon):
    with Client(daemon.endpoint) as client:
        dense = client.open(vocab_size=VOCAB, strategy="sample", seed=9, max_new_tokens=8)
        sparse = client.open(vocab_size=VOCAB, strategy="sample", seed=9, max_new_tokens=8)
        tokens = [3, 4]
        rows = np.stack([target(tokens[:i]) for i in range(3)])
        ids = np.argsort(-rows, axis=1)[:, :6]
        values = np.take_along_axis(rows, ids, axis=1)
        masked = np.full_like(rows, -np.inf)
        np.put_along_axis(masked, ids, values, axis=1)
        q_ids = np.array([[3, 4, 1], [4, 3, 0]])
        q = np.array([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]], dtype=np.float32)
        dense_q = np.zeros((2, VOCAB), dtype=np.float32)
        np.put_along_axis(dense_q, q_ids, q, axis=1)
        from_dense = dense.verify(tokens, masked, dense_q).tokens
        from_sparse = _verify_sparse(sparse, tokens, ids, values, (q_ids, q)).tokens
        assert [t["token"] for t in from_dense] == [t["token"] for t in from_sparse]
        assert [t["logprob"] for t in from_dense] == pytest.approx([t["logprob"] for t in from_sparse], abs=1e-6)


def _verify_sparse(session, tokens, ids, values, draft):
    """VERIFY with sparse target rows: the descriptor's target layout 1 (not in the client's
    convenience API), built from the document."""
    from logitd import VERIFIED, VERIFY_DESCRIPTOR
    k = len(tokens)
    pairs = np.empty(ids.shape, dtype=[("token", "<u4"), ("logit", "<f4")])
    pairs["token"], pairs["logit"] = ids, values
    q_pairs = np.empty(draft[0].shape, dtype=[("token", "<u4"), ("prob", "<f4")])
    q_pairs["token"], q_pairs["prob"] = draft
    descriptor = VERIFY_DESCRIPTOR.pack(session.id, session.next_step, 0, 1, 1, 2, 0, k, ids.shape[1], draft[0].shape[1])
    body = session.client.request(VERIFY, [descriptor, np.asarray(tokens, "<u4").tobytes(), pairs.tobytes(), q_pairs.tobytes()], VERIFIED)
    return session._apply_verified(body)


BAD_DRAFTS = {
    "k = 0": (lambda rows, q: ([], rows[:1], None), "BAD_SHAPE", "k is 0"),
    "k above the limit": (lambda rows, q: ([1] * 33, np.repeat(rows[:1], 34, axis=0), None), "BAD_SHAPE", "between 1 and 32"),
    "k + 1 rows expected": (lambda rows, q: ([1, 2], rows[:2], None), "SIZE_MISMATCH", "target rows frame"),
    "token out of range": (lambda rows, q: ([1, VOCAB + 3], rows[:3], None), "BAD_DRAFT", f"draft token {VOCAB + 3} at position 1"),
    "negative q": (lambda rows, q: ([1, 2], rows[:3], np.where(np.arange(VOCAB) == 4, -0.1, q)), "BAD_DRAFT", "negative"),
    "NaN q": (lambda rows, q: ([1, 2], rows[:3], np.where(np.arange(VOCAB) == 4, np.nan, q)), "BAD_DRAFT", "NaN"),
    "q zero on the draft token": (lambda rows, q: ([1, 2], rows[:3], np.where(np.arange(VOCAB) == 2, 0, q) / np.where(np.arange(VOCAB) == 2, 0, q).sum(axis=1, keepdims=True)), "BAD_DRAFT", "token 2 has probability 0"),
    "q not summing to 1": (lambda rows, q: ([1, 2], rows[:3], q * 0.9), "BAD_DRAFT", "sum to"),
}


@pytest.mark.parametrize("case", list(BAD_DRAFTS))
def test_malformed_drafts_get_named_errors_and_change_nothing(daemon, case):
    build, name, mentions = BAD_DRAFTS[case]
    rows = np.stack([target([]) for _ in range(3)])
    q = np.full((2, VOCAB), 1 / VOCAB, dtype=np.float32)
    tokens, target_rows, probs = build(rows, q)
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", seed=1, max_new_tokens=8)
        if not tokens:  # k = 0: the client would send it; build the frames by hand
            from logitd import VERIFY_DESCRIPTOR
            with raw_dealer(daemon.endpoint) as sock:
                sock.send_multipart([header(VERIFY, 3), VERIFY_DESCRIPTOR.pack(session.id, 0, 0, 1, 0, 0, 0, 0, VOCAB, 0), b"",
                                     target_rows.tobytes(), b""])
                reply = sock.recv_multipart()
                assert reply[0][5] == 0xFF and struct.unpack_from("<I", reply[1])[0] == 8 and mentions.encode() in reply[1]
        else:
            with pytest.raises(LogitdError) as refused:
                session.verify(tokens, target_rows, None if probs is None else probs.astype(np.float32))
            assert refused.value.name == name and mentions in refused.value.message, refused.value
        assert session.next_step == 0 and session.sequences == [[]]
        assert len(session.verify([1], rows[:2]).tokens) >= 1  # the session carries on


def test_beam_sessions_finished_sequences_and_wrong_steps_are_refused(daemon):
    with Client(daemon.endpoint) as client:
        beam = client.open(vocab_size=VOCAB, strategy="beam", beam_width=2)
        with pytest.raises(LogitdError) as refused:
            beam.verify([1], np.stack([target([]), target([1])]))
        assert refused.value.name == "UNKNOWN_STRATEGY" and "beam search" in refused.value.message
        session = client.open(vocab_size=VOCAB, n=2, max_new_tokens=1)
        session.verify([1], np.stack([target([]), target([1])]), sequence=0)
        with pytest.raises(LogitdError) as finished:
            session.verify([1], np.stack([target([]), target([1])]), sequence=0)
        assert finished.value.name == "WRONG_STEP" and "has finished" in finished.value.message
        with pytest.raises(LogitdError) as unknown:
            session.verify([1], np.stack([target([]), target([1])]), sequence=5)
        assert unknown.value.name == "WRONG_STEP" and "names sequence 5" in unknown.value.message
        session.next_step += 3
        with pytest.raises(LogitdError) as wrong:
            session.verify([1], np.stack([target([]), target([1])]), sequence=1)
        assert wrong.value.name == "WRONG_STEP"


def test_the_speculative_example_accepts_drafts_and_follows_the_target(daemon):
    import pathlib
    import re
    import subprocess
    import sys
    example = pathlib.Path(__file__).resolve().parents[1] / "examples" / "speculative.py"
    run = subprocess.run([sys.executable, str(example), "--endpoint", daemon.endpoint, "--seeds", "400"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rate, per_pass = map(float, re.search(r"acceptance rate ([\d.]+), ([\d.]+) tokens per target pass", run.stdout).groups())
    assert 0.3 < rate < 1 and per_pass > 2
    statistics = [float(x) for x in re.findall(r"chi-square ([\d.]+) \(31 df\)", run.stdout)]
    assert len(statistics) == 2 and all(x < 61.1 for x in statistics), run.stdout  # 0.999 quantile, 31 df
