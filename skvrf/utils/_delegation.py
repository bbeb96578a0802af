"""What a meta-estimator takes over from the estimator it wraps: keyword
parameters with their documentation, and methods that call a fitted estimator.

Taken from the wrapped class, never written again by hand, so that they cannot
drift from it.
"""

from __future__ import annotations

import inspect

from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

_SECTION = "    Parameters\n    ----------\n"


def parameter_entries(doc, names):
    """The numpydoc entries of ``names`` in the Parameters section of ``doc``.

    Parameters
    ----------
    doc : str
        A class or function docstring (numpydoc, entries indented by 4 spaces).
    names : iterable of str
        Parameters to take, in this order; names without an entry are skipped.

    Returns
    -------
    entries : str
        The entries, each with its description, joined by newlines.

    Examples
    --------
    >>> from skvrf.utils._delegation import parameter_entries
    >>> doc = '''Sum.
    ...
    ...     Parameters
    ...     ----------
    ...     a : int
    ...         First.
    ...     b : int
    ...         Second.
    ...     '''
    >>> print(parameter_entries(doc, ["b"]))
        b : int
            Second.
    """
    section = doc.split(_SECTION, 1)[1].split("\n\n    ", 1)[0]  # to the next one
    entries, current = {}, None
    for line in section.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            current = line.strip().split(" : ")[0]
            entries[current] = [line]
        elif current is not None:
            entries[current].append(line)
    return "\n".join("\n".join(entries[n]) for n in names if n in entries)


def add_keyword_parameters(cls, wrapped, names, after):
    """Give ``cls.__init__`` the parameters ``names`` of ``wrapped.__init__``.

    For a meta-estimator whose ``__init__`` takes the wrapped estimator's
    parameters through ``**kwargs``: ``cls.__init__``'s signature becomes its
    own parameters (less ``**kwargs``) followed by ``names``, keyword-only, so
    that scikit-learn's ``get_params``, ``set_params`` and ``clone`` see each of
    them by name; and their entries in ``wrapped``'s docstring are inserted into
    ``cls``'s after the line ``after``, except those ``cls`` documents itself.

    Parameters
    ----------
    cls : type
        The meta-estimator (changed in place).
    wrapped : type
        The estimator whose parameters are taken over.
    names : iterable of str
        The parameters taken over.
    after : str
        A line of ``cls.__doc__``'s Parameters section, newline included.

    Returns
    -------
    cls : type
        The same class.
    """
    names = list(names)
    own = inspect.signature(cls.__init__).parameters
    theirs = inspect.signature(wrapped.__init__).parameters
    kept = [p for p in own.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    added = [
        theirs[name].replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name in names
        if name not in own
    ]
    cls.__init__.__signature__ = inspect.Signature(kept + added)
    if cls.__doc__ is None or wrapped.__doc__ is None:  # python -OO
        return cls
    undocumented = [n for n in names if f"\n    {n} : " not in cls.__doc__]
    entries = parameter_entries(wrapped.__doc__, undocumented)
    cls.__doc__ = cls.__doc__.replace(after, after + entries + "\n")
    return cls


def delegate_methods(cls, wrapped, names, attribute, check):
    """Give ``cls`` methods ``names`` that call ``getattr(self, attribute)``'s.

    Each carries ``wrapped``'s method's signature and docstring (its summary
    line followed by "(of ``<attribute>``)"), checks that ``self`` is fitted,
    and is available when ``check(self)`` is true
    (:func:`sklearn.utils.metaestimators.available_if`).

    Parameters
    ----------
    cls : type
        The meta-estimator (changed in place).
    wrapped : type
        The wrapped estimator's class.
    names : iterable of str
        The methods.
    attribute : str
        The fitted attribute that holds the wrapped estimator.
    check : callable
        ``check(self) -> bool``: whether the methods are available.

    Returns
    -------
    cls : type
        The same class.
    """
    for name in names:
        setattr(cls, name, available_if(check)(_delegate(wrapped, name, attribute)))
    return cls


def _delegate(wrapped, name, attribute):
    target = getattr(wrapped, name)

    def method(self, *args, **kwargs):
        check_is_fitted(self)
        return getattr(getattr(self, attribute), name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.signature(target)
    if target.__doc__ is not None:  # None under python -OO
        summary, _, rest = target.__doc__.partition("\n")
        method.__doc__ = f"{summary} (of ``{attribute}``)\n{rest}"
    return method
