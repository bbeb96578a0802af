"""Datasets: the embedded real benchmarks of ``skvrf demo``, their features, and
generated features."""

from ._features import (
    BENCHMARKS,
    FeatureSuite,
    benchmark_feature_suite,
    load_feature_suite,
    save_feature_suite,
    wordnet_feature_suite,
)
from ._synthetic import make_shifted_features
from ._wordnet import load_wordnet_supersenses
from ._wordnet_verbs import load_wordnet_verbs

__all__ = [
    "BENCHMARKS",
    "FeatureSuite",
    "benchmark_feature_suite",
    "load_feature_suite",
    "load_wordnet_supersenses",
    "load_wordnet_verbs",
    "make_shifted_features",
    "save_feature_suite",
    "wordnet_feature_suite",
]
