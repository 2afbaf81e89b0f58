"""docs/PROTOCOL.md's examples, run as written against a real daemon: the document is enough."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def example(section: str) -> str:
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text()
    text = doc[doc.index(section):]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def run_example(code: str, endpoint: str) -> tuple[list[str], list[str]]:
    """Runs the example against `endpoint`; returns its printed lines and the documented ones."""
    assert "tcp://127.0.0.1:5555" in code
    result = subprocess.run([sys.executable, "-c", code.replace("tcp://127.0.0.1:5555", endpoint)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    documented = re.findall(r"^# (.*)$", code, re.M)
    return result.stdout.strip().splitlines(), documented


def test_decode_example_runs_as_documented(daemon):
    printed, documented = run_example(example("## A complete exchange in Python"), daemon.endpoint)
    # Every kernel variant gives the same bits, so the printed line is exactly the documented one.
    assert printed == documented


def test_session_example_runs_as_documented(daemon):
    printed, documented = run_example(example("### A session in Python"), daemon.endpoint)
    assert printed == documented


def test_verify_example_runs_as_documented(daemon):
    printed, documented = run_example(example("### VERIFY → VERIFIED"), daemon.endpoint)
    assert printed == documented == ["0x94 2 [3, 3, 1]"]
