"""clip-retrieval / embedding-reader folders: ``.npy`` shards and metadata.

``clip-retrieval inference`` writes ``img_emb/img_emb_{N}.npy`` (an (n_N, d)
array, usually float16) and ``metadata/metadata_{N}.parquet`` (n_N rows, in the
same order: ``key``, ``url``, ``caption``, ``image_path``, ... and whatever
columns the input carried, e.g. a label); embedding-reader reads the same
layout. Each ``.npy`` shard is memory-mapped; the pages of a chunk are released
once the next chunk is asked for, so a stream of any length holds about one
chunk of features in memory. Metadata columns are read a chunk at a time, in
step.
"""

from __future__ import annotations

import mmap
import os
import re

import numpy as np

from ..exceptions import FeatureFileError
from ._arrow import (
    DEFAULT_KEY_COLUMN,
    DEFAULT_LABEL_COLUMN,
    ColumnLabels,
    _parquet,
    rechunk,
)
from ._base import FeatureStore, Shard, check_features_dtype

__all__ = ["ClipRetrievalStore", "read_npy_header"]

_PAGE = mmap.PAGESIZE


def read_npy_header(path):
    """``(shape, dtype, data_offset)`` of an ``.npy`` file, checked.

    Raises
    ------
    FeatureFileError
        When the file is not an ``.npy`` array, is Fortran-ordered, not 2-D, or
        shorter than its header says (a truncated shard).
    """
    path = os.fspath(path)
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            offset = f.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise FeatureFileError(
            f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})."
        ) from exc
    if fortran or len(shape) != 2 or dtype.hasobject:
        raise FeatureFileError(
            f"{path}: expected a C-ordered 2-D numeric array (n_rows, n_features), "
            f"got shape {shape}, dtype {dtype}"
            + (", Fortran order" if fortran else "")
            + "."
        )
    size = os.path.getsize(path)
    need = offset + int(np.prod(shape)) * dtype.itemsize
    if size < need:
        rows = (size - offset) // max(1, shape[1] * dtype.itemsize)
        raise FeatureFileError(
            f"{path}: truncated: the header says {shape[0]} rows of {shape[1]} "
            f"{dtype} values ({need} bytes) but the file has {size} bytes (about "
            f"{rows} complete rows); the shard was not fully written."
        )
    return tuple(shape), dtype, offset


class _MappedArray:
    """A read-only memory map of an ``.npy`` file whose pages can be released."""

    def __init__(self, path, shape, dtype, offset):
        self._file = open(path, "rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            self._file.close()
            raise
        self.array = np.ndarray(shape, dtype=dtype, buffer=self._map, offset=offset)
        self._offset = offset
        self._row_bytes = shape[1] * dtype.itemsize

    def release(self, start, stop):
        """Drop the pages of rows ``start:stop`` from this process (not the file)."""
        if not hasattr(self._map, "madvise") or stop <= start:
            return
        lo = self._offset + start * self._row_bytes
        hi = self._offset + stop * self._row_bytes
        lo -= lo % _PAGE
        try:
            self._map.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
        except (OSError, ValueError):  # pragma: no cover - platform dependent
            pass

    def close(self):
        # The map itself is never closed here: a chunk given out may still view
        # it (numpy keeps a reference to the map, not a buffer export, so an
        # explicit close would leave such a view dangling). It is unmapped when
        # the last view goes; the file descriptor can go now (mmap holds its own).
        self.array = None
        self._map = None
        self._file.close()


def _numbered_files(folder, suffix):
    """``{N: path}`` of ``<stem>_<N><suffix>`` files of a folder."""
    found = {}
    pattern = re.compile(rf"^(?P<stem>.*?)_?(?P<n>\d+){re.escape(suffix)}$")
    for name in os.listdir(folder):
        match = pattern.match(name)
        if match and not name.startswith("."):
            n = int(match.group("n"))
            if n in found:
                raise FeatureFileError(
                    f"{folder}: two files number {n}: {os.path.basename(found[n])} "
                    f"and {name}."
                )
            found[n] = os.path.join(folder, name)
    return found


def _layout(path):
    """``(embedding folder, metadata folder or None)`` of a clip-retrieval path."""
    path = os.fspath(path)
    if os.path.isdir(os.path.join(path, "img_emb")):
        meta = os.path.join(path, "metadata")
        return os.path.join(path, "img_emb"), meta if os.path.isdir(meta) else None
    meta = os.path.join(os.path.dirname(os.path.abspath(path)), "metadata")
    return path, meta if os.path.isdir(meta) else None


class ClipRetrievalStore(ColumnLabels, FeatureStore):
    """A clip-retrieval / embedding-reader folder of ``.npy`` shards.

    ``path`` is the output folder (holding ``img_emb/`` and ``metadata/``), or
    a folder of ``.npy`` shards (its sibling ``metadata/`` is used when it
    exists). Shards are ordered by their number; the metadata shard of the same
    number must have as many rows.
    """

    format = "clip_retrieval"

    def __init__(self, path, *, label_column=None, key_column=None, chunk_rows=None):
        emb_dir, meta_dir = _layout(path)
        embeddings = _numbered_files(emb_dir, ".npy")
        if not embeddings:
            raise FeatureFileError(
                f"{os.fspath(path)}: no .npy shards (expected img_emb/img_emb_0.npy, "
                "img_emb_1.npy, ... as written by clip-retrieval)."
            )
        metadata = _numbered_files(meta_dir, ".parquet") if meta_dir else {}
        if metadata and set(metadata) != set(embeddings):
            missing = sorted(set(embeddings) - set(metadata))
            extra = sorted(set(metadata) - set(embeddings))
            raise FeatureFileError(
                f"{meta_dir}: metadata shards do not match the embedding shards of "
                f"{emb_dir}: no metadata for shard(s) {missing[:10]}, no embeddings "
                f"for {extra[:10]}."
            )
        if (label_column is not None or key_column is not None) and not metadata:
            raise FeatureFileError(
                f"{os.fspath(path)}: label or key columns were asked for, but there "
                "is no metadata/ folder of metadata_{N}.parquet files next to the "
                "embeddings."
            )
        shards, n_features, dtype, start = [], None, None, 0
        self._offsets = {}
        for index, n in enumerate(sorted(embeddings)):
            file = embeddings[n]
            shape, dt, offset = read_npy_header(file)
            check_features_dtype(dt, file)
            if n_features is None:
                n_features, dtype = shape[1], dt
            elif shape[1] != n_features or dt != dtype:
                raise FeatureFileError(
                    f"{file}: {shape[1]} features of {dt}; the first shard "
                    f"({embeddings[min(embeddings)]}) has {n_features} of {dtype}."
                )
            name = os.path.basename(file)[: -len(".npy")]
            shards.append(Shard(index, name, file, shape[0], start, metadata.get(n)))
            self._offsets[file] = offset
            start += shape[0]
        super().__init__(path, shards, n_features, dtype, chunk_rows=chunk_rows)
        self._check_metadata(label_column, key_column)

    def _check_metadata(self, label_column, key_column):
        if not any(s.metadata for s in self.shards):
            return
        pq = _parquet()
        columns = None
        for shard in self.shards:
            try:
                meta = pq.ParquetFile(shard.metadata)
            except Exception as exc:
                raise FeatureFileError(
                    f"{shard.metadata}: cannot be read as Parquet "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
            if meta.metadata.num_rows != shard.n_rows:
                raise FeatureFileError(
                    f"{shard.metadata} has {meta.metadata.num_rows} rows but "
                    f"{shard.path} has {shard.n_rows}: metadata and embedding "
                    "shards must be row-aligned."
                )
            names = meta.schema_arrow.names
            if columns is None:
                columns = names
                label = label_column
                if label is None and DEFAULT_LABEL_COLUMN in names:
                    label = DEFAULT_LABEL_COLUMN
                key = key_column
                if key is None and DEFAULT_KEY_COLUMN in names:
                    key = DEFAULT_KEY_COLUMN
            for column, what in ((label, "label"), (key, "key")):
                if column is not None and column not in names:
                    raise FeatureFileError(
                        f"{shard.metadata}: no {what} column {column!r}; the "
                        f"columns are {names}."
                    )
        self.label_column, self.key_column = label, key

    def _meta_columns(self):
        return [c for c in (self.label_column, self.key_column) if c is not None]

    def _meta_tables(self, shard, columns):
        pq = _parquet()
        pf = pq.ParquetFile(shard.metadata)
        return rechunk(
            pf.iter_batches(batch_size=self.chunk_rows, columns=columns),
            self.chunk_rows,
        )

    def _read_shard(self, shard):
        shape = (shard.n_rows, self.n_features)
        mapped = None
        if shard.n_rows:
            mapped = _MappedArray(
                shard.path, shape, self.dtype, self._offsets[shard.path]
            )
        columns = self._meta_columns()
        tables = self._meta_tables(shard, columns) if columns else None
        try:
            for start in range(0, shard.n_rows, self.chunk_rows):
                stop = min(start + self.chunk_rows, shard.n_rows)
                table = next(tables) if tables is not None else None
                yield start, mapped.array[start:stop], table
                mapped.release(start, stop)
        finally:
            if mapped is not None:
                mapped.close()

    def _label_tables(self, shard, columns):
        return self._meta_tables(shard, columns)

    def _label_where(self, shard):
        return shard.metadata
