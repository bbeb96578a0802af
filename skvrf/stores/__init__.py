"""Feature stores: precomputed CLIP features as users hold them, read in chunks.

:func:`open_store` (also :func:`skvrf.io.open_store`) opens

- a clip-retrieval / embedding-reader folder (``img_emb/img_emb_{N}.npy``
  shards, often float16, memory-mapped, and ``metadata/metadata_{N}.parquet``
  row-aligned with them): ``"clip_retrieval"``;
- one split of a CLIP_benchmark linear-probe cache (``features_{split}.pt`` and
  ``targets_{split}.pt``, loaded with ``torch.load(weights_only=True)``):
  ``"clip_benchmark"``;
- Parquet or Arrow IPC files (one, or a folder of them) with an embedding
  column (a list or fixed-size list of floats) and optionally label and key
  columns: ``"parquet"``, ``"arrow"``;
- skvrf's own ``.npz`` feature file: ``"npz"``;

and returns a :class:`FeatureStore`: ``n_rows``, ``n_features``, ``classes`` and
``iter_chunks()``, which yields bounded ``StoreChunk(X, y, keys)``.
:func:`fit_store` fits an ensemble on a store's chunks without loading it;
:func:`predict_store` streams a fitted model's predictions over a store into
Parquet shards aligned with the store's shards, resumably;
:func:`write_clip_benchmark_json` writes results in CLIP_benchmark's format.
"""

from __future__ import annotations

import os

from ..evaluation._clip_benchmark import (
    clip_benchmark_metrics,
    write_clip_benchmark_json,
)
from ..exceptions import FeatureFileError
from ._arrow import ARROW_SUFFIXES, PARQUET_SUFFIXES, ArrowStore, ParquetStore
from ._base import FeatureStore, Shard, StoreChunk, default_chunk_rows
from ._clip_benchmark import ClipBenchmarkStore
from ._fit import fit_store
from ._npz import NpzStore
from ._numpy import ClipRetrievalStore
from ._predict import PredictionColumns, predict_chunks, predict_store

__all__ = [
    "FORMATS",
    "FeatureStore",
    "PredictionColumns",
    "Shard",
    "StoreChunk",
    "clip_benchmark_metrics",
    "default_chunk_rows",
    "detect_format",
    "fit_store",
    "open_store",
    "predict_chunks",
    "predict_store",
    "write_clip_benchmark_json",
]

#: Format name -> store class.
FORMATS = {
    "clip_retrieval": ClipRetrievalStore,
    "clip_benchmark": ClipBenchmarkStore,
    "parquet": ParquetStore,
    "arrow": ArrowStore,
    "npz": NpzStore,
}

_MAGIC = {b"PK\x03\x04": "npz", b"PAR1": "parquet", b"ARROW1": "arrow"}


def detect_format(path) -> str:
    """The store format of a path, from its layout, suffix or first bytes.

    Parameters
    ----------
    path : str or path-like
        A file or folder.

    Returns
    -------
    format : str
        A key of :data:`FORMATS`.

    Raises
    ------
    FileNotFoundError
        When nothing is at ``path``.
    FeatureFileError
        When the path is none of the formats (the message lists them).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        names = [n for n in os.listdir(path) if not n.startswith(".")]
        lower = [n.lower() for n in names]
        if os.path.isdir(os.path.join(path, "img_emb")):
            return "clip_retrieval"
        if any(n.endswith(".npy") for n in lower):
            return "clip_retrieval"
        if any(n.startswith("features_") and n.endswith(".pt") for n in lower):
            return "clip_benchmark"
        if any(n.endswith(PARQUET_SUFFIXES) for n in lower):
            return "parquet"
        if any(n.endswith(ARROW_SUFFIXES) for n in lower):
            return "arrow"
        raise FeatureFileError(
            f"{path}: a folder of no known feature-store layout: expected img_emb/ "
            "(clip-retrieval), .npy shards, features_<split>.pt (CLIP_benchmark), "
            ".parquet or .arrow files."
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature store not found: {path}")
    lower = path.lower()
    if lower.endswith(".npz"):
        return "npz"
    if lower.endswith(".pt"):
        return "clip_benchmark"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(ARROW_SUFFIXES):
        return "arrow"
    if lower.endswith(".npy"):
        raise FeatureFileError(
            f"{path}: a single .npy array; open the folder of .npy shards "
            "(clip-retrieval's img_emb/, with metadata/ next to it) or save an "
            ".npz with 'features' and 'labels'."
        )
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, fmt in _MAGIC.items():
        if head.startswith(magic):
            return fmt
    raise FeatureFileError(
        f"{path}: not a known feature store (by suffix or first bytes); give "
        f"format= one of {sorted(FORMATS)}."
    )


def open_store(
    path,
    *,
    format=None,
    label_column=None,
    chunk_rows=None,
    key_column=None,
    embedding_column=None,
) -> FeatureStore:
    """Open precomputed features in any supported layout as a chunked store.

    Parameters
    ----------
    path : str or path-like
        A clip-retrieval output folder (or its ``img_emb/`` folder), a
        CLIP_benchmark ``features_{split}.pt``, a Parquet or Arrow file or folder
        of them, or an ``.npz`` feature file.
    format : str, default=None
        One of ``"clip_retrieval"``, ``"clip_benchmark"``, ``"parquet"``,
        ``"arrow"``, ``"npz"``; default: detected (:func:`detect_format`).
    label_column : str, default=None
        Where the labels are: a metadata or table column (default ``"label"``
        when there is one, else no labels), an ``.npz`` key (default
        ``"labels"``) or a CLIP_benchmark targets file name (default
        ``targets_{split}.pt``).
    chunk_rows : int, default=None
        Rows per chunk; default about 64 MiB of float32 features
        (:func:`default_chunk_rows`).
    key_column : str, default=None
        The column of row keys (default ``"key"`` when there is one; ``.npz``:
        a ``keys`` array). Without one a row's key is ``"<shard>:<row>"``.
    embedding_column : str, default=None
        Parquet and Arrow: the embedding column (default ``"embedding"``, else
        the only column of lists of numbers).

    Returns
    -------
    store : FeatureStore
        ``n_rows``, ``n_features``, ``dtype``, ``classes``, ``shards`` and
        ``iter_chunks()``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    FeatureFileError
        When it is not a readable store of the format; messages name the file,
        the shard and, where it applies, the row.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from skvrf.io import open_store
    >>> root = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(root, "img_emb"))
    >>> for n in range(2):
    ...     X = np.ones((3, 4), dtype=np.float16)
    ...     np.save(os.path.join(root, "img_emb", f"img_emb_{n}.npy"), X)
    >>> store = open_store(root, chunk_rows=2)
    >>> store.format, store.n_rows, store.n_features, str(store.dtype)
    ('clip_retrieval', 6, 4, 'float16')
    >>> [chunk.X.shape[0] for chunk in store.iter_chunks()]
    [2, 1, 2, 1]
    >>> next(store.iter_chunks()).keys.tolist()
    ['img_emb_0:0', 'img_emb_0:1']
    """
    fmt = detect_format(path) if format is None else format
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {format!r}.")
    if not os.path.exists(os.fspath(path)):
        raise FileNotFoundError(f"feature store not found: {os.fspath(path)}")
    kwargs = {"label_column": label_column, "key_column": key_column}
    if fmt in ("parquet", "arrow"):
        kwargs["embedding_column"] = embedding_column
    elif embedding_column is not None:
        raise ValueError(
            f"embedding_column applies to Parquet and Arrow stores, not {fmt!r}."
        )
    return FORMATS[fmt](path, chunk_rows=chunk_rows, **kwargs)
