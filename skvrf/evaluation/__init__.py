"""Robustness evaluation: scores on an ID set and OOD sets, and alpha sweeps.

- :func:`evaluate_shifts` scores fitted estimators on an in-distribution test set
  and several out-of-distribution ones (each predicted once; class-mapped sets
  such as ImageNet-A/R or ObjectNet supported) and returns a
  :class:`RobustnessReport` (markdown tables, dict/JSON, pandas).
- :func:`compare_methods` fits the zero-shot and fine-tuned models, OSE, the
  entropy ensemble and VRF on equal terms and tunes them on validation data.
- :func:`sweep_alpha` scores the global mix ``(1 - alpha) p_zs + alpha p_ft`` of a
  fitted ensemble's components for a grid of alphas (:class:`AlphaSweep`).
- Scorers on predicted probabilities: :func:`accuracy_from_proba`,
  :func:`log_loss_from_proba`, :func:`expected_calibration_error`.

Plots of these results live in :mod:`skvrf.plotting`.
"""

from ._compare import (
    DEFAULT_ALPHAS,
    DEFAULT_VRF_GRID,
    PAPER_SCALE_VRF_GRID,
    compare_methods,
)
from ._report import RobustnessReport, evaluate_shifts
from ._scorers import (
    PROBA_METRICS,
    accuracy_from_proba,
    expected_calibration_error,
    get_proba_metric,
    log_loss_from_proba,
)
from ._sweep import AlphaSweep, sweep_alpha

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_VRF_GRID",
    "PAPER_SCALE_VRF_GRID",
    "compare_methods",
    "PROBA_METRICS",
    "AlphaSweep",
    "RobustnessReport",
    "accuracy_from_proba",
    "evaluate_shifts",
    "expected_calibration_error",
    "get_proba_metric",
    "log_loss_from_proba",
    "sweep_alpha",
]


_RENAMED = {"SCORERS": "PROBA_METRICS", "get_scorer": "get_proba_metric"}


def __getattr__(name):
    # Old names that shadowed scikit-learn's scorers with another signature.
    if name in _RENAMED:
        import warnings

        warnings.warn(
            f"skvrf.evaluation.{name} is renamed {_RENAMED[name]} (it takes "
            "probabilities, unlike scikit-learn's scorers).",
            FutureWarning,
            stacklevel=2,
        )
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
