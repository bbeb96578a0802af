"""The interface of the neighbour engines that :mod:`._dispatch` drives."""

from __future__ import annotations

import numpy as np


class Engine:
    """Top-``n_select`` inner products of query chunks against a fixed bank.

    :func:`._dispatch._search` builds one engine per call and calls
    :meth:`topk` once per query chunk. It sizes the chunks and blocks with the
    engine module's two cost functions, set as static methods of the class:
    ``row_bytes(n_cols, n_select, n_features=0, itemsize=4,
    values_only=False)``, the bytes one query row needs against ``n_cols``
    bank rows, and ``col_bytes(n_features, bank_itemsize, itemsize)``, the
    bytes one bank row of a block holds once.

    Subclasses implement :meth:`_setup` (their share of the constructor) and
    :meth:`topk`.

    Parameters
    ----------
    bank : ndarray of shape (n_bank, n_features)
        The bank rows (C-contiguous; its dtype is the backend's to check).
    n_select : int
        How many of the largest products each query row keeps.
    block_cols : int
        Bank rows per block (each engine bounds it by the bank's size).
    values_only : bool, default=False
        The columns are not needed: :meth:`topk` may return None for them.
    dtype : dtype, default=None
        Compute dtype of the products; the bank's when None.
    **options : dict
        The engine's own options (``device``, ``precision``, ``inner_rows``;
        the torch engines' ``bank_cache``, a PreparedBank keeping the
        device copy).
    """

    def __init__(
        self, bank, n_select, block_cols, values_only=False, dtype=None, **options
    ):
        self.n_select = n_select
        self.values_only = values_only
        dtype = np.dtype(bank.dtype if dtype is None else dtype)
        self._setup(bank, block_cols, dtype, **options)

    def _setup(self, bank, block_cols, dtype):
        """Keep (or copy, or index) the bank; set the engine's own state."""
        raise NotImplementedError

    def topk(self, queries):
        """``(values, columns)`` of shape (m, n_select), unsorted per row
        (``columns`` None with ``values_only``)."""
        raise NotImplementedError
