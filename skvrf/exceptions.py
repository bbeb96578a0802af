"""Errors and warnings that several parts of skvrf raise, at the bottom of the layers.

Each is also importable from the module whose functions raise it
(:class:`FeatureFileError` from :mod:`skvrf.io` and :mod:`skvrf.stores`, the
model-file errors from :mod:`skvrf.persistence`): the same classes, defined once
here so that no part has to import a higher one to raise them.
"""

from __future__ import annotations

__all__ = [
    "FeatureFileError",
    "InvalidModelError",
    "ModelVersionWarning",
    "UntrustedModelError",
]


class FeatureFileError(ValueError):
    """A feature file is missing, unreadable, or lacks a key or shape it needs."""


class UntrustedModelError(ValueError):
    """A model file holds a type that is not trusted, or cannot be read."""


class InvalidModelError(ValueError):
    """A loaded model's fitted values are inconsistent (damaged or edited file)."""


class ModelVersionWarning(UserWarning):
    """A model file was saved by another skvrf version (or carries no stamp)."""
