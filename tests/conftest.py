"""Session fixtures shared by the test modules.

The tiny open_clip model is built once per test session (``skvrf.clip.testing``);
modules that need it take the fixtures below by name.
"""

import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """(open_clip model, its inference transform, state-dict file) of the tiny
    architecture ``skvrf.clip.testing.TINY_NAME``, built once."""
    pytest.importorskip("open_clip")
    from skvrf.clip.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory):
    """The tiny architecture as an open_clip JSON config file."""
    from skvrf.clip.testing import write_tiny_config

    return write_tiny_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """An ImageFolder tree: 3 classes, 4 PNGs each, and one non-image file."""
    pytest.importorskip("PIL")
    from skvrf.clip.testing import build_image_folder

    return build_image_folder(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def python_stdout():
    """Run ``code`` in a fresh interpreter and return its stripped stdout.

    A fresh process is what import tests need (``sys.modules`` of this one
    already holds torch and friends); a failing run fails the test with its
    stderr.
    """

    def run(code, **kwargs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, **kwargs
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    return run
