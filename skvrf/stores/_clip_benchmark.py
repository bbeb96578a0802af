"""CLIP_benchmark's feature caches (read) and result files (written).

CLIP_benchmark's linear-probe task caches the image features of each split in
its ``--feature_root``, one folder per model and dataset:
``features_{split}.pt`` (an (n, d) tensor, L2-normalised) and
``targets_{split}.pt`` (the (n,) integer class indices), for ``train``, ``val``
(optional) and ``test``. They are read with ``torch.load(weights_only=True)``
(tensors only, no code runs) and memory-mapped where the file allows
(``torch.save``'s zip format). torch is imported only here, and only when a
``.pt`` file is opened.

Its results are one JSON file per evaluation, ``{"dataset", "model",
"pretrained", "task", "metrics": {...}, "language"}``;
:func:`write_clip_benchmark_json` writes skvrf's results in that form so that
``clip_benchmark build`` and the tables built from it take them.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from ..io import FeatureFileError
from ..utils import import_optional
from ._base import FeatureStore, Shard, check_features_dtype, default_keys

__all__ = [
    "ClipBenchmarkStore",
    "clip_benchmark_metrics",
    "write_clip_benchmark_json",
]

_FEATURES = re.compile(r"^features_(?P<split>.+)\.pt$")


def _load_tensor(path, what):
    torch = import_optional("torch", f"reading CLIP_benchmark caches ({what})")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, EOFError, RuntimeError
        raise FeatureFileError(
            f"{path}: cannot be read as a tensor file with weights_only=True "
            f"({type(exc).__name__}: {exc}); it may be truncated, or hold objects "
            "other than tensors (refused)."
        ) from exc
    if not isinstance(obj, torch.Tensor):
        raise FeatureFileError(
            f"{path}: holds a {type(obj).__name__}, not a tensor ({what})."
        )
    return obj


def _split_files(path):
    """``(features file, targets file or None)`` of a cache path."""
    path = os.fspath(path)
    if os.path.isdir(path):
        splits = sorted(
            m.group("split") for f in os.listdir(path) if (m := _FEATURES.match(f))
        )
        if not splits:
            raise FeatureFileError(
                f"{path}: no features_<split>.pt files (a CLIP_benchmark feature "
                "cache holds features_train.pt, targets_train.pt, ...)."
            )
        if len(splits) > 1:
            options = ", ".join(os.path.join(path, f"features_{s}.pt") for s in splits)
            raise FeatureFileError(
                f"{path}: a CLIP_benchmark cache with several splits ({splits}); "
                f"open one of them: {options}."
            )
        path = os.path.join(path, f"features_{splits[0]}.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature store not found: {path}")
    match = _FEATURES.match(os.path.basename(path))
    targets = None
    if match:
        candidate = os.path.join(
            os.path.dirname(path), f"targets_{match.group('split')}.pt"
        )
        targets = candidate if os.path.isfile(candidate) else None
    return path, targets


class ClipBenchmarkStore(FeatureStore):
    """One split of a CLIP_benchmark linear-probe feature cache.

    ``path`` is ``features_{split}.pt`` (its ``targets_{split}.pt`` next to it
    gives the labels, the integer class indices) or a cache folder holding one
    split.
    """

    format = "clip_benchmark"

    def __init__(self, path, *, label_column=None, key_column=None, chunk_rows=None):
        features, targets = _split_files(path)
        if key_column is not None:
            raise FeatureFileError(
                f"{features}: a CLIP_benchmark cache has no key column; rows are "
                "keyed by file and row."
            )
        if label_column is not None:
            targets = os.path.join(os.path.dirname(features), label_column)
            if not os.path.isfile(targets):
                raise FeatureFileError(
                    f"{features}: the targets file {targets} (label_column) does "
                    "not exist."
                )
        X = _load_tensor(features, "features")
        if X.ndim != 2 or X.shape[0] == 0:
            raise FeatureFileError(
                f"{features}: features must be a non-empty (n, d) tensor, got "
                f"shape {tuple(X.shape)}."
            )
        dtype = str(X.dtype).replace("torch.", "")
        if dtype == "bfloat16":
            dtype = "float32"  # numpy has no bfloat16: chunks are converted
        dtype = check_features_dtype(dtype, features)
        self._tensor_path = features
        self._targets_path = targets
        name = os.path.basename(features)[: -len(".pt")]
        shard = Shard(0, name, features, X.shape[0], 0)
        super().__init__(features, [shard], X.shape[1], dtype, chunk_rows=chunk_rows)
        if targets is not None:
            y = _load_tensor(targets, "targets")
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise FeatureFileError(
                    f"{targets}: targets must be a (n,) tensor with one value per "
                    f"row of {features} ({X.shape[0]}); got shape {tuple(y.shape)}."
                )
            if y.is_floating_point() or y.is_complex():
                raise FeatureFileError(
                    f"{targets}: targets must be integer class indices, got {y.dtype}."
                )
            self.label_column = os.path.basename(targets)

    def _targets(self):
        return _load_tensor(self._targets_path, "targets").numpy()

    def _read_shard(self, shard):
        torch = import_optional("torch", "reading CLIP_benchmark caches")
        X = _load_tensor(shard.path, "features")
        y = self._targets() if self.has_labels else None
        for start in range(0, shard.n_rows, self.chunk_rows):
            part = X[start : start + self.chunk_rows]
            if part.dtype == torch.bfloat16:
                part = part.float()
            yield start, part.numpy(), y

    def _labels_keys(self, shard, y, start, stop):
        labels = None if y is None else y[start:stop]
        return labels, default_keys(shard, start, stop)

    def _shard_labels(self, shard):
        return self._targets()


# ---------------------------------------------------------------- results
def clip_benchmark_metrics(y_true, proba, classes) -> dict:
    """``acc1``, ``acc5`` and ``mean_per_class_recall``, as CLIP_benchmark has them.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, each in ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,)
        The labels of the columns.

    Returns
    -------
    metrics : dict
        ``acc1`` (top-1 accuracy), ``acc5`` (the true class among the five most
        probable; among all of them with fewer than five classes) and
        ``mean_per_class_recall`` (the mean over the classes present in
        ``y_true`` of their recall), each in [0, 1].

    Examples
    --------
    >>> from skvrf.stores import clip_benchmark_metrics
    >>> clip_benchmark_metrics([0, 1, 1], [[.6, .4], [.7, .3], [.2, .8]], [0, 1])
    {'acc1': 0.6666666666666666, 'acc5': 1.0, 'mean_per_class_recall': 0.75}
    """
    return {name: metric(y_true, proba, classes) for name, metric in _METRICS.items()}


def _top(y_true, proba, classes, k):
    """``(is the true class among the k most probable, true class index)``."""
    from ..evaluation._scorers import encode_labels
    from ._predict import top_k

    idx = encode_labels(y_true, np.asarray(classes))
    # ties in the order predict uses: the first column wins
    top = top_k(np.asarray(proba, dtype=np.float64), k)
    return (top == idx[:, None]).any(axis=1), idx


def _acc1(y_true, proba, classes):
    return float(np.mean(_top(y_true, proba, classes, 1)[0]))


def _acc5(y_true, proba, classes):
    return float(np.mean(_top(y_true, proba, classes, 5)[0]))


def _mean_per_class_recall(y_true, proba, classes):
    correct, idx = _top(y_true, proba, classes, 1)
    if not idx.shape[0]:
        return float("nan")
    n_true = np.bincount(idx)
    present = n_true > 0
    recall = np.bincount(idx, weights=correct)[present] / n_true[present]
    return float(np.mean(recall))


_METRICS = {
    "acc1": _acc1,
    "acc5": _acc5,
    "mean_per_class_recall": _mean_per_class_recall,
}


def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(text)).strip("-") or "x"


def _task(method: str) -> str:
    if method == "zero-shot":
        return "zeroshot_classification"
    if method == "fine-tuned":
        return "linear_probe"
    return "robust_ensemble"


def write_clip_benchmark_json(
    out_dir,
    estimators,
    id_data,
    ood_data=None,
    *,
    model,
    pretrained,
    id_dataset="id",
    language="en",
):
    """Write one CLIP_benchmark-style result JSON per (dataset, method).

    Each file holds ``dataset``, ``model``, ``pretrained``, ``task``,
    ``metrics`` (``acc1``, ``acc5``, ``mean_per_class_recall``), ``language``
    and ``method`` (the estimator's name: ``clip_benchmark build`` keeps extra
    fields as columns). ``task`` is ``"zeroshot_classification"`` for the
    estimator named ``"zero-shot"``, ``"linear_probe"`` for ``"fine-tuned"``
    and ``"robust_ensemble"`` for the others. Files are named
    ``{dataset}_{pretrained}_{model}_{language}_{method}.json`` (CLIP_benchmark's
    default name with the method for the task; unsafe characters replaced).

    Parameters
    ----------
    out_dir : str or path-like
        Folder to write to (created).
    estimators : mapping of str to fitted classifier
        As for :func:`skvrf.evaluation.evaluate_shifts`.
    id_data : tuple
        ``(X, y)`` of the ID test set.
    ood_data : mapping, default=None
        OOD name -> ``(X, y)`` or ``(X, y, class_map)``.
    model, pretrained : str
        The CLIP model and its weights (e.g. ``"ViT-B-16"``, ``"openai"``).
    id_dataset : str, default="id"
        The ID set's dataset name (e.g. ``"imagenet1k"``); OOD sets keep their
        names.
    language : str, default="en"
        CLIP_benchmark's language field.

    Returns
    -------
    paths : list of str
        The files written, in order of method then dataset.
    """
    from ..evaluation import evaluate_shifts

    metric_names = tuple(_METRICS)
    scoring = list(_METRICS.items())  # each computes only its own metric
    report = evaluate_shifts(estimators, id_data, ood_data or {}, scoring=scoring)
    os.makedirs(out_dir, exist_ok=True)
    datasets = {"id": id_dataset, **{name: name for name in (ood_data or {})}}
    paths = []
    for method in estimators:
        for key, dataset in datasets.items():
            record = {
                "dataset": str(dataset),
                "model": str(model),
                "pretrained": str(pretrained),
                "task": _task(str(method)),
                "metrics": {
                    m: report.scores[m][str(method)][key] for m in metric_names
                },
                "language": language,
                "method": str(method),
            }
            name = "_".join(
                _slug(v) for v in (dataset, pretrained, model, language, method)
            )
            path = os.path.join(os.fspath(out_dir), f"{name}.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
            paths.append(path)
    return paths
