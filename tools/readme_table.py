"""The README's five-seed table, from ``benchmarks/results/wordnet_seeds.json``.

Usage::

    python tools/readme_table.py [RESULTS_JSON]          # README.md's table
    python tools/readme_table.py --rst > docs/wordnet_seeds_table.rst

Prints the markdown table that README.md shows, or (``--rst``) the per-shift
tables that docs/benchmark.rst includes; ``tests/test_docs.py`` checks that
both files hold exactly this output, so they follow each rerun of
``benchmarks/bench_wordnet_seeds.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks/results/wordnet_seeds.json"
# README label of each method, in the README's order
ROWS = {
    "zero-shot": "zero-shot",
    "fine-tuned": "fine-tuned (linear probe)",
    "OSE": "OSE (alpha best on val.)",
    "entropy": "entropy (output-space DaWin)",
    "VRF": "VRF (k, a, b best on val.; default quantile grid)",
    "VRF (fixed grid)": "VRF (the old fixed grid around 1.5 / 0.6)",
    "VRF (paper defaults)": "VRF (paper defaults 1.5 / 0.6)",
    "OSE (tolerance)": "OSE (tolerance rule)",
    "VRF (tolerance)": "VRF (tolerance rule)",
    "selective (MSP)": "selective (MSP)",
    "selective (energy)": "selective (energy)",
    "selective (MD)": "selective (MD)",
    "selective (RMD)": "selective (RMD)",
    "selective (kNN)": "selective (kNN)",
    "VRF (all-rows bank)": "VRF (all-rows bank)",
    "zero-shot (GLA)": "zero-shot (GLA)",
    "VRF (paper defaults, GLA)": "VRF (paper defaults, GLA)",
}


def _signed(x):
    return f"{x:+.1f}".replace("-", "\u2212")


def _delta(results, name, reference, column):
    """``"+d [lo, hi]"``: the seed-mean difference of ``name`` to ``reference``
    on ``column`` and its paired bootstrap interval, in points."""
    acc = results["accuracy"]
    d = np.mean(np.asarray(acc[name][column]) - np.asarray(acc[reference][column]))
    iv = results["intervals"][f"{name} - {reference}"][column]
    lo, hi = (100 * v for v in iv)
    return f"{_signed(d)} [{_signed(lo)}, {_signed(hi)}]"


def table(results):
    """The markdown lines of the table."""
    acc = results["accuracy"]
    lines = [
        "| method | ID | OOD mean | Δ ID | Δ OOD mean |",
        "|:--|--:|--:|--:|--:|",
    ]
    for name, label in ROWS.items():
        cells = [f"{np.mean(acc[name][c]):.1f}" for c in ("ID", "OOD mean")]
        for c in ("ID", "OOD mean"):
            ft = name == "fine-tuned"
            cells.append("" if ft else _delta(results, name, "fine-tuned", c))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def rst_table(results):
    """The per-shift table of docs/benchmark.rst, as an RST list-table."""
    acc, intervals = results["accuracy"], results["intervals"]
    cols = list(acc["fine-tuned"])
    lines = [".. list-table::", "   :header-rows: 1", ""]
    lines += ["   * - method"] + [f"     - {c}" for c in cols]
    lines += ["     - Δ ID", "     - Δ OOD mean"]
    names = [*ROWS, *[n for n in acc if n not in ROWS]]
    for name in names:
        lines.append(f"   * - {ROWS.get(name, name)}")
        for c in cols:
            v = np.asarray(acc[name][c])
            sd = v.std(ddof=1) if v.size > 1 else 0.0
            lines.append(f"     - {v.mean():.1f} ± {sd:.1f}")
        for c in ("ID", "OOD mean"):
            ft = name == "fine-tuned"
            lines.append(
                "     -" if ft else f"     - {_delta(results, name, 'fine-tuned', c)}"
            )
    lines += [
        "",
        "Other paired comparisons (five-seed mean difference, paired bootstrap 95 %",
        "interval, accuracy points):",
        "",
    ]
    lines += [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - comparison",
        "     - Δ ID",
        "     - Δ OOD mean",
    ]
    for pair in intervals:
        a, b = pair.split(" - ")
        if b == "fine-tuned":
            continue
        lines.append(f"   * - {ROWS.get(a, a)} \u2212 {ROWS.get(b, b)}")
        lines += [f"     - {_delta(results, a, b, c)}" for c in ("ID", "OOD mean")]
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rst = "--rst" in argv
    argv = [a for a in argv if a != "--rst"]
    path = Path(argv[0]) if argv else RESULTS
    results = json.loads(path.read_text(encoding="utf-8"))
    print("\n".join(rst_table(results) if rst else table(results)))


if __name__ == "__main__":
    main()
