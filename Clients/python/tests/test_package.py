"""The client as a package: pip installs it with its type marker, and it takes array-likes
(`__array__`, DLPack) without copying where the layout allows."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import numpy as np

from logitd import Client, as_array, encode_rows

CLIENT = pathlib.Path(__file__).resolve().parents[1]


def test_pip_installs_the_package(tmp_path):
    # From a copy, so that the build leaves nothing in the repository.
    source = tmp_path / "source"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(source)],
                   check=True, capture_output=True)
    assert (target / "logitd" / "py.typed").exists()
    probe = subprocess.run([sys.executable, "-c", "import logitd, sys; print(logitd.__file__); print(logitd.Client.__name__)"],
                           env={"PYTHONPATH": str(target)}, capture_output=True, text=True, check=True)
    located, name = probe.stdout.split()
    assert located.startswith(str(target)) and name == "Client"


class ArrayLike:
    """Only `__array__`, as a torch CPU tensor offers it."""
    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array


class DLPackOnly:
    """Only the DLPack protocol."""
    def __init__(self, array):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


def test_array_likes_are_sent_without_a_copy(daemon):
    rows = np.random.default_rng(0).normal(size=(3, 50)).astype(np.float32)
    for wrapped in (rows, ArrayLike(rows), DLPackOnly(rows)):
        frame = encode_rows(wrapped, "f32")
        assert np.shares_memory(np.frombuffer(frame, np.float32), rows), type(wrapped).__name__
        assert np.shares_memory(as_array(wrapped), rows)
    # A non-contiguous view or another dtype is converted (a copy is unavoidable).
    assert not np.shares_memory(np.frombuffer(encode_rows(rows[:, ::2], "f32"), np.float32), rows)
    with Client(daemon.endpoint) as client:
        expected = client.decode(rows)[0]
        assert list(client.decode(DLPackOnly(rows))[0]) == list(expected) == list(np.argmax(rows, axis=1))
        assert list(client.decode(ArrayLike(rows))[0]) == list(expected)
