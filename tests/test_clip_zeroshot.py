"""zeroshot_classifier: open_clip's helper, templates, class names, scale."""

import pytest

pytest.importorskip("open_clip")

import numpy as np
import torch
from numpy.testing import assert_allclose, assert_array_equal

from skvrf import ZeroShotClassifier
from skvrf.clip import (
    OpenCLIPImageEmbedder,
    OpenCLIPTextEmbedder,
    template_sets,
    zeroshot_classifier,
)
from skvrf.clip.testing import (
    TINY_NAME,
    make_images,
)

NAMES = ["cat", "dog", "car"]
TEMPLATES = ["a photo of a {}.", "a drawing of a {}."]


def _direct_class_embeddings(model, names, templates):
    import open_clip

    tok = open_clip.get_tokenizer(TINY_NAME)
    rows = []
    with torch.no_grad():
        for name in names:
            prompts = [
                t.format(name) if isinstance(t, str) else t(name) for t in templates
            ]
            e = model.encode_text(tok(prompts))
            e = e / e.norm(dim=-1, keepdim=True)
            m = e.mean(0)
            rows.append((m / m.norm()).numpy())
    return np.array(rows)


def test_predictions_match_direct_computation(tiny_model):
    model, _, path = tiny_model
    head = zeroshot_classifier(
        TINY_NAME,
        path,
        NAMES,
        classes=["c", "d", "v"],
        templates=TEMPLATES,
        device="cpu",
    )
    assert isinstance(head, ZeroShotClassifier)
    assert head.classes_.tolist() == ["c", "d", "v"] and head.n_features_in_ == 16
    assert head.logit_scale == pytest.approx(50.0, rel=1e-5)
    W = _direct_class_embeddings(model, NAMES, TEMPLATES)
    assert_allclose(head.coef_ / head.logit_scale, W, rtol=1e-5, atol=1e-6)

    X = (
        OpenCLIPImageEmbedder(TINY_NAME, path, device="cpu")
        .fit()
        .transform(make_images(6, seed=2))
    )
    logits = 50.0 * X @ W.T
    assert_allclose(head.decision_function(X), logits, rtol=1e-4, atol=1e-4)
    assert_array_equal(head.predict(X), np.array(["c", "d", "v"])[logits.argmax(1)])


def test_template_forms_and_reused_model(tiny_model):
    model, _, path = tiny_model
    text = OpenCLIPTextEmbedder(TINY_NAME, path, device="cpu")
    by_list = zeroshot_classifier(
        TINY_NAME, None, NAMES, templates=["a {}"], model=text
    )
    assert hasattr(text, "model_")  # the unfitted embedder was fitted
    by_callable = zeroshot_classifier(
        TINY_NAME, None, NAMES, templates=lambda c: f"a {c}", model=model
    )
    assert_allclose(by_list.coef_, by_callable.coef_, rtol=1e-5)
    assert by_list.classes_.tolist() == [0, 1, 2]

    sets = template_sets()
    import open_clip.zero_shot_metadata as meta

    assert sets["openai_imagenet"] == tuple(meta.OPENAI_IMAGENET_TEMPLATES)
    simple = zeroshot_classifier(
        TINY_NAME, None, NAMES, templates="simple_imagenet", model=model, batch_size=2
    )
    direct = _direct_class_embeddings(model, NAMES, sets["simple_imagenet"])
    assert_allclose(simple.coef_ / simple.logit_scale, direct, rtol=1e-4, atol=1e-5)


def test_imagenet_classnames(tiny_model):
    import open_clip.zero_shot_metadata as meta

    model, _, _ = tiny_model
    head = zeroshot_classifier(
        TINY_NAME, None, "imagenet", templates=["{}"], model=model, batch_size=500
    )
    assert head.coef_.shape == (len(meta.IMAGENET_CLASSNAMES), 16) == (1000, 16)


def test_errors(tiny_model):
    model, _, _ = tiny_model
    with pytest.raises(ValueError, match="Unknown template set 'nope'"):
        zeroshot_classifier(TINY_NAME, None, NAMES, templates="nope", model=model)
    with pytest.raises(ValueError, match="placeholder"):
        zeroshot_classifier(TINY_NAME, None, NAMES, templates=["a cat"], model=model)
    with pytest.raises(ValueError, match="imagenet"):
        zeroshot_classifier(TINY_NAME, None, "cifar10", model=model)
    with pytest.raises(ValueError, match="one label per class"):
        zeroshot_classifier(
            TINY_NAME, None, NAMES, classes=[0, 1], templates=["{}"], model=model
        )
