"""Tests of skvrf.evaluation: scorers, evaluate_shifts, reports and alpha sweeps."""

import json
import sys

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss

from skvrf import (
    ClassMappedClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf.evaluation import (
    AlphaSweep,
    RobustnessReport,
    accuracy_from_proba,
    evaluate_shifts,
    expected_calibration_error,
    get_proba_metric,
    log_loss_from_proba,
    sweep_alpha,
)

N_CLASSES = 4


def _make(rng, centers, n, shift=0.0, scale=1.0):
    y = rng.integers(0, N_CLASSES, n)
    X = centers[y] + shift + rng.normal(scale=scale, size=(n, centers.shape[1]))
    return X, y


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(N_CLASSES, 6)) * 1.5
    X, y = _make(rng, centers, 300)
    zs = ZeroShotClassifier(centers + rng.normal(scale=0.7, size=centers.shape))
    ft = LogisticRegression(max_iter=500)
    ose = OutputSpaceEnsembleClassifier(zs, ft, alpha=0.5, random_state=0).fit(X, y)
    vrf = VRFEnsembleClassifier(zs, ft, k=3, random_state=0).fit(X, y)
    id_data = _make(rng, centers, 150)
    X_sub, y_sub = _make(rng, centers, 200, shift=0.3)
    keep = y_sub < 3
    X_pool, y_pool = _make(rng, centers, 120, scale=1.5)
    pooled = np.where(y_pool < 2, "low", "high")
    ood = {
        "noisy": _make(rng, centers, 150, scale=1.8),
        "shifted": _make(rng, centers, 150, shift=0.8),
        "subset": (X_sub[keep], y_sub[keep], [0, 1, 2]),
        "pooled": (X_pool, pooled, {"low": [0, 1], "high": [2, 3]}),
    }
    return {
        "X": X,
        "y": y,
        "zs": ose.zeroshot_estimator_,
        "ft": ose.finetuned_estimator_,
        "ose": ose,
        "vrf": vrf,
        "id": id_data,
        "ood": ood,
    }


# ----------------------------------------------------------------- scorers
def test_accuracy_and_log_loss_match_sklearn():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), size=50)
    classes = np.array(["cat", "dog", "eel"])
    y = classes[rng.integers(0, 3, 50)]
    y_pred = classes[proba.argmax(axis=1)]
    assert accuracy_from_proba(y, proba, classes) == pytest.approx(
        accuracy_score(y, y_pred)
    )
    assert log_loss_from_proba(y, proba, classes) == pytest.approx(
        log_loss(y, proba, labels=classes)
    )
    # columns need not be sorted: permute classes and columns together
    perm = [2, 0, 1]
    assert accuracy_from_proba(y, proba[:, perm], classes[perm]) == pytest.approx(
        accuracy_score(y, y_pred)
    )
    assert log_loss_from_proba(y, proba[:, perm], classes[perm]) == pytest.approx(
        log_loss(y, proba, labels=classes)
    )


def test_log_loss_clips_zero_probability_like_sklearn():
    proba = np.array([[1.0, 0.0], [0.5, 0.5]])
    y = [1, 0]
    assert log_loss_from_proba(y, proba, [0, 1]) == pytest.approx(
        log_loss(y, proba, labels=[0, 1])
    )
    assert np.isfinite(log_loss_from_proba(y, proba, [0, 1]))


def test_ece_hand_computed_default_15_bins():
    # Bins of width 1/15. Confidences and their bins (1-based m: (m-1)/15 < c <= m/15):
    #   0.50 -> m=8 (7/15=0.467, 8/15=0.533]: two rows, one right  -> acc 0.5
    #   0.90 -> m=14 (0.867, 0.933]: three rows, two right         -> acc 2/3
    #   1.00 -> m=15: one row, right                                 -> acc 1
    proba = np.array(
        [
            [0.5, 0.3, 0.2],  # pred 0, y 0: right
            [0.5, 0.2, 0.3],  # pred 0, y 1: wrong
            [0.05, 0.9, 0.05],  # pred 1, y 1: right
            [0.05, 0.9, 0.05],  # pred 1, y 1: right
            [0.05, 0.05, 0.9],  # pred 2, y 0: wrong
            [0.0, 0.0, 1.0],  # pred 2, y 2: right
        ]
    )
    y = np.array([0, 1, 1, 1, 0, 2])
    expected = (2 / 6) * abs(0.5 - 0.5) + (3 / 6) * abs(2 / 3 - 0.9) + (1 / 6) * 0.0
    assert expected == pytest.approx(0.11666666666666667)
    assert expected_calibration_error(y, proba, [0, 1, 2]) == pytest.approx(expected)
    # Two bins: (0, 0.5] holds the 0.5 rows (|0.5 - 0.5| = 0), (0.5, 1] the rest:
    # acc 3/4, mean confidence (0.9 * 3 + 1) / 4 = 0.925
    two = (4 / 6) * abs(0.75 - 0.925)
    assert expected_calibration_error(y, proba, [0, 1, 2], n_bins=2) == pytest.approx(
        two
    )


def test_ece_perfectly_calibrated_is_zero_and_validates_bins():
    # confidence 0.75 in one bin, three rows of four right
    proba = np.array([[0.75, 0.25]] * 4)
    y = [0, 0, 0, 1]
    assert expected_calibration_error(y, proba, [0, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(y, proba, [0, 1], n_bins=0)


def test_scorer_errors():
    with pytest.raises(ValueError, match=r"not among the estimator's classes_: 'z'"):
        accuracy_from_proba(["a", "z"], [[1, 0], [0, 1]], ["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        accuracy_from_proba([0, 1], [[1, 0, 0], [0, 1, 0]], [0, 1])
    with pytest.raises(ValueError, match="Unknown scoring"):
        get_proba_metric("f1")
    name, func = get_proba_metric(("top1", accuracy_from_proba))
    assert name == "top1" and func is accuracy_from_proba


# ---------------------------------------------------------- evaluate_shifts
def test_evaluate_shifts_scores(problem):
    ests = {"zero-shot": problem["zs"], "fine-tuned": problem["ft"]}
    report = evaluate_shifts(
        ests, problem["id"], problem["ood"], scoring=("accuracy", "log_loss", "ece")
    )
    assert report.metrics == ["accuracy", "log_loss", "ece"]
    assert report.estimator_names == ["zero-shot", "fine-tuned"]
    assert report.ood_sets == ["noisy", "shifted", "subset", "pooled"]
    X_id, y_id = problem["id"]
    for name, est in ests.items():
        acc = report.scores["accuracy"][name]
        assert acc["id"] == pytest.approx(accuracy_score(y_id, est.predict(X_id)))
        X, y = problem["ood"]["noisy"]
        assert acc["noisy"] == pytest.approx(accuracy_score(y, est.predict(X)))
        assert report.scores["log_loss"][name]["id"] == pytest.approx(
            log_loss(y_id, est.predict_proba(X_id), labels=est.classes_)
        )
        ood = ["noisy", "shifted", "subset", "pooled"]
        assert acc["ood_mean"] == pytest.approx(np.mean([acc[s] for s in ood]))


def test_class_mapped_sets_use_the_mapped_view(problem):
    ose = problem["ose"]
    ft = problem["ft"]
    report = evaluate_shifts({"OSE": ose, "ft": ft}, problem["id"], problem["ood"])
    for set_name in ("subset", "pooled"):
        X, y, cmap = problem["ood"][set_name]
        view = ose.with_class_map(cmap)
        assert report.scores["accuracy"]["OSE"][set_name] == pytest.approx(
            accuracy_score(y, view.predict(X))
        )
        view = ClassMappedClassifier(ft, cmap).fit()
        assert report.scores["accuracy"]["ft"][set_name] == pytest.approx(
            accuracy_score(y, view.predict(X))
        )
    # the subset view can only predict kept classes: never worse than unmapped
    X, y, _ = problem["ood"]["subset"]
    assert report.scores["accuracy"]["ft"]["subset"] >= accuracy_score(y, ft.predict(X))


def test_label_outside_mapped_classes_names_set_and_label(problem):
    X, y, _ = problem["ood"]["subset"]
    y = y.copy()
    y[0] = 3  # not kept by the map [0, 1, 2]
    with pytest.raises(ValueError, match=r"Set 'subset'.*'ft'.*labels not among.*3"):
        evaluate_shifts(
            {"ft": problem["ft"]}, problem["id"], {"subset": (X, y, [0, 1, 2])}
        )
    with pytest.raises(ValueError, match=r"Set 'bad'.*bad class map"):
        evaluate_shifts({"ft": problem["ft"]}, problem["id"], {"bad": (X, y, [0, 9])})


class CountingClassifier(ClassifierMixin, BaseEstimator):
    """Delegates to a fitted classifier and counts predict/predict_proba calls."""

    def __init__(self, estimator):
        self.estimator = estimator
        self.classes_ = estimator.classes_
        self.n_proba = 0
        self.n_predict = 0

    def fit(self, X, y=None):
        return self

    def __sklearn_is_fitted__(self):
        return True

    def predict_proba(self, X):
        self.n_proba += 1
        return self.estimator.predict_proba(X)

    def predict(self, X):
        self.n_predict += 1
        return self.estimator.predict(X)


def test_each_estimator_predicts_each_set_once(problem):
    counting = {
        "zs": CountingClassifier(problem["zs"]),
        "ft": CountingClassifier(problem["ft"]),
    }
    n_sets = 1 + len(problem["ood"])
    evaluate_shifts(
        counting,
        problem["id"],
        problem["ood"],
        scoring=("accuracy", "log_loss", "ece"),
    )
    for est in counting.values():
        # the class-mapped views reach the logits through predict_proba once, too
        assert est.n_proba == n_sets
        assert est.n_predict == 0


def test_ensemble_components_predict_each_set_once(problem, monkeypatch):
    ose = problem["ose"]
    calls = []
    original = type(ose)._outputs

    def counting(X):
        calls.append(len(X))
        return original(ose, X)

    monkeypatch.setattr(ose, "_outputs", counting)
    evaluate_shifts({"OSE": ose}, problem["id"], problem["ood"], scoring="ece")
    assert len(calls) == 1 + len(problem["ood"])
    calls.clear()
    sweep_alpha(ose, problem["id"], problem["ood"], scoring=("accuracy", "ece"))
    assert len(calls) == 1 + len(problem["ood"])


def test_evaluate_shifts_input_errors(problem):
    ests = {"ft": problem["ft"]}
    with pytest.raises(ValueError, match="reserved"):
        evaluate_shifts(ests, problem["id"], {"ood_mean": problem["id"]})
    with pytest.raises(ValueError, match="non-empty"):
        evaluate_shifts(ests, problem["id"], {})
    with pytest.raises(TypeError, match="'noisy' must be a tuple"):
        evaluate_shifts(ests, problem["id"], {"noisy": problem["id"][0]})
    with pytest.raises(TypeError, match="no predict_proba"):
        evaluate_shifts({"x": object()}, problem["id"], {"a": problem["id"]})


# ------------------------------------------------------------------ reports
def test_report_round_trip_and_exports(problem):
    sweep = sweep_alpha(
        problem["ose"], problem["id"], problem["ood"], alphas=[0, 0.5, 1]
    )
    report = evaluate_shifts(
        {"zero-shot": problem["zs"], "fine-tuned": problem["ft"]},
        problem["id"],
        problem["ood"],
        scoring=("accuracy", "log_loss"),
        sweeps={"OSE": sweep},
    )
    data = json.loads(json.dumps(report.to_dict()))
    again = RobustnessReport.from_dict(data)
    assert again.scores == report.scores
    assert list(again.sweeps) == ["OSE"]
    np.testing.assert_allclose(again.sweeps["OSE"].alphas, [0, 0.5, 1])
    for s, v in sweep.scores["accuracy"].items():
        np.testing.assert_allclose(again.sweeps["OSE"].scores["accuracy"][s], v)
    assert again.to_markdown() == report.to_markdown()

    md = report.to_markdown(metric="accuracy")
    lines = md.splitlines()
    assert lines[0] == "accuracy (%)"
    assert (
        lines[2] == "| estimator | ID | noisy | shifted | subset | pooled | OOD mean |"
    )
    zs_row = lines[4].split(" | ")
    assert zs_row[0] == "| zero-shot"
    acc = report.scores["accuracy"]["zero-shot"]["id"]
    assert zs_row[1] == f"{100 * acc:.1f}"
    assert "log_loss" in report.to_markdown()
    loss = report.scores["log_loss"]["fine-tuned"]["ood_mean"]
    assert f"{loss:.4f}" in report.to_markdown(metric="log_loss", digits=4)
    with pytest.raises(ValueError, match="no metric 'ece'"):
        report.to_markdown(metric="ece")


def test_report_to_frame(problem, monkeypatch):
    pd = pytest.importorskip("pandas")
    report = evaluate_shifts(
        {"zs": problem["zs"], "ft": problem["ft"]},
        problem["id"],
        problem["ood"],
        scoring=("accuracy", "ece"),
    )
    frame = report.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == (2, 2 * 6)
    assert frame.loc["ft", ("ece", "pooled")] == report.scores["ece"]["ft"]["pooled"]
    one = report.to_frame("accuracy")
    assert list(one.columns) == [
        "id",
        "noisy",
        "shifted",
        "subset",
        "pooled",
        "ood_mean",
    ]
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="to_frame needs pandas"):
        report.to_frame()


def test_report_validation():
    with pytest.raises(ValueError, match="'id' and 'ood_mean'"):
        RobustnessReport({"accuracy": {"a": {"id": 0.5}}})
    with pytest.raises(TypeError, match="AlphaSweep"):
        RobustnessReport(
            {"accuracy": {"a": {"id": 0.5, "ood_mean": 0.4}}}, sweeps={"x": {}}
        )


# ------------------------------------------------------------------- sweeps
def test_sweep_matches_the_ensemble_at_each_alpha(problem):
    ose = problem["ose"]
    alphas = [0.0, 0.3, 0.5, 1.0]
    sweep = sweep_alpha(
        ose, problem["id"], problem["ood"], alphas, scoring=("accuracy", "log_loss")
    )
    assert isinstance(sweep, AlphaSweep)
    assert sweep.ood_sets == ["noisy", "shifted", "subset", "pooled"]
    for i, alpha in enumerate(alphas):
        est = OutputSpaceEnsembleClassifier(
            ose.zeroshot_estimator, ose.finetuned_estimator, alpha=alpha
        )
        # same fitted state, another alpha
        est.__dict__.update({k: v for k, v in ose.__dict__.items() if k != "alpha"})
        report = evaluate_shifts(
            {"e": est}, problem["id"], problem["ood"], scoring=("accuracy", "log_loss")
        )
        for m in ("accuracy", "log_loss"):
            for s, v in report.scores[m]["e"].items():
                assert sweep.scores[m][s][i] == pytest.approx(v), (m, s, alpha)


def test_sweep_default_grid_and_best_alpha(problem):
    sweep = sweep_alpha(problem["vrf"], problem["id"], problem["ood"])
    np.testing.assert_allclose(sweep.alphas, np.linspace(0, 1, 11))
    acc = sweep.scores["accuracy"]
    assert sweep.best_alpha() == sweep.alphas[np.argmax(acc["id"])]
    assert sweep.best_alpha(on="ood_mean") == sweep.alphas[np.argmax(acc["ood_mean"])]
    np.testing.assert_allclose(
        acc["ood_mean"],
        np.mean([acc[s] for s in ("noisy", "shifted", "subset", "pooled")], axis=0),
    )
    logit = sweep_alpha(
        problem["vrf"], problem["id"], problem["ood"], [0.0, 1.0], mixing="logit"
    )
    # the endpoints do not depend on the mixing rule
    np.testing.assert_allclose(logit.scores["accuracy"]["id"], acc["id"][[0, -1]])
    ece = sweep_alpha(problem["ose"], problem["id"], problem["ood"], scoring="ece")
    assert ece.best_alpha("ece") == ece.alphas[np.argmin(ece.scores["ece"]["id"])]


def test_sweep_errors(problem):
    with pytest.raises(TypeError, match="two-component ensemble"):
        sweep_alpha(problem["ft"], problem["id"], problem["ood"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sweep_alpha(problem["ose"], problem["id"], problem["ood"], [0.5, 1.5])
    X, y, _ = problem["ood"]["subset"]
    with pytest.raises(ValueError, match=r"Set 'subset'.*labels not among.*3"):
        sweep_alpha(
            problem["ose"], problem["id"], {"subset": (X, np.r_[3, y[1:]], [0, 1, 2])}
        )
    with pytest.raises(ValueError, match="bad class map"):
        sweep_alpha(problem["ose"], problem["id"], {"subset": (X, y, [0, 7])})
    with pytest.raises(ValueError, match="one value per alpha"):
        AlphaSweep([0, 1], {"accuracy": {"id": [1.0], "ood_mean": [1.0, 2.0]}})


def test_old_scorer_names_warn():
    import skvrf.evaluation as ev

    with pytest.warns(FutureWarning, match="renamed get_proba_metric"):
        assert ev.get_scorer is ev.get_proba_metric
    with pytest.warns(FutureWarning, match="renamed PROBA_METRICS"):
        assert ev.SCORERS is ev.PROBA_METRICS


@pytest.mark.filterwarnings("ignore:threshold=.* lies:UserWarning")
def test_compare_methods_rows_match_their_searches():
    # The "VRF" and "VRF (tolerance)" rows share one search: each must equal a
    # VRFEnsembleClassifierCV run with its own selection, on unsorted string labels.
    from sklearn.frozen import FrozenEstimator
    from sklearn.model_selection import PredefinedSplit

    from skvrf import HeldOut, VRFEnsembleClassifierCV
    from skvrf.evaluation import compare_methods
    from skvrf.utils._testing import noisy_centres

    names = np.array(["zebra", "ant", "mole", "cat"])  # not sorted
    X, y_int, _, text = noisy_centres(260, 6, 4, noise=1.2, seed=3)
    y = names[y_int]
    train, val = (X[:160], y[:160]), (X[160:], y[160:])
    zs = ZeroShotClassifier(text, classes=names).fit(X)
    ft = LogisticRegression(max_iter=500).fit(*train)
    grid = {
        "ks": (1, 5, "auto"),
        "thresholds": (0.3, 0.5, 0.8),
        "temperatures": (0.3, 1.0),
    }
    tol = 0.05
    models, chosen = compare_methods(
        zs, ft, train, val, vrf_grid=grid, tol=tol, paper_vrf=False, baselines=False
    )
    assert chosen["vrf"]["val_accuracy"] > chosen["tolerance"]["vrf"]["val_accuracy"]
    fold = np.r_[np.full(160, -1), np.zeros(100, dtype=int)]
    for row, key, selection in (
        ("VRF", chosen["vrf"], {}),
        ("VRF (tolerance)", chosen["tolerance"]["vrf"], {"selection": "tolerance"}),
    ):
        search = VRFEnsembleClassifierCV(
            zs,
            FrozenEstimator(ft),
            **grid,
            cv=PredefinedSplit(fold),
            refit=False,
            tol=tol,
            **selection,
        ).fit(np.concatenate([X[:160], X[160:]]), y, X_val=HeldOut(*val))
        assert {p: key[p] for p in search.best_params_} == search.best_params_
        assert key["val_accuracy"] == search.best_score_
        np.testing.assert_array_equal(models[row].classes_, np.sort(names))
        expected = VRFEnsembleClassifier(
            zs, FrozenEstimator(ft), **search.best_params_
        ).fit(*train, X_val=HeldOut(*val))
        np.testing.assert_array_equal(
            models[row].predict_proba(val[0]), expected.predict_proba(val[0])
        )
    with pytest.raises(ValueError, match="tol"):
        compare_methods(zs, ft, train, val, vrf_grid=grid, tol=-0.1, baselines=False)
