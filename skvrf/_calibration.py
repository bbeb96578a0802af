"""Component logits and their temperature scaling ("calibration").

Every component's output is turned into a full (n_samples, n_classes) logit matrix
once (:func:`component_logits`); a temperature is fitted on held-out logits by
minimising their log-loss (:func:`fit_temperature`, temperature scaling), and
probabilities are the softmax of the scaled logits (:func:`scaled_softmax`).

The logits a temperature is fitted on come from held-out rows (``X_val``), from
the training rows of a component used as it is (it was not fitted on them), or
out of fold for a component fitted here (:func:`out_of_fold_logits`). The
training rows' logits come chunk by chunk: :class:`ChunkedTemperature` finds
the same temperature from per-chunk sums, without holding them (``fit`` of the
ensembles, ``skvrf/_base.py``, runs the passes over the rows it needs). The
temperature is the root of a function of every row's logits, so it cannot be
summed in a single pass: safeguarded Halley steps on ``beta = 1 / T`` take the
first points in the pass that computes everything else and each further one in
a pass that recomputes that component's logits (2 to 4 passes per component in
the tests and the benchmark; 5 to 9 on random logits whose ``T`` lay below
``exp(-1.5)``, outside the first pass's points). The function and its first
two derivatives are sums over rows, so the result is the same root as
:func:`fit_temperature` (Brent's method on all the logits at once) to the
float tolerance.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from scipy.optimize import brentq
from scipy.special import softmax
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_predict
from sklearn.utils.validation import _num_samples

from .utils._warnings import user_stacklevel

__all__ = [
    "ChunkedTemperature",
    "component_logits",
    "fit_confidence_temperature",
    "fit_temperature",
    "out_of_fold_logits",
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


def _nll_slope(beta, z, z_true, sample_weight=None):
    """Derivative in ``beta = 1 / T`` of the (weighted) mean negative
    log-likelihood ``mean(logsumexp(beta * z) - beta * z_true)``:
    ``mean(E_p[z] - z_true)`` with ``p = softmax(beta * z)``. The NLL is convex
    in ``beta`` (a log-sum-exp of linear functions), so this slope never
    decreases."""
    p = softmax(beta * z, axis=1)
    slopes = np.einsum("ij,ij->i", p, z) - z_true
    return float(np.average(slopes, weights=sample_weight))


def check_calibration_weights(sample_weight, n_samples):
    """``sample_weight`` as float64 of shape ``(n_samples,)``, finite and
    non-negative; None stays None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), got {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be finite and non-negative.")
    return w


def _known_rows(logits, y, classes, sample_weight):
    """The rows whose label is one of ``classes`` and whose weight is not 0."""
    keep = np.isin(y, classes)
    if sample_weight is not None:
        keep &= sample_weight > 0
        sample_weight = sample_weight[keep]
    return logits[keep], y[keep], sample_weight


def fit_temperature(logits, y, classes, sample_weight=None):
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
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows in the mean log-loss (None: all 1). Integer
        weights give the temperature of the rows repeated that many times; a
        row of weight 0 counts as absent.

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
    sample_weight = check_calibration_weights(sample_weight, logits.shape[0])
    logits, y, sample_weight = _known_rows(logits, y, classes, sample_weight)
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
        return _nll_slope(np.exp(-log_t), z, z_true, sample_weight)

    lo, hi = _LOG_T_BOUNDS
    if slope(hi) >= 0:  # the loss still falls as T grows, even at the largest T
        return float(np.exp(hi))
    if slope(lo) <= 0:  # the loss still falls as T shrinks, even at the smallest
        return float(np.exp(lo))
    return float(np.exp(brentq(slope, lo, hi, xtol=1e-12, rtol=1e-14)))


def fit_confidence_temperature(logits, y, classes, sample_weight=None):
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
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows in the accuracy and the mean confidence.

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
    logits = np.asarray(logits, dtype=np.float64)
    sample_weight = check_calibration_weights(sample_weight, logits.shape[0])
    logits, y, sample_weight = _known_rows(logits, y, classes, sample_weight)
    if logits.shape[0] == 0:
        raise ValueError("No calibration row has a label of the component's classes.")
    accuracy = np.average(classes[logits.argmax(axis=1)] == y, weights=sample_weight)

    def gap(log_t):
        confidence = scaled_softmax(logits, np.exp(log_t)).max(axis=1)
        return np.average(confidence, weights=sample_weight) - accuracy

    lo, hi = -10.0, 10.0
    if gap(lo) <= 0:
        return float(np.exp(lo))
    if gap(hi) >= 0:
        return float(np.exp(hi))
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-12)))


def out_of_fold_logits(
    estimator, X, y, *, cv=5, random_state=None, n_jobs=None, params=None
):
    """Out-of-fold logits of a component fitted on ``X``, for its calibration.

    Parameters
    ----------
    estimator : classifier
        The unfitted component (cloned for each fold).
    X : array-like of shape (n_samples, n_features) or sequence
        The training input.
    y : array-like of shape (n_samples,)
        Its labels.
    cv : int, cross-validation generator or iterable, default=5
        The folds; an int is a :class:`~sklearn.model_selection.StratifiedKFold`,
        shuffled with ``random_state`` when that is not None.
    random_state : int, RandomState instance or None, default=None
        Shuffles the folds of an int ``cv``.
    n_jobs : int, default=None
        Folds fitted in parallel.
    params : dict, default=None
        Parameters of the component's ``fit`` (``sample_weight``), as
        :func:`~sklearn.model_selection.cross_val_predict` takes them (split
        with the rows; routed when metadata routing is enabled).

    Returns
    -------
    logits : ndarray of shape (n_samples, n_classes)
        Columns in the order of the sorted labels of ``y`` (the ``classes_`` of
        the component fitted on ``y``).
    """
    if isinstance(cv, Integral):
        shuffle = random_state is not None
        cv = StratifiedKFold(
            cv, shuffle=shuffle, random_state=random_state if shuffle else None
        )
    cv = check_cv(cv, y, classifier=True)
    method = (
        "decision_function"
        if hasattr(estimator, "decision_function")
        else "predict_proba"
    )
    # cross_val_predict orders its columns by the sorted labels of y, which
    # is the order of the classes_ of a classifier fitted on y.
    out = cross_val_predict(
        clone(estimator), X, y, cv=cv, method=method, n_jobs=n_jobs, params=params
    )
    if method == "predict_proba":
        return logits_from_proba(out)
    return as_full_logits(out)


# A Halley step of less than _STEP_TOL relative ends the search (the error
# after it is of the order of its cube); a bracket narrower than _LOG_BETA_TOL
# in log(beta) does too (Brent's xtol on log T in fit_temperature is 1e-12).
_STEP_TOL = 1e-6
_LOG_BETA_TOL = 1e-13
_MAX_PASSES = 200


class ChunkedTemperature:
    """A calibration temperature fitted on logits that come chunk by chunk.

    The same temperature as :func:`~skvrf._calibration.fit_temperature`
    (``method="log_loss"``) or
    :func:`~skvrf._calibration.fit_confidence_temperature`
    (``method="confidence"``), without holding the logits: both are the root of
    a function ``g(beta)``, ``beta = 1 / T``, that increases with ``beta`` and is
    a mean over rows (log-loss: its derivative ``mean(E_p[z] - z_y)``;
    confidence: ``mean(max p) - accuracy``), as are its first two derivatives
    (log-loss: ``mean Var_p[z]`` and the mean third central moment). Each pass
    over the rows evaluates them at the points of ``betas``: the first at ``T``
    in ``exp({-1.5, 0, 1.5})``, each later one at a Halley step from the
    bracketing point nearest the root (a bisection in ``log(beta)`` when the
    step would leave the bracket) and, while the root is not bracketed, at the
    end of ``T`` in ``[exp(-10), exp(10)]`` beyond which it lies (that bound is
    returned when the root lies beyond it, as the whole-array functions do).
    A step of less than ``1e-6`` relative is taken without another pass (the
    error after it is of the order of its cube).

    Use: ``while not t.done: for each chunk: t.add(logits, y); t.finish_pass()``;
    then ``t.temperature``.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        Labels of the logit columns, in any order.
    method : {"log_loss", "confidence"}, default="log_loss"
        Which temperature.
    """

    def __init__(self, classes, method="log_loss"):
        self.classes = np.asarray(classes)
        self.method = method
        lo, hi = _LOG_T_BOUNDS
        self._beta_min, self._beta_max = float(np.exp(-hi)), float(np.exp(-lo))
        self._lo = self._hi = None  # (beta, g, dg, d2g) with g < 0, g > 0
        self.betas = [float(np.exp(1.5)), 1.0, float(np.exp(-1.5))]
        self.temperature = None
        self.n_passes = 0
        self._first = True
        self._seen = np.zeros(self.classes.shape[0], dtype=bool)
        self._any = False
        self._correct = 0.0
        self._start_pass()

    @property
    def done(self) -> bool:
        """Whether the temperature is found."""
        return self.temperature is not None

    def _start_pass(self):
        self._sums = np.zeros((len(self.betas), 3))
        self._n = 0.0  # the summed weight of the rows added

    def add(self, logits, y, sample_weight=None):
        """Add one chunk's logits (columns in the order of ``classes``) and labels.

        Parameters
        ----------
        logits : ndarray of shape (n_rows, n_classes)
            The chunk's logits.
        y : array-like of shape (n_rows,)
            Its labels; rows whose label is not in ``classes`` are ignored.
        sample_weight : array-like of shape (n_rows,), default=None
            The rows' weights (None: all 1); rows of weight 0 are ignored.
        """
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != self.classes.shape[0]:
            raise ValueError(
                f"logits must have shape (n_samples, {self.classes.shape[0]}) (one "
                f"column per class), got {logits.shape}."
            )
        y = np.asarray(y)
        sample_weight = check_calibration_weights(sample_weight, logits.shape[0])
        logits, y, sample_weight = _known_rows(logits, y, self.classes, sample_weight)
        if y.shape[0] == 0:
            return
        w = np.ones(y.shape[0]) if sample_weight is None else sample_weight
        col = _encode(y, self.classes)
        if self.method == "log_loss":
            z = _shift_and_floor(logits)
            z_true = z[np.arange(z.shape[0]), col]
            if self._first:
                self._seen[col] = True
                self._any = self._any or bool(z.any())
        else:
            with np.errstate(invalid="ignore"):
                z = logits - logits.max(axis=1, keepdims=True)
            if self._first:
                self._correct += float(w @ (logits.argmax(axis=1) == col))
        for i, beta in enumerate(self.betas):
            p = softmax(beta * z, axis=1)
            with np.errstate(invalid="ignore"):  # 0 * -inf: a class never given
                ez = np.where(p > 0, p * z, 0.0).sum(axis=1)
                dev = np.where(p > 0, z - ez[:, None], 0.0)
            p_dev2 = p * dev * dev
            var = p_dev2.sum(axis=1)
            if self.method == "log_loss":
                self._sums[i] += (
                    w @ (ez - z_true),
                    w @ var,
                    w @ np.einsum("ij,ij->i", p_dev2, dev),
                )
            else:  # mean max p; z_max = 0 after the shift
                p_max = p.max(axis=1)
                self._sums[i] += (
                    w @ p_max,
                    -(w @ (p_max * ez)),
                    w @ (p_max * (ez * ez - var)),
                )
        self._n += float(w.sum())

    def finish_pass(self):
        """End a pass over the rows: take the next step, or settle the temperature."""
        self.n_passes += 1
        if self._first:
            self._first = False
            if self._settle_first(self._n):
                return
        means = self._sums / self._n
        if self.method == "confidence":
            means[:, 0] -= self._correct / self._n
        for beta, (g, dg, d2g) in zip(self.betas, means):
            if beta == self._beta_min and g >= 0:  # the loss falls as T grows
                return self._set(beta)  # ... even at the largest T
            if beta == self._beta_max and g <= 0:  # ... as T shrinks, at the least
                return self._set(beta)
            if g == 0:
                return self._set(beta)
            point = (beta, g, dg, d2g)
            if g < 0 and (self._lo is None or beta > self._lo[0]):
                self._lo = point
            elif g > 0 and (self._hi is None or beta < self._hi[0]):
                self._hi = point
        self._step()

    def _settle_first(self, n) -> bool:
        if self.method == "log_loss":
            if self._seen.sum() < 2:
                warnings.warn(
                    "Calibration data holds fewer than two of the component's "
                    "classes; its temperature is left at 1.",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
                self.temperature = 1.0
            elif not self._any:  # every row flat: T changes nothing
                self.temperature = 1.0
            return self.done
        if n == 0:
            raise ValueError(
                "No calibration row has a label of the component's classes."
            )
        return False

    def _set(self, beta):
        self.temperature = float(1.0 / beta)

    def _step(self):
        ends = [p for p in (self._lo, self._hi) if p is not None]
        beta, g, dg, d2g = min(
            ends, key=lambda p: abs(p[1] / p[2]) if p[2] > 0 else np.inf
        )
        lo = self._beta_min if self._lo is None else self._lo[0]
        hi = self._beta_max if self._hi is None else self._hi[0]
        new = np.nan
        if dg > 0:
            newton = -g / dg
            denom = 1.0 + 0.5 * newton * d2g / dg
            step = newton / denom if denom > 0.5 else newton  # Halley's, or Newton's
            new = beta + step
        if abs(new / beta - 1.0) <= _STEP_TOL:  # the error is of the order step**3
            return self._set(min(max(new, lo), hi))
        bracketed = self._lo is not None and self._hi is not None
        if not lo < new < hi:
            new = float(np.sqrt(lo * hi))
        if bracketed and (
            np.log(hi / lo) <= _LOG_BETA_TOL or self.n_passes >= _MAX_PASSES
        ):
            return self._set(new)
        self.betas = [float(new)]
        if self._lo is None:  # the root may lie below every beta seen
            self.betas.append(self._beta_min)
        if self._hi is None:
            self.betas.append(self._beta_max)
        self._start_pass()
