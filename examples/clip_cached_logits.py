"""
open_clip, cached logits: VRF without the models
================================================

**When to use.** Your training and evaluation runs already saved, for every
image, each model's logits and the fine-tuned model's features (many research
codebases do), or the models are too expensive to load again. VRF needs no
more: with ``X = [zero-shot logits | fine-tuned logits | fine-tuned features]``
each component is a ``Pipeline`` of a column selector and a
:class:`skvrf.LogitsClassifier` (a stateless classifier that reads its columns
as logits), and ``embedding=`` selects the features block for the distances.
Calibration, the Zero-Shot Failure set, searches over ``k`` and the
temperature, and every baseline then run on arrays, without torch.

The first part of this script plays the training run: it writes, per split,
``<logits-dir>/<split>.npz`` with ``zs_logits``, ``ft_logits``, ``ft_features``,
``labels`` and ``classes``, from the open_clip models (the zero-shot head over
the ``--pretrained`` encoder; the fine-tuned model's head with ``--head``, else
a logistic regression fitted on the fine-tuned features of the training
images). When those files exist it loads no model at all. Put your own files
there, in that layout, to run VRF on your cached logits::

    python examples/clip_cached_logits.py --train data/train --test data/test \\
        --model ViT-B-32 --pretrained openai --finetuned ft.pt --head \\
        --logits-dir vrf_logits

``--pretrained`` and ``--finetuned`` are open_clip tags or local weights files
(``--finetuned`` defaults to ``--pretrained``: a linear probe on the zero-shot
features); ``--model-config tiny.json`` registers a custom architecture under
``--model``. With ``--val`` (a held-out tree, cached as ``val.npz``) both
components are calibrated on held-out logits.

.. note::
   Not run when the documentation is built: it needs CLIP weights and images.
   ``tests/test_clip_examples.py`` runs it on a tiny random open_clip model and
   generated images of three classes (``--finetuned``: a second random model
   with a head; ``--val``), where it prints the following (the layout; on a
   random model the numbers mean nothing)::

       18 training and 9 test rows, 3 classes
       X: 3 + 3 logit columns + 16 feature columns
       VRF: Zero-Shot Failure set of 13 rows, k = 1
       method         test accuracy
       zero-shot              0.333
       fine-tuned             1.000
       OSE                    1.000
       VRF                    1.000

"""

# sphinx_gallery_thumbnail_path = "_demo/thumbnails/clip_cached_logits.png"

# %%
# Arguments
# ---------
import argparse
from pathlib import Path

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline

from skvrf import LogitsClassifier, OutputSpaceEnsembleClassifier, VRFEnsembleClassifier
from skvrf.io import list_image_folder

parser = argparse.ArgumentParser(description="VRF on cached logits and features.")
parser.add_argument("--train", default="data/train", help="ImageFolder tree")
parser.add_argument("--test", default="data/test", help="ImageFolder tree")
parser.add_argument("--val", default=None, help="held-out tree (calibration)")
parser.add_argument("--logits-dir", default="vrf_logits", help="the cached logits")
parser.add_argument("--model", default="ViT-B-32", help="open_clip model name")
parser.add_argument("--pretrained", default="openai", help="zero-shot tag or file")
parser.add_argument("--finetuned", default=None, help="fine-tuned tag or file")
parser.add_argument(
    "--head", action="store_true", help="use the checkpoint's classification head"
)
parser.add_argument("--model-config", default=None, help="JSON of a custom model")
parser.add_argument("--templates", default="openai_imagenet", help="prompt set")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

splits = {"train": args.train, "test": args.test}
if args.val:
    splits["val"] = args.val
cache = Path(args.logits_dir)
files = {split: cache / f"{split}.npz" for split in splits}


# %%
# The cache (what a training run leaves behind)
# ---------------------------------------------
# Run once with the models; skipped when every file exists.
def write_cache():
    """Embed every split with both models; save their logits and ft features."""
    from sklearn.linear_model import LogisticRegression

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
    ft_embedder = zs_embedder
    if args.finetuned is not None:
        ft_embedder = OpenCLIPImageEmbedder(args.model, args.finetuned, **options)
        ft_embedder.fit()
    data = {
        split: list_image_folder(root, absolute=True) for split, root in splits.items()
    }
    classes = data["train"][0]
    names = [c.replace("_", " ") for c in classes]  # folder names as text
    zs_head = zeroshot_classifier(
        args.model, args.pretrained, names, templates=args.templates, model=zs_embedder
    )
    ft_features = {split: ft_embedder.transform(d[1]) for split, d in data.items()}
    if args.head:
        ft_head = load_linear_head(args.finetuned or args.pretrained)
    else:
        ft_head = LogisticRegression(max_iter=1000)
        ft_head.fit(ft_features["train"], data["train"][2])
    cache.mkdir(parents=True, exist_ok=True)
    for split, (found, paths, labels) in data.items():
        if found != classes:
            raise SystemExit(f"{splits[split]} has classes {found}, not {classes}")
        zs_features = ft_features[split]
        if ft_embedder is not zs_embedder:
            zs_features = zs_embedder.transform(paths)
        np.savez(
            files[split],
            zs_logits=zs_head.decision_function(zs_features),
            ft_logits=ft_head.decision_function(ft_features[split]),
            ft_features=ft_features[split],
            labels=labels,
            classes=np.asarray(classes),
        )


if all(f.is_file() for f in files.values()):
    print(f"cached logits from {cache}/: no model loaded")
else:
    write_cache()
    print(f"logits and features written to {cache}/")

# %%
# VRF from the arrays
# -------------------
# Nothing below needs torch or open_clip.
cached = {split: np.load(f) for split, f in files.items()}
n_classes = cached["train"]["zs_logits"].shape[1]
n_features = cached["train"]["ft_features"].shape[1]


def columns(name, start, stop):
    """A transformer that selects columns ``start .. stop - 1`` of X."""
    return ColumnTransformer([(name, "passthrough", slice(start, stop))])


def stacked(split):
    """X = [zs logits | ft logits | ft features] and the labels of a split."""
    d = cached[split]
    X = np.hstack([d["zs_logits"], d["ft_logits"], d["ft_features"]])
    return X, d["labels"]


X_train, y_train = stacked("train")
X_test, y_test = stacked("test")
val = {}
if "val" in cached:
    X_val, y_val = stacked("val")
    val = {"X_val": X_val, "y_val": y_val}

C = n_classes
zs = make_pipeline(columns("zs_logits", 0, C), LogitsClassifier())
ft = make_pipeline(columns("ft_logits", C, 2 * C), LogitsClassifier())
features = columns("ft_features", 2 * C, 2 * C + n_features)
# VRF with the paper's k, threshold and temperature (tune them: the tuning guide)
vrf = VRFEnsembleClassifier(zs, ft, embedding=features, random_state=0)
models = {
    "zero-shot": zs.fit(X_train),
    "fine-tuned": ft.fit(X_train),
    "OSE": OutputSpaceEnsembleClassifier(zs, ft, random_state=0).fit(
        X_train, y_train, **val
    ),
    "VRF": vrf.fit(X_train, y_train, **val),
}

# %%
# The table
# ---------
print(f"{len(y_train)} training and {len(y_test)} test rows, {C} classes")
print(f"X: {C} + {C} logit columns + {n_features} feature columns")
print(f"VRF: Zero-Shot Failure set of {vrf.zsf_indices_.size} rows, k = {vrf.k_}")
print(f"{'method':<14}{'test accuracy':>14}")
for name, model in models.items():
    print(f"{name:<14}{model.score(X_test, y_test):>14.3f}")
