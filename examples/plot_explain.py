"""
Explaining individual predictions
=================================

A fitted :class:`~skvrf.VRFEnsembleClassifier` can say, for any test sample,
how far it lies from the Zero-Shot Failure (ZSF) set (``zsf_distances``), how
much it trusts the fine-tuned model there (``ensemble_weights``) and which
training rows are behind that trust (``zsf_neighbors``: the nearest ZSF rows,
as indices into the training set).

Same generated data as the quickstart: the fine-tuned probe relies on a
dataset-specific cue that shifted samples lose.

The features are generated, and the hand-set parameters (``threshold``,
``temperature``, ``k``) suit them for illustration: they are not a recipe for
CLIP features (choose those on validation data: :ref:`tuning`).
"""

# %%
# Fit VRF on generated features
# -----------------------------
import numpy as np
from sklearn.linear_model import RidgeClassifier

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import make_shifted_features

data = make_shifted_features(n_test=500, n_shifted=500, random_state=0)
text = data.class_embeddings  # the zero-shot "class name" embeddings
X_train, y_train = data.train
X_val, y_val = data.validation
X_id, y_id = data.test
X_ood, y_ood = data.shifted

vrf = VRFEnsembleClassifier(
    ZeroShotClassifier(text), RidgeClassifier(), k=10, threshold=1.45, temperature=0.05
).fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(f"ZSF set: {vrf.zsf_indices_.size} of {len(y_train)} training rows, k={vrf.k_}")

# %%
# Pick a few test samples
# -----------------------
# The interesting cases are those where the components disagree and the weight
# decides: two ID samples that only the fine-tuned model gets right, and two
# shifted samples that only the zero-shot model gets right.
X_test = np.vstack([X_id, X_ood])
y_test = np.concatenate([y_id, y_ood])
domain = np.array(["ID"] * len(y_id) + ["shifted"] * len(y_ood))

zs_pred = vrf.zeroshot_estimator_.predict(X_test)
ft_pred = vrf.finetuned_estimator_.predict(X_test)
ft_only = np.flatnonzero((domain == "ID") & (ft_pred == y_test) & (zs_pred != y_test))
zs_only = np.flatnonzero(
    (domain == "shifted") & (zs_pred == y_test) & (ft_pred != y_test)
)
picked = np.concatenate([ft_only[:2], zs_only[:2]])

d = vrf.zsf_distances(X_test[picked])
w = vrf.ensemble_weights(X_test[picked])
pred = vrf.predict(X_test[picked])

print(
    f"{'sample':>7} {'domain':>8} {'true':>5} {'zs':>4} {'ft':>4} {'d(x)':>7}"
    f" {'w(x)':>6} {'VRF':>4}"
)
for row, i in enumerate(picked):
    print(
        f"{i:>7} {domain[i]:>8} {y_test[i]:>5} {zs_pred[i]:>4} {ft_pred[i]:>4}"
        f" {d[row]:>7.3f} {w[row]:>6.3f} {pred[row]:>4}"
    )

# %%
# The nearest ZSF training rows
# -----------------------------
# ``zsf_neighbors`` returns the distances and training-row indices of the
# nearest ZSF rows. Near an ID sample they are rows of its own class that the
# zero-shot model got wrong: evidence that the fine-tuned model knows this
# region better. A shifted sample's neighbours are usually farther and of
# mixed classes. A shifted sample that still lies close to the ZSF set keeps a
# high weight, and with it the fine-tuned model's answer, right or wrong: the
# distance is a heuristic for where the fine-tuned model is reliable, not a
# guarantee.
dist, rows = vrf.zsf_neighbors(X_test[picked], n_neighbors=5)
for row, i in enumerate(picked):
    labels = ", ".join(str(label) for label in y_train[rows[row]])
    print(
        f"sample {i} ({domain[i]}, class {y_test[i]}): training rows "
        f"{rows[row].tolist()}, classes [{labels}], d = {np.round(dist[row], 3)}"
    )

# %%
# What each model says, and the mix
# ---------------------------------
# VRF's probabilities are ``w(x) p_ft + (1 - w(x)) p_zs``, each component's
# probabilities the softmax of its logits divided by its calibration
# temperature (``calibration_temperatures_``). Both components here expose
# their logits through ``decision_function``.
import matplotlib.pyplot as plt
from scipy.special import softmax

T = vrf.calibration_temperatures_
p_zs = softmax(
    vrf.zeroshot_estimator_.decision_function(X_test[picked]) / T["zeroshot"], axis=1
)
p_ft = softmax(
    vrf.finetuned_estimator_.decision_function(X_test[picked]) / T["finetuned"], axis=1
)
p_vrf = vrf.predict_proba(X_test[picked])
assert np.allclose(p_vrf, w[:, None] * p_ft + (1 - w[:, None]) * p_zs)

# Okabe & Ito's colour-blind-safe colours (those of skvrf's displays), and a
# hatch for VRF's bars so that the three stay apart in grey as well
ZS, FT, VRF = "#009E73", "#D55E00", "#CC79A7"
fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, sharey=True)
classes = np.arange(len(text))
for ax, row, i in zip(axes.ravel(), range(len(picked)), picked):
    ax.bar(classes - 0.27, p_zs[row], width=0.27, color=ZS, label="zero-shot")
    ax.bar(classes, p_ft[row], width=0.27, color=FT, label="fine-tuned")
    ax.bar(classes + 0.27, p_vrf[row], width=0.27, color=VRF, hatch="///",
           edgecolor="black", linewidth=0.5, label="VRF")  # fmt: skip
    ax.axvspan(y_test[i] - 0.5, y_test[i] + 0.5, color="0.85", zorder=0)
    ax.set_title(
        f"#{i} ({domain[i]}, true class {y_test[i]}): d={d[row]:.2f}, w={w[row]:.2f}",
        fontsize=9,
    )
    ax.set_xticks(classes)
for ax in axes[1]:
    ax.set_xlabel("class (grey: the true class)")
for ax in axes[:, 0]:
    ax.set_ylabel("calibrated probability")
axes[0, 0].legend(fontsize=8, loc="upper right")
fig.tight_layout()


# %%
# In the top row the fine-tuned model is right and weighs enough to carry the
# mix. In the bottom row, the shifted sample far from the ZSF set gets a small
# weight and the zero-shot model's (right) answer, while a shifted sample that
# lies as close to the ZSF set as ID samples keeps the fine-tuned model's
# answer. Its nearest ZSF rows, printed above, are of other classes: a sign
# that the closeness is not evidence about its own class.

plt.show()
