"""Where a warning points: at the user's code, not inside skvrf or scikit-learn."""

from __future__ import annotations

import os
import sys

import sklearn

# frames in these folders are skipped (os.sep: no match on "skvrf_other/")
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (os.path.dirname(os.path.abspath(__file__)), sklearn.__file__)
)


def user_stacklevel() -> int:
    """``stacklevel`` for ``warnings.warn`` that points at the first caller
    outside skvrf and scikit-learn.

    A fixed ``stacklevel`` breaks whenever a call moves one function deeper
    (``fit`` runs in scikit-learn's ``_fit_context`` wrapper and skvrf's chunked
    fit), and the warning then names a line of a library file. Call it as the
    argument of ``warnings.warn`` in the function that warns.

    Returns
    -------
    stacklevel : int
        1 for the function that warns, 2 for its caller, ... up to the first
        frame whose file is not in skvrf's or scikit-learn's folder.

    Examples
    --------
    >>> import warnings
    >>> from skvrf.utils._warnings import user_stacklevel
    >>> def inside():  # a function of this doctest, not of skvrf
    ...     return user_stacklevel()
    >>> inside()
    1
    """
    frame = sys._getframe(1)  # the function that warns
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame = frame.f_back
        level += 1
    return level
