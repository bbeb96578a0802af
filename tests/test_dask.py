"""Scale-out with Dask: joblib's ``dask`` backend gives single-process results.

A loopback ``LocalCluster`` (two single-threaded workers, in-process, no
dashboard) runs a ``GridSearchCV`` over VRF and the out-of-fold calibration fits
of a VRF (``n_jobs=2``); both must equal the single-process results. The k-NN
distance chunks are not shipped to workers: they run on threads of the calling
process (``Parallel(require="sharedmem")`` in ``skvrf.neighbors._dispatch``).

``skvrf.parallel`` predicts dask arrays and dataframes partition by partition on
the same cluster, the model scattered to each worker once (counted), and
``skvrf predict --scheduler`` writes the same Parquet shards as a local run.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.utils._testing import assert_same_search

distributed = pytest.importorskip("dask.distributed")
joblib = pytest.importorskip("joblib")

RNG = np.random.default_rng(0)
CENTERS = RNG.normal(size=(4, 10))
Y = RNG.integers(0, 4, 160)
X = CENTERS[Y] + RNG.normal(scale=1.0, size=(160, 10))
ZS = ZeroShotClassifier(CENTERS + RNG.normal(scale=0.6, size=CENTERS.shape))
GRID = {"threshold": [1.0, 1.5], "k": [1, 3]}

# Tolerances from the arithmetic. The k-NN distances d = 2 - 2 q.b come from
# float32 dot products of unit rows of n = 10 features, each within n u of the
# exact value (u = 2**-24), and the rounding does change with the query chunking
# (n_jobs=2 splits the rows between threads, and BLAS sums another GEMM shape in
# another order): two runs differ by |dd| <= 2 * 2 n u = 2.4e-6. The sigmoid
# weight moves by at most |dd| / (4 temperature), temperature 0.6, and a
# probability-mixed P by at most as much as the weight: 1e-6.
F32_PROBA_ATOL = 2 * 2 * 10 * 2.0**-24 / (4 * 0.6)
# Out-of-fold logits and their temperatures: float64, the same fits on the same
# folds in any process, no float32 and no thread-dependent sum: tight.
F64_RTOL = 1e-12


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp://",  # the in-process "inproc://" transport takes no host
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _vrf(**kw):
    return VRFEnsembleClassifier(
        ZS, LogisticRegression(max_iter=500), calibration_cv=2, random_state=0, **kw
    )


def _search(n_jobs):
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    return GridSearchCV(_vrf(), GRID, cv=cv, n_jobs=n_jobs)


@pytest.mark.slow
def test_grid_search_on_dask_equals_single_process(client):
    local = _search(n_jobs=None).fit(X, Y)
    with joblib.parallel_backend("dask"):
        remote = _search(n_jobs=2).fit(X, Y)
    # a prediction flips only for two classes within F32_PROBA_ATOL
    assert_same_search(remote, local)
    assert_allclose(
        remote.predict_proba(X), local.predict_proba(X), rtol=0, atol=F32_PROBA_ATOL
    )
    # the search ran on the cluster's workers
    assert sum(client.run(lambda: 1).values()) == 2


def test_out_of_fold_calibration_on_dask_equals_single_process(client):
    local = _vrf().fit(X, Y)
    with joblib.parallel_backend("dask"):
        remote = _vrf(n_jobs=2).fit(X, Y)
        P_remote = remote.predict_proba(X)  # distance chunks: threads, here
    assert remote.calibration_temperatures_ == pytest.approx(
        local.calibration_temperatures_, rel=F64_RTOL
    )
    assert_array_equal(remote.zsf_indices_, local.zsf_indices_)
    # float32 distances in other chunks (threads): was atol=1e-12, observed 6.8e-9
    assert_allclose(P_remote, local.predict_proba(X), rtol=0, atol=F32_PROBA_ATOL)


# ------------------------------------------------- partition-wise prediction
# skvrf.parallel: each partition predicted in one pass on a worker, the model
# scattered to every worker once. The partitions are predicted in other chunks
# than the single-process call (float32 distances: F32_PROBA_ATOL above); the
# labels are equal unless two classes lie within that tolerance.
class _CountingVRF(VRFEnsembleClassifier):
    """A VRF that counts how often it is pickled (sent somewhere)."""

    pickles = 0

    def __getstate__(self):
        type(self).pickles += 1
        return super().__getstate__()


def _fitted(cls=VRFEnsembleClassifier):
    est = cls(ZS, LogisticRegression(max_iter=500), threshold=1.0, k=3,
              calibration_cv=2, random_state=0)  # fmt: skip
    return est.fit(X, Y)


def test_dask_array_prediction_equals_single_process(client):
    da = pytest.importorskip("dask.array")
    from skvrf import parallel

    est = _fitted()
    Xd = da.from_array(X, chunks=(40, 5))  # columns are gathered per partition
    assert_array_equal(parallel.predict(est, Xd).compute(), est.predict(X))
    assert_allclose(parallel.predict_proba(est, Xd).compute(), est.predict_proba(X),
                    rtol=0, atol=F32_PROBA_ATOL)  # fmt: skip
    assert_allclose(parallel.ensemble_weights(est, Xd).compute(),
                    est.ensemble_weights(X), rtol=0, atol=F32_PROBA_ATOL)  # fmt: skip
    d = parallel.zsf_distances(est, Xd).compute()
    assert_allclose(d, est.zsf_distances(X), rtol=0, atol=2 * 2 * 10 * 2.0**-24)


def test_dask_dataframe_prediction_equals_single_process(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from skvrf import parallel

    est = _fitted()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    frame["id"] = np.arange(len(X))
    ddf = dd.from_pandas(frame, npartitions=4)
    cols = [f"f{i}" for i in range(10)]
    pred = parallel.predict(est, ddf, columns=cols).compute()
    assert_array_equal(pred.sort_index().to_numpy(), est.predict(X))
    proba = parallel.predict_proba(est, ddf, columns=cols).compute().sort_index()
    assert list(proba.columns) == est.classes_.tolist()
    assert_allclose(proba.to_numpy(), est.predict_proba(X), rtol=0,
                    atol=F32_PROBA_ATOL)  # fmt: skip


def test_string_labels_and_empty_partitions(client):
    """Unsorted string class names; partitions a filter left empty (a dask
    array's boolean index, a dataframe's query) predict as empty columns."""
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    from skvrf import parallel

    names = np.array(["zebra", "ant", "yak", "cat"])
    zs = ZeroShotClassifier(ZS.class_embeddings, classes=names)
    est = VRFEnsembleClassifier(zs, LogisticRegression(max_iter=500),
                                threshold=1.0, k=3).fit(X, names[Y])  # fmt: skip
    keep = X[:, 0] > 0.5
    keep[:40] = False  # the first partition is left empty
    Xd = da.from_array(X, chunks=(40, 10))
    Xf = Xd[da.from_array(keep, chunks=40)]  # unknown chunk sizes
    assert_array_equal(parallel.predict(est, Xf).compute(), est.predict(X[keep]))
    proba = parallel.predict_proba(est, Xf).compute()
    assert_allclose(proba, est.predict_proba(X[keep]), rtol=0, atol=F32_PROBA_ATOL)
    w = parallel.ensemble_weights(est, Xf).compute()
    assert_allclose(w, est.ensemble_weights(X[keep]), rtol=0, atol=F32_PROBA_ATOL)
    cols = [f"f{i}" for i in range(10)]
    frame = pd.DataFrame(X, columns=cols)
    frame["id"] = np.arange(len(X))
    ddf = dd.from_pandas(frame, npartitions=4)
    ddf = ddf[ddf["id"] >= 40]  # the first partition is empty
    pred = parallel.predict(est, ddf, columns=cols).compute().sort_index()
    assert_array_equal(pred.to_numpy(), est.predict(X[40:]))
    proba = parallel.predict_proba(est, ddf, columns=cols).compute().sort_index()
    assert list(proba.columns) == est.classes_.tolist()
    assert_allclose(proba.to_numpy(), est.predict_proba(X[40:]), rtol=0,
                    atol=F32_PROBA_ATOL)  # fmt: skip


def test_the_model_is_sent_to_each_worker_once(client):
    da = pytest.importorskip("dask.array")
    from skvrf import parallel

    est = _fitted(_CountingVRF)
    _CountingVRF.pickles = 0
    lazy = parallel.predict(est, da.from_array(X, chunks=(10, 10)), client=client)
    sent = _CountingVRF.pickles  # the scatter: once per worker at most
    assert 1 <= sent <= 2 * len(client.scheduler_info()["workers"])
    assert lazy.numblocks[0] == 16
    lazy.compute()
    assert _CountingVRF.pickles == sent  # not once per task


def test_cli_predict_on_a_cluster_equals_local(client, tmp_path):
    pytest.importorskip("skops")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from skvrf.cli import main
    from skvrf.persistence import save_model

    save_model(_fitted(), tmp_path / "m.skops")
    (tmp_path / "store").mkdir()
    for part in range(3):  # a folder of Parquet shards
        rows = X[part * 50 : (part + 1) * 50].astype(np.float32)
        table = pa.table({"embedding": pa.array(rows.tolist()),
                          "label": Y[part * 50 : (part + 1) * 50]})  # fmt: skip
        pq.write_table(table, tmp_path / "store" / f"part-{part}.parquet")
    argv = ["predict", str(tmp_path / "m.skops"), "--features",
            str(tmp_path / "store"), "--weights", "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    address = client.scheduler.address
    assert main([*argv, "--out", str(tmp_path / "remote"), "--scheduler", address]) == 0
    for part in range(3):
        name = f"part-{part}.parquet"
        local = pq.read_table(tmp_path / "local" / name)
        remote = pq.read_table(tmp_path / "remote" / name)
        # the same shards in the same chunks: the same arithmetic
        assert remote.equals(local)
