"""Helpers shared by the feature-file subcommands."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

import numpy as np

from .._labels import check_label_kinds
from ..io import (
    FeatureFileError,
    feature_class_map,
    feature_targets,
    load_features,
    load_linear_head_file,
    load_zeroshot_head,
)

FEATURE_FILE_HELP = """\
Feature files are .npz archives, one per split, as written by 'skvrf embed':
'features' (n, d) and 'labels' (n,); with 'classes' (n_classes,) in the file,
'labels' are indices into it and a row's label is classes[labels] (class names);
without, the integer 'labels' are the labels. Files are matched by label value,
so each file may list its 'classes' in its own order. The zero-shot file
(--zeroshot) holds 'class_embeddings' (n_classes, d), optionally 'classes'
(n_classes,), the label of each row, in any order (e.g. ImageNet's index order),
and 'logit_scale' (default 100). Without 'classes', row i of 'class_embeddings'
is the class that label index i stands for: the training file's classes[i], or
the integer i when the training file has no 'classes' either. All labels must be
of one kind: class names (strings) everywhere, or numbers everywhere (1 and 1.0
are the same label); mixing them is an error."""

_KIND_HINT = (
    " A feature file's integer 'labels' are the labels themselves unless the file "
    "has 'classes' (the class names they index); give every file 'classes', or "
    "none of them."
)

#: LogisticRegression C candidates chosen from on --val (10**-2 .. 10**2).
DEFAULT_CS = (0.01, 0.1, 1.0, 10.0, 100.0)

#: Suffixes of single files that are feature stores rather than .npz files.
_STORE_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".ipc", ".pt")

STORE_HELP = """\
Every option that takes a feature file also takes a feature store: a
clip-retrieval / embedding-reader folder (img_emb/img_emb_{N}.npy with
metadata/metadata_{N}.parquet), a CLIP_benchmark cache file
(features_{split}.pt with targets_{split}.pt), or Parquet / Arrow files (or a
folder of them) with an embedding column; labels come from the column named by
--label-column (default 'label' where there is one)."""


def add_store_arguments(parser, *, embedding=False):
    """Add ``--label-column`` (and the other store options) to a parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        A subcommand's parser.
    embedding : bool, default=False
        Also ``--format``, ``--key-column`` and ``--embedding-column``.
    """
    parser.add_argument(
        "--label-column",
        default=None,
        help="feature stores: the metadata / table column of the labels "
        "(default 'label' where there is one)",
    )
    if not embedding:
        return parser
    parser.add_argument(
        "--format",
        default=None,
        choices=("clip_retrieval", "clip_benchmark", "parquet", "arrow", "npz"),
        help="the --features store's format (default: detected)",
    )
    parser.add_argument(
        "--key-column",
        default=None,
        help="feature stores: the column of row keys (default 'key' where there "
        "is one, else shard and row)",
    )
    parser.add_argument(
        "--embedding-column",
        default=None,
        help="Parquet / Arrow stores: the embedding column (default 'embedding', "
        "else the only column of lists of numbers)",
    )
    return parser


def add_clip_benchmark_arguments(parser):
    """Add ``--clip-benchmark-json DIR`` and the fields it needs to a parser.

    See :func:`write_clip_benchmark_results`.
    """
    group = parser.add_argument_group("results in CLIP_benchmark's format")
    group.add_argument(
        "--clip-benchmark-json",
        default=None,
        metavar="DIR",
        help="also write one CLIP_benchmark-style JSON per (dataset, method) to "
        "DIR (acc1, acc5, mean_per_class_recall), for 'clip_benchmark build'",
    )
    group.add_argument(
        "--model-name",
        default="unknown",
        help="the CLIP model of the features, for those files (e.g. ViT-B-16)",
    )
    group.add_argument(
        "--pretrained",
        default="unknown",
        help="its weights, for those files (e.g. openai, laion2b_s34b_b88k)",
    )
    group.add_argument(
        "--id-dataset",
        default="id",
        help="the dataset name of --test in those files (e.g. imagenet1k); "
        "--ood sets keep their names",
    )
    return parser


def write_clip_benchmark_results(args, estimators, test, ood):
    """Write the files of ``--clip-benchmark-json`` (nothing when not given).

    Parameters
    ----------
    args : argparse.Namespace
        With the options of :func:`add_clip_benchmark_arguments`.
    estimators : mapping of str to fitted classifier
        The methods, by name.
    test : tuple
        ``(X, y)`` of the ID test set.
    ood : mapping
        OOD name -> ``(X, y)`` or ``(X, y, class_map)``.

    Returns
    -------
    paths : list of str or None
        The files written.
    """
    from ..stores import write_clip_benchmark_json

    if not getattr(args, "clip_benchmark_json", None):
        return None
    paths = write_clip_benchmark_json(
        args.clip_benchmark_json,
        estimators,
        test,
        ood,
        model=args.model_name,
        pretrained=args.pretrained,
        id_dataset=args.id_dataset,
    )
    print(
        f"wrote {len(paths)} CLIP_benchmark result files to {args.clip_benchmark_json}",
        file=sys.stderr,
    )
    return paths


def user_file_mode() -> int:
    """The mode ``open()`` gives a new file: ``0o666`` less the process umask.

    For files first written under ``tempfile.mkstemp`` (mode 0600) and then
    renamed into place: ``os.fchmod(fd, user_file_mode())`` gives them the
    user's usual permissions.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it (and restore it)
    os.umask(mask)
    return 0o666 & ~mask


class UsageError(ValueError):
    """A problem with a command's input; reported without a traceback."""


def report_errors(command, run, args) -> int:
    """``run(args)``, with an input error reported as exit status 2.

    A missing file, a bad value or a missing optional dependency is printed as
    ``skvrf COMMAND: error: ...`` on stderr (as :func:`skvrf.cli.main` does),
    so that the subcommand's ``main`` reports it when called directly too.
    """
    try:
        return run(args)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"skvrf {command}: error: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def atomic_file(path, suffix, mode="wb", encoding=None):
    """A new file that replaces ``path`` only once it is completely written.

    It is written under a temporary name in ``path``'s folder (with the user's
    usual permissions, :func:`user_file_mode`), synced, and renamed onto
    ``path``; on an error the temporary file is removed and ``path`` is left
    as it was.

    Parameters
    ----------
    path : str or path-like
        The final file.
    suffix : str
        Suffix of the temporary name (e.g. ``".npz"``).
    mode : str, default="wb"
        ``open`` mode.
    encoding : str, default=None
        Text encoding (text modes).

    Yields
    ------
    file : file object
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.fchmod(fd, user_file_mode())  # mkstemp's 0600 -> the user's usual mode
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_savez(path, **arrays) -> None:
    """:func:`numpy.savez` of ``arrays`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, ".npz") as f:
        np.savez(f, **arrays)


def is_store_path(path, format=None) -> bool:
    """Whether ``path`` is read as a feature store (not one .npz file).

    A folder, or a file with a store's suffix (.parquet, .arrow, .feather,
    .ipc, .pt), or any path when ``format`` names a store format other than
    ``"npz"``; everything else goes to :func:`skvrf.io.load_features` (and its
    errors for .npy and other files).
    """
    if format is not None:
        return format != "npz"
    path = os.fspath(path)
    return os.path.isdir(path) or path.lower().endswith(_STORE_SUFFIXES)


def read_features(path, *, require=("features", "labels"), label_column=None):
    """:func:`skvrf.io.load_features` for an .npz file, a whole store otherwise.

    A store is read into memory (``features`` and, with labels, ``labels``:
    the label values); a float16 store becomes float32.
    """
    from ..io import open_store

    if not is_store_path(path):
        return load_features(path, require=require)
    store = open_store(path, label_column=label_column)
    if "labels" in require and not store.has_labels:
        raise FeatureFileError(
            f"{os.fspath(path)}: the store has no labels; name the column that "
            "holds them (--label-column)."
        )
    data = store.to_feature_dict()
    if data["features"].dtype == np.float16:
        data["features"] = data["features"].astype(np.float32)
    return data


def ood_spec(text: str) -> tuple[str, str]:
    """argparse type of ``--ood NAME=FILE``."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(
            f"expected NAME=FILE (e.g. sketch=sketch.npz), got {text!r}"
        )
    return name, path


def comma_list(cast):
    """argparse type of a comma-separated list of ``cast`` values."""

    def parse(text: str):
        try:
            return [cast(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return parse


def candidates_or(shorthand):
    """argparse type: the data-driven ``shorthand`` (``quantiles`` /
    ``spread``), or a comma-separated list of floats."""
    floats = comma_list(float)

    def parse(text: str):
        if text.strip() == shorthand:
            return shorthand
        try:
            return floats(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"give {shorthand!r} or comma-separated numbers, got {text!r}"
            ) from None

    return parse


def k_value(text):
    """An int, or one of the strings ``auto`` / ``authors``."""
    if text in ("auto", "authors"):
        return text
    try:
        k = int(text)
    except ValueError:
        raise ValueError(
            f"k must be an int, 'auto' or 'authors', got {text!r}"
        ) from None
    if k < 1:
        raise ValueError(f"k must be positive, got {k}")
    return k


def load_set(path, *, class_map=False, label_column=None):
    """``(X, y)`` (or ``(X, y, class_map)``) of a labelled feature file or store."""
    data = read_features(path, label_column=label_column)
    X, y = data["features"], feature_targets(data)
    if not class_map:
        return X, y
    return X, y, feature_class_map(data, os.fspath(path))


def check_kinds(**label_sets):
    """:func:`skvrf._labels.check_label_kinds` with the command line's hint."""
    try:
        return check_label_kinds(**label_sets)
    except ValueError as exc:
        raise FeatureFileError(f"{exc}{_KIND_HINT}") from exc


def check_set_kinds(name, y, class_map, model_sets):
    """Raise when a labelled set's labels (or class map) mix kinds with the model's.

    Parameters
    ----------
    name : str
        How messages name the set (e.g. ``"--ood sketch (sketch.npz)"``).
    y : ndarray
        The set's label values.
    class_map : list, dict or None
        From :func:`skvrf.io.feature_class_map`: kept model classes (the labels
        are model classes), or target label -> model classes (the labels are
        targets, a label space of their own).
    model_sets : dict
        Named label sets of the model (training labels, component classes).
    """
    if class_map is None:
        check_kinds(**model_sets, **{f"{name} labels": y})
    elif isinstance(class_map, dict):
        sources = np.concatenate([np.asarray(v) for v in class_map.values()])
        check_kinds(**model_sets, **{f"{name} class_map_source": sources})
        check_kinds(
            **{
                f"{name} class_map_target": np.asarray(list(class_map)),
                f"{name} labels": y,
            }
        )
    else:
        check_kinds(
            **model_sets,
            **{f"{name} class_map_kept": np.asarray(class_map), f"{name} labels": y},
        )


def load_components(train_path, zeroshot_path, head_path=None, *, label_column=None):
    """Training data and the zero-shot / fine-tuned components.

    The zero-shot (and head) file's ``classes`` are used as labels, in the file's
    order; the ensembles match columns by label. Without ``classes``, row ``i``
    is the class that label index ``i`` stands for in the training file (its
    ``classes[i]``, or the integer ``i`` when it has no ``classes`` either).

    Returns ``(X, y, zeroshot, head, model_sets)``: ``head`` is the fitted linear
    head read from ``head_path``, or None (the caller fits a classifier);
    ``model_sets`` names each label set of the model, for kind checks.

    Raises
    ------
    FeatureFileError
        When the training labels and a component's classes are of different
        kinds (strings vs numbers), naming both.
    """
    data = read_features(train_path, label_column=label_column)
    X, y = data["features"], feature_targets(data)
    zs, head, model_sets = load_heads(
        train_path,
        y,
        X.shape[1],
        zeroshot_path,
        head_path,
        classes=data.get("classes"),
    )
    return X, y, zs, head, model_sets


def load_head(path, *, default_classes=None):
    """The ``--head`` file: an ``.npz`` head (:func:`skvrf.io.load_linear_head_file`),
    or any other file read as a fine-tuned checkpoint by
    :func:`skvrf.clip.load_linear_head` (safe loading, the ``clip`` extra)."""
    if os.path.isfile(path) and not os.fspath(path).endswith((".npz", ".npy")):
        from ..clip import load_linear_head

        return load_linear_head(path, classes=default_classes)
    return load_linear_head_file(path, default_classes=default_classes)


def load_heads(
    train_path, y, n_features, zeroshot_path, head_path=None, *, classes=None
):
    """The zero-shot head and the ``--head`` (or None), checked against ``--train``.

    The part of :func:`load_components` after the training data is read (a
    streamed store gives only its labels and width). Returns ``(zeroshot, head,
    model_sets)``; ``classes`` is the training file's ``classes``, if any.
    """
    model_sets = {f"the --train labels ({os.fspath(train_path)})": y}
    check_kinds(**model_sets)
    zs = load_zeroshot_head(zeroshot_path, default_classes=classes)
    model_sets[f"the --zeroshot classes ({os.fspath(zeroshot_path)})"] = zs.classes_
    check_kinds(**model_sets)
    _check_dim(zs, n_features, zeroshot_path, train_path)
    head = None
    if head_path is not None:
        head = load_head(head_path, default_classes=classes)
        model_sets[f"the --head classes ({os.fspath(head_path)})"] = head.classes_
        check_kinds(**model_sets)
        _check_dim(head, n_features, head_path, train_path)
    return zs, head, model_sets


def load_evaluation_files(args):
    """Every file of ``skvrf evaluate`` (and ``skvrf demo`` on your files).

    Parameters
    ----------
    args : argparse.Namespace
        With the paths of ``--train``, ``--val``, ``--test``, ``--zeroshot``,
        ``--head`` (or None), each ``--ood NAME=FILE`` as ``(name, path)`` in
        ``args.ood``, and ``--label-column`` (the label column of feature
        stores).

    Returns
    -------
    files : dict
        ``train``, ``val``, ``test``: ``(X, y)``; ``ood``: name -> ``(X, y)`` or
        ``(X, y, class_map)``; ``zeroshot``; ``head`` (or None).

    Raises
    ------
    FeatureFileError
        On a missing key, a bad shape, a feature dimension that differs from the
        training file's, or labels of different kinds (naming both sets).
    """
    train, val, test, ood = args.train, args.val, args.test, args.ood
    label_column = args.label_column
    names = [name for name, _ in ood]
    if len(set(names)) != len(names):
        raise ValueError(f"--ood: set names must be unique, got {names}.")
    X, y, zs, head_est, model_sets = load_components(
        train, args.zeroshot, args.head, label_column=label_column
    )

    def labelled(option, path, class_map):
        Z, z, *cmap = load_set(path, class_map=class_map, label_column=label_column)
        if Z.shape[1] != X.shape[1]:
            raise FeatureFileError(
                f"{os.fspath(path)} has {Z.shape[1]} features but "
                f"{os.fspath(train)} has {X.shape[1]}."
            )
        name = f"the {option} ({os.fspath(path)})"
        check_set_kinds(name, z, cmap[0] if cmap else None, model_sets)
        return (Z, z) if not cmap or cmap[0] is None else (Z, z, cmap[0])

    return {
        "train": (X, y),
        "val": labelled("--val", val, False),
        "test": labelled("--test", test, False),
        "ood": {name: labelled(f"--ood {name}", path, True) for name, path in ood},
        "zeroshot": zs,
        "head": head_est,
    }


def finetuned_component(args, head, train, val, *, max_iter=1000):
    """The fine-tuned component of ``evaluate`` and ``demo``, and its info.

    ``head`` (read from ``--head``) when given, else :func:`fit_finetuned`
    with ``--C`` / ``--Cs``.
    """
    if head is not None:
        return head, {"head": os.fspath(args.head)}
    return fit_finetuned(train, val, C=args.C, Cs=args.Cs, max_iter=max_iter)


# The fine-tuned probe is solved to a tight tolerance, in float64: lbfgs stopped
# at scikit-learn's default tol=1e-4 (66 iterations on the WordNet benchmark)
# lands on coefficients that depend on the BLAS thread count (0.016 apart with
# 1 and 2 threads: test accuracy 86.06 % against 86.15 %, and every ensemble
# built on it moves); at 1e-8 in float64 they agree to 1e-5 (C=10) and the
# predictions are identical.
PROBE_TOL = 1e-8


def probe(C, max_iter=1000):
    """The fine-tuned probe's estimator: a LogisticRegression solved to
    ``PROBE_TOL`` (fit it on float64 features for thread-count-free results).

    Parameters
    ----------
    C : float
        Inverse regularisation strength.
    max_iter : int, default=1000
        lbfgs iterations at most.

    Returns
    -------
    model : LogisticRegression
        Unfitted.
    """
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter, tol=PROBE_TOL)


def fit_finetuned(train, val, *, C=None, Cs=DEFAULT_CS, max_iter=1000):
    """The fine-tuned LogisticRegression, its C chosen on ``val`` unless given.

    Each candidate is fitted on the float64 features to ``PROBE_TOL`` (see
    :func:`probe`), so that the result does not depend on the BLAS thread
    count.

    Parameters
    ----------
    train, val : tuple of (X, y)
        Fitted on ``train``; each candidate scored (accuracy) on ``val``.
    C : float, default=None
        Use this C (no choice).
    Cs : sequence of float, default=DEFAULT_CS
        Candidates, best validation accuracy wins, ties to the smaller C.
    max_iter : int, default=1000
        LogisticRegression's ``max_iter``.

    Returns
    -------
    model : LogisticRegression
        Fitted on ``train``.
    info : dict
        ``C``, ``chosen_on`` (``"--C"`` or ``"--val"``) and, when chosen, the
        validation accuracy of every candidate.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, y = np.asarray(train[0], dtype=np.float64), train[1]

    def fit(c):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return probe(c, max_iter).fit(X, y)

    if C is not None:
        return fit(C), {"C": float(C), "chosen_on": "--C"}
    candidates = sorted(float(c) for c in Cs)
    if not candidates or any(not c > 0 for c in candidates):
        raise ValueError(f"--Cs must be positive numbers, got {list(Cs)}.")
    best, scores = None, {}
    for c in candidates:
        model = fit(c)
        scores[c] = model.score(*val)
        if best is None or scores[c] > scores[best[0]]:
            best = (c, model)
    return best[1], {
        "C": best[0],
        "chosen_on": "--val",
        "val_accuracy": scores[best[0]],
        "val_accuracy_per_C": {f"{c:g}": v for c, v in scores.items()},
    }


def _check_dim(head, n_features, head_path, data_path):
    if head.n_features_in_ != n_features:
        raise FeatureFileError(
            f"{os.fspath(head_path)} has weights for {head.n_features_in_} features "
            f"but {os.fspath(data_path)} has {n_features}."
        )


def check_features(est, X, path):
    """Raise a clear error when ``X`` does not fit a fitted estimator."""
    n = getattr(est, "n_features_in_", None)
    if n is not None and X.shape[1] != n:
        raise FeatureFileError(
            f"{os.fspath(path)} has {X.shape[1]} features but the model expects {n}."
        )


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_outputs(out, report, selection, vrf, test, ood, *, plots=True, title=None):
    """Write report.md, report.json, selection.json and the two plots to ``out``.

    Returns the names of the files written. Plots are skipped (with a message on
    stderr) when matplotlib is missing.
    """
    import json

    os.makedirs(out, exist_ok=True)
    heading = f"# {title}\n\n" if title else ""
    with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
        f.write(heading + report.to_markdown().rstrip("\n") + "\n")
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report.to_dict(), f, indent=2)
    with open(os.path.join(out, "selection.json"), "w", encoding="utf-8") as f:
        json.dump(selection, f, indent=2, default=_json_default)
    written = ["report.md", "report.json", "selection.json"]
    if not plots:
        return written
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        from .._weighting import vrf_weights
        from ..plotting import WeightDisplay
        from ..plotting._robustness import tradeoff_figure
    except ImportError as exc:
        print(f"plots skipped: {exc}", file=sys.stderr)
        return written
    figure = tradeoff_figure(report, title=title)
    figure.savefig(os.path.join(out, "tradeoff.png"), dpi=120, bbox_inches="tight")
    plt.close(figure)
    display = WeightDisplay.from_estimator(vrf, test, ood)
    display.figure_.savefig(
        os.path.join(out, "weights.png"), dpi=120, bbox_inches="tight"
    )
    plt.close(display.figure_)
    # what weights.png shows, as numbers (the documentation quotes them)
    summary = {}
    for name, d in display.distances.items():
        w = vrf_weights(
            d[np.isfinite(d)], display.threshold, display.temperature, display.weighting
        )
        summary[name] = {
            "mean": float(np.mean(w)),
            "min": float(np.min(w)),
            "max": float(np.max(w)),
        }
    with open(os.path.join(out, "weights.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"threshold": display.threshold, "temperature": display.temperature,
             "k": display.k, "weight_of_finetuned": summary},
            f,
            indent=2,
            default=_json_default,
        )  # fmt: skip
    return [*written, "tradeoff.png", "weights.png", "weights.json"]
