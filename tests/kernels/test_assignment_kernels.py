"""The all-or-nothing assignment kernel against the plain reference and flow invariants.

Tolerances: on costs drawn from a continuous distribution, equal-cost alternative paths
have probability zero, so the kernel and the reference load the same paths and differ
only in the order the float64 flows are added: rtol 1e-12 (demands are O(1)-O(100),
sums of at most a few hundred terms). Least costs are sums of the same link costs along
the same path: rtol 1e-12. Where ties are allowed (costs rounded, zeros), only
invariants that hold whichever tied path is chosen are checked: node conservation and
``sum(flow * cost) == sum(demand * sp_cost)``, to rtol 1e-9.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.data.network import RawNetwork
from twin.graph import City
from twin.kernels.routing import all_or_nothing

from twin_reference import all_or_nothing_reference, dijkstra_reference

RTOL = 1e-12


def random_city(seed, n, m, *, no_through_share=0.0, ties=False):
    """A random directed graph and a per-link cost; ``ties`` rounds costs and adds zeros."""
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n, size=m)
    head = rng.integers(0, n, size=m)
    cost = rng.uniform(1.0, 100.0, size=m)
    if ties:
        cost = cost.round(0)
        cost[rng.random(m) < 0.1] = 0.0
    raw = RawNetwork(
        name=f"random{seed}", source="test", node_ids=np.arange(n, dtype=np.int64) + 1,
        x_m=np.zeros(n), y_m=np.zeros(n), link_from_idx=tail, link_to_idx=head,
        length_m=cost * 10, free_speed_mps=np.where(cost > 0, 10.0, np.inf), lanes=np.ones(m),
        capacity_veh_per_h=np.full(m, 1800.0), free_flow_time_s=cost,
        no_through=rng.random(n) < no_through_share,
    )
    return City.from_raw(raw), cost


def random_od(seed, n, n_origins, max_dest):
    """CSR OD table: distinct origins, distinct destinations per origin (o == d allowed)."""
    rng = np.random.default_rng(seed + 1)
    origins = rng.choice(n, size=min(n, n_origins), replace=False).astype(np.int64)
    offsets = [0]
    dests = []
    for _ in origins:
        k = int(rng.integers(0, min(n, max_dest) + 1))
        dests.extend(rng.choice(n, size=k, replace=False).tolist())
        offsets.append(len(dests))
    demand = rng.uniform(0.0, 100.0, size=len(dests))
    demand[rng.random(len(dests)) < 0.1] = 0.0
    return origins, np.array(offsets, dtype=np.int64), np.array(dests, dtype=np.int64), demand


def run_kernel(city, cost, origins, offsets, dests, demand, n_chunks=4):
    flow = np.full(city.n_links, np.nan)
    sp = np.full(len(dests), np.nan)
    n_bad = all_or_nothing(city.fwd_indptr, city.fwd_head, np.ascontiguousarray(cost[city.fwd_link]),
                           city.fwd_link, city.no_through, city.link_from_idx, origins, offsets, dests, demand,
                           n_chunks, flow, sp)
    return flow, sp, n_bad


@given(seed=st.integers(0, 2**31), n=st.integers(1, 30), density=st.floats(0.0, 4.0),
       nt=st.sampled_from([0.0, 0.3]), n_chunks=st.integers(1, 8))
@settings(max_examples=60, deadline=None)
def test_all_or_nothing_matches_reference(seed, n, density, nt, n_chunks):
    city, cost = random_city(seed, n, max(1, int(n * density)), no_through_share=nt)
    origins, offsets, dests, demand = random_od(seed, n, n_origins=8, max_dest=10)
    flow, sp, n_bad = run_kernel(city, cost, origins, offsets, dests, demand, n_chunks)
    ref_flow, ref_sp = all_or_nothing_reference(n, city.link_from_idx, city.link_to_idx, cost, city.no_through,
                                                origins, offsets, dests, demand)
    assert np.array_equal(np.isinf(sp), np.isinf(ref_sp))
    np.testing.assert_allclose(sp, ref_sp, rtol=RTOL)
    np.testing.assert_allclose(flow, ref_flow, rtol=RTOL, atol=1e-9)
    assert n_bad == int(np.sum(np.isinf(ref_sp) & (demand > 0)))


@given(seed=st.integers(0, 2**31), n=st.integers(2, 30), density=st.floats(1.0, 4.0),
       nt=st.sampled_from([0.0, 0.3]))
@settings(max_examples=60, deadline=None)
def test_all_or_nothing_invariants_with_ties(seed, n, density, nt):
    """Conservation, non-negativity and cost balance hold whichever tied path is taken."""
    city, cost = random_city(seed, n, int(n * density), no_through_share=nt, ties=True)
    origins, offsets, dests, demand = random_od(seed, n, n_origins=10, max_dest=10)
    flow, sp, _ = run_kernel(city, cost, origins, offsets, dests, demand)
    assert np.all(flow >= 0)
    # least costs equal the textbook Dijkstra's
    for i, o in enumerate(origins):
        ref = dijkstra_reference(n, city.link_from_idx, city.link_to_idx, cost, city.no_through, o)
        sl = slice(offsets[i], offsets[i + 1])
        np.testing.assert_allclose(sp[sl], ref[dests[sl]], rtol=RTOL)
    loaded = np.isfinite(sp) & (demand > 0)
    # node balance: out - in = produced - attracted (loaded demand only)
    orig_of_pair = np.repeat(origins, np.diff(offsets))
    balance = np.zeros(n)
    np.add.at(balance, city.link_from_idx, flow)
    np.subtract.at(balance, city.link_to_idx, flow)
    expect = np.zeros(n)
    np.add.at(expect, orig_of_pair[loaded], demand[loaded])
    np.subtract.at(expect, dests[loaded], demand[loaded])
    np.testing.assert_allclose(balance, expect, atol=1e-9 * max(1.0, demand.sum()))
    # total cost of the loaded flows equals demand times least cost
    np.testing.assert_allclose(np.dot(flow, cost), np.dot(demand[loaded], sp[loaded]), rtol=1e-9, atol=1e-9)


def test_all_or_nothing_edge_cases():
    """Single node, origin == destination, unreachable pair, zero demand, empty origin."""
    # one node, no useful link: a self-loop
    city, cost = random_city(0, 1, 1)
    flow, sp, n_bad = run_kernel(city, cost, np.array([0]), np.array([0, 1]), np.array([0]), np.array([5.0]))
    assert sp.tolist() == [0.0] and flow.tolist() == [0.0] and n_bad == 0
    # 0 -> 1 -> 2 chain; node 3 isolated
    raw = RawNetwork(name="chain", source="test", node_ids=np.arange(4, dtype=np.int64), x_m=np.zeros(4),
                     y_m=np.zeros(4), link_from_idx=np.array([0, 1]), link_to_idx=np.array([1, 2]),
                     length_m=np.array([10.0, 20.0]), free_speed_mps=np.array([1.0, 1.0]), lanes=np.ones(2),
                     capacity_veh_per_h=np.full(2, 1000.0), free_flow_time_s=np.array([10.0, 20.0]))
    city = City.from_raw(raw)
    cost = city.free_flow_time_s.copy()
    origins = np.array([0, 3, 2], dtype=np.int64)
    offsets = np.array([0, 3, 3, 4], dtype=np.int64)   # origin 3 has no destinations
    dests = np.array([2, 3, 1, 0], dtype=np.int64)
    demand = np.array([7.0, 4.0, 0.0, 1.0])
    flow, sp, n_bad = run_kernel(city, cost, origins, offsets, dests, demand)
    assert sp.tolist() == [30.0, np.inf, 10.0, np.inf]
    assert flow.tolist() == [7.0, 7.0]
    assert n_bad == 2   # 0 -> 3 and 2 -> 0 carry demand and have no path
    # an infinite (closed) link is never used
    cost[1] = np.inf
    flow, sp, n_bad = run_kernel(city, cost, origins, offsets, dests, demand)
    assert np.isinf(sp[0]) and flow.tolist() == [0.0, 0.0] and n_bad == 3


def test_all_or_nothing_thread_count_independent():
    """Byte-identical flows and costs with one thread and with the default thread count."""
    city, cost = random_city(7, 400, 1600, no_through_share=0.1, ties=True)
    origins, offsets, dests, demand = random_od(7, 400, n_origins=150, max_dest=60)
    default = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        f1, s1, b1 = run_kernel(city, cost, origins, offsets, dests, demand, n_chunks=16)
    finally:
        numba.set_num_threads(default)
    fd, sd, bd = run_kernel(city, cost, origins, offsets, dests, demand, n_chunks=16)
    assert f1.tobytes() == fd.tobytes()
    assert s1.tobytes() == sd.tobytes()
    assert b1 == bd
    if default == 1:
        pytest.skip("only one numba thread here; the comparison ran but proves nothing about threads")
