"""DaWin: sample-wise weight-space interpolation of a zero-shot and a fine-tuned
open_clip model, with its mixture-model grouping (Oh et al., ICLR 2025)."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import NamedTuple

import numpy as np
from scipy.special import betaln, logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

__all__ = ["BetaMixture", "DaWinResult", "dawin"]

_EPS = 1e-6


# -------------------------------------------------------- the mixture model
class BetaMixture:
    """A mixture of Beta distributions on (0, 1), fitted by EM.

    DaWin groups the per-sample coefficients with such a mixture so that only
    one interpolated model per component is run. The E step is exact; the M
    step matches each component's weighted mean ``m`` and variance ``v``
    (method of moments: ``a = m phi``, ``b = (1 - m) phi``, ``phi = m (1 - m) /
    v - 1``, with ``v`` capped at ``m (1 - m) / 4`` so that ``a, b > 0``).
    EM stops when the mean log-likelihood improves by less than ``tol``, or
    after ``max_iter`` iterations, with a
    :class:`~sklearn.exceptions.ConvergenceWarning`.

    Two initialisations:

    - ``"quantiles"`` (default, skvrf's): deterministic, the sorted values cut
      into ``n_components`` equal-count groups, one start; with the defaults
      ``tol=1e-8``, ``max_iter=500``.
    - ``"kmeans"`` (the DaWin authors'): hard groups from a one-dimensional
      :class:`~sklearn.cluster.KMeans` (``n_init=1``, seeded
      ``random_state + i`` for the ``i``-th start), ``n_init`` starts, the one
      of largest final mean log-likelihood kept. The authors' settings are
      ``n_init=3``, ``tol=1e-4``, ``max_iter=1000``, ``random_state=1``
      (``BetaMixture(3, init="kmeans", n_init=3, tol=1e-4, max_iter=1000,
      random_state=1)``, or ``dawin(..., mixture="kmeans")``).

    The two can end in different local optima: on one synthetic set the
    groups' coefficients differed by up to 0.13. The authors also add
    ``1e-10``-sized terms to variances and counts, which this class does not
    (a relative change of about ``1e-8`` in ``phi``, none in the means).

    Parameters
    ----------
    n_components : int, default=3
        Number of Beta components (fewer when there are fewer distinct values).
    init : {"quantiles", "kmeans"}, default="quantiles"
        How the responsibilities start (see above).
    n_init : int, default=1
        Starts with ``init="kmeans"`` (``"quantiles"`` is deterministic: one).
    max_iter : int, default=500
        EM iterations at most, per start.
    tol : float, default=1e-8
        Stop when the mean log-likelihood improves by less.
    random_state : int, RandomState instance or None, default=None
        Seeds of KMeans with ``init="kmeans"``: an int ``s`` seeds the ``i``-th
        start with ``s + i`` (the authors' convention); otherwise the seeds are
        drawn from it.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components_,)
        Mixture weights.
    a_, b_ : ndarray of shape (n_components_,)
        Beta parameters of each component.
    means_ : ndarray of shape (n_components_,)
        ``a / (a + b)``, each component's mean (DaWin's coefficient of its
        group), in increasing order.
    n_iter_ : int
        EM iterations run (by the kept start).
    converged_ : bool
        Whether the kept start stopped by ``tol`` (else at ``max_iter``).
    lower_bound_ : float
        Mean log-likelihood of the kept start at its last E step.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.clip._dawin import BetaMixture
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.beta(2, 20, 300), rng.beta(20, 2, 300)]
    >>> bmm = BetaMixture(2).fit(x)
    >>> bmm.means_.round(1).tolist()
    [0.1, 0.9]
    >>> authors = BetaMixture(2, init="kmeans", n_init=3, tol=1e-4, max_iter=1000,
    ...                       random_state=1).fit(x)
    >>> authors.means_.round(1).tolist()
    [0.1, 0.9]
    """

    def __init__(
        self,
        n_components=3,
        *,
        init="quantiles",
        n_init=1,
        max_iter=500,
        tol=1e-8,
        random_state=None,
    ):
        self.n_components = n_components
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    @staticmethod
    def _clip(x):
        return np.clip(np.asarray(x, dtype=np.float64).reshape(-1), _EPS, 1 - _EPS)

    def _log_joint(self, x):
        return (
            np.log(self.weights_)[None, :]
            + (self.a_ - 1)[None, :] * np.log(x)[:, None]
            + (self.b_ - 1)[None, :] * np.log1p(-x)[:, None]
            - betaln(self.a_, self.b_)[None, :]
        )

    def _m_step(self, x, resp):
        counts = resp.sum(axis=0)
        keep = counts > 1e-12
        resp, counts = resp[:, keep], counts[keep]
        m = resp.T @ x / counts
        v = resp.T @ (x * x) / counts - m * m
        m = np.clip(m, _EPS, 1 - _EPS)
        v = np.clip(v, 1e-12, m * (1 - m) / 4)
        phi = m * (1 - m) / v - 1
        self.weights_ = counts / counts.sum()
        self.a_, self.b_ = m * phi, (1 - m) * phi

    def _initial_groups(self, x, k):
        """Hard starting groups: one label array per start."""
        if self.init == "quantiles":
            labels = np.empty(x.shape[0], dtype=np.intp)
            order = np.argsort(x, kind="stable")
            for j, rows in enumerate(np.array_split(order, k)):
                labels[rows] = j
            return [labels]
        from sklearn.cluster import KMeans
        from sklearn.utils import check_random_state

        if isinstance(self.random_state, Integral):
            seeds = [int(self.random_state) + i for i in range(self.n_init)]
        else:
            rng = check_random_state(self.random_state)
            seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_init).tolist()
        return [
            KMeans(n_clusters=k, n_init=1, random_state=seed)
            .fit(x.reshape(-1, 1))
            .labels_
            for seed in seeds
        ]

    def _em(self, x, labels, k):
        """One EM run from hard groups: ``(lower bound, converged, n_iter)``."""
        resp = np.zeros((x.shape[0], k))
        resp[np.arange(x.shape[0]), labels] = 1.0
        self._m_step(x, resp)
        previous, current, converged, n_iter = -np.inf, -np.inf, False, 0
        while n_iter < self.max_iter:
            n_iter += 1
            joint = self._log_joint(x)
            norm = logsumexp(joint, axis=1)
            resp = np.exp(joint - norm[:, None])
            self._m_step(x, resp)
            current = float(norm.mean())
            if abs(current - previous) < self.tol:
                converged = True
                break
            previous = current
        return current, converged, n_iter

    def fit(self, x):
        """Fit the mixture to values in [0, 1] (clipped to (1e-6, 1 - 1e-6))."""
        if self.init not in ("quantiles", "kmeans"):
            raise ValueError(
                f"init must be 'quantiles' or 'kmeans', got {self.init!r}."
            )
        for name in ("n_components", "n_init", "max_iter"):
            value = getattr(self, name)
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        x = self._clip(x)
        k = int(min(self.n_components, np.unique(x).shape[0]))
        best = None
        for labels in self._initial_groups(x, k):
            bound, converged, n_iter = self._em(x, labels, k)
            if best is None or bound > best[0]:
                state = (self.weights_, self.a_, self.b_)
                best = (bound, converged, n_iter, state)
        self.lower_bound_, self.converged_, self.n_iter_, state = best
        self.weights_, self.a_, self.b_ = state
        if not self.converged_:
            warnings.warn(
                f"BetaMixture: EM stopped at max_iter={self.max_iter} before the "
                f"mean log-likelihood changed by less than tol={self.tol:g}; "
                "the groups may not be final. Raise max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        order = np.argsort(self.a_ / (self.a_ + self.b_))
        self.weights_, self.a_, self.b_ = (
            self.weights_[order],
            self.a_[order],
            self.b_[order],
        )
        self.means_ = self.a_ / (self.a_ + self.b_)
        return self

    def predict(self, x):
        """The most probable component of each value."""
        return np.argmax(self._log_joint(self._clip(x)), axis=1)


# ---------------------------------------------------------------- DaWin
class DaWinResult(NamedTuple):
    """What :func:`dawin` returns (a named tuple: fields by name or position).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, n_classes)
        Softmax of the interpolated model's logits for each sample.
    classes : ndarray of shape (n_classes,)
        Labels of the columns (the heads' classes).
    coefficients : ndarray of shape (n_samples,)
        Each sample's ``lambda(x)``, the weight of the fine-tuned model.
    groups : ndarray of shape (n_samples,)
        The group whose interpolated model predicted each sample.
    group_coefficients : ndarray of shape (n_groups,)
        The coefficient of each group's interpolated model (the sample's own
        ``lambda(x)`` when ``n_groups=None``).
    """

    proba: np.ndarray
    classes: np.ndarray
    coefficients: np.ndarray
    groups: np.ndarray
    group_coefficients: np.ndarray


def _unwrap(model):
    from ._models import OpenCLIPModel

    if isinstance(model, OpenCLIPModel):
        return model.model, model.preprocess
    return model, None


def _image_tower(model):
    """The part of a CLIP model that maps images to features."""
    return getattr(model, "visual", model)


def _batches(images, preprocess, batch_size, device):
    """Preprocessed image batches ``(rows, tensor)``."""
    import torch

    from ._inputs import ImageDataset, as_sequence

    if isinstance(images, torch.Tensor):
        for start in range(0, images.shape[0], batch_size):
            stop = min(start + batch_size, images.shape[0])
            yield np.arange(start, stop), images[start:stop].to(device)
        return
    if preprocess is None:
        raise ValueError(
            "dawin: images that are not a preprocessed tensor need a preprocess "
            "transform: pass preprocess=..., or the models as OpenCLIPModel."
        )
    items = as_sequence(images, "dawin", "images")
    data = ImageDataset(items, list(range(len(items))), preprocess)
    for start in range(0, len(items), batch_size):
        rows = np.arange(start, min(start + batch_size, len(items)))
        yield rows, torch.stack([data[i] for i in rows]).to(device)


def _features(tower, batch, normalize):
    import torch

    with torch.no_grad():
        feats = tower(batch)
        if normalize:
            feats = torch.nn.functional.normalize(feats, dim=-1)
    return feats.detach().cpu().double().numpy()


def _check_heads(zs_head, ft_head):
    from ._wise_ft import _head_parts

    _, _, k0, _ = _head_parts(zs_head, "zeroshot_head")
    _, _, k1, _ = _head_parts(ft_head, "finetuned_head")
    if k0.shape != k1.shape or not np.array_equal(k0, k1):
        raise ValueError(
            "dawin: the heads' classes differ (same classes in the same order are "
            "needed to interpolate them)."
        )
    return k1


def _head_logits(head, feats):
    """A fixed linear head's logits (its own normalisation of the input)."""
    from ._wise_ft import _head_parts

    coef, intercept, _, normalize = _head_parts(head, "head")
    if normalize:
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        feats = feats / np.where(norms == 0, 1, norms)
    return feats @ coef.T + intercept


def _proba(tower, head, batch, normalize, temperature=1.0):
    return softmax(
        _head_logits(head, _features(tower, batch, normalize)) / temperature, axis=1
    )


def dawin(
    zeroshot_model,
    finetuned_model,
    images,
    *,
    zeroshot_head,
    finetuned_head,
    n_groups=3,
    offset_adjustment=False,
    mixture="quantiles",
    random_state=1,
    temperatures=(1.0, 1.0),
    preprocess=None,
    normalize=True,
    batch_size=64,
    device="cpu",
):
    """DaWin: each sample predicted by its own interpolation of the two models.

    Oh et al., "DaWin: Training-free Dynamic Weight Interpolation for Robust
    Adaptation" (ICLR 2025):

    1. Each model predicts each sample: ``p_zs = softmax(z_zs / T_zs)``,
       ``p_ft = softmax(z_ft / T_ft)`` (image tower, then its head).
    2. ``lambda(x) = exp(-H(p_ft)) / (exp(-H(p_zs)) + exp(-H(p_ft)))``, ``H``
       the entropy: the more confident model weighs more
       (``skvrf._weighting.entropy_weights``, the same rule as
       :class:`skvrf.EntropyEnsembleClassifier` in output space).
    3. The sample is predicted by the weight-space interpolation
       ``theta(x) = (1 - lambda(x)) theta_zs + lambda(x) theta_ft`` of the image
       towers and of the heads (:func:`wise_ft`).

    Running one model per sample is slow; DaWin's grouping fits a mixture of
    ``n_groups`` Beta distributions to the coefficients (``BetaMixture``),
    assigns each sample to its most probable component and runs one model per
    component, interpolated at the component's mean. ``n_groups=None`` runs the
    fully sample-wise form.

    The authors' main results (``--offset-adjustment --bmm_ncluster 3``) add
    two things, both available here and off by default:

    - ``offset_adjustment=True``: step 2 becomes
      ``lambda(x) = (exp(-H_ft) + c r) / (exp(-H_zs) + exp(-H_ft) + c)``, with
      ``c`` the mean coefficient of variation of the two models' entropies and
      ``r = m_zs / (m_zs + m_ft)`` the ratio of their means, over **all of**
      ``images`` (``skvrf._weighting.dawin_offset``). This is transductive:
      each image's coefficient, and so its prediction, depends on the other
      images passed in the same call. Pass a whole evaluation set at once, as
      the authors do, and expect other results when predicting it in pieces.
      (The grouping is transductive too: the mixture is fitted on the
      coefficients of the images passed.)
    - ``mixture="kmeans"``: the authors' initialisation of the Beta mixture
      (KMeans, 3 starts seeded ``random_state + i``, ``tol=1e-4``,
      ``max_iter=1000``) instead of skvrf's deterministic equal-count split
      (``"quantiles"``: one start, ``tol=1e-8``, ``max_iter=500``). Both warn
      (:class:`~sklearn.exceptions.ConvergenceWarning`) when EM stops at its
      iteration limit.

    Parameters
    ----------
    zeroshot_model, finetuned_model : torch.nn.Module or OpenCLIPModel
        Two open_clip models of one architecture (or their image towers). Only
        the image towers (``.visual`` when there is one) are run and
        interpolated.
    images : sequence or torch.Tensor
        Image paths, PIL images or (H, W, 3) uint8 arrays (preprocessed with
        ``preprocess``), or a tensor of already preprocessed images.
    zeroshot_head : ZeroShotClassifier or LinearHeadClassifier
        The zero-shot head over image features (CLIP's class text embeddings).
    finetuned_head : LinearHeadClassifier or ZeroShotClassifier
        The fine-tuned head, of the same classes in the same order.
    n_groups : int or None, default=3
        Components of the Beta mixture (interpolated models run); None: one
        interpolated model per sample.
    offset_adjustment : bool, default=False
        Shift every coefficient by DaWin's offset, computed on all of
        ``images`` (transductive: see above). False: the per-sample formula,
        which depends on the image only.
    mixture : {"quantiles", "kmeans"}, default="quantiles"
        Initialisation of the Beta mixture: skvrf's deterministic equal-count
        split, or the authors' KMeans with 3 restarts (see ``BetaMixture``).
        Ignored when ``n_groups=None``.
    random_state : int, RandomState instance or None, default=1
        Seeds KMeans with ``mixture="kmeans"`` (an int ``s``: start ``i`` is
        seeded ``s + i``; 1 is the authors' default seed).
    temperatures : tuple of float, default=(1.0, 1.0)
        ``(T_zs, T_ft)`` of step 1 (the authors scale each model's logits by a
        temperature fitted on ID data; pass those of
        ``calibration_temperatures_`` of a fitted skvrf ensemble).
    preprocess : callable, default=None
        The image transform; default the fine-tuned OpenCLIPModel's.
    normalize : bool, default=True
        L2-normalise the image features before the heads (as
        :class:`OpenCLIPImageEmbedder` does by default).
    batch_size : int, default=64
        Images per forward pass.
    device : str, default="cpu"
        Torch device of the forward passes.

    Returns
    -------
    result : DaWinResult
        Probabilities, classes, per-sample coefficients, groups and the
        groups' coefficients.

    References
    ----------
    .. [1] C. Oh, Y. Li, K. Song, S. Yun and D. Han, "DaWin: Training-free
       Dynamic Weight Interpolation for Robust Adaptation", ICLR 2025.
       arXiv:2410.03782.
    """
    import torch

    from .._weighting import dawin_offset, entropies, entropy_coefficients
    from ._wise_ft import wise_ft

    if n_groups is not None and (
        not isinstance(n_groups, Integral) or isinstance(n_groups, bool) or n_groups < 1
    ):
        raise ValueError(
            f"dawin: n_groups must be a positive int or None, got {n_groups!r}."
        )
    if mixture not in ("quantiles", "kmeans"):
        raise ValueError(
            f"dawin: mixture must be 'quantiles' or 'kmeans', got {mixture!r}."
        )
    if not isinstance(offset_adjustment, (bool, np.bool_)):
        raise ValueError(
            f"dawin: offset_adjustment must be a bool, got {offset_adjustment!r}."
        )
    t_zs, t_ft = (float(t) for t in temperatures)
    if not (t_zs > 0 and t_ft > 0):
        raise ValueError(f"dawin: temperatures must be > 0, got {temperatures!r}.")
    zs_model, _ = _unwrap(zeroshot_model)
    ft_model, ft_preprocess = _unwrap(finetuned_model)
    preprocess = preprocess if preprocess is not None else ft_preprocess
    classes = _check_heads(zeroshot_head, finetuned_head)
    device = torch.device(device)
    zs_tower = _image_tower(zs_model).to(device).eval()
    ft_tower = _image_tower(ft_model).to(device).eval()

    # 1-2. each model's prediction entropy, then the per-sample coefficient
    h_zs, h_ft = [], []
    for _, batch in _batches(images, preprocess, batch_size, device):
        h_zs.append(entropies(_proba(zs_tower, zeroshot_head, batch, normalize, t_zs)))
        h_ft.append(entropies(_proba(ft_tower, finetuned_head, batch, normalize, t_ft)))
    h_zs, h_ft = np.concatenate(h_zs), np.concatenate(h_ft)
    offset = dawin_offset(h_zs, h_ft) if offset_adjustment else None
    lam = entropy_coefficients(h_zs, h_ft, offset)

    # 3. the groups and their coefficients
    if n_groups is None:
        groups = np.arange(lam.shape[0])
        coefficients = lam
    else:
        if mixture == "kmeans":  # the authors' settings
            bmm = BetaMixture(
                n_groups,
                init="kmeans",
                n_init=3,
                tol=1e-4,
                max_iter=1000,
                random_state=random_state,
            )
        else:
            bmm = BetaMixture(n_groups)
        bmm.fit(lam)  # ConvergenceWarning when EM stops at max_iter
        groups = bmm.predict(lam)
        coefficients = bmm.means_

    models = {}

    def interpolated(g):
        if g not in models:
            c = float(coefficients[g])
            tower = wise_ft(zs_tower, ft_tower, c).to(device).eval()
            head = wise_ft(zeroshot_head, finetuned_head, c)
            models[g] = (tower, head)
            if n_groups is None:  # one use each: do not keep them
                return models.pop(g)
        return models[g]

    proba = np.empty((lam.shape[0], classes.shape[0]))
    for rows, batch in _batches(images, preprocess, batch_size, device):
        for g in np.unique(groups[rows]):
            sub = groups[rows] == g
            tower, head = interpolated(int(g))
            part = batch[torch.as_tensor(sub, device=batch.device)]
            proba[rows[sub]] = _proba(tower, head, part, normalize)
    return DaWinResult(proba, classes, lam, groups, np.asarray(coefficients))
