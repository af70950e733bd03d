"""Routing kernels against the plain reference, scipy and networkx.

Tolerance: distances are sums of the same float64 link costs; different correct
algorithms may add equal-cost alternatives in a different order, so we compare with
rtol 1e-12 (far above float64 rounding on paths of < 10^4 links, far below any real
difference in cost).
"""

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.kernels import routing
from twin.data.network import RawNetwork
from twin.graph import City

from twin_reference import dijkstra_reference, path_cost, scipy_travel_times

RTOL = 1e-12


def random_city(seed, n, m, *, no_through_share=0.0, zero_share=0.1, inf_share=0.0):
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n, size=m)
    head = rng.integers(0, n, size=m)
    cost = rng.uniform(1.0, 100.0, size=m).round(1)
    cost[rng.random(m) < zero_share] = 0.0
    raw = RawNetwork(
        name=f"random{seed}", source="test", node_ids=np.arange(n, dtype=np.int64) * 10 + 7,
        x_m=rng.uniform(0, 1000, n), y_m=rng.uniform(0, 1000, n),
        link_from_idx=tail, link_to_idx=head, length_m=np.maximum(cost, 0.0) * 10,
        free_speed_mps=np.where(cost > 0, 10.0, np.inf), lanes=np.ones(m), capacity_veh_per_h=np.full(m, 1800.0),
        free_flow_time_s=cost, no_through=rng.random(n) < no_through_share,
    )
    link_cost = cost.copy()
    link_cost[rng.random(m) < inf_share] = np.inf
    return City.from_raw(raw), link_cost


@given(seed=st.integers(0, 2**31), n=st.integers(1, 40), density=st.floats(0.0, 4.0),
       nt=st.sampled_from([0.0, 0.3]), inf_share=st.sampled_from([0.0, 0.2]))
@settings(max_examples=60, deadline=None)
def test_many_to_many_matches_reference_and_scipy(seed, n, density, nt, inf_share):
    m = max(1, int(n * density))
    city, cost = random_city(seed, n, m, no_through_share=nt, inf_share=inf_share)
    origins = np.arange(n)
    got = city.travel_times(city.node_ids, link_cost_s=cost)
    ref = np.array([dijkstra_reference(n, city.link_from_idx, city.link_to_idx, cost, city.no_through, s)
                    for s in origins])
    sp = scipy_travel_times(n, city.link_from_idx, city.link_to_idx, cost, city.no_through, origins)
    np.testing.assert_allclose(got, ref, rtol=RTOL)
    np.testing.assert_allclose(got, sp, rtol=RTOL)
    assert np.array_equal(np.isinf(got), np.isinf(sp))
    back = city.travel_times_to(city.node_ids, link_cost_s=cost)
    for s in origins[:3]:           # one search: the serial kernel, the same row bit for bit
        assert np.array_equal(city.travel_times(city.node_ids[s], link_cost_s=cost)[0], got[s])
        assert np.array_equal(city.travel_times_to(city.node_ids[s], link_cost_s=cost)[0], back[s])


@given(seed=st.integers(0, 2**31), n=st.integers(2, 30), density=st.floats(0.5, 4.0),
       nt=st.sampled_from([0.0, 0.3]))
@settings(max_examples=60, deadline=None)
def test_bidirectional_path_is_shortest_and_valid(seed, n, density, nt):
    city, cost = random_city(seed, n, int(n * density), no_through_share=nt)
    D = city.travel_times(city.node_ids)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        o, d = rng.integers(0, n, size=2)
        oid, did = city.node_ids[o], city.node_ids[d]
        best = city.path_cost(oid, did)
        if np.isinf(D[o, d]):
            assert np.isinf(best)
            continue
        np.testing.assert_allclose(best, D[o, d], rtol=RTOL)
        links = city.path(oid, did)
        # the path is connected, starts at o, ends at d, and costs what was reported
        nodes = [o] + [int(city.link_to_idx[k]) for k in links]
        assert all(city.link_from_idx[k] == nodes[i] for i, k in enumerate(links))
        assert nodes[-1] == d
        assert not any(city.no_through[v] for v in nodes[1:-1])
        np.testing.assert_allclose(path_cost(links, city.free_flow_time_s), D[o, d], rtol=RTOL)


@given(seed=st.integers(0, 2**31), n=st.integers(2, 30))
@settings(max_examples=30, deadline=None)
def test_against_networkx_and_triangle_inequality(seed, n):
    city, cost = random_city(seed, n, 3 * n, zero_share=0.0)
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    for k in range(city.n_links):
        u, v, c = int(city.link_from_idx[k]), int(city.link_to_idx[k]), float(cost[k])
        if not G.has_edge(u, v) or G[u][v]["w"] > c:
            G.add_edge(u, v, w=c)
    D = city.travel_times(city.node_ids)
    for s in range(n):
        ref = nx.single_source_dijkstra_path_length(G, s, weight="w")
        row = np.full(n, np.inf)
        row[list(ref)] = list(ref.values())
        np.testing.assert_allclose(D[s], row, rtol=RTOL)
    # triangle inequality d(a,c) <= d(a,b) + d(b,c)
    with np.errstate(invalid="ignore"):
        assert np.all(D[:, None, :] <= D[:, :, None] + D[None, :, :] + 1e-9)


def test_shortest_path_tree_predecessors_rebuild_distances():
    city, cost = random_city(3, 50, 200, zero_share=0.0)
    dist, pred = city.shortest_path_tree(city.node_ids[0])
    for v in range(city.n_nodes):
        if v == 0 or np.isinf(dist[v]):
            assert pred[v] == -1
            continue
        k = pred[v]
        assert city.link_to_idx[k] == v
        np.testing.assert_allclose(dist[city.link_from_idx[k]] + cost[k], dist[v], rtol=RTOL)


def test_parallel_result_independent_of_thread_count():
    import numba

    city, cost = random_city(11, 400, 1600)
    full = city.travel_times(city.node_ids[:64])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = city.travel_times(city.node_ids[:64])
    finally:
        numba.set_num_threads(before)
    assert full.tobytes() == one.tobytes()


def test_edge_cases_single_node_self_loop_and_unreachable():
    raw = RawNetwork(name="tiny", source="test", node_ids=np.array([1, 2, 3]), x_m=np.zeros(3), y_m=np.zeros(3),
                     link_from_idx=np.array([0, 0]), link_to_idx=np.array([0, 1]), length_m=np.array([5.0, 5.0]),
                     free_speed_mps=np.array([1.0, 1.0]), lanes=np.ones(2), capacity_veh_per_h=np.ones(2))
    city = City.from_raw(raw)
    D = city.travel_times([1, 2, 3])
    np.testing.assert_array_equal(D, [[0, 5, np.inf], [np.inf, 0, np.inf], [np.inf, np.inf, 0]])
    assert city.path(1, 1).size == 0
    with pytest.raises(Exception, match="cannot be reached"):
        city.path(2, 1)
    assert np.isinf(city.path_cost(3, 1))


def test_early_stop_gives_the_same_targets():
    city, cost = random_city(5, 300, 1200)
    full = city.travel_times(city.node_ids[:10])
    some = city.travel_times(city.node_ids[:10], city.node_ids[[5, 7, 7, 299]])
    np.testing.assert_array_equal(some, full[:, [5, 7, 7, 299]])


def test_kernel_module_runs_without_jit_semantics():
    """The kernel's py_func (pure Python body) gives the same result as the compiled one."""
    city, cost = random_city(8, 30, 90)
    n, m = city.n_nodes, city.n_links
    args = (city.fwd_indptr, city.fwd_head, cost[city.fwd_link], city.fwd_link, city.no_through, 0,
            np.zeros(n, dtype=bool), n + 1)
    d1, p1 = np.empty(n), np.empty(n, dtype=np.int64)
    d2, p2 = np.empty(n), np.empty(n, dtype=np.int64)
    routing.dijkstra_sssp(*args, d1, p1, np.empty(m + 1), np.empty(m + 1, dtype=np.int64))
    # py_func is the plain Python body (under NUMBA_DISABLE_JIT the kernel already is)
    py_func = getattr(routing.dijkstra_sssp, "py_func", routing.dijkstra_sssp)
    py_func(*args, d2, p2, np.empty(m + 1), np.empty(m + 1, dtype=np.int64))
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize("n_origins", [3, 300])
def test_tree_routes_serial_equals_parallel(n_origins, monkeypatch):
    """The traffic's routes are the same whether the trees are searched on the calling thread
    (``tree_routes_serial``, one pass) or in numba's threads (``tree_routes``, two passes), and each is a least-cost
    walk from its origin to its destination (cost equal to the many-to-many search's)."""
    import twin.traffic_routes as TR

    city, cost = random_city(5, 500, 2500, no_through_share=0.2)
    rng = np.random.default_rng(n_origins)
    o = rng.choice(city.n_nodes, size=n_origins, replace=n_origins > city.n_nodes)
    o = np.repeat(o, 3)
    d = rng.integers(0, city.n_nodes, size=len(o))
    keep = o != d
    o, d = o[keep], d[keep]
    got = {}
    for mode in ("serial", "parallel"):
        monkeypatch.setattr(TR, "_search_serially", lambda n: mode == "serial")
        got[mode] = TR._routes(city, o, d, link_cost_s=cost)
    for a, b in zip(got["serial"], got["parallel"]):
        np.testing.assert_array_equal(a, b)
    off, links, unroutable = got["serial"]
    best = city.travel_times(city.node_ids[o], city.node_ids[d], link_cost_s=cost)
    best = best[np.arange(len(o)), np.arange(len(o))] if best.ndim == 2 else best
    for t in range(len(o)):
        r = links[off[t]:off[t + 1]]
        if unroutable[t]:
            assert not np.isfinite(best[t])
            continue
        assert city.link_from_idx[r[0]] == o[t] and city.link_to_idx[r[-1]] == d[t]
        assert (city.link_to_idx[r[:-1]] == city.link_from_idx[r[1:]]).all()
        assert cost[r].sum() == pytest.approx(best[t], rel=1e-12, abs=1e-9)
