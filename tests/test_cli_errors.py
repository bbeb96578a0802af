"""The command line refuses what it cannot answer right, and applies class maps.

Mixed label kinds (a training file without ``classes`` next to a zero-shot file
with class names), plain ``.npy`` files, and ``skvrf predict`` on a feature file
that carries a class map.
"""

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvrf.cli import main

CLASSES = np.array(["ant", "bee", "cat", "dog", "eel", "fox"])


def _rows(rng, centers, n, noise, labels=None):
    y = rng.integers(0, len(centers), n) if labels is None else labels
    X = centers[y] + rng.normal(scale=noise, size=(len(y), centers.shape[1]))
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-errors")
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(6, 8))
    out = {"dir": d}
    for name, n in [("train", 240), ("val", 90), ("test", 90)]:
        X, y = _rows(rng, centers, n, 0.6)
        out[name] = d / f"{name}.npz"
        np.savez(out[name], features=X, labels=y, classes=CLASSES)
        out[f"{name}_int"] = d / f"{name}_int.npz"
        np.savez(out[f"{name}_int"], features=X, labels=y)
    emb = centers + rng.normal(scale=0.7, size=centers.shape)
    out["text"] = d / "text.npz"
    np.savez(out["text"], class_embeddings=emb)
    out["text_named"] = d / "text_named.npz"
    np.savez(out["text_named"], class_embeddings=emb, classes=CLASSES)
    out["head_named"] = d / "head_named.npz"
    np.savez(out["head_named"], coef=centers, classes=CLASSES)
    # an ImageNet-A/R style set: 3 of the 6 classes, noisy enough that a model
    # that may answer any of the 6 classes is often wrong
    X, y = _rows(rng, centers, 150, 1.1, labels=rng.integers(0, 3, 150) * 2)
    kept = CLASSES[[0, 2, 4]]
    out["subset"] = d / "subset.npz"
    np.savez(out["subset"], features=X, labels=y // 2, classes=kept,
             class_map_kept=kept)  # fmt: skip
    # an ObjectNet style set: labels pool two model classes each
    X, y = _rows(rng, centers, 150, 0.8)
    groups = np.array(["crawler", "flyer", "pet"])
    out["pooled"] = d / "pooled.npz"
    targets = groups[np.arange(6) // 2]
    np.savez(out["pooled"], features=X, labels=y // 2, classes=groups,
             class_map_source=CLASSES, class_map_target=targets)  # fmt: skip
    return out


def _evaluate(files, out, **override):
    """``skvrf evaluate`` argv; ``override`` maps an option to a key or a path."""
    paths = {k: files[k] for k in ("train", "val", "test", "text")}
    paths.update({k: files.get(v, v) for k, v in override.items()})
    return [
        "evaluate", "--train", str(paths["train"]), "--val", str(paths["val"]),
        "--test", str(paths["test"]), "--ood", f"subset={files['subset']}",
        "--zeroshot", str(paths["text"]), "--out", str(out), "--no-plots",
        "--ks", "1,3", "--thresholds", "1.5", "--temperatures", "0.6",
        "--alphas", "0,0.5,1",
    ]  # fmt: skip


def _error(capsys, argv):
    """stderr of ``skvrf argv``, which must fail with status 2."""
    assert main(argv) == 2
    return capsys.readouterr().err


def _predict(model, features, out):
    return main(["predict", str(model), "--features", str(features), "--out", str(out)])


def _fitted_model(files, tmp_path):
    """A model saved by ``skvrf fit`` on the training file (needs skops)."""
    pytest.importorskip("skops")
    model = tmp_path / "m.skops"
    assert _fit(files, model) == 0
    return model


def _fit(files, model, *extra, train="train", text="text"):
    argv = ["fit", "--train", str(files[train]), "--zeroshot", str(files[text]),
            "--k", "3", "--save", str(model), *extra]  # fmt: skip
    return main(argv)


# ------------------------------------------------------------ label kinds
@pytest.mark.parametrize("command", ["evaluate", "fit"])
def test_integer_training_labels_with_named_zeroshot_classes(
    files, tmp_path, capsys, command
):
    """Issue 11: this used to save a model with 12 classes (0..5 and the names)."""
    if command == "evaluate":
        argv = _evaluate(files, tmp_path / "o", train="train_int", text="text_named")
        status = main(argv)
    else:
        pytest.importorskip("skops")
        status = _fit(files, tmp_path / "m.skops", train="train_int", text="text_named")
    assert status == 2
    err = capsys.readouterr().err
    assert "Labels of different kinds" in err
    assert "train_int.npz" in err and "text_named.npz" in err
    assert "numbers" in err and "strings" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m.skops").exists()


def test_head_classes_of_another_kind(files, tmp_path, capsys):
    argv = _evaluate(files, tmp_path / "o", train="train_int")
    argv += ["--head", str(files["head_named"])]  # the zero-shot file: no classes
    err = _error(capsys, argv)
    assert "train_int.npz" in err and "head_named.npz" in err


def test_validation_file_of_another_kind(files, tmp_path, capsys):
    err = _error(capsys, _evaluate(files, tmp_path / "o", val="val_int"))
    assert "val_int.npz" in err and "train.npz" in err


def test_predict_labels_of_another_kind(files, tmp_path, capsys):
    model = _fitted_model(files, tmp_path)
    pred = tmp_path / "p.npz"
    assert _predict(model, files["test_int"], pred) == 2
    err = capsys.readouterr().err
    assert "m.skops" in err and "test_int.npz" in err and "kinds" in err
    assert not pred.exists()


def test_integer_and_float_labels_are_one_kind(files, tmp_path):
    """1 and 1.0 are the same label: float training labels, integer head rows."""
    pytest.importorskip("skops")
    with np.load(files["train_int"]) as z:
        X, y = z["features"], z["labels"]
    floats = tmp_path / "train_float.npz"
    np.savez(floats, features=X, labels=y.astype(float))
    model = tmp_path / "m.skops"
    assert _fit({**files, "f": floats}, model, train="f") == 0
    from skvrf.persistence import load_model

    est = load_model(model)
    assert est.classes_.shape == (6,)
    assert_array_equal(est.classes_, np.arange(6))


# ------------------------------------------------------------- .npy files
def test_plain_npy_files_get_the_expected_layout(files, tmp_path, capsys):
    npy = tmp_path / "features.npy"
    np.save(npy, np.zeros((4, 8)))
    err = _error(capsys, _evaluate(files, tmp_path / "o", test=npy))
    assert "features.npy" in err and ".npy array" in err
    assert "'features'" in err and "'labels'" in err and "numpy.savez" in err

    assert "'class_embeddings'" in _error(
        capsys, _evaluate(files, tmp_path / "o", text=npy)
    )

    assert "'coef'" in _error(
        capsys, [*_evaluate(files, tmp_path / "o"), "--head", str(npy)]
    )

    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    err = _error(capsys, _evaluate(files, tmp_path / "o", val=text))
    assert "notes.npz" in err and "not an .npz archive" in err


def test_predict_plain_npy(files, tmp_path, capsys):
    model = _fitted_model(files, tmp_path)
    npy = tmp_path / "X.npy"
    np.save(npy, np.zeros((4, 8)))
    assert _predict(model, npy, tmp_path / "p.npz") == 2
    err = capsys.readouterr().err
    assert "X.npy" in err and ".npy array" in err and "'features'" in err
    assert "Traceback" not in err


# -------------------------------------------------------- predict + maps
def _accuracy_from(err):
    return float(err.rsplit("accuracy ", 1)[1].split("%")[0]) / 100


@pytest.mark.parametrize("name", ["subset", "pooled"])
def test_predict_applies_the_files_class_map(files, tmp_path, capsys, name):
    """Issue 11: predict ignored the map (51.3 % vs 81.5 %; 0.00 % when pooled)."""
    pytest.importorskip("skops")
    model = tmp_path / "m.skops"
    assert _fit(files, model, "--val", str(files["val"])) == 0
    pred = tmp_path / "p.npz"
    capsys.readouterr()
    assert _predict(model, files[name], pred) == 0
    err = capsys.readouterr().err
    assert "class map" in err

    from skvrf.io import feature_class_map, feature_targets, load_features
    from skvrf.persistence import load_model

    est = load_model(model)
    data = load_features(files[name])
    X, y = data["features"], feature_targets(data)
    view = est.with_class_map(feature_class_map(data))
    with np.load(pred) as p:
        assert_array_equal(p["classes"], view.classes_)
        assert_array_equal(p["predictions"], view.predict(X))
        assert set(p["predictions"].tolist()) <= set(y.tolist()) | set(
            view.classes_.tolist()
        )
        assert p["proba"].shape == (len(y), len(view.classes_))
        assert "weights" in p  # the VRF weights do not depend on the map
    acc = _accuracy_from(err)
    assert acc == pytest.approx(view.score(X, y), abs=5e-5)
    unmapped = float(np.mean(est.predict(X) == y))
    # the map is what makes the answer right: without it, a subset set scores
    # lower and a pooled set (labels the model does not have) scores 0
    assert acc > unmapped
    if name == "pooled":
        assert unmapped == 0.0 and acc > 0.6


def test_evaluate_and_predict_agree_on_a_subset_set(files, tmp_path, capsys):
    pytest.importorskip("skops")
    out = tmp_path / "o"
    assert main(_evaluate(files, out)) == 0
    report = json.loads((out / "report.json").read_text())
    sel = json.loads((out / "selection.json").read_text())
    model = tmp_path / "m.skops"
    k = sel["vrf"]["k"]
    argv = ["fit", "--train", str(files["train"]), "--val", str(files["val"]),
            "--zeroshot", str(files["text"]), "--k", str(k),
            "--threshold", "1.5", "--temperature", "0.6",
            "--C", str(sel["finetuned"]["C"]), "--save", str(model)]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert _predict(model, files["subset"], tmp_path / "p.npz") == 0
    acc = _accuracy_from(capsys.readouterr().err)
    # evaluate's VRF shares frozen components; fit's VRF fits its own clone of
    # the same LogisticRegression on the same rows: the same model
    assert acc == pytest.approx(report["scores"]["accuracy"]["VRF"]["subset"], abs=0.02)


# -------------------------------------------------------------- choosing C
def test_evaluate_chooses_C_on_val_unless_given(files, tmp_path, capsys):
    out = tmp_path / "a"
    assert main(_evaluate(files, out)) == 0
    chosen = json.loads((out / "selection.json").read_text())["finetuned"]
    assert chosen["chosen_on"] == "--val"
    assert chosen["C"] in (0.01, 0.1, 1.0, 10.0, 100.0)
    assert set(chosen["val_accuracy_per_C"]) == {"0.01", "0.1", "1", "10", "100"}
    assert chosen["val_accuracy"] == max(chosen["val_accuracy_per_C"].values())
    assert f"C={chosen['C']:g} (--val)" in capsys.readouterr().err

    out = tmp_path / "b"
    assert main([*_evaluate(files, out), "--C", "3"]) == 0
    chosen = json.loads((out / "selection.json").read_text())["finetuned"]
    assert chosen == {"C": 3.0, "chosen_on": "--C"}

    out = tmp_path / "c"
    assert main([*_evaluate(files, out), "--Cs", "0.5"]) == 0
    assert json.loads((out / "selection.json").read_text())["finetuned"]["C"] == 0.5


def test_evaluate_help_says_C_is_chosen_on_val(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--Cs" in text and "chosen on --val" in text
    assert "Without 'classes', row i of 'class_embeddings'" in text


@pytest.mark.parametrize("bad", ["width", "kind"])
def test_fit_train_store_with_head_checks_like_a_file(files, tmp_path, capsys, bad):
    # --train STORE --head streams the store (skvrf.stores.fit_store): its
    # heads must be checked, and reported, as with the .npz file of its rows.
    pytest.importorskip("skops")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    data = np.load(files["train_int"])
    store = tmp_path / "train.parquet"
    table = {"embedding": list(data["features"]), "label": data["labels"]}
    pq.write_table(pa.table(table), store)
    head = files["head_named"]  # string classes: another kind than the labels
    if bad == "width":
        head = tmp_path / "narrow.npz"
        np.savez(head, coef=np.ones((6, 5)))
    errors = []
    for train in (files["train_int"], store):
        argv = ["fit", "--train", str(train), "--zeroshot", str(files["text"]),
                "--head", str(head), "--save", str(tmp_path / "m.skops")]  # fmt: skip
        errors.append(_error(capsys, argv).replace(str(train), "TRAIN"))
    assert errors[0] == errors[1]
    assert ("has weights for 5 features" if bad == "width" else "different kinds") in (
        errors[1]
    )
    assert not (tmp_path / "m.skops").exists()


def test_predict_names_the_labels_the_model_does_not_know(files, tmp_path, capsys):
    model = _fitted_model(files, tmp_path)
    with np.load(files["test"]) as z:
        X, y = z["features"], CLASSES[z["labels"]]
    unknown = ["zebu", "yak", "gnu", "emu", "asp", "owl", "koi", "zebu"]
    y = y.astype(object)
    y[: len(unknown)] = unknown  # unsorted, one repeated, 7 distinct
    path = tmp_path / "labelled.npz"
    np.savez(path, features=X, labels=y.astype(str))
    assert _predict(model, path, tmp_path / "p.npz") == 0
    err = capsys.readouterr().err
    assert (
        "8 rows have labels the model does not predict: 'asp', 'emu', 'gnu', "
        "'koi', 'owl', 'yak' (and 1 more); counted as errors" in err
    )
