"""The main job: VRF against its baselines on a real, embedded benchmark.

``skvrf demo`` runs the whole story offline: the WordNet noun-supersense benchmark
(:func:`skvrf.datasets.load_wordnet_supersenses`) embedded by the packaged
all-MiniLM-L6-v2 (:class:`skvrf.minilm.MiniLMEmbedder`), a zero-shot head built from
class descriptions, a fine-tuned logistic regression, and the ensembles, each tuned
on ID validation data only. With ``--features`` the same comparison runs on the
user's own precomputed (CLIP) features.

The comparison itself is :func:`skvrf.evaluation.compare_methods`, shared with
``skvrf evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

__all__ = [
    "FeatureSuite",
    "load_feature_suite",
    "save_feature_suite",
    "wordnet_feature_suite",
]


@dataclass
class FeatureSuite:
    """Features of one benchmark: ID splits, shift sets and class embeddings.

    Parameters
    ----------
    class_embeddings : ndarray of shape (n_classes, d)
        Zero-shot class (text) embeddings.
    train, validation, test : tuple of (X, y)
        ID splits.
    shifts : dict of str to (X, y)
        Shifted test sets.
    class_names : list of str
        Name of each class.
    name : str, default="features"
        The benchmark's name.
    info : dict, default={}
        Free-form provenance (e.g. the seed).

    Attributes
    ----------
    class_embeddings : ndarray of shape (n_classes, d)
        Zero-shot class (text) embeddings; row ``i`` is class ``i``.
    train, validation, test : tuple of (X, y)
        ID splits; labels index ``class_names``.
    shifts : dict of str to (X, y)
        Shifted test sets over the same classes.
    class_names : list of str
        Name of each class.
    name : str
        The benchmark's name.
    info : dict
        Free-form provenance.
    """

    class_embeddings: np.ndarray
    train: tuple
    validation: tuple
    test: tuple
    shifts: dict
    class_names: list
    name: str = "features"
    info: dict = field(default_factory=dict)


def _say(verbose, msg):
    if verbose:
        print(msg, flush=True)


def wordnet_feature_suite(*, seed=0, cache_dir=None, max_per_split=None, verbose=1):
    """Embed the WordNet noun-supersense benchmark with the packaged MiniLM.

    Parameters
    ----------
    seed : int, default=0
        0 keeps the shipped train/validation split; another seed redraws it
        (grouped by lemma, same sizes), for the spread over seeds.
    cache_dir : str or path, default=None
        Embedding cache (default: :func:`skvrf.minilm.default_cache_dir`).
    max_per_split : int, default=None
        Keep at most this many rows of each split (a quick smoke run).
    verbose : int, default=1
        Print progress.

    Returns
    -------
    suite : FeatureSuite
        Unit-norm 384-d features.
    """
    from .datasets import load_wordnet_supersenses
    from .minilm import MiniLMEmbedder, default_cache_dir

    data = load_wordnet_supersenses()
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    splits.update({f"shift:{k}": v for k, v in data.shifts.items()})
    rng = np.random.default_rng(seed)
    if max_per_split:
        for key, split in list(splits.items()):
            n = len(split.texts)
            if n > max_per_split:
                keep = np.sort(rng.choice(n, max_per_split, replace=False))
                splits[key] = _Rows(
                    [split.texts[i] for i in keep],
                    split.target[keep],
                    [split.lemmas[i] for i in keep],
                )

    embedder = MiniLMEmbedder(
        cache_dir=cache_dir if cache_dir is not None else default_cache_dir(),
        verbose=verbose,
    )
    t0 = time.perf_counter()
    descriptions = [d if isinstance(d, list) else [d] for d in data.class_descriptions]
    flat = [text for group in descriptions for text in group]
    emb = embedder.fit_transform(flat)
    class_emb, start = [], 0
    for group in descriptions:
        mean = emb[start : start + len(group)].mean(axis=0)
        class_emb.append(mean / np.linalg.norm(mean))
        start += len(group)
    # Embed the shipped splits (one cache entry each), then redraw if asked.
    features = {}
    for key, split in splits.items():
        _say(verbose, f"embedding {key} ({len(split.texts)} texts)")
        X = embedder.transform(list(split.texts))
        features[key] = (X, np.asarray(split.target))
    _say(verbose, f"embedded in {time.perf_counter() - t0:.1f} s")
    if seed:
        X = np.concatenate([features["train"][0], features["validation"][0]])
        y = np.concatenate([features["train"][1], features["validation"][1]])
        lemmas = list(splits["train"].lemmas) + list(splits["validation"].lemmas)
        n_val = len(features["validation"][1])
        gss = GroupShuffleSplit(n_splits=1, test_size=n_val / len(y), random_state=seed)
        tr, va = next(gss.split(X, y, groups=lemmas))
        features["train"], features["validation"] = (X[tr], y[tr]), (X[va], y[va])
    return FeatureSuite(
        class_embeddings=np.asarray(class_emb),
        train=features["train"],
        validation=features["validation"],
        test=features["test"],
        shifts={
            k.split(":", 1)[1]: v for k, v in features.items() if k.startswith("shift:")
        },
        class_names=list(data.target_names),
        name="WordNet noun supersenses (MiniLM-L6)",
        info={"seed": seed},
    )


@dataclass
class _Rows:
    texts: list
    target: np.ndarray
    lemmas: list


_SUITE_KEYS = (
    "class_embeddings",
    "train_features",
    "train_labels",
    "val_features",
    "val_labels",
    "test_features",
    "test_labels",
)


def load_feature_suite(path):
    """Load a :class:`FeatureSuite` from one ``.npz`` file.

    The file holds ``class_embeddings`` (n_classes, d), ``train_features`` /
    ``train_labels``, ``val_features`` / ``val_labels``, ``test_features`` /
    ``test_labels``, and for each shift set NAME ``ood_NAME_features`` /
    ``ood_NAME_labels``; labels are integers indexing the rows of
    ``class_embeddings``. Optional: ``class_names``.

    Parameters
    ----------
    path : str or path
        The file.

    Returns
    -------
    suite : FeatureSuite
        The features.
    """
    import zipfile

    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path}: cannot be read as an .npz feature file ({exc})."
        ) from exc
    with npz:
        missing = [k for k in _SUITE_KEYS if k not in npz.files]
        if missing:
            raise KeyError(
                f"{path}: missing key(s) {missing}; the file has {npz.files}."
            )
        data = {k: npz[k] for k in npz.files}
    shifts = {}
    for key in data:
        if key.startswith("ood_") and key.endswith("_features"):
            name = key[len("ood_") : -len("_features")]
            labels = f"ood_{name}_labels"
            if labels not in data:
                raise KeyError(f"{path}: {key} has no matching {labels}.")
            shifts[name] = (data[key], data[labels])
    if not shifts:
        raise KeyError(
            f"{path}: no shift set (keys ood_NAME_features / ood_NAME_labels)."
        )
    n_classes = data["class_embeddings"].shape[0]
    names = data.get("class_names", np.arange(n_classes).astype(str))
    return FeatureSuite(
        class_embeddings=data["class_embeddings"],
        train=(data["train_features"], data["train_labels"]),
        validation=(data["val_features"], data["val_labels"]),
        test=(data["test_features"], data["test_labels"]),
        shifts=shifts,
        class_names=[str(n) for n in names],
        name=str(path),
    )


def save_feature_suite(suite, path):
    """Write a :class:`FeatureSuite` in the format :func:`load_feature_suite` reads.

    Parameters
    ----------
    suite : FeatureSuite
        The features.
    path : str or path
        The ``.npz`` file to write (compressed).
    """
    arrays = {
        "class_embeddings": suite.class_embeddings,
        "class_names": np.asarray(suite.class_names),
        "train_features": suite.train[0],
        "train_labels": suite.train[1],
        "val_features": suite.validation[0],
        "val_labels": suite.validation[1],
        "test_features": suite.test[0],
        "test_labels": suite.test[1],
    }
    for name, (X, y) in suite.shifts.items():
        arrays[f"ood_{name}_features"] = X
        arrays[f"ood_{name}_labels"] = y
    np.savez_compressed(path, **arrays)
