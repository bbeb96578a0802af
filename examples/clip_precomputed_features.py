"""
open_clip, precomputed features of one encoder: zero-shot head and linear probe
===============================================================================

**When to use.** The zero-shot and the fine-tuned models share one image
encoder: the fine-tuned model is a classifier over the *pretrained* CLIP
features (a linear probe, as here, or a head trained over frozen features).
Then one feature matrix serves both components and VRF's distances, and
everything after the embedding costs seconds. This is the recommended way in:
embed each image once, then work on arrays.

The features come from ``skvrf embed`` (resumable, for large sets)::

    skvrf embed --model ViT-B-32 --pretrained openai --images data/train --out train.npz
    skvrf embed --model ViT-B-32 --pretrained openai --images data/test --out test.npz
    python examples/clip_precomputed_features.py --train train.npz --test test.npz

or, for small sets, from the ImageFolder trees themselves (one sub-folder per
class), embedded here with :class:`~skvrf.clip.OpenCLIPImageEmbedder`::

    python examples/clip_precomputed_features.py --train data/train --test data/test

``--pretrained`` is an open_clip tag or a local weights file (nothing is
downloaded for a file); ``--model-config tiny.json`` registers a custom
architecture under ``--model``. The class names, the sorted folder names
(``_`` read as a space), fill open_clip's prompt templates. ``--val`` (a third
folder or ``.npz``) calibrates both components on held-out rows. The script
prints the test accuracy of the zero-shot head, the linear probe, the
output-space ensemble (OSE, one global mixing weight) and VRF.

The end of this page gives the ImageNet-scale recipe, where the fine-tuned
component is the fine-tuned model's own head. When the fine-tuned model was
fine-tuned end to end, its encoder differs from the zero-shot one: see
``examples/clip_two_encoders.py``.

.. note::
   Not run when the documentation is built: it needs CLIP weights and images.
   ``tests/test_clip_examples.py`` runs it on a tiny random open_clip model and
   generated images of three classes (with ``--val``), where it prints the
   following (the layout; on a random model the numbers mean nothing)::

       18 training and 9 test images, 3 classes
       VRF: Zero-Shot Failure set of 13 rows, k = 1
       method         test accuracy
       zero-shot              0.333
       linear probe           0.778
       OSE                    0.778
       VRF                    0.778

"""

# sphinx_gallery_thumbnail_path = "_demo/thumbnails/clip_precomputed_features.png"

# %%
# Arguments
# ---------
import argparse

from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skvrf import OutputSpaceEnsembleClassifier, VRFEnsembleClassifier
from skvrf.io import list_image_folder, load_features

parser = argparse.ArgumentParser(
    description="VRF over the precomputed features of one open_clip encoder."
)
parser.add_argument("--train", default="data/train", help="ImageFolder tree or .npz")
parser.add_argument("--test", default="data/test", help="ImageFolder tree or .npz")
parser.add_argument("--val", default=None, help="held-out tree or .npz (calibration)")
parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
parser.add_argument("--pretrained", default="openai", help="tag or weights file")
parser.add_argument("--model-config", default=None, help="JSON of a custom model")
parser.add_argument("--templates", default="openai_imagenet", help="prompt set")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

# %%
# The features
# ------------
# A ``.npz`` from ``skvrf embed`` holds ``features``, ``labels`` (indices into
# ``classes``) and ``classes``; a folder is embedded here. The labels are the
# class indices, which is what the zero-shot head predicts.
from skvrf.clip import OpenCLIPImageEmbedder, register_model_config, zeroshot_classifier

if args.model_config:
    register_model_config(args.model, args.model_config)
embedder = OpenCLIPImageEmbedder(args.model, args.pretrained, device=args.device)


def load_split(source):
    """(features, labels, class names) of a ``.npz`` file or an ImageFolder tree."""
    if str(source).endswith(".npz"):
        data = load_features(source, require=("features", "labels", "classes"))
        if "model" in data and str(data["model"]) != args.model:
            raise SystemExit(
                f"{source} was embedded with {data['model']}, not --model "
                f"{args.model}: the zero-shot head needs the same encoder."
            )
        return data["features"], data["labels"], [str(c) for c in data["classes"]]
    classes, paths, labels = list_image_folder(source, absolute=True)
    if not hasattr(embedder, "embed_dim_"):
        embedder.fit()
    return embedder.transform(paths), labels, classes


X_train, y_train, classes = load_split(args.train)
X_test, y_test, test_classes = load_split(args.test)
if test_classes != classes:
    raise SystemExit(f"--test has classes {test_classes}, --train has {classes}")
val = {}
if args.val:
    X_val, y_val, val_classes = load_split(args.val)
    if val_classes != classes:
        raise SystemExit(f"--val has classes {val_classes}, --train has {classes}")
    val = {"X_val": X_val, "y_val": y_val}

# %%
# The components and the ensembles
# --------------------------------
# The zero-shot head is built from the class names with the same encoder's text
# tower (``model=embedder`` reuses the loaded model). The linear probe is fitted
# by each ensemble (a clone) and calibrated on out-of-fold predictions, or on
# ``--val``.
names = [c.replace("_", " ") for c in classes]  # folder names as text
zs = zeroshot_classifier(
    args.model, args.pretrained, names, templates=args.templates, model=embedder
)
ft = LogisticRegression(max_iter=1000)
# VRF with the paper's k, threshold and temperature (tune them: the tuning guide)
vrf = VRFEnsembleClassifier(zs, ft, random_state=0)
models = {
    "zero-shot": zs,
    "linear probe": clone(ft).fit(X_train, y_train),
    "OSE": OutputSpaceEnsembleClassifier(zs, ft, random_state=0).fit(
        X_train, y_train, **val
    ),
    "VRF": vrf.fit(X_train, y_train, **val),
}

# %%
# The table
# ---------
print(f"{len(y_train)} training and {len(y_test)} test images, {len(classes)} classes")
print(f"VRF: Zero-Shot Failure set of {vrf.zsf_indices_.size} rows, k = {vrf.k_}")
print(f"{'method':<14}{'test accuracy':>14}")
for name, model in models.items():
    print(f"{name:<14}{model.score(X_test, y_test):>14.3f}")

# %%
# The ImageNet-scale recipe
# -------------------------
# With 1.28 M training rows and 1000 classes, do **not** refit a
# ``LogisticRegression`` as the fine-tuned component: the fit takes hours, and
# it is a different classifier from the fine-tuned one, so the Zero-Shot
# Failure set would describe the wrong model. Use the fine-tuned model's own
# head instead, a fixed head that VRF never fits: ``fit`` then only calibrates
# the components (on ``X_val``) and builds the bank, two forward passes of a
# linear layer over the features. The features are those of the fine-tuned
# encoder (``skvrf embed --pretrained ft.pt``); when the zero-shot encoder
# differs, see ``examples/clip_two_encoders.py``::
#
#     from sklearn.frozen import FrozenEstimator
#     from skvrf.clip import load_linear_head
#
#     zs = zeroshot_classifier("ViT-B-16", "openai", "imagenet")
#     ft = load_linear_head("ft.pt")  # a fitted skvrf.LinearHeadClassifier
#     # any other prefit classifier: ft = FrozenEstimator(prefit_classifier)
#     vrf = VRFEnsembleClassifier(zs, ft)
#     vrf.fit(X_train, y_train, X_val=X_val, y_val=y_val)
#
# ``examples/imagenet_reproduction.py`` runs this recipe on ImageNet and its
# five distribution shifts.
