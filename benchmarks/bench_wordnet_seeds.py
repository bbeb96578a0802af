"""The embedded WordNet benchmark over several train/validation redraws.

Runs the comparison of ``skvrf demo`` (every method tuned on ID validation
only) for each seed, plus VRF variants that use the paper's weight parameters
(threshold 1.5, temperature 0.6) with the paper's k rule (``k="auto"``, 0.1 % of
the ZSF set) and with the authors' scripts' rule (``k="authors"``), and prints
mean and standard deviation of the accuracy on ID test and on each shift.

Usage::

    python benchmarks/bench_wordnet_seeds.py --seeds 0 1 2 3 4

Embeddings are cached by ``skvrf demo`` (first run: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import wordnet_feature_suite
from skvrf.evaluation import compare_methods, evaluate_shifts


def run(seed):
    suite = wordnet_feature_suite(seed=seed, verbose=0)
    zs = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
    ft = LogisticRegression(max_iter=2000).fit(*suite.train)
    estimators, selection = compare_methods(zs, ft, suite.train, suite.validation)
    X, y = suite.train
    val = {"X_val": suite.validation[0], "y_val": suite.validation[1]}
    estimators["VRF (paper a, b; authors' k)"] = VRFEnsembleClassifier(
        zs, FrozenEstimator(ft), k="authors"
    ).fit(X, y, **val)
    report = evaluate_shifts(estimators, suite.test, suite.shifts)
    k_authors = estimators["VRF (paper a, b; authors' k)"].k_
    return report.scores["accuracy"], selection, k_authors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        scores, selection, k_authors = run(seed)
        runs.append(scores)
        print(
            f"seed {seed}: alpha={selection['ose']['alpha']}, "
            f"VRF k={selection['vrf']['k']} (k_={selection['vrf']['k_used']}), "
            f"a={selection['vrf']['threshold']}, b={selection['vrf']['temperature']}, "
            f"|ZSF|={selection['zsf_size']}, authors' k={k_authors}",
            flush=True,
        )
    names = list(runs[0])
    sets = list(runs[0][names[0]])
    print(f"\naccuracy (%), mean ± sd over seeds {args.seeds}\n")
    print("| method | " + " | ".join(sets) + " |")
    print("|:--|" + "--:|" * len(sets))
    for name in names:
        cells = []
        for s in sets:
            v = 100 * np.array([r[name][s] for r in runs])
            cells.append(f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
