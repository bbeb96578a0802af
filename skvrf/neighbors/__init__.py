"""Exact k-th-nearest-neighbour distances to a bank of unit vectors.

VRF weighs each test row by the squared L2 distance to its k-th nearest row of
the Zero-Shot Failure set. :func:`kth_neighbor_distances` computes exactly that,
:func:`kneighbors` the neighbours themselves, with interchangeable backends
(``"numpy"``, ``"torch"``, ``"faiss"``) behind one dispatcher. torch and faiss
are imported only when their backend runs.
"""

from ._dispatch import kneighbors, kth_neighbor_distances

__all__ = ["kneighbors", "kth_neighbor_distances"]
