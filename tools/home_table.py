"""The home page's short result table, from ``benchmarks/results/wordnet_seeds.json``.

Usage::

    python tools/home_table.py > docs/home_results.inc

Prints the reStructuredText that docs/index.rst includes: four methods' ID and
mean OOD accuracy over the seeds, each one's difference to the fine-tuned model
with its paired bootstrap interval, and one sentence that reads them, all made
from the committed results by the helpers of ``tools/readme_table.py`` (the
README's table). ``tests/test_docs.py`` checks that the file holds exactly this
output, so it follows each rerun of ``benchmarks/bench_wordnet_seeds.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_table import RESULTS, _delta

# the home page's label of each method, in its order
ROWS = {
    "zero-shot": "zero-shot",
    "fine-tuned": "fine-tuned (linear probe)",
    "OSE": ":term:`OSE` (alpha chosen on validation)",
    "VRF": "VRF (k, threshold, temperature chosen on validation)",
}


def _mean(results, name, column):
    return float(np.mean(results["accuracy"][name][column]))


def home_table(results):
    """The lines of the table and of the sentence below it."""
    n_seeds = len(results["seeds"])
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - method",
        "     - ID",
        "     - :term:`OOD` mean",
        "     - Δ OOD mean vs fine-tuned [95 % interval]",
    ]
    for name, label in ROWS.items():
        lines.append(f"   * - {label}")
        lines += [f"     - {_mean(results, name, c):.1f}" for c in ("ID", "OOD mean")]
        if name == "fine-tuned":
            lines.append("     -")
        else:
            lines.append(f"     - {_delta(results, name, 'fine-tuned', 'OOD mean')}")
    gain = _delta(results, "VRF", "fine-tuned", "OOD mean")
    cost = _delta(results, "VRF", "fine-tuned", "ID")
    shifts = [
        c for c in results["accuracy"]["fine-tuned"] if c not in ("ID", "OOD mean")
    ]
    zs_wins = [
        s
        for s in shifts
        if _mean(results, "zero-shot", s) > _mean(results, "fine-tuned", s)
    ]
    if zs_wins:
        reading = (
            f"the zero-shot model is the more accurate on {', '.join(zs_wins)}, "
            "which a per-sample mix can use."
        )
    else:
        reading = (
            "the fine-tuned model is more accurate than the zero-shot model on every "
            "shift here, so an ensemble has little to take from the zero-shot model "
            "(on CLIP and ImageNet the zero-shot model wins some shifts outright)."
        )
    lines += [
        "",
        f"Accuracy in %, mean over {n_seeds} train/validation draws; every choice on "
        f"the ID validation split. VRF's mean OOD accuracy differs from the "
        f"fine-tuned model's by {gain} points, at {cost} points ID: {reading}",
    ]
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else RESULTS
    results = json.loads(path.read_text(encoding="utf-8"))
    print("\n".join(home_table(results)))


if __name__ == "__main__":
    main()
