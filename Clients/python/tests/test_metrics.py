"""The Prometheus endpoint scraped for real after known traffic, read with prometheus_client's own
text-format parser: the counts equal what the test sent, by message type and outcome."""

from __future__ import annotations

import struct
import urllib.request

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, raw_dealer
from logitd import Client, LogitdError

VOCAB = 10


def scrape(port: int) -> dict:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_counts_equal_the_traffic_sent(make_daemon, tmp_path):
    port = free_port()
    config = tmp_path / "logitd.toml"
    config.write_text(f'[metrics]\nbind = "127.0.0.1:{port}"\n')
    daemon = make_daemon(extra=["--config", str(config)])
    before = scrape(port)                 # the start-up probe's HELLOs are counted too
    x = np.arange(2 * VOCAB, dtype=np.float32).reshape(2, VOCAB)
    with Client(daemon.endpoint) as client:
        for _ in range(3):
            client.hello()
        client.decode(x)
        client.decode(x, dtype="f16")
        session = client.open(vocab_size=VOCAB, max_new_tokens=5)
        session.step(x[0])
        session.step(x[1])
        try:
            client.open(vocab_size=VOCAB, strategy="beam", n=2)
        except LogitdError as error:
            assert error.name == "BAD_PARAMETERS"
    with raw_dealer(daemon.endpoint) as sock:
        sock.send_multipart([struct.pack("<4sBBHQ", b"XXXX", 1, 0x01, 0, 1)])
        assert sock.poll(5000)
        sock.recv_multipart()
    samples = scrape(port)
    requests = {dict(labels)["type"] + "/" + dict(labels)["outcome"]: value - before.get((name, labels), 0)
                for (name, labels), value in samples.items() if name == "logitd_requests_total"}
    assert requests == {"hello/ok": 3, "decode/ok": 2, "open/ok": 1, "step/ok": 2, "open/BAD_PARAMETERS": 1, "unknown/BAD_MAGIC": 1}
    assert samples[("logitd_rows_decoded_total", ())] == 2 + 2 + 1 + 1
    assert samples[("logitd_logit_bytes_total", ())] == 2 * VOCAB * 4 + 2 * VOCAB * 2 + 2 * VOCAB * 4
    assert samples[("logitd_step_seconds_count", (("strategy", "greedy"),))] == 2
    assert samples[("logitd_sessions_open", ())] == 1
    assert any(name == "logitd_build_info" and dict(labels)["version"] and dict(labels)["kernels"] for name, labels in samples)
    assert samples[("logitd_worker_busy_seconds_total", ())] > 0


def test_metrics_are_off_unless_configured_and_only_get_metrics_is_served(make_daemon, tmp_path):
    port = free_port()
    config = tmp_path / "logitd.toml"
    config.write_text(f'[metrics]\nbind = "127.0.0.1:{port}"\n')
    make_daemon(extra=["--config", str(config)])
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        raise AssertionError("a path other than /metrics was served")
    except urllib.error.HTTPError as error:
        assert error.code == 404
    plain = make_daemon()
    assert "metrics=off" in plain.stderr()
