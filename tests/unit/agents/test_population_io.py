"""Reading a population back from the results store, and re-timing its plans."""

import numpy as np
import pandas as pd
import pytest

import twin
from twin.agents.population import Population, read_population, synthesize_population
from twin.errors import ResultsError, ScenarioError


@pytest.fixture(scope="module")
def baohe():
    return twin.load_city("hefei-baohe")


@pytest.fixture(scope="module")
def pop(baohe):
    return synthesize_population(baohe, 3_000, seed=5)


def write(pop, path, **kw):
    with twin.ResultsWriter(path) as writer:
        twin.write_network(writer, pop.city)
        pop.write(writer, **kw)
    return path


def assert_same(a, b):
    for name in ("age", "sex", "person_type", "health_flags", "car_available", "household_idx", "home_node_idx",
                 "work_node_idx", "hh_size", "hh_zone_idx", "hh_node_idx", "hh_car", "act_indptr", "act_type",
                 "act_node_idx", "act_start_s", "act_end_s", "act_mode"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    pd.testing.assert_frame_equal(a.facilities, b.facilities)
    pd.testing.assert_frame_equal(a.zone_table, b.zone_table)
    pd.testing.assert_frame_equal(a.trips(), b.trips())
    for t in (0.0, 7.9 * 3600, 8.2 * 3600, 17.5 * 3600, 86_000.0):
        la, lb = a.location_at(t), b.location_at(t)
        np.testing.assert_array_equal(la.node_idx, lb.node_idx)
        np.testing.assert_array_equal(la.activity, lb.activity)
        np.testing.assert_array_equal(la.zone_idx, lb.zone_idx)
    assert a.equals(b)


def test_round_trip_is_exact(pop, baohe, tmp_path):
    path = write(pop, tmp_path / "pop.h5")
    back = Population.read(path)                      # city loaded from the stored name
    assert back.city.n_nodes == baohe.n_nodes
    assert_same(pop, back)
    # every meta entry but the wall-clock timings, which stay out of the file (byte-identical runs)
    assert back.meta == {k: v for k, v in pop.meta.items() if k != "timings_s"}
    np.testing.assert_array_equal(back._car_time_s, pop._car_time_s)
    assert back.accessibility().summary == pop.accessibility().summary
    same = twin.read_population(path, baohe)          # and with the city given
    assert_same(pop, same)


def test_round_trip_keeps_congested_costs_and_retimed_plans(baohe, tmp_path):
    cost = baohe.free_flow_time_s * 2.0
    pop = synthesize_population(baohe, 1_500, seed=9, link_cost_s=cost)
    pop = pop.with_travel_times(np.full(len(pop.vehicle_trips()), 400.0))
    path = write(pop, tmp_path / "pop.h5", prefix="people")
    back = read_population(path, baohe, prefix="people")
    np.testing.assert_array_equal(back._car_link_cost_s, cost)
    assert_same(pop, back)
    assert back.meta["retimed"] == pop.meta["retimed"]


def test_read_errors_name_the_problem(pop, tmp_path):
    path = write(pop, tmp_path / "pop.h5")
    with pytest.raises(ResultsError, match=r"no population written under prefix 'people'"):
        read_population(path, prefix="people")
    with pytest.raises(ResultsError, match=r"made on city 'hefei-baohe' with \{'n_nodes': 155.*the city given has"):
        read_population(path, twin.load_city("grid:4x4"))
    grid = twin.load_city("grid:4x4")
    gpath = write(synthesize_population(grid, 300, seed=1), tmp_path / "grid.h5")
    with pytest.raises(ResultsError, match=r"cannot load the population's city 'grid_4x4'.*pass city="):
        read_population(gpath)
    assert read_population(gpath, grid).n_persons == 300


def test_with_travel_times_shifts_later_activities_and_keeps_durations(pop):
    vt = pop.vehicle_trips()
    assert len(vt) > 50
    obs = np.full(len(vt), np.nan)
    obs[::2] = 1800.0                                   # every other car leg observed at 30 min
    new = pop.with_travel_times(obs)
    k = pop._trip_slots()
    # durations of activities are kept (the last one stays open-ended)
    np.testing.assert_allclose((new.act_end_s - new.act_start_s)[np.isfinite(pop.act_end_s)],
                               (pop.act_end_s - pop.act_start_s)[np.isfinite(pop.act_end_s)], rtol=0, atol=1e-6)
    # continuity and time consistency
    assert (new.act_start_s[k] >= new.act_end_s[k - 1]).all()
    assert (new.act_end_s >= new.act_start_s).all()
    np.testing.assert_array_equal(new.act_start_s[pop.act_indptr[:-1]], 0.0)
    # observed legs take observed + parking time; the first departure from home is the plan's
    slots = pop._vehicle_trip_slots()
    np.testing.assert_allclose(new.act_start_s[slots[::2]] - new.act_end_s[slots[::2] - 1], 1800.0 + 300.0)
    np.testing.assert_allclose(new.act_start_s[slots[1::2]] - new.act_end_s[slots[1::2] - 1],
                               pop.act_start_s[slots[1::2]] - pop.act_end_s[slots[1::2] - 1])
    first_dep = new.act_end_s[pop.act_indptr[:-1]]
    np.testing.assert_array_equal(first_dep, pop.act_end_s[pop.act_indptr[:-1]])
    # persons without a car leg are untouched, bit for bit
    has_car = np.zeros(pop.n_persons, bool)
    has_car[vt["person"].to_numpy()] = True
    untouched = np.repeat(~has_car, np.diff(pop.act_indptr))
    np.testing.assert_array_equal(new.act_start_s[untouched], pop.act_start_s[untouched])
    assert new.meta["retimed"]["car_legs"] == int(np.isfinite(obs).sum())
    # the vehicle trips of the new plan depart at the re-timed times
    assert len(new.vehicle_trips()) == len(vt)


def test_with_travel_times_all_nan_changes_nothing_and_bad_input_is_named(pop):
    n = len(pop.vehicle_trips())
    same = pop.with_travel_times(np.full(n, np.nan))
    np.testing.assert_array_equal(same.act_start_s, pop.act_start_s)
    np.testing.assert_array_equal(same.act_end_s, pop.act_end_s)
    match = rf"got 3 car travel times; expected one per row of vehicle_trips\(\) \({n}\)"
    with pytest.raises(ScenarioError, match=match):
        pop.with_travel_times([1.0, 2.0, 3.0])
    bad = np.full(n, 60.0)
    bad[4] = -1.0
    with pytest.raises(ScenarioError, match=r"row 4 \(person \d+, trip from node \d+ to \d+\) has travel time -1.0"):
        pop.with_travel_times(bad)


def test_synthesis_link_cost_errors_are_clear(baohe):
    with pytest.raises(ScenarioError, match=r"link_cost_s has shape \(3,\); expected \(285,\)"):
        synthesize_population(baohe, 100, seed=1, link_cost_s=np.ones(3))
    cost = baohe.free_flow_time_s.copy()
    cost[7] = -2.0
    with pytest.raises(ScenarioError, match=r"link_cost_s\[7\] = -2.0"):
        synthesize_population(baohe, 100, seed=1, link_cost_s=cost)


@pytest.mark.shared
def test_reading_opens_no_file_the_results_file_names(shared_data, tmp_path):
    """A population on a network file: reading it back without city= does not open the file the
    results file names (a clear error says how), load_city_file=True does; a results file naming
    a huge synthetic city is refused by the city's bound, not allocated."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        city = twin.load_city(shared_data / "tntp" / "SiouxFalls" / "SiouxFalls_net.tntp")
    pop = synthesize_population(city, 500, seed=2)
    path = write(pop, tmp_path / "pop.h5")
    with pytest.raises(ResultsError, match="load_city_file=True"):
        read_population(path)
    assert_same(pop, read_population(path, load_city_file=True))
    assert_same(pop, read_population(path, city))
    # the same file, its city renamed to a spec of 10**10 intersections
    import json

    import h5py

    with h5py.File(path, "r+") as f:
        old = f["meta/population_city"]
        text, dtype, attrs = old[()], old.dtype, dict(old.attrs)
        info = json.loads(text.decode() if isinstance(text, bytes) else text)
        info.update(name="grid:100000x100000", source="grid:100000x100000")
        del f["meta/population_city"]
        new = f["meta"].create_dataset("population_city", data=json.dumps(info), dtype=dtype)
        new.attrs.update(attrs)
    with pytest.raises(ResultsError, match="cannot load the population's city 'grid:100000x100000'"):
        read_population(path)
