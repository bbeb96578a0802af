"""Screening with torch operations on torch's device (CUDA, or CPU for tests).

The same search as :mod:`._screen` (read its docstring for the bound and the
proof), written with torch operations only, so that it runs where the bank
and the products live, on a GPU:

``precision="bfloat16"``
    Queries and bank rows are rounded to bfloat16 by torch (to nearest), so
    ``||q^ - q||`` and ``||b^ - b||`` are computed exactly as on the CPU path;
    the products come from ``torch.mm`` with float32 accumulation (cuBLAS'
    reduced-precision reductions are switched off for the call:
    ``torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction``),
    rounded to bfloat16 on output, which ``pred(t)`` and the round-down of
    ``theta`` absorb as on the CPU path.
``precision="tf32"`` (CUDA)
    float32 ``torch.mm`` with TF32 tensor cores enabled for the call: the
    hardware rounds each input to 10 explicit mantissa bits, by at most
    ``2**-10`` relative (also when it truncates), so ``||q^ - q|| <= 2**-10
    ||q||`` and ``||q^|| <= (1 + 2**-10) ||q||`` bound the terms of ``M`` that
    the bfloat16 path measures; products are accumulated and returned in
    float32 (``s~ = sigma``, no output rounding: ``pred(t)`` is ``t``).

Every other product (the float32 re-ranking of candidates, the float32
fallback rows) is computed with TF32 and reduced-precision reductions
switched off, in float32.
"""

from __future__ import annotations

import numpy as np

from ._engine import Engine
from ._screen import EPS_ABS, MAX_NORM, U32, candidate_cap, gamma
from ._select import group_size
from ._torch import float32_matmul

TF32_U = 2.0**-10


def row_bytes(
    n_cols: int,
    n_select: int,
    n_features: int = 0,
    itemsize: int = 4,
    values_only: bool = False,
) -> int:
    """Bytes one query row needs on the device: the screened products (4
    bytes; bfloat16 ones are widened for comparisons), their mask and group
    maxima, candidates, the state and its merge, the query row."""
    K = n_select
    cap = candidate_cap(K)
    return 9 * n_cols + 40 * cap + 24 * (K + cap) + 12 * n_features


def col_bytes(n_features: int, bank_itemsize: int, itemsize: int) -> int:
    """Per bank row of a block: its float32 and bfloat16 copies and norms."""
    return 6 * n_features + 32


class TorchScreenEngine(Engine):
    """Top-``n_select`` float32 inner products by low-precision screening and
    float32 re-ranking, with torch operations on ``device``."""

    row_bytes = staticmethod(row_bytes)
    col_bytes = staticmethod(col_bytes)

    def _setup(
        self,
        bank,
        block_cols,
        dtype,
        device=None,
        precision="bfloat16",
        bank_cache=None,
    ):
        from ._torch import device_bank, device_queries, torch_device

        torch, self.device = torch_device(device)
        self._device_queries = device_queries
        self.torch = torch
        if precision not in ("bfloat16", "tf32"):
            raise ValueError(f"precision must be bfloat16 or tf32, got {precision!r}")
        if precision == "tf32" and self.device.type != "cuda":
            raise ValueError("TF32 screening needs a CUDA device.")
        self.precision = precision
        self.bank = device_bank(torch, bank, self.device, bank_cache)
        self.block_cols = max(self.n_select, min(block_cols, bank.shape[0]))
        self.stats = dict(pairs=0, fallback_rows=0, rows=0)

    def _terms(self, x):
        """Per row ``(||x||, ||x^||, ||x^ - x||)`` (upper bounds, float64) and
        the rounded rows ``x^`` to multiply (bfloat16) or ``x`` (tf32)."""
        torch = self.torch
        g = gamma(x.shape[1])
        norm = torch.linalg.vector_norm(x, dim=1).double() * (1 + 4 * g) + 2.0**-70
        if self.precision == "tf32":
            return torch.stack([norm, norm * (1 + TF32_U), norm * TF32_U], 1), x
        hat = x.to(torch.bfloat16)
        hat32 = hat.float()
        n_hat = torch.linalg.vector_norm(hat32, dim=1).double() * (1 + 4 * g)
        n_res = torch.linalg.vector_norm(hat32 - x, dim=1).double() * (1 + 4 * g)
        return torch.stack([norm, n_hat, n_res + 2.0**-70], 1), hat

    def topk(self, queries: np.ndarray):
        torch = self.torch
        K = self.n_select
        with torch.inference_mode():
            if not isinstance(queries, torch.Tensor):
                queries = np.ascontiguousarray(queries, np.float32)
            Q = self._device_queries(torch, queries, self.device, torch.float32)
            m, d = Q.shape
            q_terms, Qh = self._terms(Q)
            if not bool((q_terms[:, :2] < MAX_NORM).all()):
                raise ValueError("query rows too large to screen")
            state_v = torch.full((m, K), -torch.inf, device=self.device)
            state_c = None
            if not self.values_only:
                state_c = torch.full((m, K), -1, dtype=torch.int64, device=self.device)
            self.stats["rows"] += m
            n = self.bank.shape[0]
            for c0 in range(0, n, self.block_cols):
                B = self.bank[c0 : c0 + self.block_cols].float()
                b_terms, Bh = self._terms(B)
                if not bool((b_terms[:, :2] < MAX_NORM).all()):
                    raise ValueError("bank rows too large to screen")
                b_max = b_terms.max(dim=0).values
                qn, qh, qr = q_terms.unbind(1)
                bn, bh, br = b_max.unbind(0)
                M = (gamma(d) * (qh * bh + qn * bn) + qr * bh + qn * br + EPS_ABS) * (
                    1 + 1e-6
                )
                with float32_matmul(torch, tf32=self.precision == "tf32"):
                    S = torch.mm(Qh, Bh.T)
                self._block(S, Q, B, c0, M, state_v, state_c)
            values = state_v.cpu().numpy()
            cols = None if state_c is None else state_c.cpu().numpy()
        return values, cols

    def _lower(self, S, E, M):
        """Per row a lower bound ``L <= T - M`` as in :mod:`._screen`, then
        ``theta`` (float32) rounded down to the screened values' precision;
        ``-inf`` where there is none."""
        torch = self.torch
        K = self.n_select
        c = S.shape[1]
        g = group_size(c, K)
        n_groups = c // g
        lo = torch.full_like(M, -torch.inf)
        if n_groups >= K:
            G = S[:, : g * n_groups].reshape(-1, g, n_groups).amax(dim=1)
            t = torch.topk(G, K, dim=1, sorted=False).values.amin(dim=1)
            if S.dtype == torch.bfloat16:  # output rounded: its predecessor
                bits = t.view(torch.int16).to(torch.int32)
                ok = bits >= 2  # positive, with a positive predecessor
                pred = (bits - 1).clamp(min=0).to(torch.int16).view(torch.bfloat16)
                t = torch.where(ok, pred.double(), -torch.inf)
            else:
                t = t.double()
            lo = t - 2 * M
        known = torch.isfinite(E)
        lo = torch.where(known, torch.maximum(lo, E.double() - M), lo)
        # round down to float32, then (bfloat16 products) to bfloat16
        x32 = lo.float()
        x32 = torch.where(x32.double() > lo, torch.nextafter(x32, -x32.abs() - 1), x32)
        if S.dtype == torch.bfloat16:
            bits = x32.view(torch.int32)
            trunc = (bits & ~0xFFFF).view(torch.float32)  # toward zero
            x32 = torch.where(x32 > 0, trunc, torch.full_like(x32, -torch.inf))
        return torch.where(x32 > 0, x32, torch.full_like(x32, -torch.inf))

    def _block(self, S, Q, B, c0, M, state_v, state_c):
        torch = self.torch
        K = self.n_select
        theta = self._lower(S, state_v.amin(dim=1), M)
        screened = torch.isfinite(theta)
        mask = S >= theta.to(S.dtype)[:, None]
        mask &= screened[:, None]
        counts = mask.sum(dim=1)
        fallback = ~screened | (counts > candidate_cap(K))
        if bool(fallback.any()):
            mask &= ~fallback[:, None]
            self._exact_rows(Q, B, c0, torch.nonzero(fallback)[:, 0], state_v, state_c)
        rows, cols = torch.nonzero(mask, as_tuple=True)
        if rows.numel() == 0:
            return
        self.stats["pairs"] += int(rows.numel())
        vals = torch.empty(rows.numel(), device=S.device)
        step = max(1, (1 << 24) // Q.shape[1])
        for s in range(0, rows.numel(), step):  # float32, elementwise: exact fp32
            e = s + step
            vals[s:e] = (Q[rows[s:e]] * B[cols[s:e]]).sum(dim=1)
        self._merge(rows, cols + c0, vals, state_v, state_c)

    def _merge(self, rows, cols, vals, state_v, state_c):
        """Merge exact (row, column, value) triples (rows ascending) into the
        top-K state."""
        torch = self.torch
        K = self.n_select
        m = state_v.shape[0]
        counts = torch.bincount(rows, minlength=m)
        width = int(counts.max())
        starts = torch.cumsum(counts, 0) - counts
        pos = K + torch.arange(rows.numel(), device=rows.device) - starts[rows]
        dense_v = torch.full((m, K + width), -torch.inf, device=rows.device)
        dense_v[:, :K] = state_v
        dense_v[rows, pos] = vals
        v, sel = torch.topk(dense_v, K, dim=1, sorted=False)
        state_v.copy_(v)
        if state_c is not None:
            dense_c = torch.full(
                (m, K + width), -1, dtype=torch.int64, device=rows.device
            )
            dense_c[:, :K] = state_c
            dense_c[rows, pos] = cols
            state_c.copy_(torch.gather(dense_c, 1, sel))

    def _exact_rows(self, Q, B, c0, rows, state_v, state_c):
        torch = self.torch
        K = self.n_select
        self.stats["fallback_rows"] += int(rows.numel())
        with float32_matmul(torch, tf32=False):
            S = torch.mm(Q[rows], B.T)
        v, c = torch.topk(S, min(K, S.shape[1]), dim=1, sorted=False)
        dv = torch.cat([state_v[rows], v], dim=1)
        v2, sel = torch.topk(dv, K, dim=1, sorted=False)
        state_v[rows] = v2
        if state_c is not None:
            dc = torch.cat([state_c[rows], c + c0], dim=1)
            state_c[rows] = torch.gather(dc, 1, sel)


__all__ = ["TF32_U", "U32", "TorchScreenEngine", "float32_matmul"]
