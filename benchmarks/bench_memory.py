"""Peak memory of ``VRFEnsembleClassifier.predict_proba`` on a large input.

Fits a VRF on synthetic CLIP-like features (two fixed heads, so fitting is
cheap), then predicts 1M rows x 64 float32 features, 10 classes, against a ZSF
bank of a few thousand rows, under a few memory settings. Each setting runs in
a fresh subprocess and reports:

- ``traced``: tracemalloc's peak of Python/NumPy allocations during the call,
  minus the output array (NumPy reports its data buffers to tracemalloc). The
  input X exists before tracing starts and is not counted.
- ``rss``: growth of the process's peak resident set during the call (Linux
  ``ru_maxrss``), which also sees BLAS buffers; it includes the output.

Usage::

    python benchmarks/bench_memory.py                 # 1M rows, all settings
    python benchmarks/bench_memory.py --rows 100000   # quicker

The bound to expect is ``O(chunk_rows * (n_features + n_classes))`` beyond the
output; anything proportional to ``n_rows`` beyond the output is a leak of the
chunking.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

MiB = 2**20
# (scikit-learn working_memory for row chunks, VRF working_memory for distances)
SETTINGS = [(1024, None), (256, None), (64, 16), (16, 4)]


def _problem(n_rows, n_features=64, n_classes=10, n_train=20_000, seed=0):
    from skvrf import LinearHeadClassifier, VRFEnsembleClassifier, ZeroShotClassifier

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, n_train)
    X_train = centers[y] + 1.3 * rng.standard_normal((n_train, n_features)).astype(
        np.float32
    )
    zs = ZeroShotClassifier(centers + 1.6 * rng.standard_normal(centers.shape))
    ft = LinearHeadClassifier(4 * centers)
    clf = VRFEnsembleClassifier(zs, ft, k=5).fit(X_train, y)
    X = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    X += centers[rng.integers(0, n_classes, n_rows)]
    return clf, X


def _one(n_rows, sk_wm, vrf_wm):
    from sklearn import config_context

    clf, X = _problem(n_rows)
    clf.set_params(working_memory=vrf_wm)
    clf.predict_proba(X[:1000])  # warm up imports and BLAS
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    with config_context(working_memory=sk_wm):
        chunk = clf._chunk_rows()
        P = clf.predict_proba(X)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "rows": n_rows,
        "features": X.shape[1],
        "classes": P.shape[1],
        "bank_rows": int(clf.zsf_embeddings_.shape[0]),
        "k": int(clf.k_),
        "sklearn_working_memory_MiB": sk_wm,
        "vrf_working_memory_MiB": vrf_wm,
        "chunk_rows": min(chunk, n_rows),
        "input_MiB": X.nbytes / MiB,
        "output_MiB": P.nbytes / MiB,
        "traced_peak_beyond_output_MiB": (peak - P.nbytes) / MiB,
        "rss_growth_MiB": max(0, rss1 - rss0) / MiB,
        "seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--one", nargs=2, metavar=("SK_WM", "VRF_WM"))
    args = parser.parse_args(argv)
    if args.one:
        sk, vrf = args.one
        res = _one(args.rows, float(sk), None if vrf == "None" else float(vrf))
        print(json.dumps(res))
        return 0
    header = (
        f"{'sk wm':>6} {'vrf wm':>6} {'chunk':>8} {'in MiB':>7} {'out MiB':>7} "
        f"{'traced-out':>10} {'rss grow':>8} {'s':>6}"
    )
    print(header)
    for sk, vrf in SETTINGS:
        cmd = [sys.executable, __file__, "--rows", str(args.rows)]
        cmd += ["--one", str(sk), str(vrf)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{sk:>6} {vrf!s:>6} {r['chunk_rows']:>8} {r['input_MiB']:>7.0f} "
            f"{r['output_MiB']:>7.0f} {r['traced_peak_beyond_output_MiB']:>10.1f} "
            f"{r['rss_growth_MiB']:>8.0f} {r['seconds']:>6.1f}",
            flush=True,
        )
    print(
        f"(rows={r['rows']}, features={r['features']}, classes={r['classes']}, "
        f"ZSF bank={r['bank_rows']} rows, k={r['k']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
