"""The Python client against the real daemon, checked against float64 numpy references."""

from __future__ import annotations

import json
import struct
import threading

import numpy as np
import pytest
from conftest import raw_dealer
from logitd import DECODE, DESCRIPTOR, HEADER, HELLO, MASK_FOLLOWS, Client, LogitdError, header, to_bfloat16


def reference_greedy(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmax (first index on ties) and log softmax at it, in float64."""
    x = rows.astype(np.float64)
    tokens = np.argmax(x, axis=1)
    m = x.max(axis=1, keepdims=True)
    log_z = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return tokens, x[np.arange(len(x)), tokens] - log_z


def widened(rows: np.ndarray, dtype: str) -> np.ndarray:
    """The values the daemon sees for rows sent as `dtype`."""
    if dtype == "f16":
        return rows.astype(np.float16).astype(np.float32)
    if dtype == "bf16":
        return (to_bfloat16(rows).astype(np.uint32) << 16).view(np.float32)
    return rows.astype(np.float32)


def test_hello(daemon):
    with Client(daemon.endpoint) as client:
        welcome = client.hello()
    assert welcome["protocol"] == 1
    assert welcome["dtypes"] == ["f32", "f16", "bf16"]
    assert welcome["strategies"] == ["greedy", "sample", "beam"]
    assert welcome["workers"] == 2
    assert welcome["kernels"] in ("avx512", "avx2", "baseline", "portable")
    assert welcome["limits"]["max_vocab"] == 1048576


def test_ping_echoes_payload(daemon):
    with Client(daemon.endpoint) as client:
        assert client.ping(b"\x00abc") == b"\x00abc"
        assert client.ping() is None


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_decode_matches_float64_reference(daemon, dtype):
    rng = np.random.default_rng(7)
    rows = rng.normal(0, 3, size=(5, 32000)).astype(np.float32)
    rows[1, ::2] = -np.inf
    rows[2, 100] = rows[2, 200] = rows[2].max() + 1  # a tie: the lower id wins
    with Client(daemon.endpoint) as client:
        tokens, logprobs = client.decode(rows, dtype=dtype)
    expected_tokens, expected_logprobs = reference_greedy(widened(rows, dtype))
    assert tokens.tolist() == expected_tokens.tolist()
    assert tokens[2] == 100
    np.testing.assert_allclose(logprobs, expected_logprobs, atol=1e-5, rtol=0)


def test_one_dimensional_row_and_explicit_strategy(daemon):
    with Client(daemon.endpoint) as client:
        tokens, logprobs = client.decode(np.array([0.0, 2.0, 1.0]), strategy="greedy")
    assert tokens.tolist() == [1]
    assert logprobs[0] == pytest.approx(2 - np.log(1 + np.e**2 + np.e), abs=1e-6)


# (what is wrong, error name) for requests built by hand, as a client written from the doc might.
def frames_for(case: str) -> list[bytes]:
    good = np.ones((2, 4), dtype="<f4")
    descriptor = DESCRIPTOR.pack(1, 0, 0, 2, 4)
    h = header(DECODE, 9)
    masked = header(DECODE, 9, MASK_FOLLOWS)
    return {
        "short header": [h[:12]],
        "bad magic": [b"XGTD" + h[4:]],
        "bad version": [h[:4] + b"\x07" + h[5:]],
        "unknown type": [h[:5] + b"\x44" + h[6:]],
        "flags": [h[:6] + b"\x02\x00" + h[8:]],  # bit 0 is the mask flag; bit 1 is undefined
        "frame count": [h, descriptor, b""],
        "bad dtype": [h, DESCRIPTOR.pack(5, 0, 0, 2, 4), b"", good.tobytes()],
        "zero vocab": [h, DESCRIPTOR.pack(1, 0, 0, 2, 0), b"", b""],
        "size mismatch": [h, descriptor, b"", good.tobytes()[:-4]],
        "nan": [h, descriptor, b"", np.array([[0, 1, 2, 3], [0, np.nan, 0, 0]], "<f4").tobytes()],
        "+inf": [h, descriptor, b"", np.array([[0, np.inf, 2, 3], [0, 0, 0, 0]], "<f4").tobytes()],
        "all -inf": [h, descriptor, b"", np.array([[0, 1, 2, 3], [-np.inf] * 4], "<f4").tobytes()],
        "unknown parameter": [h, descriptor, json.dumps({"top_q": 0.9}).encode(), good.tobytes()],
        "unknown strategy": [h, descriptor, json.dumps({"strategy": "psychic"}).encode(), good.tobytes()],
        "not json": [h, descriptor, b"{strategy", good.tobytes()],
        "mask flag, no mask": [masked, descriptor, b"", good.tobytes()],
        "mask size": [masked, descriptor, b"", good.tobytes(), b"\xff\xff\xff"],
        "mask allows nothing": [masked, descriptor, b"", good.tobytes(), struct.pack("<II", 0xF, 0)],
        "mask flag on HELLO": [header(HELLO, 9, MASK_FOLLOWS)],
    }[case]


ERRORS = {
    "short header": ("MALFORMED_HEADER", 0),
    "bad magic": ("BAD_MAGIC", 0),
    "bad version": ("UNSUPPORTED_VERSION", 9),
    "unknown type": ("UNKNOWN_TYPE", 9),
    "flags": ("UNKNOWN_FLAGS", 9),
    "frame count": ("BAD_FRAME_COUNT", 9),
    "bad dtype": ("BAD_DESCRIPTOR", 9),
    "zero vocab": ("BAD_SHAPE", 9),
    "size mismatch": ("SIZE_MISMATCH", 9),
    "nan": ("INVALID_LOGITS", 9),
    "+inf": ("INVALID_LOGITS", 9),
    "all -inf": ("ALL_MASKED", 9),
    "unknown parameter": ("BAD_PARAMETERS", 9),
    "unknown strategy": ("UNKNOWN_STRATEGY", 9),
    "not json": ("BAD_PARAMETERS", 9),
    "mask flag, no mask": ("BAD_FRAME_COUNT", 9),
    "mask size": ("BAD_SHAPE", 9),
    "mask allows nothing": ("ALL_MASKED", 9),
    "mask flag on HELLO": ("UNKNOWN_FLAGS", 9),
}
CODES = {"MALFORMED_HEADER": 1, "BAD_MAGIC": 2, "UNSUPPORTED_VERSION": 3, "UNKNOWN_TYPE": 4,
         "UNKNOWN_FLAGS": 5, "BAD_FRAME_COUNT": 6, "BAD_DESCRIPTOR": 7, "BAD_SHAPE": 8,
         "SIZE_MISMATCH": 9, "INVALID_LOGITS": 10, "ALL_MASKED": 11, "BAD_PARAMETERS": 12,
         "UNKNOWN_STRATEGY": 13, "MESSAGE_TOO_LARGE": 14}


@pytest.mark.parametrize("case", list(ERRORS))
def test_invalid_requests_get_error_and_daemon_carries_on(daemon, case):
    name, request_id = ERRORS[case]
    with raw_dealer(daemon.endpoint) as sock:
        sock.send_multipart(frames_for(case))
        assert sock.poll(10000), "no reply"
        reply = sock.recv_multipart()
        magic, version, msg_type, flags, reply_id = HEADER.unpack(reply[0])
        assert (magic, version, msg_type, flags) == (b"LGTD", 1, 0xFF, 0)
        assert reply_id == request_id
        code, = struct.unpack_from("<I", reply[1])
        assert code == CODES[name], reply[1][4:].decode()
        assert len(reply[1]) > 8, "the message says what was wrong"
    with Client(daemon.endpoint) as client:
        assert client.decode(np.array([[0.0, 5.0, 1.0]]))[0].tolist() == [1]


def test_error_messages_name_the_problem(daemon):
    with Client(daemon.endpoint) as client:
        with pytest.raises(LogitdError) as nan:
            client.decode(np.array([[0, 1, 2], [1, np.nan, 0]], dtype=np.float32))
        assert nan.value.name == "INVALID_LOGITS"
        assert nan.value.message == "row 1: logit 1 is NaN"
        with pytest.raises(LogitdError) as unknown:
            client.decode(np.zeros((1, 3)), temperature=0.7)
        assert 'unknown parameter "temperature"' in unknown.value.message


def test_message_too_large(make_daemon, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text("[limits]\nmax_message_bytes = 4096\n")
    daemon = make_daemon(extra=["--config", str(config)])
    with Client(daemon.endpoint) as client:
        with pytest.raises(LogitdError) as error:
            client.decode(np.zeros((2, 1000), dtype=np.float32))
        assert error.value.name == "MESSAGE_TOO_LARGE"
        assert client.decode(np.zeros((1, 100)))[0].tolist() == [0]


def test_interleaved_clients_get_their_own_tokens(make_daemon):
    daemon = make_daemon(workers=2)
    failures: list[str] = []

    def run(index: int) -> None:
        rng = np.random.default_rng(index)
        try:
            with Client(daemon.endpoint) as client:
                for _ in range(25):
                    rows = rng.normal(size=(4, 1000)).astype(np.float32)
                    tokens, _ = client.decode(rows)
                    if tokens.tolist() != rows.argmax(axis=1).tolist():
                        failures.append(f"client {index}: wrong tokens")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            failures.append(f"client {index}: {error!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_bad_client_does_not_disturb_good_ones(make_daemon):
    daemon = make_daemon(workers=2)
    stop = threading.Event()

    def spam() -> None:
        with raw_dealer(daemon.endpoint) as sock:
            while not stop.is_set():
                sock.send_multipart([b"garbage", b"\x00" * 100])
                sock.poll(1000)
                sock.recv_multipart()

    spammer = threading.Thread(target=spam)
    spammer.start()
    try:
        with Client(daemon.endpoint) as client:
            for i in range(50):
                row = np.zeros(64, dtype=np.float32)
                row[i] = 1
                assert client.decode(row)[0].tolist() == [i]
    finally:
        stop.set()
        spammer.join(10)


def test_sigterm_exits_zero(make_daemon):
    daemon = make_daemon()
    assert daemon.stop() == 0
    assert "stopped" in daemon.stderr()


def softmax64(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = x.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_probs_whole_rows(daemon, temperature):
    rng = np.random.default_rng(3)
    rows = rng.normal(0, 3, size=(3, 1000)).astype(np.float32)
    rows[1, :500] = -np.inf
    with Client(daemon.endpoint) as client:
        probabilities = client.probs(rows, temperature=temperature)
    expected = softmax64(rows, temperature)
    assert probabilities.shape == (3, 1000)
    big = expected >= 1e-30
    np.testing.assert_allclose(probabilities[big], expected[big], rtol=1e-5)
    assert np.all(probabilities[1, :500] == 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_probs_top_n_for_a_classifier(daemon):
    # A sentiment model's logits for (positive, negative, neutral): which class, how sure.
    logits = np.array([[2.5, -1.0, 0.3], [0.1, 0.2, 0.15]], dtype=np.float32)
    with Client(daemon.endpoint) as client:
        tokens, probabilities = client.probs(logits, top_n=2)
        with pytest.raises(LogitdError) as error:
            client.probs(logits, top_n=4)
        assert error.value.name == "BAD_PARAMETERS"
    expected = softmax64(logits)
    assert tokens.tolist() == [[0, 2], [1, 2]]
    np.testing.assert_allclose(probabilities, np.take_along_axis(expected, tokens, axis=1), rtol=1e-5)
