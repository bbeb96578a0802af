"""The VRF search with the fixed grid used before 0.1.0, for the seed tables.

``PAPER_SCALE_VRF_GRID`` (thresholds 0.8-1.75, temperatures 0.1-1.0) was built
around CLIP ViT-B/16's distances; the benchmarks report it next to the default,
data-driven candidates to show what the change does on other features.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import PredefinedSplit

from skvrf import HeldOut, VRFEnsembleClassifier, VRFEnsembleClassifierCV
from skvrf.evaluation import PAPER_SCALE_VRF_GRID

NAME = "VRF (fixed grid)"


def fixed_grid_vrf(zs, ft, train, validation):
    """VRF tuned on ``validation`` over ``PAPER_SCALE_VRF_GRID`` (as
    ``compare_methods`` tunes its "VRF" row), fitted on ``train``; and its
    choice, with the number of threshold-range warnings its fit raised."""
    (X, y), (X_val, y_val) = train, validation
    fold = np.r_[np.full(len(y), -1), np.zeros(len(y_val), dtype=int)]
    held_out = HeldOut(X_val, y_val)
    frozen = FrozenEstimator(ft)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = VRFEnsembleClassifierCV(
            zs, frozen, **PAPER_SCALE_VRF_GRID, cv=PredefinedSplit(fold), refit=False
        ).fit(np.concatenate([X, X_val]), np.concatenate([y, y_val]), X_val=held_out)
        params = dict(search.best_params_)
        vrf = VRFEnsembleClassifier(zs, frozen, **params).fit(X, y, X_val=held_out)
    warned = sum("lies" in str(w.message) for w in caught)
    d = vrf.zsf_distances(X_val)
    chosen = {
        **params,
        "k_used": int(vrf.k_),
        "val_accuracy": float(search.best_score_),
        "range_warnings": int(warned),
        "threshold_inside_val_distances": bool(
            d.min() <= params["threshold"] <= d.max()
        ),
        "val_weight_sd": float(vrf.ensemble_weights(X_val).std()),
    }
    return vrf, chosen
