"""Generalized logit adjustment (GLA): the label bias a zero-shot head inherits.

``logit_adjustment="gla"`` subtracts :func:`estimate_label_bias` of the zero-shot
component's training logits from its logits everywhere (Zhu et al., NeurIPS
2023). The fit is an L-BFGS minimisation over every training row's logits at
once: with ``logit_adjustment="gla"`` those of the zero-shot component are held
during ``fit``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from ._calibration import _known_rows, check_calibration_weights

__all__ = ["estimate_label_bias"]


def estimate_label_bias(logits, y, classes, sample_weight=None):
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
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows in the cross-entropy and the class frequencies
        (None: all 1; a row of weight 0 counts as absent).

    Returns
    -------
    bias : ndarray of shape (n_classes,)
        Subtract it from the logits.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._label_bias import estimate_label_bias
    >>> z = np.zeros((4, 2))  # a head that cannot tell the classes apart
    >>> b = estimate_label_bias(z, [0, 0, 0, 1], np.array([0, 1]))
    >>> # b = log(head's prior) - log(training prior): a flat head gets 3:1 added
    >>> float(np.round(b[1] - b[0], 6)), float(np.round(np.log(3), 6))
    (1.098612, 1.098612)
    """
    classes = np.asarray(classes)
    y = np.asarray(y)
    z = np.asarray(logits, dtype=np.float64)
    w = check_calibration_weights(sample_weight, z.shape[0])
    z, y, w = _known_rows(z, y, classes, w)
    bias = np.zeros(classes.shape[0])
    if y.shape[0] == 0:
        return bias
    w = np.ones(y.shape[0]) if w is None else w
    order = np.argsort(classes, kind="stable")
    col = order[np.searchsorted(classes[order], y)]
    present = np.unique(col)
    if present.shape[0] < 2:
        return bias
    z = np.maximum(z - z.max(axis=1, keepdims=True), -1e4)  # finite, same softmax
    freq = np.bincount(col, weights=w, minlength=classes.shape[0])[present]
    freq = freq / w.sum()

    def loss(u):  # b over the present columns, u - mean(u): the gauge is fixed
        b = np.zeros(classes.shape[0])
        b[present] = u - u.mean()
        zb = z - b
        lse = logsumexp(zb, axis=1)
        p = np.average(np.exp(zb - lse[:, None])[:, present], axis=0, weights=w)
        value = np.average(lse - zb[np.arange(zb.shape[0]), col], weights=w)
        grad = freq - p  # d loss / d b_present
        return value, grad - grad.mean()

    u0 = np.zeros(present.shape[0])
    res = minimize(loss, u0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    bias[present] = res.x - res.x.mean()
    return bias
