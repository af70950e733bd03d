"""Static user equilibrium (``twin.assignment``) against closed forms and the TNTP best-known solutions.

Checks and tolerances
---------------------
* Two parallel BPR links, one OD pair: at equilibrium both used links cost the same;
  the split is solved independently with ``scipy.optimize.brentq`` on
  ``t1(v) - t2(D - v)``. Run to a relative gap of 1e-10; the gap bounds the cost
  difference, so flows agree to rtol 1e-6.
* Braess network (linear and constant costs): the UE without and with the zero-cost
  bridge is known in closed form (2000/2000 split at 66 s; everyone on the bridge at
  82 s), and the bridge raises the total travel time (the paradox).
* TNTP Sioux Falls, Anaheim, Chicago-Sketch (``shared/data``, skipped when absent).
  Reference values are in ``shared/data/README.md``; its TSTT and Beckmann values are in
  the file's time unit x vehicles (Sioux Falls 0.01 h = 36 s, the others minutes = 60 s).
  Chicago-Sketch routes on the README's generalised cost: time + 0.02 min/cent x toll +
  0.04 min/mile x length, passed as ``extra_cost_s``; its TSTT is time only.

  - the requested relative gap is reached (1e-6 on Sioux Falls and Anaheim, 1e-5 on
    Chicago-Sketch: each well under a few seconds with BFW);
  - Beckmann objective: the relative gap is the Frank-Wolfe duality gap, so
    ``0 <= F(x) - F* <= gap * sum(v * c)`` (convexity: ``F* >= F(x) + c(x).(y - x)``).
    F* is the README's value (exact to 12+ digits: its flows are at gap 1e-14), so this
    is a rigorous bound, checked with 1e-9 relative slack for rounding;
  - TSTT within 1e-4 relative of the best-known TSTT. TSTT is not the minimised
    objective, so its error is first order in the flow error (not in the gap): measured
    2.8e-5 (Sioux Falls, gap 1e-6), 1.2e-5 (Anaheim, 1e-6), 2.6e-5 (Chicago-Sketch,
    1e-5); at gap 1e-4 it is 2e-4 to 6e-4, which is why the tests run tighter than 1e-4;
  - link flows against the best-known flows: R^2 > 0.99995 and max |dv| / max v < 1e-2
    (measured R^2 >= 0.999995, max ratio <= 3.1e-3; UE link flows converge like the
    square root of the gap, and Anaheim has constant-cost links whose flows are not
    unique).
"""

import math
import time

import numpy as np
import pytest
from scipy.optimize import brentq

import twin
from twin.assignment import beckmann_objective, bpr_travel_time_s, static_assignment, tntp_demand
from twin.data.network import RawNetwork
from twin.data.tntp import read_tntp_flow, read_tntp_trips
from twin.errors import NetworkError, ScenarioError, UnknownNodeError
from twin.graph import City

SECONDS_PER_MIN = 60.0
SECONDS_PER_MILE_WEIGHT = 0.04 * SECONDS_PER_MIN / 1609.344   # s per metre (0.04 min/mile)
SECONDS_PER_CENT = 0.02 * SECONDS_PER_MIN                     # s per cent (0.02 min/cent)

# name: (folder/stem, time unit in s, README TSTT, README Beckmann, rel_gap, generalised cost)
TNTP = {
    "SiouxFalls": ("SiouxFalls/SiouxFalls", 36.0, 7_480_225.345, 4_231_335.2871, 1e-6, False),
    "Anaheim": ("Anaheim/Anaheim", 60.0, 1_419_913.851, 1_286_032.1711, 1e-6, False),
    "Chicago-Sketch": ("Chicago-Sketch/ChicagoSketch", 60.0, 18_371_027.72, 17_313_018.7387, 1e-5, True),
}


def small_city(tail, head, t0, cap, alpha, beta, n_nodes=None):
    """A City from link arrays (node ids = indices); zero t0 gives a zero-time link."""
    tail = np.asarray(tail)
    t0 = np.asarray(t0, dtype=float)
    m = len(tail)
    n = n_nodes or int(max(np.max(tail), np.max(head))) + 1
    raw = RawNetwork(name="small", source="test", node_ids=np.arange(n, dtype=np.int64), x_m=np.zeros(n),
                     y_m=np.zeros(n), link_from_idx=tail, link_to_idx=np.asarray(head), length_m=t0 * 10.0,
                     free_speed_mps=np.where(t0 > 0, 10.0, np.inf), lanes=np.ones(m),
                     capacity_veh_per_h=np.asarray(cap, dtype=float), free_flow_time_s=t0,
                     bpr_alpha=np.asarray(alpha, dtype=float), bpr_beta=np.asarray(beta, dtype=float))
    return City.from_raw(raw)


def od(o, d, q):
    return {"origin": np.atleast_1d(o), "destination": np.atleast_1d(d), "demand_veh_per_h": np.atleast_1d(q)}


# ---------------------------------------------------------------------- analytic
@pytest.mark.parametrize("method", ["bfw", "fw"])
def test_two_parallel_links_equal_costs(method):
    t0, cap, alpha, beta = [60.0, 90.0], [1000.0, 1500.0], [0.15, 0.5], [4.0, 2.0]
    city = small_city([0, 0], [1, 1], t0, cap, alpha, beta)
    demand = 3000.0
    res = static_assignment(city, od(0, 1, demand), method=method, rel_gap=1e-10, max_iter=20000)

    def t(k, v):
        return t0[k] * (1 + alpha[k] * (v / cap[k]) ** beta[k])

    v1 = brentq(lambda v: t(0, v) - t(1, demand - v), 0.0, demand, xtol=1e-12)
    assert res.converged and res.rel_gap <= 1e-10
    np.testing.assert_allclose(res.flow_veh_per_h, [v1, demand - v1], rtol=1e-6)
    np.testing.assert_allclose(res.cost_s[0], res.cost_s[1], rtol=1e-8)
    np.testing.assert_allclose(res.cost_s, bpr_travel_time_s(city, res.flow_veh_per_h), rtol=1e-15)
    assert res.tstt_veh_s == pytest.approx(float(np.dot(res.flow_veh_per_h, res.cost_s)), rel=1e-15)


def test_two_parallel_links_with_extra_cost_and_unused_link():
    city = small_city([0, 0], [1, 1], [60.0, 60.0], [1000.0, 1000.0], [0.15, 0.15], [4.0, 4.0])
    # a 30 s toll-equivalent on link 1: equilibrium t0(v0) = t1(v1) + 30
    extra = np.array([0.0, 30.0])
    res = static_assignment(city, od(0, 1, 2000.0), rel_gap=1e-10, extra_cost_s=extra)
    v0 = brentq(lambda v: 60 * (1 + 0.15 * (v / 1000) ** 4) - 60 * (1 + 0.15 * ((2000 - v) / 1000) ** 4) - 30,
                0.0, 2000.0, xtol=1e-12)
    np.testing.assert_allclose(res.flow_veh_per_h, [v0, 2000 - v0], rtol=1e-6)
    # TSTT is time only; the Beckmann objective includes the extra cost
    assert res.tstt_veh_s == pytest.approx(float(np.dot(res.flow_veh_per_h, res.cost_s)), rel=1e-15)
    assert res.beckmann == pytest.approx(beckmann_objective(city, res.flow_veh_per_h, extra), rel=1e-15)
    # so dear that link 1 stays unused: exactly zero flow, gap exactly 0
    res = static_assignment(city, od(0, 1, 500.0), extra_cost_s=np.array([0.0, 1000.0]))
    assert res.flow_veh_per_h.tolist() == [500.0, 0.0]
    assert res.rel_gap <= 0.0 and res.iterations == 0


def test_braess_paradox():
    # nodes: 0 = s, 1 = a, 2 = b, 3 = t. s->a and b->t: 1 + v/100 s; a->t and s->b: 45 s; a->b: 0 s.
    tail, head = [0, 1, 0, 2, 1], [1, 3, 2, 3, 2]
    t0, cap = [1.0, 45.0, 45.0, 1.0, 0.0], [100.0, 1.0, 1.0, 100.0, 1.0]
    alpha, beta = [1.0, 0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]
    demand = od(0, 3, 4000.0)
    without = static_assignment(small_city(tail[:4], head[:4], t0[:4], cap[:4], alpha[:4], beta[:4]), demand,
                                rel_gap=1e-12)
    np.testing.assert_allclose(without.flow_veh_per_h, [2000.0] * 4, rtol=1e-9)
    assert without.tstt_veh_s == pytest.approx(4000 * 66.0, rel=1e-9)
    bridge = static_assignment(small_city(tail, head, t0, cap, alpha, beta), demand, rel_gap=1e-12)
    np.testing.assert_allclose(bridge.flow_veh_per_h, [4000.0, 0.0, 0.0, 4000.0, 4000.0], atol=1e-6)
    assert bridge.tstt_veh_s == pytest.approx(4000 * 82.0, rel=1e-9)
    assert bridge.tstt_veh_s > without.tstt_veh_s   # the paradox


# ---------------------------------------------------------------------- TNTP
def _load(shared_data, name):
    stem = TNTP[name][0]
    net = shared_data / "tntp" / f"{stem}_net.tntp"
    trips = shared_data / "tntp" / f"{stem}_trips.tntp"
    flow = shared_data / "tntp" / f"{stem}_flow.tntp"
    if not (net.is_file() and trips.is_file() and flow.is_file()):
        pytest.skip(f"{stem}: net, trips or flow file missing in {shared_data}")
    city = twin.load_city(net)
    return city, read_tntp_trips(trips), read_tntp_flow(flow)


@pytest.mark.shared
@pytest.mark.parametrize("name", list(TNTP))
def test_tntp_user_equilibrium(shared_data, name):
    stem, unit_s, tstt_ref, beckmann_ref, gap, generalised = TNTP[name]
    city, trips, best = _load(shared_data, name)
    extra = None
    if generalised:
        # Chicago-Sketch: first thru node 1, so no centroid restriction applies
        assert not city.no_through.any()
        assert trips["intrazonal_dropped_trips"] == pytest.approx(123_414.0)
        extra = SECONDS_PER_CENT * city.link_attrs["toll"] + SECONDS_PER_MILE_WEIGHT * city.length_m
    # the best-known flows are in our link order
    assert np.array_equal(best["from_node"], city.node_ids[city.link_from_idx])
    assert np.array_equal(best["to_node"], city.node_ids[city.link_to_idx])
    v_ref = best["volume_veh_per_h"]
    # our Beckmann evaluation reproduces the README's at the best-known flows
    assert beckmann_objective(city, v_ref, extra) / unit_s == pytest.approx(beckmann_ref, rel=1e-10)

    demand = tntp_demand(city, trips)
    t_start = time.perf_counter()
    res = static_assignment(city, demand, rel_gap=gap, max_iter=2000, extra_cost_s=extra)
    elapsed = time.perf_counter() - t_start
    v = res.flow_veh_per_h
    print(f"{name}: {res.iterations} iterations, gap {res.rel_gap:.2e}, {elapsed:.2f} s")

    assert res.converged and res.rel_gap <= gap
    assert res.gap_history[-1] == res.rel_gap and len(res.gap_history) == res.iterations + 1
    assert np.all(v >= 0)
    # Beckmann: 0 <= F(x) - F* <= gap * sum(v * c), with c the generalised cost
    c = res.cost_s + (extra if extra is not None else 0.0)
    f_star = beckmann_ref * unit_s
    assert res.beckmann >= f_star * (1 - 1e-9)
    assert res.beckmann - f_star <= res.rel_gap * float(np.dot(v, c)) + 1e-9 * f_star
    # TSTT (time only) against the best-known solution
    tstt_err = res.tstt_veh_s / unit_s / tstt_ref - 1.0
    assert abs(tstt_err) < 1e-4, tstt_err
    # link flows against the best-known flows
    r2 = 1.0 - np.sum((v - v_ref) ** 2) / np.sum((v_ref - v_ref.mean()) ** 2)
    assert r2 > 0.99995, r2
    assert np.abs(v - v_ref).max() / v_ref.max() < 1e-2


@pytest.mark.shared
def test_bfw_needs_fewer_iterations_than_fw(shared_data):
    """On Sioux Falls BFW reaches gap 1e-4 in about 90 iterations, FW in about 1000."""
    city, trips, _ = _load(shared_data, "SiouxFalls")
    demand = tntp_demand(city, trips)
    bfw = static_assignment(city, demand, method="bfw", rel_gap=1e-4, max_iter=3000)
    fw = static_assignment(city, demand, method="fw", rel_gap=1e-4, max_iter=3000)
    assert bfw.converged and fw.converged
    assert bfw.iterations * 3 < fw.iterations
    # the gap of plain FW never increases much, and both histories end at the final gap
    assert bfw.gap_history[-1] == bfw.rel_gap and fw.gap_history[-1] == fw.rel_gap


@pytest.mark.shared
def test_deterministic_and_progress(shared_data):
    city, trips, _ = _load(shared_data, "SiouxFalls")
    demand = tntp_demand(city, trips)
    calls = []
    a = static_assignment(city, demand, rel_gap=1e-3, progress=lambda done, total: calls.append((done, total)))
    b = static_assignment(city, demand, rel_gap=1e-3)
    assert a.flow_veh_per_h.tobytes() == b.flow_veh_per_h.tobytes()
    assert calls == [(k, 1000) for k in range(1, a.iterations + 1)]
    with pytest.raises(ValueError):
        a.flow_veh_per_h[0] = 1.0   # read-only
    # max_iter caps the iterations; the result says it did not converge
    c = static_assignment(city, demand, rel_gap=1e-12, max_iter=3)
    assert c.iterations == 3 and not c.converged and len(c.gap_history) == 4


# ---------------------------------------------------------------------- bad input
def _chain():
    # 0 -> 1 -> 2; node 3 isolated
    return small_city([0, 1], [1, 2], [10.0, 10.0], [100.0, 100.0], [0.15, 0.15], [4.0, 4.0], n_nodes=4)


def test_bad_demand_is_rejected_clearly():
    city = _chain()
    with pytest.raises(UnknownNodeError, match=r"unknown node id\(s\) \[99\]"):
        static_assignment(city, od(0, 99, 1.0))
    with pytest.raises(ScenarioError, match=r"demand row 1 \(0 -> 2\): demand_veh_per_h = -1.0"):
        static_assignment(city, od([0, 0], [1, 2], [1.0, -1.0]))
    with pytest.raises(ScenarioError, match="demand_veh_per_h = nan"):
        static_assignment(city, od(0, 2, np.nan))
    with pytest.raises(ScenarioError, match="'origin', 'destination'"):
        static_assignment(city, {"from": [0], "to": [1], "demand_veh_per_h": [1.0]})
    with pytest.raises(ScenarioError, match="differ in length"):
        static_assignment(city, {"origin": [0, 1], "destination": [2], "demand_veh_per_h": [1.0]})
    with pytest.raises(NetworkError, match=r"no path from node 0 to node 3 .*demand 5 veh/h"):
        static_assignment(city, od([0, 0], [2, 3], [1.0, 5.0]))
    with pytest.raises(NetworkError, match=r"extra_cost_s has shape \(3,\); expected \(2,\)"):
        static_assignment(city, od(0, 2, 1.0), extra_cost_s=np.zeros(3))
    with pytest.raises(NetworkError, match=r"extra_cost_s\[1\] = -1.0"):
        static_assignment(city, od(0, 2, 1.0), extra_cost_s=[0.0, -1.0])
    with pytest.raises(ScenarioError, match=r"method = 'msa'; expected one of \['bfw', 'fw'\]"):
        static_assignment(city, od(0, 2, 1.0), method="msa")
    with pytest.raises(ScenarioError, match="max_iter"):
        static_assignment(city, od(0, 2, 1.0), max_iter=-1)


def test_intrazonal_duplicates_and_zero_rows():
    city = _chain()
    res = static_assignment(city, od([0, 1, 0, 0, 3], [2, 1, 2, 1, 3], [1.0, 7.0, 2.0, 0.0, 0.0]))
    # 1 -> 1 dropped and counted (3 -> 3 has no demand); the two 0 -> 2 rows are summed
    assert res.intrazonal_dropped_pairs == 1 and res.intrazonal_dropped_veh_per_h == 7.0
    assert res.n_od_pairs == 1
    assert res.flow_veh_per_h.tolist() == [3.0, 3.0]
    # nothing to assign at all: zero flows, gap 0
    res = static_assignment(city, od(1, 1, 4.0))
    assert res.flow_veh_per_h.tolist() == [0.0, 0.0] and res.converged and res.tstt_veh_s == 0.0


# ---------------------------------------------------------------------- TNTP trips / flow readers
def _write(tmp_path, text, name="toy_trips.tntp"):
    p = tmp_path / name
    p.write_text(text)
    return p


HEADER = "<NUMBER OF ZONES> 3\n<TOTAL OD FLOW> 16.0\n<END OF METADATA>\n\n"


def test_read_tntp_trips_small(tmp_path):
    p = _write(tmp_path, HEADER + "Origin 1\n  1 : 4.0;  2 : 5.0;  3 : 0.0;\n~ comment\nOrigin 3\n 2 : 7.0;\n")
    t = read_tntp_trips(p)
    assert t["origin_zone"].tolist() == [1, 3] and t["destination_zone"].tolist() == [2, 2]
    assert t["demand_veh_per_h"].tolist() == [5.0, 7.0]
    assert t["n_zones"] == 3 and t["total_od_flow"] == 16.0
    assert t["intrazonal_dropped_pairs"] == 1 and t["intrazonal_dropped_trips"] == 4.0


@pytest.mark.parametrize("body, match", [
    ("Origin 1\n 2 : abc;\n", r"line 6: flow 'abc' for 1 -> 2 is not a number"),
    ("Origin 1\n 4 : 1.0;\n", r"line 6: destination 4 \(origin 1\) is outside 1..3"),
    ("Origin 1\n 2 : -1.0;\n", r"line 6: flow -1.0 for 1 -> 2; expected a finite flow >= 0"),
    (" 2 : 1.0;\nOrigin 1\n", r"line 5: entry '2 : 1.0;' before any 'Origin"),
    ("Origin 9\n", r"line 5: origin 9 is outside 1..3"),
    ("Origin 1\n 2 : 1.0; 2 : 3.0;\n", r"line 6: pair 1 -> 2 appears a second time"),
    ("Origin 1\n 2  1.0;\n", r"line 6: malformed entry"),
])
def test_read_tntp_trips_errors(tmp_path, body, match):
    p = _write(tmp_path, HEADER + body)
    with pytest.raises(NetworkError, match=match) as info:
        read_tntp_trips(p)
    assert str(p) in str(info.value)


def test_read_tntp_flow_small(tmp_path):
    p = _write(tmp_path, "From \tTo \tVolume \tCost \n1 \t2 \t10.5 \t3.25 \n2\t1\t0\t1 ;\n", "toy_flow.tntp")
    f = read_tntp_flow(p)
    assert f["from_node"].tolist() == [1, 2] and f["to_node"].tolist() == [2, 1]
    assert f["volume_veh_per_h"].tolist() == [10.5, 0.0] and f["cost"].tolist() == [3.25, 1.0]
    p = _write(tmp_path, "1 2 3 4\n1 2 x 3\n", "bad_flow.tntp")
    with pytest.raises(NetworkError, match="line 2: non-numeric"):
        read_tntp_flow(p)
    assert math.isfinite(f["cost"].sum())
