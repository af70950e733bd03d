"""Off-screen renders of twin.viz.plot, compared with stored baseline images.

Each view is rendered once, checked to be neither blank nor one colour, and compared with
``tests/viz/baselines/<view>.png`` by :func:`pyvista.compare_images` (the mean pixel error
VTK's image difference reports). The tolerance of 500 is PyVista's own error threshold
(pytest-pyvista): it absorbs anti-aliasing and font rasterisation differences between
OpenGL drivers, while a wrong colour map, camera or missing title moves the error into
the thousands. Run with ``TWIN_UPDATE_BASELINES=1`` to rewrite the baselines after an
intended change, and look at them before committing.
"""

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.viz

BASELINES = Path(__file__).parent / "baselines"
TOLERANCE = 500.0
SIZE = (480, 360)


def title_of(pl):
    """The title text that plot_run put at the top."""
    return pl.actors["title"].input


def check_view(img, name, tmp_path):
    import pyvista as pv

    img = np.asarray(img)
    assert img.shape == (SIZE[1], SIZE[0], 3)
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 20, f"{name}: only {len(colours)} colours; the image is (nearly) blank"
    assert (img.min(axis=2) < 200).mean() > 0.02, f"{name}: almost nothing drawn on the white background"
    baseline = BASELINES / f"{name}.png"
    if os.environ.get("TWIN_UPDATE_BASELINES") == "1" or not baseline.exists():
        BASELINES.mkdir(exist_ok=True)
        import imageio.v3 as iio

        iio.imwrite(baseline, img)
        if os.environ.get("TWIN_UPDATE_BASELINES") != "1":
            pytest.fail(f"no baseline {baseline}; wrote one from this run: look at it, then commit it")
        return
    error = pv.compare_images(img, str(baseline))
    if error > TOLERANCE:
        import imageio.v3 as iio

        iio.imwrite(tmp_path / f"{name}.png", img)
        pytest.fail(f"{name}: image error {error:.0f} > {TOLERANCE:.0f} against {baseline}; "
                    f"this run's image is {tmp_path / (name + '.png')}")


def test_congestion_map(offscreen, grid_results, tmp_path):
    from twin.viz import plot_run

    pl = plot_run(grid_results, layer="congestion", window_size=SIZE)
    try:
        assert "congestion" in pl.actors["links"].mapper.dataset.cell_data
        assert title_of(pl) == "grid_4x4: congestion 00:05-00:10"
        assert pl.scalar_bars["congestion: occupancy / critical occupancy"] is not None
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    check_view(img, "congestion", tmp_path)


def test_flow_lines_map(offscreen, grid_results, tmp_path):
    from twin.viz import plot_run

    pl = plot_run(grid_results, layer="flow", time_s=600.0, tubes=False, window_size=SIZE)
    try:
        assert title_of(pl) == "grid_4x4: flow 00:10-00:15"
        assert "flow (veh/h)" in pl.scalar_bars
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    check_view(img, "flow_lines", tmp_path)


def test_zones_and_facilities_overlay(offscreen, grid_city, grid_results, tmp_path):
    import pyvista as pv

    from twin.viz import add_points, node_points_mesh, plot_run, zones_mesh

    pl = pv.Plotter(off_screen=True, window_size=list(SIZE))
    try:
        pl.add_mesh(zones_mesh(grid_city), color="#dde8f0", lighting=False)
        plot_run(grid_results, layer="speed", time_s=900.0, plotter=pl)
        hospitals = node_points_mesh(grid_results, [5, 10], [0.35, 0.92], name="occupancy")
        add_points(pl, hospitals, scalars="occupancy", clim=(0.0, 1.0), scalar_bar_title="beds (1)")
        assert title_of(pl) == "grid_4x4: speed 00:15-00:20"
        img = pl.screenshot(return_img=True)
    finally:
        pl.close()
    check_view(img, "zones_facilities", tmp_path)


def test_cli_render_png_and_gif(offscreen, grid_results, tmp_path):
    import argparse

    import imageio.v3 as iio

    from twin.viz.cli import add_plot_parser, add_render_parser

    ap = argparse.ArgumentParser(prog="twin")
    sub = ap.add_subparsers(dest="command")
    add_render_parser(sub)
    add_plot_parser(sub)
    png, gif = tmp_path / "c.png", tmp_path / "c.gif"
    args = ap.parse_args(["render", str(grid_results), "--time", "00:10", "--out", str(png), "--size", "320x240"])
    assert args.func(args) == 0
    assert iio.imread(png).shape == (240, 320, 3)
    args = ap.parse_args(["render", str(grid_results), "--layer", "speed", "--time", "00:00", "--out", str(gif),
                          "--size", "160x120", "--lines"])
    assert args.func(args) == 0
    frames = iio.imread(gif)
    # GIF writers merge identical consecutive frames (the empty network after the last arrival).
    assert 2 <= frames.shape[0] <= 12 and frames.shape[1:] == (120, 160, 3)
    args = ap.parse_args(["render", str(grid_results), "--out", str(tmp_path / "c.mp4")])
    import importlib.util

    if importlib.util.find_spec("imageio_ffmpeg") is None:
        assert args.func(args) == 2
    args = ap.parse_args(["plot", str(grid_results), "travel-times", "--out", str(tmp_path / "tt.png")])
    assert args.func(args) == 0


def test_movie_writes_one_frame_per_interval(offscreen, grid_results, tmp_path):
    from twin.viz import render_movie

    done = []
    out = render_movie(grid_results, tmp_path / "m.gif", layer="occupancy", fps=2, time_s=(600.0, 1800.0),
                       window_size=(160, 120), progress=lambda n, total: done.append((n, total)))
    assert out == tmp_path / "m.gif" and out.stat().st_size > 0
    assert done == [(n, 4) for n in range(1, 5)]  # intervals starting 10, 15, 20, 25 min
    done.clear()
    render_movie(grid_results, tmp_path / "e.gif", layer="occupancy", fps=2, time_s=(600.0, 1800.0), every=3,
                 window_size=(160, 120), progress=lambda n, total: done.append((n, total)))
    assert done == [(1, 2), (2, 2)]               # the intervals starting 10 and 25 min
    with pytest.raises(ValueError, match="every = 0"):
        render_movie(grid_results, tmp_path / "e.gif", every=0)
    with pytest.raises(ValueError, match=r"ends in '.avi'; accepted: .gif, .mp4"):
        render_movie(grid_results, tmp_path / "m.avi")
