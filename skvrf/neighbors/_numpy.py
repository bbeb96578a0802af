"""NumPy backend: blocked GEMM and an exact selection chosen per block shape.

The products are computed in float32, or in float64 for a float64 bank (the
dispatcher casts the queries to it). A float16 bank is never copied whole to
float32: each block of bank rows is cast into a float32 buffer of the block's
size just before its products (the cast of float16 to float32 is exact, so the
products are those of a float32 copy); the buffer counts against
``working_memory``.

The ``K`` largest products of each row of a block are selected by one of the
exact strategies of :mod:`._select` (row maximum, whole-row partition, group
maxima, group-maximum threshold), whichever its cost model says is cheapest for
the block's width and ``K``; :func:`block_topk` is the group-maximum selection
with columns.
"""

from __future__ import annotations

import numpy as np

from ._engine import Engine
from ._select import choose, group_size, merge, select
from ._select import select_bytes as _select_bytes

__all__ = ["NumpyEngine", "block_topk", "group_size", "row_bytes"]


def row_bytes(
    n_cols: int,
    n_select: int,
    n_features: int = 0,
    itemsize: int = 4,
    values_only: bool = False,
) -> int:
    """Upper bound of the bytes one query row needs against ``n_cols`` bank
    rows: the products (``itemsize`` bytes each: 4 for float32, 8 for float64),
    every selection temporary, the merge of partial results and the query
    row."""
    s = itemsize
    # merging partial results: concatenated values (and int64 columns, their
    # argpartition and copies), and the query row
    merge_bytes = (4 * s if values_only else 88 + 2 * s) * n_select + s * n_features
    return s * n_cols + _select_bytes(n_cols, n_select, s, values_only) + merge_bytes


def col_bytes(n_features: int, bank_itemsize: int, itemsize: int) -> int:
    """Bytes per bank row held once per block: the float32 cast of a float16
    (or integer) bank; 0 when the bank is already in the compute dtype."""
    return 0 if bank_itemsize == itemsize else itemsize * n_features


def block_topk(
    S: np.ndarray, n_select: int, group: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_select`` largest values of every row of ``S`` and their columns,
    by the group-maximum selection (:mod:`._select`).

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_cols), C-contiguous
        Scores; larger is nearer.
    n_select : int
        How many to keep per row (``min(n_select, n_cols)`` are returned).
    group : int, optional
        Force the group width (tests); default :func:`group_size`; 1 selects
        on the whole row.

    Returns
    -------
    values, columns : ndarray of shape (n_rows, min(n_select, n_cols))
        Unsorted within a row; ``columns`` is int64.
    """
    n = S.shape[1]
    g = group_size(n, min(n_select, n)) if group is None else group
    return select(S, n_select, method=("grouped", g))


class NumpyEngine(Engine):
    """Top-``n_select`` inner products of query chunks against a fixed bank.

    The bank (float32, float64, or float16 cast block by block) is shared,
    never copied, by every chunk; queries come in the compute dtype
    (``queries.dtype``). With ``values_only`` the columns are not tracked
    (``topk`` returns ``None`` for them) and cheaper selections apply.
    """

    row_bytes = staticmethod(row_bytes)
    col_bytes = staticmethod(col_bytes)

    def _setup(self, bank, block_cols, dtype):
        self.bank = bank
        self.block_cols = max(1, min(block_cols, bank.shape[0]))
        self.dtype = dtype
        self._cast_once = None
        if bank.dtype != self.dtype and self.block_cols >= bank.shape[0]:
            # the whole bank is one block, its cast fits the budget: cast once
            self._cast_once = bank.astype(self.dtype)

    def _blocks(self):
        """``(start, block)`` over the bank in the compute dtype; a float16
        bank is cast block by block into one reused buffer."""
        n = self.bank.shape[0]
        cols = self.block_cols
        if self._cast_once is not None:
            yield 0, self._cast_once
            return
        if self.bank.dtype == self.dtype:
            for c0 in range(0, n, cols):
                yield c0, self.bank[c0 : c0 + cols]
            return
        buf = np.empty((cols, self.bank.shape[1]), dtype=self.dtype)
        for c0 in range(0, n, cols):
            src = self.bank[c0 : c0 + cols]
            block = buf[: len(src)]
            np.copyto(block, src, casting="unsafe")
            yield c0, block

    def products(self, queries: np.ndarray) -> None:
        """The matrix products alone, same blocking (the benchmark's floor)."""
        m = queries.shape[0]
        buf = np.empty(m * self.block_cols, dtype=self.dtype)
        for _c0, block in self._blocks():
            S = buf[: m * len(block)].reshape(m, -1)
            np.matmul(queries, block.T, out=S)

    def topk(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values, columns)`` of shape (m, n_select), unsorted per row;
        ``columns`` is None with ``values_only``."""
        m = queries.shape[0]
        buf = np.empty(m * self.block_cols, dtype=self.dtype)
        values = columns = None
        for c0, block in self._blocks():
            S = buf[: m * len(block)].reshape(m, -1)
            np.matmul(queries, block.T, out=S)
            v, c = select(S, self.n_select, self.values_only)
            if c is not None and c0:
                c += c0
            if values is None:
                values, columns = v, c
            else:
                values = np.concatenate([values, v], axis=1)
                if c is not None:
                    c = np.concatenate([columns, c], axis=1)
                values, columns = merge(values, c, self.n_select)
        return values, columns

    def strategy(self) -> str:
        """The selection strategy of a full block (for the benchmarks)."""
        return choose(self.block_cols, self.n_select, self.values_only)[0]
