"""``skvrf evaluate``, ``skvrf fit``, ``skvrf predict`` on small generated files."""

import json
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvrf.cli import main

CLASSES = np.array(["ant", "bee", "cat", "dog"])


def _make(rng, centers, n, shift=0.0, classes=None):
    labels = rng.integers(0, len(centers), n) if classes is None else classes
    X = centers[labels] + shift + rng.normal(scale=0.9, size=(len(labels), 6))
    return X.astype(np.float32), labels


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("features")
    rng = np.random.default_rng(0)
    centers = 2.0 * rng.normal(size=(4, 6))
    out = {}
    for name, n, shift in [("train", 200, 0.0), ("val", 80, 0.0), ("test", 80, 0.0)]:
        X, y = _make(rng, centers, n, shift)
        out[name] = d / f"{name}.npz"
        np.savez(out[name], features=X, labels=y, classes=CLASSES)
    X, y = _make(rng, centers, 60, shift=0.7)
    out["shifted"] = d / "shifted.npz"
    np.savez(out["shifted"], features=X, labels=y, classes=CLASSES)
    # a set with two of the four classes (ImageNet-A/R style), its own classes
    X, y = _make(rng, centers, 40, classes=rng.integers(0, 2, 40) + 2)
    out["subset"] = d / "subset.npz"
    np.savez(
        out["subset"],
        features=X,
        labels=y - 2,
        classes=CLASSES[2:],
        class_map_kept=CLASSES[2:],
    )
    # a set that pools classes (ObjectNet style): insects and pets
    X, y = _make(rng, centers, 40)
    out["pooled"] = d / "pooled.npz"
    np.savez(
        out["pooled"],
        features=X,
        labels=(y >= 2).astype(int),
        classes=np.array(["insect", "pet"]),
        class_map_source=CLASSES,
        class_map_target=np.array(["insect", "insect", "pet", "pet"]),
    )
    out["text"] = d / "text.npz"
    np.savez(out["text"], class_embeddings=centers + rng.normal(scale=1.0, size=(4, 6)))
    out["head"] = d / "head.npz"
    np.savez(out["head"], coef=centers, intercept=np.zeros(4), classes=CLASSES)
    out["dir"] = d
    return out


def _evaluate_argv(files, out, *extra):
    return [
        "evaluate", "--train", str(files["train"]), "--val", str(files["val"]),
        "--test", str(files["test"]), "--ood", f"shifted={files['shifted']}",
        "--ood", f"subset={files['subset']}", "--ood", f"pooled={files['pooled']}",
        "--zeroshot", str(files["text"]), "--out", str(out),
        "--ks", "1,3,auto", "--thresholds", "1,1.5", "--temperatures", "0.3,0.6",
        *extra,
    ]  # fmt: skip


def _error_with(files, tmp_path, capsys, option, path):
    """stderr of ``skvrf evaluate`` with ``option``'s file replaced by ``path``;
    the run must fail with status 2."""
    argv = _evaluate_argv(files, tmp_path / "o")
    argv[argv.index(option) + 1] = str(path)
    assert main(argv) == 2
    return capsys.readouterr().err


def test_evaluate_writes_report(files, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(_evaluate_argv(files, out, "--scoring", "accuracy,log_loss,ece")) == 0
    printed = capsys.readouterr().out
    assert "| VRF |" in printed and "OOD mean" in printed
    assert (out / "report.md").read_text().strip() == printed.strip()
    report = json.loads((out / "report.json").read_text())
    from skvrf.evaluation import RobustnessReport

    rep = RobustnessReport.from_dict(report)
    assert rep.estimator_names == [
        "zero-shot",
        "fine-tuned",
        "OSE",
        "entropy",
        "VRF",
        "VRF (paper defaults)",
        "OSE (tolerance)",
        "VRF (tolerance)",
        "selective (MSP)",
        "selective (energy)",
        "selective (MD)",
        "selective (RMD)",
        "selective (kNN)",
        "VRF (all-rows bank)",
        "zero-shot (GLA)",
        "VRF (paper defaults, GLA)",
    ]
    assert rep.ood_sets == ["shifted", "subset", "pooled"]
    assert set(rep.metrics) == {"accuracy", "log_loss", "ece"}
    for per_set in rep.scores["accuracy"].values():
        assert all(0 <= v <= 1 for v in per_set.values())
    selection = json.loads((out / "selection.json").read_text())
    assert selection["selected_on"] == str(files["val"])
    assert selection["vrf"]["k"] in (1, 3, "auto")
    assert selection["vrf"]["threshold"] in (1.0, 1.5)
    assert 0 <= selection["ose"]["alpha"] <= 1
    pytest.importorskip("matplotlib", reason="plots need matplotlib (the plot extra)")
    for png in ("tradeoff.png", "weights.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_with_head_file_no_plots(files, tmp_path):
    out = tmp_path / "r"
    argv = _evaluate_argv(files, out, "--head", str(files["head"]), "--no-plots")
    assert main(argv) == 0
    assert (out / "report.json").exists() and not (out / "tradeoff.png").exists()


def test_evaluate_tunes_on_val_only(files, tmp_path):
    """The selection must not change when test and OOD labels are scrambled."""
    d = tmp_path
    rng = np.random.default_rng(5)
    scrambled = {}
    for key in ("test", "shifted"):
        with np.load(files[key]) as z:
            data = dict(z)
        data["labels"] = rng.permutation(data["labels"])
        scrambled[key] = d / f"{key}.npz"
        np.savez(scrambled[key], **data)
    argv = _evaluate_argv(files, d / "a", "--no-plots")
    assert main(argv) == 0
    argv_b = _evaluate_argv({**files, **scrambled}, d / "b", "--no-plots")
    assert main(argv_b) == 0
    sel_a = json.loads((d / "a" / "selection.json").read_text())
    sel_b = json.loads((d / "b" / "selection.json").read_text())
    assert sel_a == {**sel_b, "selected_on": sel_a["selected_on"]}


@pytest.mark.parametrize("method", ["vrf", "ose", "entropy"])
def test_fit_predict_round_trip(files, tmp_path, method):
    pytest.importorskip("skops")
    model = tmp_path / "m.skops"
    argv = ["fit", "--train", str(files["train"]), "--val", str(files["val"]),
            "--zeroshot", str(files["text"]), "--method", method,
            "--k", "3", "--threshold", "1.2", "--temperature", "0.5",
            "--alpha", "0.3", "--save", str(model)]  # fmt: skip
    assert main(argv) == 0
    pred = tmp_path / "pred.npz"
    assert main(["predict", str(model), "--features", str(files["test"]),
                 "--out", str(pred)]) == 0  # fmt: skip
    from skvrf.persistence import load_model

    est = load_model(model)
    with np.load(files["test"]) as z:
        X = z["features"]
    with np.load(pred) as p:
        assert_array_equal(p["predictions"], est.predict(X))
        assert_allclose(p["proba"], est.predict_proba(X))
        assert_array_equal(p["classes"], CLASSES)
        assert ("weights" in p) == (method == "vrf")
    if method == "vrf":
        assert est.k == 3 and est.threshold == 1.2 and est.temperature == 0.5
    if method == "ose":
        assert est.alpha == 0.3


def test_fit_takes_evaluates_selection(files, tmp_path, capsys):
    """`fit --selection` builds the model `evaluate` chose; options given win."""
    pytest.importorskip("skops")
    from skvrf.persistence import load_model

    out = tmp_path / "results"
    assert main(_evaluate_argv(files, out, "--no-plots")) == 0
    selection = json.loads((out / "selection.json").read_text())
    base = ["fit", "--train", str(files["train"]), "--val", str(files["val"]),
            "--zeroshot", str(files["text"]), "--selection",
            str(out / "selection.json")]  # fmt: skip
    model = tmp_path / "vrf.skops"
    assert main([*base, "--save", str(model)]) == 0
    vrf = load_model(model)
    chosen = selection["vrf"]
    assert (vrf.k, vrf.threshold, vrf.temperature) == (
        chosen["k"],
        chosen["threshold"],
        chosen["temperature"],
    )
    assert vrf.finetuned_estimator.C == selection["finetuned"]["C"]
    # the same choices by hand give the same model
    by_hand = tmp_path / "by_hand.skops"
    argv = ["fit", "--train", str(files["train"]), "--val", str(files["val"]),
            "--zeroshot", str(files["text"]), "--k", str(chosen["k"]),
            "--threshold", str(chosen["threshold"]), "--temperature",
            str(chosen["temperature"]), "--C", str(selection["finetuned"]["C"]),
            "--save", str(by_hand)]  # fmt: skip
    assert main(argv) == 0
    with np.load(files["test"]) as z:
        X = z["features"]
    assert_allclose(load_model(by_hand).predict_proba(X), vrf.predict_proba(X))
    # an option on the command line wins over the file
    ose = tmp_path / "ose.skops"
    argv = [*base, "--method", "ose", "--threshold", "0.25", "--C", "7",
            "--save", str(ose)]  # fmt: skip
    assert main(argv) == 0
    est = load_model(ose)
    assert est.alpha == selection["ose"]["alpha"]
    assert est.finetuned_estimator.C == 7.0
    # without --selection but with --val: k, threshold and temperature chosen
    # on --val, the threshold inside its rows' distances, no range warning
    tuned = tmp_path / "tuned.skops"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="threshold=.* lies")
        assert main([*base[:-2], "--save", str(tuned)]) == 0
    est = load_model(tuned)
    with np.load(files["val"]) as z:
        d = est.zsf_distances(z["features"])
    assert d.min() <= est.threshold <= d.max()
    assert est.temperature < 0.6 * (d.max() - d.min())  # a fraction of the spread
    assert "chosen on" in capsys.readouterr().err
    assert est.finetuned_estimator.C == 1.0
    # a value given is kept, the others chosen
    argv = [*base[:-2], "--threshold", "0.5", "--save", str(tuned)]
    assert main(argv) == 0
    assert load_model(tuned).threshold == 0.5
    # without --val: the paper's defaults
    plain = tmp_path / "plain.skops"
    no_val = [a for a in base[:-2] if a not in ("--val", str(files["val"]))]
    assert main([*no_val, "--save", str(plain)]) == 0
    est = load_model(plain)
    assert (est.k, est.threshold, est.temperature) == ("auto", 1.5, 0.6)
    assert est.finetuned_estimator.C == 1.0


def test_fit_selection_values_differ_from_the_defaults(files, tmp_path):
    # every value differs from fit's default, so that an ignored one fails
    pytest.importorskip("skops")
    from skvrf.persistence import load_model

    sel = tmp_path / "selection.json"
    sel.write_text(
        json.dumps(
            {
                "vrf": {"k": 5, "threshold": 0.9, "temperature": 0.4},
                "ose": {"alpha": 0.2},
                "finetuned": {"C": 0.5},
            }
        )
    )
    base = ["fit", "--train", str(files["train"]), "--zeroshot", str(files["text"]),
            "--selection", str(sel)]  # fmt: skip
    got = {}
    for method, extra in (("vrf", []), ("ose", []), ("head", ["--head"])):
        model = tmp_path / f"{method}.skops"
        argv = [*base, "--method", "ose" if method == "ose" else "vrf"]
        if extra:
            argv += [*extra, str(files["head"])]
        assert main([*argv, "--save", str(model)]) == 0
        got[method] = load_model(model)
    vrf = got["vrf"]
    assert (vrf.k, vrf.threshold, vrf.temperature) == (5, 0.9, 0.4)
    assert vrf.finetuned_estimator.C == 0.5
    assert got["ose"].alpha == 0.2
    assert got["ose"].finetuned_estimator.C == 0.5
    assert got["head"].k == 5  # with --head too (its C is not used)


@pytest.mark.parametrize(
    "content", ["not json", "[1, 2]", '{"other": {}}', '{"vrf": 3}']
)
def test_fit_selection_that_is_not_one(files, tmp_path, capsys, content):
    bad = tmp_path / "selection.json"
    bad.write_text(content)
    argv = ["fit", "--train", str(files["train"]), "--zeroshot", str(files["text"]),
            "--selection", str(bad), "--save", str(tmp_path / "m.skops")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "skvrf evaluate" in err


def test_fit_with_head_file(files, tmp_path):
    pytest.importorskip("skops")
    model = tmp_path / "m.skops"
    assert main(["fit", "--train", str(files["train"]), "--zeroshot",
                 str(files["text"]), "--head", str(files["head"]),
                 "--save", str(model)]) == 0  # fmt: skip
    from skvrf.persistence import load_model

    est = load_model(model)
    assert type(est.finetuned_estimator_).__name__ == "FrozenEstimator"


@pytest.mark.parametrize("command", ["evaluate", "fit", "predict"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: skvrf {command}" in text
    if command == "evaluate":
        assert "class_map_kept" in text and "class_map_source" in text
        assert "--val" in text


def test_missing_file(files, tmp_path, capsys):
    err = _error_with(files, tmp_path, capsys, "--test", tmp_path / "nope.npz")
    assert "nope.npz" in err and "not found" in err


def test_missing_key_names_file_and_key(files, tmp_path, capsys):
    bad = tmp_path / "nolabels.npz"
    np.savez(bad, features=np.zeros((3, 6)))
    err = _error_with(files, tmp_path, capsys, "--val", bad)
    assert "nolabels.npz" in err and "'labels'" in err

    text = tmp_path / "text.npz"
    np.savez(text, embeddings=np.zeros((4, 6)))
    err = _error_with(files, tmp_path, capsys, "--zeroshot", text)
    assert "text.npz" in err and "class_embeddings" in err


def test_bad_shapes_and_truncated(files, tmp_path, capsys):
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, features=np.zeros((5, 6)), labels=np.zeros(4, dtype=int))
    err = _error_with(files, tmp_path, capsys, "--test", wrong)
    assert "'labels' has 4 rows but 'features' has 5" in err

    dims = tmp_path / "dims.npz"
    np.savez(dims, features=np.zeros((5, 3)), labels=np.zeros(5, dtype=int))
    err = _error_with(files, tmp_path, capsys, "--test", dims)
    assert "dims.npz has 3 features" in err

    truncated = tmp_path / "trunc.npz"
    truncated.write_bytes(files["train"].read_bytes()[:300])
    err = _error_with(files, tmp_path, capsys, "--train", truncated)
    assert "trunc.npz" in err and "truncated or corrupt" in err


def test_ood_without_equals(files, tmp_path, capsys):
    argv = _evaluate_argv(files, tmp_path / "o")
    argv[argv.index(f"shifted={files['shifted']}")] = str(files["shifted"])
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "NAME=FILE" in capsys.readouterr().err


def test_predict_errors(files, tmp_path, capsys):
    pytest.importorskip("skops")
    missing = str(tmp_path / "no.skops")
    assert main(["predict", missing, "--features", str(files["test"]),
                 "--out", str(tmp_path / "p.npz")]) == 2  # fmt: skip
    assert "no.skops" in capsys.readouterr().err
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"PK\x03\x04 not really")
    assert main(["predict", str(junk), "--features", str(files["test"]),
                 "--out", str(tmp_path / "p.npz")]) == 2  # fmt: skip
    assert "truncated, corrupt" in capsys.readouterr().err


def test_fit_class_weight_balanced_is_the_python_fit_with_balanced_weights(
    files, tmp_path
):
    pytest.importorskip("skops")
    from sklearn.utils.class_weight import compute_sample_weight

    from skvrf import HeldOut, VRFEnsembleClassifier, ZeroShotClassifier
    from skvrf.commands._common import probe
    from skvrf.persistence import load_model

    model = tmp_path / "m.skops"
    argv = ["fit", "--train", str(files["train"]), "--val", str(files["val"]),
            "--zeroshot", str(files["text"]), "--k", "3", "--threshold", "1.2",
            "--temperature", "0.5", "--class-weight", "balanced",
            "--save", str(model)]  # fmt: skip
    assert main(argv) == 0
    est = load_model(model)
    sets = {}
    for name in ("train", "val", "test"):
        with np.load(files[name]) as z:
            sets[name] = (z["features"], CLASSES[z["labels"]])
    with np.load(files["text"]) as z:
        zs = ZeroShotClassifier(z["class_embeddings"], classes=CLASSES)
    (X, y), (Xv, yv) = sets["train"], sets["val"]
    ref = VRFEnsembleClassifier(
        zs, probe(1.0), k=3, threshold=1.2, temperature=0.5
    ).fit(
        X.astype(np.float64),
        y,
        X_val=HeldOut(Xv, yv, sample_weight=compute_sample_weight("balanced", yv)),
        sample_weight=compute_sample_weight("balanced", y),
    )
    for name in ("zeroshot", "finetuned"):
        assert est.calibration_temperatures_[name] == pytest.approx(
            ref.calibration_temperatures_[name], rel=1e-9
        )
    assert_allclose(
        est.predict_proba(sets["test"][0]), ref.predict_proba(sets["test"][0])
    )
    unweighted = tmp_path / "u.skops"
    argv[argv.index("balanced")] = "none"
    argv[-1] = str(unweighted)
    assert main(argv) == 0
    # the weights changed the fine-tuned fit
    assert not np.allclose(
        load_model(unweighted).finetuned_estimator_.coef_,
        est.finetuned_estimator_.coef_,
    )
