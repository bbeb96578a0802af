"""Test helpers: a tiny open_clip architecture, its weights, and images.

skvrf's own tests use them through session fixtures in ``tests/conftest.py``; they
are public so that users can test their own pipelines the same way, offline. No
weights are ever downloaded: the tiny model is created with ``pretrained=None``,
saved as a state dict, and loaded back through skvrf.
"""

__all__ = [
    "TINY_CONFIG",
    "TINY_NAME",
    "build_image_folder",
    "build_tiny_model",
    "make_images",
    "reference_image_embeddings",
    "write_tiny_config",
]

import json

import numpy as np

TINY_NAME = "skvrf-test-tiny"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {
        "image_size": 32,
        "layers": 1,
        "width": 32,
        "patch_size": 8,
        "head_width": 16,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 1,
    },
}


def write_tiny_config(folder):
    """Write the tiny architecture (:data:`TINY_CONFIG`) as JSON.

    Parameters
    ----------
    folder : pathlib.Path
        An existing folder.

    Returns
    -------
    path : pathlib.Path
        ``folder / "tiny.json"``, an open_clip model config.
    """
    path = folder / "tiny.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


def build_tiny_model(folder):
    """Create the tiny open_clip model (seeded, no weights downloaded) and save it.

    The architecture is registered with open_clip as :data:`TINY_NAME`.

    Parameters
    ----------
    folder : pathlib.Path
        An existing folder; the state dict is saved there as ``tiny.pt``.

    Returns
    -------
    model : open_clip.CLIP
        The reference model, in eval mode.
    preprocess : callable
        Its inference transform (PIL image to tensor).
    path : pathlib.Path
        The saved weights file, ``folder / "tiny.pt"``.
    """
    import open_clip
    import torch

    from skvrf.clip import register_model_config

    register_model_config(TINY_NAME, TINY_CONFIG)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(
        TINY_NAME, pretrained=None
    )
    with torch.no_grad():  # a non-default scale, to see it carried over
        model.logit_scale.fill_(np.log(50.0))
    model.eval()
    path = folder / "tiny.pt"
    torch.save(model.state_dict(), path)
    return model, preprocess, path


def make_images(n, seed=0, size=(40, 48)):
    """Random RGB images as arrays.

    Parameters
    ----------
    n : int
        How many.
    seed : int, default=0
        Seed of the generator.
    size : tuple of int, default=(40, 48)
        Height and width.

    Returns
    -------
    images : list of ndarray of shape (height, width, 3), dtype uint8
    """
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(*size, 3), dtype=np.uint8) for _ in range(n)]


def build_image_folder(root):
    """Write an ImageFolder tree: 3 classes, 4 PNGs each (different sizes).

    Parameters
    ----------
    root : pathlib.Path
        An existing, empty folder; the class folders are ``zebra``, ``ant``
        and ``moth`` (``ant`` also holds a text file, which is not an image).

    Returns
    -------
    root : pathlib.Path
    """
    from PIL import Image

    rng = np.random.default_rng(1)
    for c, cls in enumerate(["zebra", "ant", "moth"]):
        (root / cls).mkdir()
        for i in range(4):
            arr = rng.integers(0, 256, size=(30 + 3 * i, 36 + c, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i}.png")
    (root / "ant" / "notes.txt").write_text("not an image")
    return root


def reference_image_embeddings(model, preprocess, images):
    """open_clip's own normalised ``encode_image`` of the preprocessed images.

    Parameters
    ----------
    model : open_clip.CLIP
        The model of :func:`build_tiny_model`.
    preprocess : callable
        Its inference transform.
    images : list of PIL.Image.Image
        The images.

    Returns
    -------
    embeddings : ndarray of shape (n_images, embed_dim)
        Unit rows, the reference skvrf's embedders are tested against.
    """
    import torch

    batch = torch.stack([preprocess(img) for img in images])
    with torch.no_grad():
        return model.encode_image(batch, normalize=True).numpy()
