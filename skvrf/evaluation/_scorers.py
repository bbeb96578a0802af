"""Scores computed from predicted probabilities.

Every scorer takes ``(y_true, proba, classes)``: the true labels, the probabilities
an estimator predicted (columns in the order of ``classes``) and its ``classes_``.
Predictions are the argmax of ``proba``, so an estimator is asked for
``predict_proba`` once per evaluation set and every metric is computed from that.
"""

from __future__ import annotations

import numpy as np

from .._labels import check_label_kinds, shown_labels

__all__ = [
    "PROBA_METRICS",
    "accuracy_from_proba",
    "expected_calibration_error",
    "get_proba_metric",
    "log_loss_from_proba",
]

_EPS = np.finfo(np.float64).eps


def encode_labels(y_true, classes, *, where="y"):
    """Column index of each label of ``y_true`` in ``classes``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    classes : array-like of shape (n_classes,)
        The labels of the probability columns (need not be sorted).
    where : str, default="y"
        Names the data in the error message.

    Returns
    -------
    indices : ndarray of shape (n_samples,)
        ``classes[indices] == y_true``.

    Raises
    ------
    ValueError
        If a label of ``y_true`` is not in ``classes``.
    """
    y = np.asarray(y_true)
    classes = np.asarray(classes)
    if y.ndim != 1:
        raise ValueError(f"{where}: labels must be 1-D, got shape {y.shape}.")
    check_label_kinds(**{f"{where}: y": y, "the estimator's classes_": classes})
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    try:
        pos = np.searchsorted(sorted_classes, y)
    except TypeError as exc:  # strings vs numbers
        raise ValueError(
            f"{where}: labels are not comparable with the estimator's classes_ "
            f"({classes[:5].tolist()} ...): {exc}"
        ) from exc
    pos = np.clip(pos, 0, max(0, classes.shape[0] - 1))
    known = sorted_classes[pos] == y if classes.shape[0] else np.zeros(len(y), bool)
    if not np.all(known):
        unknown = np.unique(y[~known])
        raise ValueError(
            f"{where}: labels not among the estimator's classes_: "
            f"{shown_labels(unknown)}. classes_ has {classes.shape[0]} labels, e.g. "
            f"{classes[:10].tolist()}."
        )
    return order[pos]


def _check_proba(y_true, proba, classes):
    proba = np.asarray(proba, dtype=np.float64)
    classes = np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != classes.shape[0]:
        raise ValueError(
            f"proba must have shape (n_samples, {classes.shape[0]}) to match "
            f"classes, got {proba.shape}."
        )
    idx = encode_labels(y_true, classes)
    if idx.shape[0] != proba.shape[0]:
        raise ValueError(
            f"y_true has {idx.shape[0]} labels but proba has {proba.shape[0]} rows."
        )
    return idx, proba


def accuracy_from_proba(y_true, proba, classes):
    """Fraction of rows whose most probable class is the true one.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, each in ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,)
        The estimator's ``classes_``.

    Returns
    -------
    accuracy : float
        In [0, 1]. Ties go to the first column, as ``predict`` does.

    Examples
    --------
    >>> from skvrf.evaluation import accuracy_from_proba
    >>> accuracy_from_proba(["a", "b"], [[0.9, 0.1], [0.8, 0.2]], ["a", "b"])
    0.5
    """
    idx, proba = _check_proba(y_true, proba, classes)
    return float(np.mean(np.argmax(proba, axis=1) == idx))


def log_loss_from_proba(y_true, proba, classes):
    """Mean negative log-probability of the true class (cross-entropy).

    Probabilities are clipped to ``[eps, 1]`` (``eps`` the float64 machine
    epsilon), as :func:`sklearn.metrics.log_loss` does; rows are not renormalised.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, each in ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,)
        The estimator's ``classes_``.

    Returns
    -------
    log_loss : float
        Non-negative; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.evaluation import log_loss_from_proba
    >>> loss = log_loss_from_proba([0, 1], [[0.5, 0.5], [0.5, 0.5]], [0, 1])
    >>> bool(np.isclose(loss, np.log(2)))
    True
    """
    idx, proba = _check_proba(y_true, proba, classes)
    p_true = np.clip(proba[np.arange(idx.shape[0]), idx], _EPS, 1.0)
    return float(-np.mean(np.log(p_true)))


def expected_calibration_error(y_true, proba, classes, *, n_bins=15):
    r"""Expected calibration error (ECE) of the top-class confidence.

    With confidence :math:`c_i = \max_k p_{ik}`, prediction
    :math:`\hat y_i = \arg\max_k p_{ik}` and :math:`M` equal-width bins
    :math:`B_m = \{i : (m-1)/M < c_i \le m/M\}`,

    .. math::

        \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}
        \left| \mathrm{acc}(B_m) - \mathrm{conf}(B_m) \right|,

    where :math:`\mathrm{acc}(B_m)` is the fraction of rows of :math:`B_m` with
    :math:`\hat y_i = y_i` and :math:`\mathrm{conf}(B_m)` their mean confidence
    (Guo et al., 2017). Empty bins contribute nothing.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels, each in ``classes``.
    proba : array-like of shape (n_samples, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : array-like of shape (n_classes,)
        The estimator's ``classes_``.
    n_bins : int, default=15
        Number of equal-width confidence bins on [0, 1].

    Returns
    -------
    ece : float
        In [0, 1]; lower is better.

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of
       Modern Neural Networks", ICML 2017.

    Examples
    --------
    Two rows in the bin (0.6, 0.8] with confidence 0.7, one right and one wrong,
    and one row in (0.8, 1.0] with confidence 0.9, right:

    >>> from skvrf.evaluation import expected_calibration_error
    >>> proba = [[0.7, 0.3], [0.3, 0.7], [0.9, 0.1]]
    >>> ece = expected_calibration_error([0, 0, 0], proba, [0, 1], n_bins=5)
    >>> round(ece, 6)  # 2/3 * |0.5 - 0.7| + 1/3 * |1 - 0.9|
    0.166667
    """
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}.")
    idx, proba = _check_proba(y_true, proba, classes)
    n = idx.shape[0]
    if n == 0:
        raise ValueError("expected_calibration_error needs at least one sample.")
    confidence = proba.max(axis=1)
    correct = (np.argmax(proba, axis=1) == idx).astype(np.float64)
    # Bin m (1-based) holds (m-1)/M < c <= m/M; c = 0 goes to the first bin.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    sum_conf = np.bincount(bins, weights=confidence, minlength=n_bins)
    sum_correct = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.abs(sum_correct - sum_conf).sum() / n)


#: Metrics of predicted probabilities by name: ``name -> (function(y_true, proba,
#: classes), greater_is_better, shown_as_percent)``. (Not scikit-learn scorers,
#: which take an estimator: these take probabilities.)
PROBA_METRICS = {
    "accuracy": (accuracy_from_proba, True, True),
    "log_loss": (log_loss_from_proba, False, False),
    "ece": (expected_calibration_error, False, True),
}


def get_proba_metric(scoring):
    """Resolve a metric name (or a ``(name, callable)`` pair) to its function.

    Unlike :func:`sklearn.metrics.get_scorer`, the function takes probabilities,
    not an estimator.

    Parameters
    ----------
    scoring : str or tuple of (str, callable)
        ``"accuracy"``, ``"log_loss"`` or ``"ece"``; or a pair of a name and a
        callable ``f(y_true, proba, classes) -> float``.

    Returns
    -------
    name : str
        The metric's name.
    func : callable
        ``func(y_true, proba, classes) -> float``.

    Examples
    --------
    >>> from skvrf.evaluation import get_proba_metric
    >>> get_proba_metric("ece")[0]
    'ece'
    """
    if isinstance(scoring, str):
        if scoring not in PROBA_METRICS:
            raise ValueError(
                f"Unknown scoring {scoring!r}; choose among {sorted(PROBA_METRICS)} or "
                "pass a (name, callable) pair."
            )
        return scoring, PROBA_METRICS[scoring][0]
    if (
        isinstance(scoring, tuple)
        and len(scoring) == 2
        and isinstance(scoring[0], str)
        and callable(scoring[1])
    ):
        return scoring
    raise TypeError(
        "Each scoring must be a metric name or a (name, callable) pair, got "
        f"{scoring!r}."
    )


def resolve_scoring(scoring):
    """``{name: func}`` for a name, a pair, or a sequence of them."""
    if isinstance(scoring, str) or (
        isinstance(scoring, tuple) and len(scoring) == 2 and callable(scoring[1])
    ):
        scoring = [scoring]
    resolved = dict(get_proba_metric(s) for s in scoring)
    if not resolved:
        raise ValueError("scoring is empty: give at least one metric.")
    return resolved


def is_percent(metric):
    """Whether a metric is shown as a percentage in tables and plots."""
    return PROBA_METRICS.get(metric, (None, True, False))[2]


def greater_is_better(metric):
    """Whether larger values of a metric are better (True for unknown ones)."""
    return PROBA_METRICS.get(metric, (None, True, False))[1]


def top_k(proba, k):
    """Column indices of the ``k`` largest probabilities per row, largest first
    (ties to the first column, as ``predict``: the first column of the result
    is ``np.argmax``, and the whole equals a stable ``argsort`` of ``-proba``
    cut to ``k`` columns)."""
    n_rows, n_cols = proba.shape
    k = min(k, n_cols)
    if k < n_cols:
        # argpartition picks any of the columns tied at the k-th value: keep
        # every column above it and the first of those equal to it
        kth = -np.partition(-proba, k - 1, axis=1)[:, k - 1 : k]
        keep = proba >= kth
        extra = np.flatnonzero(np.count_nonzero(keep, axis=1) > k)
        if extra.size:  # rows with more tied columns than room: the first ones
            p, t = proba[extra], kth[extra]
            room = k - np.count_nonzero(p > t, axis=1, keepdims=True)
            tied = p == t
            keep[extra] = (p > t) | (tied & (np.cumsum(tied, axis=1) <= room))
        part = np.nonzero(keep)[1].reshape(n_rows, k)
    else:
        part = np.broadcast_to(np.arange(n_cols), proba.shape).copy()
    values = np.take_along_axis(proba, part, axis=1)
    order = np.lexsort((part, -values), axis=1) if k > 1 else np.zeros_like(part)
    return np.take_along_axis(part, order, axis=1)
