"""Fitting the component ensembles chunk by chunk.

``fit`` never holds a full (n_samples, n_classes) array of either component's
logits or probabilities for the training rows of a component used as it is:
the components' outputs, the data of the calibration temperatures and the
ensemble's own state (VRF's Zero-Shot Failure set and bank) are computed one
chunk of rows at a time.

The one part that cannot be summed chunk by chunk in a single pass is the
temperature, the root of a function of every row's logits. It is found exactly
by :class:`ChunkedTemperature`: safeguarded Halley steps on ``beta = 1 / T``,
the first points evaluated in the pass that computes everything else and each
further one in a pass over the rows that recomputes that component's logits
(2 to 4 passes per component in the tests and the benchmark; 5 to 9 on
random logits whose ``T`` lay below ``exp(-1.5)``, outside the first
pass's points). The function and its first two derivatives are
sums over rows, so a pass adds them up chunk by chunk and the result is the
same root as
:func:`~skvrf._calibration.fit_temperature` (which finds it by Brent's method on
all the logits at once) to the float tolerance.

The label bias of generalized logit adjustment (:func:`estimate_label_bias`,
an L-BFGS fit) needs every training row's zero-shot logits at once: with
``logit_adjustment="gla"`` those (one component's) are held.
"""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_predict
from sklearn.utils import get_tags

from ._calibration import (
    _LOG_T_BOUNDS,
    _encode,
    _shift_and_floor,
    as_full_logits,
    fit_confidence_temperature,
    fit_temperature,
    logits_from_proba,
)
from ._labels import shown_labels
from .utils._warnings import user_stacklevel

__all__ = ["COMPONENTS", "ChunkedTemperature", "estimate_label_bias", "used_as_is"]

COMPONENTS = ("zeroshot", "finetuned")

# A Halley step of less than _STEP_TOL relative ends the search (the error
# after it is of the order of its cube); a bracket narrower than _LOG_BETA_TOL
# in log(beta) does too (Brent's xtol on log T in fit_temperature is 1e-12).
_STEP_TOL = 1e-6
_LOG_BETA_TOL = 1e-13
_MAX_PASSES = 200


def estimate_label_bias(logits, y, classes):
    """The label bias ``b`` of a head, estimated on labelled rows (GLA).

    Generalized logit adjustment (Zhu et al., NeurIPS 2023) removes the label
    bias that a zero-shot model inherits from its web-scale pre-training: the
    adjusted logits are ``z - b``, with ``b`` minimising the cross-entropy of
    ``softmax(z - b)`` on labelled data of the task. At the optimum every
    class's mean predicted probability equals its frequency in ``y``: ``b``
    estimates ``log pi_head - log pi_train`` up to a constant, the head's
    inherited label prior removed and that of the training rows put in its
    place.

    Only the columns of classes present in ``y`` are adjusted; ``b`` is 0 in
    the others and has mean 0 over the adjusted ones (the cross-entropy does not
    change when every present column moves together, and a class absent from
    ``y`` would otherwise be pushed to probability 0).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        The head's logits, columns in the order of ``classes``.
    y : array-like of shape (n_samples,)
        Labels; rows whose label is not in ``classes`` are ignored.
    classes : ndarray of shape (n_classes,)
        Labels of the columns, in any order.

    Returns
    -------
    bias : ndarray of shape (n_classes,)
        Subtract it from the logits.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._base import estimate_label_bias
    >>> z = np.zeros((4, 2))  # a head that cannot tell the classes apart
    >>> b = estimate_label_bias(z, [0, 0, 0, 1], np.array([0, 1]))
    >>> # b = log(head's prior) - log(training prior): a flat head gets 3:1 added
    >>> float(np.round(b[1] - b[0], 6)), float(np.round(np.log(3), 6))
    (1.098612, 1.098612)
    """
    classes = np.asarray(classes)
    y = np.asarray(y)
    z = np.asarray(logits, dtype=np.float64)
    known = np.isin(y, classes)
    z, y = z[known], y[known]
    bias = np.zeros(classes.shape[0])
    if y.shape[0] == 0:
        return bias
    order = np.argsort(classes, kind="stable")
    col = order[np.searchsorted(classes[order], y)]
    present = np.unique(col)
    if present.shape[0] < 2:
        return bias
    z = np.maximum(z - z.max(axis=1, keepdims=True), -1e4)  # finite, same softmax
    freq = np.bincount(col, minlength=classes.shape[0])[present] / y.shape[0]

    def loss(u):  # b over the present columns, u - mean(u): the gauge is fixed
        b = np.zeros(classes.shape[0])
        b[present] = u - u.mean()
        zb = z - b
        lse = logsumexp(zb, axis=1)
        p = np.exp(zb - lse[:, None])[:, present].mean(axis=0)
        value = np.mean(lse - zb[np.arange(zb.shape[0]), col])
        grad = freq - p  # d loss / d b_present
        return value, grad - grad.mean()

    u0 = np.zeros(present.shape[0])
    res = minimize(loss, u0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    bias[present] = res.x - res.x.mean()
    return bias


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
        self._correct = 0
        self._start_pass()

    @property
    def done(self) -> bool:
        """Whether the temperature is found."""
        return self.temperature is not None

    def _start_pass(self):
        self._sums = np.zeros((len(self.betas), 3))
        self._n = 0

    def add(self, logits, y):
        """Add one chunk's logits (columns in the order of ``classes``) and labels.

        Parameters
        ----------
        logits : ndarray of shape (n_rows, n_classes)
            The chunk's logits.
        y : array-like of shape (n_rows,)
            Its labels; rows whose label is not in ``classes`` are ignored.
        """
        logits = np.asarray(logits, dtype=np.float64)
        if logits.ndim != 2 or logits.shape[1] != self.classes.shape[0]:
            raise ValueError(
                f"logits must have shape (n_samples, {self.classes.shape[0]}) (one "
                f"column per class), got {logits.shape}."
            )
        y = np.asarray(y)
        known = np.isin(y, self.classes)
        if not known.any():
            return
        logits, y = logits[known], y[known]
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
                self._correct += int(np.sum(logits.argmax(axis=1) == col))
        for i, beta in enumerate(self.betas):
            p = softmax(beta * z, axis=1)
            with np.errstate(invalid="ignore"):  # 0 * -inf: a class never given
                ez = np.where(p > 0, p * z, 0.0).sum(axis=1)
                dev = np.where(p > 0, z - ez[:, None], 0.0)
            p_dev2 = p * dev * dev
            var = p_dev2.sum(axis=1)
            if self.method == "log_loss":
                self._sums[i] += (
                    np.sum(ez - z_true),
                    np.sum(var),
                    np.einsum("ij,ij->", p_dev2, dev),
                )
            else:  # mean max p; z_max = 0 after the shift
                p_max = p.max(axis=1)
                self._sums[i] += (
                    np.sum(p_max),
                    -np.sum(p_max * ez),
                    np.sum(p_max * (ez * ez - var)),
                )
        self._n += y.shape[0]

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


def used_as_is(estimator) -> bool:
    """Whether an ensemble should neither fit nor cross-validate ``estimator``.

    True for a :class:`~sklearn.frozen.FrozenEstimator` (how prefit models come
    in) and for estimators whose scikit-learn tags say they need no fit
    (``requires_fit=False``: the fixed heads of skvrf, whose weights come from
    elsewhere). Such a component is calibrated on ``X_val``, or on the training
    rows, since it was not fitted on them.

    A class attribute ``learns_nothing = True`` (skvrf 0.1.0.dev0's rule) still
    counts, with a FutureWarning: declare ``requires_fit=False`` in
    ``__sklearn_tags__`` or wrap the estimator in a FrozenEstimator.

    Parameters
    ----------
    estimator : estimator instance
        A component.

    Returns
    -------
    bool
        True when the component is used as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf._base import used_as_is
    >>> used_as_is(ZeroShotClassifier(np.eye(2)))
    True
    >>> used_as_is(LogisticRegression())
    False
    >>> lr = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> used_as_is(FrozenEstimator(lr))
    True
    """
    if isinstance(estimator, FrozenEstimator):
        return True
    if not get_tags(estimator).requires_fit:
        return True
    if getattr(type(estimator), "learns_nothing", False):
        warnings.warn(
            f"{type(estimator).__name__} declares `learns_nothing = True`; that "
            "rule is deprecated: set `tags.requires_fit = False` in its "
            "__sklearn_tags__, or pass FrozenEstimator(estimator).",
            FutureWarning,
            stacklevel=3,
        )
        return True
    return False


def check_labels_known(y, classes, name, owner):
    """Raise, naming them, if labels of ``y`` are in no component's classes."""
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise ValueError(
            f"{owner}: {name} contains labels that no component knows: "
            f"{shown_labels(unknown)}. The components' classes are "
            f"{classes[:20].tolist()}" + (" ..." if classes.shape[0] > 20 else "") + "."
        )


def fit_components(ensemble, X, sample, y):
    """Clone and fit (or keep) the two components of ``ensemble``.

    ``X`` None: the rows come from a store, and only components used as they
    are can be fitted (on ``sample``, the first chunk, which they only
    validate).
    """
    fitted = {}
    for name in COMPONENTS:
        est = getattr(ensemble, f"{name}_estimator")
        if used_as_is(est):
            # Fixed heads are fitted without y: a label they do not know is
            # the ensemble's business (it may be known to the other one).
            est_ = clone(est)
            if not isinstance(est_, FrozenEstimator):
                est_.fit(sample)  # validates, records classes_
        elif X is None:
            raise ValueError(
                f"{type(ensemble).__name__}: fitting from a store streams the rows "
                f"through components used as they are, but the {name} component "
                f"({type(est).__name__}) would be fitted on all of X. Pass "
                "FrozenEstimator(<fitted estimator>), or read the store "
                "(store.read()) and call fit(X, y)."
            )
        else:
            est_ = clone(est).fit(X, y)
        fitted[name] = est_
    return fitted


def temperature_fit(est, logits, y, name):
    """The temperature of component ``name`` on whole logits."""
    fit = (
        fit_temperature
        if est.calibration_method == "log_loss"
        else fit_confidence_temperature
    )
    # Label-based: the logit columns are in the order of the component's classes_.
    return fit(logits, y, getattr(est, f"{name}_estimator_").classes_)


def fit_temperatures(est, X, y, y_val, val_outputs):
    """Temperatures known before the pass over the training rows, and a
    :class:`ChunkedTemperature` for each component calibrated on them."""
    temps = {name: 1.0 for name in COMPONENTS}
    streamed = {}
    if not est.calibrate:
        return temps, streamed
    for name in COMPONENTS:
        estimator = getattr(est, f"{name}_estimator")
        if val_outputs is not None:
            temps[name] = temperature_fit(est, val_outputs[name], y_val, name)
        elif used_as_is(estimator):
            classes = getattr(est, f"{name}_estimator_").classes_
            streamed[name] = ChunkedTemperature(classes, est.calibration_method)
        else:
            logits = out_of_fold_logits(est, estimator, X, y)
            if name == "zeroshot" and est.zeroshot_bias_ is not None:
                logits = logits - est.zeroshot_bias_
            temps[name] = temperature_fit(est, logits, y, name)
    return temps, streamed


def out_of_fold_logits(est, estimator, X, y):
    """Out-of-fold logits of a component fitted here, for its calibration."""
    cv = est.calibration_cv
    if isinstance(cv, Integral):
        shuffle = est.random_state is not None
        cv = StratifiedKFold(
            cv, shuffle=shuffle, random_state=est.random_state if shuffle else None
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
        clone(estimator), X, y, cv=cv, method=method, n_jobs=est.n_jobs
    )
    if method == "predict_proba":
        return logits_from_proba(out)
    return as_full_logits(out)
