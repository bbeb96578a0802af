r"""Exact search below the float32 floor: bfloat16 screening, float32 re-ranking.

Many CPUs (AVX512-BF16, AMX) multiply bfloat16 matrices two to sixteen times
faster than float32 ones. This engine computes every query-bank product in
bfloat16 (torch's ``mm``, float32 accumulation), then recomputes in float32
exactly those products that the proven error bound below cannot exclude from
the ``K`` largest. The result is the float32 result: the same ``K`` largest
float32 inner products as a float32 brute force (up to the order in which a
float32 dot product is summed, a few units of float32 rounding), and the same
rows up to ties.

Notation
--------
``q`` a query and ``b`` a bank row as float32 vectors of ``d`` components (a
float16 bank is cast exactly); ``u = 2**-24`` the float32 unit roundoff,
``gamma = d u / (1 - d u)``. ``q^ = bf16(q)``, ``b^ = bf16(b)``: every component
rounded to the nearest bfloat16 (8 significant bits, ties to even; done here in
numpy). ``s' = fl32(q . b)`` the float32 dot product this engine returns
(computed in some fixed order, ``numpy.einsum``). ``sigma`` the float32 sum the
bfloat16 kernel accumulates for ``q^ . b^``, and ``s~ = r(sigma)`` the
bfloat16 number it returns, ``r`` a monotone rounding to bfloat16 (to nearest,
or towards zero: any with ``r(x) >= RD(x)``, RD rounding down).

The bound
---------
For every pair,

.. math::

    |\sigma - s'| \le M(q, b) = \gamma (\|\hat q\| \|\hat b\| + \|q\| \|b\|)
        + \|\hat q - q\| \|\hat b\| + \|q\| \|\hat b - b\| + \epsilon ,

with ``epsilon = 2**-60`` for values the kernel flushes to zero. Proof, three
steps:

1. ``|sigma - q^ . b^| <= gamma ||q^|| ||b^|| + epsilon``: the product of two
   bfloat16 numbers (8 + 8 significant bits) is exact in float32, and a float32
   sum of ``d`` terms in any order (sequential, blocked, pairwise, with or
   without FMA) errs by at most ``gamma_{d-1} sum |q^_l b^_l|`` (Higham,
   *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 4.2),
   and ``sum |q^_l b^_l| <= ||q^|| ||b^||`` (Cauchy-Schwarz). Flushing
   subnormal inputs or partial sums to zero changes the sum by less than
   ``2 d 2**-126 max(||q^||, ||b^||)``, which ``epsilon`` covers for the norms
   allowed here (below ``2**40``).
2. ``|q^ . b^ - q . b| <= ||q^ - q|| ||b^|| + ||q|| ||b^ - b||``: write
   ``q^ . b^ - q . b = (q^ - q) . b^ + q . (b^ - b)`` and apply
   Cauchy-Schwarz to each term.
3. ``|q . b - s'| <= gamma ||q|| ||b||``: the float32 dot product, each
   product rounded once and the sum as in step 1.

The norms are computed in float32 and enlarged by ``1 + 4 gamma`` (a float32
sum of squares errs by at most ``gamma`` relative, the square root halves
that), and ``M`` by another ``1 + 1e-6`` for the float64 arithmetic that
combines them. ``M`` uses the largest ``||b||``, ``||b^||``, ``||b^ - b||`` of
each bank block, so it holds for every pair of the block. For unit rows it is
about ``2**-8``: ``||b^ - b|| <= 2**-9 ||b||`` and typically ``0.4 * 2**-8``.

Exactness
---------
Let ``T`` be the ``K``-th largest ``s'_j`` over the whole bank for one query,
and ``L`` any number with ``L <= T - M``. Let ``theta`` be a bfloat16 number
with ``theta <= L`` (computed as ``RD_bf16(RD_f32(L))``). Then every row ``j``
with ``s'_j >= T`` has ``s~_j >= theta``:

    ``sigma_j >= s'_j - M >= T - M >= L >= theta``, and since ``theta`` is a
    bfloat16 number not above ``sigma_j``, ``s~_j = r(sigma_j) >=
    RD(sigma_j) >= theta``.

So the candidates ``{j : s~_j >= theta}`` hold every row among the ``K``
largest (ties at ``T`` included); recomputing them in float32 and keeping the
``K`` largest of those and of the rows recomputed for earlier blocks gives
the ``K`` largest ``s'`` of the bank. Two such ``L`` are known for each block
of bank rows, and the larger is used:

* ``L = pred(t) - 2M``, ``t`` the ``K``-th largest of the block's group maxima
  of ``s~`` (groups as in :mod:`._select`; at least ``K`` groups) and
  ``pred(t)`` the bfloat16 number below ``t``. The block holds ``K`` distinct
  rows with ``s~_j >= t``; a rounding moves by less than one bfloat16 step,
  so their ``sigma_j > pred(t)`` and ``s'_j > pred(t) - M``. Hence ``T >
  pred(t) - M``, and ``L < T - M``.
* ``L = E - M``, ``E`` the ``K``-th largest ``s'`` among the ``K`` rows kept
  from earlier blocks (so ``E <= T``).

The first bound costs a window of ``2M`` below the screened ``K``-th value,
the second ``M`` below the exact one; on random unit rows in 512-d about
``1.5 K + 60`` candidates per query are recomputed. Rows with ``theta <= 0``,
or more than ``8K + 256`` candidates in a block (heavy ties), are computed in
float32 against that block instead (exact, no screening), so the bound is
never stretched and memory stays bounded.

The threshold test reads the bfloat16 products as int16 bits: for ``theta >
0``, ``s~ >= theta`` exactly when the bits of ``s~``, as int16, are ``>=``
those of ``theta`` (positive bfloat16 numbers are ordered as their bits;
negative ones and ``-0`` have negative int16 bits). The float32
recomputation is torch's ``sampled_addmm`` on the sparse (bank rows x
queries) pattern of the candidates: each bank row is read once for all its
queries, in increasing order.

torch is used for the bfloat16 products only; it is imported when this engine
runs. The dispatcher chooses this engine by itself only on CPUs that report
AVX512-BF16 or AMX and where a measured calibration predicts it faster than
the float32 engine (:mod:`._calibrate`).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._engine import Engine
from ._select import _grouped_view, group_size, merge

_CSR_WARNED = False


def _consume_csr_beta_warning(torch) -> None:
    """torch warns once per process that sparse CSR tensors are a beta
    feature; the one operation used here (``sampled_addmm`` on the CPU) is
    checked by the tests. Build a first, tiny CSR tensor with that warning
    ignored, in the calling thread (before any worker starts)."""
    global _CSR_WARNED
    if _CSR_WARNED:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.sparse_csr_tensor(
            torch.zeros(2, dtype=torch.int64),
            torch.zeros(0, dtype=torch.int64),
            torch.zeros(0),
            size=(1, 1),
            check_invariants=False,
        )
    _CSR_WARNED = True


__all__ = ["ScreenEngine", "bf16_bits", "bf16_values", "error_bound_terms"]

U32 = 2.0**-24
EPS_ABS = 2.0**-60
MAX_NORM = 2.0**40
_INT16_MIN = np.int16(-32768)
_PAIR_BATCH = 4096  # candidate pairs recomputed per einsum call
_SUB_ROWS = 4096  # bank rows per sparse re-ranking call (a float16 piece is cast)
_CONVERT_ROWS = 2048  # rows converted at a time (temporaries: 16 bytes a value)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for non-negative integer keys, by
    16-bit radix passes (numpy sorts 16-bit keys by radix, in linear time:
    four times faster than a stable sort of int64 keys)."""
    if len(keys) == 0 or keys.max() < 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = keys[order] >> 16
    if high.max() < 2**16:
        return order[np.argsort(high.astype(np.uint16), kind="stable")]
    return order[np.argsort(high, kind="stable")]


def gamma(d: int) -> float:
    return d * U32 / (1 - d * U32)


def bf16_bits(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 (or float16, cast exactly) -> bfloat16, rounded to nearest
    (ties to even), as int16 bits; 2-D, finite inputs. Converted in row
    blocks: the temporaries stay small (a float16 bank is never cast whole)."""
    if out is None:
        out = np.empty(x.shape, dtype=np.int16)
    for s in range(0, len(x), _CONVERT_ROWS):
        part = np.ascontiguousarray(x[s : s + _CONVERT_ROWS], dtype=np.float32)
        b = part.view(np.uint32)
        r = (b >> 16) & 1
        r += 0x7FFF
        r += b
        r >>= 16
        out[s : s + _CONVERT_ROWS] = r.astype(np.uint16).view(np.int16)
    return out


def bf16_values(bits: np.ndarray) -> np.ndarray:
    """The float32 values of bfloat16 bits (int16)."""
    wide = bits.view(np.uint16).astype(np.uint32)
    wide <<= 16
    return wide.view(np.float32)


def _row_norms(x: np.ndarray) -> np.ndarray:
    """Upper bounds of the row norms of a float32 matrix (float64)."""
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    return np.sqrt(sq.astype(np.float64)) * (1 + 4 * gamma(x.shape[1])) + 2.0**-70


def error_bound_terms(x: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Per row: ``(||x||, ||bf16(x)||, ||bf16(x) - x||)`` as upper bounds,
    shape (n, 3), float64; ``x`` float32, ``bits`` its bfloat16 bits."""
    out = np.empty((len(x), 3))
    for s in range(0, len(x), _CONVERT_ROWS):
        xs = np.ascontiguousarray(x[s : s + _CONVERT_ROWS], dtype=np.float32)
        hat = bf16_values(bits[s : s + _CONVERT_ROWS])
        out[s : s + len(xs), 0] = _row_norms(xs)
        out[s : s + len(xs), 1] = _row_norms(hat)
        hat -= xs  # exact (Sterbenz: hat is within a factor 2 of x)
        out[s : s + len(xs), 2] = _row_norms(hat)
    return out


def margins(q_terms: np.ndarray, b_max: np.ndarray, d: int) -> np.ndarray:
    """``M`` per query row against a bank block whose row maxima of
    ``(||b||, ||b^||, ||b^ - b||)`` are ``b_max``."""
    qn, qh, qr = q_terms[:, 0], q_terms[:, 1], q_terms[:, 2]
    bn, bh, br = b_max
    g = gamma(d)
    m = g * (qh * bh + qn * bn) + qr * bh + qn * br + EPS_ABS
    return m * (1 + 1e-6)


def thresholds(E: np.ndarray, M: np.ndarray) -> np.ndarray:
    """int16 bits of ``theta = RD_bf16(RD_f32(E - M))`` per row, or 0 where
    ``theta <= 0`` (those rows are not screened)."""
    x = E.astype(np.float64) - M
    x = np.where(np.isfinite(x), x, -1.0)
    x32 = x.astype(np.float32)
    down = x32.astype(np.float64) > x
    x32[down] = np.nextafter(x32[down], np.float32(-np.inf))
    bits = x32.view(np.uint32)
    key = np.where(x32 > 0, bits >> 16, 0)  # truncation = RD for positives
    return key.astype(np.int16)


_EXACT = 1 << 20  # float32 products per batch of rows computed exactly


def candidate_cap(K: int) -> int:
    """Most candidates (and flagged groups) of one row in one block before
    that row is computed in float32 instead."""
    return 8 * K + 256


def plan(
    n_queries: int,
    n_bank: int,
    n_select: int,
    budget: int,
    n_features: int,
    n_workers: int = 1,
    values_only: bool = False,
) -> tuple[int, int, int]:
    """``(query_rows, bank_cols, inner_rows)`` within ``budget`` bytes in all
    (or the smallest blocks when even those exceed it).

    Each worker takes chunks of ``query_rows`` queries (their float32 state of
    ``K`` values, and columns, grows with it) and screens them ``inner_rows``
    at a time against bank blocks of ``bank_cols`` rows: the bfloat16
    products (2 bytes each), their threshold mask (1 byte) and group maxima,
    and the block's bfloat16 bits, shared by all workers when the block is
    the whole bank (converted once per call), else converted per chunk. Fixed
    per worker: at most ``candidate_cap(K)`` candidates per inner row (their
    indices, re-ranked values and merge), the float32 fallback batch, a float32
    piece of a float16 bank.
    """
    K, d = n_select, n_features
    per_worker_q = -(-max(n_queries, 1) // n_workers)
    cols_bytes = 0 if values_only else 8
    per_row = (4 + cols_bytes) * K * 4 + 8 * d + 64
    bits_col = 2 * d + 32
    cap = candidate_cap(K)

    def worker_fixed(r: int) -> int:
        return (
            r * cap * 40  # candidate indices, pairs, order, values
            + r * (K + cap) * (4 + cols_bytes) * 2  # the dense merge
            + _EXACT * 4 * 3  # float32 fallback products and selection
            + _SUB_ROWS * d * 4  # a float16 piece cast for re-ranking
            + _CONVERT_ROWS * d * 16  # bfloat16 conversion and norms
        )

    def per_col(r: int, cols: int) -> float:
        return r * (3 + 2 / group_size(cols, K))

    for r in (1024, 512, 256, 128):
        r = min(r, per_worker_q)
        whole = n_bank * bits_col + n_workers * (
            worker_fixed(r) + per_col(r, n_bank) * n_bank + r * per_row
        )
        if whole <= budget:
            free = (budget - whole) // n_workers // per_row
            rows = min(per_worker_q, r + free, 1 << 16)
            return rows, n_bank, r
    # split the bank: blocks converted per chunk, chunks of up to 8192 rows
    budget_w = budget // n_workers
    r = min(256, per_worker_q)
    rows = min(per_worker_q, 8192)
    while True:
        room = budget_w - worker_fixed(r) - rows * per_row
        cols = int(room // (bits_col + per_col(r, max(K, n_bank // 8))))
        if cols >= min(n_bank, 4 * K) or rows <= r:
            break
        rows = max(r, rows // 2)
    if cols < min(n_bank, 4 * K):  # below the fixed costs: small blocks
        cols = min(n_bank, max(4 * K, 2048))
    n_blocks = max(1, n_bank // cols)  # balanced, each at least `cols`
    return rows, -(-n_bank // n_blocks), r


class ScreenEngine(Engine):
    """Top-``n_select`` float32 inner products by bfloat16 screening and exact
    float32 re-ranking (see the module docstring for the bound).

    The bank (float32 or float16, C-contiguous) is not copied: its bfloat16
    bits are made block by block (once per call when the whole bank is one
    block), and float32 re-ranking reads its rows directly.
    """

    plan = staticmethod(plan)

    def _setup(self, bank, block_cols, dtype, inner_rows=1024):
        import torch

        self.torch = torch
        _consume_csr_beta_warning(torch)
        if bank.dtype not in (np.float32, np.float16):
            raise ValueError("screening needs a float32 or float16 bank")
        self.bank = bank
        self.block_cols = max(self.n_select, min(block_cols, bank.shape[0]))
        self.inner_rows = inner_rows
        self._whole = None
        self.stats = dict(pairs=0, fallback_rows=0, rows=0)
        if self.block_cols >= bank.shape[0]:
            self._whole = self._convert(bank)

    # ------------------------------------------------------------ blocks
    def _convert(self, block):
        bits = bf16_bits(block)
        terms = error_bound_terms(block, bits)
        if not np.all(terms[:, :2] < MAX_NORM):
            raise ValueError("bank rows too large to screen")
        tensor = self.torch.from_numpy(bits).view(self.torch.bfloat16)
        return tensor, terms.max(axis=0)

    def _blocks(self):
        n = self.bank.shape[0]
        if self._whole is not None:
            yield 0, self.bank, *self._whole
            return
        for c0 in range(0, n, self.block_cols):
            block = self.bank[c0 : c0 + self.block_cols]
            yield c0, block, *self._convert(block)

    # ------------------------------------------------------------ search
    def topk(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values, columns)`` of shape (m, n_select), unsorted per row;
        float32 values; ``columns`` None with ``values_only``."""
        torch = self.torch
        Q = np.ascontiguousarray(queries, dtype=np.float32)
        m, d = Q.shape
        K = self.n_select
        q_bits = bf16_bits(Q)
        q_terms = error_bound_terms(Q, q_bits)
        if not np.all(q_terms[:, :2] < MAX_NORM):
            raise ValueError("query rows too large to screen")
        Qh = torch.from_numpy(q_bits).view(torch.bfloat16)
        state_v = np.full((m, K), -np.inf, dtype=np.float32)
        state_c = None if self.values_only else np.full((m, K), -1, dtype=np.int64)
        self.stats["rows"] += m
        r = min(self.inner_rows, m)
        buf = np.empty(r * self.block_cols, dtype=np.int16)
        for c0, block, Bh, b_max in self._blocks():
            M = margins(q_terms, b_max, d)
            for r0 in range(0, m, r):
                r1 = min(r0 + r, m)
                S = buf[: (r1 - r0) * len(block)].reshape(r1 - r0, len(block))
                torch.mm(Qh[r0:r1], Bh.T, out=torch.from_numpy(S).view(torch.bfloat16))
                self._chunk(
                    S,
                    Q[r0:r1],
                    block,
                    c0,
                    M[r0:r1],
                    state_v[r0:r1],
                    None if state_c is None else state_c[r0:r1],
                )
            del Bh, S  # before the next block's bits are made
        return state_v, state_c

    def _chunk(self, S, Q, block, c0, M, state_v, state_c):
        """Screen one (query rows x bank block) of bfloat16 bits ``S`` and
        merge the float32 values of its candidates into the state (in place).
        """
        c = S.shape[1]
        K = self.n_select
        g = group_size(c, K)
        G = _grouped_view(S, g).max(axis=1) if g > 1 else S  # (r, c // g)
        key = self._keys(G, state_v.min(axis=1), M)
        cap = candidate_cap(K)
        # theta <= 0: not screened; 0x7FFF is above the bits of every finite
        # bfloat16 number, so nothing of such a row passes
        screened = key > 0
        key = np.where(screened, key, np.int16(0x7FFF))
        mask = S >= key[:, None]
        counts = np.count_nonzero(mask, axis=1)
        fallback = np.flatnonzero(~screened | (counts > cap))
        if fallback.size:
            mask[fallback] = False  # at most `cap` candidates per row remain
            self._exact_rows(Q, block, c0, fallback, state_v, state_c)
        rows, cols = np.divmod(np.flatnonzero(mask), c)
        del mask
        if rows.size:
            vals, rows, cols = self._recompute(Q, block, rows, cols)
            self._merge(rows, cols + c0, vals, state_v, state_c)

    def _keys(self, G, E, M):
        """int16 bits of each row's threshold ``theta`` for one block (0: not
        screened). Two lower bounds of ``T - M`` (``T`` the K-th largest
        float32 product of the row over the whole bank), the larger is used:

        * ``pred(t) - 2M``, with ``t`` the K-th largest group maximum of the
          block's bfloat16 products and ``pred(t)`` the bfloat16 number below
          it: K rows of the block have ``s~ >= t``, so ``sigma > pred(t)``
          (a faithful rounding moves by less than one step) and ``s' >
          pred(t) - M``; hence ``T > pred(t) - M``;
        * ``E - M``, ``E`` the K-th largest float32 value already found for
          the row (earlier blocks), ``E <= T``.
        """
        K = self.n_select
        n_groups = G.shape[1]
        lo = np.full(len(G), -np.inf)
        if n_groups >= K:
            Gp = G.copy()
            Gp.partition(n_groups - K, axis=1)
            t = Gp[:, n_groups - K].astype(np.int32)
        else:  # fewer than K groups (a last, narrow block): no such bound
            t = np.zeros(len(G), dtype=np.int32)
        ok = t >= 2  # t a positive bfloat16 number with a positive predecessor
        pred = bf16_values((t[ok] - 1).astype(np.int16)).astype(np.float64)
        lo[ok] = pred - 2 * M[ok]
        known = np.isfinite(E)
        lo[known] = np.maximum(lo[known], E[known].astype(np.float64) - M[known])
        return thresholds(lo, np.zeros_like(lo))

    def _recompute(self, Q, block, rows, cols):
        """float32 dot products of the pairs ``(query row, block row)``;
        returns them with the pairs, sorted by block row (then query row).

        The pairs form a sparse (block rows x query rows) pattern; torch's
        ``sampled_addmm`` computes each of its dot products in float32,
        streaming the bank rows once (several pairs share one) and reading
        the query rows from cache: about 8 times faster than gathering both
        rows per pair. numpy's ``einsum`` on gathered rows is the fallback
        when torch may compute float32 products in lower precision
        (``torch.get_float32_matmul_precision() != "highest"``).
        """
        torch = self.torch
        order = stable_order(cols)
        rows, cols = rows[order], cols[order]
        P = len(rows)
        self.stats["pairs"] += P
        vals = np.empty(P, dtype=np.float32)
        if torch.get_float32_matmul_precision() != "highest":
            return self._recompute_gather(Q, block, rows, cols, vals), rows, cols
        edges = np.append(np.arange(0, len(block), _SUB_ROWS), len(block))
        starts = np.searchsorted(cols, edges)
        Qt = torch.from_numpy(np.ascontiguousarray(Q)).T
        rows_t = torch.from_numpy(rows.astype(np.int64, copy=False))
        for i, b0 in enumerate(edges[:-1]):
            p0, p1 = int(starts[i]), int(starts[i + 1])
            if p0 == p1:
                continue
            sub = block[b0 : edges[i + 1]]
            if sub.dtype != np.float32:
                sub = sub.astype(np.float32)  # a float16 bank: this piece only
            crow = np.zeros(len(sub) + 1, dtype=np.int64)
            counts = np.bincount(cols[p0:p1] - b0, minlength=len(sub))
            np.cumsum(counts, out=crow[1:])
            pattern = torch.sparse_csr_tensor(
                torch.from_numpy(crow),
                rows_t[p0:p1],
                torch.zeros(p1 - p0),
                size=(len(sub), Q.shape[0]),
                check_invariants=False,
            )
            out = torch.sparse.sampled_addmm(
                pattern, torch.from_numpy(sub), Qt, beta=0.0
            )
            vals[p0:p1] = out.values().numpy()
        return vals, rows, cols

    def _recompute_gather(self, Q, block, rows, cols, vals):
        P, d = len(rows), Q.shape[1]
        size = min(P, _PAIR_BATCH)
        bbuf = np.empty((size, d), dtype=block.dtype)
        b32 = bbuf if block.dtype == np.float32 else np.empty((size, d), np.float32)
        qbuf = np.empty((size, d), dtype=np.float32)
        for s in range(0, P, size):
            e = min(s + size, P)
            bsel = np.take(block, cols[s:e], axis=0, mode="clip", out=bbuf[: e - s])
            if b32 is not bbuf:
                np.copyto(b32[: e - s], bsel)
            qsel = np.take(Q, rows[s:e], axis=0, mode="clip", out=qbuf[: e - s])
            np.einsum("ij,ij->i", b32[: e - s], qsel, out=vals[s:e])
        return vals

    def _merge(self, rows, cols, vals, state_v, state_c):
        """Merge exact ``(row, column, value)`` triples into the top-K state."""
        K = self.n_select
        order = stable_order(rows)
        rows, cols, vals = rows[order], cols[order], vals[order]
        counts = np.bincount(rows, minlength=len(state_v))
        touched = np.flatnonzero(counts)
        width = int(counts.max())
        starts = np.cumsum(counts) - counts
        slot = np.empty(len(state_v), dtype=np.int64)
        slot[touched] = np.arange(len(touched))
        pos = K + np.arange(len(rows)) - np.repeat(starts, counts)
        dense_v = np.full((len(touched), K + width), -np.inf, dtype=np.float32)
        dense_v[:, :K] = state_v[touched]
        dense_v[slot[rows], pos] = vals
        dense_c = None
        if state_c is not None:
            dense_c = np.full((len(touched), K + width), -1, dtype=np.int64)
            dense_c[:, :K] = state_c[touched]
            dense_c[slot[rows], pos] = cols
        v, c = merge(dense_v, dense_c, K)
        state_v[touched] = v
        if state_c is not None:
            state_c[touched] = c

    def _exact_rows(self, Q, block, c0, rows, state_v, state_c):
        """float32 products of some query rows with the whole block, their
        top-K merged into the state (rows the screen cannot serve)."""
        from ._select import select

        K = self.n_select
        self.stats["fallback_rows"] += len(rows)
        b32 = block if block.dtype == np.float32 else None
        step = max(1, _EXACT // max(1, len(block)))
        for s in range(0, len(rows), step):
            idx = rows[s : s + step]
            if b32 is None:
                S = np.empty((len(idx), len(block)), dtype=np.float32)
                for b0 in range(0, len(block), 4096):
                    part = block[b0 : b0 + 4096].astype(np.float32)
                    np.matmul(Q[idx], part.T, out=S[:, b0 : b0 + len(part)])
            else:
                S = Q[idx] @ b32.T
            v, c = select(S, K, values_only=state_c is None)
            dv = np.concatenate([state_v[idx], v], axis=1)
            dc = None
            if state_c is not None:
                dc = np.concatenate([state_c[idx], c + c0], axis=1)
            v, c = merge(dv, dc, K)
            state_v[idx] = v
            if state_c is not None:
                state_c[idx] = c
