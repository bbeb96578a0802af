"""Metamorphic tests of the command line: what users vary in their files must not
change what ``skvrf evaluate``, ``skvrf fit`` and ``skvrf predict`` answer.

Each generated case writes small feature files (numpy, a fixed seed per case) and
runs the command line in process, through :func:`skvrf.cli.main`:

1. Permuting the zero-shot file's class order, its ``class_embeddings`` rows
   with its ``classes`` (ImageNet's class order is not sorted), leaves every
   accuracy of ``evaluate`` (every method on the ID, shifted, class-subset and
   pooled sets), its selection (C, alpha, k, threshold, temperature) and the
   predictions of ``fit`` + ``predict`` unchanged.
2. Relabelling the classes by a bijection, integer labels to class names or
   class names to other class names, in another sorted order, with every file
   listing its ``classes`` in its own order, leaves them unchanged too, the
   predictions mapped back through the bijection and the probabilities equal up
   to the column permutation the new sorted order implies.

The fine-tuned component is a LogisticRegression fitted by the command (``--C``
chosen on ``--val``) in even cases and a fixed linear head file (``--head``,
rows permuted with the zero-shot file's) in odd ones. Six generated cases
(``N_CASES``): 3 to 5 classes, integer labels without ``classes`` or class names,
a random permutation and a random bijection each; per case 3 ``evaluate`` runs
and 5 ``fit`` runs (VRF on each variant, OSE or the entropy ensemble on the base
and relabelled files), each followed by 2 ``predict`` runs (the ID test set and a
pooled, class-mapped set).

Tolerances: accuracies and choices compare exactly. Probabilities compare at
1e-6: a relabelling changes the order in which LogisticRegression's solver and
the temperature fit sum over classes, which moves the fitted values by round-off
amplified by the solvers' stopping tolerances (LogisticRegression's ``tol=1e-4``
on the gradient), far below anything that changes a prediction on these data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skvrf.cli import main

N_CASES = 6
N_FEATURES = 6
GRID = ["--ks", "1,3,auto", "--thresholds", "1,1.5", "--temperatures", "0.3,0.6",
        "--alphas", "0,0.3,0.6,1", "--Cs", "0.1,1,10", "--no-plots"]  # fmt: skip
FIT = ["--k", "2", "--threshold", "1.2", "--temperature", "0.5"]
PROBA_ATOL = 1e-6


# ------------------------------------------------------------- generation
def _draw(seed):
    """One case: codes 0..C-1 for every row, and the variants' label sets."""
    rng = np.random.default_rng(1000 + seed)
    n_classes = 3 + seed % 3
    centers = rng.normal(size=(n_classes, N_FEATURES))
    splits = {}
    for name, n, shift, scale in [("train", 150, 0.0, 0.8), ("val", 70, 0.0, 0.8),
                                  ("test", 70, 0.0, 0.8), ("shift", 60, 0.4, 1.0),
                                  ("pooled", 60, 0.3, 0.9)]:  # fmt: skip
        codes = rng.integers(0, n_classes, n)
        X = centers[codes] + shift + rng.normal(scale=scale, size=(n, N_FEATURES))
        splits[name] = (X.astype(np.float32), codes)
    kept = np.sort(rng.choice(n_classes, 2, replace=False))
    codes = rng.choice(kept, 50)
    X = centers[codes] + rng.normal(scale=1.0, size=(50, N_FEATURES))
    splits["subset"] = (X.astype(np.float32), codes)
    # the zero-shot head: noisy class centres (disagrees with the fine-tuned
    # model, so the Zero-Shot Failure set is not empty); the fixed head: centres
    text = centers + rng.normal(scale=0.6, size=centers.shape)
    head = centers + rng.normal(scale=0.3, size=centers.shape)
    groups = np.array(["g0", "g1"])[np.arange(n_classes) % 2]
    base_names = (
        np.arange(n_classes)  # integer labels, files without 'classes'
        if seed % 2 == 0
        else np.array([f"class-{c:02d}" for c in range(n_classes)])
    )
    # a bijection to class names in another sorted order (reversed, then a
    # random permutation: never the identity order)
    words = np.array(["zebra", "yak", "wolf", "vole", "urchin", "tern"])[:n_classes]
    renamed = words[rng.permutation(n_classes)]
    return {
        "seed": seed,
        "n_classes": n_classes,
        "splits": splits,
        "kept": kept,
        "groups": groups,
        "text": text,
        "head": head if seed % 2 == 1 else None,
        "perm": rng.permutation(n_classes),
        "names": {"base": base_names, "renamed": renamed},
        "rng": rng,
    }


def _write(case, d, names, *, zs_order, file_orders):
    """Write one variant's files; ``names[code]`` is a class's label value.

    ``zs_order``: the zero-shot (and head) file's row order, a permutation of
    the codes. ``file_orders``: each split file's own order of its 'classes'
    (None: integer labels without 'classes').
    """
    d.mkdir()
    paths = {}
    for split, (X, codes) in case["splits"].items():
        order = file_orders.get(split)
        path = d / f"{split}.npz"
        arrays = {"features": X}
        if order is None:
            arrays["labels"] = names[codes]
        else:
            position = np.argsort(order)  # code -> index into classes
            arrays["labels"] = position[codes]
            arrays["classes"] = names[order]
        if split == "subset":
            arrays["class_map_kept"] = names[case["kept"][::-1]]
        if split == "pooled":
            # its labels are groups, a label space of their own
            groups = case["groups"]
            arrays["labels"] = np.searchsorted(np.unique(groups), groups[codes])
            arrays["classes"] = np.unique(groups)
            arrays["class_map_source"] = names[zs_order]
            arrays["class_map_target"] = groups[zs_order]
        np.savez(path, **arrays)
        paths[split] = path
    text = {"class_embeddings": case["text"][zs_order]}
    if file_orders.get("train") is not None or not np.array_equal(
        zs_order, np.arange(case["n_classes"])
    ):
        text["classes"] = names[zs_order]
    paths["text"] = d / "text.npz"
    np.savez(paths["text"], **text)
    if case["head"] is not None:
        paths["head"] = d / "head.npz"
        np.savez(
            paths["head"],
            coef=case["head"][zs_order],
            intercept=np.zeros(case["n_classes"]),
            classes=names[zs_order],
        )
    return paths


def _variants(case, root):
    n = case["n_classes"]
    rng = case["rng"]
    identity = np.arange(n)
    base, renamed = case["names"]["base"], case["names"]["renamed"]
    ints = base.dtype.kind in "iu"
    same_order = {s: (None if ints else identity) for s in case["splits"]}
    own_orders = {s: rng.permutation(n) for s in case["splits"]}
    return {
        "base": (base, _write(case, root / "base", base, zs_order=identity,
                              file_orders=same_order)),
        "zs-permuted": (base, _write(case, root / "perm", base,
                                     zs_order=case["perm"], file_orders=same_order)),
        "relabelled": (renamed, _write(case, root / "renamed", renamed,
                                       zs_order=rng.permutation(n),
                                       file_orders=own_orders)),
    }  # fmt: skip


# ---------------------------------------------------------------- running
def _evaluate(paths, out):
    argv = ["evaluate", "--train", str(paths["train"]), "--val", str(paths["val"]),
            "--test", str(paths["test"]), "--ood", f"shift={paths['shift']}",
            "--ood", f"subset={paths['subset']}", "--ood", f"pooled={paths['pooled']}",
            "--zeroshot", str(paths["text"]), "--out", str(out), *GRID]  # fmt: skip
    if "head" in paths:
        argv += ["--head", str(paths["head"])]
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    selection = json.loads((out / "selection.json").read_text())
    selection.pop("selected_on")
    selection.pop("calibration_temperatures")  # compared through the scores
    selection["finetuned"].pop("head", None)
    return report["scores"]["accuracy"], selection


def _fit_predict(paths, out, method):
    model = out / f"{method}.skops"
    argv = ["fit", "--train", str(paths["train"]), "--val", str(paths["val"]),
            "--zeroshot", str(paths["text"]), "--method", method, *FIT,
            "--save", str(model)]  # fmt: skip
    if "head" in paths:
        argv += ["--head", str(paths["head"])]
    assert main(argv) == 0
    results = {}
    for split in ("test", "pooled"):
        pred = out / f"{method}-{split}.npz"
        argv = ["predict", str(model), "--features", str(paths[split]),
                "--out", str(pred)]  # fmt: skip
        assert main(argv) == 0
        with np.load(pred) as p:
            results[split] = {k: p[k] for k in ("predictions", "proba", "classes")}
    return results


@pytest.fixture(scope="module", params=range(N_CASES), ids=lambda s: f"case{s}")
def case(request, tmp_path_factory):
    pytest.importorskip("skops")
    root = tmp_path_factory.mktemp(f"metamorphic-{request.param}")
    case = _draw(request.param)
    case["variants"] = _variants(case, root)
    case["root"] = root
    out = root / "out-base"
    out.mkdir()
    case["base_evaluate"] = _evaluate(case["variants"]["base"][1], out / "evaluate")
    case["base_predict"] = _fit_predict(case["variants"]["base"][1], out, "vrf")
    return case


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("variant", ["zs-permuted", "relabelled"])
def test_evaluate_is_invariant(case, variant):
    """The same accuracies for every method and set, and the same choices."""
    paths = case["variants"][variant][1]
    scores, selection = _evaluate(paths, case["root"] / f"evaluate-{variant}")
    base_scores, base_selection = case["base_evaluate"]
    assert scores == base_scores
    assert selection == base_selection
    # the ensembles did something: the ZSF set is not empty
    assert selection["zsf_size"] > 0


def _code_of(names, labels):
    lookup = {v: i for i, v in enumerate(names.tolist())}
    return np.array([lookup[v] for v in labels.tolist()])


@pytest.mark.parametrize("variant", ["zs-permuted", "relabelled"])
def test_fit_predict_is_invariant(case, variant):
    """Predictions map back through the bijection; proba up to the permutation."""
    names, paths = case["variants"][variant]
    base_names = case["variants"]["base"][0]
    out = case["root"] / f"predict-{variant}"
    out.mkdir()
    results = _fit_predict(paths, out, "vrf")
    for split, got in results.items():
        want = case["base_predict"][split]
        if split == "pooled":
            # the targets are the groups in both; the view lists them in the
            # order of the file's class map, which follows the zero-shot rows
            names_now = names_then = want["classes"]
        else:
            names_now, names_then = names, base_names
        assert_array_equal(
            _code_of(names_now, got["predictions"]),
            _code_of(names_then, want["predictions"]),
        )
        # column j of the variant is the class with code codes[j]
        codes = _code_of(names_now, got["classes"])
        base_codes = _code_of(names_then, want["classes"])
        assert sorted(codes.tolist()) == sorted(base_codes.tolist())
        columns = np.argsort(base_codes)[codes]
        assert_allclose(got["proba"], want["proba"][:, columns], atol=PROBA_ATOL)


def test_fit_predict_baseline_under_relabelling(case):
    """OSE (even cases) and the entropy ensemble (odd) on the relabelled files."""
    method = ("ose", "entropy")[case["seed"] % 2]
    base = _fit_predict(case["variants"]["base"][1], case["root"] / "out-base", method)
    names, paths = case["variants"]["relabelled"]
    out = case["root"] / f"baseline-{method}"
    out.mkdir()
    got = _fit_predict(paths, out, method)
    base_names = case["variants"]["base"][0]
    assert_array_equal(
        _code_of(names, got["test"]["predictions"]),
        _code_of(base_names, base["test"]["predictions"]),
    )
    assert_array_equal(got["pooled"]["predictions"], base["pooled"]["predictions"])
