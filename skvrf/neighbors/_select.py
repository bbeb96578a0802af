"""Exact selection of the ``K`` largest values of every row of a score block.

Four exact strategies, chosen per block shape by :func:`choose` from a cost
model (nanoseconds per element, measured on a 2-core AVX-512 machine; only
their ratios matter):

``"max"``
    ``K == 1``: the row maximum (``argmax`` for the column).
``"partition"``
    ``np.partition`` of the whole row in place (``np.argpartition`` when the
    columns are wanted): linear, but about 6 ns per value, a third of what the
    float32 product of 512-d rows costs. Best when ``K`` is a large fraction
    of the row (a small bank with a large ``k``).
``"grouped"``
    The group-maximum selection: the row is cut into ``n_groups = n // g``
    interleaved groups of ``g`` columns (group ``j`` holds columns
    ``j, j + n_groups, ...``); the ``K`` groups with the largest maxima, plus
    the ``< g`` tail columns outside the groups, contain the ``K`` largest
    values. Proof: let ``t`` be the ``K``-th largest group maximum; the kept
    groups hold ``K`` values ``>= t`` (their maxima), so the ``K``-th largest
    value of the row is ``>= t``; every value ``> t`` lies in a group whose
    maximum is ``> t``, and all such groups are kept. The kept candidates
    therefore hold every value above ``t`` and enough values equal to it:
    their ``K`` largest equal the row's ``K`` largest (which of several tied
    columns is kept may differ). Cost: one vectorised maximum over the row,
    a selection among ``n / g`` maxima and among ``K * g`` candidates. Best
    for ``K`` much smaller than the row.
``"threshold"`` (values only)
    The same ``t`` (the ``K``-th largest of ``n / g`` group maxima, ``g`` at
    most ``n / (2K)``) as a threshold: every value ``>= t`` of the grouped
    columns plus the tail columns are compacted (a boolean mask) and the
    ``K`` largest selected among them, which is exact by the argument above.
    About 1.4 ``K`` values pass for random data; when ties let many more
    pass (more than ``4K + 64`` in a row) the block falls back to
    ``"partition"``, so memory stays bounded. Best for ``K`` between the
    other two regimes when only values are wanted.

All return ``(values, columns)`` of shape ``(m, K)``, unsorted within a row;
``columns`` is ``None`` when not asked for. The block ``S`` is scratch: it may
be reordered in place.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

_MAX_GROUP = 64

# Cost model: nanoseconds per row, fitted by least squares to CPU times of
# each strategy on a 2-core AVX-512 machine (rows of 800 to 300 000 values,
# K from 2 to 2048; median error 7-9 %). Only the ratios matter.
_PARTITION = (5.5, 0.0)  # (per value, per row)
_ARGPARTITION = (9.6, 760.0)


def _grouped_cost(n: int, K: int, g: int, values_only: bool) -> float:
    per_cand = 12.0 if values_only else 19.0
    return 0.27 * n + 8.7 * (n / g) + per_cand * (K * g + g) + 200.0


def _threshold_cost(n: int, K: int, g: int) -> float:
    return 0.91 * n + 5.3 * (n / g) + 39.0 * K + 760.0


def group_size(n_cols: int, n_select: int) -> int:
    """Group width ``g`` of the ``"grouped"`` strategy for ``n_cols`` columns
    and ``n_select`` kept values; 1 means "select on the whole row"."""
    if n_select >= n_cols:
        return 1
    g = 2 ** round(math.log2(max(1.0, math.sqrt(n_cols / n_select))))
    g = min(g, _MAX_GROUP)
    while g > 1 and n_cols // g < n_select:
        g //= 2
    return g


def _threshold_group(n: int, K: int) -> int:
    """Largest power-of-two ``g <= n / (2K)`` (at most 512), or 1."""
    if 2 * K > n:
        return 1
    return 2 ** min(9, int(math.log2(n / (2 * K))))


def choose(n_cols: int, n_select: int, values_only: bool) -> tuple[str, int]:
    """``(strategy, g)`` with the lowest modelled cost for one row of
    ``n_cols`` values of which ``n_select`` are kept."""
    n, K = n_cols, n_select
    if K >= n:
        return "all", 1
    if K == 1:
        return "max", 1
    a, b = _PARTITION if values_only else _ARGPARTITION
    best, best_cost = ("partition", 1), a * n + b
    g = 2
    while g <= _MAX_GROUP and n // g >= K:
        cost = _grouped_cost(n, K, g, values_only)
        if cost < best_cost:
            best, best_cost = ("grouped", g), cost
        g *= 2
    if values_only:
        g = _threshold_group(n, K)
        if g >= 2 and _threshold_cost(n, K, g) < best_cost:
            best = ("threshold", g)
    return best


def select(
    S: np.ndarray,
    n_select: int,
    values_only: bool = False,
    method: tuple[str, int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``n_select`` largest values of every row of ``S`` (and columns).

    Parameters
    ----------
    S : ndarray of shape (m, n), C-contiguous
        Scores (larger is nearer); used as scratch.
    n_select : int
        How many to keep per row (``min(n_select, n)`` are returned).
    values_only : bool
        Skip the columns (faster strategies become available).
    method : (str, int), optional
        Force ``(strategy, g)`` (tests); default :func:`choose`.

    Returns
    -------
    values : ndarray of shape (m, K), a new array
    columns : ndarray of int64 of shape (m, K), or None
    """
    m, n = S.shape
    K = min(n_select, n)
    name, g = choose(n, K, values_only) if method is None else method
    if K >= n:
        name = "all"
    if name == "all":
        cols = None
        if not values_only:
            cols = np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)).copy()
        return S.copy(), cols
    if name == "max":
        if values_only:
            return S.max(axis=1, keepdims=True), None
        cols = S.argmax(axis=1)[:, None].astype(np.int64, copy=False)
        return np.take_along_axis(S, cols, axis=1), cols
    if name == "grouped" and g >= 2 and n // g >= K:
        return _grouped(S, K, g, values_only)
    if name == "threshold" and values_only and g >= 2 and n // g >= K:
        out = _threshold(S, K, g)
        if out is not None:
            return out, None
    return _partition(S, K, values_only)


def _partition(S, K, values_only):
    n = S.shape[1]
    if values_only:
        S.partition(n - K, axis=1)
        return S[:, n - K :].copy(), None
    cols = np.argpartition(S, n - K, axis=1)[:, n - K :]
    return np.take_along_axis(S, cols, axis=1), cols.astype(np.int64, copy=False)


def _grouped_view(S: np.ndarray, g: int) -> np.ndarray:
    m, n = S.shape
    n_groups = n // g
    s0, s1 = S.strides
    return as_strided(S, (m, g, n_groups), (s0, n_groups * s1, s1), writeable=False)


def _grouped(S, K, g, values_only):
    m, n = S.shape
    n_groups = n // g
    maxima = _grouped_view(S, g).max(axis=1)  # (m, n_groups)
    if n_groups > K:
        top = np.argpartition(maxima, n_groups - K, axis=1)[:, n_groups - K :]
    else:
        top = np.broadcast_to(np.arange(n_groups), (m, n_groups))
    # columns of the kept groups' members: (m, K * g)
    cols = top[:, :, None] + np.arange(0, g * n_groups, n_groups)[None, None, :]
    cols = cols.reshape(m, -1)
    tail = n - g * n_groups
    if tail:
        tail_cols = np.broadcast_to(np.arange(g * n_groups, n), (m, tail))
        cols = np.concatenate([cols, tail_cols], axis=1)
    flat = cols + (np.arange(m, dtype=cols.dtype) * n)[:, None]
    cand = np.take(S.reshape(-1), flat)
    c = cand.shape[1]
    if values_only:
        if c > K:
            cand.partition(c - K, axis=1)
            cand = cand[:, c - K :].copy()
        return cand, None
    if c > K:
        sel = np.argpartition(cand, c - K, axis=1)[:, c - K :]
        cand = np.take_along_axis(cand, sel, axis=1)
        cols = np.take_along_axis(cols, sel, axis=1)
    return cand, cols.astype(np.int64, copy=False)


def threshold_cap(K: int) -> int:
    """Most values per row that ``"threshold"`` compacts before it falls back
    to ``"partition"``."""
    return 4 * K + 64


def _threshold(S, K, g):
    m, n = S.shape
    n_groups = n // g
    maxima = _grouped_view(S, g).max(axis=1)
    maxima.partition(n_groups - K, axis=1)
    t = maxima[:, n_groups - K]
    mask = S >= t[:, None]
    if g * n_groups < n:
        mask[:, g * n_groups :] = True
    counts = np.count_nonzero(mask, axis=1)
    width = int(counts.max())
    if width > threshold_cap(K):
        return None  # many ties at the threshold: partition instead
    flat = S[mask]
    dense = np.full((m, width), -np.inf, dtype=S.dtype)
    starts = np.cumsum(counts) - counts
    rows = np.repeat(np.arange(m), counts)
    pos = np.arange(flat.size) - np.repeat(starts, counts)
    dense[rows, pos] = flat
    if width > K:
        dense.partition(width - K, axis=1)
        return dense[:, width - K :].copy()
    return dense


def select_bytes(n_cols: int, n_select: int, itemsize: int, values_only: bool) -> int:
    """Upper bound of the temporary bytes :func:`select` allocates for one
    row of ``n_cols`` values (besides the block itself)."""
    n, K, s = n_cols, min(n_select, n_cols), itemsize
    name, g = choose(n, K, values_only)
    out = (s + 8) * K + 64
    if name in ("all", "max"):
        return (s + 8) * n + out
    if name == "partition":
        return out if values_only else (8 + 8 + s) * n + out
    if name == "grouped":
        n_groups = n // g
        c = K * g + g
        # maxima, argpartition of them, candidate columns (+ tail copy, flat
        # indices), candidate values, their argpartition and copies
        return (s + 8) * n_groups + (8 * 3 + s + 8 + s + 8) * c + out
    # threshold: maxima, the mask, compacted values, row/pos/starts indices,
    # the dense block; at most threshold_cap(K) values pass per row
    cap = threshold_cap(K)
    return s * (n // g) + n + (s + 8 * 3 + s) * cap + out


def merge(
    values: np.ndarray, cols: np.ndarray | None, n_select: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep the ``n_select`` largest of concatenated partial results."""
    c = values.shape[1]
    if c <= n_select:
        return values, cols
    if cols is None:
        values.partition(c - n_select, axis=1)
        return values[:, c - n_select :].copy(), None
    sel = np.argpartition(values, c - n_select, axis=1)[:, c - n_select :]
    return np.take_along_axis(values, sel, axis=1), np.take_along_axis(cols, sel, 1)
