"""``VRFEnsembleClassifierCV``: VRF with ``k``, ``threshold`` and ``temperature``
chosen by cross-validation, the way ``LogisticRegressionCV`` chooses ``C``.

None of the searched parameters changes what a fit learns (the components, their
calibration temperatures and the Zero-Shot Failure bank). So each fold fits one
:class:`VRFEnsembleClassifier`, computes its validation rows' component
probabilities and the distances for every candidate ``k`` once, and scores each
candidate from those. Scores are computed by scikit-learn's own scorers on a view
of the fold's fit whose predictions are precomputed, so they are those that
``GridSearchCV(VRFEnsembleClassifier(...), ...)`` reports on the same folds.
Accuracy (the default) is the exception: it is counted chunk by chunk with the
weights broadcast over the grid, which keeps memory bounded by the chunk for any
number of validation rows.
"""

from __future__ import annotations

import inspect
import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from scipy.stats import rankdata
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.metrics import accuracy_score, check_scoring, get_scorer_names
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._heldout import HeldOut, check_validation
from ._labels import check_label_kinds, label_kind, union_classes
from ._vrf import VRFEnsembleClassifier, resolve_k
from ._weighting import mix, vrf_weights

__all__ = ["VRFEnsembleClassifierCV"]

# searched parameter of VRFEnsembleClassifier -> the CV's parameter of candidates
_SEARCHED = {"k": "ks", "threshold": "thresholds", "temperature": "temperatures"}
_COMPONENTS = ("zeroshot_estimator", "finetuned_estimator")
# VRF's parameters that the CV takes over as they are (all but the searched ones)
_SHARED = [
    p
    for name, p in inspect.signature(VRFEnsembleClassifier.__init__).parameters.items()
    if name not in ("self", *_COMPONENTS, *_SEARCHED)
]
# VRF's fit warning when its threshold lies outside the observed distances
_THRESHOLD_WARNING = "threshold=.* lies (above|below) every distance"
# Bytes per (candidate, row, class) cell of the broadcast accuracy count.
_BYTES_PER_GRID_CELL = 8 * 4


def _check_grid(search):
    """The candidate values, each checked against VRF's own constraints."""
    grid = {}
    for param, attr in _SEARCHED.items():
        values = list(getattr(search, attr))
        if not values:
            raise ValueError(f"{attr} must hold at least one value.")
        constraint = {param: VRFEnsembleClassifier._parameter_constraints[param]}
        for v in values:
            if isinstance(v, bool) or (isinstance(v, float) and not np.isfinite(v)):
                raise ValueError(f"{attr} must hold valid values of {param}: {v!r}.")
            try:
                validate_parameter_constraints(
                    constraint, {param: v}, caller_name="VRFEnsembleClassifier"
                )
            except ValueError as exc:
                raise ValueError(f"{attr} must hold valid values: {exc}") from None
        grid[param] = values
    return grid


class _PrecomputedView:
    """A fold's fitted VRF with one candidate's parameters, whose probabilities on
    the fold's validation rows are already known: scorers read them instead of
    predicting again. Any other input, or any other method, goes to the
    candidate itself."""

    def __init__(self, candidate, X, proba):
        self._candidate, self._X, self._proba = candidate, X, proba
        self.classes_ = candidate.classes_

    def __sklearn_tags__(self):
        return self._candidate.__sklearn_tags__()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._candidate, name)

    def predict_proba(self, X):
        if X is self._X:
            return self._proba
        return self._candidate.predict_proba(X)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None):
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)


def _fold_outputs(est, X, ks):
    """Components' calibrated probabilities and the distances for every k."""
    p_zs, p_ft, dist = [], [], []
    for out in est.iter_component_outputs(X):
        p_zs.append(out.proba["zeroshot"])
        p_ft.append(out.proba["finetuned"])
        dist.append(est.bank_distances(out.extras["embedding"], ks))
    return np.concatenate(p_zs), np.concatenate(p_ft), np.concatenate(dist)


def _accuracy_counts(est, X, y, ks, thresholds, temperatures):
    """Correct predictions and the sum of the fine-tuned weights of every (k,
    threshold, temperature), counted chunk by chunk with the weights broadcast
    over thresholds and temperatures."""
    from sklearn import get_config

    thr = np.asarray(thresholds, dtype=np.float64)[:, None, None]
    temp = np.asarray(temperatures, dtype=np.float64)[None, :, None]
    classes = est.classes_
    pos = np.clip(np.searchsorted(classes, y), 0, classes.shape[0] - 1)
    target = np.where(classes[pos] == y, pos, -1)
    budget = get_config()["working_memory"] * 2**20
    cells = _BYTES_PER_GRID_CELL * thr.size * temp.size * max(2, classes.shape[0])
    step = max(1, int(budget // cells))
    correct = np.zeros((len(ks), thr.size, temp.size))
    weight = np.zeros((len(ks), thr.size, temp.size))
    for out in est.iter_component_outputs(X):
        dist = est.bank_distances(out.extras["embedding"], ks)
        p_zs, p_ft = out.proba["zeroshot"], out.proba["finetuned"]
        t_chunk = target[out.rows]
        for s in range(0, t_chunk.shape[0], step):
            rows = slice(s, s + step)
            for j in range(len(ks)):
                w = vrf_weights(dist[rows, j][None, None, :], thr, temp, est.weighting)
                proba = mix(p_zs[rows], p_ft[rows], w[..., None], est.mixing)
                correct[j] += (proba.argmax(axis=-1) == t_chunk[rows]).sum(axis=-1)
                weight[j] += w.sum(axis=-1)
    return correct, weight


def _fit_and_score_fold(template, X, y, train, test, held_out, grid, scorer):
    """Fit one VRF on a fold's training rows; score every candidate on the rest.

    Returns the scores in ``ParameterGrid`` order, the fit and score times, the
    fold fit's classes, the k each candidate actually used and each candidate's
    mean weight of the fine-tuned component on the fold's validation rows.
    """
    t0 = time.perf_counter()
    X_train, y_train = _safe_indexing(X, train), y[train]
    # k=1 never triggers a clipping warning; each candidate's k is resolved below
    with warnings.catch_warnings():
        # the template's threshold is no candidate's: the refit checks the chosen one
        warnings.filterwarnings("ignore", message=_THRESHOLD_WARNING)
        est = clone(template).set_params(k=1).fit(X_train, y_train, X_val=held_out)
    fit_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_zsf = est.zsf_indices_.size
    with warnings.catch_warnings():
        # clipping is reported once for the whole search (_warn_clipped)
        warnings.filterwarnings("ignore", message="k=.* is larger than the Zero")
        k_used = {i: resolve_k(k, n_zsf, len(train)) for i, k in enumerate(grid["k"])}
    ks = sorted(set(k_used.values())) if n_zsf else [1]
    X_test, y_test = _safe_indexing(X, test), y[test]
    candidates = list(ParameterGrid({p: range(len(v)) for p, v in grid.items()}))
    scores, failed = np.empty(len(candidates)), False
    weights = np.empty(len(candidates))
    if scorer == "accuracy":
        correct, weight = _accuracy_counts(
            est, X_test, y_test, ks, grid["threshold"], grid["temperature"]
        )
        for i, c in enumerate(candidates):
            j = ks.index(k_used[c["k"]]) if n_zsf else 0
            scores[i] = correct[j, c["threshold"], c["temperature"]] / len(test)
            weights[i] = weight[j, c["threshold"], c["temperature"]] / len(test)
    else:
        p_zs, p_ft, dist = _fold_outputs(est, X_test, ks)
        for i, c in enumerate(candidates):
            k, a, b = (grid[p][c[p]] for p in ("k", "threshold", "temperature"))
            j = ks.index(k_used[c["k"]]) if n_zsf else 0
            w = vrf_weights(dist[:, j], a, b, est.weighting)
            weights[i] = w.mean()
            candidate = est.with_params(
                k=k_used[c["k"]] or k, threshold=a, temperature=b
            )
            view = _PrecomputedView(candidate, X_test, mix(p_zs, p_ft, w, est.mixing))
            try:
                scores[i] = scorer(view, X_test, y_test)
            except Exception:  # as GridSearchCV with error_score=nan
                scores[i], failed = np.nan, True
    if failed:
        warnings.warn(
            "Scoring failed for some candidates on a fold (as GridSearchCV does "
            "with error_score=nan, their score is nan): e.g. log-loss needs every "
            "class of the ensemble in the fold's validation labels.",
            UserWarning,
            stacklevel=2,
        )
    used = [k_used[c["k"]] for c in candidates]
    score_time = time.perf_counter() - t0
    return scores, fit_time, score_time, est.classes_, used, weights


def _cv_results(grid, folds):
    """``cv_results_`` in ``GridSearchCV``'s layout (ParameterGrid order)."""
    params = list(ParameterGrid(grid))
    n_candidates = len(params)
    scores = np.column_stack([f[0] for f in folds])  # (n_candidates, n_splits)
    results = {}

    def store(key, array, splits=False):
        if splits:
            for i in range(array.shape[1]):
                results[f"split{i}_{key}"] = array[:, i]
        results[f"mean_{key}"] = means = array.mean(axis=1)
        results[f"std_{key}"] = np.sqrt(((array - means[:, None]) ** 2).mean(axis=1))
        return means

    store("fit_time", np.tile([f[1] for f in folds], (n_candidates, 1)))
    store(
        "score_time", np.tile([f[2] / n_candidates for f in folds], (n_candidates, 1))
    )
    for name in sorted(grid):
        column = np.array([p[name] for p in params])
        dtype = object if column.dtype.kind in "US" else column.dtype
        results[f"param_{name}"] = np.ma.MaskedArray(
            np.array([p[name] for p in params], dtype=dtype),
            mask=np.zeros(n_candidates, dtype=bool),
        )
    results["params"] = params
    for i, fold in enumerate(folds):
        results[f"split{i}_k_used"] = np.asarray(fold[4], dtype=np.int64)
    store("finetuned_weight", np.column_stack([f[5] for f in folds]), splits=True)
    means = store("test_score", scores, splits=True)
    if np.any(~np.isfinite(means)):
        warnings.warn(
            f"One or more of the test scores are non-finite: {means}",
            UserWarning,
            stacklevel=3,
        )
    finite = np.isfinite(means)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1 if finite.any() else 0)
    results["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
    return results


def _warn_clipped(grid, folds):
    params = list(ParameterGrid(grid))
    clipped = {}
    for fold in folds:
        for p, used in zip(params, fold[4]):
            if not isinstance(p["k"], str) and used and used != p["k"]:
                clipped.setdefault(p["k"], set()).add(int(used))
    if clipped:
        shown = "; ".join(f"k={k} used k={sorted(v)}" for k, v in clipped.items())
        warnings.warn(
            "Some candidate k exceed the Zero-Shot Failure set of some folds and "
            f"were clipped to its size ({shown}): they score as the k actually "
            "used (cv_results_['splitN_k_used'], and best_params_ reports the k "
            "used by the refit).",
            UserWarning,
            stacklevel=3,
        )


def _select(results, selection, tol):
    """Index of the chosen candidate.

    ``"best"``: the best mean score (ties to the first in ``ParameterGrid``
    order). ``"tolerance"``: among the candidates whose mean score is within
    ``tol`` of the best, the one of lowest mean fine-tuned weight on the
    validation rows (the most zero-shot-leaning); ties to the better score,
    then to the first.
    """
    means = results["mean_test_score"]
    best = int(results["rank_test_score"].argmin())
    if selection == "best" or not np.isfinite(means[best]):
        return best
    # 1e-12: a score exactly tol below the best stays eligible despite round-off
    floor = means[best] - tol - 1e-12
    eligible = np.flatnonzero(np.isfinite(means) & (means >= floor))
    weight = results["mean_finetuned_weight"][eligible]
    # lexsort: last key first; lowest weight, then highest score, then index
    order = np.lexsort((eligible, -means[eligible], weight))
    return int(eligible[order[0]])


def _has_best_estimator(self):
    return bool(self.refit)


class VRFEnsembleClassifierCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """VRF with ``k``, ``threshold`` and ``temperature`` chosen by cross-validation.

    For each fold one :class:`VRFEnsembleClassifier` is fitted on the training
    rows (components, calibration temperatures and Zero-Shot Failure bank, exactly
    as a ``VRFEnsembleClassifier`` fit gives them: none of them depends on the
    searched parameters). On the validation rows the components' calibrated
    probabilities and the distances for every candidate ``k`` (one search of the
    ``max(k)`` nearest bank rows) are computed once, and every ``(k, threshold,
    temperature)`` is scored from them. The best candidate is refitted on all
    rows (``best_estimator_``).

    The scores, ``best_params_`` and ``cv_results_`` are those of
    ``GridSearchCV(VRFEnsembleClassifier(...), {"k": ks, "threshold": thresholds,
    "temperature": temperatures}, cv=cv, scoring=scoring)`` on the same folds
    (ties go to the first candidate in ``ParameterGrid`` order), at a fraction of
    its cost.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (see :class:`VRFEnsembleClassifier`).
    finetuned_estimator : classifier
        The fine-tuned model.
    ks : sequence of int or {"auto", "authors"}, default=(1, 3, 10, 30, 100, "auto")
        Candidate values of ``k``. Each is resolved per fold (``"auto"`` depends
        on the fold's ZSF set) and clipped to the fold's ZSF size.
    thresholds : sequence of float, default=(1.0, 1.25, 1.5, 1.75)
        Candidate values of ``threshold``.
    temperatures : sequence of float, default=(0.2, 0.4, 0.6, 0.8, 1.0)
        Candidate values of ``temperature`` (> 0).
    cv : int, cross-validation generator or iterable, default=5
        Folds of the search, as in ``GridSearchCV`` (an int is a
        ``StratifiedKFold`` without shuffling).
    scoring : str, callable or None, default="accuracy"
        Any scikit-learn scorer name or callable ``scorer(estimator, X, y)``.
        The scorer sees each candidate with its validation probabilities
        precomputed from the fold's single fit; ``"accuracy"`` (and ``None``,
        the estimator's ``score``) is counted chunk by chunk for the whole grid
        at once. A candidate whose scoring fails scores nan, as in
        ``GridSearchCV`` with ``error_score=nan``.
    refit : bool, default=True
        Refit the chosen candidate on all rows. Without it only the search
        results are kept and the estimator cannot predict.
    selection : {"best", "tolerance"}, default="best"
        Which candidate is chosen. ``"best"``: the best mean score (as
        ``GridSearchCV``). ``"tolerance"``: among the candidates whose mean
        score is within ``tol`` of the best, the most zero-shot-leaning one,
        i.e. the lowest mean weight ``w(x)`` of the fine-tuned component on the
        validation rows (``cv_results_["mean_finetuned_weight"]``; ties to the
        better score, then to the first candidate). ID validation accuracy
        rewards trusting the fine-tuned model, so the best candidate tends to
        weigh it near 1 everywhere and lose what the zero-shot model adds under
        shift; this rule spends at most ``tol`` of validation score to keep the
        zero-shot model in the mix, without looking at any shifted data. See
        the user guide (:ref:`choosing`) for when it helped on the embedded
        benchmark and when it did not.
    tol : float, default=0.01
        The tolerance of ``selection="tolerance"``, absolute, in the scorer's
        unit (0.01: one point of accuracy, about one standard error of the
        accuracy measured on 1,000 validation rows). Ignored by ``"best"``.
    n_jobs : int, default=None
        Folds fitted in parallel through joblib (a joblib backend such as Dask's
        can spread them). With one job the folds' own fits and searches use
        ``n_jobs``; with several they run single-threaded. The refit uses it too.
    verbose : int, default=0
        Verbosity of the joblib ``Parallel`` over folds.
    random_state : int, RandomState instance or None, default=None
        Shuffles the calibration folds when set (as in
        :class:`VRFEnsembleClassifier`); the search's folds are set by ``cv``.
    **vrf_params
        Every other parameter of :class:`VRFEnsembleClassifier`, with the same
        default, passed on to every fold's fit and to the refit. They are
        ordinary parameters of this estimator (``get_params``, ``set_params``,
        ``clone``); their entries below are VRFEnsembleClassifier's own.

    Attributes
    ----------
    best_estimator_ : VRFEnsembleClassifier
        The chosen candidate refitted on all rows (only with ``refit=True``).
    best_params_ : dict
        The chosen ``{"k", "temperature", "threshold"}`` (the best, or the
        tolerance rule's choice). When the best ``k`` is
        an int larger than the refit's Zero-Shot Failure set, it is clipped,
        and ``best_params_["k"]`` is the ``k`` actually used (a warning says
        so).
    best_score_ : float
        Its mean cross-validated score (below the best by at most ``tol``
        under ``selection="tolerance"``).
    best_index_ : int
        Its index in ``cv_results_``.
    cv_results_ : dict of ndarray
        In ``GridSearchCV``'s format: ``params``, ``param_k``,
        ``param_threshold``, ``param_temperature`` (masked arrays),
        ``split{i}_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score`` (by score, whatever ``selection``),
        ``split{i}_k_used``, the ``k`` each fold's fit actually used for each
        candidate (resolved, and clipped to the fold's ZSF set), and
        ``split{i}_finetuned_weight`` / ``mean_finetuned_weight`` /
        ``std_finetuned_weight``, the mean weight ``w(x)`` of the fine-tuned
        component on each fold's validation rows; ``mean_fit_time`` /
        ``std_fit_time`` are the folds' fit times (shared by every candidate)
        and ``mean_score_time`` / ``std_score_time`` a fold's scoring time
        divided among its candidates.
    n_splits_ : int
        Number of folds.
    scorer_ : str or callable
        The scoring used.
    classes_ : ndarray of shape (n_classes,)
        Classes of the ensemble (``best_estimator_.classes_``; without refit, the
        union of the folds' classes).
    n_features_in_ : int
        Number of features, when X is numeric.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during `fit`, when X has string column names.

    See Also
    --------
    VRFEnsembleClassifier : The ensemble whose parameters are searched.
    sklearn.model_selection.GridSearchCV : The generic, slower equivalent.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import VRFEnsembleClassifierCV, ZeroShotClassifier
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 300)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
    >>> zs = ZeroShotClassifier(centers + rng.normal(scale=0.5, size=(3, 8)))
    >>> clf = VRFEnsembleClassifierCV(
    ...     zs, LogisticRegression(), ks=(1, 3, "auto"), thresholds=(1.0, 1.5),
    ...     temperatures=(0.3, 0.6), cv=3, random_state=0,
    ... ).fit(X, y)
    >>> sorted(clf.best_params_)
    ['k', 'temperature', 'threshold']
    >>> clf.cv_results_["mean_test_score"].shape
    (12,)
    >>> clf.predict(X[:5]).shape
    (5,)
    """

    _parameter_constraints: dict = {
        **{
            p.name: VRFEnsembleClassifier._parameter_constraints[p.name]
            for p in _SHARED
        },
        "zeroshot_estimator": [HasMethods(["fit", "predict"])],
        "finetuned_estimator": [HasMethods(["fit", "predict"])],
        "ks": ["array-like"],
        "thresholds": ["array-like"],
        "temperatures": ["array-like"],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "refit": ["boolean"],
        "selection": [StrOptions({"best", "tolerance"})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": [Interval(Integral, 0, None, closed="left"), "boolean"],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        ks=(1, 3, 10, 30, 100, "auto"),
        thresholds=(1.0, 1.25, 1.5, 1.75),
        temperatures=(0.2, 0.4, 0.6, 0.8, 1.0),
        cv=5,
        scoring="accuracy",
        refit=True,
        selection="best",
        tol=0.01,
        **vrf_params,
    ):
        self.zeroshot_estimator = zeroshot_estimator
        self.finetuned_estimator = finetuned_estimator
        self.ks = ks
        self.thresholds = thresholds
        self.temperatures = temperatures
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.selection = selection
        self.tol = tol
        shared = {p.name: p.default for p in _SHARED}
        unknown = set(vrf_params) - set(shared)
        if unknown:
            raise TypeError(
                f"VRFEnsembleClassifierCV got unexpected keyword arguments "
                f"{sorted(unknown)}; it takes VRFEnsembleClassifier's parameters "
                f"{sorted(shared)}."
            )
        for name, default in shared.items():
            setattr(self, name, vrf_params.get(name, default))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False  # distances need a dense embedding
        return tags

    def _vrf(self, **params):
        """A VRFEnsembleClassifier with this estimator's shared parameters."""
        shared = {p.name: getattr(self, p.name) for p in _SHARED}
        components = {name: getattr(self, name) for name in _COMPONENTS}
        return VRFEnsembleClassifier(**components, **shared, **params)

    @_fit_context(
        # the components validate their own parameters
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y, *, X_val=None, y_val=None, groups=None):
        """Search the grid by cross-validation and refit the best candidate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Training input (see :meth:`VRFEnsembleClassifier.fit`).
        y : array-like of shape (n_samples,)
            Labels.
        X_val : array-like or HeldOut, default=None
            Held-out calibration rows, given whole to every fold's fit and to the
            refit (as :meth:`VRFEnsembleClassifier.fit` uses them). Never test
            data. An array as long as ``X`` is refused: pass
            ``HeldOut(X_val, y_val)``.
        y_val : array-like of shape (n_val_samples,), default=None
            Labels of ``X_val`` (None when ``X_val`` is a HeldOut).
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` splitter.

        Returns
        -------
        self : object
            The fitted search.
        """
        if sp.issparse(X):
            raise TypeError(
                f"Sparse data was passed to {type(self).__name__}, but dense data is "
                "required: the ZSF distances need a dense embedding."
            )
        validate_data(self, X, skip_check_array=True)
        y = column_or_1d(y, warn=True)
        label_kind(y, "y")
        check_classification_targets(y)
        check_consistent_length(X, y)
        X_val, y_val = check_validation(X, X_val, y_val, type(self).__name__)
        check_label_kinds(y=y, y_val=y_val)
        held_out = None if X_val is None else HeldOut(X_val, y_val)
        grid = _check_grid(self)
        scoring = "accuracy" if self.scoring in (None, "accuracy") else self.scoring
        template = self._vrf(k=1)
        scorer = scoring if scoring == "accuracy" else check_scoring(template, scoring)

        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, groups))
        self.n_splits_ = len(splits)
        if min(int(effective_n_jobs(self.n_jobs)), self.n_splits_) > 1:
            template.set_params(n_jobs=None)  # the folds run in parallel instead
        folds = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_and_score_fold)(
                template, X, y, train, test, held_out, grid, scorer
            )
            for train, test in splits
        )
        self.scorer_ = scoring
        self.cv_results_ = _cv_results(grid, folds)
        self.best_index_ = _select(self.cv_results_, self.selection, self.tol)
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        _warn_clipped(grid, folds)

        if self.refit:
            self.best_estimator_ = self._vrf(**clone(self.best_params_, safe=False))
            self.best_estimator_.fit(X, y, X_val=held_out)
            self.classes_ = self.best_estimator_.classes_
            k_best, k_used = self.best_params_["k"], self.best_estimator_.k_
            if not isinstance(k_best, str) and 0 < k_used < k_best:
                self.best_params_["k"] = int(k_used)  # clipped: report the k used
        else:
            self.classes_ = union_classes(
                **{f"fold {i} classes_": f[3] for i, f in enumerate(folds)}
            )
        return self

    @available_if(_has_best_estimator)
    def score(self, X, y, sample_weight=None):
        """Score of ``best_estimator_`` with the search's ``scoring``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        score : float
            Accuracy by default (``best_estimator_.score``), else the scorer's
            value.
        """
        check_is_fitted(self)
        best = self.best_estimator_
        if self.scoring in (None, "accuracy"):
            return best.score(X, y, sample_weight=sample_weight)
        scorer = check_scoring(best, scoring=self.scoring)
        if sample_weight is None:
            return scorer(best, X, y)
        return scorer(best, X, y, sample_weight=sample_weight)


# The merged signature: the CV's own parameters, then VRF's shared ones, so that
# get_params / set_params / clone see every parameter by name.
_own = inspect.signature(VRFEnsembleClassifierCV.__init__).parameters
VRFEnsembleClassifierCV.__init__.__signature__ = inspect.Signature(
    [p for name, p in _own.items() if name != "vrf_params"]
    + [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in _SHARED
        if p.name not in _own
    ]
)


def _parameter_entries(doc, names):
    """The numpydoc entries of ``names`` in the Parameters section of ``doc``."""
    section = doc.split("    Parameters\n    ----------\n", 1)[1]
    section = section.split("\n\n    ", 1)[0]  # up to the next section
    entries, current = {}, None
    for line in section.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            current = line.strip().split(" : ")[0]
            entries[current] = [line]
        elif current is not None:
            entries[current].append(line)
    return "\n".join("\n".join(entries[n]) for n in names if n in entries)


# The shared parameters' documentation is VRFEnsembleClassifier's, so it cannot
# drift from the parameters this estimator passes on.
VRFEnsembleClassifierCV.__doc__ = VRFEnsembleClassifierCV.__doc__.replace(
    "their entries below are VRFEnsembleClassifier's own.\n",
    "their entries below are VRFEnsembleClassifier's own.\n"
    + _parameter_entries(VRFEnsembleClassifier.__doc__, [p.name for p in _SHARED])
    + "\n",
)


def _delegate(name):
    """``best_estimator_.<name>``, available when ``refit=True``."""
    target = getattr(VRFEnsembleClassifier, name)

    def method(self, *args, **kwargs):
        check_is_fitted(self)
        return getattr(self.best_estimator_, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.signature(target)
    summary, _, rest = target.__doc__.partition("\n")
    method.__doc__ = f"{summary} (of ``best_estimator_``)\n{rest}"
    return available_if(_has_best_estimator)(method)


for _name in (
    "predict",
    "predict_proba",
    "predict_log_proba",
    "ensemble_weights",
    "zsf_distances",
    "zsf_neighbors",
    "with_class_map",
):
    setattr(VRFEnsembleClassifierCV, _name, _delegate(_name))
