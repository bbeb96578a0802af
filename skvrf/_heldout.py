"""Held-out calibration rows that scikit-learn's model selection passes on whole.

``GridSearchCV``, ``cross_validate`` and their kin slice every fit parameter that
is as long as ``X`` into the folds along with ``X``. A validation set that happens
to have as many rows as the training set would therefore be split silently. A
:class:`HeldOut` has no length and no shape, so scikit-learn passes it on to every
fit as it is.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_consistent_length,
    column_or_1d,
)

__all__ = ["HeldOut", "check_validation", "validation_weight"]


class HeldOut:
    """Held-out rows ``(X, y)`` for calibration, never split by model selection.

    With ``sample_weight``, the held-out rows' weights: the temperatures
    calibrated on them minimise the weighted log-loss, and the search's
    data-driven candidates (and the choice of ``skvrf fit --val``) weigh
    them.

    Pass it as ``fit(X, y, X_val=HeldOut(X_val, y_val))``. Arrays given as
    ``X_val=..., y_val=...`` work as well, except when they have as many rows as
    ``X``: scikit-learn's model selection would then split them with the folds,
    so the ensembles refuse that case and ask for a ``HeldOut``.

    Parameters
    ----------
    X : array-like or sequence
        Held-out input, of the kind the ensemble's components take.
    y : array-like of shape (n_val_samples,)
        Its labels.
    sample_weight : array-like of shape (n_val_samples,), default=None
        Its rows' weights (non-negative; None: all 1).

    Attributes
    ----------
    X : array-like or sequence
        The held-out input.
    y : ndarray of shape (n_val_samples,)
        The labels.
    sample_weight : ndarray of shape (n_val_samples,) or None
        The weights.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import HeldOut
    >>> held = HeldOut(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> held
    HeldOut(n_samples=4)
    >>> hasattr(held, "__len__") or hasattr(held, "shape")
    False
    """

    __slots__ = ("X", "sample_weight", "y")

    def __init__(self, X, y, sample_weight=None):
        y = column_or_1d(y)
        check_consistent_length(X, y)
        self.X = X
        self.y = y
        self.sample_weight = None
        if sample_weight is not None:
            self.sample_weight = _check_sample_weight(
                sample_weight, y, dtype=np.float64, ensure_non_negative=True
            )

    def __repr__(self) -> str:
        return f"HeldOut(n_samples={_num_samples(self.X)})"

    def __getstate__(self):
        return {"X": self.X, "y": self.y, "sample_weight": self.sample_weight}

    def __setstate__(self, state):
        self.X, self.y = state["X"], state["y"]
        self.sample_weight = state.get("sample_weight")


def validation_weight(X_val):
    """The held-out rows' weights: a :class:`HeldOut`'s ``sample_weight``, else
    None."""
    return X_val.sample_weight if isinstance(X_val, HeldOut) else None


def check_validation(X, X_val, y_val, owner: str):
    """Held-out rows of a ``fit`` call as ``(X_val, y_val)``, or ``(None, None)``.

    Parameters
    ----------
    X : array-like
        The training input.
    X_val : array-like, HeldOut or None
        Held-out input, or a :class:`HeldOut`.
    y_val : array-like or None
        Its labels (None with a HeldOut).
    owner : str
        Estimator name for messages.

    Returns
    -------
    X_val, y_val : array-like and ndarray, or None and None
    """
    if isinstance(X_val, HeldOut):
        if y_val is not None:
            raise ValueError(
                f"{owner}: pass y_val inside HeldOut(X_val, y_val), not as well."
            )
        return X_val.X, X_val.y
    if (X_val is None) != (y_val is None):
        raise ValueError(f"{owner}: X_val and y_val must be given together.")
    if X_val is None:
        return None, None
    y_val = column_or_1d(y_val)
    check_consistent_length(X_val, y_val)
    n_val, n = _num_samples(X_val), _num_samples(X)
    if n_val == n:
        raise ValueError(
            f"{owner}: X_val has as many rows as X ({n}). Inside GridSearchCV, "
            "cross_validate and other scikit-learn model selection, fit parameters "
            "as long as X are split into the folds with X, so the held-out set "
            "would silently shrink to each fold's share. Pass it as "
            "fit(X, y, X_val=skvrf.HeldOut(X_val, y_val)), which is always passed "
            "on whole."
        )
    return X_val, np.asarray(y_val)
