"""Helpers shared by the feature-file subcommands."""

from __future__ import annotations

import argparse
import os

import numpy as np

from ..io import (
    FeatureFileError,
    feature_class_map,
    feature_targets,
    load_features,
    load_linear_head_file,
    load_zeroshot_head,
)

FEATURE_FILE_HELP = (
    "Feature files are .npz archives as written by 'skvrf embed': 'features' "
    "(n, d), 'labels' (n,) indices into 'classes' (optional class names; without "
    "them the integer labels are the classes). The zero-shot file holds "
    "'class_embeddings' (n_classes, d) and optionally 'classes' (default: the "
    "training file's classes, in order) and 'logit_scale' (default 100)."
)


def ood_spec(text: str) -> tuple[str, str]:
    """argparse type of ``--ood NAME=FILE``."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(
            f"expected NAME=FILE (e.g. sketch=sketch.npz), got {text!r}"
        )
    return name, path


def comma_list(cast):
    """argparse type of a comma-separated list of ``cast`` values."""

    def parse(text: str):
        try:
            return [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return parse


def k_value(text):
    """An int, or one of the strings ``auto`` / ``authors``."""
    if text in ("auto", "authors"):
        return text
    try:
        k = int(text)
    except ValueError:
        raise ValueError(
            f"k must be an int, 'auto' or 'authors', got {text!r}"
        ) from None
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    return k


def load_set(path, *, class_map=False):
    """``(X, y)`` (or ``(X, y, class_map)``) of a labelled feature file."""
    data = load_features(path)
    X, y = data["features"], feature_targets(data)
    if not class_map:
        return X, y
    return X, y, feature_class_map(data, os.fspath(path))


def load_components(train_path, zeroshot_path, head_path=None):
    """Training data and the zero-shot / fine-tuned components.

    Returns ``(X, y, classes, zeroshot, head)``: ``head`` is the fitted linear
    head read from ``head_path``, or None (the caller fits a classifier).
    """
    data = load_features(train_path)
    X, y = data["features"], feature_targets(data)
    classes = data.get("classes")
    zs = load_zeroshot_head(zeroshot_path, default_classes=classes)
    _check_dim(zs, X, zeroshot_path, train_path)
    head = None
    if head_path is not None:
        head = load_linear_head_file(head_path, default_classes=classes)
        _check_dim(head, X, head_path, train_path)
    return X, y, zs, head


def _check_dim(head, X, head_path, data_path):
    if head.n_features_in_ != X.shape[1]:
        raise FeatureFileError(
            f"{os.fspath(head_path)} has weights for {head.n_features_in_} features "
            f"but {os.fspath(data_path)} has {X.shape[1]}."
        )


def check_features(est, X, path):
    """Raise a clear error when ``X`` does not fit a fitted estimator."""
    n = getattr(est, "n_features_in_", None)
    if n is not None and X.shape[1] != n:
        raise FeatureFileError(
            f"{os.fspath(path)} has {X.shape[1]} features but the model expects {n}."
        )


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_outputs(out, report, selection, vrf, test, ood, *, plots=True, title=None):
    """Write report.md, report.json, selection.json and the two plots to ``out``.

    Returns the names of the files written. Plots are skipped (with a message on
    stderr) when matplotlib is missing.
    """
    import json
    import sys

    os.makedirs(out, exist_ok=True)
    heading = f"# {title}\n\n" if title else ""
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(heading + report.to_markdown().rstrip("\n") + "\n")
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report.to_dict(), f, indent=2)
    with open(os.path.join(out, "selection.json"), "w", encoding="utf-8") as f:
        json.dump(selection, f, indent=2, default=_json_default)
    written = ["report.md", "report.json", "selection.json"]
    if not plots:
        return written
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        from ..plotting import RobustnessDisplay, WeightDisplay
    except ImportError as exc:
        print(f"plots skipped: {exc}", file=sys.stderr)
        return written
    display = RobustnessDisplay.from_report(report)
    if title:
        display.ax_.set_title(title)
    display.figure_.savefig(
        os.path.join(out, "tradeoff.png"), dpi=120, bbox_inches="tight"
    )
    plt.close(display.figure_)
    display = WeightDisplay.from_estimator(vrf, test, ood)
    display.figure_.savefig(
        os.path.join(out, "weights.png"), dpi=120, bbox_inches="tight"
    )
    plt.close(display.figure_)
    return [*written, "tradeoff.png", "weights.png"]
