"""Fixtures for the viz tests: a small results file and an off-screen rendering check.

Rendering tests use the ``offscreen`` fixture: it renders a sphere in a subprocess (a GL
failure can abort the process) and skips the test when that fails, i.e. only where
off-screen rendering is truly unavailable. Set ``TWIN_REQUIRE_VIZ=1`` (CI does) to fail
instead of skipping. ``TWIN_UPDATE_BASELINES=1`` rewrites the baseline images.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import twin

GRID = "grid:4x4"

_PROBE = (
    "import pyvista as pv\n"
    "pl = pv.Plotter(off_screen=True, window_size=(64, 64))\n"
    "pl.add_mesh(pv.Sphere(), color='red')\n"
    "img = pl.screenshot(return_img=True)\n"
    "assert img.std() > 0, 'blank image'\n"
    "print(type(pl.render_window).__name__)\n"
)


def grid_trips(city, n_trips=3000, window_s=1200.0, seed=11):
    """Uniform random OD trips on ``city`` from a seeded generator (never the global RNG)."""
    rng = np.random.default_rng(seed)
    o = rng.integers(0, city.n_nodes, size=n_trips)
    d = rng.integers(0, city.n_nodes - 1, size=n_trips)
    d = d + (d >= o)
    return {"origin": city.node_ids[o], "destination": city.node_ids[d],
            "depart_s": np.sort(rng.uniform(0.0, window_s, size=n_trips))}


@pytest.fixture(scope="session")
def grid_city():
    return twin.load_city(GRID)


@pytest.fixture(scope="session")
def grid_run(grid_city):
    """The TrafficResult of a small congested run on the 4x4 grid (deterministic)."""
    return twin.simulate_traffic(grid_city, grid_trips(grid_city), until_s=3600.0, seed=3, interval_s=300.0)


@pytest.fixture(scope="session")
def grid_results(tmp_path_factory, grid_city, grid_run):
    """Path of a results file with the grid's network and the run's trips, series and KPIs."""
    path = tmp_path_factory.mktemp("viz") / "grid_run.h5"
    with twin.ResultsWriter(path, meta={"city": grid_city.name, "interval_s": 300.0, "dt_s": 1.0}) as writer:
        twin.write_network(writer, grid_city)
        grid_run.write(writer)
    return path


@pytest.fixture(scope="session")
def offscreen():
    """Skip (or fail, with TWIN_REQUIRE_VIZ=1) where off-screen rendering does not work."""
    pytest.importorskip("pyvista")
    from twin.viz.headless import prepare_offscreen

    prepare_offscreen()
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120)
        ok, why = probe.returncode == 0, (probe.stderr or probe.stdout).strip()[-800:]
    except subprocess.TimeoutExpired:
        ok, why = False, "the probe render timed out"
    if not ok:
        message = f"off-screen rendering unavailable (see docs/viz.md): {why}"
        if os.environ.get("TWIN_REQUIRE_VIZ") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return probe.stdout.strip()
