"""VRFEnsembleClassifier and OutputSpaceEnsembleClassifier: formulas and contract."""

import math
import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvrf import (
    LinearHeadClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf._vrf import resolve_k


def _sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


# ---------------------------------------------------------------- toy case
# Zero-shot: cosine to e0=(1,0), e1=(0,1), logit scale 1. Fine-tuned: a fixed head
# with coef [[1,0],[0,2]] on normalised input. Training rows:
#   (1,0) label 0: both right;  (0,1) label 1: both right;
#   (0.8,0.6) label 1: zero-shot says 0 (0.8 > 0.6), fine-tuned says 1 (0.8 < 1.2)
# so the ZSF set is the single row (0.8, 0.6) and k="auto" = 1.
X_TOY = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
Y_TOY = np.array([0, 1, 1])


def _toy_vrf(**params):
    zs = ZeroShotClassifier(np.eye(2), logit_scale=1.0)
    ft = LinearHeadClassifier([[1.0, 0.0], [0.0, 2.0]])
    return VRFEnsembleClassifier(zs, ft, calibrate=False, **params).fit(X_TOY, Y_TOY)


def test_toy_case_by_hand():
    clf = _toy_vrf()
    assert_array_equal(clf.zsf_indices_, [2])
    assert clf.k_ == 1
    X_test = np.array([[0.6, 0.8], [0.0, -1.0]])
    # d = |t - (0.8, 0.6)|^2: 0.2^2 + 0.2^2 = 0.08 and 0.8^2 + 1.6^2 = 3.2
    assert_allclose(clf.zsf_distances(X_test), [0.08, 3.2], atol=1e-6)
    w = np.array([_sigmoid(-(0.08 - 1.5) / 0.6), _sigmoid(-(3.2 - 1.5) / 0.6)])
    assert_allclose(clf.ensemble_weights(X_test), w, rtol=1e-6)
    # zero-shot logits (0.6, 0.8) and (0, -1); fine-tuned (0.6, 1.6) and (0, -2)
    p_zs1 = np.array([_sigmoid(0.2), _sigmoid(-1.0)])
    p_ft1 = np.array([_sigmoid(1.0), _sigmoid(-2.0)])
    p1 = w * p_ft1 + (1 - w) * p_zs1
    assert_allclose(p1, [0.71552, 0.26062], atol=1e-5)  # worked out by hand
    assert_allclose(clf.predict_proba(X_test), np.column_stack([1 - p1, p1]), rtol=1e-6)
    assert_array_equal(clf.predict(X_test), [1, 0])


def test_toy_case_zsf_neighbors_index_the_training_set():
    clf = _toy_vrf()
    d, idx = clf.zsf_neighbors(np.array([[0.6, 0.8]]), 1)
    assert_array_equal(idx, [[2]])
    assert_allclose(d, [[0.08]], atol=1e-6)


# ---------------------------------------------- independent re-derivation
def _data(n=400, d=16, c=4, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d))
    y = rng.integers(0, c, n)
    X = centers[y] + rng.normal(scale=1.0, size=(n, d)) + shift
    text = centers + rng.normal(scale=0.7, size=(c, d))
    return X, y, text


def _reference_proba(X_train, y_train, X_test, text, lr, k, a, b, rule="paper"):
    """Plain numpy VRF, written from the paper's formulas."""

    def unit(M):
        return M / np.linalg.norm(M, axis=1, keepdims=True)

    zs_logits = lambda X: 100.0 * unit(X) @ unit(text).T  # noqa: E731
    ft_logits = lambda X: X @ lr.coef_.T + lr.intercept_  # noqa: E731
    zs_right = zs_logits(X_train).argmax(1) == y_train
    ft_right = ft_logits(X_train).argmax(1) == y_train
    zsf = ~zs_right & (ft_right if rule == "paper" else True)
    bank = unit(X_train[zsf])
    dist = ((unit(X_test)[:, None, :] - bank[None, :, :]) ** 2).sum(-1)
    d = np.sort(dist, axis=1)[:, k - 1]
    w = 1.0 / (1.0 + np.exp((d - a) / b))
    return w[:, None] * softmax(ft_logits(X_test), 1) + (1 - w[:, None]) * softmax(
        zs_logits(X_test), 1
    )


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("rule", ["paper", "zeroshot_errors"])
def test_matches_plain_numpy_rederivation(k, rule):
    X, y, text = _data()
    X_test, _, _ = _data(n=150, seed=1, shift=0.3)
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(max_iter=1000),
        k=k,
        threshold=1.2,
        temperature=0.4,
        zsf_rule=rule,
        calibrate=False,
    ).fit(X, y)
    ref = _reference_proba(
        X, y, X_test, text, clf.finetuned_estimator_, k, 1.2, 0.4, rule
    )
    err = np.abs(clf.predict_proba(X_test) - ref).max()
    assert err < 1e-6, err


def test_ose_formula():
    X, y, text = _data()
    ose = OutputSpaceEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(max_iter=1000),
        alpha=0.3,
        calibrate=False,
    ).fit(X, y)
    p_zs = ose.zeroshot_estimator_.predict_proba(X)
    p_ft = ose.finetuned_estimator_.predict_proba(X)
    assert_allclose(ose.predict_proba(X), 0.7 * p_zs + 0.3 * p_ft, rtol=1e-10)


# ------------------------------------------------------------ the contract
def test_weights_limits_equal_components():
    X, y, text = _data()
    base = dict(zeroshot_estimator=ZeroShotClassifier(text), calibrate=False)
    lr = LogisticRegression(max_iter=1000)
    # temperature -> tiny, threshold above every distance: w = 1 (fine-tuned)
    ft_only = VRFEnsembleClassifier(
        **base, finetuned_estimator=lr, threshold=10, temperature=1e-3
    )
    ft_only.fit(X, y)
    assert_allclose(
        ft_only.predict_proba(X), ft_only.finetuned_estimator_.predict_proba(X)
    )
    zs_only = VRFEnsembleClassifier(
        **base, finetuned_estimator=lr, threshold=-10, temperature=1e-3
    )
    zs_only.fit(X, y)
    assert_allclose(
        zs_only.predict_proba(X), zs_only.zeroshot_estimator_.predict_proba(X)
    )


def test_frozen_and_refit_paths_identical():
    X, y, text = _data()
    X_test, _, _ = _data(n=100, seed=3)
    lr = LogisticRegression(max_iter=1000)
    refit = VRFEnsembleClassifier(ZeroShotClassifier(text), lr, calibrate=False).fit(
        X, y
    )
    frozen = VRFEnsembleClassifier(
        ZeroShotClassifier(text), FrozenEstimator(clone(lr).fit(X, y)), calibrate=False
    ).fit(X, y)
    assert_array_equal(refit.zsf_indices_, frozen.zsf_indices_)
    assert_allclose(refit.predict_proba(X_test), frozen.predict_proba(X_test))


def test_finetuned_pipeline_embedding_is_computed_once():
    X, y, text = _data()
    calls = {"n": 0}

    class CountingScaler(StandardScaler):
        def transform(self, X, copy=None):
            calls["n"] += 1
            return super().transform(X, copy=copy)

    ft = make_pipeline(CountingScaler(), LogisticRegression(max_iter=1000))
    clf = VRFEnsembleClassifier(ZeroShotClassifier(text), ft, calibrate=False).fit(X, y)
    assert clf.embedding_ is not None and clf.embedding_ != "passthrough"
    calls["n"] = 0
    clf.predict_proba(X[:50])
    assert calls["n"] == 1
    # the bank lives in the scaler's output space
    E = clf.finetuned_estimator_[:-1].transform(X[clf.zsf_indices_])
    assert_allclose(
        clf.zsf_embeddings_, E / np.linalg.norm(E, axis=1, keepdims=True), rtol=1e-5
    )


def test_embedding_transformer_and_clear_error_for_non_numeric_X():
    X, y, text = _data()
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(),
        embedding=PCA(4),
        calibrate=False,
    ).fit(X, y)
    assert clf.zsf_embeddings_.shape[1] == 4
    with pytest.raises(ValueError, match="embedding='auto'"):
        VRFEnsembleClassifier(
            _StringZeroShot(), _StringZeroShot(), calibrate=False
        ).fit(np.array(["a", "b", "a", "b"]), [0, 1, 0, 1])


class _StringZeroShot(LogisticRegression):
    """A classifier on strings (as an image-path pipeline would be)."""

    def fit(self, X, y):
        return super().fit(_to_num(X), y)

    def decision_function(self, X):
        return super().decision_function(_to_num(X))

    def predict(self, X):
        return super().predict(_to_num(X))


def _to_num(X):
    return np.array([[float(x == "a"), float(x == "b")] for x in X])


def test_string_labels_and_classes_union():
    X, y, text = _data(c=3)
    names = np.array(["car", "cat", "dog"])
    # the zero-shot head knows cat and dog, the frozen fine-tuned head car and cat
    zs = ZeroShotClassifier(text[1:], classes=["cat", "dog"])
    lr = LogisticRegression(max_iter=1000).fit(X[y < 2], names[y[y < 2]])
    clf = VRFEnsembleClassifier(zs, FrozenEstimator(lr), calibrate=False).fit(
        X, names[y]
    )
    assert_array_equal(clf.classes_, names)
    proba = clf.predict_proba(X)
    assert_allclose(proba.sum(1), 1.0)
    assert set(clf.predict(X)) <= set(names)
    # a label known to no component is an error naming it
    with pytest.raises(ValueError, match="'bird'"):
        VRFEnsembleClassifier(zs, FrozenEstimator(lr), calibrate=False).fit(
            X[:4], ["cat", "dog", "car", "bird"]
        )


def test_empty_zsf_set_warns_and_is_pure_zero_shot():
    # a zero-shot head that is right on every training row
    perfect = ZeroShotClassifier(np.eye(2))
    Xp = np.array([[1.0, 0.1], [0.1, 1.0], [2.0, 0.0], [0.0, 3.0]])
    yp = np.array([0, 1, 0, 1])
    with pytest.warns(UserWarning, match="Zero-Shot Failure set is empty"):
        clf = VRFEnsembleClassifier(perfect, LogisticRegression(), calibrate=False).fit(
            Xp, yp
        )
    assert clf.k_ == 0
    assert_allclose(clf.ensemble_weights(Xp), 0.0)
    assert_allclose(clf.predict_proba(Xp), clf.zeroshot_estimator_.predict_proba(Xp))


def test_k_clipping_and_rules():
    with pytest.warns(UserWarning, match="clipped to 1"):
        clf = _toy_vrf(k=5)
    assert clf.k_ == 1
    assert resolve_k("auto", 2500, 10_000) == 2
    assert resolve_k("auto", 10, 100) == 1
    assert resolve_k("authors", 300, 300_000) == 1
    assert resolve_k("authors", 30, 100) == 30  # 1000 * 30 / 100 = 300, clipped
    assert resolve_k(7, 10, 100) == 7


def test_calibration_on_X_val_and_out_of_fold():
    X, y, text = _data(n=600)
    X, X_val, y, y_val = X[:400], X[400:], y[:400], y[400:]
    lr = LogisticRegression(max_iter=1000)
    clf = VRFEnsembleClassifier(ZeroShotClassifier(text), lr, random_state=0)
    clf.fit(X, y, X_val=X_val, y_val=y_val)
    temps = clf.calibration_temperatures_
    # the temperatures minimise the validation log-loss of each component
    for name, est in [
        ("zeroshot", clf.zeroshot_estimator_),
        ("finetuned", clf.finetuned_estimator_),
    ]:
        z = est.decision_function(X_val)

        def nll(t, z=z):
            return -np.log(softmax(z / t, 1)[np.arange(len(y_val)), y_val]).mean()

        assert (
            nll(temps[name])
            <= min(nll(temps[name] * 1.05), nll(temps[name] / 1.05)) + 1e-9
        )
    # the zero-shot head's cosine logits at scale 100 are overconfident
    assert temps["zeroshot"] > 1.0
    # without X_val: zero-shot on the training rows, fine-tuned out of fold
    clf2 = clone(clf).fit(X, y)
    assert clf2.calibration_temperatures_["finetuned"] != pytest.approx(
        temps["finetuned"]
    )
    with pytest.raises(ValueError, match="together"):
        clone(clf).fit(X, y, X_val=X_val)


def test_gridsearch_pipeline_clone_pickle():
    X, y, text = _data()
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), calibrate=False
    )
    search = GridSearchCV(vrf, {"k": [1, 10], "temperature": [0.3, 1.0]}, cv=KFold(3))
    search.fit(X, y)
    assert set(search.best_params_) == {"k", "temperature"}
    assert search.cv_results_["mean_test_score"].shape == (4,)
    # inside a Pipeline with a ZeroShotClassifier over the scaled space
    pipe = make_pipeline(StandardScaler(), clone(vrf)).fit(X, y)
    assert pipe.score(X, y) > 0.5
    fitted = clone(vrf).fit(X, y)
    restored = pickle.loads(pickle.dumps(fitted))
    assert_allclose(restored.predict_proba(X), fitted.predict_proba(X))
    assert clone(fitted).get_params()["k"] == "auto"
    assert not hasattr(clone(fitted), "zsf_indices_")


def test_chunked_prediction_equals_whole():
    import sklearn

    X, y, text = _data()
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000)
    ).fit(X, y)
    whole = clf.predict_proba(X)
    whole_d = clf.zsf_distances(X)
    whole_pred = clf.predict(X)
    d_nn, i_nn = clf.zsf_neighbors(X, 3)
    # One-row chunks hand BLAS a matrix-vector product, which sums the float32
    # q.b (16 features) in another order: |dd| <= 2 * 2 * 16 * 2**-24 ~ 3.8e-6,
    # and P moves by at most |dd| / (4 * 0.6) ~ 1.6e-6 (absolute, not relative).
    d_atol, p_atol = 4e-6, 2e-6
    with sklearn.config_context(working_memory=0.001):  # one row a chunk
        assert clf._chunk_rows() < 10
        assert_allclose(clf.predict_proba(X), whole, rtol=0, atol=p_atol)
        assert_allclose(clf.zsf_distances(X), whole_d, rtol=0, atol=d_atol)
        assert_array_equal(clf.predict(X), whole_pred)
        d_chunked, i_chunked = clf.zsf_neighbors(X, 3)
        assert_allclose(d_chunked, d_nn, rtol=0, atol=d_atol)
        assert i_chunked.shape == i_nn.shape


def test_features_of_another_dimension_are_refused():
    X, y, text = _data()
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(), calibrate=False
    ).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :5])


def test_verbose_shows_progress_over_row_chunks(capsys):
    import sklearn

    X, y, text = _data()
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), verbose=1
    ).fit(X, y)
    clf.predict_proba(X)  # one chunk: no bar
    assert "VRFEnsembleClassifier" not in capsys.readouterr().err
    with sklearn.config_context(working_memory=0.01):
        quiet = clone(clf).set_params(verbose=0).fit(X, y).predict_proba(X)
        assert_allclose(clf.predict_proba(X), quiet)
    assert "VRFEnsembleClassifier" in capsys.readouterr().err
