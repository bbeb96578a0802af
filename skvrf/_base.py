"""The two-component ensemble base shared by VRF and its baselines.

It owns everything the ensembles have in common, so that they compare on equal
terms: cloning or keeping (frozen, learns-nothing) components, the union of their
classes and the alignment of their probability columns, calibration of each
component's logits by a temperature fitted on data the component was not fitted on,
and chunked prediction.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, check_cv, cross_val_predict
from sklearn.utils import _safe_indexing, gen_batches, get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._calibration import (
    as_full_logits,
    component_logits,
    fit_confidence_temperature,
    fit_temperature,
    logits_from_proba,
    scaled_softmax,
)
from ._classmap import ClassMappedClassifier, map_logits

COMPONENTS = ("zeroshot", "finetuned")

# float64 values held per row while a chunk is predicted: per class, the logits,
# scaled and aligned probabilities of both components and the mix (8); per
# feature, the copies the components and the embedding make (3).
_VALUES_PER_CLASS = 8
_VALUES_PER_FEATURE = 3


def learns_nothing(estimator) -> bool:
    """Whether an ensemble should neither fit nor cross-validate ``estimator``.

    True for a :class:`~sklearn.frozen.FrozenEstimator` and for estimators whose
    class declares ``learns_nothing = True`` (the fixed heads of skvrf).

    Parameters
    ----------
    estimator : estimator instance
        A component.

    Returns
    -------
    bool
        True when the component is used as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf._base import learns_nothing
    >>> learns_nothing(ZeroShotClassifier(np.eye(2)))
    True
    >>> learns_nothing(LogisticRegression())
    False
    >>> lr = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> learns_nothing(FrozenEstimator(lr))
    True
    """
    return isinstance(estimator, FrozenEstimator) or bool(
        getattr(type(estimator), "learns_nothing", False)
    )


def _check_labels_known(y, classes, owner):
    unknown = np.setdiff1d(np.unique(y), classes)
    if unknown.size:
        shown = ", ".join(repr(u) for u in unknown[:10].tolist())
        raise ValueError(
            f"{owner}: y contains labels that no component knows: {shown}. "
            f"The components' classes are {classes[:20].tolist()}"
            + (" ..." if classes.shape[0] > 20 else "")
            + "."
        )


class _BaseComponentEnsemble(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Base of ensembles of a zero-shot and a fine-tuned classifier.

    Subclasses implement ``_fit_ensemble(X, y, outputs)`` (state beyond the
    components) and ``_mix(outputs)`` (the ensemble's probabilities from the
    components' calibrated, aligned probabilities), and may override
    ``_outputs(X)`` to compute extra per-row quantities once per chunk.
    """

    _parameter_constraints: dict = {
        "zeroshot_estimator": [HasMethods(["fit", "predict"])],
        "finetuned_estimator": [HasMethods(["fit", "predict"])],
        "calibrate": ["boolean"],
        "calibration_method": [StrOptions({"log_loss", "confidence"})],
        "calibration_cv": ["cv_object"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        calibrate=True,
        calibration_method="log_loss",
        calibration_cv=5,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.zeroshot_estimator = zeroshot_estimator
        self.finetuned_estimator = finetuned_estimator
        self.calibrate = calibrate
        self.calibration_method = calibration_method
        self.calibration_cv = calibration_cv
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # the components validate their own parameters
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, X_val=None, y_val=None):
        """Fit the components, calibrate them and fit the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Training input, usually CLIP image features. The ensemble leaves dtype
            checks to its components (as a Pipeline does), so the components may
            take image paths or text.
        y : array-like of shape (n_samples,)
            Labels (ints or strings).
        X_val : array-like, default=None
            Held-out rows used to calibrate every component (instead of the
            training rows for fixed components and out-of-fold predictions for the
            ones fitted here). Never pass test data.
        y_val : array-like of shape (n_val_samples,), default=None
            Labels of ``X_val``.

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        validate_data(self, X, skip_check_array=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        check_consistent_length(X, y)
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together.")
        if X_val is not None:
            y_val = column_or_1d(y_val)
            check_consistent_length(X_val, y_val)

        estimators = {
            "zeroshot": self.zeroshot_estimator,
            "finetuned": self.finetuned_estimator,
        }
        fitted = {}
        for name, est in estimators.items():
            if learns_nothing(est):
                # Fixed heads are fitted without y: a label they do not know is
                # the ensemble's business (it may be known to the other one).
                est_ = clone(est)
                if not isinstance(est_, FrozenEstimator):
                    est_.fit(X)
            else:
                est_ = clone(est).fit(X, y)
            fitted[name] = est_
        self.zeroshot_estimator_ = fitted["zeroshot"]
        self.finetuned_estimator_ = fitted["finetuned"]

        classes = [np.asarray(fitted[name].classes_) for name in COMPONENTS]
        try:
            self.classes_ = np.unique(np.concatenate(classes))
        except TypeError as exc:
            raise ValueError(
                "The components' classes_ cannot be compared (e.g. strings in one, "
                f"integers in the other): {classes[0][:5]} vs {classes[1][:5]}."
            ) from exc
        _check_labels_known(y, self.classes_, type(self).__name__)
        self._columns = {
            name: np.searchsorted(self.classes_, c)
            for name, c in zip(COMPONENTS, classes)
        }

        self._prepare_outputs(X, y)
        outputs = self._outputs(X)
        self.calibration_temperatures_ = self._fit_temperatures(
            estimators, X, y, X_val, y_val, outputs
        )
        self._fit_ensemble(X, y, outputs)
        return self

    def _fit_temperatures(self, estimators, X, y, X_val, y_val, outputs):
        temps = {name: 1.0 for name in COMPONENTS}
        if not self.calibrate:
            return temps
        fit = (
            fit_temperature
            if self.calibration_method == "log_loss"
            else fit_confidence_temperature
        )
        val_outputs = self._outputs(X_val) if X_val is not None else None
        for name in COMPONENTS:
            fitted = getattr(self, f"{name}_estimator_")
            if val_outputs is not None:
                logits, y_cal = val_outputs[name], y_val
            elif learns_nothing(estimators[name]):
                logits, y_cal = outputs[name], y
            else:
                logits, y_cal = self._out_of_fold_logits(estimators[name], X, y), y
            temps[name] = fit(logits, y_cal, fitted.classes_)
        return temps

    def _out_of_fold_logits(self, estimator, X, y):
        cv = self.calibration_cv
        if isinstance(cv, Integral):
            shuffle = self.random_state is not None
            cv = StratifiedKFold(
                cv, shuffle=shuffle, random_state=self.random_state if shuffle else None
            )
        cv = check_cv(cv, y, classifier=True)
        method = (
            "decision_function"
            if hasattr(estimator, "decision_function")
            else "predict_proba"
        )
        out = cross_val_predict(
            clone(estimator), X, y, cv=cv, method=method, n_jobs=self.n_jobs
        )
        if method == "predict_proba":
            return logits_from_proba(out)
        return as_full_logits(out)

    # ------------------------------------------------------- subclass hooks
    def _prepare_outputs(self, X, y):
        """Fit state needed by ``_outputs`` (e.g. an embedding); default none."""

    def _outputs(self, X):
        """Per-row outputs computed once: each component's full logits."""
        return {
            "zeroshot": component_logits(self.zeroshot_estimator_, X),
            "finetuned": component_logits(self.finetuned_estimator_, X),
        }

    def _fit_ensemble(self, X, y, outputs):
        """Fit the ensemble's own state from the training outputs."""

    def _mix(self, outputs, probas):
        raise NotImplementedError

    # -------------------------------------------------------------- predict
    def _aligned_proba(self, name, logits):
        """Calibrated probabilities of a component, placed in ``classes_`` columns."""
        proba = scaled_softmax(logits, self.calibration_temperatures_[name])
        if proba.shape[1] == self.classes_.shape[0]:
            return proba  # the component knows every class, in sorted order
        full = np.zeros((proba.shape[0], self.classes_.shape[0]))
        full[:, self._columns[name]] = proba
        return full

    def _chunk_rows(self):
        """Rows per chunk so that a chunk's temporaries fit sklearn's working_memory."""
        budget = get_config()["working_memory"] * 2**20
        n_features = getattr(self, "n_features_in_", 0)
        per_row = 8 * (
            _VALUES_PER_CLASS * max(2, self.classes_.shape[0])
            + _VALUES_PER_FEATURE * n_features
        )
        return max(1, int(budget // per_row))

    def _map_chunks(self, X, func, probas=True):
        """Apply ``func(outputs, probas)`` to row chunks of X; stack the results.

        Memory stays bounded for any number of rows: each chunk's outputs are
        dropped before the next is computed, and results are written into one
        preallocated output. ``func`` may return a tuple of arrays, each stacked
        along axis 0.
        """
        check_is_fitted(self)
        if hasattr(self, "n_features_in_") and len(getattr(X, "shape", ())) == 1:
            raise ValueError(
                "Expected 2D array, got 1D array instead. Reshape your data either "
                "using array.reshape(-1, 1) if your data has a single feature or "
                "array.reshape(1, -1) if it contains a single sample."
            )
        validate_data(self, X, skip_check_array=True, reset=False)
        n = _num_samples(X)
        if n == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        outs = None
        batches = list(gen_batches(n, self._chunk_rows()))
        if self.verbose and len(batches) > 1:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=type(self).__name__, unit="chunk")
        for rows in batches:
            chunk = X if rows.stop - rows.start == n else _safe_indexing(X, rows)
            outputs = self._outputs(chunk)
            aligned = (
                {name: self._aligned_proba(name, outputs[name]) for name in COMPONENTS}
                if probas
                else None
            )
            result = func(outputs, aligned)
            del outputs, aligned
            parts = result if isinstance(result, tuple) else (result,)
            if outs is None:
                if rows.stop - rows.start == n:
                    return result  # a single chunk: no copy
                outs = [np.empty((n, *p.shape[1:]), dtype=p.dtype) for p in parts]
            for out, part in zip(outs, parts):
                out[rows] = part
        return tuple(outs) if isinstance(result, tuple) else outs[0]

    def _map_chunks_with_class_map(self, X, func, sources):
        """``_map_chunks`` with each component's probabilities under a class map.

        ``func(outputs, probas)`` receives, per row chunk, each component's logits
        mapped through the class map (``sources`` from ``parse_class_map``) and
        softmaxed with its calibration temperature.
        """
        fitted = {name: getattr(self, f"{name}_estimator_") for name in COMPONENTS}
        for name in COMPONENTS:
            known = np.isin(np.concatenate(sources), fitted[name].classes_)
            if not known.any():
                raise ValueError(
                    f"The {name} component knows none of the class map's "
                    "source classes."
                )

        def mapped(outputs, _):
            probas = {
                name: scaled_softmax(
                    map_logits(outputs[name], fitted[name].classes_, sources),
                    self.calibration_temperatures_[name],
                )
                for name in COMPONENTS
            }
            return func(outputs, probas)

        return self._map_chunks(X, mapped, probas=False)

    def _predict_proba_mapped(self, X, sources):
        """Ensemble probabilities under a class map (see ``with_class_map``)."""
        return self._map_chunks_with_class_map(X, self._mix, sources)

    def with_class_map(self, class_map):
        """A fitted view of the ensemble over a class subset or relabelling.

        Each component's logits are mapped (kept columns, or the max logit over a
        target's source classes), softmaxed with the component's calibration
        temperature, and then mixed, as the authors do for ImageNet-A/R and
        ObjectNet.

        Parameters
        ----------
        class_map : sequence or mapping
            Kept labels of ``classes_``, or a mapping target label -> labels of
            ``classes_`` pooled by max logit.

        Returns
        -------
        view : ClassMappedClassifier
            A fitted classifier whose ``classes_`` are the targets.
        """
        check_is_fitted(self)
        return ClassMappedClassifier(self, class_map).fit()

    def predict_proba(self, X):
        """Class probabilities of the ensemble.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return self._map_chunks(X, self._mix)

    def predict_log_proba(self, X):
        """Log of :meth:`predict_proba` (``-inf`` where a probability is 0).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Class of largest ensemble probability.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        index = self._map_chunks(X, lambda o, p: np.argmax(self._mix(o, p), axis=1))
        return self.classes_[index]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = all(
            get_tags(est).input_tags.sparse
            for est in (self.zeroshot_estimator, self.finetuned_estimator)
        )
        return tags
