"""When to screen in bfloat16: a measured, cached calibration.

:func:`prefer_screen` decides, for one search, between the float32 engine
(:mod:`._numpy`) and bfloat16 screening with float32 re-ranking
(:mod:`._screen`). Screening is considered only

* on a CPU that reports fast bfloat16 instructions (``avx512_bf16`` or
  ``amx_bf16`` in ``/proc/cpuinfo``; other systems: never),
* with torch installed, the environment variable ``SKVRF_SCREEN`` not ``"0"``,
* for searches large enough to repay the calibration (about 2e10 flops, or
  2e11 while torch is not imported yet: importing it takes seconds) with at
  least 512 queries (blocks of fewer rows multiply less efficiently) and
  ``k`` at most a quarter of the bank,

and chosen only when the calibration predicts it at most 0.75 times the
float32 engine's time. The calibration (once per process and feature count,
about 30 ms) times, on one thread as the engines' workers run: a float32
``numpy.matmul``, a bfloat16 ``torch.mm`` of the same shape, and the float32
re-ranking of candidate pairs; and it checks that torch's bfloat16 kernel
accumulates in float32 (a product whose exact value needs more than
bfloat16's precision in its partial sums must come out within one bfloat16
step of the exact value), which the error bound of :mod:`._screen` assumes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from ._select import (
    _ARGPARTITION,
    _PARTITION,
    _grouped_cost,
    _threshold_cost,
    choose,
    group_size,
)

_FLAGS = None
_CACHE: dict[int, dict] = {}
_LOCK = threading.Lock()
MIN_FLOPS = 2e10
MIN_FLOPS_IMPORT = 2e11
MIN_QUERIES = 512  # two workers' blocks of 256 rows, as calibrated
SPEEDUP_NEEDED = 0.75


def cpu_bf16_flags() -> frozenset:
    """The CPU's fast bfloat16 instruction sets among ``avx512_bf16`` and
    ``amx_bf16`` (empty where ``/proc/cpuinfo`` is not readable)."""
    global _FLAGS
    if _FLAGS is None:
        found = set()
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("flags"):
                        words = set(line.split(":", 1)[1].split())
                        found = {w for w in ("avx512_bf16", "amx_bf16") if w in words}
                        break
        except OSError:
            pass
        _FLAGS = frozenset(found)
    return _FLAGS


def screening_supported() -> bool:
    """Whether bfloat16 screening may be chosen automatically here."""
    if os.environ.get("SKVRF_SCREEN", "") == "0":
        return False
    if not cpu_bf16_flags():
        return False
    return "torch" in sys.modules or importlib.util.find_spec("torch") is not None


@contextmanager
def _one_thread():
    import torch

    from ._threads import _blas

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas().limit(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


def _best(fn, repeat=3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return max(best, 1e-6)


def kernel_accumulates_in_float32(d: int) -> bool:
    """torch's bfloat16 ``mm`` returns, for integer-valued inputs whose exact
    products and sums fit float32 (so float32 accumulation in any order is
    exact), values within one bfloat16 step of the exact ones. A kernel that
    rounded partial sums to bfloat16 would be off by many steps."""
    import torch

    from ._screen import bf16_bits, bf16_values

    rng = np.random.default_rng(0)
    a = rng.integers(-16, 17, (64, d)).astype(np.float32)
    b = rng.integers(-16, 17, (64, d)).astype(np.float32)
    a[:, 0], b[:, 0] = 200.0, 200.0  # a large first term, then many small ones
    exact = a.astype(np.float64) @ b.T.astype(np.float64)
    if np.abs(a).sum(1).max() * 16 >= 2**24:
        return False  # not exactly representable: cannot check here
    A = torch.from_numpy(bf16_bits(a)).view(torch.bfloat16)
    B = torch.from_numpy(bf16_bits(b)).view(torch.bfloat16)
    out = torch.mm(A, B.T).view(torch.int16).numpy()
    got = bf16_values(out).astype(np.float64)
    step = np.abs(exact) * 2.0**-7 + 1e-30  # one bfloat16 step, generously
    return bool(np.all(np.abs(got - exact) <= step))


def calibrate(d: int) -> dict:
    """Single-thread costs (ns) per float32 product, bfloat16 product and
    re-ranked pair, and the kernel check; cached per ``d``."""
    with _LOCK:
        if d in _CACHE:
            return _CACHE[d]
        import torch

        from ._screen import ScreenEngine, _consume_csr_beta_warning, bf16_bits

        rng = np.random.default_rng(0)
        m, n = 256, 1024
        Q = rng.standard_normal((m, d), dtype=np.float32)
        B = rng.standard_normal((n, d), dtype=np.float32)
        bank = np.full((16384, d), 0.01, dtype=np.float32)  # beyond L2 cache
        with _one_thread():
            out32 = np.empty((m, n), dtype=np.float32)
            t32 = _best(lambda: np.matmul(Q, B.T, out=out32))
            Qh = torch.from_numpy(bf16_bits(Q)).view(torch.bfloat16)
            Bh = torch.from_numpy(bf16_bits(B)).view(torch.bfloat16)
            t16 = _best(lambda: torch.mm(Qh, Bh.T))
            _consume_csr_beta_warning(torch)
            engine = ScreenEngine.__new__(ScreenEngine)
            engine.stats, engine.torch = dict(pairs=0), torch
            rows = rng.integers(0, m, 4096)
            cols = rng.integers(0, len(bank), 4096)
            tp = _best(lambda: engine._recompute(Q, bank, rows, cols))
            exact = kernel_accumulates_in_float32(d)
        _CACHE[d] = cal = dict(
            f32=t32 / (m * n) * 1e9,
            bf16=t16 / (m * n) * 1e9,
            pair=tp / 4096 * 1e9,
            exact=exact,
        )
        return cal


def _select_ns(n: int, K: int, values_only: bool) -> float:
    name, g = choose(n, K, values_only)
    if name == "max":
        return 0.3 * n
    if name == "grouped":
        return _grouped_cost(n, K, g, values_only)
    if name == "threshold":
        return _threshold_cost(n, K, g)
    a, b = _PARTITION if values_only else _ARGPARTITION
    return a * n + b


def predicted_ns(n_bank: int, K: int, d: int, values_only: bool, cal: dict):
    """Predicted single-thread ns per query row: (float32 engine, screening).
    Screening pays, per row, the bfloat16 products, the group maxima and the
    threshold mask of the int16 bits (about 0.5 ns per product), the K-th
    largest group maximum, and about ``1.6 K + 64`` candidates (random unit
    rows in 512-d) re-ranked in float32 and merged (the calibration's pair
    cost, plus 30 ns)."""
    t32 = n_bank * cal["f32"] + _select_ns(n_bank, K, values_only)
    g = group_size(n_bank, K)
    pairs = 1.6 * K + 64
    t16 = (
        n_bank * (cal["bf16"] + 0.5)
        + 5.5 * (n_bank / g)
        + pairs * (cal["pair"] + 30.0)
        + (0 if values_only else 20.0 * K)
    )
    return t32, t16


def prefer_screen(
    n_queries: int, n_bank: int, d: int, K: int, values_only: bool
) -> bool:
    """Whether ``backend="auto"`` screens this search (see the module
    docstring)."""
    flops = 2.0 * n_queries * n_bank * d
    need = MIN_FLOPS if "torch" in sys.modules else MIN_FLOPS_IMPORT
    if flops < need or 4 * K > n_bank or n_queries < MIN_QUERIES:
        return False  # small, k near the bank size, or too few rows per block
    if not screening_supported():
        return False
    cal = calibrate(d)
    if not cal["exact"]:
        return False
    t32, t16 = predicted_ns(n_bank, K, d, values_only, cal)
    return t16 <= SPEEDUP_NEEDED * t32
