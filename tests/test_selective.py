"""Selective prediction (VRF paper, Table 5), the all-rows bank and GLA.

Every score is checked against its formula written in plain numpy (float64,
loops where that is clearer), and the estimator against the definition of the
selective mix: the fine-tuned component where ``S(x) >= lambda``, ``lambda`` the
score that a fraction ``tpr`` of the calibration rows reach.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvrf import (
    EntropyEnsembleClassifier,
    HeldOut,
    OutputSpaceEnsembleClassifier,
    SelectiveEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf._label_bias import estimate_label_bias
from skvrf._selective import (
    energy_score,
    fit_gaussians,
    knn_score,
    mahalanobis_score,
    msp_score,
    tpr_threshold,
)
from skvrf._weighting import score_weights
from skvrf.utils._testing import noisy_centres


def _data(n=400, d=6, c=4, seed=0):
    X, y, _, text = noisy_centres(n, d, c, spread=1.5, text_noise=0.8, seed=seed)
    return X, y, text


def _split(seed=0):
    X, y, text = _data(n=600, seed=seed)
    return (X[:400], y[:400]), (X[400:500], y[400:500]), (X[500:], y[500:]), text


# ------------------------------------------------------------ the formulas
def test_msp_and_energy_formulas():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 5)) * 3
    msp = [max(np.exp(r) / np.exp(r).sum()) for r in z]
    energy = [np.log(np.exp(r).sum()) for r in z]
    assert_allclose(msp_score(z), msp, rtol=1e-12)
    assert_allclose(energy_score(z), energy, rtol=1e-12)
    # a column the component does not know (-inf) counts for nothing
    z_inf = np.column_stack([z, np.full(20, -np.inf)])
    assert_allclose(msp_score(z_inf), msp, rtol=1e-12)
    assert_allclose(energy_score(z_inf), energy, rtol=1e-12)


def _md_oracle(E, X, y, relative):
    """Mahalanobis scores by the textbook formulas, one row at a time."""
    classes = np.unique(y)
    means = {c: X[y == c].mean(axis=0) for c in classes}
    centred = np.vstack([X[y == c] - means[c] for c in classes])
    P = np.linalg.inv(centred.T @ centred / len(X))
    mu0 = X.mean(axis=0)
    P0 = np.linalg.inv((X - mu0).T @ (X - mu0) / len(X))
    out = []
    for e in E:
        md = [(e - means[c]) @ P @ (e - means[c]) for c in classes]
        md0 = (e - mu0) @ P0 @ (e - mu0)
        out.append(-(min(md) - md0) if relative else -min(md))
    return np.array(out)


@pytest.mark.parametrize("relative", [False, True])
def test_mahalanobis_formulas(relative):
    X, y, _ = _data(n=200)
    E = np.random.default_rng(1).normal(size=(15, X.shape[1])) * 2
    got = mahalanobis_score(E, fit_gaussians(X, y), relative=relative)
    assert_allclose(got, _md_oracle(E, X, y, relative), rtol=1e-9, atol=1e-9)


def test_mahalanobis_ignores_directions_without_variance():
    # a constant feature: the covariance is singular, the pseudo-inverse is used
    X, y, _ = _data(n=200)
    X1 = np.column_stack([X, np.ones(len(X))])
    E = np.random.default_rng(2).normal(size=(10, X.shape[1]))
    E1 = np.column_stack([E, np.full(10, 5.0)])
    got = mahalanobis_score(E1, fit_gaussians(X1, y))
    assert_allclose(got, _md_oracle(E, X, y, False), rtol=1e-8, atol=1e-8)


def test_knn_score_formula():
    rng = np.random.default_rng(3)
    bank_raw = rng.normal(size=(30, 5))
    bank = (bank_raw / np.linalg.norm(bank_raw, axis=1, keepdims=True)).astype(
        np.float32
    )
    E = rng.normal(size=(12, 5))
    Q = E / np.linalg.norm(E, axis=1, keepdims=True)
    d = ((Q[:, None, :] - bank.astype(np.float64)[None]) ** 2).sum(-1)
    # float32 products on unit vectors: |error| <= ~1e-6 (see test_neighbors)
    assert_allclose(knn_score(E, bank, 4), -np.sort(d, axis=1)[:, 3], atol=1e-5)
    # a bank row as a query: its (k+1)-th neighbour leaves itself out
    got = knn_score(bank_raw[:3], bank, 2, leave_self_out=np.ones(3, bool))
    d_self = ((bank[:3, None, :] - bank[None]) ** 2).sum(-1)
    assert_allclose(got, -np.sort(d_self, axis=1)[:, 2], atol=1e-5)


def test_tpr_threshold_by_hand():
    s = np.arange(1.0, 101.0)
    assert tpr_threshold(s, 0.95) == 6.0  # 95 rows of 100 are >= 6
    assert tpr_threshold(s, 1.0) == 1.0
    assert tpr_threshold(s[:10], 0.95) == 1.0  # ceil(9.5) = 10 rows must pass
    assert tpr_threshold(s[:10], 0.8) == 3.0  # 8 of 10 are >= 3
    rng = np.random.default_rng(4)
    for n in (7, 50, 333):
        r = rng.normal(size=n)
        for tpr in (0.5, 0.9, 0.95, 0.99):
            lam = tpr_threshold(r, tpr)
            assert np.mean(r >= lam) >= tpr - 1e-12
            # no larger score lets as many rows pass
            assert np.mean(r > lam) < tpr


def test_score_weights():
    assert_array_equal(score_weights([0.0, 1.0, 2.0], 1.0), [0.0, 1.0, 1.0])
    s = np.linspace(-3, 3, 13)
    assert_allclose(
        score_weights(s, 0.5, 0.7, "sigmoid"), 1 / (1 + np.exp(-(s - 0.5) / 0.7))
    )


# ------------------------------------------------------------- the estimator
@pytest.mark.parametrize(
    "score", ["msp", "energy", "mahalanobis", "relative_mahalanobis", "knn"]
)
def test_selective_mix_matches_definition(score):
    (X, y), (Xv, yv), (Xt, _), text = _split()
    ft = LogisticRegression(max_iter=1000).fit(X, y)
    zs = ZeroShotClassifier(text)
    clf = SelectiveEnsembleClassifier(zs, FrozenEstimator(ft), id_score=score, k=3).fit(
        X, y, X_val=Xv, y_val=yv
    )

    def oracle_scores(A):
        z = ft.decision_function(A)
        if score == "msp":
            return msp_score(z)
        if score == "energy":
            return energy_score(z)
        if score == "knn":
            Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
            An = A / np.linalg.norm(A, axis=1, keepdims=True)
            d = ((An[:, None, :] - Xn[None]) ** 2).sum(-1)
            return -np.sort(d, axis=1)[:, 2]
        return _md_oracle(A, X, y, score == "relative_mahalanobis")

    atol = 1e-5 if score == "knn" else 1e-8
    s_val = oracle_scores(Xv)
    lam = np.sort(s_val)[int(np.floor(len(s_val) * 0.05 + 1e-9))]
    assert_allclose(clf.threshold_, lam, atol=atol)
    s_test = clf.id_scores(Xt)
    assert_allclose(s_test, oracle_scores(Xt), atol=atol, rtol=1e-7)
    w = (s_test >= clf.threshold_).astype(float)
    assert_array_equal(clf.ensemble_weights(Xt), w)
    T = clf.calibration_temperatures_
    p_zs = softmax(zs.fit(X).decision_function(Xt) / T["zeroshot"], 1)
    p_ft = softmax(ft.decision_function(Xt) / T["finetuned"], 1)
    expected = w[:, None] * p_ft + (1 - w[:, None]) * p_zs
    assert_allclose(clf.predict_proba(Xt), expected, rtol=1e-10, atol=1e-12)
    # 95 % of the calibration rows pass
    assert np.mean(clf.ensemble_weights(Xv) == 1) >= 0.95


def test_selective_sigmoid_and_training_rows_calibration():
    (X, y), _, (Xt, _), text = _split(1)
    clf = SelectiveEnsembleClassifier(
        ZeroShotClassifier(text),
        LogisticRegression(max_iter=1000),
        id_score="knn",
        k=2,
        weighting="sigmoid",
        temperature=0.3,
        calibrate=False,
    ).fit(X, y)
    # without X_val: the training rows, each with its own distance left out
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    d = ((Xn[:, None, :] - Xn[None]) ** 2).sum(-1)
    s_train = -np.sort(d, axis=1)[:, 2]  # [:, 0] is the row itself
    assert_allclose(clf.threshold_, tpr_threshold(s_train, 0.95), atol=1e-5)
    assert_allclose(clf.score_scale_, s_train.std(), rtol=1e-4)
    s = clf.id_scores(Xt)
    expected = 1 / (1 + np.exp(-(s - clf.threshold_) / (0.3 * clf.score_scale_)))
    assert_allclose(clf.ensemble_weights(Xt), expected, rtol=1e-12)


def test_selective_scores_ignore_class_maps():
    (X, y), (Xv, yv), (Xt, _), text = _split(2)
    clf = SelectiveEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), id_score="energy"
    ).fit(X, y, X_val=Xv, y_val=yv)
    w = clf.ensemble_weights(Xt)
    out = next(clf.iter_component_outputs(Xt, class_map=[0, 2]))
    p = out.proba
    expected = w[:, None] * p["finetuned"] + (1 - w[:, None]) * p["zeroshot"]
    assert_allclose(clf.mix_outputs(out), expected, rtol=1e-12)


def test_selective_embedding_of_a_pipeline():
    (X, y), _, (Xt, _), text = _split(3)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf = SelectiveEnsembleClassifier(
        ZeroShotClassifier(text), pipe, id_score="mahalanobis", calibrate=False
    ).fit(X, y)
    scaler = clf.finetuned_estimator_[0]
    E = scaler.transform(X)
    assert_allclose(
        clf.id_scores(Xt),
        _md_oracle(scaler.transform(Xt), E, y, False),
        rtol=1e-8,
        atol=1e-8,
    )


# ------------------------------------------------------- VRF's bank ablation
def test_vrf_all_rows_bank():
    (X, y), (Xv, yv), (Xt, _), text = _split(4)
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), zsf_rule="all", k=3
    ).fit(X, y, X_val=HeldOut(Xv, yv))
    assert_array_equal(vrf.zsf_indices_, np.arange(len(y)))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Q = Xt / np.linalg.norm(Xt, axis=1, keepdims=True)
    d = np.sort(((Q[:, None, :] - Xn[None]) ** 2).sum(-1), axis=1)[:, 2]
    assert_allclose(vrf.zsf_distances(Xt), d, atol=1e-5)


# ------------------------------------------------------------------- GLA
def test_label_bias_matches_the_frequencies():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(300, 4)) * 2
    y = rng.choice(4, 300, p=[0.5, 0.3, 0.15, 0.05])
    classes = np.array([0, 1, 2, 3])
    b = estimate_label_bias(z, y, classes)
    # the optimum of the cross-entropy: mean predicted probability = frequency
    p = softmax(z - b, axis=1).mean(axis=0)
    assert_allclose(p, np.bincount(y) / len(y), atol=1e-6)
    assert abs(b.mean()) < 1e-9
    # columns in any order: the same bias per label
    perm = np.array([2, 0, 3, 1])
    b_perm = estimate_label_bias(z[:, perm], y, classes[perm])
    assert_allclose(b_perm, b[perm], atol=1e-5)


def test_label_bias_leaves_absent_classes_alone():
    rng = np.random.default_rng(6)
    z = rng.normal(size=(100, 3))
    y = rng.integers(0, 2, 100)  # class 2 never seen
    b = estimate_label_bias(z, y, np.array([0, 1, 2]))
    assert b[2] == 0.0 and abs(b[:2].sum()) < 1e-9
    # the optimum under the gauge: frequency minus mean probability is the same
    # for every seen class (the multiplier of the constraint mean(b_seen) = 0)
    p = softmax(z - b, axis=1)[:, :2].mean(axis=0)
    freq = np.bincount(y) / len(y)
    assert_allclose(freq[0] - p[0], freq[1] - p[1], atol=1e-6)


ENSEMBLES = {
    "ose": lambda zs, ft, **kw: OutputSpaceEnsembleClassifier(zs, ft, alpha=0.0, **kw),
    "vrf": lambda zs, ft, **kw: VRFEnsembleClassifier(
        zs, ft, threshold=-10.0, temperature=1e-3, **kw
    ),
    "selective": lambda zs, ft, **kw: SelectiveEnsembleClassifier(
        zs, ft, tpr=1.0, id_score="msp", weighting="sigmoid", temperature=1e-9, **kw
    ),
}


@pytest.mark.parametrize("name", sorted(ENSEMBLES))
def test_pure_zero_shot_ensemble_is_the_head_unless_adjusted(name):
    (X, y), _, (Xt, _), text = _split(7)
    zs = ZeroShotClassifier(text).fit(X)
    ft = FrozenEstimator(LogisticRegression(max_iter=1000).fit(X, y))
    kw = {"calibrate": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the threshold is absurd
        plain = ENSEMBLES[name](zs, ft, **kw).fit(X, y)
        adjusted = ENSEMBLES[name](zs, ft, logit_adjustment="gla", **kw).fit(X, y)
    if name == "selective":  # weight 0 below the lowest score: shift the test rows
        plain.threshold_ = adjusted.threshold_ = np.inf
    assert plain.zeroshot_bias_ is None
    assert_allclose(plain.predict_proba(Xt), zs.predict_proba(Xt), rtol=1e-12)
    b = estimate_label_bias(zs.decision_function(X), y, zs.classes_)
    assert_allclose(adjusted.zeroshot_bias_, b, atol=1e-8)
    expected = softmax(zs.decision_function(Xt) - b, axis=1)
    assert_allclose(adjusted.predict_proba(Xt), expected, rtol=1e-6, atol=1e-9)


def test_gla_is_applied_before_calibration_and_the_zsf_set():
    (X, y), (Xv, yv), _, text = _split(8)
    zs = ZeroShotClassifier(text).fit(X)
    ft = FrozenEstimator(LogisticRegression(max_iter=1000).fit(X, y))
    vrf = VRFEnsembleClassifier(zs, ft, logit_adjustment="gla", k=1).fit(
        X, y, X_val=Xv, y_val=yv
    )
    z = zs.decision_function(X) - vrf.zeroshot_bias_
    expected = np.flatnonzero((z.argmax(1) != y) & (ft.predict(X) == y))
    assert_array_equal(vrf.zsf_indices_, expected)
    from skvrf._calibration import fit_temperature

    t = fit_temperature(zs.decision_function(Xv) - vrf.zeroshot_bias_, yv, zs.classes_)
    assert_allclose(vrf.calibration_temperatures_["zeroshot"], t)
    ent = EntropyEnsembleClassifier(zs, ft, logit_adjustment="gla").fit(X, y)
    assert_allclose(ent.zeroshot_bias_, vrf.zeroshot_bias_)


# ------------------------------------------------------ the threshold warning
def test_vrf_warns_when_the_threshold_is_outside_the_distances():
    (X, y), (Xv, yv), _, text = _split(9)
    zs, ft = ZeroShotClassifier(text), LogisticRegression(max_iter=1000)
    vrf = VRFEnsembleClassifier(zs, ft, k=1)
    with pytest.warns(UserWarning, match=r"threshold=1.5 lies above every distance"):
        vrf.fit(X, y, X_val=Xv, y_val=yv)
    d = vrf.zsf_distances(Xv)
    assert d.max() < 1.5
    # the message names the range it saw and the way out
    with pytest.warns(UserWarning) as caught:
        vrf.fit(X, y, X_val=Xv, y_val=yv)
    msg = str(caught[0].message)
    assert f"{d.min():.3g} to {d.max():.3g}" in msg and "X_val" in msg
    assert "VRFEnsembleClassifierCV" in msg
    with pytest.warns(UserWarning, match="lies below every distance"):
        VRFEnsembleClassifier(zs, ft, k=1, threshold=-0.5).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        VRFEnsembleClassifier(zs, ft, k=1, threshold=float(np.median(d))).fit(
            X, y, X_val=Xv, y_val=yv
        )


def test_threshold_range_on_training_rows_leaves_self_out():
    (X, y), _, _, text = _split(10)
    vrf = VRFEnsembleClassifier(
        ZeroShotClassifier(text), LogisticRegression(max_iter=1000), k=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        vrf.fit(X, y)
    outputs = vrf._outputs(X)
    d, where = vrf._observed_distances(outputs, None)
    assert "training rows" in where
    # bank rows: their nearest other bank row, never 0 (no duplicates here)
    assert d.min() > 0
    bank = vrf.zsf_embeddings_.astype(np.float64)
    own = ((bank[:, None] - bank[None]) ** 2).sum(-1)
    np.fill_diagonal(own, np.inf)
    in_bank = np.isin(np.arange(len(y)), vrf.zsf_indices_)
    assert_allclose(np.sort(d[in_bank]), np.sort(own.min(axis=1)), atol=1e-5)
