"""The traffic kernel (``twin.kernels.traffic.simulate_queue``) against its plain reference.

``simulate_queue_reference`` (tests/kernels/reference.py) is a second implementation of the
spatial-queue model written from the kernel's module docstring: per-link deques of vehicles
and lists of holes, explicit route lists, every node visited every tick. Both are run on the
same inputs, either through ``twin.simulate_traffic`` (cities, trips, parameters) or through
the kernel itself on hand-built arrays (``run_kernel``, built as ``simulate_traffic`` builds
them, for link parameters a city cannot produce, such as a storage of one vehicle, and for
fixed-time signals and closed links, given as the kernel's arrays: ``control_arrays``).
The kernel wakes a node with a red in-link at its next green; the reference visits every
node every tick, so the two agree only if that shortcut changes nothing.

Tolerance: none. The model is integer ticks and integer vehicle counts; the only floats are
the outflow budgets and the merge draws, which both implementations compute with the same
operations in the same order (the draws with the kernel's own counter hash). So arrival
ticks, statuses, per-interval link in- and outflows, per-tick counts and the number of
forced moves must be equal exactly.
"""

import dataclasses
import inspect
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twin
from twin.data.network import RawNetwork
from twin.data.synthetic import grid_city
from twin.kernels import traffic as K
from twin.traffic import link_arrays, read_trips, simulate_traffic
from twin.traffic_routes import _routes

from twin_reference import simulate_queue_reference

# The splitmix64 hash multiplies uint64 scalars that wrap by design; run as Python
# (NUMBA_DISABLE_JIT, py_func) numpy warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in scalar:RuntimeWarning")

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
NO_STUCK = 1e9
JIT = hasattr(K.simulate_queue, "py_func")          # False under NUMBA_DISABLE_JIT



# ------------------------------------------------------------------------------------------
# running both sides
# ------------------------------------------------------------------------------------------

def reference_traffic(city, trips, *, until_s, seed=0, dt_s=1.0, interval_s=300.0, stuck_time_s=300.0,
                      stop_when_done=True):
    """The reference on the inputs ``simulate_traffic`` derives from the same arguments."""
    o_idx, d_idx, depart_s = read_trips(city, trips)
    la = link_arrays(city, dt_s)
    route_off, route_links, _ = _routes(city, o_idx, d_idx)      # the same routes (ties broken alike)
    routes = [route_links[route_off[v]:route_off[v + 1]].tolist() for v in range(len(o_idx))]
    in_links = [city.rev_link[city.rev_indptr[n]:city.rev_indptr[n + 1]].tolist() for n in range(city.n_nodes)]
    return simulate_queue_reference(
        in_links, la["ff_steps"], la["cap_per_step"], la["storage"], la["hole_steps"], la["storage"] + 2, routes,
        np.ceil(depart_s / dt_s - 1e-9).astype(np.int64), math.ceil(until_s / dt_s),
        max(1, int(round(stuck_time_s / dt_s))), seed, max(1, int(round(interval_s / dt_s))), stop_when_done)


def assert_traffic_matches(res, ref, dt_s):
    arrive_s = np.where(ref["arrive_step"] >= 0, ref["arrive_step"] * dt_s, np.nan)
    np.testing.assert_array_equal(res.trips["arrive_s"].to_numpy(), arrive_s)
    np.testing.assert_array_equal(res.trips["status"].cat.codes.to_numpy(), ref["status"])
    np.testing.assert_array_equal(res.links["inflow_veh"], ref["inflow"])
    np.testing.assert_array_equal(res.links["outflow_veh"], ref["outflow"])
    assert res.kpis["forced_moves"] == ref["forced_moves"]
    assert res.kpis["teleports"] == ref["teleports"]
    np.testing.assert_array_equal(res.step_counts, ref["step_counts"])
    assert res.kpis["simulated_s"] == ref["ticks"] * dt_s


def both_traffic(city, trips, **kw):
    """``simulate_traffic`` and the reference on the same arguments; asserts they agree."""
    res = simulate_traffic(city, trips, **kw)
    ref = reference_traffic(city, trips, **kw)
    assert_traffic_matches(res, ref, kw.get("dt_s", 1.0))
    return res, ref


def net(n_nodes, links):
    """Kernel link arrays from ``(tail, head, ff_steps, cap_per_step, storage, hole_steps)`` rows."""
    a = np.array(links, dtype=np.float64).reshape(-1, 6)
    return dict(n_nodes=n_nodes, tail=a[:, 0].astype(np.int32), head=a[:, 1].astype(np.int32),
                ff_steps=a[:, 2].astype(np.int32), cap_per_step=a[:, 3].copy(), storage=a[:, 4].astype(np.int32),
                hole_steps=a[:, 5].astype(np.int32))


def _in_star(nw):
    order = np.argsort(nw["head"], kind="stable")
    in_indptr = np.zeros(nw["n_nodes"] + 1, dtype=np.int64)
    np.cumsum(np.bincount(nw["head"], minlength=nw["n_nodes"]), out=in_indptr[1:])
    return in_indptr, order.astype(np.int32)


def control_arrays(n_links, signals=None, link_open=None):
    """The kernel's signal and closure arrays: ``signals`` is ``(cycle, green_from, green_to)``
    per link (cycle 0: unsignalised), default none; ``link_open`` defaults to all open."""
    if signals is None:
        signals = np.zeros((3, n_links))
    cycle, g_from, g_to = (np.asarray(a, dtype=np.int32).reshape(n_links) for a in signals)
    is_open = np.ones(n_links, dtype=bool) if link_open is None else np.asarray(link_open, dtype=bool).reshape(n_links)
    return dict(sig_cycle=cycle, sig_green_from=g_from, sig_green_to=g_to, link_open=is_open)


def priority_arrays(nw, n_veh, veh_class=None, priority=False, bypass_speed_mps=2.0, dt_s=1.0):
    """The kernel's emergency-priority inputs for a hand-built network.

    Link geometry is made up from the tick counts so the bypass rule has numbers to work
    on: length = 10 m per free-flow tick (10 m/s at ``dt_s`` 1), queue 7.5 m per vehicle
    divided by the storage's lanes proxy (1 lane).
    """
    ff = np.asarray(nw["ff_steps"], dtype=np.float64)
    return dict(veh_class=(np.zeros(n_veh, dtype=np.int8) if veh_class is None
                           else np.asarray(veh_class, dtype=np.int8)),
                priority=bool(priority), bypass_speed_mps=float(bypass_speed_mps), dt_s=float(dt_s),
                length_m=10.0 * ff, ff_time_s=ff * dt_s, queue_m_per_veh=np.full(len(ff), 7.5))


def mp_arrays(n_links, mp_phases=None, mp_period_steps=1, mp_lost_steps=0):
    """The kernel's max-pressure inputs from ``[[links of phase, ...] per node, ...]``."""
    mp_phases = [] if mp_phases is None else mp_phases
    phase_indptr = np.zeros(len(mp_phases) + 1, dtype=np.int64)
    np.cumsum([len(node) for node in mp_phases], out=phase_indptr[1:])
    phases = [ph for node in mp_phases for ph in node]
    link_indptr = np.zeros(len(phases) + 1, dtype=np.int64)
    np.cumsum([len(ph) for ph in phases], out=link_indptr[1:])
    links = np.array([L for ph in phases for L in ph], dtype=np.int32)
    return dict(mp_phase_indptr=phase_indptr, mp_link_indptr=link_indptr, mp_link=links,
                mp_period_steps=int(mp_period_steps), mp_lost_steps=int(mp_lost_steps))


def run_kernel(nw, routes, depart_step, *, n_steps, stuck_steps=10**9, seed=0, spi=None, stop_when_done=True,
               block=None, kernel=None, signals=None, link_open=None, veh_class=None, priority=False,
               bypass_speed_mps=2.0, mp_phases=None, mp_period_steps=1, mp_lost_steps=0):
    """Build the kernel's arrays as ``simulate_traffic`` does and run it in blocks of ``block`` ticks.

    ``signals`` (``(cycle, green_from, green_to)`` link arrays) and ``link_open`` default to
    no signals and every link open; ``veh_class``/``priority``/``bypass_speed_mps`` to no
    emergency vehicle (see :func:`priority_arrays`); ``mp_phases`` (phases of each
    max-pressure node, each a list of in-links) to none. Returns the reference's dict (and
    ``state`` and ``out``, every array the kernel wrote).
    """
    kernel = K.simulate_queue if kernel is None else kernel
    n_links, n_veh = len(nw["ff_steps"]), len(routes)
    spi = n_steps if spi is None else spi
    n_iv = -(-n_steps // spi)
    block = n_steps if block is None else block
    in_indptr, in_link = _in_star(nw)
    link_head = nw["head"].copy()
    for a in (in_indptr, in_link, link_head):       # read-only like City's arrays: one compiled signature
        a.setflags(write=False)
    depart_step = np.asarray(depart_step, dtype=np.int64)
    # routes, each followed by the sentinel -1 - v
    route_seq, route_start = [], np.zeros(n_veh, dtype=np.int64)
    for v, r in enumerate(routes):
        route_start[v] = len(route_seq)
        route_seq += list(r) + [-1 - v]
    route_seq = np.array(route_seq, dtype=np.int32)
    ok = np.array([len(r) > 0 for r in routes], dtype=bool)
    first_link = np.array([r[0] if r else 0 for r in routes], dtype=np.int64)
    dep_order = np.lexsort((np.arange(n_veh), depart_step)).astype(np.int64)
    dl_order = np.lexsort((np.arange(n_veh), depart_step, first_link))
    dl_order = dl_order[ok[dl_order]].astype(np.int64)
    dep_link_indptr = np.zeros(n_links + 1, dtype=np.int64)
    np.cumsum(np.bincount(first_link[ok], minlength=n_links), out=dep_link_indptr[1:])
    ring_cap = (nw["storage"] + 2).astype(np.int32)
    ring_start = np.zeros(n_links, dtype=np.int64)
    np.cumsum(ring_cap[:-1], out=ring_start[1:])
    state = dict(
        ring=np.zeros(int(ring_cap.sum()), dtype=np.int64), ring_next=np.zeros(int(ring_cap.sum()), dtype=np.int32),
        ring_head=np.zeros(n_links, dtype=np.int32), ring_count=np.zeros(n_links, dtype=np.int32),
        hole_head=np.zeros(n_links, dtype=np.int32), hole_count=np.zeros(n_links, dtype=np.int32),
        head_due=np.full(n_links, K.NEVER, dtype=np.int64), head_since=np.zeros(n_links, dtype=np.int64),
        node_wake=np.full(nw["n_nodes"], K.NEVER, dtype=np.int64),
        acc=nw["cap_per_step"] + 1.0, acc_step=np.zeros(n_links, dtype=np.int64),
        status=np.where(ok, K.STATUS_NOT_DEPARTED, K.STATUS_UNROUTABLE).astype(np.int8),
        arrive_step=np.full(n_veh, -1, dtype=np.int64), ev_entry=np.full(n_veh, -1, dtype=np.int64),
        ev_enter_step=np.zeros(n_veh, dtype=np.int64),
        mp_phase=np.full(0 if mp_phases is None else len(mp_phases), -1, dtype=np.int32))
    control = control_arrays(n_links, signals, link_open)
    mp = mp_arrays(n_links, mp_phases, mp_period_steps, mp_lost_steps)
    for L in mp["mp_link"]:                          # max-pressure links: cycle = period, red until decided
        control["sig_cycle"][L], control["sig_green_from"][L], control["sig_green_to"][L] = mp_period_steps, 0, 0
    out = dict(
        inflow=np.zeros((n_iv, n_links), dtype=np.int32), outflow=np.zeros((n_iv, n_links), dtype=np.int32),
        tt_sum_steps=np.zeros((n_iv, n_links), dtype=np.int64), occ_part=np.zeros((n_iv, n_links), dtype=np.int64),
        dep_wait=np.zeros((n_iv, n_links, 2), dtype=np.int64),
        step_counts=np.zeros((n_steps, 3), dtype=np.int64), counters=np.zeros(len(K.COUNTER_NAMES), np.int64))
    args = dict(in_indptr=in_indptr, in_link=in_link, link_head=link_head, ff_steps=nw["ff_steps"],
                cap_per_step=nw["cap_per_step"], storage=nw["storage"], hole_steps=nw["hole_steps"],
                ring_start=ring_start, ring_cap=ring_cap, route_seq=route_seq, route_start=route_start,
                depart_step=depart_step, dep_order=dep_order, dep_link_indptr=dep_link_indptr,
                dep_link_order=dl_order, stuck_steps=int(stuck_steps), seed=int(seed), steps_per_interval=int(spi),
                stop_when_done=bool(stop_when_done), **control, **state, **out, **mp,
                **priority_arrays(nw, n_veh, veh_class, priority, bypass_speed_mps))
    n_routable, ev_list, link_dep_scan = K.departure_setup(state["status"], args["veh_class"], args["priority"],
                                                           dep_link_indptr)
    args.update(n_routable=n_routable, ev_list=ev_list, link_dep_scan=link_dep_scan)
    names = list(inspect.signature(getattr(K.simulate_queue, "py_func", K.simulate_queue)).parameters)
    while out["counters"][4] < n_steps:
        args["n_steps"] = min(block, n_steps - int(out["counters"][4]))
        kernel(*[args[name] for name in names])
        if stop_when_done and out["counters"][2] >= ok.sum():
            break
    ticks = int(out["counters"][4])
    return dict(arrive_step=state["arrive_step"], status=state["status"], inflow=out["inflow"],
                outflow=out["outflow"], forced_moves=int(out["counters"][3]), teleports=int(out["counters"][6]),
                ticks=ticks,
                step_counts=out["step_counts"][:ticks], state=state, out=out)


def run_reference(nw, routes, depart_step, *, n_steps, stuck_steps=10**9, seed=0, spi=None, stop_when_done=True,
                  signals=None, link_open=None, veh_class=None, priority=False, bypass_speed_mps=2.0,
                  mp_phases=None, mp_period_steps=1, mp_lost_steps=0):
    in_indptr, in_link = _in_star(nw)
    in_links = [in_link[in_indptr[n]:in_indptr[n + 1]].tolist() for n in range(nw["n_nodes"])]
    control = {} if signals is None and link_open is None else control_arrays(len(nw["ff_steps"]), signals, link_open)
    if veh_class is not None or priority:
        control.update(priority_arrays(nw, len(routes), veh_class, priority, bypass_speed_mps))
    if mp_phases is not None:
        control.update(mp_phases=mp_phases, mp_period_steps=mp_period_steps, mp_lost_steps=mp_lost_steps)
    return simulate_queue_reference(in_links, nw["ff_steps"], nw["cap_per_step"], nw["storage"], nw["hole_steps"],
                                    nw["storage"] + 2, routes, depart_step, n_steps, stuck_steps, seed,
                                    n_steps if spi is None else spi, stop_when_done, **control)


def assert_kernel_matches(got, ref):
    np.testing.assert_array_equal(got["arrive_step"], ref["arrive_step"])
    np.testing.assert_array_equal(got["status"], ref["status"])
    np.testing.assert_array_equal(got["inflow"], ref["inflow"])
    np.testing.assert_array_equal(got["outflow"], ref["outflow"])
    assert got["forced_moves"] == ref["forced_moves"]
    assert got["teleports"] == ref["teleports"]
    assert got["ticks"] == ref["ticks"]
    np.testing.assert_array_equal(got["step_counts"], ref["step_counts"])


def both_kernel(nw, routes, depart_step, *, block=None, **kw):
    got = run_kernel(nw, routes, depart_step, block=block, **kw)
    ref = run_reference(nw, routes, depart_step, **kw)
    assert_kernel_matches(got, ref)
    return got, ref


def raw_city(name, n_nodes, links, *, free_flow_time_s=None):
    """A city from ``(from, to, length_m, free_speed_mps, lanes, capacity_veh_per_h)`` rows."""
    a = np.array(links, dtype=np.float64).reshape(-1, 6)
    return twin.load_city(RawNetwork(
        name=name, source=f"test {name}", node_ids=np.arange(n_nodes), x_m=np.arange(n_nodes) * 10.0,
        y_m=np.zeros(n_nodes), link_from_idx=a[:, 0].astype(np.int64), link_to_idx=a[:, 1].astype(np.int64),
        length_m=a[:, 2], free_speed_mps=a[:, 3], lanes=a[:, 4], capacity_veh_per_h=a[:, 5],
        free_flow_time_s=None if free_flow_time_s is None else np.asarray(free_flow_time_s, dtype=np.float64)))


def trips_table(origin, destination, depart_s):
    n = len(depart_s)
    return {"origin": np.broadcast_to(origin, n), "destination": np.broadcast_to(destination, n),
            "depart_s": np.asarray(depart_s, dtype=np.float64)}


# ------------------------------------------------------------------------------------------
# the hash the reference borrows
# ------------------------------------------------------------------------------------------

def test_uniform_hash_python_body_matches_compiled():
    """The reference draws with ``_uniform.py_func``; it must give the compiled kernel's numbers."""
    if not hasattr(K._uniform, "py_func"):
        pytest.skip("NUMBA_DISABLE_JIT: _uniform is already Python")
    rng = np.random.default_rng(5)
    for seed, k, node, draw in zip(rng.integers(0, 2**31, 50), rng.integers(0, 10**7, 50),
                                   rng.integers(0, 10**5, 50), rng.integers(0, 8, 50)):
        args = int(seed), int(k), int(node), int(draw)
        u = K._uniform(*args)
        with np.errstate(over="ignore"):
            assert u == K._uniform.py_func(*args)
        assert 0.0 <= u < 1.0


# ------------------------------------------------------------------------------------------
# random cases
# ------------------------------------------------------------------------------------------

def random_network(rng):
    """A random directed multigraph (no self-loops) with small, often binding, link parameters."""
    n = int(rng.integers(2, 7))
    m = int(rng.integers(1, 3 * n + 1))
    tail = rng.integers(0, n, size=m)
    head = (tail + rng.integers(1, n, size=m)) % n
    caps = np.array([0.1, 0.25, 0.3, 0.5, 0.7, 1.0, 1.5, 2.5, 4.0])
    cap = np.where(rng.random(m) < 0.5, rng.choice(caps, size=m), rng.uniform(0.05, 3.0, size=m))
    rows = np.column_stack([tail, head, rng.integers(1, 5, size=m), cap, rng.integers(1, 6, size=m),
                            rng.integers(1, 5, size=m)])
    return net(n, rows)


def random_routes(rng, nw, n_veh):
    """Random walks along out-links (loops allowed), a few empty (unroutable)."""
    out = [np.flatnonzero(nw["tail"] == i) for i in range(nw["n_nodes"])]
    routes = []
    for _ in range(n_veh):
        if rng.random() < 0.05:
            routes.append([])
            continue
        r = [int(rng.integers(0, len(nw["tail"])))]
        for _ in range(int(rng.integers(0, 6))):
            nxt = out[nw["head"][r[-1]]]
            if not len(nxt):
                break
            r.append(int(rng.choice(nxt)))
        routes.append(r)
    return routes


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_networks_match_reference(seed):
    """Random small networks, random routes and departures (bursts included), run in blocks.

    Several-vehicle bursts onto storages of 1-5 vehicles give spillback, merges, loops and
    gridlock; a stuck time of 1-10 ticks or none decides whether gridlocks resolve. The
    kernel runs in blocks of random length, resuming from its state arrays each time.
    """
    rng = np.random.default_rng(seed)
    nw = random_network(rng)
    n_veh = int(rng.integers(1, 80))
    routes = random_routes(rng, nw, n_veh)
    depart = rng.integers(0, 60, size=n_veh)
    depart[rng.random(n_veh) < 0.4] = int(rng.integers(0, 10))
    n_steps = int(rng.integers(5, 400))
    block = int(rng.integers(1, n_steps + 1))
    both_kernel(nw, routes, depart, n_steps=n_steps, stuck_steps=int(rng.choice([1, 3, 10, 10**9])),
                seed=int(rng.integers(0, 2**31)), spi=int(rng.choice([1, 7, 50])),
                stop_when_done=bool(rng.random() < 0.7), block=block)


def random_controls(rng, n_links):
    """Random fixed-time signals (about half the links; wrapping windows, one-tick greens and,
    rarely, never-green windows included) and random closed links (about one in six)."""
    cycle = np.where(rng.random(n_links) < 0.5, rng.integers(2, 25, size=n_links), 0)
    c = np.maximum(cycle, 1)
    g_from = rng.integers(0, 1000, size=n_links) % c
    g_len = np.where(rng.random(n_links) < 0.03, 0, 1 + rng.integers(0, 1000, size=n_links) % c)
    g_to = (g_from + g_len) % c                         # wraps when g_from + g_len > cycle
    full = (g_len == c) & (cycle > 0)                   # green all cycle: the window [0, cycle)
    g_from[full], g_to[full] = 0, cycle[full]
    return (cycle, g_from, g_to), rng.random(n_links) >= 1 / 6


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_signals_and_closures_match_reference(seed):
    """As above, with random fixed-time signals and closed links, run in blocks.

    Red links hold their queues (their nodes wake at the next green in the kernel, every
    tick in the reference), stuck heads count only green ticks, and vehicles meet closed
    links on departure, at nodes, and in teleports.
    """
    rng = np.random.default_rng(seed)
    nw = random_network(rng)
    n_links = len(nw["ff_steps"])
    n_veh = int(rng.integers(1, 80))
    routes = random_routes(rng, nw, n_veh)
    depart = rng.integers(0, 60, size=n_veh)
    depart[rng.random(n_veh) < 0.4] = int(rng.integers(0, 10))
    n_steps = int(rng.integers(5, 400))
    signals, link_open = random_controls(rng, n_links)
    if rng.random() < 0.3:
        link_open[:] = True
    both_kernel(nw, routes, depart, n_steps=n_steps, stuck_steps=int(rng.choice([1, 3, 10, 10**9])),
                seed=int(rng.integers(0, 2**31)), spi=int(rng.choice([1, 7, 50])),
                stop_when_done=bool(rng.random() < 0.7), block=int(rng.integers(1, n_steps + 1)),
                signals=signals, link_open=link_open)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_always_green_signals_change_nothing(seed):
    """A signal green all cycle, and all-open closures, leave every array the kernel writes unchanged."""
    rng = np.random.default_rng(seed)
    nw = random_network(rng)
    n_links = len(nw["ff_steps"])
    n_veh = int(rng.integers(1, 60))
    routes = random_routes(rng, nw, n_veh)
    depart = rng.integers(0, 40, size=n_veh)
    cycle = np.where(rng.random(n_links) < 0.7, rng.integers(1, 30, size=n_links), 0)
    kw = dict(n_steps=int(rng.integers(5, 300)), stuck_steps=int(rng.choice([1, 3, 10**9])),
              seed=int(rng.integers(0, 2**31)), spi=7)
    plain = run_kernel(nw, routes, depart, **kw)
    green = run_kernel(nw, routes, depart, signals=(cycle, np.zeros(n_links), cycle),
                       link_open=np.ones(n_links, dtype=bool), **kw)
    for part in ("state", "out"):
        for name, a in plain[part].items():
            np.testing.assert_array_equal(green[part][name], a, err_msg=name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_cities_match_reference(seed):
    """``simulate_traffic`` on random small jittered grids with random, often heavy, demand."""
    rng = np.random.default_rng(seed)
    n_x, n_y = (int(v) for v in rng.integers(2, 4, size=2))
    spacing = float(rng.uniform(20.0, 120.0))
    raw = grid_city(n_x, n_y, spacing_m=spacing, jitter_m=float(rng.uniform(0.0, spacing / 3)),
                    seed=int(rng.integers(0, 1000)), n_districts_x=1, n_districts_y=1)
    m = raw.n_links
    city = twin.load_city(dataclasses.replace(
        raw, lanes=rng.integers(1, 3, size=m).astype(float), free_speed_mps=rng.uniform(5.0, 20.0, size=m),
        capacity_veh_per_h=rng.uniform(100.0, 1200.0, size=m) * rng.integers(1, 3, size=m),
        jam_density_veh_per_km_per_lane=rng.uniform(100.0, 180.0, size=m)))
    n = int(rng.integers(1, 300))
    o = rng.integers(0, city.n_nodes, size=n)
    hot = rng.integers(0, city.n_nodes, size=2)                     # a few popular destinations
    d = np.where(rng.random(n) < rng.random(), hot[rng.integers(0, 2, size=n)],
                 (o + rng.integers(1, city.n_nodes, size=n)) % city.n_nodes)
    d = np.where(d == o, (o + 1) % city.n_nodes, d)
    dt = float(rng.choice([1.0, 2.0, 5.0]))
    until = float(rng.choice([120.0, 400.0, 900.0]))
    depart = np.round(rng.uniform(0.0, 0.6 * until, size=n), 1)
    burst = rng.random(n) < 0.3
    depart[burst] = depart[burst].min(initial=0.0)
    both_traffic(city, trips_table(city.node_ids[o], city.node_ids[d], depart), until_s=until,
                 seed=int(rng.integers(0, 2**31)), dt_s=dt, interval_s=dt * float(rng.choice([1, 7, 60])),
                 stuck_time_s=float(rng.choice([5.0, 30.0, NO_STUCK])), stop_when_done=bool(rng.random() < 0.7))


def test_grid_3x3_across_kernel_blocks():
    """``grid:3x3`` at dt = 5 s past 3 600 s: ``simulate_traffic`` resumes the kernel once."""
    city = twin.load_city("grid:3x3")
    rng = np.random.default_rng(33)
    n = 300
    o = rng.integers(0, 9, size=n)
    d = (o + rng.integers(1, 9, size=n)) % 9
    depart = np.sort(rng.uniform(0.0, 4000.0, size=n))
    depart[:60] = 100.0                                            # a burst
    res, ref = both_traffic(city, trips_table(city.node_ids[o], city.node_ids[d], depart), until_s=5000.0,
                            dt_s=5.0, seed=3, stuck_time_s=NO_STUCK)
    assert res.kpis["simulated_s"] > 3600.0
    assert res.kpis["completed"] == n


# ------------------------------------------------------------------------------------------
# hand-made edge cases
# ------------------------------------------------------------------------------------------

def test_single_link_discharge():
    """One 100 m link (ff 10 ticks, 0.5 veh/tick, storage 15): 20 vehicles at once."""
    city = raw_city("one", 2, [(0, 1, 100.0, 10.0, 1.0, 1800.0)])
    la = link_arrays(city, 1.0)
    assert (la["ff_steps"][0], la["cap_per_step"][0], la["storage"][0]) == (10, 0.5, 15)
    res, ref = both_traffic(city, trips_table(0, 1, np.zeros(20)), until_s=600.0)
    # the first 15 enter at 0; from tick 10 they leave at capacity, one more in the first
    # tick from the full budget of the idle link (1.5, then 0.5 per tick); FIFO throughout
    np.testing.assert_array_equal(ref["arrive_step"][:15], [10] + list(11 + 2 * np.arange(14)))
    assert np.all(np.diff(ref["arrive_step"]) > 0)


def test_zero_time_connectors():
    """Zero-length, zero-time connectors (infinite speed) take one tick, as any link."""
    links = [(0, 1, 0.0, np.inf, 1.0, 3600.0), (1, 2, 150.0, 10.0, 1.0, 900.0), (2, 3, 150.0, 10.0, 1.0, 900.0),
             (3, 4, 0.0, np.inf, 1.0, 3600.0), (5, 1, 0.0, np.inf, 1.0, 1800.0)]
    city = raw_city("connectors", 6, links, free_flow_time_s=[0.0, 15.0, 15.0, 0.0, 0.0])
    la = link_arrays(city, 1.0)
    np.testing.assert_array_equal(la["ff_steps"], [1, 15, 15, 1, 1])
    np.testing.assert_array_equal(la["hole_steps"][[0, 3, 4]], 1)
    rng = np.random.default_rng(1)
    origin = np.where(rng.random(80) < 0.5, 0, 5)
    depart = np.round(rng.uniform(0.0, 60.0, size=80))
    res, ref = both_traffic(city, trips_table(origin, 4, depart), until_s=900.0, seed=7)
    assert res.kpis["completed"] == 80
    # alone on the network at a whole tick after the budgets filled: 1 + 15 + 15 + 1 ticks
    res, ref = both_traffic(city, trips_table(0, 4, [10.0]), until_s=100.0)
    assert ref["arrive_step"][0] == 10 + 32


def test_several_vehicles_per_tick():
    """dt = 5 s: 2.5 and 10 vehicles per tick of capacity, a budget above 1."""
    links = [(0, 1, 100.0, 10.0, 2.0, 3600.0 * 2), (1, 2, 200.0, 10.0, 1.0, 1800.0), (1, 3, 100.0, 10.0, 1.0, 1800.0),
             (3, 2, 60.0, 10.0, 1.0, 1800.0)]
    city = raw_city("wide", 4, links)
    la = link_arrays(city, 5.0)
    np.testing.assert_array_equal(la["cap_per_step"], [10.0, 2.5, 2.5, 2.5])
    rng = np.random.default_rng(2)
    dest = rng.choice([2, 3], size=200)
    res, ref = both_traffic(city, trips_table(0, dest, np.round(rng.uniform(0.0, 100.0, size=200))), until_s=1200.0,
                            dt_s=5.0, interval_s=60.0, stuck_time_s=NO_STUCK)
    assert res.kpis["completed"] == 200
    assert ref["outflow"][:, 0].max() > 12                           # several per tick leave link 0


def test_storage_of_one_vehicle():
    """Three links holding one vehicle each (ff 1, hole 2 ticks): one vehicle per 3 ticks.

    Link ``A`` takes the next vehicle only when the last one's hole has reached its upstream
    end: it entered at ``k``, left at ``k + 1``, its hole is released at ``k + 3``.
    """
    nw = net(4, [(0, 1, 1, 1.0, 1, 2), (1, 2, 1, 1.0, 1, 2), (2, 3, 1, 1.0, 1, 2)])
    got, ref = both_kernel(nw, [[0, 1, 2]] * 6, np.zeros(6, dtype=np.int64), n_steps=40, spi=10)
    np.testing.assert_array_equal(ref["arrive_step"], 3 + 3 * np.arange(6))
    assert ref["forced_moves"] == 0
    # the same with a fractional capacity, a merge onto a storage-1 link and a stuck rule
    nw = net(4, [(0, 2, 1, 0.3, 1, 1), (1, 2, 2, 0.7, 1, 3), (2, 3, 1, 1.0, 1, 1)])
    routes = [[0, 2]] * 8 + [[1, 2]] * 8
    for stuck in (1, 4, 10**9):
        both_kernel(nw, routes, np.arange(16) % 3, n_steps=120, stuck_steps=stuck, seed=11, spi=13)


def ring_city():
    """A one-way square 0 -> 1 -> 2 -> 3 -> 0 of 15 m links: storage 3, ff 3 ticks."""
    return raw_city("ring", 4, [(i, (i + 1) % 4, 15.0, 5.0, 1.0, 1800.0) for i in range(4)])


@pytest.mark.parametrize("stuck_time_s", [NO_STUCK, 20.0])
def test_gridlocked_ring(stuck_time_s):
    """Every vehicle goes three links round the ring; the first links fill at once: gridlock.

    Without the stuck rule nobody ever arrives; with it, forced moves (into a ring slot
    beyond the storage) break the gridlock and everyone arrives.
    """
    city = ring_city()
    assert link_arrays(city, 1.0)["storage"].tolist() == [3] * 4
    origin = np.repeat(np.arange(4), 5)
    res, ref = both_traffic(city, trips_table(origin, (origin + 3) % 4, np.zeros(20)), until_s=600.0,
                            stuck_time_s=stuck_time_s)
    if stuck_time_s == NO_STUCK:
        assert res.kpis["completed"] == 0 and res.kpis["forced_moves"] == 0
        assert (res.trips["status"] == "waiting").sum() == 8           # 3 on each first link, 2 left waiting
    else:
        assert res.kpis["completed"] == 20 and res.kpis["forced_moves"] > 0


def test_unroutable_trips():
    """Trips against a one-way street are unroutable: they never depart; the rest run."""
    city = raw_city("oneway", 3, [(0, 1, 100.0, 10.0, 1.0, 900.0), (1, 2, 100.0, 10.0, 1.0, 900.0)])
    rng = np.random.default_rng(3)
    od = rng.choice(np.array([(0, 2), (2, 0), (1, 2), (1, 0), (0, 1)]), size=40)
    res, ref = both_traffic(city, trips_table(od[:, 0], od[:, 1], np.round(rng.uniform(0, 30, 40))), until_s=1200.0)
    bad = (od[:, 0] > od[:, 1])
    assert (res.trips["status"][bad] == "unroutable").all()
    assert res.kpis["unroutable"] == bad.sum() and res.kpis["completed"] == (~bad).sum()


def test_same_tick_departures_enter_in_trip_order():
    """Trips whose departures round to one tick (dt = 2 s) enter their link in trip order."""
    city = raw_city("burst", 3, [(0, 1, 30.0, 10.0, 1.0, 1200.0), (1, 2, 30.0, 10.0, 1.0, 600.0)])
    depart = np.tile([0.5, 1.0, 1.7, 2.0], 10)                       # all tick 1
    res, ref = both_traffic(city, trips_table(0, 2, depart), until_s=600.0, dt_s=2.0, interval_s=20.0)
    assert res.kpis["completed"] == 40
    assert np.all(np.diff(ref["arrive_step"]) > 0)                  # FIFO: trip order kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_draws(seed):
    """Three oversaturated in-links of unequal capacity merge onto one link; the draw decides."""
    links = [(0, 3, 50.0, 10.0, 1.0, 1800.0), (1, 3, 50.0, 10.0, 2.0, 2700.0), (2, 3, 50.0, 10.0, 1.0, 600.0),
             (3, 4, 50.0, 10.0, 1.0, 1800.0)]
    city = raw_city("merge", 5, links)
    origin = np.repeat([0, 1, 2], 60)
    res, ref = both_traffic(city, trips_table(origin, 4, np.tile(np.arange(60.0), 3)), until_s=900.0, seed=seed,
                            interval_s=60.0, stuck_time_s=NO_STUCK)
    assert res.kpis["completed"] == 180


def test_stuck_rule_resolves_every_gridlock():
    """The stuck rule always moves a stuck head on (forced move, else teleport), so every vehicle arrives.

    A (0->1) and B (1->0), storage 1, ff 3, with feeders: the feeders' vehicles are forced
    in first, then A's and B's heads each face a link one beyond its storage, which only a
    teleport resolves; the reference agrees tick for tick.
    """
    nw = net(4, [(0, 1, 3, 1.0, 1, 1), (1, 0, 3, 1.0, 1, 1), (2, 0, 1, 1.0, 1, 1), (3, 1, 1, 1.0, 1, 1)])
    routes = [[0, 1], [1, 0], [2, 0, 1], [3, 1, 0]]             # A->B, B->A, F->A->B, G->B->A
    got, ref = both_kernel(nw, routes, [0, 0, 0, 0], n_steps=1000, stuck_steps=1)
    assert (got["status"] == K.STATUS_ARRIVED).all()
    assert got["teleports"] > 0


# ------------------------------------------------------------------------------------------
# the kernel body as Python, and resuming
# ------------------------------------------------------------------------------------------

def test_python_body_keeps_due_ticks():
    """The minimal case of the bug: the kernel body run as Python lets a queued vehicle leave early."""
    python = getattr(K.simulate_queue, "py_func", K.simulate_queue)
    nw = net(2, [(0, 1, 10, 1.0, 5, 1)])
    assert run_reference(nw, [[0], [0]], [0, 5], n_steps=30)["arrive_step"].tolist() == [10, 15]
    got = run_kernel(nw, [[0], [0]], [0, 5], n_steps=30, kernel=python)
    assert got["arrive_step"].tolist() == [10, 15]


def test_python_body_matches_compiled():
    """``simulate_queue.py_func`` (the body run by Python) writes exactly what the compiled kernel writes."""
    if not hasattr(K.simulate_queue, "py_func"):
        pytest.skip("NUMBA_DISABLE_JIT: simulate_queue is already Python")
    rng = np.random.default_rng(8)
    nw = net(4, [(0, 2, 2, 0.3, 2, 1), (1, 2, 1, 0.7, 3, 2), (2, 3, 1, 1.5, 2, 1), (3, 0, 1, 0.5, 2, 2),
                 (3, 1, 2, 1.0, 1, 1)])
    routes = random_routes(rng, nw, 30)
    routes = [r for r in routes if r]
    depart = rng.integers(0, 20, size=len(routes))
    kw = dict(n_steps=150, stuck_steps=5, seed=99, spi=17, block=40)
    compiled = run_kernel(nw, routes, depart, **kw)
    python = run_kernel(nw, routes, depart, kernel=K.simulate_queue.py_func, **kw)
    for part in ("state", "out"):
        for name, a in compiled[part].items():
            np.testing.assert_array_equal(python[part][name], a, err_msg=name)
    assert compiled["forced_moves"] > 0 and compiled["status"].tolist().count(K.STATUS_ARRIVED) > 0
    assert_kernel_matches(compiled, run_reference(nw, routes, depart, **{k: v for k, v in kw.items() if k != "block"}))


def test_resume_after_unroutable_vehicle():
    """Unroutable vehicle 0 and vehicle 1 depart at 0; vehicle 2 at 10; the kernel runs in blocks of 5.

    The kernel resumes its departure pointer past the unroutable vehicles it stepped over
    (``counters[5]``), so no departed vehicle is released twice.
    """
    nw = net(3, [(0, 1, 1, 1.0, 3, 1), (1, 2, 1, 1.0, 3, 1)])
    routes, depart = [[], [0, 1], [0, 1]], [0, 0, 10]
    ref = run_reference(nw, routes, depart, n_steps=20)
    assert ref["arrive_step"].tolist() == [-1, 2, 12]
    assert_kernel_matches(run_kernel(nw, routes, depart, n_steps=20, block=20), ref)      # one block: fine
    assert_kernel_matches(run_kernel(nw, routes, depart, n_steps=20, block=5), ref)


# ------------------------------------------------------------------------------------------
# signals and closed links, by hand
# ------------------------------------------------------------------------------------------

def test_red_link_holds_its_queue():
    """One link (ff 2, 1 veh/tick), cycle 10, green [6, 10): seven vehicles enter at 0.

    Nothing leaves during red; at 6 the full budget (cap + 1 = 2) lets two go, then one a
    tick to the end of green at 9; the last two wait through the next red (ticks 10-15)
    and leave together at 16, the budget full again.
    """
    nw = net(2, [(0, 1, 2, 1.0, 20, 1)])
    signals = ([10], [6], [10])
    got, ref = both_kernel(nw, [[0]] * 7, np.zeros(7), n_steps=40, spi=1, signals=signals)
    assert ref["arrive_step"].tolist() == [6, 6, 7, 8, 9, 16, 16]
    assert (ref["step_counts"][2:6, 1] == 7).all()                  # all seven held on the link through red
    assert ref["outflow"][:, 0].nonzero()[0].tolist() == [6, 7, 8, 9, 16]


def test_wrapping_green_window():
    """Cycle 10, green from 8 to 3 (ticks 8, 9, 0, 1, 2 of each cycle); ff 4, ample capacity.

    Due at 4 (red) -> 8; due at 9 (green) -> 9; due at 11 (1 in the cycle, green) -> 11;
    due at 13 (3, red) -> 18.
    """
    nw = net(2, [(0, 1, 4, 4.0, 20, 1)])
    got, ref = both_kernel(nw, [[0]] * 4, [0, 5, 7, 9], n_steps=40, signals=([10], [8], [3]))
    assert ref["arrive_step"].tolist() == [8, 9, 11, 18]


@pytest.mark.parametrize("g_from, g_to", [(3, 7), (7, 3)])
def test_arrival_on_red_leaves_at_first_green(g_from, g_to):
    """A vehicle due in any tick of the cycle leaves at the first green tick from then on.

    One vehicle enters each tick (ff 1); the capacity (10 a tick) never binds.
    """
    cycle = 10
    nw = net(2, [(0, 1, 1, 10.0, 20, 1)])
    depart = np.arange(30)
    routes = [[0]] * len(depart)
    got, ref = both_kernel(nw, routes, depart, n_steps=60, signals=([cycle], [g_from], [g_to]))
    green = [(g_from <= t % cycle < g_to) if g_from <= g_to else not (g_to <= t % cycle < g_from) for t in range(80)]
    expect = [next(t for t in range(d + 1, 80) if green[t]) for d in depart]
    assert ref["arrive_step"].tolist() == expect


def test_closed_link_refuses_departures():
    """Departures onto a closed link wait (departed, not in the network); the others run."""
    nw = net(3, [(0, 1, 2, 1.0, 5, 1), (1, 2, 2, 1.0, 5, 1)])
    got, ref = both_kernel(nw, [[0, 1], [1], [0, 1]], [0, 0, 3], n_steps=30, link_open=[False, True])
    assert ref["status"].tolist() == [K.STATUS_WAITING, K.STATUS_ARRIVED, K.STATUS_WAITING]
    assert ref["step_counts"][-1].tolist() == [3, 0, 1]
    assert ref["inflow"][:, 0].sum() == 0


def test_closed_link_refuses_forced_moves_and_teleports():
    """A (ff 2) -> B (ff 3, closed) -> C (ff 4, closed) -> D (ff 5); stuck after 3 ticks.

    The head of A is blocked by closed B from its due tick 2. Without the stuck rule it
    waits for ever. With it, at tick 5 it is not forced into B (closed, though empty) but
    teleported past B and C onto D, due at 5 + 3 + 4 + 5 = 17. With only B closed it lands
    on C, due at 5 + 3 + 4 = 12, and arrives at 17.
    """
    nw = net(5, [(0, 1, 2, 1.0, 5, 1), (1, 2, 3, 1.0, 5, 1), (2, 3, 4, 1.0, 5, 1), (3, 4, 5, 1.0, 5, 1)])
    route = [[0, 1, 2, 3]]
    got, ref = both_kernel(nw, route, [0], n_steps=40, link_open=[True, False, False, True])
    assert ref["status"].tolist() == [K.STATUS_EN_ROUTE] and ref["forced_moves"] == ref["teleports"] == 0
    got, ref = both_kernel(nw, route, [0], n_steps=40, stuck_steps=3, link_open=[True, False, False, True])
    assert ref["arrive_step"].tolist() == [17] and (ref["forced_moves"], ref["teleports"]) == (0, 1)
    assert ref["inflow"][0].tolist() == [1, 0, 0, 1]
    got, ref = both_kernel(nw, route, [0], n_steps=40, stuck_steps=3, link_open=[True, False, True, True])
    assert ref["arrive_step"].tolist() == [17] and ref["inflow"][0].tolist() == [1, 0, 1, 1]
    # a teleport with no open link left on the route arrives at the destination
    got, ref = both_kernel(nw, route, [0], n_steps=40, stuck_steps=3, link_open=[True, False, False, False])
    assert ref["arrive_step"].tolist() == [5 + 3 + 4 + 5] and ref["inflow"][0].tolist() == [1, 0, 0, 0]


def test_stuck_rule_counts_green_ticks_only():
    """A (ff 2, cycle 10, green [0, 5)) -> B closed; stuck after 4 green ticks.

    Blocked from its due tick 2: green ticks 2, 3, 4, then red 5-9, then 10; the fourth
    green tick blocked is over at 11, when it is teleported past B (ff 3): arrival 14.
    """
    nw = net(3, [(0, 1, 2, 1.0, 5, 1), (1, 2, 3, 1.0, 5, 1)])
    got, ref = both_kernel(nw, [[0, 1]], [0], n_steps=40, stuck_steps=4, signals=([10, 0], [0, 0], [5, 0]),
                           link_open=[True, False])
    assert ref["arrive_step"].tolist() == [14] and ref["teleports"] == 1


def test_python_body_matches_compiled_with_signals():
    """``simulate_queue.py_func`` writes exactly what the compiled kernel writes, with signals and closures."""
    if not hasattr(K.simulate_queue, "py_func"):
        pytest.skip("NUMBA_DISABLE_JIT: simulate_queue is already Python")
    rng = np.random.default_rng(9)
    nw = net(4, [(0, 2, 2, 0.3, 2, 1), (1, 2, 1, 0.7, 3, 2), (2, 3, 1, 1.5, 2, 1), (3, 0, 1, 0.5, 2, 2),
                 (3, 1, 2, 1.0, 1, 1)])
    routes = [r for r in random_routes(rng, nw, 30) if r]
    depart = rng.integers(0, 20, size=len(routes))
    kw = dict(n_steps=150, stuck_steps=5, seed=99, spi=17, block=40, signals=([6, 0, 9, 0, 4], [0, 0, 7, 0, 1],
                                                                              [3, 0, 2, 0, 3]),
              link_open=[True, True, True, True, False])
    compiled = run_kernel(nw, routes, depart, **kw)
    python = run_kernel(nw, routes, depart, kernel=K.simulate_queue.py_func, **kw)
    for part in ("state", "out"):
        for name, a in compiled[part].items():
            np.testing.assert_array_equal(python[part][name], a, err_msg=name)
    assert_kernel_matches(compiled, run_reference(nw, routes, depart, **{k: v for k, v in kw.items() if k != "block"}))


# ------------------------------------------------------------------------------------------
# emergency priority
# ------------------------------------------------------------------------------------------

def bypass_closed_form(q, ff_steps, bypass_speed_mps, dt_s=1.0):
    """The module docstring's bypass ticks on a link of :func:`priority_arrays` (10 m/tick, 7.5 m/veh)."""
    if q == 0:
        return ff_steps
    length, t_ff = 10.0 * ff_steps, ff_steps * dt_s
    queue = min(length, 7.5 * q)
    f = queue / length
    return max(ff_steps, math.floor((t_ff * (1 - f) + max(t_ff * f, queue / bypass_speed_mps)) / dt_s + 0.5))


def test_emergency_vehicle_bypasses_a_queue():
    """One link (ff 10, 0.2 veh/tick): ten cars at 0, then an emergency vehicle at 12.

    At 12 one car has left (the full budget at 10), so nine are queued: with priority the
    emergency vehicle is due after the bypass time of a nine-vehicle queue, whatever the
    cars do; without it, it is the eleventh car in the queue. The cars are not delayed
    by it (it takes no budget) — their arrivals are those of the run without it.
    """
    nw = net(2, [(0, 1, 10, 0.2, 50, 1)])
    routes, depart = [[0]] * 11, [0] * 10 + [12]
    cls = [0] * 10 + [1]
    got, ref = both_kernel(nw, routes, depart, n_steps=200, veh_class=cls, priority=True, bypass_speed_mps=2.0)
    assert ref["arrive_step"][10] == 12 + bypass_closed_form(9, 10, 2.0)
    cars = run_reference(nw, routes[:10], depart[:10], n_steps=200)
    assert ref["arrive_step"][:10].tolist() == cars["arrive_step"].tolist()
    off, _ = both_kernel(nw, routes, depart, n_steps=200, veh_class=cls, priority=False)
    plain, _ = both_kernel(nw, routes, depart, n_steps=200)
    assert off["arrive_step"].tolist() == plain["arrive_step"].tolist()
    assert off["arrive_step"][10] > ref["arrive_step"][10]
    # faster bypass, shorter time; a bypass speed above free speed is capped at free flow
    fast, _ = both_kernel(nw, routes, depart, n_steps=200, veh_class=cls, priority=True, bypass_speed_mps=100.0)
    assert fast["arrive_step"][10] == 12 + 10


def test_emergency_vehicle_ignores_red_and_storage():
    """A (ff 3, storage 1, red for ever) -> B: a car waits at the red; the emergency vehicle
    departing at 1 finds A full, enters anyway, and passes the red and the one-car queue."""
    nw = net(3, [(0, 1, 3, 1.0, 1, 1), (1, 2, 2, 1.0, 1, 1)])
    signals = ([10, 0], [0, 0], [0, 0])                 # from == to: never green
    got, ref = both_kernel(nw, [[0, 1], [0, 1]], [0, 1], n_steps=40, signals=signals, veh_class=[0, 1],
                           priority=True, bypass_speed_mps=2.0, stop_when_done=False)
    t_a = bypass_closed_form(0, 3, 2.0)                 # the car is not yet due at 1: no queue
    assert ref["arrive_step"].tolist() == [-1, 1 + t_a + 2]
    assert ref["status"].tolist() == [K.STATUS_EN_ROUTE, K.STATUS_ARRIVED]
    assert ref["inflow"][0].tolist() == [2, 1] and ref["outflow"][0].tolist() == [1, 1]


def test_emergency_vehicle_waits_for_a_closed_link():
    """An emergency vehicle does not enter a closed link (at departure or en route)."""
    nw = net(3, [(0, 1, 2, 1.0, 5, 1), (1, 2, 2, 1.0, 5, 1)])
    got, ref = both_kernel(nw, [[0, 1], [1]], [0, 0], n_steps=30, link_open=[True, False], veh_class=[1, 1],
                           priority=True)
    assert ref["status"].tolist() == [K.STATUS_EN_ROUTE, K.STATUS_WAITING]
    assert ref["step_counts"][-1].tolist() == [2, 1, 0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_emergency_vehicles_match_reference(seed):
    """Random networks, signals and closures with about one vehicle in five an emergency
    vehicle, priority on or off, random bypass speeds, run in blocks."""
    rng = np.random.default_rng(seed)
    nw = random_network(rng)
    n_veh = int(rng.integers(1, 60))
    routes = random_routes(rng, nw, n_veh)
    depart = rng.integers(0, 60, size=n_veh)
    depart[rng.random(n_veh) < 0.4] = int(rng.integers(0, 10))
    signals, link_open = random_controls(rng, len(nw["ff_steps"]))
    n_steps = int(rng.integers(5, 300))
    both_kernel(nw, routes, depart, n_steps=n_steps, stuck_steps=int(rng.choice([1, 3, 10, 10**9])),
                seed=int(rng.integers(0, 2**31)), spi=int(rng.choice([1, 7, 50])),
                stop_when_done=bool(rng.random() < 0.7), block=int(rng.integers(1, n_steps + 1)),
                signals=signals if rng.random() < 0.6 else None,
                link_open=link_open if rng.random() < 0.3 else None,
                veh_class=(rng.random(n_veh) < 0.2).astype(np.int8), priority=bool(rng.random() < 0.8),
                bypass_speed_mps=float(rng.choice([0.5, 2.0, 7.0, 50.0])))


# ------------------------------------------------------------------------------------------
# max-pressure
# ------------------------------------------------------------------------------------------

def test_max_pressure_serves_the_heavier_approach():
    """Node 2 with in-links A (0->2) and B (1->2), each its own phase; period 5, lost 1.

    Eight cars on A and two on B, all queued by tick 5: at 0 nothing is queued (all
    pressures 0) so phase 0 (A) is taken with the lost tick; A stays green while its
    normalised queue is the larger, and B gets the green only when its pressure wins.
    The kernel and the reference agree exactly, and the first B departure happens in a
    B green window that follows a switch (so it starts one lost tick into a period).
    """
    nw = net(4, [(0, 2, 1, 1.0, 20, 1), (1, 2, 1, 1.0, 20, 1), (2, 3, 1, 5.0, 40, 1)])
    routes = [[0, 2]] * 8 + [[1, 2]] * 2
    got, ref = both_kernel(nw, routes, [0] * 10, n_steps=80, spi=1, mp_phases=[[[0], [1]]], mp_period_steps=5,
                           mp_lost_steps=1)
    a_out = np.flatnonzero(ref["outflow"][:, 0])
    b_out = np.flatnonzero(ref["outflow"][:, 1])
    assert a_out.min() == 1 and b_out.min() > a_out.min()
    assert b_out.min() % 5 == 1                        # one lost tick after the switch
    assert (ref["status"] == K.STATUS_ARRIVED).all()
    assert got["state"]["mp_phase"].tolist() in ([0], [1])


def random_mp_phases(rng, nw):
    """Max-pressure phases at random nodes with >= 2 in-links: their in-links split into 1-3 phases
    (some links left unsignalised)."""
    nodes = []
    for n in range(nw["n_nodes"]):
        links = np.flatnonzero(nw["head"] == n)
        if len(links) < 2 or rng.random() < 0.3:
            continue
        links = links[rng.random(len(links)) < 0.9]
        if not len(links):
            continue
        k = int(rng.integers(1, min(3, len(links)) + 1))
        which = rng.integers(0, k, size=len(links))
        phases = [links[which == j].tolist() for j in range(k) if (which == j).any()]
        nodes.append(phases)
    return nodes


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEEDS)
def test_random_max_pressure_matches_reference(seed):
    """Random networks with max-pressure at random nodes (random periods and lost times),
    emergency vehicles sometimes, closures sometimes, run in blocks."""
    rng = np.random.default_rng(seed)
    nw = random_network(rng)
    n_veh = int(rng.integers(1, 60))
    routes = random_routes(rng, nw, n_veh)
    depart = rng.integers(0, 60, size=n_veh)
    depart[rng.random(n_veh) < 0.4] = int(rng.integers(0, 10))
    period = int(rng.integers(2, 12))
    _, link_open = random_controls(rng, len(nw["ff_steps"]))
    n_steps = int(rng.integers(5, 300))
    both_kernel(nw, routes, depart, n_steps=n_steps, stuck_steps=int(rng.choice([1, 3, 10, 10**9])),
                seed=int(rng.integers(0, 2**31)), spi=int(rng.choice([1, 7, 50])),
                stop_when_done=bool(rng.random() < 0.7), block=int(rng.integers(1, n_steps + 1)),
                link_open=link_open if rng.random() < 0.3 else None,
                veh_class=(rng.random(n_veh) < 0.1).astype(np.int8), priority=bool(rng.random() < 0.5),
                mp_phases=random_mp_phases(rng, nw), mp_period_steps=period,
                mp_lost_steps=int(rng.integers(0, period)))


def test_python_body_matches_compiled_with_priority_and_max_pressure():
    """``simulate_queue.py_func`` writes exactly what the compiled kernel writes, with emergency
    vehicles and max-pressure nodes."""
    if not hasattr(K.simulate_queue, "py_func"):
        pytest.skip("NUMBA_DISABLE_JIT: simulate_queue is already Python")
    rng = np.random.default_rng(10)
    nw = net(4, [(0, 2, 2, 0.3, 2, 1), (1, 2, 1, 0.7, 3, 2), (2, 3, 1, 1.5, 2, 1), (3, 0, 1, 0.5, 2, 2),
                 (3, 1, 2, 1.0, 1, 1)])
    routes = [r for r in random_routes(rng, nw, 30) if r]
    depart = rng.integers(0, 20, size=len(routes))
    cls = (np.arange(len(routes)) % 4 == 0).astype(np.int8)
    kw = dict(n_steps=150, stuck_steps=5, seed=99, spi=17, block=40, veh_class=cls, priority=True,
              bypass_speed_mps=1.5, mp_phases=[[[0], [1]]], mp_period_steps=6, mp_lost_steps=2)
    compiled = run_kernel(nw, routes, depart, **kw)
    python = run_kernel(nw, routes, depart, kernel=K.simulate_queue.py_func, **kw)
    for part in ("state", "out"):
        for name, a in compiled[part].items():
            np.testing.assert_array_equal(python[part][name], a, err_msg=name)
    assert (compiled["status"][cls == 1] == K.STATUS_ARRIVED).all()
    assert_kernel_matches(compiled, run_reference(nw, routes, depart, **{k: v for k, v in kw.items() if k != "block"}))
