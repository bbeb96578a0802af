"""Bad input, everywhere a user can pass it: a clear error that names the problem.

Every case asserts on the message (``match=``), so a test fails as soon as a
message stops naming the problem. The two documented warnings (empty Zero-Shot
Failure set; k larger than that set) are tested as warnings.

Cases: 67 bad-input cases (each collected test item counts once; the one
control, ``test_valid_input_raises_no_warning``, is not counted), listed with
their tests in ``docs/reliability.rst``:

- estimator data (25): NaN or inf in X at fit (VRF, OSE, zero-shot and logits
  heads) and at predict (VRF, OSE, head), NaN in ``X_val``; wrong number of
  features (VRF predict, head fit and predict); 1-D X at fit and predict; empty
  X at fit and predict; X and y of different lengths; ``X_val`` without
  ``y_val``; NaN in y; non-numeric X with ``embedding="auto"``; a single class
  with a fitted component (error) and with fixed heads (warning); labels no
  component knows (ensemble, head).
- head weights (6): zero class embedding, NaN and inf class embeddings, a bad
  class embedding inside an ensemble, non-finite coef, intercept of the wrong
  shape.
- parameters (12, ``InvalidParameterError``): k (0, -1, unknown string),
  threshold (NaN, inf), temperature (0, negative, NaN), alpha (below 0, above
  1), weighting, working_memory.
- state (5): predict before fit (VRF, OSE, zero-shot head, logits head);
  ``zsf_neighbors`` with n_neighbors=0.
- the bank (3): features of another width than the fitted estimator; an
  embedding of another width than the bank; neighbour search with mismatched
  dimensions.
- documented warnings (2): empty ZSF set (pure zero-shot); k clipped.
- CLI, images and feature files (9; 7 skip without open_clip): ``skvrf`` with
  a bad subcommand; ``skvrf embed --images /nonexistent``; corrupt, truncated
  and missing image files and a non-uint8 image array (each error names the row
  and file); an existing ``skvrf embed`` output that is a truncated ``.npz``,
  an empty file, or an ``.npz`` missing its manifest.
- feature files read by ``skvrf.io.load_features`` (5): truncated ``.npz``,
  missing key, missing file, non-finite features, labels outside ``classes``.
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import InvalidParameterError

from skvrf import (
    LinearHeadClassifier,
    LogitsClassifier,
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf.neighbors import kth_neighbor_distances

RNG = np.random.default_rng(0)
CENTERS = RNG.normal(size=(3, 8))
Y = RNG.integers(0, 3, 90)
X = CENTERS[Y] + RNG.normal(scale=0.8, size=(90, 8))
ZS_EMB = CENTERS + RNG.normal(scale=0.5, size=(3, 8))


def _with(value, row=3, col=2):
    Z = X.copy()
    Z[row, col] = value
    return Z


def _vrf(**kw):
    return VRFEnsembleClassifier(
        ZeroShotClassifier(ZS_EMB),
        LogisticRegression(),
        calibration_cv=3,
        random_state=0,
        **kw,
    )


def _ose(**kw):
    return OutputSpaceEnsembleClassifier(
        ZeroShotClassifier(ZS_EMB), LogisticRegression(), calibration_cv=3, **kw
    )


@pytest.fixture(scope="module")
def fitted_vrf():
    return _vrf().fit(X, Y)


@pytest.fixture(scope="module")
def fitted_ose():
    return _ose().fit(X, Y)


@pytest.fixture(scope="module")
def fitted_zs():
    return ZeroShotClassifier(ZS_EMB).fit(X)


# ------------------------------------------------------------ NaN and inf
@pytest.mark.parametrize(
    "make, bad, match",
    [
        (_vrf, np.nan, "Input X contains NaN"),
        (_vrf, np.inf, "Input X contains infinity"),
        (_ose, np.nan, "Input X contains NaN"),
        (lambda: ZeroShotClassifier(ZS_EMB), -np.inf, "Input X contains infinity"),
        (lambda: LogitsClassifier(), np.nan, "Input X contains NaN"),
    ],
    ids=["vrf-nan", "vrf-inf", "ose-nan", "zeroshot-inf", "logits-nan"],
)
def test_non_finite_X_at_fit(make, bad, match):
    with pytest.raises(ValueError, match=match):
        make().fit(_with(bad), Y)


@pytest.mark.parametrize(
    "name, bad, match",
    [
        ("vrf", np.nan, "Input X contains NaN"),
        ("vrf", np.inf, "Input X contains infinity"),
        ("ose", np.nan, "Input X contains NaN"),
        ("zs", np.nan, "Input X contains NaN"),
    ],
    ids=["vrf-nan", "vrf-inf", "ose-nan", "zeroshot-nan"],
)
def test_non_finite_X_at_predict(name, bad, match, fitted_vrf, fitted_ose, fitted_zs):
    est = {"vrf": fitted_vrf, "ose": fitted_ose, "zs": fitted_zs}[name]
    with pytest.raises(ValueError, match=match):
        est.predict_proba(_with(bad, row=0))


def test_non_finite_X_val():
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _vrf().fit(X, Y, X_val=_with(np.nan)[:50], y_val=Y[:50])


def test_X_val_as_long_as_X_is_refused_unless_held_out():
    # GridSearchCV would slice such a fit parameter into the folds.
    with pytest.raises(ValueError, match=r"X_val has as many rows as X.*HeldOut"):
        _vrf().fit(X, Y, X_val=X, y_val=Y)
    from skvrf import HeldOut

    _vrf().fit(X, Y, X_val=HeldOut(X, Y))
    with pytest.raises(ValueError, match="not as well"):
        _vrf().fit(X, Y, X_val=HeldOut(X, Y), y_val=Y)


# -------------------------------------------------------- shapes and sizes
def test_wrong_number_of_features_at_predict(fitted_vrf):
    with pytest.raises(ValueError, match=r"X has 5 features, but VRFEnsemble.*8"):
        fitted_vrf.predict(X[:, :5])


def test_wrong_number_of_features_head_fit():
    with pytest.raises(ValueError, match=r"X has 5 features.*weights for 8 features"):
        ZeroShotClassifier(ZS_EMB).fit(X[:, :5])


def test_wrong_number_of_features_head_predict(fitted_zs):
    with pytest.raises(ValueError, match=r"X has 5 features.*expecting 8"):
        fitted_zs.predict(X[:, :5])


def test_1d_X_at_fit():
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        _vrf().fit(X[:, 0], Y)


def test_1d_X_at_predict(fitted_vrf):
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        fitted_vrf.predict(X[0])


def test_empty_X_at_fit():
    with pytest.raises(ValueError, match="0 sample"):
        _vrf().fit(X[:0], Y[:0])


def test_empty_X_at_predict(fitted_vrf):
    with pytest.raises(ValueError, match="X has 0 samples"):
        fitted_vrf.predict_proba(X[:0])


def test_X_y_different_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        _vrf().fit(X, Y[:-1])


def test_X_val_without_y_val():
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        _vrf().fit(X, Y, X_val=X)


def test_nan_in_y():
    with pytest.raises(ValueError, match="Input y contains NaN"):
        _vrf().fit(X, np.where(Y == 0, np.nan, Y))


def test_non_numeric_X_with_auto_embedding():
    strings = np.array([["a"] * 8] * len(Y))
    with pytest.raises(ValueError, match="could not convert string to float"):
        _vrf().fit(strings, Y)


# ------------------------------------------------------------------ labels
def test_single_class_with_fitted_component():
    with pytest.raises(ValueError, match="at least 2 classes"):
        _vrf().fit(X, np.zeros_like(Y))


def test_single_class_with_fixed_heads_warns():
    # Fixed heads know their classes, so one class in y is legal; calibration
    # cannot fit a temperature from it and says so.
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(ZS_EMB), LinearHeadClassifier(CENTERS)
    )
    with pytest.warns(UserWarning, match="fewer than two of the component's classes"):
        clf.fit(X, np.zeros_like(Y))


def test_label_no_component_knows():
    clf = VRFEnsembleClassifier(
        ZeroShotClassifier(ZS_EMB), LinearHeadClassifier(CENTERS)
    )
    with pytest.raises(ValueError, match="labels that no component knows: 7"):
        clf.fit(X, np.where(Y == 2, 7, Y))


def test_label_not_in_head_classes():
    with pytest.raises(ValueError, match="labels not in `classes`: 5, 6, 7"):
        ZeroShotClassifier(ZS_EMB).fit(X, Y + 5)


# ---------------------------------------------------------- head weights
def test_zero_class_embedding():
    emb = np.vstack([ZS_EMB[:2], np.zeros(8)])
    with pytest.raises(ValueError, match=r"class embeddings of rows \[2\] are zero"):
        ZeroShotClassifier(emb).fit(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_class_embedding(bad):
    emb = ZS_EMB.copy()
    emb[1, 0] = bad
    with pytest.raises(ValueError, match=r"non-finite values in rows \[1\]"):
        ZeroShotClassifier(emb).fit(X)


def test_non_finite_class_embedding_inside_ensemble():
    emb = ZS_EMB.copy()
    emb[2, 3] = np.nan
    clf = VRFEnsembleClassifier(ZeroShotClassifier(emb), LogisticRegression())
    with pytest.raises(ValueError, match=r"class_embeddings.*non-finite.*\[2\]"):
        clf.fit(X, Y)


def test_non_finite_coef():
    coef = CENTERS.copy()
    coef[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"`coef` has non-finite values in rows \[0\]"):
        LinearHeadClassifier(coef).fit(X)


def test_intercept_wrong_shape():
    with pytest.raises(ValueError, match=r"`intercept` must have shape \(3,\)"):
        LinearHeadClassifier(CENTERS, [0.0, 1.0]).fit(X)


# -------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "make, param",
    [
        (lambda: _vrf(k=0), "k"),
        (lambda: _vrf(k=-1), "k"),
        (lambda: _vrf(k="most"), "k"),
        (lambda: _vrf(threshold=np.nan), "threshold"),
        (lambda: _vrf(threshold=np.inf), "threshold"),
        (lambda: _vrf(temperature=0.0), "temperature"),
        (lambda: _vrf(temperature=-0.5), "temperature"),
        (lambda: _vrf(temperature=np.nan), "temperature"),
        (lambda: _ose(alpha=-0.1), "alpha"),
        (lambda: _ose(alpha=1.5), "alpha"),
        (lambda: _vrf(weighting="cubic"), "weighting"),
        (lambda: _vrf(working_memory=0), "working_memory"),
    ],
    ids=[
        "k=0",
        "k=-1",
        "k=str",
        "threshold=nan",
        "threshold=inf",
        "temperature=0",
        "temperature<0",
        "temperature=nan",
        "alpha<0",
        "alpha>1",
        "weighting",
        "working_memory=0",
    ],
)
def test_parameter_out_of_range(make, param):
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter"):
        make().fit(X, Y)


# ------------------------------------------------------------------ state
@pytest.mark.parametrize("make", [_vrf, _ose], ids=["vrf", "ose"])
def test_predict_before_fit(make):
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        make().predict_proba(X)


def test_fixed_heads_need_no_fit_but_say_what_is_missing():
    # requires_fit=False: the weights are given, predicting needs no fit
    head = ZeroShotClassifier(ZS_EMB)
    np.testing.assert_allclose(
        head.predict_proba(X), clone(head).fit(X).predict_proba(X)
    )
    # a LogitsClassifier without n_classes/classes reads its width off the logits
    logits = LogitsClassifier()
    np.testing.assert_array_equal(logits.predict(X), clone(logits).fit(X).predict(X))
    with pytest.raises(ValueError, match="expects 3 logit columns"):
        LogitsClassifier(3).predict(X)


def test_zsf_neighbors_bad_count(fitted_vrf):
    with pytest.raises(ValueError, match="n_neighbors must be a positive int"):
        fitted_vrf.zsf_neighbors(X[:3], n_neighbors=0)


# -------------------------------------------------------------- the bank
def test_features_of_another_width_than_the_bank(fitted_vrf):
    # e.g. ViT-L/14 features (768) given to a VRF fitted on ViT-B/16 (512)
    other = RNG.normal(size=(4, 12))
    with pytest.raises(ValueError, match=r"X has 12 features, but .* expecting 8"):
        fitted_vrf.predict_proba(other)


def test_embedding_of_another_width_than_the_bank():
    clf = _vrf().fit(X, Y)
    clf.embedding_ = FunctionTransformer(lambda Z: Z[:, :4]).fit(X)  # swapped
    with pytest.raises(ValueError, match=r"4 dimensions, but the ZSF bank.* 8"):
        clf.predict_proba(X[:3])


def test_neighbour_search_dimension_mismatch():
    with pytest.raises(ValueError, match="queries have 5 features but bank has 8"):
        kth_neighbor_distances(np.ones((2, 5)), np.ones((3, 8)), 1)


# ---------------------------------------------------- documented warnings
def test_empty_zsf_set_warns_and_is_zero_shot():
    heads = LinearHeadClassifier(CENTERS)
    clf = VRFEnsembleClassifier(heads, heads, calibrate=False)
    with pytest.warns(UserWarning, match="Zero-Shot Failure set is empty"):
        clf.fit(X, Y)
    assert clf.k_ == 0
    np.testing.assert_allclose(clf.predict_proba(X), heads.fit(X).predict_proba(X))


def test_k_larger_than_zsf_set_warns_and_clips():
    with pytest.warns(UserWarning, match="k=10000 is larger than the Zero-Shot"):
        clf = _vrf(k=10_000).fit(X, Y)
    assert clf.k_ == clf.zsf_indices_.size


def test_valid_input_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _vrf().fit(X, Y).predict_proba(X)


# ------------------------------------------------------------ command line
def test_cli_bad_subcommand(capsys):
    from skvrf.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_cli_embed_missing_folder(capsys, tmp_path):
    from skvrf.cli import main

    argv = ["embed", "--model", "ViT-B-32", "--pretrained", "openai"]
    argv += ["--images", "/nonexistent", "--out", str(tmp_path / "x.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "image folder not found: /nonexistent" in err
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------- images (open_clip)
@pytest.fixture(scope="module")
def tiny(tiny_model, tiny_config_file):
    """(weights file, config file) of the session's tiny open_clip model."""
    return tiny_model[2], tiny_config_file


@pytest.fixture(scope="module")
def embedder(tiny):
    from skvrf.clip import OpenCLIPImageEmbedder
    from skvrf.clip.testing import TINY_NAME

    return OpenCLIPImageEmbedder(TINY_NAME, str(tiny[0]), device="cpu").fit()


@pytest.fixture(scope="module")
def good_png(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "good.png"
    Image.fromarray(RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


def test_corrupt_image_names_file_and_row(embedder, good_png, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=r"row 1 \('.*corrupt\.png'\)"):
        embedder.transform([str(good_png), str(bad)])


def test_truncated_image_names_file_and_row(embedder, good_png, tmp_path):
    data = good_png.read_bytes()
    bad = tmp_path / "half.png"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"row 2 \('.*half\.png'\).*truncated"):
        embedder.transform([str(good_png), str(good_png), str(bad)])


def test_missing_image_file(embedder, tmp_path):
    with pytest.raises(ValueError, match=r"row 0 \('.*gone\.png'\).*No such file"):
        embedder.transform([str(tmp_path / "gone.png")])


def test_image_array_of_wrong_dtype(embedder):
    with pytest.raises(ValueError, match=r"row 0 .*expected dtype uint8, got float32"):
        embedder.transform([np.zeros((10, 10, 3), dtype=np.float32)])


# ----------------------------------------------- feature files (skvrf embed)
@pytest.fixture()
def embed_argv(tiny, image_folder, tmp_path):
    from skvrf.clip.testing import TINY_NAME

    weights, config = tiny
    out = tmp_path / "features.npz"
    argv = ["embed", "--model", TINY_NAME, "--model-config", str(config)]
    argv += ["--pretrained", str(weights), "--images", str(image_folder)]
    argv += ["--out", str(out), "--device", "cpu", "--quiet"]
    return argv, out


def _cli(argv):
    from skvrf.cli import main

    return main(argv)


def test_embed_output_truncated_npz(embed_argv, capsys):
    argv, out = embed_argv
    assert _cli(argv) == 0
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert "cannot be read" in err and "features.npz" in err
    assert _cli([*argv, "--overwrite"]) == 0  # --overwrite replaces it
    with np.load(out) as z:
        assert z["features"].shape == (12, 16)


def test_embed_output_empty_file(embed_argv, capsys):
    argv, out = embed_argv
    out.write_bytes(b"")
    assert _cli(argv) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_embed_output_missing_manifest_key(embed_argv, capsys):
    argv, out = embed_argv
    np.savez(out, features=np.zeros((2, 16), np.float32))
    assert _cli(argv) == 2
    assert "exists and was made with other settings" in capsys.readouterr().err


# ------------------------------------------- feature files (skvrf.io loader)
@pytest.fixture()
def feature_file(tmp_path):
    path = tmp_path / "train.npz"
    np.savez(path, features=X.astype(np.float32), labels=Y, classes=["a", "b", "c"])
    return path


def _load(path):
    from skvrf.io import load_features

    return load_features(path)


def test_feature_file_truncated(feature_file):
    data = feature_file.read_bytes()
    feature_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"train\.npz: cannot be read .* truncated"):
        _load(feature_file)


def test_feature_file_missing_key(tmp_path):
    path = tmp_path / "nolabels.npz"
    np.savez(path, features=X)
    with pytest.raises(ValueError, match=r"nolabels\.npz: missing key\(s\) \['labels'"):
        _load(path)


def test_feature_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"feature file not found: .*none\.npz"):
        _load(tmp_path / "none.npz")


def test_feature_file_non_finite(tmp_path):
    path = tmp_path / "nan.npz"
    np.savez(path, features=_with(np.nan, row=5), labels=Y)
    with pytest.raises(
        ValueError, match=r"'features' has non-finite values in rows \[5\]"
    ):
        _load(path)


def test_feature_file_labels_out_of_range(tmp_path):
    path = tmp_path / "bad_labels.npz"
    np.savez(path, features=X, labels=Y + 1, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"'labels' holds indices outside \[0, 3\)"):
        _load(path)
