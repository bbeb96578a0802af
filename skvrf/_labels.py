"""Class labels: their kind, and the union of several label sets.

skvrf follows scikit-learn: an ensemble's ``classes_`` is sorted. Its components
may list their classes in any order (a CLIP zero-shot head keeps the order of its
class names, e.g. ImageNet's index order) and may know only some of the ensemble's
classes; their columns are always matched to ``classes_`` **by label**, never by
position (:func:`column_positions`).

Labels of different kinds are an error, never a silent coercion: NumPy would turn
``[0, 1]`` and ``["cat", "dog"]`` into the four strings ``"0", "1", "cat",
"dog"``. Numbers (bool, int, float) are one kind, so ``1`` and ``1.0`` are the same
label; strings are another; anything else (tuples, None, ...) is refused.
"""

from __future__ import annotations

from numbers import Number

import numpy as np

__all__ = [
    "check_label_kinds",
    "check_labels_known",
    "column_positions",
    "label_kind",
    "union_classes",
]

_SHOWN = 6


def _preview(labels) -> str:
    labels = np.asarray(labels)
    items = [repr(v) for v in labels[:_SHOWN].tolist()]
    more = labels.shape[0] - _SHOWN if labels.ndim == 1 else 0
    return "[" + ", ".join(items) + (f", ... ({more} more)" if more > 0 else "") + "]"


def shown_labels(labels, limit: int = 10) -> str:
    """The first ``limit`` labels as reprs, and how many more there are.

    For error messages that name offending labels: ``'a', 'b' (and 3 more)``.
    """
    labels = np.asarray(labels).ravel()
    shown = ", ".join(repr(v) for v in labels[:limit].tolist())
    more = labels.shape[0] - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def label_kind(labels, name: str = "labels") -> str:
    """The kind of a 1-D set of labels: ``"number"`` or ``"string"``.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Labels (an estimator's ``classes_``, ``y``, a file's ``classes``).
    name : str, default="labels"
        How error messages name the set.

    Returns
    -------
    kind : {"number", "string"}
        ``"number"`` for bools, ints and floats; ``"string"`` for str (and bytes).

    Raises
    ------
    ValueError
        When the set mixes kinds (e.g. an object array of ints and strings) or
        holds labels that are neither numbers nor strings.

    Examples
    --------
    >>> from skvrf._labels import label_kind
    >>> label_kind([0, 1, 2]), label_kind(["cat", "dog"]), label_kind([1.0, 2])
    ('number', 'string', 'number')
    """
    arr = np.asarray(labels)
    if arr.dtype.kind in "biuf":
        return "number"
    if arr.dtype.kind in "US":
        return "string"
    if arr.dtype.kind != "O":
        raise ValueError(
            f"{name} have dtype {arr.dtype}; class labels must be numbers or strings."
        )
    kinds = set()
    for v in arr.ravel().tolist():
        if isinstance(v, (str, bytes)):
            kinds.add("string")
        elif isinstance(v, Number) and not isinstance(v, complex):
            kinds.add("number")
        else:
            raise ValueError(
                f"{name} hold {v!r} of type {type(v).__name__}; class labels must be "
                "numbers or strings."
            )
    if len(kinds) > 1:
        raise ValueError(
            f"{name} mix strings and numbers: {_preview(arr.ravel())}. Use one kind "
            "of label (e.g. all class names, or all class indices)."
        )
    return kinds.pop() if kinds else "number"


def check_label_kinds(**label_sets) -> str:
    """Raise unless every named label set is of one kind; return that kind.

    Parameters
    ----------
    **label_sets : array-like
        Named label sets, e.g. ``y=y, zeroshot_classes=zs.classes_``. None values
        are skipped.

    Returns
    -------
    kind : {"number", "string"}
        The common kind.

    Raises
    ------
    ValueError
        Naming both sets (with a preview of each) when one holds strings and the
        other numbers.

    Examples
    --------
    >>> from skvrf._labels import check_label_kinds
    >>> check_label_kinds(y=[0, 1], classes=[0.0, 1.0, 2.0])
    'number'
    >>> check_label_kinds(y=[0, 1], classes=["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: Labels of different kinds: y holds numbers [0, 1] but classes ...
    """
    seen: dict[str, tuple[str, object]] = {}
    for name, labels in label_sets.items():
        if labels is None:
            continue
        labels = np.atleast_1d(np.asarray(labels))
        kind = label_kind(labels, name)
        if labels.size == 0:
            continue
        for other_kind, (other, other_labels) in seen.items():
            if other_kind != kind:
                raise ValueError(
                    f"Labels of different kinds: {other} holds {other_kind}s "
                    f"{_preview(np.unique(other_labels))} but {name} holds {kind}s "
                    f"{_preview(np.unique(labels))}. skvrf never converts one "
                    "into the other; give every component, file and label array "
                    "the same kind of label (class names everywhere, or class "
                    "indices everywhere)."
                )
        seen.setdefault(kind, (name, labels))
    return next(iter(seen)) if seen else "number"


def union_classes(**label_sets) -> np.ndarray:
    """Sorted union of label sets of one kind (see :func:`check_label_kinds`).

    Parameters
    ----------
    **label_sets : array-like
        Named label sets; None values are skipped.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        The sorted distinct labels.

    Examples
    --------
    >>> from skvrf._labels import union_classes
    >>> union_classes(a=["b", "a"], b=["c", "a"]).tolist()
    ['a', 'b', 'c']
    """
    check_label_kinds(**label_sets)
    parts = [np.atleast_1d(np.asarray(v)) for v in label_sets.values() if v is not None]
    if not parts:
        raise ValueError("No labels given.")
    if any(p.dtype.kind == "O" for p in parts):
        parts = [p.astype(object) for p in parts]
    return np.unique(np.concatenate(parts))


def column_positions(labels, classes, name: str = "labels") -> np.ndarray:
    """Position of each of ``labels`` in the sorted ``classes``.

    Parameters
    ----------
    labels : array-like of shape (n,)
        A component's ``classes_``, in its own column order.
    classes : ndarray of shape (n_classes,)
        Sorted labels (an ensemble's ``classes_``) that contain every label.
    name : str, default="labels"
        How error messages name ``labels``.

    Returns
    -------
    positions : ndarray of int of shape (n,)
        ``classes[positions] == labels``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._labels import column_positions
    >>> column_positions(["b", "a", "c"], np.array(["a", "b", "c"])).tolist()
    [1, 0, 2]
    """
    labels = np.atleast_1d(np.asarray(labels))
    classes = np.asarray(classes)
    check_label_kinds(**{name: labels, "classes_": classes})
    pos = np.clip(np.searchsorted(classes, labels), 0, max(classes.shape[0] - 1, 0))
    if classes.shape[0] == 0 or np.any(classes[pos] != labels):
        missing = labels[classes[pos] != labels] if classes.shape[0] else labels
        raise ValueError(
            f"{name} holds labels that are not in classes_: {_preview(missing)}."
        )
    return pos


def check_labels_known(y, classes, name, owner):
    """Raise, naming them, if labels of ``y`` are in no component's classes."""
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        raise ValueError(
            f"{owner}: {name} contains labels that no component knows: "
            f"{shown_labels(unknown)}. The components' classes are "
            f"{classes[:20].tolist()}" + (" ..." if classes.shape[0] > 20 else "") + "."
        )
