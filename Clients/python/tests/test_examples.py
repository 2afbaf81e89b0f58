"""The model-loop examples: Python and Swift, the same toy model, the same daemon, the same output."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def swift_model_loop() -> str:
    binary = pathlib.Path(os.environ.get("LOGITD_BIN", ROOT / ".build" / "release" / "logitd")).parent / "model-loop"
    if not binary.exists():
        pytest.fail(f"model-loop not built at {binary}")
    return str(binary)


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_python_and_swift_model_loops_agree(daemon, strategy):
    arguments = ["--endpoint", daemon.endpoint, "--strategy", strategy, "--seed", "7", "--steps", "12", "--beam-width", "3"]
    python = subprocess.run([sys.executable, str(ROOT / "Clients/python/examples/model_loop.py"), *arguments],
                            capture_output=True, text=True, timeout=60)
    swift = subprocess.run([swift_model_loop(), *arguments], capture_output=True, text=True, timeout=60)
    assert python.returncode == 0, python.stderr
    assert swift.returncode == 0, swift.stderr
    assert python.stdout == swift.stdout
    lines = python.stdout.strip().splitlines()
    if strategy == "beam":
        assert len(lines) == 3
        scores = [float(re.match(r"hypothesis \d+ score (-?[\d.]+):", line).group(1)) for line in lines]
        assert scores == sorted(scores, reverse=True)
    else:
        assert len(lines) == (2 if strategy == "sample" else 1)
        assert all(re.match(r"sequence \d+ \((eos|max_tokens)\): [\d ]+$", line) for line in lines)


def translate_demo() -> str:
    return str(pathlib.Path(swift_model_loop()).parent / "translate-demo")


def test_translation_demo_beam_beats_greedy_through_the_daemon(daemon):
    result = subprocess.run([translate_demo(), "--endpoint", daemon.endpoint, "--data", str(ROOT / "Demos/Translation/data"),
                             "--evaluate", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["strategy"]: row for row in map(__import__("json").loads, result.stdout.strip().splitlines())}
    assert set(rows) == {"greedy", "beam", "nucleus"}
    assert all(row["sentences"] >= 60 for row in rows.values())
    assert rows["beam"]["bleu"] > rows["greedy"]["bleu"] + 5
    assert rows["beam"]["exact"] > rows["greedy"]["exact"]
    assert rows["beam"]["mean_logprob"] > rows["greedy"]["mean_logprob"], "beam finds more probable translations"
    # Nucleus samples stay mostly fluent: every word pair of most of them occurs in the corpus.
    assert rows["nucleus"]["fluent"] >= 0.6 * rows["nucleus"]["sentences"]


def test_nucleus_samples_differ_across_seeds_and_repeat_with_the_same_seed(daemon):
    def sample(seed: int) -> str:
        result = subprocess.run([translate_demo(), "--endpoint", daemon.endpoint, "--data", str(ROOT / "Demos/Translation/data"),
                                 "--strategy", "nucleus", "--samples", "3", "--seed", str(seed),
                                 "the red trees rest near the bank of the city", "the old man walks near the glass of the car"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout
    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_python_translation_model_process_matches_swift(daemon, tmp_path):
    """The Python twin of the demo's model process gets the same greedy and beam translations,
    word for word and log p for log p, over the whole test set: the protocol is language-neutral."""
    data = ROOT / "Demos/Translation/data"
    sources = tmp_path / "sources.txt"
    sources.write_text("\n".join(line.split("\t")[0] for line in (data / "test.tsv").read_text().splitlines()) + "\n")
    for strategy in ["greedy", "beam"]:
        arguments = ["--endpoint", daemon.endpoint, "--data", str(data), "--strategy", strategy, "--file", str(sources)]
        swift = subprocess.run([translate_demo(), *arguments], capture_output=True, text=True, timeout=120)
        python = subprocess.run([sys.executable, str(ROOT / "Demos/Translation/translate_demo.py"), *arguments],
                                capture_output=True, text=True, timeout=120)
        assert swift.returncode == 0, swift.stderr
        assert python.returncode == 0, python.stderr
        translations = [line for line in swift.stdout.splitlines() if line.startswith(f"  {strategy} ")]
        assert len(translations) == 80
        assert python.stdout == swift.stdout
