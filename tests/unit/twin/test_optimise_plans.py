"""Candidate plans of a study (twin.optimise_plans): siting inputs of a scenario, proposals with
their neighbours, congested costs, stock plans, and bad input named at the boundary."""

import numpy as np
import pytest

from twin.errors import InfeasibleError, OptimisationError
from twin.optimise_plans import (Plan, StockItem, _neighbours, _split, congested_link_costs, plan_scenario_data,
                                 propose_plans, siting_inputs, stock_plan_costs)
from twin.runner import load_scenario
from twin_small import SMALL


@pytest.fixture(scope="module")
def small():
    return load_scenario(SMALL)


def test_siting_inputs_are_travel_times_from_candidates_to_zones(small):
    inp = siting_inputs(small)
    city = small.city
    assert inp.cost_s.shape == (len(small.ems.zones), city.n_nodes)
    assert inp.current == ((1, 1),)
    # zone i's location node, reached from candidate j: the graph's own travel times (speed factor 1 here)
    j = list(inp.candidate_ids).index(1)
    zone_nodes = np.asarray(city.node_ids)[small.layout.location_node_idx[[z.location_idx for z in small.ems.zones]]]
    speed = small.groups["service"].emergency_speed_factor
    np.testing.assert_allclose(inp.cost_s[:, j], city.travel_times([1], zone_nodes)[0] / speed)
    np.testing.assert_allclose(inp.weights.sum(), 4.0)          # [calls] rate_per_h = 4
    # the current station is always a candidate
    assert 1 in siting_inputs(small, candidates=[8, 9]).candidate_ids.tolist()


def test_zone_weights_follow_the_rate_table_or_the_profile():
    from twin.optimise_plans import zone_weights

    day = load_scenario("hefei_day")
    prof = np.asarray(day.ems.hourly_profile)
    base = np.array([z.arrival_rate_per_h for z in day.ems.zones])
    np.testing.assert_allclose(zone_weights(day.ems, 8), base * prof[8])
    np.testing.assert_allclose(zone_weights(day.ems), base * prof.mean())
    people = load_scenario("hefei_people")
    table = np.asarray(people.ems.rate_table_per_h)
    assert table is not None and table.ndim == 3
    np.testing.assert_allclose(zone_weights(people.ems, 3), table[3].sum(axis=1))
    np.testing.assert_allclose(zone_weights(people.ems).sum(), table.sum() / 24)


def test_split_is_largest_remainder_with_one_each():
    assert _split(6, [0.5, 0.3, 0.2], [0, 1, 2]).tolist() == [3, 2, 1]
    assert _split(3, [0.9, 0.1, 0.0], [0, 1, 2]).tolist() == [1, 1, 1]
    assert _split(7, [0.0, 0.0], [0, 1]).sum() == 7
    assert _split(4, [0.96, 0.02, 0.02], [0, 1, 2]).tolist() == [2, 1, 1]      # the minimum takes from the largest
    with pytest.raises(OptimisationError, match="2 vehicles cannot staff 3 sites"):
        _split(2, [1, 1, 1], [0, 1, 2])


def test_neighbours_are_one_move_away_best_first():
    value = {(1, 0, 0): 5.0, (0, 1, 0): 3.0, (0, 0, 1): 4.0}
    out = _neighbours(np.array([1, 0, 0]), lambda u: value[tuple(u)], 5, move_units=False)
    assert [tuple(u) for u in out] == [(0, 1, 0), (0, 0, 1)]
    moves = _neighbours(np.array([2, 0]), lambda u: float(u[0]), 5, move_units=True)
    assert [tuple(u) for u in moves] == [(1, 1)]
    assert _neighbours(np.array([1, 0]), lambda u: 0.0, 5, move_units=False, keep=[0]) == []


def test_proposals_price_the_current_plan(small):
    plans, info, price = propose_plans(small, "stations", n_plans=3)
    assert [p.name for p in plans] == ["optimum", "neighbour-1", "neighbour-2"]
    assert info["model"] == "p-median" and info["gap"] == 0.0 and info["sites"] == 1
    # the optimum is the least mean travel of all one-site plans; neighbours are no better
    inp = siting_inputs(small)
    w = inp.weights / inp.weights.sum()
    best = min((w * inp.cost_s[:, j]).sum() for j in range(inp.cost_s.shape[1]))
    assert plans[0].model_objective == pytest.approx(best)
    assert all(p.model_objective >= plans[0].model_objective - 1e-9 for p in plans)
    assert price(Plan("c", stations=((1, 1),))) == pytest.approx((w * inp.cost_s[:, list(inp.candidate_ids).index(1)]).sum())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(candidates=[999]), OptimisationError, "candidate site 999: not a node of city 'grid_6x6'"),
    (dict(candidates=[]), OptimisationError, "candidates: an empty list"),
    (dict(keep=[999]), OptimisationError, "kept site 999: not a candidate node"),
    (dict(keep=[1, 2], sites=1), OptimisationError, r"sites = 1: fewer than the 2 kept sites"),
    (dict(sites=2), OptimisationError, "sites = 2: more sites than the 1 ambulances can staff"),
    (dict(model="lscp", standard_s=1.0), InfeasibleError, "lscp: covering every zone within 1 s takes 36 sites"),
    (dict(n_plans=0), OptimisationError, "plans = 0; expected an integer >= 1"),
])
def test_bad_proposals_are_named(small, kwargs, error, match):
    with pytest.raises(error, match=match):
        propose_plans(small, "stations", **kwargs)


def test_beds_need_hospitals_and_move_one_bed():
    two = load_scenario(SMALL.replace('name = "h"\nnode = 36\nbeds = 4',
                                      'name = "a"\nnode = 36\nbeds = 4\n\n[[hospitals]]\nname = "b"\nnode = 6\nbeds = 4'))
    plans, info, price = propose_plans(two, "beds", n_plans=3, bed_rates_per_h=[2.0, 0.5])
    beds = [dict(p.beds) for p in plans]
    assert all(b["a"] + b["b"] == 8 and min(b.values()) >= 1 for b in beds)
    assert beds[0]["a"] > beds[0]["b"]                      # more beds where more patients arrive
    assert plans[0].model_objective <= min(p.model_objective for p in plans[1:])
    assert price(Plan("x", beds=(("a", 4), ("b", 4)))) >= plans[0].model_objective


def test_congested_costs_are_the_run_link_times(small):
    rush = load_scenario("hefei_rush")
    ff = rush.city.free_flow_time_s
    cost = congested_link_costs(rush, 8 * 3600.0, seed=1)
    assert cost.shape == ff.shape and np.all(cost >= ff) and np.any(cost > 1.2 * ff)
    with pytest.raises(OptimisationError, match="needs traffic in the scenario"):
        congested_link_costs(small, 0.0, seed=1)
    with pytest.raises(OptimisationError, match="at = 360000 s: no link-series interval"):
        congested_link_costs(rush, 100 * 3600.0, seed=1)


def test_stock_cost_of_one_site_is_the_newsvendor_cost():
    """With one hospital nothing can move: each scenario's cost is buy + overage or shortage."""
    item = StockItem("k", unit_cost=0.5, overage_cost=1.0, shortage_cost=9.0)
    demand = np.array([[[3.0]], [[7.0]], [[5.0]]])                 # (scenarios, hospitals, items)
    cost = stock_plan_costs(np.array([[5.0]]), demand, (item,), np.zeros((1, 1, 1)))
    np.testing.assert_allclose(cost, [2.5 + 2 * 1.0, 2.5 + 2 * 9.0, 2.5])


def test_stock_moves_between_hospitals_when_cheaper_than_shortage():
    item = StockItem("k", overage_cost=1.0, shortage_cost=9.0)
    ship = np.array([[[0.0, 3.0], [3.0, 0.0]]])
    demand = np.array([[[0.0], [4.0]]])                            # all the need at the second hospital
    stock = np.array([[4.0], [0.0]])
    # moving 4 units costs 3 each (12) instead of 4 short (36) and 4 left over (4)
    np.testing.assert_allclose(stock_plan_costs(stock, demand, (item,), ship), [12.0])


def test_plan_scenario_data_places_the_plan(small):
    data = plan_scenario_data(small.data, Plan("p", stations=((8, 1), (29, 2))))
    assert [(s["node"], s["ambulances"]) for s in data["stations"]] == [(8, 1), (29, 2)]
    assert small.data["stations"][0]["node"] == 1              # the scenario is not changed
    assert load_scenario(data).ems is not None


def test_demand_from_a_run_counts_its_calls_per_node(tmp_path):
    from twin.optimise_plans import demand_from_run
    from twin.results import open_results
    from twin.runner import run
    from twin_small import LIGHT

    out = tmp_path / "run.h5"
    run(LIGHT, seed=4, out=out)
    sc = load_scenario(LIGHT)
    nodes, per_h = demand_from_run(out, sc.city)
    with open_results(out) as res:
        calls = res.table("/events/ems_calls")
    ids = np.asarray(sc.city.node_ids)[calls["node_idx"].to_numpy()]
    want = {n: (ids == n).sum() / 24.0 for n in np.unique(ids)}
    assert dict(zip(nodes.tolist(), per_h.tolist())) == pytest.approx(want)
    # one hour of the day: only the calls that arose in it (the first call's hour)
    hour = int(calls["call_s"].iloc[0] // 3600)
    in_h = calls[(calls["call_s"] >= hour * 3600) & (calls["call_s"] < (hour + 1) * 3600)]
    n_h, w_h = demand_from_run(out, sc.city, hour=hour)
    assert len(in_h) >= 1 and w_h.sum() == pytest.approx(len(in_h))
    inp = siting_inputs(sc, demand=(nodes, per_h))
    assert inp.cost_s.shape == (len(nodes), sc.city.n_nodes) and inp.weights.sum() == pytest.approx(per_h.sum())
    other = load_scenario(LIGHT.replace('grid:6x6', 'grid:5x5').replace("node = 36", "node = 25"))
    with pytest.raises(OptimisationError, match="the run is on another city"):
        demand_from_run(out, other.city)
    junk = tmp_path / "junk.h5"
    junk.write_text("no")
    with pytest.raises(OptimisationError, match="cannot read it as a results file"):
        demand_from_run(junk, sc.city)
