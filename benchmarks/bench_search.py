"""Benchmark of ``VRFEnsembleClassifierCV`` against ``GridSearchCV``.

Both search the same 5 x 5 x 5 grid of ``k`` x ``threshold`` x ``temperature``
over the same folds of one seeded, generated data set: class centres in
``--n-features`` dimensions, training rows around them, a zero-shot head
(:class:`skvrf.ZeroShotClassifier`) whose class embeddings are noisy copies of
the centres, and a fine-tuned ``LogisticRegression``. Both components are
calibrated on a held-out set (``X_val``, passed to every fold's fit).

Prints the wall time of each search, the speed-up, whether ``best_params_``
agree and the largest difference of ``mean_test_score``.

``--scorer-path`` compares instead ``VRFEnsembleClassifierCV``'s two ways of
scoring accuracy (best of ``--repeat`` runs each, ``GridSearchCV`` not run):
the vectorised count (``scoring="accuracy"``, the whole grid broadcast chunk by
chunk) and scikit-learn's public scorer called once per candidate and fold
(``scoring=get_scorer("accuracy")``, a callable, which takes that path), and
prints a fold's scoring time (neighbour search included) beside its fit time.
Measured on 2026-11-29 (2 shared cores, load 4 to 6), defaults: scoring 0.07 s
per fold vectorised against 0.25 s through the scorer, beside 1.9 to 2.1 s of
fitting (search 11.65 s against 13.07 s, best of 3). The count pays where the
scorer's per-candidate overhead dominates (many candidates, few classes); with
1,000 classes the two were within the machine's noise. This is why only
accuracy, the default, is vectorised.

Usage::

    python benchmarks/bench_search.py
    python benchmarks/bench_search.py --n-samples 2000 --scoring neg_log_loss
    python benchmarks/bench_search.py --scorer-path --n-classes 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvrf import VRFEnsembleClassifier, VRFEnsembleClassifierCV, ZeroShotClassifier

KS = (1, 3, 10, 30, "auto")
THRESHOLDS = (1.0, 1.25, 1.5, 1.75, 2.0)
TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)


def make_data(n_samples, n_features, n_classes, n_val, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, n_features))
    text = centers + rng.normal(scale=1.0, size=centers.shape)

    def rows(n):
        y = rng.integers(0, n_classes, n)
        return centers[y] * 0.2 + rng.normal(size=(n, n_features)), y

    X, y = rows(n_samples)
    X_val, y_val = rows(n_val)
    return X, y, X_val, y_val, text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=5000)
    parser.add_argument("--n-features", type=int, default=128)
    parser.add_argument("--n-classes", type=int, default=20)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--scoring", default="accuracy")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--scorer-path", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    X, y, X_val, y_val, text = make_data(
        args.n_samples, args.n_features, args.n_classes, args.n_val
    )
    zs = ZeroShotClassifier(text, logit_scale=10.0)
    ft = LogisticRegression(max_iter=200)
    cv = StratifiedKFold(args.cv, shuffle=True, random_state=0)
    grid = {
        "k": list(KS),
        "threshold": list(THRESHOLDS),
        "temperature": list(TEMPERATURES),
    }
    n_candidates = len(KS) * len(THRESHOLDS) * len(TEMPERATURES)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"X {X.shape}, {args.n_classes} classes, X_val {X_val.shape}; "
        f"{n_candidates} candidates x {args.cv} folds, scoring={args.scoring}, "
        f"n_jobs={args.n_jobs}"
    )

    def cv_search(scoring):
        t0 = time.perf_counter()
        search = VRFEnsembleClassifierCV(
            zs,
            ft,
            ks=KS,
            thresholds=THRESHOLDS,
            temperatures=TEMPERATURES,
            cv=cv,
            scoring=scoring,
            n_jobs=args.n_jobs,
        ).fit(X, y, X_val=X_val, y_val=y_val)
        return search, time.perf_counter() - t0

    warnings.simplefilter("ignore", UserWarning)  # k clipped to small ZSF sets
    if args.scorer_path:
        runs = {"vectorised": "accuracy", "scorer": get_scorer("accuracy")}
        best, searches = {}, {}
        for _ in range(args.repeat):  # round-robin: both see the same load
            for name, scoring in runs.items():
                searches[name], t = cv_search(scoring)
                best[name] = min(best.get(name, np.inf), t)
        for name, t in best.items():
            res = searches[name].cv_results_  # the last run's fold times
            score = res["mean_score_time"].sum()  # a fold's scoring, all candidates
            print(
                f"{name:10s}: best of {args.repeat}: {t:8.2f} s; per fold: scoring "
                f"{score:.2f} s, fit {res['mean_fit_time'][0]:.2f} s"
            )
        a, b = (searches[n].cv_results_["mean_test_score"] for n in runs)
        print(f"scorer / vectorised: {best['scorer'] / best['vectorised']:.2f}x")
        print(f"max |mean_test_score difference|: {np.max(np.abs(a - b)):.3g}")
        return

    search, t_search = cv_search(args.scoring)
    print(f"VRFEnsembleClassifierCV: {t_search:8.2f} s  {search.best_params_}")

    t0 = time.perf_counter()
    reference = GridSearchCV(
        VRFEnsembleClassifier(zs, ft),
        grid,
        cv=cv,
        scoring=args.scoring,
        n_jobs=args.n_jobs,
    ).fit(X, y, X_val=X_val, y_val=y_val)
    t_grid = time.perf_counter() - t0
    print(f"GridSearchCV:            {t_grid:8.2f} s  {reference.best_params_}")

    diff = np.max(
        np.abs(
            search.cv_results_["mean_test_score"]
            - reference.cv_results_["mean_test_score"]
        )
    )
    print(f"speed-up: {t_grid / t_search:.1f}x")
    print(f"best_params_ agree: {search.best_params_ == reference.best_params_}")
    print(f"max |mean_test_score difference|: {diff:.3g}")
    print(f"best score: {search.best_score_:.4f}")


if __name__ == "__main__":
    main()
