"""``skvrf demo``: VRF against its baselines on the embedded benchmark (or yours).

The main job of a new user: embeds the WordNet noun-supersense benchmark with the
packaged all-MiniLM-L6-v2 (cached on disk after the first run), builds the
zero-shot head from class descriptions, fits a logistic regression as the
fine-tuned model, and compares zero-shot, fine-tuned, OSE, the entropy ensemble
and VRF (tuned on ID validation, and with the paper's defaults), all through
:func:`skvrf.evaluation.compare_methods`. Prints the ID/OOD table and writes it and
the trade-off and weight plots to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from ._common import write_outputs

__all__ = ["configure_parser", "main"]


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``demo`` options to ``parser``."""
    parser.add_argument(
        "--out", default="skvrf-demo", help="folder for the report and plots"
    )
    parser.add_argument(
        "--features",
        metavar="FILE.npz",
        help="run on your own precomputed features instead: one .npz with "
        "class_embeddings, train_features/train_labels, val_features/val_labels, "
        "test_features/test_labels, and ood_NAME_features/ood_NAME_labels per "
        "shift set (labels index the rows of class_embeddings)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="0: the shipped train/validation split; another seed redraws it "
        "(grouped by lemma)",
    )
    parser.add_argument("--C", type=float, default=1.0, help="LogisticRegression C")
    parser.add_argument(
        "--max-per-split",
        type=int,
        default=None,
        help="subsample every split to at most this many rows (smoke runs)",
    )
    parser.add_argument("--cache-dir", default=None, help="embedding cache folder")
    parser.add_argument(
        "--export-features",
        metavar="FILE.npz",
        help="also write the embedded benchmark in the --features format",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf demo``; returns the exit status."""
    from sklearn.linear_model import LogisticRegression

    from .._heads import ZeroShotClassifier
    from ..demo import load_feature_suite, save_feature_suite, wordnet_feature_suite
    from ..evaluation import compare_methods, evaluate_shifts, sweep_alpha

    verbose = 0 if args.quiet else 1

    def say(msg):
        if verbose:
            print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    if args.features:
        if not os.path.exists(args.features):
            raise FileNotFoundError(f"--features {args.features}: no such file")
        suite = load_feature_suite(args.features)
    else:
        suite = wordnet_feature_suite(
            seed=args.seed,
            cache_dir=args.cache_dir,
            max_per_split=args.max_per_split,
            verbose=verbose,
        )
    if args.export_features:
        save_feature_suite(suite, args.export_features)
    say(f"features ready in {time.perf_counter() - t0:.1f} s; fitting")
    zs = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
    ft = LogisticRegression(C=args.C, max_iter=2000).fit(*suite.train)
    estimators, selection = compare_methods(zs, ft, suite.train, suite.validation)
    say(f"fitted and tuned in {time.perf_counter() - t0:.1f} s")
    sweep = sweep_alpha(estimators["OSE"], suite.test, suite.shifts)
    report = evaluate_shifts(
        estimators,
        suite.test,
        suite.shifts,
        scoring=("accuracy", "log_loss", "ece"),
        sweeps={"OSE": sweep},
    )
    ose, vrf = selection["ose"], selection["vrf"]
    print(
        f"{suite.name}\n"
        f"tuned on ID validation: OSE alpha={ose['alpha']:g}; VRF k={vrf['k']} "
        f"(k_={vrf['k_used']}), threshold={vrf['threshold']:g}, "
        f"temperature={vrf['temperature']:g}; |ZSF|={selection['zsf_size']}\n"
    )
    print(report.to_markdown(metric="accuracy"))
    write_outputs(
        args.out,
        report,
        selection,
        estimators["VRF"],
        suite.test,
        suite.shifts,
        plots=not args.no_plots,
        title=suite.name,
    )
    say(f"wrote {args.out}/ in {time.perf_counter() - t0:.1f} s")
    return 0
