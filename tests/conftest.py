"""Shared fixtures and markers.

``shared_data`` is the folder of third-party reference networks (``../shared/data`` beside the
repository, or ``$TWIN_SHARED_DATA``). Tests that need it skip cleanly when it is absent.
"""

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _register(name, path):
    """Import a helper file under a unique module name (tests are not a package; STYLE §1)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


# Plain reference implementations of the kernels: ``from twin_reference import ...``.
_register("twin_reference", REPO_ROOT / "tests" / "kernels" / "reference.py")
# Digests of the built-in scenarios' results files: ``from twin_digest import ...``.
_register("twin_digest", REPO_ROOT / "tests" / "scenarios" / "digest.py")
# The small grid scenario of the runner, scenario and flow unit tests: ``from twin_small import ...``.
_register("twin_small", REPO_ROOT / "tests" / "unit" / "small.py")
# The fuzz tests' checks and budgets: ``from twin_fuzz import ...``.
_register("twin_fuzz", REPO_ROOT / "tests" / "property" / "fuzz.py")


def _shared_data_dir():
    env = os.environ.get("TWIN_SHARED_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = _shared_data_dir()


def _viz_available():
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("pyvista", "matplotlib"))


# The viz tests need the ``viz`` extra. Without it they are left out (README command 2
# installs ``.[all]``); CI sets TWIN_REQUIRE_VIZ=1, where a missing extra is an error.
collect_ignore_glob = []
if not _viz_available():
    if os.environ.get("TWIN_REQUIRE_VIZ") == "1":
        raise RuntimeError("TWIN_REQUIRE_VIZ=1 but pyvista/matplotlib are not installed: pip install -e '.[viz]'")
    collect_ignore_glob.append("viz/*")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def shared_data():
    """Path of ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng():
    """A seeded generator (never the global numpy RNG)."""
    return np.random.default_rng(20261122)
