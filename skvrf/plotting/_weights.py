"""``WeightDisplay``: VRF's weight curve over histograms of the distances."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..evaluation._sweep import ID_SET
from ._common import _OTHER_COLORS, _check_matplotlib, _ordinal, _style

__all__ = ["WeightDisplay"]


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

        from .._weighting import vrf_weights

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
