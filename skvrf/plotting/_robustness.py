"""``RobustnessDisplay``: ID score against mean OOD score, sweeps as curves."""

from __future__ import annotations

import numpy as np

from ..evaluation._report import evaluate_shifts
from ..evaluation._scorers import is_percent
from ..evaluation._sweep import ID_SET, OOD_MEAN, AlphaSweep, sweep_alpha
from ._common import (
    _ALPHA,
    _CURVE_COLORS,
    _FINETUNED_NAMES,
    _FINETUNED_STYLE,
    _LOGIT_EPS,
    _METRIC_LABELS,
    _OTHER_COLORS,
    _OTHER_MARKERS,
    _ZEROSHOT_NAMES,
    _ZEROSHOT_STYLE,
    _axis_limits,
    _check_matplotlib,
    _find_name,
    _format_axis,
    _legend_outside,
    _style,
)

__all__ = ["RobustnessDisplay"]


class RobustnessDisplay:
    """ID score vs mean OOD score of estimators, with alpha sweeps as curves.

    The plot of Taori et al. (2020) and of the VRF paper's figures: each estimator
    is a point (ID score on x, mean over the OOD sets on y); the zero-shot and
    fine-tuned models are marked distinctly, and each alpha sweep (the global mix
    of an ensemble's components) is a curve from ``alpha=0`` to ``alpha=1``. A
    method above a sweep's curve is more robust than any global mix at equal ID
    score. Use :meth:`from_report` or :meth:`from_estimators` to create one.

    Parameters
    ----------
    id_scores : dict of str to float
        ID score of each estimator.
    ood_scores : dict of str to float
        Mean OOD score of each estimator (same keys).
    sweeps : dict of str to tuple, default=None
        Name -> ``(alphas, id_values, ood_values)``, arrays of one length.
    metric : str, default="accuracy"
        The metric's name (axis labels; accuracy and ECE are shown in percent).
    n_ood_sets : int, default=None
        Number of OOD sets averaged (shown in the y label).
    zeroshot_name, finetuned_name : str, default=None
        Names of the zero-shot and fine-tuned estimators, to mark them. By
        default recognised from the names ("zero-shot", "zeroshot", "fine-tuned",
        "finetuned", case and punctuation ignored).

    Attributes
    ----------
    points_ : dict of str to matplotlib PathCollection
        The marker of each estimator.
    curves_ : dict of str to matplotlib Line2D
        The line of each sweep.
    annotations_ : list of matplotlib Text
        The alpha labels at the ends of the sweeps.
    legend_ : matplotlib Legend or None
        The legend.
    ax_ : matplotlib Axes
        The axes.
    figure_ : matplotlib Figure
        The figure.

    See Also
    --------
    skvrf.evaluation.evaluate_shifts : The scores.
    skvrf.evaluation.sweep_alpha : The sweeps.

    References
    ----------
    .. [1] R. Taori, A. Dave, V. Shankar, N. Carlini, B. Recht and L. Schmidt,
       "Measuring Robustness to Natural Distribution Shifts in Image
       Classification", NeurIPS 2020.
    .. [2] B. Zhu, J. Cui and H. Zhang, "Robust Fine-tuning of Zero-shot Models
       via Variance Reduction", NeurIPS 2024.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skvrf.plotting import RobustnessDisplay
    >>> display = RobustnessDisplay(
    ...     id_scores={"zero-shot": 0.683, "fine-tuned": 0.813, "VRF": 0.823},
    ...     ood_scores={"zero-shot": 0.584, "fine-tuned": 0.537, "VRF": 0.618},
    ...     sweeps={"OSE": ([0.0, 0.5, 1.0], [0.683, 0.822, 0.813],
    ...                     [0.584, 0.602, 0.537])},
    ...     n_ood_sets=5,
    ... ).plot(logit_scale=True)
    >>> sorted(display.points_)
    ['VRF', 'fine-tuned', 'zero-shot']
    >>> len(display.annotations_)  # alpha = 0 and alpha = 1
    2
    """

    def __init__(
        self,
        *,
        id_scores,
        ood_scores,
        sweeps=None,
        metric="accuracy",
        n_ood_sets=None,
        zeroshot_name=None,
        finetuned_name=None,
    ):
        if set(id_scores) != set(ood_scores):
            raise ValueError("id_scores and ood_scores must have the same names.")
        self.id_scores = dict(id_scores)
        self.ood_scores = dict(ood_scores)
        self.sweeps = {} if sweeps is None else dict(sweeps)
        self.metric = metric
        self.n_ood_sets = n_ood_sets
        self.zeroshot_name = zeroshot_name
        self.finetuned_name = finetuned_name

    def plot(
        self,
        ax=None,
        *,
        logit_scale=False,
        annotate_alphas=True,
        point_kwargs=None,
        curve_kwargs=None,
        legend=True,
    ):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is made if None.
        logit_scale : bool, default=False
            Logit-scaled axes (for metrics in [0, 1], e.g. accuracy), on which
            the ID-OOD trend of many models is close to a line. Scores of exactly
            0 or 1 are drawn at 0.01 % and 99.99 %.
        annotate_alphas : bool, default=True
            Write the alphas at both ends of each sweep.
        point_kwargs : dict, default=None
            Keywords for ``ax.scatter``, applied to every point.
        curve_kwargs : dict, default=None
            Keywords for ``ax.plot``, applied to every sweep.
        legend : bool, default=True
            Draw a legend, outside the axes on the right.

        Returns
        -------
        display : RobustnessDisplay
            The display, with ``ax_``, ``figure_`` and the artists set.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7.0, 4.8), layout="constrained")
        names = list(self.id_scores)
        zs = _find_name(names, self.zeroshot_name, _ZEROSHOT_NAMES, "zeroshot_name")
        ft = _find_name(names, self.finetuned_name, _FINETUNED_NAMES, "finetuned_name")
        percent = is_percent(self.metric)

        all_x = [*self.id_scores.values()]
        all_y = [*self.ood_scores.values()]
        for _, xs, ys in self.sweeps.values():
            all_x.extend(np.asarray(xs, dtype=float).tolist())
            all_y.extend(np.asarray(ys, dtype=float).tolist())
        if logit_scale:
            bad = [v for v in all_x + all_y if not 0 <= v <= 1]
            if bad:
                raise ValueError(
                    "logit_scale needs scores between 0 and 1; got "
                    f"{bad[:3]} for metric {self.metric!r}."
                )

        def at(values):
            values = np.asarray(values, dtype=np.float64)
            # 0 and 1 are infinitely far on a logit scale: draw them at the edge
            return (
                np.clip(values, _LOGIT_EPS, 1 - _LOGIT_EPS) if logit_scale else values
            )

        self.curves_ = {}
        self.annotations_ = []
        for i, (name, (alphas, xs, ys)) in enumerate(self.sweeps.items()):
            defaults = {
                "color": _CURVE_COLORS[i % len(_CURVE_COLORS)],
                "marker": "o",
                "markersize": 3,
                "linewidth": 1.5,
                "zorder": 1,
                "label": f"{name} ({_ALPHA} sweep)",
            }
            kwargs = _style(defaults, curve_kwargs, "line")
            (line,) = ax.plot(at(xs), at(ys), **kwargs)
            self.curves_[name] = line
            if annotate_alphas:
                alphas = np.asarray(alphas, dtype=float)
                for i, dx in ((0, -6), (-1, 6)):
                    self.annotations_.append(
                        ax.annotate(
                            f"{_ALPHA}={alphas[i]:g}",
                            (at(xs)[i], at(ys)[i]),
                            xytext=(dx, -10),
                            textcoords="offset points",
                            ha="right" if dx < 0 else "left",
                            fontsize="small",
                            color=line.get_color(),
                        )
                    )

        self.points_ = {}
        others = [n for n in names if n not in (zs, ft)]
        for name in names:
            if name == zs:
                style = dict(_ZEROSHOT_STYLE)
            elif name == ft:
                style = dict(_FINETUNED_STYLE)
            else:
                i = others.index(name)
                # earlier points larger, later ones on top: coinciding methods
                # stay visible as a marker inside a marker
                style = {
                    "marker": _OTHER_MARKERS[i % len(_OTHER_MARKERS)],
                    "s": max(40, 150 - 22 * i),
                    "color": _OTHER_COLORS[i % len(_OTHER_COLORS)],
                }
            defaults = {
                **style,
                "edgecolor": "black",
                "linewidth": 0.6,
                "zorder": 3 + (others.index(name) if name in others else 0),
                "label": name,
            }
            kwargs = _style(defaults, point_kwargs, "scatter")
            self.points_[name] = ax.scatter(
                at([self.id_scores[name]]), at([self.ood_scores[name]]), **kwargs
            )

        xlim = _axis_limits(all_x, logit_scale)
        ylim = _axis_limits(all_y, logit_scale)
        if logit_scale:
            ax.set_xscale("logit", nonpositive="clip")
            ax.set_yscale("logit", nonpositive="clip")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        _format_axis(ax.xaxis, xlim, percent, logit_scale)
        _format_axis(ax.yaxis, ylim, percent, logit_scale)
        unit = " (%)" if percent else ""
        scale = ", logit scale" if logit_scale else ""
        metric = _METRIC_LABELS.get(self.metric, self.metric)
        ax.set_xlabel(f"ID {metric}{unit}{scale}")
        sets = f" over {self.n_ood_sets} sets" if self.n_ood_sets else ""
        ax.set_ylabel(f"OOD {metric}, mean{sets}{unit}")
        ax.grid(True, which="major", linewidth=0.5, alpha=0.4)
        self.legend_ = _legend_outside(ax) if legend else None
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_report(
        cls,
        report,
        *,
        metric="accuracy",
        ax=None,
        logit_scale=False,
        zeroshot_name=None,
        finetuned_name=None,
        **kwargs,
    ):
        """Plot a :class:`~skvrf.evaluation.RobustnessReport` and its sweeps.

        Parameters
        ----------
        report : RobustnessReport
            From :func:`~skvrf.evaluation.evaluate_shifts`.
        metric : str, default="accuracy"
            Metric to plot; it must be in the report (and in its sweeps, which are
            skipped otherwise).
        ax : matplotlib Axes, default=None
            Axes to draw on.
        logit_scale : bool, default=False
            Logit-scaled axes.
        zeroshot_name, finetuned_name : str, default=None
            Names to mark as the zero-shot and fine-tuned models.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : RobustnessDisplay
            The drawn display.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from skvrf.evaluation import RobustnessReport
        >>> from skvrf.plotting import RobustnessDisplay
        >>> report = RobustnessReport({"accuracy": {
        ...     "zero-shot": {"id": 0.683, "ood_mean": 0.584},
        ...     "fine-tuned": {"id": 0.813, "ood_mean": 0.537}}})
        >>> display = RobustnessDisplay.from_report(report)
        >>> display.ax_.get_xlabel()
        'ID accuracy (%)'
        """
        _check_matplotlib(f"{cls.__name__}.from_report")
        if metric not in report.metrics:
            raise ValueError(
                f"The report has no metric {metric!r}; it has {report.metrics}."
            )
        per_est = report.scores[metric]
        sweeps = {
            name: (
                sweep.alphas,
                sweep.scores[metric][ID_SET],
                sweep.scores[metric][OOD_MEAN],
            )
            for name, sweep in report.sweeps.items()
            if metric in sweep.scores
        }
        display = cls(
            id_scores={n: s[ID_SET] for n, s in per_est.items()},
            ood_scores={n: s[OOD_MEAN] for n, s in per_est.items()},
            sweeps=sweeps,
            metric=metric,
            n_ood_sets=len(report.ood_sets) or None,
            zeroshot_name=zeroshot_name,
            finetuned_name=finetuned_name,
        )
        return display.plot(ax=ax, logit_scale=logit_scale, **kwargs)

    @classmethod
    def from_estimators(
        cls,
        estimators,
        id_data,
        ood_data,
        *,
        sweeps=None,
        alphas=None,
        metric="accuracy",
        ax=None,
        logit_scale=False,
        zeroshot_name=None,
        finetuned_name=None,
        **kwargs,
    ):
        """Evaluate fitted estimators (and sweeps) on the sets, then plot.

        Parameters
        ----------
        estimators : mapping of str to fitted classifier
            Points of the plot (see :func:`~skvrf.evaluation.evaluate_shifts`).
        id_data : tuple
            ``(X, y)`` of the ID test set.
        ood_data : mapping
            OOD set name -> ``(X, y)`` or ``(X, y, class_map)``.
        sweeps : mapping of str to AlphaSweep or fitted ensemble, default=None
            Curves: ready sweeps, or fitted two-component ensembles to sweep with
            ``alphas`` (see :func:`~skvrf.evaluation.sweep_alpha`).
        alphas : array-like, default=None
            Alphas of the sweeps computed here; default ``np.linspace(0, 1, 11)``.
        metric : str, default="accuracy"
            The metric to plot.
        ax : matplotlib Axes, default=None
            Axes to draw on.
        logit_scale : bool, default=False
            Logit-scaled axes.
        zeroshot_name, finetuned_name : str, default=None
            Names to mark as the zero-shot and fine-tuned models.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : RobustnessDisplay
            The drawn display.
        """
        _check_matplotlib(f"{cls.__name__}.from_estimators")
        ready = {}
        for name, item in (sweeps or {}).items():
            if isinstance(item, AlphaSweep):
                ready[name] = item
            else:
                ready[name] = sweep_alpha(
                    item, id_data, ood_data, alphas, scoring=metric
                )
        report = evaluate_shifts(
            estimators, id_data, ood_data, scoring=metric, sweeps=ready
        )
        return cls.from_report(
            report,
            metric=metric,
            ax=ax,
            logit_scale=logit_scale,
            zeroshot_name=zeroshot_name,
            finetuned_name=finetuned_name,
            **kwargs,
        )
