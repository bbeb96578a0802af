"""Small helpers shared across skvrf: optional dependencies, row arithmetic and
memory budgets.

Nothing here imports an optional dependency at import time.
"""

from ._chunks import chunk_n_rows, working_memory_bytes
from ._optional import import_optional
from ._rows import normalize_rows

__all__ = ["chunk_n_rows", "import_optional", "normalize_rows", "working_memory_bytes"]
