"""The k-th nearest neighbour of a weighted bank.

A bank row of weight ``w`` counts as ``w`` rows: the k-th neighbour of a query
is the nearest bank row at which the bank's cumulative weight, rows taken
nearest first, reaches ``k``. Integer weights give exactly the distances of a
bank in which each row is repeated that many times; all weights 1 give
:func:`~skvrf.neighbors.kth_neighbor_distances`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from ._dispatch import kneighbors

__all__ = ["weighted_kth_neighbor_distances"]

# Cumulative weights are float sums: a target is reached within this relative
# tolerance (integer weights sum exactly; ten weights of 0.1 reach 1).
_REACH_RTOL = 1e-12


def _check_weights(weights, n_bank):
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_bank,):
        raise ValueError(
            f"The bank's weights must have shape ({n_bank},), got {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w <= 0):
        raise ValueError(
            "The bank's weights must be finite and positive (leave rows of "
            "weight 0 out of the bank)."
        )
    return w


def _check_ranks(k):
    scalar = np.ndim(k) == 0
    ks = [k] if scalar else list(k)
    if not ks:
        raise ValueError("k must hold at least one rank.")
    for v in ks:
        if isinstance(v, bool) or not isinstance(v, Real | Integral) or not v >= 1:
            raise ValueError(f"Every k must be a number >= 1, got {v!r}.")
    return np.asarray(ks, dtype=np.float64), scalar


def neighbors_needed(weights, k) -> int:
    """How many nearest rows always hold the weight ``k``: the fewest rows
    whose smallest weights add up to ``k`` (all rows when none do).

    Parameters
    ----------
    weights : ndarray of shape (n_bank,)
        Positive weights.
    k : float
        The weight to reach.

    Returns
    -------
    n : int
        In ``[1, n_bank]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.neighbors._weighted import neighbors_needed
    >>> neighbors_needed(np.array([3.0, 0.5, 1.0, 0.5]), 2)
    3
    """
    total = np.cumsum(np.sort(weights))
    n = int(np.searchsorted(total, k * (1 - _REACH_RTOL))) + 1
    return min(n, total.shape[0])


def weighted_kth_neighbor_distances(
    queries, bank, k: float | Sequence[float], weights, **engine
) -> np.ndarray:
    """Distance from every query to its ``k``-th nearest row of a weighted bank.

    The distance of the nearest bank row at which the cumulative weight of
    the rows, nearest first, reaches ``k`` (the farthest row when the bank's
    whole weight is below ``k``). Rows that tie in distance are taken in any
    order: the distance returned does not depend on it.

    Parameters
    ----------
    queries : array-like or torch.Tensor of shape (n_queries, n_features)
        Unit-norm query rows (as in
        :func:`~skvrf.neighbors.kth_neighbor_distances`).
    bank : array-like or PreparedBank of shape (n_bank, n_features)
        Unit-norm bank rows.
    k : float or sequence of float
        The weight(s) to reach, each ``>= 1``; a sequence gives one column
        each from one search.
    weights : array-like of shape (n_bank,)
        Positive weight of every bank row.
    **engine
        ``backend``, ``working_memory``, ``n_jobs``, ``screen``: as in
        :func:`~skvrf.neighbors.kneighbors`.

    Returns
    -------
    distances : ndarray of float64, shape (n_queries,) or (n_queries, len(k))
        Squared L2 distances, in ``[0, 4]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.neighbors._weighted import weighted_kth_neighbor_distances
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> q = np.array([[1.0, 0.0]])
    >>> weighted_kth_neighbor_distances(q, bank, [1, 2, 3], [2.0, 1.0, 1.0],
    ...                                 backend="numpy")
    array([[0., 0., 2.]])
    """
    ks, scalar = _check_ranks(k)
    n_bank = int(bank.shape[0] if hasattr(bank, "shape") else len(bank))
    w = _check_weights(weights, n_bank)
    targets = np.minimum(ks, w.sum())
    m = neighbors_needed(w, float(targets.max()))
    d, idx = kneighbors(queries, bank, m, **engine)
    reached = np.cumsum(w[idx], axis=1)
    out = np.empty((d.shape[0], ks.size))
    rows = np.arange(d.shape[0])
    for j, t in enumerate(targets):
        first = np.argmax(reached >= t * (1 - _REACH_RTOL), axis=1)
        out[:, j] = d[rows, first]
    return out[:, 0] if scalar else out
