"""Dask scaling of partition-wise prediction: 1 worker against 2.

The VRF of ``bench_stream.py`` (two frozen heads, generated 512-d features) is
fitted once; ``--rows`` generated rows are persisted on a ``LocalCluster`` of 1,
then 2 worker processes (one thread each, BLAS limited to one thread per
worker, loopback only), and :func:`skvrf.parallel.predict` (one pass per
partition, the model scattered to every worker once) is timed, best of
``--repeat``. Reported: rows/s for each and the ratio (2 workers / 1 worker;
2.0 would be linear on two idle cores). The single-process rate with one BLAS
thread is given for reference.

Usage::

    python benchmarks/bench_dask.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_stream import build_model, sample

ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def _rows(centers, n, partition_rows, seed=3):
    rng = np.random.default_rng(seed)
    X = sample(rng, centers, rng.integers(0, centers.shape[0], n))
    return X


def run(args):
    import dask.array as da
    from distributed import Client, LocalCluster, wait
    from threadpoolctl import threadpool_limits

    from skvrf import parallel

    vrf, centers = build_model(args.classes, 512, args.train)
    X = _rows(centers, args.rows, args.partition_rows)
    info = {
        "rows": args.rows,
        "classes": args.classes,
        "bank_rows": int(vrf.zsf_indices_.size),
        "partition_rows": args.partition_rows,
    }
    print("model:", json.dumps(info), flush=True)
    result = dict(info)
    with threadpool_limits(1):
        best = np.inf
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            expected = vrf.predict(X)
            best = min(best, time.perf_counter() - t0)
    result["single_process_1_thread_rows_per_s"] = round(args.rows / best)
    for n_workers in (1, 2):
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                env=ONE_THREAD,
            ) as cluster,
            Client(cluster) as client,
        ):
            Xd = da.from_array(X, chunks=(args.partition_rows, -1))
            Xd = client.persist(Xd)
            wait(Xd)
            best = np.inf
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                y = parallel.predict(vrf, Xd, client=client).compute()
                best = min(best, time.perf_counter() - t0)
            assert (y == expected).mean() > 0.999
            result[f"workers_{n_workers}_rows_per_s"] = round(args.rows / best)
            print(f"{n_workers} worker(s): {args.rows / best:.0f} rows/s", flush=True)
    result["ratio_2_over_1"] = round(
        result["workers_2_rows_per_s"] / result["workers_1_rows_per_s"], 2
    )
    result["load_avg"] = os.getloadavg()
    print("dask:", json.dumps(result), flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--partition-rows", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--train", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
