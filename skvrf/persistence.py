"""Saving and loading fitted skvrf models without executing code on load.

Models are stored with `skops <https://skops.readthedocs.io>`_ (``pip install
skvrf[persist]``), whose format describes objects instead of pickling them:
loading builds only types that are trusted. :func:`load_model` trusts skops'
defaults plus :data:`TRUSTED_TYPES`, a reviewed list of the skvrf, scikit-learn
and numpy types a fitted skvrf ensemble is made of; a file that holds any other
type is refused before anything in it is constructed.

.. warning::
   A fitted :class:`~skvrf.VRFEnsembleClassifier` stores the normalised
   embeddings of its Zero-Shot Failure training rows (``zsf_embeddings_``, the
   bank) and their indices. A saved VRF model therefore contains (a function of)
   training data: mind its size and the data's privacy before sharing the file.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

__all__ = ["TRUSTED_TYPES", "UntrustedModelError", "load_model", "save_model"]

# skvrf classes trusted by load_model, by public name. Each was reviewed: they
# hold parameters, numpy arrays, dicts and nested estimators only, and define
# no __setstate__ / __reduce__ of their own. Resolved to "module.QualName"
# strings at import time so that moving a class between private modules keeps
# this list right; names not (yet) exported are skipped.
_SKVRF_PUBLIC_TYPES = (
    "ZeroShotClassifier",
    "LinearHeadClassifier",
    "LogitsClassifier",
    "VRFEnsembleClassifier",
    "VRFEnsembleClassifierCV",
    "OutputSpaceEnsembleClassifier",
    "EntropyEnsembleClassifier",
    "ClassMappedClassifier",
)

# scikit-learn and numpy types found in fitted skvrf ensembles (components,
# embeddings, search results). skops already trusts most of them by default;
# listing them keeps the accepted set explicit and independent of skops'
# defaults changing.
_EXTERNAL_TYPES = (
    "builtins.slice",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.float64",
    "numpy.float32",
    "numpy.int64",
    "numpy.int32",
    "numpy.bool_",
    "numpy.str_",
    "numpy.ma.core.MaskedArray",
    "numpy.random.mtrand.RandomState",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.Normalizer",
    "sklearn.decomposition._pca.PCA",
    "sklearn.model_selection._split.PredefinedSplit",
    "sklearn.model_selection._split.StratifiedKFold",
)


def _skvrf_types() -> tuple[str, ...]:
    import skvrf

    names = []
    for public in _SKVRF_PUBLIC_TYPES:
        cls = getattr(skvrf, public, None)
        if cls is not None:
            names.append(f"{cls.__module__}.{cls.__qualname__}")
    return tuple(names)


def trusted_types() -> list[str]:
    """The types :func:`load_model` trusts beyond skops' defaults.

    Returns
    -------
    types : list of str
        Fully qualified type names, as :func:`skops.io.get_untrusted_types`
        reports them.
    """
    return sorted(set(_skvrf_types()) | set(_EXTERNAL_TYPES))


TRUSTED_TYPES = trusted_types()


class UntrustedModelError(ValueError):
    """A model file holds a type that is not trusted, or cannot be read."""


def _require_skops():
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Saving and loading models needs skops: pip install skvrf[persist]"
        ) from exc
    return sio


def save_model(estimator, path: str | os.PathLike) -> None:
    """Save a fitted estimator with skops (no pickle).

    A fitted VRF holds its Zero-Shot Failure bank, the normalised embeddings of
    training rows: the file contains (a function of) training data.

    Parameters
    ----------
    estimator : estimator
        Usually a fitted skvrf ensemble.
    path : str or path-like
        Destination (conventionally ``*.skops``).

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf.persistence import load_model, save_model
    >>> clf = ZeroShotClassifier(np.eye(2)).fit(np.eye(2))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_model(clf, os.path.join(d, "m.skops"))
    ...     load_model(os.path.join(d, "m.skops")).predict([[0.0, 1.0]])
    array([1])
    """
    sio = _require_skops()
    sio.dump(estimator, os.fspath(path))


def _read_error(path, exc):
    return UntrustedModelError(
        f"{path}: not a readable skops model file; it may be truncated, corrupt "
        f"or of another format ({type(exc).__name__}: {exc})."
    )


def load_model(path: str | os.PathLike, *, trusted=None):
    """Load a model saved by :func:`save_model`, refusing untrusted types.

    Nothing is constructed before every type in the file has been checked
    against skops' defaults, :data:`TRUSTED_TYPES` and ``trusted``.

    Parameters
    ----------
    path : str or path-like
        A ``.skops`` file.
    trusted : list of str, default=None
        Extra types to trust beyond skops' defaults and :data:`TRUSTED_TYPES`.
        Pass names only after reviewing them
        (``skops.io.get_untrusted_types(file=path)`` lists a file's types);
        ``True`` (trust everything) is not accepted.

    Returns
    -------
    estimator : object
        The loaded estimator.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    UntrustedModelError
        (a ValueError) when the file holds an untrusted type (the message
        names each) or is truncated, corrupt or not a skops file.

    Notes
    -----
    A loaded VRF contains the embeddings of its Zero-Shot Failure training rows
    (see the module's warning).
    """
    sio = _require_skops()
    from skops.io.exceptions import UntrustedTypesFoundException

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if trusted is True or isinstance(trusted, str):
        raise TypeError("`trusted` must be a list of type names, not True or a str.")
    trusted = sorted(set(TRUSTED_TYPES) | set(trusted or ()))
    with open(path, "rb") as f:
        data = f.read()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"corrupt member {bad}")
            json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as exc:
        raise _read_error(path, exc) from exc
    try:
        return sio.loads(data, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        try:
            found = sio.get_untrusted_types(data=data)
        except Exception:  # pragma: no cover - the message above still helps
            found = []
        untrusted = sorted(set(found) - set(trusted)) or [str(exc)]
        raise UntrustedModelError(
            f"{path}: refused to load, it holds types that are not trusted: "
            f"{untrusted}. skvrf trusts only the types a fitted skvrf model is "
            "made of (skvrf.persistence.TRUSTED_TYPES). If you made this file "
            "and reviewed these types, pass them in load_model(..., trusted=[...])."
        ) from exc
    except (KeyError, ValueError, TypeError, AttributeError, EOFError) as exc:
        raise _read_error(path, exc) from exc
