"""``skvrf embed``: output file, resumption after SIGKILL, errors."""

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("open_clip")

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from skvrf.clip import OpenCLIPImageEmbedder, sha256_file
from skvrf.clip.testing import (
    TINY_NAME,
)
from skvrf.commands.embed import configure_parser, main


def _argv(config, weights, images, out, *extra):
    return [
        "--model", TINY_NAME, "--model-config", str(config),
        "--pretrained", str(weights), "--images", str(images),
        "--out", str(out), "--device", "cpu", "--batch-size", "2",
        "--shard-size", "5", "--quiet", *extra,
    ]  # fmt: skip


def _run(argv):
    return main(configure_parser(argparse.ArgumentParser()).parse_args(argv))


def test_embed_writes_complete_file(
    tiny_model, tiny_config_file, image_folder, tmp_path
):
    _, _, weights = tiny_model
    out = tmp_path / "emb.npz"
    assert _run(_argv(tiny_config_file, weights, image_folder, out)) == 0
    assert not os.path.exists(f"{out}.parts")
    z = np.load(out)
    assert z["classes"].tolist() == ["ant", "moth", "zebra"]
    assert z["features"].shape == (12, 16) and z["features"].dtype == np.float32
    assert_array_equal(z["labels"], np.repeat([0, 1, 2], 4))
    assert z["paths"][0] == os.path.join("ant", "img0.png")
    assert str(z["model"]) == TINY_NAME and str(z["pretrained"]) == str(weights)
    assert str(z["sha256"]) == sha256_file(weights)
    emb = OpenCLIPImageEmbedder(TINY_NAME, weights, device="cpu").fit()
    expected = emb.transform([str(image_folder / p) for p in z["paths"]])
    assert_allclose(z["features"], expected, rtol=1e-5, atol=1e-6)
    # a rerun with the same settings has nothing to do; other settings refuse
    assert _run(_argv(tiny_config_file, weights, image_folder, out)) == 0
    assert (
        _run(_argv(tiny_config_file, weights, image_folder, out, "--precision", "bf16"))
        == 2
    )


def test_skvrf_cli_registers_embed(
    tiny_model, tiny_config_file, image_folder, tmp_path
):
    from skvrf import cli

    _, _, weights = tiny_model
    out = tmp_path / "via_cli.npz"
    assert (
        cli.main(["embed", *_argv(tiny_config_file, weights, image_folder, out)]) == 0
    )
    assert np.load(out)["features"].shape == (12, 16)


_SLOW_CHILD = """
import sys, time
import skvrf.commands.embed as cli
original = cli._embed_shard
def slow(embedder, paths):
    result = original(embedder, paths)
    time.sleep(0.4)
    return result
cli._embed_shard = slow
import argparse
sys.exit(cli.main(cli.configure_parser(argparse.ArgumentParser()).parse_args(sys.argv[1:])))
"""


def test_sigkill_then_resume_equals_uninterrupted(
    tiny_model, tiny_config_file, image_folder, tmp_path
):
    _, _, weights = tiny_model
    out = tmp_path / "resumed.npz"
    parts = f"{out}.parts"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CHILD,
         *_argv(tiny_config_file, weights, image_folder, out)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    first = os.path.join(parts, "shard-000000.npz")
    deadline = time.monotonic() + 60
    while not os.path.exists(first):
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "no shard written within 60 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # a partial run never passes for a complete one
    done = sorted(f for f in os.listdir(parts) if f.startswith("shard-"))
    assert 1 <= len(done) < 3
    mtimes = {f: os.stat(os.path.join(parts, f)).st_mtime_ns for f in done}

    # the rerun skips finished shards (their files are untouched) ...
    import skvrf.commands.embed as cli

    embedded = []
    original = cli._embed_shard

    def counting(embedder, paths):
        embedded.append(len(paths))
        assert all(
            os.stat(os.path.join(parts, f)).st_mtime_ns == t for f, t in mtimes.items()
        )
        return original(embedder, paths)

    cli._embed_shard = counting
    try:
        assert _run(_argv(tiny_config_file, weights, image_folder, out)) == 0
    finally:
        cli._embed_shard = original
    assert sum(embedded) == 12 - 5 * len(done)

    # ... and gives the same arrays as an uninterrupted run
    ref = tmp_path / "straight.npz"
    assert _run(_argv(tiny_config_file, weights, image_folder, ref)) == 0
    a, b = np.load(out), np.load(ref)
    for key in ("features", "labels", "classes", "paths", "sha256"):
        assert_array_equal(a[key], b[key])


def test_resume_refuses_other_settings(
    tiny_model, tiny_config_file, image_folder, tmp_path, capsys
):
    _, _, weights = tiny_model
    out = tmp_path / "x.npz"
    parts = tmp_path / "x.npz.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text('{"format": 1, "model": "other"}')
    assert _run(_argv(tiny_config_file, weights, image_folder, out)) == 2
    assert "unfinished run with other settings" in capsys.readouterr().err
    assert _run(_argv(tiny_config_file, weights, image_folder, out, "--overwrite")) == 0
    assert np.load(out)["features"].shape == (12, 16)


def test_missing_folder_and_weights(
    tiny_model, tiny_config_file, image_folder, tmp_path, capsys
):
    _, _, weights = tiny_model
    out = tmp_path / "y.npz"
    assert _run(_argv(tiny_config_file, weights, tmp_path / "nope", out)) == 2
    assert "image folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _run(_argv(tiny_config_file, weights, tmp_path / "empty", out)) == 2
    assert "no class sub-folders" in capsys.readouterr().err
    (tmp_path / "empty" / "cls").mkdir()
    assert (
        _run(_argv(tiny_config_file, tmp_path / "w.pt", tmp_path / "empty", out)) == 2
    )
    assert "no images" in capsys.readouterr().err
    assert _run(_argv(tiny_config_file, tmp_path / "w.pt", image_folder, out)) == 2
    assert "weights file not found" in capsys.readouterr().err
