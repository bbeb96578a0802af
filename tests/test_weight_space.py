"""Weight-space methods on the tiny open_clip model: DaWin and Model Stock.

DaWin's coefficients are checked against the entropy formula computed from each
model's own embeddings (open_clip's ``encode_image``), and its predictions
against :func:`skvrf.clip.wise_ft` models built independently at each sample's
(or group's) coefficient; Model Stock against its layer-wise formula in numpy.
"""

import copy

import numpy as np
import pytest

pytest.importorskip("open_clip")

import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax

from skvrf import LinearHeadClassifier, ZeroShotClassifier
from skvrf.clip import OpenCLIPModel, dawin, model_stock, wise_ft
from skvrf.clip._dawin import BetaMixture
from skvrf.clip._model_stock import model_stock_ratio
from skvrf.clip.testing import TINY_CONFIG, make_images, reference_image_embeddings

DIM = TINY_CONFIG["embed_dim"]


def _perturbed(model, seed, scale):
    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return out.eval()


@pytest.fixture(scope="module")
def models(tiny_model):
    zs, preprocess, _ = tiny_model
    return zs, _perturbed(zs, 1, 0.05), _perturbed(zs, 2, 0.05), preprocess


@pytest.fixture(scope="module")
def heads():
    rng = np.random.default_rng(0)
    zs_head = ZeroShotClassifier(rng.normal(size=(4, DIM)), logit_scale=20.0)
    ft_head = LinearHeadClassifier(
        rng.normal(size=(4, DIM)) * 8, rng.normal(size=4), normalize_input=True
    )
    return zs_head.fit(np.zeros((1, DIM))), ft_head.fit(np.zeros((1, DIM)))


def _pil(array):
    from PIL import Image

    return Image.fromarray(array)


IMAGES = [_pil(a) for a in make_images(10, seed=3)]


def _entropy(p):
    return -(p * np.log(p)).sum(axis=1)


def _proba_of(model, head, preprocess, images):
    """A model's probabilities by open_clip's own normalised encode_image."""
    emb = reference_image_embeddings(model, preprocess, images).astype(np.float64)
    return softmax(head.decision_function(emb), axis=1)


# ------------------------------------------------------------------ DaWin
def test_dawin_coefficients_are_the_entropy_ratio(models, heads):
    zs, ft, _, preprocess = models
    zs_head, ft_head = heads
    result = dawin(
        zs, ft, IMAGES, zeroshot_head=zs_head, finetuned_head=ft_head,
        preprocess=preprocess, temperatures=(0.7, 1.3), batch_size=4,
    )  # fmt: skip
    e_zs = reference_image_embeddings(zs, preprocess, IMAGES).astype(np.float64)
    e_ft = reference_image_embeddings(ft, preprocess, IMAGES).astype(np.float64)
    p_zs = softmax(zs_head.decision_function(e_zs) / 0.7, axis=1)
    p_ft = softmax(ft_head.decision_function(e_ft) / 1.3, axis=1)
    h_zs, h_ft = _entropy(p_zs), _entropy(p_ft)
    lam = np.exp(-h_ft) / (np.exp(-h_zs) + np.exp(-h_ft))
    # float32 forward passes: ~1e-6 on the features, less on the coefficients
    assert_allclose(result.coefficients, lam, atol=1e-5)
    assert_array_equal(result.classes, zs_head.classes_)
    assert result.coefficients.std() > 0  # the test sees different coefficients


def test_dawin_sample_wise_is_wise_ft_at_each_coefficient(models, heads):
    zs, ft, _, preprocess = models
    zs_head, ft_head = heads
    images = IMAGES[:4]
    result = dawin(
        OpenCLIPModel(zs, preprocess, None, None),
        OpenCLIPModel(ft, preprocess, None, None),
        images, zeroshot_head=zs_head, finetuned_head=ft_head, n_groups=None,
    )  # fmt: skip
    assert_array_equal(result.groups, np.arange(4))
    assert_allclose(result.group_coefficients, result.coefficients)
    for i, lam in enumerate(result.coefficients):
        merged = wise_ft(zs, ft, float(lam))
        head = wise_ft(zs_head, ft_head, float(lam))
        expected = _proba_of(merged, head, preprocess, [images[i]])
        assert_allclose(result.proba[i : i + 1], expected, atol=1e-5)


def test_dawin_groups_run_one_model_per_group(models, heads):
    zs, ft, _, preprocess = models
    zs_head, ft_head = heads
    result = dawin(
        zs, ft, IMAGES, zeroshot_head=zs_head, finetuned_head=ft_head,
        preprocess=preprocess, n_groups=2, batch_size=3,
    )  # fmt: skip
    k = result.group_coefficients.shape[0]
    assert 1 <= k <= 2 and set(result.groups) <= set(range(k))
    assert np.all(np.diff(result.group_coefficients) >= 0)
    for g, lam in enumerate(result.group_coefficients):
        rows = np.flatnonzero(result.groups == g)
        if rows.size == 0:
            continue
        merged = wise_ft(zs, ft, float(lam))
        head = wise_ft(zs_head, ft_head, float(lam))
        expected = _proba_of(merged, head, preprocess, [IMAGES[i] for i in rows])
        assert_allclose(result.proba[rows], expected, atol=1e-5)
    # a preprocessed tensor gives the same result
    batch = torch.stack([preprocess(img) for img in IMAGES])
    again = dawin(
        zs, ft, batch, zeroshot_head=zs_head, finetuned_head=ft_head, n_groups=2
    )
    assert_allclose(again.proba, result.proba, atol=1e-6)
    assert_array_equal(again.groups, result.groups)


def test_dawin_of_a_model_with_itself_is_that_model(models, heads):
    zs, _, _, preprocess = models
    zs_head, _ = heads
    result = dawin(
        zs, zs, IMAGES[:3], zeroshot_head=zs_head, finetuned_head=zs_head,
        preprocess=preprocess,
    )  # fmt: skip
    assert_allclose(result.coefficients, 0.5, atol=1e-12)
    assert_allclose(
        result.proba, _proba_of(zs, zs_head, preprocess, IMAGES[:3]), atol=1e-5
    )


def test_dawin_errors(models, heads):
    zs, ft, _, preprocess = models
    zs_head, ft_head = heads
    other = LinearHeadClassifier(np.ones((4, DIM)), classes=list("abcd")).fit(
        np.zeros((1, DIM))
    )
    kw = {"zeroshot_head": zs_head, "preprocess": preprocess}
    with pytest.raises(ValueError, match="classes differ"):
        dawin(zs, ft, IMAGES[:2], finetuned_head=other, **kw)
    with pytest.raises(ValueError, match="n_groups"):
        dawin(zs, ft, IMAGES[:2], finetuned_head=ft_head, n_groups=0, **kw)
    with pytest.raises(ValueError, match="preprocess"):
        dawin(zs, ft, IMAGES[:2], zeroshot_head=zs_head, finetuned_head=ft_head)


def test_beta_mixture_recovers_separated_components():
    rng = np.random.default_rng(0)
    x = np.r_[rng.beta(3, 30, 400), rng.beta(30, 30, 300), rng.beta(30, 3, 300)]
    bmm = BetaMixture(3).fit(x)
    assert_allclose(bmm.means_, [3 / 33, 0.5, 30 / 33], atol=0.02)
    assert_allclose(bmm.weights_, [0.4, 0.3, 0.3], atol=0.03)
    labels = bmm.predict(x)
    assert np.mean(labels[:400] == 0) > 0.95 and np.mean(labels[700:] == 2) > 0.95
    # deterministic, and no more components than distinct values
    assert_allclose(BetaMixture(3).fit(x).means_, bmm.means_)
    single = BetaMixture(3).fit(np.full(5, 0.3))
    assert single.means_.shape == (1,)
    assert_allclose(single.means_, 0.3, atol=1e-6)


# ------------------------------------------------------------- Model Stock
def test_model_stock_ratio():
    assert model_stock_ratio(1.0) == 1.0 and model_stock_ratio(0.0) == 0.0
    assert_allclose(model_stock_ratio(0.5), 2 / 3)
    assert_allclose(model_stock_ratio(0.5, 3), 1.5 / 2)
    assert model_stock_ratio(-0.4) == 0.0


def _flat(t):
    return t.detach().double().numpy().reshape(-1)


@pytest.mark.parametrize("n_models", [2, 3])
def test_model_stock_is_the_layer_wise_formula(models, n_models):
    zs, ft, ft2, preprocess = models
    finetuned = [ft, ft2, _perturbed(zs, 3, 0.05)][:n_models]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in finetuned]
    merged, ratios = model_stock(zs, finetuned, return_ratios=True)
    sd0, sdm = zs.state_dict(), merged.state_dict()
    sds = [m.state_dict() for m in finetuned]
    n_checked = 0
    for key, w0 in sd0.items():
        if not torch.is_floating_point(w0):
            continue
        deltas = [_flat(sd[key]) - _flat(w0) for sd in sds]
        cos = np.mean(
            [
                deltas[i]
                @ deltas[j]
                / (np.linalg.norm(deltas[i]) * np.linalg.norm(deltas[j]))
                for i in range(n_models)
                for j in range(i + 1, n_models)
            ]
        )
        t = n_models * cos / (1 + (n_models - 1) * cos) if cos > 0 else 0.0
        expected = t * np.mean([_flat(sd[key]) for sd in sds], axis=0) + (
            1 - t
        ) * _flat(w0)
        assert_allclose(ratios[key], t, rtol=1e-9, atol=1e-12)
        assert_allclose(_flat(sdm[key]), expected, rtol=1e-5, atol=1e-6)
        n_checked += 1
    assert n_checked > 10
    for snap, model in zip(before, finetuned):  # inputs untouched
        for k, v in model.state_dict().items():
            assert torch.equal(v, snap[k])
    # usable end to end
    emb = reference_image_embeddings(merged, preprocess, IMAGES[:2])
    assert emb.shape == (2, DIM) and np.isfinite(emb).all()


def test_model_stock_text_tower_option(models):
    zs, ft, ft2, _ = models
    sd0 = zs.state_dict()
    text = [k for k in sd0 if not k.startswith("visual.")]
    # the reference notebook's six keys are among them
    for key in (
        "positional_embedding",
        "text_projection",
        "logit_scale",
        "token_embedding.weight",
        "ln_final.weight",
        "ln_final.bias",
    ):
        assert key in text  # fmt: skip
    merged, ratios = model_stock(zs, [ft, ft2], return_ratios=True)
    averaged, ratios_avg = model_stock(
        zs, [ft, ft2], text_tower="average", return_ratios=True
    )
    sdm, sda = merged.state_dict(), averaged.state_dict()
    sds = (ft.state_dict(), ft2.state_dict())
    n_text = 0
    for key, w0 in sd0.items():
        if not torch.is_floating_point(w0):
            continue
        if key in text:  # the fine-tuned average, t = 1
            mean = (_flat(sds[0][key]) + _flat(sds[1][key])) / 2
            assert_allclose(_flat(sda[key]), mean, rtol=1e-6, atol=1e-7)
            assert ratios_avg[key] == 1.0
            n_text += ratios[key] < 1.0  # one-element tensors: cos = +-1

        else:  # the image tower: merged by the rule either way
            assert torch.equal(sda[key], sdm[key]) and ratios_avg[key] == ratios[key]
    assert n_text >= 6
    # a frozen text tower (fine-tuned text weights = pre-trained): both agree
    frozen = [copy.deepcopy(ft), copy.deepcopy(ft2)]
    with torch.no_grad():
        for m in frozen:
            for key, w in m.state_dict().items():
                if key in text:
                    w.copy_(sd0[key])
    a = model_stock(zs, frozen).state_dict()
    b = model_stock(zs, frozen, text_tower="average").state_dict()
    for key in text:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    # an image tower alone has no text tower
    tower = model_stock(zs.visual, [ft.visual, ft2.visual], text_tower="average")
    for key, w in tower.state_dict().items():
        torch.testing.assert_close(w, sdm[f"visual.{key}"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="text_tower"):
        model_stock(zs, [ft, ft2], text_tower="skip")


def test_model_stock_limits(models):
    zs, ft, _, _ = models
    same = model_stock(zs, [ft, copy.deepcopy(ft)])  # cos = 1: their average
    for key, w in same.state_dict().items():
        if torch.is_floating_point(w):
            torch.testing.assert_close(w, ft.state_dict()[key], rtol=1e-6, atol=1e-6)
    # an unchanged layer (zero update) keeps the pre-trained weights
    merged, ratios = model_stock(zs, [zs, ft], return_ratios=True)
    assert all(t == 0.0 for t in ratios.values())
    for key, w in merged.state_dict().items():
        if torch.is_floating_point(w):
            torch.testing.assert_close(w, zs.state_dict()[key], rtol=0, atol=1e-7)


def test_model_stock_open_clip_tuples_and_heads(models, heads):
    zs, ft, ft2, preprocess = models
    out = model_stock(
        OpenCLIPModel(zs, None, "a", None),
        [OpenCLIPModel(ft, preprocess, "b", None), OpenCLIPModel(ft2, None, "c", None)],
    )
    assert isinstance(out, OpenCLIPModel) and out.preprocess is preprocess
    zs_head, ft_head = heads
    ft_head2 = LinearHeadClassifier(
        ft_head.coef_ + 1.0, ft_head.intercept_, normalize_input=True
    ).fit(np.zeros((1, DIM)))
    merged, ratios = model_stock(zs_head, [ft_head, ft_head2], return_ratios=True)
    c0 = (
        zs_head.logit_scale
        * zs_head.class_embeddings
        / np.linalg.norm(zs_head.class_embeddings, axis=1, keepdims=True)
    )
    d1, d2 = (ft_head.coef_ - c0).ravel(), (ft_head2.coef_ - c0).ravel()
    cos = d1 @ d2 / (np.linalg.norm(d1) * np.linalg.norm(d2))
    t = 2 * cos / (1 + cos)
    assert_allclose(ratios["coef"], t)
    assert_allclose(
        merged.coef_, t * (ft_head.coef_ + ft_head2.coef_) / 2 + (1 - t) * c0
    )


def test_model_stock_errors(models, heads):
    zs, ft, _, _ = models
    with pytest.raises(ValueError, match="at least two"):
        model_stock(zs, [ft])
    with pytest.raises(TypeError, match="not a mix"):
        model_stock(zs, [ft, heads[1]])
    other = LinearHeadClassifier(np.ones((3, DIM))).fit(np.zeros((1, DIM)))
    with pytest.raises(ValueError, match="differs from the pre-trained head"):
        model_stock(heads[0], [heads[1], other])
