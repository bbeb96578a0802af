"""Baselines that share VRF's components and calibration: output-space ensembles."""

from __future__ import annotations

import dataclasses
from numbers import Real

from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _num_samples

from ._base import _BaseComponentEnsemble
from ._weighting import (
    EntropyMoments,
    dawin_offset,
    entropies,
    entropy_weights,
    mix_probabilities,
)

# ComponentOutputs.extras key of the batch's offset adjustment (c, r)
_OFFSET = "dawin_offset"

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

    With ``offset_adjustment=True`` the coefficient is DaWin's as its authors
    run it for their main results (``--offset-adjustment``):
    ``lambda(x) = (exp(-H_ft) + c r) / (exp(-H_zs) + exp(-H_ft) + c)``, with
    ``c`` the mean coefficient of variation (standard deviation over mean,
    ``ddof=1``) of the two components' entropies and ``r = m_zs / (m_zs +
    m_ft)`` the ratio of their mean entropies, both **computed on the rows
    being predicted** (see ``skvrf._weighting.dawin_offset``).

    .. warning::

       The offset adjustment is transductive: a row's prediction depends on
       the other rows passed in the same call to ``predict``,
       ``predict_proba``, ``ensemble_weights`` or a class-mapped view (all of
       ``X``, however many chunks it is computed in; each call of
       ``mix_outputs`` uses the chunk it is given). Predicting a test set in
       pieces, or one row at a time (one row: ``c = 0``, no adjustment),
       gives other results than predicting it whole, and scikit-learn's
       checks that predictions do not depend on the batch
       (``check_methods_subset_invariance``) do not hold. The authors
       compute the statistics on each whole evaluation set; do the same.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (fixed heads and FrozenEstimator are kept as they are;
        other classifiers are cloned and fitted).
    finetuned_estimator : classifier
        The fine-tuned model.
    offset_adjustment : bool, default=False
        Apply DaWin's offset adjustment, computed on each batch being
        predicted (transductive, see the warning above). False: the
        per-sample formula alone, which depends on the row only.
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

    Notes
    -----
    The authors' temperatures are fixed constants per backbone, fitted on ID
    data; skvrf's come from ``calibrate`` (held-out data). With a class map
    (:meth:`with_class_map`), entropies and the offset's statistics are those
    of the mapped probabilities, as the authors compute them after projecting
    the logits to a test set's classes.

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

    _parameter_constraints: dict = {
        **_BaseComponentEnsemble._parameter_constraints,
        "offset_adjustment": ["boolean"],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        offset_adjustment=False,
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
        self.offset_adjustment = offset_adjustment

    def iter_component_outputs(self, X, *, class_map=None):
        """Each component's outputs on chunks of rows, columns matched by label.

        As :meth:`VRFEnsembleClassifier.iter_component_outputs`; with
        ``offset_adjustment=True`` every chunk also carries the offset
        ``(c, r)`` of the whole of ``X`` in ``extras["dawin_offset"]`` (when
        ``X`` spans several chunks, a first pass over them computes it).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        class_map : sequence or mapping, default=None
            Map each component's logits first (see :meth:`with_class_map`).

        Yields
        ------
        outputs : ComponentOutputs
            One chunk's rows, column labels, logits, calibrated probabilities
            and extras.
        """
        chunks = super().iter_component_outputs(X, class_map=class_map)
        if not self.offset_adjustment:
            yield from chunks
            return
        first = next(chunks)
        if first.rows.stop - first.rows.start == _num_samples(X):  # one chunk
            p = first.proba
            offset = dawin_offset(entropies(p["zeroshot"]), entropies(p["finetuned"]))
            yield self._with_offset(first, offset)
            return
        moments = EntropyMoments()
        for outputs in (first, *chunks):
            p = outputs.proba
            moments.add(entropies(p["zeroshot"]), entropies(p["finetuned"]))
        offset = moments.offset()
        for outputs in super().iter_component_outputs(X, class_map=class_map):
            yield self._with_offset(outputs, offset)

    @staticmethod
    def _with_offset(outputs, offset):
        return dataclasses.replace(outputs, extras={**outputs.extras, _OFFSET: offset})

    def _weights(self, outputs):
        p = outputs.proba
        offset = None
        if self.offset_adjustment:
            offset = outputs.extras.get(_OFFSET)
            if offset is None:  # a chunk given to mix_outputs: its own batch
                offset = dawin_offset(
                    entropies(p["zeroshot"]), entropies(p["finetuned"])
                )
        return entropy_weights(p["zeroshot"], p["finetuned"], offset)

    def _mix(self, outputs):
        p = outputs.proba
        return mix_probabilities(p["zeroshot"], p["finetuned"], self._weights(outputs))

    def ensemble_weights(self, X):
        """Per-sample weight ``lambda(x)`` of the fine-tuned component.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components (with ``offset_adjustment=True``, the
            batch whose statistics shift every weight).

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Values in (0, 1).
        """
        return self._collect(X, self._weights)
