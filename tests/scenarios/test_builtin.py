"""Smoke runs of every built-in scenario (STYLE §14): tiny horizon, results file, determinism."""

import math
import shutil
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest

import twin
from twin.runner import builtin_scenarios, load_scenario, run

BUILTINS = builtin_scenarios()


def tiny(name):
    """Overrides that shrink a scenario to two simulated hours (and light, early traffic)."""
    sc = load_scenario(name)
    out = ["run.until_s=7200"]
    if sc.traffic is not None:
        out += ["traffic.window_start_s=0", "traffic.window_s=3600",
                f"traffic.random_trips={min(sc.traffic.random_trips, 2000)}"]
    out += [f"incidents.{i}.time_s=1800" for i in range(len(sc.ems.incidents))]   # inside the two hours
    if sc.groups.get("evacuation") is not None:
        out += ["evacuation.warning_s=1800"]
    return out


def test_there_are_builtin_scenarios():
    assert "hefei_day" in BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_runs_and_writes_a_readable_results_file(name, tmp_path):
    out = tmp_path / f"{name}.h5"
    res = run(name, seed=0, out=out, overrides=tiny(name))
    assert out.exists() and not (tmp_path / f"{name}.h5.partial").exists()
    with twin.open_results(out) as r:
        keys = r.keys()
        for path in ("/events/ems_calls", "/events/ems_unit_events", "/network/ems_stations", "/network/hospitals",
                     "/network/nodes", "/timeseries/ems_hospital_occupancy/occupancy_beds",
                     "/summary/ems_response_mean_s", "/summary/ems_unit_utilisation_mean"):
            assert path in keys
        calls = r.table("/events/ems_calls")
        # routine calls have a zone; incident patients and transfers (zone -1) are counted apart
        assert int((calls["zone_idx"] >= 0).sum()) == res.kpis["n_calls"] > 0
        assert len(calls) == res.kpis["n_calls"] + sum(i.patients for i in res.scenario.ems.incidents) + \
            res.kpis.get("n_transfers_ambulance", 0)
        assert set(calls["state"]) <= {"completed", "lost", "open"}
        assert r.meta["seed"] == 0 and r.meta["scenario_name"] == name
        # the resolved scenario in /meta runs again as it is
        assert load_scenario(r.meta["scenario"]).data == res.scenario.data
        t_s, occ = r.series("/timeseries/ems_hospital_occupancy/occupancy_beds")
        assert occ.shape == (len(t_s), res.scenario.ems.n_hospitals) and np.all(np.diff(t_s) > 0)
        assert r.units("/events/ems_calls")["response_time_s"] == "s"
        if res.scenario.traffic is not None:
            assert "/events/traffic_trips" in keys
    with h5py.File(out, "r") as f:
        missing = []
        f.visititems(lambda n, o: missing.append(n) if isinstance(o, h5py.Dataset) and not n.startswith("meta")
                     and "units" not in o.attrs else None)
        assert missing == []
    if shutil.which("h5dump"):
        text = subprocess.run(["h5dump", "-H", str(out)], capture_output=True, text=True, check=True).stdout
        for group in ("meta", "network", "timeseries", "events", "summary"):
            assert f'GROUP "{group}"' in text
        assert 'DATASET "ems_calls"' in text


@pytest.mark.parametrize("name", BUILTINS)
def test_same_seed_gives_identical_calls_and_another_seed_differs(name, tmp_path):
    over = tiny(name)
    paths = []
    for k, seed in enumerate((5, 5, 6)):
        paths.append(tmp_path / f"run{k}.h5")
        run(name, seed=seed, out=paths[-1], overrides=over)
    tables = []
    for p in paths:
        with h5py.File(p, "r") as f:
            tables.append(f["/events/ems_calls"][()])
    assert tables[0].tobytes() == tables[1].tobytes()
    assert tables[0].tobytes() != tables[2].tobytes()
    # every dataset of the two same-seed files is identical (STYLE §10)
    with h5py.File(paths[0], "r") as a, h5py.File(paths[1], "r") as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            va, vb = a[n][()], b[n][()]
            assert np.asarray(va).tobytes() == np.asarray(vb).tobytes(), n


def test_hefei_day_is_a_plausible_day():
    res = run("hefei_day", seed=1)
    k = res.kpis
    assert 150 <= k["n_calls"] <= 300
    assert {1, 2, 3} <= set(res.ems.calls["priority"])
    assert 0.1 < k["unit_utilisation_mean"] < 0.8
    assert 0.5 < k["response_p1_within_target"] <= 1.0
    assert math.isfinite(k["equity_gap_response_mean_s"])           # district 5 is central
    assert res.traffic is not None and res.traffic.kpis["completed"] == len(res.traffic.trips)
    assert res.n_syncs == 86400 // 60 + 1
    assert isinstance(res.districts, pd.DataFrame) and len(res.districts) == 9


def test_ems_charts_draw_from_a_run(tmp_path):
    pytest.importorskip("matplotlib")
    from twin.viz.charts import plot_chart

    out = tmp_path / "run.h5"
    run("hefei_day", out=out, overrides=tiny("hefei_day"))
    for kind in ("response-times", "hospital-occupancy"):
        fig = plot_chart(out, kind)
        assert fig.axes
