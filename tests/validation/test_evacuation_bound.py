"""The quickest-clearance lower bound (twin.evacuation) against closed forms and the traffic model.

- Single bottleneck: N evacuees behind one link of capacity c and free-flow time tau, all ready
  at t = 0: the bound is tau + N / c exactly (whole-step transit); the traffic model, everyone
  departing at 0, clears within one tick and one vehicle of it (its discharge is c, its first
  vehicle takes tau; the tick and the last headway are the discretisation).
- Two parallel routes (10 min at 60 veh/min, 20 min at 40 veh/min), N = 3000: both routes used,
  60 (T - 10) + 40 (T - 20) = 3000 gives T = 44.0 min; everyone on the shortest route takes
  10 + 3000 / 60 = 60 min, which the traffic model reproduces, and re-routing on live times
  lands in between. Every simulated clearance is >= the bound.
- Properties on random small graphs (hypothesis): the bound is at least the farthest evacuee's
  shortest transit, at most everyone in single file down their shortest path, and never grows
  when a link is added.
"""

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin
from twin.errors import InfeasibleError, OptimisationError
from twin.evacuation import quickest_clearance


def _edge(G, u, v, minutes, veh_per_min, lanes=2):
    G.add_edge(u, v, length_m=minutes * 60 * 10.0, free_speed_mps=10.0, lanes=lanes, capacity_veh_per_h=veh_per_min * 60.0)


def _two_routes():
    G = nx.DiGraph()
    for n, (x, y) in {"S": (0, 0), "A": (3000, 1000), "B": (6000, -1000), "T": (6000, 0)}.items():
        G.add_node(n, x=float(x), y=float(y))
    _edge(G, "S", "A", 5, 60)
    _edge(G, "A", "T", 5, 60)
    _edge(G, "S", "B", 10, 40)
    _edge(G, "B", "T", 10, 40)
    return twin.load_city(G)


def _clearance_s(city, n, origin, dest, **kw):
    res = twin.simulate_traffic(city, {"origin": [origin] * n, "destination": [dest] * n, "depart_s": [0.0] * n},
                                until_s=4 * 3600, **kw)
    assert (res.trips["status"] == "arrived").all()
    return float(res.trips["arrive_s"].max())


def test_single_bottleneck_clears_at_tau_plus_n_over_c():
    G = nx.DiGraph()
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=600.0, y=0.0)
    G.add_edge(1, 2, length_m=600.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0)
    city = twin.load_city(G)
    n, c_per_s, tau = 300, 0.5, 60.0
    bound = quickest_clearance(city, {1: n}, [2], step_s=60.0)
    assert bound.clearance_s == tau + n / c_per_s
    assert bound.arrived.sum() == pytest.approx(n) and bound.shelter_arrivals.tolist() == pytest.approx([n])
    sim = _clearance_s(city, n, 1, 2)
    assert abs(sim - (tau + n / c_per_s)) <= 1.0 + 1.0 / c_per_s          # one tick (1 s) and one vehicle
    assert sim >= bound.clearance_s - 1.0 - 1.0 / c_per_s


def test_two_routes_bound_is_44_minutes_and_the_simulation_stays_above():
    city = _two_routes()
    bound = quickest_clearance(city, {"S": 3000}, ["T"], step_s=60.0)
    assert bound.clearance_s == 44.0 * 60
    # the bound's plan uses both routes, each at capacity
    flow = bound.link_flow.sum(axis=0)
    assert flow.sum() == pytest.approx(2 * 3000) and flow.min() > 0
    shortest = _clearance_s(city, 3000, "S", "T")
    assert shortest == pytest.approx(60.0 * 60, abs=60.0)                  # 10 + 3000 / 60 min
    rerouted = _clearance_s(city, 3000, "S", "T", reroute_share=1.0, reroute_interval_s=60.0)
    assert bound.clearance_s <= rerouted <= shortest + 60.0


def test_closures_shelter_capacity_and_bad_input():
    city = _two_routes()
    s_a = [i for i in range(city.n_links) if city.node_ids[city.link_from_idx[i]] == "S"
           and city.node_ids[city.link_to_idx[i]] == "A"]
    only_b = quickest_clearance(city, {"S": 3000}, ["T"], closed=s_a)
    assert only_b.clearance_s == (20 + 3000 / 40) * 60                     # the slow route alone
    with pytest.raises(InfeasibleError, match="3000 evacuees but 100 shelter places"):
        quickest_clearance(city, {"S": 3000}, ["T"], shelter_capacity=[100])
    with pytest.raises(InfeasibleError, match="cannot reach any shelter"):
        quickest_clearance(city, {"T": 5}, ["S"])
    with pytest.raises(OptimisationError, match="shelter node 'Z': not a node of city"):
        quickest_clearance(city, {"S": 5}, ["Z"])
    with pytest.raises(OptimisationError, match="evacuees at node 'S': -1; expected a finite count >= 0"):
        quickest_clearance(city, {"S": -1}, ["T"])
    with pytest.raises(OptimisationError, match="step_s = 0"):
        quickest_clearance(city, {"S": 5}, ["T"], step_s=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_bound_properties_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7))
    G = nx.DiGraph()
    for v in range(n):
        G.add_node(v, x=float(v), y=0.0)
    for v in range(n - 1):                                                 # a path, so everyone can reach
        for u, w in ((v, v + 1), (v + 1, v)):
            _edge(G, u, w, int(rng.integers(1, 5)), int(rng.integers(5, 30)))
    extra = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(3, 2)) if a != b and not G.has_edge(a, b)]
    base = twin.load_city(G)
    evac = {v: int(rng.integers(0, 200)) for v in range(1, n)}
    if sum(evac.values()) == 0:
        evac[1] = 1
    b = quickest_clearance(base, evac, [0], step_s=60.0)
    t = base.travel_times([v for v in evac if evac[v] > 0], [0])[:, 0]
    assert b.clearance_s >= np.floor(t.max() / 60.0) * 60.0 + 60.0 - 1e-9
    # single file down each shortest path, one origin after another: a feasible plan, so an upper bound
    upper = 0.0
    for v, m in evac.items():
        if m:
            links = base.path(v, 0)
            cap = float(np.min(base.capacity_veh_per_h[links])) / 60.0
            upper += float(base.free_flow_time_s[links].sum()) + 60.0 * math.ceil(m / cap) + 60.0
    assert b.clearance_s <= upper + 1e-9
    if extra:
        for a, c in extra:
            _edge(G, a, c, int(rng.integers(1, 5)), int(rng.integers(5, 30)))
        more = quickest_clearance(twin.load_city(G), evac, [0], step_s=60.0)
        assert more.clearance_s <= b.clearance_s + 1e-9


def test_bound_stays_below_the_simulation_when_transits_are_not_whole_steps():
    """A 90 s link and a 30 s two-way link before it, 1-minute steps: transits round down, so the
    bound is below the simulated clearance (less one vehicle's headway); the plan's flows are
    never negative on two-way links shorter than a step."""
    G = nx.DiGraph()
    for v, x in ((1, 0.0), (2, 300.0), (3, 1200.0)):
        G.add_node(v, x=x, y=0.0)
    for u, v, length in ((1, 2, 300.0), (2, 1, 300.0), (2, 3, 900.0)):
        G.add_edge(u, v, length_m=length, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0)
    city = twin.load_city(G)
    for n in (1, 50, 400):
        b = quickest_clearance(city, {1: n}, [3], step_s=60.0)
        sim = _clearance_s(city, n, 1, 3)
        assert b.clearance_s <= sim + 2.0 + 1e-9                       # 2 s: one vehicle at 0.5 veh/s
        assert np.all(b.link_flow >= 0) and b.link_flow.sum(axis=0)[2] == pytest.approx(n)


def test_shelters_in_reach_too_small_fail_at_once():
    city = _two_routes()
    G = nx.DiGraph(city.to_networkx())
    G.add_node("far", x=9000.0, y=0.0)
    with pytest.raises(InfeasibleError, match="only 10 of 3000 evacuees can reach a shelter with room"):
        quickest_clearance(twin.load_city(G), {"S": 3000}, ["T", "far"], shelter_capacity=[10, math.inf])
