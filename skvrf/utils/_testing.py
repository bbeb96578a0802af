"""Helpers for skvrf's own tests (private, like ``sklearn.utils._testing``).

They live in the package rather than in ``tests/`` so that test modules import
them without editing ``sys.path``.
"""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_allclose

__all__ = [
    "assert_same_search",
    "compress_geometry",
    "noisy_centres",
]


def noisy_centres(n, d, c, *, spread=1.0, noise=1.0, text_noise=0.6, shift=0.0, seed=0):
    """Rows around ``c`` Gaussian class centres, and a noisy copy of the centres.

    The copy stands in for a zero-shot head's class text embeddings: close to
    the centres, not equal to them, so that the zero-shot head makes mistakes.

    Parameters
    ----------
    n, d, c : int
        Rows, features and classes.
    spread : float, default=1.0
        Scale of the centres (standard normal times ``spread``).
    noise : float, default=1.0
        Standard deviation of the rows around their centre.
    text_noise : float, default=0.6
        Standard deviation of the copy around the centres.
    shift : float, default=0.0
        Added to every row (a covariate shift).
    seed : int, default=0
        Seed of the generator; the draws come in this order: centres, labels,
        row noise, copy noise.

    Returns
    -------
    X : ndarray of shape (n, d)
    y : ndarray of shape (n,)
        Labels ``0 .. c-1``.
    centres : ndarray of shape (c, d)
    text : ndarray of shape (c, d)

    Examples
    --------
    >>> from skvrf.utils._testing import noisy_centres
    >>> X, y, centres, text = noisy_centres(10, 3, 2)
    >>> X.shape, y.shape, centres.shape, text.shape
    ((10, 3), (10,), (2, 3), (2, 3))
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(c, d)) * spread
    y = rng.integers(0, c, n)
    X = centres[y] + rng.normal(scale=noise, size=(n, d)) + shift
    text = centres + rng.normal(scale=text_noise, size=(c, d))
    return X, y, centres, text


def assert_same_search(a, b):
    """Two fitted searches chose alike: same best parameters, same mean scores.

    Mean test scores are means of 0/1 accuracies or of float64 log-losses over
    the same rows: equal to 1e-12 unless a prediction flips.
    """
    assert a.best_params_ == b.best_params_, (a.best_params_, b.best_params_)
    assert_allclose(
        a.cv_results_["mean_test_score"],
        b.cv_results_["mean_test_score"],
        rtol=0,
        atol=1e-12,
    )


def compress_geometry(X, scale):
    """Unit rows of ``X`` mixed with one shared direction: squared distances
    times ``scale ** 2``, exactly.

    Row ``x`` becomes ``(scale * x / ||x||, sqrt(1 - scale ** 2))``: unit norm,
    and ``||x' - y'||^2 = scale ** 2 * ||x/||x|| - y/||y|| ||^2``. An encoder
    whose features share a strong mean direction (or a lower-temperature
    encoder) compresses its distances this way.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Rows (normalised here).
    scale : float
        In (0, 1].

    Returns
    -------
    X_compressed : ndarray of shape (n_samples, n_features + 1)

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.utils._testing import compress_geometry
    >>> Z = compress_geometry(np.array([[1.0, 0.0], [0.0, 1.0]]), 0.1)
    >>> round(float(((Z[0] - Z[1]) ** 2).sum()), 6)  # 2 * 0.1 ** 2
    0.02
    """
    X = np.asarray(X, dtype=np.float64)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    column = np.full((X.shape[0], 1), np.sqrt(1.0 - scale**2))
    return np.hstack([scale * X, column])
