"""``skvrf predict``: predictions of a saved model on a feature file."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ._common import accuracy, check_features, check_set_kinds

__all__ = ["configure_parser", "main"]

_DESCRIPTION = """\
Load a model saved by 'skvrf fit' (skops; only reviewed skvrf, scikit-learn and
numpy types are accepted, see skvrf.persistence.TRUSTED_TYPES) and predict the
rows of a feature file ('features', as written by 'skvrf embed').

Writes an .npz with 'predictions' (n,), 'proba' (n, n_classes), 'classes', and,
for a VRF, 'weights' (n,) (the fine-tuned component's weight) and 'distances'
(n,); 'paths' is copied when the feature file has it. When the file has
'labels', the accuracy is printed.

A feature file that carries a class map (like an 'skvrf evaluate' --ood file) is
predicted through it, as 'skvrf evaluate' scores it: with 'class_map_kept' (the
model classes the set covers, e.g. ImageNet-A/R) the predictions are restricted
to those classes; with 'class_map_source'/'class_map_target' (ObjectNet-style
pooled labels) each target label gets the max logit over its model classes.
Each component's logits are mapped before its calibrated softmax and the mix
(the model's with_class_map). 'classes' and the columns of 'proba' are then the
map's classes, in the map's order.

The file's labels must be of the model's kind (class names or numbers, as in
the training file); a mismatch is an error naming both.
"""


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``predict`` arguments to ``parser``.

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
    parser.add_argument("model", help="model file from 'skvrf fit' (.skops)")
    parser.add_argument("--features", required=True, help="feature file (.npz)")
    parser.add_argument("--out", required=True, help="output predictions (.npz)")
    return parser


def main(args: argparse.Namespace) -> int:
    """Run ``skvrf predict`` with parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        From a parser set up by :func:`configure_parser`.

    Returns
    -------
    status : int
        0 on success.
    """
    from .._classmap import ClassMappedClassifier
    from ..io import feature_class_map, feature_targets, load_features
    from ..persistence import load_model

    est = load_model(args.model)
    data = load_features(args.features, require=("features",))
    X = data["features"]
    check_features(est, X, args.features)
    class_map = feature_class_map(data, args.features)
    y = feature_targets(data) if "labels" in data else None
    check_set_kinds(
        f"the --features ({args.features})",
        y,
        class_map,
        {f"the model's classes ({args.model})": est.classes_},
    )
    view = est
    if class_map is not None:
        view = (
            est.with_class_map(class_map)
            if hasattr(est, "with_class_map")
            else ClassMappedClassifier(est, class_map).fit()
        )
    proba = view.predict_proba(X)
    classes = np.asarray(view.classes_)
    out = {
        "predictions": classes[np.argmax(proba, axis=1)],
        "proba": proba,
        "classes": classes,
    }
    if hasattr(est, "zsf_distances"):
        out["distances"] = est.zsf_distances(X)
        out["weights"] = est.ensemble_weights(X)
    if "paths" in data:
        out["paths"] = data["paths"]
    np.savez(args.out, **out)
    msg = f"wrote {args.out}: {X.shape[0]} predictions"
    if class_map is not None:
        msg += f" over the file's class map ({len(classes)} classes)"
    if y is not None:
        acc = accuracy(y, out["predictions"])
        msg += f", accuracy {100 * acc:.2f}%"
        unknown = ~np.isin(y, classes)
        if unknown.any():
            shown = np.unique(y[unknown])[:6].tolist()
            msg += (
                f" ({int(unknown.sum())} rows have labels the model does not "
                f"predict: {shown}; counted as errors)"
            )
    print(msg, file=sys.stderr)
    return 0
