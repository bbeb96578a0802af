"""
open_clip, raw images: pipelines that embed, and a grid search that embeds once
===============================================================================

**When to use.** You want ``X`` to be the image files themselves: a small or
medium data set, a quick experiment, or a model to ship that takes paths.
:class:`~skvrf.clip.OpenCLIPImageEmbedder` is a scikit-learn transformer from
image paths (or PIL images, or ``uint8`` arrays) to CLIP embeddings, so each
component is a pipeline over images: the embedder then the zero-shot head, and
the embedder then a logistic regression. With ``embedding="auto"`` VRF's
distances are measured on the fine-tuned pipeline's embedder output.

A ``GridSearchCV`` over ``k`` and ``temperature`` refits the ensemble for every
candidate and fold, and each fit transforms the images many times (fitting,
out-of-fold calibration, the Zero-Shot Failure set, scoring). Two things keep
that cheap:

- the embedder's ``memory`` caches each image's embedding on disk, keyed by the
  image's content and the model's identity, so each image goes through the
  encoder **once**, in this run and in later runs with the same cache;
- the fitted embedder is wrapped in :class:`~sklearn.frozen.FrozenEstimator`,
  so the clones that the search makes share one loaded model instead of
  loading the weights again for each clone.

The script prints the test accuracy of the tuned VRF beside its components, and
how many images went through each encoder against how many transform calls
asked for them. For large data sets embed once with ``skvrf embed`` and work on
arrays (``examples/clip_precomputed_features.py``).

::

    python examples/clip_raw_images.py --train data/train --test data/test \\
        --model ViT-B-32 --pretrained openai --cache-dir vrf_embedding_cache

``--pretrained`` is an open_clip tag or a local weights file, ``--finetuned``
optional weights of a fine-tuned encoder for the fine-tuned pipeline (default:
the zero-shot encoder, i.e. a linear probe); ``--model-config tiny.json``
registers a custom architecture under ``--model``.

.. note::
   Not run when the documentation is built: it needs CLIP weights and images.
   ``tests/test_clip_examples.py`` runs it on a tiny random open_clip model and
   generated images of three classes (a 2 x 2 grid, 3 folds), where it prints
   the following (the layout; on a random model the numbers mean nothing)::

       18 training and 9 test images, 3 classes
       grid search: 4 candidates x 3 folds
       best: k=1, temperature=0.5
       method         test accuracy
       zero-shot              0.333
       fine-tuned             1.000
       VRF (tuned)            1.000

       encoder       transform calls  rows asked  encoded
       zero-shot                  28         270       27
       fine-tuned                 93         756       27
       27 distinct images, each encoded at most once per encoder: True

"""

# sphinx_gallery_thumbnail_path = "_demo/thumbnails/clip_raw_images.png"

# %%
# Arguments
# ---------
import argparse

from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from skvrf import VRFEnsembleClassifier
from skvrf.io import list_image_folder


def k_value(text):
    """``--k``: an int, "auto" (0.1 % of the ZSF set) or "authors"."""
    return text if text in ("auto", "authors") else int(text)


parser = argparse.ArgumentParser(description="VRF on raw images with open_clip.")
parser.add_argument("--train", default="data/train", help="ImageFolder tree")
parser.add_argument("--test", default="data/test", help="ImageFolder tree")
parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
parser.add_argument("--pretrained", default="openai", help="zero-shot tag or file")
parser.add_argument("--finetuned", default=None, help="fine-tuned tag or file")
parser.add_argument("--model-config", default=None, help="JSON of a custom model")
parser.add_argument("--templates", default="openai_imagenet", help="prompt set")
parser.add_argument("--cache-dir", default="vrf_embedding_cache")
parser.add_argument("--device", default="auto")
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--k", type=k_value, nargs="+", default=["auto", 1, 10])
parser.add_argument("--temperature", type=float, nargs="+", default=[0.3, 0.6, 1.0])
parser.add_argument("--cv", type=int, default=5, help="folds of the grid search")
parser.add_argument("--calibration-cv", type=int, default=5)
args = parser.parse_args()

# %%
# Embedders that count
# --------------------
# A plain ``OpenCLIPImageEmbedder`` would do; this subclass only counts its
# ``transform`` calls and, with a forward hook on the image tower, the images
# that actually went through the encoder (cache misses).
from skvrf.clip import OpenCLIPImageEmbedder, register_model_config, zeroshot_classifier


class CountingImageEmbedder(OpenCLIPImageEmbedder):
    """OpenCLIPImageEmbedder that counts transform calls and encoded images."""

    def fit(self, X=None, y=None):
        super().fit(X, y)
        self.n_calls_ = self.n_rows_ = self.n_encoded_ = 0
        self.model_.visual.register_forward_hook(self._count_encoded)
        return self

    def _count_encoded(self, module, inputs, output):
        self.n_encoded_ += output.shape[0]

    def transform(self, X):
        self.n_calls_ += 1
        self.n_rows_ += len(X)
        return super().transform(X)


if args.model_config:
    register_model_config(args.model, args.model_config)
options = {
    "device": args.device,
    "batch_size": args.batch_size,
    "memory": args.cache_dir,
}
embedders = {"zero-shot": CountingImageEmbedder(args.model, args.pretrained, **options)}
if args.finetuned is not None:
    embedders["fine-tuned"] = CountingImageEmbedder(
        args.model, args.finetuned, **options
    )
for embedder in embedders.values():
    embedder.fit()  # loads the model once
zs_embedder = embedders["zero-shot"]
ft_embedder = embedders.get("fine-tuned", zs_embedder)

# %%
# The images
# ----------
classes, X_train, y_train = list_image_folder(args.train, absolute=True)
test_classes, X_test, y_test = list_image_folder(args.test, absolute=True)
if test_classes != classes:
    raise SystemExit(f"--test has classes {test_classes}, --train has {classes}")

# %%
# Pipelines over images, and the search
# -------------------------------------
# The zero-shot pipeline learns nothing: it is fitted once and frozen. The
# fine-tuned pipeline's logistic regression is refitted by every fit of the
# search; its embedder, frozen, is shared by every clone.
names = [c.replace("_", " ") for c in classes]  # folder names as text
zs_head = zeroshot_classifier(
    args.model, args.pretrained, names, templates=args.templates, model=zs_embedder
)
zs = FrozenEstimator(make_pipeline(FrozenEstimator(zs_embedder), zs_head).fit(X_train))
ft = make_pipeline(FrozenEstimator(ft_embedder), LogisticRegression(max_iter=1000))
vrf = VRFEnsembleClassifier(zs, ft, calibration_cv=args.calibration_cv, random_state=0)
search = GridSearchCV(vrf, {"k": args.k, "temperature": args.temperature}, cv=args.cv)
search.fit(X_train, y_train)

# %%
# The tables
# ----------
best = ", ".join(f"{key}={value}" for key, value in search.best_params_.items())
print(f"{len(y_train)} training and {len(y_test)} test images, {len(classes)} classes")
print(f"grid search: {len(search.cv_results_['params'])} candidates x {args.cv} folds")
print(f"best: {best}")
models = {
    "zero-shot": zs,
    "fine-tuned": clone(ft).fit(X_train, y_train),
    "VRF (tuned)": search.best_estimator_,
}
print(f"{'method':<14}{'test accuracy':>14}")
for name, model in models.items():
    print(f"{name:<14}{model.score(X_test, y_test):>14.3f}")

n_images = len(set(X_train) | set(X_test))
print()
print(f"{'encoder':<12}{'transform calls':>17}{'rows asked':>12}{'encoded':>9}")
for name, embedder in embedders.items():
    print(
        f"{name:<12}{embedder.n_calls_:>17}{embedder.n_rows_:>12}"
        f"{embedder.n_encoded_:>9}"
    )
once = all(e.n_encoded_ <= n_images for e in embedders.values())
print(f"{n_images} distinct images, each encoded at most once per encoder: {once}")
