"""VRFEnsembleClassifierCV: the same results as GridSearchCV, faster; contract."""

import pickle

import numpy as np
import pytest
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvrf import VRFEnsembleClassifier, VRFEnsembleClassifierCV, ZeroShotClassifier
from skvrf.utils._testing import noisy_centres

# Clipping k to a small ZSF set and empty ZSF sets warn, in both searches alike.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _data(n=240, d=8, c=4, seed=0, labels=None):
    X, y, _, text = noisy_centres(n, d, c, noise=1.1, text_noise=0.9, seed=seed)
    if labels is not None:
        y = np.asarray(labels)[y]
    return X, y, text


def _zs(text, classes=None):
    return ZeroShotClassifier(text, classes=classes, logit_scale=10.0)


def _lr():
    return LogisticRegression(max_iter=500)


def _ft():
    # closed-form fit: the reference GridSearchCV refits it many times
    return RidgeClassifier(alpha=1.0)


def _search(zs, ft, grid, **params):
    """The CV search over ``grid`` (GridSearchCV's keys)."""
    return VRFEnsembleClassifierCV(
        zs,
        ft,
        ks=grid["k"],
        thresholds=grid["threshold"],
        temperatures=grid["temperature"],
        **params,
    )


def _both(zs, ft, X, y, grid, cv, scoring, **params):
    search = _search(zs, ft, grid, cv=cv, scoring=scoring, **params).fit(X, y)
    reference = GridSearchCV(
        VRFEnsembleClassifier(zs, ft, **params), grid, cv=cv, scoring=scoring
    ).fit(X, y)
    return search, reference


# The search and GridSearchCV compute the same float32 distances through other
# code paths (one pass over every k, or one k per fit), which BLAS may round
# differently: |dd| <= 2 * 2 * 8 * 2**-24 ~ 2e-6 (8 features). A log-loss term
# moves by at most |dd| / temperature (0.2 at least in these grids): 1e-5;
# accuracy moves only if a prediction flips.
SCORE_ATOL = 1e-5


def _assert_same_search(search, reference):
    res, ref = search.cv_results_, reference.cv_results_
    assert res["params"] == ref["params"]
    for key in ("param_k", "param_threshold", "param_temperature"):
        assert isinstance(res[key], np.ma.MaskedArray)
        assert res[key].dtype == ref[key].dtype
        assert_array_equal(res[key].mask, ref[key].mask)
        assert res[key].tolist() == ref[key].tolist()
    n_splits = reference.n_splits_
    assert search.n_splits_ == n_splits
    for key in [f"split{i}_test_score" for i in range(n_splits)] + [
        "mean_test_score",
        "std_test_score",
    ]:
        assert_allclose(res[key], ref[key], rtol=0, atol=SCORE_ATOL, err_msg=key)
    assert_array_equal(res["rank_test_score"], ref["rank_test_score"])
    assert search.best_index_ == reference.best_index_
    assert search.best_params_ == reference.best_params_
    assert search.best_score_ == pytest.approx(reference.best_score_, abs=SCORE_ATOL)


GRID = {
    # 500 and 1000 exceed every fold's ZSF set: clipped to it, so they tie
    "k": [1, 500, "auto", 1000],
    "threshold": [0.8, 1.4],
    "temperature": [0.2, 0.5],
}


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
@pytest.mark.parametrize("calibrate", [False, True])
def test_same_as_grid_search(scoring, calibrate):
    X, y, text = _data()
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    search, reference = _both(
        _zs(text),
        _ft(),
        X,
        y,
        GRID,
        cv,
        scoring,
        calibrate=calibrate,
        calibration_cv=3,
        random_state=0,
    )
    _assert_same_search(search, reference)
    ranks = search.cv_results_["rank_test_score"]
    assert len(np.unique(ranks)) < len(ranks)  # the clipped ks tie
    assert_array_equal(search.predict(X), reference.predict(X))
    assert_allclose(search.predict_proba(X), reference.predict_proba(X))
    assert search.best_estimator_.get_params()["k"] == reference.best_params_["k"]


@pytest.mark.parametrize(
    "params, scoring",
    [
        ({"weighting": "step"}, "accuracy"),  # every temperature ties
        ({"weighting": "step"}, "neg_log_loss"),
        ({"weighting": "linear", "mixing": "logit"}, "neg_log_loss"),
        ({"zsf_rule": "zeroshot_errors", "calibrate": False}, "accuracy"),
    ],
)
def test_same_as_grid_search_variants_and_ties(params, scoring):
    X, y, text = _data(n=180, seed=3)
    grid = {
        "k": [2, "auto", "authors"],
        "threshold": [1.0, 1.4],
        "temperature": [0.3, 1],
    }
    cv = KFold(3, shuffle=True, random_state=0)
    search, reference = _both(
        _zs(text), _ft(), X, y, grid, cv, scoring, random_state=0, **params
    )
    _assert_same_search(search, reference)


def test_binary_string_labels_and_calibration_data():
    X, y, text = _data(n=200, c=2, seed=5, labels=["cat", "dog"])
    X_val, y_val, _ = _data(n=60, c=2, seed=6, labels=["cat", "dog"])
    grid = {"k": [1, 4, "auto"], "threshold": [1.0, 1.5], "temperature": [0.4, 0.8]}
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    for scoring in ("accuracy", "neg_log_loss"):
        search = _search(
            _zs(text, ["cat", "dog"]), _ft(), grid, cv=cv, scoring=scoring
        ).fit(X, y, X_val=X_val, y_val=y_val)
        reference = GridSearchCV(
            VRFEnsembleClassifier(_zs(text, ["cat", "dog"]), _ft()),
            grid,
            cv=cv,
            scoring=scoring,
        ).fit(X, y, X_val=X_val, y_val=y_val)
        _assert_same_search(search, reference)
        assert_array_equal(search.classes_, ["cat", "dog"])
        assert_allclose(
            search.best_estimator_.calibration_temperatures_["finetuned"],
            reference.best_estimator_.calibration_temperatures_["finetuned"],
        )


def test_empty_zsf_set_gives_zero_weights_and_ties():
    # Both components are the same model: no row is a zero-shot failure only.
    X, y, _ = _data(n=150, c=3, seed=2)
    grid = {"k": [1, "auto"], "threshold": [1.0, 1.5], "temperature": [0.5]}
    cv = KFold(3, shuffle=True, random_state=0)
    for scoring in ("accuracy", "neg_log_loss"):
        search, reference = _both(
            _ft(), _ft(), X, y, grid, cv, scoring, calibrate=False
        )
        _assert_same_search(search, reference)
        assert_array_equal(search.cv_results_["rank_test_score"], 1)
        assert search.best_index_ == 0
        assert_array_equal(search.ensemble_weights(X), 0.0)


def test_log_loss_nan_when_a_fold_misses_a_class():
    # KFold without shuffling on sorted labels: a fold's validation labels lack
    # classes of the ensemble, and sklearn's neg_log_loss scorer fails there.
    X, y, text = _data(n=120, c=3, seed=4)
    order = np.argsort(y, kind="stable")
    X, y = X[order], y[order]
    grid = {"k": [1, "auto"], "threshold": [1.2], "temperature": [0.5]}
    search, reference = _both(
        _zs(text), _ft(), X, y, grid, KFold(2), "neg_log_loss", calibrate=False
    )
    assert np.isnan(search.cv_results_["split0_test_score"]).all()
    res, ref = search.cv_results_, reference.cv_results_
    for key in ("split0_test_score", "split1_test_score", "mean_test_score"):
        assert_allclose(res[key], ref[key], rtol=0, atol=SCORE_ATOL, equal_nan=True)
    assert_array_equal(res["rank_test_score"], ref["rank_test_score"])
    assert search.best_params_ == reference.best_params_


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1_macro"])
def test_other_scorers_fall_back_to_the_estimator(scoring):
    X, y, text = _data(n=150, seed=7)
    grid = {"k": [1, "auto", 400], "threshold": [1.0, 1.5], "temperature": [0.3]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search, reference = _both(
        _zs(text), _ft(), X, y, grid, cv, scoring, calibrate=False
    )
    _assert_same_search(search, reference)
    assert search.score(X, y) == pytest.approx(reference.score(X, y))


def test_attributes_delegation_and_refit_false():
    X, y, text = _data(n=150, seed=8)
    kw = {"ks": (1, "auto"), "thresholds": (1.2,), "temperatures": (0.5,), "cv": 3}
    search = VRFEnsembleClassifierCV(_zs(text), _ft(), **kw, random_state=0).fit(X, y)
    best = search.best_estimator_
    assert isinstance(best, VRFEnsembleClassifier)
    assert search.n_features_in_ == X.shape[1]
    assert_array_equal(search.classes_, np.unique(y))
    for method in ("predict", "predict_proba", "ensemble_weights", "zsf_distances"):
        assert_array_equal(getattr(search, method)(X), getattr(best, method)(X))
    assert search.score(X, y) == best.score(X, y)
    assert set(search.cv_results_) >= {
        "mean_fit_time",
        "std_fit_time",
        "mean_score_time",
        "std_score_time",
    }

    lazy = VRFEnsembleClassifierCV(_zs(text), _ft(), **kw, refit=False).fit(X, y)
    assert not hasattr(lazy, "best_estimator_")
    assert not hasattr(lazy, "predict")
    assert lazy.best_params_ == search.best_params_
    assert_array_equal(lazy.classes_, np.unique(y))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"ks": ()}, "ks must hold"),
        ({"ks": (0,)}, "ks must hold"),
        ({"ks": ("nearest",)}, "ks must hold"),
        ({"thresholds": (np.nan,)}, "thresholds must hold"),
        ({"temperatures": (0.0,)}, "temperatures must hold"),
        ({"ks": 3}, "'ks' parameter"),
        ({"scoring": "nope"}, "'scoring' parameter"),
        ({"weighting": "cubic"}, "'weighting' parameter"),
    ],
)
def test_invalid_parameters(params, match):
    X, y, text = _data(n=60)
    with pytest.raises(ValueError, match=match):
        VRFEnsembleClassifierCV(_zs(text), _lr(), **params).fit(X, y)


def test_clone_pickle_and_pipeline():
    X, y, text = _data(n=150, seed=9)
    search = VRFEnsembleClassifierCV(
        _zs(text),
        _ft(),
        ks=(1, "auto"),
        thresholds=(1.0, 1.5),
        temperatures=(0.5,),
        cv=3,
        random_state=0,
    )
    assert clone(search).get_params()["ks"] == (1, "auto")
    search.fit(X, y)
    restored = pickle.loads(pickle.dumps(search))
    assert restored.best_params_ == search.best_params_
    assert_array_equal(restored.predict_proba(X), search.predict_proba(X))

    pipe = make_pipeline(StandardScaler(), clone(search)).fit(X, y)
    assert pipe.predict(X).shape == y.shape
    assert set(pipe[-1].best_params_) == {"k", "threshold", "temperature"}


def test_parallel_folds_give_the_same_result():
    X, y, text = _data(n=150, seed=10)
    kw = {"ks": (1, 5, "auto"), "thresholds": (1.0, 1.5), "cv": 3, "calibrate": False}
    one = VRFEnsembleClassifierCV(_zs(text), _ft(), **kw).fit(X, y)
    with parallel_config(backend="threading"):  # loky's start-up is slow
        two = VRFEnsembleClassifierCV(_zs(text), _ft(), **kw, n_jobs=2).fit(X, y)
    assert_array_equal(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )


@parametrize_with_checks(
    [
        VRFEnsembleClassifierCV(
            _lr(),
            _lr(),
            ks=(1, "auto"),
            thresholds=(1.0, 1.5),
            temperatures=(0.5,),
            cv=3,
            calibrate=False,
        ),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_class_map_and_neighbors_delegate_to_the_best_estimator():
    from skvrf import ZeroShotClassifier
    from skvrf.datasets import make_shifted_features

    data = make_shifted_features(600, 10, 100, 10, n_classes=4, random_state=0)
    X, y = data.train
    search = VRFEnsembleClassifierCV(
        ZeroShotClassifier(data.class_embeddings),
        LogisticRegression(max_iter=500),
        ks=(1, 3),
        thresholds=(1.5,),
        temperatures=(0.6,),
        cv=3,
        calibrate=False,
    ).fit(X, y)
    Xt = data.test[0]
    view = search.with_class_map({"a": [0, 1], "b": [2, 3]})
    expected = search.best_estimator_.with_class_map({"a": [0, 1], "b": [2, 3]})
    np.testing.assert_allclose(view.predict_proba(Xt), expected.predict_proba(Xt))
    d, idx = search.zsf_neighbors(Xt, 2)
    d2, idx2 = search.best_estimator_.zsf_neighbors(Xt, 2)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_allclose(d, d2)


# ------------------------------------------------- selection without OOD labels
@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_mean_finetuned_weight_is_the_candidates_mean_weight(scoring):
    X, y, text = _data(seed=11)
    cv = KFold(3, shuffle=True, random_state=0)
    grid = {"k": [1, 3], "threshold": [0.5, 1.0], "temperature": [0.2, 0.6]}
    search = _search(_zs(text), _ft(), grid, cv=cv, scoring=scoring, refit=False)
    search.fit(X, y)
    res = search.cv_results_
    for i, (train, test) in enumerate(cv.split(X, y)):
        for c, params in enumerate(res["params"]):
            vrf = VRFEnsembleClassifier(_zs(text), _ft(), **params).fit(
                X[train], y[train]
            )
            w = vrf.ensemble_weights(X[test]).mean()
            # float32 distances through two paths: |dw| <= |dd| / (4 b) ~ 3e-6
            assert_allclose(res[f"split{i}_finetuned_weight"][c], w, atol=1e-5)
    folds = np.column_stack([res[f"split{i}_finetuned_weight"] for i in range(3)])
    assert_allclose(res["mean_finetuned_weight"], folds.mean(axis=1))


def _chosen_by_hand(res, tol):
    means, weight = res["mean_test_score"], res["mean_finetuned_weight"]
    best = means.max()
    eligible = [i for i in range(len(means)) if means[i] >= best - tol - 1e-12]
    return min(eligible, key=lambda i: (weight[i], -means[i], i))


@pytest.mark.parametrize("tol", [0.0, 0.02, 0.05, 1.0])
def test_tolerance_selection_rule(tol):
    X, y, text = _data(seed=12)
    kw = dict(
        ks=(1, 3, "auto"),
        thresholds=(0.25, 0.5, 1.0, 1.5),
        temperatures=(0.1, 0.4),
        cv=3,
    )
    best = VRFEnsembleClassifierCV(_zs(text), _ft(), **kw).fit(X, y)
    tolerant = VRFEnsembleClassifierCV(
        _zs(text), _ft(), selection="tolerance", tol=tol, **kw
    ).fit(X, y)
    res = tolerant.cv_results_
    chosen = _chosen_by_hand(res, tol)
    assert tolerant.best_index_ == chosen
    assert tolerant.best_params_ == res["params"][chosen] or (
        tolerant.best_params_["k"] != res["params"][chosen]["k"]  # clipped k
    )
    assert tolerant.best_score_ >= best.best_score_ - tol - 1e-12
    w = res["mean_finetuned_weight"]
    assert w[tolerant.best_index_] <= w[best.best_index_]
    # the same scores and ranks: only the choice differs
    assert_array_equal(res["rank_test_score"], best.cv_results_["rank_test_score"])
    if tol == 1.0:  # every candidate is eligible: the least fine-tuned weight
        assert w[tolerant.best_index_] == w.min()
    refit = tolerant.best_estimator_
    assert refit.threshold == res["params"][chosen]["threshold"]


def test_tolerance_selection_is_validated():
    X, y, text = _data(seed=13)
    with pytest.raises(ValueError, match="tol"):
        VRFEnsembleClassifierCV(_zs(text), _ft(), tol=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="selection"):
        VRFEnsembleClassifierCV(_zs(text), _ft(), selection="smallest").fit(X, y)
