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

``.. demo-figure:: BENCHMARK FILE``, ``:demo-value:`BENCHMARK|PATH|FORMAT```,
``.. demo-check:: BENCHMARK``
    A figure, a value and a claim from a run of ``skvrf demo --benchmark
    BENCHMARK`` that the build makes (:func:`demo_output`): the benchmark pages
    show what the code in the build does, never a number copied by hand. The
    run is cached in ``docs/_demo/BENCHMARK/`` (git-ignored) and redone when
    skvrf's sources or the installed versions change; the benchmarks of the
    configuration value ``skvrf_demo_benchmarks`` run when the build starts.
    ``demo-figure`` takes the options of ``image``. ``demo-value``'s PATH is
    dotted keys into ``selection.json`` (``vrf.threshold``), ``report.json``
    (``report.scores.accuracy.OSE.id``) or ``weights.json``
    (``weights.weight_of_finetuned.id.mean``), or ``=`` and a Python expression
    as in ``demo-check``; FORMAT is a format spec (``.3f``) or ``pct`` (times
    100, one decimal). ``demo-check``'s content is one Python expression a
    line over ``selection``, ``report``, ``weights`` (the three files) and
    ``acc`` (``report["scores"]["accuracy"]``): a claim that the page's text
    makes about the run; one that is false is a warning (so ``-W`` fails until
    the text follows the run).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import pprint
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.transforms import SphinxTransform
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


# -- skvrf demo runs -------------------------------------------------------------

#: Where the build's ``skvrf demo`` runs go (git-ignored, excluded from sources).
DEMO_DIR = REPO / "docs" / "_demo"
#: The files of a run that the pages use.
DEMO_FILES = (
    "selection.json",
    "report.json",
    "weights.json",
    "tradeoff.png",
    "weights.png",
)
_DEMO_RUNS: dict[str, Path] = {}
_DEMO_TIMEOUT_S = 1800


class DemoRunError(RuntimeError):
    """``skvrf demo`` failed in the documentation build."""


def _demo_key(benchmark: str) -> str:
    """What a run depends on: skvrf's files (code and data), the benchmark, and
    the Python and the versions of the libraries that compute it."""
    from importlib import metadata

    digest = hashlib.sha256(f"{benchmark}\n{sys.version}\n".encode())
    for dist in ("numpy", "scipy", "scikit-learn", "torch", "sentence-transformers"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{dist}=-\n".encode())
    for path in sorted((REPO / "skvrf").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def demo_output(benchmark: str) -> Path:
    """The folder of this build's ``skvrf demo --benchmark BENCHMARK --out DIR``.

    Runs the demo once per build, unless ``docs/_demo/BENCHMARK/`` holds a run
    of the same sources (``source-key.txt``, :func:`_demo_key`) with every file
    of :data:`DEMO_FILES`.

    Parameters
    ----------
    benchmark : str
        A name of ``skvrf.datasets.BENCHMARKS``.

    Returns
    -------
    out : Path
        The run's folder.
    """
    if benchmark in _DEMO_RUNS:
        return _DEMO_RUNS[benchmark]
    out = DEMO_DIR / benchmark
    key = _demo_key(benchmark)
    stamp = out / "source-key.txt"
    cached = stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == key
    if cached and all((out / name).is_file() for name in DEMO_FILES):
        logger.info(
            "skvrf demo --benchmark %s: the cached run of these sources", benchmark
        )
    else:
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("MPLBACKEND", "Agg")
        env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
        command = [sys.executable, "-m", "skvrf.cli", "demo", "--benchmark", benchmark]
        command += ["--out", str(out), "--quiet"]
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=_DEMO_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise DemoRunError(
                f"skvrf demo --benchmark {benchmark} ran past {_DEMO_TIMEOUT_S} s"
            ) from exc
        missing = [name for name in DEMO_FILES if not (out / name).is_file()]
        if done.returncode != 0 or missing:
            raise DemoRunError(
                f"skvrf demo --benchmark {benchmark} failed (exit status "
                f"{done.returncode}; missing {missing}):\n"
                + _clean_output(done.stdout)[-4000:]
            )
        stamp.write_text(key + "\n", encoding="utf-8")
        logger.info(
            "skvrf demo --benchmark %s: ran in %.0f s",
            benchmark,
            time.perf_counter() - start,
        )
    _DEMO_RUNS[benchmark] = out
    return out


def demo_data(benchmark: str) -> dict:
    """The run's ``selection``, ``report`` and ``weights`` (its three JSON files)."""
    out = demo_output(benchmark)
    return {
        name: json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
        for name in ("selection", "report", "weights")
    }


def demo_lookup(data: dict, path: str):
    """The value at dotted ``path``: ``report.``, ``weights.`` or (by default)
    ``selection.`` keys; list items by index."""
    first, _, rest = path.partition(".")
    if first in data and rest:
        value, keys = data[first], rest
    else:
        value, keys = data["selection"], path
    for key in keys.split("."):
        if isinstance(value, list):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise KeyError(f"{key!r} (of {path!r})")
    return value


def _demo_names(data: dict) -> dict:
    """What the expressions of ``demo-check`` and ``demo-value`` see."""
    names = {**data, "acc": data["report"]["scores"]["accuracy"]}
    names.update(min=min, max=max, abs=abs, round=round, sorted=sorted, len=len)
    names.update(all=all, any=any, sum=sum)
    return names


def demo_evaluate(data: dict, expression: str):
    """``expression`` (Python) over the run's data (:func:`_demo_names`)."""
    return eval(expression, {"__builtins__": {}, **_demo_names(data)})


def format_demo_value(value, spec: str) -> str:
    """``value`` written as the page shows it (see the module docstring)."""
    if spec == "pct":
        return f"{100 * float(value):.1f}"
    if spec:
        return format(value, spec)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _note_demo(env, benchmark: str) -> Path:
    out = demo_output(benchmark)
    for name in DEMO_FILES:
        env.note_dependency(str(out / name))
    return out


def demo_value_role(name, rawtext, text, lineno, inliner, options=None, content=()):
    """``:demo-value:`BENCHMARK|PATH|FORMAT```: a value of the build's run."""
    parts = text.split("|")
    if len(parts) not in (2, 3):
        msg = inliner.reporter.error(
            f"demo-value: 'BENCHMARK|PATH' or 'BENCHMARK|PATH|FORMAT', got {text!r}",
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    benchmark, path, spec = (*parts, "")[:3]
    env = inliner.document.settings.env
    try:
        _note_demo(env, benchmark)
        data = demo_data(benchmark)
        if path.startswith("="):
            value = demo_evaluate(data, path[1:])
        else:
            value = demo_lookup(data, path)
        value = format_demo_value(value, spec)
    except Exception as exc:
        msg = inliner.reporter.error(f"demo-value {text!r}: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.Text(value)], []


class DemoFigure(Directive):
    """``.. demo-figure:: BENCHMARK FILE``: a figure of the build's run."""

    required_arguments = 2
    has_content = False
    option_spec = {
        "alt": directives.unchanged,
        "width": directives.unchanged,
        "align": directives.unchanged,
        "class": directives.unchanged,
    }

    def run(self):
        benchmark, name = self.arguments
        env = self.state.document.settings.env
        try:
            out = _note_demo(env, benchmark)
        except DemoRunError as exc:
            raise self.error(str(exc)) from exc
        if not (out / name).is_file():
            raise self.error(f"demo-figure: the run wrote no {name!r}")
        here = Path(env.doc2path(env.docname)).parent
        uri = Path(os.path.relpath(out / name, here)).as_posix()
        lines = [f".. image:: {uri}"]
        lines += [f"   :{k}: {v}" for k, v in self.options.items()]
        node = nodes.section()
        node.document = self.state.document
        source = self.state_machine.get_source_and_line(self.lineno)[0]
        nested_parse_with_titles(
            self.state, StringList(lines, source=source), node, self.content_offset
        )
        return node.children


class DemoCheck(Directive):
    """``.. demo-check:: BENCHMARK``: claims of the page's text about the
    build's run, one Python expression a line; a false one is a warning."""

    required_arguments = 1
    has_content = True

    def run(self):
        benchmark = self.arguments[0]
        env = self.state.document.settings.env
        try:
            _note_demo(env, benchmark)
            data = demo_data(benchmark)
        except DemoRunError as exc:
            raise self.error(str(exc)) from exc
        for offset, line in enumerate(self.content):
            claim = line.strip()
            if not claim or claim.startswith("#"):
                continue
            try:
                ok = demo_evaluate(data, claim)
            except Exception as exc:
                ok, why = False, f"{type(exc).__name__}: {exc}"
            else:
                why = "false for this build's run"
            if not ok:
                source, line = self.content.info(offset)
                logger.warning(
                    "demo-check (%s): %s: %s; update the page's text",
                    benchmark,
                    claim,
                    why,
                    location=f"{source}:{line + 1}",
                )
        return []


def _run_configured_demos(app):
    """The runs of ``skvrf_demo_benchmarks``, before any page is read (so that
    an incremental build sees their changed files as changed dependencies)."""
    for benchmark in app.config.skvrf_demo_benchmarks:
        try:
            demo_output(benchmark)
        except DemoRunError as exc:
            logger.warning("%s", exc)


# -- thumbnails of the examples that the build does not run --------------------

#: Each example that needs real weights or data (not run by the build; see
#: conf.py's ``filename_pattern``): the steps of its pipeline, drawn as its
#: gallery thumbnail (``sphinx_gallery_thumbnail_path`` in the example).
STATIC_THUMBNAILS = {
    "clip_precomputed_features": ("CLIP features (.npy)", "zero-shot head + probe"),
    "clip_raw_images": ("image folders", "open_clip encoder"),
    "clip_two_encoders": ("images", "pre-trained + fine-tuned encoders"),
    "clip_cached_logits": ("cached logits + features", "two LogitsClassifiers"),
    "imagenet_reproduction": ("ImageNet + 5 shifts", "CLIP ViT-B/32, paper setup"),
}
THUMBNAIL_DIR = DEMO_DIR / "thumbnails"


def draw_static_thumbnails(app=None):
    """Draw :data:`STATIC_THUMBNAILS` into ``docs/_demo/thumbnails/``: each
    example's pipeline, from its data to VRF (before sphinx-gallery reads
    them)."""
    if app is not None and not getattr(app.config, "sphinx_gallery_conf", None):
        return  # no gallery (a site without examples)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    THUMBNAIL_DIR.mkdir(parents=True, exist_ok=True)
    colors = ("#56B4E9", "#E69F00", "#CC79A7")  # Okabe & Ito
    for name, (data, model) in STATIC_THUMBNAILS.items():
        fig = plt.figure(figsize=(4.0, 2.8), dpi=100)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_axis_off()
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        steps = (data, model, "VRF")
        for i, (text, color) in enumerate(zip(steps, colors)):
            y = 0.84 - 0.3 * i
            ax.text(0.5, y, text, ha="center", va="center", fontsize=13,
                    bbox={"boxstyle": "round,pad=0.4", "facecolor": color,
                          "edgecolor": "black", "linewidth": 0.8})  # fmt: skip
            if i:
                ax.annotate("", (0.5, y + 0.09), (0.5, y + 0.21),
                            arrowprops={"arrowstyle": "->", "lw": 1.5})  # fmt: skip
        ax.text(0.5, 0.07, "needs CLIP weights: not run here", ha="center",
                fontsize=10, color="0.3", style="italic")  # fmt: skip
        fig.savefig(THUMBNAIL_DIR / f"{name}.png")
        plt.close(fig)


# -- straight quotes in parameter types --------------------------------------------


class StraightQuotesInTypes(SphinxTransform):
    """Parameter types (the classifiers of numpydoc's parameter lists, such as
    ``{"auto", "authors"}, default="auto"``) are code: Sphinx's smart quotes
    (priority 750) would curl their quotes (``default=”auto”``), so they are
    marked not smartquotable first."""

    default_priority = 700

    def apply(self, **kwargs):
        for node in self.document.findall(nodes.classifier):
            node["support_smartquotes"] = False


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

    conf = getattr(app.config, "sphinx_gallery_conf", None) or {}
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
    app.add_config_value("skvrf_demo_benchmarks", [], "env")
    app.add_directive("demo-figure", DemoFigure)
    app.add_directive("demo-check", DemoCheck)
    app.add_role("demo-value", demo_value_role)
    app.add_transform(StraightQuotesInTypes)
    app.connect("builder-inited", _run_configured_demos)
    # before sphinx-gallery's builder-inited (500), which copies the thumbnails
    app.connect("builder-inited", draw_static_thumbnails, priority=400)
    app.add_directive("skvrf-cli", CLIReference)
    app.connect("source-read", _reset_sessions)
    # after sphinx-gallery's builder-inited (500), which writes the backreferences
    app.connect("builder-inited", _alias_backreferences, priority=900)
    app.connect("build-finished", _cleanup)
    app.connect("autodoc-process-docstring", _drop_type_docstring, priority=300)
    # after numpydoc (500), which would re-indent the literal block of the value
    app.connect("autodoc-process-docstring", _document_constants, priority=600)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
