"""Global-alpha sweeps of a two-component ensemble (the OSE / WiSE-FT curve).

The components' calibrated probabilities are computed once per evaluation set and
then mixed with every alpha, so a sweep of 11 alphas costs one prediction per
component and set.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._classmap import parse_class_map
from .._weighting import mix
from ._scorers import encode_labels, resolve_scoring

__all__ = ["AlphaSweep", "sweep_alpha"]

ID_SET = "id"
OOD_MEAN = "ood_mean"


def _as_set(data, name):
    """``(X, y, class_map or None)`` from ``(X, y)`` or ``(X, y, class_map)``."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise TypeError(
            f"Set {name!r} must be a tuple (X, y) or (X, y, class_map), got "
            f"{type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else "")
            + "."
        )
    X, y = data[0], np.asarray(data[1])
    class_map = data[2] if len(data) == 3 else None
    return X, y, class_map


def as_sets(id_data, ood_data):
    """``{set name: (X, y, class_map)}``, the ID set first under ``"id"``."""
    if not isinstance(ood_data, Mapping) or len(ood_data) == 0:
        raise ValueError(
            "ood_data must be a non-empty mapping of set names to (X, y) or "
            "(X, y, class_map)."
        )
    sets = {ID_SET: _as_set(id_data, ID_SET)}
    for name, data in ood_data.items():
        if not isinstance(name, str):
            raise TypeError(f"OOD set names must be strings, got {name!r}.")
        if name in (ID_SET, OOD_MEAN):
            raise ValueError(f"{name!r} is reserved; rename that OOD set.")
        sets[name] = _as_set(data, name)
    return sets


def _with_ood_mean(scores, ood_sets):
    """Add ``"ood_mean"`` (mean over the OOD sets) to ``{set: value}``."""
    scores[OOD_MEAN] = np.mean([scores[s] for s in ood_sets], axis=0)
    return scores


class AlphaSweep:
    """Scores of ``(1 - alpha) p_zs + alpha p_ft`` for a grid of global alphas.

    Made by :func:`sweep_alpha`; carried by
    :class:`~skvrf.evaluation.RobustnessReport` (``report.sweeps[name]``) and drawn
    as a curve by :class:`~skvrf.plotting.RobustnessDisplay`.

    Parameters
    ----------
    alphas : array-like of shape (n_alphas,)
        Weights of the fine-tuned component.
    scores : dict
        ``scores[metric][set]``: array of shape (n_alphas,), for the sets ``"id"``,
        each OOD set and ``"ood_mean"``.

    Attributes
    ----------
    alphas : ndarray of shape (n_alphas,)
        The alphas.
    scores : dict
        The scores, as arrays.
    metrics : list of str
        Metric names.
    ood_sets : list of str
        OOD set names, in order.

    Examples
    --------
    >>> from skvrf.evaluation import AlphaSweep
    >>> sweep = AlphaSweep(
    ...     [0.0, 0.5, 1.0],
    ...     {"accuracy": {"id": [0.6, 0.8, 0.8], "a": [0.5, 0.55, 0.4],
    ...                   "ood_mean": [0.5, 0.55, 0.4]}},
    ... )
    >>> sweep.best_alpha()  # best ID accuracy, first of ties
    0.5
    >>> AlphaSweep.from_dict(sweep.to_dict()).alphas.tolist()
    [0.0, 0.5, 1.0]
    """

    def __init__(self, alphas, scores):
        self.alphas = np.asarray(alphas, dtype=np.float64)
        if self.alphas.ndim != 1 or self.alphas.size == 0:
            raise ValueError("alphas must be a non-empty 1-D array.")
        self.scores = {
            metric: {s: np.asarray(v, dtype=np.float64) for s, v in per_set.items()}
            for metric, per_set in scores.items()
        }
        for metric, per_set in self.scores.items():
            for s, v in per_set.items():
                if v.shape != self.alphas.shape:
                    raise ValueError(
                        f"scores[{metric!r}][{s!r}] has shape {v.shape}, expected "
                        f"{self.alphas.shape} (one value per alpha)."
                    )
            if ID_SET not in per_set or OOD_MEAN not in per_set:
                raise ValueError(
                    f"scores[{metric!r}] must hold the sets 'id' and 'ood_mean'."
                )

    @property
    def metrics(self):
        return list(self.scores)

    @property
    def ood_sets(self):
        first = next(iter(self.scores.values()))
        return [s for s in first if s not in (ID_SET, OOD_MEAN)]

    def best_alpha(self, metric="accuracy", on="id"):
        """The alpha with the best score on one set (the paper picks it on ID).

        Parameters
        ----------
        metric : str, default="accuracy"
            A metric of the sweep; larger is better for accuracy, smaller for
            ``"log_loss"`` and ``"ece"``.
        on : str, default="id"
            The set that decides (choose on ID validation data, never on test).

        Returns
        -------
        alpha : float
            The first best alpha.
        """
        from ._scorers import greater_is_better

        values = self.scores[metric][on]
        i = np.argmax(values) if greater_is_better(metric) else np.argmin(values)
        return float(self.alphas[i])

    def to_dict(self):
        """A JSON-serialisable dict (see :meth:`from_dict`).

        Returns
        -------
        data : dict
            ``{"alphas": [...], "scores": {metric: {set: [...]}}}``.
        """
        return {
            "alphas": self.alphas.tolist(),
            "scores": {
                m: {s: v.tolist() for s, v in per_set.items()}
                for m, per_set in self.scores.items()
            },
        }

    @classmethod
    def from_dict(cls, data):
        """Rebuild a sweep from :meth:`to_dict`'s output.

        Parameters
        ----------
        data : dict
            As returned by :meth:`to_dict`.

        Returns
        -------
        sweep : AlphaSweep
            The sweep.
        """
        return cls(data["alphas"], data["scores"])

    def __repr__(self):
        return (
            f"AlphaSweep(n_alphas={self.alphas.size}, metrics={self.metrics}, "
            f"ood_sets={self.ood_sets})"
        )


def _check_two_component(ensemble):
    is_ensemble = hasattr(ensemble, "component_proba")
    if not is_ensemble or not hasattr(ensemble, "calibration_temperatures_"):
        raise TypeError(
            "sweep_alpha needs a fitted two-component ensemble of skvrf (e.g. a "
            "fitted OutputSpaceEnsembleClassifier or VRFEnsembleClassifier), got "
            f"{type(ensemble).__name__}"
            + (" (not fitted?)" if is_ensemble else "")
            + "."
        )


def sweep_alpha(
    ensemble,
    id_data,
    ood_data,
    alphas=None,
    *,
    scoring=("accuracy",),
    mixing="probability",
):
    """Score the global mix of an ensemble's components for a grid of alphas.

    For each set, the components' calibrated probabilities ``p_zs`` and ``p_ft``
    (aligned to ``classes_``, or mapped through the set's class map: each
    component's logits mapped, then its calibrated softmax) are computed once; each
    ``alpha`` then scores ``(1 - alpha) p_zs + alpha p_ft``, the output-space
    ensemble (OSE) of the paper's baselines. ``alpha=0`` is the (calibrated)
    zero-shot model, ``alpha=1`` the fine-tuned one.

    Parameters
    ----------
    ensemble : fitted two-component ensemble
        An :class:`~skvrf.OutputSpaceEnsembleClassifier` (its own ``alpha`` is
        ignored), or any other fitted skvrf ensemble of a zero-shot and a
        fine-tuned component (e.g. a VRF: the sweep is then the OSE of its
        components and calibration).
    id_data : tuple
        ``(X, y)`` of the in-distribution test set.
    ood_data : mapping
        Set name -> ``(X, y)`` or ``(X, y, class_map)``; ``class_map`` is a list of
        kept classes or a dict target label -> source classes (pooled by max
        logit), as in :meth:`~skvrf.OutputSpaceEnsembleClassifier.with_class_map`.
    alphas : array-like, default=None
        Weights of the fine-tuned component, in [0, 1]; default
        ``np.linspace(0, 1, 11)``.
    scoring : str, (name, callable) or sequence of them, default=("accuracy",)
        Metrics: ``"accuracy"``, ``"log_loss"``, ``"ece"`` or ``(name, f)`` with
        ``f(y_true, proba, classes)``.
    mixing : {"probability", "logit"}, default="probability"
        Mix probabilities (OSE) or calibrated logits.

    Returns
    -------
    sweep : AlphaSweep
        ``sweep.scores[metric][set]`` for ``"id"``, each OOD set and
        ``"ood_mean"``.

    See Also
    --------
    evaluate_shifts : Scores of fitted estimators; carries sweeps.
    skvrf.plotting.RobustnessDisplay : Draws a sweep as a curve.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import OutputSpaceEnsembleClassifier, ZeroShotClassifier
    >>> from skvrf.evaluation import sweep_alpha
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> def make(n, shift=0.0):
    ...     y = rng.integers(0, 3, n)
    ...     return centers[y] + shift + rng.normal(scale=0.8, size=(n, 8)), y
    >>> X, y = make(200)
    >>> ose = OutputSpaceEnsembleClassifier(
    ...     ZeroShotClassifier(centers), LogisticRegression()
    ... ).fit(X, y)
    >>> sweep = sweep_alpha(ose, make(100), {"shifted": make(100, 0.5)},
    ...                     alphas=[0.0, 0.5, 1.0])
    >>> sorted(sweep.scores["accuracy"])
    ['id', 'ood_mean', 'shifted']
    >>> sweep.scores["accuracy"]["id"].shape
    (3,)
    """
    _check_two_component(ensemble)
    if mixing not in ("probability", "logit"):
        raise ValueError(f"mixing must be 'probability' or 'logit', got {mixing!r}.")
    alphas = np.linspace(0.0, 1.0, 11) if alphas is None else alphas
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError("alphas must be a non-empty 1-D sequence.")
    if np.any((alphas < 0) | (alphas > 1)):
        raise ValueError(f"alphas must lie in [0, 1], got {alphas.tolist()}.")
    scorers = resolve_scoring(scoring)
    sets = as_sets(id_data, ood_data)

    scores = {m: {} for m in scorers}
    for set_name, (X, y, class_map) in sets.items():
        if class_map is None:
            classes = ensemble.classes_
        else:
            try:
                classes, _ = parse_class_map(class_map, ensemble.classes_)
            except ValueError as exc:
                raise ValueError(f"Set {set_name!r}: bad class map: {exc}") from exc
        encode_labels(y, classes, where=f"Set {set_name!r}")
        probas = ensemble.component_proba(X, class_map=class_map)
        p_zs, p_ft = probas["zeroshot"], probas["finetuned"]
        values = {m: np.empty(alphas.size) for m in scorers}
        for i, alpha in enumerate(alphas):
            proba = mix(p_zs, p_ft, alpha, mixing)
            for m, func in scorers.items():
                values[m][i] = func(y, proba, classes)
        for m in scorers:
            scores[m][set_name] = values[m]
    ood_sets = [s for s in sets if s != ID_SET]
    for m in scorers:
        _with_ood_mean(scores[m], ood_sets)
    return AlphaSweep(alphas, scores)
