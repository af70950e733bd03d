"""Mesoscopic dynamic traffic on a :class:`~twin.graph.City`: ``simulate_traffic``.

Every trip is a vehicle that follows a route of links through per-link FIFO queues with
flow capacity, storage (spillback) and backward-travelling holes — the spatial-queue
model documented in :mod:`twin.kernels.traffic` (fidelity and sources there). This module
validates the demand, routes it, turns the city into the kernel's arrays, runs the
kernel in blocks (for progress and, later, for coupling with the SimPy clock), and
assembles per-trip records, per-interval link series and network KPIs.

Routes are least free-flow-time paths (one shortest-path tree per distinct origin), fixed
for the trip. Not yet here (see the traffic issue): signals, emergency priority, closures
and capacity events, en-route re-routing and day-to-day dynamic equilibrium.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from twin.errors import DemandError, NetworkError
from twin.graph import City

__all__ = ["simulate_traffic", "TrafficResult", "TrafficParams", "link_arrays", "read_trips"]

logger = logging.getLogger(__name__)

STATUS_NAMES = ("not_departed", "waiting", "en_route", "arrived", "unroutable")


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


def link_arrays(city: City, dt_s: float):
    """The kernel's per-link parameters for a tick of ``dt_s`` seconds.

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
    q_lane = city.capacity_veh_per_h / 3600.0 / city.lanes          # veh/s/lane
    kj = city.jam_density_veh_per_km_per_lane / 1000.0                # veh/m/lane
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = kj - q_lane / city.free_speed_mps
        w = np.where(denom > 0, q_lane / denom, np.inf)
    bad = np.flatnonzero(~(denom > 0))
    if len(bad):
        logger.warning("%d links have capacity above free speed x jam density (no backward wave); "
                       "their freed space is released after one tick", len(bad))
    ff_steps = np.maximum(1, np.rint(city.free_flow_time_s / dt_s)).astype(np.int32)
    with np.errstate(divide="ignore", invalid="ignore"):
        hole_steps = np.maximum(1, np.rint(np.where(np.isfinite(w), city.length_m / w / dt_s, 0.0))).astype(np.int32)
    cap_per_step = city.capacity_veh_per_h * dt_s / 3600.0
    storage = np.floor(city.length_m * city.lanes * kj + 1e-9)
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
        raise DemandError(f"trips rows {same[:5].tolist()}: origin == destination ({origin[same[0]]!r}); "
                          f"a trip must leave its origin")
    return o_idx, d_idx, depart


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
                 "mean_travel_time_s": "s", "speed_mps": "m/s"}
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
                     stop_when_done=True, progress=None) -> TrafficResult:
    """Simulate trips through the city's road network (mesoscopic, per vehicle).

    Parameters
    ----------
    city : City
    trips : pandas.DataFrame or dict of array-like
        Columns ``origin``, ``destination`` (external node ids), ``depart_s`` (seconds).
    until_s : float
        Simulated horizon in seconds; trips unfinished by then are reported ``en_route``
        or ``waiting``.
    seed : int
        Seeds the node-model draws (capacity-weighted in-link order at merges).
    dt_s, interval_s, stuck_time_s, stop_when_done
        See :class:`TrafficParams`.
    progress : callable(done_s, total_s), optional
        Called after each block of simulated time.

    Returns
    -------
    TrafficResult

    Raises
    ------
    DemandError
        Malformed trips or parameters (see :func:`read_trips`).
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
    >>> res.trips.loc[0, "status"], res.trips.loc[0, "travel_time_s"] == res.trips.loc[0, "free_flow_time_s"]
    ('arrived', True)
    """
    import pandas as pd

    from twin.kernels import traffic as K

    params = TrafficParams(dt_s=float(dt_s), interval_s=float(interval_s), stuck_time_s=float(stuck_time_s),
                           stop_when_done=bool(stop_when_done))
    if not (isinstance(until_s, (int, float)) and math.isfinite(until_s) and until_s > 0):
        raise DemandError(f"until_s = {until_s!r}; expected a finite number of seconds > 0")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemandError(f"seed = {seed!r}; expected an integer >= 0")
    o_idx, d_idx, depart_s = read_trips(city, trips)
    n_veh = len(o_idx)
    dt = params.dt_s
    la = link_arrays(city, dt)
    route_off, route_links, unroutable = _routes(city, o_idx, d_idx)
    if unroutable.any():
        logger.warning("%d trips have no route (destination unreachable); they are reported 'unroutable'",
                       int(unroutable.sum()))

    n_steps_total = int(math.ceil(until_s / dt))
    spi = max(1, int(round(params.interval_s / dt)))
    n_iv = (n_steps_total + spi - 1) // spi
    depart_step = np.ceil(depart_s / dt - 1e-9).astype(np.int64)
    dep_order = np.lexsort((np.arange(n_veh), depart_step)).astype(np.int64)
    first_link = np.where(unroutable, 0, route_links[np.minimum(route_off[:-1], max(len(route_links) - 1, 0))]
                          if len(route_links) else 0).astype(np.int64)
    ok = ~unroutable
    dl_order = np.lexsort((np.arange(n_veh), depart_step, first_link))
    dl_order = dl_order[ok[dl_order]].astype(np.int64)
    dep_link_indptr = np.zeros(city.n_links + 1, dtype=np.int64)
    np.cumsum(np.bincount(first_link[ok], minlength=city.n_links), out=dep_link_indptr[1:])

    # routes with a sentinel -1 - v after each (see the kernel's route_seq)
    lens = np.diff(route_off)
    route_start = (route_off[:-1] + np.arange(n_veh)).astype(np.int64)
    route_seq = np.empty(len(route_links) + n_veh, dtype=np.int32)
    sentinel_pos = route_start + lens
    mask = np.ones(len(route_seq), dtype=bool)
    mask[sentinel_pos] = False
    route_seq[mask] = route_links
    route_seq[sentinel_pos] = -1 - np.arange(n_veh)
    if len(route_seq) >= 2**31 - 1:
        raise DemandError(f"{len(route_seq):,} route entries (links over all routes plus one per trip); at most "
                          f"2**31 - 2 are supported")

    storage = la["storage"]
    ring_cap = (storage + 2).astype(np.int32)
    ring_start = np.zeros(city.n_links, dtype=np.int64)
    np.cumsum(ring_cap[:-1], out=ring_start[1:])
    total_ring = int(ring_cap.sum())
    state = dict(
        ring=np.zeros(total_ring, dtype=np.int64),
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
    )
    out = dict(
        inflow=np.zeros((n_iv, city.n_links), dtype=np.int32), outflow=np.zeros((n_iv, city.n_links), dtype=np.int32),
        tt_sum_steps=np.zeros((n_iv, city.n_links), dtype=np.int64),
        occ_part=np.zeros((n_iv, city.n_links), dtype=np.int64),
        step_counts=np.zeros((n_steps_total, 3), dtype=np.int64), counters=np.zeros(len(K.COUNTER_NAMES), np.int64),
    )
    stuck_steps = max(1, int(round(params.stuck_time_s / dt)))
    block = max(spi, 3600 // max(int(dt), 1))
    done = 0
    import time

    kernel_s = 0.0
    while done < n_steps_total:
        t0 = time.perf_counter()
        n = min(block, n_steps_total - done)
        K.simulate_queue(
            city.rev_indptr, city.rev_link, city.link_to_idx, la["ff_steps"], la["cap_per_step"], storage, la["hole_steps"],
            ring_start, ring_cap, route_seq, route_start, depart_step, dep_order, dep_link_indptr, dl_order,
            n, stuck_steps, int(seed), spi, params.stop_when_done,
            state["ring"], state["ring_head"], state["ring_count"],
            state["hole_head"], state["hole_count"], state["head_due"], state["head_since"], state["node_wake"], state["acc"], state["acc_step"],
            state["status"], state["arrive_step"],
            out["inflow"], out["outflow"], out["tt_sum_steps"], out["occ_part"],
            out["step_counts"], out["counters"])
        kernel_s += time.perf_counter() - t0
        done = int(out["counters"][4])
        if progress is not None:
            progress(min(done * dt, until_s), until_s)
        if params.stop_when_done and out["counters"][2] >= int(ok.sum()):
            break
    k_end = int(out["counters"][4])
    # vehicle-ticks per interval: within-interval parts plus whole intervals of the
    # vehicles present at each interval's start; the last interval ends at k_end.
    present_start = np.zeros_like(out["occ_part"])
    np.cumsum((out["inflow"] - out["outflow"])[:-1], axis=0, out=present_start[1:])
    vsteps = out["occ_part"] + spi * present_start
    if n_iv and k_end < n_iv * spi:
        last_iv = max(k_end - 1, 0) // spi
        vsteps[last_iv] -= state["ring_count"].astype(np.int64) * ((last_iv + 1) * spi - k_end)
        vsteps[last_iv + 1:] = 0
    out["occ_vsteps"] = vsteps
    step_counts = out["step_counts"][:k_end]
    result = _assemble(city, trips, o_idx, d_idx, depart_s, route_off, route_links, state, out, la, params, k_end,
                       spi, n_iv, step_counts, pd)
    result.meta["kernel_s"] = kernel_s
    return result


def _assemble(city, trips, o_idx, d_idx, depart_s, route_off, route_links, state, out, la, params, k_end, spi,
              n_iv, step_counts, pd):
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
    links = dict(time_s=np.arange(n_iv) * spi * dt, inflow_veh=inflow, outflow_veh=outflow, occupancy_veh=occupancy,
                 mean_travel_time_s=mean_tt, speed_mps=speed)
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
