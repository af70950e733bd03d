"""Fixed-time traffic signals: per-link plans for the traffic kernel.

A :class:`SignalPlan` gives every link a cycle, the start of its green within the cycle
and the green length, in seconds; unsignalised links have a NaN cycle and no green. The
signal acts at the link's downstream end: the link discharges vehicles only in its green
(see :mod:`twin.kernels.traffic`, which takes the plan as tick arrays from
:meth:`SignalPlan.to_ticks`). A whole link sees one signal: there are no turn-specific
phases or lanes, no actuation and no pedestrian phases.

Builders:

- :func:`fixed_time_plan` — a two-phase plan (north-south, east-west) at every node with
  enough in-links, green split by capacity (the rule is in its docstring);
- :meth:`SignalPlan.from_table` — explicit rows ``(from_node, to_node, cycle_s,
  green_start_s, green_s)``, one per in-link;
- :func:`max_pressure_plan` — adaptive control (Varaiya 2013, normalised as Kouvelas et al.
  2014): the same nodes and two phases (approach directions), but every ``min_green_s``
  each node gives green to the phase of largest pressure, paying ``lost_time_s`` on a
  switch. The pressure rule and its fidelity are in :mod:`twin.kernels.traffic`;
  :class:`MaxPressurePlan` holds the phases;
- :func:`signal_plan` — one of the above by name (``"none"``, ``"fixed-time"``,
  ``"max-pressure"``), for the CLI and scenario files.

Green here is *effective* green (Webster; HCM ``g``): the displayed green plus amber less
the start-up and clearance lost time. The kernel discharges a queued link at its
capacity during green, plus one vehicle from its full budget in the first green tick, so
an approach passes between ``s·g`` and ``s·g + 1`` vehicles a cycle (``s`` its saturation
flow, the link capacity).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError, UnknownNodeError
from twin.graph import City

__all__ = ["SignalPlan", "MaxPressurePlan", "fixed_time_plan", "max_pressure_plan", "signal_plan",
           "approach_direction", "SIGNAL_MODES"]

#: Signal control modes :func:`signal_plan` accepts.
SIGNAL_MODES = ("none", "fixed-time", "max-pressure")

logger = logging.getLogger(__name__)


def _frozen(a, dtype=np.float64):
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


def _number(x):
    """``x`` as a float, or None when it is not a real number."""
    if isinstance(x, (bool, np.bool_)):
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, eq=False)
class SignalPlan:
    """Fixed-time signals, per link, in seconds.

    Attributes
    ----------
    cycle_s : ndarray of float64 (n_links,)
        Cycle length of the signal at the link's downstream end; NaN: unsignalised.
    green_start_s : ndarray of float64 (n_links,)
        Start of the link's (effective) green, seconds from the start of the simulation
        modulo the cycle (offset included); NaN where unsignalised.
    green_s : ndarray of float64 (n_links,)
        Effective green per cycle, ``0 < green_s <= cycle_s``; 0 where unsignalised.
    """

    cycle_s: np.ndarray
    green_start_s: np.ndarray
    green_s: np.ndarray

    def __post_init__(self):
        arrays = [np.asarray(getattr(self, n), dtype=np.float64) for n in ("cycle_s", "green_start_s", "green_s")]
        if not (arrays[0].ndim == 1 and arrays[0].shape == arrays[1].shape == arrays[2].shape):
            raise ScenarioError(f"SignalPlan arrays must be 1-d and of one length (n_links); got shapes "
                                f"{[a.shape for a in arrays]}")
        for name, a in zip(("cycle_s", "green_start_s", "green_s"), arrays):
            object.__setattr__(self, name, _frozen(a))
        sig = ~np.isnan(self.cycle_s)
        c, g0, g = self.cycle_s[sig], self.green_start_s[sig], self.green_s[sig]
        bad = ~(np.isfinite(c) & (c > 0) & np.isfinite(g0) & (g0 >= 0) & np.isfinite(g) & (g > 0) & (g <= c))
        if bad.any():
            L = int(np.flatnonzero(sig)[np.argmax(bad)])
            raise ScenarioError(f"SignalPlan link {L}: cycle_s = {self.cycle_s[L]}, green_start_s = "
                                f"{self.green_start_s[L]}, green_s = {self.green_s[L]}; expected cycle_s > 0, "
                                f"green_start_s >= 0 and 0 < green_s <= cycle_s (finite seconds)")
        if np.any(self.green_s[~sig] != 0):
            raise ScenarioError("SignalPlan: an unsignalised link (cycle_s NaN) has green_s != 0")

    @property
    def n_links(self) -> int:
        return len(self.cycle_s)

    @property
    def signalised(self) -> np.ndarray:
        """Bool mask of the signalised links."""
        return ~np.isnan(self.cycle_s)

    @classmethod
    def unsignalised(cls, city: City) -> "SignalPlan":
        """A plan with no signal at all (every link always green)."""
        m = city.n_links
        return cls(np.full(m, np.nan), np.full(m, np.nan), np.zeros(m))

    def to_ticks(self, dt_s: float):
        """The kernel's arrays for a tick of ``dt_s`` seconds.

        The cycle becomes ``C = round(cycle_s / dt_s)`` ticks (a warning is logged when
        that is not exact), and times within it are scaled by ``C / cycle_s`` (``1 /
        dt_s`` when exact) and rounded half up: the green runs from tick ``round(
        green_start_s C / cycle_s)`` to ``round((green_start_s + green_s) C / cycle_s)``
        (at least one tick), modulo ``C``. Rounding is monotone and moves with the cycle,
        so windows that do not overlap in seconds do not overlap in ticks. A green as long
        as the cycle is no signal (cycle 0).

        Returns
        -------
        sig_cycle, sig_green_from, sig_green_to : ndarray of int32 (n_links,)
            Cycle ticks (0: unsignalised) and the green window ``[from, to)`` in ticks
            within the cycle, wrapping when ``from > to``; see
            :func:`twin.kernels.traffic.simulate_queue`.

        Raises
        ------
        ScenarioError
            ``dt_s`` is not a finite number > 0, or a cycle is shorter than two ticks.
        """
        dt = _number(dt_s)
        if dt is None or not (math.isfinite(dt) and dt > 0):
            raise ScenarioError(f"dt_s = {dt_s!r}; expected a finite number of seconds > 0")
        m = self.n_links
        sig_cycle = np.zeros(m, dtype=np.int32)
        g_from = np.zeros(m, dtype=np.int32)
        g_to = np.zeros(m, dtype=np.int32)
        sig = np.flatnonzero(self.signalised)
        if not len(sig):
            return sig_cycle, g_from, g_to
        c_exact = self.cycle_s[sig] / dt
        cycle = np.rint(c_exact).astype(np.int64)
        short = np.flatnonzero(cycle < 2)
        if len(short):
            L = int(sig[short[0]])
            raise ScenarioError(f"signal cycle_s = {self.cycle_s[L]} s on link {L} is shorter than two ticks of "
                                f"dt_s = {dt} s; expected cycle_s >= 2 * dt_s")
        inexact = np.abs(c_exact - cycle) > 1e-6
        if inexact.any():
            logger.warning("%d signal cycles are not whole ticks of %g s; rounded (e.g. %g s -> %d ticks)",
                           int(inexact.sum()), dt, self.cycle_s[sig][inexact][0], cycle[inexact][0])
        dt_eff = self.cycle_s[sig] / cycle          # dt itself when the cycle is whole ticks
        start = np.floor(self.green_start_s[sig] / dt_eff + 0.5).astype(np.int64)
        end = np.floor((self.green_start_s[sig] + self.green_s[sig]) / dt_eff + 0.5).astype(np.int64)
        green = np.clip(end - start, 1, cycle)
        full = green >= cycle
        keep = ~full
        sig_cycle[sig[keep]] = cycle[keep]
        g_from[sig[keep]] = start[keep] % cycle[keep]
        g_to[sig[keep]] = (start[keep] + green[keep]) % cycle[keep]
        return sig_cycle, g_from, g_to

    @classmethod
    def from_table(cls, city: City, rows) -> "SignalPlan":
        """An explicit plan: one row per signalised in-link.

        Parameters
        ----------
        city : City
        rows : iterable of (from_node, to_node, cycle_s, green_start_s, green_s), or a
            pandas DataFrame with those five columns in that order
            The link ``from_node -> to_node`` (external node ids; every parallel link
            between them gets the row) discharges for ``green_s`` seconds from
            ``green_start_s`` (offset included, modulo the cycle) in each cycle of
            ``cycle_s`` seconds. Links without a row are unsignalised.

        Raises
        ------
        ScenarioError
            A malformed row, an unknown node or link, a link given twice, or a value
            outside ``cycle_s > 0``, ``green_start_s >= 0``, ``0 < green_s <= cycle_s``
            (NaN included); the message names the row.
        """
        if hasattr(rows, "itertuples"):
            rows = rows.itertuples(index=False, name=None)
        link_of = {}
        for L, (a, b) in enumerate(zip(city.link_from_idx.tolist(), city.link_to_idx.tolist())):
            link_of.setdefault((a, b), []).append(L)
        m = city.n_links
        cycle, start, green = np.full(m, np.nan), np.full(m, np.nan), np.zeros(m)
        row_of = {}
        for i, row in enumerate(rows):
            try:
                a_id, b_id, c, g0, g = row
            except (TypeError, ValueError):
                raise ScenarioError(f"signal plan row {i}: {row!r}; expected (from_node, to_node, cycle_s, "
                                    f"green_start_s, green_s)") from None
            where = f"signal plan row {i} (link {a_id!r} -> {b_id!r})"
            try:
                a, b = (int(x) for x in city.node_index([a_id, b_id]))
            except UnknownNodeError:
                bad = a_id if not _known(city, a_id) else b_id
                raise ScenarioError(f"signal plan row {i}: unknown node {bad!r} in city {city.name!r}") from None
            links = link_of.get((a, b))
            if links is None:
                raise ScenarioError(f"{where}: city {city.name!r} has no link from {a_id!r} to {b_id!r}")
            vals = {}
            for name, x in (("cycle_s", c), ("green_start_s", g0), ("green_s", g)):
                v = _number(x)
                if v is None or not math.isfinite(v):
                    raise ScenarioError(f"{where}: {name} = {x!r}; expected a finite number of seconds")
                vals[name] = v
            if vals["cycle_s"] <= 0:
                raise ScenarioError(f"{where}: cycle_s = {c!r}; expected > 0 seconds")
            if vals["green_start_s"] < 0:
                raise ScenarioError(f"{where}: green_start_s = {g0!r}; expected >= 0 seconds")
            if not 0 < vals["green_s"] <= vals["cycle_s"]:
                raise ScenarioError(f"{where}: green_s = {g!r} with cycle_s = {c!r}; expected 0 < green_s <= "
                                    f"cycle_s")
            if links[0] in row_of:
                raise ScenarioError(f"{where}: the link is given twice (rows {row_of[links[0]]} and {i})")
            for L in links:
                row_of[L] = i
                cycle[L], start[L], green[L] = vals["cycle_s"], vals["green_start_s"], vals["green_s"]
        return cls(cycle, start, green)


def _node_id(city, i):
    """External id of node index ``i`` as a plain Python value, for messages."""
    v = city.node_ids[i]
    return v.item() if isinstance(v, np.generic) else v


def _known(city, node_id):
    try:
        city.node_index([node_id])
    except UnknownNodeError:
        return False
    return True


def approach_direction(city: City):
    """Unit-free direction ``(dx, dy)`` of each link's last segment, towards its head node.

    The last segment of the link's polyline where the city has geometry (and that segment
    has a length), else the straight line from tail to head node.
    """
    tail, head = city.link_from_idx, city.link_to_idx
    dx = city.x_m[head] - city.x_m[tail]
    dy = city.y_m[head] - city.y_m[tail]
    if city.geom_indptr is not None and city.geom_x_m is not None and len(city.geom_x_m):
        end = np.asarray(city.geom_indptr[1:], dtype=np.int64)
        has = end - np.asarray(city.geom_indptr[:-1], dtype=np.int64) >= 2
        last = np.maximum(end - 1, 0)
        prev = np.maximum(end - 2, 0)
        gx = city.geom_x_m[last] - city.geom_x_m[prev]
        gy = city.geom_y_m[last] - city.geom_y_m[prev]
        use = has & ((gx != 0) | (gy != 0))
        dx = np.where(use, gx, dx)
        dy = np.where(use, gy, dy)
    return dx, dy


def fixed_time_plan(city: City, *, nodes=None, cycle_s=90.0, lost_time_s=4.0, min_in_links=3, offset_s=0.0,
                    link_flow_veh_per_h=None, min_green_s=5.0) -> SignalPlan:
    """A two-phase fixed-time plan for the city's intersections.

    Rule
    ----
    - **Which nodes**: with ``nodes=None``, every node with at least ``min_in_links``
      in-links, except no-through nodes (centroids), and with in-links in both groups
      below; otherwise exactly the given nodes (external ids; each must have in-links in
      both groups).
    - **Groups**: each in-link is put in the north-south group when its approach
      direction (the last segment of its geometry, else tail to head node) is at least
      as steep as it is wide, ``|dy| >= |dx|`` (|sin| >= |cos| of the bearing), else in
      the east-west group.
    - **Phases**: north-south green from the node's offset, then ``lost_time_s``, then
      east-west green, then ``lost_time_s`` to the end of the cycle. Lost time is per
      phase (start-up plus clearance), so the two greens sum to ``cycle_s - 2 *
      lost_time_s``.
    - **Split**: Webster's rule gives each phase green in proportion to its critical
      flow ratio ``y = q / s`` (Webster 1958; HCM). With ``link_flow_veh_per_h`` (e.g.
      from a static assignment), ``y`` of a group is the largest ``flow / capacity`` of its
      links. Without it no demand is known and the proxy is the group's total capacity
      (in-link ``capacity_veh_per_h`` summed): demand assumed to scale with the road
      built for it. A node whose flow ratios are all zero falls back to the capacity
      split. Either way each phase keeps at least ``min_green_s``.

    Parameters
    ----------
    city : City
        Needs node coordinates.
    nodes : sequence of node ids, optional
    cycle_s : float
        Cycle length, seconds (default 90), > 2 * lost_time_s.
    lost_time_s : float
        Lost time per phase, seconds (default 4), >= 0.
    min_in_links : int
        Default node rule's threshold (default 3: T-junctions and crossings).
    offset_s : float or array-like (n_nodes,)
        Start of the north-south green at each node, seconds (default 0: all nodes in
        phase).
    link_flow_veh_per_h : array-like (n_links,), optional
        Demand per link for the Webster split.
    min_green_s : float
        Shortest green of a phase, seconds (default 5); ``cycle_s - 2 * lost_time_s >= 2 *
        min_green_s``.

    Returns
    -------
    SignalPlan

    Raises
    ------
    ScenarioError
        Bad parameters, a city without coordinates, or a given node with in-links in
        one group only.

    Examples
    --------
    >>> import twin
    >>> from twin.signals import fixed_time_plan
    >>> city = twin.load_city("grid:3x3")
    >>> plan = fixed_time_plan(city)                  # the 5 nodes with 3 or 4 in-links
    >>> int(plan.signalised.sum()), sorted(set(city.node_ids[city.link_to_idx[plan.signalised]].tolist()))
    (16, [2, 4, 5, 6, 8])
    """
    c = _number(cycle_s)
    lost = _number(lost_time_s)
    if lost is None or not (math.isfinite(lost) and lost >= 0):
        raise ScenarioError(f"lost_time_s = {lost_time_s!r}; expected a finite number of seconds >= 0")
    min_g = _number(min_green_s)
    if min_g is None or not (math.isfinite(min_g) and min_g > 0):
        raise ScenarioError(f"min_green_s = {min_green_s!r}; expected a finite number of seconds > 0")
    if c is None or not (math.isfinite(c) and c >= 2 * (lost + min_g)):
        raise ScenarioError(f"cycle_s = {cycle_s!r}; expected a finite number of seconds >= 2 * (lost_time_s + "
                            f"min_green_s) = {2 * (lost + min_g)}")
    if isinstance(min_in_links, bool) or not isinstance(min_in_links, (int, np.integer)) or min_in_links < 1:
        raise ScenarioError(f"min_in_links = {min_in_links!r}; expected an integer >= 1")
    n = city.n_nodes
    try:
        offset = np.broadcast_to(np.asarray(offset_s, dtype=np.float64), (n,))
    except (TypeError, ValueError):
        raise ScenarioError(f"offset_s must be a number or an array of {n} seconds (one per node); got "
                            f"{np.shape(offset_s)}") from None
    if not np.isfinite(offset).all():
        bad = int(np.argmin(np.isfinite(offset)))
        raise ScenarioError(f"offset_s at node {_node_id(city, bad)!r} = {offset[bad]}; expected finite seconds")
    if not city.has_coordinates:
        raise ScenarioError(f"city {city.name!r} has no node coordinates to group approaches by direction; give "
                            f"an explicit plan with SignalPlan.from_table")
    weight = np.asarray(city.capacity_veh_per_h, dtype=np.float64)
    ratio = None
    if link_flow_veh_per_h is not None:
        q = np.asarray(link_flow_veh_per_h, dtype=np.float64)
        if q.shape != (city.n_links,) or not (np.isfinite(q) & (q >= 0)).all():
            raise ScenarioError(f"link_flow_veh_per_h: expected {city.n_links} finite flows >= 0 (one per link); "
                                f"got shape {q.shape}")
        ratio = q / weight

    dx, dy = approach_direction(city)
    ns = np.abs(dy) >= np.abs(dx)
    in_count = np.diff(city.rev_indptr)
    if nodes is None:
        chosen = np.flatnonzero((in_count >= min_in_links) & ~np.asarray(city.no_through, dtype=bool))
        explicit = False
    else:
        chosen = np.unique(np.asarray(city.node_index(list(nodes)), dtype=np.int64).reshape(-1))
        explicit = True

    m = city.n_links
    cycle = np.full(m, np.nan)
    start = np.full(m, np.nan)
    green = np.zeros(m)
    usable = c - 2 * lost
    for node in chosen.tolist():
        links = np.asarray(city.rev_link[city.rev_indptr[node]:city.rev_indptr[node + 1]], dtype=np.int64)
        groups = (links[ns[links]], links[~ns[links]])
        if not (len(groups[0]) and len(groups[1])):
            if explicit:
                one = "north-south" if len(groups[0]) else "east-west"
                raise ScenarioError(f"node {_node_id(city, node)!r}: every in-link approaches {one} "
                                    f"({len(links)} in-links); a two-phase plan needs both directions")
            continue
        w = np.array([weight[g].sum() for g in groups])
        if ratio is not None:
            y = np.array([ratio[g].max() for g in groups])
            if y.sum() > 0:
                w = y
        g_ns = min(max(usable * w[0] / w.sum(), min_g), usable - min_g)
        g_ew = usable - g_ns
        t0 = offset[node] % c
        for g_links, g0, g in ((groups[0], t0, g_ns), (groups[1], (t0 + g_ns + lost) % c, g_ew)):
            cycle[g_links] = c
            start[g_links] = g0
            green[g_links] = g
    return SignalPlan(cycle, start, green)


def _two_phase_nodes(city: City, nodes, min_in_links, what):
    """Nodes and their (north-south, east-west) in-link groups, as :func:`fixed_time_plan` picks them."""
    if isinstance(min_in_links, bool) or not isinstance(min_in_links, (int, np.integer)) or min_in_links < 1:
        raise ScenarioError(f"min_in_links = {min_in_links!r}; expected an integer >= 1")
    if not city.has_coordinates:
        raise ScenarioError(f"city {city.name!r} has no node coordinates to group approaches by direction")
    dx, dy = approach_direction(city)
    ns = np.abs(dy) >= np.abs(dx)
    in_count = np.diff(city.rev_indptr)
    if nodes is None:
        chosen = np.flatnonzero((in_count >= min_in_links) & ~np.asarray(city.no_through, dtype=bool))
    else:
        chosen = np.unique(np.asarray(city.node_index(list(nodes)), dtype=np.int64).reshape(-1))
    out = []
    for node in chosen.tolist():
        links = np.asarray(city.rev_link[city.rev_indptr[node]:city.rev_indptr[node + 1]], dtype=np.int64)
        groups = (links[ns[links]], links[~ns[links]])
        if not (len(groups[0]) and len(groups[1])):
            if nodes is not None:
                one = "north-south" if len(groups[0]) else "east-west"
                raise ScenarioError(f"node {_node_id(city, node)!r}: every in-link approaches {one} "
                                    f"({len(links)} in-links); a two-phase {what} needs both directions")
            continue
        out.append((node, groups))
    return out


@dataclass(frozen=True, eq=False)
class MaxPressurePlan:
    """Max-pressure signal control: the phases of each controlled node.

    Attributes
    ----------
    n_links : int
        Links of the city the plan was built for.
    nodes : ndarray of int64 (n_mp,)
        Controlled node indices.
    phase_indptr : ndarray of int64 (n_mp + 1,)
        Phases of node ``i``: ``phase_indptr[i] .. phase_indptr[i + 1]``.
    link_indptr : ndarray of int64 (n_phases + 1,), links : ndarray of int32
        In-links of each phase (each link in one phase at most, and an in-link of its node).
    min_green_s : float
        Decision period (a decided green lasts at least this long), seconds.
    lost_time_s : float
        Amber plus all-red after a phase switch, seconds, ``0 <= lost_time_s < min_green_s``.
    """

    n_links: int
    nodes: np.ndarray
    phase_indptr: np.ndarray
    link_indptr: np.ndarray
    links: np.ndarray
    min_green_s: float
    lost_time_s: float

    def __post_init__(self):
        g, lost = _number(self.min_green_s), _number(self.lost_time_s)
        if g is None or not (math.isfinite(g) and g > 0):
            raise ScenarioError(f"max-pressure min_green_s = {self.min_green_s!r}; expected a finite number of "
                                f"seconds > 0")
        if lost is None or not (math.isfinite(lost) and 0 <= lost < g):
            raise ScenarioError(f"max-pressure lost_time_s = {self.lost_time_s!r}; expected seconds >= 0 and < "
                                f"min_green_s = {g}")
        for name, dtype in (("nodes", np.int64), ("phase_indptr", np.int64), ("link_indptr", np.int64),
                            ("links", np.int32)):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))
        if len(self.phase_indptr) != len(self.nodes) + 1 or self.phase_indptr[-1] != len(self.link_indptr) - 1 \
                or self.link_indptr[-1] != len(self.links):
            raise ScenarioError("MaxPressurePlan: phase_indptr, link_indptr and links do not fit together")
        if len(np.unique(self.links)) != len(self.links):
            raise ScenarioError("MaxPressurePlan: a link is in two phases; each link belongs to one phase at most")
        if len(self.links) and (self.links.min() < 0 or self.links.max() >= self.n_links):
            raise ScenarioError(f"MaxPressurePlan: link indices must be in 0..{self.n_links - 1}")

    @property
    def signalised(self) -> np.ndarray:
        """Bool mask of the controlled links."""
        m = np.zeros(self.n_links, dtype=bool)
        m[self.links] = True
        return m

    def to_ticks(self, dt_s: float):
        """The kernel's arrays for a tick of ``dt_s`` seconds.

        Returns
        -------
        sig_cycle, sig_green_from, sig_green_to : ndarray of int32 (n_links,)
            Controlled links: cycle = the period in ticks, red (``0, 0``) until the first
            decision at tick 0; others unsignalised (0).
        kernel : dict
            ``mp_phase_indptr``, ``mp_link_indptr``, ``mp_link``, ``mp_period_steps`` (at
            least 2 ticks) and ``mp_lost_steps`` (rounded half up, below the period).

        Raises
        ------
        ScenarioError
            ``dt_s`` is not a finite number > 0.
        """
        dt = _number(dt_s)
        if dt is None or not (math.isfinite(dt) and dt > 0):
            raise ScenarioError(f"dt_s = {dt_s!r}; expected a finite number of seconds > 0")
        period = max(2, int(math.floor(self.min_green_s / dt + 0.5)))
        lost = min(period - 1, int(math.floor(self.lost_time_s / dt + 0.5)))
        if abs(period * dt - self.min_green_s) > 1e-6 or abs(lost * dt - self.lost_time_s) > 1e-6:
            logger.warning("max-pressure min_green_s = %g s and lost_time_s = %g s are not whole ticks of %g s; "
                           "using %d and %d ticks", self.min_green_s, self.lost_time_s, dt, period, lost)
        sig_cycle = np.zeros(self.n_links, dtype=np.int32)
        sig_cycle[self.links] = period
        zeros = np.zeros(self.n_links, dtype=np.int32)
        return sig_cycle, zeros, zeros.copy(), dict(
            mp_phase_indptr=np.array(self.phase_indptr), mp_link_indptr=np.array(self.link_indptr),
            mp_link=np.array(self.links), mp_period_steps=period, mp_lost_steps=lost)


def max_pressure_plan(city: City, *, nodes=None, min_green_s=15.0, lost_time_s=4.0, min_in_links=3,
                      phases=None) -> MaxPressurePlan:
    """Max-pressure control at the city's intersections (Varaiya 2013).

    Rule
    ----
    - **Which nodes and phases**: as :func:`fixed_time_plan`: every node with at least
      ``min_in_links`` in-links in both approach groups (not a no-through node), or the
      given ``nodes``; phase 0 is the north-south group of in-links, phase 1 the east-west
      group (``|dy| >= |dx|`` of the last segment). With ``phases`` the phases are given
      instead: ``{node id: [[(from_node, to_node), ...] per phase]}``.
    - **Control**: every ``min_green_s`` each node gives green to the phase with the
      largest pressure (normalised queues, routes as turning shares; rule and fidelity in
      :mod:`twin.kernels.traffic`), keeping its phase on ties; a switch starts the green
      ``lost_time_s`` late (amber and all-red, the same lost time as a fixed-time phase).

    Parameters
    ----------
    city : City
    nodes : sequence of node ids, optional
    min_green_s : float
        Decision period, seconds (default 15), > ``lost_time_s``.
    lost_time_s : float
        Lost time per switch, seconds (default 4), >= 0.
    min_in_links : int
        Default node rule's threshold (default 3).
    phases : dict, optional
        Explicit phases per node (overrides ``nodes``).

    Returns
    -------
    MaxPressurePlan

    Raises
    ------
    ScenarioError
        Bad parameters, a city without coordinates, a given node with in-links in one
        group only, a phase link that is not an in-link of its node, or a link in two phases.

    Examples
    --------
    >>> import twin
    >>> from twin.signals import max_pressure_plan
    >>> city = twin.load_city("grid:3x3")
    >>> plan = max_pressure_plan(city, min_green_s=10.0, lost_time_s=2.0)
    >>> len(plan.nodes), int(plan.signalised.sum())
    (5, 16)
    """
    for name, v in (("min_green_s", min_green_s), ("lost_time_s", lost_time_s)):
        x = _number(v)
        if x is None or not math.isfinite(x):
            raise ScenarioError(f"max-pressure {name} = {v!r}; expected a finite number of seconds")
    if phases is not None:
        link_of = {}
        for L, (a, b) in enumerate(zip(city.link_from_idx.tolist(), city.link_to_idx.tolist())):
            link_of.setdefault((a, b), []).append(L)
        groups_of = []
        for node_id, node_phases in phases.items():
            node = int(np.asarray(city.node_index([node_id])).reshape(-1)[0])
            groups = []
            for j, ph in enumerate(node_phases):
                links = []
                for pair in ph:
                    a, b = (int(i) for i in city.node_index(list(pair)))
                    if b != node or (a, b) not in link_of:
                        raise ScenarioError(f"max-pressure phase {j} of node {node_id!r}: {pair!r} is not an "
                                            f"in-link of the node")
                    links += link_of[(a, b)]
                groups.append(np.array(links, dtype=np.int64))
            groups_of.append((node, tuple(groups)))
    else:
        groups_of = _two_phase_nodes(city, nodes, min_in_links, "max-pressure plan")
    node_idx = [n for n, _ in groups_of]
    phase_indptr = np.zeros(len(groups_of) + 1, dtype=np.int64)
    np.cumsum([len(g) for _, g in groups_of], out=phase_indptr[1:])
    all_phases = [ph for _, g in groups_of for ph in g]
    link_indptr = np.zeros(len(all_phases) + 1, dtype=np.int64)
    np.cumsum([len(ph) for ph in all_phases], out=link_indptr[1:])
    links = np.concatenate(all_phases).astype(np.int32) if all_phases else np.zeros(0, dtype=np.int32)
    return MaxPressurePlan(city.n_links, np.array(node_idx, dtype=np.int64), phase_indptr, link_indptr, links,
                           float(min_green_s), float(lost_time_s))


def signal_plan(city: City, mode: str, *, cycle_s=90.0, min_green_s=15.0, lost_time_s=4.0, **options):
    """The signal control named ``mode``: ``"none"`` (None), ``"fixed-time"`` or ``"max-pressure"``.

    ``cycle_s`` is the fixed-time cycle; ``min_green_s`` the max-pressure decision period;
    ``lost_time_s`` the lost time of both;
    ``options`` go to the builder.

    Raises
    ------
    ScenarioError
        An unknown mode (the message lists :data:`SIGNAL_MODES`), or the builder's errors.
    """
    if mode == "none":
        return None
    if mode == "fixed-time":
        return fixed_time_plan(city, cycle_s=cycle_s, lost_time_s=lost_time_s, **options)
    if mode == "max-pressure":
        return max_pressure_plan(city, min_green_s=min_green_s, lost_time_s=lost_time_s, **options)
    raise ScenarioError(f"unknown signal mode {mode!r}; expected one of {list(SIGNAL_MODES)}")
