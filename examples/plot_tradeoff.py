"""
The ID/OOD trade-off: one global alpha versus VRF's per-sample weight
=====================================================================

An output-space ensemble (OSE) mixes the zero-shot and the fine-tuned model with
one coefficient ``alpha`` for every sample: moving ``alpha`` from 0 to 1 trades
robustness under shift for in-distribution (ID) accuracy along a curve. VRF
chooses the weight per sample, from the distance ``d(x)`` of the sample to the
Zero-Shot Failure (ZSF) set, and so can sit above that curve.

The data is the generated recipe of the quickstart: ID samples carry the class's
"text" direction plus a dataset-specific cue that the fine-tuned probe relies on;
shifted samples lose the cue and move to a new "style".

The features are generated, and the hand-set parameters (``threshold``,
``temperature``, ``k``) suit them for illustration: they are not a recipe for
CLIP features (choose those on validation data: :ref:`tuning`).
"""

# %%
# Generated CLIP-like features
# ----------------------------
import numpy as np
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import make_shifted_features
from skvrf.evaluation import evaluate_shifts, sweep_alpha

data = make_shifted_features(random_state=0)
X_train, y_train = data.train
shifts = {"shifted": data.shifted}  # (X, y) of each shifted set

# %%
# One VRF, and the OSE curve of the same components
# -------------------------------------------------
# The fine-tuned probe is fitted once and frozen, and both components are
# calibrated on the held-out validation rows.
# :func:`~skvrf.evaluation.sweep_alpha` scores the global mix
# ``(1 - alpha) p_zs + alpha p_ft`` of the VRF's own (calibrated) components
# for 21 values of alpha: ``alpha=0`` is the zero-shot model, ``alpha=1`` the
# fine-tuned one. :func:`~skvrf.evaluation.evaluate_shifts` scores the fitted
# models on the ID and shifted test sets.
zs = ZeroShotClassifier(data.class_embeddings).fit(X_train)
ft = LogisticRegression(max_iter=2000).fit(X_train, y_train)
vrf = VRFEnsembleClassifier(
    zs, FrozenEstimator(ft), k=10, threshold=1.45, temperature=0.05
).fit(X_train, y_train, X_val=data.validation[0], y_val=data.validation[1])

sweep = sweep_alpha(vrf, data.test, shifts, alphas=np.linspace(0, 1, 21))
report = evaluate_shifts(
    {"zero-shot": zs, "fine-tuned": ft, "VRF": vrf},
    data.test,
    shifts,
    sweeps={"OSE": sweep},
)
print(report.to_markdown())

# %%
# The trade-off
# -------------
# :class:`~skvrf.plotting.RobustnessDisplay` draws each estimator as a point (ID
# score against the mean score over the shifted sets) and each alpha sweep as a
# curve from ``alpha=0`` to ``alpha=1``. A point above the curve is more robust
# than every global mix at the same ID score.
import matplotlib.pyplot as plt

from skvrf.plotting import RobustnessDisplay, WeightDisplay

fig, ax = plt.subplots(figsize=(7, 4.5))
RobustnessDisplay.from_report(report, ax=ax)
ax.set_ylabel("accuracy on the shifted set (%)")  # one OOD set: no mean
ax.set_title("One global alpha vs a per-sample weight")
fig.tight_layout()

# %%
# Why it works: w(d) against the distances of ID and shifted samples
# ------------------------------------------------------------------
# ID test samples lie close to the ZSF set (small ``d``), where the weight of
# the fine-tuned model is near 1; shifted samples lie farther (large ``d``),
# where VRF falls back to the zero-shot model. A global alpha must use one
# weight for both. :class:`~skvrf.plotting.WeightDisplay` draws the weight
# curve over the histograms of ``d``.
fig, ax = plt.subplots(figsize=(7, 4))
WeightDisplay.from_estimator(vrf, data.test[0], {"shifted": data.shifted[0]}, ax=ax)
ax.set_title(f"threshold={vrf.threshold}, temperature={vrf.temperature}")
fig.tight_layout()
plt.show()
