"""Torch tensors as inputs, recognised and handled without importing torch.

A value can only be a ``torch.Tensor`` when the caller has imported torch, so
:func:`is_torch_tensor` looks in ``sys.modules`` and never imports it. The
helpers keep a tensor on its device (validation and normalisation with torch
operations) or give a NumPy array to code that needs one (:func:`to_numpy`: a
view of a CPU tensor, a host copy of a tensor on another device).
"""

from __future__ import annotations

import sys

import numpy as np


def is_torch_tensor(x) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (False when torch is not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def on_accelerator(x) -> bool:
    """Whether ``x`` is a tensor on a device other than the CPU."""
    return is_torch_tensor(x) and x.device.type != "cpu"


def to_numpy(x):
    """``x`` as NumPy where it is a tensor, else ``x`` itself.

    A CPU tensor becomes a view of its memory (detached from autograd, any
    strides kept; bfloat16, which NumPy lacks, is cast to float32); a tensor on
    another device is copied to the host.
    """
    if not is_torch_tensor(x):
        return x
    torch = sys.modules["torch"]
    x = x.detach()
    if x.device.type != "cpu":
        x = x.cpu()
    if x.dtype == torch.bfloat16:
        x = x.float()
    return x.resolve_conj().resolve_neg().numpy()


def check_tensor(X, name: str):
    """Check that a tensor is a 2-D real matrix without NaN or infinity, on
    its device (one reduction; no host copy). Returns it detached."""
    torch = sys.modules["torch"]
    X = X.detach()
    if X.is_complex():
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_rows, n_features), got {X.ndim} dims "
            f"with shape {tuple(X.shape)}."
        )
    if X.is_floating_point() and X.numel():
        # as for arrays: the sum is finite when every value is (in float32 for
        # the half types, whose sums overflow); else look at the values
        wide = torch.float32 if X.element_size() < 4 else None
        if not bool(torch.isfinite(X.sum(dtype=wide))) and not bool(
            torch.isfinite(X).all()
        ):
            raise ValueError(f"{name} contains NaN or infinity.")
    return X


def normalize_tensor_rows(X, dtype):
    """L2-normalise the rows of a tensor in ``dtype`` (a NumPy float dtype),
    on its device; zero rows stay zero (as :func:`skvrf.utils.normalize_rows`)."""
    torch = sys.modules["torch"]
    X = X.detach().to(getattr(torch, np.dtype(dtype).name))
    norms = torch.linalg.vector_norm(X, dim=1, keepdim=True)
    return X / torch.where(norms == 0, torch.ones_like(norms), norms)
