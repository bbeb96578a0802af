"""The package's layers: what imports torch, and that imports run one way."""

import ast
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
    "skvrf.io",
    "skvrf.minilm",
    "skvrf.neighbors",
    "skvrf.parallel",
    "skvrf.persistence",
    "skvrf.plotting",
    "skvrf.stores",
    "skvrf.utils",
]


def test_torch_free_modules_do_not_import_torch(python_stdout):
    code = (
        "import importlib, sys\n"
        f"for name in {TORCH_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n"
    )
    assert python_stdout(code) == "[]"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path, name):
    """skvrf modules imported at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                module = ".".join(anchor + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("skvrf"):
                found.add(module)
                for alias in node.names:  # "from . import x" may name a module
                    found.add(f"{module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("skvrf"))
    return found


def test_no_import_cycle():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _top_level_imports(path, name) if m in modules}
        for name, path in modules.items()
    }
    # a package's __init__ re-exporting its own submodules is not a cycle
    for name in graph:
        graph[name] = {
            m for m in graph[name] if not (m.startswith(name + ".") or m == name)
        }
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            # importing a submodule first imports its parent packages
            if state.get(nxt) == "open" and not node.startswith(nxt + "."):
                pytest.fail("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
