"""Row arithmetic shared by the heads, the ZSF bank and the text embedders."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import normalize


def normalize_rows(X, dtype=None) -> np.ndarray:
    """L2-normalise the rows of a dense array; zero rows stay zero.

    Parameters
    ----------
    X : array-like of shape (n_rows, n_features)
        Rows to normalise.
    dtype : dtype, default=None
        Type of the result (and of the arithmetic); default X's floating type
        (float64 for integers).

    Returns
    -------
    X_normalized : ndarray of shape (n_rows, n_features)
        A new array.

    Examples
    --------
    >>> from skvrf.utils import normalize_rows
    >>> normalize_rows([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    X = np.asarray(X)
    if dtype is None:
        dtype = X.dtype if X.dtype.kind == "f" else np.float64
    X = np.array(X, dtype=dtype, copy=True)
    if X.shape[0] == 0:  # an empty bank: nothing to normalise
        return X
    return normalize(X, copy=False)
