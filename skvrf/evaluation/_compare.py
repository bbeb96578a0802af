"""Every method on equal terms: one function that fits and tunes them all."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import PredefinedSplit

from .._grids import resolve_grid_spec

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_TOL",
    "DEFAULT_VRF_GRID",
    "PAPER_SCALE_VRF_GRID",
    "compare_methods",
]

DEFAULT_ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2).tolist())
# Tolerance of the "(tolerance)" rows in validation accuracy: one point, about
# one standard error of an accuracy near 0.87 measured on 1,000 rows.
DEFAULT_TOL = 0.01
# The VRF search's candidates: thresholds at quantiles of the validation rows'
# distances and temperatures as fractions of their spread, for each k
# (VRFEnsembleClassifierCV's defaults; skvrf.DistanceQuantiles / DistanceSpread).
DEFAULT_VRF_GRID = {
    "ks": (1, 3, 10, 30, 100, "auto"),
    "thresholds": "quantiles",
    "temperatures": "spread",
}
# The fixed grid used before 0.1.0, built around CLIP ViT-B/16's distances (the
# paper's threshold=1.5, temperature=0.6): on other encoders' distances its
# thresholds may lie outside every distance. Kept for comparisons.
PAPER_SCALE_VRF_GRID = {
    "ks": (1, 3, 10, 30, 100, "auto"),
    "thresholds": (0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.75),
    "temperatures": (0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
}


def grid_description(search):
    """What a VRF search searched, for ``selection.json``: the candidate specs
    (positions or values) and, per ``k``, the values actually tried."""

    def spec(value):
        if isinstance(value, str):
            value = resolve_grid_spec(
                value, "thresholds" if value == "quantiles" else "temperatures"
            )
        if hasattr(value, "positions"):
            return {type(value).__name__: [float(v) for v in value.positions()]}
        return [_plain(v) for v in value]

    return {
        "ks": [_plain(k) for k in search.ks],
        "thresholds": spec(search.thresholds),
        "temperatures": spec(search.temperatures),
        "values": [
            {
                "k": _plain(g["k"][0]),
                "thresholds": [_rounded(v) for v in g["threshold"]],
                "temperatures": [_rounded(v) for v in g["temperature"]],
            }
            for g in search.param_grid_
        ],
    }


def _plain(value):
    """A JSON-ready candidate value (ints and strings as they are)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Integral):
        return int(value)
    return _rounded(value)


def _rounded(value):
    """A reported float to 6 significant digits (stable under round-off)."""
    return float(f"{float(value):.6g}")


def _smallest_within(scores, alphas, tol):
    """The smallest alpha whose score is within ``tol`` of the best."""
    scores = np.asarray(scores, dtype=np.float64)
    floor = scores.max() - tol - 1e-12  # a score exactly tol below stays in
    eligible = [i for i in range(len(alphas)) if scores[i] >= floor]
    return min(eligible, key=lambda i: (alphas[i], -scores[i], i))


# The selective-prediction rows: (name, score)
SELECTIVE_ROWS = (
    ("selective (MSP)", "msp"),
    ("selective (energy)", "energy"),
    ("selective (MD)", "mahalanobis"),
    ("selective (RMD)", "relative_mahalanobis"),
    ("selective (kNN)", "knn"),
)


def compare_methods(
    zeroshot,
    finetuned,
    train,
    validation,
    *,
    alphas=DEFAULT_ALPHAS,
    vrf_grid=None,
    paper_vrf=True,
    tol=DEFAULT_TOL,
    baselines=True,
    n_jobs=None,
):
    """Build every method on the same two components; tune on validation only.

    All ensembles share the same two components, used frozen, and calibrate both
    on the validation split. Test and shift sets are never used for a choice.

    - ``"zero-shot"``, ``"fine-tuned"``: the components.
    - ``"OSE"``: ``alpha`` the best of ``alphas`` by validation accuracy (ties
      to the first).
    - ``"entropy"``: the entropy-weighted ensemble (output-space DaWin).
    - ``"VRF"``: ``k``, ``threshold`` and ``temperature`` the best of
      ``vrf_grid`` by validation accuracy, found by
      :class:`~skvrf.VRFEnsembleClassifierCV` with one predefined split (fitted
      on ``train``, scored on ``validation``), then fitted on ``train``.
    - ``"VRF (paper defaults)"`` (``paper_vrf``): ``k="auto"``, threshold 1.5,
      temperature 0.6.
    - ``"OSE (tolerance)"``, ``"VRF (tolerance)"`` (unless ``tol`` is None):
      the most zero-shot-leaning candidate whose validation accuracy is within
      ``tol`` of the best: OSE's smallest such alpha; VRF's candidate of lowest
      mean weight of the fine-tuned component on the validation rows
      (``VRFEnsembleClassifierCV(selection="tolerance")``).
    - ``baselines``: ``"selective (MSP)"``, ``"selective (energy)"``,
      ``"selective (MD)"``, ``"selective (RMD)"``, ``"selective (kNN)"``
      (:class:`~skvrf.SelectiveEnsembleClassifier`, 95 % ID true-positive rate
      on the validation split; the VRF paper's Table 5), ``"VRF (all-rows
      bank)"`` (the paper's defaults with every training row in the bank, its
      Fig. 4 ablation), ``"zero-shot (GLA)"`` (the zero-shot head with its
      label bias removed, estimated on ``train``) and ``"VRF (paper defaults,
      GLA)"``.

    Parameters
    ----------
    zeroshot : classifier
        The zero-shot head (e.g. :class:`~skvrf.ZeroShotClassifier`).
    finetuned : fitted classifier
        The fine-tuned model, already fitted on ``train``.
    train, validation : tuple of (X, y)
        The ID training and validation splits.
    alphas : sequence of float, default=DEFAULT_ALPHAS
        OSE's candidates (0, 0.1, ..., 1).
    vrf_grid : dict, default=None
        ``ks``, ``thresholds``, ``temperatures`` for the VRF search
        (:class:`~skvrf.VRFEnsembleClassifierCV`'s parameters);
        :data:`DEFAULT_VRF_GRID` when None: thresholds at quantiles of the
        validation rows' distances and temperatures as fractions of their
        spread, per ``k`` (``"quantiles"``, ``"spread"``).
        :data:`PAPER_SCALE_VRF_GRID` is the fixed grid around the paper's
        values (CLIP ViT-B/16-like distances).
    paper_vrf : bool, default=True
        Also return VRF with the paper's defaults (``k="auto"``, threshold 1.5,
        temperature 0.6) as ``"VRF (paper defaults)"``.
    tol : float or None, default=DEFAULT_TOL
        Tolerance in validation accuracy of the ``"(tolerance)"`` rows (0.01:
        one point); None leaves them out.
    baselines : bool, default=True
        Also return the selective-prediction, all-rows-bank and GLA rows.
    n_jobs : int, default=None
        Jobs of the VRF search.

    Returns
    -------
    estimators : dict
        Fitted estimators by row name, in the order above.
    selection : dict
        The chosen values and their validation accuracies; under ``"vrf"``
        also the grid searched (``"grid"``: the candidate specs and, per
        ``k``, the values tried) and, for data-driven candidates, the chosen
        ``threshold_quantile`` and ``temperature_fraction``; under
        ``"paper_defaults"`` whether the paper's threshold lies inside the
        validation rows' distances.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf.evaluation import compare_methods
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> def split(n):
    ...     y = rng.integers(0, 3, n)
    ...     return centers[y] + rng.normal(size=(n, 8)), y
    >>> train, val = split(300), split(100)
    >>> ft = LogisticRegression().fit(*train)
    >>> grid = {"ks": (1, 5), "thresholds": (1.0, 1.5), "temperatures": (0.3,)}
    >>> models, chosen = compare_methods(
    ...     ZeroShotClassifier(centers), ft, train, val, vrf_grid=grid,
    ...     baselines=False,
    ... )
    >>> list(models)  # doctest: +NORMALIZE_WHITESPACE
    ['zero-shot', 'fine-tuned', 'OSE', 'entropy', 'VRF', 'VRF (paper defaults)',
     'OSE (tolerance)', 'VRF (tolerance)']
    >>> sorted(chosen["vrf"])  # doctest: +NORMALIZE_WHITESPACE
    ['finetuned_weight', 'grid', 'k', 'k_used', 'temperature', 'threshold',
     'val_accuracy']
    """
    from .._baselines import EntropyEnsembleClassifier, OutputSpaceEnsembleClassifier
    from .._heldout import HeldOut
    from .._search import VRFEnsembleClassifierCV, _select
    from .._selective import SelectiveEnsembleClassifier
    from .._vrf import VRFEnsembleClassifier

    X, y = train
    X_val, y_val = validation
    grid = dict(DEFAULT_VRF_GRID if vrf_grid is None else vrf_grid)
    zs = zeroshot if hasattr(zeroshot, "classes_") else zeroshot.fit(X)
    frozen = FrozenEstimator(finetuned)
    # HeldOut: passed on whole, whatever its length (see skvrf.HeldOut)
    fit_kw = {"X_val": HeldOut(X_val, y_val)}

    # alpha does not change what OSE fits: fit once, then score each alpha.
    ose = OutputSpaceEnsembleClassifier(zs, frozen).fit(X, y, **fit_kw)
    scores = []
    for alpha in alphas:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha={alpha} is not in [0, 1].")
        scores.append(ose.set_params(alpha=alpha).score(X_val, y_val))
    best = int(np.argmax(scores))
    ose.set_params(alpha=alphas[best])

    fold = np.r_[np.full(len(y), -1), np.zeros(len(y_val), dtype=int)]
    X_all, y_all = np.concatenate([X, X_val]), np.concatenate([y, y_val])

    def fit_chosen(search, index):
        """VRF fitted on ``train`` with the search's candidate ``index``."""
        results = search.cv_results_
        params = dict(results["params"][index])
        vrf = VRFEnsembleClassifier(zs, frozen, **params).fit(X, y, **fit_kw)
        chosen = {
            **params,
            "k_used": int(vrf.k_),
            "val_accuracy": float(results["mean_test_score"][index]),
            "finetuned_weight": _rounded(results["mean_finetuned_weight"][index]),
        }
        for key in ("threshold_quantile", "temperature_fraction"):
            if np.isfinite(results[key][index]):
                chosen[key] = float(results[key][index])
        return vrf, chosen

    with warnings.catch_warnings():
        # selection["vrf"]["k_used"] reports the k actually used. A chosen
        # threshold outside the distances still warns (it cannot happen with the
        # default, data-driven candidates).
        for message in ("k=.*is clipped", "Some candidate k exceed"):
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        # One search: its best_index_ is the tolerance candidate (tol validated
        # there); the best one comes from the same cv_results_.
        tolerance = {} if tol is None else {"selection": "tolerance", "tol": tol}
        search = VRFEnsembleClassifierCV(
            zs,
            frozen,
            **grid,
            cv=PredefinedSplit(fold),
            scoring="accuracy",
            refit=False,
            n_jobs=n_jobs,
            **tolerance,
        ).fit(X_all, y_all, **fit_kw)
        vrf, vrf_chosen = fit_chosen(search, _select(search.cv_results_, "best", None))
        if tol is not None:
            vrf_tol, vrf_tol_chosen = fit_chosen(search, search.best_index_)
    estimators = {
        "zero-shot": zs,
        "fine-tuned": finetuned,
        "OSE": ose,
        "entropy": EntropyEnsembleClassifier(zs, frozen).fit(X, y, **fit_kw),
        "VRF": vrf,
    }
    vrf_chosen["grid"] = grid_description(search)
    selection = {
        "ose": {"alpha": float(alphas[best]), "val_accuracy": float(scores[best])},
        "vrf": vrf_chosen,
        "calibration_temperatures": dict(vrf.calibration_temperatures_),
        "zsf_size": int(vrf.zsf_indices_.size),
    }
    if paper_vrf:
        # the paper's fixed values, a labelled reference row: whether they suit
        # these distances is recorded, not warned about
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="threshold=.* lies", category=UserWarning
            )
            paper = VRFEnsembleClassifier(zs, frozen).fit(X, y, **fit_kw)
        estimators["VRF (paper defaults)"] = paper
        d = paper.zsf_distances(X_val)
        d = d[np.isfinite(d)]
        selection["paper_defaults"] = {
            "k_used": int(paper.k_),
            "threshold": paper.threshold,
            "temperature": paper.temperature,
            "threshold_inside_val_distances": bool(
                d.size and d.min() <= paper.threshold <= d.max()
            ),
            "val_distance_range": [_rounded(d.min()), _rounded(d.max())]
            if d.size
            else None,
        }
    if tol is not None:
        i = _smallest_within(scores, alphas, tol)
        estimators["OSE (tolerance)"] = OutputSpaceEnsembleClassifier(
            zs, frozen, alpha=alphas[i]
        ).fit(X, y, **fit_kw)
        estimators["VRF (tolerance)"] = vrf_tol
        selection["tolerance"] = {
            "tol": float(tol),
            "ose": {"alpha": float(alphas[i]), "val_accuracy": float(scores[i])},
            "vrf": vrf_tol_chosen,
        }
    if baselines:
        selective = {}
        for name, score in SELECTIVE_ROWS:
            est = SelectiveEnsembleClassifier(zs, frozen, id_score=score).fit(
                X, y, **fit_kw
            )
            estimators[name] = est
            selective[score] = {"threshold": _rounded(est.threshold_)}
            if score == "knn":
                selective[score]["k_used"] = int(est.k_)
        with warnings.catch_warnings():
            # fixed paper values: the rows show what they do, warned or not
            warnings.filterwarnings(
                "ignore", message="threshold=.* lies", category=UserWarning
            )
            estimators["VRF (all-rows bank)"] = VRFEnsembleClassifier(
                zs, frozen, zsf_rule="all"
            ).fit(X, y, **fit_kw)
            estimators["zero-shot (GLA)"] = OutputSpaceEnsembleClassifier(
                zs, frozen, alpha=0.0, calibrate=False, logit_adjustment="gla"
            ).fit(X, y, **fit_kw)
            estimators["VRF (paper defaults, GLA)"] = VRFEnsembleClassifier(
                zs, frozen, logit_adjustment="gla"
            ).fit(X, y, **fit_kw)
        selection["selective"] = selective
    return estimators, selection
