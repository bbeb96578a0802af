"""faiss backend: exact search with ``faiss.IndexFlatIP``.

faiss is imported inside :class:`FaissEngine` only. faiss blocks its own
products (``faiss.cvar.distance_compute_blas_query_bs`` x
``distance_compute_blas_database_bs``, 4096 x 1024 floats = 16 MiB per call by
default) and threads with OpenMP, so here queries are only chunked to bound the
result arrays. faiss computes in float32 only: the dispatcher refuses a float64
bank for this backend rather than silently rounding it.
"""

from __future__ import annotations

import numpy as np

from ..utils import import_optional
from ._engine import Engine


def import_faiss():
    """The ``faiss`` module, or an ImportError with the install hint."""
    return import_optional("faiss", "backend='faiss'")


def row_bytes(
    n_cols: int,
    n_select: int,
    n_features: int = 0,
    itemsize: int = 4,
    values_only: bool = False,
) -> int:
    """Bytes one query row needs: faiss's result arrays and the query copy
    (always float32)."""
    return 12 * n_select + 64 * n_select + 4 * n_features


def col_bytes(n_features: int, bank_itemsize: int, itemsize: int) -> int:
    """faiss holds its own float32 copy of the bank (not counted here)."""
    return 0


class FaissEngine(Engine):
    """Top-``n_select`` inner products from an exact flat faiss index.

    The index holds one float32 copy of the bank for the duration of a call.
    """

    row_bytes = staticmethod(row_bytes)
    col_bytes = staticmethod(col_bytes)

    def _setup(self, bank, block_cols, dtype):
        faiss = import_faiss()
        self.index = faiss.IndexFlatIP(bank.shape[1])
        self.index.add(bank)

    def topk(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, columns)`` of shape (m, n_select), sorted descending."""
        values, columns = self.index.search(queries, self.n_select)
        return values, columns.astype(np.int64, copy=False)
