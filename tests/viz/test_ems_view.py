"""An emergency run with coupled traffic renders with hospitals, stations and ambulances.

The run is the built-in ``hefei_day`` scenario cut to the morning (``run.until_s``), so the
traffic, the hospitals and the units are all in one results file, as a planner's run is.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.viz


@pytest.fixture(scope="module")
def day_file(tmp_path_factory):
    from twin.runner import run

    path = tmp_path_factory.mktemp("ems") / "day.h5"
    run("hefei_day", out=path, overrides=["run.until_s=32400", "traffic.until_s=32400"])
    return path


def test_unit_positions_follow_the_events(day_file):
    """Ambulances at their station before any call; during the morning some are busy."""
    import twin
    from twin.viz.overlays import _unit_positions

    with twin.open_results(day_file) as res:
        nodes = res.table("/network/nodes")
        x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
        units = res.table("/network/ems_units")
        loc = res.table("/network/ems_locations").set_index("location_idx")["node_idx"]
        ux, uy, busy = _unit_positions(res, x, y, 0.0)
        home = loc[units["location_idx"]].to_numpy()
        np.testing.assert_allclose(ux, x[home])
        np.testing.assert_allclose(uy, y[home])
        assert not busy.any()
        first = res.table("/events/ems_unit_events")["time_s"].min()
        _, _, busy_later = _unit_positions(res, x, y, float(first) + 1.0)
        assert busy_later.any()


def test_render_shows_facilities_and_units(offscreen, day_file, tmp_path):
    from twin.viz.plot import plot_run

    out = tmp_path / "day.png"
    pl = plot_run(day_file, time_s=8.5 * 3600, layer="congestion", screenshot=out)
    try:
        texts = [a for name, a in pl.actors.items() if name == "units_legend"]
        assert texts, "the ambulance legend is drawn"
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    assert out.stat().st_size > 10_000
    # not blank: many colours, and some of the hospital colour map (cyan-magenta) present
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50


def _compare_with_baseline(img, name, tmp_path):
    """As tests/viz/test_render.py: not blank, then pyvista.compare_images against a baseline."""
    import os
    from pathlib import Path

    import pyvista as pv

    baselines = Path(__file__).resolve().parent / "baselines"
    img = np.asarray(img)
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20, f"{name}: the image is (nearly) blank"
    baseline = baselines / f"{name}.png"
    if os.environ.get("TWIN_UPDATE_BASELINES") == "1" or not baseline.exists():
        import imageio.v3 as iio

        iio.imwrite(baseline, img)
        if os.environ.get("TWIN_UPDATE_BASELINES") != "1":
            pytest.fail(f"no baseline {baseline}; wrote one from this run: look at it, then commit it")
        return
    error = pv.compare_images(img, str(baseline))
    if error > 500.0:   # same tolerance as test_render.py (different views score ~9,000)
        import imageio.v3 as iio

        iio.imwrite(tmp_path / f"{name}.png", img)
        pytest.fail(f"{name}: image error {error:.0f} > 500 against {baseline}")


@pytest.mark.parametrize("view", ["top", "tilted"])
def test_ems_views_match_their_baselines(offscreen, day_file, tmp_path, view):
    from twin.viz.plot import plot_run

    pl = plot_run(day_file, time_s=8.5 * 3600, layer="congestion", view=view)
    try:
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    _compare_with_baseline(img, f"ems_{view}", tmp_path)
