"""skvrf: Variance Reduction Fine-tuning (VRF) for zero-shot models, scikit-learn style.

The public API: the fixed heads (:class:`ZeroShotClassifier`,
:class:`LinearHeadClassifier`, :class:`LogitsClassifier`), the ensembles
(:class:`VRFEnsembleClassifier` and its baselines) and the subpackages
``skvrf.neighbors`` (k-th-neighbour engine) and ``skvrf.clip`` (open_clip, imported
lazily: ``import skvrf`` never imports torch).
"""

from ._baselines import EntropyEnsembleClassifier, OutputSpaceEnsembleClassifier
from ._classmap import ClassMappedClassifier
from ._grids import DistanceQuantiles, DistanceSpread
from ._heads import LinearHeadClassifier, LogitsClassifier, ZeroShotClassifier
from ._heldout import HeldOut
from ._search import VRFEnsembleClassifierCV
from ._selective import SelectiveEnsembleClassifier
from ._vrf import VRFEnsembleClassifier
from .evaluation import (
    AlphaSweep,
    RobustnessReport,
    evaluate_shifts,
    sweep_alpha,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AlphaSweep",
    "ClassMappedClassifier",
    "DistanceQuantiles",
    "DistanceSpread",
    "EntropyEnsembleClassifier",
    "HeldOut",
    "LinearHeadClassifier",
    "LogitsClassifier",
    "OutputSpaceEnsembleClassifier",
    "RobustnessReport",
    "SelectiveEnsembleClassifier",
    "VRFEnsembleClassifier",
    "VRFEnsembleClassifierCV",
    "ZeroShotClassifier",
    "__version__",
    "evaluate_shifts",
    "sweep_alpha",
]
