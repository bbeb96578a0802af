"""The GPU path on the CPU: the bank goes to a device once per fitted
estimator (a PreparedBank), and torch tensors of queries are searched where
they are (issue 25, items 1 and 2; the CUDA measurements are pending)."""

import copy
import pickle

import numpy as np
import pytest
from sklearn import config_context
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skvrf import SelectiveEnsembleClassifier, VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.neighbors import PreparedBank, kneighbors, kth_neighbor_distances

D = 32
# Two float32 computations of 2 - 2 q.b for unit rows of D features (queries
# normalised by torch or by scikit-learn, products summed in another order)
# differ by at most about 2 * (2 D u), u = 2**-24 the unit roundoff: D u from
# each dot product's summation, D/2 u from each normalisation.
TOL = 4 * D * 2.0**-24


def unit(rng, n, d=D, dtype=np.float32):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def transfers(monkeypatch, torch):
    """Count the copies of a bank to a device (``_torch.to_device``)."""
    from skvrf.neighbors import _torch

    calls = []
    real = _torch.to_device

    def counting(torch_, bank, device):
        calls.append((bank.shape, str(device)))
        return real(torch_, bank, device)

    monkeypatch.setattr(_torch, "to_device", counting)
    return calls


# ------------------------------------------------------------ PreparedBank
def test_prepared_bank_computes_as_the_array():
    rng = np.random.default_rng(0)
    bank, queries = unit(rng, 300), unit(rng, 40)
    prepared = PreparedBank(bank)
    assert prepared.array is bank and prepared.shape == bank.shape
    for backend in ("numpy", "torch", "faiss"):
        if backend != "numpy":
            pytest.importorskip(backend)
        ref = kth_neighbor_distances(queries, bank, [1, 7], backend=backend)
        got = kth_neighbor_distances(queries, prepared, [1, 7], backend=backend)
        np.testing.assert_array_equal(got, ref)
        d, _ = kneighbors(queries, prepared, 5, backend=backend)
        d_ref, _ = kneighbors(queries, bank, 5, backend=backend)
        np.testing.assert_array_equal(d, d_ref)


def test_prepared_bank_is_validated_once_and_checked_against_queries():
    with pytest.raises(ValueError, match="NaN or infinity"):
        PreparedBank(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="empty"):
        PreparedBank(np.empty((0, 3)))
    prepared = PreparedBank(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="features"):
        kth_neighbor_distances(np.ones((2, 4)), prepared, 1)
    with pytest.raises(ValueError, match="larger than the bank"):
        kth_neighbor_distances(np.ones((2, 3)), prepared, 4)


def test_one_transfer_per_call_and_none_once_prepared(transfers, torch, monkeypatch):
    from skvrf.neighbors import _torch

    chunks = []
    real_topk = _torch.TorchEngine.topk

    def topk(self, queries):
        chunks.append(len(queries))
        return real_topk(self, queries)

    monkeypatch.setattr(_torch.TorchEngine, "topk", topk)
    rng = np.random.default_rng(1)
    bank, queries = unit(rng, 500), unit(rng, 300)
    kw = dict(backend="torch", working_memory=0.04)  # several query chunks
    ref = kth_neighbor_distances(queries, bank, 5, **kw)
    assert len(chunks) > 2
    assert len(transfers) == 1  # per call, never per chunk
    prepared = PreparedBank(bank)
    got = kth_neighbor_distances(queries, prepared, 5, **kw)
    assert len(transfers) == 2
    got2 = kth_neighbor_distances(queries, prepared, 5, **kw)
    kneighbors(queries, prepared, 3, **kw)
    # the screened torch engine reads the same device copy
    screened = kth_neighbor_distances(
        queries, prepared, 5, screen=True, backend="torch"
    )
    assert len(transfers) == 2
    assert prepared.cached_keys() == [("host",), ("torch", "cpu", "float32")]
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got2, ref)
    np.testing.assert_allclose(screened, ref, rtol=0, atol=TOL)
    prepared.clear()
    kth_neighbor_distances(queries, prepared, 5, **kw)
    assert len(transfers) == 3


def test_prepared_bank_pickles_without_its_copies(transfers, torch):
    rng = np.random.default_rng(2)
    prepared = PreparedBank(unit(rng, 50))
    kth_neighbor_distances(unit(rng, 4), prepared, 2, backend="torch")
    assert prepared.cached_keys()
    loaded = pickle.loads(pickle.dumps(prepared))
    assert loaded.cached_keys() == []
    np.testing.assert_array_equal(loaded.array, prepared.array)


# ------------------------------------------------------- fitted estimators
def _data(seed=0, n=1500, n_classes=5):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, D))
    y = rng.integers(0, n_classes, n)
    X = (centers[y] + rng.normal(scale=1.5, size=(n, D))).astype(np.float32)
    zs = ZeroShotClassifier(centers + rng.normal(scale=1.0, size=centers.shape))
    return X, y, zs


def _vrf(knn_backend="torch", **kw):
    X, y, zs = _data()
    vrf = VRFEnsembleClassifier(
        zs,
        LogisticRegression(max_iter=300),
        knn_backend=knn_backend,
        threshold=1.0,
        calibrate=False,
        k=3,
        **kw,
    )
    return vrf.fit(X, y), X


def test_vrf_bank_goes_to_the_device_once(transfers, torch):
    vrf, X = _vrf()
    assert len(transfers) <= 1  # fit's threshold check made the copy
    fitted = len(transfers)
    with config_context(working_memory=0.05):
        n_chunks = len(list(vrf.iter_component_outputs(X)))
        assert n_chunks > 5
        p = vrf.predict_proba(X)
        assert len(transfers) == fitted  # zero: cached since fit
        vrf.predict(X[:7])
        vrf.zsf_distances(X)
        vrf.zsf_neighbors(X[:5])
        assert len(transfers) == fitted
        # a with_params copy shares the bank, hence its device copy
        vrf.with_params(threshold=0.5).predict_proba(X)
        assert len(transfers) == fitted
        # pickles and deep copies leave the cache out: made again on first
        # use, once for the whole predict call, then kept
        for other in (pickle.loads(pickle.dumps(vrf)), copy.deepcopy(vrf)):
            assert "_bank_cache" not in vars(other)
            before = len(transfers)
            np.testing.assert_array_equal(other.predict_proba(X), p)
            assert len(transfers) == before + 1
            other.predict_proba(X)
            assert len(transfers) == before + 1
    assert "_bank_cache" in vars(vrf)
    assert "_bank_cache" not in vrf.__getstate__()


def test_vrf_cache_follows_the_bank(torch):
    vrf, X = _vrf()
    ref = vrf.zsf_distances(X[:50])
    cache = vrf._bank_cache
    assert cache.source is vrf.zsf_embeddings_
    # another bank (an edited model): the cache is made again from it
    vrf.zsf_embeddings_ = vrf.zsf_embeddings_[::2].copy()
    vrf.zsf_indices_ = vrf.zsf_indices_[::2]
    Q = X[:50] / np.linalg.norm(X[:50], axis=1, keepdims=True)
    expected = kth_neighbor_distances(Q, vrf.zsf_embeddings_, vrf.k_, backend="numpy")
    got = vrf.zsf_distances(X[:50])
    assert vrf._bank_cache is not cache
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    assert not np.allclose(got, ref)
    # a refit drops the old cache (and its device copies)
    old = vrf._bank_cache
    Xf, yf, _ = _data(seed=3)
    vrf.fit(Xf, yf)
    assert vrf._bank_cache is not old
    assert vrf._bank_cache.source is vrf.zsf_embeddings_


def test_vrf_predict_leaves_dict_unchanged():
    vrf, X = _vrf(knn_backend="numpy")
    state = dict(vars(vrf))
    vrf.predict_proba(X[:20])
    assert vars(vrf) == state  # scikit-learn's check_dict_unchanged


def test_saved_model_has_no_cache(tmp_path):
    pytest.importorskip("skops")
    from skvrf.persistence import load_model, save_model

    vrf, X = _vrf(knn_backend="numpy")
    assert "_bank_cache" in vars(vrf)
    save_model(vrf, tmp_path / "vrf.skops")
    loaded = load_model(tmp_path / "vrf.skops")
    assert "_bank_cache" not in vars(loaded)
    np.testing.assert_array_equal(
        loaded.predict_proba(X[:30]), vrf.predict_proba(X[:30])
    )
    assert loaded._bank_cache.source is loaded.zsf_embeddings_


def test_selective_knn_bank_is_cached(transfers, torch):
    X, y, zs = _data()
    sel = SelectiveEnsembleClassifier(
        zs, LogisticRegression(max_iter=300), id_score="knn", knn_backend="torch"
    ).fit(X, y)
    assert sel._bank_cache.source is sel.bank_
    before = len(transfers)
    with config_context(working_memory=0.05):
        sel.predict_proba(X)
        sel.id_scores(X)
    assert len(transfers) == before
    assert "_bank_cache" not in pickle.loads(pickle.dumps(sel)).__dict__


# ------------------------------------------------------------ tensors in
def _tensor_cases(torch, X):
    """(name, tensor, the NumPy array it stands for)."""
    t = torch.from_numpy(X)
    wide = torch.from_numpy(np.repeat(X, 2, axis=1))
    cases = [
        ("float32", t.clone(), X),
        ("float16", t.half(), X.astype(np.float16)),
        ("one row", t[3:4].clone(), X[3:4]),
        ("requires grad", t.clone().requires_grad_(True), X),
        ("non-contiguous", wide[:, ::2], X),
        ("transposed", t.T.contiguous().T, X),
        ("bfloat16", t.bfloat16(), t.bfloat16().float().numpy()),
    ]
    assert not cases[4][1].is_contiguous() and not cases[5][1].is_contiguous()
    return cases


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_kth_neighbor_distances_takes_tensors(backend, torch, monkeypatch):
    from skvrf.neighbors import _dispatch

    rng = np.random.default_rng(4)
    bank, queries = unit(rng, 400), unit(rng, 60)
    prepared = PreparedBank(bank)
    if backend == "torch":  # the queries are never made NumPy on this path

        def no_host_copy(x):
            raise AssertionError("the queries were copied to the host")

        monkeypatch.setattr(_dispatch, "to_numpy", no_host_copy)
    for name, t, ref_queries in _tensor_cases(torch, queries):
        ref = kth_neighbor_distances(ref_queries, bank, [1, 5], backend="numpy")
        for b in (bank, prepared):
            got = kth_neighbor_distances(
                t, b, [1, 5], backend=backend, working_memory=0.3
            )
            assert isinstance(got, np.ndarray) and got.dtype == np.float64, name
            np.testing.assert_allclose(got, ref, rtol=0, atol=TOL, err_msg=name)
        d, _ = kneighbors(t, prepared, 4, backend=backend)
        d_ref, _ = kneighbors(ref_queries, bank, 4, backend="numpy")
        np.testing.assert_allclose(d, d_ref, rtol=0, atol=TOL, err_msg=name)
    if backend == "torch":
        t = torch.from_numpy(queries)
        got = kth_neighbor_distances(t, prepared, 5, backend="torch", screen=True)
        ref = kth_neighbor_distances(queries, bank, 5, backend="numpy")
        np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_tensor_on_an_accelerator_is_searched_there(torch, monkeypatch):
    """A tensor on a device other than the CPU makes "auto" the torch backend
    on that device; on the CPU that path runs by calling the CPU one."""
    from skvrf.neighbors import _dispatch, _torch
    from skvrf.utils._tensors import is_torch_tensor, on_accelerator

    assert not on_accelerator(torch.zeros(2, 2))
    assert on_accelerator(torch.zeros(2, 2, device="meta"))
    assert not on_accelerator(np.zeros((2, 2)))
    monkeypatch.setattr(_dispatch, "on_accelerator", is_torch_tensor)
    devices = []
    real = _torch.TorchEngine._setup

    def setup(self, *args, **kwargs):
        devices.append(kwargs.get("device"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(_torch.TorchEngine, "_setup", setup)
    rng = np.random.default_rng(5)
    bank, queries = unit(rng, 100), unit(rng, 10)
    got = kth_neighbor_distances(torch.from_numpy(queries), bank, 3)
    assert devices == [torch.device("cpu")]
    ref = kth_neighbor_distances(queries, bank, 3, backend="numpy")
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_tensor_queries_are_validated(torch):
    bank = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="NaN or infinity"):
        kth_neighbor_distances(torch.tensor([[np.nan, 0.0, 1.0]]), bank, 1)
    with pytest.raises(ValueError, match="NaN or infinity"):
        big = torch.full((2, 3), 6e4, dtype=torch.float16)
        big[1, 1] = float("inf")
        kth_neighbor_distances(big, bank, 1, backend="torch")
    with pytest.raises(ValueError, match="2-D"):
        kth_neighbor_distances(torch.ones(3), bank, 1)
    with pytest.raises(TypeError, match="real"):
        kth_neighbor_distances(torch.ones(2, 3, dtype=torch.complex64), bank, 1)
    with pytest.raises(ValueError, match="features"):
        kth_neighbor_distances(torch.ones(2, 4), bank, 1, backend="torch")
    # finite values whose float16 sum overflows are fine
    ok = torch.full((4, 3), 6e4, dtype=torch.float16)
    assert kth_neighbor_distances(ok, bank, 1, backend="torch").shape == (4,)


@pytest.mark.parametrize("knn_backend", ["numpy", "torch"])
def test_vrf_takes_tensors(knn_backend, torch, monkeypatch):
    from skvrf.neighbors import _dispatch

    vrf, X = _vrf(knn_backend=knn_backend)
    Xt = X[:200]
    if knn_backend == "torch":  # the distances never see a host copy

        def no_host_copy(x):
            raise AssertionError("the embedding was copied to the host")

        monkeypatch.setattr(_dispatch, "to_numpy", no_host_copy)
    with config_context(working_memory=0.05):  # several chunks of a tensor
        for name, t, ref_X in _tensor_cases(torch, Xt):
            for method in ("predict_proba", "ensemble_weights", "zsf_distances"):
                got = getattr(vrf, method)(t)
                ref = getattr(vrf, method)(ref_X)
                assert isinstance(got, np.ndarray), (name, method)
                np.testing.assert_allclose(
                    got, ref, rtol=0, atol=TOL, err_msg=f"{name} {method}"
                )
            np.testing.assert_array_equal(vrf.predict(t)[:1], vrf.predict(ref_X)[:1])


def test_vrf_with_a_transformer_embedding_takes_tensors(torch):
    X, y, zs = _data()
    ft = make_pipeline(PCA(8, random_state=0), LogisticRegression(max_iter=300))
    vrf = VRFEnsembleClassifier(
        zs, ft, knn_backend="torch", threshold=1.0, calibrate=False, k=3
    ).fit(X, y)
    t = torch.from_numpy(X[:100]).requires_grad_(True)
    np.testing.assert_allclose(
        vrf.predict_proba(t), vrf.predict_proba(X[:100]), rtol=0, atol=TOL
    )


def test_selective_takes_tensors(torch):
    X, y, zs = _data()
    for id_score in ("knn", "mahalanobis", "msp"):
        sel = SelectiveEnsembleClassifier(
            zs, LogisticRegression(max_iter=300), id_score=id_score
        ).fit(X, y)
        t = torch.from_numpy(X[:100]).requires_grad_(True)
        np.testing.assert_array_equal(sel.predict_proba(t), sel.predict_proba(X[:100]))
