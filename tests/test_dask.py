"""Scale-out with Dask: joblib's ``dask`` backend gives single-process results.

A loopback ``LocalCluster`` (two single-threaded workers, in-process, no
dashboard) runs a ``GridSearchCV`` over VRF and the out-of-fold calibration fits
of a VRF (``n_jobs=2``); both must equal the single-process results. The k-NN
distance chunks are not shipped to workers: they run on threads of the calling
process (``Parallel(require="sharedmem")`` in ``skvrf.neighbors._dispatch``).
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier

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


def test_grid_search_on_dask_equals_single_process(client):
    local = _search(n_jobs=None).fit(X, Y)
    with joblib.parallel_backend("dask"):
        remote = _search(n_jobs=2).fit(X, Y)
    assert remote.best_params_ == local.best_params_
    # accuracy: means of 0/1 scores, equal unless a prediction flips, which
    # needs two classes within F32_PROBA_ATOL of each other
    assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )
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
