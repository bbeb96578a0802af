"""Component logits and their temperature scaling ("calibration").

Every component's output is turned into a full (n_samples, n_classes) logit matrix
once (:func:`component_logits`); a temperature is fitted on held-out logits through
scikit-learn's own temperature scaling (:func:`fit_temperature`), and probabilities
are the softmax of the scaled logits (:func:`scaled_softmax`).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import brentq
from scipy.special import softmax
from sklearn.calibration import _TemperatureScaling

__all__ = [
    "component_logits",
    "fit_confidence_temperature",
    "fit_temperature",
    "scaled_softmax",
]

_LOG_EPS = 1e-12
_LOGIT_FLOOR = -1e4


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
    if hasattr(estimator, "decision_function"):
        return as_full_logits(estimator.decision_function(X))
    return logits_from_proba(estimator.predict_proba(X))


def scaled_softmax(logits, temperature=1.0):
    """Softmax of ``logits / temperature`` along the class axis."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def fit_temperature(logits, y, classes):
    """Temperature minimising the log-loss of ``softmax(logits / T)`` on ``y``.

    The optimiser is scikit-learn's own temperature scaling (the calibrator behind
    ``CalibratedClassifierCV(method="temperature")``), applied directly to the
    logits so that columns stay aligned with ``classes`` even when ``y`` holds only
    some of them.

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
        The fitted temperature; 1.0 (with a warning) when fewer than two classes
        are present in ``y``, where a temperature is not identifiable.

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
    order = np.argsort(classes, kind="stable")
    known = np.isin(y, classes)
    logits, y = np.asarray(logits, dtype=np.float64)[known], y[known]
    if np.unique(y).shape[0] < 2:
        warnings.warn(
            "Calibration data holds fewer than two of the component's classes; "
            "its temperature is left at 1.",
            UserWarning,
            stacklevel=3,
        )
        return 1.0
    y_encoded = order[np.searchsorted(classes[order], y)]
    # Shift each row so its maximum is 0 (softmax is unchanged): the scaler then
    # never mistakes logits for probabilities. Floor the -inf/-huge fill values
    # that cross_val_predict uses for classes absent from a training fold.
    shifted = logits - logits.max(axis=1, keepdims=True)
    shifted = np.maximum(shifted, _LOGIT_FLOOR)
    scaler = _TemperatureScaling().fit(shifted, y_encoded)
    return float(1.0 / scaler.beta_)


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
