"""CLIP_benchmark's feature caches, read as a store.

CLIP_benchmark's linear-probe task caches the image features of each split in
its ``--feature_root``, one folder per model and dataset:
``features_{split}.pt`` (an (n, d) tensor, L2-normalised) and
``targets_{split}.pt`` (the (n,) integer class indices), for ``train``, ``val``
(optional) and ``test``. They are read with ``torch.load(weights_only=True)``
(tensors only, no code runs) and memory-mapped where the file allows
(``torch.save``'s zip format). torch is imported only here, and only when a
``.pt`` file is opened.

Writing results in CLIP_benchmark's form
(:func:`skvrf.stores.write_clip_benchmark_json`) is scoring, not reading: it
lives in ``skvrf/evaluation/_clip_benchmark.py``.
"""

from __future__ import annotations

import os
import re

from ..exceptions import FeatureFileError
from ..utils import import_optional
from ._base import FeatureStore, Shard, check_features_dtype, default_keys

__all__ = ["ClipBenchmarkStore"]

_FEATURES = re.compile(r"^features_(?P<split>.+)\.pt$")


def _load_tensor(path, what):
    torch = import_optional("torch", f"reading CLIP_benchmark caches ({what})")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, EOFError, RuntimeError
        raise FeatureFileError(
            f"{path}: cannot be read as a tensor file with weights_only=True "
            f"({type(exc).__name__}: {exc}); it may be truncated, or hold objects "
            "other than tensors (refused)."
        ) from exc
    if not isinstance(obj, torch.Tensor):
        raise FeatureFileError(
            f"{path}: holds a {type(obj).__name__}, not a tensor ({what})."
        )
    return obj


def _split_files(path):
    """``(features file, targets file or None)`` of a cache path."""
    path = os.fspath(path)
    if os.path.isdir(path):
        splits = sorted(
            m.group("split") for f in os.listdir(path) if (m := _FEATURES.match(f))
        )
        if not splits:
            raise FeatureFileError(
                f"{path}: no features_<split>.pt files (a CLIP_benchmark feature "
                "cache holds features_train.pt, targets_train.pt, ...)."
            )
        if len(splits) > 1:
            options = ", ".join(os.path.join(path, f"features_{s}.pt") for s in splits)
            raise FeatureFileError(
                f"{path}: a CLIP_benchmark cache with several splits ({splits}); "
                f"open one of them: {options}."
            )
        path = os.path.join(path, f"features_{splits[0]}.pt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature store not found: {path}")
    match = _FEATURES.match(os.path.basename(path))
    targets = None
    if match:
        candidate = os.path.join(
            os.path.dirname(path), f"targets_{match.group('split')}.pt"
        )
        targets = candidate if os.path.isfile(candidate) else None
    return path, targets


class ClipBenchmarkStore(FeatureStore):
    """One split of a CLIP_benchmark linear-probe feature cache.

    ``path`` is ``features_{split}.pt`` (its ``targets_{split}.pt`` next to it
    gives the labels, the integer class indices) or a cache folder holding one
    split.
    """

    format = "clip_benchmark"

    def __init__(self, path, *, label_column=None, key_column=None, chunk_rows=None):
        features, targets = _split_files(path)
        if key_column is not None:
            raise FeatureFileError(
                f"{features}: a CLIP_benchmark cache has no key column; rows are "
                "keyed by file and row."
            )
        if label_column is not None:
            targets = os.path.join(os.path.dirname(features), label_column)
            if not os.path.isfile(targets):
                raise FeatureFileError(
                    f"{features}: the targets file {targets} (label_column) does "
                    "not exist."
                )
        X = _load_tensor(features, "features")
        if X.ndim != 2 or X.shape[0] == 0:
            raise FeatureFileError(
                f"{features}: features must be a non-empty (n, d) tensor, got "
                f"shape {tuple(X.shape)}."
            )
        dtype = str(X.dtype).replace("torch.", "")
        if dtype == "bfloat16":
            dtype = "float32"  # numpy has no bfloat16: chunks are converted
        dtype = check_features_dtype(dtype, features)
        self._tensor_path = features
        self._targets_path = targets
        name = os.path.basename(features)[: -len(".pt")]
        shard = Shard(0, name, features, X.shape[0], 0)
        super().__init__(features, [shard], X.shape[1], dtype, chunk_rows=chunk_rows)
        if targets is not None:
            y = _load_tensor(targets, "targets")
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise FeatureFileError(
                    f"{targets}: targets must be a (n,) tensor with one value per "
                    f"row of {features} ({X.shape[0]}); got shape {tuple(y.shape)}."
                )
            if y.is_floating_point() or y.is_complex():
                raise FeatureFileError(
                    f"{targets}: targets must be integer class indices, got {y.dtype}."
                )
            self.label_column = os.path.basename(targets)

    def _targets(self):
        return _load_tensor(self._targets_path, "targets").numpy()

    def _read_shard(self, shard):
        torch = import_optional("torch", "reading CLIP_benchmark caches")
        X = _load_tensor(shard.path, "features")
        y = self._targets() if self.has_labels else None
        for start in range(0, shard.n_rows, self.chunk_rows):
            part = X[start : start + self.chunk_rows]
            if part.dtype == torch.bfloat16:
                part = part.float()
            yield start, part.numpy(), y

    def _labels_keys(self, shard, y, start, stop):
        labels = None if y is None else y[start:stop]
        return labels, default_keys(shard, start, stop)

    def _shard_labels(self, shard):
        return self._targets()
