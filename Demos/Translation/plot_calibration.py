"""Reliability diagram from `translate-demo --calibration --json` (stdin) to a PNG (argv[1]):
accuracy per confidence bin before and after temperature scaling, against the diagonal."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

report = json.load(sys.stdin)
figure, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
for axis, key, title in ((axes[0], "before", "before (T = 1)"), (axes[1], "after", f"after (T = {report['temperature']:.3f})")):
    bins = [b for b in report[key] if b["count"] > 0]
    ece = report[f"ece_{key}"]
    axis.bar([b["lower"] for b in bins], [b["accuracy"] for b in bins], width=0.1, align="edge", edgecolor="black", label="accuracy")
    axis.bar([b["lower"] for b in bins], [b["confidence"] - b["accuracy"] for b in bins], bottom=[b["accuracy"] for b in bins],
             width=0.1, align="edge", color="none", edgecolor="red", hatch="//", label="gap to confidence")
    axis.plot([0, 1], [0, 1], "k--", linewidth=1)
    for b in bins:
        axis.annotate(str(b["count"]), (b["lower"] + 0.05, 0.02), ha="center", fontsize=7)
    axis.set_title(f"{title}: ECE {ece:.3f}")
    axis.set_xlabel("confidence (top word's probability)")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
axes[0].set_ylabel("accuracy (top word = reference word)")
axes[0].legend(loc="upper left", fontsize=8)
figure.suptitle(f"Translation model, next word on {report['steps']} held-out steps (numbers: steps per bin)")
figure.tight_layout()
figure.savefig(sys.argv[1], dpi=110)
