"""The features of an embedded benchmark: ID splits, shift sets, class embeddings.

``skvrf demo`` runs the whole story offline on one of the embedded benchmarks
(:data:`BENCHMARKS`; :func:`benchmark_feature_suite` embeds one with the
packaged all-MiniLM-L6-v2, :class:`skvrf.minilm.MiniLMEmbedder`): a zero-shot
head built from class descriptions, a fine-tuned logistic regression, and the
ensembles, each tuned on ID validation data only. On the user's own
precomputed (CLIP) features, given as feature files like ``skvrf evaluate``'s
(``--train``, ``--val``, ``--test``, ``--ood NAME=FILE``, ``--zeroshot``), the
same comparison runs on them; :func:`save_feature_suite` writes a benchmark's
features in that layout and :func:`load_feature_suite` reads them back.

The comparison itself is :func:`skvrf.evaluation.compare_methods`, shared with
``skvrf evaluate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

__all__ = [
    "BENCHMARKS",
    "FeatureSuite",
    "benchmark_feature_suite",
    "load_feature_suite",
    "save_feature_suite",
    "wordnet_feature_suite",
]

#: The embedded benchmarks by name: the loader in :mod:`skvrf.datasets` that
#: returns its texts, and the title ``skvrf demo`` prints.
BENCHMARKS = {
    "wordnet-supersenses": {
        "loader": "load_wordnet_supersenses",
        "title": "WordNet noun supersenses (MiniLM-L6)",
    },
    "wordnet-verbs": {
        "loader": "load_wordnet_verbs",
        "title": "WordNet verb supersenses (MiniLM-L6)",
    },
}


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


def benchmark_feature_suite(
    name="wordnet-supersenses", *, seed=0, cache_dir=None, max_per_split=None, verbose=1
):
    """Embed one of the embedded benchmarks with the packaged MiniLM.

    Parameters
    ----------
    name : str, default="wordnet-supersenses"
        A key of :data:`BENCHMARKS`.
    seed : int, default=0
        0 keeps the shipped train/validation split; another seed redraws it
        (grouped by lemma, same sizes), for the spread over seeds.
    cache_dir : str or path, default=None
        Embedding cache (default: :func:`skvrf.minilm.default_cache_dir`).
    max_per_split : int, default=None
        Keep at most this many rows of each split (a quick smoke run), plus
        one row of each class the random draw missed.
    verbose : int, default=1
        Print progress.

    Returns
    -------
    suite : FeatureSuite
        Unit-norm 384-d features.

    Raises
    ------
    ValueError
        When ``name`` is not a key of :data:`BENCHMARKS`.
    """
    from ..minilm import MiniLMEmbedder, default_cache_dir
    from ._wordnet import load_wordnet_supersenses
    from ._wordnet_verbs import load_wordnet_verbs

    if name not in BENCHMARKS:
        raise ValueError(
            f"unknown benchmark {name!r}; the embedded benchmarks are "
            f"{', '.join(sorted(BENCHMARKS))}."
        )
    loaders = {f.__name__: f for f in (load_wordnet_supersenses, load_wordnet_verbs)}
    data = loaders[BENCHMARKS[name]["loader"]]()
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    splits.update({f"shift:{k}": v for k, v in data.shifts.items()})
    rng = np.random.default_rng(seed)
    if max_per_split:
        for key, split in list(splits.items()):
            n = len(split.texts)
            if n > max_per_split:
                keep = rng.choice(n, max_per_split, replace=False)
                # a class the draw missed keeps one row: a model fitted on the
                # slice knows every class its test sets hold
                missed = np.setdiff1d(split.target, split.target[keep])
                extra = [rng.choice(np.flatnonzero(split.target == c)) for c in missed]
                keep = np.sort(np.concatenate([keep, np.asarray(extra, dtype=int)]))
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
        name=BENCHMARKS[name]["title"],
        info={"benchmark": name, "seed": seed},
    )


def wordnet_feature_suite(*, seed=0, cache_dir=None, max_per_split=None, verbose=1):
    """Embed the WordNet noun-supersense benchmark with the packaged MiniLM.

    ``benchmark_feature_suite("wordnet-supersenses", ...)``.

    Parameters
    ----------
    seed : int, default=0
        0 keeps the shipped train/validation split; another seed redraws it
        (grouped by lemma, same sizes), for the spread over seeds.
    cache_dir : str or path, default=None
        Embedding cache (default: :func:`skvrf.minilm.default_cache_dir`).
    max_per_split : int, default=None
        Keep at most this many rows of each split (a quick smoke run), plus
        one row of each class the random draw missed.
    verbose : int, default=1
        Print progress.

    Returns
    -------
    suite : FeatureSuite
        Unit-norm 384-d features.
    """
    return benchmark_feature_suite(
        "wordnet-supersenses",
        seed=seed,
        cache_dir=cache_dir,
        max_per_split=max_per_split,
        verbose=verbose,
    )


@dataclass
class _Rows:
    texts: list
    target: np.ndarray
    lemmas: list


#: File names :func:`save_feature_suite` writes (shift sets: ``ood-NAME.npz``).
SPLIT_FILES = {
    "train": "train.npz",
    "validation": "val.npz",
    "test": "test.npz",
    "zeroshot": "zeroshot.npz",
}


def save_feature_suite(suite, directory):
    """Write a :class:`FeatureSuite` as feature files, one per split.

    The files use the one feature-file layout of ``skvrf evaluate`` and ``skvrf
    demo`` (see :mod:`skvrf.io`): ``train.npz``, ``val.npz``, ``test.npz`` and
    ``ood-NAME.npz`` per shift set, each with ``features``, ``labels`` (indices
    into ``classes``) and ``classes`` (the class names); ``zeroshot.npz`` with
    ``class_embeddings`` and ``classes``. They are what ``--train``, ``--val``,
    ``--test``, ``--ood NAME=FILE`` and ``--zeroshot`` take.

    Parameters
    ----------
    suite : FeatureSuite
        The features.
    directory : str or path
        Folder to write to (created if needed).

    Returns
    -------
    argv : list of str
        The ``--train ... --zeroshot ...`` options that name the files written.
    """
    import os

    os.makedirs(directory, exist_ok=True)
    names = np.asarray(suite.class_names)
    argv = []
    splits = {
        "train": suite.train,
        "validation": suite.validation,
        "test": suite.test,
    }
    options = {"train": "--train", "validation": "--val", "test": "--test"}
    for split, (X, y) in splits.items():
        path = os.path.join(directory, SPLIT_FILES[split])
        np.savez_compressed(path, features=X, labels=y, classes=names)
        argv += [options[split], path]
    for name, (X, y) in suite.shifts.items():
        path = os.path.join(directory, f"ood-{name}.npz")
        np.savez_compressed(path, features=X, labels=y, classes=names)
        argv += ["--ood", f"{name}={path}"]
    path = os.path.join(directory, SPLIT_FILES["zeroshot"])
    np.savez_compressed(path, class_embeddings=suite.class_embeddings, classes=names)
    return [*argv, "--zeroshot", path]


def load_feature_suite(directory):
    """Read the folder :func:`save_feature_suite` writes back as a FeatureSuite.

    Parameters
    ----------
    directory : str or path
        A folder with ``train.npz``, ``val.npz``, ``test.npz``, ``zeroshot.npz``
        and ``ood-NAME.npz`` per shift set.

    Returns
    -------
    suite : FeatureSuite
        The features; labels index the zero-shot file's classes (the
        ``class_names``), whatever order each split file lists its classes in.

    Raises
    ------
    FileNotFoundError
        When a split file is missing.
    skvrf.io.FeatureFileError
        When a file lacks a key, or a split holds a label the zero-shot file
        has no row for.
    """
    import glob
    import os

    from ..io import FeatureFileError, feature_targets, load_features

    paths = {k: os.path.join(directory, v) for k, v in SPLIT_FILES.items()}
    zs = load_features(paths["zeroshot"], require=("class_embeddings",))
    emb = zs["class_embeddings"]
    names = zs.get("classes", np.arange(emb.shape[0]))
    index = {label: i for i, label in enumerate(names.tolist())}

    def split(path):
        data = load_features(path)
        y = feature_targets(data).tolist()
        unknown = sorted({v for v in y if v not in index}, key=str)
        if unknown:
            raise FeatureFileError(
                f"{path}: labels {unknown[:6]} have no row in {paths['zeroshot']}."
            )
        return data["features"], np.array([index[v] for v in y], dtype=np.int64)

    shifts = {}
    for path in sorted(glob.glob(os.path.join(directory, "ood-*.npz"))):
        shifts[os.path.basename(path)[len("ood-") : -len(".npz")]] = split(path)
    return FeatureSuite(
        class_embeddings=emb,
        train=split(paths["train"]),
        validation=split(paths["validation"]),
        test=split(paths["test"]),
        shifts=shifts,
        class_names=[str(n) for n in names.tolist()],
        name=os.fspath(directory),
    )
