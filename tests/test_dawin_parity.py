"""DaWin as its authors run it: offset adjustment and the Beta mixture.

The oracles here are re-derived from the DaWin paper (Oh et al., ICLR 2025) and
the formulas its authors publish with their main-results command
(``--offset-adjustment``, ``--bmm_ncluster 3``), written independently of skvrf's
code and of theirs:

* entropy ``H(p) = -sum p log p`` (natural log) of each model's calibrated
  prediction;
* offset adjustment over the whole batch being predicted:
  ``bias = (std(H_zs)/mean(H_zs) + std(H_ft)/mean(H_ft)) / 2`` (std with
  ``ddof=1``), ``biasw = (mean(H_zs) + mean(H_ft)) / mean(H_zs)``,
  ``lambda = (exp(-H_ft) + bias/biasw) / (exp(-H_zs) + exp(-H_ft) + bias)``;
* the Beta mixture: hard KMeans responsibilities (seed ``seed + round``), EM
  with moment-matched Beta components, ``tol`` on the mean log-likelihood,
  best of the restarts by final mean log-likelihood; each group's coefficient
  is its component's mean ``a / (a + b)``.

All on unsorted string labels, with components whose own class order is
neither sorted nor the same.
"""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import betaln, logsumexp, softmax
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from skvrf import EntropyEnsembleClassifier, ZeroShotClassifier
from skvrf.clip._dawin import BetaMixture
from skvrf.utils._testing import noisy_centres

# unsorted string labels: neither alphabetical nor the order rows first show them
NAMES = np.array(["pear", "fig", "apple", "kiwi", "date"])


def _oracle_entropy(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=1)


def _oracle_lambda(p_zs, p_ft, offset_adjustment):
    h_zs, h_ft = _oracle_entropy(p_zs), _oracle_entropy(p_ft)
    if offset_adjustment:
        bias = (h_zs.std(ddof=1) / h_zs.mean() + h_ft.std(ddof=1) / h_ft.mean()) / 2
        biasw = (h_zs.mean() + h_ft.mean()) / h_zs.mean()
    else:
        bias, biasw = 0.0, 2.0
    return (np.exp(-h_ft) + bias / biasw) / (np.exp(-h_zs) + np.exp(-h_ft) + bias)


def _fitted(n=600, shift=0.0, seed=0, **kw):
    X, y, _, text = noisy_centres(n, 10, 5, noise=1.3, text_noise=0.7, seed=seed)
    labels = NAMES[y]
    head_order = np.array([3, 0, 4, 2, 1])  # the head's own class order
    zs = ZeroShotClassifier(text[head_order], classes=NAMES[head_order])
    ens = EntropyEnsembleClassifier(zs, LogisticRegression(max_iter=1000), **kw)
    ens.fit(X[: n // 2], labels[: n // 2])
    return ens, X[n // 2 :] + shift, labels[n // 2 :]


def _component_proba(ens, X):
    """Each component's calibrated probabilities in sorted-label columns, by hand."""
    T = ens.calibration_temperatures_
    out = {}
    for name in ("zeroshot", "finetuned"):
        est = getattr(ens, f"{name}_estimator_")
        z = est.decision_function(X)
        cols = [list(est.classes_).index(c) for c in np.sort(NAMES)]
        out[name] = softmax(z[:, cols] / T[name], axis=1)
    return out["zeroshot"], out["finetuned"]


@pytest.mark.parametrize("offset_adjustment", [False, True])
@pytest.mark.parametrize("shift", [0.0, 1.5])
def test_entropy_ensemble_matches_the_authors_formula(offset_adjustment, shift):
    ens, X, _ = _fitted(shift=shift, offset_adjustment=offset_adjustment)
    assert_array_equal(ens.classes_, np.sort(NAMES))
    p_zs, p_ft = _component_proba(ens, X)
    lam = _oracle_lambda(p_zs, p_ft, offset_adjustment)
    got = ens.ensemble_weights(X)
    assert np.max(np.abs(got - lam)) < 1e-12
    expected = lam[:, None] * p_ft + (1 - lam[:, None]) * p_zs
    assert np.max(np.abs(ens.predict_proba(X) - expected)) < 1e-12
    assert_array_equal(ens.predict(X), np.sort(NAMES)[expected.argmax(1)])
    if offset_adjustment:  # the adjustment does change the coefficients here
        assert np.max(np.abs(lam - _oracle_lambda(p_zs, p_ft, False))) > 1e-3


def test_offset_is_computed_on_the_whole_batch_whatever_the_chunks():
    ens, X, _ = _fitted(offset_adjustment=True)
    whole = ens.predict_proba(X)
    with sklearn.config_context(working_memory=0.001):  # many chunks
        chunks = list(ens.iter_component_outputs(X))
        assert len(chunks) > 1
        assert_allclose(ens.predict_proba(X), whole, rtol=0, atol=1e-14)
        assert_allclose(
            ens.ensemble_weights(X), ens.ensemble_weights(X.copy()), rtol=0, atol=0
        )
    # every chunk carries the batch's offset; mix_outputs of a chunk uses it
    offsets = {o.extras["dawin_offset"] for o in chunks}
    assert len(offsets) == 1
    part = chunks[1]
    assert_allclose(ens.mix_outputs(part), whole[part.rows], atol=1e-14)
    # transductive: the same rows predicted in another batch differ
    assert not np.allclose(ens.predict_proba(X[:40]), whole[:40])
    # one row: no standard deviation, no adjustment
    p_zs, p_ft = _component_proba(ens, X[:1])
    assert_allclose(
        ens.ensemble_weights(X[:1]), _oracle_lambda(p_zs, p_ft, False), atol=1e-15
    )


def test_offset_with_a_class_map_uses_the_mapped_probabilities():
    ens, X, _ = _fitted(offset_adjustment=True)
    class_map = {"a-fruit": ["apple", "fig"], "other": ["date", "kiwi", "pear"]}
    view = ens.with_class_map(class_map)
    T = ens.calibration_temperatures_
    mapped = {}
    for name in ("zeroshot", "finetuned"):
        est = getattr(ens, f"{name}_estimator_")
        z = est.decision_function(X)
        cols = [
            [list(est.classes_).index(c) for c in src] for src in class_map.values()
        ]
        pooled = np.column_stack([z[:, c].max(1) for c in cols])
        mapped[name] = softmax(pooled / T[name], axis=1)
    lam = _oracle_lambda(mapped["zeroshot"], mapped["finetuned"], True)
    expected = (
        lam[:, None] * mapped["finetuned"] + (1 - lam[:, None]) * mapped["zeroshot"]
    )
    assert np.max(np.abs(view.predict_proba(X) - expected)) < 1e-12


def test_offset_default_keeps_todays_weights():
    ens, X, _ = _fitted()
    assert ens.offset_adjustment is False
    p_zs, p_ft = _component_proba(ens, X)
    h = _oracle_entropy
    assert_allclose(
        ens.ensemble_weights(X),
        np.exp(-h(p_ft)) / (np.exp(-h(p_zs)) + np.exp(-h(p_ft))),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="offset_adjustment"):
        EntropyEnsembleClassifier(
            ens.zeroshot_estimator, ens.finetuned_estimator, offset_adjustment="yes"
        ).fit(X, _fitted()[2])


# ------------------------------------------------------------ Beta mixture
def _oracle_mixture(x, k, seed, n_init=3, tol=1e-4, max_iter=1000):
    """The authors' grouping from its description: (means, labels, converged)."""

    def moments(resp):
        w = resp.sum(axis=0)
        m = resp.T @ x / w
        v = np.minimum(resp.T @ x**2 / w - m**2, m * (1 - m) / 4)
        phi = m * (1 - m) / v - 1
        return w / w.sum(), m * phi, (1 - m) * phi

    def log_joint(pi, a, b):
        return (
            np.log(pi) + (a - 1) * np.log(x)[:, None]
            + (b - 1) * np.log(1 - x)[:, None] - betaln(a, b)
        )  # fmt: skip

    best = None
    for r in range(n_init):
        labels = KMeans(k, n_init=1, random_state=seed + r).fit(x[:, None]).labels_
        pi, a, b = moments(np.eye(k)[labels])
        ll_prev, converged = -np.inf, False
        for _ in range(max_iter):
            joint = log_joint(pi, a, b)
            norm = logsumexp(joint, axis=1)
            pi, a, b = moments(np.exp(joint - norm[:, None]))
            ll = norm.mean()
            if abs(ll - ll_prev) < tol:
                converged = True
                break
            ll_prev = ll
        if best is None or ll > best[0]:
            best = (ll, pi, a, b, converged)
    _, pi, a, b, converged = best
    order = np.argsort(a / (a + b))
    labels = np.argsort(order)[log_joint(pi, a, b).argmax(axis=1)]
    return (a / (a + b))[order], labels, converged


def _coefficients(offset_adjustment, shift=1.0):
    ens, X, _ = _fitted(n=1200, shift=shift, offset_adjustment=offset_adjustment)
    return ens.ensemble_weights(X)


@pytest.mark.parametrize("offset_adjustment", [False, True])
def test_kmeans_beta_mixture_matches_the_authors_grouping(offset_adjustment):
    x = _coefficients(offset_adjustment)
    bmm = BetaMixture(
        3, init="kmeans", n_init=3, tol=1e-4, max_iter=1000, random_state=1
    ).fit(x)
    means, labels, converged = _oracle_mixture(x, 3, seed=1)
    assert converged and bmm.converged_
    # the same EM path; skvrf clips x to [1e-6, 1 - 1e-6] (inert here: DaWin's
    # coefficients lie in [1 / (1 + K), K / (1 + K)]) and v to >= 1e-12
    assert np.max(np.abs(bmm.means_ - means)) < 1e-10
    assert_array_equal(bmm.predict(x), labels)
    # the default, deterministic initialisation is kept and documented as such
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 500 iterations here
        default = BetaMixture(3).fit(x)
    assert default.init == "quantiles" and default.n_init == 1


def test_beta_mixture_warns_at_its_iteration_limit():
    x = _coefficients(False)
    for init in ("quantiles", "kmeans"):
        with pytest.warns(ConvergenceWarning, match="max_iter=2"):
            bmm = BetaMixture(3, init=init, max_iter=2, random_state=0).fit(x)
        assert not bmm.converged_ and bmm.n_iter_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert BetaMixture(3, init="kmeans", tol=1e-4, max_iter=1000).fit(x).converged_
    with pytest.raises(ValueError, match="init"):
        BetaMixture(3, init="random").fit(x)
    with pytest.raises(ValueError, match="n_init"):
        BetaMixture(3, init="kmeans", n_init=0).fit(x)


# ------------------------------------------------- DaWin in weight space
@pytest.fixture(scope="module")
def clip_pair(tiny_model):
    import copy

    import torch

    zs, preprocess, _ = tiny_model
    ft = copy.deepcopy(zs)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return zs, ft.eval(), preprocess


def test_dawin_offset_adjustment_and_kmeans_grouping_match_the_oracle(clip_pair):
    from skvrf import LinearHeadClassifier
    from skvrf.clip import dawin
    from skvrf.clip.testing import TINY_CONFIG, make_images, reference_image_embeddings

    zs, ft, preprocess = clip_pair
    dim = TINY_CONFIG["embed_dim"]
    names = NAMES[:4]  # unsorted; both heads in the same (interpolable) order
    rng = np.random.default_rng(0)
    zs_head = ZeroShotClassifier(rng.normal(size=(4, dim)), classes=names,
                                 logit_scale=20.0).fit(np.zeros((1, dim)))  # fmt: skip
    ft_head = LinearHeadClassifier(
        rng.normal(size=(4, dim)) * 8, rng.normal(size=4), classes=names,
        normalize_input=True,
    ).fit(np.zeros((1, dim)))  # fmt: skip
    from PIL import Image

    images = [Image.fromarray(a) for a in make_images(24, seed=5)]
    kw = dict(
        zeroshot_head=zs_head, finetuned_head=ft_head, preprocess=preprocess,
        temperatures=(0.7, 1.3), batch_size=5,
    )  # fmt: skip
    e_zs = reference_image_embeddings(zs, preprocess, images).astype(np.float64)
    e_ft = reference_image_embeddings(ft, preprocess, images).astype(np.float64)
    p_zs = softmax(zs_head.decision_function(e_zs) / 0.7, axis=1)
    p_ft = softmax(ft_head.decision_function(e_ft) / 1.3, axis=1)
    for offset_adjustment in (False, True):
        lam = _oracle_lambda(p_zs, p_ft, offset_adjustment)
        result = dawin(zs, ft, images, n_groups=None,
                       offset_adjustment=offset_adjustment, **kw)  # fmt: skip
        assert_array_equal(result.classes, names)
        # float32 forward passes: ~1e-6 on the features, less on lambda
        assert np.max(np.abs(result.coefficients - lam)) < 1e-5
    assert np.max(np.abs(lam - _oracle_lambda(p_zs, p_ft, False))) > 1e-3
    grouped = dawin(zs, ft, images, n_groups=3, offset_adjustment=True,
                    mixture="kmeans", random_state=1, **kw)  # fmt: skip
    means, labels, _ = _oracle_mixture(grouped.coefficients, 3, seed=1)
    assert np.max(np.abs(grouped.group_coefficients - means)) < 1e-10
    assert_array_equal(grouped.groups, labels)
    with pytest.raises(ValueError, match="mixture"):
        dawin(zs, ft, images[:2], mixture="gmm", **kw)
