"""Benchmark of skvrf's k-th-neighbour distance engine.

One run, one seeded data set of random unit vectors (float32), measures:

* ``floor``: the query x bank float32 matrix products alone, with the numpy
  backend's blocking and no selection;
* every skvrf backend through :func:`skvrf.neighbors.kth_neighbor_distances`;
* ``faiss IndexFlatL2`` called directly (``index.search``);
* scikit-learn ``NearestNeighbors(algorithm="brute")``;

and prints the best-of-``--repeat`` wall time of each, its ratio to the floor
and to faiss, and the peak extra memory in a separate untimed run: traced
allocations (``tracemalloc``, which sees NumPy's buffers but not torch's or
faiss's) and the peak of the process RSS above its level before the call
(sampled every 2 ms from ``/proc/self/statm``).

Then: the memory check (numpy backend, 50k queries x 40k bank, default
``working_memory``; traced peak must stay under 512 MiB) and the float16 error
(bank stored as float16, computed in float32: max |d16 - d32|).

Usage::

    python benchmarks/bench_knn.py --size quick
    python benchmarks/bench_knn.py --size imagenet --n-queries 20000
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import threading
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from skvrf.neighbors import kth_neighbor_distances
from skvrf.neighbors._numpy import NumpyEngine, row_bytes
from skvrf.neighbors._validation import (
    plan_blocks,
    working_memory_bytes,
)

SIZES = {
    "quick": dict(n_bank=40_000, n_queries=8_000, n_features=512, k=100),
    "imagenet": dict(n_bank=320_000, n_queries=166_000, n_features=512, k=100),
}
MiB = 2**20


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


class RSSPeak:
    """Peak resident set size above the level at ``__enter__`` (sampled)."""

    def __enter__(self):
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self._page

    def _watch(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.extra = (self.peak - self.start) / MiB


def traced_peak(fn) -> float:
    """Peak traced allocation (MiB) while running ``fn``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_floor(queries, bank, k, working_memory):
    rows, cols = plan_blocks(
        len(queries),
        len(bank),
        k,
        working_memory_bytes(working_memory),
        lambda c, s: row_bytes(c, s, bank.shape[1]),
    )
    engine = NumpyEngine(bank, k, cols)

    def run():
        for s in range(0, len(queries), rows):
            engine.products(queries[s : s + rows])

    return run, rows, cols


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=SIZES, default="quick")
    p.add_argument("--n-queries", type=int, help="override the number of queries")
    p.add_argument("--n-bank", type=int, help="override the bank size")
    p.add_argument("-k", type=int, help="override k")
    p.add_argument("--repeat", type=int, default=2, help="timed runs (best kept)")
    p.add_argument("--n-jobs", type=int, default=None, help="n_jobs for skvrf")
    p.add_argument("--working-memory", type=float, default=None, help="MiB")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="run only these skvrf backends (numpy, torch, faiss); skips faiss direct",
    )
    p.add_argument("--no-memory", action="store_true", help="skip memory runs")
    p.add_argument("--no-checks", action="store_true", help="skip 50k memory/f16")
    args = p.parse_args(argv)

    cfg = dict(SIZES[args.size])
    for key, val in (("n_queries", args.n_queries), ("n_bank", args.n_bank)):
        if val is not None:
            cfg[key] = val
    if args.k is not None:
        cfg["k"] = args.k
    k, d = cfg["k"], cfg["n_features"]
    rng = np.random.default_rng(0)
    bank = unit_rows(rng, cfg["n_bank"], d)
    queries = unit_rows(rng, cfg["n_queries"], d)
    print(
        f"# {datetime.date.today()} {platform.node()} {os.cpu_count()} CPUs, "
        f"numpy {np.__version__}, size={args.size} {cfg}, n_jobs={args.n_jobs}, "
        f"working_memory={args.working_memory}"
    )

    have_faiss = importlib.util.find_spec("faiss") is not None
    have_torch = importlib.util.find_spec("torch") is not None
    floor_run, rows, cols = make_floor(queries, bank, k, args.working_memory)
    print(f"# numpy blocking: {rows} query rows x {cols} bank rows")
    cases = {"floor (GEMM only)": floor_run}

    def backend_case(name):
        return lambda: kth_neighbor_distances(
            queries,
            bank,
            k,
            backend=name,
            working_memory=args.working_memory,
            n_jobs=args.n_jobs,
        )

    for name in ("numpy", "torch", "faiss"):
        if args.only is not None and name not in args.only:
            continue
        if name == "numpy" or (have_torch, have_faiss)[name == "faiss"]:
            cases[f"skvrf {name}"] = backend_case(name)
    if have_faiss and args.only is None:
        import faiss

        def faiss_direct():
            index = faiss.IndexFlatL2(d)
            index.add(bank)
            return index.search(queries, k)[0][:, -1].astype(np.float64)

        cases["faiss IndexFlatL2"] = faiss_direct
    if not args.no_sklearn:
        from sklearn.neighbors import NearestNeighbors

        def sk_brute():
            nn = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=args.n_jobs)
            dist = nn.fit(bank).kneighbors(queries, k)[0][:, -1]
            return dist.astype(np.float64) ** 2

        cases["sklearn brute"] = sk_brute

    # round-robin repeats, so that a burst of load elsewhere hits every method
    times = dict.fromkeys(cases, float("inf"))
    outputs = {}
    for r in range(args.repeat):
        for name, fn in cases.items():
            t, outputs[name] = best_time(fn, 1)
            times[name] = min(times[name], t)
            print(f"#   round {r}: {name}: {t:.2f} s", flush=True)

    mem = {}
    if not args.no_memory:
        for name, fn in cases.items():
            with RSSPeak() as rss:
                traced = traced_peak(fn)
            mem[name] = (traced, rss.extra)

    floor = times["floor (GEMM only)"]
    ref_faiss = times.get("faiss IndexFlatL2")
    print()
    print(
        "| method | time (s) | / floor | / faiss L2 | traced peak MiB | RSS peak MiB |"
    )
    print("|---|---|---|---|---|---|")
    for name, t in times.items():
        vs_faiss = f"{t / ref_faiss:.2f}" if ref_faiss else "-"
        tm, rm = mem.get(name, (float("nan"), float("nan")))
        print(
            f"| {name} | {t:.2f} | {t / floor:.2f} | {vs_faiss} | {tm:.0f} | {rm:.0f} |"
        )
    ref = outputs["skvrf numpy"]
    for name, out in outputs.items():
        if out is not None and name != "skvrf numpy":
            print(f"# max |d - d_numpy| {name}: {np.abs(out - ref).max():.2e}")

    if args.no_checks:
        return
    # memory check: 50k queries x 40k bank, default working memory
    mq, mb = unit_rows(rng, 50_000, d), unit_rows(rng, 40_000, d)
    with RSSPeak() as rss:
        peak = traced_peak(lambda: kth_neighbor_distances(mq, mb, 100, backend="numpy"))
    status = "OK" if peak < 512 else "FAIL"
    print(
        f"\nmemory check (numpy, 50k x 40k, k=100, working_memory=256): traced "
        f"peak {peak:.0f} MiB, RSS peak +{rss.extra:.0f} MiB, limit 512: {status}"
    )
    # float16 bank, computed in float32
    fq, fb = unit_rows(rng, 2_000, d), unit_rows(rng, 40_000, d)
    d32 = kth_neighbor_distances(fq, fb, [1, 10, 100], backend="numpy")
    d16 = kth_neighbor_distances(
        fq, fb.astype(np.float16), [1, 10, 100], backend="numpy"
    )
    print(
        f"float16 bank (2k x 40k, k=1/10/100): max |d16 - d32| = "
        f"{np.abs(d16 - d32).max():.2e}, mean {np.abs(d16 - d32).mean():.2e}"
    )


if __name__ == "__main__":
    main()
