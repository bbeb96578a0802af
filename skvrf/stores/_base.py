"""The store abstraction: shards of rows read in bounded chunks.

A :class:`FeatureStore` knows its shards (one file of rows each: an ``.npy``
shard of a clip-retrieval folder, a Parquet or Arrow file, a ``.pt`` tensor, an
``.npz`` archive), their row counts, the feature dimension and dtype, and where
labels and row keys live. ``FeatureStore.iter_chunks()`` yields
``StoreChunk(X, y, keys)`` of at most ``chunk_rows`` rows, shard after shard;
nothing larger than a chunk (and a shard's small per-row metadata columns, read
in step) is held. Features keep their stored dtype (float16 stays float16) until
the consumer converts a chunk.

A store holds no open file: it is cheap to pickle and send to Dask workers,
and every iteration opens what it reads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..exceptions import FeatureFileError

__all__ = ["FeatureStore", "Shard", "StoreChunk", "default_chunk_rows"]

#: Bytes of features in one chunk by default (32,768 rows of 512 float32 values).
CHUNK_BYTES = 64 * 2**20


def default_chunk_rows(n_features: int, itemsize: int = 4) -> int:
    """Rows per chunk so that one chunk of float32 features takes about 64 MiB.

    Parameters
    ----------
    n_features : int
        Features per row.
    itemsize : int, default=4
        Bytes per value once the chunk is used (float32).

    Returns
    -------
    rows : int
        At least 1.

    Examples
    --------
    >>> from skvrf.stores import default_chunk_rows
    >>> default_chunk_rows(512)
    32768
    """
    return max(1, CHUNK_BYTES // (max(1, int(n_features)) * itemsize))


def natural_key(text: str):
    """Sort key that orders ``img_emb_2`` before ``img_emb_10``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class Shard:
    """One file of a store's rows.

    Parameters
    ----------
    index : int
        Position among the store's shards.
    name : str
        Unique within the store, usable as a file name (``img_emb_3``,
        ``part-0001``, ``features_test``): names the output shard of
        ``skvrf predict`` and, with the row, a row's default key.
    path : str
        The file holding the shard's features.
    n_rows : int
        Rows in the shard.
    start : int
        Row of the store where the shard begins.
    metadata : str or None
        The file holding the shard's labels and keys, when it is not ``path``
        (clip-retrieval's ``metadata/metadata_{N}.parquet``).
    """

    index: int
    name: str
    path: str
    n_rows: int
    start: int
    metadata: str | None = None

    def where(self, row=None) -> str:
        """The place an error names: the file, the shard and, given, the row.

        Parameters
        ----------
        row : int, default=None
            A row of the shard.

        Returns
        -------
        text : str
            ``"<path> (shard '<name>'[, metadata <file>])[, row <row>]"``.
        """
        text = f"{self.path} (shard {self.name!r}"
        if self.metadata is not None:
            text += f", metadata {self.metadata}"
        text += ")"
        if row is not None:
            text += f", row {row}"
        return text


class StoreChunk(NamedTuple):
    """One bounded chunk of a store's rows.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Features in the stored dtype (float16 stays float16; possibly a read-only
        view of a memory map, valid until the iteration moves on).
    y : ndarray of shape (n_rows,) or None
        Label values, None when the store has no labels.
    keys : ndarray of shape (n_rows,)
        A key per row, unique across the store: the rows' key column where the
        store has one, else ``"<shard name>:<row in shard>"``.
    """

    X: np.ndarray
    y: np.ndarray | None
    keys: np.ndarray


def default_keys(shard: Shard, start: int, stop: int) -> np.ndarray:
    """``"<shard name>:<row>"`` for rows ``start:stop`` of ``shard``."""
    rows = np.arange(start, stop).astype(str)
    return np.char.add(f"{shard.name}:", rows).astype(object)


def check_finite(X, shard: Shard, start: int) -> None:
    """Raise naming the shard and the first rows with non-finite values."""
    if X.dtype.kind != "f":
        return
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = (np.flatnonzero(~finite)[:10] + start).tolist()
        raise FeatureFileError(
            f"{shard.where()}: non-finite feature values (NaN or inf) in rows {bad} "
            "of the shard."
        )


def check_unique_keys(keys, seen: set, shard: Shard, start: int) -> None:
    """Raise, naming the shard, the key and its rows, when a key repeats.

    ``seen`` holds the keys of the shard's earlier chunks and is updated.
    Keys are checked unique within each shard as it is read (holding one
    shard's keys); :meth:`FeatureStore.check_keys` checks across shards.
    """
    values = keys.tolist()
    if len(set(values)) != len(values) or not seen.isdisjoint(values):
        first = {}
        for i, key in enumerate(values):
            if key in seen or key in first:
                at = f"row {first[key] + start}" if key in first else "an earlier row"
                raise FeatureFileError(
                    f"{shard.where(start + i)}: duplicate key {key!r} (also at "
                    f"{at} of the shard); row keys must be unique."
                )
            first[key] = i
    seen.update(values)


def check_features_dtype(dtype, where: str) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "fiu":
        raise FeatureFileError(
            f"{where}: features must be numeric (float16, float32, ...), got dtype "
            f"{dtype}."
        )
    return dtype


class FeatureStore:
    """Rows of features (and labels, keys) in shards, read in bounded chunks.

    Made by :func:`skvrf.io.open_store`; subclasses read one format each.
    Its properties ``n_rows`` (rows in the store), ``classes`` (its sorted
    labels, or None) and ``has_labels`` are read without reading the features.

    Parameters
    ----------
    path : str or path-like
        What was opened.
    shards : sequence of Shard
        The files of rows, in order.
    n_features : int
        Features per row.
    dtype : dtype
        The stored dtype of the features.
    chunk_rows : int, default=None
        Rows per chunk; default :func:`default_chunk_rows`.

    Attributes
    ----------
    path : str
        What was opened.
    format : str
        ``"clip_retrieval"``, ``"clip_benchmark"``, ``"parquet"``, ``"arrow"``
        or ``"npz"``.
    shards : tuple of Shard
        The files of rows, in order.
    n_features : int
        Features per row.
    dtype : numpy.dtype
        The stored dtype of the features (chunks come in it).
    chunk_rows : int
        Rows per chunk.
    label_column : str or None
        Where labels come from (a column, an ``.npz`` key, a targets file), or
        None when the store has no labels.
    key_column : str or None
        The column of row keys, or None (keys are shard and row).
    class_map : list, dict or None
        A class map the store carries (``.npz`` files, see
        :func:`skvrf.io.feature_class_map`), else None.
    """

    format = ""

    def __init__(self, path, shards, n_features, dtype, *, chunk_rows=None):
        self.path = os.fspath(path)
        self.shards = tuple(shards)
        if not self.shards:
            raise FeatureFileError(f"{self.path}: the store has no shards (no rows).")
        self.n_features = int(n_features)
        self.dtype = np.dtype(dtype)
        if chunk_rows is None:
            chunk_rows = default_chunk_rows(self.n_features)
        if int(chunk_rows) < 1:
            raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows}.")
        self.chunk_rows = int(chunk_rows)
        self.label_column = None
        self.key_column = None
        self.class_map = None
        self._classes = None

    # ------------------------------------------------------------- sizes
    @property
    def n_rows(self) -> int:
        """Rows in the store (the sum over its shards)."""
        return sum(s.n_rows for s in self.shards)

    @property
    def has_labels(self) -> bool:
        """Whether the store has labels."""
        return self.label_column is not None

    @property
    def classes(self):
        """Sorted labels of the store (None without labels).

        The declared class list where the format has one (an ``.npz`` file's
        ``classes``), else the distinct values of the label column, found by
        one pass over that column only.
        """
        if not self.has_labels:
            return None
        if self._classes is None:
            self._classes = self._find_classes()
        return self._classes

    def labels(self) -> np.ndarray:
        """Every row's label, in row order, read without the features where the
        format allows (a metadata or label column, a targets file).

        Returns
        -------
        y : ndarray of shape (n_rows,)
            The label values.

        Raises
        ------
        ValueError
            When the store has no labels.
        """
        if not self.has_labels:
            raise ValueError(
                f"{self.path}: the store has no labels; open it with label_column= "
                "naming the column (or file) that holds them."
            )
        parts = [self._shard_labels(shard) for shard in self.shards]
        y = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if y.shape[0] != self.n_rows:
            raise FeatureFileError(
                f"{self.path}: {y.shape[0]} labels for {self.n_rows} rows."
            )
        return y

    def _find_classes(self):
        found = None
        for shard in self.shards:
            values = np.unique(self._shard_labels(shard))
            found = values if found is None else np.union1d(found, values)
        return found

    def _shard_labels(self, shard: Shard) -> np.ndarray:
        """Every label of a shard (one column; subclasses may read it faster)."""
        parts = [c.y for c in self._iter_shard(shard)]
        return np.concatenate(parts) if parts else np.empty(0)

    # --------------------------------------------------------- iteration
    def _read_shard(self, shard: Shard) -> Iterator[tuple[int, np.ndarray, object]]:
        """Yield ``(start, X, meta)`` per chunk; ``meta`` holds labels and keys."""
        raise NotImplementedError

    def _labels_keys(self, shard, meta, start, stop):
        """``(y, keys)`` of rows ``start:stop`` from what ``_read_shard`` gave."""
        raise NotImplementedError

    def _iter_shard(self, shard: Shard, dtype=None) -> Iterator[StoreChunk]:
        seen = set() if self.key_column is not None else None
        for start, X, meta in self._read_shard(shard):
            stop = start + X.shape[0]
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise FeatureFileError(
                    f"{shard.where()}: rows {start}:{stop} have shape {X.shape}; the "
                    f"store has {self.n_features} features per row."
                )
            check_finite(X, shard, start)
            if dtype is not None:
                X = X.astype(dtype, copy=False)
            y, keys = self._labels_keys(shard, meta, start, stop)
            if seen is not None:
                check_unique_keys(keys, seen, shard, start)
            yield StoreChunk(X, y, keys)

    def iter_shard(self, shard, *, dtype=None) -> Iterator[StoreChunk]:
        """Chunks of one shard, in order.

        Parameters
        ----------
        shard : Shard or int
            One of ``shards``, or its index.
        dtype : dtype, default=None
            Convert each chunk's features (e.g. ``np.float32``); default: the
            stored dtype.

        Yields
        ------
        chunk : StoreChunk
            ``(X, y, keys)`` of at most ``chunk_rows`` rows.
        """
        if not isinstance(shard, Shard):
            shard = self.shards[shard]
        yield from self._iter_shard(shard, dtype)

    def iter_chunks(self, *, shards: Iterable | None = None, dtype=None):
        """Bounded chunks of rows, shard after shard.

        Parameters
        ----------
        shards : iterable of Shard or int, default=None
            Read only these shards (default: all, in order).
        dtype : dtype, default=None
            Convert each chunk's features (e.g. ``np.float32``); default: the
            stored dtype, so float16 stays float16 until a chunk is used.

        Yields
        ------
        chunk : StoreChunk
            ``(X, y, keys)``: at most ``chunk_rows`` rows, never across two
            shards.

        Raises
        ------
        FeatureFileError
            When a shard is unreadable or inconsistent (naming the file, the shard
            and the rows).
        """
        for shard in self.shards if shards is None else shards:
            yield from self.iter_shard(shard, dtype=dtype)

    def check_keys(self) -> None:
        """Check that row keys are unique across the whole store.

        Chunks check their keys within their shard as they are read; this reads
        the key column of every shard (no features where the format allows) and
        holds every key once. Without a key column the keys (shard and row) are
        unique by construction.

        Raises
        ------
        FeatureFileError
            Naming the shard, the row and the duplicate key.
        """
        if self.key_column is None:
            return
        owner = {}
        for shard in self.shards:
            keys = self._shard_keys(shard)
            seen = set()
            check_unique_keys(keys, seen, shard, 0)
            for i, key in enumerate(keys.tolist()):
                if key in owner:
                    raise FeatureFileError(
                        f"{shard.where(i)}: duplicate key {key!r} (also in shard "
                        f"{owner[key]!r}); row keys must be unique across the store."
                    )
            owner.update(dict.fromkeys(seen, shard.name))

    def _shard_keys(self, shard: Shard) -> np.ndarray:
        """Every key of a shard (subclasses may read the column alone)."""
        parts = [c.keys for c in self._iter_shard(shard)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=object)

    def read(self, *, dtype=None) -> StoreChunk:
        """Every row at once (for stores that fit in memory).

        Parameters
        ----------
        dtype : dtype, default=None
            Type of ``X``; default the stored dtype.

        Returns
        -------
        chunk : StoreChunk
            ``(X, y, keys)`` of all rows.
        """
        X = np.empty((self.n_rows, self.n_features), dtype=dtype or self.dtype)
        ys, keys, pos = [], [], 0
        for chunk in self.iter_chunks():
            X[pos : pos + chunk.X.shape[0]] = chunk.X
            pos += chunk.X.shape[0]
            ys.append(chunk.y)
            keys.append(chunk.keys)
        y = np.concatenate(ys) if self.has_labels else None
        return StoreChunk(X, y, np.concatenate(keys))

    def to_feature_dict(self) -> dict:
        """The store read whole, as :func:`skvrf.io.load_features` returns a file.

        Returns
        -------
        data : dict of str to ndarray
            ``features`` and, with labels, ``labels`` (the label values: no
            ``classes`` key, so :func:`skvrf.io.feature_targets` returns them as
            they are), and the class map keys of an ``.npz`` store.
        """
        X, y, _ = self.read()
        data = {"features": X}
        if y is not None:
            data["labels"] = y
        return data

    def __repr__(self) -> str:
        labels = f", label_column={self.label_column!r}" if self.has_labels else ""
        return (
            f"{type(self).__name__}({self.path!r}, format={self.format!r}, "
            f"n_rows={self.n_rows}, n_features={self.n_features}, "
            f"dtype={self.dtype}, shards={len(self.shards)}{labels})"
        )
