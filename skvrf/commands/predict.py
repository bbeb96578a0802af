"""``skvrf predict``: predictions of a saved model on a feature file."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ._common import accuracy, check_features

__all__ = ["configure_parser", "main"]

_DESCRIPTION = """\
Load a model saved by 'skvrf fit' (skops; only reviewed skvrf, scikit-learn and
numpy types are accepted, see skvrf.persistence.TRUSTED_TYPES) and predict the
rows of a feature file ('features', as written by 'skvrf embed').

Writes an .npz with 'predictions' (n,), 'proba' (n, n_classes), 'classes', and,
for a VRF, 'weights' (n,) (the fine-tuned component's weight) and 'distances'
(n,); 'paths' is copied when the feature file has it. When the file has
'labels', the accuracy is printed.
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
    from ..io import feature_targets, load_features
    from ..persistence import load_model

    est = load_model(args.model)
    data = load_features(args.features, require=("features",))
    X = data["features"]
    check_features(est, X, args.features)
    proba = est.predict_proba(X)
    classes = np.asarray(est.classes_)
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
    if "labels" in data:
        acc = accuracy(feature_targets(data), out["predictions"])
        msg += f", accuracy {100 * acc:.2f}%"
    print(msg, file=sys.stderr)
    return 0
