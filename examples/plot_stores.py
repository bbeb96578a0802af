"""
Feature stores: fit on a CLIP_benchmark cache, stream predictions over a folder
===============================================================================

CLIP features usually live where other tools wrote them: a clip-retrieval (or
embedding-reader) folder of ``img_emb/img_emb_{N}.npy`` shards in float16 with
``metadata/metadata_{N}.parquet`` beside them, or the ``features_{split}.pt`` /
``targets_{split}.pt`` cache of CLIP_benchmark's linear probe.
:func:`skvrf.io.open_store` reads either, a bounded chunk at a time, and
:func:`skvrf.stores.predict_store` (what ``skvrf predict MODEL --features STORE
--out DIR`` runs) streams a fitted model over a store into one Parquet file per
shard, resumably.

Here both kinds of store are written from generated CLIP-like features: the
training rows as a CLIP_benchmark cache, the rows to label as a clip-retrieval
folder whose first shards are in-distribution and whose last shards come from a
shifted domain.

The features are generated, and the hand-set parameters (``threshold``,
``temperature``, ``k``) suit them for illustration: they are not a recipe for
CLIP features (choose those on validation data: :ref:`tuning`).
"""

# %%
import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from sklearn.linear_model import LogisticRegression

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import make_shifted_features
from skvrf.io import open_store
from skvrf.stores import predict_store

data = make_shifted_features(random_state=0)
root = tempfile.mkdtemp()

# A CLIP_benchmark cache: one tensor of unit-norm features, one of targets.
cache = os.path.join(root, "ViT-B-16-openai-mydata")
os.makedirs(cache)
X_train, y_train = data.train
X_train = X_train / np.linalg.norm(X_train, axis=1, keepdims=True)
torch.save(torch.from_numpy(X_train).float(), os.path.join(cache, "features_train.pt"))
torch.save(torch.from_numpy(y_train), os.path.join(cache, "targets_train.pt"))

# A clip-retrieval folder: float16 shards and their row-aligned metadata.
folder = os.path.join(root, "laion-subset")
os.makedirs(os.path.join(folder, "img_emb"))
os.makedirs(os.path.join(folder, "metadata"))
parts = [("ID", *data.test), ("shifted", *data.shifted)]
shard = 0
for domain, X, y in parts:
    for rows in np.array_split(np.arange(len(y)), 2):
        np.save(
            os.path.join(folder, "img_emb", f"img_emb_{shard}.npy"),
            X[rows].astype(np.float16),
        )
        metadata = pa.table(
            {
                "key": [f"{shard:04d}{i:05d}" for i in range(len(rows))],
                "label": y[rows],
                "domain": [domain] * len(rows),
            }
        )
        pq.write_table(
            metadata, os.path.join(folder, "metadata", f"metadata_{shard}.parquet")
        )
        shard += 1

# %%
# Open both. The format is recognised from the layout
# (:func:`~skvrf.stores.detect_format`; ``format=`` forces one). The cache's
# labels come from its targets file; the folder's from the metadata column
# ``label``, its row keys from ``key``. Features stay float16 until a chunk is
# used. :func:`skvrf.io.open_store` is :func:`skvrf.stores.open_store` with the
# command line's error messages.
from skvrf.stores import default_chunk_rows, detect_format

print(detect_format(cache), detect_format(folder))
train = open_store(os.path.join(cache, "features_train.pt"))
to_label = open_store(folder, label_column="label", chunk_rows=500)
print(train)
print(to_label)

# %%
# Both are :class:`~skvrf.stores.FeatureStore` objects (one subclass per
# format): a list of shards (:class:`~skvrf.stores.Shard`: file, rows, first
# row) read as bounded chunks (:class:`~skvrf.stores.StoreChunk`: ``X``, ``y``,
# ``keys``). Without ``chunk_rows`` a chunk holds about 64 MiB of float32
# features (:func:`~skvrf.stores.default_chunk_rows`).
print(to_label.shards[0])
print("default rows per chunk at 64 features:", default_chunk_rows(64))
for chunk in to_label.iter_chunks(shards=[0]):
    print(chunk.X.dtype, chunk.X.shape, chunk.y[:3], chunk.keys[:3])

# %%
# Fit VRF on the training store (read whole here: it fits in memory), calibrated
# on held-out rows.
X, y, _ = train.read()
zs = ZeroShotClassifier(data.class_embeddings)
params = {"k": 10, "threshold": 1.45, "temperature": 0.05}
vrf = VRFEnsembleClassifier(zs, LogisticRegression(max_iter=2000), **params)
vrf.fit(X, y, X_val=data.validation[0], y_val=data.validation[1])

# %%
# A training store too large to read whole is fitted with
# :func:`~skvrf.stores.fit_store`, chunk by chunk, when both components are used
# as they are (here the probe just fitted, frozen; on ImageNet, the fine-tuned
# model's own head): only per-row summaries and the ZSF bank stay in memory, and
# the result is the model ``fit`` gives on the rows read whole.
from sklearn.frozen import FrozenEstimator

from skvrf.stores import fit_store

np.savez(os.path.join(root, "val.npz"), features=data.validation[0],
         labels=data.validation[1])  # fmt: skip
probe = FrozenEstimator(LogisticRegression(max_iter=2000).fit(X, y))
streamed = fit_store(
    VRFEnsembleClassifier(zs, probe, **params),
    train,
    val_store=open_store(os.path.join(root, "val.npz")),
)
whole = VRFEnsembleClassifier(zs, probe, **params).fit(
    X, y, X_val=data.validation[0], y_val=data.validation[1]
)
difference = streamed.predict_proba(X) - whole.predict_proba(X)
print(f"largest probability difference: {np.abs(difference).max():.1e}")

# %%
# Stream the predictions: one Parquet file per input shard, with VRF's weight
# w(x) of the fine-tuned model and the distance d(x) to the Zero-Shot Failure
# set. Each shard is written under a temporary name and renamed when complete,
# so an interrupted run, started again, goes on at the first unfinished shard.
out = os.path.join(root, "predictions")
summary = predict_store(vrf, to_label, out, top_k=2, weights=True,
                        distances=True, progress=False)  # fmt: skip
print(summary)
print(sorted(os.listdir(out)))

os.remove(os.path.join(out, "img_emb_3.parquet"))  # as if killed in shard 3
again = predict_store(vrf, to_label, out, top_k=2, weights=True,
                      distances=True, progress=False)  # fmt: skip
print(f"resumed: {again['skipped']} shards kept, {again['shards']} predicted again")

# %%
# Without writing files, :func:`~skvrf.stores.predict_chunks` yields the same
# columns chunk by chunk (:class:`~skvrf.stores.PredictionColumns`: the rows,
# the classes, the probabilities, ``w(x)`` and ``d(x)``), one pass of the
# components and one neighbour search per chunk.
from skvrf.stores import predict_chunks

chunk = next(to_label.iter_chunks(shards=[3]))  # rows of the shifted domain
for columns in predict_chunks(vrf, chunk.X.astype(np.float32)):
    print(columns.rows, columns.proba.shape, columns.weights[:3].round(3))

# %%
# CLIP_benchmark-style results
# ----------------------------
# :func:`~skvrf.stores.clip_benchmark_metrics` scores probabilities as
# CLIP_benchmark does (``acc1``, ``acc5``, ``mean_per_class_recall``), and
# :func:`~skvrf.stores.write_clip_benchmark_json` writes one result file per
# method and dataset in its JSON layout (``skvrf evaluate
# --clip-benchmark-json DIR``), so its tables and plots take VRF's rows.
from skvrf.stores import clip_benchmark_metrics, write_clip_benchmark_json

print(clip_benchmark_metrics(data.test[1], vrf.predict_proba(data.test[0]),
                             vrf.classes_))  # fmt: skip
written = write_clip_benchmark_json(
    os.path.join(root, "clip_benchmark"), {"zero-shot": zs.fit(X), "VRF": vrf},
    data.test, {"shifted": data.shifted}, model="ViT-B-16", pretrained="openai",
)  # fmt: skip
print([os.path.basename(p) for p in written])

# %%
# Join the predictions with the store's metadata by key and compare the domains:
# VRF leans on the fine-tuned model in distribution and on the zero-shot model
# under the shift.
import matplotlib.pyplot as plt

pred = pq.read_table(out).to_pandas()
meta = pq.read_table(os.path.join(folder, "metadata")).to_pandas()
table = meta.merge(pred, on="key")
table["correct"] = table["prediction"] == table["label"]
print(table.groupby("domain")[["correct", "weight", "distance"]].mean().round(3))

fig, ax = plt.subplots(figsize=(6, 3.5))
for domain, rows in table.groupby("domain"):
    ax.hist(rows["weight"], bins=30, range=(0, 1), alpha=0.6, label=domain)
ax.set_xlabel("w(x), weight of the fine-tuned model")
ax.set_ylabel("rows")
ax.legend(title="shards")
fig.tight_layout()
plt.show()
