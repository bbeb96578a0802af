"""
Predicting with Dask: lazy predictions, weights and distances, partition by partition
=====================================================================================

:mod:`skvrf.parallel` predicts a fitted model over a ``dask.array`` (or the
feature columns of a ``dask.dataframe``) one partition at a time and returns a
lazy collection of the same partitions: :func:`~skvrf.parallel.predict`,
:func:`~skvrf.parallel.predict_proba`, and VRF's per-sample weight
:func:`~skvrf.parallel.ensemble_weights` and distance
:func:`~skvrf.parallel.zsf_distances`. Here Dask's threaded scheduler runs them
on this machine; with a ``dask.distributed`` client the model is sent to each
worker once (the recipe is at the end). Needs ``python -m pip install -e ".[dask]"``.

The generated features and the hand-set ``threshold`` and ``temperature`` are
for illustration, not a recipe for CLIP features.
"""

# %%
# A fitted VRF and rows to label
# ------------------------------
import dask.array as da
import numpy as np
from sklearn.linear_model import LogisticRegression

from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
from skvrf.datasets import make_shifted_features

data = make_shifted_features(random_state=0)
vrf = VRFEnsembleClassifier(
    ZeroShotClassifier(data.class_embeddings),
    LogisticRegression(max_iter=2000),
    k=10,
    threshold=1.45,
    temperature=0.05,
).fit(*data.train, X_val=data.validation[0], y_val=data.validation[1])

rows = np.vstack([data.test[0], data.shifted[0]])
labels = np.concatenate([data.test[1], data.shifted[1]])
X = da.from_array(rows, chunks=(1_000, -1))  # 1,000 rows per partition
print(X)

# %%
# Lazy until computed
# -------------------
# Each call builds a task graph; ``compute`` runs it. One partition's
# prediction is the model's own on those rows.
from skvrf.parallel import ensemble_weights, predict, predict_proba, zsf_distances

lazy = predict(vrf, X)
print(lazy)
y_pred = lazy.compute(scheduler="threads")
print("same as vrf.predict:", np.array_equal(y_pred, vrf.predict(rows)))
print("accuracy:", float(np.mean(y_pred == labels)))

proba = predict_proba(vrf, X).compute(scheduler="threads")
w = ensemble_weights(vrf, X).compute(scheduler="threads")
d = zsf_distances(vrf, X).compute(scheduler="threads")
print(proba.shape, w.shape, d.shape)

# %%
# The shifted rows lie farther from the ZSF set, so VRF gives the fine-tuned
# model less weight there.
n_id = len(data.test[1])
print(f"mean w(x): ID {w[:n_id].mean():.2f}, shifted {w[n_id:].mean():.2f}")
print(f"mean d(x): ID {d[:n_id].mean():.2f}, shifted {d[n_id:].mean():.2f}")

# %%
# The weights computed partition by partition, as a figure.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
bins = np.linspace(0, 1, 21)
ax.hist(w[:n_id], bins=bins, color="#0072B2", alpha=0.5, label="ID test")
ax.hist(w[n_id:], bins=bins, histtype="step", color="#D55E00", linewidth=2,
        label="shifted")  # fmt: skip
ax.set_xlabel("VRF weight of the fine-tuned model, w(x)")
ax.set_ylabel("rows")
ax.set_title("ensemble_weights over dask partitions")
ax.legend(frameon=False)

# %%
# On a cluster
# ------------
# With a ``dask.distributed`` client (given as ``client=`` or the default one),
# the model and its ZSF bank are scattered to every worker once and each task
# refers to that copy; the command line's ``skvrf predict MODEL --features STORE
# --out DIR --scheduler ADDRESS`` does the same over a feature store, one task
# per shard (see :ref:`scaling`)::
#
#     from distributed import Client
#
#     client = Client("tcp://scheduler:8786")
#     X = da.from_zarr("features.zarr")          # rows x features, on the workers
#     predict(vrf, X, client=client).to_zarr("labels.zarr")
