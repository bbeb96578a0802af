"""``skvrf fit``: fit an ensemble on feature files and save it with skops."""

from __future__ import annotations

import argparse
import sys

from ..io import FeatureFileError
from ._common import (
    FEATURE_FILE_HELP,
    add_store_arguments,
    check_set_kinds,
    is_store_path,
    k_value,
    load_components,
    load_heads,
    load_set,
    probe,
)

__all__ = ["configure_parser", "main"]

_DESCRIPTION = f"""\
Fit a VRF, OSE or entropy ensemble of a zero-shot head and a fine-tuned model on
feature files and save it with skops (a format that runs no code on load; read it
back with 'skvrf predict' or skvrf.persistence.load_model).

{FEATURE_FILE_HELP}

The fine-tuned component is a LogisticRegression (fitted inside the ensemble,
calibrated out-of-fold unless --val is given) or the fixed head of --head.
With --head and a --train store (a folder, Parquet, Arrow or .pt file), both
components are fixed and the store is streamed chunk by chunk
(skvrf.stores.fit_store): its features are never loaded whole, and peak memory
is the ZSF bank plus one chunk. A --val store is read into memory. Without
--head the LogisticRegression needs every row: the store is read whole.
A saved VRF contains the normalised embeddings of its Zero-Shot Failure training
rows: the model file holds (a function of) training data.
"""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``fit`` arguments to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The (sub)command parser.

    Returns
    -------
    parser : argparse.ArgumentParser
        The same parser.
    """
    parser.description = _DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--train", required=True, help="training features (.npz or a feature store)"
    )
    parser.add_argument(
        "--val", default=None, help="held-out ID features for calibration"
    )
    parser.add_argument(
        "--zeroshot", required=True, help="class text embeddings (.npz)"
    )
    parser.add_argument(
        "--head", default=None, help="fine-tuned linear head file (default: fit LR)"
    )
    parser.add_argument("--method", choices=("vrf", "ose", "entropy"), default="vrf")
    parser.add_argument(
        "--selection",
        default=None,
        metavar="FILE",
        help="selection.json of 'skvrf evaluate': take its choices (VRF's k, "
        "threshold, temperature; OSE's alpha; the LogisticRegression's C) for "
        "the options not given here",
    )
    # None: not given; resolved from --selection, else from _DEFAULTS.
    parser.add_argument(
        "--k",
        type=k_value,
        default=None,
        help="VRF: k (int, auto, authors). Not given: with --val, chosen on it "
        "(1, 3, 10, 30, 100, auto); without, auto",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="VRF: a. Not given: with --val, chosen on it among quantiles of the "
        "--val rows' distances (as 'skvrf evaluate' does); without --val, the "
        "paper's 1.5, which suits CLIP ViT-B/16-like distances only",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        help="VRF: b. Not given: with --val, chosen on it among fractions of the "
        "distances' interquartile range; without --val, the paper's 0.6",
    )
    parser.add_argument("--alpha", type=float, help="OSE: alpha (default 0.5)")
    parser.add_argument("--C", type=float, help="LogisticRegression C (default 1)")
    parser.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        default="none",
        help="balanced: weight each row by n / (n_classes * its class's count) "
        "(scikit-learn's compute_sample_weight), in the fine-tuned fit, the "
        "calibration, the ZSF set's k and, with --val, the --val rows' "
        "calibration and the choice of VRF's values (so balanced accuracy is "
        "chosen for). Not with a --train feature store",
    )
    parser.add_argument("--save", required=True, help="output model (.skops)")
    add_store_arguments(parser)
    return parser


# The paper's VRF parameters, an even OSE mix, scikit-learn's C.
_DEFAULTS = {"k": "auto", "threshold": 1.5, "temperature": 0.6, "alpha": 0.5, "C": 1.0}
# selection.json section and key of each option (as `skvrf evaluate` writes it)
_SELECTED = {
    "k": ("vrf", "k"),
    "threshold": ("vrf", "threshold"),
    "temperature": ("vrf", "temperature"),
    "alpha": ("ose", "alpha"),
    "C": ("finetuned", "C"),
}


def resolve_choices(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options not given: from ``--selection``, else the defaults.

    An option given on the command line wins; a value ``skvrf evaluate`` chose
    on validation data (its ``selection.json``) comes next; the paper's
    defaults last. ``C`` is taken only when a LogisticRegression is fitted
    (no ``--head``).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed ``fit`` arguments; changed in place.

    Returns
    -------
    args : argparse.Namespace
        The same namespace, every option set.
    """
    import json

    selection = {}
    if args.selection is not None:
        try:
            with open(args.selection, encoding="utf-8") as f:
                selection = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{args.selection} is not JSON ({exc}); give the selection.json "
                "that 'skvrf evaluate --out DIR' writes."
            ) from None
        sections = {section for section, _ in _SELECTED.values()}
        present = sections & set(selection) if isinstance(selection, dict) else ()
        if not present or any(not isinstance(selection[s], dict) for s in present):
            raise ValueError(
                f"{args.selection} holds none of {sorted(sections)}: it is not a "
                "selection.json of 'skvrf evaluate'."
            )
    args.defaulted = set()
    for name, (section, key) in _SELECTED.items():
        if getattr(args, name) is not None:
            continue
        chosen = selection.get(section, {}).get(key)
        if name == "C" and args.head is not None:
            chosen = None  # the head is used as it is
        if chosen is not None and name == "k":
            chosen = k_value(str(chosen))
        if chosen is None:
            args.defaulted.add(name)
        setattr(args, name, _DEFAULTS[name] if chosen is None else chosen)
    return args


_TUNED = ("k", "threshold", "temperature")


def _tunes(args):
    """Whether ``fit`` chooses VRF's values not given on --val."""
    return (
        args.method == "vrf"
        and args.val is not None
        and bool(args.defaulted & set(_TUNED))
    )


def _balanced(args, y):
    """The rows' weights for ``--class-weight`` (None: unweighted)."""
    if args.class_weight != "balanced":
        return None
    from sklearn.utils.class_weight import compute_sample_weight

    return compute_sample_weight("balanced", y)


def _fit_vrf(est, fit, args, val):
    """Fit ``est`` (by ``fit``), then choose on ``val`` every VRF value that was
    not given (the data-driven candidates of ``skvrf evaluate``), without
    refitting; else the fit as it is."""
    import warnings

    from .._search import tune_fitted
    from ..evaluation import DEFAULT_VRF_GRID

    if not _tunes(args):
        fit(est)
        return est
    with warnings.catch_warnings():
        # the placeholder values are replaced below by values inside the
        # --val rows' distances
        warnings.filterwarnings("ignore", message="threshold=.* lies")
        fit(est)
    given = {"k": "ks", "threshold": "thresholds", "temperature": "temperatures"}
    grid = {
        attr: (
            DEFAULT_VRF_GRID[attr] if name in args.defaulted else [getattr(args, name)]
        )
        for name, attr in given.items()
    }
    tuned, info = tune_fitted(
        est, val[0], val[1], sample_weight=_balanced(args, val[1]), **grid
    )
    chosen = info["best_params"]
    where = []
    for name, key in (
        ("threshold", "threshold_quantile"),
        ("temperature", "temperature_fraction"),
    ):
        if info[key] is not None:
            kind = "quantile" if name == "threshold" else "x IQR"
            where.append(f"{name} at {kind} {info[key]:g}")
    print(
        f"chosen on {args.val} (validation accuracy {info['val_accuracy']:.4f}): "
        f"k={chosen['k']} (k_={tuned.k_}), threshold={chosen['threshold']:.4g}, "
        f"temperature={chosen['temperature']:.4g}"
        + (f" ({', '.join(where)} of the --val rows' distances)" if where else ""),
        file=sys.stderr,
    )
    return tuned


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf fit`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`configure_parser`.

    Returns
    -------
    status : int
        0 on success.
    """
    import numpy as np
    from sklearn.frozen import FrozenEstimator

    from .. import HeldOut

    resolve_choices(args)
    if args.head is not None and is_store_path(args.train):
        return _fit_store_main(args)
    X, y, zs, head, model_sets = load_components(
        args.train, args.zeroshot, args.head, label_column=args.label_column
    )
    val = (
        load_set(args.val, label_column=args.label_column)
        if args.val is not None
        else (None, None)
    )
    if val[0] is not None:
        if val[0].shape[1] != X.shape[1]:
            raise ValueError(
                f"{args.val} has {val[0].shape[1]} features but {args.train} has "
                f"{X.shape[1]}."
            )
        check_set_kinds(f"the --val ({args.val})", val[1], None, model_sets)
    if head is None:  # the probe of 'skvrf evaluate', fitted the same way
        X = np.asarray(X, dtype=np.float64)
        ft = probe(args.C)
    else:
        ft = FrozenEstimator(head)
    est = _ensemble(args, zs, ft)
    weights = _balanced(args, y)
    if val[0] is None:
        est.fit(X, y, sample_weight=weights)
    else:
        held = HeldOut(*val, sample_weight=_balanced(args, val[1]))
        est = _fit_vrf(
            est, lambda e: e.fit(X, y, X_val=held, sample_weight=weights), args, val
        )
    return _save(est, args)


def _ensemble(args, zs, ft):
    from .. import (
        EntropyEnsembleClassifier,
        OutputSpaceEnsembleClassifier,
        VRFEnsembleClassifier,
    )

    if args.method == "vrf":
        return VRFEnsembleClassifier(
            zs, ft, k=args.k, threshold=args.threshold, temperature=args.temperature
        )
    if args.method == "ose":
        return OutputSpaceEnsembleClassifier(zs, ft, alpha=args.alpha)
    return EntropyEnsembleClassifier(zs, ft)


def _save(est, args):
    from ..persistence import save_model

    save_model(est, args.save)
    print(
        f"wrote {args.save}: {type(est).__name__}, {len(est.classes_)} classes",
        file=sys.stderr,
    )
    return 0


def _fit_store_main(args):
    """``skvrf fit`` with fixed heads on a --train store: streamed."""
    import numpy as np
    from sklearn.frozen import FrozenEstimator

    from ..io import open_store
    from ..stores import fit_store

    if args.class_weight != "none":
        raise ValueError(
            "--class-weight is not available with a --train feature store (its "
            "rows are streamed); read the store into a .npz file, or weight "
            "from Python: estimator.fit(X, y, sample_weight=...)."
        )
    store = open_store(args.train, label_column=args.label_column)
    if not store.has_labels:
        raise FeatureFileError(
            f"{args.train}: the store has no labels; name the column that holds "
            "them (--label-column)."
        )
    zs, head, model_sets = load_heads(
        args.train, store.labels(), store.n_features, args.zeroshot, args.head
    )
    val_store = None
    if args.val is not None:
        val_store = open_store(args.val, label_column=args.label_column)
        if val_store.n_features != store.n_features:
            raise ValueError(
                f"{args.val} has {val_store.n_features} features but {args.train} "
                f"has {store.n_features}."
            )
        if val_store.has_labels:
            check_set_kinds(
                f"the --val ({args.val})", val_store.labels(), None, model_sets
            )
    est = _ensemble(args, zs, FrozenEstimator(head))
    if not _tunes(args):
        fit_store(est, store, val_store=val_store)
        return _save(est, args)
    # fit_store refuses an unlabelled val_store before any work
    rows = val_store.read(dtype=np.float32)
    val = (rows.X, rows.y)
    est = _fit_vrf(est, lambda e: fit_store(e, store, val_store=val_store), args, val)
    return _save(est, args)
