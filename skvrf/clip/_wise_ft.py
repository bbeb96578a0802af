"""WiSE-FT: weight-space interpolation of a zero-shot and a fine-tuned model."""

from __future__ import annotations

import copy
from numbers import Real

import numpy as np

__all__ = ["wise_ft"]


def _head_parts(head, owner):
    """(coef, intercept, classes, normalize_input) of a fixed linear head."""
    from sklearn.frozen import FrozenEstimator

    from .._heads import LinearHeadClassifier, ZeroShotClassifier

    if isinstance(head, FrozenEstimator):
        head = head.estimator
    if isinstance(head, ZeroShotClassifier):
        coef, intercept, classes = head._validate_head()
        return coef, intercept, classes, True
    if isinstance(head, LinearHeadClassifier):
        coef, intercept, classes = head._validate_head()
        return coef, intercept, classes, bool(head.normalize_input)
    raise TypeError(
        f"wise_ft: {owner} must be a ZeroShotClassifier or LinearHeadClassifier "
        f"(or both torch modules); got {type(head).__name__}."
    )


def _interpolate_heads(zs, ft, alpha):
    from .._heads import LinearHeadClassifier

    c0, b0, k0, n0 = _head_parts(zs, "zeroshot_model")
    c1, b1, k1, n1 = _head_parts(ft, "finetuned_model")
    if c0.shape != c1.shape:
        raise ValueError(
            f"wise_ft: the heads' weights differ in shape: {c0.shape} (zero-shot) "
            f"vs {c1.shape} (fine-tuned)."
        )
    if k0.shape != k1.shape or not np.array_equal(k0, k1):
        raise ValueError(
            "wise_ft: the heads' classes differ (same classes in the same order "
            f"are needed): {k0[:5].tolist()} vs {k1[:5].tolist()}."
        )
    if n0 != n1:
        raise ValueError(
            "wise_ft: one head L2-normalises its input and the other does not "
            "(normalize_input); their weights do not live in the same space."
        )
    head = LinearHeadClassifier(
        (1 - alpha) * c0 + alpha * c1,
        (1 - alpha) * b0 + alpha * b1,
        classes=k1,
        normalize_input=n1,
    )
    return head.fit(np.zeros((1, c1.shape[1])))


def _check_same_weights(sd0, sd1, owner, name0, name1):
    """Raise unless two state dicts have the same weight names and shapes.

    ``owner`` (e.g. ``"wise_ft"``) starts the message; ``name0`` and ``name1``
    name the models (e.g. ``"the zero-shot model"``).
    """
    if set(sd0) != set(sd1):
        only0 = sorted(set(sd0) - set(sd1))
        only1 = sorted(set(sd1) - set(sd0))
        raise ValueError(
            f"{owner}: the models' weights have different names (different "
            f"architectures?): only in {name0} {only0[:5]}"
            f"{' ...' if len(only0) > 5 else ''}; only in {name1} "
            f"{only1[:5]}{' ...' if len(only1) > 5 else ''}."
        )
    shapes = [k for k in sd1 if sd0[k].shape != sd1[k].shape]
    if shapes:
        k = shapes[0]
        raise ValueError(
            f"{owner}: {len(shapes)} weights differ in shape, e.g. {k!r}: "
            f"{tuple(sd0[k].shape)} ({name0}) vs {tuple(sd1[k].shape)} ({name1})."
        )


def _interpolate_modules(zs, ft, alpha):
    import torch

    sd0, sd1 = zs.state_dict(), ft.state_dict()
    _check_same_weights(
        sd0, sd1, "wise_ft", "the zero-shot model", "the fine-tuned model"
    )
    merged = {}
    with torch.no_grad():
        for key, w1 in sd1.items():
            w0 = sd0[key]
            if torch.is_floating_point(w1) and torch.is_floating_point(w0):
                mixed = (1 - alpha) * w0.detach().double().to(w1.device) + (
                    alpha * w1.detach().double()
                )
                merged[key] = mixed.to(w1.dtype)
            else:  # integer buffers (e.g. counters, token ids): fine-tuned's
                merged[key] = w1.detach().clone()
    model = copy.deepcopy(ft)
    model.load_state_dict(merged, strict=True)
    return model


def wise_ft(zeroshot_model, finetuned_model, alpha):
    """Interpolate two models in weight space (WiSE-FT).

    ``theta = (1 - alpha) * theta_zs + alpha * theta_ft`` for every floating
    point weight (Wortsman et al., "Robust fine-tuning of zero-shot models",
    CVPR 2022). ``alpha=0`` gives the zero-shot model, ``alpha=1`` the
    fine-tuned one; VRF's paper compares against alpha chosen on ID validation
    accuracy over ``{0, 0.1, ..., 1}``.

    Two kinds of input are accepted:

    - two torch modules of the same architecture (e.g. open_clip models, or
      :class:`OpenCLIPModel` tuples): same weight names and shapes, else a
      ValueError naming the mismatch. The result is a new module (a deep copy of
      the fine-tuned one, so integer buffers come from it); the inputs are left
      untouched.
    - two fixed linear heads over the same features and classes:
      :class:`skvrf.LinearHeadClassifier` and/or
      :class:`skvrf.ZeroShotClassifier` (a zero-shot head is first written as a
      linear head, ``coef = logit_scale * normalised class embeddings``,
      ``intercept = 0``, over normalised input). The result is a fitted
      :class:`skvrf.LinearHeadClassifier`.

    For an end-to-end fine-tuned CLIP, interpolate the image encoders with
    this function, embed with the result, and interpolate the heads too.

    Parameters
    ----------
    zeroshot_model : torch.nn.Module, OpenCLIPModel or linear head
        The zero-shot model.
    finetuned_model : torch.nn.Module, OpenCLIPModel or linear head
        The fine-tuned model, of the same architecture / shape.
    alpha : float
        Weight of the fine-tuned model, in [0, 1].

    Returns
    -------
    model : torch.nn.Module, OpenCLIPModel or LinearHeadClassifier
        The interpolated model (of the fine-tuned model's kind; an
        OpenCLIPModel keeps the fine-tuned preprocessing and has no source).

    References
    ----------
    .. [1] M. Wortsman, G. Ilharco, J. W. Kim, M. Li, S. Kornblith, R. Roelofs,
       R. Gontijo-Lopes, H. Hajishirzi, A. Farhadi, H. Namkoong and L. Schmidt,
       "Robust fine-tuning of zero-shot models", CVPR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf import LinearHeadClassifier, ZeroShotClassifier
    >>> from skvrf.clip import wise_ft
    >>> zs = ZeroShotClassifier(np.eye(2), logit_scale=10.0)
    >>> ft = LinearHeadClassifier([[2.0, 0.0], [0.0, 4.0]], [0.0, 1.0])
    >>> wise_ft(zs, ft, 0.5).coef_
    array([[6., 0.],
           [0., 7.]])
    """
    if isinstance(alpha, bool) or not isinstance(alpha, Real):
        raise TypeError(f"wise_ft: alpha must be a real number, got {alpha!r}.")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"wise_ft: alpha must be in [0, 1], got {alpha}.")
    from ._models import OpenCLIPModel

    if isinstance(finetuned_model, OpenCLIPModel):
        zs = (
            zeroshot_model.model
            if isinstance(zeroshot_model, OpenCLIPModel)
            else zeroshot_model
        )
        merged = wise_ft(zs, finetuned_model.model, alpha)
        return OpenCLIPModel(merged, finetuned_model.preprocess, None, None)
    if isinstance(zeroshot_model, OpenCLIPModel):
        zeroshot_model = zeroshot_model.model

    import torch

    is_module = [
        isinstance(m, torch.nn.Module) for m in (zeroshot_model, finetuned_model)
    ]
    if all(is_module):
        return _interpolate_modules(zeroshot_model, finetuned_model, alpha)
    if any(is_module):
        raise TypeError(
            "wise_ft: give two torch modules or two linear heads, not one of each."
        )
    return _interpolate_heads(zeroshot_model, finetuned_model, alpha)
