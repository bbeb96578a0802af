"""``sample_weight`` end to end, and its metadata routing.

Metamorphic relations (each against the unweighted estimator on other rows,
never a hand-written number): integer weights equal repeating rows; all-ones
weights equal no weights; weight 0 equals dropping the row (the ZSF set
included). Exact where the fit involves no folds (components used as they
are, or calibrated on ``X_val``); out-of-fold calibration assigns a repeated
row to other folds than its weighted original, so there the relations are not
exact (tests/test_common.py lists that check as an expected failure).
Independent oracles: brute-force weighted k-th neighbours, ``np.quantile`` of
repeated values, and ``GridSearchCV`` with metadata routing for the search.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, PredefinedSplit, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skvrf import (
    EntropyEnsembleClassifier,
    HeldOut,
    OutputSpaceEnsembleClassifier,
    SelectiveEnsembleClassifier,
    VRFEnsembleClassifier,
    VRFEnsembleClassifierCV,
    ZeroShotClassifier,
)
from skvrf._calibration import (
    ChunkedTemperature,
    fit_confidence_temperature,
    fit_temperature,
)
from skvrf._grids import DistanceQuantiles, DistanceSpread, weighted_quantile
from skvrf._label_bias import estimate_label_bias
from skvrf._selective import fit_gaussians, tpr_threshold
from skvrf.neighbors import kth_neighbor_distances
from skvrf.neighbors._weighted import weighted_kth_neighbor_distances

NAMES = np.array(["zebra", "apple", "mango"])  # unsorted string labels


class SpyLR(LogisticRegression):
    """A LogisticRegression that records the sample_weight its fit got."""

    def fit(self, X, y, sample_weight=None):
        self.seen_weight_ = None if sample_weight is None else np.array(sample_weight)
        return super().fit(X, y, sample_weight=sample_weight)


def _data(n=240, seed=0, d=8):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, d))
    yi = rng.integers(0, 3, n)
    X = centers[yi] + rng.normal(scale=0.9, size=(n, d))
    # the head knows the classes in its own (unsorted) order
    head = centers + rng.normal(scale=0.7, size=(3, d))
    zs = ZeroShotClassifier(head, classes=NAMES)
    return X, NAMES[yi], zs, rng


def _frozen_ft(X, y):
    return FrozenEstimator(LogisticRegression(max_iter=1000).fit(X, y))


def _estimators(zs, ft):
    vrf = dict(threshold=1.0, temperature=0.3, bank_dtype="float64")
    return {
        "vrf-k5": VRFEnsembleClassifier(zs, ft, k=5, **vrf),
        "vrf-auto-gla": VRFEnsembleClassifier(
            zs, ft, k="auto", logit_adjustment="gla", **vrf
        ),
        "vrf-authors-confidence": VRFEnsembleClassifier(
            zs, ft, k="authors", calibration_method="confidence", **vrf
        ),
        "vrf-all-logit": VRFEnsembleClassifier(
            zs, ft, k=7, zsf_rule="all", mixing="logit", **vrf
        ),
        "ose": OutputSpaceEnsembleClassifier(zs, ft, alpha=0.4),
        "entropy": EntropyEnsembleClassifier(zs, ft),
        "msp": SelectiveEnsembleClassifier(zs, ft, id_score="msp"),
        "energy": SelectiveEnsembleClassifier(
            zs, ft, id_score="energy", weighting="sigmoid"
        ),
        "md": SelectiveEnsembleClassifier(zs, ft, id_score="mahalanobis"),
        "rmd": SelectiveEnsembleClassifier(zs, ft, id_score="relative_mahalanobis"),
        "knn": SelectiveEnsembleClassifier(
            zs, ft, id_score="knn", k=4, weighting="sigmoid"
        ),
    }


ESTIMATOR_NAMES = list(_estimators(None, None))


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # threshold range, k clipped
        return clone(est).fit(X, y, **kw)


def _assert_same_model(a, b, X_test, rtol=1e-9):
    assert_array_equal(a.classes_, b.classes_)
    for name in ("zeroshot", "finetuned"):
        assert_allclose(
            a.calibration_temperatures_[name],
            b.calibration_temperatures_[name],
            rtol=rtol,
        )
    assert_allclose(
        a.predict_proba(X_test), b.predict_proba(X_test), rtol=rtol, atol=1e-12
    )
    if hasattr(a, "ensemble_weights"):
        assert_allclose(
            a.ensemble_weights(X_test), b.ensemble_weights(X_test), atol=1e-9
        )
    if hasattr(a, "k_"):
        assert a.k_ == b.k_


@pytest.mark.parametrize("working_memory", [None, 0.01])
@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_integer_weights_equal_repeated_rows(name, working_memory):
    # working_memory=0.01 MiB: the training rows come in chunks, so the
    # streamed temperatures (ChunkedTemperature) are weighted chunk by chunk
    X, y, zs, rng = _data()
    est = _estimators(zs, _frozen_ft(X, y))[name]
    w = rng.integers(0, 4, y.size).astype(float)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    X_test = rng.normal(size=(60, X.shape[1]))
    with sklearn.config_context(working_memory=working_memory or 1024):
        weighted = _fit(est, X, y, sample_weight=w)
        repeated = _fit(est, X[rep], y[rep])
    _assert_same_model(weighted, repeated, X_test)
    if isinstance(weighted, VRFEnsembleClassifier):
        # the bank holds each ZSF row once, with its weight
        assert_array_equal(np.unique(rep[repeated.zsf_indices_]), weighted.zsf_indices_)
        assert_allclose(weighted.zsf_sample_weight_.sum(), repeated.zsf_indices_.size)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_unit_weights_equal_no_weights(name):
    X, y, zs, rng = _data(seed=1)
    est = _estimators(zs, _frozen_ft(X, y))[name]
    X_test = rng.normal(size=(40, X.shape[1]))
    a = _fit(est, X, y, sample_weight=np.ones(y.size))
    b = _fit(est, X, y)
    _assert_same_model(a, b, X_test, rtol=1e-12)
    if isinstance(a, VRFEnsembleClassifier):
        assert a.zsf_sample_weight_ is None  # the unweighted search, exactly
        assert_array_equal(a.zsf_indices_, b.zsf_indices_)


@pytest.mark.parametrize("name", ESTIMATOR_NAMES)
def test_zero_weight_equals_dropping_the_row(name):
    X, y, zs, rng = _data(seed=2)
    est = _estimators(zs, _frozen_ft(X, y))[name]
    w = rng.uniform(0.5, 2.0, y.size)
    w[rng.random(y.size) < 0.3] = 0.0
    kept = np.flatnonzero(w > 0)
    X_test = rng.normal(size=(40, X.shape[1]))
    a = _fit(est, X, y, sample_weight=w)
    b = _fit(est, X[kept], y[kept], sample_weight=w[kept])
    _assert_same_model(a, b, X_test, rtol=1e-12)
    if isinstance(a, VRFEnsembleClassifier):  # the ZSF set included
        assert_array_equal(a.zsf_indices_, kept[b.zsf_indices_])
        assert_array_equal(a.zsf_embeddings_, b.zsf_embeddings_)
        assert np.all(w[a.zsf_indices_] > 0)


def test_weights_reach_the_fitted_components_and_x_val_calibration():
    X, y, zs, rng = _data(seed=3)
    X_val, y_val = X[:60], y[:60]
    X, y = X[60:], y[60:]
    w = rng.integers(0, 3, y.size).astype(float)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    X_test = rng.normal(size=(40, X.shape[1]))
    kw = dict(k=3, threshold=1.0, temperature=0.3, bank_dtype="float64")
    a = VRFEnsembleClassifier(zs, SpyLR(max_iter=2000, tol=1e-10), **kw)
    a.fit(X, y, X_val=X_val, y_val=y_val, sample_weight=w)
    assert_array_equal(a.finetuned_estimator_.seen_weight_, w)
    b = VRFEnsembleClassifier(zs, SpyLR(max_iter=2000, tol=1e-10), **kw)
    b.fit(X[rep], y[rep], X_val=X_val, y_val=y_val)
    # the same penalised objective, solved by lbfgs to tol 1e-10
    assert_allclose(
        a.finetuned_estimator_.coef_, b.finetuned_estimator_.coef_, atol=1e-5
    )
    assert_allclose(a.predict_proba(X_test), b.predict_proba(X_test), atol=1e-5)


def test_pipeline_component_gets_the_weights_at_its_last_step():
    X, y, zs, rng = _data(seed=4)
    w = rng.uniform(0.5, 2, y.size)
    ft = make_pipeline(StandardScaler(), SpyLR(max_iter=500))
    vrf = VRFEnsembleClassifier(zs, ft, calibrate=False, k=2).fit(X, y, sample_weight=w)
    assert_array_equal(vrf.finetuned_estimator_[-1].seen_weight_, w)


def test_out_of_fold_calibration_splits_the_weights_with_the_rows():
    X, y, zs, rng = _data(seed=5)
    w = rng.uniform(0.5, 2, y.size)
    seen = []

    class Recorder(SpyLR):
        def fit(self, X, y, sample_weight=None):
            seen.append(None if sample_weight is None else len(sample_weight))
            return super().fit(X, y, sample_weight=sample_weight)

    VRFEnsembleClassifier(zs, Recorder(), calibration_cv=3, k=2).fit(
        X, y, sample_weight=w
    )
    # three folds of about 2/3 of the rows each, then the full fit
    assert sorted(seen)[-1] == y.size and len(seen) == 4
    assert all(s is not None and s < y.size for s in sorted(seen)[:3])


def test_component_without_sample_weight_warns_and_is_fitted_unweighted():
    X, y, zs, _ = _data(seed=6)

    class NoWeights(DecisionTreeClassifier):
        def fit(self, X, y):
            return super().fit(X, y)

    with pytest.warns(UserWarning, match="does not take sample_weight"):
        VRFEnsembleClassifier(zs, NoWeights(max_depth=2), calibrate=False, k=2).fit(
            X, y, sample_weight=np.ones(y.size)
        )


@pytest.mark.parametrize(
    "weights, match",
    [
        (-np.ones(240), "[Nn]egative"),
        (np.zeros(240), "non-zero|every sample_weight is 0"),
        (np.ones(7), "7"),
        (np.r_[np.nan, np.ones(239)], "NaN|nan|finite"),
    ],
)
def test_bad_weights_are_refused_by_name(weights, match):
    X, y, zs, _ = _data()
    for est in (
        VRFEnsembleClassifier(zs, _frozen_ft(X, y)),
        VRFEnsembleClassifierCV(zs, _frozen_ft(X, y), cv=3),
    ):
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, sample_weight=weights)


def test_other_metadata_needs_routing():
    X, y, zs, _ = _data()
    with pytest.raises(ValueError, match="metadata routing"):
        VRFEnsembleClassifier(zs, LogisticRegression()).fit(X, y, groups=y)


# ------------------------------------------------------------- oracles


@pytest.mark.parametrize("seed", range(5))
def test_weighted_kth_neighbour_against_repeated_bank_and_brute_force(seed):
    rng = np.random.default_rng(seed)
    bank = rng.normal(size=(40, 6))
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    q = rng.normal(size=(25, 6))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w = rng.integers(1, 4, 40).astype(float)
    ks = [1, 2, 5, 17, int(w.sum())]
    got = weighted_kth_neighbor_distances(q, bank, ks, w, backend="numpy")
    repeated = kth_neighbor_distances(
        q, np.repeat(bank, w.astype(int), axis=0), ks, backend="numpy"
    )
    assert_allclose(got, repeated, atol=1e-12)
    # fractional weights: brute force (sort, accumulate, first reach)
    w = rng.uniform(0.1, 2.0, 40)
    d = np.clip(2 - 2 * q @ bank.T, 0, 4)
    for k in (1, 2.5, 6, 1e6):  # 1e6: above the whole weight, the farthest row
        order = np.argsort(d, axis=1, kind="stable")
        reached = np.cumsum(w[order], axis=1)
        first = np.argmax(reached >= min(k, w.sum()) * (1 - 1e-12), axis=1)
        expected = d[np.arange(len(q)), order[np.arange(len(q)), first]]
        got = weighted_kth_neighbor_distances(q, bank, k, w, backend="numpy")
        assert_allclose(got, expected, atol=1e-12)


def test_weighted_quantiles_and_spread_equal_those_of_repeated_values():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        d = rng.random(n) * 10.0 ** rng.integers(-3, 1)  # compressed or spread
        w = rng.integers(0, 4, n).astype(float)
        if not w.any():
            w[0] = 1
        rep = np.repeat(d, w.astype(int))
        q = rng.random(6)
        assert_allclose(weighted_quantile(d[w > 0], q, w[w > 0]), np.quantile(rep, q))
        assert_allclose(
            DistanceQuantiles().values(d, w), DistanceQuantiles().values(rep)
        )
        assert_allclose(DistanceSpread().values(d, w), DistanceSpread().values(rep))


def test_weighted_building_blocks_equal_repeated_rows():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 3)) * 3
    y = rng.integers(0, 3, 50)
    classes = np.array([2, 0, 1])  # any column order
    w = rng.integers(0, 4, 50).astype(float)
    rep = np.repeat(np.arange(50), w.astype(int))
    for fit in (fit_temperature, fit_confidence_temperature):
        assert_allclose(
            fit(z, y, classes, sample_weight=w), fit(z[rep], y[rep], classes), rtol=1e-9
        )
    chunked = ChunkedTemperature(classes)
    while not chunked.done:
        for part in np.array_split(np.arange(50), 4):
            chunked.add(z[part], y[part], w[part])
        chunked.finish_pass()
    assert_allclose(
        chunked.temperature, fit_temperature(z[rep], y[rep], classes), rtol=1e-7
    )
    assert_allclose(
        estimate_label_bias(z, y, classes, w),
        estimate_label_bias(z[rep], y[rep], classes),
        atol=1e-6,
    )
    s = rng.normal(size=50)
    for tpr in (0.5, 0.9, 0.95, 1.0):
        assert tpr_threshold(s, tpr, w) == tpr_threshold(s[rep], tpr)
    E = rng.normal(size=(50, 4))
    a, b = fit_gaussians(E, y, sample_weight=w), fit_gaussians(E[rep], y[rep])
    for key in a:
        assert_allclose(
            a[key] @ a[key].T if key.startswith("whiten") else a[key],
            b[key] @ b[key].T if key.startswith("whiten") else b[key],
            rtol=1e-9,
            atol=1e-12,
        )


# ------------------------------------------------------------- the search


def _search_data(seed=0):
    X, y, zs, rng = _data(n=300, seed=seed)
    return X, y, zs, _frozen_ft(X, y), rng


def test_search_with_unit_weights_equals_no_weights():
    X, y, zs, ft, _ = _search_data()
    kw = dict(ks=(1, 3, "auto"), cv=3)
    a = VRFEnsembleClassifierCV(zs, ft, **kw).fit(X, y, sample_weight=np.ones(y.size))
    b = VRFEnsembleClassifierCV(zs, ft, **kw).fit(X, y)
    assert_allclose(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"])
    assert a.best_params_ == pytest.approx(b.best_params_)


def test_search_with_zero_weights_equals_dropping_the_rows():
    X, y, zs, ft, rng = _search_data(seed=1)
    w = rng.uniform(0.5, 2.0, y.size)
    w[rng.random(y.size) < 0.25] = 0
    fold = np.arange(y.size) % 3
    kept = np.flatnonzero(w > 0)
    kw = dict(ks=(1, 3, "auto"), scoring="neg_log_loss")
    a = VRFEnsembleClassifierCV(zs, ft, cv=PredefinedSplit(fold), **kw)
    a.fit(X, y, sample_weight=w)
    b = VRFEnsembleClassifierCV(zs, ft, cv=PredefinedSplit(fold[kept]), **kw)
    b.fit(X[kept], y[kept], sample_weight=w[kept])
    for key in ("mean_test_score", "mean_finetuned_weight"):
        assert_allclose(a.cv_results_[key], b.cv_results_[key], rtol=1e-9)
    assert a.best_index_ == b.best_index_
    X_test = rng.normal(size=(30, X.shape[1]))
    assert_allclose(a.predict_proba(X_test), b.predict_proba(X_test), rtol=1e-9)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_search_equals_grid_search_cv_with_routed_weights(scoring):
    # GridSearchCV over the values the search tried, its weights routed to
    # each VRF fit and to the scorer: the same weighted scores
    X, y, zs, ft, rng = _search_data(seed=2)
    w = rng.integers(1, 4, y.size).astype(float)
    cv = PredefinedSplit(np.arange(y.size) % 3)
    search = VRFEnsembleClassifierCV(zs, ft, ks=(1, 3, 10), cv=cv, scoring=scoring)
    search.fit(X, y, sample_weight=w)
    metric = "accuracy" if scoring == "accuracy" else "neg_log_loss"
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = sklearn.metrics.get_scorer(metric).set_score_request(
            sample_weight=True
        )
        vrf = VRFEnsembleClassifier(zs, ft).set_fit_request(sample_weight=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            grid = GridSearchCV(vrf, search.param_grid_, cv=cv, scoring=scorer)
            grid.fit(X, y, sample_weight=w)
    assert_allclose(
        search.cv_results_["mean_test_score"],
        grid.cv_results_["mean_test_score"],
        rtol=1e-9,
        atol=1e-12,
    )
    assert search.best_index_ == grid.best_index_


# ------------------------------------------------------------- routing


def test_metadata_routing_through_pipeline_grid_search_and_cross_validate():
    X, y, zs, rng = _data(seed=7)
    w = rng.uniform(0.5, 2.0, y.size)
    with sklearn.config_context(enable_metadata_routing=True):
        ft = SpyLR(max_iter=500).set_fit_request(sample_weight=True)
        vrf = VRFEnsembleClassifier(zs, ft, k=2, threshold=0.4, calibrate=False)
        vrf.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        routing = vrf.get_metadata_routing()
        assert "finetuned_estimator" in str(routing)
        # Pipeline -> VRF -> fine-tuned component
        pipe = Pipeline([("vrf", vrf)]).fit(X, y, sample_weight=w)
        assert_array_equal(pipe[-1].finetuned_estimator_.seen_weight_, w)
        # GridSearchCV -> VRF -> component: each fold's rows' weights
        grid = GridSearchCV(vrf, {"k": [1, 2]}, cv=3, refit=True)
        grid.fit(X, y, sample_weight=w)
        assert_array_equal(grid.best_estimator_.finetuned_estimator_.seen_weight_, w)
        out = cross_validate(
            vrf, X, y, cv=3, params={"sample_weight": w}, return_estimator=True
        )
        seen = [e.finetuned_estimator_.seen_weight_.size for e in out["estimator"]]
        assert sum(seen) == 2 * y.size
        # a component that did not say whether it wants the weights
        unset = VRFEnsembleClassifier(zs, SpyLR(), calibrate=False)
        with pytest.raises(UnsetMetadataPassedError, match=r"SpyLR\.fit"):
            unset.fit(X, y, sample_weight=w)
        # one that declined them is fitted unweighted; the ensemble still uses them
        declined = VRFEnsembleClassifier(
            zs, SpyLR().set_fit_request(sample_weight=False), calibrate=False, k=2
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the threshold's range
            declined.fit(X, y, sample_weight=w)
        assert declined.finetuned_estimator_.seen_weight_ is None
        # the search: components and splitter
        search = VRFEnsembleClassifierCV(zs, ft, ks=(1, 2), cv=3, calibrate=False)
        search.fit(X, y, sample_weight=w)
        assert_array_equal(search.best_estimator_.finetuned_estimator_.seen_weight_, w)
        assert "splitter" in str(search.get_metadata_routing())


def test_search_weights_reach_the_folds_and_the_refit():
    X, y, zs, rng = _data(seed=8)
    w = rng.uniform(0.5, 2.0, y.size)
    search = VRFEnsembleClassifierCV(
        zs, SpyLR(max_iter=500), ks=(1, 2), cv=3, calibrate=False
    ).fit(X, y, sample_weight=w, X_val=HeldOut(X[:30], y[:30]))
    assert_array_equal(search.best_estimator_.finetuned_estimator_.seen_weight_, w)
    score = search.score(X, y, sample_weight=w)
    assert score == pytest.approx(accuracy_score(y, search.predict(X), sample_weight=w))


# ------------------------------------------------------- held-out weights


def test_held_out_weights_equal_repeated_validation_rows():
    X, y, zs, rng = _data(n=300, seed=9)
    X_val, y_val, X, y = X[:70], y[:70], X[70:], y[70:]
    w_val = rng.integers(0, 4, 70).astype(float)
    rep = np.repeat(np.arange(70), w_val.astype(int))
    X_test = rng.normal(size=(40, X.shape[1]))
    kw = dict(k=3, threshold=0.5, temperature=0.2, bank_dtype="float64")
    ft = SpyLR(max_iter=1000)
    a = _fit(
        VRFEnsembleClassifier(zs, ft, **kw),
        X,
        y,
        X_val=HeldOut(X_val, y_val, sample_weight=w_val),
    )
    b = _fit(
        VRFEnsembleClassifier(zs, ft, **kw), X, y, X_val=HeldOut(X_val[rep], y_val[rep])
    )
    _assert_same_model(a, b, X_test)
    # the search: folds calibrated on the weighted rows, and the refit's
    # thresholds at weighted quantiles of X_val's distances
    cv = PredefinedSplit(np.arange(y.size) % 3)
    search = dict(ks=(1, 3), cv=cv)
    a = VRFEnsembleClassifierCV(zs, ft, **search).fit(
        X, y, X_val=HeldOut(X_val, y_val, sample_weight=w_val)
    )
    b = VRFEnsembleClassifierCV(zs, ft, **search).fit(
        X, y, X_val=HeldOut(X_val[rep], y_val[rep])
    )
    assert_allclose(a.cv_results_["mean_test_score"], b.cv_results_["mean_test_score"])
    assert a.best_params_ == pytest.approx(b.best_params_, rel=1e-9)
    # tune_fitted on weighted validation rows
    from skvrf._search import tune_fitted

    vrf = _fit(VRFEnsembleClassifier(zs, ft, **kw), X, y)
    _, info_w = tune_fitted(vrf, X_val, y_val, ks=(1, 3), sample_weight=w_val)
    _, info_r = tune_fitted(vrf, X_val[rep], y_val[rep], ks=(1, 3))
    assert info_w["best_params"] == pytest.approx(info_r["best_params"], rel=1e-9)
    assert info_w["val_accuracy"] == pytest.approx(info_r["val_accuracy"], rel=1e-12)


def test_held_out_pickles_with_its_weights():
    import pickle

    held = HeldOut(np.zeros((3, 2)), [0, 1, 0], sample_weight=[1, 2, 0])
    back = pickle.loads(pickle.dumps(held))
    assert_array_equal(back.sample_weight, [1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        HeldOut(np.zeros((2, 1)), [0, 1], sample_weight=[1, -1])


def test_k_clipped_to_the_summed_weight_as_to_the_repeated_rows():
    X, y, zs, rng = _data(n=120, seed=10)
    ft = _frozen_ft(X, y)
    w = np.where(rng.random(y.size) < 0.9, 0.0, 2.0)  # a small weighted bank
    rep = np.repeat(np.arange(y.size), w.astype(int))
    kw = dict(k=500, threshold=0.5, temperature=0.2, bank_dtype="float64")
    with pytest.warns(UserWarning, match="k is clipped"):
        a = VRFEnsembleClassifier(zs, ft, **kw).fit(X, y, sample_weight=w)
    with pytest.warns(UserWarning, match="k is clipped"):
        b = VRFEnsembleClassifier(zs, ft, **kw).fit(X[rep], y[rep])
    assert a.k_ == b.k_ == b.zsf_indices_.size
    X_test = rng.normal(size=(20, X.shape[1]))
    assert_allclose(a.zsf_distances(X_test), b.zsf_distances(X_test), atol=1e-12)


@pytest.mark.parametrize("labels", ["ints", "strings"])
def test_repeat_relation_when_the_zero_shot_head_knows_two_classes(labels):
    # the zero-shot head knows two of the three classes; the weights still act
    # as repetitions (ZSF set, temperatures on the known rows, k)
    X, y, zs, rng = _data(seed=11)
    names = np.array([7, -1, 3]) if labels == "ints" else NAMES
    y = names[[list(NAMES).index(v) for v in y]]  # the same classes, renamed
    head = ZeroShotClassifier(zs.class_embeddings[1:], classes=names[1:])
    ft = _frozen_ft(X, y)
    w = rng.integers(0, 4, y.size).astype(float)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    X_test = rng.normal(size=(30, X.shape[1]))
    kw = dict(k=4, threshold=1.0, temperature=0.3, bank_dtype="float64")
    a = _fit(VRFEnsembleClassifier(head, ft, **kw), X, y, sample_weight=w)
    b = _fit(VRFEnsembleClassifier(head, ft, **kw), X[rep], y[rep])
    assert_array_equal(a.classes_, np.sort(names))
    _assert_same_model(a, b, X_test)


@pytest.mark.parametrize("bank_dtype", ["float16", "float32"])
def test_repeat_relation_on_a_low_precision_bank_and_one_row(bank_dtype):
    # distances in float32 (a float16 bank cast block by block): the weighted
    # search and the repeated bank's sum their products in other blocks, so
    # they agree to float32 rounding of unit-vector distances (a few 1e-7),
    # not bit for bit; a single query row goes through the same path
    X, y, zs, rng = _data(seed=12)
    ft = _frozen_ft(X, y)
    w = rng.integers(0, 4, y.size).astype(float)
    rep = np.repeat(np.arange(y.size), w.astype(int))
    kw = dict(k=4, threshold=1.0, temperature=0.3, bank_dtype=bank_dtype)
    a = _fit(VRFEnsembleClassifier(zs, ft, **kw), X, y, sample_weight=w)
    b = _fit(VRFEnsembleClassifier(zs, ft, **kw), X[rep], y[rep])
    X_test = rng.normal(size=(25, X.shape[1])).astype(np.float16)
    assert_allclose(a.zsf_distances(X_test), b.zsf_distances(X_test), atol=1e-5)
    assert_allclose(a.predict_proba(X_test), b.predict_proba(X_test), atol=1e-5)
    assert a.predict_proba(X_test[:1]).shape == (1, 3)
    # one row against 25: other GEMM blocks, the same float32 rounding bound
    assert_allclose(a.predict_proba(X_test[:1]), a.predict_proba(X_test)[:1], atol=1e-6)
