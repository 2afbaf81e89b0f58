"""Decoding sessions over the wire: greedy, sampling and beam search, ordering, errors."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest
import zmq

from conftest import raw_dealer
from logitd import CLOSE, CLOSED, STEP, STEP_DESCRIPTOR, STEP_TOKENS, Client, LogitdError, header

VOCAB = 50
EOS = 0


def toy_logits(prefix: list[int], vocab: int = VOCAB) -> np.ndarray:
    """A toy language model: logits that depend on the whole prefix."""
    seed = 17
    for token in prefix:
        seed = (seed * 1_000_003 + token + 1) % (2**32)
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, size=vocab).astype(np.float32)
    logits[EOS] -= 3 - 0.5 * len(prefix)  # EOS grows likelier as the text gets longer
    return logits


def rows_for(session) -> np.ndarray:
    if session.strategy == "beam":
        return np.stack([toy_logits(prefix) for prefix in session.live_prefixes])
    return np.stack([toy_logits(tokens) for tokens, reason in zip(session.sequences, session.finished) if reason is None])


def run(session):
    return list(session.events(rows_for))


def test_greedy_session_follows_the_argmax(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, max_new_tokens=12, eos_token_ids=[EOS])
        assert session.parameters["strategy"] == "greedy"
        assert session.parameters["top_k"] == 0 and session.parameters["max_new_tokens"] == 12
        expected: list[int] = []
        for event in session.events(rows_for):
            token = event.tokens[0]["token"]
            assert token == int(np.argmax(toy_logits(expected)))
            expected.append(token)
        assert session.done
        final = session.result["sequences"][0]
        assert final["tokens"] == expected
        assert final["finish_reason"] in ("eos", "max_tokens")
        assert (final["finish_reason"] == "eos") == (expected[-1] == EOS)


def test_logprobs_and_alternatives(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, max_new_tokens=2, logprobs=3)
        event = session.step(toy_logits([]))
        logits = toy_logits([]).astype(np.float64)
        reference = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        top = np.argsort(-reference, kind="stable")[:3]
        assert [t for t, _ in event.alternatives[0]] == top.tolist()
        np.testing.assert_allclose([lp for _, lp in event.alternatives[0]], reference[top], atol=1e-5)
        assert event.tokens[0]["logprob"] == pytest.approx(reference[top[0]], abs=1e-5)


def test_sampling_is_reproducible_from_the_seed(daemon):
    with Client(daemon.endpoint) as client:
        def sample(seed):
            session = client.open(vocab_size=VOCAB, strategy="sample", seed=seed, n=3, max_new_tokens=10,
                                  temperature=1.2, top_p=0.95, eos_token_ids=[EOS])
            assert session.seed == seed
            run(session)
            return session.sequences
        first, again, other = sample(1234), sample(1234), sample(4321)
        assert first == again
        assert first != other
        assert len({tuple(s) for s in first}) > 1, "three parallel samples differ"
        unseeded = client.open(vocab_size=VOCAB, strategy="sample")
        assert isinstance(unseeded.seed, int) and unseeded.parameters["seed"] == unseeded.seed


def test_beam_session_returns_ranked_hypotheses(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="beam", beam_width=3, num_return=3, max_new_tokens=8,
                              eos_token_ids=[EOS], length_penalty=1.0)
        events = run(session)
        assert events[0].kind == "beams" and len(events[0].beams) == 3
        assert all(b["parent"] == 0 for b in events[0].beams), "the first step starts from one beam"
        prefixes = [e.stable_prefix_length for e in events]
        assert prefixes == sorted(prefixes)
        hypotheses = session.result["sequences"]
        assert len(hypotheses) == 3
        scores = [h["score"] for h in hypotheses]
        assert scores == sorted(scores, reverse=True)
        for h in hypotheses:
            # The score is the summed log-probability over the length, recomputed from the toy model.
            total = 0.0
            for i, token in enumerate(h["tokens"]):
                logits = toy_logits(h["tokens"][:i]).astype(np.float64)
                total += logits[token] - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
            assert h["logprob_sum"] == pytest.approx(total, abs=1e-4)
            assert h["score"] == pytest.approx(total / len(h["tokens"]), abs=1e-4)


def test_pipelined_steps_are_decoded_in_order(make_daemon):
    daemon = make_daemon(workers=2)
    with Client(daemon.endpoint) as client, raw_dealer(daemon.endpoint) as sock:
        session = client.open(vocab_size=VOCAB, max_new_tokens=30)
        for step in range(30):
            row = np.zeros(VOCAB, dtype=np.float32)
            row[step % VOCAB] = 1
            sock.send_multipart([header(STEP, step), STEP_DESCRIPTOR.pack(session.id, step, 1, 0, 0, 1, VOCAB), row.tobytes()])
        for expected in range(30):
            assert sock.poll(10000)
            frames = sock.recv_multipart()
            msg_type, request_id = frames[0][5], struct.unpack_from("<Q", frames[0], 8)[0]
            assert msg_type in (STEP_TOKENS, 0x9F), frames[1][4:]
            assert request_id == expected
            token = struct.unpack_from("<I", frames[2], 4)[0]
            assert token == expected % VOCAB


def test_pipelined_steps_keep_their_order_between_broker_and_workers(make_daemon):
    """Dense rows of 8,192 logits (32 KB) go to a worker; sparse rows of 4 candidates and CLOSE are
    small enough for the broker to answer itself. Pipelined in one session, they still run in order."""
    daemon = make_daemon(workers=2)
    vocab = 8192
    with Client(daemon.endpoint) as client, raw_dealer(daemon.endpoint) as sock:
        session = client.open(vocab_size=vocab, max_new_tokens=40)
        for step in range(20):
            target = (step * 37) % vocab
            if step % 2 == 0:
                row = np.zeros(vocab, dtype=np.float32)
                row[target] = 1
                sock.send_multipart([header(STEP, step), STEP_DESCRIPTOR.pack(session.id, step, 1, 0, 0, 1, vocab), row.tobytes()])
            else:
                pairs = np.array([(target, 2.0), (1, 1.0), (2, 0.5), (3, 0.0)], dtype=[("token", "<u4"), ("logit", "<f4")])
                sock.send_multipart([header(STEP, step), STEP_DESCRIPTOR.pack(session.id, step, 1, 1, 0, 1, 4), pairs.tobytes()])
        sock.send_multipart([header(CLOSE, 20), struct.pack("<Q", session.id)])
        for expected in range(20):
            assert sock.poll(10000)
            frames = sock.recv_multipart()
            assert frames[0][5] == STEP_TOKENS, frames[1][4:]
            assert struct.unpack_from("<Q", frames[0], 8)[0] == expected
            assert struct.unpack_from("<I", frames[2], 4)[0] == (expected * 37) % vocab
        assert sock.poll(10000)
        closed = sock.recv_multipart()
        assert closed[0][5] == CLOSED and struct.unpack_from("<Q", closed[0], 8)[0] == 20


def test_session_errors_name_the_problem(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, max_new_tokens=3)
        session.next_step = 1
        with pytest.raises(LogitdError) as wrong:
            session.step(toy_logits([]))
        assert wrong.value.name == "WRONG_STEP" and "expects step 0" in wrong.value.message
        session.next_step = 0
        session.step(toy_logits([]))  # the refused step changed nothing
        with pytest.raises(LogitdError) as rows:
            session.step(np.stack([toy_logits([]), toy_logits([])]))
        assert rows.value.name == "WRONG_STEP" and "2 rows" in rows.value.message
        with pytest.raises(LogitdError) as vocab:
            session.step(np.zeros(VOCAB + 1, dtype=np.float32))
        assert vocab.value.name == "BAD_SHAPE"
        closed = session.close()
        assert closed["steps"] == 1 and len(closed["sequences"][0]["tokens"]) == 1
        with pytest.raises(LogitdError) as after:
            session.step(toy_logits([]))
        assert after.value.name == "SESSION_CLOSED"

        finished = client.open(vocab_size=VOCAB, max_new_tokens=1)
        finished.step(toy_logits([]))
        assert finished.done
        finished.done = False
        with pytest.raises(LogitdError) as done:
            finished.step(toy_logits([]))
        assert done.value.name == "SESSION_CLOSED" and "finished" in done.value.message

        ghost = client.open(vocab_size=VOCAB)
        ghost.id = 12345
        ghost.auto_recover = False
        with pytest.raises(LogitdError) as unknown:
            ghost.step(toy_logits([]))
        assert unknown.value.name == "UNKNOWN_SESSION"


def test_idle_sessions_expire(make_daemon, tmp_path):
    config = tmp_path / "ttl.toml"
    config.write_text("[sessions]\nttl_ms = 300\n")
    daemon = make_daemon(extra=["--config", str(config)])
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB)
        session.step(toy_logits([]))
        time.sleep(1.5)
        with pytest.raises(LogitdError) as error:
            session.step(toy_logits(session.sequences[0]))
        assert error.value.name == "SESSION_EXPIRED"


def test_too_many_sessions(make_daemon, tmp_path):
    config = tmp_path / "few.toml"
    config.write_text("[sessions]\nmax_sessions = 2\n")
    daemon = make_daemon(extra=["--config", str(config)])
    with Client(daemon.endpoint) as client:
        first = client.open(vocab_size=VOCAB)
        client.open(vocab_size=VOCAB)
        with pytest.raises(LogitdError) as error:
            client.open(vocab_size=VOCAB)
        assert error.value.name == "TOO_MANY_SESSIONS"
        first.close()
        client.open(vocab_size=VOCAB)  # a closed session frees its place


@pytest.mark.parametrize("parameters", [
    dict(strategy="sample", n=2, seed=5, top_p=0.9, temperature=1.1, max_new_tokens=14, eos_token_ids=[EOS]),
    dict(strategy="beam", beam_width=3, num_return=3, max_new_tokens=10, eos_token_ids=[EOS], early_stopping="never"),
    dict(strategy="sample", n=2, seed=8, mirostat_tau=2.0, mirostat_eta=0.3, xtc_probability=0.5, xtc_threshold=0.05,
         max_new_tokens=14, eos_token_ids=[EOS]),
], ids=["sample", "beam", "mirostat-xtc"])
def test_recovery_after_a_daemon_restart_is_token_identical(make_daemon, parameters):
    reference_daemon = make_daemon()
    with Client(reference_daemon.endpoint) as client:
        reference = client.open(vocab_size=VOCAB, **parameters)
        run(reference)

    first = make_daemon()
    endpoint = first.endpoint
    with Client(endpoint, timeout=10) as client:
        session = client.open(vocab_size=VOCAB, **parameters)
        for _ in range(4):
            session.step(rows_for(session))
        first.process.kill()          # no goodbye: the daemon dies mid-session
        first.process.wait()
        make_daemon(endpoint=endpoint)  # a new daemon that never saw the session
        run(session)                    # UNKNOWN_SESSION → re-opened from history → continues
    assert session.result["sequences"] == reference.result["sequences"]
    assert session.sequences == reference.sequences


BATCH_SETUPS = [
    dict(strategy="greedy", max_new_tokens=9, eos_token_ids=[EOS]),
    dict(strategy="sample", seed=11, n=2, top_k=10, max_new_tokens=9, eos_token_ids=[EOS]),
    dict(strategy="beam", beam_width=3, num_return=2, max_new_tokens=9, eos_token_ids=[EOS]),
    dict(strategy="sample", seed=12, temperature=0.7, max_new_tokens=6),
]


def test_batched_steps_decode_like_single_steps(make_daemon):
    daemon = make_daemon(workers=2)
    with Client(daemon.endpoint) as client:
        single = [client.open(vocab_size=VOCAB, **setup) for setup in BATCH_SETUPS]
        for session in single:
            run(session)
        batched = [client.open(vocab_size=VOCAB, **setup) for setup in BATCH_SETUPS]
        while any(not s.done for s in batched):
            live = [s for s in batched if not s.done]
            for result in client.batch_step([(s, rows_for(s)) for s in live]):
                assert not isinstance(result, LogitdError), result
        for a, b in zip(single, batched):
            assert a.result["sequences"] == b.result["sequences"]


def test_a_refused_batch_entry_does_not_stop_the_others(daemon):
    with Client(daemon.endpoint) as client:
        good = client.open(vocab_size=VOCAB, max_new_tokens=5)
        bad = client.open(vocab_size=VOCAB, max_new_tokens=5)
        bad.next_step = 3
        results = client.batch_step([(good, rows_for(good)), (bad, rows_for(bad))])
        assert not isinstance(results[0], LogitdError)
        assert results[0].tokens[0]["token"] == int(np.argmax(toy_logits([])))
        assert isinstance(results[1], LogitdError) and results[1].name == "WRONG_STEP"
        with pytest.raises(LogitdError) as twice:
            client.batch_step([(good, rows_for(good)), (good, rows_for(good))])
        assert twice.value.name == "BAD_DESCRIPTOR" and "twice" in twice.value.message


@pytest.mark.parametrize("setup", BATCH_SETUPS[:3], ids=["greedy", "sample", "beam"])
def test_sparse_rows_equal_dense_rows_masked_outside_the_candidates(daemon, setup):
    k = 12

    def top_k(logits: np.ndarray):
        order = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(logits, order, axis=1)

    def masked(logits: np.ndarray) -> np.ndarray:
        tokens, values = top_k(logits)
        dense = np.full_like(logits, -np.inf)
        np.put_along_axis(dense, tokens, values, axis=1)
        return dense

    with Client(daemon.endpoint) as client:
        dense = client.open(vocab_size=VOCAB, **setup)
        sparse = client.open(vocab_size=VOCAB, **setup)
        while not dense.done:
            dense.step(masked(rows_for(dense)))
            tokens, values = top_k(rows_for(sparse))
            sparse.step_sparse(tokens, values)
        assert sparse.done
        # The same tokens; greedy and sampling decode the candidates without building the dense row,
        # so log-probabilities agree to float32 precision rather than bit for bit.
        for a, b in zip(sparse.result["sequences"], dense.result["sequences"]):
            assert (a["tokens"], a["finish_reason"]) == (b["tokens"], b["finish_reason"])
            assert a["logprob_sum"] == pytest.approx(b["logprob_sum"], rel=1e-5)


def test_bad_sparse_rows_are_refused(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB)
        with pytest.raises(LogitdError) as out_of_range:
            session.step_sparse(np.array([[1, VOCAB]]), np.array([[0.5, 1.0]]))
        assert out_of_range.value.name == "INVALID_LOGITS" and "outside the vocabulary" in out_of_range.value.message
        with pytest.raises(LogitdError) as repeated:
            session.step_sparse(np.array([[3, 3]]), np.array([[0.5, 1.0]]))
        assert repeated.value.name == "INVALID_LOGITS" and "twice" in repeated.value.message
        event = session.step_sparse(np.array([[7, 3]]), np.array([[0.5, 1.0]]))
        assert event.tokens[0]["token"] == 3


def test_token_tap_publishes_every_step(make_daemon):
    from conftest import unique_endpoint
    tap_endpoint = unique_endpoint("ipc")
    daemon = make_daemon(extra=["--token-tap", tap_endpoint])
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, strategy="sample", seed=9, n=2, max_new_tokens=8)
        follower = zmq.Context.instance().socket(zmq.SUB)
        follower.setsockopt(zmq.LINGER, 0)
        follower.setsockopt(zmq.SUBSCRIBE, struct.pack("<Q", session.id))
        follower.connect(tap_endpoint)
        other = client.open(vocab_size=VOCAB, max_new_tokens=3)  # not subscribed to
        # A subscription takes a moment to reach the publisher (ZeroMQ's slow joiner).
        time.sleep(0.3)
        run(other)
        run(session)
        seen: dict[int, list[int]] = {0: [], 1: []}
        while follower.poll(1000):
            session_id, summary, records = follower.recv_multipart()
            assert struct.unpack("<Q", session_id)[0] == session.id
            for record in np.frombuffer(records, dtype=[("sequence", "<u4"), ("token", "<u4"), ("logprob", "<f4"), ("finish", "u1"), ("pad", "V3")]):
                seen[int(record["sequence"])].append(int(record["token"]))
        follower.close()
    assert seen == {0: session.sequences[0], 1: session.sequences[1]}


def resident_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("ending", ["close", "expire"])
def test_memory_returns_to_baseline_after_sessions_end(make_daemon, tmp_path, ending):
    prompt = list(range(VOCAB)) * 40  # 2,000 tokens of state per session
    count = 2000
    ttl_ms = 60000
    if ending == "expire":
        # The TTL must outlast opening them all, which takes seconds on a slow machine: time a
        # few opens on a probe daemon first.
        with Client(make_daemon().endpoint) as probe:
            started = time.monotonic()
            for _ in range(50):
                probe.open(vocab_size=VOCAB, prompt_token_ids=prompt)
            ttl_ms = int(3000 + 2 * (time.monotonic() - started) * count / 50 * 1000)
    config = tmp_path / "ttl.toml"
    config.write_text(f"[sessions]\nttl_ms = {ttl_ms}\n")
    daemon = make_daemon(extra=["--config", str(config)])
    pid = daemon.process.pid
    with Client(daemon.endpoint) as client:
        client.open(vocab_size=VOCAB).close()
        baseline = resident_mb(pid)
        sessions = [client.open(vocab_size=VOCAB, prompt_token_ids=prompt) for _ in range(count)]
        peak = resident_mb(pid)
        assert peak > baseline + 10, "the sessions take memory while open"
        if ending == "close":
            for session in sessions:
                session.close()
        deadline = time.monotonic() + 10 + (ttl_ms / 1000 if ending == "expire" else 0)
        while resident_mb(pid) > baseline + 8 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert resident_mb(pid) <= baseline + 8, f"baseline {baseline:.1f} MB, peak {peak:.1f} MB, now {resident_mb(pid):.1f} MB"
        assert client.open(vocab_size=VOCAB)  # and the daemon serves on
