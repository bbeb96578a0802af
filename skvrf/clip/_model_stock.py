"""Model Stock: a layer-wise merge of fine-tuned models toward the pre-trained one."""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["model_stock", "model_stock_ratio"]


def model_stock_ratio(cosine, n_models=2):
    """Model Stock's interpolation ratio ``t = N cos / (1 + (N - 1) cos)``.

    ``cos`` is the (mean pairwise) cosine of the angle between the fine-tuned
    models' differences to the pre-trained weights, layer by layer; the merged
    layer is ``t * mean(w_ft) + (1 - t) * w_0`` (Jang, Yun & Han, ECCV 2024,
    Eq. 7: for two models, ``t = 2 cos / (1 + cos)``). Fine-tuned models that
    agree (``cos`` = 1) are averaged as they are (``t`` = 1); orthogonal
    differences (``cos`` = 0) fall back to the pre-trained layer (``t`` = 0).
    A negative cosine, which the paper does not meet, also gives ``t`` = 0.

    Parameters
    ----------
    cosine : float or ndarray
        Cosine(s) in [-1, 1].
    n_models : int, default=2
        Number of fine-tuned models ``N``.

    Returns
    -------
    t : float or ndarray
        Ratio(s) in [0, 1].

    Examples
    --------
    >>> from skvrf.clip._model_stock import model_stock_ratio
    >>> float(model_stock_ratio(0.5))  # 2 * 0.5 / 1.5
    0.6666666666666666
    """
    c = np.clip(np.asarray(cosine, dtype=np.float64), 0.0, 1.0)
    t = n_models * c / (1.0 + (n_models - 1) * c)
    return float(t) if t.ndim == 0 else t


def _mean_pairwise_cosine(deltas):
    """Mean cosine over the pairs of flattened deltas; 0 when one is all zero."""
    flat = [d.reshape(-1) for d in deltas]
    cosines = []
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            denom = np.linalg.norm(flat[i]) * np.linalg.norm(flat[j])
            cosines.append(float(flat[i] @ flat[j] / denom) if denom > 0 else 0.0)
    return float(np.mean(cosines))


def _merge_arrays(w0, ws):
    """One layer: ``(merged, t)`` from the pre-trained and fine-tuned arrays."""
    deltas = [w - w0 for w in ws]
    t = model_stock_ratio(_mean_pairwise_cosine(deltas), len(ws))
    return np.asarray(t * np.mean(ws, axis=0) + (1.0 - t) * w0), t


def _text_tower_keys(module, keys):
    """State-dict keys outside the image tower of a CLIP model (text tower,
    ``logit_scale``, ``logit_bias``); none for a module without ``.visual``."""
    if not hasattr(module, "visual"):
        return set()
    return {k for k in keys if not k.startswith("visual.")}


def _merge_modules(pretrained, finetuned, text_tower="merge"):
    import torch

    from ._wise_ft import _check_same_weights

    sd0 = pretrained.state_dict()
    sds = [m.state_dict() for m in finetuned]
    for i, sd in enumerate(sds):
        _check_same_weights(
            sd0, sd, "model_stock", "the pre-trained model", f"fine-tuned model {i}"
        )
    averaged = _text_tower_keys(pretrained, sd0) if text_tower == "average" else set()
    merged, ratios = {}, {}
    with torch.no_grad():
        for key, w0 in sd0.items():
            ws = [sd[key] for sd in sds]
            if not all(torch.is_floating_point(w) for w in (w0, *ws)):
                merged[key] = ws[0].detach().clone()  # integer buffers: the first's
                continue
            arrays = [w.detach().cpu().double().numpy() for w in ws]
            if key in averaged:  # the fine-tuned average, t = 1
                value, t = np.asarray(np.mean(arrays, axis=0)), 1.0
            else:
                value, t = _merge_arrays(w0.detach().cpu().double().numpy(), arrays)
            merged[key] = torch.from_numpy(value).to(ws[0].dtype).to(ws[0].device)
            ratios[key] = t
    model = copy.deepcopy(finetuned[0])
    model.load_state_dict(merged, strict=True)
    return model, ratios


def _merge_heads(pretrained, finetuned):
    from .._heads import LinearHeadClassifier
    from ._wise_ft import _head_parts

    c0, b0, k0, n0 = _head_parts(pretrained, "pretrained_model")
    parts = [_head_parts(h, f"finetuned_models[{i}]") for i, h in enumerate(finetuned)]
    for i, (c, _, k, n) in enumerate(parts):
        if c.shape != c0.shape or not np.array_equal(k, k0) or n != n0:
            raise ValueError(
                f"model_stock: head {i} differs from the pre-trained head in the "
                "shape of its weights, its classes or normalize_input; the heads "
                "must share all three."
            )
    coef, t_coef = _merge_arrays(c0, [p[0] for p in parts])
    intercept, t_int = _merge_arrays(b0, [p[1] for p in parts])
    head = LinearHeadClassifier(coef, intercept, classes=k0, normalize_input=n0)
    return head.fit(np.zeros((1, coef.shape[1]))), {
        "coef": t_coef,
        "intercept": t_int,
    }


def model_stock(
    pretrained_model, finetuned_models, *, text_tower="merge", return_ratios=False
):
    """Merge fine-tuned models layer by layer toward the pre-trained one.

    Model Stock (Jang, Yun & Han, "Model Stock: All we need is just a few
    fine-tuned models", ECCV 2024): for every weight tensor (a "layer"), with
    ``w_0`` the pre-trained weights and ``w_1 .. w_N`` those of ``N >= 2``
    models fine-tuned from it (different seeds or augmentations),

    ``cos = mean over pairs of cos(w_i - w_0, w_j - w_0)``,
    ``t = N cos / (1 + (N - 1) cos)``,
    ``w = t * mean(w_1 .. w_N) + (1 - t) * w_0``.

    The closer the fine-tuned models agree on a layer, the more of their
    average is kept; where they disagree, the layer is pulled toward the
    pre-trained weights, which approximates the centre of the fine-tuned
    weights' distribution with only a few models.

    Two kinds of input, as in :func:`wise_ft`:

    - torch modules (open_clip models, image towers, or :class:`OpenCLIPModel`
      tuples) of one architecture: every floating-point tensor of the state
      dict is a layer; integer buffers come from the first fine-tuned model.
      The result is a new module; the inputs are left untouched.
    - fixed linear heads over the same features and classes
      (:class:`skvrf.LinearHeadClassifier`, :class:`skvrf.ZeroShotClassifier`
      as the pre-trained head of a CLIP model): ``coef`` and ``intercept`` are
      the layers; the result is a fitted :class:`skvrf.LinearHeadClassifier`.

    The text tower of a whole CLIP model (every key outside ``visual.``: the
    text transformer, ``token_embedding``, ``positional_embedding``,
    ``ln_final``, ``text_projection``, ``logit_scale``) is not used by the image
    classifier. ``text_tower`` says what happens to it:

    - ``"merge"`` (default): Model Stock's rule, like every other layer, which
      is what the paper's formula says. For models fine-tuned with a frozen
      text tower (WiSE-FT-style image fine-tuning), the fine-tuned text
      weights equal the pre-trained ones and both options give those same
      weights; they differ only when the text tower was fine-tuned too
      (e.g. contrastive fine-tuning), where the merged text tower follows the
      same layer-wise rule as the image tower.
    - ``"average"``: the fine-tuned models' plain average (``t = 1``), as the
      authors' reference notebook does: it leaves these keys (its six:
      ``positional_embedding``, ``text_projection``, ``logit_scale``,
      ``token_embedding.weight``, ``ln_final.weight``, ``ln_final.bias``; its
      checkpoints have no text transformer) at the average of the fine-tuned
      weights. Use it to reproduce the authors' merged weights.

    Image towers alone and linear heads have no text tower (the option
    changes nothing). The notebook also lets a negative cosine give a
    negative ``t``; skvrf clips it to 0 (see :func:`model_stock_ratio`).

    Parameters
    ----------
    pretrained_model : torch.nn.Module, OpenCLIPModel or linear head
        The pre-trained (zero-shot) model.
    finetuned_models : sequence of the same kind
        At least two models fine-tuned from it.
    text_tower : {"merge", "average"}, default="merge"
        Merge a CLIP model's text-tower keys by Model Stock's rule, or keep the
        fine-tuned models' average (the reference notebook); see above.
    return_ratios : bool, default=False
        Also return each layer's ``t``.

    Returns
    -------
    model : torch.nn.Module, OpenCLIPModel or LinearHeadClassifier
        The merged model (an OpenCLIPModel keeps the first fine-tuned model's
        preprocessing and has no source).
    ratios : dict
        ``{layer name: t}``, with ``return_ratios=True`` (1.0 for the
        averaged text-tower keys).

    References
    ----------
    .. [1] D.-H. Jang, S. Yun and D. Han, "Model Stock: All we need is just a
       few fine-tuned models", ECCV 2024. arXiv:2403.19522.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import LinearHeadClassifier
    >>> from skvrf.clip import model_stock
    >>> w0 = LinearHeadClassifier(np.zeros((2, 2)))
    >>> w1 = LinearHeadClassifier([[1.0, 0.0], [0.0, 1.0]])
    >>> w2 = LinearHeadClassifier([[1.0, 1.0], [0.0, 1.0]])  # cos = 2 / sqrt(6)
    >>> merged, t = model_stock(w0, [w1, w2], return_ratios=True)
    >>> round(t["coef"], 4), merged.coef_.round(4).tolist()
    (0.899, [[0.899, 0.4495], [0.0, 0.899]])
    """
    if text_tower not in ("merge", "average"):
        raise ValueError(
            f"model_stock: text_tower must be 'merge' or 'average', got {text_tower!r}."
        )
    finetuned = list(finetuned_models)
    if len(finetuned) < 2:
        raise ValueError(
            "model_stock needs at least two fine-tuned models (it measures the "
            f"angle between their updates); got {len(finetuned)}."
        )
    from ._models import OpenCLIPModel

    if isinstance(finetuned[0], OpenCLIPModel):
        pre = (
            pretrained_model.model
            if isinstance(pretrained_model, OpenCLIPModel)
            else pretrained_model
        )
        inner = [m.model if isinstance(m, OpenCLIPModel) else m for m in finetuned]
        merged, ratios = model_stock(
            pre, inner, text_tower=text_tower, return_ratios=True
        )
        result = OpenCLIPModel(merged, finetuned[0].preprocess, None, None)
        return (result, ratios) if return_ratios else result
    if isinstance(pretrained_model, OpenCLIPModel):
        pretrained_model = pretrained_model.model
    finetuned = [m.model if isinstance(m, OpenCLIPModel) else m for m in finetuned]

    import torch

    is_module = [isinstance(m, torch.nn.Module) for m in (pretrained_model, *finetuned)]
    if all(is_module):
        merged, ratios = _merge_modules(pretrained_model, finetuned, text_tower)
    elif any(is_module):
        raise TypeError(
            "model_stock: give torch modules or linear heads, not a mix of both."
        )
    else:
        merged, ratios = _merge_heads(pretrained_model, finetuned)
    return (merged, ratios) if return_ratios else merged
