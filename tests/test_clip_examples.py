"""The open_clip examples (``examples/clip_*.py``) end to end on the tiny model.

The docs build shows these scripts without running them (only ``plot_*`` run),
so this is where they run: each in-process (``runpy``, with its argv), on the
tiny random open_clip architecture of ``skvrf.clip.testing`` and a generated
ImageFolder tree of 32x32 PNGs. The numbers mean nothing; the tests check that
every path runs and prints its table.
"""

import runpy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("open_clip")

from skvrf.clip.testing import TINY_NAME, build_tiny_model, write_tiny_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLASSES = ["ant", "moth", "sea_urchin"]
METHOD_ROWS = ("zero-shot", "OSE", "VRF")


def _tree(root, n_per_class, seed):
    """ImageFolder tree: one folder per class of 32x32 PNGs with a class colour."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            arr[:16, :, c] = 255  # a class-dependent band
            Image.fromarray(arr).save(root / name / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import open_clip
    import torch

    data = tmp_path_factory.mktemp("data")
    trees = {
        "train": _tree(data / "train", 6, 0),
        "val": _tree(data / "val", 3, 1),
        "test": _tree(data / "test", 3, 2),
    }
    weights = tmp_path_factory.mktemp("weights")
    _, _, zs_path = build_tiny_model(weights)  # registers TINY_NAME
    # The "fine-tuned" encoder: the tiny model with another random init, and a
    # classification head over its features (as WiSE-FT checkpoints carry).
    torch.manual_seed(1)
    ft = open_clip.create_model(TINY_NAME, pretrained=None)
    state = ft.state_dict()
    state["classification_head.weight"] = torch.randn(len(CLASSES), 16)
    state["classification_head.bias"] = torch.zeros(len(CLASSES))
    ft_path = weights / "ft.pt"
    torch.save(state, ft_path)
    return {
        **trees,
        "zs": zs_path,
        "ft": ft_path,
        "config": write_tiny_config(weights),
    }


def _model_args(setup):
    return [
        "--model", TINY_NAME, "--model-config", str(setup["config"]),
        "--pretrained", str(setup["zs"]), "--device", "cpu",
    ]  # fmt: skip


def _run(name, argv, capsys, monkeypatch):
    """Run examples/<name> as ``__main__`` with argv; return its stdout."""
    script = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(script), *argv])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k clipped to a tiny ZSF set, etc.
        runpy.run_path(str(script), run_name="__main__")
    return capsys.readouterr().out


def _accuracies(out):
    """{method: accuracy} of the rows of the printed table."""
    table = {}
    for line in out.splitlines():
        name, _, value = line.rpartition(" ")
        try:
            table[name.strip()] = float(value)
        except ValueError:
            continue
    return table


def _check_table(out, rows=METHOD_ROWS):
    assert "test accuracy" in out
    table = _accuracies(out)
    for row in rows:
        assert row in table, out
        assert 0.0 <= table[row] <= 1.0


def test_precomputed_features_from_folders_and_npz(
    setup, tmp_path, capsys, monkeypatch
):
    out = _run(
        "clip_precomputed_features.py",
        ["--train", str(setup["train"]), "--test", str(setup["test"]),
         "--templates", "simple_imagenet", *_model_args(setup)],
        capsys, monkeypatch,
    )  # fmt: skip
    _check_table(out, (*METHOD_ROWS, "linear probe"))
    assert "18 training and 9 test images, 3 classes" in out

    # The same from `skvrf embed` files, with a validation file.
    from skvrf.cli import main as skvrf_main

    files = {}
    for split in ("train", "val", "test"):
        files[split] = tmp_path / f"{split}.npz"
        argv = ["embed", "--images", str(setup[split]), "--out", str(files[split])]
        assert skvrf_main([*argv, *_model_args(setup), "--quiet"]) == 0
    out_npz = _run(
        "clip_precomputed_features.py",
        ["--train", str(files["train"]), "--test", str(files["test"]),
         "--val", str(files["val"]), "--templates", "simple_imagenet",
         *_model_args(setup)],
        capsys, monkeypatch,
    )  # fmt: skip
    _check_table(out_npz, (*METHOD_ROWS, "linear probe"))
    # same features either way: the zero-shot head scores the same
    assert _accuracies(out_npz)["zero-shot"] == _accuracies(out)["zero-shot"]


def test_two_encoders(setup, capsys, monkeypatch):
    data = ["--train", str(setup["train"]), "--test", str(setup["test"])]
    model = [*_model_args(setup), "--finetuned", str(setup["ft"])]
    model += ["--templates", "simple_imagenet"]
    out = _run("clip_two_encoders.py", [*data, *model], capsys, monkeypatch)
    _check_table(out, (*METHOD_ROWS, "fine-tuned"))
    assert "X: 32 columns = 16 zero-shot + 16 fine-tuned" in out

    # The checkpoint's own head, frozen, calibrated on --val.
    argv = [*data, "--val", str(setup["val"]), *model, "--head"]
    out = _run("clip_two_encoders.py", argv, capsys, monkeypatch)
    _check_table(out, (*METHOD_ROWS, "fine-tuned"))


def test_cached_logits_runs_without_models(setup, tmp_path, capsys, monkeypatch):
    cache = tmp_path / "logits"
    data = ["--train", str(setup["train"]), "--test", str(setup["test"])]
    data += ["--val", str(setup["val"]), "--logits-dir", str(cache)]
    model = [*_model_args(setup), "--finetuned", str(setup["ft"])]
    model += ["--templates", "simple_imagenet"]
    out = _run("clip_cached_logits.py", [*data, *model], capsys, monkeypatch)
    _check_table(out, (*METHOD_ROWS, "fine-tuned"))
    assert "X: 3 + 3 logit columns + 16 feature columns" in out
    assert sorted(p.name for p in cache.iterdir()) == [
        "test.npz",
        "train.npz",
        "val.npz",
    ]
    # Second run: from the cache only (weights that do not exist are never read).
    argv = [*data, "--pretrained", str(tmp_path / "missing.pt")]
    again = _run("clip_cached_logits.py", argv, capsys, monkeypatch)
    assert "no model loaded" in again
    assert _accuracies(again) == _accuracies(out)


def _encoder_table(out):
    """{encoder: (transform calls, rows asked, images encoded)}."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in ("zero-shot", "fine-tuned"):
            rows[parts[0]] = tuple(int(p) for p in parts[1:])
    return rows


def test_raw_images_grid_search_embeds_each_image_once(
    setup, tmp_path, capsys, monkeypatch
):
    data = ["--train", str(setup["train"]), "--test", str(setup["test"])]
    grid = ["--k", "1", "2", "--temperature", "0.5", "1.0", "--cv", "3"]
    grid += ["--calibration-cv", "2", "--cache-dir", str(tmp_path / "cache")]
    model = [*_model_args(setup), "--finetuned", str(setup["ft"])]
    model += ["--templates", "simple_imagenet"]
    out = _run("clip_raw_images.py", [*data, *grid, *model], capsys, monkeypatch)
    _check_table(out, ("zero-shot", "fine-tuned", "VRF (tuned)"))
    assert "grid search: 4 candidates x 3 folds" in out
    n_images = 18 + 9
    table = _encoder_table(out)
    assert set(table) == {"zero-shot", "fine-tuned"}
    for calls, rows, encoded in table.values():
        assert encoded == n_images  # once each, despite the search
        assert rows > n_images and calls > 1
    # the fine-tuned pipeline is refitted by every candidate and fold
    assert table["fine-tuned"][0] > 2 * 4 * 3

    # Rerun on the same cache: nothing is encoded again.
    again = _run("clip_raw_images.py", [*data, *grid, *model], capsys, monkeypatch)
    assert all(encoded == 0 for *_, encoded in _encoder_table(again).values())
