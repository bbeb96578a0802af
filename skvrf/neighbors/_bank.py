"""A bank prepared once for many searches: validated once, its device copies kept."""

from __future__ import annotations

import threading

from ._validation import check_matrix


class PreparedBank:
    """A bank of unit rows, validated once, that keeps its device copies.

    :func:`kth_neighbor_distances` and :func:`kneighbors` take it in place of
    the bank array and compute exactly as with the array. What it saves on
    repeated searches against the same bank (VRF searches its Zero-Shot
    Failure bank once per chunk of rows of every ``predict``):

    - the bank is validated (2-D, real, finite) once, here, not per search;
    - the torch backend copies the bank to its device once per device and
      dtype and keeps the tensor here for the next searches, instead of once
      per search (on the CPU that tensor shares the array's memory).

    The NumPy and faiss backends read the array as before. A fitted
    :class:`~skvrf.VRFEnsembleClassifier` (and a kNN-scored
    :class:`~skvrf.SelectiveEnsembleClassifier`) holds one for its bank; it is
    left out of pickles and of saved models, and rebuilt on first use.

    Parameters
    ----------
    bank : array-like of shape (n_bank, n_features)
        Unit-norm reference rows, as for :func:`kth_neighbor_distances`. Kept
        by reference: edit it in place and the device copies are stale (make a
        new ``PreparedBank``, or call :meth:`clear`).

    Attributes
    ----------
    source : object
        The ``bank`` given (an owner compares it by identity to see whether
        its bank was replaced).
    array : ndarray of shape (n_bank, n_features)
        The validated bank (``bank`` itself when it was a NumPy array).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.neighbors import PreparedBank, kth_neighbor_distances
    >>> bank = PreparedBank(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    >>> kth_neighbor_distances(np.array([[1.0, 0.0]]), bank, k=2, backend="numpy")
    array([2.])
    """

    def __init__(self, bank):
        self.source = bank
        self.array = check_matrix(bank, "bank")
        if self.array.shape[0] == 0:
            raise ValueError("bank is empty: at least one bank row is needed.")
        if self.array.shape[1] == 0:
            raise ValueError("queries and bank have 0 features.")
        self._cache = {}
        self._lock = threading.Lock()

    @property
    def shape(self):
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    def get(self, key, make):
        """The value cached under ``key``, made by ``make()`` the first time
        (one thread makes it; the others wait for it).

        Parameters
        ----------
        key : hashable
            E.g. ``("torch", "cuda:0", "float32")``.
        make : callable
            Called without arguments to make the value when none is cached.

        Returns
        -------
        value : object
            The cached value.
        """
        value = self._cache.get(key)
        if value is None:
            with self._lock:
                value = self._cache.get(key)
                if value is None:
                    value = self._cache[key] = make()
        return value

    def clear(self) -> None:
        """Drop the copies kept (device memory is freed once nothing else
        holds them)."""
        with self._lock:
            self._cache.clear()

    def cached_keys(self) -> list:
        """The keys of the copies kept.

        Returns
        -------
        keys : list
            E.g. ``[("torch", "cuda:0", "float32")]``.
        """
        return list(self._cache)

    def __reduce__(self):
        # pickled as the bank alone: device copies are never pickled
        return type(self), (self.source,)

    def __repr__(self) -> str:
        n, d = self.shape
        return f"PreparedBank({n} x {d}, {self.dtype}, cached={self.cached_keys()})"
