"""Population kernels against their plain references (tests/kernels/reference_population.py).

Tolerance: exact. The kernels only compare and copy (no arithmetic beyond one midpoint, one
product and one elapsed fraction that the references compute the same way), so results must
agree bit for bit, and the parallel kernels must equal their serial ``py_func`` bodies. The
route trees of the on-route kernel come from the public ``City.shortest_path_tree``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import twin
from twin.kernels.population import choose_from_cumulative, locate_persons, locate_persons_on_routes

_spec = importlib.util.spec_from_file_location("reference_population", Path(__file__).with_name("reference_population.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

TRAVEL = 7


def serial(kernel):
    """The kernel's Python body (prange runs as range), or the kernel itself under NUMBA_DISABLE_JIT."""
    return getattr(kernel, "py_func", kernel)


def random_plans(rng, n_persons, max_acts=4):
    """Random time-consistent plans: home first (start 0) and last (end inf)."""
    lengths = rng.integers(1, max_acts + 1, n_persons)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    start = np.empty(indptr[-1])
    end = np.empty(indptr[-1])
    for p in range(n_persons):
        t = 0.0
        for k in range(indptr[p], indptr[p + 1]):
            start[k] = t if k > indptr[p] else 0.0
            t = start[k] + float(rng.integers(0, 4)) * 3600.0  # zero-length stays included
            end[k] = t if k < indptr[p + 1] - 1 else np.inf
            t = end[k] + float(rng.integers(0, 3)) * 900.0    # zero-time trips included
    node = rng.integers(0, 50, indptr[-1]).astype(np.int32)
    act = rng.integers(0, 7, indptr[-1]).astype(np.int8)
    return indptr, start, end, node, act


def run_locate(fn, t, plans):
    n = len(plans[0]) - 1
    node = np.empty(n, dtype=np.int32)
    act = np.empty(n, dtype=np.int8)
    trav = fn(t, *plans, TRAVEL, node, act)
    return node, act, trav


@pytest.mark.parametrize("t", [-5.0, 0.0, 900.0, 3600.0, 5400.0, 7200.0, 20000.0, 1e9])
def test_locate_matches_reference(t):
    plans = random_plans(np.random.default_rng(1), 300)
    node, act, trav = run_locate(locate_persons, t, plans)
    rnode, ract, rtrav = ref.locate_persons_reference(t, *plans, TRAVEL)
    np.testing.assert_array_equal(node, rnode)
    np.testing.assert_array_equal(act, ract)
    assert trav == rtrav
    snode, sact, strav = run_locate(serial(locate_persons), t, plans)
    np.testing.assert_array_equal(node, snode)
    np.testing.assert_array_equal(act, sact)


def test_locate_edges_single_activity_and_mid_trip():
    # person 0: home only; person 1: home until 100, trip 100..200, work until 300, trip 300..400, home.
    indptr = np.array([0, 1, 4], dtype=np.int64)
    start = np.array([0.0, 0.0, 200.0, 400.0])
    end = np.array([np.inf, 100.0, 300.0, np.inf])
    node = np.array([5, 5, 9, 5], dtype=np.int32)
    act = np.array([0, 0, 1, 0], dtype=np.int8)
    expect = {50.0: (9999, 0), 100.0: (5, TRAVEL), 149.0: (5, TRAVEL), 150.0: (9, TRAVEL), 200.0: (9, 1),
              299.9: (9, 1), 350.0: (5, TRAVEL), 400.0: (5, 0), 1e7: (5, 0)}
    for t, (n1, a1) in expect.items():
        n, a, _ = run_locate(locate_persons, t, (indptr, start, end, node, act))
        assert (n[0], a[0]) == (5, 0)
        if n1 != 9999:
            assert (n[1], a[1]) == (n1, a1), t
        else:
            assert (n[1], a[1]) == (5, 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 40))
def test_choose_matches_reference(seed, n_rows, n_cols):
    rng = np.random.default_rng(seed)
    w = rng.random((n_rows, n_cols)) * (rng.random((n_rows, n_cols)) < 0.6)
    w[:, rng.integers(0, n_cols)] += 0.5  # every row has some weight
    cum = np.cumsum(w, axis=1)
    rows = rng.integers(0, n_rows, 200)
    u = rng.random(200)
    u[:3] = [0.0, 0.999999999, 0.5]
    out = np.empty(200, dtype=np.int32)
    choose_from_cumulative(cum, rows, u, out)
    np.testing.assert_array_equal(out, ref.choose_from_cumulative_reference(cum, rows, u))
    assert (w[rows, out] > 0).all(), "a zero-weight column was chosen"
    serial_out = np.empty(200, dtype=np.int32)
    serial(choose_from_cumulative)(cum, rows, u, serial_out)
    np.testing.assert_array_equal(out, serial_out)


def test_choose_frequencies_follow_weights():
    """Chi-square-free check: 200k draws within 4 binomial sigmas of the weights."""
    w = np.array([[1.0, 0.0, 3.0, 6.0]])
    n = 200_000
    u = np.random.default_rng(3).random(n)
    out = np.empty(n, dtype=np.int32)
    choose_from_cumulative(np.cumsum(w, axis=1), np.zeros(n, dtype=np.int64), u, out)
    p = w[0] / w.sum()
    freq = np.bincount(out, minlength=4) / n
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12)


def city_trees(city):
    """Trees as locate_persons_on_routes takes them, from City.shortest_path_tree: [0] car time, [1] length."""
    n = city.n_nodes
    dist = np.empty((2, n, n))
    pred = np.empty((2, n, n), dtype=np.int32)
    for kind, cost in enumerate((None, city.length_m)):
        for r in range(n):
            dist[kind, r], pl = city.shortest_path_tree(city.node_ids[r], link_cost_s=cost)
            pred[kind, r] = np.where(pl >= 0, city.link_from_idx[np.maximum(pl, 0)], -1)
    return np.arange(n, dtype=np.int64), dist, pred


@pytest.fixture(scope="module")
def grid_trees():
    city = twin.load_city("grid:5x4")
    return city, city_trees(city)


def run_on_routes(fn, t, plans, modes, trees):
    n = len(plans[0]) - 1
    node = np.empty(n, dtype=np.int32)
    act = np.empty(n, dtype=np.int8)
    trav = fn(t, *plans, modes, TRAVEL, *trees[:1], np.array([0, 1, 1, 1], dtype=np.int64), *trees[1:], node, act)
    return node, act, trav


@pytest.mark.parametrize("t", [-5.0, 0.0, 450.0, 900.0, 3600.0, 4000.0, 5400.0, 7300.0, 20000.0, 1e9])
def test_locate_on_routes_matches_reference(grid_trees, t):
    city, trees = grid_trees
    rng = np.random.default_rng(5)
    indptr, start, end, node, act = random_plans(rng, 400)
    node = rng.integers(0, city.n_nodes, len(node)).astype(np.int32)
    modes = rng.integers(0, 4, len(node)).astype(np.int8)
    plans = (indptr, start, end, node, act)
    got = run_on_routes(locate_persons_on_routes, t, plans, modes, trees)
    want = ref.locate_persons_on_routes_reference(t, *plans, modes, TRAVEL, trees[0], np.array([0, 1, 1, 1]),
                                                  *trees[1:])
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    ser = run_on_routes(serial(locate_persons_on_routes), t, plans, modes, trees)
    for a, b in zip(got, ser):
        np.testing.assert_array_equal(a, b)
    # who travels and what they do elsewhere is exactly the plain kernel's answer
    plain = run_locate(locate_persons, t, plans)
    np.testing.assert_array_equal(got[1], plain[1])
    assert got[2] == plain[2]
    resting = got[1] != TRAVEL
    np.testing.assert_array_equal(got[0][resting], plain[0][resting])


def test_locate_on_routes_walks_the_path_in_order(grid_trees):
    """One car trip across the grid: origin at departure, then the path's nodes in order, never
    back; at arrival the destination."""
    city, trees = grid_trees
    o, d = 0, city.n_nodes - 1
    indptr = np.array([0, 2], dtype=np.int64)
    dep, arr = 1000.0, 1000.0 + trees[1][0, o, d]
    start = np.array([0.0, arr])
    end = np.array([dep, np.inf])
    node = np.array([o, d], dtype=np.int32)
    act = np.array([0, 1], dtype=np.int8)
    modes = np.array([-1, 0], dtype=np.int8)
    path_nodes = [o] + city.link_to_idx[city.path(city.node_ids[o], city.node_ids[d])].tolist()
    on_path = {o}
    seen = []
    for t in np.linspace(dep, arr, 200):
        n, a, trav = run_on_routes(locate_persons_on_routes, t, (indptr, start, end, node, act), modes, trees)
        seen.append(int(n[0]))
        if t < arr:
            assert a[0] == TRAVEL
    assert seen[0] == o and seen[-1] == d
    cost = trees[1][0, o]
    assert all(cost[u] <= cost[v] for u, v in zip(seen, seen[1:])), "moved backwards along the route"
    # every node visited lies on a least-cost path from o to d
    back = city.travel_times(city.node_ids, [city.node_ids[d]])[:, 0]
    np.testing.assert_allclose(cost[seen] + back[seen], cost[d], rtol=1e-12)
    assert len(set(seen)) >= len(path_nodes) // 2
