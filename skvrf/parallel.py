"""Prediction over Dask collections and clusters, partition by partition.

:func:`predict`, :func:`predict_proba`, :func:`ensemble_weights` and
:func:`zsf_distances` take a fitted model and a ``dask.array`` (rows x
features) or a ``dask.dataframe`` (feature columns) and return a lazy Dask
collection of the same partitions. Each partition is predicted in one pass
(:func:`skvrf.stores.predict_chunks`: components and one neighbour search per
chunk), in bounded chunks.

The model, with its ZSF bank, is sent to each worker **once**: with a
``dask.distributed`` client (given, or the current default one) it is
scattered to every worker (``client.scatter(model, broadcast=True)``) and the
tasks refer to that copy; with Dask's local schedulers the threads share the
one object. :func:`skvrf.stores.predict_store` with ``client=`` (the command
line's ``skvrf predict --scheduler ADDRESS``) sends it the same way and runs
one task per store shard (that mapping lives with the shard task, in
``skvrf/stores/_predict.py``: the stores never import this module).

Needs ``dask`` (``python -m pip install -e ".[dask]"``); imported only when called.
"""

from __future__ import annotations

import numpy as np

from .utils import import_optional

__all__ = ["ensemble_weights", "predict", "predict_proba", "zsf_distances"]


def _dask():
    return import_optional("dask", "skvrf.parallel (Dask)")


def _client(client):
    """The given client, else the default distributed client, else None."""
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client: a local scheduler
        return None


def _model_handle(estimator, client):
    """What the tasks get: a scattered copy on every worker, or the model itself."""
    client = _client(client)
    if client is None:
        return estimator
    return client.scatter(estimator, broadcast=True, hash=False)


def _columns(X, model, class_map, what, classes):
    """One partition's ``what``; an empty partition (a filtered dask array or
    dataframe) gives empty columns."""
    from .stores import predict_chunks

    X = np.asarray(X)
    if X.shape[0] == 0:
        if what == "proba":
            return np.empty((0, classes.shape[0]))
        return classes[:0] if what == "predict" else np.empty(0)
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    parts = list(predict_chunks(model, X, class_map=class_map, weights=what != "proba"))
    if what == "proba":
        return np.concatenate([p.proba for p in parts])
    if what == "predict":
        classes = parts[0].classes
        return classes[np.concatenate([np.argmax(p.proba, axis=1) for p in parts])]
    if what == "weights":
        return np.concatenate([p.weights for p in parts])
    return np.concatenate([p.distances for p in parts])


def _frame_partition(part, model, class_map, what, columns, classes):
    import pandas as pd

    X = part.to_numpy() if columns is None else part[columns].to_numpy()
    out = _columns(X, model, class_map, what, classes)
    if what == "proba":
        return pd.DataFrame(out, index=part.index, columns=classes.tolist())
    return pd.Series(out, index=part.index, name=what)


def _classes(estimator, class_map):
    if class_map is None:
        return np.asarray(estimator.classes_)
    from ._classmap import class_mapped

    return np.asarray(class_mapped(estimator, class_map).classes_)


def _map(estimator, X, what, *, class_map=None, columns=None, client=None):
    dask = _dask()
    from sklearn.utils.validation import check_is_fitted

    from .stores._predict import has_weights

    check_is_fitted(estimator)
    if what in ("weights", "distances") and not has_weights(estimator):
        raise ValueError(
            f"{type(estimator).__name__} has no per-row weights or distances "
            "(VRF's w(x) and d(x))."
        )
    classes = _classes(estimator, class_map)
    da = import_optional("dask.array", "skvrf.parallel (Dask)")
    if isinstance(X, da.Array):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimensions.")
        n = getattr(estimator, "n_features_in_", None)
        if n is not None and X.shape[1] != n:
            raise ValueError(f"X has {X.shape[1]} features, but the model expects {n}.")
        X = X.rechunk({1: -1})  # partitions of whole rows
        model = _model_handle(estimator, client)
        if what == "proba":
            return X.map_blocks(
                _columns,
                model,
                class_map,
                what,
                classes,
                dtype=np.float64,
                chunks=(X.chunks[0], (classes.shape[0],)),
            )
        dtype = classes.dtype if what == "predict" else np.float64
        return X.map_blocks(
            _columns, model, class_map, what, classes, dtype=dtype, drop_axis=1
        )
    dd = import_optional("dask.dataframe", "skvrf.parallel (Dask dataframes)")
    if isinstance(X, dd.DataFrame):
        import pandas as pd

        names = classes.tolist()
        if what == "proba":
            meta = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in names})
            meta.columns = names
        else:
            dtype = classes.dtype if what == "predict" else np.float64
            meta = pd.Series(dtype=dtype if dtype.kind != "U" else object, name=what)
        model = _model_handle(estimator, client)
        return X.map_partitions(
            _frame_partition,
            model,
            class_map,
            what,
            columns,
            classes,
            meta=meta,
            align_dataframes=False,
        )
    raise TypeError(
        f"X must be a dask.array.Array or a dask.dataframe.DataFrame, got "
        f"{type(X).__name__}; for in-memory arrays call the estimator's methods "
        f"(dask {dask.__version__})."
    )


_PARAMS = """
    Parameters
    ----------
    estimator : fitted classifier
        A skvrf ensemble, a fitted VRFEnsembleClassifierCV, or any classifier
        with ``predict_proba``.
    X : dask.array.Array or dask.dataframe.DataFrame
        Rows of features: a 2-D array (its columns are gathered into one chunk),
        or a dataframe whose ``columns`` (default: all) are the features.
    class_map : sequence or mapping, default=None
        Predict over a class subset or pooled classes
        (:meth:`~skvrf.VRFEnsembleClassifier.with_class_map`).
    columns : list, default=None
        Dataframes: the feature columns.
    client : dask.distributed.Client, default=None
        Scatter the model to this client's workers (default: the current
        client, if any; else Dask's local scheduler shares it).
"""


def predict(estimator, X, *, class_map=None, columns=None, client=None):
    return _map(
        estimator, X, "predict", class_map=class_map, columns=columns, client=client
    )


def predict_proba(estimator, X, *, class_map=None, columns=None, client=None):
    return _map(
        estimator, X, "proba", class_map=class_map, columns=columns, client=client
    )


def ensemble_weights(estimator, X, *, class_map=None, columns=None, client=None):
    return _map(
        estimator, X, "weights", class_map=class_map, columns=columns, client=client
    )


def zsf_distances(estimator, X, *, class_map=None, columns=None, client=None):
    return _map(
        estimator, X, "distances", class_map=class_map, columns=columns, client=client
    )


predict.__doc__ = f"""Predicted labels, partition by partition (lazy).
{_PARAMS}
    Returns
    -------
    y_pred : dask.array.Array or dask.dataframe.Series
        One label per row, partitioned as ``X``; ``.compute()`` it.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skvrf import VRFEnsembleClassifier, ZeroShotClassifier
    >>> from skvrf import parallel
    >>> rng = np.random.default_rng(0)
    >>> centers = rng.normal(size=(3, 8))
    >>> y = rng.integers(0, 3, 300)
    >>> X = centers[y] + rng.normal(scale=0.8, size=(300, 8))
    >>> vrf = VRFEnsembleClassifier(ZeroShotClassifier(centers), LogisticRegression(),
    ...                             threshold=1.0).fit(X, y)
    >>> lazy = parallel.predict(vrf, da.from_array(X, chunks=100))
    >>> bool((lazy.compute(scheduler="threads") == vrf.predict(X)).all())
    True
"""
predict_proba.__doc__ = f"""Class probabilities, partition by partition (lazy).
{_PARAMS}
    Returns
    -------
    proba : dask.array.Array or dask.dataframe.DataFrame
        ``(n_rows, n_classes)``, columns in the order of ``classes_`` (or of the
        class map's targets).
"""
ensemble_weights.__doc__ = f"""VRF's ``w(x)``, partition by partition (lazy).
{_PARAMS}
    Returns
    -------
    weights : dask.array.Array or dask.dataframe.Series
        The fine-tuned component's weight per row, in [0, 1].
"""
zsf_distances.__doc__ = f"""VRF's ``d(x)``, partition by partition (lazy).
{_PARAMS}
    Returns
    -------
    distances : dask.array.Array or dask.dataframe.Series
        Squared distance to the k-th nearest ZSF row, per row.
"""
