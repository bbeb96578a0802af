"""The benchmark pages' figures and values come from runs, not from hand.

- The figures are drawn by the documentation build (``demo-figure``: the
  build's cached run of ``skvrf demo``; ``.. plot::``: the committed results),
  so no page shows a committed PNG.
- Values of the build's demo run are written by ``demo-value`` and the claims
  about it checked by ``demo-check`` (docs/_ext/skvrf_docs.py): the build fails
  when a claim no longer holds. Their machinery is tested here.
- Values quoted from the committed five-seed results
  (``benchmarks/results/``) are checked here against those files: a rerun that
  changes a choice fails this test until the page follows.
- No generated table writes code with curly quotes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RESULTS = REPO / "benchmarks" / "results"
BENCHMARK_PAGES = sorted(DOCS.glob("benchmark*.rst"))

if not (DOCS / "_ext").exists() or not (REPO / "tools").exists():
    pytest.skip(
        "docs/ and tools/ are not beside the tests (installed-package run)",
        allow_module_level=True,
    )
pytest.importorskip("sphinx")  # the documentation's extension imports it

sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(REPO / "tools"))

import readme_table  # noqa: E402
import skvrf_docs  # noqa: E402


def _text(path):
    """The page's text as read: glossary links as their words
    (``:term:`ZSF``` -> ``ZSF``, ``:term:`words <ZSF>``` -> ``words``), every
    run of whitespace as one space."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r":term:`([^`<]*?)\s*(?:<[^`>]+>)?`", r"\1", text)
    return " ".join(text.split())


def _either(values, fmt="{:g}"):
    """``1``, ``1 or 10``, ``1, 3 or 10`` (sorted, distinct)."""
    items = [fmt.format(v) for v in sorted(set(values))]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _span(values, fmt):
    return f"{fmt.format(min(values))} to {fmt.format(max(values))}"


def _seeds(seeds):
    """``2 and 4``, ``2 to 4``."""
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]} to {seeds[-1]}"
    items = [str(s) for s in seeds]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


_COUNT = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


# -- the figures ---------------------------------------------------------------


def test_no_benchmark_page_shows_a_committed_figure():
    """Every figure of the benchmark pages is drawn by the build."""
    assert not sorted(DOCS.glob("benchmark*.png")), "committed benchmark figures"
    for page in BENCHMARK_PAGES:
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^\.\. (?:image|figure):: *(\S+)", text, re.M):
            assert m.group(1).startswith("/_demo/"), (page.name, m.group(1))
    noun, verbs = (DOCS / "benchmark.rst"), (DOCS / "benchmark_wordnet_verbs.rst")
    assert ".. demo-figure:: wordnet-supersenses tradeoff.png" in noun.read_text()
    assert ".. demo-figure:: wordnet-supersenses weights.png" in noun.read_text()
    assert ".. demo-figure:: wordnet-verbs weights.png" in verbs.read_text()
    assert "tradeoff_figure_of" in verbs.read_text()  # the .. plot:: of results


def test_the_build_runs_the_demos_the_pages_use():
    sys.path.insert(0, str(DOCS))
    try:
        import conf
    finally:
        sys.path.remove(str(DOCS))
    used = set()
    for page in BENCHMARK_PAGES:
        text = page.read_text(encoding="utf-8")
        used |= set(re.findall(r"demo-(?:figure|check):: (\S+)", text))
        used |= {v.split("|")[0] for v in re.findall(r":demo-value:`([^`]*)`", text)}
    assert used == {"wordnet-supersenses", "wordnet-verbs"}
    assert used <= set(conf.skvrf_demo_benchmarks)
    assert "_demo" in conf.exclude_patterns


# -- the values of the build's run (demo-value, demo-check) ---------------------

_RUN = {
    "selection": {
        "vrf": {"k": 3, "threshold": 1.3791, "temperature_fraction": 2.0},
        "grid": [1, 3],
    },
    "report": {"scores": {"accuracy": {"OSE": {"id": 0.8624, "ood_mean": 0.6974}}}},
    "weights": {"weight_of_finetuned": {"id": {"mean": 0.65}, "lemma": {"mean": 0.5}}},
}


@pytest.mark.parametrize(
    "path, spec, shown",
    [
        ("vrf.k", "", "3"),
        ("vrf.threshold", ".3f", "1.379"),
        ("selection.vrf.threshold", "", "1.3791"),
        ("vrf.temperature_fraction", "g", "2"),
        ("grid.1", "", "3"),
        ("report.scores.accuracy.OSE.id", "pct", "86.2"),
        ("weights.weight_of_finetuned.lemma.mean", ".2f", "0.50"),
    ],
)
def test_demo_value_looks_up_and_formats(path, spec, shown):
    value = skvrf_docs.demo_lookup(_RUN, path)
    assert skvrf_docs.format_demo_value(value, spec) == shown


def test_demo_value_of_a_missing_key_fails():
    with pytest.raises(KeyError):
        skvrf_docs.demo_lookup(_RUN, "vrf.quantile")


def test_demo_check_claims_are_evaluated_on_the_run():
    ev = skvrf_docs.demo_evaluate
    assert ev(_RUN, 'acc["OSE"]["id"] > acc["OSE"]["ood_mean"]') is True
    claim = (
        'min(weights["weight_of_finetuned"], '
        'key=lambda s: weights["weight_of_finetuned"][s]["mean"]) == "lemma"'
    )
    assert ev(_RUN, claim) is True
    changed = json.loads(json.dumps(_RUN))
    changed["weights"]["weight_of_finetuned"]["lemma"]["mean"] = 0.9
    assert ev(changed, claim) is False
    with pytest.raises(NameError):  # no builtins beyond the listed ones
        ev(_RUN, "open('x')")


def test_every_demo_check_claim_parses():
    """The claims on the pages are expressions (the build evaluates them)."""
    for page in BENCHMARK_PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.startswith(".. demo-check::"):
                continue
            for claim in lines[i + 1 :]:
                if claim and not claim.startswith("   "):
                    break
                if claim.strip():
                    compile(claim.strip(), page.name, "eval")


# -- values quoted from the committed five-seed results ------------------------


def _nouns():
    return json.loads((RESULTS / "wordnet_seeds.json").read_text(encoding="utf-8"))


def _verbs():
    path = RESULTS / "wordnet_verbs_seeds" / "results.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _noun_choices(results):
    """The sentence fragments of docs/benchmark.rst's per-seed choices."""
    sel = results["selections"]
    vrf = [s["vrf"] for s in sel]
    fixed = [s["fixed_grid"] for s in sel]
    seeds = results["seeds"]
    outside = [
        seed for seed, f in zip(seeds, fixed) if not f["threshold_inside_val_distances"]
    ]
    paper_outside = [
        seed
        for seed, s in zip(seeds, sel)
        if not s["paper_defaults"]["threshold_inside_val_distances"]
    ]
    zsf = [s["zsf_size"] for s in sel]
    n_train = 4630
    return [
        f"the probe's ``C`` {_either(s['finetuned']['C'] for s in sel)};",
        f"OSE's alpha {_span([s['ose']['alpha'] for s in sel], '{:.1f}')} "
        f"(the tolerance rule: {_either(s['tolerance']['ose']['alpha'] for s in sel)})",
        f"tuned VRF ``k`` = {_either(v['k'] for v in vrf)},",
        f"``threshold`` at the {_either(v['threshold_quantile'] for v in vrf)} "
        "quantile of the validation rows' distances "
        f"({_span([v['threshold'] for v in vrf], '{:.2f}')})",
        f"``temperature`` {_span([v['temperature_fraction'] for v in vrf], '{:g}')} "
        "times their interquartile range "
        f"({_span([v['temperature'] for v in vrf], '{:.2g}')})",
        "mean fine-tuned weight on validation "
        f"{_span([v['finetuned_weight'] for v in vrf], '{:.2f}')}",
        f"the old fixed grid chose ``threshold`` "
        f"{_span([f['threshold'] for f in fixed], '{:.1f}')}",
        f"above every validation distance on {_COUNT[len(outside)]} of the "
        f"{_COUNT[len(seeds)]} draws (seeds {_seeds(outside)}",
        f"above every validation distance at its ``k`` on "
        f"{_COUNT[len(paper_outside)]} (seeds {_seeds(paper_outside)})",
        f"The ZSF set holds {_span(zsf, '{:,}')} training rows "
        f"({_span([round(100 * z / n_train) for z in zsf], '{:d}')} % of the "
        "training split)",
        "the selective kNN score uses ``k`` = "
        f"{_either(s['selective']['knn']['k_used'] for s in sel)};",
        f"the authors' rule gives ``k`` = {_span([s['authors_k'] for s in sel], '{}')}",
    ]


def _verb_choices(results):
    """The fragments of docs/benchmark_wordnet_verbs.rst's quoted results."""
    sel = results["selection"]
    vrf = [s["vrf"] for s in sel]
    tol = [s["tolerance"] for s in sel]
    zsf = [s["zsf_size"] for s in sel]
    dist = [s["paper_defaults"]["val_distance_range"] for s in sel]
    diff = results["difference_to_finetuned"]["zero-shot"]
    fragments = [
        f"the probe's ``C`` = {_either(s['finetuned']['C'] for s in sel)};",
        f"OSE's alpha {_span([s['ose']['alpha'] for s in sel], '{:.1f}')};",
        f"VRF's tuned ``k`` {_either(v['k'] for v in vrf)},",
        f"``threshold`` at the {_either(v['threshold_quantile'] for v in vrf)} "
        "quantile of the validation rows' distances "
        f"({_span([v['threshold'] for v in vrf], '{:.2f}')})",
        f"``temperature`` {_span([v['temperature_fraction'] for v in vrf], '{:g}')} "
        "times their interquartile range "
        f"({_span([v['temperature'] for v in vrf], '{:.2f}')})",
        "the fixed grid chose ``threshold`` "
        f"{_span([s['fixed_grid']['threshold'] for s in sel], '{:.1f}')}",
        f"the ZSF set holds {_span(zsf, '{:,}')} training rows",
        f"picks OSE's alpha {_span([t['ose']['alpha'] for t in tol], '{:.1f}')} "
        "and VRF candidates with a mean fine-tuned weight of "
        f"{_span([t['vrf']['finetuned_weight'] for t in tol], '{:.2f}')}",
        f"(``C = {_either(s['finetuned']['C'] for s in sel)}`` on every seed)",
        f"it is {-diff['id'][0]:.1f} points behind on ID and still "
        f"{-diff['subpopulation'][0]:.1f} behind on ``subpopulation`` "
        f"({-diff['usage'][0]:.1f} on ``usage``)",
        "every distance to the ZSF set observed on validation lies below it "
        f"({min(d[0] for d in dist):.2f} to {max(d[1] for d in dist):.2f})",
    ]
    if all(d[1] < 1.5 for d in dist):
        fragments.append("on all five draws every distance")
    acc = results["accuracy"]
    for shift, (er, lo, hi) in results["effective_robustness"].items():
        zs_id = 100 * np.mean(acc["zero-shot"]["id"])
        zs = 100 * np.mean(acc["zero-shot"][shift])
        ft_id = 100 * np.mean(acc["fine-tuned"]["id"])
        ft = 100 * np.mean(acc["fine-tuned"][shift])
        label = "subpop." if shift == "subpopulation" else shift
        cells = (
            f"``{label}`` {zs_id:.1f} → {zs:.1f} ({zs_id - zs:.1f}) "
            f"{ft_id:.1f} → {ft:.1f} ({ft_id - ft:.1f})"
        )
        fragments.append(cells)
        fragments.append(f"{er:+.1f} [{lo:+.1f}, {hi:+.1f}]")
    return fragments


@pytest.mark.parametrize(
    "page, fragments",
    [
        ("benchmark.rst", lambda: _noun_choices(_nouns())),
        ("benchmark_wordnet_verbs.rst", lambda: _verb_choices(_verbs())),
    ],
    ids=["nouns", "verbs"],
)
def test_quoted_choices_equal_the_committed_results(page, fragments):
    text = _text(DOCS / page)
    missing = [f for f in fragments() if " ".join(f.split()) not in text]
    assert not missing, f"{page} does not quote the committed results: {missing}"


def test_a_changed_result_fails_the_check():
    """Guard of the guard: a rerun that picks another alpha changes a fragment."""
    results = _nouns()
    before = _noun_choices(results)
    results["selections"][0]["ose"]["alpha"] = 0.3
    after = _noun_choices(results)
    text = _text(DOCS / "benchmark.rst")
    assert all(" ".join(f.split()) in text for f in before)
    assert any(" ".join(f.split()) not in text for f in after)


# -- no curly quotes in code ---------------------------------------------------

_CURLY = re.compile("[\u201c\u201d\u2018\u2019]")
# reStructuredText text that Sphinx's smartquotes would curl: a quote outside
# ``literal`` (and `default role`) spans
_LITERAL = re.compile(r"``.+?``|`[^`]+`")


def _generated_tables():
    nouns = _nouns()
    yield "readme_table.table", "\n".join(readme_table.table(nouns))
    yield "readme_table.rst_table", "\n".join(readme_table.rst_table(nouns))
    for path in sorted(DOCS.glob("*.inc")):
        yield path.name, path.read_text(encoding="utf-8")
    for path in sorted(RESULTS.rglob("*.md")):
        yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name, text", list(_generated_tables()))
def test_generated_tables_have_no_curly_quotes(name, text):
    assert not _CURLY.search(text), name


@pytest.mark.parametrize("name, text", list(_generated_tables()))
def test_generated_rst_quotes_are_in_code(name, text):
    """A quote in reStructuredText outside a literal turns curly in the HTML:
    code such as ``k="auto"`` must be written as a literal."""
    if name.endswith(".md") or name == "readme_table.table":
        return
    for line in text.splitlines():
        assert '"' not in _LITERAL.sub("", line), (name, line)


def test_benchmark_pages_write_code_with_straight_quotes():
    for page in BENCHMARK_PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            for span in _LITERAL.findall(line):
                assert not _CURLY.search(span), (page.name, line)
            # keyword=value with quotes outside a literal would be curled
            outside = _LITERAL.sub("", line)
            assert not re.search(r"\w=[\"'][^\"']*[\"']", outside) or line.startswith(
                "   "
            ), (page.name, line)


# -- gallery thumbnails --------------------------------------------------------------

_DRAWS = re.compile(r"plt\.(subplots|figure)\(|Display\.from_|\.plot\(")


def _examples():
    sys.path.insert(0, str(DOCS))
    try:
        import conf
    finally:
        sys.path.remove(str(DOCS))
    gallery = conf.sphinx_gallery_conf
    for path in sorted((REPO / "examples").glob("*.py")):
        if re.search(gallery["ignore_pattern"], "/" + path.name):
            continue
        executed = re.search(gallery["filename_pattern"], "/" + path.name) is not None
        yield path, executed


@pytest.mark.parametrize(
    "path, executed", list(_examples()), ids=lambda v: getattr(v, "name", str(v))
)
def test_every_gallery_card_has_a_real_thumbnail(path, executed):
    """An executed example draws a figure (its first is the thumbnail); one the
    build does not run names a thumbnail that the build draws."""
    text = path.read_text(encoding="utf-8")
    named = re.findall(r"^# sphinx_gallery_thumbnail_path = \"([^\"]+)\"", text, re.M)
    if executed:
        assert _DRAWS.search(text), f"{path.name} draws no figure"
        assert not named
    else:
        assert named == [f"_demo/thumbnails/{path.stem}.png"], path.name
        assert path.stem in skvrf_docs.STATIC_THUMBNAILS


def test_parameter_types_keep_straight_quotes(tmp_path):
    """``k : int or {"auto", "authors"}, default="auto"`` renders with the
    quotes as written (Sphinx's smart quotes curled them)."""
    sphinx = pytest.importorskip("sphinx.application")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'skvrf_docs']\n",
        encoding="utf-8",
    )
    (src / "index.rst").write_text(
        "Title\n=====\n\n"
        'k : int or {"auto", "authors"}, default="auto"\n'
        '    Which "k" ("quoted" prose).\n',
        encoding="utf-8",
    )
    app = sphinx.Sphinx(
        str(src),
        str(src),
        str(tmp_path / "html"),
        str(tmp_path / "doctrees"),
        "html",
        status=None,
        warning=None,
        freshenv=True,
    )
    app.build()
    html = (tmp_path / "html" / "index.html").read_text(encoding="utf-8")
    types = re.search(r'<span class="classifier">(.*?)</span>', html).group(1)
    assert types.replace("&quot;", '"') == 'int or {"auto", "authors"}, default="auto"'
    assert "\u201cquoted\u201d" in html  # prose keeps its typography


def _build(tmp_path, page):
    """Build a one-page site with skvrf_docs; returns (html, warnings)."""
    import io

    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir(parents=True)
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'skvrf_docs']\n",
        encoding="utf-8",
    )
    (src / "index.rst").write_text("Title\n=====\n\n" + page, encoding="utf-8")
    warnings = io.StringIO()
    out = tmp_path / "html"
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                 status=None, warning=warnings, freshenv=True)  # fmt: skip
    app.build()
    # a second Sphinx in one process warns that roles and nodes are registered
    # again: not the page's warnings
    shown = [
        line
        for line in warnings.getvalue().splitlines()
        if "already registered" not in line
    ]
    return (out / "index.html").read_text(encoding="utf-8"), "\n".join(shown)


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    """A run of "fake" in place of the build's skvrf demo."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("selection", "report", "weights"):
        (run / f"{name}.json").write_text(json.dumps(_RUN[name]), encoding="utf-8")
    plt = pytest.importorskip("matplotlib.pyplot")
    for name in ("tradeoff.png", "weights.png"):
        plt.imsave(run / name, np.zeros((4, 4)))
    monkeypatch.setitem(skvrf_docs._DEMO_RUNS, "fake", run)
    return run


def test_demo_directives_show_the_run_and_fail_on_a_false_claim(tmp_path, fake_run):
    page = (
        "k = :demo-value:`fake|vrf.k`, threshold :demo-value:`fake|vrf.threshold|.2f`"
        ", OSE :demo-value:`fake|report.scores.accuracy.OSE.id|pct`.\n\n"
        ".. demo-figure:: fake tradeoff.png\n   :alt: the figure\n\n"
        ".. demo-check:: fake\n\n"
        '   weights["weight_of_finetuned"]["lemma"]["mean"] < 0.6\n'
    )
    html, warnings = _build(tmp_path / "good", page)
    assert "k = 3, threshold 1.38, OSE 86.2." in " ".join(html.split())
    assert 'alt="the figure"' in html
    assert not warnings, warnings
    # the page's text no longer true of the run: a warning (-W fails)
    _, warnings = _build(tmp_path / "bad", page.replace("< 0.6", "> 0.6"))
    assert "demo-check (fake)" in warnings and "> 0.6" in warnings
    # a value the run does not have: an error
    _, warnings = _build(tmp_path / "missing", ":demo-value:`fake|vrf.alpha`\n")
    assert "demo-value 'fake|vrf.alpha'" in warnings


# -- the intervals the prose quotes -------------------------------------------

# (method, reference, column) of every difference the nouns page's "What the
# numbers say" quotes, and the README's paragraph
_NOUN_PAIRS = [
    ("VRF (paper defaults)", "fine-tuned", "ID"),
    ("VRF (paper defaults)", "fine-tuned", "OOD mean"),
    ("VRF (paper defaults)", "OSE", "OOD mean"),
    ("VRF (paper defaults)", "VRF", "OOD mean"),
    ("VRF", "OSE", "ID"),
    ("VRF", "OSE", "OOD mean"),
    ("VRF", "VRF (fixed grid)", "ID"),
    ("VRF", "VRF (fixed grid)", "OOD mean"),
    ("VRF (fixed grid)", "OSE", "OOD mean"),
    ("OSE (tolerance)", "OSE", "ID"),
    ("OSE (tolerance)", "OSE", "OOD mean"),
    ("VRF (tolerance)", "VRF", "ID"),
    ("VRF (tolerance)", "VRF", "OOD mean"),
    ("VRF (paper defaults)", "OSE (tolerance)", "ID"),
    ("VRF (paper defaults)", "OSE (tolerance)", "OOD mean"),
    ("VRF (all-rows bank)", "VRF (paper defaults)", "ID"),
    ("VRF (all-rows bank)", "VRF (paper defaults)", "OOD mean"),
    ("zero-shot (GLA)", "zero-shot", "ID"),
    ("zero-shot (GLA)", "zero-shot", "OOD mean"),
    ("VRF (paper defaults, GLA)", "VRF (paper defaults)", "OOD mean"),
    ("VRF (paper a, b; authors' k)", "fine-tuned", "ID"),
    ("VRF (paper a, b; authors' k)", "fine-tuned", "OOD mean"),
    ("entropy", "fine-tuned", "ID"),
    ("entropy", "fine-tuned", "OOD mean"),
]
_README_PAIRS = [
    ("VRF (paper defaults)", "fine-tuned", "OOD mean"),
    ("VRF (paper defaults)", "OSE", "OOD mean"),
    ("VRF", "OSE", "ID"),
    ("VRF", "OSE", "OOD mean"),
    ("VRF", "VRF (fixed grid)", "OOD mean"),
]
# the verbs page's comparisons (results.json "versus", ASCII signs as its
# results.md prints them)
_VERB_PAIRS = [
    ("VRF - OSE", "id"),
    ("VRF - OSE", "ood_mean"),
    ("VRF (fixed grid) - OSE", "id"),
    ("VRF (fixed grid) - OSE", "ood_mean"),
    ("VRF - VRF (fixed grid)", "id"),
    ("VRF - VRF (fixed grid)", "ood_mean"),
    ("VRF (tolerance) - OSE (tolerance)", "id"),
    ("VRF (tolerance) - OSE (tolerance)", "ood_mean"),
    ("VRF (paper defaults) - OSE", "id"),
    ("VRF (paper defaults) - OSE", "ood_mean"),
]


def _ascii_delta(d, lo, hi):
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def _quoted_intervals(page):
    if page == "verbs":
        versus = _verbs()["versus"]
        return [
            _ascii_delta(*versus[pair][col])  # points
            for pair, col in _VERB_PAIRS
        ]
    pairs = _README_PAIRS if page == "README" else _NOUN_PAIRS
    return [readme_table._delta(_nouns(), *pair) for pair in pairs]


@pytest.mark.parametrize(
    "page, path",
    [
        ("nouns", DOCS / "benchmark.rst"),
        ("README", REPO / "README.md"),
        ("verbs", DOCS / "benchmark_wordnet_verbs.rst"),
    ],
)
def test_quoted_intervals_equal_the_committed_results(page, path):
    """Every difference and interval the prose quotes is the committed
    results' (a rerun that moves one fails here until the text follows)."""
    text = _text(path)
    missing = [f for f in _quoted_intervals(page) if f not in text]
    assert not missing, f"{path.name} does not quote the committed results: {missing}"
