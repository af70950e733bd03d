"""The quickest evacuation a network allows: a lower bound on clearance time by a time-expanded flow.

Evacuees wait at nodes at time 0; shelters (optionally with a capacity) take them in. Time is cut
into steps of ``step_s``. Each link ``a`` admits at most ``capacity_veh_per_h[a] * step_s / 3600``
evacuees a step and delivers them ``k_a`` steps later, ``k_a = floor(free_flow_time_s[a] /
step_s)`` (rounded *down*, so the bound stays a bound; exact when transit times are whole steps);
evacuees may wait at any node without limit. This is the fluid model of the quickest
transshipment problem on the time-expanded network (Ford & Fulkerson 1958; Hoppe & Tardos
2000): units entering a link during step ``t`` leave it during step ``t + k_a``, so the last
evacuee is in by the end of the step in which the last ones arrive. A single bottleneck of
capacity ``c`` and transit ``tau`` clears ``N`` evacuees at exactly ``tau + N / c``.

It ignores what the traffic model adds — storage and spillback, merges, signals, route choice,
departure times — so a simulated clearance on the same network is at least this bound (less
one vehicle's headway); the gap is what routing and behaviour cost against the physical limit.

Solved as maximum flows on the time-expanded network (Dinic's algorithm,
:func:`scipy.sparse.csgraph.maximum_flow`): the most evacuees that can be at shelters by the end
of step ``t`` is the maximum flow of the network expanded to ``t`` steps. With a single (super)
sink an *earliest arrival* flow exists (Gale 1959; several sources: Baumann & Skutella 2009),
which achieves those maxima at every ``t`` at once, so the time by which a share ``p`` can be
sheltered is the least ``t`` whose maximum flow reaches ``p`` — a bisection over ``t`` — and
the quickest clearance is that time for everyone. Flows are integers in thousandths of an
evacuee, link capacities rounded up (the bound never rises by the rounding).

Examples
--------
>>> import networkx as nx, twin
>>> G = nx.DiGraph()
>>> G.add_node(1, x=0.0, y=0.0); G.add_node(2, x=600.0, y=0.0)
>>> G.add_edge(1, 2, length_m=600.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=3600.0)
>>> b = quickest_clearance(twin.load_city(G), {1: 300}, [2], step_s=60.0)
>>> b.clearance_s                      # 60 s to drive + 300 evacuees at 1 a second
360.0
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from twin.errors import InfeasibleError, OptimisationError, UnknownNodeError

__all__ = ["ClearanceBound", "quickest_clearance"]


@dataclass(frozen=True)
class ClearanceBound:
    """The quickest clearance of a network and the flow that achieves it.

    Attributes
    ----------
    clearance_s : float
        Time by which every evacuee can be at a shelter, seconds (the lower bound).
    step_s : float
        Time step of the expanded network, seconds.
    arrived : ndarray of float64, shape (n_steps,)
        Evacuees arriving at shelters during each step, in the plan ``link_flow`` describes (a
        flow that clears by ``clearance_s``; its earlier shares need not be the earliest).
    cleared_share_s : dict
        Earliest time (s) by which 50, 90, 95 and 100 % can be sheltered: ``{50: ..., ...}``.
    link_flow : ndarray of float64, shape (n_steps, n_links)
        Evacuees entering each link in each step: a route plan that achieves the bound.
    shelter_arrivals : ndarray of float64, shape (n_shelters,)
        Evacuees each shelter takes in.
    n_evacuees : float
    solve_time_s : float
        Wall time of the maximum flows, seconds.
    """

    clearance_s: float
    step_s: float
    arrived: np.ndarray
    cleared_share_s: dict
    link_flow: np.ndarray
    shelter_arrivals: np.ndarray
    n_evacuees: float
    solve_time_s: float


def _node_index(city, node, what):
    try:
        return int(np.asarray(city.node_index(node)).reshape(-1)[0])
    except UnknownNodeError:
        raise OptimisationError(f"{what} {node!r}: not a node of city '{city.name}'") from None


def _inputs(city, evacuees, shelters, shelter_capacity, step_s, closed):
    if not (isinstance(step_s, (int, float)) and math.isfinite(step_s) and step_s > 0):
        raise OptimisationError(f"step_s = {step_s!r}; expected a positive number of seconds")
    if not isinstance(evacuees, dict) or not evacuees:
        raise OptimisationError("evacuees: expected a non-empty {node id: persons} mapping")
    supply = np.zeros(city.n_nodes)
    for node, n in evacuees.items():
        if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or not (
                math.isfinite(n) and n >= 0):
            raise OptimisationError(f"evacuees at node {node!r}: {n!r}; expected a finite count >= 0")
        supply[_node_index(city, node, "evacuee node")] += float(n)
    shelters = list(shelters)
    if not shelters:
        raise OptimisationError("shelters: expected at least one shelter node")
    sh = np.array([_node_index(city, s, "shelter node") for s in shelters], dtype=np.int64)
    if len(set(sh.tolist())) != len(sh):
        raise OptimisationError(f"shelters: a node is listed twice in {shelters}")
    cap = np.full(len(sh), np.inf)
    if shelter_capacity is not None:
        cap = np.asarray(shelter_capacity, dtype=np.float64)
        if cap.shape != (len(sh),) or np.any(np.isnan(cap) | (cap < 0)):
            raise OptimisationError(f"shelter_capacity: expected {len(sh)} capacities >= 0, one per shelter")
    supply[sh] = 0.0                                  # evacuees already at a shelter are safe
    open_ = np.ones(city.n_links, dtype=bool)
    if closed is not None:
        idx = np.asarray(list(closed), dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= city.n_links):
            raise OptimisationError(f"closed: link indices must be in 0..{city.n_links - 1}; found {idx.tolist()[:5]}")
        open_[idx] = False
    return supply, sh, cap, open_


#: Flows are integers for the max-flow solver: evacuees and capacities in 1/SCALE units, link
#: capacities rounded *up* (so the bound stays a bound; the error is at most 1/SCALE a step).
SCALE = 1000


class _Expanded:
    """The time-expanded network of a city over ``n_steps`` steps, as a max-flow graph."""

    def __init__(self, city, supply, sh, cap, open_, step_s, n_steps):
        n, T = city.n_nodes, int(n_steps)
        links = np.flatnonzero(open_)
        k = np.floor(np.asarray(city.free_flow_time_s)[links] / step_s).astype(np.int64)
        per_step = np.ceil(np.asarray(city.capacity_veh_per_h)[links] * step_s / 3600.0 * SCALE).astype(np.int64)
        tail, head = np.asarray(city.link_from_idx)[links], np.asarray(city.link_to_idx)[links]
        total = int(np.round(supply * SCALE).sum())
        big = max(total, 1)
        # vertices: (v, t) = v * (T + 1) + t; then the source, one collector per shelter, the sink
        node = lambda v, t: v * (T + 1) + t                                                     # noqa: E731
        src, col0 = n * (T + 1), n * (T + 1) + 1
        sink = col0 + len(sh)
        lj, lt = [a.ravel() for a in np.meshgrid(np.arange(len(links)), np.arange(T + 1), indexing="ij")]
        keep = lt + k[lj] <= T
        lj, lt = lj[keep], lt[keep]
        hv, ht = [a.ravel() for a in np.meshgrid(np.arange(n), np.arange(T), indexing="ij")]
        sv, st = [a.ravel() for a in np.meshgrid(np.arange(len(sh)), np.arange(T + 1), indexing="ij")]
        srcs = np.flatnonzero(supply > 0)
        scap = np.where(np.isfinite(cap), np.ceil(np.minimum(cap, 1e15) * SCALE), big).astype(np.int64)
        self.u = np.concatenate([np.full(len(srcs), src), node(tail[lj], lt), node(hv, ht), node(sh[sv], st),
                                 col0 + np.arange(len(sh))])
        self.v = np.concatenate([node(srcs, 0), node(head[lj], lt + k[lj]), node(hv, ht + 1), col0 + sv,
                                 np.full(len(sh), sink)])
        self.c = np.concatenate([np.round(supply[srcs] * SCALE).astype(np.int64), per_step[lj], np.full(len(hv), big),
                                 np.full(len(sv), big), np.minimum(scap, big)])
        self.n_vertices, self.src, self.sink, self.total = sink + 1, src, sink, total
        self.n_src, self.n_link = len(srcs), len(lj)
        self.link_cols = (links[lj], lt)
        self.arrival = (len(srcs) + len(lj) + len(hv), sv, st)

    def solve(self):
        """The maximum flow into the shelters by the last step, and the flow on every arc."""
        from scipy.sparse import coo_array
        from scipy.sparse.csgraph import maximum_flow

        if self.c.max(initial=0) > np.iinfo(np.int32).max:
            raise OptimisationError(f"quickest_clearance: {self.total / SCALE:g} evacuees are more than the solver's "
                                    f"integer flows hold; split the problem")
        # parallel arcs (parallel links) are summed by the sparse matrix, as max flow wants them
        g = coo_array((self.c.astype(np.int32), (self.u, self.v)), shape=(self.n_vertices,) * 2).tocsr()
        res = maximum_flow(g, self.src, self.sink, method="dinic")
        return res.flow_value, res.flow

    def arc_flows(self, flow):
        """Flow on each arc of the graph, in arc order: the solver's net flow between the arc's
        two vertices (its flows are skew-symmetric: only the forward, positive part counts),
        shared by parallel arcs in proportion to their capacities."""
        f = flow.tocsr()
        pair = np.maximum(np.asarray(f[self.u, self.v]).ravel().astype(np.float64), 0.0)
        key = self.u.astype(np.int64) * self.n_vertices + self.v
        _, inv = np.unique(key, return_inverse=True)
        pair_cap = np.bincount(inv, weights=self.c.astype(np.float64))
        return pair * self.c / np.maximum(pair_cap[inv], 1.0)


def _horizon(city, supply, sh, cap, open_, step_s):
    """A first horizon (steps): the farthest evacuee's transit plus everyone through the links
    into the shelters at their capacity; doubled by the caller while too short."""
    cost = np.where(open_, np.asarray(city.free_flow_time_s), np.inf)
    src = np.flatnonzero(supply > 0)
    ids = np.asarray(city.node_ids)
    reach = city.travel_times(ids[src], ids[sh], link_cost_s=cost).min(axis=1)
    if not np.all(np.isfinite(reach)):
        bad = ids[src[np.flatnonzero(~np.isfinite(reach))[0]]]
        raise InfeasibleError(f"evacuees at node {bad!r} cannot reach any shelter (closed or missing links)")
    rate = _intake_per_step(city, sh, open_, step_s)
    return max(2, int(math.ceil(float(reach.max()) / step_s)) + int(math.ceil(supply.sum() / max(rate, 1e-9))) + 2)


def _intake_per_step(city, sh, open_, step_s):
    """The most evacuees the shelters can take in during one step: the capacities of the open
    links into them."""
    into = open_ & np.isin(np.asarray(city.link_to_idx), sh)
    return float(np.asarray(city.capacity_veh_per_h)[into].sum()) * step_s / 3600.0


def _check_room_in_reach(city, supply, sh, cap, open_):
    """InfeasibleError unless everyone can reach a shelter with room, time aside (one static
    maximum flow), so an impossible evacuation never searches ever longer horizons."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import maximum_flow

    n = city.n_nodes
    total = int(np.round(supply * SCALE).sum())
    links = np.flatnonzero(open_)
    src, col0 = n, n + 1
    sink = col0 + len(sh)
    srcs = np.flatnonzero(supply > 0)
    scap = np.where(np.isfinite(cap), np.floor(np.minimum(cap, 1e15) * SCALE), total).astype(np.int64)
    u = np.concatenate([np.full(len(srcs), src), np.asarray(city.link_from_idx)[links], sh, col0 + np.arange(len(sh))])
    v = np.concatenate([srcs, np.asarray(city.link_to_idx)[links], col0 + np.arange(len(sh)), np.full(len(sh), sink)])
    c = np.concatenate([np.round(supply[srcs] * SCALE), np.full(len(links), total), np.full(len(sh), total),
                        np.minimum(scap, total)]).astype(np.int64)
    g = coo_array((np.minimum(c, np.iinfo(np.int32).max).astype(np.int32), (u, v)), shape=(sink + 1,) * 2).tocsr()
    got = maximum_flow(g, src, sink, method="dinic").flow_value
    if got < total:
        raise InfeasibleError(f"quickest_clearance: only {got / SCALE:g} of {total / SCALE:g} evacuees can reach a "
                              f"shelter with room (the others are cut off, or the shelters they reach are full)")


def quickest_clearance(city, evacuees, shelters, *, shelter_capacity=None, step_s=60.0, closed=None,
                       max_steps=100_000) -> ClearanceBound:
    """Lower bound on the time to bring every evacuee to a shelter (see the module docstring).

    Parameters
    ----------
    city : City
    evacuees : dict of node id -> float
        Evacuees (vehicles or persons, in the units of the link capacities) waiting at each
        node at time 0.
    shelters : sequence of node ids
    shelter_capacity : sequence of float, optional
        Most evacuees each shelter takes (``inf``: no limit).
    step_s : float
        Time step, seconds; transit times are rounded down to whole steps.
    closed : sequence of link indices, optional
        Links that carry nobody (a flood's closures).
    max_steps : int
        Give up (InfeasibleError) beyond this horizon.

    Raises
    ------
    OptimisationError
        Bad input (unknown nodes, negative counts, a shelter listed twice ...).
    InfeasibleError
        Some evacuees cannot reach any shelter with room (disconnected by closures, or more
        evacuees than shelter places), or not within ``max_steps``.
    """
    supply, sh, cap, open_ = _inputs(city, evacuees, shelters, shelter_capacity, step_s, closed)
    total = float(supply.sum())
    if total > float(np.sum(cap)) + 1e-9:
        raise InfeasibleError(f"{total:g} evacuees but {float(np.sum(cap)):g} shelter places")
    t0 = time.perf_counter()
    if total == 0:
        return ClearanceBound(0.0, float(step_s), np.zeros(1), {p: 0.0 for p in (50, 90, 95, 100)},
                              np.zeros((1, city.n_links)), np.zeros(len(sh)), 0.0, 0.0)
    hi = min(_horizon(city, supply, sh, cap, open_, step_s), max_steps)     # names an evacuee cut off
    _check_room_in_reach(city, supply, sh, cap, open_)
    while True:                                   # a horizon that holds everyone
        net = _Expanded(city, supply, sh, cap, open_, step_s, hi)
        value, flow = net.solve()
        if value >= net.total:
            break
        if hi >= max_steps:
            raise InfeasibleError(f"quickest_clearance: not everyone reaches a shelter within {hi} steps of "
                                  f"{step_s:g} s")
        hi = min(2 * hi, max_steps)
    cache = {}

    def arrived_by(steps):                        # the most that can be in by the end of layer `steps`
        if steps < 0:
            return 0
        if steps not in cache:
            cache[steps] = _Expanded(city, supply, sh, cap, open_, step_s, steps).solve()[0]
        return cache[steps]

    shares, last = {}, hi
    for pct in (50, 90, 95, 100):                 # earliest arrival: each share by its own search
        need = int(math.ceil(net.total * pct / 100.0))
        lo, up = -1, hi                           # arrived_by(lo) < need <= arrived_by(up)
        while up - lo > 1:
            mid = (lo + up) // 2
            lo, up = (lo, mid) if arrived_by(mid) >= need else (mid, up)
        # arrivals in layer `up` start no earlier than up * step (transits rounded down) and come
        # in at most at the step's largest arrival (spread evenly over the step, as the fluid
        # steps assume): the rest of the share needs that share of the step
        rest = need - arrived_by(up - 1)
        most = arrived_by(up) - arrived_by(up - 1)
        shares[pct] = float(up * step_s + step_s * min(1.0, rest / max(most, 1)))
        if pct == 100:
            last = up
    net = _Expanded(city, supply, sh, cap, open_, step_s, last)
    value, flow = net.solve()
    arcs = net.arc_flows(flow) / SCALE
    links, lt = net.link_cols
    link_flow = np.zeros((last + 1, city.n_links))
    np.add.at(link_flow, (lt, links), arcs[net.n_src:net.n_src + net.n_link])
    start, sv, st = net.arrival
    into = arcs[start:start + len(sv)]
    arrived = np.bincount(st, weights=into, minlength=last + 1)[:last + 1]
    return ClearanceBound(clearance_s=shares[100], step_s=float(step_s), arrived=arrived, cleared_share_s=shares,
                          link_flow=link_flow, shelter_arrivals=np.bincount(sv, weights=into, minlength=len(sh)),
                          n_evacuees=total, solve_time_s=time.perf_counter() - t0)
