"""open_clip integration: embedders, zero-shot heads and safe checkpoint loading.

This subpackage is the only part of skvrf that imports torch and open_clip
(install them from a checkout with ``python -m pip install -e ".[clip]"``);
``import skvrf`` stays free of both.

- :class:`OpenCLIPImageEmbedder`, :class:`OpenCLIPTextEmbedder`: scikit-learn
  transformers from images / strings to CLIP embeddings, with a content-hash
  embedding cache (``memory``) and pickles that store the weights' source and
  sha256 instead of the weights.
- :func:`zeroshot_classifier`: a fitted :class:`skvrf.ZeroShotClassifier` from
  class names and open_clip's prompt templates.
- :func:`load_checkpoint`, :func:`load_linear_head`, :func:`create_model`:
  weights files read with ``torch.load(weights_only=True)`` or safetensors;
  pickled modules only with ``trust_pickle=True``.
- The command lines built on them live with the other subcommands in
  ``skvrf.commands``: ``skvrf embed`` (a resumable embedder of an ImageFolder
  tree into one ``.npz`` file) and ``skvrf zeroshot`` (the zero-shot file from
  class names and prompt templates).

ImageNet-scale recipe
---------------------
Embed once, then work on arrays::

    skvrf embed --model ViT-B-16 --pretrained ft.pt --images train/ --out tr.npz
    skvrf embed --model ViT-B-16 --pretrained openai --images train/ --out zs.npz

For the fine-tuned component use the fine-tuned model's own head,
``load_linear_head("ft.pt")`` (a fitted :class:`skvrf.LinearHeadClassifier`; wrap
it in ``sklearn.frozen.FrozenEstimator`` if you like), and for the zero-shot
component ``zeroshot_classifier("ViT-B-16", "openai", "imagenet")``. Do not refit
a ``LogisticRegression`` on 1.28M rows x 1000 classes: it costs hours, and it is
a different model from the one that was fine-tuned, so VRF's zero-shot-failure
set would describe the wrong classifier. Both heads learn nothing, so
:class:`~skvrf.VRFEnsembleClassifier` only calibrates them and builds the bank
from the features.

Examples
--------
>>> from skvrf.clip import zeroshot_classifier, load_linear_head  # doctest: +SKIP
>>> zs = zeroshot_classifier("ViT-B-32", "openai", "imagenet")  # doctest: +SKIP
>>> ft = load_linear_head("wiseft_finetuned.pt")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

# Public name -> submodule. Resolved on first access (PEP 562), so that
# ``import skvrf.clip`` (and the command-line registry, which imports
# ``skvrf.commands.embed`` and ``skvrf.commands.zeroshot``) needs neither torch
# nor open_clip, while ``from skvrf.clip import X`` fails early with an
# ImportError naming the ``clip`` extra when they are missing.
_EXPORTS = {
    "OpenCLIPImageEmbedder": "._embedders",
    "OpenCLIPTextEmbedder": "._embedders",
    "OpenCLIPModel": "._models",
    "create_model": "._models",
    "dawin": "._dawin",
    "DaWinResult": "._dawin",
    "model_stock": "._model_stock",
    "load_checkpoint": "._checkpoints",
    "load_linear_head": "._checkpoints",
    "register_model_config": "._models",
    "sha256_file": "._checkpoints",
    "template_sets": "._zeroshot",
    "wise_ft": "._wise_ft",
    "zeroshot_classifier": "._zeroshot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ._deps import require_clip_deps

    require_clip_deps()
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
