"""
open_clip, two encoders: an end-to-end fine-tuned model and the zero-shot one
=============================================================================

**When to use.** The fine-tuned model was fine-tuned end to end (e.g. with
WiSE-FT's or FLYP's scripts), so its image encoder differs from the zero-shot
one: the zero-shot head reads zero-shot features, the fine-tuned head reads
fine-tuned features, and VRF's distances are measured in the **fine-tuned**
feature space (as in the paper). Embed each image with both encoders, put the
two blocks side by side in one ``X`` (``np.hstack``), and let each component
select its own columns with a :class:`~sklearn.compose.ColumnTransformer`;
``embedding=`` selects the fine-tuned block for the distances.

::

    python examples/clip_two_encoders.py --train data/train --test data/test \\
        --model ViT-B-32 --pretrained openai --finetuned ft.pt --head

``--pretrained`` (the zero-shot weights) is an open_clip tag or a local file;
``--finetuned`` is the fine-tuned checkpoint (a state dict, a training
checkpoint or safetensors; see :func:`skvrf.clip.create_model`). With
``--head`` the fine-tuned component is the checkpoint's own classification head
(:func:`skvrf.clip.load_linear_head`; its rows must follow the sorted class
folders), fixed and frozen; without it, a logistic regression is fitted on the
fine-tuned features. ``--val`` (a held-out ImageFolder tree) calibrates the
components; pass it with ``--head``, since a head calibrated on its own
training images stays overconfident. ``--model-config tiny.json`` registers a
custom architecture under ``--model``. For large sets, embed once with
``skvrf embed`` (once per encoder) and stack the two ``features`` arrays
instead of embedding here.

.. note::
   Not run when the documentation is built: it needs CLIP weights and images.
   ``tests/test_clip_examples.py`` runs it on a tiny random open_clip model and
   generated images of three classes (``--finetuned``: a second random model
   with a head; ``--val``), where it prints the following (the layout; on a
   random model the numbers mean nothing)::

       18 training and 9 test images, 3 classes
       X: 32 columns = 16 zero-shot + 16 fine-tuned
       VRF: Zero-Shot Failure set of 13 rows, k = 1
       method         test accuracy
       zero-shot              0.333
       fine-tuned             1.000
       OSE                    1.000
       VRF                    1.000

"""

# sphinx_gallery_thumbnail_path = "_demo/thumbnails/clip_two_encoders.png"

# %%
# Arguments
# ---------
import argparse

import numpy as np
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from skvrf import OutputSpaceEnsembleClassifier, VRFEnsembleClassifier
from skvrf.io import list_image_folder

parser = argparse.ArgumentParser(
    description="VRF with an end-to-end fine-tuned encoder and the zero-shot one."
)
parser.add_argument("--train", default="data/train", help="ImageFolder tree")
parser.add_argument("--test", default="data/test", help="ImageFolder tree")
parser.add_argument("--val", default=None, help="held-out tree (calibration)")
parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
parser.add_argument("--pretrained", default="openai", help="zero-shot tag or file")
parser.add_argument("--finetuned", default="ft.pt", help="fine-tuned weights file")
parser.add_argument(
    "--head", action="store_true", help="use the checkpoint's classification head"
)
parser.add_argument("--model-config", default=None, help="JSON of a custom model")
parser.add_argument("--templates", default="openai_imagenet", help="prompt set")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

# %%
# Two feature blocks for the same images
# --------------------------------------
from skvrf.clip import (
    OpenCLIPImageEmbedder,
    load_linear_head,
    register_model_config,
    zeroshot_classifier,
)

if args.model_config:
    register_model_config(args.model, args.model_config)
options = {"device": args.device}
zs_embedder = OpenCLIPImageEmbedder(args.model, args.pretrained, **options).fit()
ft_embedder = OpenCLIPImageEmbedder(args.model, args.finetuned, **options).fit()


def load_split(root, classes=None):
    """X = [zero-shot features | fine-tuned features] and labels of a tree."""
    found, paths, labels = list_image_folder(root, absolute=True)
    if classes is not None and found != classes:
        raise SystemExit(f"{root} has classes {found}, the training tree {classes}")
    X = np.hstack([zs_embedder.transform(paths), ft_embedder.transform(paths)])
    return X, labels, found


X_train, y_train, classes = load_split(args.train)
X_test, y_test, _ = load_split(args.test, classes)
val = {}
if args.val:
    X_val, y_val, _ = load_split(args.val, classes)
    val = {"X_val": X_val, "y_val": y_val}

# %%
# Each component reads its own block
# ----------------------------------
# Columns ``0 .. d_zs - 1`` hold the zero-shot features, the next ``d_ft`` the
# fine-tuned ones. The zero-shot pipeline learns nothing (column selection and
# a fixed head), so it is fitted once and frozen; so is the fine-tuned one with
# the checkpoint's head. ``embedding=ft_block`` puts VRF's distances in the
# fine-tuned space (``"auto"`` would find the same block: the fine-tuned
# pipeline's steps before its classifier).
d_zs, d_ft = zs_embedder.embed_dim_, ft_embedder.embed_dim_
zs_block = ColumnTransformer([("zeroshot", "passthrough", slice(0, d_zs))])
ft_block = ColumnTransformer([("finetuned", "passthrough", slice(d_zs, d_zs + d_ft))])

names = [c.replace("_", " ") for c in classes]  # folder names as text
zs_head = zeroshot_classifier(
    args.model, args.pretrained, names, templates=args.templates, model=zs_embedder
)
zs = FrozenEstimator(make_pipeline(zs_block, zs_head).fit(X_train))
if args.head:
    ft = FrozenEstimator(
        make_pipeline(ft_block, load_linear_head(args.finetuned)).fit(X_train)
    )
else:
    ft = make_pipeline(ft_block, LogisticRegression(max_iter=1000))
# VRF with the paper's k, threshold and temperature (tune them: the tuning guide)
vrf = VRFEnsembleClassifier(zs, ft, embedding=ft_block, random_state=0)
models = {
    "zero-shot": zs,
    "fine-tuned": ft if args.head else clone(ft).fit(X_train, y_train),
    "OSE": OutputSpaceEnsembleClassifier(zs, ft, random_state=0).fit(
        X_train, y_train, **val
    ),
    "VRF": vrf.fit(X_train, y_train, **val),
}

# %%
# The table
# ---------
print(f"{len(y_train)} training and {len(y_test)} test images, {len(classes)} classes")
print(f"X: {X_train.shape[1]} columns = {d_zs} zero-shot + {d_ft} fine-tuned")
print(f"VRF: Zero-Shot Failure set of {vrf.zsf_indices_.size} rows, k = {vrf.k_}")
print(f"{'method':<14}{'test accuracy':>14}")
for name, model in models.items():
    print(f"{name:<14}{model.score(X_test, y_test):>14.3f}")
