"""Sphinx configuration of the skvrf documentation (offline build).

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
API stubs go to ``docs/generated/`` (autosummary) and the example gallery to
``docs/auto_examples/`` (sphinx-gallery); both are git-ignored.
"""

import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # import the checkout, not an installed copy
sys.path.insert(0, str(HERE / "_ext"))  # skvrf_docs: executed code, CLI reference

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import skvrf

project = "skvrf"
author = "The skvrf developers"
copyright = "The skvrf developers, BSD-3-Clause"
release = skvrf.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # a bundled MathJax: formulas render without network access
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
    # ``executed-code`` (getting started and home page snippets run in every
    # build), ``skvrf-cli`` (the command-line reference from the parsers), the
    # gallery order and the API constants' docstrings
    "skvrf_docs",
]

templates_path = ["_templates"]
# _demo: the build's runs of ``skvrf demo`` (their figures and numbers)
exclude_patterns = ["_build", "_demo", "generated/*.examples", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"  # `x` renders as code, never a broken cross-reference
# Every cross-reference to skvrf must resolve (a misspelt or removed name fails
# the -W build); references into other projects cannot resolve offline (no
# intersphinx) and are let through.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(sklearn|numpy|np|scipy|torch|open_clip|matplotlib|pandas|joblib|dask|"
        r"faiss|skops|safetensors|PIL|sentence_transformers|pathlib|os)\..*",
    ),
]

# -- autodoc / autosummary -----------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"  # the numpydoc sections carry the types
add_module_names = False

# -- numpydoc ------------------------------------------------------------------
# Members are listed by the autosummary templates, not by numpydoc, so private
# helpers never get rendered; references in docstrings are resolved against the
# documented API and a broken one fails the -W build.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False  # no intersphinx offline: types stay plain text
# Public docstrings must have a summary and document their parameters/returns.
numpydoc_validation_checks = {"GL08", "SS01", "PR01", "RT01"}
numpydoc_validation_exclude = {
    r"\._",  # private modules and helpers
    r"\.[A-Z][A-Z0-9_]*$",  # constants (documented in api.rst)
    r"\.__init__$",
    r"\.__getstate__$",
    r"\.__sklearn_tags__$",
    r"\.set_.*_request$",  # scikit-learn's generated metadata-routing methods
    r"\.get_metadata_routing$",
}

# -- sphinx-gallery -----------------------------------------------------------
# Every ``plot_*.py`` runs during the build; the other scripts need real weights
# or datasets (``clip_*.py``, ``imagenet_reproduction.py``) and are rendered
# without running (each says so, with its expected output); ``real_*.py`` and
# private ``_*.py`` are not listed. The order is the newcomer's
# (``skvrf_docs.GALLERY_ORDER``): the quickstart first.
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"(/real_|/_)[^/]*\.py$",
    "within_subsection_order": "skvrf_docs.GalleryOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "plot_gallery": "True",
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "backreferences_dir": str(HERE / "generated"),
    "doc_module": ("skvrf",),
    "show_memory": False,
    "min_reported_time": 1,
}

# -- skvrf demo runs (skvrf_docs: demo-figure, demo-value, demo-check) -----------
# Run (or found cached in docs/_demo/) when the build starts, so that the
# benchmark pages' figures and values are those of the code being built.
skvrf_demo_benchmarks = ["wordnet-supersenses", "wordnet-verbs"]

# -- matplotlib plot directive (figures drawn by the docs build) ---------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": True}

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvrf {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    # Getting started, User guide, API, Examples, Benchmark; the rest in "More"
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
# Pages without sub-pages get no (empty) section navigation; the user guide's
# pages list each other.
html_sidebars = {
    page: []
    for page in (
        "index",
        "getting_started",
        "benchmark",
        "benchmark_search",
        "faq",
        "glossary",
        "changelog",
        "citing",
        "developer_notes",
    )
}
html_static_path = ["_static"]
html_css_files = ["skvrf.css"]
html_show_sourcelink = False
html_copy_source = False

# Offline: never fetch anything while building.
intersphinx_mapping = {}
linkcheck_ignore = [r".*"]

warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg",
)

# Methods inherited from scikit-learn (``score``, ``get_params`` ...) carry
# cross-references into scikit-learn's own documentation, which an offline
# build cannot resolve: render those roles as plain text.
import re

_SKLEARN_ROLE = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*(?:<[^`>]*>)?`")


def _plain_sklearn_references(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("sklearn"):
        return
    lines[:] = [_SKLEARN_ROLE.sub(r"\1", line) for line in lines]


# Pages written separately: until one exists, its toctree entry on the home page
# is dropped (Sphinx's "empty glob" warning cannot be suppressed).
OPTIONAL_PAGES = ("benchmark_search", "benchmark_wordnet_verbs")
_TOCTREE_ENTRY = re.compile(r"^\s+(?:[^<]*<)?([\w/]+)>?\s*$")


def _drop_missing_pages(app, docname, source):
    if docname != "index":
        return
    missing = {p for p in OPTIONAL_PAGES if not (HERE / f"{p}.rst").exists()}

    def kept(line):
        m = _TOCTREE_ENTRY.match(line)
        return not (m and m.group(1) in missing)

    if missing:
        source[0] = "\n".join(line for line in source[0].split("\n") if kept(line))


def setup(app):
    app.connect("source-read", _drop_missing_pages)
    # numpydoc's handler runs at priority 500; ours first
    app.connect("autodoc-process-docstring", _plain_sklearn_references, priority=400)
