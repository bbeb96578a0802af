"""``skvrf demo``: VRF against its baselines on an embedded benchmark (or yours).

The main job of a new user: embeds an embedded benchmark (``--benchmark``: the
WordNet noun supersenses by default, or the WordNet verb supersenses, where the
zero-shot model is the robust one) with the
packaged all-MiniLM-L6-v2 (cached on disk after the first run), builds the
zero-shot head from class descriptions, fits a logistic regression as the
fine-tuned model (its C chosen on the validation split), and compares zero-shot,
fine-tuned, OSE, the entropy ensemble and VRF (tuned on ID validation, and with
the paper's defaults), all through :func:`skvrf.evaluation.compare_methods`.
Prints the ID/OOD table and writes it and the trade-off and weight plots to
``--out``.

On your own features it takes the feature files of ``skvrf evaluate`` (the same
options, the same layout, the same loader).
"""

from __future__ import annotations

import argparse
import sys
import time

from ..datasets._features import BENCHMARKS
from ._common import (
    DEFAULT_CS,
    FEATURE_FILE_HELP,
    add_store_arguments,
    comma_list,
    finetuned_component,
    load_evaluation_files,
    ood_spec,
    write_outputs,
)

__all__ = ["configure_parser", "main"]

_DESCRIPTION = f"""\
VRF against its baselines (zero-shot, fine-tuned, OSE, entropy ensemble, VRF
tuned on validation and with the paper's defaults), on an embedded benchmark
(--benchmark: wordnet-supersenses, the WordNet noun supersenses, by default;
wordnet-verbs, the WordNet verb supersenses, where the zero-shot model
degrades less under shift than the fine-tuned one) embedded by the packaged
MiniLM, or on your own features given as in 'skvrf evaluate': --train, --val,
--test, --ood NAME=FILE (repeatable) and --zeroshot (optionally --head). Every
choice is made on the validation split: the fine-tuned LogisticRegression's C
(best accuracy over --Cs, ties to the smaller C; an explicit --C is used as
given), OSE's alpha and VRF's k, threshold and temperature.

{FEATURE_FILE_HELP}

--export-features DIR writes the embedded benchmark in this layout (train.npz,
val.npz, test.npz, ood-NAME.npz, zeroshot.npz) and prints the options that
run the demo (or 'skvrf evaluate') on them.
"""

_OWN_FILES = ("train", "val", "test", "ood", "zeroshot", "head")
_BENCHMARK_ONLY = (
    "benchmark",
    "seed",
    "max_per_split",
    "cache_dir",
    "export_features",
)
DEFAULT_BENCHMARK = "wordnet-supersenses"


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``demo`` options to ``parser``."""
    parser.description = _DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--out", default="skvrf-demo", help="folder for the report and plots"
    )
    own = parser.add_argument_group(
        "your own features (instead of the benchmark; as in 'skvrf evaluate')"
    )
    own.add_argument("--train", help="training features (.npz)")
    own.add_argument("--val", help="ID validation features: calibration, tuning")
    own.add_argument("--test", help="ID test features")
    own.add_argument(
        "--ood",
        action="append",
        type=ood_spec,
        metavar="NAME=FILE",
        help="an OOD test set (repeat for several); may carry a class map",
    )
    own.add_argument("--zeroshot", help="class text embeddings (.npz)")
    own.add_argument(
        "--head", default=None, help="fine-tuned linear head file (default: fit LR)"
    )
    parser.add_argument(
        "--features", help=argparse.SUPPRESS
    )  # the old one-file layout: a clear error
    bench = parser.add_argument_group("the embedded benchmark")
    bench.add_argument(
        "--benchmark",
        choices=sorted(BENCHMARKS),
        default=None,
        help=f"which embedded benchmark (default {DEFAULT_BENCHMARK}; see "
        "skvrf.datasets.BENCHMARKS)",
    )
    bench.add_argument(
        "--seed",
        type=int,
        default=None,
        help="0 (default): the shipped train/validation split; another seed "
        "redraws it (grouped by lemma)",
    )
    bench.add_argument(
        "--max-per-split",
        type=int,
        default=None,
        help="subsample every split to at most this many rows (smoke runs)",
    )
    bench.add_argument("--cache-dir", default=None, help="embedding cache folder")
    bench.add_argument(
        "--export-features",
        metavar="DIR",
        help="also write the embedded benchmark as feature files to DIR",
    )
    parser.add_argument(
        "--C",
        type=float,
        default=None,
        help="LogisticRegression C, used as given (default: chosen on the "
        "validation split from --Cs)",
    )
    parser.add_argument(
        "--Cs",
        type=comma_list(float),
        default=list(DEFAULT_CS),
        help="LogisticRegression C candidates chosen from on the validation "
        "split by accuracy when --C is not given (default %(default)s)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the plots")
    parser.add_argument("--quiet", action="store_true", help="print only the table")
    add_store_arguments(parser)
    return parser


def _own_files(args):
    """The feature files of ``args``, or None for the embedded benchmark."""
    if args.features is not None:
        raise ValueError(
            "--features FILE.npz (one archive with every split) is no longer read: "
            "skvrf demo takes the feature files of 'skvrf evaluate', one .npz per "
            "split: --train, --val, --test, --ood NAME=FILE (repeatable) and "
            "--zeroshot, each holding 'features', 'labels' (and 'classes'), the "
            "zero-shot file 'class_embeddings' (and 'classes'). 'skvrf demo "
            "--export-features DIR' writes the benchmark that way; see 'skvrf demo "
            "--help'."
        )
    given = [name for name in _OWN_FILES if getattr(args, name) is not None]
    if not given:
        return None
    missing = [
        f"--{name}" for name in _OWN_FILES if name != "head" and name not in given
    ]
    if missing:
        raise ValueError(
            f"on your own features, give {', '.join(missing)} as well "
            "(--train, --val, --test, --ood NAME=FILE and --zeroshot, as in "
            "'skvrf evaluate')."
        )
    extra = [
        "--" + name.replace("_", "-")
        for name in _BENCHMARK_ONLY
        if getattr(args, name) is not None
    ]
    if extra:
        raise ValueError(
            f"{', '.join(extra)} only {'applies' if len(extra) == 1 else 'apply'} "
            "to the embedded benchmark, not to your own feature files."
        )
    return load_evaluation_files(args)


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf demo``; returns the exit status."""
    from .._heads import ZeroShotClassifier
    from ..datasets import benchmark_feature_suite, save_feature_suite
    from ..evaluation import compare_methods, evaluate_shifts, sweep_alpha

    verbose = 0 if args.quiet else 1

    def say(msg):
        if verbose:
            print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    files = _own_files(args)
    head = None
    if files is not None:
        name = "your features"
        zs, head = files["zeroshot"], files["head"]
        train, val, test, shifts = (
            files["train"],
            files["val"],
            files["test"],
            files["ood"],
        )
    else:
        suite = benchmark_feature_suite(
            args.benchmark or DEFAULT_BENCHMARK,
            seed=args.seed or 0,
            cache_dir=args.cache_dir,
            max_per_split=args.max_per_split,
            verbose=verbose,
        )
        if args.export_features:
            argv = save_feature_suite(suite, args.export_features)
            say(
                f"wrote the features to {args.export_features}/; run on them with\n"
                f"  skvrf demo {' '.join(argv)}"
            )
        name = suite.name
        zs = ZeroShotClassifier(suite.class_embeddings).fit(suite.train[0])
        train, val, test, shifts = (
            suite.train,
            suite.validation,
            suite.test,
            suite.shifts,
        )
    say(f"features ready in {time.perf_counter() - t0:.1f} s; fitting")
    ft, ft_info = finetuned_component(args, head, train, val, max_iter=2000)
    estimators, selection = compare_methods(zs, ft, train, val)
    selection = {"finetuned": ft_info, **selection}
    say(f"fitted and tuned in {time.perf_counter() - t0:.1f} s")
    sweep = sweep_alpha(estimators["OSE"], test, shifts)
    report = evaluate_shifts(
        estimators,
        test,
        shifts,
        scoring=("accuracy", "log_loss", "ece"),
        sweeps={"OSE": sweep},
    )
    ose, vrf = selection["ose"], selection["vrf"]
    c_text = (
        f"fine-tuned C={ft_info['C']:g}"
        + (" (given)" if ft_info["chosen_on"] == "--C" else "")
        + "; "
        if "C" in ft_info
        else ""
    )
    print(
        f"{name}\n"
        f"tuned on ID validation: {c_text}OSE alpha={ose['alpha']:g}; "
        f"VRF k={vrf['k']} (k_={vrf['k_used']}), threshold={vrf['threshold']:g}, "
        f"temperature={vrf['temperature']:g}; |ZSF|={selection['zsf_size']}\n"
    )
    print(report.to_markdown(metric="accuracy"))
    write_outputs(
        args.out,
        report,
        selection,
        estimators["VRF"],
        test,
        shifts,
        plots=not args.no_plots,
        title=name,
    )
    say(f"wrote {args.out}/ in {time.perf_counter() - t0:.1f} s")
    return 0
