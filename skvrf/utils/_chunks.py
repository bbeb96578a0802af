"""Memory budgets: how many rows of temporaries fit a number of MiB.

The one place where a ``working_memory`` in MiB becomes bytes or rows: the
ensembles' row chunks, the CV search's accuracy count and the neighbour
engine's blocks all size themselves here.
"""

from __future__ import annotations

from numbers import Real

from sklearn import get_config


def working_memory_bytes(working_memory=None) -> int:
    """A memory budget in bytes.

    Parameters
    ----------
    working_memory : float, default=None
        Budget in MiB (> 0). None: scikit-learn's ``working_memory``
        (``sklearn.get_config()["working_memory"]``, 1024 MiB by default).

    Returns
    -------
    n_bytes : int
        The budget in bytes, at least 1.

    Examples
    --------
    >>> from skvrf.utils import working_memory_bytes
    >>> working_memory_bytes(2)
    2097152
    """
    if working_memory is None:
        working_memory = get_config()["working_memory"]
    if (
        isinstance(working_memory, bool)
        or not isinstance(working_memory, Real)
        or not working_memory > 0
    ):
        raise ValueError(
            f"working_memory must be a positive number of MiB, got {working_memory!r}."
        )
    return max(1, int(working_memory * 2**20))


def chunk_n_rows(row_bytes, *, working_memory=None) -> int:
    """Rows per chunk so that a chunk's temporaries fit a memory budget.

    Like scikit-learn's (private) ``get_chunk_n_rows``, but silent when even
    one row exceeds the budget: then one row per chunk.

    Parameters
    ----------
    row_bytes : int
        Bytes of temporaries per row of a chunk (> 0).
    working_memory : float, default=None
        Budget in MiB; None: scikit-learn's ``working_memory``.

    Returns
    -------
    n_rows : int
        ``working_memory`` bytes divided by ``row_bytes``, at least 1.

    Examples
    --------
    >>> from skvrf.utils import chunk_n_rows
    >>> chunk_n_rows(8 * 1000, working_memory=1)  # 1,000 float64 values a row
    131
    """
    if not row_bytes > 0:
        raise ValueError(f"row_bytes must be positive, got {row_bytes!r}.")
    return max(1, int(working_memory_bytes(working_memory) // row_bytes))
