"""Property-based tests (hypothesis) of the weights, the mixes and the ensembles.

Properties (10 tests):

1. every weighting shape gives weights in [0, 1];
2. every weighting shape is non-increasing in the distance;
3. VRF ``predict_proba`` rows sum to one (both mixings, calibrated or not);
4. OSE ``predict_proba`` rows sum to one;
5. VRF equals the zero-shot component where ``w = 0`` and the fine-tuned one
   where ``w = 1`` (step weighting, both mixings, calibrated or not);
6. the mixes themselves are convex combinations (w = 0 / 1 end points);
7. with ``calibrate=False`` VRF does not depend on the order of training rows;
8. the same with a component fitted here (LogisticRegression);
9. ``predict_proba`` agrees to 1e-6 for any row chunk size
   (scikit-learn's ``working_memory``);
10. ``predict_proba`` agrees to 1e-6 for any VRF ``working_memory`` (the
    distance engine's block bound, which splits the bank into column blocks).

Examples are kept few so that the file runs in well under a minute.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.special import softmax
from sklearn import config_context
from sklearn.linear_model import LogisticRegression

from skvrf import (
    LinearHeadClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf._calibration import component_logits
from skvrf._weighting import WEIGHTINGS, mix

# Random problems may have an empty ZSF set or one smaller than k: documented
# warnings, tested in test_reliability.py.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Zero-Shot Failure set is empty"),
    pytest.mark.filterwarnings("ignore:k=.* is larger than the Zero-Shot"),
]

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FAST = settings(max_examples=12, deadline=None)

shapes = st.sampled_from(sorted(WEIGHTINGS))
thresholds = st.floats(-1.0, 5.0, allow_nan=False)
temperatures = st.floats(1e-3, 10.0, allow_nan=False)
distances = st.lists(st.floats(0.0, 4.0, allow_nan=False), min_size=1, max_size=50).map(
    np.array
)


@st.composite
def problems(draw, max_rows=60):
    """A random classification problem and two fixed heads of its classes."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_classes = draw(st.integers(2, 5))
    n_features = draw(st.integers(2, 6))
    n = draw(st.integers(n_classes * 3, max_rows))
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, n_features))
    y = np.arange(n) % n_classes  # every class present
    X = centers[y] + rng.normal(scale=draw(st.floats(0.3, 1.5)), size=(n, n_features))
    zs = ZeroShotClassifier(
        centers + rng.normal(scale=0.7, size=centers.shape), logit_scale=10.0
    )
    ft = LinearHeadClassifier(3 * centers, rng.normal(size=n_classes))
    X_test = rng.normal(scale=1.5, size=(draw(st.integers(1, 40)), n_features))
    return X, y, zs, ft, X_test


# -------------------------------------------------------------- weights
@SETTINGS
@given(shapes, distances, thresholds, temperatures)
def test_weights_in_unit_interval(shape, d, a, b):
    w = WEIGHTINGS[shape](d, a, b)
    assert w.shape == d.shape
    assert np.all((w >= 0.0) & (w <= 1.0))


@SETTINGS
@given(shapes, distances, thresholds, temperatures)
def test_weights_do_not_increase_with_distance(shape, d, a, b):
    d = np.sort(d)
    w = WEIGHTINGS[shape](d, a, b)
    assert np.all(np.diff(w) <= 0.0)


# ---------------------------------------------------------- sums to one
@FAST
@given(
    problems(),
    st.sampled_from(["probability", "logit"]),
    st.booleans(),
    shapes,
    thresholds,
    temperatures,
)
def test_vrf_proba_sums_to_one(problem, mixing, calibrate, shape, a, b):
    X, y, zs, ft, X_test = problem
    clf = VRFEnsembleClassifier(
        zs,
        ft,
        mixing=mixing,
        calibrate=calibrate,
        weighting=shape,
        threshold=a,
        temperature=b,
        k=1,
    )
    P = clf.fit(X, y).predict_proba(X_test)
    assert P.shape == (len(X_test), len(clf.classes_))
    assert np.all(P >= 0.0)
    assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-9)


@FAST
@given(problems(), st.floats(0.0, 1.0), st.booleans())
def test_ose_proba_sums_to_one(problem, alpha, calibrate):
    X, y, zs, ft, X_test = problem
    clf = OutputSpaceEnsembleClassifier(zs, ft, alpha=alpha, calibrate=calibrate)
    P = clf.fit(X, y).predict_proba(X_test)
    assert np.all(P >= 0.0)
    assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-9)


# ------------------------------------------------------------ end points
@FAST
@given(
    problems(),
    st.sampled_from(["probability", "logit"]),
    st.booleans(),
    st.floats(0.0, 4.0),
)
def test_vrf_is_a_component_where_weight_is_zero_or_one(
    problem, mixing, calibrate, threshold
):
    X, y, zs, ft, X_test = problem
    clf = VRFEnsembleClassifier(
        zs,
        ft,
        weighting="step",
        threshold=threshold,
        mixing=mixing,
        calibrate=calibrate,
        k=1,
    )
    clf.fit(X, y)
    X_all = np.vstack([X_test, X])
    w = clf.ensemble_weights(X_all)
    assert set(np.unique(w)) <= {0.0, 1.0}
    P = clf.predict_proba(X_all)
    T = clf.calibration_temperatures_
    p_zs = softmax(component_logits(zs.fit(X), X_all) / T["zeroshot"], axis=1)
    p_ft = softmax(component_logits(ft.fit(X), X_all) / T["finetuned"], axis=1)
    assert_allclose(P[w == 0], p_zs[w == 0], atol=1e-12)
    assert_allclose(P[w == 1], p_ft[w == 1], atol=1e-12)


@SETTINGS
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 20),
    st.integers(2, 6),
    st.sampled_from(["probability", "logit"]),
)
def test_mix_end_points(seed, n, c, mixing):
    rng = np.random.default_rng(seed)
    p_zs = softmax(rng.normal(scale=3, size=(n, c)), axis=1)
    p_ft = softmax(rng.normal(scale=3, size=(n, c)), axis=1)
    assert_allclose(mix(p_zs, p_ft, np.zeros(n), mixing), p_zs, atol=1e-12)
    assert_allclose(mix(p_zs, p_ft, np.ones(n), mixing), p_ft, atol=1e-12)
    w = rng.uniform(size=n)
    P = mix(p_zs, p_ft, w, mixing)
    assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    if mixing == "probability":  # convex, so between the two end points
        lo, hi = np.minimum(p_zs, p_ft), np.maximum(p_zs, p_ft)
        assert np.all((P >= lo - 1e-12) & (P <= hi + 1e-12))


# ------------------------------------------------------------ row order
@FAST
@given(problems(), st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 3, "auto"]))
def test_training_row_order_does_not_matter(problem, seed, k):
    X, y, zs, ft, X_test = problem
    perm = np.random.default_rng(seed).permutation(len(y))
    kw = dict(calibrate=False, k=k, threshold=1.0, temperature=0.3)
    clf = VRFEnsembleClassifier(zs, ft, **kw)
    clf_p = VRFEnsembleClassifier(zs, ft, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        P = clf.fit(X, y).predict_proba(X_test)
        P_perm = clf_p.fit(X[perm], y[perm]).predict_proba(X_test)
    # The bank's rows come in another order, so BLAS may sum each float32 q.b
    # (at most 6 features) differently: |dd| <= 2 * 2 * 6 * 2**-24 ~ 1.4e-6, and
    # P moves by at most |dd| / (4 * 0.3) ~ 1.2e-6.
    assert_allclose(P_perm, P, rtol=0, atol=2e-6)
    assert_allclose(np.sort(perm[clf_p.zsf_indices_]), clf.zsf_indices_, rtol=0, atol=0)


@settings(max_examples=6, deadline=None)
@given(problems(max_rows=40), st.integers(0, 2**32 - 1))
def test_training_row_order_with_fitted_component(problem, seed):
    X, y, zs, _, X_test = problem
    perm = np.random.default_rng(seed).permutation(len(y))
    make = lambda: VRFEnsembleClassifier(  # noqa: E731
        zs, LogisticRegression(tol=1e-10, max_iter=2000), calibrate=False, k=1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        P = make().fit(X, y).predict_proba(X_test)
        P_perm = make().fit(X[perm], y[perm]).predict_proba(X_test)
    # lbfgs sums the rows in another order: agreement to optimiser tolerance
    assert_allclose(P_perm, P, rtol=0, atol=1e-5)


# ---------------------------------------------------------- chunk sizes
def _vrf_fitted(problem, **kw):
    X, y, zs, ft, _ = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return VRFEnsembleClassifier(zs, ft, k=2, threshold=1.0, **kw).fit(X, y)


@FAST
@given(problems(), st.floats(1e-4, 2e-3))
def test_any_row_chunk_size_gives_the_same_result(problem, working_memory):
    # sklearn's working_memory (MiB) sets how many rows each chunk holds;
    # 1e-4 MiB gives chunks of one or two rows.
    clf = _vrf_fitted(problem)
    X_test = problem[4]
    P = clf.predict_proba(X_test)
    with config_context(working_memory=working_memory):
        assert clf._chunk_rows() <= 16  # so X_test (up to 40 rows) is cut
        P_chunked = clf.predict_proba(X_test)
        d_chunked = clf.zsf_distances(X_test)
    assert_allclose(P_chunked, P, rtol=0, atol=1e-6)
    assert_allclose(d_chunked, clf.zsf_distances(X_test), rtol=0, atol=1e-6)


@FAST
@given(problems(), st.floats(1e-6, 1.0), st.sampled_from([None, 1, 2]))
def test_any_distance_block_bound_gives_the_same_result(problem, wm, n_jobs):
    # Tiny budgets force one query row per block and column blocks of the bank.
    ref = _vrf_fitted(problem)
    clf = _vrf_fitted(problem, working_memory=wm, n_jobs=n_jobs)
    X_test = problem[4]
    assert_allclose(clf.predict_proba(X_test), ref.predict_proba(X_test), atol=1e-6)
    assert_allclose(clf.zsf_distances(X_test), ref.zsf_distances(X_test), atol=1e-6)
