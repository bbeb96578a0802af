"""Parquet and Arrow files with an embedding column, and metadata columns.

An embedding column is a list or fixed-size list of floats (float16, float32 or
float64), one list of ``n_features`` values per row; labels and keys are plain
columns. Parquet files are read a chunk at a time
(``ParquetFile.iter_batches``); Arrow IPC files (``.arrow``, ``.feather``) are
memory-mapped and their batches sliced without copying.
"""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import FeatureFileError
from ..utils import import_optional
from ._base import FeatureStore, Shard, default_keys, natural_key

__all__ = ["ArrowStore", "ParquetStore"]

PARQUET_SUFFIXES = (".parquet", ".pq")
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
#: The embedding column's name when none is given and the file has it.
DEFAULT_EMBEDDING_COLUMN = "embedding"
#: The label column's name when none is given and the file has it.
DEFAULT_LABEL_COLUMN = "label"
#: The key column's name when none is given and the file has it.
DEFAULT_KEY_COLUMN = "key"


def pyarrow():
    return import_optional("pyarrow", "reading Parquet or Arrow feature stores")


def _parquet():
    pyarrow()
    return import_optional("pyarrow.parquet", "reading Parquet feature stores")


def rechunk(batches, n_rows):
    """Tables of exactly ``n_rows`` rows (the last may be shorter) from batches."""
    pa = pyarrow()
    buf, have = [], 0
    for batch in batches:
        while batch.num_rows:
            take = min(n_rows - have, batch.num_rows)
            buf.append(batch.slice(0, take))
            have += take
            batch = batch.slice(take)
            if have == n_rows:
                yield pa.Table.from_batches(buf)
                buf, have = [], 0
    if have:
        yield pa.Table.from_batches(buf)


def _single(column):
    """One Array from a ChunkedArray (no copy when it has one chunk)."""
    pa = pyarrow()
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        if column.num_chunks == 0:
            return pa.array([], type=column.type)
        return pa.concat_arrays(column.chunks)
    return column


def is_embedding_type(arrow_type) -> bool:
    pa = pyarrow()
    types = pa.types
    if not (
        types.is_list(arrow_type)
        or types.is_large_list(arrow_type)
        or types.is_fixed_size_list(arrow_type)
    ):
        return False
    value = arrow_type.value_type
    return types.is_floating(value) or types.is_integer(value)


def embedding_matrix(column, where, start=0, n_features=None) -> np.ndarray:
    """An (n, d) array from a list or fixed-size-list column, without a copy
    where Arrow allows (fixed-size lists, one chunk, no nulls).

    Parameters
    ----------
    column : pyarrow.Array or ChunkedArray
        The embedding column of some rows.
    where : str
        The file (and shard) for error messages.
    start : int, default=0
        Row of the file where ``column`` starts, for error messages.
    n_features : int, default=None
        Expected list length (default: the first row's).
    """
    pa = pyarrow()
    arr = _single(column)
    if not is_embedding_type(arr.type):
        raise FeatureFileError(
            f"{where}: the embedding column must be a list or fixed-size list of "
            f"floats, got type {arr.type}."
        )
    if arr.null_count:
        row = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
        raise FeatureFileError(f"{where}, row {start + row}: the embedding is null.")
    n = len(arr)
    if pa.types.is_fixed_size_list(arr.type):
        d = arr.type.list_size
        values = arr.flatten()
    else:
        offsets = np.asarray(arr.offsets)
        lengths = np.diff(offsets)
        d = int(lengths[0]) if n and n_features is None else n_features
        wrong = np.flatnonzero(lengths != d)
        if wrong.size:
            row = int(wrong[0])
            raise FeatureFileError(
                f"{where}, row {start + row}: the embedding has {int(lengths[row])} "
                f"values; expected {d} (every row must have the same length)."
            )
        values = arr.flatten()
    if n_features is not None and d != n_features:
        raise FeatureFileError(
            f"{where}: embeddings of {d} values; the store has {n_features}."
        )
    if values.null_count:
        row = int(np.flatnonzero(~np.asarray(values.is_valid()))[0]) // max(d, 1)
        raise FeatureFileError(
            f"{where}, row {start + row}: the embedding has a null value."
        )
    X = values.to_numpy(zero_copy_only=False)
    return X.reshape(n, d)


def column_values(column, where, start=0, what="label") -> np.ndarray:
    """A plain column as a numpy array (strings as objects), nulls refused."""
    pa = pyarrow()
    arr = _single(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if arr.null_count:
        row = int(np.flatnonzero(~np.asarray(arr.is_valid()))[0])
        raise FeatureFileError(f"{where}, row {start + row}: the {what} is null.")
    return arr.to_numpy(zero_copy_only=False)


def choose_columns(
    names, types, where, *, embedding_column, label_column, key_column, embedding=True
):
    """Resolve the embedding, label and key columns of a schema.

    ``embedding_column=None``: ``"embedding"`` when present, else the only
    column of lists of numbers. ``label_column=None``: ``"label"`` when present,
    else no labels. ``key_column=None``: ``"key"`` when present, else no keys.
    A named column that is missing is an error listing the columns.
    """
    names = list(names)

    def named(column, what):
        if column not in names:
            raise FeatureFileError(
                f"{where}: no {what} column {column!r}; the columns are {names}."
            )
        return column

    emb = None
    if embedding:
        if embedding_column is not None:
            emb = named(embedding_column, "embedding")
        elif DEFAULT_EMBEDDING_COLUMN in names:
            emb = DEFAULT_EMBEDDING_COLUMN
        else:
            lists = [n for n, t in zip(names, types) if is_embedding_type(t)]
            if len(lists) != 1:
                raise FeatureFileError(
                    f"{where}: cannot tell which column holds the embeddings "
                    f"(columns of lists of numbers: {lists}; all columns: {names}); "
                    "name it (embedding_column=..., --embedding-column)."
                )
            emb = lists[0]
    if label_column is not None:
        label = named(label_column, "label")
    else:
        label = DEFAULT_LABEL_COLUMN if DEFAULT_LABEL_COLUMN in names else None
    if key_column is not None:
        key = named(key_column, "key")
    else:
        key = DEFAULT_KEY_COLUMN if DEFAULT_KEY_COLUMN in names else None
    return emb, label, key


def list_files(path, suffixes, what):
    """The files of a folder (or the one file) with these suffixes, in natural order."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(
            (
                os.path.join(path, f)
                for f in os.listdir(path)
                if f.lower().endswith(suffixes) and not f.startswith((".", "_"))
            ),
            key=lambda p: natural_key(os.path.basename(p)),
        )
        if not files:
            raise FeatureFileError(
                f"{path}: a folder without {what} files ({', '.join(suffixes)})."
            )
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature store not found: {path}")
    return [path]


def shard_name(file) -> str:
    base = os.path.basename(file)
    for suffix in (*PARQUET_SUFFIXES, *ARROW_SUFFIXES, ".npy", ".npz", ".pt"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


class ColumnLabels:
    """Labels and row keys read from table columns, for stores whose tables
    (the data's own, or row-aligned metadata) hold ``label_column`` and
    ``key_column``; mixed in before :class:`FeatureStore`."""

    def _label_tables(self, shard, columns):
        """pyarrow Tables of a shard's ``columns``, ``chunk_rows`` rows each."""
        raise NotImplementedError

    def _label_where(self, shard):
        """The file that error messages about a shard's labels name."""
        return shard.where()

    def _labels_keys(self, shard, table, start, stop):
        where = shard.where()
        y = None
        if self.label_column is not None:
            y = column_values(table.column(self.label_column), where, start)
        if self.key_column is not None:
            keys = column_values(table.column(self.key_column), where, start, "key")
        else:
            keys = default_keys(shard, start, stop)
        return y, keys

    def _shard_labels(self, shard):
        where = self._label_where(shard)
        parts = [
            column_values(t.column(self.label_column), where)
            for t in self._label_tables(shard, [self.label_column])
        ]
        return np.concatenate(parts) if parts else np.empty(0)


class _TableStore(ColumnLabels, FeatureStore):
    """Shared reading of tables: embedding, label and key columns."""

    def _set_columns(self, emb, label, key):
        self.embedding_column, self.label_column, self.key_column = emb, label, key

    def _columns(self):
        return [c for c in (self.embedding_column, self.label_column, self.key_column)
                if c is not None]  # fmt: skip

    def _tables(self, shard, columns):
        """pyarrow Tables of ``chunk_rows`` rows (the last shorter) of a shard."""
        raise NotImplementedError

    def _read_shard(self, shard):
        start = 0
        where = shard.where()
        for table in self._tables(shard, self._columns()):
            X = embedding_matrix(
                table.column(self.embedding_column), where, start, self.n_features
            )
            yield start, X, table
            start += table.num_rows
        if start != shard.n_rows:
            raise FeatureFileError(
                f"{where}: read {start} rows, but the file declares {shard.n_rows}."
            )

    def _label_tables(self, shard, columns):
        return self._tables(shard, columns)


class ParquetStore(_TableStore):
    """A Parquet file, or a folder of them (one shard each)."""

    format = "parquet"

    def __init__(
        self,
        path,
        *,
        embedding_column=None,
        label_column=None,
        key_column=None,
        chunk_rows=None,
    ):
        pq = _parquet()
        files = list_files(path, PARQUET_SUFFIXES, "Parquet")
        shards, columns, n_features, dtype, start = [], None, None, None, 0
        for index, file in enumerate(files):
            try:
                pf = pq.ParquetFile(file)
            except Exception as exc:  # ArrowInvalid, OSError: not Parquet
                raise FeatureFileError(
                    f"{file}: cannot be read as a Parquet file ({type(exc).__name__}: "
                    f"{exc}); it may be truncated or not Parquet."
                ) from exc
            schema = pf.schema_arrow
            found = choose_columns(
                schema.names,
                schema.types,
                file,
                embedding_column=embedding_column,
                label_column=label_column,
                key_column=key_column,
            )
            if columns is None:
                columns = found
                n_features, dtype = self._probe(pf, found[0], file)
            elif found != columns:
                raise FeatureFileError(
                    f"{file}: columns {found} (embedding, label, key) differ from "
                    f"the first file's {columns} ({files[0]})."
                )
            n = pf.metadata.num_rows
            shards.append(Shard(index, shard_name(file), file, n, start))
            start += n
        super().__init__(path, shards, n_features, dtype, chunk_rows=chunk_rows)
        self._set_columns(*columns)

    @staticmethod
    def _probe(pf, column, file):
        for batch in pf.iter_batches(batch_size=1, columns=[column]):
            X = embedding_matrix(batch.column(0), file)
            return X.shape[1], X.dtype
        raise FeatureFileError(f"{file}: the Parquet file has no rows.")

    def _tables(self, shard, columns):
        pq = _parquet()
        pf = pq.ParquetFile(shard.path)
        batches = pf.iter_batches(batch_size=self.chunk_rows, columns=columns)
        return rechunk(batches, self.chunk_rows)


def _open_ipc(file):
    """A reader of an Arrow IPC file (random access) or stream, memory-mapped."""
    pa = pyarrow()
    source = pa.memory_map(file, "r")
    try:
        return pa.ipc.open_file(source)
    except pa.ArrowInvalid:
        source.seek(0)
        try:
            return pa.ipc.open_stream(source)
        except pa.ArrowInvalid as exc:
            raise FeatureFileError(
                f"{file}: cannot be read as an Arrow IPC file or stream ({exc})."
            ) from exc


def _ipc_batches(reader):
    if hasattr(reader, "num_record_batches"):
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        yield from reader


class ArrowStore(_TableStore):
    """An Arrow IPC file (``.arrow``, ``.feather`` v2), or a folder of them."""

    format = "arrow"

    def __init__(
        self,
        path,
        *,
        embedding_column=None,
        label_column=None,
        key_column=None,
        chunk_rows=None,
    ):
        files = list_files(path, ARROW_SUFFIXES, "Arrow")
        shards, columns, n_features, dtype, start = [], None, None, None, 0
        for index, file in enumerate(files):
            reader = _open_ipc(file)
            schema = reader.schema
            found = choose_columns(
                schema.names,
                schema.types,
                file,
                embedding_column=embedding_column,
                label_column=label_column,
                key_column=key_column,
            )
            n = 0
            for batch in _ipc_batches(reader):
                if columns is None and batch.num_rows:
                    X = embedding_matrix(batch.column(found[0]).slice(0, 1), file)
                    n_features, dtype = X.shape[1], X.dtype
                    columns = found
                n += batch.num_rows
            if columns is not None and found != columns:
                raise FeatureFileError(
                    f"{file}: columns {found} (embedding, label, key) differ from "
                    f"the first file's {columns} ({files[0]})."
                )
            shards.append(Shard(index, shard_name(file), file, n, start))
            start += n
        if columns is None:
            raise FeatureFileError(f"{os.fspath(path)}: the Arrow store has no rows.")
        super().__init__(path, shards, n_features, dtype, chunk_rows=chunk_rows)
        self._set_columns(*columns)

    def _tables(self, shard, columns):
        reader = _open_ipc(shard.path)
        batches = (b.select(columns) for b in _ipc_batches(reader))
        return rechunk(batches, self.chunk_rows)
