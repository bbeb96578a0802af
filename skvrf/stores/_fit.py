"""Fitting an ensemble from a feature store, one chunk of rows at a time."""

from __future__ import annotations

import numpy as np

__all__ = ["fit_store"]


def fit_store(estimator, store, *, val_store=None):
    """Fit a skvrf ensemble on a feature store without loading its features.

    scikit-learn's ``fit(X, y)`` takes arrays in memory; a training store
    (ImageNet's 1.28M CLIP features, say) is streamed instead: its chunks
    (float16 kept as float16 until a chunk is converted to float32 for use) go
    through the components, and only per-row summaries are kept. With both
    components used as they are (a :class:`~sklearn.frozen.FrozenEstimator`, or
    a fixed head such as :class:`skvrf.ZeroShotClassifier`, whose tags say
    ``requires_fit=False``), peak memory for a
    :class:`~skvrf.VRFEnsembleClassifier` is its Zero-Shot Failure bank plus one
    chunk's temporaries (sized by scikit-learn's ``working_memory``). The fitted
    ensemble equals ``estimator.fit(X, y)`` on the store's rows read whole, to
    the float tolerance (calibration temperatures are found by passes over the
    chunks, one per Newton step: see ``skvrf._calibration.ChunkedTemperature``).

    A function rather than a ``fit`` that accepts a store, so that ``fit``
    keeps scikit-learn's contract (arrays in, the same for every estimator).

    Parameters
    ----------
    estimator : VRFEnsembleClassifier, OutputSpaceEnsembleClassifier, ...
        An unfitted skvrf two-component ensemble (fitted in place). Its
        components must be used as they are: a component that would be fitted
        needs every row at once, and is refused with an error (read the store
        with ``store.read()`` and call ``fit`` instead). So is an ``embedding``
        that would be fitted.
    store : FeatureStore
        Training rows with labels (:func:`skvrf.io.open_store` with
        ``label_column`` where needed).
    val_store : FeatureStore, default=None
        Held-out labelled rows for calibration, read into memory whole (as
        ``fit``'s ``X_val``; a validation set is usually small).

    Returns
    -------
    estimator : object
        The fitted ensemble.

    Raises
    ------
    TypeError
        When ``estimator`` is not a skvrf two-component ensemble.
    ValueError
        When a store has no labels, or a component (or the embedding) would
        have to be fitted.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> from skvrf import LinearHeadClassifier, VRFEnsembleClassifier
    >>> from skvrf import ZeroShotClassifier
    >>> from skvrf.io import open_store
    >>> from skvrf.stores import fit_store
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 200)
    >>> X = (centers[y] + rng.normal(scale=0.8, size=(200, 8))).astype(np.float16)
    >>> path = os.path.join(tempfile.mkdtemp(), "train.npz")
    >>> np.savez(path, features=X, labels=y)
    >>> zs = ZeroShotClassifier(centers + rng.normal(scale=0.5, size=(3, 8)))
    >>> ft = LinearHeadClassifier(centers, np.zeros(3))
    >>> vrf = VRFEnsembleClassifier(zs, ft, k=1)
    >>> vrf = fit_store(vrf, open_store(path, chunk_rows=64))
    >>> vrf.n_samples_fit_, vrf.classes_.tolist()
    (200, [0, 1, 2])
    """
    from .._base import _BaseComponentEnsemble
    from .._heldout import HeldOut

    if not isinstance(estimator, _BaseComponentEnsemble):
        raise TypeError(
            "fit_store fits skvrf's two-component ensembles (VRFEnsembleClassifier, "
            f"OutputSpaceEnsembleClassifier, ...); got {type(estimator).__name__}. "
            "For another estimator, read the store (X, y, _ = store.read()) and "
            "call fit(X, y)."
        )
    for name, s in (("store", store), ("val_store", val_store)):
        if s is not None and not s.has_labels:
            raise ValueError(
                f"fit_store: the {name} {s.path} has no labels; open it with "
                "label_column= naming the column (or file) that holds them."
            )
    X_val = None
    if val_store is not None:
        if val_store.n_features != store.n_features:
            raise ValueError(
                f"fit_store: val_store {val_store.path} has {val_store.n_features} "
                f"features but the store {store.path} has {store.n_features}."
            )
        Xv, yv, _ = val_store.read(dtype=np.float32)
        X_val = HeldOut(Xv, yv)
    return estimator._fit_store(store, X_val)
