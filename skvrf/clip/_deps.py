"""Import torch and open_clip on demand, with an error that names the extra."""

from __future__ import annotations


def require_clip_deps():
    """Return ``(torch, open_clip)``, or raise an ImportError naming the extra."""
    from ..utils import import_optional

    torch = import_optional("torch", "skvrf.clip")
    open_clip = import_optional("open_clip", "skvrf.clip")
    return torch, open_clip
