"""twin.runner: scenario files, --set overrides, the CLI command and the traffic coupling."""

import argparse
import tomllib

import numpy as np
import pytest

from twin.errors import ResultsError, ScenarioError
from twin.cli_run import add_run_parser, run_main
from twin.runner import apply_overrides, dump_toml, load_scenario, run

SMALL = """
[city]
name = "grid:6x6"

[run]
until_s = 3600.0
seed = 3

[calls]
rate_per_h = 4.0

[[call_types]]
name = "p1"
priority = 1
on_scene = 300.0

[[stations]]
name = "corner"
node = 1
ambulances = 1

[[hospitals]]
name = "h"
node = 36
beds = 4

[service]
return_mode = "instant"
turnout = 0.0
"""


def write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def with_line(old, new):
    assert old in SMALL
    return SMALL.replace(old, new)


# ------------------------------------------------------------------ validation messages

@pytest.mark.parametrize("text,match", [
    (SMALL + "\n[trafic]\nrandom_trips = 5\n", r"unknown table 'trafic' in bad.toml; did you mean 'traffic'\?"),
    (with_line("seed = 3", "seed = 3\nuntil = 5"),
     r"unknown key 'until' in bad.toml: \[run\]; did you mean 'until_s'\? accepted keys: until_s, seed"),
    (with_line("beds = 4", "beds = -2"), r"bad.toml: \[hospitals.0\] \('h'\) beds = -2; expected an integer >= 0"),
    (with_line("beds = 4", "beds = 4\nmode = 'lose'"),
     r"bad.toml: \[hospitals.0\] \('h'\) mode = 'lose'; expected one of 'loss', 'queue'"),
    (with_line("until_s = 3600.0", "until_s = 0"), r"bad.toml: \[run\] until_s = 0; expected a finite number > 0"),
    (with_line("node = 1", "node = 999"), r"bad.toml: \[stations.0\] \('corner'\) node = 999: not a node of city"),
    (with_line("rate_per_h = 4.0", "rate_per_h = { \"7\" = 1.0 }"),
     r"bad.toml: \[calls\] rate_per_h.7: unknown zone id '7'; city 'grid_6x6' has zones 1, 2, 3, 4"),
    (with_line("rate_per_h = 4.0", ""), r"bad.toml: \[calls\]: give either rate_per_h .* or population"),
    (with_line("on_scene = 300.0", "on_scene = { kind = 'weibull', mean_s = 3 }"),
     r"bad.toml: \[call_types.0\] \('p1'\) on_scene.*'weibull'"),
    (with_line("priority = 1", "priority = 1\nshare = 0.5"), r"bad.toml: ems.call_types: shares sum to 0.5; expected 1"),
    (with_line("name = \"grid:6x6\"", "name = \"nowhere\""), r"bad.toml: \[city\] name = 'nowhere'"),
    (SMALL + "\n[traffic]\nsync_s = -1\n", r"bad.toml: \[traffic\] sync_s = -1; expected a finite number > 0"),
    ("[run\nseed = 1", r"bad.toml: not valid TOML"),
])
def test_scenario_errors_name_file_table_and_key(tmp_path, text, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(write(tmp_path, text))


def test_unknown_builtin_lists_the_builtins():
    with pytest.raises(ScenarioError, match=r"no scenario file 'hefei_dya'.*built-in scenarios: hefei_day"):
        load_scenario("hefei_dya")


def test_builtin_is_found_by_name_and_a_file_wins(tmp_path, monkeypatch):
    assert load_scenario("hefei_day").source == "hefei_day.toml"
    monkeypatch.chdir(tmp_path)
    write(tmp_path, SMALL, "hefei_day")
    assert load_scenario("hefei_day").city.name == "grid_6x6"


# ------------------------------------------------------------------ --set

def test_overrides_are_typed_from_the_spec(tmp_path):
    path = write(tmp_path, SMALL, "small.toml")
    sc = load_scenario(path, overrides=["run.seed=7", "run.until_s=1800", "hospitals.0.beds=20",
                                        "hospitals.h.mode=queue", "calls.rate_per_h=2", "city.name=grid:4x4", "hospitals.0.node=16",
                                        "service.turnout=30", "traffic.random_trips=100",
                                        "stations.corner.busy_time=600"])
    g = sc.groups
    assert g["run"].seed == 7 and g["run"].until_s == 1800.0 and isinstance(g["run"].until_s, float)
    assert g["hospitals"][0].beds == 20 and g["hospitals"][0].mode == "queue"
    assert g["city"].name == "grid:4x4" and sc.city.n_nodes == 16
    assert g["service"].turnout.mean_s == 30.0 and g["traffic"].random_trips == 100
    assert sc.overrides[0] == "run.seed=7"
    assert "seed = 7" in sc.resolved_text and "[traffic]" in sc.resolved_text
    # a distribution table's field, and a zone entry of a table
    sc = load_scenario(path, overrides=["service.handover={kind='exponential', mean_s=600}",
                                        "service.handover.mean_s=900", "calls.rate_per_h={\"1\" = 1.0}",
                                        "calls.rate_per_h.2=3"])
    assert sc.groups["service"].handover == sc.groups["service"].handover.__class__("exponential", 900.0)
    assert sc.groups["calls"].rate_per_h == {"1": 1.0, "2": 3.0}


@pytest.mark.parametrize("override,match", [
    ("run.sed=3", r"--set run.sed: unknown key 'run.sed' in small.toml; did you mean 'seed'\?"),
    ("hospital.0.beds=3", r"--set hospital.0.beds: unknown table 'hospital'.*did you mean 'hospitals'\?"),
    ("hospitals.4.beds=3", r"--set hospitals.4.beds: no \[\[hospitals\]\] item '4'.*0..0 or a name in \['h'\]"),
    ("hospitals.0.beds=many", r"small.toml \(with --set overrides\): \[hospitals.0\] \('h'\) beds = 'many'; "
                              r"expected an integer >= 0"),
    ("run.seed", r"--set 'run.seed': expected KEY=VALUE"),
    ("run.seed.x=1", r"--set run.seed.x: 'run.seed' has no sub-key 'x'"),
])
def test_bad_overrides(tmp_path, override, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(write(tmp_path, SMALL, "small.toml"), overrides=[override])


def test_apply_overrides_copies_and_dump_round_trips():
    data = tomllib.loads(SMALL)
    new = apply_overrides(data, {"run.seed": 9, "stations.0.name": "a b"})
    assert data["run"]["seed"] == 3 and new["run"]["seed"] == 9 and new["stations"][0]["name"] == "a b"
    assert tomllib.loads(dump_toml(new)) == new
    sc = load_scenario(SMALL)
    assert load_scenario(sc.resolved_text).data == sc.data


# ------------------------------------------------------------------ running and the CLI

def test_seed_argument_and_out_checks(tmp_path):
    a, b = run(SMALL), run(SMALL, seed=3)
    assert a.seed == b.seed == 3
    assert a.ems.calls["time_s"].equals(b.ems.calls["time_s"])
    assert not run(SMALL, seed=4).ems.calls["time_s"].equals(a.ems.calls["time_s"])
    with pytest.raises(ScenarioError, match=r"run seed = -1; expected an integer >= 0"):
        run(SMALL, seed=-1)
    (tmp_path / "x.h5").write_text("")
    with pytest.raises(ResultsError, match="already exists"):
        run(SMALL, out=tmp_path / "x.h5")


def test_cli_run_prints_kpis_and_writes(tmp_path, capsys):
    ap = argparse.ArgumentParser(prog="twin")
    add_run_parser(ap.add_subparsers(dest="command"))
    path = write(tmp_path, SMALL, "small.toml")
    out = tmp_path / "run.h5"
    args = ap.parse_args(["run", str(path), "--out", str(out), "--seed", "2", "--set", "run.until_s=1800",
                          "--set", "calls.rate_per_h=8"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    for needle in ("scenario small on grid_6x6", "seed 2", "calls", "response time mean", "P1 within 8 min",
                   "unit utilisation", "hospital blocking", "equity gap", f"wrote {out}"):
        assert needle in text
    assert out.exists()
    assert run_main(ap.parse_args(["run", "--list"])) == 0
    assert "hefei_day" in capsys.readouterr().out
    assert run_main(ap.parse_args(["run", "--keys"])) == 0
    assert "traffic.sync_s" in capsys.readouterr().out


def test_centroid_locations_and_population_rates():
    sc = load_scenario(SMALL, overrides=["calls.locations=centroid", "calls.rate_per_h={\"1\" = 2.0, \"4\" = 1.0}"])
    assert [z.name for z in sc.ems.zones] == ["1", "4"]
    assert [z.arrival_rate_per_h for z in sc.ems.zones] == [2.0, 1.0]
    sc = load_scenario(SMALL.replace("rate_per_h = 4.0", "population = {\"1\" = 24000}\nrate_per_1000_per_day = 1.0"))
    n1 = int(np.sum(sc.city.zone_of_node == 0))
    assert len(sc.ems.zones) == n1
    assert sum(z.arrival_rate_per_h for z in sc.ems.zones) == pytest.approx(1.0)    # 24 calls/day


# ------------------------------------------------------------------ traffic coupling

def test_congestion_makes_responses_no_shorter_with_common_random_numbers():
    """Units at one corner station, instant return: a call dispatched the moment it is ready
    found an idle unit, hence at the station. With common random numbers (same calls, same
    dice) each such call's travel time on live link costs (free flow + queue delay >= free
    flow) is at least its static time, and a heavy background makes responses longer."""
    over = ["stations.0.ambulances=3", "calls.rate_per_h=10"]
    static = run(SMALL, overrides=over + ["traffic.random_trips=0"])
    coupled = run(SMALL, overrides=over + ["traffic.random_trips=20000", "traffic.window_s=900"])
    assert static.traffic is None and coupled.traffic is not None
    assert coupled.traffic.kpis["congestion_index"] > 2.0                 # the background is congested
    a, b = static.ems.calls, coupled.ems.calls
    assert a["time_s"].equals(b["time_s"]) and a["zone_idx"].equals(b["zone_idx"])    # same calls
    tt = static.scenario.ems.travel_time_s
    station = static.scenario.ems.units[0].station_idx
    zloc = np.array([z.location_idx for z in static.scenario.ems.zones])
    free = tt[station, zloc[a["zone_idx"].to_numpy()]]
    for calls in (a, b):
        at_station = (calls["wait_s"] == 0).to_numpy()
        assert at_station.sum() >= 3
        assert np.all(calls["travel_s"].to_numpy()[at_station] >= free[at_station] - 1e-9)
    at_station = (a["wait_s"] == 0).to_numpy()
    np.testing.assert_allclose(a["travel_s"].to_numpy()[at_station], free[at_station])
    assert b["travel_s"].mean() > a["travel_s"].mean()
    assert coupled.kpis["response_mean_s"] > static.kpis["response_mean_s"]
    assert coupled.n_syncs == 3600 // 60 + 1


def test_emergency_speed_factor_shortens_static_times():
    base = load_scenario(SMALL)
    fast = load_scenario(SMALL, overrides=["service.emergency_speed_factor=2"])
    np.testing.assert_allclose(fast.ems.travel_time_s, base.ems.travel_time_s / 2)


def test_priority_removes_the_queue_delay_green_wave():
    """Legs timed at their start (ambulances_in_traffic = false): with full priority
    (queue_delay_share = 0: queue bypass and signal preemption) an ambulance's leg costs its
    free-flow time whatever the congestion; without it the legs dispatched from the station
    are longer. Common random numbers: same calls, same dice."""
    over = ["stations.0.ambulances=3", "calls.rate_per_h=10", "traffic.random_trips=20000",
            "traffic.window_s=900", "traffic.ambulances_in_traffic=false"]
    stuck = run(SMALL, overrides=over + ["service.queue_delay_share=1"])
    green = run(SMALL, overrides=over + ["service.queue_delay_share=0"])
    a, b = stuck.ems.calls, green.ems.calls
    assert a["time_s"].equals(b["time_s"])
    tt = green.scenario.ems.travel_time_s
    station = green.scenario.ems.units[0].station_idx
    zloc = np.array([z.location_idx for z in green.scenario.ems.zones])
    at_station = (b["wait_s"] == 0).to_numpy()
    free = tt[station, zloc[b["zone_idx"].to_numpy()]]
    np.testing.assert_allclose(b["travel_s"].to_numpy()[at_station], free[at_station])   # bypass: free flow
    assert a["travel_s"].mean() > b["travel_s"].mean()
    assert stuck.kpis["response_mean_s"] > green.kpis["response_mean_s"]
