"""Plots of robustness results and of VRF's weights (scikit-learn Display style).

- :class:`RobustnessDisplay`: ID score on x, mean OOD score on y (optionally on
  logit-scaled axes, as effective-robustness plots use), alpha sweeps as curves,
  other estimators as labelled points.
- :class:`WeightDisplay`: a fitted VRF's weight curve ``w(d)`` over histograms of
  the distances ``d`` on the ID set and each OOD set.

matplotlib is imported only inside the methods that draw (install the ``plot``
extra from a checkout: ``python -m pip install -e ".[plot]"``); importing this
module does not import it.
"""

from ._robustness import RobustnessDisplay
from ._weights import WeightDisplay

__all__ = ["RobustnessDisplay", "WeightDisplay"]
