"""Reading feature files (``.npz``) with errors that name the file and the key.

Every ``skvrf`` subcommand reads its arrays through this module. A feature file,
as written by ``skvrf embed``, holds:

``features``
    (n, d) float array of image embeddings.
``labels``
    (n,) int array, the index of each row's class in ``classes``.
``classes`` (optional)
    (n_classes,) class names; the label *value* of a row is then
    ``classes[labels]`` (otherwise the integer ``labels`` themselves).
``paths``, ``model``, ... (optional)
    Provenance; not read here.

A shift set may also carry a class map (see :func:`feature_class_map`), and a
text-embedding file for the zero-shot head holds ``class_embeddings`` (and
optionally ``classes`` and ``logit_scale``; see :func:`load_zeroshot_head`).
Files are read with ``allow_pickle=False``: an object array is refused rather
than unpickled.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence

import numpy as np

__all__ = [
    "IMG_EXTENSIONS",
    "FeatureFileError",
    "feature_class_map",
    "feature_targets",
    "list_image_folder",
    "load_features",
    "load_linear_head_file",
    "load_zeroshot_head",
    "open_store",
]


class FeatureFileError(ValueError):
    """A feature file is missing, unreadable, or lacks a key or shape it needs."""


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


def open_store(
    path,
    *,
    format=None,
    label_column=None,
    chunk_rows=None,
    key_column=None,
    embedding_column=None,
):
    """Open precomputed features of any supported layout as a chunked store.

    Reads clip-retrieval / embedding-reader folders (``img_emb/img_emb_{N}.npy``
    shards, memory-mapped, with ``metadata/metadata_{N}.parquet``),
    CLIP_benchmark caches (``features_{split}.pt``), Parquet and Arrow files
    with an embedding column, and ``.npz`` feature files, a bounded chunk at a
    time; :func:`load_features` stays for one ``.npz`` read whole (the same as
    :func:`skvrf.stores.open_store`).

    Parameters
    ----------
    path : str or path-like
        A clip-retrieval output folder (or its ``img_emb/`` folder), a
        CLIP_benchmark ``features_{split}.pt``, a Parquet or Arrow file or folder
        of them, or an ``.npz`` feature file.
    format : str, default=None
        ``"clip_retrieval"``, ``"clip_benchmark"``, ``"parquet"``, ``"arrow"``
        or ``"npz"``; default: detected from the layout, suffix or first bytes.
    label_column : str, default=None
        Where the labels are: a metadata or table column (default ``"label"``
        when there is one), an ``.npz`` key (default ``"labels"``) or a
        CLIP_benchmark targets file (default ``targets_{split}.pt``).
    chunk_rows : int, default=None
        Rows per chunk; default about 64 MiB of float32 features.
    key_column : str, default=None
        The column of row keys (default ``"key"`` when there is one); without
        one a row's key is ``"<shard>:<row>"``.
    embedding_column : str, default=None
        Parquet and Arrow: the embedding column (default ``"embedding"``, else
        the only column of lists of numbers).

    Returns
    -------
    store : skvrf.stores.FeatureStore
        ``n_rows``, ``n_features``, ``classes`` and ``iter_chunks()``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    FeatureFileError
        When it is not a readable store of the format; messages name the file,
        the shard and, where it applies, the row.
    """
    from .stores import open_store as _open_store

    return _open_store(
        path,
        format=format,
        label_column=label_column,
        chunk_rows=chunk_rows,
        key_column=key_column,
        embedding_column=embedding_column,
    )


def feature_targets(data: dict) -> np.ndarray:
    """Label value of each row: ``classes[labels]``, or ``labels`` without classes.

    Parameters
    ----------
    data : dict
        From :func:`load_features`.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        Labels.
    """
    y = data["labels"]
    if "classes" in data:
        return data["classes"][y]
    return y


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


def load_zeroshot_head(path, *, default_classes=None):
    """A fitted :class:`skvrf.ZeroShotClassifier` from a text-embedding file.

    The file holds ``class_embeddings`` (n_classes, d), and optionally
    ``classes`` (n_classes,) and ``logit_scale`` (scalar, default 100).

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.
    default_classes : array-like, default=None
        Classes when the file has none: row ``i`` of ``class_embeddings`` is then
        class ``default_classes[i]``. The command line passes the training file's
        ``classes`` (the names its integer ``labels`` index), so row ``i`` is the
        class of label index ``i``; None gives ``arange(n_classes)`` (row ``i`` is
        the integer label ``i``). A file's own ``classes`` may be in any order
        (e.g. ImageNet's index order): columns are matched by label, never by
        position.

    Returns
    -------
    head : ZeroShotClassifier
        Fitted.
    """
    from ._heads import ZeroShotClassifier

    data = load_features(path, require=("class_embeddings",), layout=ZEROSHOT_LAYOUT)
    emb = data["class_embeddings"]
    if emb.ndim != 2 or emb.dtype.kind not in "fiu":
        raise FeatureFileError(
            f"{os.fspath(path)}: 'class_embeddings' must be a 2-D numeric array "
            f"(n_classes, n_features); got shape {emb.shape}, dtype {emb.dtype}."
        )
    classes = data.get("classes", default_classes)
    if classes is not None and len(classes) != emb.shape[0]:
        raise FeatureFileError(
            f"{os.fspath(path)}: {emb.shape[0]} class embeddings but "
            f"{len(classes)} classes."
        )
    scale = float(data["logit_scale"]) if "logit_scale" in data else 100.0
    head = ZeroShotClassifier(emb, classes=classes, logit_scale=scale)
    try:
        return head.fit(np.zeros((1, emb.shape[1])))
    except ValueError as exc:
        raise FeatureFileError(f"{os.fspath(path)}: {exc}") from exc


def load_linear_head_file(path, *, default_classes=None):
    """A fitted :class:`skvrf.LinearHeadClassifier` from a head file.

    An ``.npz`` with ``coef`` (n_classes, d), optional ``intercept``,
    ``classes`` and ``normalize_input`` (default True); any other file is read
    as a checkpoint by :func:`skvrf.clip.load_linear_head` (safe loading, needs
    the ``clip`` extra).

    Parameters
    ----------
    path : str or path-like
        The file.
    default_classes : array-like, default=None
        Classes when the file has none.

    Returns
    -------
    head : LinearHeadClassifier
        Fitted.
    """
    from ._heads import LinearHeadClassifier

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"head file not found: {path}")
    if path.endswith(".npy"):
        raise FeatureFileError(
            f"{path}: a single .npy array is not a head file; expected {HEAD_LAYOUT}, "
            "or a fine-tuned checkpoint (.pt, .safetensors, ...)."
        )
    if not path.endswith(".npz"):
        from .clip import load_linear_head

        return load_linear_head(path, classes=default_classes)
    data = load_features(path, require=("coef",), layout=HEAD_LAYOUT)
    coef = data["coef"]
    if coef.ndim != 2:
        raise FeatureFileError(f"{path}: 'coef' must be 2-D, got {coef.shape}.")
    classes = data.get("classes", default_classes)
    normalize = bool(data["normalize_input"]) if "normalize_input" in data else True
    head = LinearHeadClassifier(
        coef, data.get("intercept"), classes=classes, normalize_input=normalize
    )
    try:
        return head.fit(np.zeros((1, coef.shape[1])))
    except ValueError as exc:
        raise FeatureFileError(f"{path}: {exc}") from exc


#: File endings :func:`list_image_folder` takes for images (case-insensitive).
IMG_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)


def list_image_folder(root, *, absolute=False):
    """List an ImageFolder tree: sorted classes, image paths, labels.

    Parameters
    ----------
    root : str or path-like
        Folder with one sub-folder per class (searched recursively; hidden files
        and folders are skipped).
    absolute : bool, default=False
        Return paths joined with ``root`` instead of relative to it.

    Returns
    -------
    classes : list of str
        Sorted class folder names.
    paths : list of str
        Image paths, sorted by class then path.
    labels : ndarray of shape (n_images,)
        Index into ``classes`` of each image.

    Raises
    ------
    FileNotFoundError
        When ``root`` is not a folder.
    ValueError
        When it has no class folders or no images.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from skvrf.io import list_image_folder
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat/a.png", "cat/b.jpg", "dog/c.png", "dog/notes.txt"):
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     (root / name).touch()
    >>> classes, paths, labels = list_image_folder(root)
    >>> classes, paths, labels.tolist()
    (['cat', 'dog'], ['cat/a.png', 'cat/b.jpg', 'dog/c.png'], [0, 0, 1])
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder not found: {root}")
    classes = sorted(
        d.name for d in os.scandir(root) if d.is_dir() and not d.name.startswith(".")
    )
    if not classes:
        raise ValueError(
            f"{root} has no class sub-folders (expected ImageFolder layout: "
            f"{root}/<class>/<image>)."
        )
    paths, labels = [], []
    for label, cls in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, cls)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [
                os.path.relpath(os.path.join(dirpath, f), root)
                for f in filenames
                if f.lower().endswith(IMG_EXTENSIONS) and not f.startswith(".")
            ]
        found.sort()
        paths += found
        labels += [label] * len(found)
    if not paths:
        raise ValueError(f"no images ({', '.join(IMG_EXTENSIONS)}) under {root}.")
    if absolute:
        paths = [os.path.join(root, p) for p in paths]
    return classes, paths, np.asarray(labels, dtype=np.int64)
