"""Fixtures that start the real logitd binary on a unique ipc path or a free tcp port."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import uuid

import pytest
import zmq

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "Clients" / "python"))

from logitd import Client, LogitdTimeout  # noqa: E402


def binary() -> str:
    path = os.environ.get("LOGITD_BIN", str(ROOT / ".build" / "debug" / "logitd"))
    if not os.path.exists(path):
        pytest.fail(f"logitd binary not found at {path}: build it first (make test does)")
    return path


@contextlib.contextmanager
def raw_dealer(endpoint: str):
    """A bare DEALER socket on the daemon, for frames the client library would never send."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique_endpoint(transport: str) -> str:
    if transport == "tcp":
        return f"tcp://127.0.0.1:{free_port()}"
    return f"ipc://{tempfile.gettempdir()}/logitd-py-{uuid.uuid4().hex[:12]}.sock"


class Daemon:
    def __init__(self, transport: str = "ipc", workers: int = 2, extra: list[str] | None = None,
                 endpoint: str | None = None, client: dict | None = None):
        """`client`: Client keyword arguments for the start-up probe (CURVE keys for a daemon with
        [security])."""
        self.endpoint = endpoint or unique_endpoint(transport)
        self.client_options = client or {}
        self.log = tempfile.NamedTemporaryFile(prefix="logitd-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [binary(), "serve", "--bind", self.endpoint, "--workers", str(workers), *(extra or [])],
            stdout=subprocess.DEVNULL, stderr=self.log,
        )
        self._wait_until_serving()

    def _wait_until_serving(self) -> None:
        with Client(self.endpoint, timeout=0.2, **self.client_options) as client:
            for _ in range(50):
                try:
                    client.hello()
                    return
                except LogitdTimeout:
                    if self.process.poll() is not None:
                        break
        raise RuntimeError(f"logitd did not answer HELLO:\n{self.stderr()}")

    def stderr(self) -> str:
        return pathlib.Path(self.log.name).read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.unlink(self.log.name)
        if self.endpoint.startswith("ipc://"):
            pathlib.Path(self.endpoint[6:]).unlink(missing_ok=True)


@pytest.fixture(params=["ipc", "tcp"])
def daemon(request):
    d = Daemon(request.param)
    yield d
    d.close()


@pytest.fixture
def make_daemon():
    started: list[Daemon] = []

    def make(**kwargs) -> Daemon:
        d = Daemon(**kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.close()
