"""Loading weights safely: state dicts, training checkpoints, safetensors, heads.

Every file is read with ``torch.load(weights_only=True)`` or
``safetensors.torch.load_file``: neither runs code stored in the file. A whole
pickled ``nn.Module`` can only be unpickled by running code from the file, so it
loads only with an explicit ``trust_pickle=True``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import require_clip_deps

__all__ = ["load_checkpoint", "load_linear_head", "sha256_file"]

#: Last path component of modules treated as a classification head.
_HEAD_NAMES = ("classification_head", "head", "classifier", "fc", "linear_head")
#: Wrappers that prefix every key (DataParallel/DDP, torch.compile).
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
#: Keys of a training checkpoint that may hold the state dict.
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk_size : int, default=1 MiB
        Bytes read at a time.

    Returns
    -------
    digest : str
        64 hexadecimal characters.

    Examples
    --------
    >>> import tempfile, os
    >>> from skvrf.clip import sha256_file
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "x.bin")
    ...     _ = open(p, "wb").write(b"abc")
    ...     sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_size), b""):
            h.update(block)
    return h.hexdigest()


def _is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    # torch.save files are zip archives ("PK") or legacy pickles (0x80).
    return len(head) == 9 and not head.startswith(b"PK") and head[8:9] == b"{"


def _strip_wrapper_prefixes(state_dict: dict) -> dict:
    for prefix in _WRAPPER_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix) :]: v for k, v in state_dict.items()}
    return state_dict


def _unwrap_checkpoint(obj: Any, torch, path: Path) -> dict:
    """Training checkpoint / module / state dict -> flat dict of tensors."""
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for key in _STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, torch.nn.Module):
                inner = inner.state_dict()
            if isinstance(inner, dict) and any(
                isinstance(v, torch.Tensor) for v in inner.values()
            ):
                obj = inner
                break
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path}: expected a state dict (a mapping of names to tensors), a "
            f"training checkpoint with a 'state_dict' key, or safetensors; got "
            f"{type(obj).__name__}."
        )
    state_dict = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state_dict:
        raise ValueError(
            f"{path}: no tensors found (top-level keys: {sorted(map(str, obj))[:10]})."
        )
    return _strip_wrapper_prefixes(state_dict)


def load_checkpoint(path: str | os.PathLike, *, trust_pickle: bool = False) -> dict:
    """Load a flat state dict from a weights file, without running its code.

    Handles a plain state dict, a training checkpoint (the weights under
    ``state_dict``, ``model_state_dict`` or ``model``; ``module.`` prefixes from
    DataParallel/DDP and ``_orig_mod.`` from ``torch.compile`` removed), and
    safetensors files. Non-tensor entries are dropped.

    Parameters
    ----------
    path : str or path-like
        The file.
    trust_pickle : bool, default=False
        Allow files that can only be read by unpickling arbitrary Python
        objects (e.g. a whole ``nn.Module`` saved with ``torch.save(model)``).
        Unpickling runs code chosen by whoever wrote the file, so only set this
        for files you trust; a warning is issued. Prefer re-saving such a file
        with ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The weights, on CPU.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file holds a pickled object and ``trust_pickle`` is False, or no
        tensors.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skvrf.clip import load_checkpoint
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "ckpt.pt")
    ...     torch.save({"state_dict": {"module.w": torch.ones(2)}, "epoch": 3}, p)
    ...     sorted(load_checkpoint(p))
    ['w']
    """
    torch, _ = require_clip_deps()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    if _is_safetensors(path):
        from safetensors.torch import load_file

        return _unwrap_checkpoint(load_file(str(path), device="cpu"), torch, path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError and friends from weights_only
        if not trust_pickle:
            raise ValueError(
                f"{path} holds pickled Python objects beyond tensors (for example "
                "a whole nn.Module saved with torch.save(model)); loading it would "
                "run arbitrary code from the file, so it is refused. If you trust "
                "the file, pass trust_pickle=True; better, re-save it with "
                f"torch.save(model.state_dict(), ...). ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from exc
        warnings.warn(
            f"Loading {path} with trust_pickle=True unpickles arbitrary Python "
            "objects, which can execute arbitrary code stored in the file. Only "
            "do this for files you trust.",
            UserWarning,
            stacklevel=2,
        )
        obj = torch.load(path, map_location="cpu", weights_only=False)
    return _unwrap_checkpoint(obj, torch, path)


def _find_head_prefix(state_dict: dict, prefix: str | None, path) -> str:
    if prefix is not None:
        prefix = prefix[:-1] if prefix.endswith(".") else prefix
        if f"{prefix}.weight" not in state_dict:
            matrices = [
                k
                for k, v in state_dict.items()
                if k.endswith(".weight") and v.ndim == 2
            ]
            raise KeyError(
                f"{path}: no '{prefix}.weight' in the checkpoint; keys ending in "
                f"'.weight' with 2-D tensors: {matrices[:20]}"
            )
        return prefix
    candidates = [
        k[: -len(".weight")]
        for k, v in state_dict.items()
        if k.endswith(".weight")
        and v.ndim == 2
        and k[: -len(".weight")].rsplit(".", 1)[-1] in _HEAD_NAMES
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise KeyError(
            f"{path}: found no classification head (looked for 2-D '<name>.weight' "
            f"with <name> ending in one of {_HEAD_NAMES}); name it with `prefix`."
        )
    raise KeyError(
        f"{path}: several candidate heads {candidates}; choose one with `prefix`."
    )


def load_linear_head(
    path: str | os.PathLike,
    *,
    prefix: str | None = None,
    classes=None,
    normalize_input: bool = True,
    trust_pickle: bool = False,
):
    """Load a fine-tuned checkpoint's classification head as a fitted classifier.

    The head is a linear layer over image features: ``<prefix>.weight`` of shape
    (n_classes, n_features) and optionally ``<prefix>.bias`` of shape
    (n_classes,). Using the fine-tuned model's own head avoids refitting a
    classifier on the training features.

    Parameters
    ----------
    path : str or path-like
        Checkpoint in any format :func:`load_checkpoint` reads.
    prefix : str, default=None
        Module name of the head (e.g. ``"classification_head"``). When None, the
        single 2-D ``.weight`` whose module name ends in ``classification_head``,
        ``head``, ``classifier``, ``fc`` or ``linear_head`` is used.
    classes : array-like of shape (n_classes,), default=None
        Label of each row of the head; default ``arange(n_classes)``.
    normalize_input : bool, default=True
        Whether the head expects L2-normalised features (WiSE-FT style heads do).
    trust_pickle : bool, default=False
        See :func:`load_checkpoint`.

    Returns
    -------
    head : skvrf.LinearHeadClassifier
        Fitted (``classes_``, ``coef_``, ``intercept_``, ``n_features_in_``).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skvrf.clip import load_linear_head
    >>> sd = {"visual.proj": torch.zeros(4, 3),
    ...       "classification_head.weight": torch.eye(3)[:2],
    ...       "classification_head.bias": torch.tensor([0.0, 1.0])}
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "ft.pt")
    ...     torch.save(sd, p)
    ...     head = load_linear_head(p, classes=["cat", "dog"])
    >>> head.predict([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).tolist()
    ['cat', 'dog']
    """
    from .._heads import LinearHeadClassifier

    state_dict = load_checkpoint(path, trust_pickle=trust_pickle)
    prefix = _find_head_prefix(state_dict, prefix, path)
    weight = state_dict[f"{prefix}.weight"].detach().float().cpu().numpy()
    if weight.ndim != 2:
        raise ValueError(f"{path}: '{prefix}.weight' is not 2-D: {weight.shape}.")
    bias = state_dict.get(f"{prefix}.bias")
    if bias is not None:
        bias = bias.detach().float().cpu().numpy().astype(np.float64)
    head = LinearHeadClassifier(
        weight.astype(np.float64),
        bias,
        classes=classes,
        normalize_input=normalize_input,
    )
    return head.fit(np.zeros((1, weight.shape[1])))
