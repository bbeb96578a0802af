"""Feature stores: every format reads, in bounded chunks, from files written here.

clip-retrieval / embedding-reader folders (float16 ``.npy`` shards with
row-aligned metadata), CLIP_benchmark caches (``.pt``, ``weights_only``),
Parquet and Arrow files (list and fixed-size-list embedding columns) and
skvrf's ``.npz``; and the errors, which name the file, the shard and the row.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from skvrf.io import FeatureFileError, open_store
from skvrf.stores import StoreChunk, detect_format

try:  # the Parquet, Arrow and metadata tests need pyarrow (the parquet extra)
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:  # the core install: the .npy, .npz and .pt tests still run
    pa = pq = None

needs_arrow = pytest.mark.skipif(pa is None, reason="needs pyarrow (skvrf[parquet])")

RNG = np.random.default_rng(0)
SIZES = {0: 7, 1: 5, 2: 6, 10: 3}  # shard 10 must come after shard 2


def _write_clip_retrieval(root, sizes=SIZES, d=8, metadata=True, dtype=np.float16):
    """A clip-retrieval output folder; returns (X, labels, keys) in store order."""
    os.makedirs(root / "img_emb")
    if metadata:
        os.makedirs(root / "metadata")
    Xs, ys, keys = [], [], []
    for n, size in sizes.items():
        X = RNG.normal(size=(size, d)).astype(dtype)
        y = RNG.choice(["cat", "dog", "eel"], size)
        k = [f"{n:05d}{i:04d}" for i in range(size)]
        np.save(root / "img_emb" / f"img_emb_{n}.npy", X)
        if metadata:
            table = pa.table({"key": k, "caption": ["x"] * size, "species": y})
            pq.write_table(table, root / "metadata" / f"metadata_{n}.parquet")
        Xs.append(X), ys.append(y), keys.extend(k)
    return np.concatenate(Xs), np.concatenate(ys), np.array(keys)


def _concat(store, **kw):
    chunks = list(store.iter_chunks(**kw))
    X = np.concatenate([c.X for c in chunks])
    y = None if chunks[0].y is None else np.concatenate([c.y for c in chunks])
    return chunks, X, y, np.concatenate([c.keys for c in chunks])


# ------------------------------------------------------------ clip-retrieval
@needs_arrow
def test_clip_retrieval_folder(tmp_path):
    X, y, keys = _write_clip_retrieval(tmp_path / "cr")
    store = open_store(tmp_path / "cr", label_column="species", chunk_rows=4)
    assert store.format == "clip_retrieval"
    assert (store.n_rows, store.n_features, store.dtype) == (21, 8, np.float16)
    assert [s.name for s in store.shards] == [
        "img_emb_0", "img_emb_1", "img_emb_2", "img_emb_10"
    ]  # fmt: skip
    assert_array_equal(store.classes, ["cat", "dog", "eel"])
    chunks, X_read, y_read, keys_read = _concat(store)
    assert all(isinstance(c, StoreChunk) for c in chunks)
    # bounded, never across shards, float16 kept
    assert [c.X.shape[0] for c in chunks] == [4, 3, 4, 1, 4, 2, 3]
    assert all(c.X.dtype == np.float16 for c in chunks)
    assert_array_equal(X_read, X)
    assert_array_equal(y_read, y)
    assert_array_equal(keys_read, keys)  # the metadata's key column
    X32, _, _ = store.read(dtype=np.float32)
    assert X32.dtype == np.float32 and np.array_equal(X32, X.astype(np.float32))
    # the embedding folder itself, its sibling metadata/ found
    inner = open_store(tmp_path / "cr" / "img_emb", label_column="species")
    assert inner.n_rows == 21 and inner.key_column == "key"
    # a store is picklable (sent to Dask workers) and holds no open file
    again = pickle.loads(pickle.dumps(store))
    assert_array_equal(_concat(again)[1], X)


def test_clip_retrieval_without_metadata_keys_are_shard_and_row(tmp_path):
    X, _, _ = _write_clip_retrieval(tmp_path / "cr", metadata=False)
    store = open_store(tmp_path / "cr")
    assert not store.has_labels and store.classes is None
    _, X_read, y_read, keys = _concat(store)
    assert y_read is None and np.array_equal(X_read, X)
    assert keys[:2].tolist() == ["img_emb_0:0", "img_emb_0:1"]
    assert keys[-1] == "img_emb_10:2"
    assert len(set(keys.tolist())) == store.n_rows  # unique across the store


@needs_arrow
def test_clip_retrieval_errors_name_file_shard_and_row(tmp_path):
    root = tmp_path / "cr"
    _write_clip_retrieval(root)
    with pytest.raises(FeatureFileError, match=r"no label column 'label_x'.*species"):
        open_store(root, label_column="label_x")
    # a metadata shard with one row too many
    pq.write_table(
        pa.table({"key": ["a"] * 6, "species": ["cat"] * 6}),
        root / "metadata" / "metadata_1.parquet",
    )
    with pytest.raises(FeatureFileError, match=r"metadata_1\.parquet has 6 rows.*5"):
        open_store(root)
    os.unlink(root / "metadata" / "metadata_1.parquet")
    with pytest.raises(FeatureFileError, match=r"no metadata for shard\(s\) \[1\]"):
        open_store(root)

    bad = tmp_path / "bad"
    _write_clip_retrieval(bad, metadata=False)
    X = np.load(bad / "img_emb" / "img_emb_2.npy")
    X[4, 3] = np.nan
    np.save(bad / "img_emb" / "img_emb_2.npy", X)
    store = open_store(bad, chunk_rows=4)
    with pytest.raises(FeatureFileError) as err:
        _concat(store)
    msg = str(err.value)
    assert "img_emb_2.npy" in msg and "'img_emb_2'" in msg and "rows [4]" in msg
    # a truncated shard (a killed writer)
    path = bad / "img_emb" / "img_emb_1.npy"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(FeatureFileError, match=r"img_emb_1\.npy: truncated"):
        open_store(bad)
    # shards of another width
    np.save(path, np.zeros((5, 9), dtype=np.float16))
    with pytest.raises(FeatureFileError, match=r"img_emb_1\.npy: 9 features"):
        open_store(bad)


# ------------------------------------------------------------ CLIP_benchmark
def test_clip_benchmark_cache(tmp_path):
    torch = pytest.importorskip("torch")
    X = RNG.normal(size=(9, 6)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.array([0, 2, 1, 0, 2, 1, 1, 0, 2])
    for split in ("train", "test"):
        torch.save(torch.from_numpy(X), tmp_path / f"features_{split}.pt")
        torch.save(torch.from_numpy(y), tmp_path / f"targets_{split}.pt")
    store = open_store(tmp_path / "features_test.pt", chunk_rows=4)
    assert store.format == "clip_benchmark" and store.label_column == "targets_test.pt"
    assert (store.n_rows, store.n_features) == (9, 6)
    assert_array_equal(store.classes, [0, 1, 2])
    chunks, X_read, y_read, keys = _concat(store)
    assert [c.X.shape[0] for c in chunks] == [4, 4, 1]
    assert_array_equal(X_read, X) and assert_array_equal(y_read, y)
    assert keys[0] == "features_test:0"
    with pytest.raises(FeatureFileError, match="several splits"):
        open_store(tmp_path)
    # float16 caches stay float16
    torch.save(torch.from_numpy(X).half(), tmp_path / "features_val.pt")
    half = open_store(tmp_path / "features_val.pt")
    assert half.dtype == np.float16 and not half.has_labels
    # weights_only: a file that needs code to load is refused, not run
    torch.save({"features": object()}, tmp_path / "features_evil.pt")
    with pytest.raises(FeatureFileError, match="weights_only=True"):
        open_store(tmp_path / "features_evil.pt")


def test_torch_is_imported_only_for_pt_files(tmp_path):
    _write_clip_retrieval(tmp_path / "cr", metadata=False)
    np.savez(tmp_path / "f.npz", features=np.ones((2, 3)), labels=[0, 1])
    code = (
        "import sys\n"
        "from skvrf.io import open_store\n"
        f"for p in [{str(tmp_path / 'cr')!r}, {str(tmp_path / 'f.npz')!r}]:\n"
        "    list(open_store(p).iter_chunks())\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


# --------------------------------------------------------- Parquet / Arrow
def _list_column(X, fixed):
    if fixed:
        return pa.FixedSizeListArray.from_arrays(pa.array(X.ravel()), X.shape[1])
    return pa.array(X.tolist(), type=pa.list_(pa.from_numpy_dtype(X.dtype)))


@needs_arrow
@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_files(tmp_path, fixed):
    folder = tmp_path / "pq"
    folder.mkdir()
    Xs, ys = [], []
    for part, n in enumerate([7, 4]):
        X = RNG.normal(size=(n, 5)).astype(np.float16 if fixed else np.float32)
        y = RNG.integers(0, 3, n)
        vec = _list_column(X, fixed)
        table = pa.table({"id": np.arange(n) + 100 * part, "vec": vec, "target": y})
        pq.write_table(table, folder / f"part-{part}.parquet", row_group_size=3)
        Xs.append(X), ys.append(y)
    store = open_store(folder, label_column="target", key_column="id", chunk_rows=5)
    assert store.format == "parquet" and store.embedding_column == "vec"
    assert store.dtype == (np.float16 if fixed else np.float32)
    chunks, X, y, keys = _concat(store)
    assert [c.X.shape[0] for c in chunks] == [5, 2, 4]  # across row groups
    assert_array_equal(X, np.concatenate(Xs))
    assert_array_equal(y, np.concatenate(ys))
    assert keys.tolist() == [*range(7), *range(100, 104)]
    assert_array_equal(store.classes, np.unique(np.concatenate(ys)))


@needs_arrow
def test_parquet_errors_name_the_row(tmp_path):
    rows = [[1.0, 2.0], [3.0, 4.0], [5.0]]
    pq.write_table(pa.table({"embedding": rows}), tmp_path / "ragged.parquet")
    with pytest.raises(FeatureFileError, match=r"ragged\.parquet.*row 2.*1 values"):
        _concat(open_store(tmp_path / "ragged.parquet"))
    table = pa.table({"a": [[1.0, 2.0]], "b": [[3.0, 4.0]]})
    pq.write_table(table, tmp_path / "two.parquet")
    with pytest.raises(FeatureFileError, match="cannot tell which column"):
        open_store(tmp_path / "two.parquet")
    assert open_store(tmp_path / "two.parquet", embedding_column="b").n_features == 2
    null = pa.table({"embedding": pa.array([[1.0, 2.0], None])})
    pq.write_table(null, tmp_path / "null.parquet")
    with pytest.raises(FeatureFileError, match=r"null\.parquet.*row 1.*null"):
        _concat(open_store(tmp_path / "null.parquet"))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(FeatureFileError, match=r"junk\.parquet: cannot be read"):
        open_store(tmp_path / "junk.parquet")


@needs_arrow
def test_arrow_file_is_memory_mapped(tmp_path):
    X = RNG.normal(size=(10, 4)).astype(np.float16)
    table = pa.table({"embedding": _list_column(X, True), "label": list("abcdeabcde")})
    with pa.ipc.new_file(tmp_path / "f.arrow", table.schema) as writer:
        writer.write_table(table, max_chunksize=4)
    store = open_store(tmp_path / "f.arrow", chunk_rows=4)
    assert store.format == "arrow" and store.dtype == np.float16
    chunks, X_read, y, _ = _concat(store)
    assert_array_equal(X_read, X) and "".join(y) == "abcdeabcde"
    assert not chunks[0].X.flags.owndata  # a view of the mapped file


# ---------------------------------------------------------------------- npz
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_store(tmp_path, compressed):
    X = RNG.normal(size=(11, 3)).astype(np.float32)
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "f.npz", features=X, labels=RNG.integers(0, 2, 11),
         classes=np.array(["no", "yes"]), class_map_kept=np.array(["yes"]))  # fmt: skip
    store = open_store(tmp_path / "f.npz", chunk_rows=4)
    assert store.format == "npz" and store.class_map == ["yes"]
    assert_array_equal(store.classes, ["no", "yes"])
    chunks, X_read, y, keys = _concat(store)
    assert_array_equal(X_read, X) and set(y) <= {"no", "yes"}
    assert keys[0] == "f:0"
    if not compressed:  # memory-mapped, not read whole
        assert not chunks[0].X.flags.owndata


def test_npz_store_keeps_load_features_errors(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    (tmp_path / "x.npz").write_bytes((tmp_path / "x.npy").read_bytes())
    with pytest.raises(FeatureFileError, match=r"single \.npy array, not an \.npz"):
        open_store(tmp_path / "x.npz")
    np.savez(tmp_path / "l.npz", features=np.ones((2, 2)), labels=[0, 5],
             classes=["a", "b"])  # fmt: skip
    with pytest.raises(FeatureFileError, match="indices outside"):
        open_store(tmp_path / "l.npz")


@needs_arrow
def test_detect_format(tmp_path):
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FeatureFileError, match="not a known feature store"):
        detect_format(tmp_path / "notes.txt")
    np.save(tmp_path / "a.npy", np.zeros((2, 2)))
    with pytest.raises(FeatureFileError, match=r"single \.npy array"):
        detect_format(tmp_path / "a.npy")
    pq.write_table(pa.table({"embedding": [[1.0]]}), tmp_path / "data")
    assert detect_format(tmp_path / "data") == "parquet"  # by its first bytes


# ------------------------------------------ results in CLIP_benchmark's format
def _clip_benchmark_build(files):
    """CLIP_benchmark's own ``build`` when it is installed, else the same rows:
    the record, its metrics flattened in, ``model_fullname`` added."""
    import json

    try:
        from clip_benchmark.cli import main_build
    except Exception:  # not installed here (it needs torchvision and more)
        main_build = None
    if main_build is not None:  # pragma: no cover - depends on the environment
        import argparse
        import csv

        out = files[0].parent / "benchmark.csv"
        main_build(argparse.Namespace(files=[str(f) for f in files], output=str(out)))
        with open(out) as f:
            return list(csv.DictReader(f))
    rows = []
    for path in files:
        data = json.loads(path.read_text())
        row = {**data["metrics"], **data}
        del row["metrics"]
        row["model_fullname"] = row["model"] + " " + row["pretrained"]
        rows.append(row)
    return rows


def test_clip_benchmark_json_schema(tmp_path):
    import argparse
    import json

    from sklearn.linear_model import LogisticRegression

    from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
    from skvrf.commands._common import (
        add_clip_benchmark_arguments,
        write_clip_benchmark_results,
    )
    from skvrf.evaluation import evaluate_shifts

    rng = np.random.default_rng(4)
    centers = rng.normal(size=(6, 5))
    names = np.array(list("abcdef"))

    def rows(n, shift=0.0):
        y = rng.integers(0, 6, n)
        return centers[y] + shift + rng.normal(scale=0.9, size=(n, 5)), names[y]

    X, y = rows(300)
    zs = ZeroShotClassifier(centers + rng.normal(scale=0.6, size=centers.shape),
                            classes=names)  # fmt: skip
    zs.fit(X)
    ft = LogisticRegression(max_iter=500).fit(X, y)
    vrf = VRFEnsembleClassifier(zs, ft, threshold=1.0, random_state=0).fit(X, y)
    estimators = {"zero-shot": zs, "fine-tuned": ft, "VRF": vrf}
    test, ood = rows(120), {"shifted": rows(100, 0.5)}
    Xs, ys = rows(80)
    keep = np.isin(ys, ["a", "b", "c"])
    ood["subset"] = (Xs[keep], ys[keep], ["a", "b", "c"])

    parser = add_clip_benchmark_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--clip-benchmark-json", str(tmp_path / "cb"),
                              "--model-name", "ViT-B-16", "--pretrained",
                              "openai", "--id-dataset", "imagenet1k"])  # fmt: skip
    paths = write_clip_benchmark_results(args, estimators, test, ood)
    assert len(paths) == 3 * 3  # (dataset, method) pairs
    files = sorted((tmp_path / "cb").glob("*.json"))
    assert len(files) == 9
    assert (tmp_path / "cb" / "imagenet1k_openai_ViT-B-16_en_VRF.json") in files
    report = evaluate_shifts(estimators, test, ood)
    for path in files:
        data = json.loads(path.read_text())
        assert {"dataset", "model", "pretrained", "task", "metrics"} <= set(data)
        assert set(data["metrics"]) == {"acc1", "acc5", "mean_per_class_recall"}
        assert all(0 <= v <= 1 for v in data["metrics"].values())
        assert data["model"] == "ViT-B-16" and data["pretrained"] == "openai"
        tasks = {"zero-shot": "zeroshot_classification", "fine-tuned": "linear_probe"}
        task = tasks.get(data["method"], "robust_ensemble")
        assert data["task"] == task
        key = "id" if data["dataset"] == "imagenet1k" else data["dataset"]
        acc = report.scores["accuracy"][data["method"]][key]
        assert data["metrics"]["acc1"] == pytest.approx(acc, abs=1e-12)
        assert data["metrics"]["acc5"] >= data["metrics"]["acc1"]
        if data["dataset"] == "subset":  # 3 classes: the top 5 hold them all
            assert data["metrics"]["acc5"] == 1.0
    table = _clip_benchmark_build(files)
    assert len(table) == 9
    assert {r["model_fullname"] for r in table} == {"ViT-B-16 openai"}
    assert {r["dataset"] for r in table} == {"imagenet1k", "shifted", "subset"}
    # nothing is written without the option
    assert write_clip_benchmark_results(parser.parse_args([]), estimators, test,
                                        ood) is None  # fmt: skip


def test_mean_per_class_recall_is_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score

    from skvrf.stores import clip_benchmark_metrics

    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(7), size=200)
    y = rng.integers(0, 7, 200)
    m = clip_benchmark_metrics(y, proba, np.arange(7))
    pred = proba.argmax(axis=1)
    assert m["mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(y, pred))
    top5 = np.argsort(-proba, axis=1)[:, :5]
    assert m["acc5"] == pytest.approx(np.mean((top5 == y[:, None]).any(axis=1)))


def test_top_k_and_metrics_break_ties_as_predict():
    """Tied probabilities (a class map's pooled maxima, underflowed zeros): the
    k columns are the first of the tied ones, as a stable argsort and argmax."""
    from skvrf.evaluation._scorers import top_k
    from skvrf.stores import clip_benchmark_metrics

    rng = np.random.default_rng(0)
    proba = rng.integers(0, 3, size=(300, 9)).astype(np.float32)  # many ties
    for k in (1, 3, 5, 9, 12):
        ref = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        assert_array_equal(top_k(proba, k), ref)
    assert_array_equal(top_k(proba, 1)[:, 0], proba.argmax(axis=1))
    # string labels, not sorted: the metrics follow the columns' order
    classes = np.array(
        ["zebra", "ant", "moose", "cat", "bee", "yak", "elk", "dog", "owl"]
    )
    y = classes[rng.integers(0, 9, 300)]
    m = clip_benchmark_metrics(y, proba, classes)
    col = {c: i for i, c in enumerate(classes)}
    idx = np.array([col[v] for v in y])
    ref = np.argsort(-proba, axis=1, kind="stable")
    assert m["acc1"] == np.mean(ref[:, 0] == idx)
    assert m["acc5"] == np.mean((ref[:, :5] == idx[:, None]).any(axis=1))
    recalls = [np.mean(ref[idx == c, 0] == c) for c in np.unique(idx)]
    assert m["mean_per_class_recall"] == pytest.approx(np.mean(recalls), abs=1e-15)
