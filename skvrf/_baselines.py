"""Baselines that share VRF's components and calibration: output-space ensembles."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval

from ._base import _BaseComponentEnsemble
from ._weighting import entropy_weights, mix_probabilities

__all__ = ["EntropyEnsembleClassifier", "OutputSpaceEnsembleClassifier"]


class OutputSpaceEnsembleClassifier(_BaseComponentEnsemble):
    """Output-space ensemble (OSE): ``p = (1 - alpha) p_zs + alpha p_ft``.

    The global-coefficient baseline of VRF. Components, class alignment and
    calibration are handled exactly as in :class:`VRFEnsembleClassifier`, so the
    two compare on equal terms; with ``calibrate=True`` this is the calibrated
    ensemble of Kumar et al. (UAI 2022).

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (fixed heads and FrozenEstimator are kept as they are;
        other classifiers are cloned and fitted).
    finetuned_estimator : classifier
        The fine-tuned model.
    alpha : float, default=0.5
        Weight of the fine-tuned component, in [0, 1].
    calibrate : bool, default=True
        Temperature-scale each component's logits on data it was not fitted on
        (see :class:`VRFEnsembleClassifier`).
    calibration_method : {"log_loss", "confidence"}, default="log_loss"
        How a temperature is fitted: minimising log-loss (temperature scaling,
        Guo et al. 2017), or the VRF authors' rule, mean max-probability equal to
        accuracy (for reproduction; still on held-out data).
    calibration_cv : int, cross-validation generator or iterable, default=5
        Folds for the out-of-fold logits of components fitted here.
    logit_adjustment : {"gla"} or None, default=None
        ``"gla"``: remove the zero-shot component's label bias, estimated on
        the training rows (see :class:`VRFEnsembleClassifier`). None leaves its
        logits as they are.
    n_jobs : int, default=None
        Jobs for the out-of-fold fits (joblib).
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
    classes_ : ndarray of shape (n_classes,)
        Union of the components' classes, sorted (components' columns are
        matched to it by label, whatever their own order).
    n_features_in_ : int
        Number of features, when X is numeric.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.
    calibration_temperatures_ : dict
        Temperature of each component.
    zeroshot_bias_ : ndarray or None
        The zero-shot label bias removed (``logit_adjustment``), else None.

    See Also
    --------
    VRFEnsembleClassifier : The per-sample mix.

    References
    ----------
    .. [1] M. Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022
       (output-space ensembling as the baseline of WiSE-FT).
    .. [2] A. Kumar et al., "Calibrated ensembles can mitigate accuracy tradeoffs
       under distribution shift", UAI 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import OutputSpaceEnsembleClassifier, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 200)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(200, 8))
    >>> ose = OutputSpaceEnsembleClassifier(
    ...     ZeroShotClassifier(centers), LogisticRegression(), alpha=0.5
    ... ).fit(X, y)
    >>> ose.predict_proba(X[:2]).sum(axis=1).round(6).tolist()
    [1.0, 1.0]
    """

    _parameter_constraints: dict = {
        **_BaseComponentEnsemble._parameter_constraints,
        "alpha": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        alpha=0.5,
        calibrate=True,
        calibration_method="log_loss",
        calibration_cv=5,
        logit_adjustment=None,
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
        self.alpha = alpha

    def _mix(self, outputs):
        p = outputs.proba
        return mix_probabilities(p["zeroshot"], p["finetuned"], self.alpha)


class EntropyEnsembleClassifier(_BaseComponentEnsemble):
    """Entropy-weighted per-sample ensemble (output-space DaWin).

    ``lambda(x) = exp(-H(p_ft)) / (exp(-H(p_zs)) + exp(-H(p_ft)))`` with ``H`` the
    Shannon entropy of each component's calibrated prediction, and
    ``p = lambda p_ft + (1 - lambda) p_zs``: the more confident component weighs
    more. A training-free per-sample baseline for VRF; components and calibration
    are handled exactly as in :class:`VRFEnsembleClassifier`.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (fixed heads and FrozenEstimator are kept as they are;
        other classifiers are cloned and fitted).
    finetuned_estimator : classifier
        The fine-tuned model.
    calibrate : bool, default=True
        Temperature-scale each component's logits on data it was not fitted on
        (see :class:`VRFEnsembleClassifier`); entropies are computed after it.
    calibration_method : {"log_loss", "confidence"}, default="log_loss"
        How a temperature is fitted (see :class:`VRFEnsembleClassifier`).
    calibration_cv : int, cross-validation generator or iterable, default=5
        Folds for the out-of-fold logits of components fitted here.
    logit_adjustment : {"gla"} or None, default=None
        ``"gla"``: remove the zero-shot component's label bias, estimated on
        the training rows (see :class:`VRFEnsembleClassifier`). None leaves its
        logits as they are.
    n_jobs : int, default=None
        Jobs for the out-of-fold fits (joblib).
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
    classes_ : ndarray of shape (n_classes,)
        Union of the components' classes, sorted (components' columns are
        matched to it by label, whatever their own order).
    n_features_in_ : int
        Number of features, when X is numeric.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.
    calibration_temperatures_ : dict
        Temperature of each component.
    zeroshot_bias_ : ndarray or None
        The zero-shot label bias removed (``logit_adjustment``), else None.

    See Also
    --------
    VRFEnsembleClassifier : Weights by distance to the Zero-Shot Failure set.
    OutputSpaceEnsembleClassifier : One global weight.

    References
    ----------
    .. [1] C. Oh et al., "DaWin: Training-free Dynamic Weight Interpolation for
       Robust Adaptation", ICLR 2025 (weight-space; this is its output-space form).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import EntropyEnsembleClassifier, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 200)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(200, 8))
    >>> zs, ft = ZeroShotClassifier(centers), LogisticRegression()
    >>> w = EntropyEnsembleClassifier(zs, ft).fit(X, y).ensemble_weights(X[:3])
    >>> bool(((w > 0) & (w < 1)).all())
    True
    """

    def _mix(self, outputs):
        p = outputs.proba
        w = entropy_weights(p["zeroshot"], p["finetuned"])
        return mix_probabilities(p["zeroshot"], p["finetuned"], w)

    def ensemble_weights(self, X):
        """Per-sample weight ``lambda(x)`` of the fine-tuned component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Values in (0, 1).
        """
        return self._collect(
            X, lambda o: entropy_weights(o.proba["zeroshot"], o.proba["finetuned"])
        )
