"""Baselines and ablations match their formulas; class maps; calibration rules."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from skvrf import (
    ClassMappedClassifier,
    EntropyEnsembleClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf._calibration import fit_confidence_temperature
from skvrf._weighting import (
    entropy_weights,
    linear_weight,
    mix_log_probabilities,
    sigmoid_weight,
    step_weight,
)
from skvrf.utils._testing import noisy_centres


def _data(n=500, d=12, c=5, seed=0):
    X, y, _, text = noisy_centres(n, d, c, noise=1.2, text_noise=0.6, seed=seed)
    return X, y, text


def _random_probas(rng, n=50, c=6):
    return softmax(rng.normal(size=(n, c)) * 2, 1), softmax(
        rng.normal(size=(n, c)) * 2, 1
    )


def test_entropy_weights_formula_on_random_probabilities():
    rng = np.random.default_rng(1)
    p_zs, p_ft = _random_probas(rng)
    h = lambda p: -(p * np.log(p)).sum(1)  # noqa: E731
    lam = np.exp(-h(p_ft)) / (np.exp(-h(p_zs)) + np.exp(-h(p_ft)))
    assert_allclose(entropy_weights(p_zs, p_ft), lam, rtol=1e-12)


def test_weight_shapes():
    d = np.linspace(0, 4, 41)
    assert_allclose(sigmoid_weight(d, 1.5, 0.6), 1 / (1 + np.exp((d - 1.5) / 0.6)))
    lin = linear_weight(d, 1.5, 0.6)
    assert_allclose(lin, np.clip(0.5 - (d - 1.5) / 2.4, 0, 1))
    # the line has the sigmoid's slope at the threshold
    eps = 1e-6
    slope_sig = (
        sigmoid_weight(1.5 + eps, 1.5, 0.6) - sigmoid_weight(1.5 - eps, 1.5, 0.6)
    ) / (2 * eps)
    assert_allclose(
        (linear_weight(1.6) - linear_weight(1.4)) / 0.2, slope_sig, rtol=1e-6
    )
    assert_array_equal(step_weight(d, 1.5), (d < 1.5).astype(float))


def test_logit_mixing_equals_mixing_scaled_logits():
    rng = np.random.default_rng(2)
    z_zs, z_ft = rng.normal(size=(30, 4)) * 3, rng.normal(size=(30, 4)) * 3
    w = rng.uniform(size=30)
    expected = softmax(w[:, None] * z_ft / 0.7 + (1 - w[:, None]) * z_zs / 1.9, 1)
    got = mix_log_probabilities(softmax(z_zs / 1.9, 1), softmax(z_ft / 0.7, 1), w)
    assert_allclose(got, expected, rtol=1e-10)


def test_entropy_ensemble_matches_formula():
    X, y, text = _data()
    ens = EntropyEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000)
    )
    ens.fit(X, y)
    T = ens.calibration_temperatures_
    p_zs = softmax(ens.zeroshot_estimator_.decision_function(X) / T["zeroshot"], 1)
    p_ft = softmax(ens.finetuned_estimator_.decision_function(X) / T["finetuned"], 1)
    lam = entropy_weights(p_zs, p_ft)
    assert_allclose(ens.ensemble_weights(X), lam, rtol=1e-10)
    assert_allclose(
        ens.predict_proba(X), lam[:, None] * p_ft + (1 - lam[:, None]) * p_zs
    )


@pytest.mark.parametrize("weighting", ["sigmoid", "linear", "step"])
@pytest.mark.parametrize("mixing", ["probability", "logit"])
def test_vrf_ablations_match_formulas(weighting, mixing):
    X, y, text = _data()
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(max_iter=1000),
        k=3,
        weighting=weighting,
        mixing=mixing,
        random_state=0,
    ).fit(X, y)
    T = vrf.calibration_temperatures_
    z_zs = vrf.zeroshot_estimator_.decision_function(X) / T["zeroshot"]
    z_ft = vrf.finetuned_estimator_.decision_function(X) / T["finetuned"]
    d = vrf.zsf_distances(X)
    w = {"sigmoid": sigmoid_weight, "linear": linear_weight, "step": step_weight}[
        weighting
    ](d, 1.5, 0.6)[:, None]
    if mixing == "probability":
        expected = w * softmax(z_ft, 1) + (1 - w) * softmax(z_zs, 1)
    else:
        expected = softmax(w * z_ft + (1 - w) * z_zs, 1)
    # predict_proba computes its own float32 distances (12 features), maybe in
    # other chunks: |dd| <= 2 * 2 * 12 * 2**-24 ~ 3e-6, so w moves by at most
    # |dd| / (4 * 0.6) ~ 1.2e-6, P by as much times max |z_ft - z_zs| (~10 here).
    assert_allclose(vrf.predict_proba(X), expected, rtol=1e-7, atol=2e-5)


def test_confidence_calibration_matches_accuracy():
    X, y, text = _data(n=900)
    Xt, Xv, yt, yv = X[:600], X[600:], y[:600], y[600:]
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(max_iter=1000),
        calibration_method="confidence",
    ).fit(Xt, yt, X_val=Xv, y_val=yv)
    for name in ("zeroshot", "finetuned"):
        est = getattr(vrf, f"{name}_estimator_")
        p = softmax(est.decision_function(Xv) / vrf.calibration_temperatures_[name], 1)
        assert_allclose(p.max(1).mean(), (est.predict(Xv) == yv).mean(), atol=1e-8)
    # bounds: a perfect model gets the smallest temperature
    z = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert fit_confidence_temperature(z, np.array([0, 1]), np.array([0, 1])) < 1e-3


# ------------------------------------------------------------- class maps
def _direct_mapped(ens, X, sources, weights):
    T = ens.calibration_temperatures_
    out = {}
    for name in ("zeroshot", "finetuned"):
        est = getattr(ens, f"{name}_estimator_")
        z = est.decision_function(X)
        cols = [[list(est.classes_).index(c) for c in src] for src in sources]
        mapped = np.column_stack([z[:, c].max(1) for c in cols])
        out[name] = softmax(mapped / T[name], 1)
    w = weights[:, None]
    return w * out["finetuned"] + (1 - w) * out["zeroshot"]


@pytest.mark.parametrize(
    "class_map, sources",
    [
        ([4, 1, 3], [[4], [1], [3]]),  # a subset, in the map's order
        ({"odd": [1, 3], "even": [0, 2, 4]}, [[1, 3], [0, 2, 4]]),  # many-to-one
    ],
)
def test_class_map_matches_direct_per_component_computation(class_map, sources):
    X, y, text = _data()
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), k=3, random_state=0
    ).fit(X, y)
    view = vrf.with_class_map(class_map)
    targets = list(class_map) if isinstance(class_map, dict) else class_map
    assert_array_equal(view.classes_, targets)
    expected = _direct_mapped(vrf, X, sources, vrf.ensemble_weights(X))
    assert_allclose(view.predict_proba(X), expected, rtol=1e-10)
    assert_array_equal(view.predict(X), np.asarray(targets)[expected.argmax(1)])
    # mapping before mixing is not the same as mapping the mixed probabilities
    mixed_then_mapped = vrf.predict_proba(X)[:, [s[0] for s in sources]]
    assert not np.allclose(
        view.predict_proba(X),
        mixed_then_mapped / mixed_then_mapped.sum(1, keepdims=True),
    )

    ose = OutputSpaceEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), alpha=0.4
    ).fit(X, y)
    expected = _direct_mapped(ose, X, sources, np.full(len(X), 0.4))
    assert_allclose(
        ose.with_class_map(class_map).predict_proba(X), expected, rtol=1e-10
    )


def test_class_map_on_a_plain_classifier_and_errors():
    X, y, _ = _data()
    lr = LogisticRegression(max_iter=1000).fit(X, y)
    view = ClassMappedClassifier(lr, {"a": [0, 1], "b": [2]}).fit()
    z = lr.decision_function(X)
    expected = softmax(np.column_stack([z[:, :2].max(1), z[:, 2]]), 1)
    assert_allclose(view.predict_proba(X), expected, rtol=1e-10)
    with pytest.raises(ValueError, match=r"does not know: \[7\]"):
        ClassMappedClassifier(lr, [0, 7]).fit()
    with pytest.raises(ValueError, match="duplicate"):
        ClassMappedClassifier(lr, [0, 0]).fit()
