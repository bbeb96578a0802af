"""Public entry points: validation, backend choice, chunking and threads."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from ..utils._tensors import is_torch_tensor, on_accelerator, to_numpy
from ._bank import PreparedBank
from ._threads import _blas, _blas_threads
from ._validation import (
    check_inputs,
    check_k,
    plan_blocks,
    working_memory_bytes,
)

BACKENDS = ("auto", "numpy", "torch", "faiss")


def _faiss_installed() -> bool:
    return importlib.util.find_spec("faiss") is not None


def _cuda_in_use() -> bool:
    # Only look at CUDA when the caller already imported torch: importing
    # torch just to ask would cost seconds and hundreds of MiB on CPU hosts.
    torch = sys.modules.get("torch")
    return torch is not None and bool(torch.cuda.is_available())


def resolve_backend(backend: str) -> str:
    """Map ``"auto"`` to a concrete backend (see :func:`kneighbors`)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend != "auto":
        return backend
    if _cuda_in_use():
        return "torch"
    return "numpy"


def _engine_class(backend: str):
    if backend == "numpy":
        from ._numpy import NumpyEngine

        return NumpyEngine
    if backend == "torch":
        from ._torch import TorchEngine

        return TorchEngine
    from ._faiss import FaissEngine, import_faiss

    import_faiss()  # fail early with the install hint
    return FaissEngine


# A numpy search of fewer flops than this runs on one thread with one BLAS
# thread: waking BLAS threads costs more than it saves, and far more on a
# loaded machine (a 100 x 800 x 512 product: 1 ms on one thread, 50 ms on two
# busy-waiting OpenBLAS threads when other processes hold the cores).
_SMALL_FLOPS = 5e7


def _n_workers(n_jobs: int | None, backend: str) -> tuple[int, int | None]:
    """``(threads over query chunks, BLAS threads in each)``; the second is
    None to leave BLAS as it is.

    ``n_jobs=None`` (without a joblib context that says otherwise) with the
    numpy backend runs as many chunk threads as BLAS would run threads, each
    with one BLAS thread: the same cores, but the selection runs in parallel
    too and no BLAS thread waits for another (which costs much on a machine
    shared with other processes). An explicit ``n_jobs`` runs that many
    chunk threads with ``cpu_count // n_jobs`` BLAS threads each.
    """
    if backend == "faiss":
        return 1, None  # faiss threads internally (OpenMP)
    from joblib import effective_n_jobs

    n = max(1, int(effective_n_jobs(n_jobs)))
    if n_jobs is None and n == 1 and backend in ("numpy", "screen"):
        return min(_blas_threads(), os.cpu_count() or 1), 1
    return n, max(1, (os.cpu_count() or 1) // n)


def compute_dtype(bank_dtype) -> np.dtype:
    """The dtype of the products for a bank of ``bank_dtype``: float64 for a
    float64 bank, float32 otherwise (float16 and integer banks are computed in
    float32)."""
    return np.dtype(np.float64 if np.dtype(bank_dtype) == np.float64 else np.float32)


def _check_backend_dtype(backend: str, dtype: np.dtype) -> None:
    if backend == "faiss" and dtype == np.float64:
        raise ValueError(
            "backend='faiss' computes in float32 only, but the bank is float64 "
            "(which asks for float64 distances). Use backend='numpy' or 'torch', "
            "or pass the bank as float32 (bank.astype(np.float32))."
        )


def _prepare_bank(bank: np.ndarray, backend: str) -> np.ndarray:
    """The bank as the engines read it: C-contiguous; float16 kept as is
    (numpy and torch cast it block by block), any other dtype cast once to
    the compute dtype (no copy for a C-contiguous float32/float64 bank)."""
    dtype = compute_dtype(bank.dtype)
    if bank.dtype == np.float16 and backend != "faiss":
        return np.ascontiguousarray(bank)
    return np.ascontiguousarray(bank, dtype=dtype)


SCREENS = (None, False, True, "bfloat16", "tf32")


def _use_screen(screen, backend, dtype, n_queries, bank, n_select, values_only):
    """``None`` (no screening), ``"cpu"`` (the numpy engine with torch's
    bfloat16 products, :mod:`._screen`) or ``"torch"`` (torch operations on
    torch's device, :mod:`._torch_screen`), and the precision; see ``screen``
    in :func:`kth_neighbor_distances`."""
    if isinstance(screen, np.bool_):
        screen = bool(screen)
    if not any(screen is s or (isinstance(s, str) and screen == s) for s in SCREENS):
        raise ValueError(f"screen must be one of {SCREENS}, got {screen!r}.")
    if screen is False or n_queries == 0:
        return None, None
    resolved = resolve_backend(backend)
    if screen is None:
        if backend != "auto" or resolved != "numpy" or dtype != np.float32:
            return None, None
        from ._calibrate import prefer_screen

        wanted = prefer_screen(
            n_queries, bank.shape[0], bank.shape[1], n_select, values_only
        )
        return ("cpu", "bfloat16") if wanted else (None, None)
    precision = "bfloat16" if screen is True else screen
    if dtype != np.float32:
        raise ValueError(
            f"screen={screen!r} screens float32 products; a float64 bank asks "
            "for float64 distances. Pass the bank as float32 or float16."
        )
    if resolved == "faiss":
        raise ValueError("backend='faiss' cannot screen; use 'auto' or 'torch'.")
    from ._torch import import_torch

    import_torch()
    if resolved == "torch":
        return "torch", precision
    if precision == "tf32":
        raise ValueError(
            "screen='tf32' needs a CUDA device and backend='torch' (TF32 is a "
            "GPU tensor-core format)."
        )
    return "cpu", precision


def _search(
    queries,
    bank,
    n_select: int,
    backend: str,
    working_memory: float | None,
    n_jobs: int | None,
    finish: Callable[[int, int, np.ndarray, np.ndarray | None], None],
    values_only: bool = False,
    screen: bool | str | None = None,
) -> None:
    """Run ``finish(start, stop, values, columns)`` for every query chunk, where
    ``values`` (unsorted, in :func:`compute_dtype` of the bank) are the
    chunk's ``n_select`` largest inner products with the bank and ``columns``
    their bank rows (``None`` with ``values_only``).

    ``bank``: an array, or a :class:`PreparedBank` whose cached copies the
    engines reuse. ``queries``: an array, or a torch tensor, which the torch
    engines read on its device (computing there when it is not the CPU) and
    the others as NumPy (:func:`to_numpy`)."""
    prepared = bank if isinstance(bank, PreparedBank) else None
    dtype = compute_dtype(bank.dtype)
    n_queries, n_features = queries.shape
    screened, precision = _use_screen(
        screen, backend, dtype, n_queries, bank, n_select, values_only
    )
    backend = "screen" if screened == "cpu" else resolve_backend(backend)
    tensor = is_torch_tensor(queries)
    if tensor and backend != "torch":
        queries, tensor = to_numpy(queries), False  # these engines read NumPy
    n_workers, inner = _n_workers(n_jobs, backend)
    if backend == "numpy" and 2.0 * n_queries * bank.shape[0] * n_features < (
        _SMALL_FLOPS
    ):
        n_workers, inner = 1, 1
    budget = working_memory_bytes(working_memory)
    if prepared is None:
        bank = _prepare_bank(bank, backend)  # once, shared by all
    elif backend == "faiss":  # its float32 copy is not kept
        bank = _prepare_bank(prepared.array, backend)
    else:
        bank = prepared.get(("host",), lambda: _prepare_bank(prepared.array, backend))
    if screened == "cpu":
        from ._screen import ScreenEngine

        rows, cols, inner_rows = ScreenEngine.plan(
            n_queries,
            bank.shape[0],
            n_select,
            budget,
            n_features,
            n_workers,
            values_only,
        )
        engine = ScreenEngine(
            bank, n_select, cols, values_only=values_only, inner_rows=inner_rows
        )
    else:
        engine_cls = _engine_class(backend)
        extra = {}
        if backend == "torch":
            # the bank's device copy is kept by a PreparedBank; a tensor of
            # queries on an accelerator is searched on its device
            device = queries.device if on_accelerator(queries) else None
            extra = {"device": device, "bank_cache": prepared}
        if screened == "torch":
            from ._torch_screen import TorchScreenEngine

            engine_cls = TorchScreenEngine
            extra["precision"] = precision
        rows, cols = plan_blocks(
            n_queries,
            bank.shape[0],
            n_select,
            budget // n_workers,
            partial(
                engine_cls.row_bytes,
                n_features=n_features,
                itemsize=dtype.itemsize,
                values_only=values_only,
            ),
            n_workers,
            col_bytes=engine_cls.col_bytes(
                n_features, bank.dtype.itemsize, dtype.itemsize
            ),
        )
        engine = engine_cls(
            bank, n_select, cols, values_only=values_only, dtype=dtype, **extra
        )

    def task(start: int, stop: int) -> None:
        if tensor:  # cast and made contiguous on its device by the engine
            q = queries[start:stop]
        else:
            q = np.ascontiguousarray(queries[start:stop], dtype=dtype)
        values, columns = engine.topk(q)
        finish(start, stop, values, columns)

    chunks = [(s, min(s + rows, n_queries)) for s in range(0, n_queries, rows)]
    n_workers = min(n_workers, len(chunks))
    if backend == "faiss":
        if n_jobs is not None:
            _run_faiss_threads(chunks, task, n_jobs)
        else:
            for start, stop in chunks:
                task(start, stop)
        return
    if backend == "numpy" and n_workers <= 1 and inner is not None:
        if inner >= _blas_threads():
            inner = None  # nothing to change
    _run_threads(chunks, task, n_workers, backend, inner)


def _run_threads(chunks, task, n_workers: int, backend: str, inner) -> None:
    """Run ``task(start, stop)`` for every chunk on ``n_workers`` threads (the
    calling one included), with ``inner`` BLAS (or torch) threads each."""
    if inner is None:
        _run_pool(chunks, task, n_workers)
    elif backend in ("torch", "screen"):
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(inner)
        try:
            if backend == "screen":  # its float32 fallbacks use BLAS
                with _blas().limit(limits=inner):
                    _run_pool(chunks, task, n_workers)
            else:
                _run_pool(chunks, task, n_workers)
        finally:
            torch.set_num_threads(before)
    else:
        with _blas().limit(limits=inner):
            _run_pool(chunks, task, n_workers)


def _run_pool(chunks, task, n_workers: int) -> None:
    if n_workers <= 1:
        for start, stop in chunks:
            task(start, stop)
        return
    pending = iter(chunks)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work():
        while not errors:
            with lock:
                chunk = next(pending, None)
            if chunk is None:
                return
            try:
                task(*chunk)
            except BaseException as exc:  # re-raised in the calling thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n_workers - 1)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _run_faiss_threads(chunks, task, n_jobs: int) -> None:
    import faiss
    from joblib import effective_n_jobs

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(effective_n_jobs(n_jobs))))
    try:
        for start, stop in chunks:
            task(start, stop)
    finally:
        faiss.omp_set_num_threads(before)


def _check_call(queries, bank, backend):
    """``(queries, bank, backend)`` checked: a :class:`PreparedBank` was
    validated when it was made; ``"auto"`` is ``"torch"`` for a tensor of
    queries on an accelerator (they are searched there)."""
    queries, bank = check_inputs(
        queries, bank, bank_checked=isinstance(bank, PreparedBank)
    )
    if backend == "auto" and on_accelerator(queries):
        backend = "torch"
    return queries, bank, backend


def _to_distances(values: np.ndarray) -> np.ndarray:
    d = 2.0 - 2.0 * values.astype(np.float64, copy=False)
    return np.clip(d, 0.0, 4.0, out=d)


def kth_neighbor_distances(
    queries,
    bank,
    k: int | Sequence[int],
    *,
    backend: str = "auto",
    working_memory: float | None = None,
    n_jobs: int | None = None,
    screen: bool | str | None = None,
) -> np.ndarray:
    """Squared L2 distance from every query to its ``k``-th nearest bank row.

    Rows are assumed L2-normalised **by the caller** (this function does not
    normalise), so the squared distance is ``d = 2 - 2 q.b``, reported clipped
    to ``[0, 4]``. The ``k`` nearest rows are the ``k`` largest inner products.

    Parameters
    ----------
    queries : array-like or torch.Tensor of shape (n_queries, n_features)
        Unit-norm query rows; float16, float32 or float64, any memory layout.
        Cast chunk by chunk to the dtype of the computation (see ``bank``).
        A torch tensor (any device, dtype, strides; one that requires grad is
        read detached) is never copied whole to the host where the torch
        backend runs: it is validated on its device, and each chunk is cast
        there; on a device other than the CPU the search runs on that device
        (and ``backend="auto"`` means ``"torch"``). The other backends read a
        CPU tensor as a NumPy view and copy any other to the host.
    bank : array-like or PreparedBank of shape (n_bank, n_features)
        Unit-norm reference rows (the ZSF set). A :class:`PreparedBank` is
        validated once and keeps the torch backend's device copy between
        calls (otherwise the bank is copied to the device once per call). Its
        dtype sets the precision:
        a float64 bank is computed in float64 (queries are cast up to it);
        any other dtype (float32, float16, integers) in float32. A float16
        bank is never copied whole to float32: each block is cast (exactly)
        just before its products, within ``working_memory`` (``"faiss"``
        needs its own float32 copy). Other dtypes are converted once to a
        C-contiguous array of the compute dtype (no copy if it already is
        one).
    k : int or sorted sequence of int
        1-based rank (``k=1`` is the nearest row), ``1 <= k <= n_bank``. A
        non-decreasing sequence gives one column per rank from a single pass
        (the ``max(k)`` nearest rows are selected once).
    backend : {"auto", "numpy", "torch", "faiss"}, default="auto"
        ``"numpy"``: blocked GEMM and an exact selection chosen per block
        shape (row maximum, whole-row partition, group maxima or a
        group-maximum threshold, from a cost model). ``"torch"``: blocked
        GEMM with a group-maximum selection in torch ops, on CUDA when
        ``torch.cuda.is_available()``, else on CPU threads (TF32 is switched
        off for the call). ``"faiss"``: ``faiss.IndexFlatIP`` (the ``faiss``
        extra), float32 only: a float64 bank is refused (cast it, or
        use another backend). ``"auto"``: ``"torch"`` when torch is already
        imported and sees a CUDA device, else ``"numpy"``, screened in
        bfloat16 where ``screen`` allows and the calibration predicts it
        faster (see :ref:`neighbors-benchmark`).
    working_memory : float, optional
        MiB that the temporary blocks of products and selection buffers may
        use, shared by all workers; default 256. Queries are chunked to fit
        and, when one query row against the whole bank does not fit, the bank
        is split into column blocks whose partial results are merged. The
        floor is one query row by ``max(k)`` bank rows (for the screened
        search: blocks of ``max(4k, 2048)`` bank rows and a few MiB of
        candidate buffers). faiss blocks internally and is only chunked here
        to bound its result arrays.
    n_jobs : int, optional
        Threads over query chunks, as in scikit-learn (``-1`` all CPUs). The
        bank is shared by all threads, never copied. With more than one
        thread BLAS (or torch) threads are limited to ``cpu_count // n_jobs``
        for the duration of the call. For faiss it sets the OpenMP thread
        count instead. ``None`` (unless a joblib context says otherwise) uses
        the cores BLAS would use, but as that many chunk threads with one
        BLAS thread each (selection runs in parallel too, and no BLAS thread
        waits for another on a loaded machine); a search under about 5e7
        flops runs on one thread.
    screen : {None, True, False, "bfloat16", "tf32"}, default=None
        Screen the products in low precision and recompute in float32 every
        product the proven error bound cannot exclude (the module
        ``skvrf.neighbors._screen`` states the bound and its proof): the
        result is the float32 result. ``None``: only with ``backend="auto"``
        on a CPU with AVX512-BF16 or AMX, torch installed, a float32 or
        float16 bank, and where a cached calibration measured on this machine
        predicts it faster (the first such call imports torch; the
        environment variable ``SKVRF_SCREEN=0`` turns it off). ``True`` or
        ``"bfloat16"``: always (torch's bfloat16 products; on the CPU, or on
        torch's device with ``backend="torch"``). ``"tf32"``: TF32 tensor-core
        products, ``backend="torch"`` on CUDA. ``False``: never.

    Returns
    -------
    distances : ndarray of float64, shape (n_queries,) or (n_queries, len(k))
        NumPy, also for tensor queries (the ``n_queries x max(k)`` selected
        products come to the host, chunk by chunk, never the queries or the
        bank). Shape ``(n_queries,)`` for an int ``k``, one column per rank
        for a sequence. Products are computed in float32 unless the bank is
        float64, so values carry float32 rounding (about 1e-6 for unit
        vectors), or float64 rounding (about 1e-15) for a float64 bank. The
        order in which a float32 dot product is summed differs between
        engines (BLAS, torch, the screen's re-ranking), hence results by a
        few units of float32 rounding.

    Raises
    ------
    ValueError
        Empty bank, feature dimensions that differ, NaN or infinity, ``k < 1``,
        ``k`` unsorted or larger than the bank, a float64 bank with
        ``backend="faiss"`` or with ``screen`` set, ``screen="tf32"`` off
        CUDA.

    See Also
    --------
    kneighbors : the nearest rows themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.neighbors import kth_neighbor_distances
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> queries = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> kth_neighbor_distances(queries, bank, k=1, backend="numpy")
    array([0., 2.])
    >>> kth_neighbor_distances(queries, bank, k=[1, 3], backend="numpy")
    array([[0., 4.],
           [2., 4.]])
    """
    _engine_class(resolve_backend(backend))  # unknown or missing: fail early
    queries, bank, backend = _check_call(queries, bank, backend)
    _check_backend_dtype(resolve_backend(backend), compute_dtype(bank.dtype))
    ks, scalar = check_k(k, bank.shape[0])
    n_queries = queries.shape[0]
    out = np.empty((n_queries, len(ks)), dtype=np.float64)
    n_select = int(ks[-1])
    kth = ks - 1
    uniq = np.unique(kth)

    def finish(start, stop, values, columns):
        if len(ks) == 1 and values.shape[1] == n_select:
            # the k-th largest product is the smallest of the k largest
            out[start:stop, 0] = _to_distances(values.min(axis=1))
            return
        d = _to_distances(values)
        d.partition(uniq, axis=1)
        out[start:stop] = d[:, kth]

    if n_queries:
        _search(
            queries,
            bank,
            n_select,
            backend,
            working_memory,
            n_jobs,
            finish,
            values_only=True,
            screen=screen,
        )
    return out[:, 0] if scalar else out


def kneighbors(
    queries,
    bank,
    n_neighbors: int,
    *,
    backend: str = "auto",
    working_memory: float | None = None,
    n_jobs: int | None = None,
    screen: bool | str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_neighbors`` nearest bank rows of every query.

    Squared L2 distances between L2-normalised rows (the **caller**
    normalises): ``d = 2 - 2 q.b``, clipped to ``[0, 4]``.

    Parameters
    ----------
    queries : array-like or torch.Tensor of shape (n_queries, n_features)
        Unit-norm query rows; float16, float32 or float64, any memory layout;
        a torch tensor as in :func:`kth_neighbor_distances`.
    bank : array-like or PreparedBank of shape (n_bank, n_features)
        Unit-norm reference rows. A float64 bank is computed in float64
        (queries cast up to it), any other dtype in float32, as in
        :func:`kth_neighbor_distances`.
    n_neighbors : int
        How many neighbours, ``1 <= n_neighbors <= n_bank``.
    backend : {"auto", "numpy", "torch", "faiss"}, default="auto"
        As in :func:`kth_neighbor_distances`.
    working_memory : float, optional
        As in :func:`kth_neighbor_distances`.
    n_jobs : int, optional
        As in :func:`kth_neighbor_distances`.
    screen : {None, True, False, "bfloat16", "tf32"}, default=None
        As in :func:`kth_neighbor_distances`.

    Returns
    -------
    distances : ndarray of float64, shape (n_queries, n_neighbors)
        Ascending in each row; computed in float32, or in float64 for a
        float64 bank.
    indices : ndarray of int64, shape (n_queries, n_neighbors)
        Bank rows of those distances. Equal distances are ordered by bank
        index. When rows tie at the ``n_neighbors``-th distance, which of them
        is returned is not specified (backends may differ); the distances are.

    Examples
    --------
    >>> import numpy as np
    >>> from skvrf.neighbors import kneighbors
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> dist, ind = kneighbors(np.array([[0.0, 1.0]]), bank, 3, backend="numpy")
    >>> dist
    array([[0., 2., 2.]])
    >>> ind
    array([[1, 0, 2]])
    """
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int | np.integer):
        raise TypeError(f"n_neighbors must be an int, got {n_neighbors!r}.")
    _engine_class(resolve_backend(backend))  # unknown or missing: fail early
    queries, bank, backend = _check_call(queries, bank, backend)
    _check_backend_dtype(resolve_backend(backend), compute_dtype(bank.dtype))
    (n_select,), _ = check_k(n_neighbors, bank.shape[0], name="n_neighbors")
    n_queries = queries.shape[0]
    dist = np.empty((n_queries, n_select), dtype=np.float64)
    ind = np.empty((n_queries, n_select), dtype=np.int64)

    def finish(start, stop, values, columns):
        d = _to_distances(values)
        order = np.lexsort((columns, d), axis=-1)
        dist[start:stop] = np.take_along_axis(d, order, axis=1)
        ind[start:stop] = np.take_along_axis(columns, order, axis=1)

    if n_queries:
        _search(
            queries,
            bank,
            int(n_select),
            backend,
            working_memory,
            n_jobs,
            finish,
            screen=screen,
        )
    return dist, ind
