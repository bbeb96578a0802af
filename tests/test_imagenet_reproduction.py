"""examples/imagenet_reproduction.py end to end on a tiny fake ImageNet tree.

The tiny random open_clip model cannot reproduce the paper's numbers; this checks
that the script runs, reads the shift sets' layouts and metadata files, and
prints the Table 2 layout.
"""

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("open_clip")

from skvrf.clip.testing import TINY_NAME, build_tiny_model, write_tiny_config

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "imagenet_reproduction.py"
WNIDS = ["n00000004", "n00000001", "n00000003", "n00000002"]  # unsorted on purpose
NAMES_2012 = ["goldfish", "tench", "shark", "ray"]  # 2012-id order (line i = id i)
# class index (sorted wnid) -> 2012 id: sorted wnids are ...01, 02, 03, 04
INDEX_TO_2012 = {"0": 1, "1": 0, "2": 3, "3": 2}


def _load_script():
    spec = importlib.util.spec_from_file_location("imagenet_reproduction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(folder, n, seed):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        arr[: 8 + seed % 16] = (seed * 37) % 256  # a class-dependent band
        Image.fromarray(arr).save(folder / f"img{i}.png")


def _fake_tree(root):
    seed = 0
    for wnid in WNIDS:
        seed += 1
        _images(root / "imagenet" / "train" / wnid, 5, seed)
        _images(root / "imagenet" / "val" / wnid, 2, seed + 100)
        _images(root / "sketch" / wnid, 2, seed + 200)
    for i in range(4):
        _images(root / "v2" / str(i), 2, 300 + i)
    for wnid in ("n00000001", "n00000003"):
        _images(root / "imagenet-a" / wnid, 2, 400 + int(wnid[-1]))
    for wnid in ("n00000002", "n00000003", "n00000004"):
        _images(root / "imagenet-r" / wnid, 2, 500 + int(wnid[-1]))
    on = root / "objectnet-1.0"
    for i, folder in enumerate(("fish_tank", "sea_thing", "bicycle")):
        _images(on / "images" / folder, 2, 600 + i)
    (on / "mappings").mkdir()
    files = {
        "folder_to_objectnet_label.json": {
            "fish_tank": "Fish tank",
            "sea_thing": "Sea thing",
            "bicycle": "Bicycle",
        },
        # Bicycle maps to no ImageNet class: its images are dropped
        "objectnet_to_imagenet_1k.json": {
            "Fish tank": "goldfish; tench",
            "Sea thing": "shark; ray",
        },
        "pytorch_to_imagenet_2012_id.json": INDEX_TO_2012,
    }
    for name, content in files.items():
        (on / "mappings" / name).write_text(json.dumps(content))
    (on / "mappings" / "imagenet_to_label_2012_v2").write_text(
        "\n".join(NAMES_2012) + "\n"
    )
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = _fake_tree(tmp_path_factory.mktemp("data"))
    weights_dir = tmp_path_factory.mktemp("weights")
    model, _, zs_path = build_tiny_model(weights_dir)
    ft = copy.deepcopy(model)
    import torch

    torch.manual_seed(3)
    with torch.no_grad():
        for p in ft.visual.parameters():
            p.add_(0.05 * torch.randn_like(p))
    sd = ft.state_dict()
    sd["classification_head.weight"] = torch.randn(4, 16)
    sd["classification_head.bias"] = torch.zeros(4)
    ft_path = weights_dir / "ft.pt"
    torch.save(sd, ft_path)
    config = write_tiny_config(weights_dir)
    return root, zs_path, ft_path, config


def _argv(root, zs_path, config, features, *extra):
    return [
        "--imagenet", str(root / "imagenet"),
        "--imagenet-v2", str(root / "v2"),
        "--imagenet-sketch", str(root / "sketch"),
        "--imagenet-a", str(root / "imagenet-a"),
        "--imagenet-r", str(root / "imagenet-r"),
        "--objectnet", str(root / "objectnet-1.0"),
        "--model", TINY_NAME, "--model-config", str(config),
        "--pretrained", str(zs_path), "--templates", "simple_imagenet",
        "--val-per-class", "2", "--max-per-class", "3",
        "--features-dir", str(features), "--device", "cpu", "--batch-size", "16",
        *extra,
    ]  # fmt: skip


def test_class_maps_from_metadata(setup):
    root, *_ = setup
    script = _load_script()
    wnids = np.array(sorted(WNIDS))
    _, class_map = script.objectnet_class_map(root / "objectnet-1.0", wnids)
    # goldfish = 2012 id 0 = class index 1 (n00000002); tench = id 1 = index 0
    assert class_map == {
        "Fish tank": ["n00000002", "n00000001"],
        "Sea thing": ["n00000004", "n00000003"],
    }
    args = script.parse_args(["--imagenet", "x", "--max-per-class", "5"])
    paths, y, cmap = script.shift_set("ObjectNet", root / "objectnet-1.0", wnids, args)
    assert sorted(set(y)) == ["Fish tank", "Sea thing"] and len(paths) == 4
    paths, y, cmap = script.shift_set("A", root / "imagenet-a", wnids, args)
    assert cmap == ["n00000001", "n00000003"] and set(y) == set(cmap)
    paths, y, cmap = script.shift_set("V2", root / "v2", wnids, args)
    assert cmap is None and list(y[::2]) == list(wnids)


@pytest.mark.slow
def test_linear_probe_run(setup, tmp_path, capsys):
    root, zs_path, _, config = setup
    script = _load_script()
    scores = script.main(_argv(root, zs_path, config, tmp_path / "f"))
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "| method | IN | V2 | Sketch | A | R | ObjectNet | OOD avg |"
    )
    assert list(scores) == ["zero-shot", "fine-tuned", "OSE", "entropy", "VRF"]
    for per_set in scores.values():
        assert 0 <= per_set["ood_mean"] <= 1
    # features are cached and reused
    assert (tmp_path / "f" / "train-zs.npz").exists()


@pytest.mark.slow
def test_checkpoint_run_with_wise_ft(setup, tmp_path, capsys):
    root, zs_path, ft_path, config = setup
    script = _load_script()
    argv = _argv(
        root, zs_path, config, tmp_path / "f", "--checkpoint", str(ft_path),
        "--alphas", "0,0.5,1",
    )  # fmt: skip
    scores = script.main(argv)
    names = list(scores)
    assert names[:2] == ["zero-shot", "fine-tuned"]
    assert names[2].startswith("WiSE-FT (alpha=")
    assert names[3:] == ["OSE", "entropy", "VRF"]
    assert "| VRF |" in capsys.readouterr().out


def test_missing_objectnet_metadata(setup, tmp_path):
    script = _load_script()
    bad = tmp_path / "on"
    (bad / "mappings").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"folder_to_objectnet_label\.json"):
        script.objectnet_class_map(bad, np.array(sorted(WNIDS)))


def test_script_is_gallery_compatible():
    text = SCRIPT.read_text()
    assert text.startswith('"""\nImageNet')
    title, underline = text.splitlines()[1:3]
    assert set(underline) == {"="} and len(underline) >= len(title)
    assert "cannot reproduce" in text
