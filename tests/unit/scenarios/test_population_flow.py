"""[population] in scenarios: calls from presence, traffic from car legs, results, seeds."""


import h5py
import numpy as np
import pytest

import twin
from twin.agents.population import synthesize_population
from twin.errors import ScenarioError
from twin.runner import RUN_STREAMS, load_scenario, run
from twin.scenarios.population import car_trips
from twin.scenarios.population import population_seed as _seed_of
from twin.streams import StreamRegistry


def population_seed(scenario, run_seed):
    """The population seed of a scenario for a run seed (its [population] seed, or the stream's)."""
    return _seed_of(scenario.groups["population"], StreamRegistry(run_seed, RUN_STREAMS))


def _stream_seeds(seed):
    reg = StreamRegistry(seed, RUN_STREAMS)
    return {name: reg.int_seed(name) for name in RUN_STREAMS}

TINY = ["run.until_s=7200", "population.persons=3000"]


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("hefei_people", overrides=TINY)


def test_population_stream_is_spawned_after_the_others():
    # flows added later append their streams after these (evacuation ...), changing none of them
    i = RUN_STREAMS.index("population")
    assert RUN_STREAMS[i:i + 3] == ("population", "crashes", "incidents")
    assert RUN_STREAMS[i - 2:i] == ("traffic_demand", "traffic")
    seeds = _stream_seeds(1)
    old = np.random.SeedSequence(1).spawn(i)
    assert seeds["traffic"] == int(old[-1].generate_state(1, dtype=np.uint32)[0])
    assert seeds["population"] not in (seeds["traffic"], seeds["traffic_demand"])
    assert seeds["crashes"] not in (seeds["traffic"], seeds["traffic_demand"], seeds["population"])


def test_runs_and_writes_a_readable_file(tmp_path):
    out = tmp_path / "people.h5"
    res = run("hefei_people", seed=0, out=out, overrides=TINY)
    assert res.population is not None and res.population.n_persons == 3000
    assert res.traffic is not None and res.traffic_from_cars
    with twin.open_results(out) as r:
        keys = r.keys()
        for path in ("/events/ems_calls", "/events/population_persons", "/events/population_trips",
                     "/timeseries/population_present/persons", "/summary/population_n_persons",
                     "/events/traffic_trips"):
            assert path in keys
        assert len(r.table("/events/ems_calls")) == res.kpis["n_calls"]
        assert r.meta["population_persons"] == 3000 and r.meta["calls_from_presence"] is True
        assert r.meta["population_seed"] == population_seed(res.scenario, 0)
        assert "population" in r.meta["streams"]
        assert load_scenario(r.meta["scenario"]).data == res.scenario.data


def test_call_rates_follow_presence_hour_by_hour(scenario):
    """Each district's rate in hour h is r / 1000 / 24 x P[h, d] x w[h] (no daily averaging),
    so the daytime shift between districts is kept."""
    pop = synthesize_population(scenario.city, 3000, seed=population_seed(scenario, scenario.run_group.seed))
    present = pop.present_by_zone().to_numpy(dtype=float)                # (24, zones)
    calls = scenario.groups["calls"]
    w = np.asarray(calls.hourly_profile)
    expected = present * w[:, None] * calls.rate_per_1000_per_day / 1000 / 24
    table = scenario.ems.rate_table_per_h                                  # (24, ems zones, types)
    got = np.zeros_like(expected)
    for j, d in enumerate(scenario.layout.zone_district_idx):
        got[:, d] += table[:, j, :].sum(axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # the shift is real: district shares of the calls differ between 03:00 and 12:00
    share = got / got.sum(axis=1, keepdims=True)
    assert np.abs(share[3] - share[12]).max() > 0.01
    # type mix is the shares in every hour and district
    shares = np.array([c.share for c in scenario.groups["call_types"]])
    np.testing.assert_allclose(table.sum(axis=(0, 1)) / table.sum(), shares, rtol=1e-12)
    # zones carry the daily-mean rate (descriptive)
    rates = np.zeros(present.shape[1])
    for z, d in zip(scenario.ems.zones, scenario.layout.zone_district_idx):
        rates[d] += z.arrival_rate_per_h
    np.testing.assert_allclose(rates, expected.mean(0), rtol=1e-12)


def test_traffic_trips_are_the_population_car_legs():
    res = run("hefei_people", seed=3, overrides=TINY)
    legs = res.population.vehicle_trips()
    legs = legs[legs["origin"] != legs["destination"]]
    assert len(legs) > 0
    trips = car_trips(res.population)
    np.testing.assert_array_equal(trips["origin"].to_numpy(), legs["origin"].to_numpy())
    np.testing.assert_array_equal(trips["destination"].to_numpy(), legs["destination"].to_numpy())
    np.testing.assert_array_equal(trips["depart_s"].to_numpy(), legs["depart_s"].to_numpy())
    assert len(res.traffic.trips) == len(legs)
    assert res.traffic.kpis["simulated_s"] > 7200          # the day of car legs, not just the run
    # the run seed drives the population when [population] seed is omitted
    assert res.population.meta["seed"] == population_seed(res.scenario, 3) != population_seed(res.scenario, 1)


def test_explicit_random_trips_take_precedence():
    res = run("hefei_people", overrides=TINY + ["traffic.random_trips=200", "traffic.window_s=600"])
    assert len(res.traffic.trips) == 200 and not res.traffic_from_cars


def test_without_traffic_from_cars_no_traffic():
    res = run("hefei_people", overrides=TINY + ["population.traffic_from_cars=false"])
    assert res.traffic is None


def test_determinism(tmp_path):
    paths = [tmp_path / f"r{k}.h5" for k in range(3)]
    for p, seed in zip(paths, (5, 5, 6)):
        run("hefei_people", seed=seed, out=p, overrides=TINY)
    with h5py.File(paths[0], "r") as a, h5py.File(paths[1], "r") as b, h5py.File(paths[2], "r") as c:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            assert np.asarray(a[n][()]).tobytes() == np.asarray(b[n][()]).tobytes(), n
        assert a["/events/population_persons"]["age"].tobytes() != c["/events/population_persons"]["age"].tobytes()


def test_explicit_population_seed_is_used():
    a = run("hefei_people", seed=1, overrides=TINY + ["population.seed=42"])
    b = run("hefei_people", seed=2, overrides=TINY + ["population.seed=42"])
    assert a.population.meta["seed"] == b.population.meta["seed"] == 42
    assert [z.arrival_rate_per_h for z in a.scenario.ems.zones] == [z.arrival_rate_per_h for z in b.scenario.ems.zones]


def test_calls_from_presence_needs_rate_per_1000_per_day(tmp_path):
    text = load_scenario("hefei_people").resolved_text.replace("rate_per_1000_per_day = 0.65\n", "")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert "bad.toml" in msg and "[population]" in msg and "calls_from_presence" in msg
    assert "[calls]" in msg and "rate_per_1000_per_day" in msg


def test_presence_conflicts_with_rate_tables_and_needs_persons():
    with pytest.raises(ScenarioError, match=r"\[calls\] rate_per_h conflicts"):
        load_scenario("hefei_people", overrides=["calls.rate_per_h=5.0"])
    with pytest.raises(ScenarioError, match="missing 'persons'"):
        load_scenario({"population": {}, "calls": {"rate_per_1000_per_day": 1.0}, "city": {"name": "hefei-baohe"}})


def test_kpis_print_a_population_line(capsys):
    from twin.cli import main

    assert main(["run", "hefei_people", "--set", "run.until_s=3600", "--set", "population.persons=2000"]) == 0
    out = capsys.readouterr().out
    assert "population" in out and "2,000 persons" in out and "calls from presence" in out
