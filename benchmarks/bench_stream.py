"""Streaming prediction over a large generated store: rows/s and peak memory.

A VRF of two frozen heads (a zero-shot head and a linear head over ``--classes``
classes, 512-d) is fitted on generated CLIP-like features, then
:func:`skvrf.stores.predict_store` (what ``skvrf predict MODEL --features STORE
--out DIR`` runs) streams ``--rows`` generated rows through it. The rows come as a
clip-retrieval folder of float16 ``img_emb_{N}.npy`` shards, each generated
just before it is read and deleted right after, so the disk holds one shard at a
time; the real reader (memory map, chunks, page release) and the real writer
(one Parquet file per shard: key, prediction, w(x), d(x)) run on them.

Reported: prediction rows/s (wall time minus the time spent generating shards),
end-to-end rows/s, the process's resident memory before streaming and its peak
during streaming (``VmHWM`` of ``/proc/self/status``, reset before streaming
through ``/proc/self/clear_refs``; Linux only), and the size of the output.

``--passes`` compares, on ``--pass-rows`` in-memory rows, the three calls the
command line made before (``predict_proba``, ``zsf_distances``,
``ensemble_weights``: three neighbour searches) with the one pass of
:func:`skvrf.stores.predict_chunks`.

Usage::

    python benchmarks/bench_stream.py --rows 10000000          # the 10^7-row run
    python benchmarks/bench_stream.py --rows 200000 --shard-rows 50000   # quick
    python benchmarks/bench_stream.py --passes --pass-rows 100000 --no-stream
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from _proc_memory import reset_peak, status_kib

from skvrf.utils import normalize_rows

MiB = 2**20


def build_model(n_classes, n_features, n_train, seed=0):
    """A fitted VRF of two frozen heads on generated unit-norm features.

    Classes come in 10 groups of nearby centres; the zero-shot head's class
    embeddings are the centres plus noise, so it confuses classes of a group
    (with 100 classes, about a fifth of the rows: the ZSF bank is about 20 % of
    ``n_train``; with 1,000 classes about half), while the linear head knows the
    centres.
    """
    from skvrf import LinearHeadClassifier, VRFEnsembleClassifier, ZeroShotClassifier

    rng = np.random.default_rng(seed)
    groups = rng.standard_normal((10, n_features)).astype(np.float32)
    spread = rng.standard_normal((n_classes, n_features)).astype(np.float32)
    centers = normalize_rows(groups[np.arange(n_classes) % 10] + 0.25 * spread)
    y = rng.integers(0, n_classes, n_train)
    X = sample(rng, centers, y)
    text = centers + 0.03 * rng.standard_normal(centers.shape).astype(np.float32)
    zs = ZeroShotClassifier(text)
    ft = LinearHeadClassifier(30 * centers, normalize_input=True)
    vrf = VRFEnsembleClassifier(zs, ft, k=10, threshold=0.47, temperature=0.03)
    vrf.fit(X, y)
    return vrf, centers


def sample(rng, centers, y, noise=0.025):
    X = centers[y] + noise * rng.standard_normal(
        (len(y), centers.shape[1]), dtype=np.float32
    )
    return normalize_rows(X)


def generated_store(folder, centers, n_rows, shard_rows, chunk_rows, seed, timer):
    """A clip-retrieval store whose shards are written just before they are read
    and deleted right after."""
    from skvrf.stores import Shard
    from skvrf.stores._numpy import ClipRetrievalStore, read_npy_header

    class GeneratedStore(ClipRetrievalStore):
        def __init__(self):
            shards, start, index = [], 0, 0
            while start < n_rows:
                n = min(shard_rows, n_rows - start)
                path = os.path.join(folder, f"img_emb_{index}.npy")
                shards.append(Shard(index, f"img_emb_{index}", path, n, start))
                start += n
                index += 1
            d = centers.shape[1]
            super(ClipRetrievalStore, self).__init__(
                folder, shards, d, np.float16, chunk_rows=chunk_rows
            )
            self._offsets = {}

        def _read_shard(self, shard):
            t0 = time.perf_counter()
            rng = np.random.default_rng(seed + shard.index)
            shape = (shard.n_rows, centers.shape[1])
            header = {"descr": "<f2", "fortran_order": False, "shape": shape}
            # written block by block: generating never holds a whole shard
            with open(shard.path, "wb") as f:
                np.lib.format.write_array_header_1_0(f, header)
                for a in range(0, shard.n_rows, 8192):
                    y = rng.integers(0, centers.shape[0], min(8192, shard.n_rows - a))
                    sample(rng, centers, y).astype("<f2").tofile(f)
            self._offsets[shard.path] = read_npy_header(shard.path)[2]
            timer["generate"] += time.perf_counter() - t0
            try:
                yield from super()._read_shard(shard)
            finally:
                os.unlink(shard.path)

    return GeneratedStore()


def run_stream(args):
    from skvrf.stores import predict_store

    vrf, centers = build_model(args.classes, args.features, args.train)
    info = {
        "rows": args.rows,
        "features": args.features,
        "classes": args.classes,
        "bank_rows": int(vrf.zsf_indices_.size),
        "k": int(vrf.k_),
        "shard_rows": args.shard_rows,
        "chunk_rows": args.chunk_rows,
        "working_memory": args.working_memory,
    }
    print("model:", json.dumps(info), flush=True)
    root = tempfile.mkdtemp(prefix="bench_stream_", dir=args.tmp)
    folder = os.path.join(root, "img_emb")
    out = os.path.join(root, "pred")
    os.makedirs(folder)
    timer = {"generate": 0.0}
    store = generated_store(
        folder, centers, args.rows, args.shard_rows, args.chunk_rows, 1, timer
    )
    rss_before = status_kib("VmRSS")
    reset = reset_peak()
    t0 = time.perf_counter()
    try:
        summary = predict_store(
            vrf,
            store,
            out,
            weights=True,
            distances=True,
            model_id="bench",
            progress=not args.quiet,
            working_memory=args.working_memory,
        )
        wall = time.perf_counter() - t0
        peak = status_kib("VmHWM")
        size = sum(
            os.path.getsize(os.path.join(out, f))
            for f in os.listdir(out)
            if f.endswith(".parquet")
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    predict_s = wall - timer["generate"]
    result = {
        **info,
        "predicted": summary["rows"],
        "wall_s": round(wall, 1),
        "generate_s": round(timer["generate"], 1),
        "predict_s": round(predict_s, 1),
        "rows_per_s_predict": round(summary["rows"] / predict_s),
        "rows_per_s_end_to_end": round(summary["rows"] / wall),
        "rss_before_MiB": round(rss_before / 1024),
        "peak_rss_MiB": round(peak / 1024) if reset else None,
        "output_MiB": round(size / MiB, 1),
        "load_avg": os.getloadavg(),
    }
    print("stream:", json.dumps(result), flush=True)
    return result


def run_passes(args):
    from skvrf.stores import predict_chunks

    vrf, centers = build_model(args.classes, args.features, args.train)
    rng = np.random.default_rng(7)
    y = rng.integers(0, args.classes, args.pass_rows)
    X = sample(rng, centers, y)
    print(
        f"passes: {args.pass_rows} rows, {args.classes} classes, bank "
        f"{vrf.zsf_indices_.size} rows, k={vrf.k_}",
        flush=True,
    )
    times = {"three": [], "one": []}
    for _ in range(args.repeat):  # round-robin: load bursts hit both
        t0 = time.perf_counter()
        P = vrf.predict_proba(X)
        d = vrf.zsf_distances(X)
        w = vrf.ensemble_weights(X)
        times["three"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        parts = list(predict_chunks(vrf, X))
        times["one"].append(time.perf_counter() - t0)
    P1 = np.concatenate([p.proba for p in parts])
    w1 = np.concatenate([p.weights for p in parts])
    d1 = np.concatenate([p.distances for p in parts])
    assert np.array_equal(P1, P) and np.array_equal(w1, w) and np.array_equal(d1, d)
    three, one = min(times["three"]), min(times["one"])
    result = {
        "rows": args.pass_rows,
        "classes": args.classes,
        "bank_rows": int(vrf.zsf_indices_.size),
        "three_calls_s": round(three, 2),
        "one_pass_s": round(one, 2),
        "speedup": round(three / one, 2),
        "load_avg": os.getloadavg(),
    }
    print("passes:", json.dumps(result), flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--shard-rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=None)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--train", type=int, default=40_000)
    parser.add_argument("--tmp", default=None, help="folder for the shards")
    parser.add_argument(
        "--working-memory", type=int, default=None, help="MiB (scikit-learn's)"
    )
    parser.add_argument("--passes", action="store_true")
    parser.add_argument("--pass-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-stream", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_stream:
        run_stream(args)
    if args.passes:
        run_passes(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
