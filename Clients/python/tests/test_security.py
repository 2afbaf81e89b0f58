"""CURVE over real tcp: keys from `logitd keygen`, a ZAP handler admitting only authorized keys,
sessions owned by the key that opened them, and the refusal to bind beyond loopback without keys."""

from __future__ import annotations

import os
import stat
import subprocess

import numpy as np
import pytest

from conftest import binary, free_port
from logitd import Client, LogitdError, LogitdTimeout, read_key

VOCAB = 30


@pytest.fixture
def keys(tmp_path):
    """A server pair, clients A and B (authorized), and C (not)."""
    pairs = {}
    (tmp_path / "authorized").mkdir()
    for name in ("server", "a", "b", "c"):
        subprocess.run([binary(), "keygen", "--out", str(tmp_path / name)], check=True, capture_output=True)
        pairs[name] = (read_key(str(tmp_path / f"{name}.pub")), read_key(str(tmp_path / f"{name}.key")))
    for name in ("a", "b"):
        (tmp_path / "authorized" / f"{name}.pub").write_text((tmp_path / f"{name}.pub").read_text())
    config = tmp_path / "logitd.toml"
    config.write_text('[security]\nsecret_key_file = "server.key"\nauthorized_keys = "authorized"\n')
    return tmp_path, pairs, config


def curve(pairs, name):
    return dict(server_key=pairs["server"][0], public_key=pairs[name][0], secret_key=pairs[name][1])


def test_keygen_writes_a_z85_pair_with_a_private_secret_file(keys):
    directory, pairs, _ = keys
    assert stat.S_IMODE(os.stat(directory / "server.key").st_mode) == 0o600
    public, secret = pairs["server"]
    assert len(public) == len(secret) == 40 and public != secret


def test_authorized_keys_decode_unknown_keys_get_no_reply(make_daemon, keys):
    directory, pairs, config = keys
    daemon = make_daemon(transport="tcp", extra=["--config", str(config)], client=curve(pairs, "a"))
    x = np.arange(VOCAB, dtype=np.float32)
    with Client(daemon.endpoint, **curve(pairs, "a")) as client:
        assert list(client.decode(x)[0]) == [VOCAB - 1]
    for options in (curve(pairs, "c"), {}):   # an unknown key, and no CURVE at all
        with Client(daemon.endpoint, timeout=0.5, **options) as stranger, pytest.raises(LogitdTimeout):
            stranger.hello()
    log = daemon.stderr()
    assert "refused a CURVE handshake" in log and pairs["c"][0] in log and "refused_total" in log


def test_sessions_answer_only_the_key_that_opened_them(make_daemon, keys):
    directory, pairs, config = keys
    daemon = make_daemon(transport="tcp", extra=["--config", str(config)], client=curve(pairs, "a"))
    x = np.linspace(0, 1, VOCAB).astype(np.float32)
    with Client(daemon.endpoint, **curve(pairs, "a")) as a, Client(daemon.endpoint, **curve(pairs, "b")) as b:
        session = a.open(vocab_size=VOCAB, max_new_tokens=3)
        session.step(x)
        intruder = b.open(vocab_size=VOCAB)
        intruder.id, intruder.auto_recover = session.id, False
        for attempt in (lambda: intruder.step(x), intruder.close):
            with pytest.raises(LogitdError) as refused:
                attempt()
            assert refused.value.name == "UNKNOWN_SESSION" and refused.value.message == f"no session {session.id} on this daemon"
        # Nothing of A's session changed: it takes step 1 and closes normally.
        assert session.step(x).step == 1
        assert session.close()["sequences"][0]["tokens"] == [VOCAB - 1, VOCAB - 1]


def test_binding_beyond_loopback_needs_keys_or_an_explicit_opt_out(tmp_path):
    endpoint = f"tcp://0.0.0.0:{free_port()}"
    refused = subprocess.run([binary(), "serve", "--bind", endpoint], capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "reachable from other hosts" in refused.stderr and "logitd keygen" in refused.stderr
    config = tmp_path / "insecure.toml"
    config.write_text("[security]\nallow_insecure = true\n")
    process = subprocess.Popen([binary(), "serve", "--config", str(config), "--bind", endpoint], stderr=subprocess.PIPE)
    try:
        with Client(endpoint.replace("0.0.0.0", "127.0.0.1"), timeout=5) as client:
            assert client.hello()["protocol"] == 1
    finally:
        process.terminate()
        process.wait(10)


def test_a_per_identity_session_quota_leaves_room_for_other_keys(make_daemon, keys):
    directory, pairs, config = keys
    config.write_text(config.read_text() + "[sessions]\nmax_per_identity = 2\n")
    daemon = make_daemon(transport="tcp", extra=["--config", str(config)], client=curve(pairs, "a"))
    with Client(daemon.endpoint, **curve(pairs, "a")) as a, Client(daemon.endpoint, **curve(pairs, "b")) as b:
        assert a.hello()["limits"]["max_sessions_per_identity"] == 2
        first = a.open(vocab_size=VOCAB)
        a.open(vocab_size=VOCAB)
        with pytest.raises(LogitdError) as refused:
            a.open(vocab_size=VOCAB)
        assert refused.value.name == "TOO_MANY_SESSIONS" and "limits.max_sessions_per_identity" in refused.value.message
        b.open(vocab_size=VOCAB)             # another key is not held back by A's sessions
        first.close()
        a.open(vocab_size=VOCAB)             # a closed session frees A's place


def test_refused_handshakes_are_counted_in_the_metrics(make_daemon, keys):
    import time
    from test_metrics import scrape
    directory, pairs, config = keys
    port = free_port()
    config.write_text(config.read_text() + f'[metrics]\nbind = "127.0.0.1:{port}"\n')
    daemon = make_daemon(transport="tcp", extra=["--config", str(config)], client=curve(pairs, "a"))
    assert scrape(port)[("logitd_handshakes_refused_total", ())] == 0
    with Client(daemon.endpoint, timeout=0.3, **curve(pairs, "c")) as stranger, pytest.raises(LogitdTimeout):
        stranger.hello()
    deadline = time.monotonic() + 5
    while scrape(port)[("logitd_handshakes_refused_total", ())] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scrape(port)[("logitd_handshakes_refused_total", ())] >= 1
