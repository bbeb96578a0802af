"""CLIP_benchmark's result files: skvrf's scores in its JSON form.

CLIP_benchmark's results are one JSON file per evaluation, ``{"dataset",
"model", "pretrained", "task", "metrics": {...}, "language"}``;
:func:`write_clip_benchmark_json` writes skvrf's results in that form so that
``clip_benchmark build`` and the tables built from it take them, with the
metrics of :func:`clip_benchmark_metrics`. Both are public as
``skvrf.stores.clip_benchmark_metrics`` and ``skvrf.stores.write_clip_benchmark_json``
(next to the reader of CLIP_benchmark's feature caches).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from ._report import evaluate_shifts
from ._scorers import encode_labels, top_k

__all__ = ["clip_benchmark_metrics", "write_clip_benchmark_json"]


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
