"""Pure functions of VRF's weighting and mixing.

``w(d)`` maps a distance to the Zero-Shot Failure set to the weight of the
fine-tuned model; the mixes combine the two components' outputs with per-sample
weights.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr, expit, softmax

__all__ = [
    "WEIGHTINGS",
    "dawin_offset",
    "entropies",
    "entropy_coefficients",
    "entropy_weights",
    "grid_counts",
    "linear_weight",
    "mix",
    "mix_log_probabilities",
    "mix_probabilities",
    "score_weights",
    "sigmoid_weight",
    "step_weight",
    "vrf_weights",
]


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


def linear_weight(distances, threshold=1.5, temperature=0.6):
    """Linear ablation of the weight: ``clip(1/2 - (d - a) / (4 b), 0, 1)``.

    The straight line through ``(a, 1/2)`` with the sigmoid's slope there, clipped
    to [0, 1] (the paper's "linear" shape ablation).

    Parameters
    ----------
    distances : array-like
        Distances ``d(x)``.
    threshold : float, default=1.5
        ``a``, where the weight is one half.
    temperature : float, default=0.6
        ``b`` (> 0); the weight falls from 1 to 0 over ``4 b``.

    Returns
    -------
    weights : ndarray
        Weights in [0, 1].

    Examples
    --------
    >>> from skvrf._weighting import linear_weight
    >>> linear_weight([0.0, 1.2, 1.5, 1.8, 4.0]).round(4).tolist()
    [1.0, 0.625, 0.5, 0.375, 0.0]
    """
    d = np.asarray(distances, dtype=np.float64)
    return np.clip(0.5 - (d - threshold) / (4.0 * temperature), 0.0, 1.0)


def step_weight(distances, threshold=1.5, temperature=0.6):
    """Hard switch (selective prediction): 1 where ``d < a``, else 0.

    ``temperature`` is accepted for a uniform signature and ignored.

    Parameters
    ----------
    distances : array-like
        Distances ``d(x)``.
    threshold : float, default=1.5
        ``a``.
    temperature : float, default=0.6
        Ignored.

    Returns
    -------
    weights : ndarray
        Zeros and ones.

    Examples
    --------
    >>> from skvrf._weighting import step_weight
    >>> step_weight([1.0, 1.5, 2.0]).tolist()
    [1.0, 0.0, 0.0]
    """
    d = np.asarray(distances, dtype=np.float64)
    return (d < threshold).astype(np.float64)


WEIGHTINGS = {"sigmoid": sigmoid_weight, "linear": linear_weight, "step": step_weight}


def vrf_weights(distances, threshold, temperature, weighting="sigmoid"):
    """Weight of the fine-tuned component for each distance, by shape name.

    Parameters
    ----------
    distances : array-like
        Distances ``d(x)``; broadcasting with ``threshold`` and ``temperature``
        is allowed (the CV search scores whole grids at once).
    threshold, temperature : float or array-like
        ``a`` and ``b``.
    weighting : {"sigmoid", "linear", "step"}, default="sigmoid"
        The shape.

    Returns
    -------
    weights : ndarray
        Weights in [0, 1].
    """
    return WEIGHTINGS[weighting](distances, threshold, temperature)


def score_weights(scores, threshold, scale=1.0, weighting="step"):
    """Weight of the fine-tuned component from an in-distribution score.

    Selective prediction: ``w = 1[S >= lambda]`` (``"step"``), or its soft
    version ``w = sigmoid((S - lambda) / scale)`` (``"sigmoid"``). Unlike a
    distance, a higher score means more in-distribution, so the weight rises
    with it.

    Parameters
    ----------
    scores : array-like
        Scores ``S(x)``.
    threshold : float
        ``lambda``.
    scale : float, default=1.0
        Softness of the sigmoid (> 0); ignored by the step.
    weighting : {"step", "sigmoid"}, default="step"
        The shape.

    Returns
    -------
    weights : ndarray
        Weights in [0, 1].

    Examples
    --------
    >>> from skvrf._weighting import score_weights
    >>> score_weights([0.5, 1.0, 2.0], 1.0).tolist()
    [0.0, 1.0, 1.0]
    >>> score_weights([1.0], 1.0, 0.5, "sigmoid").tolist()
    [0.5]
    """
    s = np.asarray(scores, dtype=np.float64)
    if weighting == "step":
        return (s >= threshold).astype(np.float64)
    return expit((s - threshold) / scale)


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
    w = _per_row(weights)
    return w * proba_finetuned + (1.0 - w) * proba_zeroshot


def _per_row(weights):
    """Weights as a float64 array, a 1-D one as a column (one weight a row)."""
    w = np.asarray(weights, dtype=np.float64)
    return w[:, None] if w.ndim == 1 else w


# log(0) is taken as log(tiny) = -708: a weight of 0 times it stays finite
_TINY = np.finfo(np.float64).tiny


def mix_log_probabilities(proba_zeroshot, proba_finetuned, weights):
    """Per-sample mix in logit space: ``softmax(w log p_ft + (1 - w) log p_zs)``.

    Mixing calibrated log-probabilities equals mixing the temperature-scaled logits
    (they differ by a per-row constant, which the softmax removes). A class that a
    component does not know (probability 0) keeps a vanishing probability unless
    that component has weight 0.

    Parameters
    ----------
    proba_zeroshot, proba_finetuned, weights
        As in :func:`mix_probabilities`.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The mixed probabilities (each row sums to 1).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._weighting import mix_log_probabilities
    >>> p = mix_log_probabilities(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]]), [0.5])
    >>> p.round(4).tolist()
    [[0.75, 0.25]]
    """
    w = _per_row(weights)
    log_zs = np.log(np.maximum(proba_zeroshot, _TINY))
    log_ft = np.log(np.maximum(proba_finetuned, _TINY))
    return softmax(w * log_ft + (1.0 - w) * log_zs, axis=-1)


def mix(proba_zeroshot, proba_finetuned, weights, mixing="probability"):
    """Mix two components' aligned probabilities with per-sample weights.

    Parameters
    ----------
    proba_zeroshot, proba_finetuned, weights
        As in :func:`mix_probabilities`; ``weights`` may also broadcast against
        the probabilities (the CV search mixes whole grids at once).
    mixing : {"probability", "logit"}, default="probability"
        :func:`mix_probabilities` or :func:`mix_log_probabilities`.

    Returns
    -------
    proba : ndarray of shape (n_samples, n_classes)
        The mixed probabilities.
    """
    if mixing == "logit":
        return mix_log_probabilities(proba_zeroshot, proba_finetuned, weights)
    return mix_probabilities(proba_zeroshot, proba_finetuned, weights)


def entropies(proba):
    """Shannon entropy (natural log) of each row of class probabilities."""
    # sum of entr(p) = -p log p (0 at p = 0)
    return entr(np.asarray(proba, dtype=np.float64)).sum(axis=1)


class EntropyMoments:
    """Count, mean and sum of squared deviations of both components' entropies,
    accumulated chunk by chunk (Chan et al.'s pairwise update), for
    :func:`dawin_offset` over a batch that arrives in chunks."""

    def __init__(self):
        self.n = 0
        self.mean = np.zeros(2)
        self.m2 = np.zeros(2)

    def add(self, h_zeroshot, h_finetuned):
        h = np.column_stack([h_zeroshot, h_finetuned]).astype(np.float64)
        n_b = h.shape[0]
        if n_b == 0:
            return self
        mean_b = h.mean(axis=0)
        m2_b = ((h - mean_b) ** 2).sum(axis=0)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * n_b / n
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / n
        self.n = n
        return self

    def offset(self):
        """``(c, r)`` of :func:`dawin_offset` from the accumulated moments."""
        std = np.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else np.zeros(2)
        return _offset_from_moments(self.mean, std)


def _offset_from_moments(mean, std):
    m_zs, m_ft = (float(v) for v in mean)
    s_zs, s_ft = (float(v) for v in std)
    cv_zs = s_zs / m_zs if m_zs > 0 else 0.0
    cv_ft = s_ft / m_ft if m_ft > 0 else 0.0
    c = (cv_zs + cv_ft) / 2.0
    r = m_zs / (m_zs + m_ft) if m_zs + m_ft > 0 else 0.5
    return c, r


def dawin_offset(entropy_zeroshot, entropy_finetuned):
    """DaWin's offset adjustment ``(c, r)`` from a batch's entropies.

    The DaWin authors' main results (``--offset-adjustment`` in their public
    commands) shift every coefficient by statistics of the unlabelled batch
    being predicted (each test set as a whole):

    ``c = (s_zs / m_zs + s_ft / m_ft) / 2``, the mean coefficient of variation
    of the two models' entropies (``m`` the mean, ``s`` the standard deviation
    with ``ddof=1``, as ``torch.std``), and ``r = m_zs / (m_zs + m_ft)``;
    the coefficient becomes
    ``lambda(x) = (exp(-H_ft) + c r) / (exp(-H_zs) + exp(-H_ft) + c)``
    (their ``c / w`` with ``w = (m_zs + m_ft) / m_zs`` is ``c r``). It is the
    plain coefficient pulled towards the batch-level ratio ``r`` with weight
    ``c / (exp(-H_zs) + exp(-H_ft) + c)``: the more uncertain the zero-shot
    model is on the batch, the more the fine-tuned model weighs everywhere.

    Parameters
    ----------
    entropy_zeroshot, entropy_finetuned : array-like of shape (n_samples,)
        Each component's entropy on every row of the batch.

    Returns
    -------
    c, r : float
        The offset's weight and ratio. One row (no standard deviation) gives
        ``c = 0``, no adjustment; a mean entropy of 0 contributes a zero
        coefficient of variation.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._weighting import dawin_offset
    >>> c, r = dawin_offset(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    >>> round(c, 4), r  # (sqrt(2) / 2 + 0) / 2, 2 / (2 + 1)
    (0.3536, 0.6666666666666666)
    """
    h = np.column_stack([entropy_zeroshot, entropy_finetuned]).astype(np.float64)
    std = h.std(axis=0, ddof=1) if h.shape[0] > 1 else np.zeros(2)
    return _offset_from_moments(h.mean(axis=0), std)


def entropy_weights(proba_zeroshot, proba_finetuned, offset=None):
    """DaWin's per-sample weight of the fine-tuned model from prediction entropies.

    ``lambda(x) = exp(-H(p_ft)) / (exp(-H(p_zs)) + exp(-H(p_ft)))`` with ``H`` the
    Shannon entropy (natural log): the more confident component weighs more
    (Oh et al., "DaWin: Training-free Dynamic Weight Interpolation for Robust
    Adaptation", ICLR 2025; here in output space). With ``offset=(c, r)``
    (:func:`dawin_offset`), the authors' offset adjustment
    ``(exp(-H_ft) + c r) / (exp(-H_zs) + exp(-H_ft) + c)``.

    Parameters
    ----------
    proba_zeroshot, proba_finetuned : ndarray of shape (n_samples, n_classes)
        Aligned class probabilities.
    offset : tuple of float, default=None
        ``(c, r)`` of the offset adjustment; None: none.

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        Values in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._weighting import entropy_weights
    >>> flat, sure = np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])
    >>> entropy_weights(flat, sure).round(4).tolist()  # 1 / (1 + exp(-log 2))
    [0.6667]
    """
    return entropy_coefficients(
        entropies(proba_zeroshot), entropies(proba_finetuned), offset
    )


def entropy_coefficients(h_zs, h_ft, offset=None):
    """:func:`entropy_weights` from the two components' entropies."""
    h_zs = np.asarray(h_zs, dtype=np.float64)
    h_ft = np.asarray(h_ft, dtype=np.float64)
    if offset is None:
        # exp(-H_ft) / (exp(-H_zs) + exp(-H_ft)) == sigmoid(H_zs - H_ft)
        return expit(h_zs - h_ft)
    c, r = offset
    # exp(-H) lies in [1 / n_classes, 1]: no overflow or underflow
    e_zs, e_ft = np.exp(-h_zs), np.exp(-h_ft)
    return (e_ft + c * r) / (e_zs + e_ft + c)


def grid_counts(
    proba_zeroshot,
    proba_finetuned,
    distances,
    target,
    thresholds,
    temperatures,
    weighting="sigmoid",
    mixing="probability",
    sample_weight=None,
):
    """Correct predictions and summed weights of a whole grid of VRF mixes.

    For every column of ``distances`` (one per ``k``), threshold and
    temperature at once (broadcast), the number of rows whose mixed
    probabilities peak at ``target`` and the sum of the rows' weights of the
    fine-tuned component. Memory: ``n_thresholds * n_temperatures * n_samples
    * n_classes`` float64 values and their temporaries.

    Parameters
    ----------
    proba_zeroshot, proba_finetuned : ndarray of shape (n_samples, n_classes)
        Aligned class probabilities of each component.
    distances : ndarray of shape (n_samples, n_ks)
        Distances ``d(x)``, one column per ``k``.
    target : ndarray of shape (n_samples,)
        Column of each row's true class (-1: a class of no column, never
        correct).
    thresholds, temperatures : array-like of shape (n_thresholds,) and \
(n_temperatures,)
        The grid's values of ``a`` and ``b``.
    weighting : {"sigmoid", "linear", "step"}, default="sigmoid"
        The shape of the weight (:func:`vrf_weights`).
    mixing : {"probability", "logit"}, default="probability"
        The mix (:func:`mix`).
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the rows in both sums (None: all 1).

    Returns
    -------
    correct, weight : ndarray of shape (n_ks, n_thresholds, n_temperatures)
        Rows predicted right, and the sum of the weights (each row counted
        with its sample weight).

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._weighting import grid_counts
    >>> p_zs, p_ft = np.array([[0.9, 0.1]]), np.array([[0.2, 0.8]])
    >>> correct, weight = grid_counts(p_zs, p_ft, [[0.5]], [1], [0.0, 1.0], [0.1])
    >>> correct.tolist(), weight.round(4).tolist()
    ([[[0.0], [1.0]]], [[[0.0067], [0.9933]]])
    """
    thr = np.asarray(thresholds, dtype=np.float64)[:, None, None]
    temp = np.asarray(temperatures, dtype=np.float64)[None, :, None]
    distances = np.asarray(distances, dtype=np.float64)
    correct = np.zeros((distances.shape[1], thr.size, temp.size))
    weight = np.zeros_like(correct)
    for j in range(distances.shape[1]):
        w = vrf_weights(distances[None, None, :, j], thr, temp, weighting)
        proba = mix(proba_zeroshot, proba_finetuned, w[..., None], mixing)
        right = proba.argmax(axis=-1) == target
        if sample_weight is None:
            correct[j] = right.sum(axis=-1)
            weight[j] = w.sum(axis=-1)
        else:
            correct[j] = right @ sample_weight
            weight[j] = w @ sample_weight
    return correct, weight
