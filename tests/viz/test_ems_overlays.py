"""Calls as markers, hospitals as bars (tilted view) and the KPI comparison chart of two runs."""

import numpy as np
import pandas as pd
import pytest

import twin


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two short emergency runs (02:00) of hefei_day with different seeds."""
    from twin.runner import run

    folder = tmp_path_factory.mktemp("cmp")
    paths = []
    for seed in (1, 2):
        path = folder / f"seed{seed}.h5"
        run("hefei_day", out=path, overrides=["run.until_s=7200", f"run.seed={seed}"])
        paths.append(path)
    return paths


def test_active_calls_hand_made():
    from twin.viz.plot import active_calls

    calls = pd.DataFrame({"call_s": [0.0, 100.0, 350.0, 600.0, 250.0, 299.0],
                          "complete_s": [50.0, 400.0, np.nan, 700.0, 250.0, 300.0]})
    # interval [300, 600): 1 spans it, 2 is open, 3 starts at the end (out), 4 done before, 5 ends at 300 (out)
    assert active_calls(calls, 300.0, 600.0).tolist() == [False, True, True, False, False, False]
    # a call completed at once inside the interval counts
    assert active_calls(calls, 200.0, 300.0).tolist() == [False, True, False, False, True, True]


def test_call_marks_match_the_table(two_runs):
    from twin.viz.overlays import _call_marks

    with twin.open_results(two_runs[0]) as res:
        calls = res.table("/events/ems_calls")
        nodes = res.table("/network/nodes")
        x, y = nodes["x_m"].to_numpy(), nodes["y_m"].to_numpy()
        t0, t1 = 1800.0, 2100.0                  # two calls of seed 1 are open then
        mark = _call_marks(res, x, y, t0, t1, "priority", 1.0)
    call, done = calls["call_s"].to_numpy(), calls["complete_s"].to_numpy()
    expected = calls[(call < t1) & ((call >= t0) | (done > t0) | np.isnan(done))]
    assert len(expected) > 0
    np.testing.assert_array_equal(mark["call_id"], expected["call_id"].to_numpy())
    np.testing.assert_array_equal(mark["priority"], expected["priority"].to_numpy())
    np.testing.assert_array_equal(mark["x"], x[expected["node_idx"].to_numpy()])
    np.testing.assert_array_equal(mark["y"], y[expected["node_idx"].to_numpy()])
    np.testing.assert_array_equal(mark["response_time_s"], expected["response_time_s"].to_numpy())
    assert mark["clim"] == (0.0, float(np.nanmax(calls["response_time_s"])))


def test_no_ems_tables_draw_no_calls(grid_results):
    from twin.viz.overlays import _call_marks

    with twin.open_results(grid_results) as res:
        assert _call_marks(res, np.zeros(16), np.zeros(16), 0.0, 300.0, "priority", 1.0) is None


def test_bar_heights_hand_made_occupancy():
    pytest.importorskip("pyvista")
    from twin.viz.plot import hospital_bars_mesh

    occupied, beds = np.array([4.0, 12.0, 0.0]), np.array([16.0, 12.0, 8.0])
    mesh = hospital_bars_mesh([0.0, 100.0, 200.0], [0.0, 0.0, 50.0], occupied, beds, m_per_bed=10.0, radius_m=5.0)
    for k in range(3):
        part = mesh.extract_cells(np.flatnonzero(mesh.cell_data["hospital_idx"] == k))
        z0, z1 = part.bounds[4], part.bounds[5]
        assert z0 == pytest.approx(0.0, abs=1e-6)
        assert z1 == pytest.approx(10.0 * occupied[k], abs=1e-4)
        np.testing.assert_allclose(part.cell_data["share"], occupied[k] / beds[k])
        np.testing.assert_allclose(part.cell_data["height_m"], 10.0 * occupied[k])


def test_compare_chart_bars_equal_the_summaries(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    from twin.kpi_display import kpi_display
    from twin.viz.charts import COMPARE_KPIS, plot_chart

    out = tmp_path / "cmp.png"
    fig = plot_chart(two_runs[0], "compare", out, other=two_runs[1])
    assert out.stat().st_size > 10_000
    seen = {}
    for ax in fig.axes:
        for container in ax.containers:
            for bar in container:
                seen[(container.get_label(), bar.get_gid())] = bar.get_height()
    labels = sorted({lab for lab, _ in seen})
    assert labels == ["hefei_day (seed 1)", "hefei_day (seed 2)"]
    n = 0
    for label, path in zip(labels, two_runs):
        with twin.open_results(path) as res:
            summary = dict(zip(res.summary()["name"], res.summary()["value"]))
        for name, _, _ in COMPARE_KPIS:
            if name in summary and (label, name) in seen:
                # bars in display units (minutes, %): the summary's value times the display factor
                assert seen[(label, name)] == pytest.approx(float(summary[name]) * kpi_display(name)[2], nan_ok=True)
                n += 1
    assert n >= 8                               # the EMS KPIs of both runs at least


def test_compare_needs_other(two_runs):
    pytest.importorskip("matplotlib")
    from twin.viz.charts import plot_chart

    with pytest.raises(ValueError, match="other"):
        plot_chart(two_runs[0], "compare")
    with pytest.raises(ValueError, match="compare"):
        plot_chart(two_runs[0], "response-times", other=two_runs[1])


def test_cli_plot_compare(two_runs, tmp_path):
    pytest.importorskip("matplotlib")
    from twin.cli import main

    out = tmp_path / "cmp.png"
    assert main(["plot", str(two_runs[0]), "compare", "--other", str(two_runs[1]), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    assert main(["plot", str(two_runs[0]), "compare", "--out", str(out)]) == 2


@pytest.mark.viz
def test_tilted_view_with_bars_and_calls(offscreen, two_runs, tmp_path):
    from twin.viz.plot import plot_run

    for calls_by in ("priority", "response"):
        out = tmp_path / f"tilted_{calls_by}.png"
        pl = plot_run(two_runs[0], time_s=1900.0, view="tilted", calls_by=calls_by, screenshot=out)
        try:
            assert {"facility_hospital_bars", "facility_calls"} <= set(pl.actors)
            assert not pl.camera.parallel_projection
            img = pl.screenshot(return_img=True)
        finally:
            pl.close()
        assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50
        assert (img < 250).any(axis=-1).mean() > 0.05                # not blank


@pytest.mark.viz
def test_top_view_of_traffic_only_file_has_no_ems_actors(offscreen, grid_results):
    from twin.viz.plot import plot_run

    pl = plot_run(grid_results, time_s=900.0)
    try:
        assert not [k for k in pl.actors if str(k).startswith("facility_")]
        assert pl.camera.parallel_projection
    finally:
        pl.close()
    with pytest.raises(ValueError, match="view"):
        plot_run(grid_results, view="side")
