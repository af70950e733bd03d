"""TrafficEngine: network events, en-route re-routing, live link times, driven routes.

Closed forms used: a capacity change on a saturated bottleneck changes its discharge
rate to the new capacity (point queue); re-routing never changes the number of
vehicles (conservation) and a driven route is a connected walk from origin to
destination whatever the re-routes.
"""

import numpy as np
import pandas as pd
import pytest

import twin
from twin.data.network import RawNetwork
from twin.errors import DemandError
from twin.traffic import TrafficEngine, read_events, simulate_traffic


def corridor(caps, lengths=None, lanes=None):
    m = len(caps)
    lengths = lengths or [500.0] * m
    return twin.load_city(RawNetwork(
        name="corridor", source="test", node_ids=np.arange(m + 1), x_m=np.arange(m + 1) * 500.0,
        y_m=np.zeros(m + 1), link_from_idx=np.arange(m), link_to_idx=np.arange(1, m + 1),
        length_m=np.array(lengths, float), free_speed_mps=np.full(m, 10.0),
        lanes=np.array(lanes or [4.0] * m), capacity_veh_per_h=np.array(caps, float)))


def connected_route(city, links, o, d):
    nodes = [o] + [int(city.link_to_idx[k]) for k in links]
    return all(city.link_from_idx[k] == nodes[i] for i, k in enumerate(links)) and nodes[-1] == d


def test_capacity_event_changes_the_discharge_rate():
    """A 1-lane bottleneck at 1,800 veh/h raised to 3,600 veh/h at t = 600 s discharges at the new rate.

    Demand 1.5 veh/s keeps it saturated. Outflow per 60 s bin is 30 before the change and
    60 once the transient has passed, within one vehicle (whole vehicles per tick). The
    transient is bounded by the old hole time plus the free-flow time (space already in
    flight keeps its old release tick): the new rate holds from bin
    ceil((600 + hole_old + ff) / 60) + 1 on.
    """
    from twin.traffic import link_arrays

    city = corridor([14400.0, 1800.0, 14400.0], lanes=[4.0, 1.0, 4.0])
    la = link_arrays(city, 1.0)
    n = 1800
    trips = {"origin": np.zeros(n, int), "destination": np.full(n, 3), "depart_s": np.arange(n) / 1.5}
    res = simulate_traffic(city, trips, until_s=3000, interval_s=60,
                           events=[{"time_s": 600.0, "action": "capacity", "link": 1, "capacity_veh_per_h": 3600.0}])
    out = res.links["outflow_veh"][:, 1]
    assert np.all(np.abs(out[2:10] - 30) <= 1)                      # saturated, before the change
    settled = int(np.ceil((600 + la["hole_steps"][1] + la["ff_steps"][1]) / 60)) + 1
    last_full = int(np.flatnonzero(out > 0)[-1]) - 1                 # before the queue runs out
    assert last_full > settled + 5
    assert np.all(np.abs(out[settled:last_full] - 60) <= 1)
    assert res.kpis["completed"] == n


def test_reroute_keeps_vehicles_and_drives_connected_routes():
    city = twin.load_city("grid:8x8")
    rng = np.random.default_rng(3)
    n = 4000
    o = rng.integers(0, city.n_nodes, n)
    d = (o + rng.integers(1, city.n_nodes, n)) % city.n_nodes
    trips = {"origin": city.node_ids[o], "destination": city.node_ids[d], "depart_s": rng.uniform(0, 1800, n)}
    base = simulate_traffic(city, trips, until_s=6 * 3600, seed=1)
    rr = simulate_traffic(city, trips, until_s=6 * 3600, seed=1, reroute_share=0.5, reroute_interval_s=120)
    assert rr.kpis["rerouted"] > 0
    for res in (base, rr):
        k = res.kpis
        assert k["completed"] + k["en_route"] + k["waiting"] + k["not_departed"] + k["unroutable"] == n
        dep, inn, arr = res.step_counts.T
        assert np.all(dep >= inn + arr)
        # every link entry is a link of some driven route
        assert int(res.links["inflow_veh"].sum()) == int(res.trips["n_links"][res.trips["status"] == "arrived"].sum())
    # driven routes of re-routed runs are connected walks origin -> destination
    eng = TrafficEngine(city, trips, until_s=6 * 3600, seed=1, reroute_share=0.5, reroute_interval_s=120)
    eng.run()
    off, links = eng.driven_routes()
    for v in range(0, n, 37):
        assert connected_route(city, links[off[v]:off[v + 1]], o[v], d[v])
    # the driven length reported equals the sum over the driven links
    lengths = np.add.reduceat(city.length_m[links], off[:-1])
    np.testing.assert_allclose(rr.trips["length_m"].to_numpy(), lengths)


def test_reroute_is_deterministic():
    city = twin.load_city("grid:6x6")
    rng = np.random.default_rng(5)
    n = 1500
    o = rng.integers(0, city.n_nodes, n)
    d = (o + rng.integers(1, city.n_nodes, n)) % city.n_nodes
    trips = {"origin": city.node_ids[o], "destination": city.node_ids[d], "depart_s": rng.uniform(0, 900, n)}
    a = simulate_traffic(city, trips, until_s=7200, seed=4, reroute_share=0.3)
    b = simulate_traffic(city, trips, until_s=7200, seed=4, reroute_share=0.3)
    pd.testing.assert_frame_equal(a.trips, b.trips)
    assert a.links["inflow_veh"].tobytes() == b.links["inflow_veh"].tobytes()


def test_live_link_times_grow_with_queues():
    """Queued vehicles at a bottleneck raise its live time by queued / capacity (point queue)."""
    city = corridor([14400.0, 900.0])
    n = 600
    trips = {"origin": np.zeros(n, int), "destination": np.full(n, 2), "depart_s": np.arange(n) * 0.5}
    eng = TrafficEngine(city, trips, until_s=2000, stop_when_done=False)
    eng.run_until(200.0)
    t = eng.link_travel_times_s()
    assert t[0] == pytest.approx(city.free_flow_time_s[0], abs=0.5 * 50)   # upstream: nearly free
    veh, link, pos, due, _ = eng._on_road()
    queued = int(((link == 1) & (due <= eng.now_step)).sum())
    assert queued > 0
    assert t[1] == pytest.approx(city.free_flow_time_s[1] + queued / (900.0 / 3600.0))
    assert eng.route_travel_time_s([0, 1]) == pytest.approx(t[0] + t[1])


@pytest.mark.parametrize("rows,match", [
    ([{"time_s": -1.0, "action": "close", "link": 0}], r"events row 0: time_s = -1.0"),
    ([{"time_s": 0.0, "action": "flood", "link": 0}], r"action = 'flood'; expected one of"),
    ([{"time_s": 0.0, "action": "close", "link": 99}], r"link = 99; expected a link index"),
    ([{"time_s": 0.0, "action": "capacity", "link": 0, "capacity_veh_per_h": 0.0}], r"capacity_veh_per_h = 0\.0"),
    ([{"time_s": 0.0, "action": "close", "from_node": 0, "to_node": 2}], r"no link from node 0 to node 2"),
    ([{"action": "close", "link": 0}], r"need a column 'time_s'"),
])
def test_read_events_errors(rows, match):
    city = corridor([1800.0, 1800.0])
    with pytest.raises(DemandError, match=match):
        read_events(city, rows)


def test_read_events_by_node_pair_and_order():
    city = corridor([1800.0, 1800.0])
    ev = read_events(city, [{"time_s": 50.0, "action": "open", "from_node": 1, "to_node": 2},
                            {"time_s": 10.0, "action": "capacity", "link": 0, "capacity_veh_per_h": 900.0}])
    assert [e[0] for e in ev] == [10.0, 50.0]
    assert ev[1][2].tolist() == [1]


def test_reroute_parameter_errors():
    city = corridor([1800.0])
    trips = {"origin": [0], "destination": [1], "depart_s": [0.0]}
    with pytest.raises(DemandError, match="reroute_share"):
        simulate_traffic(city, trips, until_s=100, reroute_share=1.5)
    with pytest.raises(DemandError, match="reroute_interval_s"):
        simulate_traffic(city, trips, until_s=100, reroute_share=0.5, reroute_interval_s=0.1)


def test_closure_reroutes_and_reopening_restores():
    """Closing a link diverts every trip around it; after reopening, later trips use it again."""
    city = twin.load_city("grid:5x5")
    closed = int(np.flatnonzero((city.link_from_idx == 0) & (city.link_to_idx == 1))[0])
    n = 200
    depart = np.concatenate([np.arange(100) * 10.0, 3000.0 + np.arange(100) * 10.0])
    trips = {"origin": np.full(n, city.node_ids[0]), "destination": np.full(n, city.node_ids[4]), "depart_s": depart}
    base = simulate_traffic(city, trips, until_s=8000)
    eng = TrafficEngine(city, trips, until_s=8000, events=[{"time_s": 0.0, "action": "close", "link": closed},
                                                           {"time_s": 2500.0, "action": "open", "link": closed}])
    eng.run()
    res = eng.result()
    assert res.kpis["completed"] == n and res.kpis["teleports"] == 0
    off, links = eng.driven_routes()
    uses = np.array([closed in links[off[v]:off[v + 1]] for v in range(n)])
    assert not uses[:100].any()                                     # all diverted while closed
    assert uses[100:].all()                                         # the straight route again after
    assert (res.trips["travel_time_s"][:100] > base.trips["travel_time_s"][:100]).all()
    for v in range(0, n, 17):
        assert connected_route(city, links[off[v]:off[v + 1]], 0, 4)


def test_closure_of_the_only_route_strands_then_teleports():
    """On a corridor with its middle link closed, vehicles wait at the closure; the stuck rule
    teleports them past it (SUMO's rule), counted, and nothing is lost."""
    city = corridor([1800.0, 1800.0, 1800.0])
    trips = {"origin": [0, 0, 0], "destination": [3, 3, 3], "depart_s": [0.0, 1.0, 2.0]}
    res = simulate_traffic(city, trips, until_s=3000, stuck_time_s=60,
                           events=[{"time_s": 10.0, "action": "close", "link": 1}])
    k = res.kpis
    assert k["completed"] == 3 and k["teleports"] >= 1
    assert int(res.links["inflow_veh"][:, 1].sum()) == 0            # nobody entered the closed link


def test_same_seed_gives_identical_results_files(tmp_path):
    """STYLE §10: the same seed and inputs give byte-identical HDF5 datasets (here the whole file)."""
    import hashlib

    from twin.demand import random_trips
    from twin.results import ResultsWriter

    city = twin.load_city("grid:6x6")
    trips = random_trips(city, 3000, 1800.0, seed=7)
    digests = []
    for i in range(2):
        res = simulate_traffic(city, trips, until_s=5400, seed=3, reroute_share=0.2)
        path = tmp_path / f"run{i}.h5"
        with ResultsWriter(path, meta={"seed": 3}) as w:
            twin.write_network(w, city)
            res.write(w)
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def two_route_city():
    """Origin 0 to destination 3 by a short narrow route (0-1-3) or a longer wide one (0-2-3)."""
    return twin.load_city(RawNetwork(
        name="two-routes", source="test", node_ids=np.arange(4), x_m=np.array([0.0, 500, 500, 1000]),
        y_m=np.array([0.0, 200, -200, 0]), link_from_idx=np.array([0, 1, 0, 2]), link_to_idx=np.array([1, 3, 2, 3]),
        length_m=np.array([500.0, 500, 800, 800]), free_speed_mps=np.full(4, 10.0), lanes=np.array([1.0, 1, 2, 2]),
        capacity_veh_per_h=np.array([900.0, 900, 3600, 3600])))


def test_dynamic_user_equilibrium_spreads_load_and_closes_the_gap():
    """Wardrop: 2,400 veh/h for 30 min exceed the short route's 900 veh/h, so at equilibrium both
    routes are used and their experienced times approach each other; MSA lowers the gap and the
    mean travel time from the all-or-nothing start (the usual DUE behaviour)."""
    from twin.traffic import dynamic_user_equilibrium

    city = two_route_city()
    n = 1200
    trips = {"origin": np.zeros(n, int), "destination": np.full(n, 3), "depart_s": np.arange(n) * 1.5}
    due = dynamic_user_equilibrium(city, trips, until_s=4 * 3600, iterations=8, rel_gap=1e-4, seed=2)
    assert due.rel_gap[-1] < 0.5 * due.rel_gap[0]
    assert due.mean_travel_time_s[-1] < due.mean_travel_time_s[0]
    off, links = due.routes
    wide = np.array([2 in links[off[v]:off[v + 1]] for v in range(n)])
    assert 0.1 < wide.mean() < 0.9                                   # both routes used
    again = dynamic_user_equilibrium(city, trips, until_s=4 * 3600, iterations=8, rel_gap=1e-4, seed=2)
    np.testing.assert_array_equal(due.rel_gap, again.rel_gap)        # deterministic


def test_given_routes_are_checked():
    city = two_route_city()
    trips = {"origin": [0], "destination": [3], "depart_s": [0.0]}
    with pytest.raises(DemandError, match="do not run from their origin"):
        TrafficEngine(city, trips, until_s=100, routes=(np.array([0, 1]), np.array([2])))
    with pytest.raises(DemandError, match="not connected"):
        TrafficEngine(city, trips, until_s=100, routes=(np.array([0, 2]), np.array([0, 3])))
    eng = TrafficEngine(city, trips, until_s=1000, routes=(np.array([0, 2]), np.array([2, 3])))
    eng.run()
    assert eng.result().trips.loc[0, "length_m"] == 1600.0


def test_result_taken_mid_run_does_not_change():
    from twin.demand import random_trips

    city = twin.load_city("grid:5x5")
    eng = TrafficEngine(city, random_trips(city, 2000, 900.0, 1), until_s=3000)
    eng.run_until(600)
    first = eng.result()
    before = first.links["inflow_veh"].copy(), first.trips["arrive_s"].to_numpy().copy()
    eng.run_until(1200)
    np.testing.assert_array_equal(first.links["inflow_veh"], before[0])
    np.testing.assert_array_equal(first.trips["arrive_s"].to_numpy(), before[1])


def test_numpy_scalars_and_interval_in_ticks():
    city = corridor([1800.0])
    trips = {"origin": [0], "destination": [1], "depart_s": [0.0]}
    assert simulate_traffic(city, trips, until_s=np.int64(200), reroute_share=np.float32(0.0)).kpis["completed"] == 1
    with pytest.raises(DemandError, match=r"interval_s = 7\.0 is not a whole number of ticks of dt_s = 3\.0"):
        simulate_traffic(city, trips, until_s=100, dt_s=3, interval_s=7)


@pytest.mark.parametrize("row,match", [
    ({"time_s": 0.0, "action": "close", "link": "a"}, r"events row 0: link = 'a'"),
    ({"time_s": 0.0, "action": "close", "from_node": 99, "to_node": 1}, r"events row 0: unknown node id"),
])
def test_event_rows_are_named_in_errors(row, match):
    with pytest.raises(DemandError, match=match):
        read_events(corridor([1800.0, 1800.0]), [row])


def test_insert_vehicle_and_arrival_event_on_the_simpy_clock():
    """A vehicle inserted at t = 600 s on an empty-ish grid arrives after its free-flow time;
    the SimPy event fires at the first poll at or after the arrival (within one poll) and
    carries the exact arrival time. Nothing else changes: the other trips are conserved."""
    import simpy

    from twin.demand import random_trips

    city = twin.load_city("grid:6x6")
    trips = random_trips(city, 300, 1800.0, 2)
    eng = TrafficEngine(city, trips, until_s=7200, stop_when_done=False)
    env = simpy.Environment()
    log = []

    def ambulance(env):
        yield env.timeout(600)
        eng.run_until(env.now)
        v = eng.insert_vehicle(city.node_ids[0], city.node_ids[-1], depart_s=env.now)
        t = yield eng.arrival_event(env, v, poll_s=10.0)
        log.append((v, env.now, t))

    env.process(ambulance(env))
    env.run(until=7200)
    (v, fired, arrived), = log
    assert v == 300
    assert arrived == pytest.approx(600.0 + city.path_cost(city.node_ids[0], city.node_ids[-1]))
    assert arrived <= fired <= arrived + 10.0
    res = eng.result()
    assert len(res.trips) == 301 and res.trips.loc[300, "depart_s"] == 600.0
    k = res.kpis
    assert k["completed"] + k["en_route"] + k["waiting"] + k["not_departed"] + k["unroutable"] == 301
    with pytest.raises(DemandError, match="origin == destination"):
        eng.insert_vehicle(city.node_ids[0], city.node_ids[0])


def test_inserted_vehicles_run_exactly_as_the_same_vehicles_given_up_front():
    """Insertion keeps the kernel's departure contract without re-sorting: vehicles inserted
    mid-run (routed on free-flow costs) behave tick for tick as the same vehicles listed in
    the trips table from the start, on a loaded grid where they queue with the others."""
    from twin.demand import random_trips

    city = twin.load_city("grid:5x5")
    trips = pd.DataFrame(random_trips(city, 2000, 1800.0, 3))
    extra = pd.DataFrame({"origin": [city.node_ids[0], city.node_ids[7], city.node_ids[3], city.node_ids[0]],
                          "destination": [city.node_ids[-1], city.node_ids[12], city.node_ids[20], city.node_ids[9]],
                          "depart_s": [600.0, 600.0, 905.0, 1200.0]})
    ref = TrafficEngine(city, pd.concat([trips, extra], ignore_index=True), until_s=7200, stop_when_done=False)
    ref.run()
    eng = TrafficEngine(city, trips, until_s=7200, stop_when_done=False)
    ff = city.free_flow_time_s
    for row in extra.itertuples():
        eng.run_until(row.depart_s)
        eng.insert_vehicle(row.origin, row.destination, depart_s=row.depart_s, link_cost_s=ff)
    eng.run()
    a, b = ref.result().trips, eng.result().trips
    pd.testing.assert_frame_equal(a, b)


def test_emergency_arrival_event_fires_at_the_exact_arrival_time():
    """An emergency vehicle with priority: the event sleeps until the free-flow lower bound
    of its remaining route (checking the tick it sleeps to), so it fires at the simulated
    arrival time itself, with few wake-ups, also through queues."""
    import simpy

    city = corridor([600.0, 600.0, 600.0])
    trips = {"origin": np.zeros(300, int), "destination": np.full(300, 3), "depart_s": np.linspace(0, 900, 300)}
    eng = TrafficEngine(city, trips, until_s=7200, stop_when_done=False)
    env = simpy.Environment()
    log = []
    checks = []
    orig = eng.arrival_lower_bound_s

    def counted(v):
        checks.append(env.now)
        return orig(v)

    eng.arrival_lower_bound_s = counted

    def ambulance(env):
        yield env.timeout(1000)
        eng.run_until(env.now)
        v = eng.insert_vehicle(0, 3, depart_s=env.now, emergency=True)
        t = yield eng.arrival_event(env, v)
        log.append((env.now, t, eng.arrival_s(v)))

    env.process(ambulance(env))
    env.run(until=7200)
    (fired, value, arrived), = log
    assert fired == value == arrived
    assert arrived > 1000 + 150.0          # queues make it slower than free flow (3 x 50 s)
    assert len(checks) <= 6


def test_vehicle_positions_and_arrival_lower_bounds():
    """Mid-run on a loaded, re-routing grid: the kernel helper finds every vehicle in the rings
    where the engine's vectorised scan (_on_road) finds it, and every vehicle's arrival lower
    bound is at most its actual arrival time (free-flow ticks are the fastest a link is run)."""
    from twin.demand import random_trips
    from twin.kernels.traffic import vehicle_route_position

    city = twin.load_city("grid:5x5")
    eng = TrafficEngine(city, random_trips(city, 3000, 1200.0, 4), until_s=7200, stop_when_done=False,
                        reroute_share=0.3, reroute_interval_s=120)
    eng.run_until(900.0)
    veh, link, pos, due, slot = eng._on_road()
    st = eng.state
    ring_veh = slot >= 0
    assert ring_veh.sum() > 100
    for v, p, d in zip(veh[ring_veh], pos[ring_veh], due[ring_veh]):
        r, dd = vehicle_route_position(int(eng.seg_start[v]), int(eng.seg_end[v]), eng.route_seq, st["ring"],
                                       eng.ring_start, eng.ring_cap, st["ring_head"], st["ring_count"])
        assert (r, dd) == (p, d)
    lb = np.array([eng.arrival_lower_bound_s(v) for v in range(eng.n_veh)])
    eng.run()
    arr = eng.result().trips["arrive_s"].to_numpy()
    known = np.isfinite(lb) & np.isfinite(arr)
    assert known.sum() > 1000
    assert np.all(lb[known] <= arr[known] + 1e-9)


def test_ring_next_matches_the_routes_through_reroutes_and_closures():
    """The kernel's ring_next cache (the next link of each vehicle in a ring) equals
    route_seq[route index + 1] at every check, through re-routes, a closure and a reopening."""
    from twin.demand import random_trips

    city = twin.load_city("grid:5x5")
    events = pd.DataFrame({"time_s": [600.0, 1500.0], "link": [12, 12], "action": ["close", "open"]})
    eng = TrafficEngine(city, random_trips(city, 3000, 1200.0, 6), until_s=7200, stop_when_done=False,
                        reroute_share=0.5, reroute_interval_s=60, events=events)
    checked = 0
    for t in range(300, 3000, 300):
        eng.run_until(float(t))
        veh, link, pos, due, slot = eng._on_road()
        ring = slot >= 0
        np.testing.assert_array_equal(eng.state["ring_next"][slot[ring]], eng.route_seq[pos[ring] + 1])
        checked += int(ring.sum())
    assert checked > 1000 and eng.n_rerouted > 100


def test_queued_vehicles_follow_the_point_queue():
    """2 veh/s into a 900 veh/h bottleneck: by t the vehicles that reached its downstream end
    (departed by t minus the free-flow time of the corridor) less those let through (capacity
    times the time since the first got there) are queued on it, none upstream; once the
    bottleneck link is full, the queue spills back upstream and fills it."""
    city = corridor([14400.0, 900.0])
    n = 600
    trips = {"origin": np.zeros(n, int), "destination": np.full(n, 2), "depart_s": np.arange(n) * 0.5}
    eng = TrafficEngine(city, trips, until_s=2000, stop_when_done=False)
    for t in (60.0, 120.0, 160.0):
        eng.run_until(t)
        q, on = eng.queued_on_links(), eng.state["ring_count"]
        since = t - city.free_flow_time_s.sum()
        expect = max(0.0, 2.0 * since - 0.25 * since)
        assert q[0] == 0 and q[1] <= on[1] and abs(q[1] - expect) <= 4.0
    eng.run_until(300.0)
    q, on = eng.queued_on_links(), eng.state["ring_count"]
    assert q[1] == on[1] and q[0] > 0
