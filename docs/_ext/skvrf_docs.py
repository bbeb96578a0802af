"""Sphinx helpers of the skvrf documentation.

``.. executed-code:: python`` / ``.. executed-code:: bash``
    Shows a code block and runs it while the page is read, so that the page's
    snippets run as written in every build (``sphinx -W`` fails when one
    raises or exits non-zero). Blocks of one *session* (``:session:``, default
    one per page) share a fresh temporary working directory and, for Python, one
    namespace (``:namespace:`` gives a block a fresh one of that name); bash
    blocks run with the Python of the build first on ``PATH`` (so ``skvrf`` and
    ``python`` are the ones being documented). ``:file: NAME`` writes a Python
    block to ``NAME`` in the session's folder and runs ``python NAME`` there.
    What the code prints (stdout, stderr, warnings) is shown below it, unless
    ``:hide-output:``.

``.. not-executed-code:: python`` (or ``bash``, ...) with ``:reason: TEXT``
    A code block that the build shows without running, and says why (the
    reason is required: it needs network access, pretrained weights, real
    image folders, a cluster, an install, hours). Every other Python or shell
    block of a page is an ``executed-code`` block: ``tests/test_docs.py`` fails
    on a ``code-block``, ``code`` or Python ``::`` literal block. The reason is
    not shown on the page (say it in the text where the reader needs it).

``.. skvrf-cli::``
    The command-line reference, rendered from ``skvrf.cli.build_parser()``:
    every subcommand, its description and every option.

:class:`GalleryOrder`
    The order of the example gallery (``within_subsection_order``).

Search excerpts from files
    The search page shows an excerpt of each result also when the site is
    opened from files (``_static/skvrf_search_texts.js``, the pages' text, and
    ``_static/skvrf_search_offline.js``, which serves it to the search).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pprint
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
import warnings
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.nodes import nested_parse_with_titles

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]

# -- executed code -------------------------------------------------------------

# (docname, session) -> {"cwd": folder, "ns": namespace}
_SESSIONS: dict[tuple[str, str], dict] = {}
_TIMEOUT_S = 900


def _session(docname: str, name: str) -> dict:
    key = (docname, name)
    if key not in _SESSIONS:
        folder = tempfile.mkdtemp(prefix=f"skvrf-docs-{Path(docname).name}-{name}-")
        _SESSIONS[key] = {"cwd": folder, "namespaces": {}}
    return _SESSIONS[key]


def _reset_sessions(app, docname, source):
    """Each read of a page starts its sessions afresh."""
    for key in [k for k in _SESSIONS if k[0] == docname]:
        shutil.rmtree(_SESSIONS.pop(key)["cwd"], ignore_errors=True)


def _cleanup(app, exception):
    for key in list(_SESSIONS):
        shutil.rmtree(_SESSIONS.pop(key)["cwd"], ignore_errors=True)


def _show_warning(out):
    def show(message, category, filename, lineno, file=None, line=None):
        out.write(f"{category.__name__}: {message}\n")

    return show


def _run_python(
    code: str, session: dict, namespace: str, label: str
) -> tuple[str, str | None]:
    ns = session["namespaces"].setdefault(namespace, {"__name__": "__main__"})
    out = io.StringIO()
    error = None
    previous = os.getcwd()
    os.chdir(session["cwd"])
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
            warnings.catch_warnings(),
        ):
            # warnings where they happen, as a terminal shows them (not the
            # deprecation warnings a terminal hides)
            warnings.simplefilter("default")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            warnings.showwarning = _show_warning(out)
            try:
                exec(compile(code, label, "exec"), ns)
            except BaseException:
                error = traceback.format_exc()
    finally:
        os.chdir(previous)
    return out.getvalue(), error


def _run_bash(code: str, session: dict) -> tuple[str, str | None]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    try:
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", code],
            cwd=session["cwd"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        return str(exc.output or ""), f"timed out after {_TIMEOUT_S} s"
    error = None if done.returncode == 0 else f"exit status {done.returncode}"
    return done.stdout, error


def _clean_output(text: str) -> str:
    """Drop progress-bar redraws (carriage returns) and trailing blank lines."""
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


class ExecutedCode(Directive):
    """A code block that the documentation build runs (see the module docstring)."""

    required_arguments = 1  # python or bash
    has_content = True
    option_spec = {
        "session": directives.unchanged,
        "namespace": directives.unchanged,
        "file": directives.unchanged,
        "hide-output": directives.flag,
        "caption": directives.unchanged,
    }

    def run(self):
        language = self.arguments[0]
        if language not in ("python", "bash"):
            raise self.error("executed-code: the language is python or bash")
        env = self.state.document.settings.env
        code = "\n".join(self.content)
        session = _session(env.docname, self.options.get("session", "page"))
        source, line = self.state_machine.get_source_and_line(self.lineno)
        if "file" in self.options:
            name = self.options["file"]
            if language != "python" or os.sep in name or not name.endswith(".py"):
                raise self.error("executed-code: ':file:' takes a python file name")
            Path(session["cwd"], name).write_text(code + "\n", encoding="utf-8")
            output, error = _run_bash(f"python {name}", session)
        elif language == "python":
            namespace = self.options.get("namespace", "")
            output, error = _run_python(code, session, namespace, f"{source}:{line}")
        else:
            output, error = _run_bash(code, session)
        output = _clean_output(output)
        shown = nodes.literal_block(code, code, language=language)
        shown["classes"].append("executed-code")
        result = [shown]
        if "caption" in self.options:
            result.insert(0, nodes.rubric(text=self.options["caption"]))
        if error is not None:
            logger.warning(
                "executed-code block failed (%s):\n%s",
                error,
                textwrap.indent(output or "(no output)", "    "),
                location=(env.docname, line),
            )
        if output and "hide-output" not in self.options:
            para = nodes.paragraph()
            para += nodes.emphasis(text="Output:")
            para["classes"].append("executed-output-label")
            block = nodes.literal_block(output, output, language="none")
            block["classes"].append("executed-output")
            result += [para, block]
        return result


class NotExecutedCode(Directive):
    """A code block shown without running, with the reason (module docstring)."""

    required_arguments = 1  # the language
    has_content = True
    option_spec = {
        "reason": directives.unchanged_required,
        "caption": directives.unchanged,
    }

    def run(self):
        if not self.options.get("reason", "").strip():
            raise self.error("not-executed-code: say why with ':reason:'")
        code = "\n".join(self.content)
        shown = nodes.literal_block(code, code, language=self.arguments[0])
        shown["classes"].append("not-executed-code")
        if "caption" in self.options:
            return [nodes.rubric(text=self.options["caption"]), shown]
        return [shown]


# -- command-line reference ----------------------------------------------------


_OPTION = re.compile(r"(?<![\w`-])(--[a-zA-Z][\w-]*)")


def _escape(text: str) -> str:
    """Plain text as reStructuredText: markup characters escaped, options literal
    (``--model``, not an en dash)."""
    for char in ("\\", "*", "`", "|", "_"):
        text = text.replace(char, "\\" + char)
    return _OPTION.sub(lambda m: "``" + m.group(1).replace("\\", "") + "``", text)


def _paragraphs(text: str) -> list[str]:
    """A help text's blank-line-separated paragraphs, each as one escaped line."""
    lines = []
    for para in re.split(r"\n\s*\n", textwrap.dedent(text).strip()):
        lines += [_escape(" ".join(para.split())), ""]
    return lines


def _option_term(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}"
        if action.choices
        else action.dest.upper()
    )
    return ", ".join(f"{flag} {metavar}" for flag in action.option_strings)


def _option_text(action: argparse.Action) -> str:
    parts = []
    if action.help and action.help != argparse.SUPPRESS:
        parts.append(_escape(action.help.rstrip(".")) + ".")
    if action.required or not action.option_strings:
        parts.append("Required.")
    elif action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
        parts.append(f"Default: ``{action.default}``.")
    if action.choices and action.nargs != 0:
        parts.append("One of " + ", ".join(f"``{c}``" for c in action.choices) + ".")
    if isinstance(action, argparse._AppendAction):
        parts.append("May be given more than once.")
    return " ".join(parts) or "(no description)"


def _literal(text: str) -> list[str]:
    lines = text.rstrip().splitlines()
    return [".. code-block:: text", "", *("   " + line for line in lines), ""]


def _narrow(format_text, columns=60):
    """argparse's text, wrapped for the page's column (argparse reads COLUMNS)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(columns)
    try:
        return format_text()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def cli_reference_lines(parser: argparse.ArgumentParser) -> list[str]:
    """reStructuredText of every subcommand and option of ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        ``skvrf.cli.build_parser()``.

    Returns
    -------
    lines : list of str
    """
    lines = ["Usage", "-----", "", *_literal(_narrow(parser.format_help))]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, command in sub.choices.items():
        title = f"skvrf {name}"
        lines += [f".. _cli-{name}:", "", title, "-" * len(title), ""]
        lines += [_escape(helps.get(name) or ""), ""]
        usage = _narrow(command.format_usage).replace("usage: ", "", 1)
        lines += _literal(usage)
        if command.description and command.description != helps.get(name):
            lines += _paragraphs(command.description)
        lines += [".. rubric:: Options", ""]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            lines += [f"``{_option_term(action)}``", f"   {_option_text(action)}", ""]
    return lines


class CLIReference(Directive):
    """``.. skvrf-cli::``: the reference of the ``skvrf`` command line."""

    has_content = False

    def run(self):
        from skvrf.cli import build_parser

        lines = cli_reference_lines(build_parser())
        node = nodes.section()
        node.document = self.state.document
        source = self.state_machine.get_source_and_line(self.lineno)[0]
        nested_parse_with_titles(
            self.state, StringList(lines, source=source), node, self.content_offset
        )
        return node.children


# -- gallery order -------------------------------------------------------------

#: The example gallery, in the order a newcomer reads it; others follow by name.
GALLERY_ORDER = (
    "plot_quickstart.py",
    "plot_tradeoff.py",
    "plot_explain.py",
    "plot_grid_search.py",
    "plot_tuning.py",
    "plot_feature_files.py",
    "plot_stores.py",
    "plot_dask.py",
    "plot_wordnet_benchmark.py",
    "plot_neighbors.py",
    "plot_weight_space.py",
    "clip_precomputed_features.py",
    "clip_raw_images.py",
    "clip_two_encoders.py",
    "clip_cached_logits.py",
    "imagenet_reproduction.py",
)


class GalleryOrder:
    """sphinx-gallery sort key: :data:`GALLERY_ORDER`, then by file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = os.path.basename(filename)
        if name in GALLERY_ORDER:
            return (0, GALLERY_ORDER.index(name), name)
        return (1, 0, name)

    def __repr__(self):
        return f"<{type(self).__name__}>"


# -- "Examples using" -------------------------------------------------------------
# sphinx-gallery records an example's use of an object under the object's
# shortest import path (``skvrf.RobustnessReport``), while the API page of that
# object is named by the section it is documented in
# (``skvrf.evaluation.RobustnessReport``), and its "Examples using" gallery
# (``.. minigallery::`` in docs/_templates) looks that name up. After the
# gallery is generated, every recorded object is also listed under each name
# api.rst documents it by; a documented class or function that no example uses
# is a warning (so ``-W`` fails).

_CURRENT_MODULE = re.compile(r"^\.\. currentmodule:: (\S+)")


def documented_names(api_rst: Path) -> list[str]:
    """``module.name`` of every entry of api.rst's autosummary tables."""
    names, module, in_table = [], None, False
    for line in api_rst.read_text(encoding="utf-8").splitlines():
        if m := _CURRENT_MODULE.match(line):
            module = m.group(1)
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and line.strip() and not line.startswith("   "):
            in_table = False
        elif in_table and line.strip() and not line.strip().startswith(":"):
            names.append(f"{module}.{line.strip()}")
    return names


def _resolve(name: str):
    import importlib

    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


def _alias_backreferences(app):
    import json

    conf = app.config.sphinx_gallery_conf
    if not conf.get("backreferences_dir"):
        return
    path = Path(app.srcdir, conf["backreferences_dir"], "backreferences_all.json")
    if not path.is_file():
        return
    backrefs = json.loads(path.read_text(encoding="utf-8"))
    by_object = {}
    for name, examples in backrefs.items():
        obj = _resolve(name)
        if obj is not None:
            for example in examples:
                if example not in by_object.setdefault(id(obj), []):
                    by_object[id(obj)].append(example)
    missing = []
    for name in documented_names(Path(app.srcdir, "api.rst")):
        examples = by_object.get(id(_resolve(name)), [])
        if examples:
            backrefs[name] = examples
        else:
            missing.append(name)
    path.write_text(json.dumps(backrefs, indent=1), encoding="utf-8")
    if missing and app.config.sphinx_gallery_conf.get("plot_gallery") in (True, "True"):
        logger.warning(
            "no gallery example uses %s (api.rst); add one (examples/)",
            ", ".join(missing),
        )


# -- API constants ---------------------------------------------------------------


class _Named:
    """Shows a function or class by its qualified name (no memory address)."""

    def __init__(self, obj):
        self.text = f"{obj.__module__}.{obj.__qualname__}"

    def __repr__(self):
        return self.text


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if callable(value) and hasattr(value, "__qualname__"):
        return _Named(value)
    return value


def _drop_type_docstring(app, what, name, obj, options, lines):
    """An skvrf constant without a doc-comment of its own would show its type's
    docstring (tuple's, list's): drop it (before numpydoc reformats it)."""
    if what != "data" or not name.startswith("skvrf."):
        return
    builtin = type(obj).__doc__
    if builtin and lines and lines[0].strip() == builtin.strip().splitlines()[0]:
        lines[:] = []


def _document_constants(app, what, name, obj, options, lines):
    """An skvrf constant's value, below its docstring (``:no-value:`` in api.rst
    would print the repr of functions, with their addresses)."""
    if what != "data" or not name.startswith("skvrf."):
        return
    value = pprint.pformat(_plain(obj), width=76, sort_dicts=False)
    lines += ["", "Value::", "", *("   " + line for line in value.splitlines()), ""]


# -- search excerpts from files ---------------------------------------------------
# Sphinx's search page fetches each result page to show an excerpt; a browser
# refuses fetch() for file:// URLs, so the pages opened from files showed titles
# only. The build writes every page's text into _static/skvrf_search_texts.js,
# loaded by the search page only, and _static/skvrf_search_offline.js answers
# those fetches from it when the page is a file (never over http).

_SEARCH_TEXTS = "skvrf_search_texts.js"
_MAX_PAGE_TEXT = 40_000  # characters kept per page


def _search_page_scripts(app, pagename, templatename, context, doctree):
    if pagename == "search" and app.builder.format == "html":
        app.add_js_file(_SEARCH_TEXTS)
        app.add_js_file("skvrf_search_offline.js")


def page_texts(app) -> dict[str, str]:
    """Each page's plain text (whitespace collapsed, cut to _MAX_PAGE_TEXT),
    read from the environment, so that an incremental build has every page."""
    env, texts = app.env, {}
    for docname in sorted(env.found_docs):
        try:
            doctree = env.get_and_resolve_doctree(docname, app.builder)
        except (FileNotFoundError, OSError):
            continue
        texts[docname] = " ".join(doctree.astext().split())[:_MAX_PAGE_TEXT]
    return texts


def _write_page_texts(app, exception):
    import json

    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir, "_static")
    static.mkdir(parents=True, exist_ok=True)
    data = json.dumps(page_texts(app), ensure_ascii=True, sort_keys=True)
    (static / _SEARCH_TEXTS).write_text(
        f"window.SKVRF_PAGE_TEXTS = {data};\n", encoding="utf-8"
    )


def setup(app):
    app.connect("html-page-context", _search_page_scripts)
    app.connect("build-finished", _write_page_texts)
    app.add_directive("executed-code", ExecutedCode)
    app.add_directive("not-executed-code", NotExecutedCode)
    app.add_directive("skvrf-cli", CLIReference)
    app.connect("source-read", _reset_sessions)
    # after sphinx-gallery's builder-inited (500), which writes the backreferences
    app.connect("builder-inited", _alias_backreferences, priority=900)
    app.connect("build-finished", _cleanup)
    app.connect("autodoc-process-docstring", _drop_type_docstring, priority=300)
    # after numpydoc (500), which would re-indent the literal block of the value
    app.connect("autodoc-process-docstring", _document_constants, priority=600)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
