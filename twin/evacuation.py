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
departure times — so every simulated clearance on the same network is at least this bound; the
gap is what routing and behaviour cost against the physical limit.

The flow is one linear program (HiGHS through :func:`scipy.optimize.linprog`): minimise the sum
of arrival steps subject to conservation at every (node, step). With a single (super) sink an
*earliest arrival* flow exists (Gale 1959; multiple sources: Baumann & Skutella 2009) — it
maximises the arrivals by every step at once — so every optimum of this program is one, and its
last arrival is the quickest clearance. The horizon starts at an upper bound from the shortest
route's transit and doubles until every evacuee arrives.

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
        Evacuees arriving at shelters during each step (the earliest-arrival profile).
    cleared_share_s : dict
        Time (s) by which 50, 90, 95 and 100 % have arrived: ``{50: ..., 90: ..., ...}``.
    link_flow : ndarray of float64, shape (n_steps, n_links)
        Evacuees entering each link in each step: a route plan that achieves the bound.
    shelter_arrivals : ndarray of float64, shape (n_shelters,)
        Evacuees each shelter takes in.
    n_evacuees : float
    solve_time_s : float
        Wall time of the linear programs, seconds.
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
        open_[np.asarray(list(closed), dtype=np.int64)] = False
    return supply, sh, cap, open_


def _lp(city, supply, sh, cap, open_, step_s, n_steps):
    """The time-expanded program with ``n_steps`` steps; ``(result, columns)``."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_array

    n, T = city.n_nodes, n_steps
    links = np.flatnonzero(open_)
    k = np.floor(np.asarray(city.free_flow_time_s)[links] / step_s).astype(np.int64)
    per_step = np.asarray(city.capacity_veh_per_h)[links] * step_s / 3600.0
    tail, head = np.asarray(city.link_from_idx)[links], np.asarray(city.link_to_idx)[links]
    # link columns: (link j, step t) for t + k_j <= T - 1 (they arrive within the horizon)
    lj, lt = [a.ravel() for a in np.meshgrid(np.arange(len(links)), np.arange(T), indexing="ij")]
    keep = lt + k[lj] <= T - 1
    lj, lt = lj[keep], lt[keep]
    nx_ = len(lj)
    hv, ht = [a.ravel() for a in np.meshgrid(np.arange(n), np.arange(T - 1), indexing="ij")]   # waiting
    nh = len(hv)
    sv, st = [a.ravel() for a in np.meshgrid(np.arange(len(sh)), np.arange(T), indexing="ij")]  # into shelters
    ns = len(sv)
    row = lambda v, t: v * T + t                                                               # noqa: E731
    # conservation at (v, t): out - in = supply at t = 0
    r = np.concatenate([row(tail[lj], lt), row(head[lj], lt + k[lj]), row(hv, ht), row(hv, ht + 1),
                        row(sh[sv], st)])
    c = np.concatenate([np.arange(nx_), np.arange(nx_), nx_ + np.arange(nh), nx_ + np.arange(nh),
                        nx_ + nh + np.arange(ns)])
    d = np.concatenate([np.ones(nx_), -np.ones(nx_), np.ones(nh), -np.ones(nh), np.ones(ns)])
    a_eq = coo_array((d, (r, c)), shape=(n * T, nx_ + nh + ns)).tocsr()
    b_eq = np.zeros(n * T)
    b_eq[np.arange(n) * T] = supply
    a_ub = b_ub = None
    if np.isfinite(cap).any():
        fin = np.flatnonzero(np.isfinite(cap))
        rows = np.repeat(np.arange(len(fin)), T)
        cols = nx_ + nh + (fin[:, None] * T + np.arange(T)[None, :]).ravel()
        a_ub = coo_array((np.ones(len(cols)), (rows, cols)), shape=(len(fin), nx_ + nh + ns)).tocsr()
        b_ub = cap[fin]
    # arrival steps, plus a whisper of link use so no flow circles where it costs no time
    cost = np.concatenate([np.full(nx_, 1e-6), np.zeros(nh), st.astype(np.float64)])
    bounds = np.column_stack([np.zeros(nx_ + nh + ns), np.concatenate([per_step[lj], np.full(nh + ns, np.inf)])])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    return res, (links, lj, lt, nx_, nh, sv, st)


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
    cost = np.where(open_, np.asarray(city.free_flow_time_s), np.inf)
    if total > 0:
        src = np.flatnonzero(supply > 0)
        reach = city.travel_times(np.asarray(city.node_ids)[src], np.asarray(city.node_ids)[sh],
                                  link_cost_s=cost).min(axis=1)
        if not np.all(np.isfinite(reach)):
            bad = city.node_ids[src[np.flatnonzero(~np.isfinite(reach))[0]]]
            raise InfeasibleError(f"evacuees at node {bad!r} cannot reach any shelter (closed or missing links)")
        longest = float(reach.max())
    else:
        longest = 0.0
    cap_total = float(np.sum(np.asarray(city.capacity_veh_per_h)[open_])) * step_s / 3600.0
    n_steps = max(2, int(math.ceil(longest / step_s)) + int(math.ceil(total / max(cap_total, 1e-9))) + 2)
    spent = 0.0
    while True:
        t0 = time.perf_counter()
        res, cols = _lp(city, supply, sh, cap, open_, step_s, n_steps)
        spent += time.perf_counter() - t0
        if res.status == 0:
            break
        if res.status != 2 or n_steps >= max_steps:
            raise InfeasibleError(f"quickest_clearance: no evacuation within {n_steps} steps of {step_s:g} s "
                                  f"({res.message})")
        n_steps = min(2 * n_steps, max_steps)
    return _bound(city, res, cols, len(sh), n_steps, step_s, total, spent)


def _bound(city, res, cols, n_shelters, T, step_s, total, spent):
    links, lj, lt, nx_, nh, sv, st = cols
    x = res.x
    arrived = np.bincount(st, weights=x[nx_ + nh:], minlength=T)
    arrived[np.abs(arrived) < 1e-9] = 0.0
    cum = np.cumsum(arrived)
    shares = {}
    for pct in (50, 90, 95, 100):
        need = total * pct / 100.0 - 1e-6 * max(total, 1.0)
        hit = np.flatnonzero(cum >= need)
        shares[pct] = float((hit[0] + 1) * step_s) if total > 0 and len(hit) else 0.0
    flow = np.zeros((T, city.n_links))
    np.add.at(flow, (lt, links[lj]), x[:nx_])
    flow[np.abs(flow) < 1e-9] = 0.0
    return ClearanceBound(clearance_s=shares[100], step_s=float(step_s), arrived=arrived, cleared_share_s=shares,
                          link_flow=flow, shelter_arrivals=np.bincount(sv, weights=x[nx_ + nh:], minlength=n_shelters),
                          n_evacuees=total, solve_time_s=spent)
