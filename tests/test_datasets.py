"""Tests for the embedded benchmarks: WordNet noun and verb supersenses."""

import gzip
import subprocess
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from skvrf.datasets import load_wordnet_supersenses

ID_SPLITS = ("train", "validation", "test")
SHIFTS = ("webster", "subpopulation", "lemma")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return load_wordnet_supersenses()


def _all_splits(data):
    return {**{s: data[s] for s in ID_SPLITS}, **data.shifts}


def test_bunch_fields_and_shapes(data):
    assert set(SHIFTS) == set(data.shifts)
    n_classes = len(data.target_names)
    assert 10 <= n_classes <= 15
    assert all(name.startswith("noun.") for name in data.target_names)
    assert len(data.class_descriptions) == n_classes
    assert all(
        d and all(isinstance(x, str) and x for x in d) for d in data.class_descriptions
    )
    assert "WordNet" in data.DESCR and "1913" in data.DESCR
    for name, split in _all_splits(data).items():
        n = len(split.texts)
        assert n > 0, name
        assert len(split.lemmas) == n
        assert split.target.shape == (n,)
        assert split.target.dtype.kind == "i"
        assert split.target.min() >= 0 and split.target.max() < n_classes
        assert all(isinstance(t, str) and t for t in split.texts)
    assert len(data.shifts["subpopulation"].groups) == len(
        data.shifts["subpopulation"].texts
    )


def test_sizes_fit_the_demo_budget(data):
    total = sum(len(s.texts) for s in _all_splits(data).values())
    assert 8_000 <= total <= 16_000, total


def test_class_balance(data):
    n_classes = len(data.target_names)
    for name in (*ID_SPLITS, "webster", "lemma"):
        counts = np.bincount(
            data[name].target if name in ID_SPLITS else data.shifts[name].target,
            minlength=n_classes,
        )
        # every class present; the smallest class at least ~20 % of the largest
        assert counts.min() >= 0.2 * counts.max(), (name, counts)
    train = np.bincount(data.train.target, minlength=n_classes)
    assert train.min() >= 200, train


def test_text_format(data):
    for split in (
        data.train,
        data.test,
        data.shifts["webster"],
        data.shifts["subpopulation"],
    ):
        for text, lemma in zip(split.texts, split.lemmas):
            assert text.startswith(f"{lemma}: "), text
            assert len(text) > len(lemma) + 5
    lemma_shift = data.shifts["lemma"]
    assert lemma_shift.texts == lemma_shift.lemmas


def test_splits_are_disjoint_by_lemma(data):
    lemmas = {
        name: {w.lower() for w in s.lemmas} for name, s in _all_splits(data).items()
    }
    for i, a in enumerate(ID_SPLITS):
        for b in ID_SPLITS[i + 1 :]:
            assert not lemmas[a] & lemmas[b], (a, b)
    id_lemmas = set().union(*(lemmas[s] for s in ID_SPLITS))
    for shift in SHIFTS:
        assert not lemmas[shift] & lemmas["train"], shift
        assert not lemmas[shift] & id_lemmas, shift


def test_no_duplicate_texts_across_id_splits(data):
    seen = Counter(t for s in ID_SPLITS for t in data[s].texts)
    assert max(seen.values()) == 1


def test_webster_and_lemma_shifts_share_lemmas(data):
    web, lem = data.shifts["webster"], data.shifts["lemma"]
    assert web.lemmas == lem.lemmas
    np.testing.assert_array_equal(web.target, lem.target)


def test_webster_definitions_differ_from_wordnet(data):
    id_texts = {t for s in ID_SPLITS for t in data[s].texts}
    assert not id_texts & set(data.shifts["webster"].texts)


def test_subpopulation_groups_absent_from_id(data):
    sub = data.shifts["subpopulation"]
    groups = Counter(sub.groups)
    assert len(groups) >= 4
    # each group stays in its own class
    for g in groups:
        cls = g.split("/")[0]
        idx = data.target_names.index(cls)
        assert all(t == idx for t, gg in zip(sub.target, sub.groups) if gg == g)
    id_texts = {t for s in ID_SPLITS for t in data[s].texts}
    assert not id_texts & set(sub.texts)


def test_return_X_y(data):
    texts, y = load_wordnet_supersenses(return_X_y=True)
    assert texts == data.train.texts
    np.testing.assert_array_equal(y, data.train.target)


def _assert_same_splits(a, b):
    """Every split and shift of two loads holds the same texts and targets."""
    splits_b = _all_splits(b)
    assert set(_all_splits(a)) == set(splits_b)
    for name, split in _all_splits(a).items():
        assert split.texts == splits_b[name].texts
        np.testing.assert_array_equal(split.target, splits_b[name].target)


def test_deterministic_loading(data):
    _assert_same_splits(data, load_wordnet_supersenses())


def test_data_file_is_small():
    # the installed package's copy: the data must ship inside the package
    path = Path(
        resources.files("skvrf.datasets") / "data" / "wordnet_supersenses.json.gz"
    )
    assert path.stat().st_size < 3_000_000
    assert (path.parent / "LICENSE-DATA.txt").exists()


def _build_case(script, data_file, *debian_files, same_bytes=False):
    """A parameter of the build-script test, skipped without its inputs
    (``same_bytes``: the gzip file itself, not only its content, is reproduced)."""
    present = (REPO / "tools" / script).exists() and all(
        Path(f).exists() for f in debian_files
    )
    return pytest.param(
        script,
        data_file,
        same_bytes,
        marks=pytest.mark.skipif(
            not present, reason="needs Debian packages wordnet-base and dict-gcide"
        ),
        id=data_file.split(".")[0],
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, data_file, same_bytes",
    [
        _build_case(
            "build_wordnet_supersenses.py",
            "wordnet_supersenses.json.gz",
            "/usr/share/wordnet/data.noun",
            "/usr/share/dictd/gcide.index",
        ),
        _build_case(
            "build_wordnet_verbs.py",
            "wordnet_verbs.json.gz",
            "/usr/share/wordnet/data.verb",
            "/usr/share/man/man5/lexnames.5WN.gz",
            "/usr/share/dictd/gcide.index",
            same_bytes=True,
        ),
    ],
)
def test_build_script_reproduces_shipped_file(tmp_path, script, data_file, same_bytes):
    out = tmp_path / data_file
    subprocess.run(
        [sys.executable, str(REPO / "tools" / script), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    shipped = REPO / "skvrf" / "datasets" / "data" / data_file
    with gzip.open(out) as a, gzip.open(shipped) as b:
        assert a.read() == b.read()
    if same_bytes:
        assert out.read_bytes() == shipped.read_bytes()


def test_import_does_not_import_torch():
    code = "import sys, skvrf.datasets, skvrf.minilm; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------- WordNet verb supersenses
VERB_SHIFTS = ("usage", "webster", "subpopulation")


@pytest.fixture(scope="module")
def verbs():
    from skvrf.datasets import load_wordnet_verbs

    return load_wordnet_verbs()


def test_verbs_fields_shapes_and_classes(verbs):
    assert tuple(verbs.shifts) == VERB_SHIFTS
    assert len(verbs.target_names) == 14
    assert verbs.target_names == sorted(verbs.target_names)
    assert all(name.startswith("verb.") for name in verbs.target_names)
    assert "verb.weather" not in verbs.target_names  # 81 synsets < 200
    # WordNet's own lexnames(5WN) descriptions, one per class, verbatim
    descriptions = dict(zip(verbs.target_names, verbs.class_descriptions))
    assert descriptions["verb.motion"] == ["verbs of walking, flying, swimming"]
    assert descriptions["verb.consumption"] == ["verbs of eating and drinking"]
    assert all(
        len(d) == 1 and d[0].startswith("verbs of") for d in descriptions.values()
    )
    assert "lexnames" in verbs.DESCR and "1913" in verbs.DESCR
    sizes = {}
    for name, split in _all_splits(verbs).items():
        n = sizes[name] = len(split.texts)
        assert len(split.lemmas) == n and split.target.shape == (n,)
        assert split.target.dtype.kind == "i"
        assert 0 <= split.target.min() and split.target.max() < 14
        # every class is present in every split
        assert len(np.unique(split.target)) == 14, name
    assert sizes == {"train": 3033, "validation": 753, "test": 1347, "usage": 1171,
                     "webster": 275, "subpopulation": 993}  # fmt: skip
    sub = verbs.shifts["subpopulation"]
    assert len(sub.groups) == len(sub.texts)
    assert {g.split("/")[0] for g in sub.groups} == set(verbs.target_names)


def test_verbs_text_format(verbs):
    for name, split in _all_splits(verbs).items():
        for text, lemma in zip(split.texts, split.lemmas):
            assert text.startswith(f"{lemma}: "), (name, text)
    # ID glosses carry no usage example; the usage shift is one
    assert not any('"' in t for s in ID_SPLITS for t in verbs[s].texts)


def test_verbs_splits_are_disjoint_by_lemma(verbs):
    lemmas = {s: set(verbs[s].lemmas) for s in ID_SPLITS}
    lemmas.update({s: set(verbs.shifts[s].lemmas) for s in VERB_SHIFTS})
    id_lemmas = lemmas["train"] | lemmas["validation"] | lemmas["test"]
    assert not lemmas["train"] & lemmas["validation"]
    assert not (lemmas["train"] | lemmas["validation"]) & lemmas["test"]
    for shift in VERB_SHIFTS:
        assert not lemmas[shift] & id_lemmas, shift
    # webster defines a subset of the usage shift's held-out lemmas
    assert lemmas["webster"] <= lemmas["usage"]
    assert not lemmas["usage"] & lemmas["subpopulation"]


def test_verbs_deterministic_and_return_X_y(verbs):
    from skvrf.datasets import load_wordnet_verbs

    _assert_same_splits(verbs, load_wordnet_verbs())
    texts, y = load_wordnet_verbs(return_X_y=True)
    assert texts == verbs.train.texts
    np.testing.assert_array_equal(y, verbs.train.target)


def test_verbs_data_file_is_small():
    path = Path(resources.files("skvrf.datasets") / "data" / "wordnet_verbs.json.gz")
    assert path.stat().st_size < 1_000_000
    assert (path.parent / "LICENSE-wordnet_verbs.txt").exists()


def test_benchmark_registry():
    import skvrf.datasets as datasets
    from skvrf.datasets import BENCHMARKS, benchmark_feature_suite

    assert {"wordnet-supersenses", "wordnet-verbs"} <= set(BENCHMARKS)
    for entry in BENCHMARKS.values():
        assert callable(getattr(datasets, entry["loader"]))
        assert entry["title"]
    with pytest.raises(ValueError, match=r"unknown benchmark 'nope'.*wordnet-verbs"):
        benchmark_feature_suite("nope")
