"""Candidate grids of VRF's ``threshold`` and ``temperature`` derived from the
distances themselves, so that a search means the same on any encoder.

A threshold only means something relative to the distances ``d(x)`` of the
features at hand: CLIP ViT-B/16's k-th ZSF distances put the paper's 1.5 inside
their range, a text encoder or a low-temperature image encoder may put every
distance below 0.1. :class:`DistanceQuantiles` and :class:`DistanceSpread`
describe candidates by *position* (a quantile of the observed distances, a
fraction of their spread) and turn them into values per fit, one set per ``k``.
"""

from __future__ import annotations

from numbers import Real

import numpy as np

__all__ = [
    "DEFAULT_TEMPERATURE_FRACTIONS",
    "DEFAULT_THRESHOLD_QUANTILES",
    "DistanceQuantiles",
    "DistanceSpread",
    "resolve_grid_spec",
]

# The default positions. Thresholds: from the 5 % to the 99 % quantile of the
# distances, denser at the top, where validation accuracy tends to put VRF (the
# paper's 1.5 on CLIP ViT-B/16 lies high in its distances). Temperatures: from
# a sharp switch (a twentieth of the interquartile range: w(x) goes from 0.88 to
# 0.12 over a fifth of it, 4 b) to a nearly constant mix (four IQRs: w(x) moves
# by about 0.06 across the middle half of the rows: expit(0.125) - expit(-0.125)
# = 0.062).
DEFAULT_THRESHOLD_QUANTILES = (0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95, 0.99)
DEFAULT_TEMPERATURE_FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


def _finite(distances):
    d = np.asarray(distances, dtype=np.float64).ravel()
    return d[np.isfinite(d)]


def _finite_weighted(distances, sample_weight):
    """The finite distances of positive weight, and their weights (None
    without ``sample_weight``)."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    if sample_weight is None:
        return d[np.isfinite(d)], None
    w = np.asarray(sample_weight, dtype=np.float64).ravel()
    if w.shape != d.shape:
        raise ValueError(
            f"sample_weight must have one value per distance ({d.size}), got {w.size}."
        )
    keep = np.isfinite(d) & (w > 0)
    return d[keep], w[keep]


def weighted_quantile(values, q, sample_weight=None):
    """``np.quantile(values, q)`` (linear interpolation) with weighted values.

    A value of weight ``w`` counts as ``w`` copies of it: integer weights give
    the quantiles of the values repeated, and fractional weights interpolate
    the same rule on the cumulative weights.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Non-empty, finite.
    q : float or array-like of float
        Positions in [0, 1].
    sample_weight : ndarray of shape (n,), default=None
        Positive weights (None: ``np.quantile`` itself).

    Returns
    -------
    quantiles : float or ndarray
        Of the shape of ``q``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._grids import weighted_quantile
    >>> weighted_quantile(np.array([1.0, 2.0, 4.0]), [0.5, 0.9], np.array([1, 2, 1]))
    array([2. , 3.4])
    >>> np.quantile([1.0, 2.0, 2.0, 4.0], [0.5, 0.9])
    array([2. , 3.4])
    """
    if sample_weight is None:
        return np.quantile(values, q)
    order = np.argsort(values, kind="stable")
    v, reached = values[order], np.cumsum(sample_weight[order])
    h = np.clip(np.asarray(q, dtype=np.float64) * (reached[-1] - 1.0), 0.0, None)
    lo = np.floor(h)

    def at(j):  # the value of the j-th copy (0-based)
        i = np.searchsorted(reached, j * (1 + 1e-12) + 1e-12, side="right")
        return v[np.minimum(i, v.size - 1)]

    a, b = at(lo), at(lo + 1)
    return a + (h - lo) * (b - a)


def _positions(values, name, *, upper):
    """A non-empty tuple of finite floats in [0, 1] (``upper``) or > 0."""
    if isinstance(values, str | bytes) or np.ndim(values) != 1:
        raise ValueError(f"{name} must be a sequence of numbers, got {values!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v):
            raise ValueError(f"{name} must hold finite numbers, got {v!r}.")
        v = float(v)
        if (upper and not 0.0 <= v <= 1.0) or (not upper and v <= 0.0):
            bounds = "[0, 1]" if upper else "(0, inf)"
            raise ValueError(f"{name} must lie in {bounds}, got {v!r}.")
        out.append(v)
    if not out:
        raise ValueError(f"{name} must hold at least one value.")
    return tuple(out)


class _Positions:
    """Shown and compared by the positions it holds (``_values`` names them)."""

    _values: str

    def __repr__(self):
        return f"{type(self).__name__}({tuple(getattr(self, self._values))!r})"

    def __eq__(self, other):
        values = self._values
        return type(other) is type(self) and tuple(getattr(other, values)) == tuple(
            getattr(self, values)
        )

    __hash__ = None


class DistanceQuantiles(_Positions):
    """Threshold candidates at quantiles of the observed distances.

    For each ``k``, the candidate thresholds are ``np.quantile(d_k, q)`` for
    every ``q`` in ``quantiles``, where ``d_k`` are the finite k-th ZSF
    distances of the rows that the candidates are scored on (each fold's
    held-out rows in :class:`~skvrf.VRFEnsembleClassifierCV`, pooled over the
    folds; the validation split in :func:`~skvrf.evaluation.compare_methods`
    and ``skvrf evaluate``). Every candidate lies inside the observed range.

    Parameters
    ----------
    quantiles : sequence of float, default=DEFAULT_THRESHOLD_QUANTILES
        Positions in [0, 1] (0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95, 0.99).

    See Also
    --------
    DistanceSpread : Temperatures as fractions of the distances' spread.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import DistanceQuantiles
    >>> DistanceQuantiles((0.0, 0.5, 1.0)).values(np.array([0.1, 0.2, 0.3, 0.5]))
    array([0.1 , 0.25, 0.5 ])
    """

    _values = "quantiles"

    def __init__(self, quantiles=DEFAULT_THRESHOLD_QUANTILES):
        self.quantiles = quantiles

    def positions(self):
        """The checked positions.

        Returns
        -------
        quantiles : tuple of float
            In [0, 1].
        """
        return _positions(self.quantiles, "quantiles", upper=True)

    def values(self, distances, sample_weight=None):
        """The candidate thresholds for these distances.

        Parameters
        ----------
        distances : array-like
            Observed distances (non-finite ones, e.g. of an empty ZSF set, are
            ignored).
        sample_weight : array-like, default=None
            Weights of the distances (None: all 1): an integer weight acts as
            that many copies of the distance, weight 0 as its absence.

        Returns
        -------
        thresholds : ndarray of shape (len(quantiles),)
            Non-decreasing, inside ``[min(d), max(d)]``; all equal to the
            paper's 1.5 when no distance is finite (the weight is then 0
            whatever the threshold).
        """
        q, (d, w) = self.positions(), _finite_weighted(distances, sample_weight)
        if d.size == 0:
            return np.full(len(q), 1.5)
        return weighted_quantile(d, q, w)


class DistanceSpread(_Positions):
    """Temperature candidates as fractions of the observed distances' spread.

    For each ``k``, the candidate temperatures are ``f * s_k`` for every ``f``
    in ``fractions``, where ``s_k`` is the interquartile range of the finite
    k-th ZSF distances (the same rows as :class:`DistanceQuantiles`); when it
    is 0 (most distances equal), the whole range ``max - min``; when that is
    0 too, ``1e-6``. A sigmoid weight with temperature ``b`` moves from 0.73
    to 0.27 over ``2 b`` of distance, so ``f = 0.05`` is a sharp switch inside
    the middle half of the rows and ``f = 4`` a nearly constant mix.

    Parameters
    ----------
    fractions : sequence of float, default=DEFAULT_TEMPERATURE_FRACTIONS
        Positive fractions (0.05, 0.1, 0.25, 0.5, 1, 2, 4).

    See Also
    --------
    DistanceQuantiles : Thresholds at quantiles of the distances.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import DistanceSpread
    >>> d = np.array([0.0, 0.1, 0.2, 0.3, 0.4])  # IQR 0.2
    >>> DistanceSpread((0.5, 1.0)).values(d)
    array([0.1, 0.2])
    """

    _values = "fractions"

    def __init__(self, fractions=DEFAULT_TEMPERATURE_FRACTIONS):
        self.fractions = fractions

    def positions(self):
        """The checked fractions.

        Returns
        -------
        fractions : tuple of float
            Positive.
        """
        return _positions(self.fractions, "fractions", upper=False)

    @staticmethod
    def spread(distances, sample_weight=None):
        """The spread ``s`` of these distances (see the class docstring).

        Parameters
        ----------
        distances : array-like
            Observed distances; non-finite ones are ignored.
        sample_weight : array-like, default=None
            Weights of the distances, as in :meth:`DistanceQuantiles.values`.

        Returns
        -------
        spread : float
            Positive; 1.0 when no distance is finite.
        """
        d, w = _finite_weighted(distances, sample_weight)
        if d.size == 0:
            return 1.0
        q1, q3 = weighted_quantile(d, [0.25, 0.75], w)
        for s in (q3 - q1, d.max() - d.min()):
            if s > 0:
                return float(s)
        return 1e-6

    def values(self, distances, sample_weight=None):
        """The candidate temperatures for these distances.

        Parameters
        ----------
        distances : array-like
            Observed distances.
        sample_weight : array-like, default=None
            Weights of the distances, as in :meth:`DistanceQuantiles.values`.

        Returns
        -------
        temperatures : ndarray of shape (len(fractions),)
            Positive.
        """
        return np.asarray(self.positions()) * self.spread(distances, sample_weight)


_SHORTHANDS = {
    "thresholds": ("quantiles", DistanceQuantiles),
    "temperatures": ("spread", DistanceSpread),
}


def resolve_grid_spec(value, name):
    """A search parameter's candidates: a data-driven spec or a tuple of values.

    Parameters
    ----------
    value : str, DistanceQuantiles, DistanceSpread or sequence
        ``"quantiles"`` (thresholds) and ``"spread"`` (temperatures) are the
        default specs; a spec object is checked; anything else is returned as a
        list of explicit values.
    name : {"thresholds", "temperatures"}
        The parameter.

    Returns
    -------
    spec : DistanceQuantiles, DistanceSpread or list
    """
    shorthand, cls = _SHORTHANDS[name]
    if isinstance(value, str):
        if value != shorthand:
            raise ValueError(
                f"{name}={value!r} is not understood: give {shorthand!r} (the "
                f"default), a {cls.__name__}, or a sequence of values."
            )
        return cls()
    if isinstance(value, DistanceQuantiles | DistanceSpread):
        if not isinstance(value, cls):
            raise ValueError(
                f"{name} takes a {cls.__name__} (or {shorthand!r}), not a "
                f"{type(value).__name__}."
            )
        value.positions()  # validates
        return value
    return list(value)
