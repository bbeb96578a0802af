"""
ImageNet and five distribution shifts: the layout of the paper's Table 2
========================================================================

For users who have ImageNet, its shift sets (ImageNet-V2, -Sketch, -A, -R and
ObjectNet) and open_clip weights, this script computes (or loads cached) image
features, fits every method and prints accuracies in the layout of Table 2 of
Zhu, Cui & Zhang, "Robust Fine-tuning of Zero-shot Models via Variance
Reduction" (NeurIPS 2024): ID (ImageNet), V2, Sketch, A, R, ObjectNet and the
OOD average.

Methods: zero-shot (open_clip's prompt ensemble over the ImageNet class names),
fine-tuned (the head of ``--checkpoint``, an end-to-end fine-tuned model; without
a checkpoint, a logistic-regression linear probe on the zero-shot features),
WiSE-FT (weight-space interpolation, only with a checkpoint), OSE, the entropy
ensemble and VRF. Every choice (WiSE-FT's and OSE's alpha; VRF's ``k``,
``threshold`` and ``temperature``; the calibration temperatures) is made on a
validation split held out from the ImageNet *training* folder
(``--val-per-class`` images per class), never on the test sets. The authors
calibrated on the ImageNet validation set that they also report, so expect
small differences.

.. note::
   This script is not run when the documentation is built, and the test suite
   runs it only end to end on a tiny fake tree with a tiny random model: it
   cannot reproduce the published numbers there. Reproducing them needs the
   datasets, the published CLIP weights and a fine-tuned checkpoint (e.g. from
   WiSE-FT), and hours of embedding on a GPU. On the fake tree (4 classes, a
   random model, ``--alphas 0,0.5,1``) it prints the layout below; the paper
   reports, for CLIP ViT-B/16, fine-tuned 81.3 ID / 53.7 OOD average, OSE
   82.2 / 60.2 and VRF 82.3 / 61.8::

       | method | IN | V2 | Sketch | A | R | ObjectNet | OOD avg |
       |:--|--:|--:|--:|--:|--:|--:|--:|
       | zero-shot | 25.0 | 25.0 | 25.0 | 50.0 | 33.3 | 50.0 | 36.7 |
       | fine-tuned | 25.0 | 50.0 | 25.0 | 50.0 | 33.3 | 50.0 | 41.7 |
       | WiSE-FT (alpha=0.0) | 25.0 | 25.0 | 25.0 | 50.0 | 33.3 | 50.0 | 36.7 |
       | OSE | 25.0 | 25.0 | 25.0 | 50.0 | 33.3 | 50.0 | 36.7 |
       | entropy | 25.0 | 25.0 | 25.0 | 50.0 | 33.3 | 50.0 | 36.7 |
       | VRF | 25.0 | 25.0 | 25.0 | 50.0 | 33.3 | 50.0 | 36.7 |

Data layout (each folder optional except ImageNet; missing shift sets are
skipped):

- ``--imagenet ROOT``: ``ROOT/train/<wnid>/*`` and ``ROOT/val/<wnid>/*``
  (ImageFolder by WordNet id, e.g. ``n01440764``). The sorted wnids of
  ``train`` define the class indices (the usual ImageNet order).
- ``--imagenet-v2 ROOT``: ``ROOT/<i>/*`` with ``i`` the class index 0..999 (the
  ImageNetV2 release format).
- ``--imagenet-sketch ROOT``, ``--imagenet-a ROOT``, ``--imagenet-r ROOT``:
  ``ROOT/<wnid>/*``; -A and -R cover 200 classes, the wnids of their folders,
  and each model is evaluated over those 200 classes.
- ``--objectnet ROOT`` (the ``objectnet-1.0`` folder): ``ROOT/images/<folder>/*``
  and the mapping files ObjectNet ships in ``ROOT/mappings/``:
  ``folder_to_objectnet_label.json`` (folder -> ObjectNet label),
  ``objectnet_to_imagenet_1k.json`` (ObjectNet label -> ImageNet class names,
  ``"; "``-separated), ``imagenet_to_label_2012_v2`` (ImageNet class names, one
  per line, in 2012-id order) and ``pytorch_to_imagenet_2012_id.json`` (class
  index -> 2012 id). They are read at run time; this script ships no mapping
  data. Each of the 113 ObjectNet labels that map to ImageNet pools its
  ImageNet classes by max logit; images of the other folders are dropped.

Example::

    python examples/imagenet_reproduction.py --imagenet /data/imagenet \\
        --imagenet-v2 /data/imagenetv2-matched-frequency-format-val \\
        --imagenet-sketch /data/sketch --imagenet-a /data/imagenet-a \\
        --imagenet-r /data/imagenet-r --objectnet /data/objectnet-1.0 \\
        --model ViT-B-16 --pretrained openai --checkpoint ft_vitb16.pt \\
        --features-dir features/ --device cuda

Use ``--max-per-class 2`` for a smoke run.
"""

# sphinx_gallery_thumbnail_path = "_demo/thumbnails/imagenet_reproduction.png"

import argparse
import json
import os
import sys
import warnings

import numpy as np

SHIFTS = ("V2", "Sketch", "A", "R", "ObjectNet")
OPTION_OF_SHIFT = {
    "V2": "imagenet_v2",
    "Sketch": "imagenet_sketch",
    "A": "imagenet_a",
    "R": "imagenet_r",
    "ObjectNet": "objectnet",
}


def parse_args(argv=None):
    """The script's options."""
    p = argparse.ArgumentParser(
        description="VRF and its baselines on ImageNet and five shifts (Table 2)."
    )
    p.add_argument("--imagenet", required=True, help="root with train/ and val/")
    p.add_argument("--imagenet-v2", default=None)
    p.add_argument("--imagenet-sketch", default=None)
    p.add_argument("--imagenet-a", default=None)
    p.add_argument("--imagenet-r", default=None)
    p.add_argument("--objectnet", default=None, help="the objectnet-1.0 folder")
    p.add_argument("--model", default="ViT-B-16", help="open_clip model name")
    p.add_argument("--model-config", default=None, help="JSON of a custom model")
    p.add_argument("--pretrained", default="openai", help="tag or weights file")
    p.add_argument(
        "--checkpoint", default=None, help="fine-tuned weights with a linear head"
    )
    p.add_argument("--head-prefix", default=None, help="module name of that head")
    p.add_argument(
        "--classnames",
        default=None,
        help="text file, one class name per line in sorted-wnid order "
        "(default: open_clip's ImageNet names for 1000 classes, else folder names)",
    )
    p.add_argument("--templates", default="openai_imagenet")
    p.add_argument("--max-per-class", type=int, default=None)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument(
        "--alphas",
        default="0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1",
        help="alphas of OSE and WiSE-FT to choose from on the held-out split",
    )
    p.add_argument("--features-dir", default="vrf_features")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# --------------------------------------------------------------------- data
def _list(root, max_per_class=None, seed=0):
    """(folder names, absolute paths, folder index) of an ImageFolder tree."""
    from skvrf.io import list_image_folder

    folders, paths, labels = list_image_folder(root)
    paths = np.array([os.path.join(os.path.abspath(root), p) for p in paths])
    if max_per_class is not None:
        rng = np.random.default_rng(seed)
        keep = np.concatenate(
            [
                np.sort(rng.permutation(np.flatnonzero(labels == c))[:max_per_class])
                for c in range(len(folders))
            ]
        )
        paths, labels = paths[keep], labels[keep]
    return np.array(folders), paths, labels


def imagenet_sets(args):
    """Train / val (held out from train) / test (ImageNet val) of ImageNet."""
    root = args.imagenet
    wnids, paths, labels = _list(os.path.join(root, "train"), None, args.seed)
    rng = np.random.default_rng(args.seed)
    val_idx, train_idx = [], []
    for c in range(len(wnids)):
        rows = rng.permutation(np.flatnonzero(labels == c))
        val_idx.append(rows[: args.val_per_class])
        rest = rows[args.val_per_class :]
        train_idx.append(
            rest if args.max_per_class is None else rest[: args.max_per_class]
        )
    sets = {}
    for name, idx in (("train", train_idx), ("val", val_idx)):
        idx = np.sort(np.concatenate(idx))
        sets[name] = (paths[idx], wnids[labels[idx]], None)
    folders, test_paths, test_labels = _list(
        os.path.join(root, "val"), args.max_per_class, args.seed
    )
    unknown = sorted(set(folders) - set(wnids))
    if unknown:
        raise ValueError(f"{root}/val has classes not in train: {unknown[:5]}")
    sets["test"] = (test_paths, folders[test_labels], None)
    return wnids, sets


def objectnet_class_map(root, wnids):
    """(folder -> ObjectNet label, {ObjectNet label: [wnids]}) from its files."""
    mappings = os.path.join(root, "mappings")

    def read_json(name):
        path = os.path.join(mappings, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ObjectNet mapping file not found: {path}")
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    folder_to_label = read_json("folder_to_objectnet_label.json")
    label_to_names = read_json("objectnet_to_imagenet_1k.json")
    index_to_2012 = read_json("pytorch_to_imagenet_2012_id.json")
    names_path = os.path.join(mappings, "imagenet_to_label_2012_v2")
    if not os.path.isfile(names_path):
        raise FileNotFoundError(f"ObjectNet mapping file not found: {names_path}")
    with open(names_path, encoding="utf-8") as f:
        names_2012 = [line.strip() for line in f]
    index_of_2012 = {int(v): int(k) for k, v in index_to_2012.items()}
    index_of_name = {name: index_of_2012[i] for i, name in enumerate(names_2012)}
    class_map = {}
    for label, names in label_to_names.items():
        indices = [index_of_name[n.strip()] for n in names.split(";") if n.strip()]
        class_map[label] = [str(wnids[i]) for i in indices]
    return folder_to_label, class_map


def shift_set(name, root, wnids, args):
    """(paths, labels, class map or None) of a shift set."""
    if name == "ObjectNet":
        folder_to_label, class_map = objectnet_class_map(root, wnids)
        folders, paths, labels = _list(
            os.path.join(root, "images"), args.max_per_class, args.seed
        )
        y = np.array([folder_to_label.get(f, "") for f in folders])[labels]
        keep = np.isin(y, list(class_map))
        return paths[keep], y[keep], class_map
    folders, paths, labels = _list(root, args.max_per_class, args.seed)
    if name == "V2":
        return paths, wnids[folders.astype(int)][labels], None
    unknown = sorted(set(folders) - set(wnids))
    if unknown:
        raise ValueError(f"{root}: folders that are not ImageNet wnids: {unknown[:5]}")
    y = folders[labels]
    if name in ("A", "R"):
        return paths, y, sorted(str(f) for f in folders)
    return paths, y, None


# ----------------------------------------------------------------- features
_EMBEDDERS = {}
_WEIGHTS_IDS = {}


def _weights_id(weights):
    """The tag, or the SHA-256 of a weights file (computed once per file)."""
    from skvrf.clip import sha256_file

    weights = os.fspath(weights)
    if weights not in _WEIGHTS_IDS:
        is_file = os.path.isfile(weights)
        _WEIGHTS_IDS[weights] = sha256_file(weights) if is_file else weights
    return _WEIGHTS_IDS[weights]


def embed(paths, weights, tag, set_name, args):
    """Image features of ``paths``, cached in ``--features-dir``.

    A cached file is reused when it holds the same image paths embedded with the
    same model and weights (tag or file SHA-256); ``skvrf embed`` writes
    equivalent files for whole folders.
    """
    from skvrf.clip import OpenCLIPImageEmbedder

    os.makedirs(args.features_dir, exist_ok=True)
    cache = os.path.join(args.features_dir, f"{set_name}-{tag}.npz")
    source = f"{args.model}:{_weights_id(weights)}"
    if os.path.isfile(cache):
        with np.load(cache) as z:
            if np.array_equal(z["paths"], paths) and str(z["source"]) == source:
                return z["features"]
    print(f"embedding {set_name} ({len(paths)} images) with {tag}", file=sys.stderr)
    key = (args.model, os.fspath(weights))
    if key not in _EMBEDDERS:
        _EMBEDDERS.clear()  # keep one model in memory
        _EMBEDDERS[key] = OpenCLIPImageEmbedder(
            args.model,
            weights,
            device=args.device,
            batch_size=args.batch_size,
            model_config=args.model_config,
        ).fit()
    features = _EMBEDDERS[key].transform(list(paths))
    np.savez(cache, features=features, paths=paths, source=np.asarray(source))
    return features


def class_names(args, wnids):
    if args.classnames:
        with open(args.classnames, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        if len(names) != len(wnids):
            raise ValueError(
                f"{args.classnames}: {len(names)} names, {len(wnids)} classes"
            )
        return names
    return "imagenet" if len(wnids) == 1000 else [str(w) for w in wnids]


def _columns(start, stop):
    from sklearn.compose import ColumnTransformer

    return ColumnTransformer([("cols", "passthrough", slice(start, stop))])


def _fixed(head, start, stop, X, y=None):
    """A frozen Pipeline: columns [start, stop) of X, then ``head`` fitted.

    Fixed heads (zero-shot, a checkpoint's head) learn nothing in ``fit``; a
    linear probe is fitted here on ``(X, y)``. VRF reads the Pipeline's first
    step as the embedding of its distances (the fine-tuned features).
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("cols", _columns(start, stop)), ("head", head)])
    return FrozenEstimator(pipe.fit(X, y))


# ------------------------------------------------------------------- models
def select_alpha(score, alphas):
    """The alpha of best validation score (first on ties)."""
    scores = [score(a) for a in alphas]
    return alphas[int(np.argmax(scores))]


def run(args):
    """Fit every method and return ``{method: {set: accuracy}}``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit

    from skvrf import (
        EntropyEnsembleClassifier,
        HeldOut,
        OutputSpaceEnsembleClassifier,
        VRFEnsembleClassifier,
        VRFEnsembleClassifierCV,
    )
    from skvrf.clip import (
        create_model,
        load_linear_head,
        wise_ft,
        zeroshot_classifier,
    )
    from skvrf.evaluation import evaluate_shifts

    wnids, sets = imagenet_sets(args)
    for name in SHIFTS:
        root = getattr(args, OPTION_OF_SHIFT[name])
        if root is not None:
            sets[name] = shift_set(name, root, wnids, args)
    shifts = [s for s in SHIFTS if s in sets]
    if not shifts:
        raise ValueError("give at least one shift set (--imagenet-v2, ...).")

    classes = np.array([str(w) for w in wnids])
    zs_head = zeroshot_classifier(
        args.model,
        args.pretrained,
        class_names(args, wnids),
        classes=classes,
        templates=args.templates,
        device=args.device,
        model_config=args.model_config,
    )
    feats = {s: embed(sets[s][0], args.pretrained, "zs", s, args) for s in sets}
    d = feats["train"].shape[1]
    if args.checkpoint:
        ft_head = load_linear_head(
            args.checkpoint, prefix=args.head_prefix, classes=classes
        )
        ft_feats = {s: embed(sets[s][0], args.checkpoint, "ft", s, args) for s in sets}
        X = {s: np.hstack([feats[s], ft_feats[s]]) for s in sets}
        zs = _fixed(zs_head, 0, d, X["train"])
        ft = _fixed(ft_head, d, 2 * d, X["train"])
    else:  # a linear probe on the zero-shot features (the "linear classifier" row)
        X = feats
        zs = _fixed(zs_head, 0, d, X["train"])
        lr = LogisticRegression(max_iter=1000)
        ft = _fixed(lr, 0, d, X["train"], sets["train"][1])
    y = {s: sets[s][1] for s in sets}
    Xtr, ytr, Xval, yval = X["train"], y["train"], X["val"], y["val"]

    def accuracy(est, s):
        return float(np.mean(est.predict(X[s]) == y[s]))

    ose = OutputSpaceEnsembleClassifier(zs, ft)
    ose.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    alphas = [float(a) for a in args.alphas.split(",")]
    ose.set_params(
        alpha=select_alpha(lambda a: accuracy(ose.set_params(alpha=a), "val"), alphas)
    )
    entropy = EntropyEnsembleClassifier(zs, ft)
    entropy.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    fold = np.r_[np.full(len(ytr), -1), np.zeros(len(yval), dtype=int)]
    search = VRFEnsembleClassifierCV(zs, ft, cv=PredefinedSplit(fold), refit=False)
    with warnings.catch_warnings():  # large k on a small ZSF set: clipped
        warnings.filterwarnings("ignore", "k=.*is clipped", UserWarning)
        warnings.filterwarnings("ignore", "Some candidate k exceed", UserWarning)
        search.fit(
            np.vstack([Xtr, Xval]),
            np.concatenate([ytr, yval]),
            X_val=HeldOut(Xval, yval),
        )
    vrf = VRFEnsembleClassifier(zs, ft, **search.best_params_)
    vrf.fit(Xtr, ytr, X_val=Xval, y_val=yval)
    print(
        f"chosen on the held-out split: OSE alpha={ose.alpha}, "
        f"VRF {search.best_params_}",
        file=sys.stderr,
    )

    def split(Xs):
        ood = {}
        for s in shifts:
            _, ys, cmap = sets[s]
            ood[s] = (Xs[s], ys) if cmap is None else (Xs[s], ys, cmap)
        return (Xs["test"], y["test"]), ood

    methods = {
        "zero-shot": zs.estimator,
        "fine-tuned": ft.estimator,
        "OSE": ose,
        "entropy": entropy,
        "VRF": vrf,
    }
    report = evaluate_shifts(methods, *split(X))
    scores = report.scores["accuracy"]
    if args.checkpoint:
        import torch

        zs_model = create_model(
            args.model, args.pretrained, model_config=args.model_config
        )
        ft_model = create_model(
            args.model, args.checkpoint, model_config=args.model_config
        )

        def wise_weights(alpha):
            path = os.path.join(args.features_dir, f"wise-ft-{alpha:g}.pt")
            merged = wise_ft(zs_model.model, ft_model.model, alpha)
            torch.save(merged.state_dict(), path)
            _WEIGHTS_IDS.pop(path, None)
            return path

        def wise_features(alpha, names):
            w = wise_weights(alpha)
            return {s: embed(sets[s][0], w, f"wise{alpha:g}", s, args) for s in names}

        def wise_val_accuracy(alpha):
            head = wise_ft(zs_head, ft_head, alpha)
            return float(
                np.mean(head.predict(wise_features(alpha, ["val"])["val"]) == yval)
            )

        best = select_alpha(wise_val_accuracy, alphas)
        head = wise_ft(zs_head, ft_head, best)
        Xw = wise_features(best, ["test", *shifts])
        wise_report = evaluate_shifts({f"WiSE-FT (alpha={best})": head}, *split(Xw))
        scores = {**wise_report.scores["accuracy"], **scores}
        order = ["zero-shot", "fine-tuned", *wise_report.scores["accuracy"]]
        scores = {k: scores[k] for k in order + [m for m in scores if m not in order]}
    return scores


def table(scores, shifts):
    """The accuracies (%) as a markdown table in Table 2's layout."""
    head = ["method", "IN", *shifts, "OOD avg"]
    lines = ["| " + " | ".join(head) + " |", "|:--" + "|--:" * (len(head) - 1) + "|"]
    for method, per_set in scores.items():
        values = [per_set["id"], *(per_set[s] for s in shifts), per_set["ood_mean"]]
        lines.append(
            "| " + " | ".join([method, *(f"{100 * v:.1f}" for v in values)]) + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    """Run the script; return the scores."""
    args = parse_args(argv)
    scores = run(args)
    shifts = [s for s in SHIFTS if getattr(args, OPTION_OF_SHIFT[s]) is not None]
    print(table(scores, shifts))
    return scores


if __name__ == "__main__":
    main()
