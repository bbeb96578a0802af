"""The measured tables of docs/user_guide/choosing.rst, from ``benchmarks/results``.

Usage (from the repository root, writing into ``docs/user_guide/``)::

    python tools/choosing_tables.py side-by-side > measured_side_by_side.inc
    python tools/choosing_tables.py dawin-offset > dawin_offset_table.inc

``side-by-side``: every method on both embedded benchmarks (nouns: ID, OOD mean
and both differences to the fine-tuned model with their paired bootstrap
intervals, from ``wordnet_seeds.json``; verbs: the difference on OOD mean, from
``wordnet_verbs_seeds/results.json``) next to the published ImageNet numbers.
``dawin-offset``: the entropy ensemble with and without DaWin's offset
adjustment (``dawin_offset.json``). ``tests/test_docs.py`` checks that the
included files hold exactly this output, so they follow each rerun.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_table import _delta, _signed

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

# label, name in the nouns/verbs results, published ImageNet ID / OOD (CLIP
# ViT-B/16, end-to-end fine-tuned; the paper's tables) or "" where not reported
ROWS = [
    ("zero-shot", "zero-shot", "68.3 / 58.4"),
    ("fine-tuned", "fine-tuned", "81.3 / 53.7"),
    ("OSE (alpha best on val.)", "OSE", "82.2 / 60.2"),
    ("entropy ensemble", "entropy", ""),
    ("VRF (k, a, b best on val.)", "VRF", ""),
    ("VRF (paper defaults)", "VRF (paper defaults)", "82.3 / 61.8"),
    ("OSE (tolerance rule)", "OSE (tolerance)", ""),
    ("VRF (tolerance rule)", "VRF (tolerance)", ""),
    ("selective (MSP)", "selective (MSP)", "81.5 / 57.3"),
    ("selective (energy)", "selective (energy)", "81.0 / 57.6"),
    ("selective (MD)", "selective (MD)", "81.0 / 57.7"),
    ("selective (RMD)", "selective (RMD)", "81.1 / 58.4"),
    ("selective (kNN)", "selective (kNN)", "80.8 / 58.4"),
    ("VRF (all-rows bank)", "VRF (all-rows bank)", "82.2 / 61.0"),
    ("zero-shot (GLA)", "zero-shot (GLA)", ""),
    ("VRF (paper defaults, GLA)", "VRF (paper defaults, GLA)", ""),
]
# methods that need the networks' weights: published numbers only
WEIGHT_SPACE = [("WiSE-FT", "82.5 / 60.6")]


def _load(name):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _verbs_delta(verbs, name):
    d, lo, hi = verbs["difference_to_finetuned"][name]["ood_mean"]
    return f"{_signed(d)} [{_signed(lo)}, {_signed(hi)}]"


def side_by_side(nouns, verbs):
    """The list-table's lines; the best nouns OOD mean in bold."""
    acc = nouns["accuracy"]
    ood = {name: np.mean(acc[name]["OOD mean"]) for _, name, _ in ROWS}
    best = max(ood, key=ood.get)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 22 8 9 15 15 15 16",
        "",
        "   * - method",
        "     - nouns: ID",
        "     - nouns: OOD mean",
        "     - nouns: Δ ID",
        "     - nouns: Δ OOD mean",
        "     - verbs: Δ OOD mean",
        "     - published ID / OOD",
    ]
    for label, name, published in ROWS:
        ft = name == "fine-tuned"
        cells = [
            f"{np.mean(acc[name]['ID']):.1f}",
            f"{ood[name]:.1f}",
            "" if ft else _delta(nouns, name, "fine-tuned", "ID"),
            "" if ft else _delta(nouns, name, "fine-tuned", "OOD mean"),
            "" if ft else _verbs_delta(verbs, name),
        ]
        if name == best:
            label, cells[1], cells[3] = (
                f"**{c}**" for c in (label, cells[1], cells[3])
            )
        lines.append(f"   * - {label}")
        lines += [f"     - {c}".rstrip() for c in cells]
        lines.append(f"     - {published}".rstrip())
    for label, published in WEIGHT_SPACE:
        lines.append(f"   * - {label}")
        lines.append("     - (needs network weights)")
        lines += ["     -"] * 4
        lines.append(f"     - {published}")
    return lines


def _dawin_delta(bench, column):
    acc = bench["accuracy"]
    a, b = "entropy (offset)", "entropy"
    d = np.mean(np.asarray(acc[a][column]) - np.asarray(acc[b][column]))
    lo, hi = bench["intervals"][f"{a} - {b}"][column]  # in points
    return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]".replace("-", "\u2212")


def dawin_offset(results):
    """The list-table's lines: each benchmark's entropy ensemble without and
    with the offset, and the paired differences."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 26 12 12 25 25",
        "",
        "   * - benchmark",
        "     - entropy: ID / OOD mean",
        "     - with offset: ID / OOD mean",
        "     - offset \u2212 none: Δ ID",
        "     - offset \u2212 none: Δ OOD mean",
    ]
    for key, bench in results["benchmarks"].items():
        acc = bench["accuracy"]
        lines.append(f"   * - {key}")
        for name in ("entropy", "entropy (offset)"):
            i, o = (np.mean(acc[name][c]) for c in ("ID", "OOD mean"))
            lines.append(f"     - {i:.1f} / {o:.1f}")
        lines += [f"     - {_dawin_delta(bench, c)}" for c in ("ID", "OOD mean")]
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["side-by-side"]:
        lines = side_by_side(
            _load("wordnet_seeds.json"), _load("wordnet_verbs_seeds/results.json")
        )
    elif argv == ["dawin-offset"]:
        lines = dawin_offset(_load("dawin_offset.json"))
    else:
        sys.exit("usage: choosing_tables.py {side-by-side,dawin-offset}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
