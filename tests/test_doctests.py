"""The docstring examples (``>>>``) of every module in the installed package run and give what they show.

Walks ``twin`` and its sub-packages by import name (so each module is the installed one, not a
second copy imported from its folder), collects every docstring with examples and runs them with
ELLIPSIS and NORMALIZE_WHITESPACE. The gallery scripts are left to ``tests/scenarios/test_gallery.py``:
they run their whole example on import.
"""

import doctest
import importlib
import pkgutil

import pytest

import twin

SUBPACKAGES = ("twin.agents", "twin.kernels", "twin.viz", "twin.scenarios", "twin.data")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
    names = [m.name for m in pkgutil.walk_packages(twin.__path__, "twin.")]
    for sub in SUBPACKAGES:
        pkg = importlib.import_module(sub)
        names += [m.name for m in pkgutil.walk_packages(pkg.__path__, sub + ".")]
    return sorted(n for n in names if n != "twin.__main__" and not n.rsplit(".", 1)[-1].startswith("gallery_"))


def _examples():
    found = []
    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in _module_names():
        for test in finder.find(importlib.import_module(name)):
            if test.examples:
                found.append(test)
    return sorted(found, key=lambda t: t.name)


EXAMPLES = _examples()


def test_the_package_has_docstring_examples():
    # The walk reaches every floor: a module list that shrank to the top package would pass vacuously.
    assert len(EXAMPLES) >= 20
    assert {t.name.split(".")[1] for t in EXAMPLES} >= {"agents", "data", "viz", "queueing", "runner"}


@pytest.mark.parametrize("test", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_docstring_example(test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    out = []
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
