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

PUBLIC_MODULES = [
    "skvrf",
    "skvrf.clip",
    "skvrf.neighbors",
    "skvrf.datasets",
    "skvrf.evaluation",
    "skvrf.plotting",
    "skvrf.persistence",
    "skvrf.io",
]


def _entries():
    """(module, name) of each autosummary entry and autodata of docs/api.rst."""
    module, in_autosummary, entries = None, False, []
    for line in API.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = m.group(1)
        elif m := re.match(r"\.\. autodata:: (\S+)", line):
            entries.append((module, m.group(1)))
        elif line.startswith(".. autosummary::"):
            in_autosummary = True
        elif in_autosummary:
            if m := re.fullmatch(r"   ([A-Za-z_][\w.]*)", line):
                entries.append((module, m.group(1)))
            elif line and not line.startswith("   "):
                in_autosummary = False
    return entries


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(module_name):
    module = importlib.import_module(module_name)
    documented = {name for _, name in _entries()}
    missing = [
        name
        for name in module.__all__
        if not name.startswith("__") and name not in documented
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
