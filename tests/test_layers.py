"""Import-layer guard (STYLE §1-2): imports go down the floors, never up, never in a cycle, never bare.

Floors, top to bottom (a module may import its own floor and the floors below it):

    cli         twin.cli, twin.cli_* (parses, prints, draws bars); the gallery scripts
    studies     twin.ensemble, twin.optimise, twin.optimise_plans, twin.optimise_care, twin.forecast,
                twin.forecast_verify
    runner      twin.runner, twin.scenario, twin.observed (load a scenario, assemble a Simulation of its flows)
    flows       twin.scenarios.* (one module per flow, and the built-in flow list)
    agents      twin.agents.*
    core        twin.* (clock, flows contract, ports, spec machinery, streams, graph, results ...)
    data        twin.data.*
    kernels     twin.kernels.* (numpy, numba, math only)

viz (twin.viz.*) is a side branch: it may import core and data, and nothing imports it
except the cli. ``leaf`` modules (errors, units, version) are importable from every floor
but kernels. Checked by walking the AST of every module, so an import inside a function
counts too; the import graph of the whole package has no cycle.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"twin": "twin", "agents": "twin.agents", "kernels": "twin.kernels", "data": "twin.data",
           "viz": "twin.viz", "scenarios": "twin.scenarios"}
LEAF = {"twin.errors", "twin.units", "twin._version"}  # importable from every layer but kernels
KERNEL_OK = {"numpy", "numba", "math"}
BARE = {"kernels", "agents", "data", "viz", "scenarios"}
#: The floors, top first; each may import itself and what is below it.
FLOORS = ["cli", "studies", "runner", "flows", "agents", "core", "data", "kernels"]


def layer_of(module):
    if module == "twin.cli" or module.startswith("twin.cli_") or module.startswith("twin.scenarios.gallery_"):
        return "cli"            # the gallery scripts are what a user runs: the top floor
    if module in ("twin.ensemble", "twin.optimise", "twin.optimise_plans", "twin.optimise_care", "twin.forecast",
                  "twin.forecast_verify"):
        return "studies"
    if module in ("twin.runner", "twin.scenario", "twin.observed"):
        return "runner"
    for pkg, name in (("twin.scenarios", "flows"), ("twin.agents", "agents"), ("twin.viz", "viz"),
                      ("twin.data", "data"), ("twin.kernels", "kernels")):
        if module == pkg or module.startswith(pkg + "."):
            return name
    if module in LEAF:
        return "leaf"
    return "core"


def allowed(mine):
    """Floors a module of floor ``mine`` may import."""
    if mine == "kernels":
        return set()
    if mine == "leaf":
        return {"leaf"}
    if mine == "viz":
        return {"viz", "core", "data", "leaf"}
    below = set(FLOORS[FLOORS.index(mine):]) | {"leaf"}
    return below | ({"viz"} if mine == "cli" else set())


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
            target = layer_of(name) if name != "twin" else "runner"   # the facade resolves run names lazily
            assert target in allowed(mine), f"{path}:{line}: {module} ({mine}) must not import {name} ({target})"


def _graph():
    """Import graph of the package: module -> modules of ours it imports (parents resolved)."""
    known = {m for m, _ in MODULES}
    graph = {}
    for module, path in MODULES:
        deps = set()
        for name, _ in imports(path):
            while name and name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                deps.add(name)
        graph[module] = deps
    return graph


def test_floors_rank_the_package():
    assert layer_of("twin.cli_run") == "cli" and layer_of("twin.ensemble") == "studies"
    assert layer_of("twin.runner") == "runner" and layer_of("twin.scenarios.ems") == "flows"
    assert layer_of("twin.agents.ems") == "agents" and layer_of("twin.flows") == "core"
    assert "runner" not in allowed("flows") and "flows" not in allowed("agents") and "cli" not in allowed("studies")


def find_cycles(graph) -> list:
    """Tarjan's strongly connected components of ``graph``: those larger than one module."""
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle_anywhere():
    cycles = find_cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_check_finds_a_cycle():
    """The check itself can fail: a three-module cycle beside an acyclic part is found."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c"]]
