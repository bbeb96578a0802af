"""skvrf's own ``.npz`` feature files: read whole, or as a one-shard store.

The format's reader and checks live here, as every format's do in this package:
:func:`load_features` (also :func:`skvrf.io.load_features`) reads a file whole
and checks its keys and shapes; :func:`feature_class_map` reads the class map a
shift set carries. In :class:`NpzStore` the file is checked as
:func:`load_features` checks it (same errors);
``features`` is memory-mapped when it is stored uncompressed (``numpy.savez``),
read whole when compressed (``numpy.savez_compressed``). Labels are the label
values (``classes[labels]`` when the file has ``classes``); keys are the file's
``keys`` array when it has one.
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Sequence

import numpy as np

from ..exceptions import FeatureFileError
from ._base import FeatureStore, Shard, check_features_dtype, default_keys
from ._numpy import _MappedArray

__all__ = ["NpzStore", "feature_class_map", "load_features"]

#: What each kind of file skvrf reads must hold, for error messages.
FEATURE_LAYOUT = (
    "an .npz archive with 'features' (n_samples, n_features) and 'labels' "
    "(n_samples,), optionally 'classes' (n_classes,) that 'labels' index; save it "
    "with numpy.savez(path, features=X, labels=y, classes=names)"
)
ZEROSHOT_LAYOUT = (
    "an .npz archive with 'class_embeddings' (n_classes, n_features), optionally "
    "'classes' (n_classes,) and 'logit_scale'; save it with "
    "numpy.savez(path, class_embeddings=T, classes=names)"
)
HEAD_LAYOUT = (
    "an .npz archive with 'coef' (n_classes, n_features), optionally 'intercept', "
    "'classes' and 'normalize_input'; save it with numpy.savez(path, coef=W, "
    "intercept=b, classes=names)"
)

_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"


def _read_npz(path, layout=FEATURE_LAYOUT) -> dict[str, np.ndarray]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head.startswith(_NPY_MAGIC):
        raise FeatureFileError(
            f"{path}: a single .npy array, not an .npz archive of named arrays; "
            f"expected {layout}."
        )
    if not head.startswith(_ZIP_MAGIC):
        raise FeatureFileError(
            f"{path}: not an .npz archive (it does not start like one; an empty, "
            f"text or other binary file?); expected {layout}."
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise FeatureFileError(
            f"{path}: cannot be read as an .npz file; it may be truncated or "
            f"corrupt ({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(data, np.lib.npyio.NpzFile):  # pragma: no cover - magic above
        raise FeatureFileError(f"{path}: not an .npz archive; expected {layout}.")
    try:
        with data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FeatureFileError(
            f"{path}: cannot be read as an .npz file; it may be truncated or "
            f"corrupt ({type(exc).__name__}: {exc})."
        ) from exc
    except ValueError as exc:  # object arrays under allow_pickle=False, bad headers
        raise FeatureFileError(
            f"{path}: holds an array that cannot be read without unpickling, or a "
            f"damaged array ({exc}); object arrays are refused."
        ) from exc


def _check_features(path, data):
    X = data["features"]
    if X.ndim != 2 or X.shape[0] == 0 or X.dtype.kind not in "fiu":
        raise FeatureFileError(
            f"{path}: 'features' must be a non-empty 2-D numeric array "
            f"(n_samples, n_features); got shape {X.shape}, dtype {X.dtype}."
        )
    if not np.all(np.isfinite(X)):
        bad = np.unique(np.nonzero(~np.isfinite(X))[0])
        raise FeatureFileError(
            f"{path}: 'features' has non-finite values in rows {bad[:10].tolist()}."
        )


def _check_labels(path, data):
    y = data["labels"]
    if y.ndim != 1:
        raise FeatureFileError(f"{path}: 'labels' must be 1-D, got shape {y.shape}.")
    if "features" in data and y.shape[0] != data["features"].shape[0]:
        raise FeatureFileError(
            f"{path}: 'labels' has {y.shape[0]} rows but 'features' has "
            f"{data['features'].shape[0]}."
        )
    if "classes" in data:
        classes = data["classes"]
        if classes.ndim != 1:
            raise FeatureFileError(
                f"{path}: 'classes' must be 1-D, got shape {classes.shape}."
            )
        if y.dtype.kind not in "iu":
            raise FeatureFileError(
                f"{path}: 'labels' must be integer indices into 'classes', got "
                f"dtype {y.dtype}."
            )
        if y.size and (y.min() < 0 or y.max() >= classes.shape[0]):
            raise FeatureFileError(
                f"{path}: 'labels' holds indices outside [0, {classes.shape[0]}) "
                "(the length of 'classes')."
            )


def load_features(
    path: str | os.PathLike,
    *,
    require: Sequence[str] = ("features", "labels"),
    layout: str | None = None,
) -> dict[str, np.ndarray]:
    """Load a feature file, checking that the required keys exist and fit.

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` file (e.g. written by ``skvrf embed``).
    require : sequence of str, default=("features", "labels")
        Keys that must be present.
    layout : str, default=None
        How error messages describe the expected file (default: the feature-file
        layout, ``features`` and ``labels``).

    Returns
    -------
    data : dict of str to ndarray
        Every array of the file, read eagerly.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    FeatureFileError
        (a ValueError) when the file is not an ``.npz`` archive (e.g. a plain
        ``.npy`` array; the message says what the archive should hold), is
        truncated or corrupt, holds object arrays, lacks a required key, or
        ``features``/``labels``/``classes`` have inconsistent shapes. The
        message names the file and the key.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from skvrf.io import load_features
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "f.npz")
    ...     np.savez(p, features=np.ones((2, 3)), labels=[0, 1])
    ...     sorted(load_features(p))
    ['features', 'labels']
    """
    layout = FEATURE_LAYOUT if layout is None else layout
    data = _read_npz(path, layout)
    missing = [key for key in require if key not in data]
    if missing:
        hint = ""
        if "train_features" in data:
            hint = (
                " It looks like the old one-file 'skvrf demo --features' layout; "
                "skvrf now reads one file per split (--train, --val, --test, --ood "
                "NAME=FILE, --zeroshot), each with the keys above."
            )
        raise FeatureFileError(
            f"{os.fspath(path)}: missing key(s) {missing}; the file has "
            f"{sorted(data)}; expected {layout}.{hint}"
        )
    if "features" in data:
        _check_features(os.fspath(path), data)
    if "labels" in data:
        _check_labels(os.fspath(path), data)
    return data


def feature_class_map(data: dict, path="") -> list | dict | None:
    """The class map a shift set carries, in the form ``evaluate_shifts`` takes.

    Two forms are read:

    - ``class_map_kept`` (m,): the model classes the set covers (ImageNet-A/R:
      200 of 1000); predictions are restricted to them, labels unchanged.
      Returned as a list of those classes.
    - ``class_map_source`` and ``class_map_target`` (m,) each: pairs of a model
      class and the set label it counts as (ObjectNet: several ImageNet classes
      pool into one label, by max logit). Model classes absent from
      ``class_map_source`` are dropped. Returned as a dict target label -> list
      of model classes, targets in order of first appearance.

    Parameters
    ----------
    data : dict
        From :func:`load_features`.
    path : str, default=""
        The file, for error messages.

    Returns
    -------
    class_map : list, dict or None
        None when the file has no class map.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.io import feature_class_map
    >>> feature_class_map({"class_map_source": np.array([0, 1, 2]),
    ...                    "class_map_target": np.array(["pet", "pet", "car"])})
    {'pet': [0, 1], 'car': [2]}
    """
    keys = {"class_map_kept", "class_map_source", "class_map_target"} & set(data)
    if not keys:
        return None
    if "class_map_kept" in keys:
        if len(keys) > 1:
            raise FeatureFileError(
                f"{path}: give either 'class_map_kept' or the pair "
                "'class_map_source'/'class_map_target', not both."
            )
        kept = data["class_map_kept"]
        if kept.ndim != 1 or kept.size == 0:
            raise FeatureFileError(
                f"{path}: 'class_map_kept' must be a non-empty 1-D array."
            )
        return kept.tolist()
    for key in ("class_map_source", "class_map_target"):
        if key not in data:
            raise FeatureFileError(
                f"{path}: missing key '{key}' (class_map_source and "
                "class_map_target come as a pair)."
            )
    source, target = data["class_map_source"], data["class_map_target"]
    if source.ndim != 1 or source.shape != target.shape or source.size == 0:
        raise FeatureFileError(
            f"{path}: 'class_map_source' and 'class_map_target' must be non-empty "
            f"1-D arrays of equal length; got {source.shape} and {target.shape}."
        )
    if np.unique(source).size != source.size:
        raise FeatureFileError(
            f"{path}: 'class_map_source' lists a model class twice (each model "
            "class maps to at most one set label)."
        )
    class_map: dict = {}
    for src, tgt in zip(source.tolist(), target.tolist()):
        class_map.setdefault(tgt, []).append(src)
    return class_map


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
