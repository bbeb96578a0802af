"""skvrf's own ``.npz`` feature files as a one-shard store.

The file is checked as :func:`skvrf.io.load_features` checks it (same errors);
``features`` is memory-mapped when it is stored uncompressed (``numpy.savez``),
read whole when compressed (``numpy.savez_compressed``). Labels are the label
values (``classes[labels]`` when the file has ``classes``); keys are the file's
``keys`` array when it has one.
"""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np

from ..io import (
    FEATURE_LAYOUT,
    FeatureFileError,
    _check_labels,
    _read_npz,
    feature_class_map,
)
from ._base import FeatureStore, Shard, check_features_dtype, default_keys
from ._numpy import _MappedArray

__all__ = ["NpzStore"]

_SMALL_KEYS = (
    "labels",
    "classes",
    "keys",
    "class_map_kept",
    "class_map_source",
    "class_map_target",
)


def _stored_member(path, member):
    """``(shape, dtype, offset)`` of an uncompressed, C-ordered ``.npy`` member of
    a zip archive (its data can be memory-mapped), else None."""
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        fmt = np.lib.format
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
        except ValueError:
            return None
        if fortran or dtype.hasobject or len(shape) != 2:
            return None
        return tuple(shape), dtype, f.tell()


def _read_small(path, keys):
    """The small arrays of an archive (everything but ``features``)."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        names = {n[: -len(".npy")] for n in zf.namelist() if n.endswith(".npy")}
        for key in keys:
            if key in names:
                with zf.open(f"{key}.npy") as f:
                    try:
                        out[key] = np.lib.format.read_array(f, allow_pickle=False)
                    except ValueError as exc:
                        raise FeatureFileError(
                            f"{path}: '{key}' cannot be read without unpickling, or "
                            f"is damaged ({exc}); object arrays are refused."
                        ) from exc
    return out, names


class NpzStore(FeatureStore):
    """An ``.npz`` feature file (``features``, ``labels``, ``classes``, ...)."""

    format = "npz"

    def __init__(self, path, *, label_column=None, key_column=None, chunk_rows=None):
        path = os.fspath(path)
        mapped = None
        try:
            mapped = _stored_member(path, "features.npy")
        except (zipfile.BadZipFile, OSError):
            mapped = None
        if mapped is None:  # compressed, or not an archive: the full checks
            data = _read_npz(path)
            if "features" not in data:
                raise FeatureFileError(
                    f"{path}: missing key(s) ['features']; the file has "
                    f"{sorted(data)}; expected {FEATURE_LAYOUT}."
                )
            self._features = data["features"]
            shape, dtype = self._features.shape, self._features.dtype
            if self._features.ndim != 2:
                raise FeatureFileError(
                    f"{path}: 'features' must be a 2-D array (n_samples, "
                    f"n_features); got shape {shape}."
                )
            small = {k: data[k] for k in _SMALL_KEYS if k in data}
            self._offset = None
        else:
            shape, dtype, self._offset = mapped
            self._features = None
            small, _ = _read_small(path, _SMALL_KEYS)
        check_features_dtype(dtype, f"{path}: 'features'")
        if shape[0] == 0:
            raise FeatureFileError(f"{path}: 'features' has no rows.")
        name = os.path.basename(path)
        name = name[: -len(".npz")] if name.endswith(".npz") else name
        shard = Shard(0, name, path, shape[0], 0)
        super().__init__(path, [shard], shape[1], dtype, chunk_rows=chunk_rows)
        label_key = "labels" if label_column is None else label_column
        if label_column is not None and label_key not in small:
            small.update(_read_small(path, [label_key])[0])
            if label_key not in small:
                raise FeatureFileError(f"{path}: no label key {label_key!r}.")
        if label_key in small:
            check = {"labels": small[label_key], "features": np.empty((shape[0], 0))}
            if "classes" in small:
                check["classes"] = small["classes"]
            _check_labels(path, check)
            labels = small[label_key]
            self._y = small["classes"][labels] if "classes" in small else labels
            self.label_column = label_key
            if "classes" in small:
                self._classes = np.unique(small["classes"])
        key_key = "keys" if key_column is None else key_column
        if key_column is not None and key_key not in small:
            small.update(_read_small(path, [key_key])[0])
            if key_key not in small:
                raise FeatureFileError(f"{path}: no key array {key_key!r}.")
        self._keys = None
        if key_key in small:
            keys = small[key_key]
            if keys.shape != (shape[0],):
                raise FeatureFileError(
                    f"{path}: '{key_key}' has shape {keys.shape}; expected "
                    f"({shape[0]},), one key per row."
                )
            self._keys, self.key_column = keys, key_key
        self.class_map = feature_class_map(small, path)

    def _read_shard(self, shard):
        if self._features is not None:
            for start in range(0, shard.n_rows, self.chunk_rows):
                yield start, self._features[start : start + self.chunk_rows], None
            return
        mapped = _MappedArray(
            shard.path, (shard.n_rows, self.n_features), self.dtype, self._offset
        )
        try:
            for start in range(0, shard.n_rows, self.chunk_rows):
                stop = min(start + self.chunk_rows, shard.n_rows)
                yield start, mapped.array[start:stop], None
                mapped.release(start, stop)
        finally:
            mapped.close()

    def _labels_keys(self, shard, meta, start, stop):
        y = self._y[start:stop] if self.has_labels else None
        if self._keys is not None:
            keys = self._keys[start:stop]
        else:
            keys = default_keys(shard, start, stop)
        return y, keys

    def _shard_labels(self, shard):
        return self._y

    def to_feature_dict(self):
        data = super().to_feature_dict()
        data.update(_read_small(self.path, _SMALL_KEYS[3:])[0])
        return data
