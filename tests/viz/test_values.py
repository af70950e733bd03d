"""Layer values, clock text and charts from a results file (no rendering needed)."""

import numpy as np
import pytest

from twin.errors import ResultsError
from twin.viz.layers import LINK_LAYERS, clock_text, parse_clock_s

pytest.importorskip("pyvista")

from twin.viz.plot import link_layer_values  # noqa: E402


def test_layers_are_the_documented_link_series(grid_city, grid_run, grid_results):
    links = grid_run.links
    critical_veh = grid_city.capacity_veh_per_h / 3600.0 * grid_city.free_flow_time_s
    busiest = int(np.argmax(links["occupancy_veh"].astype(np.float32).sum(axis=1)))
    congestion, i = link_layer_values(grid_results, "congestion")
    assert i == busiest
    np.testing.assert_allclose(congestion, links["occupancy_veh"][i].astype(np.float32) / critical_veh, rtol=1e-6)
    flow, i = link_layer_values(grid_results, "flow", time_s=610.0)
    assert i == 2
    np.testing.assert_allclose(flow, links["outflow_veh"][2] * 12.0, rtol=1e-6)
    speed, _ = link_layer_values(grid_results, "speed", time_s=610.0)
    np.testing.assert_allclose(speed, 3.6 * links["speed_mps"][2].astype(np.float32), rtol=1e-6)   # km/h
    occupancy, _ = link_layer_values(grid_results, "occupancy", time_s=0.0)
    np.testing.assert_allclose(occupancy, links["occupancy_veh"][0].astype(np.float32), rtol=1e-6)


def test_bad_layer_and_time_are_clear_errors(grid_results):
    with pytest.raises(ValueError, match="unknown layer 'jam'; accepted: congestion, speed, occupancy, flow, flood-depth"):
        link_layer_values(grid_results, "jam")
    with pytest.raises(ResultsError, match=r"time_s = 99999.0 is outside the recorded intervals \[0.0, 3600.0\) s"):
        link_layer_values(grid_results, "speed", time_s=99999.0)
    with pytest.raises(ResultsError, match="no link series group '/timeseries/ems_links'"):
        link_layer_values(grid_results, "speed", series="ems_links")


def test_layer_titles_carry_units():
    assert {k: v.scalar_bar_title for k, v in LINK_LAYERS.items()} == {
        "congestion": "congestion: occupancy / critical occupancy", "speed": "speed (km/h)",
        "occupancy": "occupancy (veh)", "flow": "flow (veh/h)",
        "flood-depth": "flood depth (300 mm closes a road) (mm)",
        "risk": "risk, left to right: very low, low, moderate, high, very high"}


def test_clock_text_and_parse():
    assert [clock_text(t) for t in (0.0, 59.9, 3600.0 * 8 + 300.0, 26 * 3600.0)] == ["00:00", "00:00", "08:05", "26:00"]
    assert [parse_clock_s(t) for t in ("08:30", "1h30min", "45s", "600", "00:00:30")] == [30600.0, 5400.0, 45.0,
                                                                                       600.0, 30.0]
    with pytest.raises(ValueError, match="expected HH:MM"):
        parse_clock_s("soon")


def test_charts(grid_results, tmp_path):
    pytest.importorskip("matplotlib")
    from twin.viz.charts import CHARTS, plot_chart

    assert list(CHARTS) == ["travel-times", "network", "response-times", "hospital-occupancy", "eldercare", "epidemic",
                           "compare", "forecast-fan", "forecast-risk"]
    fig = plot_chart(grid_results, "travel-times", tmp_path / "tt.png")
    assert (tmp_path / "tt.png").stat().st_size > 1000
    assert fig.axes[0].get_xlabel() == "travel time (min)"
    fig = plot_chart(grid_results, "network", tmp_path / "net.png")
    assert [ax.get_ylabel() for ax in fig.axes] == ["vehicles (veh)", "vehicle-hours per interval (veh*h)"]
    with pytest.raises(ResultsError, match="no /events table with a response_time_s column"):
        plot_chart(grid_results, "response-times")
    with pytest.raises(ValueError, match="unknown chart kind 'pie'; accepted: travel-times, network"):
        plot_chart(grid_results, "pie")


def test_emergency_charts_and_hospital_points_from_generic_tables(grid_city, tmp_path):
    """The layout the emergency layer is expected to write: hospitals at nodes, calls, occupancy series."""
    pytest.importorskip("matplotlib")
    import twin
    from twin.viz.charts import plot_chart
    from twin.viz.mesh import node_points_mesh

    path = tmp_path / "ems.h5"
    with twin.ResultsWriter(path, meta={"city": grid_city.name}) as writer:
        twin.write_network(writer, grid_city)
        writer.write_table("/network/hospitals", {"name": np.array(["north", "south"]), "node_idx": np.array([5, 10])},
                           units={"name": "", "node_idx": ""})
        writer.write_table("/events/ems_calls", {"response_time_s": np.array([300.0, 420.0, 610.0, np.nan]),
                                                 "priority": np.array([1, 1, 2, 2])},
                           units={"response_time_s": "s", "priority": ""})
        writer.write_array("/timeseries/hospitals/time_s", np.array([0.0, 600.0, 1200.0]), units="s")
        writer.write_array("/timeseries/hospitals/occupancy_beds", np.array([[3, 5], [4, 6], [2, 7]], np.float32),
                           units="beds", attrs={"time_path": "/timeseries/hospitals/time_s"})
    with twin.open_results(path) as res:
        hospitals = res.table("/network/hospitals")
        _, occ = res.series("/timeseries/hospitals/occupancy_beds")
        pts = node_points_mesh(res, hospitals["node_idx"], {"occupancy_beds": occ[-1]})
    np.testing.assert_array_equal(pts.points[:, 0], grid_city.x_m[[5, 10]])
    np.testing.assert_array_equal(pts.point_data["occupancy_beds"], [2.0, 7.0])
    fig = plot_chart(path, "response-times")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["priority 1 (2 calls)", "priority 2 (1 calls)"]
    fig = plot_chart(path, "hospital-occupancy")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["north", "south"]    # no beds column
    assert fig.axes[0].get_ylabel() == "occupancy_beds (beds)"


def test_flood_depth_layer_reads_the_flood_series(tmp_path):
    """The flood-depth layer shows the depths the hazards flow wrote, interval by interval, and
    `twin render --layer flood-depth` finds the flood's series by itself."""
    from twin_small import SMALL

    from twin.results import open_results
    from twin.runner import run
    from twin.viz.cli import _layer_series

    text = SMALL.replace("until_s = 3600.0", "until_s = 7200.0") + """
[traffic]
random_trips = 500

[[hazards]]
name = "strip"
crs = "city"
polygon = [[900.0, -100.0], [1100.0, -100.0], [1100.0, 3000.0], [900.0, 3000.0]]
times_s = [0.0, 3600.0]
depth_mm = [0.0, 360.0]
"""
    out = tmp_path / "f.h5"
    run(text, seed=1, out=out)
    assert _layer_series(out, "flood-depth") == "hazard_strip_link_depth"
    depth, i = link_layer_values(out, "flood-depth", time_s=1850.0, series="hazard_strip_link_depth")
    with open_results(out) as f:
        want = f.array("/timeseries/hazard_strip_link_depth/depth_mm")[3]
    assert i == 3 and np.array_equal(depth, want.astype(np.float64)) and depth.max() == pytest.approx(180.0)
    plain = tmp_path / "plain.h5"
    run(SMALL, seed=1, out=plain)
    with pytest.raises(ResultsError, match="--layer flood-depth needs a run with a \\[\\[hazards\\]\\] flood"):
        _layer_series(plain, "flood-depth")


def test_charts_mark_targets_capacity_and_the_drain(tmp_path):
    """Response times with the P1/P2 target lines; hospital occupancy with each ward's beds and
    the drain after the horizon shaded (a real hefei_rush run)."""
    pytest.importorskip("matplotlib")
    from twin.runner import run
    from twin.viz.charts import plot_chart

    path = tmp_path / "r.h5"
    run("hefei_rush", out=path)
    fig = plot_chart(path, "response-times", tmp_path / "rt.png")
    ax = fig.axes[0]
    targets = sorted(line.get_xdata()[0] for line in ax.lines)
    assert targets == [8.0, 20.0] and "P1 target 8 min" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_title() == "hefei-baohe: emergency response times"
    fig = plot_chart(path, "hospital-occupancy", tmp_path / "ho.png")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "north-ed beds" in labels and "west-ed beds" in labels and "drain (after the run's horizon)" in labels
    beds = sorted(line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--")
    assert beds == [12, 16]
    assert (tmp_path / "rt.png").stat().st_size > 10_000 and (tmp_path / "ho.png").stat().st_size > 10_000
