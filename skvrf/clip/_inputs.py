"""Reading embedder inputs: image paths, PIL images, arrays and strings.

Each input is read once into a uniform item, hashed by content (for the
embedding cache), and decoded with a clear error naming its row and path.
"""

from __future__ import annotations

import hashlib
import io
import os

import numpy as np

__all__ = ["as_sequence", "content_hash", "load_image", "ImageDataset"]


def as_sequence(X, owner: str, kind: str) -> list:
    """Turn X into a list of items, rejecting a lone string or image."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{owner}: X must be a sequence of {kind}, got a single "
            f"{type(X).__name__}; wrap it in a list."
        )
    if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # a one-column frame
        if X.shape[1] != 1:
            raise ValueError(
                f"{owner}: X as a DataFrame must have exactly one column of "
                f"{kind}; got {X.shape[1]} columns."
            )
        X = X.iloc[:, 0]
    if isinstance(X, np.ndarray):
        if kind == "images" and X.ndim == 4:
            return list(X)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise ValueError(
                f"{owner}: X must be a 1-D sequence of {kind} (or an "
                f"(n, H, W, 3) uint8 array of images); got shape {X.shape}."
            )
    try:
        return list(X)
    except TypeError:
        raise TypeError(
            f"{owner}: X must be a sequence of {kind}, got {type(X).__name__}."
        ) from None


def content_hash(item) -> str:
    """SHA-256 of an input's content: file bytes, pixels or text."""
    h = hashlib.sha256()
    if isinstance(item, (str, os.PathLike)) and not isinstance(item, str):
        item = os.fspath(item)
    if isinstance(item, str):
        # Only called for image paths; text is hashed by the caller via _text.
        with open(item, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return "file:" + h.hexdigest()
    if isinstance(item, np.ndarray):
        h.update(f"{item.shape}{item.dtype}".encode())
        h.update(np.ascontiguousarray(item).tobytes())
        return "array:" + h.hexdigest()
    # PIL image
    h.update(f"{item.mode}{item.size}".encode())
    h.update(item.tobytes())
    return "pil:" + h.hexdigest()


def text_hash(text: str) -> str:
    """SHA-256 of a string's UTF-8 bytes."""
    return "text:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe(item, row: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"row {row} ({os.fspath(item)!r})"
    return f"row {row} ({type(item).__name__})"


def load_image(item, row: int):
    """Return an RGB PIL image for a path, PIL image or HxWx3 array."""
    from PIL import Image

    try:
        if isinstance(item, (str, os.PathLike)):
            with open(item, "rb") as f:
                data = f.read()
            img = Image.open(io.BytesIO(data))
            img.load()
        elif isinstance(item, np.ndarray):
            if item.ndim == 2:
                item = np.stack([item] * 3, axis=-1)
            if item.ndim != 3 or item.shape[2] not in (3, 4):
                raise ValueError(f"expected an (H, W, 3) array, got shape {item.shape}")
            if item.dtype != np.uint8:
                raise ValueError(f"expected dtype uint8, got {item.dtype}")
            img = Image.fromarray(np.ascontiguousarray(item))
        elif isinstance(item, Image.Image):
            img = item
        else:
            raise TypeError(
                "expected an image path, a PIL image or an (H, W, 3) uint8 "
                f"array, got {type(item).__name__}"
            )
        return img.convert("RGB") if img.mode != "RGB" else img
    except Exception as exc:
        raise ValueError(f"Cannot read image at {_describe(item, row)}: {exc}") from exc


class ImageDataset:
    """Map-style dataset: (row index, preprocessed tensor) of selected rows."""

    def __init__(self, items, rows, preprocess):
        self.items = items
        self.rows = rows
        self.preprocess = preprocess

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        row = self.rows[i]
        img = load_image(self.items[row], row)
        try:
            return self.preprocess(img)
        except Exception as exc:
            raise ValueError(
                f"Cannot preprocess image at {_describe(self.items[row], row)}: {exc}"
            ) from exc
