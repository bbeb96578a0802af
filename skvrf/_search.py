"""``VRFEnsembleClassifierCV``: VRF with ``k``, ``threshold`` and ``temperature``
chosen by cross-validation, the way ``LogisticRegressionCV`` chooses ``C``.

Only the distance rank ``k``, the sigmoid's ``threshold`` and its ``temperature``
are searched, and none of them changes what a fit learns (the components, their
calibration temperatures and the Zero-Shot Failure bank). So each fold fits one
:class:`VRFEnsembleClassifier`, computes the validation rows' distances for every
candidate ``k`` in a single neighbour search and the components' calibrated
probabilities once, and scores the whole grid with broadcast weights. The scores
are those that ``GridSearchCV(VRFEnsembleClassifier(...), ...)`` reports on the
same folds.
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
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import _safe_indexing, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _num_samples,
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

# The searched parameters; every other parameter of VRFEnsembleClassifier that
# this estimator also has is passed on to the fold fits and the refit.
_SEARCHED = ("k", "threshold", "temperature")
_VECTORISED = ("accuracy", "neg_log_loss")
# Bytes per (candidate, row, class) cell of the broadcast mix and its temporaries.
_BYTES_PER_GRID_CELL = 8 * 4


def _check_grid(ks, thresholds, temperatures):
    """Validate the grid's values; return them as lists."""
    ks, thresholds, temperatures = list(ks), list(thresholds), list(temperatures)
    for name, values in (
        ("ks", ks),
        ("thresholds", thresholds),
        ("temperatures", temperatures),
    ):
        if not values:
            raise ValueError(f"{name} must hold at least one value.")
    for k in ks:
        ok = (isinstance(k, str) and k in ("auto", "authors")) or (
            isinstance(k, Integral) and not isinstance(k, bool) and k >= 1
        )
        if not ok:
            raise ValueError(f'ks must hold ints >= 1, "auto" or "authors"; got {k!r}.')
    for a in thresholds:
        if not isinstance(a, Real) or isinstance(a, bool) or not np.isfinite(a):
            raise ValueError(f"thresholds must hold finite reals; got {a!r}.")
    for b in temperatures:
        if not isinstance(b, Real) or isinstance(b, bool) or not (0 < b < np.inf):
            raise ValueError(f"temperatures must hold finite reals > 0; got {b!r}.")
    return ks, thresholds, temperatures


def _log_loss_labels(y, classes):
    """Column of the true label in the scorer's probabilities, or None.

    Mirrors ``neg_log_loss`` (``log_loss`` without ``labels``): the columns are
    taken to be ``unique(y)``, which must hold at least two labels and as many
    as the probabilities have columns, else the scorer raises (None here).
    """
    seen = np.unique(y)
    if seen.shape[0] < 2 or seen.shape[0] != classes.shape[0] or classes.shape[0] < 2:
        return None
    return np.searchsorted(seen, y)


def _grid_scores(est, X, y, ks_used, thresholds, temperatures, scoring):
    """Vectorised scores of every (k, threshold, temperature) on one fold.

    Returns an array of shape (len(ks_used), n_thresholds, n_temperatures).
    """
    classes = est.classes_
    n_classes = classes.shape[0]
    thr = np.asarray(thresholds, dtype=np.float64)[:, None, None]
    temp = np.asarray(temperatures, dtype=np.float64)[None, :, None]
    n_t, n_b = thr.shape[0], temp.shape[1]
    uniq = sorted(set(ks_used))  # [0] alone when the ZSF set is empty
    n_u = len(uniq)
    binary = n_classes == 2
    eps = np.finfo(np.float64).eps

    if scoring == "accuracy":
        pos = np.clip(np.searchsorted(classes, y), 0, max(n_classes - 1, 0))
        target = np.where(classes[pos] == y, pos, -1)
    else:
        target = _log_loss_labels(y, classes)
        if target is None:
            return np.full((len(ks_used), n_t, n_b), np.nan), True

    budget = get_config()["working_memory"] * 2**20
    step = max(1, int(budget // (_BYTES_PER_GRID_CELL * n_t * n_b * max(2, n_classes))))
    values = bad = None
    for outputs in est.iter_component_outputs(X):
        p_zs, p_ft = outputs.proba["zeroshot"], outputs.proba["finetuned"]
        n = p_zs.shape[0]
        rows_target = target[outputs.rows]
        if uniq == [0]:
            dist = np.full((n, 1), np.inf)
        else:
            dist = est.bank_distances(outputs.extras["embedding"], uniq)
        if values is None:
            values = np.empty((_num_samples(X), n_u, n_t, n_b))
            bad = np.zeros((n_u, n_t, n_b), dtype=bool)
        off = outputs.rows.start
        for s in range(0, n, step):
            rows = slice(s, min(s + step, n))
            t = rows_target[rows]
            for j in range(n_u):
                w = vrf_weights(dist[rows, j][None, None, :], thr, temp, est.weighting)
                proba = mix(p_zs[rows], p_ft[rows], w[..., None], est.mixing)
                if scoring == "accuracy":
                    v = proba.argmax(axis=-1) == t
                else:
                    # neg_log_loss: predict_proba -> (binary) the positive
                    # column -> checks -> clip to [eps, 1 - eps] -> -log p(y).
                    if binary:
                        p1 = proba[..., 1]
                        checked = p1
                        p = np.where(t == 1, p1, 1 - p1)
                    else:
                        checked = proba
                        at = np.broadcast_to(t[:, None], (*proba.shape[:-1], 1))
                        p = np.take_along_axis(proba, at, axis=-1)[..., 0]
                    axes = tuple(range(2, checked.ndim))
                    bad[j] |= (checked.max(axis=axes) > 1) | (
                        checked.min(axis=axes) < 0
                    )
                    v = -np.log(np.clip(p, eps, 1 - eps))
                dst = slice(off + rows.start, off + rows.stop)
                values[dst, j] = np.moveaxis(v, -1, 0)

    # means over rows along a contiguous last axis, as np.mean of each 1-D array
    means = np.ascontiguousarray(np.moveaxis(values, 0, -1)).mean(axis=-1)
    failed = False
    if scoring == "neg_log_loss":
        means = -means
        if bad.any():
            means[bad] = np.nan
            failed = True
    return means[[uniq.index(k) for k in ks_used]], failed


def _loop_scores(est, X, y, ks, ks_used, thresholds, temperatures, scorer):
    """Scores by the scorer itself, one fitted-equivalent estimator a candidate."""
    out = np.empty((len(ks), len(thresholds), len(temperatures)))
    failed = False
    for i, (k, k_used) in enumerate(zip(ks, ks_used)):
        for j, a in enumerate(thresholds):
            for m, b in enumerate(temperatures):
                # k, threshold and temperature refit nothing; k_used is k
                # resolved (and clipped) against this fold's ZSF set.
                candidate = est.with_params(
                    k=k_used if k_used else k, threshold=a, temperature=b
                )
                try:
                    out[i, j, m] = scorer(candidate, X, y)
                except Exception:
                    out[i, j, m] = np.nan
                    failed = True
    return out, failed


def _fit_and_score_fold(
    template, X, y, train, test, held_out, ks, thresholds, temperatures, scoring
):
    """Fit one VRF on a fold's training rows; score the whole grid on the rest."""
    t0 = time.perf_counter()
    X_train, y_train = _safe_indexing(X, train), y[train]
    # k does not change what fit learns (components, calibration, ZSF bank);
    # k=1 never triggers a clipping warning, each candidate's k is resolved below.
    est = clone(template).set_params(k=1).fit(X_train, y_train, X_val=held_out)
    fit_time = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_zsf = est.zsf_indices_.size
    with warnings.catch_warnings():
        # clipping is reported once for the whole search (_warn_clipped)
        warnings.filterwarnings("ignore", message="k=.* is larger than the Zero")
        ks_used = [resolve_k(k, n_zsf, len(train)) for k in ks]
    X_test, y_test = _safe_indexing(X, test), y[test]
    if isinstance(scoring, str) and scoring in _VECTORISED:
        scores, failed = _grid_scores(
            est, X_test, y_test, ks_used, thresholds, temperatures, scoring
        )
    else:
        scorer = check_scoring(est, scoring=scoring)
        scores, failed = _loop_scores(
            est, X_test, y_test, ks, ks_used, thresholds, temperatures, scorer
        )
    if failed:
        warnings.warn(
            "Scoring failed for some candidates on a fold (as GridSearchCV does "
            "with error_score=nan, their score is nan): e.g. log-loss needs every "
            "class of the ensemble in the fold's validation labels.",
            UserWarning,
            stacklevel=2,
        )
    return scores, fit_time, time.perf_counter() - t0, est.classes_, ks_used


def _has_best_estimator(self):
    return bool(self.refit)


class VRFEnsembleClassifierCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """VRF with ``k``, ``threshold`` and ``temperature`` chosen by cross-validation.

    For each fold one :class:`VRFEnsembleClassifier` is fitted on the training
    rows (components, calibration temperatures and Zero-Shot Failure bank, exactly
    as a ``VRFEnsembleClassifier`` fit gives them: none of them depends on the
    searched parameters). On the validation rows the distances to the bank are
    computed once for every candidate ``k`` (one search of the ``max(k)`` nearest
    bank rows) and the components' calibrated probabilities once; every
    ``(k, threshold, temperature)`` is then scored at once, the weights broadcast
    over the thresholds and temperatures. The best candidate is refitted on all
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
        on the fold's ZSF set) and clipped to the fold's ZSF size with a warning.
    thresholds : sequence of float, default=(1.0, 1.25, 1.5, 1.75)
        Candidate values of ``threshold``.
    temperatures : sequence of float, default=(0.2, 0.4, 0.6, 0.8, 1.0)
        Candidate values of ``temperature`` (> 0).
    cv : int, cross-validation generator or iterable, default=5
        Folds of the search, as in ``GridSearchCV`` (an int is a
        ``StratifiedKFold`` without shuffling). Pass a splitter object with a
        fixed ``random_state`` to compare with another search on the same folds.
    scoring : str, callable or None, default="accuracy"
        ``"accuracy"`` (also ``None``, the ensemble's ``score``) and
        ``"neg_log_loss"`` are computed vectorised, exactly as their scikit-learn
        scorers compute them (log-loss: probabilities clipped to ``[eps, 1 -
        eps]``, the columns taken to be the fold's validation labels, so a fold
        missing a class of the ensemble scores nan as in ``GridSearchCV``). Any
        other scorer name or callable ``scorer(estimator, X, y)`` falls back to
        calling the scorer once per candidate and fold on a fitted-equivalent
        estimator (the fold's fit with the candidate's parameters): the fold fits
        are still shared, but prediction is repeated for every candidate.
    refit : bool, default=True
        Refit the best candidate on all rows. Without it only the search results
        are kept and the estimator cannot predict.
    embedding : "auto" or transformer, default="auto"
        As in :class:`VRFEnsembleClassifier`.
    weighting : {"sigmoid", "linear", "step"}, default="sigmoid"
        As in :class:`VRFEnsembleClassifier` (``"step"`` ignores the
        temperature, so temperatures then tie).
    mixing : {"probability", "logit"}, default="probability"
        As in :class:`VRFEnsembleClassifier`.
    zsf_rule : {"paper", "zeroshot_errors"}, default="paper"
        As in :class:`VRFEnsembleClassifier`.
    calibrate : bool, default=True
        As in :class:`VRFEnsembleClassifier`; within a fold, calibration uses only
        that fold's training rows (or ``X_val``).
    calibration_method : {"log_loss", "confidence"}, default="log_loss"
        As in :class:`VRFEnsembleClassifier`.
    calibration_cv : int, cross-validation generator or iterable, default=5
        As in :class:`VRFEnsembleClassifier`.
    bank_dtype : {"float32", "float16", "float64"}, default="float32"
        As in :class:`VRFEnsembleClassifier`.
    knn_backend : {"auto", "numpy", "torch", "faiss"}, default="auto"
        As in :class:`VRFEnsembleClassifier`.
    working_memory : int, default=None
        As in :class:`VRFEnsembleClassifier`.
    n_jobs : int, default=None
        Folds fitted in parallel through joblib (a joblib backend such as Dask's
        can spread them). With one job the folds' own fits and searches use
        ``n_jobs``; with several they run single-threaded. The refit uses it too.
    verbose : int, default=0
        Verbosity of the joblib ``Parallel`` over folds.
    random_state : int, RandomState instance or None, default=None
        Shuffles the calibration folds when set (as in
        :class:`VRFEnsembleClassifier`); the search's folds are set by ``cv``.

    Attributes
    ----------
    best_estimator_ : VRFEnsembleClassifier
        The best candidate refitted on all rows (only with ``refit=True``).
    best_params_ : dict
        The best ``{"k", "temperature", "threshold"}``. When the best ``k`` is
        an int larger than the refit's Zero-Shot Failure set, it is clipped,
        and ``best_params_["k"]`` is the ``k`` actually used (a warning says
        so).
    best_score_ : float
        Its mean cross-validated score.
    best_index_ : int
        Its index in ``cv_results_``.
    cv_results_ : dict of ndarray
        In ``GridSearchCV``'s format: ``params``, ``param_k``,
        ``param_threshold``, ``param_temperature`` (masked arrays),
        ``split{i}_test_score``, ``mean_test_score``, ``std_test_score``,
        ``rank_test_score``, and ``split{i}_k_used``, the ``k`` each fold's fit
        actually used for each candidate (resolved, and clipped to the fold's
        ZSF set); ``mean_fit_time`` / ``std_fit_time`` are the folds'
        fit times (shared by every candidate) and ``mean_score_time`` /
        ``std_score_time`` a fold's scoring time divided among its candidates.
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
            name: constraint
            for name, constraint in VRFEnsembleClassifier._parameter_constraints.items()
            if name not in _SEARCHED
        },
        "ks": ["array-like"],
        "thresholds": ["array-like"],
        "temperatures": ["array-like"],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "refit": ["boolean"],
        "verbose": [Interval(Integral, 0, None, closed="left"), "boolean"],
        "zeroshot_estimator": [HasMethods(["fit", "predict"])],
        "finetuned_estimator": [HasMethods(["fit", "predict"])],
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
        embedding="auto",
        weighting="sigmoid",
        mixing="probability",
        zsf_rule="paper",
        calibrate=True,
        calibration_method="log_loss",
        calibration_cv=5,
        bank_dtype="float32",
        knn_backend="auto",
        working_memory=None,
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.zeroshot_estimator = zeroshot_estimator
        self.finetuned_estimator = finetuned_estimator
        self.ks = ks
        self.thresholds = thresholds
        self.temperatures = temperatures
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.embedding = embedding
        self.weighting = weighting
        self.mixing = mixing
        self.zsf_rule = zsf_rule
        self.calibrate = calibrate
        self.calibration_method = calibration_method
        self.calibration_cv = calibration_cv
        self.bank_dtype = bank_dtype
        self.knn_backend = knn_backend
        self.working_memory = working_memory
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False  # distances need a dense embedding
        return tags

    def _vrf(self, **params):
        """A VRFEnsembleClassifier with this estimator's shared parameters."""
        own = self.get_params(deep=False)
        shared = {
            name: own[name]
            for name in inspect.signature(VRFEnsembleClassifier.__init__).parameters
            if name in own and name not in _SEARCHED
        }
        return VRFEnsembleClassifier(**{**shared, **params})

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
        ks, thresholds, temperatures = _check_grid(
            self.ks, self.thresholds, self.temperatures
        )
        scoring = "accuracy" if self.scoring is None else self.scoring

        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, groups))
        self.n_splits_ = len(splits)
        n_fold_jobs = min(int(effective_n_jobs(self.n_jobs)), self.n_splits_)
        template = self._vrf(k=1, n_jobs=self.n_jobs if n_fold_jobs <= 1 else None)
        folds = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)(
            delayed(_fit_and_score_fold)(
                clone(template),
                X,
                y,
                train,
                test,
                held_out,
                ks,
                thresholds,
                temperatures,
                scoring,
            )
            for train, test in splits
        )
        self.scorer_ = scoring
        self._store_results(ks, thresholds, temperatures, folds)
        self._warn_clipped(ks, folds)

        if self.refit:
            self.best_estimator_ = self._vrf(**clone(self.best_params_, safe=False))
            self.best_estimator_.fit(X, y, X_val=held_out)
            self.classes_ = self.best_estimator_.classes_
            k_best = self.best_params_["k"]
            k_used = self.best_estimator_.k_
            if not isinstance(k_best, str) and 0 < k_used < k_best:
                # The candidate was clipped to the ZSF set: report the k used.
                self.best_params_["k"] = int(k_used)
        else:
            self.classes_ = union_classes(
                **{f"fold {i} classes_": f[3] for i, f in enumerate(folds)}
            )
        return self

    @staticmethod
    def _warn_clipped(ks, folds):
        clipped = {}
        for i, k in enumerate(ks):
            if isinstance(k, str):
                continue
            used = sorted({int(f[4][i]) for f in folds if f[4][i] != k})
            if used:
                clipped[k] = used
        if clipped:
            shown = "; ".join(f"k={k} used k={v}" for k, v in clipped.items())
            warnings.warn(
                "Some candidate k exceed the Zero-Shot Failure set of some folds "
                f"and were clipped to its size ({shown}): they score as the k "
                "actually used (cv_results_['splitN_k_used'], and best_params_ "
                "reports the k used by the refit).",
                UserWarning,
                stacklevel=3,
            )

    def _store_results(self, ks, thresholds, temperatures, folds):
        values = {"k": ks, "threshold": thresholds, "temperature": temperatures}
        positions = {name: range(len(v)) for name, v in values.items()}
        # ParameterGrid's order (keys sorted, last key fastest), as GridSearchCV
        candidates = list(ParameterGrid(positions))
        params = [{name: values[name][i] for name, i in c.items()} for c in candidates]
        idx = tuple(
            np.array([c[name] for c in candidates], dtype=np.intp)
            for name in ("k", "threshold", "temperature")
        )
        n_candidates, n_splits = len(candidates), len(folds)
        # (n_candidates, n_splits), as GridSearchCV arranges its scores
        scores = np.column_stack([f[0][idx] for f in folds]).astype(np.float64)

        results = {}

        def store(key, array, splits=False, rank=False):
            array = np.asarray(array, dtype=np.float64).reshape(n_candidates, n_splits)
            if splits:
                for i in range(n_splits):
                    results[f"split{i}_{key}"] = array[:, i]
            means = np.average(array, axis=1)
            results[f"mean_{key}"] = means
            if key == "test_score" and np.any(~np.isfinite(means)):
                warnings.warn(
                    f"One or more of the test scores are non-finite: {means}",
                    UserWarning,
                    stacklevel=3,
                )
            results[f"std_{key}"] = np.sqrt(
                np.average((array - means[:, None]) ** 2, axis=1)
            )
            if rank:
                if np.isnan(means).all():
                    ranks = np.ones_like(means, dtype=np.int32)
                else:
                    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
                    ranks = rankdata(-filled, method="min").astype(np.int32)
                results[f"rank_{key}"] = ranks

        fit_times = np.array([f[1] for f in folds])
        score_times = np.array([f[2] for f in folds]) / n_candidates
        store("fit_time", np.tile(fit_times, (n_candidates, 1)))
        store("score_time", np.tile(score_times, (n_candidates, 1)))
        for name in ("k", "temperature", "threshold"):
            column = [p[name] for p in params]
            kind = np.array(column).dtype
            dtype = kind if kind.kind not in "US" else object
            ma = np.ma.MaskedArray(np.empty(n_candidates, dtype=dtype), mask=True)
            for i, v in enumerate(column):
                ma[i] = v
            results[f"param_{name}"] = ma
        results["params"] = params
        # the k each fold's fit actually used for each candidate (resolved and
        # clipped against that fold's ZSF set)
        for i, fold in enumerate(folds):
            results[f"split{i}_k_used"] = np.asarray(fold[4], dtype=np.int64)[idx[0]]
        store("test_score", scores, splits=True, rank=True)

        self.cv_results_ = results
        self.best_index_ = int(results["rank_test_score"].argmin())
        self.best_score_ = float(results["mean_test_score"][self.best_index_])
        self.best_params_ = dict(params[self.best_index_])

    # ------------------------------------------------------- delegation
    def _best(self):
        check_is_fitted(self)
        return self.best_estimator_

    @available_if(_has_best_estimator)
    def predict(self, X):
        """Labels predicted by ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        return self._best().predict(X)

    @available_if(_has_best_estimator)
    def predict_proba(self, X):
        """Class probabilities of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        return self._best().predict_proba(X)

    @available_if(_has_best_estimator)
    def predict_log_proba(self, X):
        """Log-probabilities of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities.
        """
        return self._best().predict_log_proba(X)

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
        best = self._best()
        scoring = "accuracy" if self.scoring is None else self.scoring
        if scoring == "accuracy":
            return best.score(X, y, sample_weight=sample_weight)
        scorer = check_scoring(best, scoring=scoring)
        if sample_weight is None:
            return scorer(best, X, y)
        return scorer(best, X, y, sample_weight=sample_weight)

    @available_if(_has_best_estimator)
    def ensemble_weights(self, X):
        """Weight ``w(x)`` of the fine-tuned component in ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        weights : ndarray of shape (n_samples,)
            Values in [0, 1].
        """
        return self._best().ensemble_weights(X)

    @available_if(_has_best_estimator)
    def zsf_neighbors(self, X, n_neighbors=None):
        """Nearest ZSF training rows of ``best_estimator_`` (see VRF).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.
        n_neighbors : int, default=None
            How many neighbours; default the best estimator's ``k_``.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_neighbors)
            Sorted squared L2 distances.
        indices : ndarray of shape (n_samples, n_neighbors)
            Indices into the training set.
        """
        return self._best().zsf_neighbors(X, n_neighbors)

    @available_if(_has_best_estimator)
    def with_class_map(self, class_map):
        """A class-mapped view of ``best_estimator_`` (see VRF).

        Parameters
        ----------
        class_map : sequence or mapping
            Kept labels, or target label -> source labels pooled by max logit.

        Returns
        -------
        view : ClassMappedClassifier
            Each component's logits mapped before its softmax, then mixed.
        """
        return self._best().with_class_map(class_map)

    @available_if(_has_best_estimator)
    def zsf_distances(self, X):
        """Distance ``d(x)`` to the k-th nearest ZSF row of ``best_estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Input of the components.

        Returns
        -------
        distances : ndarray of shape (n_samples,)
            Squared L2 distances in [0, 4]; ``inf`` when the ZSF set is empty.
        """
        return self._best().zsf_distances(X)


# Keep only the constraints of this estimator's own parameters (a parameter that
# VRFEnsembleClassifier gains is searched-through only once it is added here).
VRFEnsembleClassifierCV._parameter_constraints = {
    name: constraint
    for name, constraint in VRFEnsembleClassifierCV._parameter_constraints.items()
    if name in inspect.signature(VRFEnsembleClassifierCV.__init__).parameters
}
