"""Every method on equal terms: one function that fits and tunes them all."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import PredefinedSplit

__all__ = ["DEFAULT_ALPHAS", "DEFAULT_VRF_GRID", "compare_methods"]

DEFAULT_ALPHAS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2).tolist())
DEFAULT_VRF_GRID = {
    "ks": (1, 3, 10, 30, 100, "auto"),
    "thresholds": (0.8, 1.0, 1.2, 1.4, 1.5, 1.6, 1.75),
    "temperatures": (0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
}


def compare_methods(
    zeroshot,
    finetuned,
    train,
    validation,
    *,
    alphas=DEFAULT_ALPHAS,
    vrf_grid=None,
    paper_vrf=True,
    n_jobs=None,
):
    """Build zero-shot, fine-tuned, OSE, entropy and VRF models; tune on validation.

    All ensembles share the same two components, used frozen, and calibrate both
    on the validation split. OSE's ``alpha`` is the best of ``alphas`` by
    validation accuracy (ties to the first); VRF's ``k``, ``threshold`` and
    ``temperature`` are the best of ``vrf_grid`` by validation accuracy, found by
    :class:`~skvrf.VRFEnsembleClassifierCV` with one predefined split (fitted on
    ``train``, scored on ``validation``), then fitted on ``train``. Test and shift
    sets are never used for a choice.

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
        ``ks``, ``thresholds``, ``temperatures`` for the VRF search;
        :data:`DEFAULT_VRF_GRID` when None.
    paper_vrf : bool, default=True
        Also return VRF with the paper's defaults (``k="auto"``, threshold 1.5,
        temperature 0.6) as ``"VRF (paper defaults)"``.
    n_jobs : int, default=None
        Jobs of the VRF search.

    Returns
    -------
    estimators : dict
        ``"zero-shot"``, ``"fine-tuned"``, ``"OSE"``, ``"entropy"``, ``"VRF"``
        (and ``"VRF (paper defaults)"``): fitted estimators.
    selection : dict
        The chosen values and their validation accuracies.

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
    ...     ZeroShotClassifier(centers), ft, train, val, vrf_grid=grid
    ... )
    >>> sorted(models)
    ['OSE', 'VRF', 'VRF (paper defaults)', 'entropy', 'fine-tuned', 'zero-shot']
    >>> sorted(chosen["vrf"])
    ['k', 'k_used', 'temperature', 'threshold', 'val_accuracy']
    """
    from .._baselines import EntropyEnsembleClassifier, OutputSpaceEnsembleClassifier
    from .._heldout import HeldOut
    from .._search import VRFEnsembleClassifierCV
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
    with warnings.catch_warnings():
        # selection["vrf"]["k_used"] reports the k actually used
        for message in ("k=.*is clipped", "Some candidate k exceed"):
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        search = VRFEnsembleClassifierCV(
            zs,
            frozen,
            **grid,
            cv=PredefinedSplit(fold),
            scoring="accuracy",
            refit=False,
            n_jobs=n_jobs,
        ).fit(np.concatenate([X, X_val]), np.concatenate([y, y_val]), **fit_kw)
        params = dict(search.best_params_)
        vrf = VRFEnsembleClassifier(zs, frozen, **params).fit(X, y, **fit_kw)
    estimators = {
        "zero-shot": zs,
        "fine-tuned": finetuned,
        "OSE": ose,
        "entropy": EntropyEnsembleClassifier(zs, frozen).fit(X, y, **fit_kw),
        "VRF": vrf,
    }
    if paper_vrf:
        estimators["VRF (paper defaults)"] = VRFEnsembleClassifier(zs, frozen).fit(
            X, y, **fit_kw
        )
    selection = {
        "ose": {"alpha": float(alphas[best]), "val_accuracy": float(scores[best])},
        "vrf": {
            **params,
            "k_used": int(vrf.k_),
            "val_accuracy": float(search.best_score_),
        },
        "calibration_temperatures": dict(vrf.calibration_temperatures_),
        "zsf_size": int(vrf.zsf_indices_.size),
    }
    return estimators, selection
