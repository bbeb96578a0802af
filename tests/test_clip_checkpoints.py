"""Safe weights loading: formats, prefixes, pickles, heads, create_model."""

import pytest

pytest.importorskip("open_clip")

import numpy as np
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skvrf import LinearHeadClassifier
from skvrf.clip import (
    create_model,
    load_checkpoint,
    load_linear_head,
    sha256_file,
)
from skvrf.clip.testing import (
    TINY_NAME,
    make_images,
    reference_image_embeddings,
)


def _state():
    return {"a.weight": torch.randn(3, 2), "a.bias": torch.randn(3)}


def _assert_same(sd, ref):
    assert sorted(sd) == sorted(ref)
    for k in ref:
        assert_array_equal(sd[k].numpy(), ref[k].numpy())


def test_plain_state_dict(tmp_path):
    ref = _state()
    torch.save(ref, tmp_path / "w.pt")
    _assert_same(load_checkpoint(tmp_path / "w.pt"), ref)


def test_training_checkpoint_with_module_prefix(tmp_path):
    ref = _state()
    ckpt = {
        "epoch": 7,
        "state_dict": {f"module.{k}": v for k, v in ref.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
    }
    torch.save(ckpt, tmp_path / "ckpt.pt")
    _assert_same(load_checkpoint(tmp_path / "ckpt.pt"), ref)


def test_safetensors(tmp_path):
    from safetensors.torch import save_file

    ref = _state()
    save_file(ref, tmp_path / "w.safetensors")
    _assert_same(load_checkpoint(tmp_path / "w.safetensors"), ref)
    # detected by content as well as by suffix
    (tmp_path / "w.safetensors").rename(tmp_path / "w.bin")
    _assert_same(load_checkpoint(tmp_path / "w.bin"), ref)


def test_pickled_module_refused_without_trust(tmp_path):
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pt")
    with pytest.raises(ValueError, match=r"arbitrary code.*trust_pickle=True"):
        load_checkpoint(tmp_path / "module.pt")
    with pytest.raises(ValueError, match="trust_pickle"):
        load_linear_head(tmp_path / "module.pt", prefix="")


def test_pickled_module_loads_with_trust_and_warns(tmp_path):
    lin = torch.nn.Linear(2, 3)
    torch.save(lin, tmp_path / "module.pt")
    with pytest.warns(UserWarning, match="arbitrary code"):
        sd = load_checkpoint(tmp_path / "module.pt", trust_pickle=True)
    _assert_same(sd, lin.state_dict())


def test_missing_file_and_no_tensors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"epoch": 1}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no tensors"):
        load_checkpoint(tmp_path / "empty.pt")


def test_load_linear_head_auto_and_prefix(tmp_path):
    w, b = torch.randn(4, 16), torch.randn(4)
    sd = {
        "module.image_encoder.model.visual.proj": torch.randn(32, 16),
        "module.classification_head.weight": w,
        "module.classification_head.bias": b,
    }
    torch.save(sd, tmp_path / "ft.pt")
    head = load_linear_head(tmp_path / "ft.pt", classes=list("abcd"))
    assert isinstance(head, LinearHeadClassifier)
    assert_allclose(head.coef_, w.numpy(), rtol=1e-6)
    assert_allclose(head.intercept_, b.numpy(), rtol=1e-6)
    assert head.classes_.tolist() == list("abcd") and head.n_features_in_ == 16
    X = np.random.default_rng(0).normal(size=(5, 16))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert_allclose(head.decision_function(X), Xn @ w.numpy().T + b.numpy(), rtol=1e-5)

    sd["head.weight"] = torch.randn(4, 16)  # now ambiguous
    torch.save(sd, tmp_path / "two.pt")
    with pytest.raises(KeyError, match="several candidate heads"):
        load_linear_head(tmp_path / "two.pt")
    head = load_linear_head(tmp_path / "two.pt", prefix="head.", normalize_input=False)
    assert_allclose(head.coef_, sd["head.weight"].numpy(), rtol=1e-6)
    assert_array_equal(head.intercept_, 0.0)
    with pytest.raises(KeyError, match=r"no 'fc\.weight'"):
        load_linear_head(tmp_path / "two.pt", prefix="fc")
    torch.save({"visual.proj": torch.randn(3, 3)}, tmp_path / "none.pt")
    with pytest.raises(KeyError, match="no classification head"):
        load_linear_head(tmp_path / "none.pt")


def test_create_model_from_file_matches_open_clip(tiny_model):
    ref, preprocess, path = tiny_model
    loaded = create_model(TINY_NAME, path)
    assert loaded.sha256 == sha256_file(path)
    assert loaded.source == str(path.resolve())
    for k, v in ref.state_dict().items():
        assert_array_equal(loaded.model.state_dict()[k].numpy(), v.numpy())
    images = make_images(2)
    from PIL import Image

    pil = [Image.fromarray(a) for a in images]
    assert_allclose(
        reference_image_embeddings(loaded.model, loaded.preprocess, pil),
        reference_image_embeddings(ref, preprocess, pil),
        rtol=1e-5,
        atol=1e-6,
    )


def test_create_model_from_finetuned_image_encoder_with_head(tiny_model, tmp_path):
    """A WiSE-FT style checkpoint: prefixed image tower + head; head ignored."""
    ref, _, _ = tiny_model
    sd = {
        f"module.image_encoder.model.visual.{k}": v
        for k, v in ref.visual.state_dict().items()
    }
    sd["module.classification_head.weight"] = torch.randn(5, 16)
    sd["module.classification_head.bias"] = torch.randn(5)
    torch.save({"state_dict": sd}, tmp_path / "ft.pt")
    with pytest.warns(UserWarning, match="image-tower weights only"):
        loaded = create_model(TINY_NAME, tmp_path / "ft.pt")
    for k, v in ref.visual.state_dict().items():
        assert_array_equal(loaded.model.visual.state_dict()[k].numpy(), v.numpy())
    assert load_linear_head(tmp_path / "ft.pt").coef_.shape == (5, 16)


def test_create_model_errors(tiny_model, tmp_path):
    _, _, path = tiny_model
    with pytest.raises(ValueError, match="changed since they were recorded"):
        create_model(TINY_NAME, path, expected_sha256="0" * 64)
    torch.save({"foo.weight": torch.randn(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not match the architecture"):
        create_model(TINY_NAME, tmp_path / "other.pt")


def test_a_checkpoint_head_is_read_by_clip_not_io(tmp_path):
    # skvrf.io reads .npz heads only (it does not import skvrf.clip); the
    # command line's --head reads a checkpoint through skvrf.clip.
    from skvrf.commands._common import load_head
    from skvrf.io import FeatureFileError, load_linear_head_file

    w, b = torch.randn(3, 8), torch.randn(3)
    torch.save({"classification_head.weight": w, "classification_head.bias": b},
               tmp_path / "ft.pt")  # fmt: skip
    with pytest.raises(FeatureFileError, match=r"skvrf\.clip\.load_linear_head"):
        load_linear_head_file(tmp_path / "ft.pt")
    head = load_head(tmp_path / "ft.pt", default_classes=list("abc"))
    ref = load_linear_head(tmp_path / "ft.pt", classes=list("abc"))
    assert_array_equal(head.coef_, ref.coef_)
    assert head.classes_.tolist() == list("abc")
    np.savez(tmp_path / "h.npz", coef=w.numpy(), intercept=b.numpy())
    assert_allclose(load_head(tmp_path / "h.npz").coef_, w.numpy())
