"""The bfloat16-screened search against the float32 GEMM floor, in one run.

Times, round-robin (best of ``--repeat``), on seeded random 512-d float32 unit
rows:

* ``floor``: the float32 GEMM alone (numpy's BLAS, default threads), in
  blocks of at most 256 MiB of products with at least 1024 query rows (the
  bank is split into column blocks when 1024 rows of full width do not fit):
  the best-blocked plain GEMM;
* ``skvrf auto``: ``kth_neighbor_distances(Q, B, k)`` with the defaults, which
  screens in bfloat16 where the calibration says so;
* ``skvrf float32``: the same with ``screen=False`` (the float32 engine);
* ``skvrf screened``: ``screen=True``.

and checks that all three give the same k-th distances (float32 tolerance).
Prints the calibration, what ``auto`` chose, and candidates re-ranked per query.

Usage::

    python benchmarks/bench_knn_screen.py   # 40k bank, 8k queries, k=100
    python benchmarks/bench_knn_screen.py --size imagenet --repeat 1   # minutes
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from bench_knn_grid import unit_rows

from skvrf.neighbors import kth_neighbor_distances

BLOCK_BYTES = 256 * 2**20


def floor_gemm(Q, B, k=None):
    """float32 products alone, blocks of <= 256 MiB, >= 1024 query rows."""
    m, n = len(Q), len(B)
    rows = min(m, max(1024, BLOCK_BYTES // (4 * n)))
    cols = min(n, max(1, BLOCK_BYTES // (4 * rows)))
    buf = np.empty(rows * cols, dtype=np.float32)
    for s in range(0, m, rows):
        q = Q[s : s + rows]
        for c in range(0, n, cols):
            b = B[c : c + cols]
            np.matmul(q, b.T, out=buf[: len(q) * len(b)].reshape(len(q), len(b)))


SIZES = {
    "quick": (40_000, 8_000, 100),
    "imagenet": (320_000, 166_000, 100),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=SIZES, default="quick")
    p.add_argument("--n-bank", type=int)
    p.add_argument("--n-queries", type=int)
    p.add_argument("-k", type=int)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    p.add_argument("--skip", nargs="*", default=[], help="methods to leave out")
    args = p.parse_args(argv)
    n, m, k = SIZES[args.size]
    n, m, k = args.n_bank or n, args.n_queries or m, args.k or k
    rng = np.random.default_rng(0)
    B = unit_rows(rng, n).astype(args.dtype)
    Q = unit_rows(rng, m)
    import torch  # imported once here, not inside a timed call

    from skvrf.neighbors import _calibrate

    print(
        f"# {datetime.datetime.now():%Y-%m-%d %H:%M} {platform.node()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"bank {n} x 512 {args.dtype}, {m} queries, k={k}, torch {torch.__version__}, "
        f"CPU flags {sorted(_calibrate.cpu_bf16_flags())}",
        flush=True,
    )
    t0 = time.perf_counter()
    cal = _calibrate.calibrate(512)
    print(
        f"# calibration ({time.perf_counter() - t0:.3f} s, one thread): "
        f"float32 {cal['f32']:.3f} ns/product, bfloat16 {cal['bf16']:.3f} "
        f"ns/product ({cal['f32'] / cal['bf16']:.2f}x), re-ranked pair "
        f"{cal['pair']:.0f} ns, kernel accumulates in float32: {cal['exact']}"
    )
    t32, t16 = _calibrate.predicted_ns(n, k, 512, True, cal)
    auto = _calibrate.prefer_screen(m, n, 512, k, True)
    print(
        f"# predicted per query: float32 engine {t32 / 1e3:.0f} us, screened "
        f"{t16 / 1e3:.0f} us -> auto screens: {auto}"
    )
    Bf = B if B.dtype == np.float32 else None
    cases = {
        "floor": (lambda: floor_gemm(Q, Bf, k)) if Bf is not None else None,
        "skvrf auto": lambda: kth_neighbor_distances(Q, B, k),
        "skvrf float32": lambda: kth_neighbor_distances(Q, B, k, screen=False),
        "skvrf screened": lambda: kth_neighbor_distances(Q, B, k, screen=True),
    }
    cases = {a: f for a, f in cases.items() if f is not None and a not in args.skip}
    times = dict.fromkeys(cases, float("inf"))
    outs = {}
    for r in range(args.repeat):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            out = fn()
            times[name] = min(times[name], time.perf_counter() - t0)
            if out is not None:
                outs[name] = out
            print(f"#   round {r}: {name} {time.perf_counter() - t0:.2f} s", flush=True)
    fl = times.get("floor")
    print("\n| method | time (s) | / float32 GEMM floor |")
    print("|---|---|---|")
    for name, t in times.items():
        ratio = f"{t / fl:.2f}" if fl else "-"
        print(f"| {name} | {t:.2f} | {ratio} |")
    ref = outs.get("skvrf float32")
    for name, out in outs.items():
        if ref is not None and name != "skvrf float32":
            print(f"# max |d - d_float32| {name}: {np.abs(out - ref).max():.1e}")
    print(f"# load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
