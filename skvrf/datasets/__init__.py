"""Datasets: the embedded real benchmark of ``skvrf demo``, and generated features."""

from ._synthetic import make_shifted_features
from ._wordnet import load_wordnet_supersenses

__all__ = ["load_wordnet_supersenses", "make_shifted_features"]
