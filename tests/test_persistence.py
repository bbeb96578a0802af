"""skvrf.persistence: skops round trips, untrusted types and damaged files refused."""

import io
import zipfile

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skops")

from skvrf import (
    LinearHeadClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf.persistence import (
    TRUSTED_TYPES,
    UntrustedModelError,
    load_model,
    save_model,
)


class _Sneaky(BaseEstimator):
    """A type no skvrf model is made of."""

    def __init__(self, payload=1):
        self.payload = payload


def _data(seed=0, n=240, labels=None):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8))
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.normal(scale=0.9, size=(n, 8))
    zs_emb = centers + rng.normal(scale=0.6, size=(3, 8))
    if labels is not None:
        y = np.asarray(labels)[y]
    return X, y, zs_emb


def _estimators(classes=None):
    _, _, emb = _data()
    zs = ZeroShotClassifier(emb, classes=classes)
    return {
        "vrf": VRFEnsembleClassifier(zs, LogisticRegression(), k=3, random_state=0),
        "ose": OutputSpaceEnsembleClassifier(zs, LogisticRegression(), alpha=0.4),
        "vrf_pipeline_frozen": VRFEnsembleClassifier(
            zs,
            FrozenEstimator(
                make_pipeline(StandardScaler(), LinearHeadClassifier(emb)).fit(
                    _data()[0]
                )
            ),
            k=2,
        ),
    }


@pytest.mark.parametrize("name", ["vrf", "ose", "vrf_pipeline_frozen"])
def test_round_trip_same_predictions(name, tmp_path):
    X, y, _ = _data()
    est = _estimators()[name].fit(X, y)
    path = tmp_path / "model.skops"
    save_model(est, path)
    loaded = load_model(path)
    assert type(loaded) is type(est)
    assert_array_equal(loaded.predict(X), est.predict(X))
    assert_allclose(loaded.predict_proba(X), est.predict_proba(X))
    if hasattr(est, "zsf_embeddings_"):
        assert_array_equal(loaded.zsf_embeddings_, est.zsf_embeddings_)
        assert_allclose(loaded.ensemble_weights(X), est.ensemble_weights(X))


def test_round_trip_string_labels(tmp_path):
    X, y, _ = _data(labels=["cat", "dog", "eel"])
    est = _estimators(classes=["cat", "dog", "eel"])["vrf"].fit(X, y)
    save_model(est, tmp_path / "m.skops")
    assert_array_equal(load_model(tmp_path / "m.skops").predict(X), est.predict(X))


def test_trusted_types_cover_fitted_models_and_are_explicit(tmp_path):
    import skops.io as sio

    X, y, _ = _data()
    for est in _estimators().values():
        found = sio.get_untrusted_types(data=sio.dumps(est.fit(X, y)))
        assert set(found) <= set(TRUSTED_TYPES), found
    assert "skvrf._vrf.VRFEnsembleClassifier" in TRUSTED_TYPES
    assert all(isinstance(t, str) and "." in t for t in TRUSTED_TYPES)
    assert not any(
        t.startswith(("builtins.eval", "os.", "subprocess")) for t in TRUSTED_TYPES
    )


def test_custom_class_refused_with_its_name(tmp_path):
    X, y, _ = _data()
    est = _estimators()["ose"].fit(X, y)
    est.sneaky_ = _Sneaky()
    path = tmp_path / "sneaky.skops"
    save_model(est, path)
    with pytest.raises(UntrustedModelError, match=r"test_persistence\._Sneaky"):
        load_model(path)
    # an explicit, reviewed extra type is accepted
    name = f"{_Sneaky.__module__}._Sneaky"
    assert load_model(path, trusted=[name]).sneaky_.payload == 1
    with pytest.raises(TypeError):
        load_model(path, trusted=True)


def test_schema_edited_to_an_untrusted_type_is_refused(tmp_path):
    X, y, _ = _data()
    path = tmp_path / "m.skops"
    save_model(_estimators()["vrf"].fit(X, y), path)
    out = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename == "schema.json":
                content = content.replace(b'"skvrf._vrf"', b'"os"').replace(
                    b'"VRFEnsembleClassifier"', b'"system"'
                )
                assert b'"system"' in content
            zout.writestr(item, content)
    tampered = tmp_path / "tampered.skops"
    tampered.write_bytes(out.getvalue())
    with pytest.raises(UntrustedModelError, match=r"not trusted.*'os\.system'"):
        load_model(tampered)


@pytest.mark.parametrize("keep", [0.5, 0.9, 10])
def test_truncated_or_garbage_file_refused(tmp_path, keep):
    X, y, _ = _data()
    path = tmp_path / "m.skops"
    save_model(_estimators()["vrf"].fit(X, y), path)
    data = path.read_bytes()
    bad = tmp_path / "bad.skops"
    bad.write_bytes(data[: int(len(data) * keep)] if keep < 1 else b"x" * keep)
    with pytest.raises(UntrustedModelError, match="truncated, corrupt"):
        load_model(bad)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.skops"):
        load_model(tmp_path / "nope.skops")


def test_docstrings_warn_about_training_data():
    import skvrf.persistence as p

    for doc in (p.__doc__, p.save_model.__doc__, p.load_model.__doc__):
        assert "training" in doc
