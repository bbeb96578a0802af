"""
Exact k-th-neighbour distances: the engine behind VRF's d(x)
============================================================

VRF's weight of the fine-tuned model depends on ``d(x)``, the squared L2
distance from a sample's embedding to its ``k``-th nearest row of the Zero-Shot
Failure (ZSF) bank. :func:`skvrf.neighbors.kth_neighbor_distances` computes it
exactly, for several ``k`` at once, in blocks bounded by ``working_memory``;
:func:`skvrf.neighbors.kneighbors` also returns the neighbours' indices. This
example checks both against scikit-learn's brute-force
:class:`~sklearn.neighbors.NearestNeighbors` and times the two (the measured
grid, other backends and the GPU: :ref:`neighbors-benchmark`).
"""

# %%
# A bank of unit vectors and queries
# ----------------------------------
# Rows are L2-normalised with :func:`skvrf.utils.normalize_rows` (as VRF does
# with its bank), so the squared distance is ``2 - 2 cos``.
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from skvrf.neighbors import PreparedBank, kneighbors, kth_neighbor_distances
from skvrf.utils import normalize_rows

rng = np.random.default_rng(0)
bank = normalize_rows(rng.standard_normal((20_000, 256)), dtype=np.float32)
queries = normalize_rows(rng.standard_normal((2_000, 256)), dtype=np.float32)

# %%
# Distances for several k in one pass
# -----------------------------------
start = time.perf_counter()
d = kth_neighbor_distances(queries, bank, k=[1, 5, 20])
t_skvrf = time.perf_counter() - start
print(d.shape, d.dtype)  # one column per k

nn = NearestNeighbors(n_neighbors=20, algorithm="brute").fit(bank)
start = time.perf_counter()
dist, idx = nn.kneighbors(queries)
t_sklearn = time.perf_counter() - start
reference = dist[:, [0, 4, 19]] ** 2
print("largest difference to scikit-learn:", float(np.abs(d - reference).max()))

# %%
# A bank searched many times (a fitted VRF's) can be checked once and, with the
# torch backend, copied to its device once: :class:`~skvrf.neighbors.PreparedBank`.
prepared = PreparedBank(bank)
print(
    "same distances:",
    np.array_equal(kth_neighbor_distances(queries, prepared, k=[1, 5, 20]), d),
)
print(f"time: skvrf {t_skvrf:.2f} s, scikit-learn {t_sklearn:.2f} s")

# %%
# The neighbours themselves
# -------------------------
# :func:`~skvrf.neighbors.kneighbors` returns ``(distances, indices)``, nearest
# first; ties aside, the indices are scikit-learn's.
dist5, idx5 = kneighbors(queries, bank, 5)
print("same 5 neighbours:", float(np.mean(idx5 == idx[:, :5])))

# %%
# The distribution of d for each k
# --------------------------------
# A larger ``k`` measures the distance to a denser part of the bank: every
# sample moves farther away, and the spread narrows.
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
for column, k in enumerate([1, 5, 20]):
    ax.hist(d[:, column], bins=50, histtype="step", linewidth=1.5, label=f"k = {k}")
ax.set_xlabel("d: squared L2 distance to the k-th nearest bank row")
ax.set_ylabel("queries")
ax.legend()
fig.tight_layout()
plt.show()
