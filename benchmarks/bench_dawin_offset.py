"""DaWin's offset adjustment on the two embedded benchmarks, over seeds, with
paired bootstrap intervals.

For each benchmark (WordNet nouns: ``wordnet_feature_suite``; WordNet verbs:
``benchmark_feature_suite("wordnet-verbs")``) and each seed, fits the components
as ``skvrf demo`` does (zero-shot head from the class descriptions; the
fine-tuned LogisticRegression with C chosen on ID validation), then the entropy
ensemble (output-space DaWin) twice, as :func:`skvrf.evaluation.compare_methods`
fits it (calibrated on the validation split):

- ``entropy``: ``EntropyEnsembleClassifier(offset_adjustment=False)``, skvrf's
  default, the per-sample formula alone;
- ``entropy (offset)``: ``offset_adjustment=True``, the authors' main-results
  setting; its statistics are computed on each whole test set (ID test and
  each shift separately, as the authors do per evaluation set).

Prints, per benchmark, each method's accuracy (mean ± sd over seeds) on ID and
on the OOD mean (the mean of the shifts), and the paired bootstrap 95 %
intervals of ``entropy (offset) - entropy`` and of each against the fine-tuned
model. The bootstrap resamples the rows of each test set (2,000 resamples; the
same rows for every method and seed) with the predictions fixed: the offset's
statistics are those of the full set, not recomputed per resample.

Usage::

    python benchmarks/bench_dawin_offset.py --seeds 0 1 2 3 4 \\
        --out benchmarks/results/dawin_offset.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from bench_wordnet_seeds import paired_bootstrap  # benchmarks/ on sys.path
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator

from skvrf import EntropyEnsembleClassifier, HeldOut, ZeroShotClassifier
from skvrf.commands._common import fit_finetuned
from skvrf.datasets import benchmark_feature_suite

BENCHMARKS = {"nouns": "wordnet-supersenses", "verbs": "wordnet-verbs"}
PAIRS = [
    ("entropy (offset)", "entropy"),
    ("entropy", "fine-tuned"),
    ("entropy (offset)", "fine-tuned"),
]


def run(benchmark, seed):
    """Per-row correctness of each method on each set, and the offsets used."""
    suite = benchmark_feature_suite(benchmark, seed=seed, verbose=0)
    zs = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
    ft, _ = fit_finetuned(suite.train, suite.validation, max_iter=2000)
    X, y = suite.train
    plain = EntropyEnsembleClassifier(zs, FrozenEstimator(ft))
    plain.fit(X, y, X_val=HeldOut(*suite.validation))
    offset = clone(plain).set_params(offset_adjustment=True)
    offset.fit(X, y, X_val=HeldOut(*suite.validation))
    sets = {"ID": suite.test, **suite.shifts}
    methods = {"fine-tuned": ft, "entropy": plain, "entropy (offset)": offset}
    correct = {
        name: {s: est.predict(Xs) == ys for s, (Xs, ys) in sets.items()}
        for name, est in methods.items()
    }
    extras = {}
    for s, (Xs, _) in sets.items():
        w0, w1 = plain.ensemble_weights(Xs), offset.ensemble_weights(Xs)
        outputs = next(offset.iter_component_outputs(Xs))
        c, r = outputs.extras["dawin_offset"]
        extras[s] = {
            "c": c,
            "r": r,
            "mean_lambda": float(w0.mean()),
            "mean_lambda_offset": float(w1.mean()),
            "max_abs_lambda_change": float(np.abs(w1 - w0).max()),
        }
    return correct, extras


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS))
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args()
    result = {"seeds": args.seeds, "benchmarks": {}}
    for key in args.benchmarks:
        start = time.perf_counter()
        runs, extras = [], []
        for seed in args.seeds:
            correct, extra = run(BENCHMARKS[key], seed)
            runs.append(correct)
            extras.append(extra)
            print(
                f"{key} seed {seed}: "
                + ", ".join(
                    f"{s}: c={e['c']:.3f} r={e['r']:.3f}" for s, e in extra.items()
                ),
                flush=True,
            )
        names = list(runs[0])
        sets = list(runs[0][names[0]])
        shifts = [s for s in sets if s != "ID"]
        correct = {n: {s: [r[n][s] for r in runs] for s in sets} for n in names}
        acc = {
            n: {s: 100 * np.array([c.mean() for c in correct[n][s]]) for s in sets}
            for n in names
        }
        for n in names:
            acc[n]["OOD mean"] = np.mean([acc[n][s] for s in shifts], axis=0)
        # bench_wordnet_seeds' bootstrap (fractions), in points here
        intervals = {
            pair: {c: [100 * v for v in iv] for c, iv in cols.items()}
            for pair, cols in paired_bootstrap(
                correct, PAIRS, sets, n_boot=args.n_boot
            ).items()
        }
        print(f"\n{key} ({BENCHMARKS[key]}), seeds {args.seeds}, "
              f"{time.perf_counter() - start:.0f} s\n")  # fmt: skip
        print("| method | ID | OOD mean |")
        print("|:--|--:|--:|")
        for n in names:
            cells = []
            for c in ("ID", "OOD mean"):
                v = acc[n][c]
                sd = v.std(ddof=1) if len(v) > 1 else 0.0
                cells.append(f"{v.mean():.2f} ± {sd:.2f}")
            print(f"| {n} | " + " | ".join(cells) + " |")
        print("\n| pair | Δ ID [95 %] | Δ OOD mean [95 %] |")
        print("|:--|--:|--:|")
        for a, b in PAIRS:
            cells = []
            for c in ("ID", "OOD mean"):
                d = (acc[a][c] - acc[b][c]).mean()
                lo, hi = intervals[f"{a} - {b}"][c]
                cells.append(f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]")
            print(f"| {a} - {b} | " + " | ".join(cells) + " |")
        print(flush=True)
        result["benchmarks"][key] = {
            "name": BENCHMARKS[key],
            "accuracy": {
                n: {c: acc[n][c].tolist() for c in [*sets, "OOD mean"]} for n in names
            },
            "intervals": intervals,
            "offsets": extras,
        }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, default=float)


if __name__ == "__main__":
    main()
