"""PyTorch backend: the group-maximum selection of :mod:`._numpy` with torch
ops (``torch.mm``, ``amax``, ``torch.topk``), on CUDA when available.

torch is imported inside :class:`TorchEngine` only, never at module import.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..utils import import_optional
from ._engine import Engine
from ._numpy import col_bytes, group_size


def row_bytes(
    n_cols: int,
    n_select: int,
    n_features: int = 0,
    itemsize: int = 4,
    values_only: bool = False,
) -> int:
    """Bytes one query row needs: products (``itemsize`` bytes each), group
    maxima, candidates."""
    s = itemsize
    g = group_size(n_cols, n_select)
    merge = (56 + 2 * s) * n_select + s * n_features
    if g == 1:
        return s * n_cols + (s + 8) * n_cols + merge  # topk may copy the row
    n_groups, cand = n_cols // g, 24 + s
    return s * n_cols + (s + 12) * n_groups + cand * (n_select + 1) * g + merge


@contextmanager
def float32_matmul(torch, tf32: bool = False):
    """Within the block, CUDA float32 matmuls use TF32 only if ``tf32``, and
    half-precision matmuls accumulate in float32; restored afterwards."""
    cuda = torch.backends.cuda.matmul
    saved = (
        cuda.allow_tf32,
        getattr(cuda, "allow_bf16_reduced_precision_reduction", None),
        getattr(cuda, "allow_fp16_reduced_precision_reduction", None),
        torch.get_float32_matmul_precision(),
    )
    cuda.allow_tf32 = tf32
    if saved[1] is not None:
        cuda.allow_bf16_reduced_precision_reduction = False
    if saved[2] is not None:
        cuda.allow_fp16_reduced_precision_reduction = False
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        cuda.allow_tf32 = saved[0]
        if saved[1] is not None:
            cuda.allow_bf16_reduced_precision_reduction = saved[1]
        if saved[2] is not None:
            cuda.allow_fp16_reduced_precision_reduction = saved[2]
        torch.set_float32_matmul_precision(saved[3])


def import_torch():
    """The ``torch`` module, or an ImportError with the install hint."""
    return import_optional("torch", "backend='torch'")


def default_device() -> str:
    torch = import_torch()
    return "cuda" if torch.cuda.is_available() else "cpu"


def torch_device(device=None):
    """``(torch, device)``: the torch module and the device to compute on
    (``device``, else CUDA when available, else the CPU)."""
    torch = import_torch()
    return torch, torch.device(device or default_device())


def to_device(torch, bank: np.ndarray, device):
    """The bank as a tensor on ``device``: the one place a bank is copied to
    a device (on the CPU the tensor shares the array's memory)."""
    return torch.from_numpy(bank).to(device)


def device_bank(torch, bank: np.ndarray, device, cache=None):
    """The bank on ``device``: copied by :func:`to_device`, once per device
    and dtype when ``cache`` (a :class:`~skvrf.neighbors.PreparedBank`) keeps
    the copy for later calls, else once per call."""
    if cache is None:
        return to_device(torch, bank, device)
    if device.type == "cuda" and device.index is None:  # "cuda" is "cuda:<n>"
        device = torch.device("cuda", torch.cuda.current_device())
    key = ("torch", str(device), str(bank.dtype))
    return cache.get(key, lambda: to_device(torch, bank, device))


def device_queries(torch, queries, device, dtype):
    """A chunk of queries as a contiguous ``dtype`` tensor on ``device``: a
    NumPy chunk is copied there, a tensor is cast and moved by torch (no
    copy when it already is one)."""
    if isinstance(queries, torch.Tensor):
        q = queries.detach().to(device=device, dtype=dtype)
        return q if q.is_contiguous() else q.contiguous()
    return torch.from_numpy(queries).to(device)


class TorchEngine(Engine):
    """Top-``n_select`` inner products against a bank held as a torch tensor.

    On CPU the bank tensor shares the NumPy array's memory; on CUDA it is
    copied to the device once per call, or once per device when a
    :class:`~skvrf.neighbors.PreparedBank` keeps it (``bank_cache``). Queries
    are NumPy chunks, or tensor chunks read on their device (cast to ``dtype``
    there). TF32 and reduced-precision reductions
    are switched off for the call. Products are computed in ``dtype``
    (float32, or float64 for a float64 bank); queries come in that dtype. A
    float16 bank stays float16 and is cast block by block.
    """

    row_bytes = staticmethod(row_bytes)
    col_bytes = staticmethod(col_bytes)

    def _setup(self, bank, block_cols, dtype, device=None, bank_cache=None):
        self.torch, self.device = torch_device(device)
        self.bank = device_bank(self.torch, bank, self.device, bank_cache)
        self.dtype = getattr(self.torch, dtype.name)
        self.block_cols = block_cols

    def _block_topk(self, S, c0: int):
        torch = self.torch
        m, n = S.shape
        K = min(self.n_select, n)
        g = group_size(n, K)
        if g <= 1:
            v, c = torch.topk(S, K, dim=1, sorted=False)
            return v, c + c0
        n_groups = n // g
        grouped = S.as_strided((m, g, n_groups), (n, n_groups, 1))
        maxima = grouped.amax(dim=1)
        top = torch.topk(maxima, K, dim=1, sorted=False).indices  # (m, K)
        offsets = torch.arange(0, g * n_groups, n_groups, device=S.device)
        cols = (top[:, :, None] + offsets[None, None, :]).reshape(m, -1)
        if n > g * n_groups:
            tail = torch.arange(g * n_groups, n, device=S.device)
            cols = torch.cat([cols, tail.expand(m, -1)], dim=1)
        cand = torch.gather(S, 1, cols)
        v, sel = torch.topk(cand, K, dim=1, sorted=False)
        return v, torch.gather(cols, 1, sel) + c0

    def topk(self, queries) -> tuple[np.ndarray, np.ndarray]:
        """``(values, columns)`` of shape (m, n_select), unsorted per row
        (NumPy, for NumPy or tensor ``queries``)."""
        torch = self.torch
        with torch.inference_mode(), float32_matmul(torch, tf32=False):
            q = device_queries(torch, queries, self.device, self.dtype)
            m = q.shape[0]
            n = self.bank.shape[0]
            cols = min(self.block_cols, n)
            buf = torch.empty(m * cols, dtype=self.dtype, device=self.device)
            values = columns = None
            for c0 in range(0, n, cols):
                block = self.bank[c0 : c0 + cols].to(self.dtype)
                S = buf[: m * block.shape[0]].view(m, -1)
                torch.mm(q, block.T, out=S)
                v, c = self._block_topk(S, c0)
                if values is None:
                    values, columns = v, c
                else:
                    values = torch.cat([values, v], dim=1)
                    columns = torch.cat([columns, c], dim=1)
                    values, sel = torch.topk(values, self.n_select, 1, sorted=False)
                    columns = torch.gather(columns, 1, sel)
            return values.cpu().numpy(), columns.cpu().numpy().astype(np.int64)
