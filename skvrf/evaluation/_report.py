"""``evaluate_shifts`` and its result, ``RobustnessReport``.

Each estimator predicts each set once (``predict_proba``); every metric is then
computed from those probabilities. Sets that cover a subset of the classes or pool
them (ImageNet-A/R, ObjectNet) carry a class map, and the estimator is evaluated
through :meth:`with_class_map` (skvrf's ensembles: each component mapped before
its calibrated softmax) or :class:`~skvrf.ClassMappedClassifier` (any other
classifier: its logits mapped).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._classmap import class_mapped
from ._scorers import encode_labels, is_percent, resolve_scoring
from ._sweep import ID_SET, OOD_MEAN, AlphaSweep, _with_ood_mean, as_sets

__all__ = ["RobustnessReport", "evaluate_shifts"]


class RobustnessReport:
    """Scores of several estimators on an ID set and several OOD sets.

    Made by :func:`evaluate_shifts`; drawn by
    :class:`~skvrf.plotting.RobustnessDisplay`.

    Parameters
    ----------
    scores : dict
        ``scores[metric][estimator name][set]`` -> float, with the sets ``"id"``,
        each OOD set and ``"ood_mean"``.
    sweeps : dict of str to AlphaSweep, default=None
        Alpha sweeps to carry (e.g. ``{"OSE": sweep_alpha(...)}``).

    Attributes
    ----------
    scores : dict
        The scores.
    sweeps : dict of str to AlphaSweep
        The sweeps (empty dict when none).
    metrics : list of str
        Metric names, in order.
    estimator_names : list of str
        Estimator names, in order.
    ood_sets : list of str
        OOD set names, in order.

    See Also
    --------
    evaluate_shifts : Makes the report.
    skvrf.plotting.RobustnessDisplay : ID vs OOD plot of a report.

    Examples
    --------
    >>> from skvrf.evaluation import RobustnessReport
    >>> report = RobustnessReport({"accuracy": {
    ...     "zero-shot": {"id": 0.683, "sketch": 0.483, "ood_mean": 0.483},
    ...     "VRF": {"id": 0.823, "sketch": 0.529, "ood_mean": 0.529}}})
    >>> print(report.to_markdown())
    accuracy (%)
    <BLANKLINE>
    | estimator | ID | sketch | OOD mean |
    |:--|--:|--:|--:|
    | zero-shot | 68.3 | 48.3 | 48.3 |
    | VRF | 82.3 | 52.9 | 52.9 |
    >>> RobustnessReport.from_dict(report.to_dict()).scores == report.scores
    True
    """

    def __init__(self, scores, *, sweeps=None):
        if not isinstance(scores, Mapping) or not scores:
            raise ValueError("scores must be a non-empty dict metric -> ...")
        self.scores = {
            str(m): {
                str(name): {str(s): float(v) for s, v in per_set.items()}
                for name, per_set in per_est.items()
            }
            for m, per_est in scores.items()
        }
        for m, per_est in self.scores.items():
            for name, per_set in per_est.items():
                if ID_SET not in per_set or OOD_MEAN not in per_set:
                    raise ValueError(
                        f"scores[{m!r}][{name!r}] must hold the sets 'id' and "
                        "'ood_mean'."
                    )
        sweeps = {} if sweeps is None else dict(sweeps)
        for name, sweep in sweeps.items():
            if not isinstance(sweep, AlphaSweep):
                raise TypeError(
                    f"sweeps[{name!r}] must be an AlphaSweep (from sweep_alpha), "
                    f"got {type(sweep).__name__}."
                )
        self.sweeps = sweeps

    @property
    def metrics(self):
        return list(self.scores)

    @property
    def estimator_names(self):
        return list(next(iter(self.scores.values())))

    @property
    def ood_sets(self):
        per_est = next(iter(self.scores.values()))
        if per_est:
            first = next(iter(per_est.values()))
        elif self.sweeps:
            first = next(iter(next(iter(self.sweeps.values())).scores.values()))
        else:
            return []
        return [s for s in first if s not in (ID_SET, OOD_MEAN)]

    def _check_metric(self, metric):
        if metric not in self.scores:
            raise ValueError(
                f"The report has no metric {metric!r}; it has {self.metrics}."
            )

    # -------------------------------------------------------------- exports
    def to_markdown(self, metric=None, digits=None):
        """Markdown tables: one per metric, estimators by rows.

        Columns are ID, each OOD set and the OOD mean. Accuracy and ECE are shown
        in percent, as in the paper's tables.

        Parameters
        ----------
        metric : str or list of str, default=None
            The metric(s) to show; default all.
        digits : int, default=None
            Decimals; default 1 for percentages, 3 otherwise.

        Returns
        -------
        markdown : str
            The tables, each under a line naming the metric, separated by a blank
            line.
        """
        metrics = self.metrics if metric is None else np.atleast_1d(metric).tolist()
        ood_sets = self.ood_sets
        header = ["estimator", "ID", *ood_sets, "OOD mean"]
        blocks = []
        for m in metrics:
            self._check_metric(m)
            pct = is_percent(m)
            d = (1 if pct else 3) if digits is None else int(digits)
            scale = 100.0 if pct else 1.0
            lines = [
                f"{m} (%)" if pct else m,
                "",
                "| " + " | ".join(header) + " |",
                "|:--|" + "--:|" * (len(header) - 1),
            ]
            for name, per_set in self.scores[m].items():
                cells = [per_set[s] for s in (ID_SET, *ood_sets, OOD_MEAN)]
                row = [name.replace("|", "\\|")]
                row += [f"{scale * v:.{d}f}" for v in cells]
                lines.append("| " + " | ".join(row) + " |")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def to_dict(self):
        """A JSON-serialisable dict (see :meth:`from_dict`).

        Returns
        -------
        data : dict
            ``{"scores": ..., "sweeps": {name: sweep.to_dict()}}``.
        """
        return {
            "scores": {
                m: {name: dict(per_set) for name, per_set in per_est.items()}
                for m, per_est in self.scores.items()
            },
            "sweeps": {name: sweep.to_dict() for name, sweep in self.sweeps.items()},
        }

    @classmethod
    def from_dict(cls, data):
        """Rebuild a report from :meth:`to_dict`'s output (e.g. read from JSON).

        Parameters
        ----------
        data : dict
            As returned by :meth:`to_dict`.

        Returns
        -------
        report : RobustnessReport
            The report.
        """
        sweeps = {
            name: AlphaSweep.from_dict(d)
            for name, d in (data.get("sweeps") or {}).items()
        }
        return cls(data["scores"], sweeps=sweeps)

    def to_frame(self, metric=None):
        """The scores as a pandas DataFrame (requires pandas).

        Parameters
        ----------
        metric : str, default=None
            One metric: columns are the sets. Default: all metrics, with
            (metric, set) MultiIndex columns.

        Returns
        -------
        frame : pandas.DataFrame
            One row per estimator; the values as stored (fractions, not percent).
        """
        from ..utils import import_optional

        pd = import_optional("pandas", "RobustnessReport.to_frame")
        sets = [ID_SET, *self.ood_sets, OOD_MEAN]
        names = self.estimator_names
        if metric is not None:
            self._check_metric(metric)
            rows = [[self.scores[metric][n][s] for s in sets] for n in names]
            frame = pd.DataFrame(rows, index=names, columns=sets)
        else:
            columns = pd.MultiIndex.from_product([self.metrics, sets])
            rows = [
                [self.scores[m][n][s] for m in self.metrics for s in sets]
                for n in names
            ]
            frame = pd.DataFrame(rows, index=names, columns=columns)
        frame.index.name = "estimator"
        return frame

    def __repr__(self):
        return (
            f"RobustnessReport(metrics={self.metrics}, "
            f"estimators={self.estimator_names}, ood_sets={self.ood_sets}, "
            f"sweeps={list(self.sweeps)})"
        )


def evaluate_shifts(
    estimators, id_data, ood_data, *, scoring=("accuracy",), sweeps=None
):
    """Score fitted estimators on an ID test set and several OOD test sets.

    Each estimator's ``predict_proba`` is called once per set; predictions are
    its argmax, and every metric is computed from these probabilities. A set
    given with a class map is evaluated through the estimator's class-mapped view
    (:meth:`~skvrf.OutputSpaceEnsembleClassifier.with_class_map` for skvrf's
    ensembles, :class:`~skvrf.ClassMappedClassifier` for any other classifier).

    Parameters
    ----------
    estimators : mapping of str to fitted classifier
        Names (table rows, plot labels) to fitted classifiers with
        ``predict_proba`` and ``classes_``. Name the zero-shot and fine-tuned
        models ``"zero-shot"`` and ``"fine-tuned"`` for
        :class:`~skvrf.plotting.RobustnessDisplay` to mark them.
    id_data : tuple
        ``(X, y)`` of the in-distribution test set.
    ood_data : mapping
        OOD set name -> ``(X, y)`` or ``(X, y, class_map)``. ``class_map`` is a
        list of kept source classes (e.g. ImageNet-A's 200 of 1000) or a dict
        target label -> list of source classes (pooled by max logit, e.g.
        ObjectNet). The labels ``y`` of a set must be among the (mapped) classes.
    scoring : str, (name, callable) or sequence of them, default=("accuracy",)
        ``"accuracy"``, ``"log_loss"``, ``"ece"`` (15 bins), or ``(name, f)``
        with ``f(y_true, proba, classes) -> float``.
    sweeps : mapping of str to AlphaSweep, default=None
        Alpha sweeps (from :func:`sweep_alpha`) for the report to carry.

    Returns
    -------
    report : RobustnessReport
        ``report.scores[metric][name][set]`` for ``"id"``, each OOD set and
        ``"ood_mean"`` (the unweighted mean over OOD sets).

    Raises
    ------
    ValueError
        If a set's labels are not among the estimator's (mapped) ``classes_``; the
        message names the set, the estimator and the labels.

    See Also
    --------
    sweep_alpha : Scores of a global-alpha mix for a grid of alphas.
    skvrf.plotting.RobustnessDisplay : ID vs OOD plot.

    References
    ----------
    .. [1] R. Taori et al., "Measuring Robustness to Natural Distribution Shifts
       in Image Classification", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf.evaluation import evaluate_shifts
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> def make(n, shift=0.0):
    ...     y = rng.integers(0, 3, n)
    ...     return centers[y] + shift + rng.normal(scale=0.8, size=(n, 8)), y
    >>> X, y = make(200)
    >>> zs = ZeroShotClassifier(centers).fit(X)
    >>> ft = LogisticRegression().fit(X, y)
    >>> X_sub, y_sub = make(100)
    >>> keep = y_sub < 2  # a set with classes 0 and 1 only
    >>> report = evaluate_shifts(
    ...     {"zero-shot": zs, "fine-tuned": ft},
    ...     make(100),
    ...     {"shifted": make(100, 0.5), "subset": (X_sub[keep], y_sub[keep], [0, 1])},
    ...     scoring=["accuracy", "ece"],
    ... )
    >>> report.ood_sets
    ['shifted', 'subset']
    >>> 0 <= report.scores["accuracy"]["fine-tuned"]["ood_mean"] <= 1
    True
    """
    if not isinstance(estimators, Mapping) or not estimators:
        raise ValueError("estimators must be a non-empty mapping name -> estimator.")
    scorers = resolve_scoring(scoring)
    sets = as_sets(id_data, ood_data)
    ood_sets = [s for s in sets if s != ID_SET]

    scores = {m: {} for m in scorers}
    for name, est in estimators.items():
        if not hasattr(est, "predict_proba"):
            raise TypeError(
                f"Estimator {name!r} ({type(est).__name__}) has no predict_proba."
            )
        per_metric = {m: {} for m in scorers}
        for set_name, (X, y, class_map) in sets.items():
            view = est
            if class_map is not None:
                try:
                    view = class_mapped(est, class_map)
                except ValueError as exc:
                    raise ValueError(
                        f"Set {set_name!r}, estimator {name!r}: bad class map: {exc}"
                    ) from exc
            classes = np.asarray(view.classes_)
            encode_labels(y, classes, where=f"Set {set_name!r}, estimator {name!r}")
            proba = view.predict_proba(X)
            for m, func in scorers.items():
                per_metric[m][set_name] = float(func(y, proba, classes))
        for m in scorers:
            scores[m][str(name)] = _with_ood_mean(per_metric[m], ood_sets)
    return RobustnessReport(scores, sweeps=sweeps)
