"""The package's layers: what imports torch, and that imports run one way.

Every import counts, at module level or inside a function (a lazy import is
still a dependency): the graph below is read with ``ast.walk`` over each file.
"""

import ast
import itertools
from pathlib import Path

import pytest

import skvrf

PACKAGE = Path(skvrf.__file__).parent

# The only modules that may import torch (when they are used): skvrf.clip, the
# torch neighbour backend and the packaged text encoder. Everything else stays
# importable, and imports, without it.
TORCH_FREE = [
    "skvrf",
    "skvrf.cli",
    "skvrf.datasets",
    "skvrf.evaluation",
    "skvrf.exceptions",
    "skvrf.io",
    "skvrf.minilm",
    "skvrf.neighbors",
    "skvrf.parallel",
    "skvrf.persistence",
    "skvrf.plotting",
    "skvrf.stores",
    "skvrf.utils",
]

# The top-level parts of skvrf (a module or a subpackage directly under it; "skvrf"
# is the package's own __init__), bottom first. A part imports only parts of its
# own layer or of the layers below; docs/developer_notes.rst shows the same table.
LAYERS = [
    ("exceptions", "utils"),
    (
        "_labels",
        "_weighting",
        "_heldout",
        "_calibration",
        "_label_bias",
        "_grids",
        "neighbors",
    ),
    ("_heads", "_classmap"),
    ("_base",),
    ("_vrf", "_baselines", "_selective"),
    ("_search",),
    ("evaluation",),
    ("skvrf",),
    ("stores",),
    ("parallel",),
    ("io",),
    ("clip", "minilm"),
    ("datasets",),
    ("plotting",),
    ("persistence",),
    ("commands", "cli"),
]
LAYER = {part: i for i, parts in enumerate(LAYERS) for part in parts}

# Where a module is imported by a name computed at run time, and why that keeps
# the direction: the command line imports its subcommands (the top layer), the
# clip package its own submodules, import_optional third-party packages.
DYNAMIC_IMPORTS = {"skvrf.cli", "skvrf.clip", "skvrf.utils._optional"}


def test_torch_free_modules_do_not_import_torch(python_stdout):
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n"
    )
    assert python_stdout(code) == "[]"


def _module_name(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path, name, modules):
    """``{imported skvrf module: first line}`` of every import in the file.

    ``from a.b import c`` counts as an import of ``a.b.c`` when that is a module,
    else of ``a.b``; relative imports are resolved against the file's package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                target = f"{module}.{alias.name}"
                found.setdefault(target if target in modules else module, node.lineno)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name, node.lineno)
    return {m: line for m, line in found.items() if m in modules and m != name}


def import_graph(root=PACKAGE):
    """``{module: {imported module: line}}`` over every file of the package."""
    modules = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def part(module):
    """The top-level part of skvrf a module belongs to."""
    names = module.split(".")
    return names[1] if len(names) > 1 else names[0]


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def climbing_imports(graph):
    """``"a (layer i) -> b (layer j), line n"`` for each import of a higher part."""
    found = []
    for module, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            src, dst = part(module), part(target)
            if LAYER.get(dst, len(LAYERS)) > LAYER.get(src, len(LAYERS)):
                found.append(
                    f"{module} (layer {LAYER.get(src)}, {src}) imports {target} "
                    f"(layer {LAYER.get(dst)}, {dst}) at line {line}"
                )
    return found


def _describe(cycle, graph):
    return (
        " -> ".join(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(cycle))
        + f" -> {cycle[-1]}"
    )


def test_no_import_cycle_between_modules():
    graph = import_graph()
    cycle = find_cycle(graph)
    if cycle:
        pytest.fail("import cycle between modules: " + _describe(cycle, graph))


def test_no_import_cycle_between_parts():
    graph = {}
    for module, targets in import_graph().items():
        edges = graph.setdefault(part(module), set())
        edges.update(part(t) for t in targets if part(t) != part(module))
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between parts: " + " -> ".join(cycle)


def test_every_part_has_a_layer():
    parts = {part(m) for m in import_graph()}
    assert parts == set(LAYER), (
        f"parts without a layer: {sorted(parts - set(LAYER))}; "
        f"layers without a part: {sorted(set(LAYER) - parts)}"
    )


def test_no_import_climbs_a_layer():
    climbing = climbing_imports(import_graph())
    assert not climbing, "imports that climb the layers:\n" + "\n".join(climbing)


def test_modules_are_imported_by_computed_names_only_where_listed():
    graph = import_graph()
    dynamic = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "import_module":
                dynamic.add(_module_name(path, PACKAGE))
            if isinstance(node, ast.Name) and node.id == "__import__":
                dynamic.add(_module_name(path, PACKAGE))
    assert dynamic <= DYNAMIC_IMPORTS
    assert DYNAMIC_IMPORTS <= set(graph)


def test_public_names_stay_where_they_were():
    # the errors are defined once, in skvrf.exceptions, and importable where
    # they were; the .npz reader and the CLIP_benchmark results moved modules
    # but keep their public names
    import skvrf.exceptions as exc
    import skvrf.io
    import skvrf.parallel
    import skvrf.persistence
    import skvrf.stores

    assert skvrf.io.FeatureFileError is exc.FeatureFileError
    assert skvrf.stores.FeatureFileError is exc.FeatureFileError
    for name in ("InvalidModelError", "ModelVersionWarning", "UntrustedModelError"):
        assert getattr(skvrf.persistence, name) is getattr(exc, name)
    for module in (skvrf, skvrf.io, skvrf.stores, skvrf.parallel, skvrf.persistence):
        missing = [n for n in module.__all__ if not hasattr(module, n)]
        assert not missing, (module.__name__, missing)
    assert skvrf.io.open_store is not skvrf.stores.open_store  # its own docstring
    assert skvrf.io.load_features is skvrf.stores._npz.load_features
    assert set(skvrf.parallel.__all__) == {
        "ensemble_weights",
        "predict",
        "predict_proba",
        "zsf_distances",
    }
    assert {"clip_benchmark_metrics", "write_clip_benchmark_json"} <= set(
        skvrf.stores.__all__
    )


def test_the_graph_sees_imports_inside_functions(tmp_path):
    # a lazy import, relative, two levels up, in a method: still an edge
    root = tmp_path / "skvrf"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "low.py").write_text("")
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "high.py").write_text(
        "class A:\n    def f(self):\n        from ..low import x\n        return x\n"
    )
    (root / "low.py").write_text("def g():\n    from .sub import high\n")
    graph = import_graph(root)
    assert graph["skvrf.sub.high"] == {"skvrf.low": 3}
    assert graph["skvrf.low"] == {"skvrf.sub.high": 2}
    assert find_cycle(graph) == ["skvrf.low", "skvrf.sub.high", "skvrf.low"]
