"""Exact k-th-nearest-neighbour distances to a bank of unit vectors.

VRF weighs each test row by the squared L2 distance to its k-th nearest row of
the Zero-Shot Failure set. :func:`kth_neighbor_distances` computes exactly that,
:func:`kneighbors` the neighbours themselves, with interchangeable backends
(``"numpy"``, ``"torch"``, ``"faiss"``) behind one dispatcher, which picks the
selection per block shape and, on CPUs with fast bfloat16 instructions, may
screen the products in bfloat16 with exact float32 re-ranking (see
:ref:`neighbors-benchmark`). faiss is imported only when its backend runs,
torch when its backend runs or when a search is large enough for screening
to pay (never at import). Queries may be torch tensors on any device (the torch
backend searches them where they are), and a :class:`PreparedBank` keeps the
bank's device copy between calls.
"""

from ._bank import PreparedBank
from ._dispatch import kneighbors, kth_neighbor_distances

__all__ = ["PreparedBank", "kneighbors", "kth_neighbor_distances"]
