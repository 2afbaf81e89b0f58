"""Points a client written from docs/PROTOCOL.md alone found, each checked over the wire: WELCOME
publishes the session limits, prompts may hold ids past vocab_size, CLOSED reports running
sequences with finish_reason null, parameter errors name the request key, and a closed session's id
never answers UNKNOWN_SESSION (so a stale client never re-opens it)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from logitd import Client, LogitdError

VOCAB = 40


def test_welcome_publishes_the_session_limits(make_daemon, tmp_path):
    config = tmp_path / "logitd.toml"
    config.write_text("[sessions]\nttl_ms = 1234\nmax_sessions = 77\n")
    daemon = make_daemon(extra=["--config", str(config)])
    with Client(daemon.endpoint) as client:
        limits = client.hello()["limits"]
    assert limits["session_ttl_ms"] == 1234 and limits["max_sessions"] == 77
    assert limits["max_rows"] > 0


def test_prompt_ids_past_vocab_size_are_accepted_and_ignored_by_row_rules(daemon):
    """transformers accepts them (special tokens past the model's rows); the repetition penalty,
    the n-gram ban and DRY read the row only for ids it has."""
    x = np.linspace(-1, 1, VOCAB).astype(np.float32)
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, prompt_token_ids=[5, 50_000, 39, 50_000, 39], repetition_penalty=1.5,
                              no_repeat_ngram_size=2, dry_multiplier=1.0, max_new_tokens=2)
        assert session.parameters["prompt_token_ids"] == [5, 50_000, 39, 50_000, 39]
        result = session.step(x)
    # 39, the best logit (1.0), is in the prompt: the penalty leaves it 1/1.5, below 38's 0.95. The
    # 2-gram rule and DRY would act on 50000 (what followed 39 before), which has no logit.
    assert result.tokens[0]["token"] == 38
    with Client(daemon.endpoint) as client, pytest.raises(LogitdError) as refused:
        client.open(vocab_size=VOCAB, prompt_token_ids=[-3])
    assert refused.value.name == "BAD_PARAMETERS" and "prompt_token_ids" in refused.value.message


def test_closed_reports_running_sequences_with_finish_reason_null(daemon):
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=VOCAB, n=2, strategy="sample", seed=1, max_new_tokens=5)
        session.step(np.zeros((2, VOCAB), np.float32))
        closed = session.close()
    assert [s["finish_reason"] for s in closed["sequences"]] == [None, None]
    assert all("finish_reason" in s for s in closed["sequences"])


def test_errors_name_the_request_keys(daemon):
    with Client(daemon.endpoint) as client:
        for options, key in ((dict(allowed_token_ids=[]), '"allowed_token_ids"'), (dict(banned_token_ids=[VOCAB]), '"banned_token_ids"')):
            with pytest.raises(LogitdError) as refused:
                client.open(vocab_size=VOCAB, **options)
            assert refused.value.message.startswith(key), refused.value.message


def test_a_closed_session_never_answers_unknown_session(daemon):
    """A closed session answers SESSION_CLOSED — also once the daemon has forgotten why, which
    LogitdServerTests check with a small memory — so the client's auto-recovery (on UNKNOWN_SESSION
    only) never re-opens a session its owner closed; an id the daemon never issued is unknown."""
    with Client(daemon.endpoint) as client:
        first = client.open(vocab_size=VOCAB, max_new_tokens=3)
        first.close()
        first.done = False
        with pytest.raises(LogitdError) as refused:
            first.step(np.zeros(VOCAB, np.float32))
        assert refused.value.name == "SESSION_CLOSED"
        assert json.dumps(first.history())  # the session still has its history; it was not re-opened
        with pytest.raises(LogitdError) as unknown:
            client.request(0x13, [(2**61 + 12345).to_bytes(8, "little")], 0x93)
        assert unknown.value.name == "UNKNOWN_SESSION"


def test_kept_beam_hypotheses_name_the_row_they_continue(daemon):
    """Each hypothesis a beam step keeps carries `parent`: its tokens are that row's prefix plus the
    token that ended it."""
    from test_sessions import EOS, VOCAB as SESSION_VOCAB, rows_for
    seen = 0
    with Client(daemon.endpoint) as client:
        session = client.open(vocab_size=SESSION_VOCAB, strategy="beam", beam_width=4, num_return=4, max_new_tokens=10,
                              eos_token_ids=[EOS], early_stopping="never")
        while not session.done:
            prefixes = [list(p) for p in session.live_prefixes]
            result = session.step(rows_for(session))
            for hypothesis in result.finished:
                seen += 1
                assert 0 <= hypothesis["parent"] < len(prefixes)
                assert hypothesis["tokens"][:-1] == prefixes[hypothesis["parent"]]
    assert seen > 0, "the toy model must finish some hypotheses before the end"


def test_a_flood_of_malformed_messages_writes_a_few_log_lines(make_daemon):
    """10,000 messages with a bad magic each get their ERROR, but the log holds at most five lines a
    second for the cause and then one summary with the count of the rest."""
    import re
    import struct
    import time

    from conftest import raw_dealer
    daemon = make_daemon(transport="ipc")
    count = 10_000
    start = time.monotonic()
    replies = 0
    with raw_dealer(daemon.endpoint) as sock:
        # In batches below the daemon's send high-water mark, which a ROUTER enforces by dropping.
        for batch in range(0, count, 500):
            for index in range(batch, batch + 500):
                sock.send_multipart([struct.pack("<4sBBHQ", b"XXXX", 1, 0x01, 0, index)])
            for _ in range(500):
                if not sock.poll(5000):
                    break
                sock.recv_multipart()
                replies += 1
    assert replies == count, "every malformed message still gets its ERROR"
    elapsed = time.monotonic() - start
    time.sleep(1.5)                      # the broker's once-a-second summary
    log = daemon.stderr()
    lines = [line for line in log.splitlines() if "refused request" in line and "BAD_MAGIC" in line and "not logged" not in line]
    assert len(lines) <= 5 * (int(elapsed) + 2), f"{len(lines)} lines in {elapsed:.1f} s"
    summarised = sum(int(n) for n in re.findall(r"count=(\d+)[^\n]*error=BAD_MAGIC|error=BAD_MAGIC[^\n]*count=(\d+)", log) for n in n if n)
    assert len(lines) + summarised == count
