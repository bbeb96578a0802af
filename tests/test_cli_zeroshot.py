"""``skvrf zeroshot`` against open_clip itself, its errors, and the whole command
line path (embed -> zeroshot -> evaluate / fit -> predict) on the tiny model."""

import ast
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvrf import cli

SKVRF = Path(__file__).resolve().parents[1] / "skvrf"


def _write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def files(tiny_model, tiny_config_file, tmp_path):
    """Arguments of a tiny-model run, and a class-names and templates file."""
    _, _, weights = tiny_model
    from skvrf.clip.testing import TINY_NAME

    names = _write(tmp_path / "classnames.txt", ["zebra", "", "ant", "moth  "])
    templates = _write(tmp_path / "templates.txt", ["a photo of a {}.", "a {}!"])
    base = [
        "zeroshot", "--model", TINY_NAME, "--model-config", str(tiny_config_file),
        "--pretrained", str(weights), "--device", "cpu", "--quiet",
    ]  # fmt: skip
    return {"base": base, "names": names, "templates": templates, "weights": weights}


def _zeroshot(files, out, *extra, names=None, templates=None):
    argv = [
        *files["base"],
        "--classnames", str(names or files["names"]),
        "--templates", str(templates or files["templates"]),
        "--out", str(out), *extra,
    ]  # fmt: skip
    return cli.main(argv)


def test_zeroshot_file_equals_open_clip(files, tiny_model, tmp_path):
    import open_clip
    import torch

    from skvrf.clip import sha256_file
    from skvrf.clip.testing import TINY_NAME
    from skvrf.io import load_zeroshot_head

    model = tiny_model[0]
    out = tmp_path / "zs.npz"
    assert _zeroshot(files, out) == 0
    z = np.load(out)
    # classes in the given order (not sorted), blank lines skipped, names stripped
    assert z["classes"].tolist() == ["zebra", "ant", "moth"]
    assert z["classnames"].tolist() == ["zebra", "ant", "moth"]
    assert z["templates"].tolist() == ["a photo of a {}.", "a {}!"]
    assert z["class_embeddings"].dtype == np.float32
    assert_allclose(np.linalg.norm(z["class_embeddings"], axis=1), 1.0, rtol=1e-6)
    with torch.no_grad():
        ref = open_clip.build_zero_shot_classifier(
            model,
            open_clip.get_tokenizer(TINY_NAME),
            ["zebra", "ant", "moth"],
            ["a photo of a {}.", "a {}!"],
            device="cpu",
        )
    assert_allclose(z["class_embeddings"], ref.T.numpy(), rtol=1e-5, atol=1e-6)
    assert_allclose(float(z["logit_scale"]), 50.0, rtol=1e-6)  # the model's
    assert str(z["model"]) == TINY_NAME
    assert str(z["sha256"]) == sha256_file(files["weights"])
    manifest = json.loads(str(z["manifest"]))
    assert manifest["templates"] == ["a photo of a {}.", "a {}!"]
    assert manifest["model_config"]["embed_dim"] == 16
    head = load_zeroshot_head(out)  # the file 'skvrf evaluate/fit' read
    assert head.classes_.tolist() == ["zebra", "ant", "moth"]
    assert_allclose(head.logit_scale, 50.0, rtol=1e-6)


def test_named_template_set_and_labels_file(files, tmp_path):
    from skvrf.clip import template_sets

    labels = _write(tmp_path / "labels.txt", ["n03", "n01", "n02"])
    out = tmp_path / "zs.npz"
    assert (
        _zeroshot(files, out, "--classes", str(labels), templates="simple_imagenet")
        == 0
    )
    z = np.load(out)
    assert z["classes"].tolist() == ["n03", "n01", "n02"]
    assert z["classnames"].tolist() == ["zebra", "ant", "moth"]
    expected = [t("{}") for t in template_sets()["simple_imagenet"]]
    assert z["templates"].tolist() == expected and len(expected) == 7


def test_bundled_imagenet_names(files, tmp_path, monkeypatch):
    from open_clip import zero_shot_metadata

    from skvrf.commands.zeroshot import read_classnames
    from skvrf.io import load_zeroshot_head

    names, bundled = read_classnames("imagenet")
    assert bundled and names == list(zero_shot_metadata.IMAGENET_CLASSNAMES)
    assert len(names) == 1000  # two of them repeat ('missile', 'sunglasses')
    # end to end on three of them (1000 classes x 80 templates is slow on CPU)
    monkeypatch.setattr(zero_shot_metadata, "IMAGENET_CLASSNAMES", names[:3])
    out = tmp_path / "zs.npz"
    assert _zeroshot(files, out, names="imagenet") == 0
    z = np.load(out)
    assert "classes" not in z.files  # row i is label index i of the training file
    assert z["classnames"].tolist() == ["tench", "goldfish", "great white shark"]
    head = load_zeroshot_head(out, default_classes=np.array(["n1", "n2", "n3"]))
    assert head.classes_.tolist() == ["n1", "n2", "n3"]


def _visual_only(tiny_model, tmp_path):
    import torch

    sd = {k: v for k, v in tiny_model[0].state_dict().items() if "visual." in k}
    path = tmp_path / "visual.pt"
    torch.save(sd, path)
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing names", "class names file not found: .*nope.txt .*imagenet"),
        ("empty names", r"--classnames: .*empty.txt is empty"),
        ("duplicate names", r"class names .* must be unique; repeated: \['ant'\]"),
        ("names are a folder", "is a folder, not a text file"),
        ("labels count", "--classes .* has 2 labels but --classnames .* has 3"),
        ("duplicate labels", r"class labels .* must be unique; repeated: \['a'\]"),
        ("template without {}", r"template 2 \('a photo'\) has no '\{\}'"),
        ("template with {x}", r"template 1 .* cannot be filled with str.format"),
        ("unknown template set", "templates file not found: openai .*openai_imagenet"),
        ("empty templates", r"--templates: .*empty.txt is empty"),
        ("npy output", "must end in .npz"),
        ("missing out folder", "output folder not found"),
        ("missing weights", "eights file not found"),
        (
            "unknown architecture",
            "open_clip cannot load 'no-such-arch'.*--model-config",
        ),
        ("image tower only", "image-tower weights only"),
    ],
)
def test_errors_name_the_problem(case, message, files, tiny_model, tmp_path, capsys):
    import re

    empty = _write(tmp_path / "empty.txt", ["", "  "])
    names, templates, extra = None, None, []
    out = tmp_path / "zs.npz"
    base = files["base"]
    if case == "missing names":
        names = tmp_path / "nope.txt"
    elif case == "empty names":
        names = empty
    elif case == "duplicate names":
        names = _write(tmp_path / "dup.txt", ["ant", "moth", "ant"])
    elif case == "names are a folder":
        names = tmp_path
    elif case == "labels count":
        extra = ["--classes", str(_write(tmp_path / "l.txt", ["a", "b"]))]
    elif case == "duplicate labels":
        extra = ["--classes", str(_write(tmp_path / "l.txt", ["a", "b", "a"]))]
    elif case == "template without {}":
        templates = _write(tmp_path / "t.txt", ["a {}.", "a photo"])
    elif case == "template with {x}":
        templates = _write(tmp_path / "t.txt", ["a {x} of {}"])
    elif case == "unknown template set":
        templates = "openai"
    elif case == "empty templates":
        templates = empty
    elif case == "npy output":
        out = tmp_path / "zs.npy"
    elif case == "missing out folder":
        out = tmp_path / "no" / "zs.npz"
    elif case == "missing weights":
        files = {**files, "base": [*base[:5], "--pretrained", "nope.pt", *base[7:]]}
    elif case == "unknown architecture":
        files = {**files, "base": ["zeroshot", "--model", "no-such-arch", *base[5:]]}
    elif case == "image tower only":
        weights = str(_visual_only(tiny_model, tmp_path))
        files = {**files, "base": [*base[:5], "--pretrained", weights, *base[7:]]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _zeroshot(files, out, *extra, names=names, templates=templates) == 2
    err = capsys.readouterr().err
    assert err.startswith("skvrf zeroshot: error: ")
    assert re.search(message, err), err
    assert not out.exists()


def test_command_line_path_end_to_end(
    tiny_model, tiny_config_file, image_folder, tmp_path, capsys
):
    """embed -> zeroshot -> evaluate and fit -> predict, as docs/getting_started
    spells it, in-process on the tiny model."""
    from skvrf.clip.testing import TINY_NAME

    _, _, weights = tiny_model
    model = [
        "--model", TINY_NAME, "--model-config", str(tiny_config_file),
        "--pretrained", str(weights), "--device", "cpu",
    ]  # fmt: skip
    # the class names in another order than the sorted folders of 'skvrf embed'
    names = _write(tmp_path / "classnames.txt", ["zebra", "moth", "ant"])
    train, zs = tmp_path / "train.npz", tmp_path / "zeroshot.npz"
    steps = [
        ["embed", *model, "--images", str(image_folder), "--out", str(train)],
        ["zeroshot", *model, "--classnames", str(names),
         "--templates", "simple_imagenet", "--out", str(zs)],
        # the tiny data serve as every split: this checks the plumbing
        ["evaluate", "--train", str(train), "--val", str(train), "--test", str(train),
         "--ood", f"copy={train}", "--zeroshot", str(zs), "--out",
         str(tmp_path / "results"), "--no-plots"],
        ["fit", "--train", str(train), "--val", str(train), "--zeroshot", str(zs),
         "--save", str(tmp_path / "vrf.skops")],
        ["predict", str(tmp_path / "vrf.skops"), "--features", str(train),
         "--out", str(tmp_path / "predictions.npz")],
    ]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny model's distances are not CLIP's
        for argv in steps:
            assert cli.main(argv) == 0, (argv[0], capsys.readouterr().err)
    report = json.loads((tmp_path / "results" / "report.json").read_text())
    assert "VRF" in json.dumps(report) and "copy" in json.dumps(report)
    pred = np.load(tmp_path / "predictions.npz")
    assert sorted(pred["classes"].tolist()) == ["ant", "moth", "zebra"]
    assert set(pred["predictions"].tolist()) <= {"ant", "moth", "zebra"}
    assert pred["proba"].shape == (12, 3) and pred["weights"].shape == (12,)
    assert_array_equal(pred["paths"], np.load(train)["paths"])
    assert "wrote" in capsys.readouterr().err


def _imports(path, module):
    """skvrf modules imported anywhere in ``path`` (module- or function-level)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            name = ".".join(base if node.level else [])
            if node.module:
                name = f"{name}.{node.module}" if name else node.module
            found.update(f"{name}.{a.name}" for a in node.names)
            found.add(name)
    return found


# The command line and open_clip layers: nothing below them imports them back.
UPPER_LAYERS = ("skvrf.cli", "skvrf.commands", "skvrf.clip")


def test_layers_import_one_way():
    """No part of skvrf (a top-level module or subpackage) that imports the
    command line or ``skvrf.clip`` is imported back by them, directly or around a
    longer loop, lazy imports included (``skvrf.io`` and the embed command's old
    home in ``skvrf.clip`` imported each other)."""

    def part(name):
        return ".".join(name.split(".")[:2])

    modules = {}
    for path in SKVRF.rglob("*.py"):
        rel = path.relative_to(SKVRF.parent).with_suffix("").parts
        modules[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = path
    graph = {}
    for module, path in modules.items():
        deps = {part(d) for d in _imports(path, module) if d in modules}
        graph.setdefault(part(module), set()).update(deps - {part(module), "skvrf"})

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(p for p in UPPER_LAYERS if reaches(p, p, {p}))
    assert not cycles, f"parts of skvrf in an import cycle: {cycles}"
