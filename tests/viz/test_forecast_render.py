"""``twin render FORECAST.h5 --layer risk --horizon H``: each link drawn in the risk class of its
start node's district at that horizon (the highest over the harms), in the five risk colours."""

import argparse

import numpy as np
import pytest

pytestmark = pytest.mark.viz


def _forecast_file(city, path):
    from twin.forecast import ForecastResult

    zones = [str(z) for z in city.zone_ids]                  # districts 1..4 of the 4x4 grid
    late = np.zeros((4, 2, 4), dtype=bool)
    late[:, 1, 0] = True                                      # district 1 at +6 h: every member (very high)
    late[0, 1, 3] = True                                      # district 4 at +6 h: 1 of 4 (moderate)
    full = np.zeros_like(late)
    full[:2, 1, 2] = True                                     # district 3 at +6 h, hospital full: 2 of 4 (high)
    res = ForecastResult(t0_s=21600.0, horizons_s=[10800.0, 21600.0], kpi_names=["n_calls"],
                         kpis=np.ones((4, 2, 1)), zones=zones, p1_late=late,
                         harms={"p1_late": late, "hospital_full": full}, city=city,
                         cut=[43200.0])                       # +12 h asked for, cut to the run's end at +6 h
    res.write(path)
    return res


def test_the_risk_layer_colours_links_by_their_district(offscreen, grid_city, tmp_path):
    from twin.forecast import RISK_COLOURS
    from twin.viz.layers import RISK_COLOURS as VIZ_COLOURS
    from twin.viz import plot_run

    assert VIZ_COLOURS == RISK_COLOURS
    path = tmp_path / "fc.h5"
    _forecast_file(grid_city, path)
    pl = plot_run(path, layer="risk", series="forecast_risk_links", time_s=21600.0 + 21600.0, window_size=(480, 360))
    try:
        links = pl.actors["links"].mapper.dataset
        value = np.asarray(links.cell_data["risk"])
        link = np.asarray(links.cell_data["link_idx"])
        district = np.asarray(grid_city.zone_of_node)[np.asarray(grid_city.link_from_idx)[link]]
        assert np.array_equal(value, np.array([4, 0, 3, 2])[district])
        assert pl.actors["title"].input.endswith("forecast risk 06:00-12:00 (+6 h)")
        img = np.asarray(pl.screenshot(return_img=True)).reshape(-1, 3)
    finally:
        pl.close()
    for colour in (RISK_COLOURS[4], RISK_COLOURS[3], RISK_COLOURS[2]):
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img - rgb).sum(axis=1) < 30).sum() > 50, colour


def test_cli_render_horizon(offscreen, grid_city, tmp_path):
    from twin.errors import ResultsError
    from twin.viz.cli import add_render_parser

    path = tmp_path / "fc.h5"
    _forecast_file(grid_city, path)
    ap = argparse.ArgumentParser(prog="twin")
    add_render_parser(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["render", str(path), "--layer", "risk", "--horizon", "3h", "--out", str(tmp_path / "r.png"),
                          "--size", "320x240"])
    assert args.func(args) == 0 and (tmp_path / "r.png").stat().st_size > 1000
    args = ap.parse_args(["render", str(path), "--layer", "risk", "--horizon", "12h", "--out", str(tmp_path / "c.png"),
                          "--size", "320x240"])
    assert args.func(args) == 0                                    # the horizon cut: drawn at the run's end
    args = ap.parse_args(["render", str(path), "--layer", "risk", "--horizon", "5h"])
    with pytest.raises(ResultsError, match="has horizons 3h, 6h; --horizon 5h is not one of them"):
        args.func(args)
