"""Plots of robustness results and of VRF's weights (scikit-learn Display style).

- :class:`RobustnessDisplay`: ID score on x, mean OOD score on y (optionally on
  logit-scaled axes, as effective-robustness plots use), alpha sweeps as curves,
  other estimators as labelled points.
- :class:`WeightDisplay`: a fitted VRF's weight curve ``w(d)`` over histograms of
  the distances ``d`` on the ID set and each OOD set.

matplotlib is imported only inside the methods that draw (install the ``plot``
extra: ``pip install "skvrf[plot]"``); importing this module does not import it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .evaluation._report import evaluate_shifts
from .evaluation._scorers import is_percent
from .evaluation._sweep import ID_SET, OOD_MEAN, AlphaSweep, sweep_alpha
from .utils import import_optional

__all__ = ["RobustnessDisplay", "WeightDisplay"]

_ALPHA = "\N{GREEK SMALL LETTER ALPHA}"
_LOGIT_EPS = 1e-4
_METRIC_LABELS = {"ece": "ECE", "log_loss": "log-loss"}
_ZEROSHOT_NAMES = {"zeroshot", "zs"}
_FINETUNED_NAMES = {"finetuned", "ft"}
# Okabe & Ito's colour-blind-safe palette: the zero-shot and fine-tuned models
# keep their own colour and marker; every other method gets one of the rest and
# its own marker, so that methods at the same spot stay apart.
_ZEROSHOT_STYLE = {"marker": "*", "s": 260, "color": "#009E73"}  # bluish green
_FINETUNED_STYLE = {"marker": "s", "s": 110, "color": "#D55E00"}  # vermillion
_OTHER_COLORS = ("#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_OTHER_MARKERS = ("o", "D", "^", "v", "P", "X", "h", "<", ">")
_CURVE_COLORS = ("0.45", "#56B4E9", "#CC79A7", "#E69F00")


def _check_matplotlib(caller):
    import_optional("matplotlib", caller)


def _style(defaults, user, artist):
    """``defaults`` updated by the user's keywords, aliases resolved first.

    matplotlib's own alias table (``c``/``color``, ``ls``/``linestyle``,
    ``lw``/``linewidth``, ``ec``/``edgecolor``, ...) normalises both, so a user's
    alias replaces the default it stands for instead of clashing with it.
    """
    from matplotlib import collections as mcoll
    from matplotlib import lines as mlines
    from matplotlib import patches as mpatches
    from matplotlib.cbook import normalize_kwargs

    kind = {
        "line": mlines.Line2D,
        "scatter": mcoll.PathCollection,
        "patch": mpatches.Patch,
    }[artist]
    user = dict(user or {})
    if artist == "scatter":  # scatter's own aliases, not in the artist's table
        for alias, name in (("c", "color"), ("edgecolors", "edgecolor")):
            if alias in user:
                user[name] = user.pop(alias)
        if "linewidths" in user:
            user["linewidth"] = user.pop("linewidths")
    return {**normalize_kwargs(defaults, kind), **normalize_kwargs(user, kind)}


def _canonical(name):
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _find_name(names, given, aliases, what):
    if given is not None:
        if given not in names:
            raise ValueError(f"{what}={given!r} is not among the names {names}.")
        return given
    for name in names:
        if _canonical(name) in aliases:
            return name
    return None


def _axis_limits(values, logit, pad=0.12):
    """Padded (lo, hi) of ``values``, padded in logit space when ``logit``."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if logit:
        v = np.clip(values, _LOGIT_EPS, 1 - _LOGIT_EPS)
        t = np.log(v / (1 - v))
    else:
        t = values
    lo, hi = float(t.min()), float(t.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    lo, hi = lo - pad * span, hi + pad * span
    if logit:
        return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))
    return lo, hi


def _format_axis(axis, lim, percent, logit):
    """Ticks inside ``lim`` (also on a logit scale), as percentages if asked."""
    from matplotlib.ticker import (
        FixedLocator,
        MaxNLocator,
        NullLocator,
        PercentFormatter,
    )

    if logit:
        ticks = _logit_ticks(lim)
    else:
        ticks = MaxNLocator(nbins=6, steps=[1, 2, 5, 10]).tick_values(*lim)
    ticks = ticks[(ticks >= lim[0]) & (ticks <= lim[1])]
    if logit or percent:
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_minor_locator(NullLocator())
    if percent:
        # the fewest decimals that write every tick exactly
        shown = 100 * ticks
        decimals = next(
            (d for d in range(4) if np.allclose(np.round(shown, d), shown)), 4
        )
        axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))


def _logit_ticks(lim, n=6):
    """Round ticks evenly spaced in logit space: 0.9, 0.95, 0.98, 0.99, ...

    Each tick is rounded to one significant digit of its distance to the nearer
    end (0 or 1), so that a span such as 90 % to 99.9 % gets ticks inside it.
    """
    lo, hi = (np.clip(v, _LOGIT_EPS, 1 - _LOGIT_EPS) for v in lim)
    z = np.linspace(np.log(lo / (1 - lo)), np.log(hi / (1 - hi)), n)
    p = 1 / (1 + np.exp(-z))
    tail = np.minimum(p, 1 - p)
    scale = 10.0 ** np.floor(np.log10(tail))
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        choices = np.array(steps)[None, :] * scale[:, None]
        nearest = choices[np.arange(n), np.abs(choices - tail[:, None]).argmin(1)]
        ticks = np.unique(np.where(p < 0.5, nearest, 1 - nearest).round(12))
        if ((ticks >= lim[0]) & (ticks <= lim[1])).sum() >= 4:
            return ticks
    # a narrow span: nearly linear in logit space, so linear ticks serve
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(*lim)


def _ordinal(n):
    suffix = (
        "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    )
    return f"{n}{suffix}"


def _legend_outside(ax, handles=None, labels=None):
    args = () if handles is None else (handles, labels)
    return ax.legend(
        *args,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
        frameon=False,
        fontsize="small",
    )


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


def _set_input(data, name):
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return data[0]
    if isinstance(data, (tuple, list)):
        raise TypeError(f"Set {name!r} must be X, (X, y) or (X, y, class_map).")
    return data


class WeightDisplay:
    """VRF's weight curve ``w(d)`` over histograms of the distances ``d``.

    The left axis shows the weight of the fine-tuned model as a function of the
    distance ``d`` to the k-th nearest Zero-Shot Failure embedding (the estimator's
    weighting shape, threshold ``a`` and temperature ``b``); the right axis the
    density of ``d`` on the ID set and on each OOD set. Well-separated histograms
    on either side of the threshold are what VRF relies on: ID samples near the
    ZSF set get the fine-tuned model, shifted ones the zero-shot model.

    Parameters
    ----------
    distances : dict of str to array-like
        Set name -> distances ``d`` (non-finite values are dropped).
    threshold : float
        ``a``.
    temperature : float
        ``b``.
    weighting : {"sigmoid", "linear", "step"}, default="sigmoid"
        The weight's shape.
    k : int, default=None
        The neighbour rank (shown in the x label).

    Attributes
    ----------
    line_ : matplotlib Line2D
        The curve ``w(d)``.
    threshold_line_ : matplotlib Line2D
        The vertical line at ``d = a``.
    hists_ : dict of str to list of matplotlib Patch
        The histogram of each set.
    ax_ : matplotlib Axes
        The weight axes.
    hist_ax_ : matplotlib Axes
        The twin axes of the densities.
    legend_ : matplotlib Legend or None
        The legend.
    figure_ : matplotlib Figure
        The figure.

    See Also
    --------
    skvrf.VRFEnsembleClassifier.zsf_distances : The distances.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from skvrf.plotting import WeightDisplay
    >>> rng = np.random.default_rng(0)
    >>> distances = {"id": rng.normal(1.0, 0.2, 500),
    ...              "sketch": rng.normal(1.8, 0.3, 500)}
    >>> display = WeightDisplay(
    ...     distances=distances,
    ...     threshold=1.5, temperature=0.6,
    ... ).plot()
    >>> sorted(display.hists_)
    ['id', 'sketch']
    """

    def __init__(
        self, *, distances, threshold, temperature, weighting="sigmoid", k=None
    ):
        self.distances = {
            str(n): np.asarray(d, dtype=np.float64).ravel()
            for n, d in distances.items()
        }
        self.threshold = threshold
        self.temperature = temperature
        self.weighting = weighting
        self.k = k

    def plot(
        self,
        ax=None,
        *,
        bins=40,
        d_range=None,
        line_kwargs=None,
        hist_kwargs=None,
        legend=True,
    ):
        """Draw the display.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes of the weight curve; a new figure is made if None. The
            histograms go on a twin axes.
        bins : int, default=40
            Number of histogram bins (shared by all sets) over ``d_range``.
        d_range : tuple of float, default=None
            Range of ``d`` shown; default the data's range and the threshold,
            padded, within [0, 4].
        line_kwargs : dict, default=None
            Keywords for the curve's ``ax.plot``.
        hist_kwargs : dict, default=None
            Keywords for every ``hist``.
        legend : bool, default=True
            Draw a legend, outside the axes on the right.

        Returns
        -------
        display : WeightDisplay
            The display, with ``ax_``, ``hist_ax_``, ``figure_`` and the artists.
        """
        _check_matplotlib(f"{type(self).__name__}.plot")
        import matplotlib.pyplot as plt

        from ._weighting import vrf_weights

        finite = {n: d[np.isfinite(d)] for n, d in self.distances.items()}
        finite = {n: d for n, d in finite.items() if d.size}
        if not finite:
            raise ValueError(
                "No finite distances to plot (is the estimator's ZSF set empty?)."
            )
        if ax is None:
            _, ax = plt.subplots(figsize=(7.0, 4.2), layout="constrained")
        if d_range is None:
            values = np.concatenate([*finite.values(), [self.threshold]])
            lo, hi = np.quantile(values, [0.0, 1.0])
            pad = 0.05 * (hi - lo if hi > lo else 1.0)
            d_range = (max(0.0, lo - pad), min(4.0, hi + pad))
            if d_range[1] <= d_range[0]:
                d_range = (0.0, 4.0)
        edges = np.linspace(d_range[0], d_range[1], int(bins) + 1)

        hist_ax = ax.twinx()
        colors = ("#0072B2", *_OTHER_COLORS[1:], "#D55E00", "#009E73")
        self.hists_ = {}
        for i, (name, d) in enumerate(finite.items()):
            mean_w = float(
                np.mean(
                    vrf_weights(d, self.threshold, self.temperature, self.weighting)
                )
            )
            label = f"d on {'ID' if name == ID_SET else name} (mean w = {mean_w:.2f})"
            color = colors[i % len(colors)]
            kwargs = {"bins": edges, "density": True, "label": label}
            if name == ID_SET:  # the ID set filled, the OOD sets as outlines
                kwargs.update(
                    histtype="stepfilled", alpha=0.3, color=color, edgecolor=color
                )
            else:
                kwargs.update(histtype="step", color=color, linewidth=1.6)
            kwargs = _style(kwargs, hist_kwargs, "patch")
            _, _, patches = hist_ax.hist(np.clip(d, *d_range), **kwargs)
            self.hists_[name] = list(patches)
        hist_ax.set_ylabel("density of d")
        hist_ax.set_ylim(bottom=0)

        grid = np.linspace(d_range[0], d_range[1], 400)
        w = vrf_weights(grid, self.threshold, self.temperature, self.weighting)
        defaults = {
            "color": "black",
            "linewidth": 2.2,
            "label": (
                f"w(d), {self.weighting}: a = {self.threshold:g}, "
                f"b = {self.temperature:g}"
            ),
        }
        kwargs = _style(defaults, line_kwargs, "line")
        (self.line_,) = ax.plot(grid, w, **kwargs)
        self.threshold_line_ = ax.axvline(
            self.threshold, color="0.3", linestyle=":", linewidth=1.2
        )
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(*d_range)
        ax.set_ylabel("weight of the fine-tuned model, w(d)")
        kth = "k-th" if self.k is None else _ordinal(int(self.k))
        ax.set_xlabel(f"d: squared L2 distance to the {kth} nearest ZSF embedding")
        # the curve above the histograms, the histograms' background hidden
        ax.set_zorder(hist_ax.get_zorder() + 1)
        ax.patch.set_visible(False)

        if legend:
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = hist_ax.get_legend_handles_labels()
            self.legend_ = ax.legend(
                h1 + h2,
                l1 + l2,
                loc="upper left",
                bbox_to_anchor=(0.0, -0.18),
                ncols=2,
                frameon=False,
                fontsize="small",
            )
        else:
            self.legend_ = None
        self.ax_ = ax
        self.hist_ax_ = hist_ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, id_data, ood_data=None, *, ax=None, **kwargs):
        """Distances of a fitted VRF on the sets, then plot.

        Parameters
        ----------
        estimator : fitted VRFEnsembleClassifier
            Gives ``zsf_distances``, ``threshold``, ``temperature``,
            ``weighting`` and ``k_``.
        id_data : array-like or tuple
            ID inputs ``X``, or ``(X, y)`` (``y`` is not used).
        ood_data : mapping, default=None
            OOD set name -> ``X``, ``(X, y)`` or ``(X, y, class_map)`` (only X is
            used: the distances do not depend on the labels).
        ax : matplotlib Axes, default=None
            Axes to draw on.
        **kwargs : dict
            Passed to :meth:`plot`.

        Returns
        -------
        display : WeightDisplay
            The drawn display.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> import numpy as np
        >>> from sklearn.linear_model import LogisticRegression
        >>> from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
        >>> from skvrf.plotting import WeightDisplay
        >>> rng = np.random.default_rng(0)
        >>> centers = rng.normal(size=(3, 8))
        >>> y = rng.integers(0, 3, 300)
        >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
        >>> zs = ZeroShotClassifier(centers + rng.normal(scale=0.5, size=(3, 8)))
        >>> vrf = VRFEnsembleClassifier(zs, LogisticRegression(), k=2).fit(X, y)
        >>> display = WeightDisplay.from_estimator(vrf, (X, y), {"noisy": 2 * X})
        >>> display.ax_.get_ylabel()
        'weight of the fine-tuned model, w(d)'
        """
        _check_matplotlib(f"{cls.__name__}.from_estimator")
        if not hasattr(estimator, "zsf_distances"):
            raise TypeError(
                "WeightDisplay.from_estimator needs a fitted VRFEnsembleClassifier "
                f"(with zsf_distances), got {type(estimator).__name__}."
            )
        sets = {ID_SET: _set_input(id_data, ID_SET)}
        if ood_data is not None:
            if not isinstance(ood_data, Mapping):
                raise TypeError("ood_data must be a mapping of set names to data.")
            for name, data in ood_data.items():
                sets[name] = _set_input(data, name)
        distances = {n: estimator.zsf_distances(X) for n, X in sets.items()}
        display = cls(
            distances=distances,
            threshold=estimator.threshold,
            temperature=estimator.temperature,
            weighting=estimator.weighting,
            k=getattr(estimator, "k_", None),
        )
        return display.plot(ax=ax, **kwargs)
