"""``SelectiveEnsembleClassifier``: selective prediction by an in-distribution score.

The baseline of the VRF paper's Table 5: an in-distribution (ID) score ``S(x)`` of
the fine-tuned component decides, per sample, which component predicts. The
fine-tuned model is used where ``S(x) >= lambda``, with ``lambda`` set so that a
fraction ``tpr`` of ID calibration rows pass (95 % true-positive rate), and the
zero-shot model elsewhere; ``weighting="sigmoid"`` softens the switch.

The scores are plain functions of arrays (:func:`msp_score`, :func:`energy_score`,
:func:`mahalanobis_score`, :func:`knn_score`), so that each is tested against
its formula; the estimator only fits their statistics and the threshold.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._base import _BaseComponentEnsemble
from ._calibration import component_logits
from ._vrf import _EmbeddingMixin, _normalize_rows
from ._weighting import mix_probabilities, score_weights
from .neighbors import kth_neighbor_distances
from .neighbors._weighted import weighted_kth_neighbor_distances
from .utils._tensors import to_numpy
from .utils._warnings import user_stacklevel

__all__ = [
    "SelectiveEnsembleClassifier",
    "energy_score",
    "fit_gaussians",
    "knn_score",
    "mahalanobis_score",
    "msp_score",
    "tpr_threshold",
]

SCORES = ("msp", "energy", "mahalanobis", "relative_mahalanobis", "knn")
_EMBEDDING_SCORES = ("mahalanobis", "relative_mahalanobis", "knn")


# ------------------------------------------------------------- the scores
def msp_score(logits):
    """Maximum softmax probability, ``max_c softmax(z)_c`` (Hendrycks & Gimpel).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Logits (``-inf`` allowed in some columns).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In ``(0, 1]``; higher is more in-distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._selective import msp_score
    >>> msp_score(np.array([[0.0, 0.0], [np.log(3.0), 0.0]])).tolist()
    [0.5, 0.75]
    """
    return softmax(np.asarray(logits, dtype=np.float64), axis=1).max(axis=1)


def energy_score(logits):
    """Negative free energy, ``logsumexp_c z_c`` (Liu et al., 2020; T = 1).

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Logits (``-inf`` allowed in some columns).

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Higher is more in-distribution. A component that gives only
        probabilities (its logits are their logs) scores 0 everywhere.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._selective import energy_score
    >>> energy_score(np.array([[0.0, 0.0]])).round(6).tolist()  # log 2
    [0.693147]
    """
    return logsumexp(np.asarray(logits, dtype=np.float64), axis=1)


def fit_gaussians(E, y, background=True, sample_weight=None):
    """Class means, the shared covariance's whitening and a background Gaussian.

    The Gaussians of the Mahalanobis score (Lee et al., 2018): one mean per
    class and one covariance shared by all classes,
    ``Sigma = 1/N sum_i (e_i - mu_{y_i})(e_i - mu_{y_i})^T``; and the single
    background Gaussian of the relative Mahalanobis score (Ren et al., 2021),
    the mean and covariance of all rows. Each covariance is kept as a whitening
    matrix ``W`` with ``W W^T = Sigma^+`` (the pseudo-inverse: directions of
    zero variance are ignored), so that ``(e - mu)^T Sigma^+ (e - mu) =
    ||(e - mu) W||^2``.

    Parameters
    ----------
    E : ndarray of shape (n_samples, n_features)
        Embedded training rows.
    y : ndarray of shape (n_samples,)
        Their labels.
    background : bool, default=True
        Also fit the background Gaussian (needed by the relative score only).
    sample_weight : ndarray of shape (n_samples,), default=None
        Weights of the rows in the means and covariances (None: all 1; an
        integer weight acts as that many copies of the row).

    Returns
    -------
    gaussians : dict
        ``"means"`` (n_classes, n_features), ``"whiten"`` (n_features, r), and
        with ``background``, ``"mean0"`` (n_features,), ``"whiten0"``
        (n_features, r0).
    """
    E = np.asarray(E, dtype=np.float64)
    w = np.ones(E.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    keep = w > 0
    E, y, w = E[keep], np.asarray(y)[keep], w[keep]
    total = w.sum()
    _, col = np.unique(y, return_inverse=True)
    counts = np.bincount(col, weights=w)
    means = np.zeros((counts.shape[0], E.shape[1]))
    np.add.at(means, col, w[:, None] * E)
    means /= counts[:, None]
    centred = E - means[col]
    gaussians = {
        "means": means,
        "whiten": _whitening((w[:, None] * centred).T @ centred / total),
    }
    if background:
        mean0 = w @ E / total
        centred0 = E - mean0
        gaussians["mean0"] = mean0
        gaussians["whiten0"] = _whitening((w[:, None] * centred0).T @ centred0 / total)
    return gaussians


def _whitening(cov):
    """``W`` with ``W W^T`` the pseudo-inverse of the covariance ``cov``."""
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > vals.max() * max(cov.shape) * np.finfo(np.float64).eps
    return vecs[:, keep] / np.sqrt(vals[keep])


def _squared_distances(Z, M):
    """``||z_i - m_j||^2`` for every row of ``Z`` and ``M``."""
    d = (Z * Z).sum(axis=1)[:, None] - 2.0 * Z @ M.T + (M * M).sum(axis=1)[None, :]
    return np.maximum(d, 0.0)


def mahalanobis_score(E, gaussians, relative=False):
    """Minus the Mahalanobis distance to the nearest class mean (MD), or its
    relative form (RMD).

    MD: ``S(x) = -min_c (e - mu_c)^T Sigma^+ (e - mu_c)``, with the shared
    covariance of ``fit_gaussians``. RMD: ``S(x) = -min_c (MD_c(x) -
    MD_0(x))``, with ``MD_0`` the distance under the background Gaussian of all
    training rows, which removes the part of the distance that every class
    shares.

    Parameters
    ----------
    E : ndarray of shape (n_samples, n_features)
        Embedded rows.
    gaussians : dict
        From :func:`fit_gaussians`.
    relative : bool, default=False
        RMD instead of MD.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Higher is more in-distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._selective import fit_gaussians, mahalanobis_score
    >>> E = np.array([[-1.0, 0.0], [1.0, 0.0], [-1.0, 2.0], [1.0, 2.0]])
    >>> g = fit_gaussians(E, np.array([0, 0, 1, 1]))  # means (0, 0), (0, 2)
    >>> mahalanobis_score(np.array([[0.0, 0.0], [2.0, 0.0]]), g).tolist()
    [-0.0, -4.0]
    """
    E = np.asarray(E, dtype=np.float64)
    W = gaussians["whiten"]
    md = _squared_distances(E @ W, gaussians["means"] @ W).min(axis=1)
    if not relative:
        return -md
    W0 = gaussians["whiten0"]
    md0 = (((E - gaussians["mean0"]) @ W0) ** 2).sum(axis=1)
    return -(md - md0)


def knn_score(E, bank, k, *, leave_self_out=None, bank_weight=None, **engine):
    """Minus the squared distance to the k-th nearest bank row (Sun et al., 2022).

    Rows and bank are L2-normalised, as in VRF (``2 - 2 cos``, in [0, 4]); the
    neighbours come from :func:`skvrf.neighbors.kth_neighbor_distances`.

    Parameters
    ----------
    E : ndarray of shape (n_samples, n_features)
        Embedded rows (normalised here).
    bank : ndarray or PreparedBank of shape (n_bank, n_features)
        Normalised training rows.
    k : int
        Neighbour rank, in ``[1, n_bank]``.
    leave_self_out : ndarray of bool of shape (n_samples,), default=None
        Rows that are themselves in the bank: their (k+1)-th neighbour is used,
        which leaves their zero distance to themselves out.
    bank_weight : ndarray of shape (n_bank,), default=None
        Positive weights of the bank rows: a row of weight ``w`` counts as
        ``w`` rows (``k`` is a weight to reach,
        :func:`~skvrf.neighbors._weighted.weighted_kth_neighbor_distances`).
    **engine
        ``backend``, ``working_memory``, ``n_jobs`` of the neighbour engine.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        In [-4, 0]; higher is more in-distribution.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf._selective import knn_score
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> knn_score(np.array([[1.0, 0.0]]), bank, 2).round(6).tolist()  # 2 - 2 cos 90
    [-2.0]
    """
    Q = _normalize_rows(E)
    if bank_weight is None:
        search = kth_neighbor_distances
    else:

        def search(Q, bank, k, **engine):
            return weighted_kth_neighbor_distances(Q, bank, k, bank_weight, **engine)

    if leave_self_out is None or not np.any(leave_self_out):
        return -search(Q, bank, k, **engine)
    d = search(Q, bank, [k, k + 1], **engine)
    return -np.where(leave_self_out, d[:, 1], d[:, 0])


def tpr_threshold(scores, tpr, sample_weight=None):
    """The largest ``lambda`` such that a fraction ``tpr`` of ``scores`` is
    ``>= lambda``.

    With the scores sorted ascending, ``s_(1) <= ... <= s_(n)``, it is
    ``s_(j)`` with ``j = floor(n (1 - tpr)) + 1``: at least ``ceil(n tpr)``
    rows pass, and no larger value lets as many pass.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        Scores of ID calibration rows.
    tpr : float
        The fraction that passes, in (0, 1].
    sample_weight : array-like of shape (n_samples,), default=None
        Weights of the scores (None: all 1): the fraction is of their summed
        weight, and an integer weight acts as that many copies of the score.

    Returns
    -------
    threshold : float

    Examples
    --------
    >>> from skvrf._selective import tpr_threshold
    >>> tpr_threshold(range(1, 101), 0.95)  # 95 of 1..100 are >= 6
    6.0
    """
    s = np.asarray(scores, dtype=np.float64)
    if sample_weight is None:
        s = np.sort(s)
        j = int(np.floor(s.shape[0] * (1.0 - tpr) + 1e-9))
        return float(s[min(j, s.shape[0] - 1)])
    w = np.asarray(sample_weight, dtype=np.float64)
    s, w = s[w > 0], w[w > 0]
    order = np.argsort(s, kind="stable")
    s, reached = s[order], np.cumsum(w[order])
    j = np.floor(reached[-1] * (1.0 - tpr) + 1e-9)  # the (j+1)-th unit of weight
    return float(s[min(int(np.searchsorted(reached, j, side="right")), s.size - 1)])


# --------------------------------------------------------------- estimator
class SelectiveEnsembleClassifier(_EmbeddingMixin, _BaseComponentEnsemble):
    """Selective prediction: the fine-tuned model where it looks in-distribution.

    The baseline of the VRF paper's Table 5. An in-distribution score ``S(x)`` of
    the fine-tuned component decides per sample:

    ``w(x) = 1[S(x) >= lambda]`` (``weighting="step"``), or
    ``w(x) = sigmoid((S(x) - lambda) / (temperature * s))``
    (``weighting="sigmoid"``, ``s`` the standard deviation of the calibration
    scores), and ``p(x) = w(x) p_ft(x) + (1 - w(x)) p_zs(x)``. ``lambda`` is set
    so that a fraction ``tpr`` of the calibration rows (``X_val`` when given to
    ``fit``, else the training rows) pass: the fine-tuned model's 95 % ID
    true-positive rate by default.

    Scores (``id_score``; higher is more in-distribution):

    - ``"msp"``: maximum softmax probability of the fine-tuned logits;
    - ``"energy"``: ``logsumexp`` of the fine-tuned logits;
    - ``"mahalanobis"``: minus the Mahalanobis distance of the embedding to the
      nearest class mean, under the covariance shared by the classes of the
      training rows;
    - ``"relative_mahalanobis"``: minus its difference to the distance under
      one background Gaussian of all training rows;
    - ``"knn"``: minus the squared distance of the normalised embedding to its
      ``k``-th nearest normalised training row (all of them, not VRF's ZSF set).

    MSP and energy read the fine-tuned component's logits before calibration
    (``decision_function``, or the log of ``predict_proba``); the other three
    read the embedding (as in :class:`VRFEnsembleClassifier`). Scores never
    depend on a class map: a row is scored on all of the component's classes.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (fixed heads and FrozenEstimator are kept as they are;
        other classifiers are cloned and fitted).
    finetuned_estimator : classifier
        The fine-tuned model.
    id_score : {"msp", "energy", "mahalanobis", "relative_mahalanobis", "knn"}, \
default="msp"
        The in-distribution score (named ``id_score``: ``score`` is the
        accuracy method of every scikit-learn classifier).
    tpr : float, default=0.95
        Fraction of the calibration rows whose score passes ``lambda``, in
        (0, 1].
    weighting : {"step", "sigmoid"}, default="step"
        The hard switch of the paper, or its soft version around ``lambda``.
    temperature : float, default=0.1
        Softness of the sigmoid, in units of the calibration scores' standard
        deviation (``weighting="sigmoid"`` only).
    k : int or "auto", default="auto"
        Neighbour rank of the ``"knn"`` score; ``"auto"``: 0.1 % of the
        training rows (at least 1), VRF's rule applied to the whole training
        set.
    embedding : "auto" or transformer, default="auto"
        The space of the Mahalanobis and kNN scores (see
        :class:`VRFEnsembleClassifier`).
    calibrate : bool, default=True
        Temperature-scale each component's logits on data it was not fitted on
        (see :class:`VRFEnsembleClassifier`); the mixed probabilities use them.
    calibration_method : {"log_loss", "confidence"}, default="log_loss"
        How a temperature is fitted (see :class:`VRFEnsembleClassifier`).
    calibration_cv : int, cross-validation generator or iterable, default=5
        Folds for the out-of-fold logits of components fitted here.
    logit_adjustment : {"gla"} or None, default=None
        Remove the zero-shot component's label bias (see
        :class:`VRFEnsembleClassifier`).
    knn_backend : {"auto", "numpy", "torch", "faiss"}, default="auto"
        Engine of the ``"knn"`` score's neighbour search.
    working_memory : int, default=None
        MiB bound of the temporary distance block (None: the engine's default).
    n_jobs : int, default=None
        Jobs for out-of-fold fits and distance chunks.
    random_state : int, RandomState instance or None, default=None
        Shuffles the calibration folds when set.
    verbose : int, default=0
        Show a progress bar over row chunks when predicting many rows.

    Attributes
    ----------
    zeroshot_estimator_ : classifier
        The fitted (or kept) zero-shot component.
    finetuned_estimator_ : classifier
        The fitted (or kept) fine-tuned component.
    embedding_ : transformer or "passthrough"
        The embedding of the Mahalanobis and kNN scores (None for MSP and
        energy).
    classes_ : ndarray of shape (n_classes,)
        Union of the components' classes, sorted.
    n_features_in_ : int
        Number of features, when X is numeric.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.
    threshold_ : float
        ``lambda``.
    score_scale_ : float
        Standard deviation of the calibration scores (1 when they are all
        equal).
    k_ : int
        The k of the ``"knn"`` score (0 for the others).
    gaussians_ : dict or None
        The Mahalanobis scores' Gaussians (``fit_gaussians``).
    bank_ : ndarray of shape (n_samples, n_embedding) or None
        The ``"knn"`` score's normalised training rows (float32; rows of
        sample weight 0 left out). A fitted estimator with ``score="knn"``
        therefore contains training data.
    bank_sample_weight_ : ndarray of shape (n_bank,) or None
        The bank rows' sample weights when ``fit`` had ``sample_weight`` and
        they are not all 1 (else None): a row of weight ``w`` counts as ``w``
        rows in the k-th neighbour and in ``k="auto"``.
    calibration_temperatures_ : dict
        Temperature of each component.
    zeroshot_bias_ : ndarray or None
        The zero-shot label bias removed (``logit_adjustment``), else None.

    See Also
    --------
    VRFEnsembleClassifier : Weighs by the distance to the Zero-Shot Failure set.

    References
    ----------
    .. [1] B. Zhu, J. Cui and H. Zhang, "Robust Fine-tuning of Zero-shot Models
       via Variance Reduction", NeurIPS 2024 (Table 5). arXiv:2411.06966.
    .. [2] D. Hendrycks and K. Gimpel, "A Baseline for Detecting Misclassified
       and Out-of-Distribution Examples in Neural Networks", ICLR 2017.
    .. [3] W. Liu, X. Wang, J. Owens and Y. Li, "Energy-based
       Out-of-distribution Detection", NeurIPS 2020.
    .. [4] K. Lee, K. Lee, H. Lee and J. Shin, "A Simple Unified Framework for
       Detecting Out-of-Distribution Samples and Adversarial Attacks",
       NeurIPS 2018.
    .. [5] J. Ren, S. Fort, J. Liu, A. G. Roy, S. Padhy and B.
       Lakshminarayanan, "A Simple Fix to Mahalanobis Distance for Improving
       Near-OOD Detection", arXiv:2106.09022, 2021.
    .. [6] Y. Sun, Y. Ming, X. Zhu and Y. Li, "Out-of-Distribution Detection
       with Deep Nearest Neighbors", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import SelectiveEnsembleClassifier, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 300)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
    >>> clf = SelectiveEnsembleClassifier(
    ...     ZeroShotClassifier(centers), LogisticRegression(), id_score="energy"
    ... ).fit(X, y)
    >>> float(clf.ensemble_weights(X).mean()) >= 0.95  # 95 % of the rows pass
    True
    """

    _fit_uses_val_outputs = True  # the threshold check / lambda
    _fitted_space = "the scores were fitted"
    _bank_attribute = "bank_"  # the kNN score's bank (see _EmbeddingMixin)
    _parameter_constraints: dict = {
        **_BaseComponentEnsemble._parameter_constraints,
        "id_score": [StrOptions(set(SCORES))],
        "tpr": [Interval(Real, 0, 1, closed="right")],
        "weighting": [StrOptions({"step", "sigmoid"})],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "k": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "embedding": [StrOptions({"auto"}), HasMethods(["transform"])],
        "knn_backend": [StrOptions({"auto", "numpy", "torch", "faiss"})],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        id_score="msp",
        tpr=0.95,
        weighting="step",
        temperature=0.1,
        k="auto",
        embedding="auto",
        calibrate=True,
        calibration_method="log_loss",
        calibration_cv=5,
        logit_adjustment=None,
        knn_backend="auto",
        working_memory=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            zeroshot_estimator,
            finetuned_estimator,
            calibrate=calibrate,
            calibration_method=calibration_method,
            calibration_cv=calibration_cv,
            logit_adjustment=logit_adjustment,
            n_jobs=n_jobs,
            random_state=random_state,
            verbose=verbose,
        )
        self.id_score = id_score
        self.tpr = tpr
        self.weighting = weighting
        self.temperature = temperature
        self.k = k
        self.embedding = embedding
        self.knn_backend = knn_backend
        self.working_memory = working_memory

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.id_score in _EMBEDDING_SCORES:
            tags.input_tags.sparse = False  # the scores need a dense embedding
        return tags

    # -------------------------------------------------------------- fitting
    def _prepare_outputs(self, X, y):
        self._head = None
        self.embedding_ = None
        if self.id_score in _EMBEDDING_SCORES:
            self._fit_embedding(X, y)

    def _outputs(self, X):
        if self.embedding_ is not None:
            outputs = super()._outputs(X)
        else:
            X = to_numpy(X)
            outputs = {
                "zeroshot": component_logits(self.zeroshot_estimator_, X),
                "finetuned": component_logits(self.finetuned_estimator_, X),
            }
        if self.id_score in ("msp", "energy"):
            # the component's own logits, before any class map
            outputs["score_logits"] = outputs["finetuned"]
        return outputs

    def _fit_ensemble(
        self, X, y, outputs, val_outputs=None, y_val=None, sample_weight=None
    ):
        self.gaussians_, self.bank_, self.k_ = None, None, 0
        self.bank_sample_weight_ = None
        sw = sample_weight
        counted = slice(None) if sw is None else sw > 0  # rows of weight 0: absent
        leave_self_out = False
        if self.id_score in _EMBEDDING_SCORES:
            E = self._check_embedding(outputs["embedding"], reset=True)
            if self.id_score == "knn":
                self.bank_ = _normalize_rows(E[counted])
                n = self.bank_.shape[0] if sw is None else float(sw.sum())
                if sw is not None and np.any(sw[counted] != 1):
                    self.bank_sample_weight_ = sw[counted]
                self.k_ = max(1, round(0.001 * n)) if self.k == "auto" else self.k
                if self.k_ >= n:
                    clipped = max(1, int(np.ceil(n)) - 1)
                    warnings.warn(
                        f"k={self.k_} is not smaller than the number of training "
                        f"rows ({n:g}); k is clipped to {clipped}.",
                        UserWarning,
                        stacklevel=user_stacklevel(),
                    )
                    self.k_ = clipped
                # leave each row's zero distance to itself out (when another
                # row is left to be its neighbour)
                leave_self_out = n > self.k_
            else:
                relative = self.id_score == "relative_mahalanobis"
                self.gaussians_ = fit_gaussians(
                    E, y, background=relative, sample_weight=sw
                )
        self._reset_bank_cache(bank_ready=self.bank_ is not None)
        weights = None
        if val_outputs is not None:
            calibration = self._scores(val_outputs)
        else:  # the training rows, each kNN row's distance to itself left out
            rows = outputs
            if sw is not None:
                rows = {
                    key: _safe_indexing(np.asarray(to_numpy(v)), counted)
                    for key, v in outputs.items()
                }
            in_bank = None
            if leave_self_out:  # every counted training row is in the bank
                in_bank = np.ones(_num_samples(rows["embedding"]), dtype=bool)
            calibration = self._scores(rows, leave_self_out=in_bank)
            weights = None if sw is None else sw[counted]
        self.threshold_ = tpr_threshold(calibration, self.tpr, weights)
        if weights is None:
            scale = float(np.std(calibration))
        else:
            mean = np.average(calibration, weights=weights)
            var = np.average((calibration - mean) ** 2, weights=weights)
            scale = float(np.sqrt(var))
        self.score_scale_ = scale if scale > 0 else 1.0

    # -------------------------------------------------------------- scores
    def _scores(self, extras, leave_self_out=None):
        if self.id_score == "msp":
            return msp_score(extras["score_logits"])
        if self.id_score == "energy":
            return energy_score(extras["score_logits"])
        E = self._check_embedding(extras["embedding"])
        if self.id_score == "knn":
            return knn_score(
                E,
                self._prepared_bank(),
                self.k_,
                leave_self_out=leave_self_out,
                bank_weight=getattr(self, "bank_sample_weight_", None),
                backend=self.knn_backend,
                working_memory=self.working_memory,
                n_jobs=self.n_jobs,
            )
        relative = self.id_score == "relative_mahalanobis"
        return mahalanobis_score(E, self.gaussians_, relative=relative)

    def _weights(self, scores):
        return score_weights(
            scores,
            self.threshold_,
            self.temperature * self.score_scale_,
            self.weighting,
        )

    def _mix(self, outputs):
        w = self._weights(self._scores(outputs.extras))
        p = outputs.proba
        return mix_probabilities(p["zeroshot"], p["finetuned"], w)

    def id_scores(self, X):
        """The in-distribution score ``S(x)`` of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher is more in-distribution; the fine-tuned component is used
            where ``scores >= threshold_``.
        """
        check_is_fitted(self)
        return self._collect(X, lambda o: self._scores(o.extras))

    def ensemble_weights(self, X):
        """Weight ``w(x)`` of the fine-tuned component for each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            0 or 1 (``weighting="step"``), else in (0, 1).
        """
        return self._weights(self.id_scores(X))
