"""The component-output protocol: columns matched by label, one chunked path.

Every consumer (predict_proba, the CV search, class maps, sweeps) goes through
``iter_component_outputs``; these tests pin down what it promises, against plain
re-derivations from the components themselves.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from skvrf import (
    EntropyEnsembleClassifier,
    HeldOut,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    VRFEnsembleClassifierCV,
    ZeroShotClassifier,
)
from skvrf.utils._testing import noisy_centres

N_CLASSES, N_FEATURES = 5, 8
NAMES = np.array(["lion", "ant", "zebra", "cat", "dog"])  # not sorted


def _data(seed=0, n=200):
    X, y, _, text = noisy_centres(
        n, N_FEATURES, N_CLASSES, noise=0.9, text_noise=0.8, seed=seed
    )
    return X, y, text


@pytest.fixture(scope="module")
def data():
    return _data()


def _zs(text, keep=None):
    keep = np.arange(N_CLASSES) if keep is None else np.asarray(keep)
    return ZeroShotClassifier(text[keep], classes=NAMES[keep], logit_scale=10.0)


@pytest.mark.parametrize(
    "Ensemble",
    [VRFEnsembleClassifier, OutputSpaceEnsembleClassifier, EntropyEnsembleClassifier],
)
def test_component_proba_is_each_component_placed_by_label(Ensemble, data):
    X, y, text = data
    keep = [3, 0, 4]  # the zero-shot head knows 3 of 5 classes, in its own order
    est = Ensemble(_zs(text, keep), LogisticRegression(), calibrate=False)
    est.fit(X, NAMES[y])
    assert est.classes_.tolist() == sorted(NAMES.tolist())
    probas = est.component_proba(X)
    logits = est.component_logits(X)
    zs, ft = est.zeroshot_estimator_, est.finetuned_estimator_
    for name, comp in (("zeroshot", zs), ("finetuned", ft)):
        expected = np.zeros((X.shape[0], N_CLASSES))
        for j, label in enumerate(comp.classes_):
            expected[:, est.classes_.tolist().index(label)] = comp.predict_proba(X)[
                :, j
            ]
        assert_allclose(probas[name], expected, rtol=1e-12, atol=1e-15)
    unknown = ~np.isin(est.classes_, zs.classes_)
    assert np.all(np.isneginf(logits["zeroshot"][:, unknown]))
    assert np.all(np.isfinite(logits["finetuned"]))


def test_chunks_change_nothing(data):
    X, y, text = data
    est = VRFEnsembleClassifier(_zs(text), LogisticRegression(), calibrate=False)
    est.fit(X, NAMES[y])
    whole = est.predict_proba(X)
    # Another chunking hands BLAS another GEMM shape, which may round the float32
    # products q.b (8 features) differently: |dd| <= 2 * 2 * 8 * 2**-24 ~ 2e-6,
    # and P (sigmoid weight, temperature 0.6) moves by at most |dd| / 2.4.
    atol = 1e-6
    with config_context(working_memory=0.005):  # a few rows per chunk
        chunks = list(est.iter_component_outputs(X))
        assert len(chunks) > 5
        assert_allclose(est.predict_proba(X), whole, rtol=0, atol=atol)
    rows = np.concatenate([np.arange(X.shape[0])[c.rows] for c in chunks])
    assert_array_equal(rows, np.arange(X.shape[0]))
    mixed = np.concatenate([est.mix_outputs(c) for c in chunks])
    assert_allclose(mixed, whole, rtol=0, atol=atol)


def test_class_map_through_the_protocol_equals_manual_mapping(data):
    X, y, text = data
    est = OutputSpaceEnsembleClassifier(
        _zs(text), LogisticRegression(), alpha=0.3, calibrate=False
    ).fit(X, NAMES[y])
    class_map = {"pets": ["cat", "dog"], "wild": ["lion", "zebra"]}
    view = est.with_class_map(class_map)
    logits = est.component_logits(X)
    col = {c: i for i, c in enumerate(est.classes_.tolist())}

    def mapped(z):
        m = np.column_stack(
            [z[:, [col[c] for c in src]].max(axis=1) for src in class_map.values()]
        )
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    expected = 0.7 * mapped(logits["zeroshot"]) + 0.3 * mapped(logits["finetuned"])
    assert view.classes_.tolist() == ["pets", "wild"]
    assert_allclose(view.predict_proba(X), expected, rtol=1e-10)


# ------------------------------------------------------------ with_params
def test_with_params_predicts_as_a_fit_with_those_params(data):
    X, y, text = data
    base = VRFEnsembleClassifier(_zs(text), LogisticRegression(), random_state=0)
    fitted = base.fit(X, y := NAMES[y])
    for params in (
        {"k": 3, "threshold": 1.2, "temperature": 0.2},
        {"k": "auto", "weighting": "step"},
        {"mixing": "logit", "temperature": 1.0},
    ):
        view = fitted.with_params(**params)
        refit = VRFEnsembleClassifier(
            _zs(text), LogisticRegression(), random_state=0, **params
        ).fit(X, y)
        assert view.k_ == refit.k_
        assert_allclose(view.predict_proba(X), refit.predict_proba(X), rtol=1e-10)
    assert fitted.temperature == 0.6  # the original is untouched
    with pytest.raises(ValueError, match="with_params changes only"):
        fitted.with_params(calibrate=False)
    with pytest.raises(ValueError, match="temperature"):
        fitted.with_params(temperature=-1.0)


def test_bank_distances_for_several_k(data):
    X, y, text = data
    vrf = VRFEnsembleClassifier(_zs(text), LogisticRegression()).fit(X, NAMES[y])
    n_zsf = vrf.zsf_indices_.size
    assert n_zsf >= 4
    ks = [1, 2, n_zsf]
    d = vrf.bank_distances(X, ks)
    assert d.shape == (X.shape[0], 3)
    for j, k in enumerate(ks):
        assert_allclose(d[:, j], vrf.with_params(k=k).zsf_distances(X), atol=1e-6)


# --------------------------------------------------------------- labels
def test_unknown_validation_labels_are_an_error_naming_them(data):
    X, y, text = data
    est = OutputSpaceEnsembleClassifier(_zs(text), LogisticRegression())
    y_val = NAMES[y[:50]].astype(object)
    y_val[3] = "unicorn"
    with pytest.raises(ValueError, match=r"y_val contains labels.*'unicorn'"):
        est.fit(X, NAMES[y], X_val=X[:50], y_val=y_val)


@pytest.mark.parametrize(
    "y_kind, head_kind", [("int", "str"), ("str", "int"), ("str", "mixed")]
)
def test_mixed_label_kinds_name_both_sets(data, y_kind, head_kind):
    X, y, text = data
    labels = {"int": np.arange(N_CLASSES), "str": NAMES}
    head_classes = (
        np.array([0, "ant", 2, 3, 4], dtype=object)
        if head_kind == "mixed"
        else labels[head_kind]
    )
    zs = ZeroShotClassifier(text, classes=head_classes)
    est = OutputSpaceEnsembleClassifier(zs, LogisticRegression())
    with pytest.raises(ValueError, match="strings") as info:
        est.fit(X, labels[y_kind][y])
    message = str(info.value)
    assert "numbers" in message


def test_int_and_float_labels_are_one_kind(data):
    X, y, text = data
    zs = ZeroShotClassifier(text, classes=np.arange(N_CLASSES, dtype=float))
    est = OutputSpaceEnsembleClassifier(zs, LogisticRegression(), alpha=0.0)
    est.fit(X, y)
    assert_array_equal(est.classes_, np.arange(N_CLASSES))
    assert est.score(X, y) == zs.fit(X).score(X, y.astype(float))


# ------------------------------------------------- held-out rows and folds
def _zs_temperatures(result):
    return [e.calibration_temperatures_["zeroshot"] for e in result["estimator"]]


def test_held_out_rows_reach_every_fold_whole(data):
    X, y, text = data
    X_val, y_val = _data(seed=1, n=X.shape[0])[:2]  # as long as X
    est = OutputSpaceEnsembleClassifier(_zs(text), LogisticRegression())
    alone = est.fit(X, NAMES[y], X_val=HeldOut(X_val, NAMES[y_val]))
    expected = alone.calibration_temperatures_["zeroshot"]
    cv = KFold(3)
    # equal length, in a HeldOut: passed whole to each fold
    res = cross_validate(
        est,
        X,
        NAMES[y],
        cv=cv,
        return_estimator=True,
        params={"X_val": HeldOut(X_val, NAMES[y_val])},
        error_score="raise",
    )
    assert_allclose(_zs_temperatures(res), expected, rtol=1e-9)
    # another length, as arrays: not sliced by scikit-learn, passed whole too
    res = cross_validate(
        est,
        X,
        NAMES[y],
        cv=cv,
        return_estimator=True,
        params={"X_val": X_val[:-7], "y_val": NAMES[y_val[:-7]]},
        error_score="raise",
    )
    short = est.fit(X, NAMES[y], X_val=X_val[:-7], y_val=NAMES[y_val[:-7]])
    assert_allclose(
        _zs_temperatures(res),
        short.calibration_temperatures_["zeroshot"],
        rtol=1e-9,
    )
    # equal length, as arrays: scikit-learn would split it, so it is refused
    with pytest.raises(ValueError, match="X_val has as many rows as X"):
        GridSearchCV(est, {"alpha": [0.5]}, cv=cv, error_score="raise").fit(
            X, NAMES[y], X_val=X_val, y_val=NAMES[y_val]
        )


# ------------------------------------------------------- CV search and k
def test_cv_search_reports_the_k_actually_used(data):
    X, y, text = data
    search = VRFEnsembleClassifierCV(
        _zs(text),
        FrozenEstimator(LogisticRegression().fit(X, NAMES[y])),
        ks=(5000,),
        thresholds=(1.5,),
        temperatures=(0.6,),
        cv=3,
    )
    with pytest.warns(UserWarning, match=r"k=5000 used k=\["):
        search.fit(X, NAMES[y])
    used = [search.cv_results_[f"split{i}_k_used"][0] for i in range(3)]
    assert all(0 < u < 5000 for u in used)
    assert search.best_params_["k"] == search.best_estimator_.k_ < 5000
    assert search.best_estimator_.k_ == search.best_estimator_.zsf_indices_.size


def test_cv_search_without_clipping_keeps_the_candidates(data):
    X, y, text = data
    search = VRFEnsembleClassifierCV(
        _zs(text),
        LogisticRegression(),
        ks=(1, 2),
        thresholds=(1.5,),
        temperatures=(0.6,),
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # not about clipping: the paper's 1.5 lies above these data's distances
        warnings.filterwarnings("ignore", message="threshold=.* lies above")
        search.fit(X, NAMES[y])
    assert_array_equal(search.cv_results_["split0_k_used"], [1, 2])
    assert search.best_params_["k"] in (1, 2)


def test_float64_bank_computes_in_float64(data):
    X, y, text = data
    vrf = VRFEnsembleClassifier(
        _zs(text), LogisticRegression(), bank_dtype="float64", k=2
    ).fit(X, NAMES[y])
    assert vrf.zsf_embeddings_.dtype == np.float64
    # plain float64 oracle: squared distance of normalised rows to the 2nd nearest
    Q = X / np.linalg.norm(X, axis=1, keepdims=True)
    B = X[vrf.zsf_indices_] / np.linalg.norm(X[vrf.zsf_indices_], axis=1, keepdims=True)
    d = np.sort(((Q[:, None, :] - B[None, :, :]) ** 2).sum(-1), axis=1)[:, 1]
    assert_allclose(vrf.zsf_distances(X), d, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"faiss.*float64"):
        VRFEnsembleClassifier(
            _zs(text), LogisticRegression(), bank_dtype="float64", knn_backend="faiss"
        ).fit(X, NAMES[y])


# ------------------------------------------------------- the use-as-is rule
def test_fixed_heads_predict_without_fit_and_are_used_as_is(data):
    from sklearn.utils import get_tags

    from skvrf import ClassMappedClassifier, LinearHeadClassifier, LogitsClassifier
    from skvrf._base import used_as_is

    X, y, text = data
    zs = _zs(text)
    assert not get_tags(zs).requires_fit and used_as_is(zs)
    assert_array_equal(zs.predict(X), clone_fit(zs, X).predict(X))
    head = LinearHeadClassifier(text, classes=NAMES)
    assert_allclose(head.predict_proba(X), clone_fit(head, X).predict_proba(X))
    logits = X[:, :3]
    assert_array_equal(
        LogitsClassifier().predict(logits),
        clone_fit(LogitsClassifier(), logits).predict(logits),
    )
    with pytest.raises(ValueError, match="weights for 5 features"):
        ZeroShotClassifier(text[:, :5]).predict(X)
    fitted = OutputSpaceEnsembleClassifier(zs, LogisticRegression()).fit(X, NAMES[y])
    view = ClassMappedClassifier(fitted, ["cat", "dog"])
    fitted_view = ClassMappedClassifier(fitted, ["cat", "dog"]).fit(X)
    assert_array_equal(view.predict(X), fitted_view.predict(X))

    class OldStyle(LogisticRegression):
        learns_nothing = True

    with pytest.warns(FutureWarning, match="learns_nothing"):
        assert used_as_is(OldStyle())


def clone_fit(est, X):
    from sklearn.base import clone

    return clone(est).fit(X)


def test_fitted_embedding_frozen_or_deprecated(data):
    from sklearn.decomposition import PCA

    X, y, text = data
    pca = PCA(3).fit(X[:40])
    frozen = VRFEnsembleClassifier(
        _zs(text), LogisticRegression(), embedding=FrozenEstimator(pca)
    ).fit(X, NAMES[y])
    assert frozen.embedding_.estimator is pca
    with pytest.warns(FutureWarning, match="FrozenEstimator"):
        old = VRFEnsembleClassifier(_zs(text), LogisticRegression(), embedding=pca)
        old.fit(X, NAMES[y])
    assert old.embedding_ is pca
    refit = VRFEnsembleClassifier(
        _zs(text), LogisticRegression(), embedding=PCA(3)
    ).fit(X, NAMES[y])
    assert refit.embedding_ is not pca
    # an unfitted embedding is fitted on X (the check above holds for any clone)
    assert refit.embedding_.n_samples_ == len(X) != pca.n_samples_


def test_cv_search_predicts_as_an_independent_fit_of_its_best_params(data):
    X, y, text = data
    kw = {"random_state": 0, "calibrate": False}
    search = VRFEnsembleClassifierCV(
        _zs(text),
        LogisticRegression(),
        ks=(1, 3),
        thresholds=(1.2, 1.6),
        temperatures=(0.3,),
        cv=3,
        **kw,
    ).fit(X, NAMES[y])
    alone = VRFEnsembleClassifier(
        _zs(text), LogisticRegression(), **search.best_params_, **kw
    ).fit(X, NAMES[y])
    assert_allclose(search.predict_proba(X), alone.predict_proba(X), rtol=1e-10)
    assert_array_equal(search.predict(X), alone.predict(X))
    assert_allclose(search.ensemble_weights(X), alone.ensemble_weights(X), rtol=1e-10)
    assert_allclose(search.zsf_distances(X), alone.zsf_distances(X), rtol=1e-10)
    d, idx = search.zsf_neighbors(X[:5], 2)
    d_alone, idx_alone = alone.zsf_neighbors(X[:5], 2)
    assert_array_equal(idx, idx_alone)
    assert_allclose(d, d_alone, rtol=1e-10)
