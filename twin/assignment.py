"""Static user-equilibrium traffic assignment (Wardrop's first principle).

Model
-----
A fixed origin-destination (OD) demand, in vehicles/hour, is split over the paths of a
road graph so that no driver can lower their cost by changing path: every used path of an
OD pair costs the least (Wardrop 1952). Link travel times follow the BPR volume-delay
function ``t = t0 * (1 + alpha * (v / c) ** beta)`` (seconds; ``t0`` the free-flow time,
``c`` the capacity in vehicles/hour, ``City.bpr_alpha`` / ``City.bpr_beta``). A fixed
per-link generalised cost ``extra_cost_s`` (tolls and distance expressed in seconds) may
be added to the route choice cost; it is not part of the travel time or the TSTT.

The equilibrium is the minimiser of the Beckmann objective
``sum_a integral_0^{v_a} (t_a(x) + extra_a) dx`` over feasible link flows (Beckmann,
McGuire & Winsten 1956). It is found by the bi-conjugate Frank-Wolfe method ("bfw",
Mitradjieva & Lindberg 2013, *The stiff is moving — conjugate direction Frank-Wolfe
methods with applications to traffic assignment*, Transportation Science 47(2):280-293)
or by plain Frank-Wolfe ("fw", LeBlanc, Morlok & Pierskalla 1975), each with an exact line
search (safeguarded Newton on the directional derivative of the objective). Each
iteration runs one all-or-nothing loading (``twin.kernels.routing.all_or_nothing``: one
Dijkstra per origin, parallel over origins, thread-count independent).

Fidelity
--------
Static, link-based, deterministic UE: no queues, spill-back, time of day, junction delay
or route-choice noise; capacities are hourly and flows may exceed them (BPR penalises, it
does not forbid). Convergence is measured by the relative gap
``(sum_a v_a c_a - sum_od d_od SP_od) / sum_a v_a c_a`` at the current generalised costs
``c`` (the definition used by the TNTP reference figures in ``shared/data/README.md``).
Link flows converge more slowly than the objective, and the UE link flows are unique
only where every BPR cost is strictly increasing; path flows are not computed.
On the TNTP benchmarks (tests/validation/test_static_ue.py) BFW reaches a relative gap of
1e-4 in 10-100 iterations (plain FW: about 1000 on Sioux Falls). The Beckmann objective
is then within ``gap * sum(v c)`` of the optimum (a guaranteed bound), but the TSTT,
which is not the minimised objective, is off by 2e-4 to 6e-4 relative; at gap 1e-6 (Sioux
Falls, Anaheim) or 1e-5 (Chicago-Sketch) it is within 4e-5 of the best-known value.

The all-or-nothing kernel keeps one link-flow buffer per origin chunk (at most 32
chunks), i.e. up to ``32 * n_links * 8`` bytes of work memory per iteration.

Routes never pass through ``City.no_through`` nodes (TNTP centroids).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from twin.errors import NetworkError, ScenarioError
from twin.graph import City

__all__ = [
    "AssignmentResult",
    "static_assignment",
    "tntp_demand",
    "bpr_travel_time_s",
    "beckmann_objective",
]

logger = logging.getLogger(__name__)

#: Origins are loaded in this many chunks (fewer if there are fewer origins). Fixed, so
#: results do not depend on the thread count; 32 keeps 16 threads busy.
_N_CHUNKS = 32

#: Log a progress line every this many iterations.
_LOG_EVERY = 25

METHODS = ("bfw", "fw")


@dataclass(frozen=True, eq=False)
class AssignmentResult:
    """Outcome of :func:`static_assignment`. Arrays are read-only, in link order.

    Attributes
    ----------
    flow_veh_per_h : ndarray of float64, shape (n_links,)
        Equilibrium link flows, vehicles/hour.
    cost_s : ndarray of float64, shape (n_links,)
        BPR travel time of each link at those flows, seconds (without ``extra_cost_s``).
    tstt_veh_s : float
        Total system travel time ``sum(flow * cost_s)``, vehicle-seconds per hour of
        demand (time only; ``extra_cost_s`` is not included).
    beckmann : float
        Beckmann objective ``sum integral_0^v (t + extra) dx`` at the final flows,
        vehicle-seconds per hour (``extra_cost_s`` included).
    rel_gap : float
        Relative gap of the final flows at their own costs (dimensionless).
    gap_history : ndarray of float64, shape (iterations + 1,)
        Relative gap of the flows at the start of each iteration; the last entry is
        ``rel_gap``.
    iterations : int
        Line-search updates made after the initial all-or-nothing loading.
    converged : bool
        Whether ``rel_gap <= `` the requested gap.
    method : str
        "bfw" or "fw".
    n_od_pairs : int
        OD pairs assigned (after merging duplicates and dropping zero and intrazonal rows).
    intrazonal_dropped_pairs : int
        Rows with ``origin == destination`` and positive demand, left out.
    intrazonal_dropped_veh_per_h : float
        Their total demand, vehicles/hour.
    """

    flow_veh_per_h: np.ndarray
    cost_s: np.ndarray
    tstt_veh_s: float
    beckmann: float
    rel_gap: float
    gap_history: np.ndarray
    iterations: int
    converged: bool
    method: str
    n_od_pairs: int
    intrazonal_dropped_pairs: int
    intrazonal_dropped_veh_per_h: float

    def __repr__(self):
        return (f"AssignmentResult(method={self.method!r}, iterations={self.iterations}, "
                f"rel_gap={self.rel_gap:.3e}, converged={self.converged}, tstt_veh_s={self.tstt_veh_s:.6g})")


# ---------------------------------------------------------------------- link costs
def _bpr(t0, alpha, beta, cap, v):
    return t0 * (1.0 + alpha * np.power(v / cap, beta))


def _bpr_derivative(t0, alpha, beta, cap, v):
    """dt/dv in s per veh/h; 0 where it is undefined (v = 0 with beta < 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = t0 * alpha * beta * np.power(v / cap, beta - 1.0) / cap
    return np.where(np.isfinite(d), d, 0.0)


def _bpr_integral(t0, alpha, beta, cap, v):
    return t0 * (v + alpha * cap * np.power(v / cap, beta + 1.0) / (beta + 1.0))


def bpr_travel_time_s(city: City, flow_veh_per_h) -> np.ndarray:
    """BPR link travel times at given flows, seconds.

    Parameters
    ----------
    city : City
    flow_veh_per_h : array_like of float64, shape (n_links,)
        Link flows, vehicles/hour, ``>= 0``.

    Returns
    -------
    ndarray of float64, shape (n_links,)
        ``t0 * (1 + alpha * (v / c) ** beta)`` with ``City.free_flow_time_s``,
        ``bpr_alpha``, ``bpr_beta`` and ``capacity_veh_per_h``.

    Raises
    ------
    NetworkError
        Wrong shape, or a NaN or negative flow.

    Examples
    --------
    >>> import twin
    >>> city = twin.load_city("grid:3x3")
    >>> t = bpr_travel_time_s(city, city.capacity_veh_per_h)   # v = c: t0 * 1.15
    >>> bool(np.allclose(t, 1.15 * city.free_flow_time_s))
    True
    """
    v = _checked_link_array(city, flow_veh_per_h, "flow_veh_per_h")
    return _bpr(city.free_flow_time_s, city.bpr_alpha, city.bpr_beta, city.capacity_veh_per_h, v)


def beckmann_objective(city: City, flow_veh_per_h, extra_cost_s=None) -> float:
    """Beckmann objective ``sum_a integral_0^{v_a} (t_a(x) + extra_a) dx``, vehicle-seconds/hour.

    Parameters
    ----------
    city : City
    flow_veh_per_h : array_like of float64, shape (n_links,)
        Link flows, vehicles/hour, ``>= 0``.
    extra_cost_s : array_like of float64, shape (n_links,), optional
        Fixed generalised cost per link, seconds (see :func:`static_assignment`).

    Raises
    ------
    NetworkError
        Wrong shape, or a NaN or negative entry.
    """
    v = _checked_link_array(city, flow_veh_per_h, "flow_veh_per_h")
    extra = _checked_link_array(city, extra_cost_s, "extra_cost_s") if extra_cost_s is not None else 0.0
    return float(np.sum(_bpr_integral(city.free_flow_time_s, city.bpr_alpha, city.bpr_beta,
                                      city.capacity_veh_per_h, v) + extra * v))


def _checked_link_array(city, values, name):
    a = np.asarray(values, dtype=np.float64)
    if a.shape != (city.n_links,):
        raise NetworkError(f"{name} has shape {a.shape}; expected ({city.n_links},), one value per link in link "
                           f"order of city {city.name!r}")
    bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
    if len(bad):
        k = bad[0]
        raise NetworkError(f"{name}[{k}] = {a[k]} (link {_id(city.node_ids[city.link_from_idx[k]])}->"
                           f"{_id(city.node_ids[city.link_to_idx[k]])}); expected a finite value >= 0")
    return a


# ---------------------------------------------------------------------- demand
def tntp_demand(city: City, trips: dict) -> dict:
    """Turn a TNTP trip table into a demand table on the city's node ids.

    Parameters
    ----------
    city : City
        A city whose zones each have exactly one node (TNTP: zone ``z`` is node ``z``).
    trips : dict
        As returned by :func:`twin.data.tntp.read_tntp_trips`.

    Returns
    -------
    dict
        ``origin``, ``destination`` (external node ids, int64) and ``demand_veh_per_h``
        (float64), ready for :func:`static_assignment`.

    Raises
    ------
    NetworkError
        A zone id of the table is not a zone of the city, or a zone has no node or
        more than one.
    """
    n_z = city.n_zones
    counts = np.bincount(city.zone_of_node[city.zone_of_node >= 0], minlength=n_z)
    zone_ids = np.asarray(city.zone_ids)
    node_of_zone = np.full(n_z, -1, dtype=np.int64)
    has = city.zone_of_node >= 0
    node_of_zone[city.zone_of_node[has]] = np.flatnonzero(has)
    out = {}
    for key, col in (("origin", "origin_zone"), ("destination", "destination_zone")):
        z = np.asarray(trips[col], dtype=np.int64)
        pos = np.minimum(np.searchsorted(zone_ids, z), max(n_z - 1, 0)) if n_z else np.zeros(len(z), np.int64)
        bad = np.flatnonzero((zone_ids[pos] != z) if n_z else np.ones(len(z), dtype=bool))
        if len(bad):
            raise NetworkError(f"trip table zone {int(z[bad[0]])} ({col}) is not a zone of city {city.name!r} "
                               f"(zones {zone_ids[:1].tolist()}..{zone_ids[-1:].tolist()})")
        wrong = np.flatnonzero(counts[pos] != 1)
        if len(wrong):
            zz = int(pos[wrong[0]])
            raise NetworkError(f"zone {zone_ids[zz]} of city {city.name!r} has {int(counts[zz])} nodes; a trip table "
                               f"needs exactly one node (centroid) per zone")
        out[key] = np.asarray(city.node_ids)[node_of_zone[pos]]
    out["demand_veh_per_h"] = np.asarray(trips["demand_veh_per_h"], dtype=np.float64).copy()
    return out


def _od_table(city, demand):
    """Checked CSR OD table: (origins, offsets, dest_nodes, demand, n_intrazonal, intrazonal_veh_per_h)."""
    try:
        o_ids, d_ids, q = demand["origin"], demand["destination"], demand["demand_veh_per_h"]
    except (KeyError, TypeError, IndexError):
        raise ScenarioError("demand must be a dict or DataFrame with columns 'origin', 'destination' (node ids) "
                            f"and 'demand_veh_per_h'; got {type(demand).__name__}"
                            + (f" with keys {sorted(map(str, demand.keys()))}" if hasattr(demand, "keys") else "")
                            ) from None
    q = np.atleast_1d(np.asarray(q, dtype=np.float64))
    o_ids = np.atleast_1d(np.asarray(o_ids))
    d_ids = np.atleast_1d(np.asarray(d_ids))
    if not (len(o_ids) == len(d_ids) == len(q)) or q.ndim != 1:
        raise ScenarioError(f"demand columns differ in length: origin {len(o_ids)}, destination {len(d_ids)}, "
                            f"demand_veh_per_h {len(q)}; expected one row per OD pair")
    bad = np.flatnonzero(~np.isfinite(q) | (q < 0))
    if len(bad):
        k = bad[0]
        raise ScenarioError(f"demand row {k} ({_id(o_ids[k])!r} -> {_id(d_ids[k])!r}): demand_veh_per_h = {q[k]}; expected a "
                            f"finite number >= 0 vehicles/hour")
    o = city.node_index(o_ids) if len(o_ids) else np.zeros(0, np.int64)
    d = city.node_index(d_ids) if len(d_ids) else np.zeros(0, np.int64)
    intra = (o == d) & (q > 0)
    n_intra, q_intra = int(intra.sum()), float(q[intra].sum())
    if n_intra:
        logger.info("static_assignment: dropped %d intrazonal OD rows (origin == destination), %.6g veh/h",
                    n_intra, q_intra)
    keep = (q > 0) & (o != d)
    o, d, q = o[keep], d[keep], q[keep]
    # Merge duplicate pairs: sort by (origin, destination), stable, so sums have a fixed order.
    order = np.lexsort((d, o))
    o, d, q = o[order], d[order], q[order]
    if len(o):
        start = np.ones(len(o), dtype=bool)
        start[1:] = (o[1:] != o[:-1]) | (d[1:] != d[:-1])
        idx = np.flatnonzero(start)
        q = np.add.reduceat(q, idx)
        o, d = o[idx], d[idx]
    origins, first = np.unique(o, return_index=True)
    offsets = np.append(first, len(o)).astype(np.int64)
    return origins.astype(np.int64), offsets, d.astype(np.int64), q, n_intra, q_intra


# ---------------------------------------------------------------------- solver
class _Problem:
    """Arrays of one assignment, and the all-or-nothing loading at given link costs."""

    def __init__(self, city, origins, offsets, dest, q, extra):
        self.city = city
        self.t0 = np.asarray(city.free_flow_time_s, dtype=np.float64)
        self.alpha = np.asarray(city.bpr_alpha, dtype=np.float64)
        self.beta = np.asarray(city.bpr_beta, dtype=np.float64)
        self.cap = np.asarray(city.capacity_veh_per_h, dtype=np.float64)
        self.extra = extra
        self.origins, self.offsets, self.dest, self.q = origins, offsets, dest, q
        self.n_chunks = min(_N_CHUNKS, max(1, len(origins)))
        self.sp = np.empty(len(dest))

    def time(self, v):
        return _bpr(self.t0, self.alpha, self.beta, self.cap, v)

    def cost(self, v):
        return self.time(v) + self.extra

    def aon(self, cost):
        """(AON link flows, sum of demand x least cost, pairs without a path)."""
        from twin.kernels.routing import all_or_nothing

        c = self.city
        y = np.empty(c.n_links)
        n_bad = all_or_nothing(c.fwd_indptr, c.fwd_head, np.ascontiguousarray(cost[c.fwd_link]), c.fwd_link,
                               c.no_through, c.link_from_idx, self.origins, self.offsets, self.dest, self.q,
                               self.n_chunks, y, self.sp)
        return y, float(np.dot(self.q, self.sp)) if n_bad == 0 else np.inf, n_bad

    def unreachable_message(self):
        bad = np.flatnonzero(np.isinf(self.sp))
        orig_of = np.repeat(self.origins, np.diff(self.offsets))
        ids = self.city.node_ids
        k = bad[0]
        return (f"static_assignment: no path from node {_id(ids[orig_of[k]])!r} to node {_id(ids[self.dest[k]])!r} in city "
                f"{self.city.name!r} (demand {self.q[k]:g} veh/h); {len(bad)} OD pair(s) with demand are unreachable "
                f"(routes never pass through no-through/centroid nodes)")

    def line_search(self, x, s):
        """Exact minimiser over tau in [0, 1] of the objective on x + tau (s - x).

        The directional derivative g(tau) = sum(cost(x + tau d) * d) increases with tau
        (convex objective); its root is found by Newton steps kept inside a shrinking
        bracket, falling back to bisection.
        """
        d = s - x
        g0 = float(np.dot(self.cost(x), d))
        if g0 >= 0.0:
            return 0.0
        g1 = float(np.dot(self.cost(s), d))
        if g1 <= 0.0:
            return 1.0
        lo, hi = 0.0, 1.0
        tau = g0 / (g0 - g1)   # secant start
        for _ in range(100):
            v = (1.0 - tau) * x + tau * s
            g = float(np.dot(self.cost(v), d))
            if g > 0.0:
                hi = tau
            elif g < 0.0:
                lo = tau
            else:
                return tau
            if hi - lo <= 1e-15 * max(1.0, hi):
                break
            gp = float(np.dot(_bpr_derivative(self.t0, self.alpha, self.beta, self.cap, v), d * d))
            new = tau - g / gp if gp > 0.0 else -1.0
            if not (lo < new < hi):
                new = 0.5 * (lo + hi)
            if abs(new - tau) <= 1e-16 * max(tau, 1e-300):
                break
            tau = new
        return tau


def static_assignment(city: City, demand, *, method="bfw", max_iter=1000, rel_gap=1e-4, extra_cost_s=None,
                      progress=None) -> AssignmentResult:
    """Static user-equilibrium link flows with BPR costs (module docstring for the model).

    Parameters
    ----------
    city : City
        The road graph; uses ``free_flow_time_s``, ``capacity_veh_per_h``, ``bpr_alpha``,
        ``bpr_beta`` and ``no_through``.
    demand : dict or pandas.DataFrame
        Columns ``origin`` and ``destination`` (external node ids of ``city``) and
        ``demand_veh_per_h`` (float, vehicles/hour, ``>= 0``). Zero rows are ignored,
        duplicate pairs are summed, and rows with ``origin == destination`` are dropped
        (they load no link) and counted in the result. For TNTP trip tables see
        :func:`tntp_demand`.
    method : {"bfw", "fw"}
        Bi-conjugate Frank-Wolfe (default) or plain Frank-Wolfe.
    max_iter : int
        Most line-search updates after the initial loading (``>= 0``).
    rel_gap : float
        Stop once the relative gap is ``<= rel_gap`` (``>= 0``).
    extra_cost_s : array_like of float64, shape (n_links,), optional
        Fixed generalised cost added to each link's travel time for route choice,
        seconds, finite and ``>= 0`` (e.g. toll x value of time + distance weight). In
        the Beckmann objective and the gap, not in ``cost_s`` or ``tstt_veh_s``.
    progress : callable, optional
        Called as ``progress(done, total)`` after every iteration, ``total = max_iter``.

    Returns
    -------
    AssignmentResult

    Raises
    ------
    UnknownNodeError
        An origin or destination is not a node id of ``city``.
    ScenarioError
        Malformed demand (missing column, unequal lengths, NaN, inf or negative
        demand), an unknown ``method``, or a bad ``max_iter`` / ``rel_gap``.
    NetworkError
        ``extra_cost_s`` of the wrong shape or with a NaN, infinite or negative entry;
        an OD pair with demand and no path (the message names it).

    Notes
    -----
    Iteration ``k`` computes the costs ``c(x_k)``, an all-or-nothing loading ``y_k`` and
    the relative gap; if the gap is not reached it picks a target point ``s_k`` and moves
    to ``x_{k+1} = x_k + tau (s_k - x_k)`` with ``tau`` minimising the Beckmann objective
    exactly. FW takes ``s_k = y_k``. BFW (Mitradjieva & Lindberg 2013, eqs. for the
    conjugate and bi-conjugate directions) takes ``s_k = b0 y_k + b1 s_{k-1} + b2 s_{k-2}``,
    with the weights making ``s_k - x_k`` conjugate to the previous two directions with
    respect to the diagonal Hessian ``diag(t'(x_k))``; weights are clipped to be
    non-negative, and the method falls back to the conjugate (one previous direction)
    form after a full step (tau = 1) and to FW when the direction is not a descent
    direction. Flows stay convex combinations of all-or-nothing loadings, so they are
    feasible and non-negative at every iteration.

    Examples
    --------
    Two parallel links from node 0 to node 1 (see tests/validation/test_static_ue.py):

    >>> import networkx as nx, twin
    >>> G = nx.MultiDiGraph()
    >>> G.add_node(0, x=0.0, y=0.0); G.add_node(1, x=1000.0, y=0.0)
    >>> for t0 in (60.0, 90.0):
    ...     _ = G.add_edge(0, 1, length_m=1000.0, free_speed_mps=1000.0 / t0, lanes=1.0,
    ...                    capacity_veh_per_h=1000.0)
    >>> city = twin.load_city(G)
    >>> res = static_assignment(city, {"origin": [0], "destination": [1], "demand_veh_per_h": [2000.0]},
    ...                         rel_gap=1e-10)
    >>> bool(abs(res.cost_s[0] - res.cost_s[1]) < 1e-6 * res.cost_s[0])
    True
    """
    if method not in METHODS:
        raise ScenarioError(f"method = {method!r}; expected one of {list(METHODS)}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ScenarioError(f"max_iter = {max_iter!r}; expected an integer >= 0")
    if not (isinstance(rel_gap, (int, float, np.floating)) and math.isfinite(rel_gap) and rel_gap >= 0):
        raise ScenarioError(f"rel_gap = {rel_gap!r}; expected a finite number >= 0")
    extra = (np.zeros(city.n_links) if extra_cost_s is None
             else _checked_link_array(city, extra_cost_s, "extra_cost_s").copy())
    origins, offsets, dest, q, n_intra, q_intra = _od_table(city, demand)
    prob = _Problem(city, origins, offsets, dest, q, extra)
    logger.info("static_assignment(%s) on %r: %d OD pairs from %d origins, %.6g veh/h, %d links", method,
                city.name, len(q), len(origins), q.sum(), city.n_links)

    x, _, n_bad = prob.aon(prob.cost(np.zeros(city.n_links)))
    if n_bad:
        raise NetworkError(prob.unreachable_message())
    gaps = []
    s1 = s2 = None          # previous two target points s_{k-1}, s_{k-2}
    tau1 = 0.0              # previous step length
    k = 0
    while True:
        c = prob.cost(x)
        y, sp_total, _ = prob.aon(c)
        total = float(np.dot(x, c))
        gap = (total - sp_total) / total if total > 0 else 0.0
        gaps.append(gap)
        if gap <= rel_gap or k >= max_iter:
            break
        s = y
        if method == "bfw" and s1 is not None:
            h = _bpr_derivative(prob.t0, prob.alpha, prob.beta, prob.cap, x)
            if s2 is None or tau1 >= 1.0 - 1e-12:
                s = _conjugate_point(x, y, s1, h)
            else:
                s = _biconjugate_point(x, y, s1, s2, tau1, h)
            if not np.dot(c, s - x) < 0.0:      # not a descent direction: restart with FW
                s = y
        tau = prob.line_search(x, s)
        if tau == 0.0 and s is y:
            logger.warning("static_assignment: line search made no progress at gap %.3e (iteration %d); "
                           "stopping", gap, k)
            break
        x = (1.0 - tau) * x + tau * s
        # After an FW step only one previous direction is known (next: conjugate form).
        s2, s1, tau1 = (None if s is y else s1), s, tau
        k += 1
        if progress is not None:
            progress(k, max_iter)
        if k % _LOG_EVERY == 0:
            logger.info("static_assignment: iteration %d, relative gap %.3e, step %.3e", k, gap, tau)

    t = prob.time(x)
    result = AssignmentResult(
        flow_veh_per_h=_frozen(x), cost_s=_frozen(t), tstt_veh_s=float(np.dot(x, t)),
        beckmann=float(np.sum(_bpr_integral(prob.t0, prob.alpha, prob.beta, prob.cap, x) + extra * x)),
        rel_gap=float(gaps[-1]), gap_history=_frozen(np.array(gaps)), iterations=k,
        converged=bool(gaps[-1] <= rel_gap), method=method, n_od_pairs=len(q),
        intrazonal_dropped_pairs=n_intra, intrazonal_dropped_veh_per_h=q_intra,
    )
    logger.info("static_assignment(%s) on %r: %s after %d iterations, relative gap %.3e, TSTT %.6g veh*s",
                method, city.name, "converged" if result.converged else "NOT converged", k, result.rel_gap,
                result.tstt_veh_s)
    return result


def _id(value):
    """A node id as a plain Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _frozen(a):
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _conjugate_point(x, y, s1, h):
    """CFW target: s = a s1 + (1 - a) y with s - x H-conjugate to s1 - x (M&L 2013, sec. 4.1)."""
    d1 = s1 - x
    num = float(np.dot(h * d1, y - x))
    den = float(np.dot(h * d1, y - s1))
    a = num / den if den != 0.0 else 0.0
    a = min(max(a, 0.0), 1.0 - 1e-6)
    return a * s1 + (1.0 - a) * y


def _biconjugate_point(x, y, s1, s2, tau1, h):
    """BFW target: s = b0 y + b1 s1 + b2 s2, conjugate to the two previous directions (M&L 2013, sec. 4.2)."""
    d1 = s1 - x                                  # \\bar d_{k-1}
    d2 = tau1 * s1 - x + (1.0 - tau1) * s2       # \\bar d_{k-2}
    yx = y - x
    den_mu = float(np.dot(h * d2, s2 - s1))
    mu = -float(np.dot(h * d2, yx)) / den_mu if den_mu != 0.0 else 0.0
    mu = max(mu, 0.0)
    den_nu = float(np.dot(h * d1, d1))
    nu = (-float(np.dot(h * d1, yx)) / den_nu if den_nu != 0.0 else 0.0) + mu * tau1 / (1.0 - tau1)
    nu = max(nu, 0.0)
    b0 = 1.0 / (1.0 + mu + nu)
    return b0 * y + (nu * b0) * s1 + (mu * b0) * s2
