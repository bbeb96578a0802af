"""Fitting chunk by chunk, and from a feature store.

``fit`` computes the components' outputs, the calibration temperatures' data and
VRF's Zero-Shot Failure set chunk by chunk (chunks sized by scikit-learn's
``working_memory``); :func:`skvrf.stores.fit_store` streams a store's chunks the
same way. Metamorphic relations: many chunks == one chunk, a store == its rows
in memory; and the components never see more rows at once than a chunk.
"""

import os
import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skvrf import (
    LinearHeadClassifier,
    OutputSpaceEnsembleClassifier,
    SelectiveEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf._calibration import (
    ChunkedTemperature,
    fit_confidence_temperature,
    fit_temperature,
)
from skvrf.io import FeatureFileError, open_store
from skvrf.stores import fit_store

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    pa = pq = None

needs_arrow = pytest.mark.skipif(pa is None, reason="needs pyarrow (skvrf[parquet])")

# float64 arithmetic summed in another order, and roots found by another
# method to ~1e-12 in log T: 1e-9 leaves room and still catches any real change
RTOL = 1e-9
TINY = 0.02  # MiB of working_memory: chunks of a few dozen rows here
N, D, C = 600, 8, 5
NAMES = np.array(["ant", "bee", "cat", "dog", "eel"])


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(C, D))
    y = rng.integers(0, C, n)
    X = (centers[y] + rng.normal(scale=1.0, size=(n, D))).astype(np.float32)
    text = centers + rng.normal(scale=0.8, size=(C, D))
    return X, NAMES[y], centers, text


def _heads(centers, text):
    zs = ZeroShotClassifier(text, classes=NAMES)
    ft = LinearHeadClassifier(2.0 * centers, np.zeros(C), classes=NAMES)
    return zs, ft.fit(np.zeros((1, D)))  # fitted: it may be frozen


class _Counting(LinearHeadClassifier):
    """A fixed head that records how many rows each call sees."""

    calls: list = []

    def decision_function(self, X):
        type(self).calls.append(len(X))
        return super().decision_function(X)


def _fit(est, X, y, working_memory=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # threshold range
        if working_memory is None:
            return est.fit(X, y, **kw)
        with sklearn.config_context(working_memory=working_memory):
            return est.fit(X, y, **kw)


def _assert_same_vrf(a, b, X):
    assert a.calibration_temperatures_ == pytest.approx(
        b.calibration_temperatures_, rel=RTOL
    )
    assert_array_equal(a.zsf_indices_, b.zsf_indices_)
    assert_array_equal(a.zsf_embeddings_, b.zsf_embeddings_)
    assert a.k_ == b.k_ and a.n_samples_fit_ == b.n_samples_fit_
    assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=RTOL, atol=1e-12)


# ------------------------------------------------- many chunks == one chunk
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"calibration_method": "confidence"},
        {"zsf_rule": "zeroshot_errors", "bank_dtype": "float16"},
        {"logit_adjustment": "gla", "k": 3},
        {"calibrate": False, "zsf_rule": "all", "k": 2},
    ],
)
def test_vrf_many_chunks_equal_one_chunk(params):
    X, y, centers, text = _data()
    zs, ft = _heads(centers, text)
    one = _fit(VRFEnsembleClassifier(zs, FrozenEstimator(ft), **params), X, y)
    many = _fit(VRFEnsembleClassifier(zs, FrozenEstimator(ft), **params), X, y, TINY)
    assert many.zsf_indices_.size > 0
    _assert_same_vrf(many, one, X)


def test_the_temperature_is_fitted_over_passes_to_the_whole_array_root():
    X, y, centers, text = _data(1)
    zs, ft = _heads(centers, text)
    many = _fit(VRFEnsembleClassifier(zs, ft), X, y, TINY)
    for name, head in (("zeroshot", zs), ("finetuned", ft)):
        logits = head.fit(X).decision_function(X)
        want = fit_temperature(logits, y, head.classes_)
        assert many.calibration_temperatures_[name] == pytest.approx(want, rel=RTOL)
        assert abs(want - 1.0) > 0.05  # a real fit, not the default


@pytest.mark.parametrize("method", ["log_loss", "confidence"])
@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_chunked_temperature_equals_the_whole_array_functions(method, scale):
    rng = np.random.default_rng(int(scale * 10))
    n, k = 2000, 12
    y = rng.integers(0, k, n)
    z = scale * rng.normal(size=(n, k))
    z[np.arange(n), y] += 2.0
    z[:, 3] = -np.inf  # a class the component never gives
    whole = fit_temperature if method == "log_loss" else fit_confidence_temperature
    want = whole(z, y, np.arange(k))
    t = ChunkedTemperature(np.arange(k), method)
    while not t.done:
        for s in range(0, n, 333):
            t.add(z[s : s + 333], y[s : s + 333])
        t.finish_pass()
    assert t.temperature == pytest.approx(want, rel=RTOL)
    assert t.n_passes < 20  # Newton's steps, not a bisection


def test_chunked_temperature_edge_cases_match():
    # bounds, flat rows, one class: the same answers as fit_temperature
    cases = [
        (np.array([[4.0, 0.0], [0.0, 4.0]] * 2), [0, 1, 1, 0]),  # exp(10)
        (np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0]]), [0, 1, 0]),  # exp(-10)
        (np.zeros((4, 3)), [0, 1, 2, 0]),  # flat: 1
    ]
    for z, y in cases:
        t = ChunkedTemperature(np.arange(z.shape[1]))
        while not t.done:
            for s in range(0, len(y), 2):
                t.add(z[s : s + 2], np.asarray(y)[s : s + 2])
            t.finish_pass()
        assert t.temperature == pytest.approx(
            fit_temperature(z, y, np.arange(z.shape[1]))
        )
    t = ChunkedTemperature(np.arange(3))
    t.add(np.eye(3), [1, 1, 1])
    with pytest.warns(UserWarning, match="fewer than two"):
        t.finish_pass()
    assert t.temperature == 1.0


def test_components_never_see_more_than_a_chunk():
    X, y, centers, text = _data(2)
    zs, _ = _heads(centers, text)
    ft = _Counting(2.0 * centers, np.zeros(C), classes=NAMES)
    _Counting.calls = []
    _fit(VRFEnsembleClassifier(zs, ft), X, y, TINY)
    assert len(_Counting.calls) > 10
    assert max(_Counting.calls) < N // 10
    # one pass for the outputs and one per Newton step of its temperature
    assert sum(_Counting.calls) % N == 0 and sum(_Counting.calls) // N >= 3


@pytest.mark.parametrize("id_score", ["msp", "knn"])
def test_gathering_ensembles_many_chunks_equal_one_chunk(id_score):
    # ensembles without chunk hooks get their outputs gathered, as before
    X, y, centers, text = _data(3)
    zs, ft = _heads(centers, text)
    one = _fit(SelectiveEnsembleClassifier(zs, ft, id_score=id_score), X, y)
    many = _fit(SelectiveEnsembleClassifier(zs, ft, id_score=id_score), X, y, TINY)
    assert many.threshold_ == pytest.approx(one.threshold_, rel=RTOL)
    assert_allclose(many.predict_proba(X), one.predict_proba(X), rtol=RTOL)


def test_fitted_components_keep_their_out_of_fold_calibration():
    X, y, centers, text = _data(4)
    zs, _ = _heads(centers, text)
    kw = {"random_state": 0}
    one = _fit(VRFEnsembleClassifier(zs, LogisticRegression(), **kw), X, y)
    many = _fit(VRFEnsembleClassifier(zs, LogisticRegression(), **kw), X, y, TINY)
    _assert_same_vrf(many, one, X)


# ------------------------------------------------------ fit from a store
def _write_npz(path, X, y):
    np.savez(path, features=X, labels=y)
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_fit_store_equals_fit_on_the_rows(tmp_path, dtype):
    X, y, centers, text = _data(5)
    X = X.astype(dtype)
    store = open_store(_write_npz(tmp_path / "train.npz", X, y), chunk_rows=70)
    zs, ft = _heads(centers, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit_store(VRFEnsembleClassifier(zs, FrozenEstimator(ft)), store)
    # the store's chunks are float32 once used (float16 is exact in float32)
    want = _fit(VRFEnsembleClassifier(zs, FrozenEstimator(ft)), X.astype(np.float32), y)
    _assert_same_vrf(got, want, X.astype(np.float32))
    assert got.n_features_in_ == D


def test_fit_store_with_a_val_store(tmp_path):
    X, y, centers, text = _data(6)
    Xv, yv, _, _ = _data(6, n=200)
    store = open_store(_write_npz(tmp_path / "t.npz", X, y), chunk_rows=100)
    val = open_store(_write_npz(tmp_path / "v.npz", Xv, yv))
    zs, ft = _heads(centers, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit_store(VRFEnsembleClassifier(zs, ft), store, val_store=val)
        want = VRFEnsembleClassifier(zs, ft).fit(X, y, X_val=Xv, y_val=yv)
    _assert_same_vrf(got, want, X)


@needs_arrow
def test_fit_store_on_a_clip_retrieval_folder(tmp_path):
    X, y, centers, text = _data(7)
    os.makedirs(tmp_path / "img_emb"), os.makedirs(tmp_path / "metadata")
    for i, s in enumerate(range(0, N, 250)):
        np.save(tmp_path / "img_emb" / f"img_emb_{i}.npy", X[s : s + 250])
        table = pa.table({"label": y[s : s + 250]})
        pq.write_table(table, tmp_path / "metadata" / f"metadata_{i}.parquet")
    store = open_store(tmp_path, chunk_rows=90)
    zs, ft = _heads(centers, text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit_store(OutputSpaceEnsembleClassifier(zs, ft), store)
        want = OutputSpaceEnsembleClassifier(zs, ft).fit(X, y)
    assert got.calibration_temperatures_ == pytest.approx(
        want.calibration_temperatures_, rel=RTOL
    )
    assert_allclose(got.predict_proba(X), want.predict_proba(X), rtol=RTOL)


def test_fit_store_refuses_what_needs_all_rows(tmp_path):
    X, y, centers, text = _data(8)
    store = open_store(_write_npz(tmp_path / "t.npz", X, y))
    zs, _ = _heads(centers, text)
    with pytest.raises(ValueError, match=r"finetuned component.*FrozenEstimator"):
        fit_store(VRFEnsembleClassifier(zs, LogisticRegression()), store)
    from sklearn.preprocessing import StandardScaler

    vrf = VRFEnsembleClassifier(zs, zs, embedding=StandardScaler())
    with pytest.raises(ValueError, match="embedding used as it is"):
        fit_store(vrf, store)
    with pytest.raises(TypeError, match="two-component ensembles"):
        fit_store(LogisticRegression(), store)
    np.savez(tmp_path / "nolabels.npz", features=X)
    with pytest.raises(ValueError, match="no labels"):
        fit_store(VRFEnsembleClassifier(zs, zs), open_store(tmp_path / "nolabels.npz"))


# ------------------------------------------------------------- store keys
def test_duplicate_keys_are_named(tmp_path):
    X, y, _, _ = _data(9, n=10)
    keys = np.array([f"k{i}" for i in range(10)])
    keys[7] = "k2"
    np.savez(tmp_path / "dup.npz", features=X, labels=y, keys=keys)
    store = open_store(tmp_path / "dup.npz", chunk_rows=4)
    with pytest.raises(FeatureFileError, match=r"row 7.*duplicate key 'k2'"):
        list(store.iter_chunks())
    with pytest.raises(FeatureFileError, match="duplicate key 'k2'"):
        store.check_keys()


@needs_arrow
def test_duplicate_keys_across_shards_are_named(tmp_path):
    os.makedirs(tmp_path / "img_emb"), os.makedirs(tmp_path / "metadata")
    for i in range(2):
        np.save(tmp_path / "img_emb" / f"img_emb_{i}.npy", np.ones((3, 4), np.float16))
        table = pa.table({"key": ["a", "b", "c"] if i == 0 else ["d", "b", "e"]})
        pq.write_table(table, tmp_path / "metadata" / f"metadata_{i}.parquet")
    store = open_store(tmp_path)
    assert len(list(store.iter_chunks())) == 2  # unique within each shard
    with pytest.raises(FeatureFileError, match=r"img_emb_1.*row 1.*'b'.*img_emb_0"):
        store.check_keys()


@needs_arrow
def test_cli_fit_streams_a_train_store(tmp_path):
    pytest.importorskip("skops")
    from skvrf.cli import main
    from skvrf.persistence import load_model

    X, y, centers, text = _data(10)
    root = tmp_path / "train"
    os.makedirs(root / "img_emb"), os.makedirs(root / "metadata")
    for i, s in enumerate(range(0, N, 250)):
        np.save(root / "img_emb" / f"img_emb_{i}.npy", X[s : s + 250])
        pq.write_table(
            pa.table({"label": y[s : s + 250]}),
            root / "metadata" / f"metadata_{i}.parquet",
        )
    np.savez(tmp_path / "text.npz", class_embeddings=text, classes=NAMES)
    zs, ft = _heads(centers, text)
    np.savez(
        tmp_path / "head.npz", coef=ft.coef_, intercept=ft.intercept_, classes=NAMES
    )
    model = tmp_path / "m.skops"
    argv = ["fit", "--train", str(root), "--zeroshot", str(tmp_path / "text.npz"),
            "--head", str(tmp_path / "head.npz"), "--k", "2",
            "--save", str(model)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert main(argv) == 0
        want = VRFEnsembleClassifier(zs, FrozenEstimator(ft), k=2).fit(X, y)
    _assert_same_vrf(load_model(model), want, X)


def test_threshold_range_sample_is_the_same_rows_in_chunks(monkeypatch):
    # fewer sampled rows than training rows: the streamed fit's sample (drawn
    # before the pass, gathered chunk by chunk) is the whole-array draw
    import skvrf._vrf

    monkeypatch.setattr(skvrf._vrf, "_RANGE_ROWS", 50)
    X, y, centers, text = _data(2)
    zs, ft = _heads(centers, text)
    messages = []
    for working_memory in (None, TINY):
        est = VRFEnsembleClassifier(zs, FrozenEstimator(ft), threshold=9.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            if working_memory is None:
                est.fit(X, y)
            else:
                with sklearn.config_context(working_memory=working_memory):
                    est.fit(X, y)
        messages += [str(w.message) for w in caught if "threshold=9" in str(w.message)]
    d, where = est._observed_distances(est._outputs(X), None)
    assert "(50 rows" in where and d.size > 0
    assert len(messages) == 2 and messages[0] == messages[1]
    assert f"from {d.min():.3g} to {d.max():.3g}" in messages[0]
    assert "(50 rows" in messages[0]


def test_many_chunks_equal_one_chunk_with_unsorted_partial_classes():
    # heads list their classes out of sorted order, and the fine-tuned one
    # knows four of the five (its temperature ignores the fifth's rows)
    X, y, centers, text = _data(5)
    zs_order, ft_order = [3, 0, 4, 1, 2], [2, 4, 0, 1]
    zs = ZeroShotClassifier(text[zs_order], classes=NAMES[zs_order])
    ft = LinearHeadClassifier(
        2.0 * centers[ft_order], np.zeros(len(ft_order)), classes=NAMES[ft_order]
    ).fit(np.zeros((1, D)))
    one = _fit(VRFEnsembleClassifier(zs, FrozenEstimator(ft)), X, y)
    many = _fit(VRFEnsembleClassifier(zs, FrozenEstimator(ft)), X, y, TINY)
    assert many.zsf_indices_.size > 0
    _assert_same_vrf(many, one, X)
    for name, head in (("zeroshot", zs.fit(X)), ("finetuned", ft)):
        want = fit_temperature(head.decision_function(X), y, head.classes_)
        assert many.calibration_temperatures_[name] == pytest.approx(want, rel=RTOL)
        assert abs(want - 1.0) > 0.01  # a real fit, not the default (1)
