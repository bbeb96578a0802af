"""Creating open_clip models: custom architectures, weights files, provenance.

:func:`create_model` wraps ``open_clip.create_model_and_transforms``: a pretrained
tag goes to open_clip; a local file is read by :func:`load_checkpoint` (never
unpickling code) and matched to the full model or to its image tower, and its
sha256 is recorded so that a pickled embedder can verify it on reload.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

from ._checkpoints import load_checkpoint, sha256_file
from ._deps import require_clip_deps

__all__ = ["OpenCLIPModel", "create_model", "register_model_config"]


_REGISTERED: dict[str, str] = {}


def register_model_config(model_name: str, config: dict | str | os.PathLike) -> str:
    """Register a custom open_clip architecture under ``model_name``.

    Parameters
    ----------
    model_name : str
        Name to register (as passed to ``open_clip.create_model``).
    config : dict or path to a JSON file
        open_clip model config (``embed_dim``, ``vision_cfg``, ``text_cfg``), or
        an ``open_clip_config.json`` with a ``model_cfg`` key.

    Returns
    -------
    model_name : str
        The registered name.

    Examples
    --------
    >>> from skvrf.clip import register_model_config
    >>> cfg = {"embed_dim": 8, "vision_cfg": {"image_size": 32, "layers": 1,
    ...        "width": 16, "patch_size": 16, "head_width": 8},
    ...        "text_cfg": {"context_length": 8, "vocab_size": 49408,
    ...        "width": 16, "heads": 2, "layers": 1}}
    >>> register_model_config("doc-tiny", cfg)
    'doc-tiny'
    """
    _, open_clip = require_clip_deps()
    if not isinstance(config, dict):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"Model config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    config = config.get("model_cfg", config)
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ValueError(
            f"Model config for {model_name!r} lacks keys {missing}; open_clip "
            "needs 'embed_dim', 'vision_cfg' and 'text_cfg'."
        )
    text = json.dumps(config, sort_keys=True)
    if _REGISTERED.get(model_name) == text:
        return model_name
    if "/" in model_name or os.sep in model_name:
        raise ValueError(f"Model name {model_name!r} must not contain a slash.")
    folder = tempfile.mkdtemp(prefix="skvrf-open-clip-config-")
    with open(os.path.join(folder, f"{model_name}.json"), "w", encoding="utf-8") as f:
        f.write(text)
    open_clip.add_model_config(folder)
    _REGISTERED[model_name] = text
    return model_name


class OpenCLIPModel(NamedTuple):
    """An open_clip model with its inference preprocessing and provenance.

    Parameters
    ----------
    model : torch.nn.Module
        The open_clip model, in eval mode.
    preprocess : callable
        Its inference image transform.
    source : str or None
        The pretrained tag or the absolute path of the weights file.
    sha256 : str or None
        SHA-256 of the weights file, when there is one.
    """

    model: Any
    preprocess: Any
    source: str | None
    sha256: str | None


class _QuietRandomInit(logging.Filter):
    def filter(self, record):  # pragma: no cover - trivial
        return "initialized randomly" not in record.getMessage()


def _encoder_state_dict(state_dict: dict, model) -> tuple[dict, str]:
    """Match checkpoint keys to ``model``; return (state dict, 'full'|'visual')."""
    full_keys = set(model.state_dict())
    visual_keys = {k[len("visual.") :] for k in full_keys if k.startswith("visual.")}
    if set(state_dict) & full_keys:
        prefix = ""
    else:  # find what precedes 'visual.' (e.g. 'image_encoder.model.')
        found = Counter(
            k[: k.index("visual.")] for k in state_dict if "visual." in k
        ).most_common(1)
        prefix = found[0][0] if found else ""
    sd = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if full_keys <= set(sd):
        return {k: sd[k] for k in full_keys}, "full"
    if visual_keys and {f"visual.{k}" for k in visual_keys} <= set(sd):
        return {k: sd[f"visual.{k}"] for k in visual_keys}, "visual"
    if visual_keys <= set(sd):
        return {k: sd[k] for k in visual_keys}, "visual"
    missing = sorted(full_keys - set(sd))
    raise ValueError(
        f"The checkpoint does not match the architecture: {len(missing)} of its "
        f"weights are missing (e.g. {missing[:5]}); checkpoint keys look like "
        f"{sorted(state_dict)[:5]}."
    )


def create_model(
    model_name: str,
    pretrained: str | os.PathLike | None,
    *,
    device: str = "cpu",
    precision: str = "fp32",
    model_config: dict | str | os.PathLike | None = None,
    trust_pickle: bool = False,
    expected_sha256: str | None = None,
) -> OpenCLIPModel:
    """Create an open_clip model from a pretrained tag or a local weights file.

    Parameters
    ----------
    model_name : str
        open_clip architecture name (e.g. ``"ViT-B-32"``).
    pretrained : str, path-like or None
        An open_clip pretrained tag (e.g. ``"openai"``), or a local weights file
        read by :func:`load_checkpoint` (a full CLIP state dict, or one holding
        the image tower, e.g. a fine-tuned image encoder; a classification head
        in the file is ignored). ``None`` gives random weights.
    device : str, default="cpu"
        Torch device of the returned model.
    precision : str, default="fp32"
        open_clip precision of the weights (``"fp32"``, ``"fp16"``, ``"bf16"``).
    model_config : dict or path, default=None
        Registers a custom architecture under ``model_name`` first (see
        :func:`register_model_config`).
    trust_pickle : bool, default=False
        See :func:`load_checkpoint`.
    expected_sha256 : str, default=None
        When given, the weights file must have this SHA-256 (e.g. the one
        recorded when a pickled embedder was fitted); a ValueError otherwise.

    Returns
    -------
    loaded : OpenCLIPModel
        Named tuple ``(model, preprocess, source, sha256)``: the model in eval
        mode, its inference image transform, the tag or absolute file path, and
        the SHA-256 of the weights file (None for random weights, or for a tag
        whose cached file could not be located).

    Examples
    --------
    >>> from skvrf.clip import create_model
    >>> cfg = {"embed_dim": 8, "vision_cfg": {"image_size": 32, "layers": 1,
    ...        "width": 16, "patch_size": 16, "head_width": 8},
    ...        "text_cfg": {"context_length": 8, "vocab_size": 49408,
    ...        "width": 16, "heads": 2, "layers": 1}}
    >>> loaded = create_model("doc-tiny", None, model_config=cfg)
    >>> loaded.sha256 is None, loaded.model.training
    (True, False)
    """
    _, open_clip = require_clip_deps()
    if model_config is not None:
        register_model_config(model_name, model_config)
    is_file = pretrained is not None and os.path.isfile(os.fspath(pretrained))
    if pretrained is not None and not is_file and _looks_like_path(pretrained):
        raise FileNotFoundError(f"Weights file not found: {os.fspath(pretrained)}")
    quiet = _QuietRandomInit()
    logging.getLogger().addFilter(quiet)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=None if (is_file or pretrained is None) else str(pretrained),
            device="cpu",
            precision=precision,
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    sha = None
    source = None
    if is_file:
        source = os.path.abspath(os.fspath(pretrained))
        sha = sha256_file(source)
        _check_sha(source, sha, expected_sha256)
        state_dict = load_checkpoint(source, trust_pickle=trust_pickle)
        try:
            sd, scope = _encoder_state_dict(state_dict, model)
        except ValueError as exc:
            raise ValueError(f"{source} for {model_name!r}: {exc}") from None
        target = model if scope == "full" else model.visual
        if "logit_scale" in sd and sd["logit_scale"].ndim != model.logit_scale.ndim:
            sd["logit_scale"] = sd["logit_scale"].reshape(model.logit_scale.shape)
        target.load_state_dict(sd, strict=True)
        if scope == "visual":
            warnings.warn(
                f"{source} holds image-tower weights only; the text tower of "
                f"{model_name!r} keeps random weights, so only image embeddings "
                "are meaningful.",
                UserWarning,
                stacklevel=2,
            )
    elif pretrained is not None:
        source = str(pretrained)
        sha = _tag_sha256(open_clip, model_name, source)
        if sha is not None:
            _check_sha(source, sha, expected_sha256)
    model = model.to(device).eval()
    return OpenCLIPModel(model, preprocess, source, sha)


def _looks_like_path(pretrained) -> bool:
    text = os.fspath(pretrained)
    return (
        isinstance(pretrained, os.PathLike)
        or "/" in text
        or os.sep in text
        or text.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz"))
    )


def _check_sha(source: str, sha: str, expected: str | None) -> None:
    if expected is not None and sha != expected:
        raise ValueError(
            f"The weights at {source} changed since they were recorded: sha256 is "
            f"{sha}, expected {expected}. Restore the original file, or refit."
        )


def _tag_sha256(open_clip, model_name: str, tag: str) -> str | None:
    """SHA-256 of the cached file of a pretrained tag, when it can be found."""
    try:
        from open_clip.pretrained import download_pretrained, get_pretrained_cfg

        cfg = get_pretrained_cfg(model_name, tag)
        path = download_pretrained(cfg) if cfg else None
        return sha256_file(path) if path and os.path.isfile(path) else None
    except Exception:  # pragma: no cover - needs real tags
        return None
