"""Pure functions of VRF's weighting and mixing.

``w(d)`` maps a distance to the Zero-Shot Failure set to the weight of the
fine-tuned model; the mixes combine the two components' outputs with per-sample
weights.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

__all__ = ["sigmoid_weight", "mix_probabilities"]


def sigmoid_weight(distances, threshold=1.5, temperature=0.6):
    """VRF's weight of the fine-tuned model, ``sigmoid(-(d - a) / b)``.

    Parameters
    ----------
    distances : array-like
        Distances ``d(x)`` to the k-th nearest Zero-Shot Failure embedding
        (squared L2 between unit vectors, in [0, 4]).
    threshold : float, default=1.5
        The distance ``a`` at which both components weigh one half.
    temperature : float, default=0.6
        The softness ``b`` (> 0) of the switch.

    Returns
    -------
    weights : ndarray
        Weights in [0, 1], decreasing with the distance.

    Examples
    --------
    >>> from skvrf._weighting import sigmoid_weight
    >>> sigmoid_weight([0.0, 1.5, 4.0]).round(4).tolist()
    [0.9241, 0.5, 0.0153]
    """
    d = np.asarray(distances, dtype=np.float64)
    return expit(-(d - threshold) / temperature)


def mix_probabilities(proba_zeroshot, proba_finetuned, weights):
    """Per-sample convex mix ``w * p_ft + (1 - w) * p_zs``.

    Parameters
    ----------
    proba_zeroshot, proba_finetuned : ndarray of shape (n_samples, n_classes)
        Aligned class probabilities of each component.
    weights : array-like of shape (n_samples,) or scalar
        Weight of the fine-tuned component.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The mixed probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._weighting import mix_probabilities
    >>> mix_probabilities(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), [0.25])
    array([[0.75, 0.25]])
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    return w * proba_finetuned + (1.0 - w) * proba_zeroshot
