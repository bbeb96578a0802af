"""
Weight-space methods: WiSE-FT, Model Stock and DaWin beside VRF
===============================================================

VRF mixes the two models' **outputs** per sample. The weight-space methods
mix their **weights**: :func:`~skvrf.clip.wise_ft` interpolates two models with
one global coefficient, :func:`~skvrf.clip.model_stock` merges several
fine-tuned models toward the pre-trained one layer by layer, and
:func:`~skvrf.clip.dawin` predicts each sample with its own interpolation,
weighted by the two models' prediction entropies (:doc:`/user_guide/choosing`
compares them all).

The first part runs them on linear heads over generated CLIP-like features (a
head is a one-layer model); its hand-set parameters are for illustration, not a
recipe for CLIP features. The second part shows the same calls on open_clip
models, here a tiny **randomly initialised** one (no weights are downloaded,
so its numbers mean nothing): with real weights, pass an open_clip tag or a
weights file instead of ``None``. Needs ``python -m pip install -e ".[clip]"``.
"""

# %%
# Heads over generated features
# -----------------------------
# The zero-shot head holds the class "text" embeddings; the fine-tuned head is
# a logistic regression's weights, as a :class:`~skvrf.LinearHeadClassifier`.
# Both heads read L2-normalised features (the probe is fitted on them), so their
# weights live in one space and can be interpolated.
import numpy as np
from sklearn.linear_model import LogisticRegression

from skvrf import LinearHeadClassifier, ZeroShotClassifier
from skvrf.clip import model_stock, wise_ft
from skvrf.datasets import make_shifted_features
from skvrf.utils import normalize_rows

data = make_shifted_features(random_state=0)
X_train, y_train = data.train


def probe_head(rows):
    probe = LogisticRegression(C=100, max_iter=2000)
    probe.fit(normalize_rows(X_train[rows]), y_train[rows])
    head = LinearHeadClassifier(probe.coef_, probe.intercept_)
    return head.fit(X_train)


zeroshot = ZeroShotClassifier(data.class_embeddings).fit(X_train)
finetuned = probe_head(slice(None))

# %%
# WiSE-FT: ``(1 - alpha) * zero-shot + alpha * fine-tuned``, weights and biases.
# At ``alpha = 0`` it is the zero-shot head, at ``alpha = 1`` the fine-tuned one.
alphas = np.linspace(0, 1, 11)
wise = [wise_ft(zeroshot, finetuned, alpha) for alpha in alphas]
for alpha, mixed in zip(alphas, wise):
    if alpha in (0.0, 0.5, 1.0):
        print(f"alpha={alpha:4.2f}  ID {mixed.score(*data.test):.3f}"
              f"  shifted {mixed.score(*data.shifted):.3f}")  # fmt: skip

# %%
# The WiSE-FT curve: ID against shifted accuracy for every ``alpha``, from the
# zero-shot head (``alpha = 0``) to the fine-tuned one (``alpha = 1``).
import matplotlib.pyplot as plt

id_acc = [mixed.score(*data.test) for mixed in wise]
shift_acc = [mixed.score(*data.shifted) for mixed in wise]
fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
ax.plot(id_acc, shift_acc, "-o", color="#0072B2", markersize=4, label="WiSE-FT")
ax.scatter(id_acc[0], shift_acc[0], marker="*", s=200, color="#009E73",
           edgecolor="black", zorder=3, label="zero-shot head")  # fmt: skip
ax.scatter(id_acc[-1], shift_acc[-1], marker="s", s=80, color="#D55E00",
           edgecolor="black", zorder=3, label="fine-tuned head")  # fmt: skip
ax.set_xlabel("ID accuracy")
ax.set_ylabel("shifted accuracy")
ax.set_title("WiSE-FT: interpolating the heads' weights")
ax.legend(frameon=False)
ax.grid(alpha=0.3)

# %%
# Model Stock: two probes fitted on the two halves of the training rows, merged
# toward the zero-shot head by the angle between them (the closer they agree,
# the nearer the merge stays to their average).
halves = np.array_split(np.random.default_rng(0).permutation(len(y_train)), 2)
merged, ratios = model_stock(
    zeroshot, [probe_head(rows) for rows in halves], return_ratios=True
)
print("merge ratios:", {name: round(t, 3) for name, t in ratios.items()})
print(f"Model Stock  ID {merged.score(*data.test):.3f}"
      f"  shifted {merged.score(*data.shifted):.3f}")  # fmt: skip

# %%
# open_clip models (tiny, random: the calls, not the numbers)
# -----------------------------------------------------------
# :func:`~skvrf.clip.register_model_config` adds an architecture;
# :func:`~skvrf.clip.create_model` returns an :class:`~skvrf.clip.OpenCLIPModel`
# (model, preprocessing, provenance); :func:`~skvrf.clip.template_sets` lists
# open_clip's prompt sets; :class:`~skvrf.clip.OpenCLIPTextEmbedder` embeds
# strings; :func:`~skvrf.clip.load_checkpoint` reads a weights file as a flat
# state dict without running its code.
import os
import tempfile

import torch

from skvrf.clip import (
    OpenCLIPTextEmbedder,
    create_model,
    dawin,
    load_checkpoint,
    register_model_config,
    template_sets,
    zeroshot_classifier,
)
from skvrf.clip.testing import TINY_CONFIG

# The tiny architecture skvrf tests with (16-d embeddings, one layer each).
register_model_config("tiny-random", TINY_CONFIG)
torch.manual_seed(0)
pretrained = create_model("tiny-random", None)  # None: random weights
torch.manual_seed(1)
finetuned_clip = create_model("tiny-random", None)
print(type(pretrained).__name__, pretrained.source, pretrained.sha256)

print(len(template_sets()["openai_imagenet"]), "templates in openai_imagenet")
text = OpenCLIPTextEmbedder("tiny-random", None, device="cpu").fit()
print(text.transform(["a photo of a cat", "a photo of a dog"]).shape)

weights = os.path.join(tempfile.mkdtemp(), "finetuned.pt")
torch.save({"state_dict": finetuned_clip.model.state_dict(), "epoch": 10}, weights)
state = load_checkpoint(weights)
print(len(state), "tensors, e.g.", next(iter(state)))

# %%
# DaWin on images: each image's coefficient ``lambda(x)`` comes from the two
# models' entropies; a Beta mixture groups the coefficients so that only
# ``n_groups`` interpolated models run. The result is a
# :class:`~skvrf.clip.DaWinResult`.
classes = ["cat", "dog", "bird"]
head = zeroshot_classifier("tiny-random", None, classes, templates="simple_imagenet",
                           device="cpu")  # fmt: skip
rng = np.random.default_rng(0)
images = [rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8) for _ in range(12)]
result = dawin(pretrained, finetuned_clip, images, zeroshot_head=head,
               finetuned_head=head, n_groups=2)  # fmt: skip
print(result._fields)
print(result.proba.shape, np.round(result.coefficients, 2))
