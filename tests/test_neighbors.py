"""Tests of skvrf.neighbors: every exact backend against a float64 brute force."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

from skvrf.neighbors import kneighbors, kth_neighbor_distances
from skvrf.neighbors._numpy import block_topk, group_size, row_bytes
from skvrf.neighbors._validation import plan_blocks

# float32 products of unit vectors: rounding about 1e-7 per product, so a few
# 1e-7 on d = 2 - 2 q.b; a float64 bank computes in float64: about 1e-15.
ATOL, RTOL = 1e-5, 1e-4
ATOL64 = 1e-12


def _backend(name: str) -> str:
    if name in ("torch", "faiss"):
        pytest.importorskip(name)
    return name


@pytest.fixture(params=["numpy", "torch", "faiss"])
def backend(request):
    return _backend(request.param)


def unit(rng, n, d, dtype=np.float32):
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype)


def ref_sorted(queries, bank):
    """Float64 brute force, ascending per row: ``2 - 2 q.b``, which is the
    squared L2 distance of unit rows (float16 rows are only nearly unit)."""
    q = np.asarray(queries, dtype=np.float64)
    b = np.asarray(bank, dtype=np.float64)
    return np.sort(np.clip(2 - 2 * q @ b.T, 0, 4), axis=1)


def assert_close(actual, expected):
    np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=RTOL)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return unit(rng, 60, 16), unit(rng, 700, 16)


@pytest.mark.parametrize("k", [1, 2, 37, 699, 700])
def test_kth_matches_reference(backend, data, k):
    queries, bank = data
    got = kth_neighbor_distances(queries, bank, k, backend=backend)
    assert got.shape == (60,) and got.dtype == np.float64
    assert_close(got, ref_sorted(queries, bank)[:, k - 1])


def test_k_sequence_one_pass(backend, data):
    queries, bank = data
    ks = [1, 3, 3, 50, 700]
    got = kth_neighbor_distances(queries, bank, ks, backend=backend)
    assert got.shape == (60, 5)
    assert_close(got, ref_sorted(queries, bank)[:, np.array(ks) - 1])
    got = kth_neighbor_distances(queries, bank, np.array([4]), backend=backend)
    assert got.shape == (60, 1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dtypes_and_layout(backend, dtype):
    rng = np.random.default_rng(1)
    queries = unit(rng, 40, 24, dtype)
    bank = np.asfortranarray(unit(rng, 300, 24, dtype))
    strided = np.repeat(queries, 2, axis=0)[::2]  # not contiguous
    assert not strided.flags.c_contiguous
    if backend == "faiss" and dtype == np.float64:
        with pytest.raises(ValueError, match="float32 only"):
            kth_neighbor_distances(queries, bank, 1, backend=backend)
        with pytest.raises(ValueError, match="float32 only"):
            kneighbors(queries, bank, 1, backend=backend)
        bank = bank.astype(np.float32)  # the documented way out
    ref = ref_sorted(queries, bank)
    atol = ATOL64 if bank.dtype == np.float64 else ATOL
    for q in (queries, strided, queries.T.copy().T):
        got = kth_neighbor_distances(q, bank, [1, 10], backend=backend)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, ref[:, [0, 9]], atol=atol, rtol=0)


@pytest.fixture(params=["numpy", "torch"])
def backend64(request):
    return _backend(request.param)


@pytest.mark.parametrize("query_dtype", [np.float32, np.float64])
def test_float64_bank_computes_in_float64(backend64, query_dtype):
    """A float64 bank gives float64 distances (queries are cast up to the
    bank), through chunking, bank splits and threads: within float64 rounding
    of a float64 brute force, where the float32 path is 1e-8 or more off."""
    rng = np.random.default_rng(11)
    queries = unit(rng, 70, 32, np.float64).astype(query_dtype)
    bank = unit(rng, 900, 32, np.float64)
    ref = ref_sorted(queries, bank)  # the float64 oracle
    ks = [1, 5, 60, 900]
    for kw in ({}, {"working_memory": 0.002}, {"n_jobs": 2, "working_memory": 0.05}):
        got = kth_neighbor_distances(queries, bank, ks, backend=backend64, **kw)
        np.testing.assert_allclose(got, ref[:, np.array(ks) - 1], atol=ATOL64, rtol=0)
        dist, ind = kneighbors(queries, bank, 60, backend=backend64, **kw)
        np.testing.assert_allclose(dist, ref[:, :60], atol=ATOL64, rtol=0)
        exact = 2 - 2 * np.einsum(
            "ij,ikj->ik", queries.astype(np.float64), bank[ind]
        )  # the returned rows are at the returned distances
        np.testing.assert_allclose(dist, exact, atol=ATOL64, rtol=0)
    # the same data through a float32 bank: float32 rounding, far above ATOL64
    got32 = kth_neighbor_distances(queries, bank.astype(np.float32), ks)
    err32 = np.abs(got32 - ref[:, np.array(ks) - 1]).max()
    assert 1e-9 < err32 < ATOL


def test_float32_and_float16_banks_still_compute_in_float32(backend):
    """float64 queries against a float32 (or float16) bank are cast down to
    float32 as before: the result equals the all-float32 computation."""
    rng = np.random.default_rng(12)
    queries = unit(rng, 30, 16, np.float64)
    for dtype in (np.float32, np.float16):
        bank = unit(rng, 200, 16, dtype)
        got = kth_neighbor_distances(queries, bank, [1, 7], backend=backend)
        same = kth_neighbor_distances(
            queries.astype(np.float32), bank.astype(np.float32), [1, 7], backend=backend
        )
        np.testing.assert_array_equal(got, same)


def test_duplicates_and_ties(backend):
    rng = np.random.default_rng(2)
    base = unit(rng, 30, 8)
    bank = np.concatenate([base, base, base[:5], base])  # many exact ties
    queries = np.concatenate([base[:10], unit(rng, 10, 8)])
    ref = ref_sorted(queries, bank)
    for k in (1, 3, 4, 50, len(bank)):
        assert_close(
            kth_neighbor_distances(queries, bank, k, backend=backend), ref[:, k - 1]
        )
    # a bank of one repeated row: every distance ties
    same = np.repeat(base[:1], 500, axis=0)
    got = kth_neighbor_distances(queries, same, [1, 250, 500], backend=backend)
    assert_close(got, ref_sorted(queries, same)[:, [0, 249, 499]])


def test_bank_smaller_than_block(backend):
    rng = np.random.default_rng(3)
    queries, bank = unit(rng, 9, 5), unit(rng, 3, 5)
    got = kth_neighbor_distances(queries, bank, [1, 2, 3], backend=backend)
    assert_close(got, ref_sorted(queries, bank))
    one = kth_neighbor_distances(queries, bank[:1], 1, backend=backend)
    assert_close(one, ref_sorted(queries, bank[:1])[:, 0])


@pytest.mark.parametrize("working_memory", [0.05, 0.002])
def test_tiny_working_memory_many_chunks_and_bank_split(backend, working_memory):
    rng = np.random.default_rng(4)
    queries, bank = unit(rng, 90, 12), unit(rng, 1500, 12)
    rows, cols = plan_blocks(
        90, 1500, 40, int(working_memory * 2**20), lambda c, s: row_bytes(c, s, 12)
    )
    assert rows < 90  # many query chunks
    if working_memory < 0.01:
        assert cols < 1500  # the bank is split and partial top-k merged
    got = kth_neighbor_distances(
        queries, bank, [1, 7, 40], backend=backend, working_memory=working_memory
    )
    assert_close(got, ref_sorted(queries, bank)[:, [0, 6, 39]])
    dist, _ind = kneighbors(
        queries, bank, 40, backend=backend, working_memory=working_memory
    )
    assert_close(dist, ref_sorted(queries, bank)[:, :40])


def test_n_jobs_threads_agree(backend, data):
    queries, bank = data
    one = kth_neighbor_distances(queries, bank, [1, 9], backend=backend)
    two = kth_neighbor_distances(
        queries, bank, [1, 9], backend=backend, n_jobs=2, working_memory=0.02
    )
    assert_close(two, one)


def test_empty_queries(backend, data):
    _, bank = data
    empty = np.empty((0, 16), dtype=np.float32)
    assert kth_neighbor_distances(empty, bank, 3, backend=backend).shape == (0,)
    assert kth_neighbor_distances(empty, bank, [1, 3], backend=backend).shape == (0, 2)
    dist, ind = kneighbors(empty, bank, 4, backend=backend)
    assert dist.shape == ind.shape == (0, 4)


def test_kneighbors_indices(backend):
    rng = np.random.default_rng(5)
    queries = unit(rng, 50, 10)
    bank = np.concatenate([unit(rng, 400, 10), queries[:5]])  # some exact hits
    bank = np.concatenate([bank, bank[:40]])  # duplicated rows: tied distances
    dist, ind = kneighbors(queries, bank, 25, backend=backend)
    assert dist.shape == ind.shape == (50, 25) and ind.dtype == np.int64
    ref = ref_sorted(queries, bank)[:, :25]
    assert_close(dist, ref)
    assert np.all(np.diff(dist, axis=1) >= 0)
    # the returned rows really are at the returned distances
    sq_l2 = (queries[:, None, :].astype(float) - bank[ind].astype(float)) ** 2
    assert_close(dist, np.clip(sq_l2.sum(-1), 0, 4))
    assert all(len(set(row)) == 25 for row in ind)  # no row twice
    # equal distances are ordered by bank index
    same = dist[:, 1:] == dist[:, :-1]
    assert np.all(ind[:, 1:][same] > ind[:, :-1][same])


def test_backends_agree_on_neighbours():
    rng = np.random.default_rng(6)
    queries, bank = unit(rng, 30, 8), unit(rng, 200, 8)
    dist, ind = kneighbors(queries, bank, 10, backend="numpy")
    for name in ("torch", "faiss"):
        try:
            __import__(name)
        except ImportError:
            continue
        d2, i2 = kneighbors(queries, bank, 10, backend=name)
        assert_close(d2, dist)
        np.testing.assert_array_equal(i2, ind)  # random data: no ties


# ---------------------------------------------------------------- selection


@pytest.mark.parametrize("group", [None, 1, 2, 4, 8, 16])
def test_group_selection_adversarial(group):
    """Data crafted against the candidate selection: the top values all in
    one group, ties at the group maxima, winners in the tail columns."""
    rng = np.random.default_rng(7)
    m, n, K = 6, 203, 10  # 203 = 12 * 16 + 11: tail columns for g=16
    S = rng.random((m, n), dtype=np.float32)
    n_groups = n // 16
    S[0, np.arange(16) * n_groups] = 5 + np.arange(16)  # one group holds the top
    S[1] = 1.0  # all ties
    S[2, -11:] = 9.0  # the winners are tail columns
    S[3, ::7] = 3.0  # ties spread across groups
    S[4] = -np.arange(n)  # strictly decreasing
    S = np.ascontiguousarray(S)
    vals, cols = block_topk(S, K, group=group)
    assert vals.shape == cols.shape == (m, K)
    expected = -np.sort(-S, axis=1)[:, :K]
    np.testing.assert_array_equal(-np.sort(-vals, axis=1), expected)
    np.testing.assert_array_equal(np.take_along_axis(S, cols, 1), vals)
    assert all(len(set(row)) == K for row in cols)


def test_group_size_rule():
    assert group_size(40_000, 100) == 16
    assert group_size(100, 100) == 1
    for n, k in [(5, 3), (300, 100), (10**6, 1), (4096, 64)]:
        g = group_size(n, k)
        assert g == 1 or n // g >= k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_working_memory_bounds_numpy_allocations(dtype):
    rng = np.random.default_rng(8)
    queries, bank = unit(rng, 1000, 32, dtype), unit(rng, 4000, 32, dtype)
    wm = 1.0  # MiB; the float32 products of all queries would need 15 MiB
    tracemalloc.start()
    try:
        out = kth_neighbor_distances(
            queries, bank, [5, 50], backend="numpy", working_memory=wm
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= wm * 2**20 + out.nbytes + 2**16


# ---------------------------------------------------------------- validation


def test_errors(data):
    queries, bank = data
    with pytest.raises(ValueError, match="larger than the bank"):
        kth_neighbor_distances(queries, bank, 701)
    with pytest.raises(ValueError, match="larger than the bank"):
        kneighbors(queries, bank, 701)
    with pytest.raises(ValueError, match=">= 1"):
        kth_neighbor_distances(queries, bank, 0)
    with pytest.raises(ValueError, match="sorted"):
        kth_neighbor_distances(queries, bank, [5, 2])
    with pytest.raises(TypeError):
        kth_neighbor_distances(queries, bank, 2.5)
    with pytest.raises(TypeError):
        kneighbors(queries, bank, [1, 2])
    with pytest.raises(ValueError, match="bank is empty"):
        kth_neighbor_distances(queries, bank[:0], 1)
    with pytest.raises(ValueError, match=r"16 features.*15"):
        kth_neighbor_distances(queries, bank[:, :15], 1)
    bad = queries.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="queries contains NaN"):
        kth_neighbor_distances(bad, bank, 1)
    bad = bank.astype(np.float64)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="bank contains NaN or infinity"):
        kth_neighbor_distances(queries, bad, 1)
    with pytest.raises(ValueError, match="2-D"):
        kth_neighbor_distances(queries[0], bank, 1)
    with pytest.raises(ValueError, match="backend"):
        kth_neighbor_distances(queries, bank, 1, backend="annoy")
    with pytest.raises(ValueError, match="backend"):
        kneighbors(queries[:0], bank, 1, backend="annoy")
    with pytest.raises(ValueError, match="working_memory"):
        kth_neighbor_distances(queries, bank, 1, working_memory=0)


def test_large_float64_values_are_finite():
    from skvrf.neighbors._validation import check_matrix

    big = np.full((2, 3), 1e300)
    assert check_matrix(big, "bank") is big  # its sum overflows, values are finite


def test_faiss_missing_names_extra(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    queries, bank = data
    with pytest.raises(ImportError, match=r"\.\[faiss\].*faiss-cpu"):
        kth_neighbor_distances(queries, bank, 1, backend="faiss")


def test_torch_engine_device_path_on_cpu(data):
    pytest.importorskip("torch")
    from skvrf.neighbors._torch import TorchEngine

    queries, bank = data
    engine = TorchEngine(bank, 5, block_cols=256, device="cpu")
    values, _cols = engine.topk(queries)
    d = np.sort(2 - 2 * values.astype(float), axis=1)
    assert_close(d, ref_sorted(queries, bank)[:, :5])


def test_import_does_not_load_torch_or_faiss():
    code = (
        "import sys, skvrf, skvrf.neighbors; "
        "bad = [m for m in ('torch', 'faiss') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------- strategies per block shape


def _adversarial_blocks(rng, m, n):
    S = rng.random((m, n), dtype=np.float32)
    S[0] = 1.0  # every value ties
    S[1] = -np.arange(n)  # strictly decreasing, negatives
    S[2, ::3] = 2.0  # ties spread over the groups
    S[3, -7:] = 9.0  # the largest values in the tail columns
    S[4] = np.round(S[4] * 4) / 4  # few distinct values: ties at every rank
    return np.ascontiguousarray(S)


_METHODS = [
    None,
    ("max", 1),
    ("partition", 1),
    ("grouped", 2),
    ("grouped", 8),
    ("threshold", 2),
    ("threshold", 4),
    ("threshold", 16),
]


@pytest.mark.parametrize("values_only", [True, False])
@pytest.mark.parametrize(
    "method,n,K",
    [
        (method, n, K)
        for n, K in [(203, 1), (203, 10), (203, 50), (1000, 37)]
        for method in _METHODS
        if method is None or method[0] != "max" or K == 1  # max: one value
    ],
)
def test_every_selection_strategy_is_exact(method, values_only, n, K):
    """Each strategy (forced, also where the cost model would not pick it)
    returns the K largest values of every row, ties and tails included."""
    from skvrf.neighbors._select import select

    rng = np.random.default_rng(n + K)
    S = _adversarial_blocks(rng, 12, n)
    expected = -np.sort(-S, axis=1)[:, :K]
    vals, cols = select(S.copy(), K, values_only=values_only, method=method)
    assert vals.shape == (12, K)
    np.testing.assert_array_equal(-np.sort(-vals, axis=1), expected)
    if values_only:
        assert cols is None
    else:
        np.testing.assert_array_equal(np.take_along_axis(S, cols, 1), vals)
        assert all(len(set(row)) == K for row in cols)


def test_threshold_falls_back_when_ties_pass():
    from skvrf.neighbors._select import select, threshold_cap

    S = np.ones((3, 4000), dtype=np.float32)  # every value ties with t
    vals, _ = select(S.copy(), 5, values_only=True, method=("threshold", 64))
    assert threshold_cap(5) < 4000
    np.testing.assert_array_equal(vals, np.ones((3, 5)))


@pytest.mark.parametrize(
    "n,K,values_only,expected",
    [
        (800, 300, True, "partition"),  # a large k on a small bank
        (800, 1, True, "max"),
        (100_000, 10, True, "grouped"),
        (40_000, 2048, True, "threshold"),
        (40_000, 100, False, "grouped"),
        (800, 300, False, "partition"),
    ],
)
def test_cost_model_choices(n, K, values_only, expected):
    from skvrf.neighbors._select import choose

    assert choose(n, K, values_only)[0] == expected


@pytest.mark.parametrize("k", [1, 5, 150, 299, 300])
def test_kth_small_bank_large_k(k):
    """The shapes that were slower than GEMM + np.partition: a bank of a few
    hundred rows, k a large fraction of it, many queries; the k-th value and
    a sequence of ranks through every chunking."""
    rng = np.random.default_rng(20)
    queries, bank = unit(rng, 300, 24), unit(rng, 300, 24)
    ref = ref_sorted(queries, bank)
    for kw in ({}, {"working_memory": 0.05}, {"n_jobs": 2}):
        assert_close(kth_neighbor_distances(queries, bank, k, **kw), ref[:, k - 1])
        ks = [1, k] if k > 1 else [1]
        got = kth_neighbor_distances(queries, bank, ks, **kw)
        assert_close(got, ref[:, np.array(ks) - 1])


def test_float16_bank_cast_block_by_block():
    """A float16 bank is cast to float32 one block at a time: the result is
    that of the float32 copy (the cast is exact) and, when the bank does not
    fit the working memory, no allocation holds a float32 copy of it."""
    rng = np.random.default_rng(21)
    bank16 = unit(rng, 6000, 64, np.float16)
    queries = unit(rng, 50, 64)
    ref = kth_neighbor_distances(queries, bank16.astype(np.float32), [1, 10, 60])
    wm = 0.25  # MiB; the float32 copy would take 1.5 MiB
    tracemalloc.start()
    try:
        got = kth_neighbor_distances(queries, bank16, [1, 10, 60], working_memory=wm)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The cast is exact, but BLAS may round a block's dot products differently
    # from the whole matrix's (another kernel for another shape): 2 - 2 q.b
    # with a float32 sum of 64 products is within 2 * 64 * eps32 / 2 of exact.
    f32_sum = 64 * np.finfo(np.float32).eps
    np.testing.assert_allclose(got, ref, rtol=0, atol=f32_sum)
    assert peak < 0.5 * bank16.size * 4
    assert peak <= wm * 2**20 + got.nbytes + 2**16
    dist, _ = kneighbors(queries, bank16, 7, working_memory=wm)
    ref_dist = kneighbors(queries, bank16.astype(np.float32), 7)[0]
    np.testing.assert_allclose(dist, ref_dist, rtol=0, atol=f32_sum)


def test_worker_errors_reach_the_caller(monkeypatch, data):
    from skvrf.neighbors import _numpy

    queries, bank = data

    def boom(self, q):
        raise RuntimeError("boom in a worker")

    monkeypatch.setattr(_numpy.NumpyEngine, "topk", boom)
    with pytest.raises(RuntimeError, match="boom in a worker"):
        kth_neighbor_distances(queries, bank, 3, n_jobs=2, working_memory=0.01)


def test_small_searches_leave_blas_threads_as_they_were(data):
    from skvrf.neighbors._dispatch import _blas_threads

    queries, bank = data
    before = _blas_threads()
    kth_neighbor_distances(queries, bank, 3)
    kth_neighbor_distances(np.repeat(queries, 40, axis=0), bank, 3)
    assert _blas_threads() == before


# ------------------------------------------------------- float16 bank memory

_RSS_PROBE = r"""
import ctypes, json, sys, types
import numpy as np

# skvrf.neighbors alone, without skvrf/__init__ (which imports scikit-learn)
package = types.ModuleType("skvrf")
package.__path__ = [sys.argv[1]]
sys.modules["skvrf"] = package
from skvrf.neighbors import kth_neighbor_distances

n, d, m, wm = map(int, sys.argv[2:6])
kwargs = json.loads(sys.argv[6])


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024


rng = np.random.default_rng(0)
banks = {dt: np.empty((n, d), dtype=dt) for dt in ("float32", "float16")}
for s in range(0, n, 2048):  # small pieces: no transient above the final RSS
    x = rng.standard_normal((min(2048, n - s), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for bank in banks.values():
        bank[s : s + len(x)] = x
queries = rng.standard_normal((m, d)).astype(np.float32)
queries /= np.linalg.norm(queries, axis=1, keepdims=True)
for bank in banks.values():  # warm up: imports, caches, thread pools
    kth_neighbor_distances(queries[:50], bank[:3000], 5, working_memory=wm, **kwargs)
libc = ctypes.CDLL("libc.so.6")
extra = {}
for dt, bank in banks.items():
    libc.malloc_trim(0)  # freed memory back to the system: a fair start
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS (VmHWM) restarts from the current RSS
    base = status("VmRSS")
    kth_neighbor_distances(queries, bank, 10, working_memory=wm, **kwargs)
    extra[dt] = status("VmHWM") - base
print(json.dumps(extra))
"""


def rss_extra(n: int, d: int, m: int, wm: int, **kwargs) -> dict:
    """Peak RSS above the level before one call, float32 then float16 bank
    of the same rows, in a fresh process."""
    import json

    import skvrf

    args = [os.path.dirname(skvrf.__file__), str(n), str(d), str(m), str(wm)]
    args.append(json.dumps(kwargs))
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _can_reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _can_reset_peak_rss(), reason="needs Linux /proc peak RSS")
@pytest.mark.parametrize("screen", [False, True])
def test_float16_bank_peak_rss(screen):
    """Peak RSS of a search with a float16 bank (RSS sees torch's allocations
    too): no higher than with the same bank in float32 at the same
    working_memory (4 MiB of slack for the allocator), and under half the
    size of a float32 copy of the bank; for the float32 engine and for the
    bfloat16 screen."""
    if screen:
        pytest.importorskip("torch")
    n, d, m, wm = 80_000, 128, 400, 4
    copy32 = n * d * 4  # 41 MB
    extra = rss_extra(n, d, m, wm, screen=screen)
    extra16, extra32 = extra["float16"], extra["float32"]
    assert extra16 < 0.5 * copy32, (extra16, extra32)
    assert extra16 <= extra32 + 4 * 2**20, (extra16, extra32)


# ------------------------------------------------- bfloat16 screening (CPU)


def _gamma(d):
    return d * 2.0**-24 / (1 - d * 2.0**-24)


def _clustered(rng, n_queries, n_bank, d, k, gap):
    """Bank rows whose products with each query crowd around the k-th
    largest: the top 3k products are ``0.6 + gap * j`` (j a permutation),
    their gaps far below the screening margin (about 4e-3) and far above
    float32 rounding; the rest spread below."""
    queries = unit(rng, n_queries, d, np.float64)
    bank = unit(rng, n_bank, d, np.float64)
    q = queries[0]
    close = 0.6 + gap * rng.permutation(3 * k)
    ortho = bank[: 3 * k] - np.outer(bank[: 3 * k] @ q, q)
    ortho /= np.linalg.norm(ortho, axis=1, keepdims=True)
    bank[: 3 * k] = close[:, None] * q + np.sqrt(1 - close**2)[:, None] * ortho
    queries[1:3] = q + 1e-4 * unit(rng, 2, d, np.float64)  # near-duplicate queries
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries.astype(np.float32), bank.astype(np.float32)


def _screen_cases():
    rng = np.random.default_rng(30)
    q, b = unit(rng, 40, 64), unit(rng, 3000, 64)
    yield "random", q, b
    q, b = _clustered(rng, 12, 2500, 64, 40, gap=2e-5)
    yield "clustered", q, b
    base = unit(rng, 300, 64)
    ties = np.concatenate([base, base, base[:100], base])  # exact duplicates
    yield "ties", np.concatenate([base[:10], unit(rng, 10, 64)]), ties
    near = np.repeat(base[:50], 30, axis=0) + 1e-4 * rng.standard_normal((1500, 64))
    near = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    yield "near-duplicates", base[:20], near


@pytest.mark.parametrize("case", list(range(4)))
def test_screened_search_is_exact(case):
    """bfloat16 screening + float32 re-ranking returns the float64 oracle's
    k-th distances (to float32 rounding: 4 gamma_d) on adversarial data,
    whole-bank and split into blocks, float32 and float16 banks, kth and
    kneighbors; and agrees with the float32 engine."""
    pytest.importorskip("torch")
    name, queries, bank = list(_screen_cases())[case]
    d = bank.shape[1]
    tol = 8 * _gamma(d)
    ks = [1, 7, 40, 120]
    from skvrf.neighbors._screen import ScreenEngine

    for b in (bank, bank.astype(np.float16)):
        full = ref_sorted(queries, b)
        ref = full[:, np.array(ks) - 1]
        f32 = kth_neighbor_distances(queries, b, ks, screen=False)
        got = kth_neighbor_distances(queries, b, ks, screen=True)
        np.testing.assert_allclose(got, ref, atol=tol, rtol=0, err_msg=name)
        np.testing.assert_allclose(got, f32, atol=tol, rtol=0, err_msg=name)
        dist, ind = kneighbors(queries, b, 40, screen=True)
        np.testing.assert_allclose(dist, full[:, :40], atol=tol, err_msg=name)
        exact = 2 - 2 * np.einsum(
            "ij,ikj->ik", queries.astype(np.float64), b[ind].astype(np.float64)
        )
        np.testing.assert_allclose(dist, np.clip(exact, 0, 4), atol=tol, rtol=0)
        assert all(len(set(row)) == 40 for row in ind)
        # several bank blocks (the running threshold) and small inner chunks
        for values_only in (True, False):
            engine = ScreenEngine(
                b, 120, len(b) // 3 + 1, values_only=values_only, inner_rows=7
            )
            vals, cols = engine.topk(queries)
            d = np.sort(np.clip(2 - 2 * vals.astype(np.float64), 0, 4), axis=1)
            np.testing.assert_allclose(d, full[:, :120], atol=tol, err_msg=name)
            if cols is not None:
                rows_found = b[cols].astype(np.float64)
                prods = np.einsum("ij,ikj->ik", queries.astype(np.float64), rows_found)
                np.testing.assert_allclose(vals, prods, atol=tol / 2)
                assert all(len(set(row)) == 120 for row in cols)


def test_screening_screens_and_falls_back():
    """On random data almost every product is screened out (few pairs
    recomputed, no row computed in float32); heavy ties send rows to the
    float32 fallback."""
    pytest.importorskip("torch")
    from skvrf.neighbors._screen import ScreenEngine

    rng = np.random.default_rng(31)
    queries, bank = unit(rng, 50, 128), unit(rng, 4000, 128)
    engine = ScreenEngine(bank, 10, 4000, values_only=True)
    values, _ = engine.topk(queries)
    ref = -np.sort(-(queries.astype(float) @ bank.T.astype(float)), axis=1)[:, :10]
    np.testing.assert_allclose(-np.sort(-values, axis=1), ref, atol=4 * _gamma(128))
    assert engine.stats["fallback_rows"] == 0
    assert engine.stats["pairs"] < 0.05 * bank.shape[0] * len(queries)
    same = np.repeat(bank[:1], 4000, axis=0)  # every product ties
    engine = ScreenEngine(same, 10, 4000, values_only=True)
    values, _ = engine.topk(queries)
    assert engine.stats["fallback_rows"] == len(queries)
    expected = np.repeat(queries @ bank[0], 10).reshape(-1, 10)
    np.testing.assert_allclose(values, expected, atol=4 * _gamma(128))


def test_screening_error_bound_holds():
    """|bf16 product - float32 product| <= M + one bfloat16 step, for every
    pair, on random rows and on rows of very unequal components."""
    torch = pytest.importorskip("torch")
    from skvrf.neighbors._screen import (
        bf16_bits,
        bf16_values,
        error_bound_terms,
        margins,
    )

    rng = np.random.default_rng(32)
    for scale in (None, 1e3):
        Q, B = unit(rng, 64, 256), unit(rng, 500, 256)
        if scale:
            Q[:, :4] *= scale  # a few dominant components
            Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        qb, bb = bf16_bits(Q), bf16_bits(B)
        S = torch.mm(
            torch.from_numpy(qb).view(torch.bfloat16),
            torch.from_numpy(bb).view(torch.bfloat16).T,
        )
        screened = bf16_values(S.view(torch.int16).numpy()).astype(np.float64)
        exact = Q @ B.T  # float32 products
        M = margins(error_bound_terms(Q, qb), error_bound_terms(B, bb).max(0), 256)
        step = np.abs(screened) * 2.0**-7
        assert np.all(np.abs(screened - exact) <= M[:, None] + step)
        assert 1e-4 < M.max() < 2e-2  # about 2**-8 for unit rows


def test_bf16_rounding_is_to_nearest_even():
    torch = pytest.importorskip("torch")
    from skvrf.neighbors._screen import bf16_bits, bf16_values

    rng = np.random.default_rng(33)
    x = np.concatenate(
        [
            rng.standard_normal(10000).astype(np.float32),
            np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 0.0, -0.0], np.float32),
        ]
    )
    ours = bf16_values(bf16_bits(x[None, :]))[0]
    theirs = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(ours, theirs)


def test_screen_threshold_rounds_down():
    from skvrf.neighbors._screen import bf16_values, thresholds

    rng = np.random.default_rng(34)
    E = rng.uniform(0.01, 1, 1000).astype(np.float32)
    M = rng.uniform(0, 0.005, 1000)
    keys = thresholds(E, M)
    theta = bf16_values(keys).astype(np.float64)
    assert np.all(theta <= E.astype(np.float64) - M)
    assert np.all(theta > (E - M) * (1 - 2.0**-7))  # the bfloat16 just below
    assert np.all(thresholds(np.float32([0.001, -0.5]), np.array([0.01, 0.0])) == 0)


def test_screen_option_errors(data):
    queries, bank = data
    with pytest.raises(ValueError, match="float64"):
        kth_neighbor_distances(queries, bank.astype(np.float64), 3, screen=True)
    if importlib.util.find_spec("faiss") is not None:
        with pytest.raises(ValueError, match="cannot screen"):
            kth_neighbor_distances(queries, bank, 3, backend="faiss", screen=True)
    with pytest.raises(ValueError, match="screen must be"):
        kth_neighbor_distances(queries, bank, 3, screen="yes")


def test_auto_screens_only_where_calibration_says(monkeypatch):
    pytest.importorskip("torch")
    from skvrf.neighbors import _calibrate

    cal = dict(f32=10.0, bf16=4.0, pair=200.0, exact=True)
    monkeypatch.setattr(_calibrate, "calibrate", lambda d: cal)
    monkeypatch.setattr(_calibrate, "cpu_bf16_flags", lambda: frozenset({"amx"}))
    assert _calibrate.prefer_screen(8000, 40_000, 512, 100, True)
    assert not _calibrate.prefer_screen(8000, 800, 512, 300, True)  # k ~ bank
    assert not _calibrate.prefer_screen(10, 40_000, 512, 100, True)  # small
    monkeypatch.setitem(cal, "bf16", 9.0)  # bfloat16 barely faster
    assert not _calibrate.prefer_screen(8000, 40_000, 512, 100, True)
    monkeypatch.setitem(cal, "bf16", 4.0)
    monkeypatch.setitem(cal, "exact", False)  # kernel failed its check
    assert not _calibrate.prefer_screen(8000, 40_000, 512, 100, True)
    monkeypatch.setenv("SKVRF_SCREEN", "0")
    monkeypatch.setitem(cal, "exact", True)
    assert not _calibrate.prefer_screen(8000, 40_000, 512, 100, True)
    monkeypatch.delenv("SKVRF_SCREEN")
    monkeypatch.setattr(_calibrate, "cpu_bf16_flags", lambda: frozenset())
    assert not _calibrate.prefer_screen(8000, 40_000, 512, 100, True)


def test_calibration_is_cached_and_checks_the_kernel():
    pytest.importorskip("torch")
    from skvrf.neighbors import _calibrate

    a = _calibrate.calibrate(32)
    assert _calibrate.calibrate(32) is a
    assert a["exact"] and a["bf16"] > 0 and a["f32"] > 0 and a["pair"] > 0


@pytest.mark.parametrize("case", list(range(4)))
def test_torch_screened_search_is_exact(case):
    """The torch-operations screen (the CUDA path, run here on the CPU) on the
    same adversarial data: float64 oracle, float32 and float16 banks, kth
    and kneighbors, one and several bank blocks."""
    pytest.importorskip("torch")
    from skvrf.neighbors._torch_screen import TorchScreenEngine

    name, queries, bank = list(_screen_cases())[case]
    tol = 8 * _gamma(bank.shape[1])
    for b in (bank, bank.astype(np.float16)):
        full = ref_sorted(queries, b)
        got = kth_neighbor_distances(
            queries, b, [1, 7, 40], backend="torch", screen=True
        )
        np.testing.assert_allclose(got, full[:, [0, 6, 39]], atol=tol, err_msg=name)
        dist, ind = kneighbors(queries, b, 40, backend="torch", screen="bfloat16")
        np.testing.assert_allclose(dist, full[:, :40], atol=tol, err_msg=name)
        assert all(len(set(row)) == 40 for row in ind)
        engine = TorchScreenEngine(b, 40, len(b) // 3 + 1, device="cpu")
        vals, cols = engine.topk(queries)
        d = np.sort(np.clip(2 - 2 * vals.astype(np.float64), 0, 4), axis=1)
        np.testing.assert_allclose(d, full[:, :40], atol=tol, err_msg=name)
        prods = np.einsum("ij,ikj->ik", queries.astype(float), b[cols].astype(float))
        np.testing.assert_allclose(vals, prods, atol=tol / 2)
    if name == "random":
        assert engine.stats["fallback_rows"] == 0
        assert engine.stats["pairs"] < 0.2 * len(queries) * len(bank)


def test_tf32_screen_needs_cuda(data):
    torch = pytest.importorskip("torch")
    queries, bank = data
    with pytest.raises(ValueError, match="CUDA"):
        kth_neighbor_distances(queries, bank, 3, screen="tf32")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            kth_neighbor_distances(queries, bank, 3, backend="torch", screen="tf32")
