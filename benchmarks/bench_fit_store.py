"""Fitting VRF at ImageNet size: from a store, and in memory before/after chunking.

Generated CLIP-like data (``--classes`` class directions in 512-d, rows drawn
around them and L2-normalised) is written as a clip-retrieval folder in a
temporary directory (``img_emb/img_emb_{N}.npy`` float16 shards and
``metadata/metadata_{N}.parquet`` with a ``label`` column); both components are
frozen fixed heads (a :class:`skvrf.ZeroShotClassifier` on perturbed class
directions, a :class:`skvrf.LinearHeadClassifier` on the true ones, so the
Zero-Shot Failure set is not empty). The folder is deleted at the end.

``--mode store`` fits with :func:`skvrf.stores.fit_store` (the store is never
loaded whole); ``--mode memory`` loads the rows as float32 and calls
``fit(X, y)``; ``--skvrf-path`` imports skvrf from another checkout (e.g. ``git
archive <commit> skvrf | tar -x -C /tmp/old``) to measure the code before
chunking. Each fit runs in a fresh subprocess, which
reports wall time, resident memory before the fit (after loading the input) and
its peak during the fit (``VmHWM`` of ``/proc/self/status``, reset through
``/proc/self/clear_refs``; Linux only), the ZSF bank's size, the calibration
temperatures and the machine's load average.

Usage::

    python benchmarks/bench_fit_store.py --rows 1281167 --mode store
    python benchmarks/bench_fit_store.py --rows 128000 --mode memory
    python benchmarks/bench_fit_store.py --rows 128000 --mode memory \\
        --skvrf-path /tmp/old
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from _proc_memory import reset_peak, status_kib

MiB = 2**20


def heads(n_classes, dim, seed=0):
    """Class directions of the zero-shot and fine-tuned heads."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    text = centers + rng.normal(scale=0.6 / np.sqrt(dim), size=centers.shape)
    return centers, text


def generate(root, n_rows, n_classes, dim, shard_rows, seed=0):
    """Write the clip-retrieval folder; return the number of shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    centers, _ = heads(n_classes, dim, seed)
    os.makedirs(os.path.join(root, "img_emb"))
    os.makedirs(os.path.join(root, "metadata"))
    rng = np.random.default_rng(seed + 1)
    for i, start in enumerate(range(0, n_rows, shard_rows)):
        m = min(shard_rows, n_rows - start)
        y = rng.integers(0, n_classes, m)
        X = np.empty((m, dim), dtype=np.float16)
        for s in range(0, m, 20000):
            part = centers[y[s : s + 20000]] + rng.normal(
                scale=5.0 / np.sqrt(dim), size=(min(20000, m - s), dim)
            )
            part /= np.linalg.norm(part, axis=1, keepdims=True)
            X[s : s + 20000] = part
        np.save(os.path.join(root, "img_emb", f"img_emb_{i}.npy"), X)
        keys = np.char.add(f"{i}_", np.arange(m).astype(str))
        table = pa.table({"key": keys.tolist(), "label": y})
        pq.write_table(table, os.path.join(root, "metadata", f"metadata_{i}.parquet"))
    return i + 1


def worker(args):
    """One fit in this process; print a JSON line."""
    if args.skvrf_path:  # before an editable install's finder, which wins
        sys.meta_path[:] = [
            f for f in sys.meta_path if "__editable__" not in type(f).__module__
        ]
        sys.path.insert(0, args.skvrf_path)
    from sklearn.frozen import FrozenEstimator

    import skvrf
    from skvrf import LinearHeadClassifier, VRFEnsembleClassifier, ZeroShotClassifier
    from skvrf.io import open_store

    passes = []  # passes over the rows per temperature (chunked code only)
    try:
        from skvrf._calibration import ChunkedTemperature
    except ImportError:
        pass
    else:
        finish = ChunkedTemperature.finish_pass

        def counted(self):
            finish(self)
            if self.done:
                passes.append(self.n_passes)

        ChunkedTemperature.finish_pass = counted
    centers, text = heads(args.classes, args.dim)
    zs = ZeroShotClassifier(text)
    ft = FrozenEstimator(
        LinearHeadClassifier(20.0 * centers, np.zeros(args.classes)).fit(
            np.zeros((1, args.dim))
        )
    )
    vrf = VRFEnsembleClassifier(zs, ft)
    store = open_store(args.root)
    X = y = None
    if args.mode == "memory":
        X, y, _ = store.read(dtype=np.float32)
        X, y = X[: args.rows], y[: args.rows]
    rss0 = status_kib("VmRSS")
    reset = reset_peak()
    t0 = time.perf_counter()
    if args.mode == "store":
        from skvrf.stores import fit_store

        fit_store(vrf, store)
    else:
        vrf.fit(X, y)
    wall = time.perf_counter() - t0
    peak = status_kib("VmHWM")
    print(
        json.dumps(
            {
                "skvrf": os.path.dirname(skvrf.__file__),
                "mode": args.mode,
                "rows": int(store.n_rows if X is None else X.shape[0]),
                "classes": args.classes,
                "dim": args.dim,
                "wall_s": round(wall, 1),
                "rss_before_mib": round(rss0 / 1024, 1),
                "peak_rss_mib": round(peak / 1024, 1),
                "peak_over_start_mib": round((peak - rss0) / 1024, 1),
                "peak_reset": reset,
                "input_mib": 0.0 if X is None else round(X.nbytes / MiB, 1),
                "zsf_rows": int(vrf.zsf_indices_.size),
                "bank_mib": round(vrf.zsf_embeddings_.nbytes / MiB, 1),
                "k": int(vrf.k_),
                "temperatures": vrf.calibration_temperatures_,
                "temperature_passes": passes,
                "loadavg": os.getloadavg(),
            }
        ),
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_281_167)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--shard-rows", type=int, default=100_000)
    parser.add_argument("--mode", choices=("store", "memory"), default="store")
    parser.add_argument("--root", default=None, help="(worker) the store folder")
    parser.add_argument(
        "--skvrf-path", default=None, help="import skvrf from this folder's skvrf/"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the store")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    root = tempfile.mkdtemp(prefix="skvrf_fit_store_", dir="/tmp")
    store = os.path.join(root, "store")
    try:
        t0 = time.perf_counter()
        n_shards = generate(store, args.rows, args.classes, args.dim, args.shard_rows)
        print(
            f"generated {args.rows} rows in {n_shards} shards in "
            f"{time.perf_counter() - t0:.0f} s ({store})",
            file=sys.stderr,
        )
        cmd = [sys.executable, __file__, "--worker", "--root", store]
        cmd += ["--rows", str(args.rows), "--mode", args.mode]
        cmd += ["--classes", str(args.classes), "--dim", str(args.dim)]
        if args.skvrf_path:
            cmd += ["--skvrf-path", args.skvrf_path]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        sys.stderr.write(out.stderr)
        print(out.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
