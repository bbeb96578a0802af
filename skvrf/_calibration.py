"""Component logits and their temperature scaling ("calibration").

Every component's output is turned into a full (n_samples, n_classes) logit matrix
once (:func:`component_logits`); a temperature is fitted on held-out logits by
minimising their log-loss (:func:`fit_temperature`, temperature scaling), and
probabilities are the softmax of the scaled logits (:func:`scaled_softmax`).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import brentq
from scipy.special import softmax
from sklearn.utils.validation import _num_samples

from .utils._warnings import user_stacklevel

__all__ = [
    "component_logits",
    "fit_confidence_temperature",
    "fit_temperature",
    "scaled_softmax",
]

_LOG_EPS = 1e-12
_LOGIT_FLOOR = -1e4
# Search range of log(T): T in [exp(-10), exp(10)], as in scikit-learn's
# CalibratedClassifierCV(method="temperature").
_LOG_T_BOUNDS = (-10.0, 10.0)


def as_full_logits(scores):
    """Turn decision_function output into (n_samples, n_classes) logits."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1):
        z = scores.reshape(-1)
        # Binary: softmax([-z/2, z/2]) == sigmoid(z), the estimator's own proba.
        return np.column_stack([-z / 2.0, z / 2.0])
    return scores


def logits_from_proba(proba):
    """Log-probabilities, floored so that a zero probability stays finite."""
    return np.log(np.clip(np.asarray(proba, dtype=np.float64), _LOG_EPS, None))


def component_logits(estimator, X):
    """Full logits of a fitted classifier on ``X``.

    ``decision_function`` when the estimator has one, else the log of
    ``predict_proba``; two-class decision values ``z`` become ``[-z/2, z/2]`` so
    that their softmax is the estimator's own sigmoid.

    Parameters
    ----------
    estimator : fitted classifier
        A classifier with ``decision_function`` or ``predict_proba``.
    X : array-like
        Its input.

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
        Columns in the order of ``estimator.classes_``.
    """
    classes = getattr(estimator, "classes_", None)
    if classes is not None and len(classes) == 1:
        # A component that knows one class gives it probability 1.
        return np.zeros((_num_samples(X), 1))
    if hasattr(estimator, "decision_function"):
        return as_full_logits(estimator.decision_function(X))
    return logits_from_proba(estimator.predict_proba(X))


def scaled_softmax(logits, temperature=1.0):
    """Softmax of ``logits / temperature`` along the class axis."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def _encode(y, classes):
    """Column index of every label of ``y`` in ``classes`` (any order)."""
    order = np.argsort(classes, kind="stable")
    return order[np.searchsorted(classes[order], y)]


def _shift_and_floor(logits):
    """Shift each row so that its maximum is 0 (the softmax is unchanged) and
    floor the -inf/-huge fill values that cross_val_predict uses for classes
    absent from a training fold, so that every product with 1 / T is finite."""
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, reported below
        shifted = logits - logits.max(axis=1, keepdims=True)
    if np.isnan(shifted).any():
        raise ValueError(
            "The calibration logits contain NaN or +inf; a temperature cannot be "
            "fitted on them."
        )
    return np.maximum(shifted, _LOGIT_FLOOR)


def _nll_slope(beta, z, z_true):
    """Derivative in ``beta = 1 / T`` of the mean negative log-likelihood
    ``mean(logsumexp(beta * z) - beta * z_true)``: ``mean(E_p[z] - z_true)``
    with ``p = softmax(beta * z)``. The NLL is convex in ``beta`` (a
    log-sum-exp of linear functions), so this slope never decreases."""
    p = softmax(beta * z, axis=1)
    return float(np.mean(np.einsum("ij,ij->i", p, z) - z_true))


def fit_temperature(logits, y, classes):
    """Temperature minimising the log-loss of ``softmax(logits / T)`` on ``y``.

    Temperature scaling (Guo et al., 2017) fitted on the logits as they are, so
    that columns stay aligned with ``classes`` (in any order) even when ``y``
    holds only some of them. With ``beta = 1 / T`` the mean negative
    log-likelihood is convex, its derivative ``mean(E_p[z] - z_y)`` increases
    with ``beta``, and the optimum is the root of that derivative, found by
    Brent's method on ``log T`` in ``[-10, 10]``; when the derivative has one
    sign over the whole range, the nearer bound is returned (``exp(10)`` when
    a flatter softmax is always better, ``exp(-10)`` when a sharper one is).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Held-out logits, columns in the order of ``classes``. ``-inf`` (a
        class absent from a training fold) is allowed.
    y : array-like of shape (n_samples,)
        True labels; rows whose label is not in ``classes`` are ignored.
    classes : ndarray of shape (n_classes,)
        Labels of the logit columns, in any order.

    Returns
    -------
    temperature : float
        The fitted temperature, in ``[exp(-10), exp(10)]``; 1.0 (with a
        warning) when fewer than two classes are present in ``y``, where a
        temperature is not identifiable, and 1.0 when every row's logits are
        all equal (the temperature changes nothing).

    Raises
    ------
    ValueError
        ``logits`` not 2-D with one column per class, or holding NaN or
        ``+inf``.

    Notes
    -----
    The same optimum as scikit-learn's
    ``CalibratedClassifierCV(FrozenEstimator(clf), method="temperature")``
    (scikit-learn >= 1.8; tested to the two optimisers' tolerances, about
    ``1e-7`` in ``log T``), with three differences of convention: it fits an
    inverse temperature ``beta_`` (``T = 1 / beta_``); a two-class decision
    value ``z`` becomes the logits ``(-z, z)`` there and ``(-z/2, z/2)`` here
    (so ``T = 1 / (2 beta_)`` for two classes, and ``T = 1`` leaves the
    estimator's own ``sigmoid(z)``); and it matches the decision_function's
    columns to the sorted labels by position, where skvrf matches them by
    label, so that a head whose ``classes_`` are not sorted is calibrated
    correctly here only. Both scale ``decision_function`` when there is one,
    else the log of ``predict_proba`` (floored differently at 0).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._calibration import fit_temperature
    >>> logits = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    >>> y = np.array([0, 1, 1, 0])  # half wrong: a flat softmax is best
    >>> fit_temperature(logits, y, np.array([0, 1])) > 100
    True
    """
    y = np.asarray(y)
    classes = np.asarray(classes)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != classes.shape[0]:
        raise ValueError(
            f"logits must have shape (n_samples, {classes.shape[0]}) (one column "
            f"per class), got {logits.shape}."
        )
    known = np.isin(y, classes)
    logits, y = logits[known], y[known]
    if np.unique(y).shape[0] < 2:
        warnings.warn(
            "Calibration data holds fewer than two of the component's classes; "
            "its temperature is left at 1.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return 1.0
    z = _shift_and_floor(logits)
    z_true = z[np.arange(z.shape[0]), _encode(y, classes)]
    if not z.any():  # every row flat: softmax(z / T) is uniform for every T
        return 1.0

    def slope(log_t):  # decreases with log T
        return _nll_slope(np.exp(-log_t), z, z_true)

    lo, hi = _LOG_T_BOUNDS
    if slope(hi) >= 0:  # the loss still falls as T grows, even at the largest T
        return float(np.exp(hi))
    if slope(lo) <= 0:  # the loss still falls as T shrinks, even at the smallest
        return float(np.exp(lo))
    return float(np.exp(brentq(slope, lo, hi, xtol=1e-12, rtol=1e-14)))


def fit_confidence_temperature(logits, y, classes):
    """Temperature at which mean max-probability equals accuracy (the authors' rule).

    The VRF authors' scripts scale each model so that its mean confidence (the
    mean of the largest softmax probability) matches its accuracy. Accuracy does
    not depend on the temperature; mean confidence falls monotonically from 1
    (T -> 0) to 1 / n_classes (T -> inf), so the root is unique. Apply it to
    held-out data (the scripts used the ID test set, a leak).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Held-out logits, columns in the order of ``classes``.
    y : array-like of shape (n_samples,)
        True labels; rows whose label is not in ``classes`` are ignored.
    classes : ndarray of shape (n_classes,)
        Labels of the logit columns.

    Returns
    -------
    temperature : float
        In [exp(-10), exp(10)] (the bounds when accuracy is 1 or at chance).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._calibration import fit_confidence_temperature, scaled_softmax
    >>> z = np.array([[3.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> y = np.array([0, 1, 1, 0])  # 75 % right
    >>> t = fit_confidence_temperature(z, y, np.array([0, 1]))
    >>> float(scaled_softmax(z, t).max(axis=1).mean().round(6))
    0.75
    """
    y = np.asarray(y)
    classes = np.asarray(classes)
    known = np.isin(y, classes)
    logits = np.asarray(logits, dtype=np.float64)[known]
    if logits.shape[0] == 0:
        raise ValueError("No calibration row has a label of the component's classes.")
    accuracy = np.mean(classes[logits.argmax(axis=1)] == y[known])

    def gap(log_t):
        return scaled_softmax(logits, np.exp(log_t)).max(axis=1).mean() - accuracy

    lo, hi = -10.0, 10.0
    if gap(lo) <= 0:
        return float(np.exp(lo))
    if gap(hi) >= 0:
        return float(np.exp(hi))
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-12)))
