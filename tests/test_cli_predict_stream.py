"""``skvrf predict --features STORE --out DIR``: streamed, resumable, one pass.

Parquet shards aligned with the input shards; a run killed with SIGKILL resumes
at the first unfinished shard and ends with the files of an uninterrupted run;
labels, probabilities, w(x) and d(x) from one neighbour search per chunk.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.linear_model import LogisticRegression

from skvrf import (
    OutputSpaceEnsembleClassifier,
    VRFEnsembleClassifier,
    ZeroShotClassifier,
)
from skvrf.cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("skops")

CLASSES = np.array(["ant", "bee", "cat", "dog"])
SHARDS = [40, 33, 1, 52, 27]
D = 8
# Tolerances from the arithmetic. d(x) = 2 - 2 q.b comes from float32 dot
# products of unit rows of D features, each within D u of the exact value
# (u = 2**-24), and the rounding changes with the chunking (16-row chunks here,
# all rows at once in the in-memory reference): |dd| <= 2 * 2 D u. The sigmoid
# weight moves by at most |dd| / (4 temperature), temperature 0.2, and a
# probability-mixed P by at most as much as the weight. The files hold float32:
# one more rounding, at most u relative to a value <= 4.
U = 2.0**-24
D_ATOL = 2 * 2 * D * U + 4 * U
P_ATOL = 2 * 2 * D * U / (4 * 0.2) + U


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from skvrf.persistence import save_model

    d = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, D))

    def rows(n):
        y = rng.integers(0, 4, n)
        X = centers[y] + rng.normal(scale=0.9, size=(n, D))
        return X.astype(np.float32), CLASSES[y]

    X, y = rows(400)
    zs = ZeroShotClassifier(centers + rng.normal(scale=0.7, size=centers.shape),
                            classes=CLASSES)  # fmt: skip
    vrf = VRFEnsembleClassifier(zs, LogisticRegression(), threshold=0.6,
                                temperature=0.2, random_state=0).fit(X, y)  # fmt: skip
    save_model(vrf, d / "vrf.skops")
    ose = OutputSpaceEnsembleClassifier(zs, LogisticRegression()).fit(X, y)
    save_model(ose, d / "ose.skops")
    root = d / "cr"
    os.makedirs(root / "img_emb")
    os.makedirs(root / "metadata")
    Xs, ys, keys = [], [], []
    for n, size in enumerate(SHARDS):
        Xn, yn = rows(size)
        k = [f"{n:03d}{i:05d}" for i in range(size)]
        np.save(root / "img_emb" / f"img_emb_{n}.npy", Xn.astype(np.float16))
        pq.write_table(pa.table({"key": k, "label": yn.tolist()}),
                       root / "metadata" / f"metadata_{n}.parquet")  # fmt: skip
        Xs.append(Xn.astype(np.float16).astype(np.float32)), ys.append(yn)
        keys += k
    return {"dir": d, "vrf": vrf, "store": root, "X": np.concatenate(Xs),
            "y": np.concatenate(ys), "keys": np.array(keys)}  # fmt: skip


def _argv(setup, out, *extra, model="vrf.skops"):
    return ["predict", str(setup["dir"] / model), "--features", str(setup["store"]),
            "--out", str(out), "--chunk-rows", "16", *extra]  # fmt: skip


def _read(out):
    names = sorted(n for n in os.listdir(out) if n.endswith(".parquet"))
    return names, [pq.read_table(out / n) for n in names]


def test_stream_writes_aligned_parquet_shards(setup, tmp_path, capsys):
    out = tmp_path / "pred"
    argv = _argv(setup, out, "--top-k", "3", "--weights", "--distances")
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "5 Parquet shard(s)" in err and "accuracy" in err
    assert "shard 5/5" in err and "row" in err  # the progress bar
    names, tables = _read(out)
    assert names == [f"img_emb_{n}.parquet" for n in range(5)]
    assert [t.num_rows for t in tables] == SHARDS  # aligned with the input
    table = pa.concat_tables(tables)
    assert table.column_names == [
        "key", "prediction", "top1_class", "top1_proba", "top2_class",
        "top2_proba", "top3_class", "top3_proba", "weight", "distance",
    ]  # fmt: skip
    vrf, X = setup["vrf"], setup["X"]
    assert_array_equal(table["key"].to_numpy(), setup["keys"])
    assert_array_equal(table["prediction"].to_numpy(zero_copy_only=False),
                       vrf.predict(X))  # fmt: skip
    assert_array_equal(table["top1_class"], table["prediction"])
    proba = vrf.predict_proba(X)
    top = np.sort(proba, axis=1)[:, ::-1][:, :3]
    got = np.column_stack([table[f"top{i}_proba"].to_numpy() for i in (1, 2, 3)])
    assert_allclose(got, top, rtol=0, atol=P_ATOL)
    second = np.argsort(-proba, axis=1, kind="stable")[:, 1]
    assert_array_equal(table["top2_class"].to_numpy(zero_copy_only=False),
                       vrf.classes_[second])  # fmt: skip
    assert_allclose(table["weight"].to_numpy(), vrf.ensemble_weights(X),
                    rtol=0, atol=P_ATOL)  # fmt: skip
    assert_allclose(table["distance"].to_numpy(), vrf.zsf_distances(X),
                    rtol=0, atol=D_ATOL)  # fmt: skip
    manifest = json.loads((out / "_skvrf_predict.json").read_text())
    assert manifest["complete"] and manifest["model"].startswith("sha256:")
    # files get the user's usual permissions (umask), not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    assert (out / names[0]).stat().st_mode & 0o777 == 0o666 & ~umask


def test_killed_run_resumes_to_the_same_files(setup, tmp_path):
    """SIGKILL in the middle of a shard; the rerun keeps the finished shards."""
    full = tmp_path / "full"
    assert main(_argv(setup, full, "--weights", "--quiet")) == 0
    out = tmp_path / "killed"
    argv = _argv(setup, out, "--weights", "--quiet")
    script = textwrap.dedent(f"""
        import time
        import skvrf.stores._predict as p
        p._after_chunk = lambda shard, rows: time.sleep(0.15)
        from skvrf.cli import main
        main({argv!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = [n for n in os.listdir(out)] if out.exists() else []
            if len([n for n in done if n.endswith(".parquet")]) >= 2 and any(
                n.endswith(".tmp") for n in done
            ):
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    left = sorted(os.listdir(out))
    finished = [n for n in left if n.endswith(".parquet")]
    assert 2 <= len(finished) < len(SHARDS)
    assert any(n.endswith(".parquet.tmp") for n in left)  # the shard it was in
    inodes = {n: (out / n).stat().st_ino for n in finished}
    assert main(argv) == 0
    names, tables = _read(out)
    assert names == _read(full)[0]
    for a, b in zip(tables, _read(full)[1]):
        assert a.equals(b)
    assert {n: (out / n).stat().st_ino for n in finished} == inodes  # kept
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


def test_working_memory_is_recorded_and_keeps_the_answers(setup, tmp_path):
    assert main(_argv(setup, tmp_path / "a", "--weights", "--quiet")) == 0
    argv = _argv(setup, tmp_path / "b", "--weights", "--quiet", "--working-memory", "1")
    assert main(argv) == 0
    a = pa.concat_tables(_read(tmp_path / "a")[1])
    b = pa.concat_tables(_read(tmp_path / "b")[1])
    assert a["prediction"].equals(b["prediction"])
    assert_allclose(a["weight"].to_numpy(), b["weight"].to_numpy(), rtol=0,
                    atol=P_ATOL)  # fmt: skip
    manifest = json.loads((tmp_path / "b" / "_skvrf_predict.json").read_text())
    assert manifest["columns"]["working_memory"] == 1  # a resume must match it


def test_another_runs_folder_is_refused(setup, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(_argv(setup, out, "--quiet")) == 0
    assert main(_argv(setup, out, "--quiet", "--top-k", "2")) == 2
    assert "another run" in capsys.readouterr().err
    assert main(_argv(setup, out, "--quiet", "--top-k", "2", "--overwrite")) == 0
    assert "top2_class" in _read(out)[1][0].column_names


def test_weights_need_a_vrf(setup, tmp_path, capsys):
    argv = _argv(setup, tmp_path / "p", "--weights", model="ose.skops")
    assert main(argv) == 2
    assert "w(x)" in capsys.readouterr().err
    assert main(_argv(setup, tmp_path / "q", "--quiet", model="ose.skops")) == 0


def test_store_to_npz_keeps_the_single_file_output(setup, tmp_path):
    out = tmp_path / "p.npz"
    assert main(_argv(setup, out)) == 0
    vrf, X = setup["vrf"], setup["X"]
    with np.load(out) as p:
        assert_array_equal(p["predictions"], vrf.predict(X))
        assert_allclose(p["proba"], vrf.predict_proba(X), rtol=0, atol=0)
        assert_allclose(p["weights"], vrf.ensemble_weights(X), rtol=0, atol=0)
        assert_array_equal(p["classes"], vrf.classes_)


def test_one_neighbour_search_per_chunk(setup, tmp_path, monkeypatch):
    """Labels, probabilities, w(x) and d(x) from one search (was three)."""
    import skvrf._vrf

    calls = []
    real = skvrf._vrf.kth_neighbor_distances

    def counting(Q, *args, **kwargs):
        calls.append(Q.shape[0])
        return real(Q, *args, **kwargs)

    monkeypatch.setattr(skvrf._vrf, "kth_neighbor_distances", counting)
    features = tmp_path / "f.npz"
    np.savez(features, features=setup["X"], labels=setup["y"])
    argv = ["predict", str(setup["dir"] / "vrf.skops"), "--features",
            str(features), "--out", str(tmp_path / "p.npz")]  # fmt: skip
    assert main(argv) == 0
    assert calls == [setup["X"].shape[0]]  # one search over every row, once
    calls.clear()
    assert main(_argv(setup, tmp_path / "dir", "--weights", "--distances",
                      "--quiet")) == 0  # fmt: skip
    assert sum(calls) == setup["X"].shape[0]  # each row searched once


def test_user_file_mode_is_what_open_gives(tmp_path):
    from skvrf.commands._common import user_file_mode

    (tmp_path / "plain").write_text("x")
    assert user_file_mode() == (tmp_path / "plain").stat().st_mode & 0o777


def test_fit_reads_a_store_path(setup, tmp_path):
    """--train / --val take stores too (read whole, labels from 'label')."""
    vrf = setup["vrf"]
    text = tmp_path / "text.npz"
    zs = vrf.zeroshot_estimator_
    np.savez(text, class_embeddings=zs.class_embeddings, classes=zs.classes_)
    model = tmp_path / "m.skops"
    argv = ["fit", "--train", str(setup["store"]), "--val", str(setup["store"]),
            "--zeroshot", str(text), "--threshold", "0.6",
            "--save", str(model)]  # fmt: skip
    assert main(argv) == 0
    from skvrf.persistence import load_model

    est = load_model(model)
    assert_array_equal(est.classes_, CLASSES)
    assert est.n_features_in_ == D
    argv[2] = str(tmp_path / "nowhere")
    assert main(argv) == 2


def test_unsorted_class_names_and_a_label_the_model_lacks(tmp_path):
    """Zero-shot rows in an unsorted class order ("zebra" first) and a store
    label no component knows ("owl", counted as unknown): the written classes
    are the model's, in predict's order (ties: see test_stores)."""
    import pyarrow.parquet as pq

    from skvrf.io import open_store
    from skvrf.stores import predict_store

    rng = np.random.default_rng(3)
    names = np.array(["zebra", "ant", "yak", "cat"])
    centers = rng.normal(size=(4, D))
    y_idx = rng.integers(0, 4, 300)
    X = (centers[y_idx] + rng.normal(scale=0.9, size=(300, D))).astype(np.float32)
    zs = ZeroShotClassifier(centers + rng.normal(scale=0.7, size=centers.shape),
                            classes=names)  # fmt: skip
    vrf = VRFEnsembleClassifier(zs, LogisticRegression(), threshold=0.6,
                                temperature=0.2).fit(X, names[y_idx])  # fmt: skip
    labels = names[y_idx].astype(object)
    labels[::7] = "owl"
    np.savez(tmp_path / "f.npz", features=X, labels=labels.astype(str))
    store = open_store(tmp_path / "f.npz", chunk_rows=64)
    summary = predict_store(vrf, store, tmp_path / "out", top_k=4, weights=True,
                            progress=False)  # fmt: skip
    (name,) = [f for f in os.listdir(tmp_path / "out") if f.endswith(".parquet")]
    table = pq.read_table(tmp_path / "out" / name)
    pred = vrf.predict(X)
    assert_array_equal(table["prediction"].to_pylist(), pred)
    assert_array_equal(table["top1_class"].to_pylist(), pred)
    order = np.argsort(-vrf.predict_proba(X), axis=1, kind="stable")
    for i in range(4):
        assert_array_equal(table[f"top{i + 1}_class"].to_pylist(),
                           vrf.classes_[order[:, i]])  # fmt: skip
    assert_allclose(table["weight"], vrf.ensemble_weights(X), rtol=0, atol=P_ATOL)
    assert summary["unknown"] == int(np.sum(labels == "owl"))
    assert summary["correct"] == int(np.sum(pred == labels))
