"""Import torch and open_clip on demand, with an error that names the extra."""

from __future__ import annotations

_HINT = (
    "skvrf.clip needs torch and open_clip; install them with "
    "`pip install skvrf[clip]` (or `pip install torch open_clip_torch`)."
)


def require_clip_deps():
    """Return ``(torch, open_clip)``, or raise an ImportError naming the extra."""
    try:
        import open_clip
        import torch
    except ImportError as exc:  # pragma: no cover - exercised on core-only installs
        raise ImportError(f"{_HINT} ({exc})") from exc
    return torch, open_clip
