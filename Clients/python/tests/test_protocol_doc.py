"""docs/PROTOCOL.md's example, run as written against a real daemon: the document is enough."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_protocol_example_runs_as_documented(daemon):
    doc = (ROOT / "docs" / "PROTOCOL.md").read_text()
    section = doc[doc.index("## A complete exchange in Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'tcp://127.0.0.1:5555' in code
    script = code.replace("tcp://127.0.0.1:5555", daemon.endpoint)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    documented = re.search(r"^# (\[.*\])$", code, re.M).group(1)
    # Same tokens; log-probabilities equal to float32 precision (the last printed digit may differ).
    pairs = lambda text: [(int(t), float(lp)) for t, lp in re.findall(r"\((\d+), (-?[\d.e-]+)\s*\)", text)]
    assert [t for t, _ in pairs(printed)] == [t for t, _ in pairs(documented)] == [1, 0]
    for (_, a), (_, b) in zip(pairs(printed), pairs(documented)):
        assert abs(a - b) < 1e-6
