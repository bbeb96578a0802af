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
from skvrf.utils._testing import noisy_centres


class _Sneaky(BaseEstimator):
    """A type no skvrf model is made of."""

    def __init__(self, payload=1):
        self.payload = payload


def _data(seed=0, n=240, labels=None):
    X, y, _, zs_emb = noisy_centres(n, 8, 3, noise=0.9, text_noise=0.6, seed=seed)
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


# ------------------------------------------------------- version stamps
def _stamp_of(path):
    import json

    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("skvrf.json"))


def _restamp(path, version):
    """Rewrite the file's skvrf.json (None: drop it)."""
    import json

    out = io.BytesIO()
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            if item.filename != "skvrf.json":
                zout.writestr(item, zin.read(item.filename))
        if version is not None:
            zout.writestr("skvrf.json", json.dumps({"skvrf_version": version}))
    path.write_bytes(out.getvalue())


def test_saved_file_is_stamped_with_the_version(tmp_path):
    import warnings

    import skvrf

    X, y, _ = _data()
    path = tmp_path / "m.skops"
    save_model(_estimators()["ose"].fit(X, y), path)
    assert _stamp_of(path)["skvrf_version"] == skvrf.__version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same version: no warning
        load_model(path)


@pytest.mark.parametrize("version", ["0.0.1", None])
def test_file_from_another_version_loads_with_a_warning(tmp_path, version):
    import skvrf
    from skvrf.persistence import ModelVersionWarning

    X, y, _ = _data()
    est = _estimators()["vrf"].fit(X, y)
    path = tmp_path / "m.skops"
    save_model(est, path)
    _restamp(path, version)
    with pytest.warns(ModelVersionWarning) as record:
        loaded = load_model(path)
    message = str(record[0].message)
    assert f"skvrf {skvrf.__version__}" in message
    assert ("skvrf 0.0.1" if version else "no version stamp") in message
    assert_array_equal(loaded.predict(X), est.predict(X))


def test_error_in_a_file_from_another_version_names_both(tmp_path):
    import skvrf
    from skvrf.persistence import InvalidModelError, ModelVersionWarning

    X, y, _ = _data()
    est = _estimators()["vrf"].fit(X, y)
    est.calibration_temperatures_["finetuned"] = 0.0
    path = tmp_path / "m.skops"
    save_model(est, path)
    _restamp(path, "0.0.1")
    with pytest.warns(ModelVersionWarning):
        with pytest.raises(InvalidModelError) as exc:
            load_model(path)
    assert "saved by skvrf 0.0.1" in str(exc.value)
    assert f"this is skvrf {skvrf.__version__}" in str(exc.value)


# ------------------------------------------------------------- tampering
def _set(attr, value):
    def tamper(est):
        setattr(est, attr, value(est) if callable(value) else value)

    return tamper


def _temperature(name, value):
    def tamper(est):
        est.calibration_temperatures_[name] = value

    return tamper


def _component(name, attr, value):
    def tamper(est):
        comp = getattr(est, f"{name}_estimator_")
        setattr(comp, attr, value(comp))

    return tamper


def _nan_coef(comp):
    coef = comp.coef_.copy()
    coef[0, 0] = np.nan
    return coef


TAMPERINGS = {
    "negative temperature": (
        _temperature("zeroshot", -0.5),
        r"calibration_temperatures_\['zeroshot'\]=-0.5 must be a finite positive",
    ),
    "nan temperature": (_temperature("finetuned", np.nan), "finite positive"),
    "infinite temperature": (_temperature("finetuned", np.inf), "finite positive"),
    "temperature missing": (
        lambda est: est.calibration_temperatures_.pop("zeroshot"),
        r"calibration_temperatures_\['zeroshot'\]=None",
    ),
    "bank 1-D": (_set("zsf_embeddings_", lambda e: e.zsf_embeddings_[0]), "2-D"),
    "bank columns": (
        _set("zsf_embeddings_", lambda e: e.zsf_embeddings_[:, :-1]),
        "zsf_embeddings_ has 7 columns but the model takes 8 features",
    ),
    "bank not normalised": (
        _set("zsf_embeddings_", lambda e: 2 * e.zsf_embeddings_),
        "not L2-normalised",
    ),
    "bank nan": (
        _set("zsf_embeddings_", lambda e: np.full_like(e.zsf_embeddings_, np.nan)),
        "zsf_embeddings_ holds non-finite values",
    ),
    "indices short": (
        _set("zsf_indices_", lambda e: e.zsf_indices_[:-1]),
        "zsf_indices_",
    ),
    "k beyond the bank": (
        _set("k_", lambda e: e.zsf_embeddings_.shape[0] + 5),
        "k_=.* must be between 1 and",
    ),
    "k zero": (_set("k_", 0), "k_=0 must be between 1 and"),
    "k not an int": (_set("k_", 1.5), "k_=1.5 must be an integer"),
    "classes unsorted": (_set("classes_", lambda e: e.classes_[::-1]), "not sorted"),
    "classes duplicated": (
        _set("classes_", lambda e: np.r_[e.classes_[:2], e.classes_[:1]]),
        "twice",
    ),
    "classes 2-D": (_set("classes_", lambda e: e.classes_[None]), "1-D"),
    "component classes unknown": (
        _component("zeroshot", "classes_", lambda c: c.classes_ + 7),
        "zeroshot_estimator_ has classes that classes_ lacks",
    ),
    "component classes of another kind": (
        _component("zeroshot", "classes_", lambda c: c.classes_.astype(str)),
        "different kinds",
    ),
    "zero-shot weights short": (
        _component("zeroshot", "coef_", lambda c: c.coef_[:-1]),
        "coef_ has 2 rows for 3 classes_",
    ),
    "fine-tuned weights nan": (
        _component("finetuned", "coef_", _nan_coef),
        r"finetuned_estimator_: coef_ holds non-finite",
    ),
    "fine-tuned features": (
        _component("finetuned", "n_features_in_", lambda c: 5),
        "coef_ has 8 columns but n_features_in_=5",
    ),
    "VRF temperature": (_set("temperature", -1.0), "temperature=-1.0"),
    "VRF threshold": (_set("threshold", np.nan), "threshold=nan"),
}


@pytest.fixture(scope="module")
def fitted_vrf():
    X, y, _ = _data()
    est = _estimators()["vrf"].fit(X, y)
    assert est.k_ >= 1 and est.zsf_embeddings_.shape[0] > 1  # a real bank
    return est


@pytest.mark.parametrize("case", list(TAMPERINGS))
def test_tampered_model_is_refused_with_a_clear_error(tmp_path, case, fitted_vrf):
    """Issue 11: a negative temperature loaded and predicted (57.6 %)."""
    import copy

    from skvrf.persistence import InvalidModelError

    est = copy.deepcopy(fitted_vrf)
    tamper, message = TAMPERINGS[case]
    tamper(est)
    path = tmp_path / "m.skops"
    save_model(est, path)
    with pytest.raises(InvalidModelError, match=message) as exc:
        load_model(path)
    assert "m.skops" in str(exc.value) and "damaged or edited" in str(exc.value)


def test_tampered_ose_alpha_and_head_scale_are_refused(tmp_path):
    from skvrf.persistence import InvalidModelError

    X, y, _ = _data()
    ose = _estimators()["ose"].fit(X, y)
    ose.alpha = 1.5
    save_model(ose, tmp_path / "a.skops")
    with pytest.raises(InvalidModelError, match=r"alpha=1.5 must be in \[0, 1\]"):
        load_model(tmp_path / "a.skops")
    ose = _estimators()["ose"].fit(X, y)
    ose.zeroshot_estimator_.logit_scale = -100.0
    save_model(ose, tmp_path / "b.skops")
    with pytest.raises(InvalidModelError, match=r"logit_scale=-100\.0"):
        load_model(tmp_path / "b.skops")


def test_untouched_models_pass_validation(tmp_path):
    from skvrf.persistence import validate_model

    X, y, _ = _data(labels=["cat", "dog", "eel"])
    estimators = _estimators(classes=["dog", "cat", "eel"])
    for est in (estimators["vrf"], estimators["ose"]):
        est.fit(X, y)
        assert validate_model(est) is est
        assert validate_model(est.with_class_map(["cat", "eel"])) is not None


@pytest.mark.parametrize("id_score", ["msp", "relative_mahalanobis", "knn"])
def test_selective_ensemble_round_trip(tmp_path, id_score):
    from sklearn.linear_model import LogisticRegression

    from skvrf import SelectiveEnsembleClassifier, ZeroShotClassifier

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8))
    y = rng.integers(0, 3, 200)
    X = centers[y] + 0.9 * rng.normal(size=(200, 8))
    est = SelectiveEnsembleClassifier(
        ZeroShotClassifier(centers + rng.normal(size=centers.shape)),
        LogisticRegression(),
        id_score=id_score,
    ).fit(X, y)
    path = tmp_path / "selective.skops"
    save_model(est, path)
    np.testing.assert_array_equal(
        load_model(path).predict_proba(X), est.predict_proba(X)
    )
