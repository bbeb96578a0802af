"""OpenCLIPImageEmbedder / OpenCLIPTextEmbedder against open_clip itself."""

import os
import pickle
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("open_clip")

import numpy as np
import torch
from numpy.testing import assert_allclose
from PIL import Image
from sklearn.base import clone

from skvrf.clip import OpenCLIPImageEmbedder, OpenCLIPTextEmbedder
from skvrf.clip.testing import (
    TINY_CONFIG,
    TINY_NAME,
    make_images,
    reference_image_embeddings,
)


def _paths(folder):
    return sorted(str(p) for p in folder.rglob("*.png"))


def _image_embedder(path, **kw):
    return OpenCLIPImageEmbedder(TINY_NAME, path, device="cpu", batch_size=3, **kw)


def _python(code):
    """Run ``code`` in a fresh interpreter on this one's path; its output."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
    )


def test_import_skvrf_is_torch_free():
    code = (
        "import sys, skvrf, skvrf.clip, skvrf.cli; skvrf.cli.build_parser(); "
        "print('torch' in sys.modules, 'open_clip' in sys.modules)"
    )
    out = _python(code)
    assert out.stdout.split() == ["False", "False"]


def test_image_embeddings_equal_open_clip(tiny_model, image_folder):
    model, preprocess, path = tiny_model
    paths = _paths(image_folder)
    emb = _image_embedder(path).fit()
    assert emb.model_ is not None and emb.embed_dim_ == 16
    Z = emb.transform(paths)
    assert Z.dtype == np.float32 and Z.shape == (len(paths), 16)
    ref = reference_image_embeddings(model, preprocess, [Image.open(p) for p in paths])
    assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)
    assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_all_input_kinds_agree(tiny_model, tmp_path):
    _, _, path = tiny_model
    arrays = make_images(4, seed=3)
    pils = [Image.fromarray(a) for a in arrays]
    files = []
    for i, img in enumerate(pils):
        files.append(tmp_path / f"{i}.png")
        img.save(files[-1])
    emb = _image_embedder(path).fit()
    Z_arr = emb.transform(arrays)
    assert_allclose(emb.transform(np.stack(arrays)), Z_arr, rtol=1e-6)
    assert_allclose(emb.transform(pils), Z_arr, rtol=1e-6)
    assert_allclose(emb.transform(files), Z_arr, rtol=1e-6)  # PathLike
    assert_allclose(emb.transform(np.array([str(f) for f in files])), Z_arr, rtol=1e-6)
    # grey and RGBA inputs are converted to RGB
    assert emb.transform([pils[0].convert("L"), pils[0].convert("RGBA")]).shape == (
        2,
        16,
    )
    assert emb.transform([]).shape == (0, 16)


def test_unnormalized_and_precision_paths_run_on_cpu(tiny_model):
    model, preprocess, path = tiny_model
    images = make_images(3, seed=5)
    raw = _image_embedder(path, normalize=False).fit().transform(images)
    ref = reference_image_embeddings(
        model, preprocess, [Image.fromarray(a) for a in images]
    )
    assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), ref, rtol=1e-5)
    for precision in ("bf16", "fp16"):
        Z = _image_embedder(path, precision=precision).fit().transform(images)
        assert Z.dtype == np.float32
        assert_allclose(Z, ref, atol=0.05)


def test_bad_inputs_name_the_row(tiny_model, tmp_path):
    _, _, path = tiny_model
    emb = _image_embedder(path).fit()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    good = make_images(1)[0]
    with pytest.raises(ValueError, match=r"row 1 \(.*broken\.jpg"):
        emb.transform([good, str(bad)])
    with pytest.raises(ValueError, match=r"row 1 .*missing\.png"):
        emb.transform([good, str(tmp_path / "missing.png")])
    with pytest.raises(ValueError, match=r"row 0 .*uint8"):
        emb.transform([good.astype(float)])
    with pytest.raises(TypeError, match="single str"):
        emb.transform(str(bad))
    emb_mem = _image_embedder(path, memory=str(tmp_path / "cache")).fit()
    with pytest.raises(ValueError, match=r"row 0 .*missing\.png"):
        emb_mem.transform([str(tmp_path / "missing.png")])


def test_text_embeddings_equal_open_clip(tiny_model):
    import open_clip

    model, _, path = tiny_model
    texts = ["a photo of a cat", "a dog", "", "a very long sentence " * 10]
    emb = OpenCLIPTextEmbedder(TINY_NAME, path, device="cpu", batch_size=3).fit()
    Z = emb.transform(texts)
    tokens = open_clip.get_tokenizer(TINY_NAME)(texts)
    with torch.no_grad():
        ref = model.encode_text(tokens, normalize=True).numpy()
    assert Z.shape == (4, 16) and Z.dtype == np.float32
    assert_allclose(Z, ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="row 1 is int"):
        emb.transform(["ok", 3])


def test_feature_names_and_pandas_output(tiny_model):
    pd = pytest.importorskip("pandas")
    _, _, path = tiny_model
    emb = _image_embedder(path).fit()
    names = emb.get_feature_names_out()
    assert names[0] == "openclipimageembedder0" and len(names) == 16
    df = emb.set_output(transform="pandas").transform(make_images(2))
    assert isinstance(df, pd.DataFrame) and list(df.columns) == list(names)
    text = OpenCLIPTextEmbedder(TINY_NAME, path, device="cpu").fit()
    assert text.get_feature_names_out()[-1] == "openclipTextembedder15".lower()


def test_memory_embeds_each_image_once(tiny_model, image_folder, tmp_path):
    _, _, path = tiny_model
    paths = _paths(image_folder)
    emb = _image_embedder(path, memory=str(tmp_path / "cache")).fit()
    encoded = []
    original = emb.model_.encode_image

    def counting(batch, **kw):
        encoded.append(len(batch))
        return original(batch, **kw)

    emb.model_.encode_image = counting
    Z = emb.transform(paths[:6] + paths[:2])  # duplicates embedded once
    assert sum(encoded) == 6
    Z2 = emb.transform(paths)  # a later fold: only new images
    assert sum(encoded) == len(paths)
    assert_allclose(Z2[:6], Z[:6])
    assert_allclose(Z[6:], Z[:2])
    emb.transform(list(reversed(paths)))
    assert sum(encoded) == len(paths)
    # a clone (as in cross-validation) shares the cache ...
    other = clone(emb).fit()
    other.model_.encode_image = counting
    assert_allclose(other.transform(paths), Z2)
    assert sum(encoded) == len(paths)
    # ... but a different model identity does not
    other = clone(emb).set_params(normalize=False).fit()
    other.model_.encode_image = counting
    other.transform(paths[:3])
    assert sum(encoded) == len(paths) + 3
    # content hash, not path: a copy of a file is a hit
    copy = tmp_path / "copy.png"
    shutil.copy(paths[0], copy)
    assert_allclose(emb.transform([str(copy)]), Z[:1])
    assert sum(encoded) == len(paths) + 3


def test_pickle_round_trip_reloads_lazily_and_checks_sha(tiny_model, tmp_path):
    _, _, path = tiny_model
    weights = tmp_path / "w.pt"
    shutil.copy(path, weights)
    emb = _image_embedder(weights).fit()
    images = make_images(3, seed=9)
    Z = emb.transform(images)
    blob = pickle.dumps(emb)
    assert len(blob) < 50_000  # the weights (~7 MB) are not in the pickle
    assert "model_" in emb.__dict__  # pickling leaves the original intact
    back = pickle.loads(blob)
    assert "model_" not in back.__dict__
    assert back.weights_sha256_ == emb.weights_sha256_
    assert_allclose(back.transform(images), Z, rtol=1e-6)
    assert next(back.model_.parameters()).device.type == "cpu"
    # the file changed after fitting: a clear error on first use
    sd = torch.load(weights, weights_only=True)
    sd["visual.proj"] = sd["visual.proj"] + 1
    torch.save(sd, weights)
    with pytest.raises(ValueError, match="changed since they were recorded"):
        pickle.loads(blob).transform(images)
    os.remove(weights)
    with pytest.raises(FileNotFoundError):
        pickle.loads(blob).transform(images)


def test_random_weights_warn_and_survive_pickling(tiny_model):
    emb = OpenCLIPTextEmbedder(TINY_NAME, None, device="cpu", model_config=TINY_CONFIG)
    assert not hasattr(emb, "model_")  # nothing loads in __init__
    with pytest.warns(UserWarning, match="randomly initialised"):
        emb.fit()
    Z = emb.transform(["x", "y"])
    back = pickle.loads(pickle.dumps(emb))
    assert_allclose(back.transform(["x", "y"]), Z, rtol=1e-6)


def test_parameter_validation():
    with pytest.raises(ValueError, match="precision"):
        OpenCLIPImageEmbedder(TINY_NAME, None, precision="fp8").fit()
    with pytest.raises(ValueError, match="batch_size"):
        OpenCLIPImageEmbedder(TINY_NAME, None, batch_size=0).fit()


def test_missing_dependencies_name_the_extra():
    code = (
        "import sys; sys.modules['open_clip'] = None\n"
        "import skvrf.clip\n"
        "try:\n"
        "    from skvrf.clip import OpenCLIPImageEmbedder\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = _python(code)
    assert "needs open_clip" in out.stdout and ".[clip]" in out.stdout


def test_workers_and_progress_bar(tiny_model, image_folder, capsys):
    _, _, path = tiny_model
    paths = _paths(image_folder)
    ref = _image_embedder(path).fit().transform(paths)
    emb = _image_embedder(path, num_workers=2, verbose=1).fit()
    assert_allclose(emb.transform(paths), ref, rtol=1e-6)
    assert "OpenCLIPImageEmbedder" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unpickled_cuda_embedder_loads_on_cpu(tiny_model):
    _, _, path = tiny_model
    emb = _image_embedder(path).fit()
    images = make_images(2)
    Z = emb.transform(images)
    emb.set_params(device="cuda")  # as if fitted on a GPU machine
    back = pickle.loads(pickle.dumps(emb))
    with pytest.warns(UserWarning, match="loading on CPU"):
        assert_allclose(back.transform(images), Z, rtol=1e-6)
    assert back.device_.type == "cpu"
