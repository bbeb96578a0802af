"""Metamorphic tests: what users vary must not change what the ensembles compute.

Each property is checked for the four ensembles, ``VRFEnsembleClassifier``,
``OutputSpaceEnsembleClassifier``, ``EntropyEnsembleClassifier`` and
``VRFEnsembleClassifierCV`` (a 2 x 2 x 2 grid, ``cv=3``), made of a CLIP-style
``ZeroShotClassifier`` (``class_embeddings`` with ``classes``) and a fine-tuned
logistic regression (fitted by the ensemble, or frozen, or as a prefit
``LinearHeadClassifier``), on generated data: 5 classes, 8 features, 150 training
rows, components that disagree so that the Zero-Shot Failure (ZSF) set is non-empty.

1. Permuting the fixed head's class order (its ``class_embeddings`` rows together
   with ``classes``) changes nothing: same sorted ``classes_``, predictions and
   probabilities, and for VRF the same ZSF set and weights (``calibrate=False``:
   exact up to float64 round-off; ``calibrate=True``: up to the temperature
   optimiser's tolerance).
2. Relabelling the classes by a bijection (ints to other ints in another order,
   ints to strings, strings to other strings, integral floats) maps predictions
   through the bijection and permutes the probability columns as the new sorted
   order implies.
3. Components that know different subsets of the classes (in any order) give
   exactly the mix of an independent numpy oracle: each component's softmax
   placed in the columns of its own labels, zeros elsewhere, mixed with the
   ensemble's weight (VRF: ``ensemble_weights``, itself checked against a float64
   k-th-neighbour computation; OSE: ``alpha``; entropy: DaWin's weight from its
   definition).
4. With ``calibrate=False`` and fixed or frozen components, permuting the
   training rows changes nothing (VRF: the same bank up to row order, the same
   distances and predictions; the CV search on the same folds).
5. Labels of different kinds (ints vs strings, in ``y``, the zero-shot head or the
   fine-tuned head) raise a ValueError naming both sets; ints and floats that
   compare equal are one kind and give the all-int ensemble.
6. Issue 11's snippet: a zero-shot head over ``["b", "a", "c"]`` inside OSE with
   ``alpha=0`` scores exactly as the head alone.

Generated cases: hypothesis draws the permutations, label kinds and subsets with
``derandomize=True`` (the same cases on every run). Per ensemble: 10 (property 1,
uncalibrated) + 6 (property 1, calibrated) + 12 (property 2) + 15 (property 3) + 6
(property 4) = 49, so 196 generated cases in all, plus 37 fixed cases (components
knowing one class: 8, property 5: 28, property 6: 1). Measured on 2 cores: 5 s
with the machine nearly idle, 27-49 s while other work kept both cores busy (load
average 5-7; the LogisticRegression fits slow down most).
"""

from __future__ import annotations

import copy
import functools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import expit
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from skvrf import (
    EntropyEnsembleClassifier,
    LinearHeadClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    VRFEnsembleClassifierCV,
    ZeroShotClassifier,
)
from skvrf.utils._testing import assert_same_search

N_CLASSES, N_FEATURES, N_ROWS, N_TEST = 5, 8, 150, 60
LOGIT_SCALE = 10.0
K = 3

# float64 round-off: each probability is a softmax over 5 logits of magnitude
# <= ~20 and a two-term mix; a permuted summation order or another (equivalent)
# formula moves it by a few ulp times |logit|, ~1e-14 relative. The absolute
# slack covers 1 - expit(z) in a binary LogisticRegression's predict_proba
# (absolute error ~1e-16 on a tiny probability).
RTOL, ATOL = 1e-12, 1e-15
# The ZSF bank and the queries are float32: a squared distance in [0, 4] from
# 8-dimensional unit vectors is off by a few float32 ulp (~1e-6) from the float64
# value; the sigmoid weight's slope is at most 1 / (4 * 0.3) for the smallest
# temperature used here, so weights and probabilities move by at most ~1e-6 too.
F32_ATOL = 1e-5

ESTIMATORS = ("vrf", "ose", "entropy", "cv")

# The estimators warn when the ZSF set (of a fit or of a search's fold) is
# smaller than k ("k=3 is larger than the Zero-Shot Failure set", "Some candidate
# k exceed the Zero-Shot Failure set") or empty; a generated class subset may
# leave it small, so the subset tests ignore these warnings, and the fixed-data
# tests assert the ZSF set is non-empty instead.
SMALL_ZSF_WARNINGS = "ignore:.*Zero-Shot Failure set:UserWarning"


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(N_CLASSES, N_FEATURES))
    y = np.arange(N_ROWS) % N_CLASSES
    rng.shuffle(y)
    X = centers[y] + 0.9 * rng.normal(size=(N_ROWS, N_FEATURES))
    y_test = rng.integers(0, N_CLASSES, N_TEST)
    X_test = centers[y_test] + 1.2 * rng.normal(size=(N_TEST, N_FEATURES))
    # the zero-shot head's class embeddings: the centres, perturbed, so that it is
    # right on ~60 % of the rows where the logistic regression is right on ~85 %
    text = centers + 0.8 * rng.normal(size=centers.shape)
    return X, y, X_test, text


X, Y, X_TEST, TEXT = _problem()
LR = LogisticRegression(max_iter=1000).fit(X, Y)  # classes_ == [0, 1, 2, 3, 4]

# Label sets: class i (row i of TEXT, class i of LR) is called labels[i].
_NAMES = np.array(["c3", "c10", "c2", "zebra", "Apple"])  # sorted: not index order
LABEL_KINDS = ("int", "spread_int", "float", "str")


def labelling(kind, perm):
    """The label of each class index: a bijection of range(5) onto a label set."""
    p = np.asarray(perm)
    if kind == "int":
        return p.copy()  # ints in another order
    if kind == "spread_int":
        return 7 * p - 11
    if kind == "float":
        return 3.0 * p - 1.0  # integral floats: scikit-learn's classification labels
    return _NAMES[p]


perms = st.permutations(range(N_CLASSES)).map(np.array)
label_kinds = st.sampled_from(LABEL_KINDS)


def make(kind, zs, ft, *, calibrate=False, cv=3):
    """One of the four ensembles, small enough to fit quickly."""
    common = {"calibrate": calibrate, "calibration_cv": 3}
    if kind == "vrf":
        return VRFEnsembleClassifier(zs, ft, k=K, **common)
    if kind == "ose":
        return OutputSpaceEnsembleClassifier(zs, ft, alpha=0.6, **common)
    if kind == "entropy":
        return EntropyEnsembleClassifier(zs, ft, **common)
    return VRFEnsembleClassifierCV(
        zs,
        ft,
        ks=(1, K),
        thresholds=(1.0, 1.5),
        temperatures=(0.3, 0.6),
        cv=cv,
        **common,
    )


def zeroshot(labels, order=None):
    """The zero-shot head over the classes ``order`` (default all), in that order."""
    order = np.arange(N_CLASSES) if order is None else np.asarray(order)
    return ZeroShotClassifier(
        TEXT[order], classes=labels[order], logit_scale=LOGIT_SCALE
    )


def relabelled_lr(labels):
    """LR refitted on nothing: LR with its classes renamed (sorted, as sklearn's)."""
    order = np.argsort(labels, kind="stable")
    lr = copy.deepcopy(LR)
    lr.classes_ = labels[order]
    lr.coef_ = LR.coef_[order]
    lr.intercept_ = LR.intercept_[order]
    return lr


def linear_head(labels, order=None):
    """LR's weights as a prefit head over ``order``'s classes, in that order."""
    order = np.arange(N_CLASSES) if order is None else np.asarray(order)
    return LinearHeadClassifier(
        LR.coef_[order],
        LR.intercept_[order],
        classes=labels[order],
        normalize_input=False,
    )


def weights(est, X):
    """The per-row weight of the fine-tuned component, where it is per-row."""
    if isinstance(est, OutputSpaceEnsembleClassifier):
        return None
    return est.ensemble_weights(X)


def assert_equivalent(a, b, X, relabel=None, *, rtol=RTOL, atol=ATOL):
    """``b`` computes what ``a`` does, its labels renamed by ``relabel``."""
    ca, cb = a.classes_.tolist(), b.classes_.tolist()
    assert cb == sorted(cb), "classes_ must be sorted"
    f = relabel if relabel is not None else {c: c for c in ca}
    assert sorted(f[c] for c in ca) == cb
    cols = [cb.index(f[c]) for c in ca]
    assert_allclose(b.predict_proba(X)[:, cols], a.predict_proba(X), rtol, atol)
    assert [f[v] for v in a.predict(X).tolist()] == b.predict(X).tolist()
    wa, wb = weights(a, X), weights(b, X)
    if wa is not None:
        assert_allclose(wb, wa, rtol=rtol, atol=atol)
    for attr in ("zsf_indices_", "k_"):
        if hasattr(a, attr):
            assert_array_equal(getattr(b, attr), getattr(a, attr))
    if isinstance(a, VRFEnsembleClassifierCV):
        assert_same_search(b, a)


def vrf_of(est):
    return est.best_estimator_ if isinstance(est, VRFEnsembleClassifierCV) else est


# ---------------------------------------------------------------- property 1
@pytest.mark.parametrize("kind", ESTIMATORS)
@settings(max_examples=10, deadline=None, derandomize=True)
@given(perm=perms, label_kind=label_kinds)
def test_head_class_order_does_not_matter(kind, perm, label_kind):
    labels = labelling(label_kind, np.arange(N_CLASSES))
    y = labels[Y]
    # the reference head lists its classes sorted; the other one in any order
    ref = make(kind, zeroshot(labels, np.argsort(labels)), LogisticRegression())
    ref.fit(X, y)
    est = make(kind, zeroshot(labels, perm), LogisticRegression()).fit(X, y)
    if kind in ("vrf", "cv"):
        assert vrf_of(ref).k_ >= 1
    assert_equivalent(ref, est, X_TEST)


@pytest.mark.parametrize("kind", ESTIMATORS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(perm=perms, method=st.sampled_from(["log_loss", "confidence"]))
def test_head_class_order_does_not_matter_calibrated(kind, perm, method):
    labels = _NAMES
    y = labels[Y]
    # A frozen fine-tuned component: the head's order cannot change its
    # out-of-fold calibration, and refitting it three times per fit is slow.
    ft = FrozenEstimator(relabelled_lr(labels))
    params = {"calibrate": True}
    ref = make(kind, zeroshot(labels, np.argsort(labels)), ft, **params)
    est = make(kind, zeroshot(labels, perm), ft, **params)
    ref.set_params(calibration_method=method).fit(X, y)
    est.set_params(calibration_method=method).fit(X, y)
    # Both calibration methods find log T as the root of a monotone function
    # (the log-loss's slope, or confidence minus accuracy) by brentq with
    # xtol=1e-12, rtol=1e-14. On column-permuted logits that function differs
    # by round-off (~1e-15), which moves the root by ~1e-15 / its slope, far
    # below xtol: log T agrees to ~1e-12, and a probability moves by at most
    # max |z / T| * d(log T) ~ 20 * 1e-12. (Observed: 2e-16 for both.)
    t_ref = vrf_of(ref).calibration_temperatures_
    t_est = vrf_of(est).calibration_temperatures_
    for name in ("zeroshot", "finetuned"):
        assert_allclose(t_est[name], t_ref[name], rtol=1e-10)
    assert_equivalent(ref, est, X_TEST, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- property 2
@pytest.mark.parametrize("kind", ESTIMATORS)
@settings(max_examples=12, deadline=None, derandomize=True)
@given(src=label_kinds, src_perm=perms, dst=label_kinds, dst_perm=perms)
def test_relabelling_by_a_bijection(kind, src, src_perm, dst, dst_perm):
    # The fine-tuned component is LR frozen with its classes renamed: refitting a
    # LogisticRegression on relabelled y permutes lbfgs' columns, which agrees
    # only to lbfgs' tolerance, not to round-off.
    fitted = {}
    for name, labels in (
        ("a", labelling(src, src_perm)),
        ("b", labelling(dst, dst_perm)),
    ):
        # each head lists its classes in class-index order: unsorted labels
        est = make(kind, zeroshot(labels), FrozenEstimator(relabelled_lr(labels)))
        fitted[name] = (est.fit(X, labels[Y]), labels)
    (a, la), (b, lb) = fitted["a"], fitted["b"]
    relabel = dict(zip(la.tolist(), lb.tolist()))
    if kind in ("vrf", "cv"):
        assert vrf_of(a).k_ >= 1
    assert_equivalent(a, b, X_TEST, relabel)


# ---------------------------------------------------------------- property 3
def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def unit_rows(A):
    A = np.asarray(A, dtype=np.float64)
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def placed(proba, labels, classes):
    """Columns of ``proba`` (one per label) placed by label; zeros elsewhere."""
    out = np.zeros((proba.shape[0], len(classes)))
    for j, label in enumerate(labels.tolist()):
        out[:, classes.index(label)] = proba[:, j]
    return out


def entropy(p):
    # 0 log 0 = 0 (a binary LogisticRegression's 1 - expit(z) can round to 0)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


@functools.cache
def _lr_on(selection, kind):
    """LogisticRegression fitted on the rows of the selected classes only."""
    labels = labelling(kind, np.arange(N_CLASSES))
    rows = np.isin(Y, list(selection))
    return LogisticRegression(max_iter=1000).fit(X[rows], labels[Y[rows]])


class Component:
    """A component with an oracle: its labels and its own softmax, by numpy."""

    def __init__(self, estimator, labels, proba):
        self.estimator, self.labels, self.proba = estimator, labels, proba


def zeroshot_component(labels, order):
    order = np.asarray(order)

    def proba(X):
        return softmax(LOGIT_SCALE * unit_rows(X) @ unit_rows(TEXT[order]).T)

    return Component(zeroshot(labels, order), labels[order], proba)


def finetuned_component(labels, order, ft_kind, label_kind):
    order = np.asarray(order)
    if ft_kind == "head":
        coef, intercept = LR.coef_[order], LR.intercept_[order]
        return Component(
            linear_head(labels, order),
            labels[order],
            lambda X: softmax(X @ coef.T + intercept),
        )
    lr = _lr_on(tuple(sorted(order.tolist())), label_kind)
    return Component(FrozenEstimator(lr), lr.classes_, lr.predict_proba)


def oracle(est, zs, ft, y, X_test):
    """The ensemble's probabilities on X_test, computed independently."""
    classes = sorted(set(zs.labels.tolist()) | set(ft.labels.tolist()))
    p_zs = placed(zs.proba(X_test), zs.labels, classes)
    p_ft = placed(ft.proba(X_test), ft.labels, classes)
    if isinstance(est, OutputSpaceEnsembleClassifier):
        w = np.full(X_test.shape[0], est.alpha)
    elif isinstance(est, EntropyEnsembleClassifier):
        h_zs, h_ft = entropy(zs.proba(X_test)), entropy(ft.proba(X_test))
        w = np.exp(-h_ft) / (np.exp(-h_zs) + np.exp(-h_ft))
    else:
        vrf = vrf_of(est)
        w = est.ensemble_weights(X_test)
        assert_array_equal(w, vrf.ensemble_weights(X_test))
        # the weights themselves, from the paper's definition in float64
        zs_pred = zs.labels[zs.proba(X).argmax(axis=1)]
        ft_pred = ft.labels[ft.proba(X).argmax(axis=1)]
        zsf = np.flatnonzero((zs_pred != y) & (ft_pred == y))
        assert_array_equal(vrf.zsf_indices_, zsf)
        if zsf.size == 0:
            w_oracle = np.zeros(X_test.shape[0])
        else:
            k = min(vrf.k, zsf.size)
            assert vrf.k_ == k
            q, bank = unit_rows(X_test), unit_rows(X[zsf])
            d = ((q[:, None, :] - bank[None, :, :]) ** 2).sum(axis=-1)
            kth = np.sort(d, axis=1)[:, k - 1]
            assert_allclose(vrf.zsf_distances(X_test), kth, rtol=0, atol=F32_ATOL)
            w_oracle = expit(-(kth - vrf.threshold) / vrf.temperature)
        assert_allclose(w, w_oracle, rtol=0, atol=F32_ATOL)
    return classes, w[:, None] * p_ft + (1 - w[:, None]) * p_zs


def check_against_oracle(kind, zs, ft, label_kind):
    labels = labelling(label_kind, np.arange(N_CLASSES))
    y = labels[Y]
    est = make(kind, zs.estimator, ft.estimator).fit(X, y)
    classes, expected = oracle(est, zs, ft, y, X_TEST)
    assert est.classes_.tolist() == classes
    proba = est.predict_proba(X_TEST)
    assert_allclose(proba, expected, rtol=RTOL, atol=ATOL)
    assert_array_equal(est.predict(X_TEST), np.asarray(classes)[expected.argmax(1)])


@st.composite
def class_subsets(draw):
    """Class indices known to each component, in any order; together all of them.

    Each component knows at least two classes (one-class components are tested
    on their own below); either may know all five.
    """
    everything = list(range(N_CLASSES))
    ft = draw(
        st.lists(st.sampled_from(everything), min_size=2, max_size=5, unique=True)
    )
    rest = sorted(set(everything) - set(ft))
    extra = draw(
        st.lists(st.sampled_from(ft), unique=True, min_size=max(0, 2 - len(rest)))
    )
    zs = draw(st.permutations(rest + extra))
    return np.array(zs), np.array(ft)


@pytest.mark.parametrize("kind", ESTIMATORS)
@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    subsets=class_subsets(),
    ft_kind=st.sampled_from(["head", "frozen_lr"]),
    label_kind=label_kinds,
)
@pytest.mark.filterwarnings(SMALL_ZSF_WARNINGS)
def test_components_knowing_class_subsets_match_the_oracle(
    kind, subsets, ft_kind, label_kind
):
    zs_order, ft_order = subsets
    labels = labelling(label_kind, np.arange(N_CLASSES))
    check_against_oracle(
        kind,
        zeroshot_component(labels, zs_order),
        finetuned_component(labels, ft_order, ft_kind, label_kind),
        label_kind,
    )


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize("one_class", ["zeroshot", "finetuned"])
@pytest.mark.filterwarnings(SMALL_ZSF_WARNINGS)
def test_a_component_knowing_one_class_matches_the_oracle(kind, one_class):
    labels = labelling("str", np.arange(N_CLASSES))
    everything = [3, 0, 4, 1, 2]
    zs_order, ft_order = (
        ([2], everything) if one_class == "zeroshot" else (everything, [2])
    )
    check_against_oracle(
        kind,
        zeroshot_component(labels, zs_order),
        finetuned_component(labels, ft_order, "head", "str"),
        "str",
    )


# ---------------------------------------------------------------- property 4
@pytest.mark.parametrize("kind", ESTIMATORS)
@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    perm=st.permutations(range(N_ROWS)).map(np.array),
    ft_kind=st.sampled_from(["frozen_lr", "head"]),
)
def test_training_row_order_does_not_matter(kind, perm, ft_kind):
    labels = _NAMES
    y = labels[Y]
    ft = (
        FrozenEstimator(relabelled_lr(labels))
        if ft_kind == "frozen_lr"
        else (linear_head(labels, [4, 2, 0, 1, 3]))
    )
    # the CV search on the same folds: each fold holds the same rows, in another
    # order (row i of X is row inv[i] of X[perm])
    folds = list(StratifiedKFold(3).split(X, y))
    inv = np.argsort(perm)
    folds_perm = [(np.sort(inv[tr]), np.sort(inv[te])) for tr, te in folds]
    a = make(kind, zeroshot(labels, [1, 3, 0, 4, 2]), ft, cv=folds).fit(X, y)
    b = make(kind, zeroshot(labels, [1, 3, 0, 4, 2]), ft, cv=folds_perm)
    b.fit(X[perm], y[perm])
    if kind in ("vrf", "cv"):
        va, vb = vrf_of(a), vrf_of(b)
        assert va.k_ >= 1 and vb.k_ == va.k_
        # the same bank, up to row order (each row normalised on its own: exact)
        original = perm[vb.zsf_indices_]
        assert_array_equal(np.sort(original), va.zsf_indices_)
        assert_array_equal(vb.zsf_embeddings_[np.argsort(original)], va.zsf_embeddings_)
        # float32 distances summed in another bank order
        assert_allclose(
            vb.zsf_distances(X_TEST), va.zsf_distances(X_TEST), rtol=0, atol=F32_ATOL
        )
        if kind == "cv":
            assert_same_search(b, a)
    proba_a, proba_b = a.predict_proba(X_TEST), b.predict_proba(X_TEST)
    assert_allclose(proba_b, proba_a, rtol=0, atol=F32_ATOL)
    assert_array_equal(b.predict(X_TEST), a.predict(X_TEST))


# ---------------------------------------------------------------- property 5
_INTS = np.array([101, 202, 303, 404, 505])
_STRS = np.array(["ant", "bee", "cat", "dog", "eel"])


def _mentions_one_of(message, labels):
    return any(re.search(rf"\b{re.escape(str(v))}\b", message) for v in labels)


MIXED_CASES = {
    # case: (labels of y, of the zero-shot head, of the fine-tuned head or None
    # for a LogisticRegression fitted on y)
    "y ints, zero-shot strings": (_INTS, _STRS, None),
    "y strings, zero-shot ints": (_STRS, _INTS, None),
    "y strings, fine-tuned head ints": (_STRS, _STRS, _INTS),
    "y ints, fine-tuned head strings": (_INTS, _INTS, _STRS),
}


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize("case", list(MIXED_CASES))
def test_labels_of_different_kinds_raise_naming_both_sets(kind, case):
    y_labels, zs_labels, ft_labels = MIXED_CASES[case]
    ft = LogisticRegression() if ft_labels is None else linear_head(ft_labels)
    est = make(kind, zeroshot(zs_labels, [2, 0, 1, 4, 3]), ft)
    with pytest.raises(ValueError) as info:
        est.fit(X, y_labels[Y])
    message = str(info.value)
    other = zs_labels if ft_labels is None else ft_labels
    assert _mentions_one_of(message, y_labels), message
    assert _mentions_one_of(message, other), message


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize("where", ["zeroshot", "finetuned", "y"])
def test_ints_and_floats_that_compare_equal_are_one_kind(kind, where):
    ints = labelling("int", np.arange(N_CLASSES))
    floats = ints.astype(np.float64)
    zs_order = [2, 0, 1, 4, 3]
    ref = make(kind, zeroshot(ints, zs_order), linear_head(ints, zs_order))
    ref.fit(X, ints[Y])
    zs_labels = floats if where == "zeroshot" else ints
    ft_labels = floats if where == "finetuned" else ints
    y = (floats if where == "y" else ints)[Y]
    est = make(kind, zeroshot(zs_labels, zs_order), linear_head(ft_labels, zs_order))
    est.fit(X, y)
    assert_equivalent(ref, est, X_TEST)


# ---------------------------------------------------------------- property 6
def test_issue_11_snippet_alpha_zero_is_the_zero_shot_head():
    rng = np.random.default_rng(0)
    C = rng.normal(size=(3, 8))
    y = rng.integers(0, 3, 300)
    X = C[y] + 0.3 * rng.normal(size=(300, 8))
    names = np.array(["b", "a", "c"])
    zs = ZeroShotClassifier(C, classes=names).fit(X)
    ose = OutputSpaceEnsembleClassifier(zs, LogisticRegression(), alpha=0.0)
    ose.fit(X, names[y])
    assert ose.score(X, names[y]) == zs.score(X, names[y])
    assert_array_equal(ose.predict(X), zs.predict(X))
