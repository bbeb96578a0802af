"""The API reference lists every public name, and lists nothing that is gone."""

import importlib
import importlib.util
import re
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"
pytestmark = pytest.mark.skipif(
    not API.exists(), reason="docs/ is not beside the tests (installed-package run)"
)


def _public_modules():
    """Every module and package under skvrf/ whose dotted name has no part
    starting with ``_`` and that defines ``__all__`` (found on disk)."""
    package = API.parents[1] / "skvrf"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        if re.search(r"^__all__\b", path.read_text(encoding="utf-8"), re.M):
            names.append(".".join(parts))
    return names


PUBLIC_MODULES = _public_modules()


def _entries():
    """(module, name) of each autosummary entry and auto* directive of
    docs/api.rst."""
    module, in_autosummary, entries = None, False, []
    for line in API.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\.\. (?:current)?module:: (\S+)", line):
            module = m.group(1)
        elif m := re.match(r"\.\. auto(?:data|function|class):: (\S+)", line):
            entries.append((module, m.group(1)))
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary:
            if m := re.fullmatch(r"   ([A-Za-z_][\w.]*)", line):
                entries.append((module, m.group(1)))
            elif line and not line.startswith("   "):
                in_autosummary = False
    return entries


def test_the_public_modules_are_found():
    for name in ("skvrf", "skvrf.utils", "skvrf.clip.testing", "skvrf.exceptions"):
        assert name in PUBLIC_MODULES
    assert not [m for m in PUBLIC_MODULES if "._" in m]


def _cli_subcommands():
    import argparse

    from skvrf.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    """Each name of each public module's ``__all__`` is documented in api.rst,
    under its module or (the same object) under another; the subcommand modules
    ``skvrf.commands.*`` are the command line, documented by docs/cli.rst."""
    module = importlib.import_module(module_name)
    if module_name.startswith("skvrf.commands."):
        assert module_name.rsplit(".", 1)[1] in _cli_subcommands()
        assert set(module.__all__) == {"configure_parser", "main"}
        return
    entries = _entries()
    here = {name for mod, name in entries if mod == module_name}
    elsewhere = {
        id(getattr(importlib.import_module(mod), name.split(".")[0], None))
        for mod, name in entries
        if mod != module_name
    }
    missing = [
        name
        for name in module.__all__
        if not name.startswith("__")
        and name not in here
        and id(getattr(module, name)) not in elsewhere
    ]
    assert not missing, f"{module_name}: add {missing} to docs/api.rst"


def test_every_api_entry_exists():
    has_clip = all(importlib.util.find_spec(m) for m in ("torch", "open_clip"))
    for module_name, name in _entries():
        if module_name == "skvrf.clip":
            module = importlib.import_module(module_name)
            assert name in module.__all__, f"skvrf.clip.{name} is not public"
            if not has_clip:
                continue  # resolving it would import torch
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"docs/api.rst lists {module_name}.{name}"


# -- the getting-started page, the home page and the CLI reference ------------

DOCS = API.parent


def _blocks(page):
    """(directive, argument) of each code block of a docs page."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(
        r"^\.\. (code-block|executed-code|not-executed-code|code)::\s*(\S*)", text, re.M
    )


@pytest.mark.parametrize("page", ["index.rst", "getting_started.rst"])
def test_every_snippet_of_the_entry_pages_is_executed(page):
    """Only install commands and the demo command are shown without running."""
    shown = [(d, a) for d, a in _blocks(page) if d == "not-executed-code"]
    assert not [(d, a) for d, a in _blocks(page) if d in ("code-block", "code")]
    text = (DOCS / page).read_text(encoding="utf-8")
    not_run = re.findall(
        r"^\.\. not-executed-code:: \S+\n(?:   :.*\n)*\n((?:   .*\n|\n)+)",
        text,
        flags=re.M,
    )
    for body in not_run:
        commands = [line.strip() for line in body.splitlines() if line.strip()]
        assert all(
            c.startswith(("python -m pip install", "skvrf demo", "skvrf zeroshot"))
            or c.startswith("--")
            for c in commands
        ), f"{page}: a code block that the docs build does not run: {commands}"
    assert len(shown) == len(not_run)
    assert any(d == "executed-code" for d, _ in _blocks(page))


def test_getting_started_spells_out_the_command_line_path():
    text = (DOCS / "getting_started.rst").read_text(encoding="utf-8")
    for command in ("skvrf embed", "skvrf zeroshot", "skvrf evaluate", "skvrf fit"):
        assert f"\n   {command} " in text, command
    assert "\n   skvrf predict " in text


def test_cli_reference_names_every_subcommand_and_option():
    pytest.importorskip("sphinx")
    import argparse
    import sys

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from skvrf_docs import cli_reference_lines
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from skvrf.cli import build_parser

    parser = build_parser()
    text = "\n".join(cli_reference_lines(parser))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "embed",
        "zeroshot",
        "evaluate",
        "fit",
        "predict",
        "demo",
    ]
    for name, command in sub.choices.items():
        assert f"\nskvrf {name}\n" in text
        for action in command._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"``{flag}" in text or f", {flag}" in text, (name, flag)


def test_citation_file_names_this_version_and_the_paper():
    import skvrf

    text = (API.parents[1] / "CITATION.cff").read_text(encoding="utf-8")
    assert f"\nversion: {skvrf.__version__}\n" in text
    assert "Robust Fine-tuning of Zero-shot Models via Variance Reduction" in text
    assert "2411.06966" in (DOCS / "citing.rst").read_text(encoding="utf-8")


def test_readme_table_is_the_committed_results():
    """The README's five-seed table is what tools/readme_table.py makes of
    benchmarks/results/wordnet_seeds.json: a rerun changes both or CI fails."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    table = subprocess.run(
        [sys.executable, str(root / "tools" / "readme_table.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert table.count("\n") > 10
    assert table in (root / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "table, include",
    [
        ("side-by-side", "measured_side_by_side.inc"),
        ("dawin-offset", "dawin_offset_table.inc"),
    ],
)
def test_choosing_tables_are_the_committed_results(table, include):
    """The measured tables of the choosing page are what
    tools/choosing_tables.py makes of benchmarks/results: a rerun of the
    benchmarks changes them or CI fails."""
    import subprocess
    import sys

    made = subprocess.run(
        [sys.executable, str(DOCS.parent / "tools" / "choosing_tables.py"), table],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert made.count("\n") > 10
    assert made == (DOCS / "user_guide" / include).read_text(encoding="utf-8")
    page = (DOCS / "user_guide" / "choosing.rst").read_text(encoding="utf-8")
    assert f".. include:: {include}" in page


def test_benchmark_tables_are_the_committed_results():
    """docs/wordnet_seeds_table.inc (included by docs/benchmark.rst) is what
    tools/readme_table.py --rst makes of the committed results file."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    table = subprocess.run(
        [sys.executable, str(root / "tools" / "readme_table.py"), "--rst"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table == (root / "docs" / "wordnet_seeds_table.inc").read_text(
        encoding="utf-8"
    )
    assert ".. include:: wordnet_seeds_table.inc" in (
        root / "docs" / "benchmark.rst"
    ).read_text(encoding="utf-8")


# -- one install story ---------------------------------------------------------

ROOT = API.parents[1]
# skvrf is not published: every install line is the checkout form,
# ``python -m pip install -e ".[extra]"``
_PUBLISHED_INSTALL = re.compile(r"""pip install(?: +-\S+)* +["']?skvrf\b""")


def _install_sources():
    for folder, pattern in (("docs", "*.rst"), ("examples", "*"), ("skvrf", "*")):
        for path in sorted((ROOT / folder).rglob(pattern)):
            parts = path.relative_to(ROOT).parts
            if path.suffix not in (".rst", ".py", ".txt", ".inc", ".md"):
                continue
            if parts[:2] in (("docs", "auto_examples"), ("docs", "generated")):
                continue  # build outputs
            if "_build" in parts:
                continue
            yield path
    yield ROOT / "README.md"


def test_every_install_line_is_the_checkout_form():
    found = []
    for path in _install_sources():
        # lines joined: a command broken over two lines of a paragraph counts
        text = " ".join(path.read_text(encoding="utf-8").split())
        found += [
            f"{path.relative_to(ROOT)}: {m.group(0)}"
            for m in _PUBLISHED_INSTALL.finditer(text)
        ]
    assert not found, (
        "skvrf is not published: install from a checkout with "
        f'python -m pip install -e ".[extra]" ({found})'
    )


# -- counts that drift ---------------------------------------------------------

# "2,122 passed", "about 2,120 tests", "1118 passed on 2026-11-29": a number of
# tests written by hand is wrong after the next commit (pytest prints it)
_TEST_COUNT = re.compile(
    r"\b\d[\d,]*\s+(?:tests|passed|collected)\b|\bpassed on \d{4}-\d\d-\d\d"
)


def test_no_hand_written_test_count():
    pages = [ROOT / "README.md", *sorted(DOCS.glob("**/*.rst"))]
    found = []
    for path in pages:
        if {"auto_examples", "generated", "_build"} & set(path.parts):
            continue
        text = " ".join(path.read_text(encoding="utf-8").split())
        found += [
            f"{path.relative_to(ROOT)}: {m.group(0)}"
            for m in _TEST_COUNT.finditer(text)
        ]
    assert not found, f"a test count written by hand: {found}"


# -- every code block runs, or says why not -----------------------------------

_PYTHON = {"python", "python3", "py", "pycon", "ipython", "ipython3", "default"}
_SHELL = {"bash", "sh", "shell", "console", "shell-session", "zsh"}
_CODE_DIRECTIVE = re.compile(r"^(\s*)\.\. (code-block|code|sourcecode)::\s*(\S*)\s*$")
_MARKED = re.compile(r"^(\s*)\.\. not-executed-code::\s*\S+\s*$")


def _indented_body(lines, start, indent):
    """The lines after ``lines[start - 1]`` indented deeper than ``indent``."""
    body = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return body


def _is_python(code):
    """Whether a literal block's text is Python (it parses, and is more than a
    word or a number)."""
    import ast
    import textwrap

    code = textwrap.dedent(code).strip()
    if code.startswith(">>>"):
        return True
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    return any(
        not (
            isinstance(node, ast.Expr)
            and isinstance(node.value, (ast.Name, ast.Constant))
        )
        for node in tree.body
    )


def unexecuted_blocks(text):
    """(line number, what) of each Python or shell block of an rst page that the
    docs build neither runs (``executed-code``) nor marks as not run
    (``not-executed-code`` with a ``:reason:``)."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if m := _CODE_DIRECTIVE.match(line):
            language = m.group(3).lower() or "default"
            if language in _PYTHON | _SHELL:
                found.append((i + 1, f".. {m.group(2)}:: {m.group(3)}"))
        elif _MARKED.match(line):
            options = [
                b.strip()
                for b in _indented_body(lines, i + 1, indent)
                if b.strip().startswith(":")
            ]
            if not any(o.startswith(":reason:") and o[8:].strip() for o in options):
                found.append((i + 1, "not-executed-code without a :reason:"))
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            body = "\n".join(_indented_body(lines, i + 1, indent))
            if _is_python(body):
                found.append((i + 1, "a Python :: literal block"))
    return found


def _pages():
    return [
        path
        for path in sorted(DOCS.glob("**/*.rst"))
        if not {"auto_examples", "generated", "_build", "_templates"} & set(path.parts)
    ]


def test_unexecuted_blocks_are_found():
    page = """
Text::

    from skvrf import VRFEnsembleClassifier
    VRFEnsembleClassifier()

Shell::

    apt-get install wordnet-base

.. code-block:: python

   x = 1

.. code-block::

   x = 1

.. code-block:: pycon

   >>> 1

.. code:: bash

   skvrf demo

.. code-block:: bibtex

   @misc{x}

.. not-executed-code:: python

   x = 1

.. not-executed-code:: python
   :reason: needs the ViT-B/16 weights (network)

   x = 1

.. executed-code:: python

   x = 1
"""
    found = [what for _, what in unexecuted_blocks(page)]
    assert found == [
        "a Python :: literal block",
        ".. code-block:: python",
        ".. code-block:: ",
        ".. code-block:: pycon",
        ".. code:: bash",
        "not-executed-code without a :reason:",
    ]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_code_block_runs_or_says_why_not(page):
    """Every Python or shell block of every page runs in the docs build
    (``.. executed-code::``) or is ``.. not-executed-code::`` with a
    ``:reason:`` (docs/developer_notes.rst)."""
    found = unexecuted_blocks(page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(DOCS)}: {found}"


def test_home_page_table_is_the_committed_results():
    """docs/home_results.inc (the home page's short table and its sentence) is
    what tools/home_table.py makes of the committed results file."""
    import subprocess
    import sys

    table = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "home_table.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert table == (DOCS / "home_results.inc").read_text(encoding="utf-8")
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    assert ".. include:: home_results.inc" in index
    # the demo's log is folded and prints only its table (no cache paths)
    assert "skvrf demo --out skvrf-demo --quiet" in index
    assert "<details" in index


# -- terms link to the glossary ------------------------------------------------

# glossary term -> the words that spell it on the pages
_TERMS = {
    "ZSF": (r"\bZSF\b", r"\bZero-Shot Failure set\b"),
    "OSE": (r"\bOSE\b",),
    "WiSE-FT": (r"\bWiSE-FT\b",),
    "GLA": (r"\bGLA\b",),
    "MSP": (r"\bMSP\b",),
    "RMD": (r"\bRMD\b",),
    "MD": (r"(?<![\w-])MD\b",),
    "ECE": (r"\bECE\b",),
    "E2E-FT": (r"\bE2E-FT\b",),
    "LP-FT": (r"\bLP-FT\b",),
    "DaWin": (r"\bDaWin\b",),
    "kNN": (r"\bkNN\b",),
    "ID": (r"(?<![\w-])ID\b",),
    "OOD": (r"\bOOD\b",),
}
# pages that only list or record (terms are not linked there)
_NOT_LINKED = {
    "glossary.rst",
    "changelog.rst",
    "developer_notes.rst",
    "api.rst",
    "cli.rst",
    "citing.rst",
}
# directives whose body is text of the page (tables, admonitions)
_PROSE_DIRECTIVE = re.compile(
    r"\.\. (list-table|csv-table|table|note|warning|tip|important|admonition|"
    r"seealso|rubric|topic|only)::"
)
_ROLE = re.compile(r":term:`(?:[^`<]*<([^`>]+)>|([^`]+))`")


def _prose(text):
    """A page's text without its code blocks, titles, literals and roles other
    than ``:term:`` (each kept as ``\\x00TERM:target\\x00``)."""
    lines, kept, code_indent = text.splitlines(), [], None
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if code_indent is not None:
            if line.strip() and indent <= code_indent:
                code_indent = None
            else:
                continue
        stripped = line.strip()
        if re.match(r"\.\. [\w-]+::", stripped):
            if not _PROSE_DIRECTIVE.match(stripped):
                code_indent = indent  # code, math, raw html, an include...
            continue
        if stripped.startswith(".."):
            code_indent = indent  # a comment or a label
            continue
        if stripped.endswith("::"):
            code_indent = indent  # a literal block follows
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", nxt) or re.fullmatch(
            r"([=\-~^\"'`#*+])\1{2,}", stripped
        ):
            continue  # a title and its underline
        kept.append(line)
    prose = "\n".join(kept)
    prose = _ROLE.sub(lambda m: f"\x00TERM:{m.group(1) or m.group(2)}\x00", prose)
    prose = re.sub(r"``.*?``", " ", prose, flags=re.S)
    return re.sub(r":[\w:]+:`[^`]*`|`[^`]*`_*", " ", prose)


def _first_uses_not_linked(text):
    prose = _prose(text)
    found = []
    for term, spellings in _TERMS.items():
        bare = [m.start() for s in spellings for m in re.finditer(s, prose)]
        linked = [
            m.start() for m in re.finditer(f"\x00TERM:{re.escape(term)}\x00", prose)
        ]
        if bare and (not linked or min(linked) > min(bare)):
            found.append(term)
    return found


def test_first_uses_not_linked_are_found():
    page = "Title: OSE\n==========\n\nThe ``OSE`` and :term:`ID` set; ID and OSE.\n"
    assert _first_uses_not_linked(page) == ["OSE"]
    page = "The :term:`output-space ensemble <OSE>` (OSE) and ``ZSF``::\n\n   ZSF\n"
    assert _first_uses_not_linked(page) == []


@pytest.mark.parametrize(
    "page",
    [p for p in _pages() if p.relative_to(DOCS).as_posix() not in _NOT_LINKED],
    ids=lambda p: p.relative_to(DOCS).as_posix(),
)
def test_first_use_of_each_term_links_the_glossary(page):
    glossary = (DOCS / "glossary.rst").read_text(encoding="utf-8")
    for term in _TERMS:
        assert f"\n   {term}\n" in glossary, f"{term} is not in docs/glossary.rst"
    missing = _first_uses_not_linked(page.read_text(encoding="utf-8"))
    assert not missing, (
        f"{page.relative_to(DOCS)}: link the first use of {missing} with :term:"
    )


def test_changelog_has_a_version_heading_and_sections_by_kind():
    """Keep-a-Changelog style: a heading per version (this one, unreleased
    until it is published) and, under it, sections by kind only."""
    import skvrf

    text = (DOCS / "changelog.rst").read_text(encoding="utf-8")
    version = skvrf.__version__.split(".dev")[0]
    heading = f"{version} (unreleased)"
    assert f"\n{heading}\n{'=' * len(heading)}\n" in text
    kinds = re.findall(r"^(.+)\n-+\n", text, re.M)
    allowed = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Documentation"]
    assert kinds and all(k in allowed for k in kinds), kinds
    assert kinds == sorted(kinds, key=allowed.index)
