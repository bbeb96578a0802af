"""Temperature scaling (skvrf._calibration.fit_temperature) against independent
oracles: a brute-force grid of the negative log-likelihood in plain NumPy, and
scikit-learn's private ``_TemperatureScaling`` when it can still be imported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvrf._calibration import _LOGIT_FLOOR, fit_temperature

# log T grid: T from exp(-4) to exp(4), step 5e-4 in log T
GRID_LOG_T = np.linspace(-4.0, 4.0, 16_001)
GRID_STEP = GRID_LOG_T[1] - GRID_LOG_T[0]


def nll(logits, y_index, T):
    """Mean negative log-likelihood of softmax(logits / T), plain NumPy."""
    z = logits / T
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), y_index]))


def grid_nll(logits, y_index):
    """The NLL on every grid point, vectorised over chunks of the grid."""
    out = np.empty(GRID_LOG_T.size)
    for start in range(0, GRID_LOG_T.size, 2000):
        T = np.exp(GRID_LOG_T[start : start + 2000])[:, None, None]
        z = logits[None] / T
        z = z - z.max(axis=2, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=2))
        picked = z[:, np.arange(logits.shape[0]), y_index]
        out[start : start + 2000] = np.mean(log_norm - picked, axis=1)
    return out


def assert_grid_minimum(T, logits, y_index):
    """The fitted T is the grid's minimiser up to the grid resolution, and no
    grid point has a lower NLL than T itself."""
    losses = grid_nll(logits, y_index)
    best = int(np.argmin(losses))
    assert 0 < best < GRID_LOG_T.size - 1, "the oracle's optimum is on the grid edge"
    assert abs(np.log(T) - GRID_LOG_T[best]) <= GRID_STEP
    assert nll(logits, y_index, T) <= losses[best] + 1e-12


def make_logits(seed, n=300, n_classes=5, true_T=2.0, scale=3.0):
    """Logits of an overconfident model: labels drawn from softmax(z / true_T)."""
    rng = np.random.default_rng(seed)
    z = scale * rng.normal(size=(n, n_classes))
    p = np.exp(z / true_T - (z / true_T).max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=row) for row in p])
    return z, y


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("true_T", [0.3, 1.0, 4.0])
def test_matches_brute_force_grid(seed, true_T):
    z, y = make_logits(seed, true_T=true_T)
    T = fit_temperature(z, y, np.arange(5))
    assert_grid_minimum(T, z, y)


def test_matches_scikit_learn_private_temperature_scaling():
    calibration = pytest.importorskip("sklearn.calibration")
    scaler_cls = getattr(calibration, "_TemperatureScaling", None)
    if scaler_cls is None:
        pytest.skip("sklearn.calibration._TemperatureScaling is gone")
    for seed in range(4):
        z, y = make_logits(seed, true_T=1.7)
        shifted = z - z.max(axis=1, keepdims=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            beta = float(scaler_cls().fit(shifted, y).beta_)
        np.testing.assert_allclose(fit_temperature(z, y, np.arange(5)), 1 / beta, 1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_column_order_and_label_kind_do_not_matter(seed):
    z, y = make_logits(seed, n_classes=6, true_T=1.5)
    T = fit_temperature(z, y, np.arange(6))
    rng = np.random.default_rng(100 + seed)
    perm = rng.permutation(6)  # column j of z[:, perm] is class perm[j]
    assert fit_temperature(z[:, perm], y, perm) == pytest.approx(T, rel=1e-9)
    names = np.array(["lion", "ant", "zebra", "cat", "emu", "bee"])  # unsorted
    got = fit_temperature(z[:, perm], names[y], names[perm])
    assert got == pytest.approx(T, rel=1e-9)
    # a constant per-row shift of the logits changes nothing either
    shift = rng.normal(size=(len(z), 1)) * 50
    assert fit_temperature(z + shift, y, np.arange(6)) == pytest.approx(T, rel=1e-9)


def test_classes_partly_present_in_y():
    z, y = make_logits(0, n_classes=7, true_T=2.5)
    keep = np.isin(y, [1, 4, 5])
    z, y = z[keep], y[keep]
    assert set(np.unique(y)) == {1, 4, 5}
    T = fit_temperature(z, y, np.arange(7))
    assert_grid_minimum(T, z, y)


def test_rows_with_unknown_labels_are_ignored():
    z, y = make_logits(1, n_classes=4, true_T=0.8)
    T = fit_temperature(z, y, np.arange(4))
    z_more = np.concatenate([z, np.full((5, 4), 9.0)])
    y_more = np.concatenate([y, np.full(5, 99)])
    assert fit_temperature(z_more, y_more, np.arange(4)) == T


@pytest.mark.parametrize("seed", range(3))
def test_binary_two_columns(seed):
    rng = np.random.default_rng(seed)
    d = 4 * rng.normal(size=400)
    y = (rng.random(400) < 1 / (1 + np.exp(-d / 3))).astype(int)
    z = np.column_stack([-d / 2, d / 2])
    T = fit_temperature(z, y, np.array([0, 1]))
    assert_grid_minimum(T, z, y)
    # labels as strings, columns swapped
    labels = np.array(["yes", "no"])[y]  # 0 is "yes", 1 is "no"
    assert fit_temperature(z[:, ::-1], labels, np.array(["no", "yes"])) == (
        pytest.approx(T, rel=1e-9)
    )


@pytest.mark.parametrize("fill", [-np.inf, -1e30, np.finfo(np.float64).min])
def test_fill_values_of_absent_classes(fill):
    """cross_val_predict fills the column of a class missing from a training
    fold with -inf (or a huge negative number): the fit stays finite and equals
    the fit on logits floored at _LOGIT_FLOOR below each row's maximum."""
    z, y = make_logits(2, n_classes=5, true_T=1.3)
    z = z.copy()
    absent = (y != 3) & (np.arange(len(y)) % 3 == 0)  # some rows miss class 3
    z[absent, 3] = fill
    T = fit_temperature(z, y, np.arange(5))
    assert np.isfinite(T) and T > 0
    floored = np.maximum(z - z.max(axis=1, keepdims=True), _LOGIT_FLOOR)
    assert_grid_minimum(T, floored, y)
    # at the fitted T the floor changes the loss by less than exp(-1e4 / T)
    dropped = np.where(np.isin(z, [fill]), -np.inf, z)
    assert nll(floored, y, T) == pytest.approx(nll(dropped, y, T), abs=1e-12)


def test_a_whole_column_of_fill_values():
    z, y = make_logits(3, n_classes=4, true_T=1.0)
    z = np.column_stack([z, np.full(len(z), -np.inf)])  # class 4: never seen
    T = fit_temperature(z, y, np.arange(5))
    assert T == pytest.approx(fit_temperature(z[:, :4], y, np.arange(4)), rel=1e-9)


def test_bounds_of_the_search():
    half_wrong = np.array([[4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, 4.0]])
    assert fit_temperature(half_wrong, [0, 1, 1, 0], [0, 1]) == pytest.approx(
        np.exp(10)
    )
    all_right = np.array([[4.0, 0.0], [0.0, 4.0], [3.0, 1.0]])
    assert fit_temperature(all_right, [0, 1, 0], [0, 1]) == pytest.approx(np.exp(-10))
    flat = np.zeros((4, 3))
    assert fit_temperature(flat, [0, 1, 2, 0], [0, 1, 2]) == 1.0


def test_fewer_than_two_classes_warns_and_returns_one():
    z, _ = make_logits(0)
    with pytest.warns(UserWarning, match="fewer than two"):
        assert fit_temperature(z, np.full(len(z), 2), np.arange(5)) == 1.0
    with pytest.warns(UserWarning, match="fewer than two"):
        assert fit_temperature(z, np.full(len(z), 7), np.arange(5)) == 1.0


def test_invalid_logits():
    z, y = make_logits(0)
    with pytest.raises(ValueError, match="one column per class"):
        fit_temperature(z[:, :4], y, np.arange(5))
    with pytest.raises(ValueError, match="one column per class"):
        fit_temperature(z[:, 0], y, np.arange(5))
    bad = z.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(bad, y, np.arange(5))
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        fit_temperature(bad, y, np.arange(5))


def test_result_is_a_python_float():
    z, y = make_logits(0)
    assert type(fit_temperature(z, y, np.arange(5))) is float


# ------------------------------------ parity with the public estimator
# scikit-learn >= 1.8: CalibratedClassifierCV(FrozenEstimator(clf),
# method="temperature") fits one inverse temperature beta on clf's
# decision_function. skvrf's log-loss temperature is T = 1 / beta for more than
# two classes and T = 1 / (2 beta) for two, where scikit-learn turns a decision
# value z into the logits (-z, z) and skvrf into (-z/2, z/2) (softmax: the
# estimator's own sigmoid(z) at T = 1).
_SKLEARN_TEMPERATURE = pytest.mark.skipif(
    tuple(int(v) for v in __import__("sklearn").__version__.split(".")[:2]) < (1, 8),
    reason="CalibratedClassifierCV(method='temperature') needs scikit-learn >= 1.8",
)
FRUITS = np.array(["pear", "fig", "apple", "kiwi", "date"])  # unsorted


def _sklearn_tolerance(z, y_index, beta):
    """Bound on |log T_skvrf - log T_sklearn| from the two optimisers.

    scikit-learn minimises the NLL over log(beta) with bounded Brent
    (``minimize_scalar``, ``xatol = 64 eps``), which stops within
    ``2 (sqrt(eps) |log beta| + xatol / 3)`` of the minimum that it can see;
    near the minimum the NLL is flat, ``f* + f'' d**2 / 2``, so rounding of
    ``f`` (a few ``eps f*``) hides ``|d| < sqrt(2 eps f* / f'')`` (taken 4
    times, for the rounding of a mean over the rows). skvrf's root finder
    (``brentq``, ``xtol = 1e-12``, ``rtol = 1e-14`` on log T) adds its own.
    ``f'' = beta**2 mean Var_p(z)`` (the second derivative in log beta at the
    optimum, where the first-order term is 0)."""
    eps = np.finfo(np.float64).eps
    zs = z - z.max(axis=1, keepdims=True)
    p = np.exp(beta * zs)
    p /= p.sum(axis=1, keepdims=True)
    mean_z = (p * zs).sum(axis=1)
    var = (p * zs**2).sum(axis=1) - mean_z**2
    f_star = np.mean(
        np.log(np.exp(beta * zs).sum(axis=1)) - beta * zs[np.arange(len(zs)), y_index]
    )
    f2 = beta**2 * var.mean()
    log_b = abs(np.log(beta))
    sklearn_part = 2 * (np.sqrt(eps) * log_b + 64 * eps / 3)
    rounding = 4 * np.sqrt(2 * eps * f_star / f2)
    skvrf_part = 1e-12 + 4e-14 * log_b
    return sklearn_part + rounding + skvrf_part


@_SKLEARN_TEMPERATURE
@pytest.mark.parametrize("n_classes", [5, 2])
def test_log_loss_temperature_equals_calibrated_classifier_cv(n_classes):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from skvrf import OutputSpaceEnsembleClassifier
    from skvrf._calibration import component_logits
    from skvrf.utils._testing import noisy_centres

    X, y, _, _ = noisy_centres(900, 10, n_classes, noise=1.5, seed=0)
    labels = FRUITS[:n_classes][y]  # unsorted strings; rows not in label order
    clf = LogisticRegression(C=100, max_iter=2000).fit(X[:300], labels[:300])
    Xc, yc = X[300:], labels[300:]
    cal = CalibratedClassifierCV(FrozenEstimator(clf), method="temperature")
    beta = float(cal.fit(Xc, yc).calibrated_classifiers_[0].calibrators[0].beta_)
    # skvrf: a frozen component is calibrated on the rows it is given
    ens = OutputSpaceEnsembleClassifier(FrozenEstimator(clf), FrozenEstimator(clf))
    T = ens.fit(Xc, yc).calibration_temperatures_["finetuned"]
    scale = 2.0 if n_classes == 2 else 1.0  # the binary logits' convention
    z = component_logits(clf, Xc) * scale  # scikit-learn's logits
    y_index = np.searchsorted(clf.classes_, yc)
    tol = _sklearn_tolerance(z, y_index, beta)
    gap = abs(np.log(T) - np.log(1.0 / (scale * beta)))
    assert gap <= tol, (gap, tol)
    assert tol < 1e-6  # the bound itself is tight
    # the same probabilities: |dp| <= |d log T| * beta * (max z - min z) per row
    p_ens = ens.component_proba(Xc)["finetuned"]
    p_sk = cal.predict_proba(Xc)
    assert_array_equal(ens.classes_, cal.classes_)
    spread = np.ptp(z, axis=1).max()
    assert np.max(np.abs(p_ens - p_sk)) <= tol * beta * spread + 1e-12


@_SKLEARN_TEMPERATURE
def test_temperature_of_a_head_in_its_own_class_order():
    """scikit-learn matches decision_function columns to the sorted labels by
    position; skvrf matches them by label. For a head whose ``classes_`` are
    not sorted (a ZeroShotClassifier in ImageNet's index order), skvrf's
    temperature is scikit-learn's on the same head with sorted columns."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from skvrf import OutputSpaceEnsembleClassifier, ZeroShotClassifier
    from skvrf.utils._testing import noisy_centres

    X, y, _, text = noisy_centres(600, 10, 5, noise=1.5, text_noise=0.7, seed=1)
    labels = FRUITS[y]
    own = np.array([3, 0, 4, 2, 1])
    head = ZeroShotClassifier(text[own], classes=FRUITS[own]).fit(X)
    ranked = np.argsort(FRUITS)
    sorted_head = ZeroShotClassifier(text[ranked], classes=FRUITS[ranked]).fit(X)
    assert not np.array_equal(head.classes_, np.sort(head.classes_))
    ens = OutputSpaceEnsembleClassifier(head, head).fit(X, labels)
    T = ens.calibration_temperatures_["zeroshot"]
    cal = CalibratedClassifierCV(FrozenEstimator(sorted_head), method="temperature")
    beta = float(cal.fit(X, labels).calibrated_classifiers_[0].calibrators[0].beta_)
    z = sorted_head.decision_function(X)
    tol = _sklearn_tolerance(z, np.searchsorted(np.sort(FRUITS), labels), beta)
    assert abs(np.log(T * beta)) <= tol
    assert_allclose(ens.component_proba(X)["zeroshot"], cal.predict_proba(X), atol=1e-6)
