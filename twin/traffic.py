"""Mesoscopic dynamic traffic on a :class:`~twin.graph.City`: ``simulate_traffic``.

Every trip is a vehicle that follows a route of links through per-link FIFO queues with
flow capacity, storage (spillback) and backward-travelling holes — the spatial-queue
model documented in :mod:`twin.kernels.traffic` (fidelity and sources there). This module
validates the demand, routes it, turns the city into the kernel's arrays, runs the
kernel in blocks (for progress and, later, for coupling with the SimPy clock), and
assembles per-trip records, per-interval link series and network KPIs.

Routes are least free-flow-time paths (one shortest-path tree per distinct origin); a share
of the vehicles re-routes en route on live link times (:class:`TrafficEngine`), and
closures, reopenings and capacity changes apply at their times. Signals are fixed-time
or max-pressure (:mod:`twin.signals`). Emergency vehicles (a trips table's optional
``vehicle_class`` column, or ``insert_vehicle(..., emergency=True)``) get priority when
``emergency_priority`` is on: signal pre-emption and queue bypass at ``bypass_speed_mps``
(the rule, its fidelity and sources are in :mod:`twin.kernels.traffic`), and they
re-route on their own live link times at every re-routing period, whatever the share.
:func:`dynamic_user_equilibrium` iterates day-to-day route choice.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from twin.errors import DemandError, NetworkError, UnknownNodeError
from twin.graph import City

__all__ = ["simulate_traffic", "TrafficEngine", "TrafficResult", "TrafficParams", "link_arrays", "read_trips",
           "read_vehicle_class", "read_events", "dynamic_user_equilibrium", "DueResult", "DEFAULT_BYPASS_SPEED_MPS"]

logger = logging.getLogger(__name__)

STATUS_NAMES = ("not_departed", "waiting", "en_route", "arrived", "unroutable")

#: Routing cost of a closed link when re-routing, seconds (prohibitive but finite).
CLOSED_COST_S = 1e12

#: Default speed at which an emergency vehicle with priority passes a queue, m/s (18 km/h:
#: threading through a stopped queue on the shoulder or the opposing lane).
DEFAULT_BYPASS_SPEED_MPS = 5.0

#: Accepted values of a trips table's ``vehicle_class`` column and their codes.
VEHICLE_CLASSES = {"car": 0, "emergency": 1, 0: 0, 1: 1}


@dataclass(frozen=True)
class TrafficParams:
    """Parameters of the traffic model (units in the names).

    Attributes
    ----------
    dt_s : float
        Tick length in seconds (default 1). Each link takes ``max(1, round(t_ff / dt_s))``
        ticks at free flow.
    interval_s : float
        Length of the link time-series intervals, seconds (default 300).
    stuck_time_s : float
        A due head vehicle blocked this long is moved into its next link even if that is
        full (gridlock resolution; counted). Default 300 s, SUMO's time-to-teleport.
    stop_when_done : bool
        Stop before ``until_s`` once every routable trip has arrived.
    """

    dt_s: float = 1.0
    interval_s: float = 300.0
    stuck_time_s: float = 300.0
    stop_when_done: bool = True

    def __post_init__(self):
        for name in ("dt_s", "interval_s", "stuck_time_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise DemandError(f"traffic parameter {name} = {v!r}; expected a finite number > 0 seconds")
        if self.interval_s < self.dt_s:
            raise DemandError(f"interval_s = {self.interval_s} is shorter than dt_s = {self.dt_s}; expected >= dt_s")


def link_arrays(city: City, dt_s: float, capacity_veh_per_h=None, links=None):
    """The kernel's per-link parameters for a tick of ``dt_s`` seconds.

    Parameters
    ----------
    capacity_veh_per_h : ndarray, optional
        Capacities to use instead of the city's (a capacity event changes the link's
        fundamental diagram, hence its backward wave speed and hole time).
    links : ndarray of int, optional
        Compute only these links (all by default).

    Returns
    -------
    dict of ndarray
        ``ff_steps`` (ticks), ``cap_per_step`` (vehicles/tick), ``storage`` (vehicles),
        ``hole_steps`` (ticks), ``w_mps`` (backward wave speed, m/s).

    Notes
    -----
    Triangular fundamental diagram per lane: free speed ``v_f``, capacity ``q`` and jam
    density ``k_j`` give the backward wave speed ``w = q / (k_j - q / v_f)``. Storage is
    ``length × lanes × k_j``, at least 1 vehicle, and at least what the discrete link
    holds when carrying its capacity (``q·(ff_steps + hole_steps)`` + 1), so that short
    links are not a bottleneck the continuous model does not have.
    """
    sel = slice(None) if links is None else np.asarray(links, dtype=np.int64)
    cap = city.capacity_veh_per_h[sel] if capacity_veh_per_h is None else np.asarray(capacity_veh_per_h)[sel]
    lanes = city.lanes[sel]
    length = city.length_m[sel]
    q_lane = cap / 3600.0 / lanes                                      # veh/s/lane
    kj = city.jam_density_veh_per_km_per_lane[sel] / 1000.0            # veh/m/lane
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = kj - q_lane / city.free_speed_mps[sel]
        w = np.where(denom > 0, q_lane / denom, np.inf)
    bad = np.flatnonzero(~(denom > 0))
    if len(bad):
        logger.warning("%d links have capacity above free speed x jam density (no backward wave); "
                       "their freed space is released after one tick", len(bad))
    ff_steps = np.maximum(1, np.rint(city.free_flow_time_s[sel] / dt_s)).astype(np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        hole_steps = np.maximum(1, np.rint(np.where(np.isfinite(w), length / w / dt_s, 0.0))).astype(np.int32)
    cap_per_step = cap * dt_s / 3600.0
    storage = np.floor(length * lanes * kj + 1e-9)
    needed = np.ceil(cap_per_step * (ff_steps + hole_steps)) + 1
    storage = np.maximum(np.maximum(storage, 1), needed).astype(np.int32)
    return dict(ff_steps=ff_steps, cap_per_step=cap_per_step, storage=storage, hole_steps=hole_steps, w_mps=w)


def read_trips(city: City, trips):
    """Validate a trip table and map it to node indices.

    Parameters
    ----------
    trips : pandas.DataFrame or dict of array-like
        Columns ``origin``, ``destination`` (external node ids) and ``depart_s``
        (seconds from the start, >= 0).

    Returns
    -------
    origin_idx, dest_idx : ndarray of int64
    depart_s : ndarray of float64

    Raises
    ------
    DemandError
        A missing column, NaN or negative departure, or origin == destination (the
        message names the first offending rows).
    UnknownNodeError
        An origin or destination is not a node of the city.
    """
    try:
        cols = {c: trips[c] for c in ("origin", "destination", "depart_s")}
    except (KeyError, IndexError, TypeError):
        have = list(trips.keys()) if hasattr(trips, "keys") else type(trips).__name__
        raise DemandError(f"trips must have columns 'origin', 'destination', 'depart_s'; got {have}") from None
    origin = np.asarray(cols["origin"])
    dest = np.asarray(cols["destination"])
    try:
        depart = np.asarray(cols["depart_s"], dtype=np.float64)
    except (TypeError, ValueError):
        raise DemandError("trips column 'depart_s' must be numeric seconds") from None
    n = len(depart)
    if not (len(origin) == len(dest) == n):
        raise DemandError(f"trips columns have different lengths: origin {len(origin)}, destination {len(dest)}, "
                          f"depart_s {n}")
    bad = np.flatnonzero(~np.isfinite(depart) | (depart < 0))
    if len(bad):
        raise DemandError(f"trips rows {bad[:5].tolist()}: depart_s = {depart[bad[:5]].tolist()}; expected finite "
                          f"seconds >= 0")
    o_idx = np.asarray(city.node_index(origin), dtype=np.int64).reshape(-1)
    d_idx = np.asarray(city.node_index(dest), dtype=np.int64).reshape(-1)
    same = np.flatnonzero(o_idx == d_idx)
    if len(same):
        first = origin[same[0]].item() if isinstance(origin[same[0]], np.generic) else origin[same[0]]
        raise DemandError(f"trips rows {same[:5].tolist()}: origin == destination ({first!r}); "
                          f"a trip must leave its origin")
    return o_idx, d_idx, depart


def read_vehicle_class(trips, n):
    """The optional ``vehicle_class`` column of a trips table as int8 codes (0 car, 1 emergency).

    Accepts ``"car"``/``"emergency"`` (any case) or 0/1; all cars when the column is absent.

    Raises
    ------
    DemandError
        Any other value (the message names the first offending rows).
    """
    try:
        col = trips["vehicle_class"]
    except (KeyError, IndexError, TypeError):
        return np.zeros(n, dtype=np.int8)
    vals = np.asarray(col, dtype=object).reshape(-1)
    if len(vals) != n:
        raise DemandError(f"trips column 'vehicle_class' has {len(vals)} rows; expected {n}")
    out = np.zeros(n, dtype=np.int8)
    bad = []
    for i, x in enumerate(vals.tolist()):
        key = x.strip().lower() if isinstance(x, str) else x
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if isinstance(key, bool) or key not in VEHICLE_CLASSES:
            bad.append(i)
            continue
        out[i] = VEHICLE_CLASSES[key]
    if bad:
        raise DemandError(f"trips rows {bad[:5]}: vehicle_class = {[vals[i] for i in bad[:5]]}; expected 'car' "
                          f"or 'emergency' (or 0 / 1)")
    return out


def _routes(city: City, o_idx, d_idx, link_cost_s=None):
    """Least-cost routes for every trip: flat link array and offsets; empty if unreachable."""
    from twin.kernels.routing import tree_routes
    import numba

    cost = city.free_flow_time_s if link_cost_s is None else city._checked_cost(link_cost_s)
    order = np.argsort(o_idx, kind="stable")
    uniq, start = np.unique(o_idx[order], return_index=True)
    grp_indptr = np.append(start, len(order)).astype(np.int64)
    grp_dest = d_idx[order]
    slot_cost = np.ascontiguousarray(cost[city.fwd_link])
    hops = np.zeros(len(order), dtype=np.int64)
    args = (city.fwd_indptr, city.fwd_head, slot_cost, city.fwd_link, city.no_through, city.link_from_idx,
            uniq.astype(np.int64), grp_indptr, grp_dest, 4 * numba.get_num_threads())
    tree_routes(*args, hops, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), False)
    off_grouped = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(np.maximum(hops, 0), out=off_grouped[1:])
    links_grouped = np.empty(off_grouped[-1], dtype=np.int32)
    tree_routes(*args, hops, off_grouped, links_grouped, True)
    # back to trip order
    n = len(o_idx)
    lens = np.empty(n, dtype=np.int64)
    lens[order] = np.maximum(hops, 0)
    route_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=route_off[1:])
    src = np.empty(n, dtype=np.int64)
    src[order] = off_grouped[:-1]
    # gather: position within each route
    idx = np.repeat(src - route_off[:-1], lens) + np.arange(route_off[-1])
    route_links = links_grouped[idx]
    return route_off, route_links, lens == 0


@dataclass(eq=False)
class TrafficResult:
    """What :func:`simulate_traffic` returns.

    Attributes
    ----------
    trips : pandas.DataFrame
        One row per trip, input order: ``origin``, ``destination``, ``depart_s``,
        ``arrive_s`` (NaN if unfinished), ``travel_time_s`` (arrival − planned departure,
        including any wait to enter the network), ``free_flow_time_s`` (of its route),
        ``length_m`` (route length), ``n_links``, ``status``.
    links : dict of ndarray
        Per interval × link: ``inflow_veh``, ``outflow_veh``, ``occupancy_veh`` (mean
        vehicles present), ``mean_travel_time_s`` (of vehicles leaving; NaN if none),
        ``speed_mps``; and ``time_s`` (interval starts).
    kpis : dict
        Network totals: ``vkt_veh_km``, ``vht_veh_h``, ``delay_veh_h``, ``congestion_index``,
        ``completed``, ``en_route``, ``waiting``, ``not_departed``, ``unroutable``,
        ``forced_moves`` (stuck heads pushed into a full link), ``teleports`` (stuck heads
        moved along their route past links with no room; see :mod:`twin.kernels.traffic`), ``simulated_s``, ``mean_travel_time_s``, ``p90_travel_time_s``.
    step_counts : ndarray of int64, shape (n_ticks, 3)
        Per tick: departed, in network, arrived (conservation: departed = in network +
        arrived + waiting).
    params : TrafficParams
    """

    trips: object
    links: dict
    kpis: dict
    step_counts: np.ndarray
    params: TrafficParams
    meta: dict = field(default_factory=dict)

    def write(self, writer, *, prefix="traffic") -> None:
        """Write trips, link series and KPIs into an open :class:`twin.results.ResultsWriter`."""
        t = self.trips
        cols = {c: t[c].to_numpy() for c in ("depart_s", "arrive_s", "travel_time_s", "free_flow_time_s",
                                              "length_m", "n_links")}
        cols["origin"] = t["origin"].to_numpy()
        cols["destination"] = t["destination"].to_numpy()
        if cols["origin"].dtype == object:
            cols["origin"] = cols["origin"].astype(str)
            cols["destination"] = cols["destination"].astype(str)
        cols["status"] = t["status"].astype(str).to_numpy()
        writer.write_table(f"/events/{prefix}_trips", cols, units={
            "depart_s": "s", "arrive_s": "s", "travel_time_s": "s", "free_flow_time_s": "s", "length_m": "m",
            "n_links": "1", "origin": "", "destination": "", "status": ""})
        units = {"inflow_veh": "veh", "outflow_veh": "veh", "occupancy_veh": "veh",
                 "mean_travel_time_s": "s", "speed_mps": "m/s", "entry_wait_s": "s"}
        writer.write_array(f"/timeseries/{prefix}_links/time_s", self.links["time_s"], units="s")
        for name, u in units.items():
            writer.write_array(f"/timeseries/{prefix}_links/{name}", self.links[name].astype(np.float32), units=u,
                               attrs={"time_path": f"/timeseries/{prefix}_links/time_s", "axes": "time, link"})
        kpi_units = {"vkt_veh_km": "veh*km", "vht_veh_h": "veh*h", "delay_veh_h": "veh*h", "congestion_index": "1",
                     "simulated_s": "s", "mean_travel_time_s": "s", "p90_travel_time_s": "s"}
        for name, value in self.kpis.items():
            writer.write_summary(f"{prefix}_{name}", value, units=kpi_units.get(name, "1"))
        writer.write_array(f"/timeseries/{prefix}_counts", self.step_counts, units="veh",
                           attrs={"column_names": "departed, in_network, arrived", "dt_s": self.params.dt_s})


def simulate_traffic(city: City, trips, *, until_s, seed=0, dt_s=1.0, interval_s=300.0, stuck_time_s=300.0,
                     stop_when_done=True, events=None, signals=None, reroute_share=0.0, reroute_interval_s=300.0,
                     emergency_priority=True, bypass_speed_mps=DEFAULT_BYPASS_SPEED_MPS,
                     progress=None) -> TrafficResult:
    """Simulate trips through the city's road network (mesoscopic, per vehicle).

    Parameters
    ----------
    city : City
    trips : pandas.DataFrame or dict of array-like
        Columns ``origin``, ``destination`` (external node ids), ``depart_s`` (seconds),
        and optionally ``vehicle_class`` (``"car"``/``"emergency"`` or 0/1; see
        :func:`read_vehicle_class`).
    until_s : float
        Simulated horizon in seconds; trips unfinished by then are reported ``en_route``
        or ``waiting``.
    seed : int
        Seeds the node-model draws (capacity-weighted in-link order at merges) and the
        choice of which vehicles re-route.
    dt_s, interval_s, stuck_time_s, stop_when_done
        See :class:`TrafficParams`.
    events : table, optional
        Network events (see :func:`read_events`): link closures, reopenings and capacity
        changes at given times. Vehicles whose remaining route crosses a closed link are
        re-routed at the closure (and new departures route around it).
    signals : twin.signals.SignalPlan or twin.signals.MaxPressurePlan, optional
        Fixed-time signal plans per in-link, or max-pressure control (see
        :func:`twin.signals.signal_plan`).
    reroute_share : float
        Share (0..1) of the vehicles on the road that reconsider their route every
        ``reroute_interval_s`` on the current link travel times, switching when the new
        route is faster (en-route re-routing, as SUMO's rerouting device). Emergency
        vehicles always reconsider, every ``reroute_interval_s``, whatever the share.
    reroute_interval_s : float
        Period of that re-routing, seconds.
    emergency_priority : bool
        Emergency vehicles (``vehicle_class`` 1) pass queues and red signals (default
        True; the rule is in :mod:`twin.kernels.traffic`). False: they drive as cars.
    bypass_speed_mps : float
        Speed at which they pass a queue, m/s (> 0; default 5).
    progress : callable(done_s, total_s), optional
        Called after each block of simulated time.

    Returns
    -------
    TrafficResult

    Raises
    ------
    DemandError
        Malformed trips, events or parameters (see :func:`read_trips`, :func:`read_events`).
    UnknownNodeError
        A trip names a node the city does not have.

    Notes
    -----
    Unreachable destinations are not an error: such trips get status ``unroutable``
    and never depart; their count is in ``kpis["unroutable"]``.

    Examples
    --------
    >>> import twin
    >>> city = twin.load_city("grid:4x4")
    >>> res = twin.simulate_traffic(city, {"origin": [1], "destination": [16], "depart_s": [0.0]}, until_s=3600)
    >>> res.trips.loc[0, "status"], bool(res.trips.loc[0, "travel_time_s"] == res.trips.loc[0, "free_flow_time_s"])
    ('arrived', True)
    """
    engine = TrafficEngine(city, trips, until_s=until_s, seed=seed, dt_s=dt_s, interval_s=interval_s,
                           stuck_time_s=stuck_time_s, stop_when_done=stop_when_done, events=events, signals=signals,
                           reroute_share=reroute_share, reroute_interval_s=reroute_interval_s,
                           emergency_priority=emergency_priority, bypass_speed_mps=bypass_speed_mps)
    engine.run(progress=progress)
    return engine.result()


EVENT_ACTIONS = ("close", "open", "capacity")


def read_events(city: City, events):
    """Validate a table of network events.

    Parameters
    ----------
    events : pandas.DataFrame, dict of array-like, or list of dict
        Columns ``time_s`` (seconds >= 0), ``action`` (``"close"``, ``"open"`` or
        ``"capacity"``), the link as ``link`` (index) or ``from_node`` and ``to_node``
        (external ids; every link between them), and ``capacity_veh_per_h`` for
        ``"capacity"`` (> 0; the link's new saturation flow).

    Returns
    -------
    list of (time_s, action, link indices, capacity_veh_per_h)
        Sorted by time, then input order.

    Raises
    ------
    DemandError
        A missing column, an unknown action, a negative or NaN time or capacity, a link
        index out of range or a node pair with no link (the message names the row).
    """
    import pandas as pd

    if isinstance(events, list):
        events = pd.DataFrame(events)
    elif isinstance(events, dict):
        events = pd.DataFrame(events)
    if not isinstance(events, pd.DataFrame):
        raise DemandError(f"events must be a table (DataFrame, dict of columns or list of dicts); got "
                          f"{type(events).__name__}")
    for col in ("time_s", "action"):
        if col not in events:
            raise DemandError(f"events need a column {col!r}; got {list(events.columns)}")
    has_link = "link" in events
    has_pair = "from_node" in events and "to_node" in events
    if not (has_link or has_pair):
        raise DemandError("events name their link by 'link' (index) or by 'from_node' and 'to_node'")
    out = []
    for i, row in enumerate(events.to_dict("records")):
        where = f"events row {i}"
        t = row["time_s"]
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise DemandError(f"{where}: time_s = {t!r}; expected seconds >= 0") from None
        if not (math.isfinite(t) and t >= 0):
            raise DemandError(f"{where}: time_s = {t!r}; expected seconds >= 0")
        action = row["action"]
        if action not in EVENT_ACTIONS:
            raise DemandError(f"{where}: action = {action!r}; expected one of {list(EVENT_ACTIONS)}")
        link = row.get("link") if has_link else None
        if link is not None and not (isinstance(link, float) and math.isnan(link)):
            try:
                ok = float(link).is_integer() and 0 <= int(link) < city.n_links
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise DemandError(f"{where}: link = {link!r}; expected a link index in 0..{city.n_links - 1}")
            links = np.array([int(link)])
        else:
            if not has_pair:
                raise DemandError(f"{where}: no link given")
            try:
                a, b = city.node_index([row["from_node"], row["to_node"]])
            except UnknownNodeError as exc:
                raise DemandError(f"{where}: {exc}") from None
            links = np.flatnonzero((city.link_from_idx == a) & (city.link_to_idx == b))
            if not len(links):
                raise DemandError(f"{where}: no link from node {row['from_node']!r} to node {row['to_node']!r}")
        cap = None
        if action == "capacity":
            cap = row.get("capacity_veh_per_h")
            try:
                cap = float(cap)
            except (TypeError, ValueError):
                cap = float("nan")
            if not (math.isfinite(cap) and cap > 0):
                raise DemandError(f"{where}: capacity_veh_per_h = {row.get('capacity_veh_per_h')!r}; expected a "
                                  f"number > 0 (close the link to stop all flow)")
        out.append((t, action, links, cap, i))
    out.sort(key=lambda e: (e[0], e[4]))
    return [(t, a, links, cap) for t, a, links, cap, _ in out]


def _is_real(value) -> bool:
    """A real number (Python or numpy), not a bool."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _check_routes(city, o_idx, d_idx, route_off, route_links):
    """Given routes must be connected walks from each trip's origin to its destination."""
    n = len(o_idx)
    if route_off.shape != (n + 1,) or route_off[0] != 0 or np.any(np.diff(route_off) < 0) \
            or route_off[-1] != len(route_links):
        raise DemandError(f"routes: offsets must have shape ({n + 1},), start at 0, not decrease and end at "
                          f"len(links) = {len(route_links)}")
    if len(route_links) and (route_links.min() < 0 or route_links.max() >= city.n_links):
        raise DemandError(f"routes: link indices must be in 0..{city.n_links - 1}")
    lens = np.diff(route_off)
    has = lens > 0
    first = route_links[route_off[:-1][has]]
    last = route_links[route_off[1:][has] - 1]
    bad = np.flatnonzero(has)[(city.link_from_idx[first] != o_idx[has]) | (city.link_to_idx[last] != d_idx[has])]
    if len(bad):
        raise DemandError(f"routes of trips {bad[:5].tolist()} do not run from their origin to their destination")
    inner = np.ones(len(route_links), dtype=bool)
    inner[route_off[1:][has] - 1] = False
    gaps = np.flatnonzero(inner & (city.link_to_idx[route_links] != np.roll(city.link_from_idx[route_links], -1)))
    if len(gaps):
        trip = np.searchsorted(route_off, gaps[0], side="right") - 1
        raise DemandError(f"route of trip {int(trip)} is not connected at position {int(gaps[0] - route_off[trip])}")


def _gather_index(starts, lens):
    """Indices of the concatenated slices ``[starts[i], starts[i] + lens[i])``, in order."""
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    return np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lens) - lens), lens) + np.arange(total)


class TrafficEngine:
    """The state of one traffic run, advanced by the numba kernel in blocks.

    :func:`simulate_traffic` is the usual entry point; the engine is what it drives, and
    what a coupled simulation (the emergency model's SimPy clock) steps through time:
    :meth:`run_until`, :meth:`link_travel_times_s`, :meth:`route_travel_time_s`,
    :meth:`insert_vehicle` and :meth:`arrival_event`.
    Parameters as for :func:`simulate_traffic`.
    """

    def __init__(self, city: City, trips, *, until_s, seed=0, dt_s=1.0, interval_s=300.0, stuck_time_s=300.0,
                 stop_when_done=True, events=None, signals=None, reroute_share=0.0, reroute_interval_s=300.0,
                 routes=None, emergency_priority=True, bypass_speed_mps=DEFAULT_BYPASS_SPEED_MPS):
        from twin.kernels import traffic as K

        self.K = K
        self.city = city
        self.params = params = TrafficParams(dt_s=float(dt_s), interval_s=float(interval_s),
                                             stuck_time_s=float(stuck_time_s), stop_when_done=bool(stop_when_done))
        if not (_is_real(until_s) and math.isfinite(until_s) and until_s > 0):
            raise DemandError(f"until_s = {until_s!r}; expected a finite number of seconds > 0")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DemandError(f"seed = {seed!r}; expected an integer >= 0")
        if not (_is_real(reroute_share) and 0.0 <= reroute_share <= 1.0):
            raise DemandError(f"reroute_share = {reroute_share!r}; expected a share in [0, 1]")
        if not (_is_real(reroute_interval_s) and math.isfinite(reroute_interval_s)
                and reroute_interval_s >= dt_s):
            raise DemandError(f"reroute_interval_s = {reroute_interval_s!r}; expected seconds >= dt_s")
        if not isinstance(emergency_priority, (bool, np.bool_)):
            raise DemandError(f"emergency_priority = {emergency_priority!r}; expected True or False")
        if not (_is_real(bypass_speed_mps) and math.isfinite(bypass_speed_mps) and bypass_speed_mps > 0):
            raise DemandError(f"bypass_speed_mps = {bypass_speed_mps!r}; expected a finite speed > 0 m/s")
        self.emergency_priority = bool(emergency_priority)
        self.bypass_speed_mps = float(bypass_speed_mps)
        self.until_s = float(until_s)
        self.seed = int(seed)
        o_idx, d_idx, depart_s = read_trips(city, trips)
        self.veh_class = read_vehicle_class(trips, len(o_idx))
        self.o_idx, self.d_idx, self.depart_s = o_idx, d_idx, depart_s
        n_veh = self.n_veh = len(o_idx)
        dt = params.dt_s
        self.la = la = link_arrays(city, dt)
        self.cap_per_step = la["cap_per_step"].copy()
        self.capacity_veh_per_h = city.capacity_veh_per_h.copy()
        self.storage = la["storage"].copy()
        self.hole_steps = la["hole_steps"].copy()
        self.link_open = np.ones(city.n_links, dtype=np.bool_)
        self.events = read_events(city, events) if events is not None else []
        self.event_ptr = 0
        self.reroute_share = float(reroute_share)
        self.reroute_steps = max(1, int(round(reroute_interval_s / dt)))
        seq = np.random.SeedSequence(self.seed)
        self.rng_reroute = np.random.default_rng(seq.spawn(1)[0])
        self.mp = dict(mp_phase_indptr=np.zeros(1, dtype=np.int64), mp_link_indptr=np.zeros(1, dtype=np.int64),
                       mp_link=np.zeros(0, dtype=np.int32), mp_period_steps=1, mp_lost_steps=0)
        if signals is not None:
            if not hasattr(signals, "to_ticks"):
                raise DemandError(f"signals must be a twin.signals.SignalPlan or MaxPressurePlan; got "
                                  f"{type(signals).__name__}")
            ticks = signals.to_ticks(dt)
            if len(ticks) == 4:                     # max-pressure: the kernel decides the windows
                self.mp = ticks[3]
            self.sig_cycle, self.sig_green_from, self.sig_green_to = (
                np.array(a, dtype=np.int32) for a in ticks[:3])
            if self.sig_cycle.shape != (city.n_links,):
                raise DemandError(f"the signal plan covers {len(self.sig_cycle)} links; city {city.name!r} has "
                                  f"{city.n_links} (build it with twin.signals for this city)")
        else:
            self.sig_cycle = np.zeros(city.n_links, dtype=np.int32)
            self.sig_green_from = np.zeros(city.n_links, dtype=np.int32)
            self.sig_green_to = np.zeros(city.n_links, dtype=np.int32)

        if routes is None:
            route_off, route_links, unroutable = _routes(city, o_idx, d_idx)
        else:
            route_off, route_links = (np.asarray(a, dtype=np.int64) for a in routes)
            _check_routes(city, o_idx, d_idx, route_off, route_links)
            unroutable = np.diff(route_off) == 0
        if unroutable.any():
            logger.warning("%d trips have no route (destination unreachable); they are reported 'unroutable'",
                           int(unroutable.sum()))
        self.routable = ~unroutable
        self.n_steps_total = int(math.ceil(until_s / dt))
        self.spi = spi = max(1, int(round(params.interval_s / dt)))
        if abs(spi * dt - params.interval_s) > 1e-9 * max(1.0, params.interval_s):
            raise DemandError(f"interval_s = {params.interval_s} is not a whole number of ticks of dt_s = {dt}; "
                              f"use e.g. {spi * dt:g} s")
        self.n_iv = n_iv = (self.n_steps_total + spi - 1) // spi
        self.depart_step = np.ceil(depart_s / dt - 1e-9).astype(np.int64)
        self.dep_order = np.lexsort((np.arange(n_veh), self.depart_step)).astype(np.int64)

        # routes with a sentinel -1 - v after each (see the kernel's route_seq)
        lens = np.diff(route_off)
        self.route_start = (route_off[:-1] + np.arange(n_veh)).astype(np.int64)
        self.seg_end = self.route_start + lens            # sentinel position of each vehicle's route
        self.seg_start = self.route_start.copy()          # start of each vehicle's current route segment
        used = len(route_links) + n_veh
        self.route_seq = np.empty(max(16, used + used // 4), dtype=np.int32)
        self.route_owner = np.empty(len(self.route_seq), dtype=np.int32)
        mask = np.ones(used, dtype=bool)
        mask[self.seg_end] = False
        self.route_seq[:used][mask] = route_links
        self.route_seq[self.seg_end] = -1 - np.arange(n_veh)
        self.route_owner[:used] = np.repeat(np.arange(n_veh), lens + 1)
        self.route_used = used
        self._check_route_size(used)
        self.history = {}                                  # vehicle -> [(segment start, cut position)]
        self._build_departure_groups()

        storage = la["storage"]
        self.ring_cap = (storage + 2).astype(np.int32)
        self.ring_start = np.zeros(city.n_links, dtype=np.int64)
        np.cumsum(self.ring_cap[:-1], out=self.ring_start[1:])
        total_ring = int(self.ring_cap.sum())
        K = self.K
        self.state = dict(
            ring=np.zeros(total_ring, dtype=np.int64), ring_next=np.zeros(total_ring, dtype=np.int32),
            ring_head=np.zeros(city.n_links, dtype=np.int32), ring_count=np.zeros(city.n_links, dtype=np.int32),
            hole_head=np.zeros(city.n_links, dtype=np.int32), hole_count=np.zeros(city.n_links, dtype=np.int32),
            head_due=np.full(city.n_links, K.NEVER, dtype=np.int64),
            head_since=np.zeros(city.n_links, dtype=np.int64),
            node_wake=np.full(city.n_nodes, K.NEVER, dtype=np.int64),
            # a fresh link has the full budget of a link that has long been idle
            acc=la["cap_per_step"] + 1.0,
            acc_step=np.zeros(city.n_links, dtype=np.int64),
            status=np.where(unroutable, K.STATUS_UNROUTABLE, K.STATUS_NOT_DEPARTED).astype(np.int8),
            arrive_step=np.full(n_veh, -1, dtype=np.int64),
            ev_entry=np.full(n_veh, -1, dtype=np.int64), ev_enter_step=np.zeros(n_veh, dtype=np.int64),
            mp_phase=np.full(len(self.mp["mp_phase_indptr"]) - 1, -1, dtype=np.int32),
        )
        # emergency bypass: queue metres per queued vehicle = effective vehicle length / lanes
        self.queue_m_per_veh = 1000.0 / (city.jam_density_veh_per_km_per_lane * city.lanes)
        self.out = dict(
            inflow=np.zeros((n_iv, city.n_links), dtype=np.int32),
            outflow=np.zeros((n_iv, city.n_links), dtype=np.int32),
            tt_sum_steps=np.zeros((n_iv, city.n_links), dtype=np.int64),
            occ_part=np.zeros((n_iv, city.n_links), dtype=np.int64),
            dep_wait=np.zeros((n_iv, city.n_links, 2), dtype=np.int64),
            step_counts=np.zeros((self.n_steps_total, 3), dtype=np.int64),
            counters=np.zeros(len(K.COUNTER_NAMES), np.int64),
        )
        self.stuck_steps = max(1, int(round(params.stuck_time_s / dt)))
        self.kernel_s = 0.0
        self.n_rerouted = 0
        import inspect

        self._kernel_params = list(inspect.signature(
            getattr(K.simulate_queue, "py_func", K.simulate_queue)).parameters)

    # ---------------------------------------------------------------- bookkeeping
    @staticmethod
    def _check_route_size(n):
        if n >= 2**31 - 1:
            raise DemandError(f"{n:,} route entries (links over all routes plus one per trip); at most "
                              f"2**31 - 2 are supported")

    def _build_departure_groups(self):
        """Group the vehicles by first link; those already on the road first (kernel contract)."""
        n_veh = self.n_veh
        ok = self.routable
        first = np.where(ok, self.route_seq[np.minimum(self.route_start, len(self.route_seq) - 1)], 0)
        first = first.astype(np.int64)
        status = getattr(self, "state", {}).get("status")
        entered = (status >= self.K.STATUS_EN_ROUTE) if status is not None else np.zeros(n_veh, dtype=bool)
        order = np.lexsort((np.arange(n_veh), self.depart_step, ~entered, first))
        self.dl_order = order[ok[order]].astype(np.int64)
        self.dep_link_indptr = np.zeros(self.city.n_links + 1, dtype=np.int64)
        np.cumsum(np.bincount(first[ok], minlength=self.city.n_links), out=self.dep_link_indptr[1:])

    @property
    def now_step(self) -> int:
        """The next tick to simulate."""
        return int(self.out["counters"][4])

    @property
    def now_s(self) -> float:
        """Simulated time reached, seconds."""
        return self.now_step * self.params.dt_s

    def _kernel(self, n_steps):
        args = dict(
            in_indptr=self.city.rev_indptr, in_link=self.city.rev_link, link_head=self.city.link_to_idx,
            ff_steps=self.la["ff_steps"], cap_per_step=self.cap_per_step, storage=self.storage,
            hole_steps=self.hole_steps, sig_cycle=self.sig_cycle, sig_green_from=self.sig_green_from,
            sig_green_to=self.sig_green_to, link_open=self.link_open,
            ring_start=self.ring_start, ring_cap=self.ring_cap, route_seq=self.route_seq,
            route_start=self.route_start, depart_step=self.depart_step, dep_order=self.dep_order,
            dep_link_indptr=self.dep_link_indptr, dep_link_order=self.dl_order,
            n_steps=int(n_steps), stuck_steps=self.stuck_steps, seed=self.seed, steps_per_interval=self.spi,
            stop_when_done=self.params.stop_when_done, veh_class=self.veh_class, priority=self.emergency_priority,
            bypass_speed_mps=self.bypass_speed_mps, dt_s=self.params.dt_s, length_m=self.city.length_m,
            ff_time_s=self.city.free_flow_time_s, queue_m_per_veh=self.queue_m_per_veh, **self.mp,
            **self.state, **self.out)
        if not self.link_open.all() or self.sig_cycle.any():
            missing = [p for p in ("link_open", "sig_cycle") if p not in self._kernel_params]
            if missing:
                raise DemandError(f"this build's traffic kernel has no {missing}; signals and closures need them")
        t0 = time.perf_counter()
        self.K.simulate_queue(*[args[name] for name in self._kernel_params])
        self.kernel_s += time.perf_counter() - t0

    def _all_done(self):
        return self.params.stop_when_done and self.out["counters"][2] >= int(self.routable.sum())

    # ---------------------------------------------------------------- running
    def run(self, progress=None):
        """Run to ``until_s`` (or until every trip has arrived)."""
        self.run_until(self.until_s, progress=progress)

    def run_until(self, t_s, progress=None):
        """Advance the simulation to time ``t_s`` (seconds), applying events and re-routing on the way."""
        dt = self.params.dt_s
        k_stop = min(self.n_steps_total, int(math.ceil(t_s / dt - 1e-9)))
        block = max(self.spi, int(3600 // max(dt, 1e-9)))
        while self.now_step < k_stop and not self._all_done():
            k = self.now_step
            self._apply_events(k)
            rerouting = self.reroute_share > 0 or self._ev_pending()
            if rerouting and k > 0 and k % self.reroute_steps == 0:
                self._reroute(share=self.reroute_share)
            nxt = min(k_stop, (k // block + 1) * block)
            if self.event_ptr < len(self.events):
                nxt = min(nxt, max(k + 1, int(math.ceil(self.events[self.event_ptr][0] / dt - 1e-9))))
            if rerouting:
                nxt = min(nxt, (k // self.reroute_steps + 1) * self.reroute_steps)
            self._kernel(nxt - k)
            if progress is not None:
                progress(min(self.now_s, self.until_s), self.until_s)

    def _ev_pending(self):
        """Whether an emergency vehicle has not arrived yet (it re-routes at every opportunity)."""
        ev = self.veh_class != 0
        return bool(ev.any()) and bool((self.state["status"][ev] < self.K.STATUS_ARRIVED).any())

    def _apply_events(self, k):
        dt = self.params.dt_s
        changed_open = False
        reopened = False
        while self.event_ptr < len(self.events) and self.events[self.event_ptr][0] / dt <= k + 1e-9:
            t, action, links, cap = self.events[self.event_ptr]
            self.event_ptr += 1
            if action == "close":
                self.link_open[links] = False
                changed_open = True
            elif action == "open":
                self.link_open[links] = True
                changed_open = True
                reopened = True
            else:
                # a new capacity is a new fundamental diagram: new hole time and storage
                # need (the ring, sized at the start, bounds the storage)
                self.capacity_veh_per_h[links] = cap
                la = link_arrays(self.city, dt, self.capacity_veh_per_h, links)
                self.cap_per_step[links] = la["cap_per_step"]
                self.hole_steps[links] = la["hole_steps"]
                short = la["storage"] > self.ring_cap[links] - 2
                if short.any():
                    logger.warning("t=%.0f s: links %s cannot store what their new capacity needs; storage "
                                   "kept at their ring size", t, links[short].tolist()[:10])
                self.storage[links] = np.minimum(la["storage"], self.ring_cap[links] - 2)
            logger.info("t=%.0f s: %s links %s%s", t, action, links.tolist()[:10],
                        f" to {cap:g} veh/h" if cap else "")
        if changed_open:
            # after a reopening everyone reconsiders (switching only to a faster route)
            self._reroute(share=1.0 if reopened else 0.0, not_started=reopened)

    # ---------------------------------------------------------------- insertion
    def insert_vehicle(self, origin, destination, *, depart_s=None, link_cost_s=None, emergency=False) -> int:
        """Add a vehicle during the run, routed on the current link times; return its index.

        Parameters
        ----------
        origin, destination : node id
            External node ids (different).
        depart_s : float, optional
            Departure time, seconds; the current time when omitted (never earlier than it).
        link_cost_s : ndarray, shape (n_links,), optional
            Link costs for its route; the live :meth:`link_travel_times_s` when omitted
            (for an emergency vehicle, its own live times: ``emergency=True``).
        emergency : bool
            An emergency vehicle: with the engine's ``emergency_priority`` it passes queues
            and red signals, and it re-routes on live times at every re-routing period.

        Returns
        -------
        int
            The vehicle's index: its row in the result's ``trips`` table. Poll
            :meth:`arrival_s` (or use :meth:`arrival_event` with SimPy) to learn when it arrives.

        Raises
        ------
        DemandError
            ``origin == destination``, or no open route joins them.
        UnknownNodeError
            A node id is not in the city.

        Notes
        -----
        Without ``emergency`` the vehicle is an ordinary vehicle of the model. Arrays grow by one
        per insertion (O(vehicles) each), which suits the tens to thousands of vehicles a
        coupled model inserts, not a whole demand.
        """
        K = self.K
        dt = self.params.dt_s
        o, d = (int(i) for i in self.city.node_index([origin, destination]))
        if o == d:
            raise DemandError(f"insert_vehicle: origin == destination ({origin!r}); a trip must leave its origin")
        if not isinstance(emergency, (bool, np.bool_)):
            raise DemandError(f"insert_vehicle: emergency = {emergency!r}; expected True or False")
        if link_cost_s is None:
            cost = self.link_travel_times_s(emergency=bool(emergency))
            cost = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        else:
            cost = self.city._checked_cost(link_cost_s)
        ro, rl, unr = _routes(self.city, np.array([o]), np.array([d]), link_cost_s=cost)
        if unr[0] or cost[rl].sum() >= CLOSED_COST_S:
            raise DemandError(f"insert_vehicle: no open route from node {origin!r} to node {destination!r}")
        step = self.now_step if depart_s is None else max(self.now_step, int(math.ceil(float(depart_s) / dt - 1e-9)))
        v = self.n_veh
        # the new vehicle's route, with its sentinel, at the end of route_seq
        need = len(rl) + 1
        if self.route_used + need > len(self.route_seq):
            grow = max(need, len(self.route_seq) // 2)
            self._check_route_size(self.route_used + grow)
            self.route_seq = np.concatenate([self.route_seq, np.empty(grow, dtype=np.int32)])
            self.route_owner = np.concatenate([self.route_owner, np.empty(grow, dtype=np.int32)])
        start = self.route_used
        self.route_seq[start:start + len(rl)] = rl
        self.route_seq[start + len(rl)] = -1 - v
        self.route_owner[start:start + need] = v
        self.route_used += need
        grow1 = lambda a, x: np.append(a, np.asarray([x], dtype=a.dtype))   # noqa: E731
        self.o_idx, self.d_idx = grow1(self.o_idx, o), grow1(self.d_idx, d)
        self.depart_s = grow1(self.depart_s, step * dt)
        self.routable = grow1(self.routable, True)
        self.depart_step = grow1(self.depart_step, step)
        self.route_start = grow1(self.route_start, start)
        self.seg_start = grow1(self.seg_start, start)
        self.seg_end = grow1(self.seg_end, start + len(rl))
        self.state["status"] = grow1(self.state["status"], K.STATUS_NOT_DEPARTED)
        self.state["arrive_step"] = grow1(self.state["arrive_step"], -1)
        self.state["ev_entry"] = grow1(self.state["ev_entry"], -1)
        self.state["ev_enter_step"] = grow1(self.state["ev_enter_step"], 0)
        self.veh_class = grow1(self.veh_class, 1 if emergency else 0)
        self.n_veh = v + 1
        # O(vehicles) insertion into both departure orders, keeping the kernel's contract (no
        # re-sort): dep_order is sorted by (depart_step, index) and the new vehicle has the
        # largest index and a step not released yet, so it goes after every vehicle departing
        # at or before its step; in its first link's group (entered vehicles first, then by
        # depart_step and index) it goes after the entered prefix and the earlier departures.
        pos = int(np.searchsorted(self.depart_step[self.dep_order], step, side="right"))
        self.dep_order = np.insert(self.dep_order, pos, v)
        first = int(rl[0])
        lo, hi = int(self.dep_link_indptr[first]), int(self.dep_link_indptr[first + 1])
        grp = self.dl_order[lo:hi]
        entered = self.state["status"][grp] >= K.STATUS_EN_ROUTE
        n_pre = int(np.argmin(entered)) if not entered.all() else len(grp)
        at = lo + n_pre + int(np.searchsorted(self.depart_step[grp[n_pre:]], step, side="right"))
        self.dl_order = np.insert(self.dl_order, at, v)
        self.dep_link_indptr[first + 1:] += 1
        return v

    def arrival_s(self, vehicle) -> float:
        """Arrival time of a vehicle, seconds, or NaN while it has not arrived."""
        k = int(self.state["arrive_step"][int(vehicle)])
        return k * self.params.dt_s if k >= 0 else math.nan

    def link_exits(self) -> np.ndarray:
        """Vehicles that have left each link so far (cumulative over the run), shape (n_links,).

        Differences between two calls give the vehicles (and, times ``city.length_m``, the
        vehicle-metres) driven on each link in between; finished output intervals are summed
        once, so a call costs O(links).
        """
        out, spi = self.out["outflow"], self.spi
        if not hasattr(self, "_exits_iv"):
            self._exits_iv, self._exits_done = 0, np.zeros(out.shape[1], dtype=np.int64)
        iv_now = min(self.now_step // spi, out.shape[0] - 1)
        if iv_now > self._exits_iv:
            self._exits_done += out[self._exits_iv:iv_now].sum(axis=0).astype(np.int64)
            self._exits_iv = iv_now
        return self._exits_done + out[iv_now]

    def arrival_lower_bound_s(self, vehicle) -> float:
        """Earliest time the vehicle can still arrive, seconds, or NaN where not known cheaply.

        For a vehicle not yet on the road: its departure plus its route's free-flow ticks;
        on a link: the tick it may leave that link (its due tick; an emergency vehicle
        bypassing queues has its own) plus the free-flow ticks of the rest of its route. No
        vehicle of the model travels a link faster than its free-flow ticks, so it is a true
        lower bound. The arrival time itself once arrived. NaN for a vehicle waiting to enter
        its first link while others hold it back (rare: use a tick).
        """
        v = int(vehicle)
        K, dt = self.K, self.params.dt_s
        status = int(self.state["status"][v])
        if status == K.STATUS_ARRIVED:
            return self.arrival_s(v)
        ff = self.la["ff_steps"]
        if status <= K.STATUS_WAITING:
            r0, k0 = int(self.route_start[v]), max(int(self.depart_step[v]), self.now_step)
        elif self.emergency_priority and self.veh_class[v] != 0 and self.state["ev_entry"][v] >= 0:
            entry = int(self.state["ev_entry"][v])
            r0, k0 = (entry & 0xFFFFFFFF) + 1, max(entry >> 32, self.now_step)
        else:
            st = self.state
            r, due = K.vehicle_route_position(int(self.seg_start[v]), int(self.seg_end[v]), self.route_seq, st["ring"],
                                              self.ring_start, self.ring_cap, st["ring_head"], st["ring_count"])
            if r < 0:
                return math.nan
            r0, k0 = int(r) + 1, max(int(due), self.now_step)
        end = int(self.seg_end[v])          # the sentinel of the current segment
        if not int(self.seg_start[v]) <= r0 <= end:
            end = r0
            while self.route_seq[end] >= 0:
                end += 1
        return (k0 + int(ff[self.route_seq[r0:end]].sum())) * dt

    def arrival_event(self, env, vehicle, *, poll_s=None):
        """A SimPy event that succeeds, with the arrival time as its value, once the vehicle arrives.

        A SimPy process advances this engine and checks the vehicle. With ``poll_s`` it checks
        every ``poll_s`` seconds (``run_until(env.now)``): the event fires at the first check
        after the arrival has been simulated, late by at most ``poll_s``. Without it (the
        default) it sleeps until :meth:`arrival_lower_bound_s` (else one tick); at each
        check it also simulates the tick that starts at ``env.now``, so the event fires at the
        arrival's own time, not later: its value equals ``env.now`` then. That look-ahead means
        a vehicle inserted later at the same instant departs one tick later. Advance the engine
        to ``env.now`` (``run_until``) before :meth:`insert_vehicle`, or pass ``depart_s=env.now``.
        """
        dt = self.params.dt_s
        event = env.event()

        def watch():
            while True:
                if poll_s is None:
                    self.run_until(env.now + dt)
                else:
                    self.run_until(env.now)
                t = self.arrival_s(vehicle)
                if not math.isnan(t):
                    event.succeed(t)
                    return
                if self.now_step >= self.n_steps_total:
                    event.fail(DemandError(f"vehicle {vehicle} did not arrive by the traffic horizon "
                                           f"({self.n_steps_total * dt:.0f} s)"))
                    return
                if poll_s is not None:
                    wait = float(poll_s)
                else:
                    lb = self.arrival_lower_bound_s(vehicle)
                    wait = lb - env.now if math.isfinite(lb) and lb - env.now >= dt else dt
                yield env.timeout(wait)

        env.process(watch())
        return event

    # ---------------------------------------------------------------- live state
    def _on_road(self):
        """(vehicle, link, route position, due tick, slot) of every vehicle on a link.

        Vehicles in the rings first (ring order, ``slot`` their ring slot), then the
        emergency vehicles with priority that bypass the rings (vehicle order, ``slot =
        -1 - vehicle``).
        """
        st = self.state
        counts = st["ring_count"].astype(np.int64)
        total = int(counts.sum())
        link = np.repeat(np.arange(self.city.n_links), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        j = np.arange(total) - first
        slot = self.ring_start[link] + (st["ring_head"][link].astype(np.int64) + j) % self.ring_cap[link]
        entry = st["ring"][slot]
        ev = np.flatnonzero(st["ev_entry"] >= 0)
        if len(ev):
            entry = np.concatenate([entry, st["ev_entry"][ev]])
            slot = np.concatenate([slot, -1 - ev.astype(np.int64)])
        pos = entry & self.K.MASK32
        due = entry >> 32
        veh = self.route_owner[pos]
        if len(ev):
            link = np.concatenate([link, self.route_seq[pos[total:]].astype(np.int64)])
        return veh, link, pos, due, slot

    def link_travel_times_s(self, *, emergency=False) -> np.ndarray:
        """Current travel time of every link, seconds (``inf`` when closed).

        Free-flow time plus the point-queue delay of the vehicles already due at the
        link's end: ``queued / capacity``. A live estimate for routing, not a forecast.
        With ``emergency`` and the engine's priority on: the time an emergency vehicle
        entering now would take (the bypass rule of :mod:`twin.kernels.traffic`, in
        seconds, not rounded to ticks).
        """
        veh, link, pos, due, slot = self._on_road()
        in_ring = slot >= 0                  # bypassing emergency vehicles hold no queue
        queued = np.bincount(link[in_ring & (due <= self.now_step)], minlength=self.city.n_links)
        city = self.city
        if emergency and self.emergency_priority:
            q_m = np.minimum(city.length_m, queued * self.queue_m_per_veh)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(city.length_m > 0, q_m / city.length_m, 0.0)
            t = city.free_flow_time_s * (1.0 - f) + np.maximum(city.free_flow_time_s * f,
                                                                 q_m / self.bypass_speed_mps)
        else:
            with np.errstate(divide="ignore"):
                delay = queued * self.params.dt_s / self.cap_per_step
            t = city.free_flow_time_s + delay
        t[~self.link_open] = np.inf
        return t

    def route_travel_time_s(self, links) -> float:
        """Expected travel time of a route (link indices) on the current link times, seconds."""
        return float(self.link_travel_times_s()[np.asarray(links, dtype=np.int64)].sum())

    # ---------------------------------------------------------------- re-routing
    def _append_segments(self, vehicles, cuts, seg_links, seg_off):
        """Append new route segments (one per vehicle) with sentinels; return their start positions.

        ``cuts[i]`` is where vehicle i leaves its current segment: the driven part of that
        segment is ``seg_start .. cuts[i]`` (exclusive), kept for the driven-route output.
        """
        lens = np.diff(seg_off)
        need = int(lens.sum()) + len(vehicles)
        if self.route_used + need > len(self.route_seq):
            grow = max(need, len(self.route_seq) // 2)
            self._check_route_size(self.route_used + grow)
            self.route_seq = np.concatenate([self.route_seq, np.empty(grow, dtype=np.int32)])
            self.route_owner = np.concatenate([self.route_owner, np.empty(grow, dtype=np.int32)])
        base = self.route_used
        seg_start = base + seg_off[:-1] + np.arange(len(vehicles))
        sentinel = seg_start + lens
        mask = np.ones(need, dtype=bool)
        mask[sentinel - base] = False
        self.route_seq[base:base + need][mask] = seg_links
        self.route_seq[sentinel] = -1 - vehicles
        self.route_owner[base:base + need] = np.repeat(vehicles, lens + 1)
        self.route_used += need
        for v, old, cut in zip(vehicles.tolist(), self.seg_start[vehicles].tolist(), np.asarray(cuts).tolist()):
            self.history.setdefault(v, []).append((old, cut))
        self.seg_start[vehicles] = seg_start
        self.seg_end[vehicles] = sentinel
        return seg_start

    def _segment_sums(self, starts, ends, per_link):
        """Sum of ``per_link`` over the route positions ``[starts[i], ends[i])`` of each vehicle."""
        lens = np.maximum(np.asarray(ends, dtype=np.int64) - starts, 0)
        out = np.zeros(len(lens))
        if not len(lens) or not lens.sum():
            return out
        vals = per_link[self.route_seq[_gather_index(starts, lens)]]
        off = np.cumsum(lens) - lens
        out = np.add.reduceat(np.append(vals, 0.0), off)
        out[lens == 0] = 0.0
        return out

    def _reroute(self, share, not_started=False):
        """Re-route vehicles whose route crosses a closed link, and ``share`` of the others on the road.

        With ``not_started``, vehicles not yet on the road reconsider too (from their origin,
        switching when faster), as after a reopening.
        """
        K = self.K
        # closed links cost a prohibitive finite amount, so prefix sums stay finite
        cost = self.link_travel_times_s()
        cost = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        closed_any = not self.link_open.all()
        closed_f = (~self.link_open).astype(np.float64)
        status = self.state["status"]
        # 1. vehicles on the road: from the head node of their current link
        veh, link, pos, due, slot = self._on_road()
        end = self.seg_end[veh]
        must = (self._segment_sums(pos + 1, end, closed_f) > 0 if closed_any
                else np.zeros(len(veh), dtype=bool))
        pick = must | (self.rng_reroute.random(len(veh)) < share) if share > 0 else must
        # emergency vehicles always reconsider, on their own live link times
        is_ev = self.veh_class[veh] != 0
        pick = pick | is_ev
        origin = self.city.link_to_idx[link].astype(np.int64)
        dest = self.d_idx[veh]
        pick &= origin != dest
        groups = [(pick & ~is_ev, cost)]
        if is_ev.any():
            ev_cost = self.link_travel_times_s(emergency=True)
            groups.append((pick & is_ev, np.where(np.isfinite(ev_cost), ev_cost, CLOSED_COST_S)))
        for group, gcost in groups:
            if not group.any():
                continue
            sel = np.flatnonzero(group)
            ro, rl, unr = _routes(self.city, origin[sel], dest[sel], link_cost_s=gcost)
            new_cost = np.add.reduceat(np.append(gcost[rl], 0.0), ro[:-1]) if len(rl) else np.zeros(len(sel))
            new_cost = np.where(np.diff(ro) > 0, new_cost, np.inf)
            old_cost = self._segment_sums(pos[sel] + 1, end[sel], gcost)
            better = ~unr & ((new_cost < old_cost - 1e-9) | must[sel]) & (new_cost < CLOSED_COST_S)
            if better.any():
                b = np.flatnonzero(better)
                lens = np.diff(ro)[b]
                seg_off = np.zeros(len(b) + 1, dtype=np.int64)
                np.cumsum(lens + 1, out=seg_off[1:])
                # each new segment: the current link, then the new route from its head node
                seg_links = np.empty(int(seg_off[-1]), dtype=np.int32)
                head_pos = np.zeros(len(seg_links), dtype=bool)
                head_pos[seg_off[:-1]] = True
                seg_links[head_pos] = link[sel[b]]
                seg_links[~head_pos] = rl[_gather_index(ro[:-1][b], lens)]
                vs = veh[sel[b]].astype(np.int64)
                new_start = self._append_segments(vs, pos[sel[b]], seg_links, seg_off)
                # point the ring entries (or a bypassing emergency vehicle's entry) at the
                # new segments, due tick kept
                new_entry = (due[sel[b]] << 32) | new_start
                sl = slot[sel[b]]
                ring_vehicle = sl >= 0
                self.state["ring"][sl[ring_vehicle]] = new_entry[ring_vehicle]
                self.state["ring_next"][sl[ring_vehicle]] = self.route_seq[new_start[ring_vehicle] + 1]
                self.state["ev_entry"][-1 - sl[~ring_vehicle]] = new_entry[~ring_vehicle]
                self.n_rerouted += len(b)
        # 2. vehicles not yet on the road whose route crosses a closed link: from the origin
        if closed_any or not_started:
            waiting = np.flatnonzero(self.routable & (status <= K.STATUS_WAITING))
            if len(waiting):
                st = self.route_start[waiting]
                crosses = (self._segment_sums(st, self.seg_end[waiting], closed_f) > 0 if closed_any
                           else np.zeros(len(waiting), dtype=bool))
                w = waiting[crosses | not_started]
                if len(w):
                    ro, rl, unr = _routes(self.city, self.o_idx[w], self.d_idx[w],
                                          link_cost_s=cost)
                    seg_cost = np.add.reduceat(np.append(cost[rl], 0.0), ro[:-1]) if len(rl) else np.zeros(len(w))
                    old_cost = self._segment_sums(self.route_start[w], self.seg_end[w], cost)
                    must_w = self._segment_sums(self.route_start[w], self.seg_end[w], closed_f) > 0
                    good = ~unr & (np.diff(ro) > 0) & (seg_cost < CLOSED_COST_S) & (must_w | (seg_cost < old_cost - 1e-9))
                    if good.any():
                        g = np.flatnonzero(good)
                        seg_links = rl[_gather_index(ro[:-1][g], np.diff(ro)[g])].astype(np.int32)
                        seg_off = np.zeros(len(g) + 1, dtype=np.int64)
                        np.cumsum(np.diff(ro)[g], out=seg_off[1:])
                        vs = w[g].astype(np.int64)
                        self.route_start[vs] = self._append_segments(vs, self.seg_start[vs], seg_links, seg_off)
                        self.n_rerouted += len(g)
                        self._build_departure_groups()

    # ---------------------------------------------------------------- results
    def driven_routes(self):
        """Each vehicle's route as driven (re-routing included): (offsets, links)."""
        n = self.n_veh
        pv, pa, pb = [], [], []
        for v, hist in self.history.items():
            for old, cut in hist:
                pv.append(v)
                pa.append(old)
                pb.append(cut)
        pv = np.concatenate([np.array(pv, dtype=np.int64), np.arange(n, dtype=np.int64)])
        pa = np.concatenate([np.array(pa, dtype=np.int64), self.seg_start])
        pb = np.concatenate([np.array(pb, dtype=np.int64), self.seg_end])
        order = np.argsort(pv, kind="stable")      # per vehicle: history pieces in order, then the current
        pv, pa, pb = pv[order], pa[order], pb[order]
        lens = np.maximum(pb - pa, 0)
        links = self.route_seq[_gather_index(pa, lens)].astype(np.int64)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(pv, weights=lens, minlength=n).astype(np.int64), out=off[1:])
        return off, links

    def result(self) -> TrafficResult:
        """Assemble the :class:`TrafficResult` of the run so far."""
        import pandas as pd

        st, out, spi, n_iv = self.state, self.out, self.spi, self.n_iv
        k_end = self.now_step
        # vehicle-ticks per interval: within-interval parts plus whole intervals of the
        # vehicles present at each interval's start; the last interval ends at k_end.
        present_start = np.zeros_like(out["occ_part"])
        np.cumsum((out["inflow"] - out["outflow"])[:-1], axis=0, out=present_start[1:])
        vsteps = out["occ_part"] + spi * present_start
        if n_iv and k_end < n_iv * spi:
            last_iv = max(k_end - 1, 0) // spi
            present = st["ring_count"].astype(np.int64)
            ev = np.flatnonzero(st["ev_entry"] >= 0)
            if len(ev):
                on = self.route_seq[st["ev_entry"][ev] & self.K.MASK32]
                present = present + np.bincount(on, minlength=self.city.n_links)
            vsteps[last_iv] -= present * ((last_iv + 1) * spi - k_end)
            vsteps[last_iv + 1:] = 0
        outs = dict(out, occ_vsteps=vsteps)
        route_off, route_links = self.driven_routes()
        # copies: a result taken mid-run must not change when the engine runs on
        outs = {k: np.array(v, copy=True) for k, v in outs.items()}
        st = {k: np.array(v, copy=True) for k, v in st.items()}
        res = _assemble(self.city, self.o_idx, self.d_idx, self.depart_s, route_off, route_links,
                        st, outs, self.params, k_end, spi, n_iv, outs["step_counts"][:k_end], pd)
        res.trips["vehicle_class"] = pd.Categorical.from_codes(np.minimum(self.veh_class, 1).astype(np.int8),
                                                               categories=["car", "emergency"])
        res.kpis["rerouted"] = int(self.n_rerouted)
        res.meta["kernel_s"] = self.kernel_s
        return res


def _assemble(city, o_idx, d_idx, depart_s, route_off, route_links, state, out, params, k_end, spi, n_iv,
              step_counts, pd):
    dt = params.dt_s
    status = state["status"]
    arrive_s = np.where(state["arrive_step"] >= 0, state["arrive_step"] * dt, np.nan)
    # arrival tick k means the vehicle left its last link during tick k, i.e. at (k) * dt
    lens = np.diff(route_off)
    owner = np.repeat(np.arange(len(lens)), lens)
    length_m = np.bincount(owner, weights=city.length_m[route_links], minlength=len(lens))
    ff_s = np.bincount(owner, weights=city.free_flow_time_s[route_links], minlength=len(lens))
    tt = arrive_s - depart_s
    table = pd.DataFrame({
        "origin": city.node_ids[o_idx], "destination": city.node_ids[d_idx], "depart_s": depart_s,
        "arrive_s": arrive_s, "travel_time_s": tt, "free_flow_time_s": np.where(lens > 0, ff_s, np.nan),
        "length_m": np.where(lens > 0, length_m, np.nan), "n_links": lens,
        "status": pd.Categorical.from_codes(status.astype(np.int8), categories=list(STATUS_NAMES)),
    })
    inflow, outflow = out["inflow"], out["outflow"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_tt = np.where(outflow > 0, out["tt_sum_steps"] * dt / outflow, np.nan)
        speed = np.where(outflow > 0, city.length_m[None, :] / mean_tt, np.nan)
    occupancy = out["occ_vsteps"] / spi
    if n_iv and k_end < n_iv * spi:
        last_iv = (k_end - 1) // spi if k_end else 0
        occupancy[last_iv] = out["occ_vsteps"][last_iv] / max(1, k_end - last_iv * spi)
    dw = out["dep_wait"]
    with np.errstate(invalid="ignore", divide="ignore"):
        entry_wait = np.where(dw[..., 0] > 0, dw[..., 1] * dt / dw[..., 0], np.nan)
    links = dict(time_s=np.arange(n_iv) * spi * dt, inflow_veh=inflow, outflow_veh=outflow, occupancy_veh=occupancy,
                 mean_travel_time_s=mean_tt, speed_mps=speed, entry_wait_s=entry_wait)
    arrived = status == 3
    counts = np.bincount(status.astype(np.int64), minlength=5)
    tta = tt[arrived]
    kpis = dict(
        vkt_veh_km=float((outflow.sum(axis=0) * city.length_m).sum() / 1000.0),
        vht_veh_h=float(out["occ_vsteps"].sum() * dt / 3600.0),
        delay_veh_h=float((tta - ff_s[arrived]).sum() / 3600.0),
        congestion_index=float(tta.sum() / ff_s[arrived].sum()) if arrived.any() and ff_s[arrived].sum() > 0
        else float("nan"),
        completed=int(counts[3]), en_route=int(counts[2]), waiting=int(counts[1]), not_departed=int(counts[0]),
        unroutable=int(counts[4]), forced_moves=int(out["counters"][3]), teleports=int(out["counters"][6]),
        simulated_s=float(k_end * dt),
        mean_travel_time_s=float(tta.mean()) if len(tta) else float("nan"),
        p90_travel_time_s=float(np.percentile(tta, 90)) if len(tta) else float("nan"),
    )
    meta = dict(link_moves=int(outflow.sum()), ticks=k_end)
    return TrafficResult(trips=table, links=links, kpis=kpis, step_counts=step_counts, params=params, meta=meta)


@dataclass(eq=False)
class DueResult:
    """What :func:`dynamic_user_equilibrium` returns.

    Attributes
    ----------
    result : TrafficResult
        The last iteration's simulation.
    rel_gap : ndarray of float64, shape (iterations,)
        Relative gap of each iteration's simulation (see :func:`dynamic_user_equilibrium`).
    mean_travel_time_s : ndarray of float64, shape (iterations,)
        Mean travel time of the completed trips in each iteration, seconds.
    switched : ndarray of int64, shape (iterations,)
        Trips that took a new route after each iteration.
    routes : (ndarray, ndarray)
        The last iteration's route offsets and links (input to ``TrafficEngine(routes=...)``).
    """

    result: TrafficResult
    rel_gap: np.ndarray
    mean_travel_time_s: np.ndarray
    switched: np.ndarray
    routes: tuple


def _route_costs(route_off, route_links, cost_by_trip_iv, trip_iv):
    """Cost of each trip's route on the link costs of its departure interval."""
    lens = np.diff(route_off)
    if not len(route_links):
        return np.zeros(len(lens))
    owner_iv = np.repeat(trip_iv, lens)
    vals = cost_by_trip_iv[owner_iv, route_links]
    out = np.add.reduceat(np.append(vals, 0.0), route_off[:-1])
    out[lens == 0] = 0.0
    return out


def dynamic_user_equilibrium(city: City, trips, *, until_s, iterations=10, rel_gap=1e-3, seed=0, dt_s=1.0,
                             interval_s=300.0, stuck_time_s=300.0, progress=None, **options) -> DueResult:
    """Day-to-day route choice toward dynamic user equilibrium by the method of successive averages.

    Each iteration simulates the day with the current routes, reads the experienced
    travel time of every link in every interval (``mean_travel_time_s``; free-flow where
    no vehicle left the link), and finds each trip's best route on the link times of its
    departure interval, each link's time including the mean wait of the trips that entered
    the network on it. A share ``1 / (n + 2)`` of the trips (seeded draw) whose best route
    is faster than their current one take it for the next day (MSA on route flows).

    Parameters
    ----------
    iterations : int
        Most days to simulate.
    rel_gap : float
        Stop when the relative gap falls to this value.
    **options
        Passed to :class:`TrafficEngine` (``events``, ``signals`` ...; not ``routes``).

    Returns
    -------
    DueResult

    Notes
    -----
    Relative gap of a day: ``sum(experienced - best) / sum(experienced)`` over the trips
    that completed, where *experienced* is the trip's simulated travel time and *best* the
    least cost on the link times of its departure interval (a snapshot of the time-
    dependent costs, not a time-dependent shortest path: a documented approximation). It
    is 0 at equilibrium under that snapshot, and may be slightly negative.
    """
    if not (isinstance(iterations, int) and iterations >= 1):
        raise DemandError(f"iterations = {iterations!r}; expected an integer >= 1")
    if "routes" in options:
        raise DemandError("dynamic_user_equilibrium chooses the routes; do not pass routes=")
    o_idx, d_idx, depart_s = read_trips(city, trips)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[1])
    route_off, route_links, _ = _routes(city, o_idx, d_idx)
    spi_s = None   # the engine's interval length, read from the first engine
    gaps, means, switched = [], [], []
    res = None
    for n in range(iterations):
        eng = TrafficEngine(city, trips, until_s=until_s, seed=seed, dt_s=dt_s, interval_s=interval_s,
                            stuck_time_s=stuck_time_s, routes=(route_off, route_links), **options)
        eng.run()
        res = eng.result()
        spi_s = eng.spi * eng.params.dt_s
        mtt = res.links["mean_travel_time_s"]
        link_t = np.where(np.isfinite(mtt), mtt, city.free_flow_time_s[None, :])
        # trips that could not enter a full first link waited at their origin: that wait
        # is charged to the link (a full link delays entry from upstream too, where it
        # shows in the upstream link's time: an approximation, documented)
        link_t = link_t + np.nan_to_num(res.links["entry_wait_s"], nan=0.0)
        trip_iv = np.minimum((depart_s // spi_s).astype(np.int64), len(link_t) - 1)
        tt = res.trips["travel_time_s"].to_numpy()
        done = np.isfinite(tt)
        # best routes on the snapshot costs of each departure interval
        best_off = np.zeros(len(o_idx) + 1, dtype=np.int64)
        best_parts, best_cost = [None] * len(link_t), np.full(len(o_idx), np.inf)
        lens = np.zeros(len(o_idx), dtype=np.int64)
        for iv in np.unique(trip_iv):
            sel = np.flatnonzero(trip_iv == iv)
            ro, rl, unr = _routes(city, o_idx[sel], d_idx[sel], link_cost_s=link_t[iv])
            best_parts[iv] = (sel, ro, rl)
            lens[sel] = np.diff(ro)
            best_cost[sel] = _route_costs(ro, rl, link_t[iv][None, :], np.zeros(len(sel), dtype=np.int64))
        np.cumsum(lens, out=best_off[1:])
        best_links = np.empty(int(best_off[-1]), dtype=np.int64)
        for part in best_parts:
            if part is None:
                continue
            sel, ro, rl = part
            best_links[_gather_index(best_off[:-1][sel], np.diff(ro))] = rl
        exp = tt[done]
        gap = float((exp - best_cost[done]).sum() / exp.sum()) if done.any() and exp.sum() > 0 else float("nan")
        gaps.append(gap)
        means.append(float(exp.mean()) if done.any() else float("nan"))
        logger.info("DUE iteration %d: relative gap %.3e, mean travel time %.1f s", n, gap, means[-1])
        if progress is not None:
            progress(n + 1, iterations)
        if gap <= rel_gap or n == iterations - 1:
            switched.append(0)
            break
        cur_cost = _route_costs(route_off, route_links, link_t, trip_iv)
        better = best_cost < cur_cost - 1e-6
        switch = better & (rng.random(len(o_idx)) < 1.0 / (n + 2))
        switched.append(int(switch.sum()))
        # new routes: the best route where switching, else the current one
        new_lens = np.where(switch, lens, np.diff(route_off))
        new_off = np.zeros(len(o_idx) + 1, dtype=np.int64)
        np.cumsum(new_lens, out=new_off[1:])
        src = np.concatenate([route_links, best_links])
        starts = np.where(switch, best_off[:-1] + len(route_links), route_off[:-1])
        route_links = src[_gather_index(starts, new_lens)]
        route_off = new_off
    return DueResult(result=res, rel_gap=np.array(gaps), mean_travel_time_s=np.array(means),
                     switched=np.array(switched, dtype=np.int64), routes=(route_off, route_links))
