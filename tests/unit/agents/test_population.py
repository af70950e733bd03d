"""Unit tests of twin.agents.population: inputs, errors, storage, CLI functions."""

import argparse

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import twin
from twin.agents.activities import ActivityParams, ModeParams
from twin.agents.population import (
    ZONE_COLUMNS, default_zone_table, read_zone_table,
    synthesize_population)
from twin.cli_population import add_population_parser, population_main
from twin.errors import ScenarioError
from twin.results import open_results


@pytest.fixture(scope="module")
def baohe():
    return twin.load_city("hefei-baohe")


@pytest.fixture(scope="module")
def small(baohe):
    return synthesize_population(baohe, 3_000, seed=2)


def two_zone_city():
    """Zone A (nodes 1, 2) and zone B (3, 4); one one-way link 2 -> 3: B cannot reach A."""
    G = nx.DiGraph()
    for i, (x, z) in enumerate([(0, "A"), (100, "A"), (300, "B"), (400, "B")], 1):
        G.add_node(i, x=float(x), y=0.0, zone=z)
    for u, v in [(1, 2), (2, 1), (3, 4), (4, 3), (2, 3)]:
        G.add_edge(u, v, length_m=100.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1000.0)
    return twin.load_city(G)


def test_default_zone_table_documented_defaults(baohe):
    t = default_zone_table(baohe)
    assert list(t.columns) == list(ZONE_COLUMNS)
    assert t["persons"].sum() == pytest.approx(150_000)
    np.testing.assert_allclose(t[["age_0_14", "age_15_59", "age_60_64", "age_65_79", "age_80_plus"]].sum(axis=1), 1)
    assert t["age_65_79"].iloc[0] + t["age_80_plus"].iloc[0] == pytest.approx(0.1350)
    assert "road length" in t.attrs["source"]


def test_zone_table_override_from_csv(baohe, tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("zone_id,persons,workers\n5,50000,0.5\n")
    t = read_zone_table(path, baohe)
    row = t[t["zone_id"] == 5].iloc[0]
    assert row["persons"] == 50_000 and row["workers"] == 0.5
    assert t[t["zone_id"] == 1]["persons"].iloc[0] == default_zone_table(baohe)["persons"].iloc[0]
    pop = synthesize_population(baohe, 2_000, seed=1, zones=path)
    share5 = (pop.home_zone_idx == 4).mean()
    assert share5 > 0.2


@pytest.mark.parametrize("csv,match", [
    ("zone_id,persons\n42,100\n", r"row 1 \(zone 42\): zone_id 42 is not a zone"),
    ("zone_id,persons\n3,-5\n", r"row 1 \(zone 3\): persons = -5.0; expected a finite number >= 0"),
    ("zone_id,persons\n3,10\n3,20\n", r"row 2 \(zone 3\): zone 3 already given in row 1"),
    ("zone_id,age_0_14,age_15_59,age_60_64,age_65_79,age_80_plus\n2,0.2,0.5,0.1,0.1,0.05\n",
     r"row 1 \(zone 2\): age shares .* sum to 0.95; expected 1"),
    ("zone_id,hh_1,hh_2,hh_3,hh_4,hh_5,hh_6plus\n2,0.5,0.5,0.5,0,0,0\n", r"household-size shares .* sum to 1.5"),
    ("zone_id,age_0_14\n2,0.2\n", r"age share columns \['age_0_14'\] given without"),
    ("zone_id,population\n2,10\n", r"unknown column\(s\) \['population'\]; accepted"),
    ("zone_id,workers,students\n2,0.7,0.5\n", r"workers \+ students = 1.2"),
    ("persons\n10\n", r"no 'zone_id' column"),
    ("zone_id,persons\n2,lots\n", r"persons = 'lots'; expected a number"),
])
def test_bad_zone_tables_name_the_row_and_zone(baohe, tmp_path, csv, match):
    path = tmp_path / "zones.csv"
    path.write_text(csv)
    with pytest.raises(ScenarioError, match=match):
        read_zone_table(path, baohe)


def test_bad_facilities(baohe):
    with pytest.raises(ScenarioError, match=r"facility table row 2: node 123 is not a node"):
        synthesize_population(baohe, 500, seed=1, facilities=pd.DataFrame(
            {"kind": ["school", "school"], "node": [baohe.node_ids[0], 123]}))
    with pytest.raises(ScenarioError, match=r"row 1: kind 'mall'; accepted"):
        synthesize_population(baohe, 500, seed=1, facilities=pd.DataFrame({"kind": ["mall"], "node": [baohe.node_ids[0]]}))
    with pytest.raises(ScenarioError, match=r"row 1: weight = -1.0"):
        synthesize_population(baohe, 500, seed=1, facilities=pd.DataFrame(
            {"kind": ["market"], "node": [baohe.node_ids[0]], "weight": [-1.0]}))


def test_facility_override_replaces_only_its_kind(baohe):
    node = baohe.node_ids[10]
    pop = synthesize_population(baohe, 2_000, seed=1, facilities=pd.DataFrame({"kind": ["school"], "node": [node]}))
    schools = pop.facilities[pop.facilities["kind"] == "school"]
    assert schools["node_idx"].tolist() == [10]
    assert (pop.work_node_idx[pop.person_type == 1] == 10).all()
    assert (pop.facilities["kind"] == "market").sum() >= 9


def test_zone_with_no_reachable_facility_is_named():
    city = two_zone_city()
    fac = pd.DataFrame({"kind": ["school"], "node": [1]})
    with pytest.raises(ScenarioError, match=r"zone 'B': no school facility can be reached by road from node [34]"):
        synthesize_population(city, 400, seed=1, facilities=fac)


def test_unknown_option_and_bad_types(baohe):
    with pytest.raises(ScenarioError, match=r"unknown option\(s\) \['zone'\]; accepted"):
        synthesize_population(baohe, 100, seed=1, zone="x.csv")
    with pytest.raises(TypeError, match="seed must be an int"):
        synthesize_population(baohe, 100, seed="1")
    with pytest.raises(ScenarioError, match="n_persons = 0"):
        synthesize_population(baohe, 0, seed=1)
    with pytest.raises(ScenarioError, match=r"pattern_shares\['worker'\].*summing to 1 \(sum is 0.8\)"):
        ActivityParams().replace(pattern_shares={"worker": {"H": 0.5, "HWH": 0.2, "HWSH": 0.1}})
    with pytest.raises(ScenarioError, match="unknown mode parameter 'speed'"):
        ModeParams().replace(speed=3)
    with pytest.raises(ScenarioError, match="location_at: t_s = nan"):
        synthesize_population(baohe, 100, seed=1).location_at(float("nan"))


def test_struct_of_arrays_under_200_bytes_per_person(small):
    nbytes = small.state_nbytes()
    assert nbytes["total"] / small.n_persons < 200
    assert small.age.dtype == np.uint8 and small.household_idx.dtype == np.int32
    assert small.summary()["state_bytes_per_person"] < 200


def test_trips_table_and_vehicle_trips(small, baohe):
    t = small.trips()
    assert list(t.columns) == ["person", "origin", "destination", "depart_s", "arrive_s", "mode", "purpose"]
    assert len(t) == small.n_trips
    assert set(t["origin"]).issubset(set(baohe.node_ids.tolist()))
    v = small.vehicle_trips()
    assert len(v) == int((t["mode"] == "car").sum())
    assert (np.diff(v["depart_s"].to_numpy()) >= 0).all()


def test_write_and_read_back(small, tmp_path):
    path = tmp_path / "pop.h5"
    with twin.ResultsWriter(path) as writer:
        small.write(writer)
    with open_results(path) as res:
        persons = res.table("/events/population_persons")
        trips = res.table("/events/population_trips")
        assert len(persons) == small.n_persons
        np.testing.assert_array_equal(persons["age"].to_numpy(), small.age)
        assert len(trips) == small.n_trips
        assert res.units("/events/population_trips") is not None
        present = res.array("/timeseries/population_present/persons")
        assert present.shape == (24, small.city.n_zones)
        summary = res.summary().set_index("name")["value"]
        assert summary["population_n_persons"] == small.n_persons


def test_cli_functions(tmp_path, capsys):
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    add_population_parser(sub)
    out = tmp_path / "pop.h5"
    args = ap.parse_args(["population", "hefei-baohe", "--persons", "2000", "--seed", "3", "--out", str(out)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "2,000 persons" in text and "mode share car" in text and "wrote" in text
    assert out.exists()
    args = ap.parse_args(["population", "hefei-baohe", "--persons", "100", "--out", str(out)])
    with pytest.raises(twin.ResultsError, match="already exists"):
        population_main(args)


def test_destination_that_cannot_reach_home_is_named():
    city = two_zone_city()
    fac = pd.DataFrame({"kind": ["school", "market", "park", "clinic", "elderly_care"], "node": [3, 3, 3, 3, 3]})
    with pytest.raises(ScenarioError, match=r"node [12] cannot be reached by road from node [34] \(zone 'B'\)"):
        synthesize_population(city, 400, seed=1, facilities=fac)


def test_congested_accessibility_is_never_better_than_free_flow():
    """Driving times on congested link costs (>= free flow) can only shrink the share of
    residents within 30 min of a hospital; free-flow costs given explicitly change nothing."""
    import twin
    from twin.agents.population import synthesize_population

    city = twin.load_city("grid:8x8")
    pop = synthesize_population(city, 5000, seed=4)
    free = pop.accessibility(drive_limit_s=600).by_zone["hospital_drive_share"].to_numpy()
    same = pop.accessibility(drive_limit_s=600, link_cost_s=city.free_flow_time_s).by_zone["hospital_drive_share"]
    np.testing.assert_allclose(same.to_numpy(), free)
    slow = pop.accessibility(drive_limit_s=600, link_cost_s=3.0 * city.free_flow_time_s)
    slow_share = slow.by_zone["hospital_drive_share"].to_numpy()
    ok = np.isfinite(free)
    assert np.all(slow_share[ok] <= free[ok] + 1e-12)
    assert slow_share[ok].sum() < free[ok].sum()
