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

This module is the face of the readers for the command line and users: the
``.npz`` format itself (:func:`load_features`, :func:`feature_class_map`) is
read by :mod:`skvrf.stores` (``skvrf/stores/_npz.py``), like every other feature
format, and re-exported here. A head file is an ``.npz`` file here; a
fine-tuned checkpoint is read by :func:`skvrf.clip.load_linear_head`.
"""

from __future__ import annotations

import os

import numpy as np

from .exceptions import FeatureFileError
from .stores import open_store as _open_store
from .stores._npz import (
    HEAD_LAYOUT,
    ZEROSHOT_LAYOUT,
    feature_class_map,
    load_features,
)

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
    ``classes`` and ``normalize_input`` (default True). A fine-tuned checkpoint
    (``.pt``, ``.safetensors``, ...) is read by
    :func:`skvrf.clip.load_linear_head` (safe loading, the ``clip`` extra);
    ``skvrf``'s ``--head`` option takes either.

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

    Raises
    ------
    FeatureFileError
        When the file is not an ``.npz`` head file (a checkpoint: the message
        names :func:`skvrf.clip.load_linear_head`).
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
        raise FeatureFileError(
            f"{path}: not an .npz head file ({HEAD_LAYOUT}); read a fine-tuned "
            "checkpoint with skvrf.clip.load_linear_head(path, classes=...) (the "
            "clip extra), or pass it to the command line's --head."
        )
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
