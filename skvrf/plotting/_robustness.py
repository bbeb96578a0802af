"""``RobustnessDisplay``: ID score against mean OOD score, sweeps as curves."""

from __future__ import annotations

import re

import numpy as np

from ..evaluation._report import evaluate_shifts
from ..evaluation._scorers import is_percent
from ..evaluation._sweep import ID_SET, OOD_MEAN, AlphaSweep, sweep_alpha
from ._common import (
    _ALPHA,
    _CURVE_COLORS,
    _FINETUNED_NAMES,
    _FINETUNED_STYLE,
    _GROUP_STYLES,
    _LOGIT_EPS,
    _METHOD_STYLES,
    _METRIC_LABELS,
    _OTHER_COLORS,
    _OTHER_MARKERS,
    _ZEROSHOT_NAMES,
    _ZEROSHOT_STYLE,
    _axis_limits,
    _canonical,
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
    point_labels_ : dict of str to matplotlib Text
        The short names written next to the points of groups.
    inset_ax_ : matplotlib Axes or None
        The zoomed inset (``plot(inset=True)``).
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
        groups=None,
        inset=False,
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
        groups : dict of str to list of str or "auto", default=None
            Methods drawn as one series: group label -> names. The points of a
            group share one colour and marker and one legend entry, and each is
            labelled on the plot by its short name (the text in its last
            parentheses, ``"MSP"`` for ``"selective (MSP)"``). ``"auto"`` groups
            the selective rules (``"selective (...)"``), the tolerance rows
            (names with ``"tolerance"``) and the GLA variants (names with
            ``"GLA"``), each group of at least two methods. A name may be in
            one group only.
        inset : bool, default=False
            Also draw an inset, in the lower right of the axes, zoomed on the
            crowded corner: the points whose ID score lies within a tenth of the
            ID range of the highest one (``inset_ax_``).

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

        members = _resolve_groups(groups, names, (zs, ft))
        styles = _point_styles(names, zs, ft, members)
        self.points_ = {}
        others = [n for n in names if n not in (zs, ft)]
        first_of_group = {}
        for name in names:
            group = members.get(name)
            if name == zs:
                style = dict(_ZEROSHOT_STYLE)
            elif name == ft:
                style = dict(_FINETUNED_STYLE)
            elif group is not None:
                color, marker = styles[name]
                style = {"marker": marker, "s": 70, "color": color}
            else:
                i = others.index(name)
                color, marker = styles[name]
                # earlier points larger, later ones on top: coinciding methods
                # stay visible as a marker inside a marker
                style = {"marker": marker, "s": max(40, 150 - 22 * i), "color": color}
            if group is None:
                label = name
            elif group not in first_of_group:
                first_of_group[group] = name
                label = group
            else:
                label = "_nolegend_"
            defaults = {
                **style,
                "edgecolor": "black",
                "linewidth": 0.6,
                "zorder": 3 + (others.index(name) if name in others else 0),
                "label": label,
            }
            kwargs = _style(defaults, point_kwargs, "scatter")
            self.points_[name] = ax.scatter(
                at([self.id_scores[name]]), at([self.ood_scores[name]]), **kwargs
            )

        _set_limits(ax, all_x, all_y, percent, logit_scale)
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
        self.inset_ax_ = self._draw_inset(at, logit_scale) if inset else None
        self.point_labels_ = {}
        self._label_groups(members)
        return self

    def _draw_inset(self, at, logit_scale):
        """An inset in the lower right, zoomed on the points of highest ID."""
        ax = self.ax_
        xs = np.array([self.id_scores[n] for n in self.points_], dtype=float)
        span = np.ptp(xs) if xs.size > 1 else 0.0
        near = [n for n in self.points_ if self.id_scores[n] >= xs.max() - 0.1 * span]
        inset = ax.inset_axes([0.5, 0.06, 0.47, 0.46])
        for name in near:
            src = self.points_[name]
            inset.scatter(
                *src.get_offsets()[0],
                marker=src.get_paths()[0],
                s=src.get_sizes()[0] * 0.7,
                color=src.get_facecolor()[0],
                edgecolor=src.get_edgecolor()[0],
                linewidth=0.6,
                zorder=src.get_zorder(),
            )
        for line in self.curves_.values():
            inset.plot(
                line.get_xdata(),
                line.get_ydata(),
                color=line.get_color(),
                marker=line.get_marker(),
                markersize=line.get_markersize(),
                linewidth=line.get_linewidth(),
                zorder=1,
            )
        percent = is_percent(self.metric)
        _set_limits(
            inset,
            [self.id_scores[n] for n in near],
            [self.ood_scores[n] for n in near],
            percent,
            logit_scale,
            pad=0.15,
        )
        inset.tick_params(labelsize="x-small")
        inset.grid(True, which="major", linewidth=0.5, alpha=0.4)
        inset.set_facecolor("white")
        ax.indicate_inset_zoom(inset, edgecolor="0.3")
        return inset

    def _label_groups(self, members):
        """Write each grouped point's short name next to it, where it overlaps
        no other label (in the inset when the point lies in its zoom)."""
        if not members:
            return
        inset = getattr(self, "inset_ax_", None)
        renderer = self.figure_.canvas.get_renderer()
        short = {}
        for label in dict.fromkeys(members.values()):
            short.update(_short_names([n for n, g in members.items() if g == label]))
        # the labels keep off the other points of the axes (and each other)
        placed = [
            _marker_box(p, self.figure_.dpi)
            for n, p in self.points_.items()
            if n not in members
        ]
        offsets = ((6, 3, "left"), (6, -9, "left"), (-6, 3, "right"), (-6, -9, "right"))
        offsets += ((0, 8, "center"), (0, -14, "center"))
        for name in members:
            point = self.points_[name]
            xy = point.get_offsets()[0]
            ax = self.ax_
            if inset is not None:
                (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
                if x0 <= xy[0] <= x1 and y0 <= xy[1] <= y1:
                    ax = inset

            def label_at(dx, dy, ha, ax=ax, text=short[name], xy=xy):
                return ax.annotate(
                    text,
                    xy,
                    xytext=(dx, dy),
                    textcoords="offset points",
                    ha=ha,
                    fontsize="x-small",
                    color="black",
                    zorder=20,
                )

            best = None
            for offset in offsets:
                text = label_at(*offset)
                box = text.get_window_extent(renderer)
                if not any(box.overlaps(other) for other in placed):
                    best = text
                    break
                text.remove()
            if best is None:  # every place taken: the first one
                best = label_at(*offsets[0])
            placed.append(best.get_window_extent(renderer))
            self.point_labels_[name] = best

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
        display = cls._unplotted(report, metric, zeroshot_name, finetuned_name)
        return display.plot(ax=ax, logit_scale=logit_scale, **kwargs)

    @classmethod
    def _unplotted(cls, report, metric, zeroshot_name=None, finetuned_name=None):
        """The display of a report's ``metric``, not yet drawn."""
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
        return cls(
            id_scores={n: s[ID_SET] for n, s in per_est.items()},
            ood_scores={n: s[OOD_MEAN] for n, s in per_est.items()},
            sweeps=sweeps,
            metric=metric,
            n_ood_sets=len(report.ood_sets) or None,
            zeroshot_name=zeroshot_name,
            finetuned_name=finetuned_name,
        )

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


_PARTS = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def _split_name(name):
    """``"VRF (paper defaults, GLA)"`` -> ``("VRF", ["paper defaults", "GLA"])``."""
    m = _PARTS.match(str(name))
    if not m:
        return str(name), []
    return m.group(1), [p.strip() for p in m.group(2).split(",") if p.strip()]


def _short_names(group):
    """What tells a group's members apart: what they do not all share.

    ``selective (MSP)``, ``selective (kNN)`` -> ``MSP``, ``kNN``;
    ``OSE (tolerance)``, ``VRF (tolerance)`` -> ``OSE``, ``VRF``;
    ``zero-shot (GLA)``, ``VRF (paper defaults, GLA)`` -> ``zero-shot``,
    ``VRF (paper defaults)``.
    """
    split = [_split_name(n) for n in group]
    bases = {b for b, _ in split}
    common = set.intersection(*(set(p) for _, p in split)) if split else set()
    short = {}
    for name, (base, parts) in zip(group, split):
        rest = [p for p in parts if p not in common]
        if len(bases) == 1 and len(group) > 1:
            short[name] = ", ".join(rest) or base
        else:
            short[name] = f"{base} ({', '.join(rest)})" if rest else base
    return short


def _marker_box(points, dpi):
    """The display-space box of a one-point scatter's marker."""
    from matplotlib.transforms import Bbox

    x, y = points.get_offset_transform().transform(points.get_offsets()[0])
    half = 0.5 * np.sqrt(points.get_sizes()[0]) * dpi / 72
    return Bbox([[x - half, y - half], [x + half, y + half]])


def auto_groups(names, exclude=()):
    """The groups of ``groups="auto"``: selective rules, tolerance rows, GLA.

    Parameters
    ----------
    names : list of str
        Method names.
    exclude : tuple of str, default=()
        Names never grouped (the zero-shot and fine-tuned models).

    Returns
    -------
    groups : dict of str to list of str
        Group label -> names, groups of at least two names only.
    """
    rules = (
        ("selective rules", lambda n: _canonical(n).startswith("selective")),
        ("tolerance rule", lambda n: "tolerance" in str(n).lower()),
        ("GLA", lambda n: "gla" in _canonical(n)),
    )
    groups, taken = {}, set(exclude)
    for label, match in rules:
        found = [n for n in names if n not in taken and match(n)]
        if len(found) >= 2:
            groups[label] = found
            taken.update(found)
    return groups


def _resolve_groups(groups, names, exclude):
    """name -> group label, in the order of ``names``."""
    if groups is None:
        return {}
    if isinstance(groups, str):
        if groups != "auto":
            raise ValueError(f"groups must be a dict or 'auto'; got {groups!r}.")
        groups = auto_groups(names, exclude=[n for n in exclude if n is not None])
    members = {}
    for label, group in groups.items():
        for name in group:
            if name not in names:
                raise ValueError(f"groups[{label!r}] names {name!r}, not a method.")
            if name in members:
                raise ValueError(f"{name!r} is in two groups.")
            if name in exclude:
                raise ValueError(
                    f"{name!r} is the zero-shot or fine-tuned model; it cannot "
                    "be in a group."
                )
            members[name] = label
    return {n: members[n] for n in names if n in members}


def _point_styles(names, zs, ft, members):
    """(colour, marker) of every point: one pair per series (a group is one
    series), no colour and no marker used by two series while the palette
    lasts; the methods of compare_methods keep their own pair."""
    present = [s for n, s in ((zs, _ZEROSHOT_STYLE), (ft, _FINETUNED_STYLE)) if n]
    used_colors = {s["color"] for s in present}
    used_markers = {s["marker"] for s in present}
    series = []  # keys: a name or ("group", label)
    for name in names:
        if name in (zs, ft):
            continue
        key = ("group", members[name]) if name in members else name
        if key not in series:
            series.append(key)
    chosen = {}
    for key in series:  # the fixed pairs first
        if not isinstance(key, tuple) and _canonical(key) in _METHOD_STYLES:
            chosen[key] = _METHOD_STYLES[_canonical(key)]
    for color, marker in chosen.values():
        used_colors.add(color)
        used_markers.add(marker)
    colors = [*_OTHER_COLORS, *(c for c, _ in _GROUP_STYLES)]
    colors = list(dict.fromkeys(colors))
    markers = [*_OTHER_MARKERS, *(m for _, m in _GROUP_STYLES)]
    markers = list(dict.fromkeys(markers))
    group_pairs = list(_GROUP_STYLES)
    for key in series:
        if key in chosen:
            continue
        pool = group_pairs if isinstance(key, tuple) else []
        if isinstance(key, tuple) and key[1] in _NAMED_GROUP_STYLES:
            pool = [_NAMED_GROUP_STYLES[key[1]], *pool]
        pair = next(
            (p for p in pool if p[0] not in used_colors and p[1] not in used_markers),
            None,
        )
        if pair is None:
            color = next((c for c in colors if c not in used_colors), None)
            marker = next((m for m in markers if m not in used_markers), None)
            # the palette is spent: reuse, but never one colour-marker pair twice
            taken = set(chosen.values())
            pair = next(
                (c, m)
                for m in ([marker] if marker else []) + markers
                for c in ([color] if color else []) + colors
                if (c, m) not in taken
            )
        chosen[key] = pair
        used_colors.add(pair[0])
        used_markers.add(pair[1])
    return {
        name: chosen[("group", members[name]) if name in members else name]
        for name in names
        if name not in (zs, ft)
    }


def _set_limits(ax, xs, ys, percent, logit, pad=0.12):
    """Limits padded around the values, ticks formatted as the display's."""
    xlim = _axis_limits(xs, logit, pad=pad)
    ylim = _axis_limits(ys, logit, pad=pad)
    if logit:
        ax.set_xscale("logit", nonpositive="clip")
        ax.set_yscale("logit", nonpositive="clip")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    _format_axis(ax.xaxis, xlim, percent, logit)
    _format_axis(ax.yaxis, ylim, percent, logit)


#: The colour and marker of the groups of ``groups="auto"``.
_NAMED_GROUP_STYLES = {
    "selective rules": ("#009E73", "X"),
    "tolerance rule": ("#E69F00", "P"),
    "GLA": ("#000000", "p"),
}

#: Methods that the first panel of :func:`tradeoff_figure` shows.
_MAIN_METHODS = {"ose", "entropy", "vrf", "vrfpaperdefaults"}
#: Reference methods drawn again in the second panel.
_REFERENCE_METHODS = {"ose", "vrf"}


def tradeoff_figure(display, *, title=None, figsize=(7.4, 10.0), metric="accuracy"):
    """The trade-off figure of ``skvrf demo``: two panels of at most eight
    series each.

    The top panel holds the zero-shot and fine-tuned models, the sweeps, the
    main methods (OSE, entropy, VRF and VRF with the paper's defaults) and the
    GLA variants, with an inset zoomed on the crowded corner; the bottom panel
    is zoomed on that corner and holds the fine-tuned model, OSE and VRF again
    (for reference) and every other method: the selective rules and the
    tolerance rows as one labelled group each, the rest one by one.

    Parameters
    ----------
    display : RobustnessDisplay or RobustnessReport
        The scores (a display not yet plotted, or a report).
    title : str, default=None
        The figure's title.
    figsize : tuple, default=(7.4, 10.0)
        The figure's size in inches.
    metric : str, default="accuracy"
        The metric of a report.

    Returns
    -------
    figure : matplotlib Figure
        With the two displays drawn as ``figure.displays`` (top, bottom).
    """
    import matplotlib.pyplot as plt

    if not isinstance(display, RobustnessDisplay):
        display = RobustnessDisplay._unplotted(display, metric)
    names = list(display.id_scores)
    zs = _find_name(names, display.zeroshot_name, _ZEROSHOT_NAMES, "zeroshot_name")
    ft = _find_name(names, display.finetuned_name, _FINETUNED_NAMES, "finetuned_name")
    groups = auto_groups(names, exclude=[n for n in (zs, ft) if n is not None])
    gla = groups.pop("GLA", [])
    main = [
        n for n in names if n in (zs, ft) or _canonical(n) in _MAIN_METHODS or n in gla
    ]
    rest = [n for n in names if n not in main]
    if rest:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=figsize, layout="constrained")
    else:
        fig, top = plt.subplots(
            figsize=(figsize[0], figsize[1] / 2), layout="constrained"
        )

    def part(keep):
        return type(display)(
            id_scores={n: display.id_scores[n] for n in keep},
            ood_scores={n: display.ood_scores[n] for n in keep},
            sweeps=display.sweeps,
            metric=display.metric,
            n_ood_sets=display.n_ood_sets,
            zeroshot_name=zs if zs in keep else None,
            finetuned_name=ft if ft in keep else None,
        )

    first = part(main).plot(
        ax=top, groups={"GLA": gla} if len(gla) > 1 else None, inset=bool(rest)
    )
    top.set_title("the methods (inset: the top right corner)", fontsize="medium")
    displays = [first]
    if rest:
        refs = [n for n in names if n == ft or _canonical(n) in _REFERENCE_METHODS]
        keep = [n for n in names if n in refs or n in rest]
        groups = {k: v for k, v in groups.items() if set(v) <= set(rest)}
        second = part(keep).plot(ax=bottom, groups=groups, annotate_alphas=False)
        _set_limits(
            bottom,
            [display.id_scores[n] for n in keep],
            [display.ood_scores[n] for n in keep],
            is_percent(display.metric),
            False,
            pad=0.08,
        )
        for text in second.point_labels_.values():
            text.remove()
        second.point_labels_ = {}
        second._label_groups(_resolve_groups(groups, keep, (zs, ft)))
        bottom.set_title(
            "zoomed: the variants and baselines, with fine-tuned, OSE and VRF",
            fontsize="medium",
        )
        displays.append(second)
    if title:
        fig.suptitle(title)
    fig.displays = displays
    return fig
