"""``cv_results_`` in ``GridSearchCV``'s layout, for searches that score their
candidates themselves."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import rankdata

from ._warnings import user_stacklevel


def cv_results(params, test_score, fit_time, score_time, per_split=None):
    """A search's ``cv_results_`` laid out as ``GridSearchCV`` lays out its own.

    Parameters
    ----------
    params : list of dict
        The candidates, in ``ParameterGrid`` order.
    test_score, fit_time, score_time : array-like of shape (n_candidates, n_splits)
        Each candidate's score and times on each split. A non-finite mean
        score warns, as ``GridSearchCV`` does, and ranks last.
    per_split : dict of str to array-like of shape (n_candidates, n_splits), \
default=None
        Further quantities, stored like the test score
        (``split{i}_<name>``, ``mean_<name>``, ``std_<name>``), before it.

    Returns
    -------
    results : dict
        ``mean_fit_time``, ``std_fit_time``, ``mean_score_time``,
        ``std_score_time``, one masked array ``param_<name>`` per parameter,
        ``params``, ``per_split``'s entries, ``split{i}_test_score``,
        ``mean_test_score``, ``std_test_score`` and ``rank_test_score`` (1 is
        the best; ties share the lowest rank).

    Examples
    --------
    >>> from skvrf.utils._cv_results import cv_results
    >>> res = cv_results([{"a": 1}, {"a": 2}], [[0.5, 0.7], [0.9, 0.9]],
    ...                  [[1, 1], [1, 1]], [[0, 0], [0, 0]])
    >>> res["mean_test_score"].tolist(), res["rank_test_score"].tolist()
    ([0.6, 0.9], [2, 1])
    """
    n_candidates, results = len(params), {}

    def store(key, array, splits=True):
        array = np.asarray(array, dtype=np.float64)
        if splits:
            for i in range(array.shape[1]):
                results[f"split{i}_{key}"] = array[:, i]
        results[f"mean_{key}"] = means = array.mean(axis=1)
        results[f"std_{key}"] = np.sqrt(((array - means[:, None]) ** 2).mean(axis=1))
        return means

    store("fit_time", fit_time, splits=False)
    store("score_time", score_time, splits=False)
    for name in sorted({name for p in params for name in p}):
        values = [p[name] for p in params]
        kind = np.array(values).dtype.kind
        results[f"param_{name}"] = np.ma.MaskedArray(
            np.array(values, dtype=object if kind in "US" else None),
            mask=np.zeros(n_candidates, dtype=bool),
        )
    results["params"] = params
    for name, array in (per_split or {}).items():
        store(name, array)
    means = store("test_score", test_score)
    if not np.isfinite(means).all():
        warnings.warn(
            f"One or more of the test scores are non-finite: {means}",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    finite = np.isfinite(means)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1 if finite.any() else 0)
    results["rank_test_score"] = rankdata(-filled, method="min").astype(np.int32)
    return results
