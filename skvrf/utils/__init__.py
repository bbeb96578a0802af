"""Small helpers shared across skvrf: optional dependencies and row arithmetic.

Nothing here imports an optional dependency at import time.
"""

from ._optional import import_optional
from ._rows import normalize_rows

__all__ = ["import_optional", "normalize_rows"]
