"""Datasets shipped with skvrf: the embedded real benchmark used by ``skvrf demo``."""

from ._wordnet import load_wordnet_supersenses

__all__ = ["load_wordnet_supersenses"]
