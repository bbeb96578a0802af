"""One-pass prediction, and streaming it over a store into Parquet shards.

:func:`predict_chunks` computes a fitted model's probabilities and, for a VRF,
``w(x)`` and ``d(x)`` in one pass over the component-output protocol: each
chunk's components and its one neighbour search are computed once (instead of
``predict_proba``, ``zsf_distances`` and ``ensemble_weights`` each searching).

:func:`predict_store` streams it over a :class:`~skvrf.stores.FeatureStore`:
one Parquet file per input shard, written to a temporary name and renamed when
complete, so that a killed run resumes at the first unfinished shard and ends
with exactly the files of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NamedTuple

import numpy as np

from ..evaluation._scorers import top_k
from ..exceptions import FeatureFileError
from ..utils import import_optional

__all__ = ["PredictionColumns", "predict_chunks", "predict_store"]

#: Name of the run description in an output folder of :func:`predict_store`.
MANIFEST = "_skvrf_predict.json"
_TMP_SUFFIX = ".parquet.tmp"


class PredictionColumns(NamedTuple):
    """One chunk's predictions (from :func:`predict_chunks`).

    Parameters
    ----------
    rows : slice
        The chunk's rows in the input.
    classes : ndarray of shape (n_classes,)
        Labels of the columns of ``proba`` (the model's, or a class map's).
    proba : ndarray of shape (n_rows, n_classes)
        The model's probabilities.
    weights : ndarray of shape (n_rows,) or None
        VRF's ``w(x)``, the fine-tuned component's weight (None for other
        models).
    distances : ndarray of shape (n_rows,) or None
        VRF's ``d(x)``, the distance to the k-th nearest ZSF row.
    """

    rows: slice
    classes: np.ndarray
    proba: np.ndarray
    weights: np.ndarray | None
    distances: np.ndarray | None


def _protocol_model(estimator):
    """The ensemble behind ``estimator`` that speaks the output protocol, or None."""
    if hasattr(estimator, "iter_component_outputs"):
        return estimator
    inner = getattr(estimator, "best_estimator_", None)  # VRFEnsembleClassifierCV
    if inner is not None and hasattr(inner, "iter_component_outputs"):
        return inner
    return None


def _one_search_mix(model):
    """Whether the model is a VRF whose mix may be computed from its distances."""
    from .._vrf import VRFEnsembleClassifier

    return isinstance(model, VRFEnsembleClassifier) and (
        type(model)._mix is VRFEnsembleClassifier._mix
    )


def has_weights(estimator) -> bool:
    """Whether :func:`predict_chunks` gives ``w(x)`` and ``d(x)`` for this model."""
    model = _protocol_model(estimator)
    return model is not None and hasattr(model, "bank_distances")


def predict_chunks(estimator, X, *, class_map=None, weights=True):
    """A fitted model's probabilities (and VRF's w, d) on row chunks, one pass.

    For a :class:`~skvrf.VRFEnsembleClassifier` each chunk's component outputs
    and its one neighbour search give the probabilities, ``w(x)`` and ``d(x)``
    together (``predict_proba``, ``ensemble_weights`` and ``zsf_distances`` give
    the same values, searching once each). Other skvrf ensembles are mixed
    through their ``mix_outputs``; any other classifier's ``predict_proba`` is
    called on the whole of ``X``.

    Parameters
    ----------
    estimator : fitted classifier
        A skvrf ensemble (or a fitted :class:`~skvrf.VRFEnsembleClassifierCV`),
        or any classifier with ``predict_proba``.
    X : array-like of shape (n_samples, n_features)
        Rows to predict.
    class_map : sequence or mapping, default=None
        Predict over a class subset or pooled classes (see
        :meth:`~skvrf.VRFEnsembleClassifier.with_class_map`).
    weights : bool, default=True
        Give VRF's ``w(x)`` and ``d(x)`` (from the search the mix needs anyway).

    Yields
    ------
    columns : PredictionColumns
        ``(rows, classes, proba, weights, distances)`` per chunk; chunks follow
        scikit-learn's ``working_memory``.
    """
    model = _protocol_model(estimator)
    if model is None:
        from .._classmap import class_mapped

        view = estimator if class_map is None else class_mapped(estimator, class_map)
        proba = view.predict_proba(X)
        yield PredictionColumns(
            slice(0, proba.shape[0]), np.asarray(view.classes_), proba, None, None
        )
        return
    fast = _one_search_mix(model)
    wants_d = weights and hasattr(model, "bank_distances")
    if fast:
        from .._weighting import mix
    for outputs in model.iter_component_outputs(X, class_map=class_map):
        d = w = None
        if fast or wants_d:
            d = model.bank_distances(outputs.extras["embedding"])
            w = model._weights(d)
        if fast:
            p = outputs.proba
            proba = mix(p["zeroshot"], p["finetuned"], w, model.mixing)
        else:
            proba = model.mix_outputs(outputs)
        if not weights:
            d = w = None
        yield PredictionColumns(outputs.rows, outputs.classes, proba, w, d)


# ------------------------------------------------------------ the stream
def _pa():
    return import_optional("pyarrow", "writing predictions as Parquet")


def _pq():
    _pa()
    return import_optional("pyarrow.parquet", "writing predictions as Parquet")


class _ShardWriter:
    """Predict one shard's chunks and write them as one Parquet file."""

    def __init__(self, estimator, options):
        self.estimator = estimator
        self.options = options

    def _table(self, chunk, X, classes_arr):
        pa = _pa()
        opts = self.options
        k = opts["top_k"]
        # per inner chunk, only what is written: no (rows, classes) array of the
        # whole store chunk is kept
        idx, tops, p_tops, ws, ds = [], [], [], [], []
        classes = None
        for cols in predict_chunks(
            self.estimator,
            X,
            class_map=opts["class_map"],
            weights=opts["weights"] or opts["distances"],
        ):
            idx.append(np.argmax(cols.proba, axis=1))
            if k:
                top = top_k(cols.proba, k)
                tops.append(top)
                p_tops.append(np.take_along_axis(cols.proba, top, axis=1))
            ws.append(cols.weights)
            ds.append(cols.distances)
            classes = cols.classes
            del cols
        idx = np.concatenate(idx)
        if classes_arr is None:
            classes_arr = pa.array(np.asarray(classes).tolist())
        keys = chunk.keys
        key_arr = pa.array(keys.tolist() if keys.dtype == object else keys)
        columns = {
            "key": key_arr,
            "prediction": classes_arr.take(pa.array(idx)),
        }
        if k:
            top = np.concatenate(tops)
            p_top = np.concatenate(p_tops).astype(np.float32)
            for i in range(top.shape[1]):
                columns[f"top{i + 1}_class"] = classes_arr.take(pa.array(top[:, i]))
                columns[f"top{i + 1}_proba"] = pa.array(p_top[:, i])
        if opts["weights"]:
            columns["weight"] = pa.array(np.concatenate(ws).astype(np.float32))
        if opts["distances"]:
            columns["distance"] = pa.array(np.concatenate(ds).astype(np.float32))
        stats = {"rows": X.shape[0], "correct": 0, "unknown": 0}
        if chunk.y is not None:
            pred = np.asarray(classes)[idx]
            y = np.asarray(chunk.y)
            stats["correct"] = int(np.sum(pred == y))
            stats["unknown"] = int(np.sum(~np.isin(y, classes)))
        return pa.table(columns), classes_arr, stats

    def write(self, store, shard, out_dir, tick=None):
        """Write ``<out_dir>/<shard.name>.parquet``; return the shard's counts."""
        memory = self.options.get("working_memory")
        if memory is None:
            return self._write(store, shard, out_dir, tick)
        from sklearn import config_context

        with config_context(working_memory=memory):
            return self._write(store, shard, out_dir, tick)

    def _write(self, store, shard, out_dir, tick):
        pq = _pq()
        final = os.path.join(out_dir, f"{shard.name}.parquet")
        tmp = os.path.join(out_dir, f".{shard.name}{_TMP_SUFFIX}")
        writer = None
        classes_arr = None
        totals = {"rows": 0, "correct": 0, "unknown": 0}
        try:
            for chunk in store.iter_shard(shard):
                X = chunk.X
                if X.dtype == np.float16:  # float16 is kept until the chunk is used
                    X = X.astype(np.float32)
                table, classes_arr, stats = self._table(chunk, X, classes_arr)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                for name in totals:
                    totals[name] += stats[name]
                if tick is not None:
                    tick(shard, stats["rows"])
                _after_chunk(shard, totals["rows"])
            if writer is None:  # an empty shard: an empty file with no columns
                pq.write_table(_pa().table({}), tmp)
            else:
                writer.close()
                writer = None
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
        finally:
            if writer is not None:
                writer.close()
        return totals


def _shard_task(estimator, store, shard_index, out_dir, options):
    """What a Dask worker runs for one shard (see :func:`_map_shards`)."""
    shard = store.shards[shard_index]
    return shard.name, _ShardWriter(estimator, options).write(store, shard, out_dir)


def _map_shards(client, estimator, store, shard_indices, out_dir, options):
    """Yield ``(shard name, counts)`` as the cluster finishes each shard."""
    distributed = import_optional("distributed", "skvrf predict --scheduler")
    if not shard_indices:
        return
    model = client.scatter(estimator, broadcast=True, hash=False)
    futures = [
        client.submit(
            _shard_task, model, store, i, out_dir, options, pure=False, retries=1
        )
        for i in shard_indices
    ]
    for future in distributed.as_completed(futures):
        yield future.result()


def _store_description(store):
    return {
        "path": os.path.abspath(store.path),
        "format": store.format,
        "n_rows": store.n_rows,
        "n_features": store.n_features,
        "chunk_rows": store.chunk_rows,
        "shards": [[s.name, s.n_rows] for s in store.shards],
    }


def _model_id(estimator):
    import joblib

    return f"joblib:{joblib.hash(estimator)}"


def _prepare_out(out_dir, manifest, overwrite):
    """Create ``out_dir`` or check that it holds this very run; return done shards."""
    path = os.path.join(out_dir, MANIFEST)
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            try:
                old = json.load(f)
            except json.JSONDecodeError:
                old = {}
        same = {k: old.get(k) for k in manifest if k != "complete"} == {
            k: v for k, v in manifest.items() if k != "complete"
        }
        if not same and not overwrite:
            differ = sorted(k for k in manifest if old.get(k) != manifest[k])
            raise FeatureFileError(
                f"{out_dir} holds predictions of another run (it differs in "
                f"{[k for k in differ if k != 'complete']}); give another --out, "
                "or overwrite=True (--overwrite) to start again."
            )
        if not same:
            for name in os.listdir(out_dir):
                if name.endswith(".parquet"):
                    os.unlink(os.path.join(out_dir, name))
    else:
        stray = [
            n for n in os.listdir(out_dir) if n.endswith(".parquet") or n == MANIFEST
        ]
        if stray and not overwrite:
            raise FeatureFileError(
                f"{out_dir} already holds Parquet files of unknown origin "
                f"({stray[:3]}); give an empty or new --out."
            )
        for name in stray:
            os.unlink(os.path.join(out_dir, name))
    for name in os.listdir(out_dir):
        if name.endswith(_TMP_SUFFIX):  # a shard that a killed run left unfinished
            os.unlink(os.path.join(out_dir, name))
    _write_json(path, manifest)
    suffix = ".parquet"
    return {n[: -len(suffix)] for n in os.listdir(out_dir) if n.endswith(suffix)}


def _write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def predict_store(
    estimator,
    store,
    out_dir,
    *,
    top_k=0,
    weights=False,
    distances=False,
    model_id=None,
    overwrite=False,
    progress=True,
    client=None,
    working_memory=None,
):
    """Stream a fitted model's predictions over a store into Parquet shards.

    Writes ``<out_dir>/<shard name>.parquet`` for each shard of ``store``, its
    rows in the shard's order, with columns ``key`` (the store's row key) and
    ``prediction``, then, as asked, ``top1_class``, ``top1_proba``, ...
    ``top{k}_class``, ``top{k}_proba``, ``weight`` (VRF's ``w(x)``) and
    ``distance`` (VRF's ``d(x)``), probabilities, weights and distances as
    float32. Memory is bounded by one chunk (``store.chunk_rows``), whatever
    the store's size.

    Resuming: each shard is written to a hidden temporary file and renamed when
    complete, and ``<out_dir>/_skvrf_predict.json`` records the run (model,
    store, columns). Run again with the same arguments after an interruption:
    finished shards are kept, the first unfinished one is started again, and
    the files equal those of an uninterrupted run. Another run's folder is an
    error unless ``overwrite=True``.

    Parameters
    ----------
    estimator : fitted classifier
        As for :func:`predict_chunks`.
    store : FeatureStore
        From :func:`skvrf.io.open_store`. Its class map (an ``.npz`` file's)
        applies.
    out_dir : str or path-like
        The output folder (created).
    top_k : int, default=0
        Write the ``k`` most probable classes and their probabilities.
    weights, distances : bool, default=False
        Write VRF's ``w(x)`` / ``d(x)`` (an error for other models).
    model_id : str, default=None
        Identifies the model in the run record (the command line: the model
        file's SHA-256); default a hash of ``estimator``.
    overwrite : bool, default=False
        Replace the predictions of another run in ``out_dir``.
    progress : bool, default=True
        A progress bar over rows (on stderr), showing the shard.
    client : dask.distributed.Client, default=None
        Predict the shards on this cluster's workers, one task per shard, the
        model sent to each worker once; every worker must see ``store.path``
        and ``out_dir`` (a shared file system).
    working_memory : int, default=None
        MiB for the model's row chunks within a store chunk (scikit-learn's
        ``working_memory``, on the workers too); default scikit-learn's setting
        (1024). With many classes (each row holds about 64 bytes per class while
        it is predicted) a smaller value lowers the peak memory.

    Returns
    -------
    summary : dict
        ``rows`` (predicted in this call), ``shards`` (written in this call),
        ``skipped`` (found complete), ``correct`` and ``unknown`` (rows whose
        label the model does not predict) when the store has labels, and
        ``out_dir``.
    """
    if int(top_k) < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}.")
    if (weights or distances) and not has_weights(estimator):
        raise ValueError(
            f"weights/distances are VRF's w(x) and d(x); {type(estimator).__name__} "
            "has none."
        )
    n = getattr(estimator, "n_features_in_", None)
    if n is not None and n != store.n_features:
        raise FeatureFileError(
            f"{store.path} has {store.n_features} features but the model expects {n}."
        )
    options = {
        "top_k": int(top_k),
        "weights": bool(weights),
        "distances": bool(distances),
        "class_map": store.class_map,
        "working_memory": working_memory,
    }
    manifest = {
        "skvrf_predict": 1,
        "model": model_id if model_id is not None else _model_id(estimator),
        "store": _store_description(store),
        "columns": {k: v for k, v in options.items() if k != "class_map"},
        "class_map": store.class_map,
        "complete": False,
    }
    manifest = json.loads(json.dumps(manifest))  # as it reads back (str keys)
    out_dir = os.fspath(out_dir)
    done = _prepare_out(out_dir, manifest, overwrite)
    todo = [s for s in store.shards if s.name not in done]
    summary = {
        "rows": 0,
        "shards": 0,
        "skipped": len(store.shards) - len(todo),
        "correct": 0,
        "unknown": 0,
        "out_dir": out_dir,
    }
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=sum(s.n_rows for s in todo),
            unit="row",
            unit_scale=True,
            file=sys.stderr,
            mininterval=1.0,
            desc=f"{summary['skipped']}/{len(store.shards)} shards",
        )

    current = [None]

    def tick(shard, rows):
        if bar is None:
            return
        if shard.index != current[0]:
            current[0] = shard.index
            bar.set_description(
                f"shard {shard.index + 1}/{len(store.shards)}", refresh=False
            )
        bar.update(rows)

    def add(stats):
        summary["shards"] += 1
        for name in ("rows", "correct", "unknown"):
            summary[name] += stats[name]

    try:
        if client is None:
            writer = _ShardWriter(estimator, options)
            for shard in todo:
                add(writer.write(store, shard, out_dir, tick))
        else:
            by_name = {s.name: s for s in todo}
            for name, stats in _map_shards(
                client, estimator, store, [s.index for s in todo], out_dir, options
            ):
                add(stats)
                tick(by_name[name], stats["rows"])
    finally:
        if bar is not None:
            bar.close()
    manifest["complete"] = True
    _write_json(os.path.join(out_dir, MANIFEST), manifest)
    if not store.has_labels:
        del summary["correct"], summary["unknown"]
    return summary


def _after_chunk(shard, rows_done):
    """Called after each chunk is written (a seam for tests that kill a run)."""
