"""``VRFEnsembleClassifierCV``: VRF with ``k``, ``threshold`` and ``temperature``
chosen by cross-validation from one fit per fold, the way ``LogisticRegressionCV``
chooses ``C``."""

from __future__ import annotations

import inspect
import time
import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.metrics import check_scoring, get_scorer_names
from sklearn.model_selection import check_cv
from sklearn.utils import _safe_indexing, gen_batches, indexable
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.metadata_routing import (
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ._base import check_fit_sample_weight, components_router
from ._grids import DistanceQuantiles, DistanceSpread, resolve_grid_spec
from ._heldout import HeldOut, check_validation, validation_weight
from ._labels import check_label_kinds, label_kind, union_classes
from ._vrf import VRFEnsembleClassifier
from ._weighting import grid_counts, mix, vrf_weights
from .utils import chunk_n_rows, working_memory_bytes
from .utils._cv_results import cv_results
from .utils._delegation import add_keyword_parameters, delegate_methods
from .utils._precomputed import PrecomputedProba
from .utils._warnings import user_stacklevel

__all__ = ["VRFEnsembleClassifierCV"]

# searched parameter of VRFEnsembleClassifier -> the CV's parameter of candidates
_SEARCHED = {"k": "ks", "threshold": "thresholds", "temperature": "temperatures"}
_COMPONENTS = ("zeroshot_estimator", "finetuned_estimator")
# VRF's parameters that the CV takes over as they are, with their defaults
_SHARED = {
    name: p.default
    for name, p in inspect.signature(VRFEnsembleClassifier.__init__).parameters.items()
    if name not in ("self", *_COMPONENTS, *_SEARCHED)
}
# VRF's fit warning when its threshold lies outside the observed distances
_THRESHOLD_WARNING = "threshold=.* lies (above|below) every distance"


def _check_values(attr, param, values):
    """Explicit candidate values, each checked against VRF's own constraints."""
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
    return values


def _check_grid(ks, thresholds, temperatures):
    """The candidates: ``k`` values, and for ``threshold`` and ``temperature``
    either explicit values or a data-driven spec (``DistanceQuantiles``,
    ``DistanceSpread``) turned into values once the distances are known."""
    grid = {"k": _check_values("ks", "k", list(ks))}
    for param, value in (("threshold", thresholds), ("temperature", temperatures)):
        attr = _SEARCHED[param]
        spec = resolve_grid_spec(value, attr)
        grid[param] = (
            spec if not isinstance(spec, list) else _check_values(attr, param, spec)
        )
    return grid


def _is_spec(values):
    return isinstance(values, DistanceQuantiles | DistanceSpread)


class _Grid:
    """The searched candidates as values: one list of thresholds and one of
    temperatures per candidate ``k`` (the same lists for every ``k`` when they
    are explicit), in ``ParameterGrid`` order (``k``, then ``temperature``,
    then ``threshold``), and the data-driven positions they came from."""

    def __init__(self, ks, thresholds, temperatures, positions):
        self.ks = ks
        self.thresholds = thresholds  # (n_ks, n_thresholds)
        self.temperatures = temperatures  # (n_ks, n_temperatures)
        self.positions = positions  # {"threshold_quantile": (n_thr,) or None, ...}

    @classmethod
    def build(cls, grid, pooled, weights=None):
        """Values for ``grid``; ``pooled[i]``: the distances of candidate k
        ``i`` on the rows the candidates are scored on (None: not needed);
        ``weights``: those rows' sample weights (None: all 1)."""
        ks, values, positions = grid["k"], {}, {}
        for param, key in (
            ("threshold", "threshold_quantile"),
            ("temperature", "temperature_fraction"),
        ):
            spec = grid[param]
            if _is_spec(spec):
                values[param] = np.array([spec.values(d, weights) for d in pooled])
                positions[key] = np.asarray(spec.positions())
            else:
                values[param] = np.tile(np.asarray(spec, dtype=object), (len(ks), 1))
                positions[key] = None
        return cls(ks, values["threshold"], values["temperature"], positions)

    def index(self):
        """``(i_k, i_threshold, i_temperature)`` of every candidate."""
        return [
            (i, a, b)
            for i in range(len(self.ks))
            for b in range(self.temperatures.shape[1])
            for a in range(self.thresholds.shape[1])
        ]

    def params(self):
        """Every candidate's parameters (floats for derived values)."""
        return [
            {
                "k": self.ks[i],
                "temperature": _value(self.temperatures[i, b]),
                "threshold": _value(self.thresholds[i, a]),
            }
            for i, a, b in self.index()
        ]

    def param_grid(self):
        """The same candidates as a list of ``GridSearchCV`` grids, one per k."""
        return [
            {
                "k": [k],
                "temperature": [_value(v) for v in self.temperatures[i]],
                "threshold": [_value(v) for v in self.thresholds[i]],
            }
            for i, k in enumerate(self.ks)
        ]

    def candidate_positions(self):
        """Per candidate, the quantile / fraction it came from (nan: explicit)."""
        out = {}
        for key, pos in self.positions.items():
            col = 1 if key.startswith("threshold") else 2
            out[key] = np.array(
                [np.nan if pos is None else pos[c[col]] for c in self.index()]
            )
        return out


def _value(v):
    """A candidate value as given (explicit) or as a Python float (derived)."""
    return float(v) if isinstance(v, np.floating) else v


def _accuracy_counts(fold, X, y, thresholds, temperatures, sample_weight=None):
    """Correct predictions and summed fine-tuned weights of every candidate:
    ``(2, n_ks, n_thresholds, n_temperatures)``, the grid of each ``k``
    broadcast (``grid_counts``), chunk by chunk; ``thresholds``,
    ``temperatures``: one row of values per candidate k; each row counted
    with its ``sample_weight`` (None: 1). Candidate ks whose
    distances and values coincide (``"auto"`` resolved to another candidate,
    ks clipped to the same size) are counted once."""
    est, dist = fold.est, fold.dist
    classes = est.classes_
    pos = np.clip(np.searchsorted(classes, y), 0, classes.shape[0] - 1)
    target = np.where(classes[pos] == y, pos, -1)
    thresholds = thresholds.astype(np.float64)
    temperatures = temperatures.astype(np.float64)
    n_thr, n_temp = thresholds.shape[1], temperatures.shape[1]
    first_of, same = {}, {}  # column -> first column of the same k and values
    for i, k in enumerate(fold.k_used):
        key = (k, thresholds[i].tobytes(), temperatures[i].tobytes())
        same[i] = first_of.setdefault(key, i)
    distinct = sorted(set(same.values()))
    # 32 bytes per (candidate, row, class) cell of the broadcast count
    step = chunk_n_rows(32 * n_thr * n_temp * max(2, len(classes)))
    counts = np.zeros((2, dist.shape[1], n_thr, n_temp))
    for rows, p_zs, p_ft in _held_out_proba(fold, X):
        t_out, d_out = target[rows], dist[rows]
        sw_out = None if sample_weight is None else sample_weight[rows]
        for i in distinct:
            mixes = (thresholds[i], temperatures[i], est.weighting, est.mixing)
            for r in gen_batches(len(t_out), step):
                c = grid_counts(
                    p_zs[r],
                    p_ft[r],
                    d_out[r, i : i + 1],
                    t_out[r],
                    *mixes,
                    sample_weight=None if sw_out is None else sw_out[r],
                )
                counts[:, i] += np.asarray(c)[:, 0]
    for i, first in same.items():
        counts[:, i] = counts[:, first]
    return counts


def _scorer_scores(fold, X, y, candidates, scorer, sample_weight=None):
    """Scores and mean fine-tuned weights of ``candidates`` (``(i, k, threshold,
    temperature)``, ``i`` the column of the fold's distances) by a scikit-learn
    scorer, each on a view of the fold's VRF whose probabilities on ``X`` are
    precomputed; rows weighted by ``sample_weight`` (None: all 1)."""
    est, dist = fold.est, fold.dist
    kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
    chunks = list(_held_out_proba(fold, X))
    p_zs, p_ft = (np.concatenate([c[j] for c in chunks]) for j in (1, 2))
    scores, weights, failed = *np.empty((2, len(candidates))), False
    for n, (i, k, a, b) in enumerate(candidates):
        w = vrf_weights(dist[:, i], a, b, est.weighting)
        weights[n] = np.average(w, weights=sample_weight)
        candidate = est.with_params(k=k, threshold=a, temperature=b)
        view = PrecomputedProba(candidate, X, mix(p_zs, p_ft, w, est.mixing))
        try:
            scores[n] = scorer(view, X, y, **kwargs)
        except Exception:  # as GridSearchCV with error_score=nan
            scores[n], failed = np.nan, True
    if failed:
        warnings.warn(
            "Scoring failed for some candidates on a fold (as GridSearchCV does "
            "with error_score=nan, their score is nan): e.g. log-loss needs every "
            "class of the ensemble in the fold's validation labels.",
            stacklevel=user_stacklevel(),
        )
    return scores, weights


class _Fold:
    """One fold's fitted VRF, its held-out rows' distances for every candidate
    ``k`` (one search of the largest k), the k each candidate used, and the
    held-out rows' calibrated probabilities when they fit the working memory
    (``proba``: ``(rows, p_zeroshot, p_finetuned)`` per chunk; None: computed
    again when scored)."""

    def __init__(self, est, k_used, dist, fit_time, test, proba=None):
        self.est, self.k_used, self.dist = est, k_used, dist
        self.fit_time, self.test, self.proba = fit_time, test, proba


def _held_out_proba(fold, X_test):
    """``(rows, p_zeroshot, p_finetuned)`` of each chunk of the held-out rows:
    the ones kept by ``_fold_of``, else computed again."""
    if fold.proba is not None:
        yield from fold.proba
        return
    for out in fold.est.iter_component_outputs(X_test):
        yield out.rows, out.proba["zeroshot"], out.proba["finetuned"]


def _fit_fold(template, X, y, train, test, held_out, ks, fit_params):
    """Fit one VRF on a fold's training rows and compute the distances of its
    held-out rows (columns: the candidate ``ks``, resolved and clipped);
    ``fit_params``: ``fit``'s sample-aligned parameters (``sample_weight``),
    split with the rows."""
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # the template's threshold is no candidate's (the refit checks the chosen
        # one); clipping is reported once for the whole search (_warn_clipped)
        warnings.filterwarnings("ignore", message=_THRESHOLD_WARNING)
        warnings.filterwarnings("ignore", message="k=.* is larger than the Zero")
        params = _check_method_params(X, fit_params, indices=train)
        est = clone(template).fit(
            _safe_indexing(X, train), y[train], X_val=held_out, **params
        )
    fit_time = time.perf_counter() - t0
    return _fold_of(est, _safe_indexing(X, test), test, ks, fit_time)


def _fold_of(est, X_test, test, ks, fit_time=0.0):
    """A fitted VRF's :class:`_Fold` on the held-out rows ``X_test``: one pass
    of the components over them gives the distances and, when both
    components' probabilities fit the working memory, keeps those for the
    scoring (no second pass of the components, embedding included)."""
    n_zsf = est.zsf_indices_.size  # each candidate's k, resolved:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="k=.* is larger than the Zero")
        k_used = [est._resolve_k(k) for k in ks]
    n_test = _num_samples(X_test)
    keep = 2 * 8 * n_test * len(est.classes_) <= working_memory_bytes()
    proba = [] if keep else None
    if not n_zsf:
        dist = np.full((n_test, len(ks)), np.inf)
        if not keep:
            return _Fold(est, k_used, dist, fit_time, test)
    distinct = sorted(set(k_used))
    cols = [distinct.index(k) for k in k_used]
    parts = []
    for o in est.iter_component_outputs(X_test):
        if n_zsf:
            parts.append(est.bank_distances(o.extras["embedding"], distinct)[:, cols])
        if keep:
            proba.append((o.rows, o.proba["zeroshot"], o.proba["finetuned"]))
    if n_zsf:
        dist = np.concatenate(parts) if parts else np.empty((0, len(ks)))
    return _Fold(est, k_used, dist, fit_time, test, proba)


def _score_fold(fold, X, y, grid, scorer, sample_weight=None):
    """Score every candidate on a fold's held-out rows (weighted by
    ``sample_weight``). Returns the scores and mean fine-tuned weights
    (``_Grid.index`` order) and the scoring time."""
    t0 = time.perf_counter()
    test = fold.test
    if test is None:  # X, y are the held-out rows themselves
        X_test, y_test, test = X, y, np.arange(len(y))
    else:
        X_test, y_test = _safe_indexing(X, test), y[test]
    sw = None if sample_weight is None else sample_weight[test]
    index = grid.index()
    if scorer == "accuracy":
        counts = _accuracy_counts(
            fold, X_test, y_test, grid.thresholds, grid.temperatures, sw
        )
        total = len(test) if sw is None else sw.sum()
        scores, weights = counts[(slice(None), *np.transpose(index))] / total
    else:
        candidates = [
            (
                i,
                fold.k_used[i] or grid.ks[i],
                grid.thresholds[i, a],
                grid.temperatures[i, b],
            )
            for i, a, b in index
        ]
        scores, weights = _scorer_scores(fold, X_test, y_test, candidates, scorer, sw)
    return scores, weights, time.perf_counter() - t0


def tune_fitted(
    vrf,
    X_val,
    y_val,
    *,
    ks=None,
    thresholds="quantiles",
    temperatures="spread",
    sample_weight=None,
):
    """Choose ``k``, ``threshold`` and ``temperature`` of a fitted VRF on
    held-out rows, without refitting (none of them changes what fit learns).

    The same candidates and scores as :class:`VRFEnsembleClassifierCV` with one
    predefined split that fits on ``vrf``'s training rows and scores on
    ``(X_val, y_val)`` (validation accuracy, ties to the first candidate).

    Parameters
    ----------
    vrf : VRFEnsembleClassifier
        Fitted.
    X_val, y_val : array-like
        Held-out rows (never test data) and their labels.
    ks, thresholds, temperatures
        As in :class:`VRFEnsembleClassifierCV` (``ks`` default: its default).
    sample_weight : array-like of shape (n_val_samples,), default=None
        Weights of the held-out rows (weighted accuracy and quantiles).

    Returns
    -------
    tuned : VRFEnsembleClassifier
        ``vrf.with_params(**best)``.
    info : dict
        ``best_params``, ``val_accuracy``, ``threshold_quantile`` and
        ``temperature_fraction`` (None for explicit values) and
        ``param_grid`` (the values tried, per ``k``).
    """
    check_is_fitted(vrf)
    if ks is None:
        ks = inspect.signature(VRFEnsembleClassifierCV).parameters["ks"].default
    grid = _check_grid(ks, thresholds, temperatures)
    y_val = column_or_1d(y_val)
    sw = check_fit_sample_weight(sample_weight, y_val, "tune_fitted")
    fold = _fold_of(vrf, X_val, None, grid["k"])
    pooled = [fold.dist[:, i] for i in range(len(grid["k"]))]
    values = _Grid.build(grid, pooled, sw)
    scores, _, _ = _score_fold(fold, X_val, y_val, values, "accuracy", sw)
    best = int(np.argmax(scores))  # ties to the first
    params = values.params()[best]
    positions = values.candidate_positions()
    info = {
        "best_params": params,
        "val_accuracy": float(scores[best]),
        **{
            key: (None if np.isnan(pos[best]) else float(pos[best]))
            for key, pos in positions.items()
        },
        "param_grid": values.param_grid(),
    }
    return vrf.with_params(**params), info


def _warn_clipped(params, used):
    clipped = {}
    for fold in used:
        for p, k in zip(params, fold):
            if not isinstance(p["k"], str) and k and k != p["k"]:
                clipped.setdefault(p["k"], set()).add(int(k))
    if clipped:
        shown = "; ".join(f"k={k} used k={sorted(v)}" for k, v in clipped.items())
        warnings.warn(
            "Some candidate k exceed the Zero-Shot Failure set of some folds and "
            f"were clipped to its size ({shown}): they score as the k actually "
            "used (cv_results_['splitN_k_used'], and best_params_ reports the k "
            "used by the refit).",
            stacklevel=user_stacklevel(),
        )


def _select(results, selection, tol):
    """Index of the chosen candidate: the best mean score (ties to the first), or
    the lowest mean fine-tuned weight within ``tol`` of it (ties to the better
    score, then the first)."""
    means = results["mean_test_score"]
    best = int(results["rank_test_score"].argmin())
    if selection == "best" or not np.isfinite(means[best]):
        return best
    # 1e-12: a score exactly tol below the best stays eligible despite round-off;
    # lexsort's last key first: lowest weight, then highest score, then index
    eligible = np.flatnonzero(np.isfinite(means) & (means >= means[best] - tol - 1e-12))
    weight = results["mean_finetuned_weight"][eligible]
    return int(eligible[np.lexsort((eligible, -means[eligible], weight))[0]])


def _has_best_estimator(self):
    return bool(self.refit)


class VRFEnsembleClassifierCV(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """VRF with ``k``, ``threshold`` and ``temperature`` chosen by cross-validation.

    Each fold fits one :class:`VRFEnsembleClassifier` (none of what it learns
    depends on the searched parameters), computes its held-out rows' component
    probabilities and distances for every ``k`` once (one search of the
    ``max(k)`` nearest bank rows), and scores every candidate from them; the
    chosen one is refitted on all rows. Scores, ``best_params_`` and
    ``cv_results_`` are those of ``GridSearchCV(VRFEnsembleClassifier(...),
    param_grid_, cv=cv, scoring=scoring)`` on the same folds (ties to the first
    candidate), at a fraction of its cost.

    **Candidates from the data, by default.** A threshold only means something
    relative to the distances of *your* features (the paper's 1.5 / 0.6 fit
    CLIP ViT-B/16's; other encoders' distances may all lie below 0.1). With
    ``thresholds="quantiles"`` and ``temperatures="spread"`` the candidates are
    positions, turned into values once the folds' distances are known: for
    each candidate ``k``, with ``d_k`` the k-th ZSF distances of every fold's
    held-out rows (pooled),

    - thresholds ``np.quantile(d_k, q)`` for ``q`` in (0.05, 0.15, 0.3, 0.5,
      0.7, 0.85, 0.95, 0.99) (:class:`~skvrf.DistanceQuantiles`), so every
      candidate lies inside the observed distances;
    - temperatures ``f * IQR(d_k)`` for ``f`` in (0.05, 0.1, 0.25, 0.5, 1, 2,
      4) (:class:`~skvrf.DistanceSpread`; the range when the IQR is 0).

    The refit takes the chosen *positions* to its own distances (its bank
    holds every row, a fold's only some, so its distances are a little
    smaller): its threshold is the chosen quantile of the distances its fit
    checks (X_val's rows, else the training rows', each ZSF row's own left
    out), its temperature the chosen fraction of their spread, and
    ``best_params_`` reports those values (``cv_results_`` the folds').

    The search therefore means the same on any encoder: scaling every distance
    by a constant scales the candidates with it and leaves the chosen
    position, the weights and the predictions unchanged. ``param_grid_`` and
    ``cv_results_`` hold the values actually tried (and
    ``cv_results_["threshold_quantile"]`` / ``["temperature_fraction"]`` the
    positions). Explicit sequences of values are searched as given, the same
    for every ``k``.

    Parameters
    ----------
    zeroshot_estimator : classifier
        The zero-shot model (see :class:`VRFEnsembleClassifier`).
    finetuned_estimator : classifier
        The fine-tuned model.
    ks : sequence of int or {"auto", "authors"}, default=(1, 3, 10, 30, 100, "auto")
        Candidate values of ``k``. Each is resolved per fold (``"auto"`` depends
        on the fold's ZSF set) and clipped to the fold's ZSF size.
    thresholds : "quantiles", DistanceQuantiles or sequence of float, \
default="quantiles"
        Candidate values of ``threshold``: quantiles of the observed distances
        (``"quantiles"`` is ``DistanceQuantiles()``, see above), or the values
        given.
    temperatures : "spread", DistanceSpread or sequence of float, \
default="spread"
        Candidate values of ``temperature`` (> 0): fractions of the observed
        distances' interquartile range (``"spread"`` is ``DistanceSpread()``),
        or the values given.
    cv : int, cross-validation generator or iterable, default=5
        Folds of the search, as in ``GridSearchCV`` (an int is a
        ``StratifiedKFold`` without shuffling).
    scoring : str, callable or None, default="accuracy"
        Any scikit-learn scorer name or callable ``scorer(estimator, X, y)``,
        called on each candidate with its validation probabilities precomputed;
        ``"accuracy"`` and ``None`` (the estimator's ``score``) are counted for
        the whole grid at once, chunk by chunk. A candidate whose scoring fails
        scores nan, as in ``GridSearchCV`` with ``error_score=nan``.
    refit : bool, default=True
        Refit the chosen candidate on all rows. Without it only the search
        results are kept and the estimator cannot predict.
    selection : {"best", "tolerance"}, default="best"
        ``"best"``: the best mean score (as ``GridSearchCV``). ``"tolerance"``:
        of the candidates within ``tol`` of the best mean score, the one of
        lowest ``cv_results_["mean_finetuned_weight"]`` (ties to the better
        score, then the first): it keeps the zero-shot model in the mix at a
        cost of at most ``tol`` of validation score (user guide, :ref:`choosing`).
    tol : float, default=0.01
        The tolerance of ``"tolerance"``, in the scorer's unit (0.01: one point
        of accuracy, about one standard error on 1,000 validation rows).
    n_jobs : int, default=None
        Folds fitted in parallel through joblib (any joblib backend). With one
        job the folds' own fits and searches use ``n_jobs``, with several they
        run single-threaded. The refit uses it too.
    verbose : int, default=0
        Verbosity of the joblib ``Parallel`` over folds.
    **vrf_params
        VRFEnsembleClassifier's other parameters, same defaults, passed to every
        fit; ordinary parameters of this estimator (``get_params``,
        ``set_params``); their entries below are VRFEnsembleClassifier's own.

    Attributes
    ----------
    best_estimator_ : VRFEnsembleClassifier
        The chosen candidate refitted on all rows (only with ``refit=True``).
    param_grid_ : list of dict
        The candidates searched, as values, in ``GridSearchCV``'s list-of-grids
        form: one ``{"k": [k], "temperature": [...], "threshold": [...]}`` per
        candidate ``k`` (the data-driven values differ by ``k``).
    best_params_ : dict
        The chosen ``{"k", "temperature", "threshold"}``: the values of the
        refit (data-driven ones at the chosen positions in the refit's
        distances; without refit, the folds' values). An int ``k`` larger
        than the refit's Zero-Shot Failure set is clipped, and reported as the
        ``k`` actually used (a warning says so).
    best_score_ : float
        Its mean cross-validated score.
    best_index_ : int
        Its index in ``cv_results_``.
    cv_results_ : dict of ndarray
        In ``GridSearchCV``'s format (``rank_test_score`` by score, whatever
        ``selection``; fit times are the folds', shared by every candidate,
        and a fold's scoring time is divided among its candidates), and:
        ``split{i}_k_used``, the ``k`` each fold actually used per candidate
        (resolved, clipped to its ZSF set), and ``split{i}_finetuned_weight``
        (with its mean and std), the mean weight ``w(x)`` of the fine-tuned
        component on a fold's validation rows; ``threshold_quantile`` and
        ``temperature_fraction``, the position each data-driven value came
        from (nan for explicit values).
    n_splits_ : int
        Number of folds.
    scorer_ : str or callable
        The scoring used.
    classes_ : ndarray of shape (n_classes,)
        ``best_estimator_.classes_`` (without refit, the folds' classes).
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
    ...     zs, LogisticRegression(), ks=(1, 3, "auto"), cv=3, random_state=0
    ... ).fit(X, y)
    >>> clf.cv_results_["mean_test_score"].shape  # 3 ks x 7 temperatures x 8 thresholds
    (168,)
    >>> d = clf.zsf_distances(X)  # the chosen threshold lies among the distances
    >>> bool(d.min() <= clf.best_params_["threshold"] <= d.max())
    True
    >>> clf.predict(X[:5]).shape
    (5,)

    Explicit candidates are searched as given:

    >>> clf = VRFEnsembleClassifierCV(
    ...     zs, LogisticRegression(), ks=(1, 3, "auto"), thresholds=(0.5, 1.0),
    ...     temperatures=(0.3, 0.6), cv=3, random_state=0,
    ... ).fit(X, y)
    >>> sorted(clf.best_params_), clf.cv_results_["mean_test_score"].shape
    (['k', 'temperature', 'threshold'], (12,))
    """

    _parameter_constraints: dict = {
        # VRF's own, for the components and the shared parameters
        **{
            name: VRFEnsembleClassifier._parameter_constraints[name]
            for name in (*_COMPONENTS, *_SHARED)
        },
        "ks": ["array-like"],
        "thresholds": ["array-like", StrOptions({"quantiles"}), DistanceQuantiles],
        "temperatures": ["array-like", StrOptions({"spread"}), DistanceSpread],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(get_scorer_names())), callable, None],
        "refit": ["boolean"],
        "selection": [StrOptions({"best", "tolerance"})],
        "tol": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        zeroshot_estimator,
        finetuned_estimator,
        *,
        ks=(1, 3, 10, 30, 100, "auto"),
        thresholds="quantiles",
        temperatures="spread",
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
        if unknown := set(vrf_params) - set(_SHARED):
            raise TypeError(
                f"VRFEnsembleClassifierCV got unexpected keyword arguments "
                f"{sorted(unknown)}; it takes VRFEnsembleClassifier's parameters "
                f"{sorted(_SHARED)}."
            )
        for name, default in _SHARED.items():
            setattr(self, name, vrf_params.get(name, default))

    def _vrf(self, **params):
        """A VRFEnsembleClassifier with this estimator's shared parameters."""
        own = {name: getattr(self, name) for name in (*_COMPONENTS, *_SHARED)}
        return VRFEnsembleClassifier(**own, **params)

    # the components validate their own parameters
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X, y, *, X_val=None, y_val=None, groups=None, sample_weight=None, **params
    ):
        """Search the grid by cross-validation and refit the best candidate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or sequence
            Training input (see :meth:`VRFEnsembleClassifier.fit`).
        y : array-like of shape (n_samples,)
            Labels.
        X_val : array-like or HeldOut, default=None
            Held-out calibration rows, never test data, given whole to every
            fit. An array as long as ``X`` is refused: pass ``HeldOut(X_val,
            y_val)``.
        y_val : array-like of shape (n_val_samples,), default=None
            Labels of ``X_val`` (None when ``X_val`` is a HeldOut).
        groups : array-like of shape (n_samples,), default=None
            Group labels for a group-aware ``cv`` splitter.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training rows: each fold's and the refit's
            :meth:`VRFEnsembleClassifier.fit` gets its rows' weights (the
            components, the temperatures, the ZSF set and ``k``), and the
            candidates are scored with the held-out rows' weights (weighted
            accuracy, or the scorer's ``sample_weight``; the fine-tuned
            weights' means and the data-driven thresholds' quantiles are
            weighted too).
        **params : dict
            Other metadata, routed (metadata routing enabled only) to the
            components' ``fit`` and the splitter.

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
        sample_weight = check_fit_sample_weight(sample_weight, X, type(self).__name__)
        if _routing_enabled():
            routed = process_routing(
                self, "fit", sample_weight=sample_weight, groups=groups, **params
            )
            split_params = routed.splitter.split
            fit_params = dict(params)
        else:
            if params:
                raise ValueError(
                    f"{type(self).__name__}.fit got unexpected parameters "
                    f"{sorted(params)}; other metadata than sample_weight and "
                    "groups is routed only with metadata routing enabled "
                    "(sklearn.set_config(enable_metadata_routing=True))."
                )
            split_params, fit_params = {"groups": groups}, {}
        if sample_weight is not None:
            fit_params["sample_weight"] = sample_weight
        w_val = validation_weight(X_val)
        X_val, y_val = check_validation(X, X_val, y_val, type(self).__name__)
        check_label_kinds(y=y, y_val=y_val)
        held_out = None if X_val is None else HeldOut(X_val, y_val, w_val)
        grid = _check_grid(self.ks, self.thresholds, self.temperatures)
        scoring = "accuracy" if self.scoring in (None, "accuracy") else self.scoring
        template = self._vrf(k=1)
        scorer = scoring if scoring == "accuracy" else check_scoring(template, scoring)

        X, y = indexable(X, y)
        cv = check_cv(self.cv, y, classifier=True)
        splits = list(cv.split(X, y, **split_params))
        self.n_splits_ = len(splits)
        if min(int(effective_n_jobs(self.n_jobs)), self.n_splits_) > 1:
            template.set_params(n_jobs=None)  # the folds run in parallel instead
        parallel = Parallel(n_jobs=self.n_jobs, verbose=self.verbose)
        folds = parallel(
            delayed(_fit_fold)(template, X, y, tr, te, held_out, grid["k"], fit_params)
            for tr, te in splits
        )
        # each candidate k's distances on every fold's held-out rows, pooled:
        # the data-driven thresholds and temperatures are positions in them
        pooled = [
            np.concatenate([f.dist[:, i] for f in folds]) for i in range(len(grid["k"]))
        ]
        pooled_weights = None
        if sample_weight is not None:
            pooled_weights = np.concatenate([sample_weight[f.test] for f in folds])
        values = _Grid.build(grid, pooled, pooled_weights)
        scored = parallel(
            delayed(_score_fold)(fold, X, y, values, scorer, sample_weight)
            for fold in folds
        )
        self.scorer_ = scoring
        scores, weights, score_time = zip(*scored)
        fit_time = [f.fit_time for f in folds]
        used = [[f.k_used[i] for i, _, _ in values.index()] for f in folds]
        classes = [f.est.classes_ for f in folds]
        del folds
        n_candidates = len(scores[0])
        self.param_grid_ = values.param_grid()
        self.cv_results_ = cv_results(
            values.params(),
            np.column_stack(scores),
            np.tile(fit_time, (n_candidates, 1)),
            np.tile(score_time, (n_candidates, 1)) / n_candidates,
            per_split={"finetuned_weight": np.column_stack(weights)},
        )
        for i, k_used in enumerate(used):
            self.cv_results_[f"split{i}_k_used"] = np.asarray(k_used, dtype=np.int64)
        self.cv_results_.update(values.candidate_positions())
        self.best_index_ = _select(self.cv_results_, self.selection, self.tol)
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_params_ = dict(self.cv_results_["params"][self.best_index_])
        _warn_clipped(self.cv_results_["params"], used)

        if self.refit:
            self.best_estimator_ = self._refit(X, y, held_out, grid, values, fit_params)
            self.classes_ = self.best_estimator_.classes_
            k_best, k_used = self.best_params_["k"], self.best_estimator_.k_
            if not isinstance(k_best, str) and 0 < k_used < k_best:
                self.best_params_["k"] = int(k_used)  # clipped: report the k used
        else:
            self.classes_ = union_classes(
                **{f"fold {i} classes_": c for i, c in enumerate(classes)}
            )
        return self

    def _refit(self, X, y, held_out, grid, values, fit_params):
        """The chosen candidate fitted on all rows. Data-driven values are
        taken to the refit as positions: its bank holds every row, not a
        fold's, so its distances are a little smaller than the folds'; the
        chosen quantile and spread fraction are applied to the distances its
        fit checks (X_val's rows, else the training rows'), which keeps the
        threshold inside them. ``best_params_`` reports the values used."""
        params = clone(self.best_params_, safe=False)
        if not any(_is_spec(grid[p]) for p in ("threshold", "temperature")):
            return self._vrf(**params).fit(X, y, X_val=held_out, **fit_params)
        est = self._vrf(**params)
        with warnings.catch_warnings():
            # the folds' values are replaced below by the refit's own
            warnings.filterwarnings("ignore", message=_THRESHOLD_WARNING)
            est.fit(X, y, X_val=held_out, **fit_params)
        d, rows = est._range_distances(
            X, None if held_out is None else held_out.X, return_rows=True
        )
        sw = fit_params.get("sample_weight")
        if held_out is not None:  # the distances are X_val's
            sw = held_out.sample_weight
        w = None if sw is None else sw[rows]
        _, a, b = values.index()[self.best_index_]
        for param, i in (("threshold", a), ("temperature", b)):
            if _is_spec(grid[param]):
                params[param] = float(grid[param].values(d, w)[i])
        self.best_params_.update(
            threshold=params["threshold"], temperature=params["temperature"]
        )
        return est.set_params(
            threshold=params["threshold"], temperature=params["temperature"]
        )

    def get_metadata_routing(self):
        """How ``fit``'s metadata reach the components and the splitter.

        The search consumes ``sample_weight`` itself (the folds' fits and
        scores, see :meth:`fit`), routes ``fit``'s metadata to each
        component's ``fit`` as each requests (``set_fit_request``), and
        ``groups`` to the ``cv`` splitter.

        Returns
        -------
        routing : MetadataRouter
            A :class:`~sklearn.utils.metadata_routing.MetadataRouter`.
        """
        return components_router(self).add(
            splitter=check_cv(self.cv),
            method_mapping=MethodMapping().add(caller="fit", callee="split"),
        )

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
            The value of ``scoring`` (accuracy by default).
        """
        check_is_fitted(self)
        scorer = check_scoring(self.best_estimator_, scoring=self.scoring)
        kwargs = {} if sample_weight is None else {"sample_weight": sample_weight}
        return scorer(self.best_estimator_, X, y, **kwargs)


# VRF's shared parameters and methods, taken from VRFEnsembleClassifier so that
# they cannot drift.
add_keyword_parameters(
    VRFEnsembleClassifierCV,
    VRFEnsembleClassifier,
    list(_SHARED),
    after="their entries below are VRFEnsembleClassifier's own.\n",
)
delegate_methods(
    VRFEnsembleClassifierCV,
    VRFEnsembleClassifier,
    "predict predict_proba predict_log_proba ensemble_weights zsf_distances "
    "zsf_neighbors with_class_map".split(),
    "best_estimator_",
    _has_best_estimator,
)
