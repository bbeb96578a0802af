"""``skvrf predict``: predictions of a saved model on a feature file or store."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np

from .._labels import shown_labels
from ._common import (
    accuracy,
    add_store_arguments,
    check_features,
    check_set_kinds,
    is_store_path,
)

__all__ = ["configure_parser", "main"]

_DESCRIPTION = """\
Load a model saved by 'skvrf fit' (skops; only reviewed skvrf, scikit-learn and
numpy types are accepted, see skvrf.persistence.TRUSTED_TYPES) and predict the
rows of a feature file or store.

--features takes an .npz feature file ('features', as written by 'skvrf
embed') or a feature store: a clip-retrieval / embedding-reader folder
(img_emb/img_emb_{N}.npy shards with metadata/metadata_{N}.parquet), a
CLIP_benchmark cache file (features_{split}.pt), or Parquet / Arrow files with
an embedding column (see --embedding-column, --label-column, --key-column).

With --out DIR (streaming): one Parquet file per input shard,
DIR/<shard>.parquet, its rows in the shard's order, with columns 'key' (the
metadata's key column where there is one, else '<shard>:<row>') and
'prediction', plus 'top1_class', 'top1_proba', ... with --top-k, 'weight' (a
VRF's w(x), the fine-tuned component's weight) with --weights and 'distance'
(d(x)) with --distances. Memory is bounded by the chunk (--chunk-rows), not the
store. A shard is written under a temporary name and renamed when complete:
after an interruption, run the same command again; it resumes at the first
unfinished shard and the result equals an uninterrupted run. With --scheduler
ADDRESS the shards are predicted on a Dask cluster (the model is sent to each
worker once; the workers must see the store and DIR).

With --out FILE.npz (for inputs that fit in memory): 'predictions' (n,),
'proba' (n, n_classes), 'classes', and, for a VRF, 'weights' (n,) and
'distances' (n,); 'paths' is copied when the feature file has it.

Labels, probabilities, w(x) and d(x) come from one pass (one neighbour search
per chunk). When the input has labels, the accuracy is printed.

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
    parser.add_argument(
        "--features", required=True, help="feature file (.npz) or feature store"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output folder of Parquet shards, or one .npz file",
    )
    add_store_arguments(parser, embedding=True)
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help="rows read at a time (default: about 64 MiB of float32 features)",
    )
    parser.add_argument(
        "--working-memory",
        type=int,
        default=None,
        metavar="MIB",
        help="MiB for the model's row chunks (scikit-learn's working_memory, "
        "default 1024); lower it to lower the peak memory with many classes",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="Parquet output: write the K most probable classes and probabilities",
    )
    parser.add_argument(
        "--weights", action="store_true", help="Parquet output: VRF's w(x)"
    )
    parser.add_argument(
        "--distances", action="store_true", help="Parquet output: VRF's d(x)"
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler (e.g. tcp://host:8786): predict the shards there",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace another run's predictions in --out",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def _accuracy_message(y, predictions, classes):
    acc = accuracy(y, predictions)
    msg = f", accuracy {100 * acc:.2f}%"
    unknown = ~np.isin(y, classes)
    if unknown.any():
        msg += (
            f" ({int(unknown.sum())} rows have labels the model does not "
            f"predict: {shown_labels(np.unique(y[unknown]), 6)}; counted as errors)"
        )
    return msg


def _open_store(args):
    """The --features store, opened with the store options of the command line."""
    from ..io import open_store

    return open_store(
        args.features,
        format=args.format,
        label_column=args.label_column,
        key_column=args.key_column,
        embedding_column=args.embedding_column,
        chunk_rows=args.chunk_rows,
    )


def _load_input(args):
    """``(X, y, class_map, paths)`` of the --features input, read whole."""
    from ..io import feature_class_map, feature_targets, load_features

    if is_store_path(args.features, args.format):
        store = _open_store(args)
        X, y, keys = store.read()
        if X.dtype == np.float16:
            X = X.astype(np.float32)
        return X, y, store.class_map, keys
    data = load_features(args.features, require=("features",))
    y = feature_targets(data) if "labels" in data else None
    return (
        data["features"],
        y,
        feature_class_map(data, args.features),
        data.get("paths"),
    )


def _predict_npz(args, est):
    from ..stores import predict_chunks

    X, y, class_map, paths = _load_input(args)
    check_features(est, X, args.features)
    check_set_kinds(
        f"the --features ({args.features})",
        y,
        class_map,
        {f"the model's classes ({args.model})": est.classes_},
    )
    n = X.shape[0]
    proba = weights = distances = classes = None
    for cols in predict_chunks(est, X, class_map=class_map):
        if proba is None:
            classes = np.asarray(cols.classes)
            proba = np.empty((n, classes.shape[0]))
            if cols.weights is not None:
                weights, distances = np.empty(n), np.empty(n)
        proba[cols.rows] = cols.proba
        if weights is not None:
            weights[cols.rows] = cols.weights
            distances[cols.rows] = cols.distances
    out = {
        "predictions": classes[np.argmax(proba, axis=1)],
        "proba": proba,
        "classes": classes,
    }
    if weights is not None:
        out["distances"] = distances
        out["weights"] = weights
    if paths is not None:
        out["paths"] = paths
    np.savez(args.out, **out)
    msg = f"wrote {args.out}: {n} predictions"
    if class_map is not None:
        msg += f" over the file's class map ({len(classes)} classes)"
    if y is not None:
        msg += _accuracy_message(y, out["predictions"], classes)
    print(msg, file=sys.stderr)
    return 0


def _predict_stream(args, est):
    from ..stores import predict_store

    store = _open_store(args)
    check_features(
        est, np.empty((0, store.n_features)), args.features
    )  # the dimension, before any work
    if store.has_labels:  # the kind of the labels, from the first chunk
        first = next(store.iter_shard(0))
        check_set_kinds(
            f"the --features ({args.features})",
            first.y,
            store.class_map,
            {f"the model's classes ({args.model})": est.classes_},
        )
    client = None
    if args.scheduler:
        from ..utils import import_optional

        distributed = import_optional("distributed", "skvrf predict --scheduler")
        client = distributed.Client(args.scheduler)
    try:
        summary = predict_store(
            est,
            store,
            args.out,
            top_k=args.top_k,
            weights=args.weights,
            distances=args.distances,
            model_id=_file_digest(args.model),
            overwrite=args.overwrite,
            progress=not args.quiet,
            client=client,
            working_memory=args.working_memory,
        )
    finally:
        if client is not None:
            client.close()
    msg = (
        f"wrote {args.out}: {summary['rows']} predictions in {summary['shards']} "
        f"Parquet shard(s)"
    )
    if summary["skipped"]:
        msg += f"; {summary['skipped']} shard(s) were complete already (resumed)"
    if "correct" in summary and summary["rows"]:
        msg += (
            f", accuracy {100 * summary['correct'] / summary['rows']:.2f}% on the "
            "rows predicted now"
        )
        if summary["unknown"]:
            msg += (
                f" ({summary['unknown']} rows have labels the model does not "
                "predict; counted as errors)"
            )
    print(msg, file=sys.stderr)
    return 0


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
    from ..persistence import load_model

    est = load_model(args.model)
    if os.fspath(args.out).lower().endswith(".npz"):
        if args.scheduler or args.top_k or args.weights or args.distances:
            raise ValueError(
                "--scheduler, --top-k, --weights and --distances apply to a "
                "Parquet output folder; an .npz --out always holds every "
                "probability and, for a VRF, the weights and distances."
            )
        if args.working_memory is None:
            return _predict_npz(args, est)
        from sklearn import config_context

        with config_context(working_memory=args.working_memory):
            return _predict_npz(args, est)
    return _predict_stream(args, est)
