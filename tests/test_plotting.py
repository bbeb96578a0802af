"""Tests of skvrf.plotting: RobustnessDisplay and WeightDisplay."""

import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from skvrf import (  # noqa: E402
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf.evaluation import RobustnessReport, evaluate_shifts, sweep_alpha  # noqa: E402
from skvrf.plotting import RobustnessDisplay, WeightDisplay  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 1.5

    def make(n, shift=0.0, scale=1.0):
        y = rng.integers(0, 3, n)
        return centers[y] + shift + rng.normal(scale=scale, size=(n, 6)), y

    X, y = make(300)
    zs = ZeroShotClassifier(centers + rng.normal(scale=0.7, size=centers.shape))
    ft = LogisticRegression(max_iter=500)
    ose = OutputSpaceEnsembleClassifier(zs, ft, random_state=0).fit(X, y)
    vrf = VRFEnsembleClassifier(zs, ft, k=3, random_state=0).fit(X, y)
    X_sub, y_sub = make(150)
    keep = y_sub < 2
    return {
        "ose": ose,
        "vrf": vrf,
        "estimators": {
            "Zero-Shot": ose.zeroshot_estimator_,
            "fine_tuned": ose.finetuned_estimator_,
            "VRF": vrf,
        },
        "id": make(120),
        "ood": {
            "noisy": make(120, scale=2.0),
            "subset": (X_sub[keep], y_sub[keep], [0, 1]),
        },
    }


def _png(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return path


def test_robustness_display_from_estimators(fitted, tmp_path):
    display = RobustnessDisplay.from_estimators(
        fitted["estimators"],
        fitted["id"],
        fitted["ood"],
        sweeps={"OSE": fitted["ose"]},
        alphas=np.linspace(0, 1, 5),
    )
    assert set(display.points_) == {"Zero-Shot", "fine_tuned", "VRF"}
    # zero-shot and fine-tuned recognised from their names, marked distinctly
    markers = {
        name: pts.get_paths()[0].vertices.shape[0]
        for name, pts in display.points_.items()
    }
    assert len(set(markers.values())) == 3
    assert list(display.curves_) == ["OSE"]
    assert display.curves_["OSE"].get_xdata().shape == (5,)
    assert [t.get_text() for t in display.annotations_] == ["\u03b1=0", "\u03b1=1"]
    assert display.figure_ is display.ax_.figure
    assert display.ax_.get_xlabel() == "ID accuracy (%)"
    assert "over 2 sets" in display.ax_.get_ylabel()
    labels = [t.get_text() for t in display.legend_.get_texts()]
    assert labels == ["OSE (\u03b1 sweep)", "Zero-Shot", "fine_tuned", "VRF"]
    # every point lies within the axes' limits
    x0, x1 = display.ax_.get_xlim()
    y0, y1 = display.ax_.get_ylim()
    for pts in display.points_.values():
        (x, y) = pts.get_offsets()[0]
        assert x0 < x < x1 and y0 < y < y1
    _png(display.figure_, tmp_path, "robustness")


def test_robustness_display_from_report_logit_and_names(fitted, tmp_path):
    sweep = sweep_alpha(fitted["ose"], fitted["id"], fitted["ood"])
    report = evaluate_shifts(
        {"a": fitted["estimators"]["Zero-Shot"], "b": fitted["vrf"]},
        fitted["id"],
        fitted["ood"],
        scoring=("accuracy", "ece"),
        sweeps={"OSE": sweep},
    )
    _, ax = plt.subplots()
    display = RobustnessDisplay.from_report(
        report, ax=ax, logit_scale=True, zeroshot_name="a", legend=False
    )
    assert display.ax_ is ax and display.legend_ is None
    assert ax.get_xscale() == "logit" and ax.get_yscale() == "logit"
    assert (
        display.points_["a"].get_paths()[0].vertices.shape[0]
        != (display.points_["b"].get_paths()[0].vertices.shape[0])
    )
    _png(display.figure_, tmp_path, "robustness_logit")
    ece = RobustnessDisplay.from_report(report, metric="ece")
    assert ece.ax_.get_xlabel() == "ID ECE (%)"
    with pytest.raises(ValueError, match="zeroshot_name='nope'"):
        RobustnessDisplay.from_report(report, zeroshot_name="nope")
    with pytest.raises(ValueError, match="no metric 'log_loss'"):
        RobustnessDisplay.from_report(report, metric="log_loss")


def test_robustness_display_logit_needs_fractions_and_edges_are_drawn():
    report = RobustnessReport(
        {
            "log_loss": {"a": {"id": 0.5, "ood_mean": 1.7}},
            "accuracy": {
                "zero-shot": {"id": 0.7, "ood_mean": 0.6},
                "fine-tuned": {"id": 1.0, "ood_mean": 0.5},
            },
        }
    )
    with pytest.raises(ValueError, match="between 0 and 1"):
        RobustnessDisplay.from_report(report, metric="log_loss", logit_scale=True)
    display = RobustnessDisplay.from_report(report, logit_scale=True)
    x, _ = display.points_["fine-tuned"].get_offsets()[0]
    assert x < display.ax_.get_xlim()[1]


def test_weight_display_from_estimator(fitted, tmp_path):
    vrf = fitted["vrf"]
    display = WeightDisplay.from_estimator(vrf, fitted["id"], fitted["ood"], bins=20)
    assert list(display.hists_) == ["id", "noisy", "subset"]
    assert display.hist_ax_ is not display.ax_
    assert display.hist_ax_.get_ylabel() == "density of d"
    d = np.linspace(*display.ax_.get_xlim(), 7)
    curve_x, curve_w = display.line_.get_data()
    np.testing.assert_allclose(
        np.interp(d, curve_x, curve_w),
        1 / (1 + np.exp((d - vrf.threshold) / vrf.temperature)),
        atol=1e-3,
    )
    assert display.threshold_line_.get_xdata()[0] == vrf.threshold
    assert "3rd nearest" in display.ax_.get_xlabel()
    labels = [t.get_text() for t in display.legend_.get_texts()]
    mean_w = vrf.ensemble_weights(fitted["id"][0]).mean()
    assert f"d on ID (mean w = {mean_w:.2f})" in labels
    _png(display.figure_, tmp_path, "weights")


def test_weight_display_inputs_and_errors():
    display = WeightDisplay(
        distances={"id": [0.1, 0.5, np.inf], "far": [1.5, 2.0]},
        threshold=1.0,
        temperature=0.3,
        weighting="step",
    ).plot(legend=False)
    assert display.legend_ is None
    _, w = display.line_.get_data()
    assert set(np.unique(w)) == {0.0, 1.0}
    with pytest.raises(ValueError, match="No finite distances"):
        WeightDisplay(distances={"id": [np.inf]}, threshold=1, temperature=1).plot()
    with pytest.raises(TypeError, match="VRFEnsembleClassifier"):
        WeightDisplay.from_estimator(LogisticRegression(), np.zeros((2, 2)))


def test_import_does_not_import_matplotlib():
    code = (
        "import sys, skvrf, skvrf.plotting, skvrf.evaluation; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clear_error_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    display = RobustnessDisplay(id_scores={"a": 0.5}, ood_scores={"a": 0.4})
    with pytest.raises(ImportError, match=r"needs matplotlib.*\.\[plot\]"):
        display.plot()


def _six_method_report(id_base=0.76, scale=1.0):
    scores = {
        "zero-shot": (0.760, 0.644),
        "fine-tuned": (0.861, 0.690),
        "OSE": (0.862, 0.702),
        "entropy": (0.853, 0.707),
        "VRF": (0.862, 0.702),  # at the same spot as OSE
        "VRF (paper defaults)": (0.864, 0.709),
    }
    return RobustnessReport(
        {"accuracy": {n: {"id": a, "ood_mean": b} for n, (a, b) in scores.items()}}
    )


def test_every_method_has_its_own_colour_and_marker():
    display = RobustnessDisplay.from_report(_six_method_report())
    faces = [tuple(p.get_facecolor()[0]) for p in display.points_.values()]
    markers = [p.get_paths()[0].vertices.tobytes() for p in display.points_.values()]
    assert len(set(faces)) == len(faces)
    assert len(set(markers)) == len(markers)
    # two methods at one spot: the one drawn later is smaller and on top
    ose, vrf = display.points_["OSE"], display.points_["VRF"]
    assert vrf.get_sizes()[0] < ose.get_sizes()[0]
    assert vrf.get_zorder() > ose.get_zorder()
    plt.close("all")


def test_style_aliases_replace_the_defaults_they_stand_for():
    report = _six_method_report()
    display = RobustnessDisplay.from_report(
        report, point_kwargs={"c": "black", "ec": "red", "lw": 2}
    )
    point = display.points_["VRF"]
    assert tuple(point.get_facecolor()[0]) == (0.0, 0.0, 0.0, 1.0)
    assert tuple(point.get_edgecolor()[0]) == (1.0, 0.0, 0.0, 1.0)
    assert point.get_linewidths()[0] == 2
    plt.close("all")


def test_logit_axes_have_ticks_where_ensembles_sit():
    report = RobustnessReport(
        {
            "accuracy": {
                "zero-shot": {"id": 0.88, "ood_mean": 0.9},
                "fine-tuned": {"id": 0.985, "ood_mean": 0.95},
                "VRF": {"id": 0.998, "ood_mean": 0.99},
            }
        }
    )
    display = RobustnessDisplay.from_report(report, logit_scale=True)
    lo, hi = display.ax_.get_xlim()
    ticks = [t for t in display.ax_.get_xticks() if lo <= t <= hi]
    assert sum(0.9 <= t <= 0.999 for t in ticks) >= 3, ticks
    plt.close("all")


# -- groups, inset and the two-panel trade-off figure of skvrf demo -------------

_DEMO_METHODS = {
    "zero-shot": (0.671, 0.518),
    "fine-tuned": (0.861, 0.691),
    "OSE": (0.862, 0.697),
    "entropy": (0.848, 0.692),
    "VRF": (0.862, 0.704),
    "VRF (paper defaults)": (0.863, 0.704),
    "OSE (tolerance)": (0.859, 0.699),
    "VRF (tolerance)": (0.851, 0.693),
    "selective (MSP)": (0.854, 0.689),
    "selective (energy)": (0.850, 0.673),
    "selective (MD)": (0.847, 0.666),
    "selective (RMD)": (0.853, 0.686),
    "selective (kNN)": (0.848, 0.662),
    "VRF (all-rows bank)": (0.860, 0.701),
    "zero-shot (GLA)": (0.681, 0.528),
    "VRF (paper defaults, GLA)": (0.864, 0.700),
    "VRF (fixed grid)": (0.861, 0.697),
}


def _demo_report():
    sweep = {
        "alphas": np.linspace(0, 1, 11),
        "id": np.linspace(0.671, 0.861, 11),
        "ood": np.linspace(0.518, 0.691, 11),
    }
    report = RobustnessReport(
        {
            "accuracy": {
                n: {"id": a, "ood_mean": b} for n, (a, b) in _DEMO_METHODS.items()
            }
        }
    )
    display = RobustnessDisplay._unplotted(report, "accuracy")
    display.sweeps = {"OSE": (sweep["alphas"], sweep["id"], sweep["ood"])}
    return display


def _series(ax):
    """(label, colour, marker) of every labelled series of the axes."""
    from matplotlib.colors import to_hex

    handles, labels = ax.get_legend_handles_labels()
    out = []
    for handle, label in zip(handles, labels):
        if hasattr(handle, "get_offsets"):  # a scatter
            color = to_hex(handle.get_facecolor()[0])
            marker = handle.get_paths()[0].vertices.round(3).tobytes()
        else:  # a sweep's line
            color, marker = to_hex(handle.get_color()), handle.get_marker()
        out.append((label, color, marker))
    return out


def test_auto_groups_gather_the_selective_rules_tolerance_rows_and_gla():
    from skvrf.plotting._robustness import auto_groups

    groups = auto_groups(list(_DEMO_METHODS), exclude=["zero-shot", "fine-tuned"])
    assert groups == {
        "selective rules": [n for n in _DEMO_METHODS if n.startswith("selective")],
        "tolerance rule": ["OSE (tolerance)", "VRF (tolerance)"],
        "GLA": ["zero-shot (GLA)", "VRF (paper defaults, GLA)"],
    }
    # a group of one is no group
    assert auto_groups(["OSE", "OSE (tolerance)", "selective (MSP)"]) == {}


def test_a_group_is_one_series_with_its_points_labelled():
    display = _demo_report().plot(groups="auto")
    series = _series(display.ax_)
    labels = [label for label, _, _ in series]
    assert labels.count("selective rules") == 1
    assert not any(label.startswith("selective (") for label in labels)
    assert len(series) == 18 - 5 - 2 - 2 + 3  # sweep + 17 methods, 3 groups
    # the members share the group's style and are labelled by what sets
    # them apart
    faces = {
        tuple(display.points_[n].get_facecolor()[0])
        for n in _DEMO_METHODS
        if n.startswith("selective")
    }
    assert len(faces) == 1
    shown = {n: t.get_text() for n, t in display.point_labels_.items()}
    assert shown["selective (kNN)"] == "kNN"
    assert shown["OSE (tolerance)"] == "OSE"
    assert shown["VRF (paper defaults, GLA)"] == "VRF (paper defaults)"
    assert shown["zero-shot (GLA)"] == "zero-shot"
    with pytest.raises(ValueError, match="two groups"):
        _demo_report().plot(groups={"a": ["OSE"], "b": ["OSE"]})
    with pytest.raises(ValueError, match="zero-shot or fine-tuned"):
        _demo_report().plot(groups={"a": ["fine-tuned", "OSE"]})


def test_tradeoff_figure_has_at_most_eight_distinct_series_per_panel():
    from skvrf.plotting._robustness import tradeoff_figure

    fig = tradeoff_figure(_demo_report())
    top, bottom = fig.displays
    shown = set()
    for display in (top, bottom):
        series = _series(display.ax_)
        assert 2 <= len(series) <= 8, [s[0] for s in series]
        # a distinct colour and a distinct marker for every series of a panel
        assert len({c for _, c, _ in series}) == len(series), series
        assert len({m for _, _, m in series}) == len(series), series
        shown |= set(display.points_)
    assert shown == set(_DEMO_METHODS)  # every method is in a panel
    # a method drawn in both panels keeps its colour
    for name in set(top.points_) & set(bottom.points_):
        assert tuple(top.points_[name].get_facecolor()[0]) == tuple(
            bottom.points_[name].get_facecolor()[0]
        )
    # the top panel zooms on the crowded corner in an inset
    inset = top.inset_ax_
    assert inset is not None
    x0, x1 = inset.get_xlim()
    assert x0 > 0.80 and x1 < 0.88
    assert "zero-shot" not in bottom.points_


def test_every_colour_of_the_displays_is_colour_blind_safe():
    """Okabe & Ito's eight colours and greys only."""
    from matplotlib.colors import to_hex

    from skvrf.plotting._common import _OKABE_ITO
    from skvrf.plotting._robustness import tradeoff_figure

    allowed = {c.lower() for c in _OKABE_ITO.values()}
    fig = tradeoff_figure(_demo_report())
    for display in fig.displays:
        for _, color, _ in _series(display.ax_):
            r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
            assert color in allowed or r == g == b, color
    del to_hex
