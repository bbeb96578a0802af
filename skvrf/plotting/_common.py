"""Shared pieces of the Displays: palette, style keywords, axes and legends."""

from __future__ import annotations

import numpy as np

from ..utils import import_optional

_ALPHA = "\N{GREEK SMALL LETTER ALPHA}"
_LOGIT_EPS = 1e-4
_METRIC_LABELS = {"ece": "ECE", "log_loss": "log-loss"}
_ZEROSHOT_NAMES = {"zeroshot", "zs"}
_FINETUNED_NAMES = {"finetuned", "ft"}
# Okabe & Ito's colour-blind-safe palette: the zero-shot and fine-tuned models
# keep their own colour and marker; every other method gets one of the rest and
# its own marker, so that methods at the same spot stay apart.
_OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}
_ZEROSHOT_STYLE = {"marker": "*", "s": 260, "color": "#009E73"}  # bluish green
_FINETUNED_STYLE = {"marker": "s", "s": 110, "color": "#D55E00"}  # vermillion
_OTHER_COLORS = ("#0072B2", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_OTHER_MARKERS = ("o", "D", "^", "v", "P", "X", "h", "<", ">")
_CURVE_COLORS = ("0.45", "#56B4E9", "#CC79A7", "#E69F00")
# The methods of skvrf.evaluation.compare_methods keep one colour and marker in
# every figure (and across the panels of one figure): canonical name ->
# (colour, marker).
_METHOD_STYLES = {
    "ose": ("#0072B2", "o"),
    "entropy": ("#E69F00", "D"),
    "vrf": ("#CC79A7", "^"),
    "vrfpaperdefaults": ("#56B4E9", "v"),
    "vrffixedgrid": ("#000000", "h"),
    "vrfallrowsbank": ("#F0E442", "<"),
}
# Colours and markers of groups (one legend entry for several methods)
_GROUP_STYLES = (
    ("#000000", "X"),
    ("#009E73", "p"),
    ("#F0E442", "P"),
    ("#56B4E9", ">"),
    ("#E69F00", "d"),
    ("#0072B2", "8"),
)


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
