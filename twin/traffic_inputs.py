"""What the traffic engine reads: its parameters and constants, the kernel's per-link arrays,
and the validation of trips, vehicle classes and network events (re-exported by :mod:`twin.traffic`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from twin.errors import DemandError, UnknownNodeError
from twin.graph import City

# log records keep the logger name they had before the split into modules: twin.traffic
logger = logging.getLogger("twin.traffic")

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


#: The latest departure a trip may have, seconds (1e12, about 31,700 years): beyond it a
#: departure would overflow the engine's integer tick counters and wrap to t = 0.
MAX_DEPART_S = 1e12


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
    bad = np.flatnonzero(~np.isfinite(depart) | (depart < 0) | (depart > MAX_DEPART_S))
    if len(bad):
        raise DemandError(f"trips rows {bad[:5].tolist()}: depart_s = {depart[bad[:5]].tolist()}; expected finite "
                          f"seconds from 0 to {MAX_DEPART_S:.0e} (about 31,700 years)")
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


EVENT_ACTIONS = ("close", "open", "capacity", "speed")


def read_events(city: City, events):
    """Validate a table of network events.

    Parameters
    ----------
    events : pandas.DataFrame, dict of array-like, or list of dict
        Columns ``time_s`` (seconds >= 0), ``action`` (``"close"``, ``"open"``,
        ``"capacity"`` or ``"speed"``), the link as ``link`` (index) or ``from_node`` and
        ``to_node`` (external ids; every link between them), ``capacity_veh_per_h`` for
        ``"capacity"`` (> 0; the link's new saturation flow) and ``free_speed_mps`` for
        ``"speed"`` (> 0; the link's new free speed, for vehicles entering from then on).

    Returns
    -------
    list of (time_s, action, link indices, value)
        Sorted by time, then input order; ``value`` is the capacity (veh/h) or the free speed
        (m/s) of a ``"capacity"`` or ``"speed"`` event, else None.

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
        elif action == "speed":
            cap = _positive(row.get("free_speed_mps"))
            if cap is None:
                raise DemandError(f"{where}: free_speed_mps = {row.get('free_speed_mps')!r}; expected a speed > 0 "
                                  f"m/s (close the link to stop all flow)")
        out.append((t, action, links, cap, i))
    out.sort(key=lambda e: (e[0], e[4]))
    return [(t, a, links, cap) for t, a, links, cap, _ in out]


def _positive(value):
    """``value`` as a finite float > 0, else None."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _is_real(value) -> bool:
    """A real number (Python or numpy), not a bool."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
