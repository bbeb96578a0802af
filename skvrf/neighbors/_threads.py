"""The BLAS thread pools of the process, as the neighbour engines limit them."""

from __future__ import annotations

_BLAS_CONTROLLER = None


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries (cached: the
    first call scans the process's shared libraries)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController().select(user_api="blas")
    return _BLAS_CONTROLLER


def _blas_threads() -> int:
    """The BLAS thread count now in force (1 when no BLAS is known)."""
    return max([1, *(int(lib["num_threads"]) for lib in _blas().info())])
