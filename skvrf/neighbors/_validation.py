"""Input checks and block planning shared by every neighbour backend."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ..utils import working_memory_bytes as _budget_bytes
from ..utils._tensors import check_tensor, is_torch_tensor

# MiB of one block of the search when the caller gives none. Not scikit-learn's
# ``working_memory`` (1024 MiB by default): the block is allocated on top of one
# of scikit-learn's row chunks (an ensemble searches the bank inside
# ``iter_component_outputs``), so the two peaks add; and 256 MiB already holds
# the float32 products of ``_TARGET_ROWS`` (1,024) query rows, the GEMM's
# efficient size, against 65,536 bank rows.
DEFAULT_WORKING_MEMORY = 256
_TARGET_ROWS = 1024  # query rows per block that keep the GEMM efficient


def check_matrix(X, name: str) -> np.ndarray:
    """Return ``X`` as a 2-D real array (no copy when possible), or raise."""
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (n_rows, n_features), got {X.ndim} dims "
            f"with shape {X.shape}."
        )
    if X.dtype.kind == "f" and X.size:
        _check_finite(X, name)
    return X


def _check_finite(X: np.ndarray, name: str) -> None:
    # The sum of the values is finite when every value is (NaN and infinity
    # propagate): one pass, no boolean array the size of X. It is taken in
    # X's own dtype (float32 sums run at memory speed, four times faster than
    # a float64 accumulation), float16 in float32 (a float16 sum overflows).
    # A sum that is not finite may still come from finite values (overflow,
    # +inf + -inf = NaN): then row blocks are checked one by one.
    total = X.sum(dtype=np.float32 if X.dtype == np.float16 else None)
    if np.isfinite(total):
        return
    step = max(1, (1 << 22) // max(1, X.shape[1]))
    if all(np.isfinite(X[i : i + step]).all() for i in range(0, len(X), step)):
        return
    raise ValueError(f"{name} contains NaN or infinity.")


def check_inputs(queries, bank, bank_checked: bool = False):
    """Validate a query set and a bank; return them as 2-D arrays.

    A torch tensor of queries is checked on its device and returned as a
    (detached) tensor. ``bank_checked``: the bank was validated before (a
    :class:`~skvrf.neighbors.PreparedBank`); only its shape is compared."""
    if is_torch_tensor(queries):
        queries = check_tensor(queries, "queries")
    else:
        queries = check_matrix(queries, "queries")
    if not bank_checked:
        bank = check_matrix(bank, "bank")
    if bank.shape[0] == 0:
        raise ValueError("bank is empty: at least one bank row is needed.")
    if queries.shape[1] != bank.shape[1]:
        raise ValueError(
            f"queries have {queries.shape[1]} features but bank has "
            f"{bank.shape[1]}: the dimensions must match."
        )
    if bank.shape[1] == 0:
        raise ValueError("queries and bank have 0 features.")
    return queries, bank


def check_k(k, n_bank: int, name: str = "k") -> tuple[np.ndarray, bool]:
    """Return ``(ks, scalar)``: the 1-based ranks as an int array and whether
    ``k`` was a single int."""
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        ks, scalar = np.array([int(k)]), True
    elif isinstance(k, Sequence | np.ndarray) and not isinstance(k, str):
        arr = np.asarray(k)
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
            raise ValueError(
                f"{name} must be an int or a non-empty 1-D sequence of ints, got {k!r}."
            )
        ks, scalar = arr.astype(np.int64), False
    else:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {k!r}.")
    if ks.min() < 1:
        raise ValueError(f"{name} must be >= 1 (1 is the nearest row), got {k!r}.")
    if np.any(np.diff(ks) < 0):
        raise ValueError(f"{name} must be sorted in increasing order, got {k!r}.")
    if ks.max() > n_bank:
        raise ValueError(
            f"{name}={int(ks.max())} is larger than the bank, which has {n_bank} rows."
        )
    return ks, scalar


def working_memory_bytes(working_memory: float | None) -> int:
    """MiB -> bytes; ``None`` means the engine's default, 256 MiB."""
    if working_memory is None:
        working_memory = DEFAULT_WORKING_MEMORY
    return _budget_bytes(working_memory)


def plan_blocks(
    n_queries: int,
    n_bank: int,
    n_select: int,
    budget: int,
    row_bytes: Callable[[int, int], int],
    n_workers: int = 1,
    col_bytes: int = 0,
) -> tuple[int, int]:
    """Choose ``(query_rows, bank_cols)`` for one block.

    ``row_bytes(n_cols, n_select)`` is what one query row costs a backend
    against ``n_cols`` bank rows (products and selection temporaries);
    ``col_bytes`` what one bank row of the block costs once (e.g. its float32
    cast when the bank is float16). The block holds ``query_rows *
    row_bytes(bank_cols) + bank_cols * col_bytes`` bytes, at most ``budget``:
    the whole bank when ``_TARGET_ROWS`` query rows fit, else the bank is
    split into column blocks (each at least ``n_select`` wide) whose partial
    top-k are merged by the backend. If even one row by ``n_select`` columns
    does not fit, that minimum is used.
    """
    n_queries = max(n_queries, 1)
    target = min(n_queries, _TARGET_ROWS)
    if n_workers > 1:  # give every worker a chunk
        target = min(target, -(-n_queries // n_workers))

    def cost(rows: int, cols: int) -> int:
        return rows * row_bytes(cols, n_select) + cols * col_bytes

    free = budget - n_bank * col_bytes
    rows_whole = free // max(1, row_bytes(n_bank, n_select)) if free > 0 else 0
    if rows_whole >= target:
        # one worker: as many rows as fit (a multi-threaded BLAS call has a
        # fixed cost, large blocks amortise it); several: one chunk each
        return min(rows_whole, target if n_workers > 1 else n_queries), n_bank
    cols_min = min(n_bank, max(n_select, 1))
    rows = target
    while rows > 1 and cost(rows, cols_min) > budget:
        rows //= 2
    # largest column block with cost(rows, cols) <= budget (bisection)
    lo, hi = cols_min, n_bank
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(rows, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    n_blocks = -(-n_bank // lo)
    cols = -(-n_bank // n_blocks)  # balance the blocks
    return rows, max(cols, cols_min)
