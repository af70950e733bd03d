"""Import-layer guard (STYLE §1-2): imports go down the layers, never up, and never bare.

Layers, top to bottom: cli/runner/ensemble > scenarios > agents > core (twin/*) > data >
kernels; viz is a side branch that only reads graphs and results. Checked by walking the
AST of every module, so an import inside a function counts too.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"twin": "twin", "agents": "twin.agents", "kernels": "twin.kernels", "data": "twin.data",
           "viz": "twin.viz", "scenarios": "twin.scenarios"}
TOP = {"twin.cli", "twin.runner", "twin.ensemble"}
LEAF = {"twin.errors", "twin.units", "twin._version"}  # importable from every layer but kernels
KERNEL_OK = {"numpy", "numba", "math"}
BARE = {"kernels", "agents", "data", "viz", "scenarios"}


def layer_of(module):
    if module in TOP:
        return "top"
    for pkg, name in (("twin.scenarios", "scenarios"), ("twin.agents", "agents"), ("twin.viz", "viz"),
                      ("twin.data", "data"), ("twin.kernels", "kernels")):
        if module == pkg or module.startswith(pkg + "."):
            return name
    if module in LEAF:
        return "leaf"
    return "core"


ALLOWED = {
    "kernels": set(),
    "leaf": {"leaf"},
    "data": {"data", "leaf"},
    "core": {"core", "data", "kernels", "leaf"},
    "agents": {"agents", "core", "data", "kernels", "leaf"},
    "scenarios": {"scenarios", "agents", "core", "data", "kernels", "leaf"},
    "viz": {"viz", "core", "data", "leaf"},
    "top": {"top", "scenarios", "agents", "core", "data", "kernels", "leaf", "viz"},
}


def package_modules():
    for folder, pkg in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([pkg] + parts), path


def imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


MODULES = list(package_modules())


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_go_down(module, path):
    mine = layer_of(module)
    for name, line in imports(path):
        if mine == "kernels":
            assert name.split(".")[0] in KERNEL_OK, f"{path}:{line}: kernels import only numpy, numba, math; got {name}"
            continue
        if name.split(".")[0] in BARE:
            pytest.fail(f"{path}:{line}: bare import {name!r}; import as twin.{name}")
        if name == "twin" or name.startswith("twin."):
            target = layer_of(name) if name != "twin" else "top"
            assert target in ALLOWED[mine], f"{path}:{line}: {module} ({mine}) must not import {name} ({target})"


def test_no_bare_imports_in_tests_and_benchmarks():
    for folder in ("tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for name, line in imports(path):
                assert name.split(".")[0] not in BARE, f"{path}:{line}: bare import {name!r}; use twin.{name}"


def test_import_twin_loads_no_vtk_pyvista_or_simulation_layers():
    code = ("import sys, twin; bad = [m for m in ('pyvista', 'vtk', 'vtkmodules', 'twin.viz', 'matplotlib') "
            "if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import twin loaded {out.stdout.strip()}"
