"""skvrf.clip.wise_ft: weight-space interpolation of open_clip models and heads."""

import copy

import numpy as np
import pytest

pytest.importorskip("open_clip")

import torch
from numpy.testing import assert_allclose, assert_array_equal

from skvrf import LinearHeadClassifier, ZeroShotClassifier
from skvrf.clip import OpenCLIPModel, register_model_config, wise_ft
from skvrf.clip.testing import TINY_CONFIG, TINY_NAME, build_tiny_model


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    zs, _, _ = build_tiny_model(tmp_path_factory.mktemp("weights"))
    ft = copy.deepcopy(zs)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(torch.randn_like(p))
    # an integer buffer that differs, to see which one is kept
    zs.register_buffer("counter", torch.tensor([3], dtype=torch.long))
    ft.register_buffer("counter", torch.tensor([7], dtype=torch.long))
    return zs, ft


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_modules_interpolated(two_models, alpha):
    zs, ft = two_models
    before = (_snapshot(zs), _snapshot(ft))
    merged = wise_ft(zs, ft, alpha)
    assert merged is not zs and merged is not ft
    sd0, sd1, sdm = zs.state_dict(), ft.state_dict(), merged.state_dict()
    for key, w in sdm.items():
        if not torch.is_floating_point(w):
            assert torch.equal(w, sd1[key])  # non-float buffers: fine-tuned's
            continue
        expected = {0.0: sd0[key], 1.0: sd1[key]}.get(alpha)
        if expected is None:
            expected = (sd0[key] + sd1[key]) / 2
        torch.testing.assert_close(w, expected, rtol=1e-6, atol=1e-6)
    assert int(merged.counter) == 7
    for snap, model in zip(before, (zs, ft)):  # inputs untouched
        for key, w in model.state_dict().items():
            assert torch.equal(w, snap[key])
    # the merged model is usable and a separate object
    with torch.no_grad():
        out = merged.encode_image(torch.zeros(1, 3, 32, 32))
        next(merged.parameters()).add_(1.0)
    assert out.shape == (1, TINY_CONFIG["embed_dim"])
    assert torch.equal(ft.state_dict()[next(iter(sd1))], before[1][next(iter(sd1))])


def test_open_clip_model_tuple(two_models):
    zs, ft = two_models
    merged = wise_ft(
        OpenCLIPModel(zs, None, "a", "x"), OpenCLIPModel(ft, "pp", "b", "y"), 1
    )
    assert isinstance(merged, OpenCLIPModel) and merged.preprocess == "pp"
    assert merged.source is None


def test_mismatched_architectures(two_models):
    zs, _ = two_models
    other_cfg = copy.deepcopy(TINY_CONFIG)
    other_cfg["embed_dim"] = 8
    import open_clip

    register_model_config(TINY_NAME + "-8", other_cfg)
    other = open_clip.create_model(TINY_NAME + "-8", pretrained=None)
    other.register_buffer("counter", torch.tensor([1]))
    with pytest.raises(ValueError, match="differ in shape"):
        wise_ft(zs, other, 0.5)
    extra = copy.deepcopy(zs)
    extra.register_buffer("extra_thing", torch.zeros(2))
    with pytest.raises(ValueError, match=r"only in the fine-tuned model.*extra_thing"):
        wise_ft(zs, extra, 0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        wise_ft(zs, zs, 1.5)
    with pytest.raises(TypeError, match="two torch modules or two linear heads"):
        wise_ft(zs, LinearHeadClassifier(np.eye(2)), 0.5)


def test_heads_interpolated():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(3, 5))
    zs = ZeroShotClassifier(emb, classes=["a", "b", "c"], logit_scale=50.0)
    coef, bias = rng.normal(size=(3, 5)), rng.normal(size=3)
    ft = LinearHeadClassifier(coef, bias, classes=["a", "b", "c"])
    zs_coef = 50.0 * emb / np.linalg.norm(emb, axis=1, keepdims=True)
    X = rng.normal(size=(10, 5))

    h0 = wise_ft(zs, ft, 0.0)
    assert_allclose(h0.coef_, zs_coef)
    assert_allclose(h0.intercept_, 0.0)
    assert_allclose(h0.decision_function(X), zs.fit(X).decision_function(X))
    h1 = wise_ft(zs, ft, 1)
    assert_allclose(h1.coef_, coef)
    assert_allclose(h1.intercept_, bias)
    h5 = wise_ft(zs, ft, 0.5)
    assert_allclose(h5.coef_, (zs_coef + coef) / 2)
    assert_allclose(h5.intercept_, bias / 2)
    assert_array_equal(h5.classes_, ["a", "b", "c"])
    assert_array_equal(ft.coef, coef)  # input untouched

    with pytest.raises(ValueError, match="classes differ"):
        wise_ft(ZeroShotClassifier(emb), ft, 0.5)
    with pytest.raises(ValueError, match="differ in shape"):
        wise_ft(zs, LinearHeadClassifier(coef[:, :4], classes=["a", "b", "c"]), 0.5)
    with pytest.raises(ValueError, match="normalize_input"):
        wise_ft(
            zs,
            LinearHeadClassifier(coef, classes=["a", "b", "c"], normalize_input=False),
            0.5,
        )


def test_docstring_cites_wortsman():
    assert "Wortsman" in wise_ft.__doc__ and "CVPR 2022" in wise_ft.__doc__
