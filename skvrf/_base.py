"""The two-component ensemble base shared by VRF and its baselines.

It owns everything the ensembles have in common, so that they compare on equal
terms: cloning or keeping (frozen, learns-nothing) components, the union of their
classes and the alignment of their columns, calibration of each component's logits
by a temperature fitted on data the component was not fitted on, and chunked
prediction.

The component-output protocol
-----------------------------
Columns are matched **by label, never by position**. The ensemble's ``classes_``
is sorted (scikit-learn's convention); a component may list its ``classes_`` in
any order (a CLIP zero-shot head keeps the order of its class names) and may know
only some of the ensemble's classes. One public, chunked method,
:meth:`_BaseComponentEnsemble.iter_component_outputs`, yields for each chunk of rows
every component's logits and calibrated probabilities placed in the columns of
``classes_`` (or of a class map's targets); :meth:`component_proba`,
:meth:`component_logits`, ``predict_proba``, the CV search, class maps, sweeps and
the command line all go through it, and :meth:`mix_outputs` turns one chunk's
outputs into the ensemble's probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
from scipy.sparse import issparse
from scipy.sparse import vstack as sparse_vstack
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, gen_batches, get_tags
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    has_fit_parameter,
    validate_data,
)

from ._calibration import (
    ChunkedTemperature,
    component_logits,
    fit_confidence_temperature,
    fit_temperature,
    out_of_fold_logits,
    scaled_softmax,
)
from ._classmap import ClassMappedClassifier, map_logits, parse_class_map
from ._heldout import check_validation, validation_weight
from ._label_bias import estimate_label_bias
from ._labels import (
    check_label_kinds,
    check_labels_known,
    column_positions,
    label_kind,
    union_classes,
)
from .utils import chunk_n_rows

COMPONENTS = ("zeroshot", "finetuned")

# float64 values held per row while a chunk is predicted: per class, the logits,
# scaled and aligned probabilities of both components and the mix (8); per
# feature, the copies the components and the embedding make (3).
_VALUES_PER_CLASS = 8
_VALUES_PER_FEATURE = 3


def used_as_is(estimator) -> bool:
    """Whether an ensemble should neither fit nor cross-validate ``estimator``.

    True for a :class:`~sklearn.frozen.FrozenEstimator` (how prefit models come
    in) and for estimators whose scikit-learn tags say they need no fit
    (``requires_fit=False``: the fixed heads of skvrf, whose weights come from
    elsewhere). Such a component is calibrated on ``X_val``, or on the training
    rows, since it was not fitted on them.

    A class attribute ``learns_nothing = True`` (skvrf 0.1.0.dev0's rule) still
    counts, with a FutureWarning: declare ``requires_fit=False`` in
    ``__sklearn_tags__`` or wrap the estimator in a FrozenEstimator.

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
    >>> from skvrf._base import used_as_is
    >>> used_as_is(ZeroShotClassifier(np.eye(2)))
    True
    >>> used_as_is(LogisticRegression())
    False
    >>> lr = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    >>> used_as_is(FrozenEstimator(lr))
    True
    """
    if isinstance(estimator, FrozenEstimator):
        return True
    if not get_tags(estimator).requires_fit:
        return True
    if getattr(type(estimator), "learns_nothing", False):
        warnings.warn(
            f"{type(estimator).__name__} declares `learns_nothing = True`; that "
            "rule is deprecated: set `tags.requires_fit = False` in its "
            "__sklearn_tags__, or pass FrozenEstimator(estimator).",
            FutureWarning,
            stacklevel=3,
        )
        return True
    return False


def check_fit_sample_weight(sample_weight, X, owner: str):
    """``sample_weight`` of ``fit`` as float64 of shape ``(n_samples,)``:
    finite, non-negative and not all 0; None stays None."""
    if sample_weight is None:
        return None
    w = _check_sample_weight(
        sample_weight, X, dtype=np.float64, ensure_non_negative=True
    )
    if not w.any():
        raise ValueError(
            f"{owner}: every sample_weight is 0; at least one row must count."
        )
    return w


def sample_weight_fit_params(estimator, sample_weight):
    """``fit`` parameters that give ``sample_weight`` to ``estimator``, when
    metadata routing is off: ``{"sample_weight": w}`` when its ``fit`` takes
    it, ``{"<last step>__sample_weight": w}`` for a Pipeline whose last step's
    does; None when it takes none."""
    if has_fit_parameter(estimator, "sample_weight"):
        return {"sample_weight": sample_weight}
    if isinstance(estimator, Pipeline) and estimator.steps:
        name, last = estimator.steps[-1]
        if last not in (None, "passthrough") and has_fit_parameter(
            last, "sample_weight"
        ):
            return {f"{name}__sample_weight": sample_weight}
    return None


def components_router(owner) -> MetadataRouter:
    """A router for ``owner``, which consumes metadata itself and routes its
    ``fit``'s metadata to the ``fit`` of each component
    (``owner.zeroshot_estimator``, ``owner.finetuned_estimator``)."""
    router = MetadataRouter(owner=owner).add_self_request(owner)
    for name in COMPONENTS:
        router.add(
            **{f"{name}_estimator": getattr(owner, f"{name}_estimator")},
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )
    return router


@dataclass(frozen=True)
class ComponentOutputs:
    """One row chunk's component outputs, columns matched to labels.

    Yielded by :meth:`_BaseComponentEnsemble.iter_component_outputs`.

    Attributes
    ----------
    rows : slice
        The chunk's rows in the input.
    classes : ndarray of shape (n_classes,)
        Label of each column: the ensemble's ``classes_``, or a class map's
        targets.
    logits : dict of str to ndarray of shape (n_rows, n_classes)
        Each component's logits (``"zeroshot"``, ``"finetuned"``), before
        calibration; ``-inf`` in the columns of labels the component does not
        know (and, under a class map, the max logit over each target's sources).
    proba : dict of str to ndarray of shape (n_rows, n_classes)
        Each component's calibrated probabilities: ``softmax(logits / T)``, zero
        where the component does not know the label.
    extras : dict
        Per-row values of the ensemble (VRF: ``"embedding"``, the rows in the
        space of its distances).
    """

    rows: slice
    classes: np.ndarray
    logits: dict = field(repr=False)
    proba: dict = field(repr=False)
    extras: dict = field(repr=False, default_factory=dict)


class _BaseComponentEnsemble(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """Base of ensembles of a zero-shot and a fine-tuned classifier.

    Subclasses implement ``_fit_ensemble(X, y, outputs, val_outputs, y_val,
    sample_weight)``
    (state beyond the components, from the training rows' outputs and, when
    ``X_val`` is given, its outputs) and ``_mix(outputs)`` (the ensemble's
    probabilities from one chunk's :class:`ComponentOutputs`), and may override
    ``_outputs(X)`` to compute extra per-row quantities once per chunk.

    ``logit_adjustment="gla"`` subtracts a label bias from the zero-shot
    component's logits everywhere (``estimate_label_bias``, fitted on the
    training rows before calibration); the default, None, leaves them as they
    are, so that an ensemble that weighs only the zero-shot component predicts
    exactly as that component.
    """

    # whether _fit_ensemble reads X_val's outputs (else they are computed only
    # for calibration)
    _fit_uses_val_outputs = False
    _parameter_constraints: dict = {
        "zeroshot_estimator": [HasMethods(["fit", "predict"])],
        "finetuned_estimator": [HasMethods(["fit", "predict"])],
        "calibrate": ["boolean"],
        "calibration_method": [StrOptions({"log_loss", "confidence"})],
        "calibration_cv": ["cv_object"],
        "logit_adjustment": [StrOptions({"gla"}), None],
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
        logit_adjustment=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.zeroshot_estimator = zeroshot_estimator
        self.finetuned_estimator = finetuned_estimator
        self.calibrate = calibrate
        self.calibration_method = calibration_method
        self.calibration_cv = calibration_cv
        self.logit_adjustment = logit_adjustment
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(
        # the components validate their own parameters
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, *, X_val=None, y_val=None, sample_weight=None, **fit_params):
        """Fit the components, calibrate them and fit the ensemble.

        Components used as they are (frozen, or fixed heads) are evaluated on
        chunks of rows sized by scikit-learn's ``working_memory``: their outputs
        on the training rows, the data of their calibration temperatures and the
        ensemble's own state are computed chunk by chunk, never held for every
        row at once (the steps: ``_fit_chunked``; :func:`skvrf.stores.fit_store`
        fits from a feature store the same way without holding ``X``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Training input, usually CLIP image features. The ensemble leaves dtype
            checks to its components (as a Pipeline does), so the components may
            take image paths or text.
        y : array-like of shape (n_samples,)
            Labels: numbers or strings, of the same kind as every component's
            ``classes_`` (a mix of kinds is an error, never a conversion).
        X_val : array-like or HeldOut, default=None
            Held-out rows used to calibrate every component (instead of the
            training rows for fixed components and out-of-fold predictions for the
            ones fitted here). Never pass test data. An array as long as ``X`` is
            refused (scikit-learn's model selection would split it into the
            folds): pass ``HeldOut(X_val, y_val)`` instead, which is passed on
            whole.
        y_val : array-like of shape (n_val_samples,), default=None
            Labels of ``X_val`` (None when ``X_val`` is a HeldOut).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training rows (non-negative; None: all 1). They are
            given to each component fitted here whose ``fit`` takes them (to a
            Pipeline's last step), and the ensemble uses them itself: in the
            temperatures calibrated on the training rows (weighted log-loss or
            confidence), the zero-shot label bias (``logit_adjustment``) and
            the ensemble's own state (VRF: a row of weight 0 is never in the
            ZSF set, and ``k`` counts weight). An integer weight acts as that
            many copies of the row; weight 0 as its absence. ``X_val``'s rows
            are weighted by ``HeldOut(X_val, y_val, sample_weight=...)``. With
            metadata routing enabled
            (``sklearn.set_config(enable_metadata_routing=True)``), the
            components get what they request (``set_fit_request``) instead.
        **fit_params : dict
            Other metadata, routed to the components' ``fit`` (only with
            metadata routing enabled).

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        validate_data(self, X, skip_check_array=True)
        y = self._check_fit_y(X, y)
        sample_weight = check_fit_sample_weight(sample_weight, X, type(self).__name__)
        routed = self._route_fit_params(sample_weight, fit_params)
        n = _num_samples(X)

        def chunks(size):
            for rows in gen_batches(n, size):
                yield (
                    rows,
                    (X if rows.stop - rows.start == n else _safe_indexing(X, rows)),
                )

        return self._fit_chunked(chunks, y, X, X, X_val, y_val, sample_weight, routed)

    def _route_fit_params(self, sample_weight, fit_params):
        """Each component's ``fit`` parameters: routed by scikit-learn's
        metadata routing when it is enabled, else ``sample_weight`` to each
        component whose ``fit`` takes it (a warning for one fitted here
        that does not)."""
        if _routing_enabled():
            routed = process_routing(
                self, "fit", sample_weight=sample_weight, **fit_params
            )
            return {name: dict(routed[f"{name}_estimator"].fit) for name in COMPONENTS}
        if fit_params:
            raise ValueError(
                f"{type(self).__name__}.fit got unexpected parameters "
                f"{sorted(fit_params)}; other metadata than sample_weight is "
                "routed to the components only with metadata routing enabled "
                "(sklearn.set_config(enable_metadata_routing=True))."
            )
        params = {name: {} for name in COMPONENTS}
        if sample_weight is None:
            return params
        for name in COMPONENTS:
            est = getattr(self, f"{name}_estimator")
            if used_as_is(est):
                continue  # not fitted here: nothing to weight
            given = sample_weight_fit_params(est, sample_weight)
            if given is None:
                warnings.warn(
                    f"The {name} component ({type(est).__name__}) does not take "
                    "sample_weight in fit: it is fitted unweighted; "
                    f"{type(self).__name__} uses the weights in its own steps.",
                    UserWarning,
                    stacklevel=3,
                )
                continue
            params[name] = given
        return params

    def get_metadata_routing(self):
        """How ``fit``'s metadata reach the components (metadata routing).

        The ensemble consumes ``sample_weight`` itself (see :meth:`fit`) and
        routes ``fit``'s metadata to each component's ``fit``, as each
        requests (``set_fit_request``).

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter`.
        """
        return components_router(self)

    @_fit_context(prefer_skip_nested_validation=False)
    def _fit_store(self, store, X_val=None, y_val=None):
        """``fit`` on a feature store's chunks (see :func:`skvrf.stores.fit_store`)."""
        # a few rows stand for X where only its columns matter (held all along)
        sample = np.array(next(store.iter_chunks(dtype=np.float32)).X[:256])
        validate_data(self, sample, skip_check_array=True)
        y = self._check_fit_y(np.empty((store.n_rows, 0)), store.labels())

        def chunks(size):
            start = 0
            for chunk in store.iter_chunks(dtype=np.float32):
                for part in gen_batches(chunk.X.shape[0], size):
                    rows = slice(start + part.start, start + part.stop)
                    yield rows, chunk.X[part]
                start += chunk.X.shape[0]

        return self._fit_chunked(chunks, y, None, sample, X_val, y_val, None, None)

    def _check_fit_y(self, X, y):
        y = column_or_1d(y, warn=True)
        label_kind(y, "y")
        check_classification_targets(y)
        check_consistent_length(X, y)
        return y

    def _fit_chunked(
        self, chunks, y, X, sample, X_val, y_val, sample_weight=None, routed=None
    ):
        """Fit from ``chunks(size)``: ``(rows, X_rows)`` of at most ``size`` rows.

        ``X`` is the whole input, or None when the rows come from a store
        (``sample``, the first chunk, then stands in for it where only its
        columns matter). ``sample_weight``: the training rows' weights (None:
        all 1); ``routed``: each component's ``fit`` parameters. The whole
        fit, in order; every function it calls
        returns a value and calls nothing back, except the subclass hooks
        (``_prepare_outputs``, ``_outputs``, ``_start_fit``, ``_fit_chunk``,
        ``_end_fit``):

        1. check the held-out rows (``skvrf._heldout``), fit or keep the
           components, and take ``classes_`` and each component's columns from
           their labels (``skvrf._labels``);
        2. prepare the ensemble's outputs (VRF: its embedding);
        3. with ``logit_adjustment="gla"``, the zero-shot label bias
           (``skvrf._label_bias``; it needs every training row's logits);
        4. the temperatures known before the pass over the training rows (on
           ``X_val``, or out of fold), and a
           :class:`~skvrf._calibration.ChunkedTemperature` for each component
           calibrated on the training rows;
        5. one pass over the chunks: each chunk's outputs feed those
           temperatures and ``_fit_chunk``;
        6. one more pass per further step of each temperature not yet found
           (2 to 4 passes per component in the tests and the benchmark);
        7. ``_end_fit``: the ensemble's own state (VRF: ZSF set and bank).
        """
        owner = type(self).__name__
        w_val = validation_weight(X_val)
        X_val, y_val = check_validation(sample if X is None else X, X_val, y_val, owner)
        check_label_kinds(y=y, y_val=y_val)
        routed = routed or {name: {} for name in COMPONENTS}
        sw = sample_weight
        fitted = self._fit_components(X, sample, y, routed)
        self.zeroshot_estimator_ = fitted["zeroshot"]
        self.finetuned_estimator_ = fitted["finetuned"]
        classes = {
            f"{name}_estimator_.classes_": np.asarray(fitted[name].classes_)
            for name in COMPONENTS
        }
        check_label_kinds(y=y, **classes, y_val=y_val)
        self.classes_ = union_classes(**classes)
        check_labels_known(y, self.classes_, "y", owner)
        if y_val is not None:
            check_labels_known(y_val, self.classes_, "y_val", owner)
        self._columns = {
            name: column_positions(c, self.classes_, name=key)
            for name, (key, c) in zip(COMPONENTS, classes.items())
        }
        embedding = getattr(self, "embedding", "auto")
        if X is None and not isinstance(embedding, str) and not used_as_is(embedding):
            raise ValueError(
                f"{owner}: fitting from a store needs an embedding used as it is "
                "(FrozenEstimator(<fitted transformer>)); this one would be fitted "
                "on all of X."
            )
        self._prepare_outputs(sample if X is None else X, y)
        size = self._chunk_rows()
        self.zeroshot_bias_ = None
        if self.logit_adjustment == "gla":  # an L-BFGS fit on every row at once
            zs = [self._component_output("zeroshot", c) for _, c in chunks(size)]
            zs = zs[0] if len(zs) == 1 else np.concatenate(zs)
            self.zeroshot_bias_ = estimate_label_bias(
                zs, y, self.zeroshot_estimator_.classes_, sw
            )
            del zs
        val_outputs = None
        if X_val is not None and (self.calibrate or self._fit_uses_val_outputs):
            val_outputs = self._adjusted_outputs(X_val)
        temps, streamed = self._temperatures_before_pass(
            X, y, y_val, val_outputs, sw, routed, w_val
        )
        n = y.shape[0]
        state = self._start_fit(n)
        state["sample_weight"] = sw
        for rows, chunk in chunks(size):
            outputs = self._adjusted_outputs(chunk)
            sw_rows = None if sw is None else sw[rows]
            for name, temp in streamed.items():
                if rows.stop - rows.start == n:  # one chunk: the whole-array fit
                    temps[name] = self._temperature(name, outputs[name], y, sw)
                    temp.temperature = temps[name]
                else:
                    temp.add(outputs[name], y[rows], sw_rows)
            self._fit_chunk(state, rows, y[rows], outputs)
            del outputs
        for name, temp in streamed.items():
            if temp.done:
                continue
            temp.finish_pass()
            while not temp.done:  # each further Newton step: one more pass
                for rows, chunk in chunks(size):
                    sw_rows = None if sw is None else sw[rows]
                    temp.add(self._adjusted_output(name, chunk), y[rows], sw_rows)
                temp.finish_pass()
            temps[name] = temp.temperature
        self.calibration_temperatures_ = temps
        self._end_fit(state, X, y, val_outputs, y_val)
        return self

    def _fit_components(self, X, sample, y, routed):
        """The two components, cloned and fitted, or kept (:func:`used_as_is`).

        ``X`` None: the rows come from a store, and only components used as they
        are can be fitted (on ``sample``, the first chunk, which they only
        validate).
        """
        fitted = {}
        for name in COMPONENTS:
            est = getattr(self, f"{name}_estimator")
            if used_as_is(est):
                # Fixed heads are fitted without y: a label they do not know is
                # the ensemble's business (it may be known to the other one).
                est_ = clone(est)
                if not isinstance(est_, FrozenEstimator):
                    est_.fit(sample)  # validates, records classes_
            elif X is None:
                raise ValueError(
                    f"{type(self).__name__}: fitting from a store streams the rows "
                    f"through components used as they are, but the {name} component "
                    f"({type(est).__name__}) would be fitted on all of X. Pass "
                    "FrozenEstimator(<fitted estimator>), or read the store "
                    "(store.read()) and call fit(X, y)."
                )
            else:
                est_ = clone(est).fit(X, y, **routed[name])
            fitted[name] = est_
        return fitted

    def _temperature(self, name, logits, y, sample_weight=None):
        """The temperature of component ``name`` fitted on whole logits."""
        fit = (
            fit_temperature
            if self.calibration_method == "log_loss"
            else fit_confidence_temperature
        )
        # Label-based: the logit columns are in the order of the component's classes_.
        classes = getattr(self, f"{name}_estimator_").classes_
        return fit(logits, y, classes, sample_weight)

    def _temperatures_before_pass(
        self, X, y, y_val, val_outputs, sample_weight=None, routed=None, w_val=None
    ):
        """``(temperatures, streamed)``: those known before the pass over the
        training rows (on ``X_val``, or out of fold for a component fitted here;
        1 without calibration), and a :class:`ChunkedTemperature` for each
        component calibrated on the training rows."""
        temps = {name: 1.0 for name in COMPONENTS}
        streamed = {}
        if not self.calibrate:
            return temps, streamed
        for name in COMPONENTS:
            estimator = getattr(self, f"{name}_estimator")
            if val_outputs is not None:
                temps[name] = self._temperature(name, val_outputs[name], y_val, w_val)
            elif used_as_is(estimator):
                classes = getattr(self, f"{name}_estimator_").classes_
                streamed[name] = ChunkedTemperature(classes, self.calibration_method)
            else:
                logits = out_of_fold_logits(
                    estimator,
                    X,
                    y,
                    cv=self.calibration_cv,
                    random_state=self.random_state,
                    n_jobs=self.n_jobs,
                    params=(routed or {}).get(name) or None,
                )
                if name == "zeroshot" and self.zeroshot_bias_ is not None:
                    logits = logits - self.zeroshot_bias_
                temps[name] = self._temperature(name, logits, y, sample_weight)
        return temps, streamed

    def _adjusted_outputs(self, X):
        """``_outputs(X)`` with the zero-shot logits adjusted (``logit_adjustment``)."""
        outputs = self._outputs(X)
        if getattr(self, "zeroshot_bias_", None) is not None:
            outputs["zeroshot"] = outputs["zeroshot"] - self.zeroshot_bias_
        return outputs

    def _adjusted_output(self, name, X):
        """One component's logits, adjusted as in ``_adjusted_outputs``."""
        logits = self._component_output(name, X)
        if name == "zeroshot" and getattr(self, "zeroshot_bias_", None) is not None:
            logits = logits - self.zeroshot_bias_
        return logits

    # ------------------------------------------------------- subclass hooks
    def _prepare_outputs(self, X, y):
        """Fit state needed by ``_outputs`` (e.g. an embedding); default none."""

    def _outputs(self, X):
        """Per-row outputs computed once: each component's logits, in the
        component's own column order, plus extras (other keys)."""
        return {
            "zeroshot": component_logits(self.zeroshot_estimator_, X),
            "finetuned": component_logits(self.finetuned_estimator_, X),
        }

    def _component_output(self, name, X):
        """One component's logits (as ``_outputs(X)[name]``, the other not computed)."""
        return component_logits(getattr(self, f"{name}_estimator_"), X)

    def _fit_ensemble(
        self, X, y, outputs, val_outputs=None, y_val=None, sample_weight=None
    ):
        """Fit the ensemble's own state from the training outputs (and those of
        ``X_val``, when given), the training rows weighted by ``sample_weight``
        (None: all 1)."""

    # ``fit`` calls ``_start_fit(n_samples)`` (and puts the rows' weights, or
    # None, in its state's "sample_weight"), then ``_fit_chunk`` with each chunk's
    # outputs, then ``_end_fit``. By default they gather the chunks' outputs and
    # call ``_fit_ensemble`` with all of them; an ensemble that needs only per-row
    # summaries (VRF's ZSF set) overrides all three and holds no more.
    def _start_fit(self, n_samples):
        return {"n": n_samples, "parts": []}

    def _fit_chunk(self, state, rows, y, outputs):
        state["parts"].append((rows, outputs))

    def _end_fit(self, state, X, y, val_outputs, y_val):
        parts, sample_weight = state["parts"], state.get("sample_weight")
        if len(parts) == 1:
            outputs = parts[0][1]
        else:
            outputs = {}
            for key, first in parts[0][1].items():
                if issparse(first):
                    outputs[key] = sparse_vstack([o[key] for _, o in parts])
                    continue
                first = np.asarray(first)
                out = np.empty((state["n"], *first.shape[1:]), dtype=first.dtype)
                for rows, o in parts:
                    out[rows] = o[key]
                outputs[key] = out
        state.clear()
        self._fit_ensemble(X, y, outputs, val_outputs, y_val, sample_weight)

    def _mix(self, outputs):
        raise NotImplementedError

    # ------------------------------------------------ the output protocol
    def _aligned_logits(self, name, logits, sources=None):
        """A component's logits in the columns of ``classes_`` (or a class map)."""
        if sources is not None:
            fitted = getattr(self, f"{name}_estimator_")
            return map_logits(logits, fitted.classes_, sources)
        columns = self._columns[name]
        n_classes = self.classes_.shape[0]
        if columns.shape[0] == n_classes and np.array_equal(
            columns, np.arange(n_classes)
        ):
            return np.asarray(logits, dtype=np.float64)
        full = np.full((logits.shape[0], n_classes), -np.inf)
        full[:, columns] = logits
        return full

    def _chunk_rows(self, n_columns=None):
        """Rows per chunk so that a chunk's temporaries fit sklearn's working_memory."""
        n_features = getattr(self, "n_features_in_", 0)
        n_columns = self.classes_.shape[0] if n_columns is None else n_columns
        per_row = 8 * (
            _VALUES_PER_CLASS * max(2, n_columns, self.classes_.shape[0])
            + _VALUES_PER_FEATURE * n_features
        )
        return chunk_n_rows(per_row)

    def _parse_class_map(self, class_map):
        """``(targets, sources)`` of a class map, checked against each component."""
        targets, sources = parse_class_map(class_map, self.classes_)
        all_sources = np.concatenate(sources)
        for name in COMPONENTS:
            fitted = getattr(self, f"{name}_estimator_")
            if not np.isin(all_sources, fitted.classes_).any():
                raise ValueError(
                    f"The {name} component knows none of the class map's "
                    "source classes."
                )
        return targets, sources

    def iter_component_outputs(
        self, X, *, class_map=None
    ) -> Iterator[ComponentOutputs]:
        """Each component's outputs on chunks of rows, columns matched by label.

        The one place where component columns meet the ensemble's: every
        component's logits are placed in the column of their label in
        ``classes_`` (or mapped through ``class_map``), whatever the order of the
        component's own ``classes_``, and softmaxed with its calibration
        temperature. Chunks are sized by scikit-learn's ``working_memory``, so
        memory stays bounded for any number of rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        class_map : sequence or mapping, default=None
            Kept labels of ``classes_``, or a mapping target label -> labels of
            ``classes_`` pooled by max logit (see :meth:`with_class_map`): each
            component's logits are mapped before its calibrated softmax.

        Yields
        ------
        outputs : ComponentOutputs
            One chunk's rows, column labels, logits, calibrated probabilities and
            the ensemble's extras.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skvrf import OutputSpaceEnsembleClassifier, ZeroShotClassifier
        >>> rng = np.random.default_rng(0)
        >>> centers = rng.normal(size=(3, 4))
        >>> y = rng.integers(0, 3, 60)
        >>> X = centers[y] + 0.3 * rng.normal(size=(60, 4))
        >>> names = np.array(["b", "a", "c"])  # a head in its own class order
        >>> zs = ZeroShotClassifier(centers, classes=names)
        >>> ose = OutputSpaceEnsembleClassifier(
        ...     zs, LogisticRegression(), calibrate=False).fit(X, names[y])
        >>> out = next(ose.iter_component_outputs(X[:2]))
        >>> out.classes.tolist()
        ['a', 'b', 'c']
        >>> head = zs.fit(X).predict_proba(X[:2])  # columns b, a, c
        >>> bool(np.allclose(out.proba["zeroshot"], head[:, [1, 0, 2]]))
        True
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
        if class_map is None:
            targets, sources = self.classes_, None
        else:
            targets, sources = self._parse_class_map(class_map)
        batches = list(gen_batches(n, self._chunk_rows(targets.shape[0])))
        if self.verbose and len(batches) > 1:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=type(self).__name__, unit="chunk")
        temps = self.calibration_temperatures_
        for rows in batches:
            chunk = X if rows.stop - rows.start == n else _safe_indexing(X, rows)
            raw = self._adjusted_outputs(chunk)
            logits = {
                name: self._aligned_logits(name, raw.pop(name), sources)
                for name in COMPONENTS
            }
            proba = {
                name: scaled_softmax(logits[name], temps[name]) for name in COMPONENTS
            }
            yield ComponentOutputs(rows, targets, logits, proba, raw)

    def _collect(self, X, func, class_map=None):
        """Apply ``func(outputs)`` to each chunk's outputs; stack the results.

        Results (an array, or a tuple of arrays, stacked along axis 0) are
        written into one preallocated output, so only one chunk's temporaries
        live at a time.
        """
        outs = None
        is_tuple = False
        for outputs in self.iter_component_outputs(X, class_map=class_map):
            result = func(outputs)
            is_tuple = isinstance(result, tuple)
            parts = result if is_tuple else (result,)
            rows = outputs.rows
            if outs is None:
                n = _num_samples(X)
                if rows.stop - rows.start == n:
                    return result  # a single chunk: no copy
                outs = [np.empty((n, *p.shape[1:]), dtype=p.dtype) for p in parts]
            for out, part in zip(outs, parts):
                out[rows] = part
            del outputs, result, parts
        return tuple(outs) if is_tuple else outs[0]

    def component_proba(self, X, *, class_map=None) -> dict:
        """Each component's calibrated probabilities, columns of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        class_map : sequence or mapping, default=None
            Map each component's logits first (see :meth:`with_class_map`).

        Returns
        -------
        proba : dict
            ``{"zeroshot": ndarray, "finetuned": ndarray}``, each of shape
            ``(n_samples, n_classes)`` with columns in the order of ``classes_``
            (or of the class map's targets) and zeros where the component does
            not know the label.
        """
        zs, ft = self._collect(
            X, lambda o: (o.proba["zeroshot"], o.proba["finetuned"]), class_map
        )
        return {"zeroshot": zs, "finetuned": ft}

    def component_logits(self, X, *, class_map=None) -> dict:
        """Each component's logits (before calibration), columns of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        class_map : sequence or mapping, default=None
            Map each component's logits (see :meth:`with_class_map`).

        Returns
        -------
        logits : dict
            ``{"zeroshot": ndarray, "finetuned": ndarray}``, columns in the order
            of ``classes_`` (or of the class map's targets), ``-inf`` where the
            component does not know the label. Divide by
            ``calibration_temperatures_[name]`` for the calibrated logits.
        """
        zs, ft = self._collect(
            X, lambda o: (o.logits["zeroshot"], o.logits["finetuned"]), class_map
        )
        return {"zeroshot": zs, "finetuned": ft}

    def mix_outputs(self, outputs: ComponentOutputs) -> np.ndarray:
        """The ensemble's probabilities for one chunk of component outputs.

        Parameters
        ----------
        outputs : ComponentOutputs
            As yielded by :meth:`iter_component_outputs` (with or without a class
            map).

        Returns
        -------
        proba : ndarray of shape (n_rows, n_classes)
            Columns in the order of ``outputs.classes``.
        """
        check_is_fitted(self)
        return self._mix(outputs)

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
        return self._collect(X, self._mix)

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
        index = self._collect(X, lambda o: np.argmax(self._mix(o), axis=1))
        return self.classes_[index]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = all(
            get_tags(est).input_tags.sparse
            for est in (self.zeroshot_estimator, self.finetuned_estimator)
        )
        return tags
