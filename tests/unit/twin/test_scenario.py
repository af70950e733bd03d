"""twin.scenario: scenario files and built-ins, validation messages, --set overrides, the TOML round trip."""

import tomllib

import numpy as np
import pytest
from twin_small import SMALL, with_line, write

from twin.errors import ScenarioError
from twin.runner import apply_overrides, dump_toml, load_scenario

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


def test_centroid_locations_and_population_rates():
    sc = load_scenario(SMALL, overrides=["calls.locations=centroid", "calls.rate_per_h={\"1\" = 2.0, \"4\" = 1.0}"])
    assert [z.name for z in sc.ems.zones] == ["1", "4"]
    assert [z.arrival_rate_per_h for z in sc.ems.zones] == [2.0, 1.0]
    sc = load_scenario(SMALL.replace("rate_per_h = 4.0", "population = {\"1\" = 24000}\nrate_per_1000_per_day = 1.0"))
    n1 = int(np.sum(sc.city.zone_of_node == 0))
    assert len(sc.ems.zones) == n1
    assert sum(z.arrival_rate_per_h for z in sc.ems.zones) == pytest.approx(1.0)    # 24 calls/day


def test_emergency_speed_factor_shortens_static_times():
    base = load_scenario(SMALL)
    fast = load_scenario(SMALL, overrides=["service.emergency_speed_factor=2"])
    np.testing.assert_allclose(fast.ems.travel_time_s, base.ems.travel_time_s / 2)


def test_durations_in_the_toml_like_on_the_command_line():
    from twin_small import SMALL

    sc = load_scenario(SMALL.replace("until_s = 3600.0", 'until_s = "1h30min"'))
    assert sc.groups["run"].until_s == 5400.0
    with pytest.raises(ScenarioError, match=r"until_s = '2 days'; expected a number of seconds or a duration"):
        load_scenario(SMALL.replace("until_s = 3600.0", 'until_s = "2 days"'))
