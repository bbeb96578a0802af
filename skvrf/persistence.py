"""Saving and loading fitted skvrf models without executing code on load.

Models are stored with `skops <https://skops.readthedocs.io>`_ (the ``persist``
extra), whose format describes objects instead of pickling them:
loading builds only types that are trusted. :func:`load_model` trusts skops'
defaults plus :data:`TRUSTED_TYPES`, a reviewed list of the skvrf, scikit-learn
and numpy types a fitted skvrf ensemble is made of; a file that holds any other
type is refused before anything in it is constructed.

:func:`save_model` stamps the file with the skvrf version that wrote it (a
``skvrf.json`` member next to skops' own); :func:`load_model` warns
(:class:`ModelVersionWarning`) when the file comes from another skvrf version,
names both versions in any error it raises then, and checks the loaded model
(:func:`validate_model`: finite, positive calibration temperatures, shapes and
classes that agree) before returning it, so a damaged or edited file fails with
a message instead of predicting wrongly.

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
import warnings
import zipfile
from numbers import Integral, Real

import numpy as np
from sklearn.utils import get_tags

from .exceptions import InvalidModelError, ModelVersionWarning, UntrustedModelError

__all__ = [
    "TRUSTED_TYPES",
    "InvalidModelError",
    "ModelVersionWarning",
    "UntrustedModelError",
    "load_model",
    "save_model",
    "validate_model",
]

#: The zip member of a model file that holds the skvrf version stamp.
STAMP_NAME = "skvrf.json"

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
    "SelectiveEnsembleClassifier",
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


def _require_skops():
    from .utils import import_optional

    return import_optional("skops.io", "Saving and loading models")


def save_model(estimator, path: str | os.PathLike) -> None:
    """Save a fitted estimator with skops (no pickle).

    A fitted VRF holds its Zero-Shot Failure bank, the normalised embeddings of
    training rows: the file contains (a function of) training data. The file is
    stamped with the skvrf version that saved it.

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
    from . import __version__

    sio = _require_skops()
    path = os.fspath(path)
    sio.dump(estimator, path)
    stamp = {"skvrf_version": __version__, "type": type(estimator).__qualname__}
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(STAMP_NAME, json.dumps(stamp))


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
    InvalidModelError
        (a ValueError) when the loaded model fails :func:`validate_model`.
        Errors name both versions when the file comes from another skvrf
        version.

    Warns
    -----
    ModelVersionWarning
        When the file was saved by another skvrf version, or carries no
        version stamp (the warning names both versions).

    Notes
    -----
    A loaded VRF contains the embeddings of its Zero-Shot Failure training rows
    (see the module's warning).
    """
    from . import __version__

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
            saved = _read_stamp(z)
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError) as exc:
        raise _read_error(path, exc) from exc

    versions = ""
    if saved != __version__:
        saved_text = (
            "an unknown skvrf version (no version stamp: saved before stamps or "
            "by skops directly)"
            if saved is None
            else f"skvrf {saved}"
        )
        versions = f" The file was saved by {saved_text}; this is skvrf {__version__}."
        warnings.warn(
            f"{path}: saved by {saved_text}, loaded by skvrf {__version__}; "
            "the model is checked after loading, but its behaviour may differ "
            "between versions. Refit and save it with this version to be sure.",
            ModelVersionWarning,
            stacklevel=2,
        )
    try:
        model = sio.loads(data, trusted=trusted)
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
            + versions
        ) from exc
    except (KeyError, ValueError, TypeError, AttributeError, EOFError) as exc:
        err = _read_error(path, exc)
        raise UntrustedModelError(f"{err}{versions}") from exc
    try:
        validate_model(model)
    except InvalidModelError as exc:
        raise InvalidModelError(
            f"{path}: the loaded model is not consistent, the file may be damaged "
            f"or edited: {exc}{versions}"
        ) from exc
    return model


def _read_stamp(z):
    """The skvrf version in a model file's stamp, or None when it has none."""
    if STAMP_NAME not in z.namelist():
        return None
    stamp = json.loads(z.read(STAMP_NAME))
    version = stamp.get("skvrf_version") if isinstance(stamp, dict) else None
    if not isinstance(version, str):
        raise ValueError(f"{STAMP_NAME} has no skvrf_version string")
    return version


# ---------------------------------------------------------------- validation
def _fail(where, msg):
    raise InvalidModelError(f"{where}: {msg}")


def _check_classes(classes, where, *, sorted_=False):
    from ._labels import label_kind

    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] == 0:
        _fail(where, f"classes_ must be a non-empty 1-D array, got {classes.shape}.")
    try:
        label_kind(classes, f"{where}.classes_")
    except ValueError as exc:
        _fail(where, str(exc))
    unique = np.unique(classes)
    if unique.shape[0] != classes.shape[0]:
        _fail(where, "classes_ holds a label twice.")
    if sorted_ and np.any(unique != classes):
        _fail(where, "classes_ is not sorted (scikit-learn's and skvrf's rule).")
    return classes


def _check_finite_arrays(est, where):
    for name, value in vars(est).items():
        if (
            name.endswith("_")
            and not name.startswith("_")
            and isinstance(value, np.ndarray)
            and value.dtype.kind in "fc"
            and not np.all(np.isfinite(value))
        ):
            _fail(where, f"{name} holds non-finite values.")


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_params(est, where):
    params = est.get_params(deep=False)
    for name in ("temperature", "logit_scale"):
        value = params.get(name)
        if value is not None and not (_is_real(value) and 0 < value < np.inf):
            _fail(where, f"{name}={value!r} must be a finite positive number.")
    if "threshold" in params and not (
        _is_real(params["threshold"]) and np.isfinite(params["threshold"])
    ):
        _fail(where, f"threshold={params['threshold']!r} must be a finite number.")
    alpha = params.get("alpha")
    if "alpha" in params and type(est).__name__.startswith("OutputSpace"):
        if not (_is_real(alpha) and 0 <= alpha <= 1):
            _fail(where, f"alpha={alpha!r} must be in [0, 1].")


def _check_linear(est, where, classes):
    coef = np.asarray(est.coef_)
    if coef.ndim != 2:
        _fail(where, f"coef_ must be 2-D, got shape {coef.shape}.")
    rows = (1, classes.shape[0]) if classes.shape[0] == 2 else (classes.shape[0],)
    if coef.shape[0] not in rows:
        _fail(
            where,
            f"coef_ has {coef.shape[0]} rows for {classes.shape[0]} classes_.",
        )
    n = getattr(est, "n_features_in_", coef.shape[1])
    if coef.shape[1] != n:
        _fail(where, f"coef_ has {coef.shape[1]} columns but n_features_in_={n}.")
    intercept = getattr(est, "intercept_", None)
    if intercept is not None and np.shape(intercept) not in ((coef.shape[0],), ()):
        _fail(
            where,
            f"intercept_ has shape {np.shape(intercept)}, coef_ has {coef.shape[0]} "
            "rows.",
        )


def _check_ensemble(est, where):
    from ._labels import check_label_kinds

    classes = _check_classes(est.classes_, where, sorted_=True)
    temps = getattr(est, "calibration_temperatures_", None)
    if not isinstance(temps, dict):
        _fail(where, "calibration_temperatures_ must be a dict.")
    for name in ("zeroshot", "finetuned"):
        t = temps.get(name)
        if not (_is_real(t) and 0 < t < np.inf):
            _fail(
                where,
                f"calibration_temperatures_[{name!r}]={t!r} must be a finite "
                "positive number.",
            )
        component = getattr(est, f"{name}_estimator_", None)
        if component is None:
            _fail(where, f"{name}_estimator_ is missing.")
        sub = f"{where}.{name}_estimator_"
        _validate(component, sub)
        comp_classes = np.asarray(getattr(component, "classes_", classes))
        try:
            check_label_kinds(**{f"{sub}.classes_": comp_classes, where: classes})
        except ValueError as exc:
            _fail(where, str(exc))
        unknown = np.setdiff1d(comp_classes, classes)
        if unknown.size:
            _fail(
                where,
                f"{name}_estimator_ has classes that classes_ lacks: "
                f"{unknown[:6].tolist()}.",
            )
        n = getattr(component, "n_features_in_", None)
        n_ens = getattr(est, "n_features_in_", None)
        if n is not None and n_ens is not None and n != n_ens:
            _fail(where, f"{sub} expects {n} features but the ensemble {n_ens}.")
    if hasattr(est, "zsf_embeddings_"):
        _check_bank(est, where)


def _check_bank(est, where):
    bank = np.asarray(est.zsf_embeddings_)
    if bank.ndim != 2 or bank.dtype.kind != "f":
        _fail(
            where,
            f"zsf_embeddings_ must be a 2-D float array, got shape {bank.shape} "
            f"and dtype {bank.dtype}.",
        )
    n_zsf = bank.shape[0]
    indices = np.asarray(getattr(est, "zsf_indices_", np.arange(n_zsf)))
    if indices.ndim != 1 or indices.shape[0] != n_zsf or indices.dtype.kind not in "iu":
        _fail(
            where,
            f"zsf_indices_ (shape {indices.shape}, dtype {indices.dtype}) must hold "
            f"one integer per zsf_embeddings_ row ({n_zsf}).",
        )
    if indices.size and (indices.min() < 0 or np.unique(indices).size != n_zsf):
        _fail(where, "zsf_indices_ must be distinct non-negative row numbers.")
    embedding = getattr(est, "embedding_", "passthrough")
    n = getattr(est, "n_features_in_", None)
    if isinstance(embedding, str) and n is not None and bank.shape[1] != n:
        _fail(
            where,
            f"zsf_embeddings_ has {bank.shape[1]} columns but the model takes "
            f"{n} features.",
        )
    if n_zsf:
        norms = np.linalg.norm(bank.astype(np.float64), axis=1)
        if np.any(np.abs(norms - 1) > 1e-3):
            _fail(where, "zsf_embeddings_ rows are not L2-normalised.")
    k = getattr(est, "k_", None)
    if not isinstance(k, Integral) or isinstance(k, bool):
        _fail(where, f"k_={k!r} must be an integer.")
    if not (min(1, n_zsf) <= k <= n_zsf):
        _fail(
            where,
            f"k_={k} must be between 1 and the {n_zsf} zsf_embeddings_ rows "
            "(0 only when there are none).",
        )


def _validate(est, where):
    if est is None or isinstance(est, str):
        return
    if not hasattr(est, "get_params"):
        _fail(where, f"{type(est).__name__} is not an estimator.")
    _check_params(est, where)
    _check_finite_arrays(est, where)
    if hasattr(est, "zeroshot_estimator_") or hasattr(est, "calibration_temperatures_"):
        _check_ensemble(est, where)
        return
    name = type(est).__name__
    if name == "FrozenEstimator":
        _validate(est.estimator, f"{where}.estimator")
        return
    if hasattr(est, "steps"):  # a Pipeline
        for step, sub in est.steps:
            _validate(sub, f"{where}[{step!r}]")
        return
    if hasattr(est, "best_estimator_"):  # VRFEnsembleClassifierCV
        _validate(est.best_estimator_, f"{where}.best_estimator_")
    if hasattr(est, "sources_") and hasattr(est, "estimator"):  # class map view
        _validate(est.estimator, f"{where}.estimator")
        _check_classes(est.classes_, where)
        known = np.asarray(est.estimator.classes_)
        for src in est.sources_:
            missing = np.setdiff1d(np.asarray(src), known)
            if missing.size:
                _fail(
                    where,
                    f"sources_ name classes the estimator lacks: "
                    f"{missing[:6].tolist()}.",
                )
        return
    if hasattr(est, "classes_"):
        # scikit-learn's classifiers keep classes_ sorted; skvrf's fixed heads
        # keep the order of their rows
        sorted_ = get_tags(est).requires_fit
        classes = _check_classes(est.classes_, where, sorted_=sorted_)
        if hasattr(est, "coef_"):
            _check_linear(est, where, classes)


def validate_model(estimator):
    """Check a fitted model's values before it predicts; raise on inconsistency.

    :func:`load_model` calls it on every model it loads. It walks the model
    (ensembles, their components, frozen estimators, pipelines, class-map views,
    the CV search's best estimator) and checks what a damaged or edited file
    could break silently: ``classes_`` 1-D, unique and (for ensembles and
    scikit-learn classifiers) sorted; components' classes among the ensemble's
    and of the same kind; finite, positive ``calibration_temperatures_``; finite
    weights whose shapes agree with ``classes_`` and ``n_features_in_``; a VRF's
    bank (``zsf_embeddings_`` 2-D, L2-normalised rows, as many as
    ``zsf_indices_``, one column per feature when distances are measured on the
    features) and ``1 <= k_ <= n_zsf``; finite, positive ``temperature`` and
    ``logit_scale``, a finite ``threshold``, OSE's ``alpha`` in [0, 1].

    Parameters
    ----------
    estimator : estimator
        A fitted model.

    Returns
    -------
    estimator : estimator
        The same model.

    Raises
    ------
    InvalidModelError
        (a ValueError) naming the attribute and what is wrong with it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import OutputSpaceEnsembleClassifier, ZeroShotClassifier
    >>> from skvrf.persistence import validate_model
    >>> X, y = np.eye(4)[[0, 1, 2, 3] * 5], np.array([0, 1, 0, 1] * 5)
    >>> ose = OutputSpaceEnsembleClassifier(
    ...     ZeroShotClassifier(np.eye(4)[:2]), LogisticRegression()
    ... ).fit(X, y)
    >>> ose.calibration_temperatures_["zeroshot"] = -1.0
    >>> try:
    ...     validate_model(ose)
    ... except ValueError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    calibration_temperatures_['zeroshot']=-1.0 must be a finite positive number.
    """
    _validate(estimator, type(estimator).__name__)
    return estimator
