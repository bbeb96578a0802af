"""Collection rules shared by the test suite and the doctests of ``skvrf``."""

import importlib.util

collect_ignore_glob = ["docs/*", "examples/*", "benchmarks/*", "tools/*"]

# The core-only install has no torch / open_clip: skip the modules that need them.
if (
    importlib.util.find_spec("open_clip") is None
    or importlib.util.find_spec("torch") is None
):
    collect_ignore_glob.append("skvrf/clip/*")
if importlib.util.find_spec("sentence_transformers") is None:
    collect_ignore_glob.append("skvrf/minilm.py")
