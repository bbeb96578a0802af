"""
Choosing k and the temperature with GridSearchCV
================================================

:class:`~skvrf.VRFEnsembleClassifier` is a scikit-learn estimator, so
``GridSearchCV`` tunes ``k``, ``threshold`` and ``temperature`` like any other
hyper-parameter. The search sees only in-distribution (ID) data, as in the paper
(the parameters are chosen on ID validation accuracy). For comparison the
same grid is then scored on shifted data, which a real search never sees.
Finally :class:`~skvrf.VRFEnsembleClassifierCV` runs the same search,
vectorised over the grid.

The features are generated; the grid and the fixed ``threshold`` suit them
for illustration and are not a recipe for CLIP features.
"""

# %%
# Generated CLIP-like features (the quickstart's recipe)
# ------------------------------------------------------
import numpy as np
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import make_shifted_features

data = make_shifted_features(random_state=0)
text = data.class_embeddings  # the zero-shot "class name" embeddings
X_train, y_train = data.train
X_val, y_val = data.validation
X_ood, y_ood = data.shifted

# %%
# The search
# ----------
# ``GridSearchCV`` refits the whole ensemble, components included, for every
# candidate and fold, so the fine-tuned component here is a ridge probe (fitted
# in closed form, in milliseconds); a logistic-regression probe works the same,
# only slower. Both components are calibrated on the held-out ``X_val``, passed
# through ``GridSearchCV.fit``. The threshold is fixed near the middle of the
# distances of these features.
zs = ZeroShotClassifier(text)
ft = RidgeClassifier()
vrf = VRFEnsembleClassifier(zs, ft, threshold=1.45)

ks = [1, 4, 16, 64]
temperatures = [0.02, 0.05, 0.15, 0.5]
cv = StratifiedKFold(3, shuffle=True, random_state=0)
search = GridSearchCV(vrf, {"k": ks, "temperature": temperatures}, cv=cv)
search.fit(X_train, y_train, X_val=X_val, y_val=y_val)
print("best parameters:", search.best_params_)
print(f"best mean CV accuracy: {search.best_score_:.4f}")

# %%
# Mean test score of each candidate, next to the accuracy on shifted data
# -----------------------------------------------------------------------
# ``cv_results_`` lists the candidates in ``ParameterGrid`` order (``k`` first,
# then ``temperature``). The right panel refits each candidate on all training
# rows and scores it on the shifted set, only to show what the ID search cannot
# see.
import matplotlib.pyplot as plt

id_scores = search.cv_results_["mean_test_score"].reshape(len(ks), len(temperatures))
ood_scores = np.array(
    [
        [
            vrf.set_params(k=k, temperature=t)
            .fit(X_train, y_train, X_val=X_val, y_val=y_val)
            .score(X_ood, y_ood)
            for t in temperatures
        ]
        for k in ks
    ]
)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
panels = (
    (id_scores, "ID: mean cross-validated accuracy"),
    (ood_scores, "shifted data (not seen by the search)"),
)
for ax, (scores, title) in zip(axes, panels):
    im = ax.imshow(scores, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(temperatures)), [f"{t:g}" for t in temperatures])
    ax.set_yticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("temperature")
    ax.set_ylabel("k")
    ax.set_title(title, fontsize=10)
    for (i, j), value in np.ndenumerate(scores):
        ax.text(
            j,
            i,
            f"{value:.3f}",
            ha="center",
            va="center",
            fontsize=7,
            color="w" if value < scores.min() + 0.6 * np.ptp(scores) else "k",
        )
    fig.colorbar(im, ax=ax, shrink=0.85)
best = (
    ks.index(search.best_params_["k"]),
    temperatures.index(search.best_params_["temperature"]),
)
axes[0].add_patch(
    plt.Rectangle((best[1] - 0.5, best[0] - 0.5), 1, 1, fill=False, ec="r", lw=2)
)
fig.suptitle(f"VRF, threshold={vrf.threshold} (red: the search's choice)")
fig.tight_layout()

# %%
# Two things stand out. First, the two panels disagree: the ID score prefers
# candidates that lean on the fine-tuned model (small ``k``, large temperature),
# which are the worst on shifted data. Among candidates within noise of the
# best ID score, prefer the one that leans least on the fine-tuned model, or
# score on a shifted validation set when one exists. Second, the threshold and
# ``k`` interact: the distance to the k-th neighbour grows with ``k``, so at a
# fixed threshold a small ``k`` puts almost every sample below it. Search the
# threshold together with ``k``, which the vectorised search below makes cheap.
#
# The same search, vectorised
# ---------------------------
# :class:`~skvrf.VRFEnsembleClassifierCV` fits one ensemble per fold and scores
# every ``(k, threshold, temperature)`` from one neighbour search, with the
# same folds and the same results as ``GridSearchCV``; here it also searches
# the threshold.
from time import perf_counter

from skvrf import VRFEnsembleClassifierCV

thresholds = [1.35, 1.45, 1.55]
tic = perf_counter()
vrf_cv = VRFEnsembleClassifierCV(
    zs, ft, ks=ks, thresholds=thresholds, temperatures=temperatures, cv=cv
).fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(
    f"{len(ks) * len(thresholds) * len(temperatures)} candidates searched in "
    f"{perf_counter() - tic:.1f} s; best: {vrf_cv.best_params_}"
)
print(f"its accuracy on the shifted set: {vrf_cv.score(X_ood, y_ood):.3f}")

# ``cv_results_`` is in ``ParameterGrid`` order: k, temperature, threshold.
cv_scores = vrf_cv.cv_results_["mean_test_score"].reshape(
    len(ks), len(temperatures), len(thresholds)
)
print(
    "same scores as GridSearchCV at threshold=1.45:",
    np.allclose(cv_scores[:, :, thresholds.index(1.45)], id_scores),
)
plt.show()
