"""Zero-shot heads from class names and prompt templates (open_clip's helper)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from ._deps import require_clip_deps

__all__ = ["zeroshot_classifier", "template_sets"]


def template_sets() -> dict[str, tuple]:
    """Prompt-template sets shipped by open_clip, by lower-case name.

    Returns
    -------
    sets : dict of str to tuple
        E.g. ``"openai_imagenet"`` -> ``open_clip.zero_shot_metadata.
        OPENAI_IMAGENET_TEMPLATES``.

    Examples
    --------
    >>> from skvrf.clip import template_sets
    >>> sets = template_sets()
    >>> "openai_imagenet" in sets and "simple_imagenet" in sets
    True
    """
    require_clip_deps()
    from open_clip import zero_shot_metadata as meta

    return {
        name[: -len("_TEMPLATES")].lower(): tuple(getattr(meta, name))
        for name in dir(meta)
        if name.endswith("_TEMPLATES")
    }


def _resolve_templates(templates) -> list:
    if isinstance(templates, str):
        sets = template_sets()
        if templates.lower() not in sets:
            raise ValueError(
                f"Unknown template set {templates!r}; open_clip ships "
                f"{sorted(sets)}. Pass a list of format strings (with '{{}}' for "
                "the class name) or a callable for your own."
            )
        return list(sets[templates.lower()])
    if callable(templates):
        return [templates]
    templates = list(templates)
    if not templates:
        raise ValueError("`templates` is empty.")
    for t in templates:
        if isinstance(t, str):
            if "{}" not in t and "{0}" not in t:
                raise ValueError(
                    f"Template {t!r} has no '{{}}' placeholder for the class name."
                )
        elif not callable(t):
            raise TypeError(
                f"Each template must be a format string or a callable, got {t!r}."
            )
    kinds = {isinstance(t, str) for t in templates}
    if len(kinds) > 1:
        # open_clip decides format-vs-call from the first template.
        templates = [t.format if isinstance(t, str) else t for t in templates]
    return templates


def _resolve_classnames(classnames) -> list[str]:
    if isinstance(classnames, str):
        if classnames.lower() != "imagenet":
            raise ValueError(
                f"classnames={classnames!r}: give a list of class prompt texts, "
                "or 'imagenet' for open_clip's bundled ImageNet class names."
            )
        from open_clip import zero_shot_metadata as meta

        return list(meta.IMAGENET_CLASSNAMES)
    classnames = [str(c) for c in classnames]
    if not classnames:
        raise ValueError("`classnames` is empty.")
    return classnames


def zeroshot_classifier(
    model_name: str,
    pretrained: str | os.PathLike | None,
    classnames: Sequence[str] | str,
    *,
    classes=None,
    templates: str | Sequence[str | Callable] | Callable = "openai_imagenet",
    device: str = "auto",
    batch_size: int = 10,
    model=None,
    model_config: dict | str | os.PathLike | None = None,
    verbose: int = 0,
):
    """Build a fitted zero-shot head from class names and prompt templates.

    Each class embedding is the normalised mean of the normalised text
    embeddings of its prompts, computed by
    ``open_clip.build_zero_shot_classifier``.

    Parameters
    ----------
    model_name : str
        open_clip architecture name.
    pretrained : str, path-like or None
        Pretrained tag or weights file (see :func:`create_model`); ignored when
        ``model`` is given.
    classnames : sequence of str or "imagenet"
        Text of each class inserted into the templates; ``"imagenet"`` uses
        ``open_clip.zero_shot_metadata.IMAGENET_CLASSNAMES``.
    classes : array-like of shape (n_classes,), default=None
        Label value of each class; default ``arange(n_classes)``.
    templates : str, sequence, or callable, default="openai_imagenet"
        Format strings with ``{}`` for the class name, callables from class name
        to prompt, or the name of a set open_clip ships (see
        :func:`template_sets`: ``"openai_imagenet"``, ``"simple_imagenet"``).
    device : str, default="auto"
        Torch device when the model is loaded here; ``"auto"`` picks CUDA when
        available.
    batch_size : int, default=10
        Classes encoded per forward pass (each with all its templates).
    model : OpenCLIPTextEmbedder, OpenCLIPImageEmbedder or torch.nn.Module, default=None
        An already loaded model to reuse (an unfitted embedder is fitted); a
        bare open_clip model uses ``open_clip.get_tokenizer(model_name)``.
    model_config : dict or path, default=None
        Custom architecture registered under ``model_name`` before loading.
    verbose : int, default=0
        Progress bar when positive.

    Returns
    -------
    head : skvrf.ZeroShotClassifier
        Fitted; ``logit_scale`` is the model's ``logit_scale.exp()`` (100 when
        the model has none).

    Examples
    --------
    >>> from skvrf.clip import zeroshot_classifier, register_model_config
    >>> _ = register_model_config("doc-tiny", {"embed_dim": 8,
    ...     "vision_cfg": {"image_size": 32, "layers": 1, "width": 16,
    ...                    "patch_size": 16, "head_width": 8},
    ...     "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 16,
    ...                  "heads": 2, "layers": 1}})
    >>> head = zeroshot_classifier("doc-tiny", None, ["cat", "dog"],
    ...                            classes=["c", "d"], templates=["a {}."])
    >>> head.coef_.shape, head.classes_.tolist()
    ((2, 8), ['c', 'd'])
    """
    torch, open_clip = require_clip_deps()
    from .._heads import ZeroShotClassifier
    from ._embedders import _OpenCLIPEmbedder, _resolve_device
    from ._models import create_model, register_model_config

    names = _resolve_classnames(classnames)
    prompts = _resolve_templates(templates)
    if isinstance(model, _OpenCLIPEmbedder):
        if not hasattr(model, "embed_dim_"):
            model.fit()
        model._ensure_model()
        net, model_name = model.model_, model.model_name
    elif model is not None:
        if model_config is not None:
            register_model_config(model_name, model_config)
        net = model
    else:
        dev = _resolve_device(device, torch)
        net = create_model(
            model_name, pretrained, device=str(dev), model_config=model_config
        ).model
    tokenizer = open_clip.get_tokenizer(model_name)
    dev = next(net.parameters()).device
    was_training = net.training
    net.eval()
    try:
        weights = open_clip.build_zero_shot_classifier(
            net,
            tokenizer,
            names,
            prompts,
            num_classes_per_batch=batch_size,
            device=dev,
            use_tqdm=bool(verbose),
        )
    finally:
        net.train(was_training)
    scale = getattr(net, "logit_scale", None)
    scale = float(scale.detach().exp().item()) if scale is not None else 100.0
    emb = weights.T.float().cpu().numpy().astype(np.float64)
    head = ZeroShotClassifier(emb, classes=classes, logit_scale=scale)
    return head.fit(np.zeros((1, emb.shape[1])))
