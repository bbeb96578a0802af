"""NumPy backend: blocked GEMM and an exact group-maximum selection.

The products are computed in the bank's dtype: float32, or float64 for a
float64 bank (the dispatcher casts the queries to it).

Selecting the ``K`` largest products of a row of ``n`` values with
``np.argpartition`` costs far more than the matrix product that made them.
This backend instead cuts each row into ``n_groups = n // g`` interleaved
groups of ``g`` columns (group ``j`` holds columns ``j, j + n_groups, ...``) and

1. takes every group's maximum, ``G`` (one vectorised pass, ``np.maximum``
   over ``g`` contiguous slices, no index arrays);
2. keeps the ``K`` groups with the largest maxima (``argpartition`` of ``G``,
   ``g`` times smaller than the row);
3. gathers the ``K * g`` members of those groups, plus the ``< g`` tail
   columns that fall outside the groups, and selects the ``K`` largest there.

This is exact. Let ``t`` be the ``K``-th largest group maximum: the kept groups
contain at least ``K`` values ``>= t`` (their maxima), so the ``K``-th largest
value of the row is ``>= t``; every value ``> t`` lies in a group whose maximum
is ``> t``, and all such groups are kept. The candidates therefore contain every
value above ``t`` and enough values equal to ``t``: their ``K`` largest have the
same values as the row's ``K`` largest (which of several tied columns is kept
may differ). No threshold can come out too high, so no fallback is needed.
``g`` is a power of two near ``sqrt(n / K)``, which balances step 2 against
step 3; narrow blocks (``g < 2``) use ``argpartition`` on the whole row.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

_MAX_GROUP = 64


def group_size(n_cols: int, n_select: int) -> int:
    """Group width ``g`` for ``n_cols`` columns and ``n_select`` kept values;
    1 means "select on the whole row"."""
    if n_select >= n_cols:
        return 1
    g = 2 ** round(math.log2(max(1.0, math.sqrt(n_cols / n_select))))
    g = min(g, _MAX_GROUP)
    while g > 1 and n_cols // g < n_select:
        g //= 2
    return g


def row_bytes(
    n_cols: int, n_select: int, n_features: int = 0, itemsize: int = 4
) -> int:
    """Upper bound of the bytes one query row needs against ``n_cols`` bank
    rows: the products (``itemsize`` bytes each: 4 for float32, 8 for float64)
    plus every selection temporary."""
    s = itemsize
    g = group_size(n_cols, n_select)
    # the merge of partial results: values and int64 columns, concatenated,
    # argpartitioned and gathered; plus the query row
    merge = (88 + 2 * s) * n_select + s * n_features
    if g == 1:  # products, argpartition's int64 indices and value copy
        return (2 * s + 8) * n_cols + merge
    n_groups = n_cols // g
    # products + maxima + int64 argpartition of the maxima + candidates
    # (columns, their copy with the tail, flat indices, values, argpartition)
    cand = 32 + s
    return s * n_cols + (s + 8) * n_groups + cand * (n_select + 1) * g + merge


def block_topk(
    S: np.ndarray, n_select: int, group: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_select`` largest values of every row of ``S`` and their columns.

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_cols), C-contiguous
        Scores; larger is nearer.
    n_select : int
        How many to keep per row (``min(n_select, n_cols)`` are returned).
    group : int, optional
        Force the group width (tests); default :func:`group_size`.

    Returns
    -------
    values, columns : ndarray of shape (n_rows, min(n_select, n_cols))
        Unsorted within a row; ``columns`` is int64.
    """
    m, n = S.shape
    K = min(n_select, n)
    g = group_size(n, K) if group is None else group
    if g <= 1 or n // g < K:
        if K == n:
            cols = np.broadcast_to(np.arange(n, dtype=np.int64), (m, n)).copy()
            return S.copy(), cols
        cols = np.argpartition(S, n - K, axis=1)[:, n - K :]
        return np.take_along_axis(S, cols, axis=1), cols
    n_groups = n // g
    s0, s1 = S.strides
    grouped = as_strided(S, (m, g, n_groups), (s0, n_groups * s1, s1), writeable=False)
    maxima = grouped.max(axis=1)  # (m, n_groups)
    if n_groups > K:
        top = np.argpartition(maxima, n_groups - K, axis=1)[:, n_groups - K :]
    else:
        top = np.broadcast_to(np.arange(n_groups), (m, n_groups))
    # columns of the kept groups' members: (m, K, g)
    cols = top[:, :, None] + np.arange(0, g * n_groups, n_groups)[None, None, :]
    cols = cols.reshape(m, -1)
    tail = n - g * n_groups
    if tail:
        tail_cols = np.broadcast_to(np.arange(g * n_groups, n), (m, tail))
        cols = np.concatenate([cols, tail_cols], axis=1)
    flat = cols + (np.arange(m, dtype=np.int64) * n)[:, None]
    cand = np.take(S.reshape(-1), flat)
    c = cand.shape[1]
    if c > K:
        sel = np.argpartition(cand, c - K, axis=1)[:, c - K :]
        cand = np.take_along_axis(cand, sel, axis=1)
        cols = np.take_along_axis(cols, sel, axis=1)
    return cand, cols.astype(np.int64, copy=False)


def merge_topk(
    values: np.ndarray, cols: np.ndarray, n_select: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``n_select`` largest of concatenated partial results."""
    c = values.shape[1]
    if c <= n_select:
        return values, cols
    sel = np.argpartition(values, c - n_select, axis=1)[:, c - n_select :]
    return np.take_along_axis(values, sel, axis=1), np.take_along_axis(cols, sel, 1)


class NumpyEngine:
    """Top-``n_select`` inner products of query chunks against a fixed bank.

    The bank (float32 or float64, C-contiguous) is shared, never copied, by
    every chunk; queries come in the bank's dtype and products are computed in
    it.
    """

    row_bytes = staticmethod(row_bytes)

    def __init__(self, bank: np.ndarray, n_select: int, block_cols: int):
        self.bank = bank
        self.n_select = n_select
        self.block_cols = block_cols

    def products(self, queries: np.ndarray) -> None:
        """The matrix products alone, same blocking (the benchmark's floor)."""
        n = self.bank.shape[0]
        cols = min(self.block_cols, n)
        buf = np.empty(queries.shape[0] * cols, dtype=self.bank.dtype)
        for c0 in range(0, n, cols):
            block = self.bank[c0 : c0 + cols]
            S = buf[: queries.shape[0] * len(block)].reshape(len(queries), -1)
            np.matmul(queries, block.T, out=S)

    def topk(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, columns)`` of shape (m, n_select), unsorted per row."""
        m = queries.shape[0]
        n = self.bank.shape[0]
        cols = min(self.block_cols, n)
        buf = np.empty(m * cols, dtype=self.bank.dtype)
        values = columns = None
        for c0 in range(0, n, cols):
            block = self.bank[c0 : c0 + cols]
            S = buf[: m * len(block)].reshape(m, -1)
            np.matmul(queries, block.T, out=S)
            v, c = block_topk(S, self.n_select)
            if c0:
                c += c0
            if values is None:
                values, columns = v, c
            else:
                values, columns = merge_topk(
                    np.concatenate([values, v], axis=1),
                    np.concatenate([columns, c], axis=1),
                    self.n_select,
                )
        return values, columns
