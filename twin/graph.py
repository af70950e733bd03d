"""The compiled city road graph.

A :class:`City` is the frozen, array form of a directed road network that every part of
the twin runs on: links in a fixed order with their physical attributes, node coordinates
in metres, zones, and the CSR forward and reverse stars that routing and traffic kernels
walk. networkx is the authoring and interchange form (:meth:`City.to_networkx`,
``twin.load_city(G)``); inside, only arrays.

Link order is the order of the source (file rows, edge order); the CSR stars sort links
by tail (forward) and head (reverse) node with a stable sort, so results never depend on
anything but the input.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np

from twin.data.network import DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE, RawNetwork
from twin.errors import NetworkError, ScenarioError, UnknownNodeError

__all__ = ["City", "write_network", "scenario_node_index"]

logger = logging.getLogger(__name__)

#: Largest accepted link attributes: physical ranges with room for aggregated links (TNTP
#: connectors reach 999,999 veh/h, 500 lanes when lanes are derived from capacity), small
#: enough that a link's capacity per tick and its storage (lanes x length x jam density, at
#: most :data:`MAX_LINK_STORAGE_VEH`) stay far inside the traffic model's integer counters.
#: Larger values are an error naming the link ([reliability]).
LINK_BOUNDS = {"length_m": 1e7, "free_flow_time_s": 1e7, "lanes": 1000.0, "capacity_veh_per_h": 1e7,
               "jam_density_veh_per_km_per_lane": 1000.0}
MAX_LINK_STORAGE_VEH = 1e8


def _py(value):
    """A numpy scalar as the plain Python value, for messages (``5``, not ``np.int64(5)``)."""
    return value.item() if isinstance(value, np.generic) else value


def _index_dtype(n):
    return np.int32 if n < 2**31 - 1 else np.int64


def _csr(key, other, n_nodes):
    """Stable CSR of links grouped by ``key`` node; returns (indptr, slot_link, slot_other)."""
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=n_nodes)
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    idt = _index_dtype(max(n_nodes, len(key)))
    return indptr, order.astype(idt), other[order].astype(idt)


def _checked_node_ids(raw):
    """External node ids as int64 or as str objects, checked to be unique."""
    src = raw.source
    n = raw.n_nodes
    node_ids = np.asarray(raw.node_ids)
    if node_ids.dtype.kind in "iu":
        node_ids = node_ids.astype(np.int64)
        uniq, counts = np.unique(node_ids, return_counts=True)
        if len(uniq) != n:
            raise NetworkError(f"{src}: node id {_py(uniq[counts > 1][0])} appears more than once; ids must be unique")
    else:
        node_ids = np.array([str(v) for v in node_ids], dtype=object)
        seen = set()
        for v in node_ids:
            if v in seen:
                raise NetworkError(f"{src}: node id {v!r} appears more than once; ids must be unique")
            seen.add(v)
    return node_ids


def _link_where(raw, node_ids):
    """Return ``where(k)``, the message prefix naming link ``k`` and its source line where known."""
    src = raw.source

    def where(k):
        line = raw.link_attrs.get("source_line")
        a, b = _py(node_ids[raw.link_from_idx[k]]), _py(node_ids[raw.link_to_idx[k]])
        return f"{src}: link {k} ({a}->{b}" + (f", line {int(line[k])}" if line is not None else "") + ")"

    return where


def _check_link_ends(raw):
    """Check that every link's tail and head index a node."""
    src = raw.source
    n = raw.n_nodes
    for name in ("link_from_idx", "link_to_idx"):
        a = getattr(raw, name)
        bad = np.flatnonzero((a < 0) | (a >= n))
        if len(bad):
            raise NetworkError(f"{src}: link {bad[0]} has {name} = {a[bad[0]]}; expected a node index in [0, {n})")


def _check_link_attr(where, name, a, *, positive, allow_inf=False):
    """Refuse NaN, inf (unless ``allow_inf``) and values <= 0 (``positive``) or < 0 in a link attribute."""
    bad_nan = np.flatnonzero(np.isnan(a))
    if len(bad_nan):
        k = bad_nan[0]
        raise NetworkError(f"{where(k)}: {name} is NaN; expected a finite number "
                           f"{'> 0' if positive else '>= 0'}")
    if not allow_inf:
        bad_inf = np.flatnonzero(np.isinf(a))
        if len(bad_inf):
            k = bad_inf[0]
            raise NetworkError(f"{where(k)}: {name} = {a[k]}; expected a finite number")
    bad = np.flatnonzero(a <= 0) if positive else np.flatnonzero(a < 0)
    if len(bad):
        k = bad[0]
        raise NetworkError(f"{where(k)}: {name} = {_py(a[k])!r}; expected {'> 0' if positive else '>= 0'}")


def _checked_link_values(raw, where):
    """Checked link attributes, defaults filled in: (length_m, speed, fft, kj, alpha, beta)."""
    m = raw.n_links
    length_m = raw.length_m
    speed = raw.free_speed_mps
    fft = raw.free_flow_time_s
    if fft is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            fft = length_m / speed
    check = functools.partial(_check_link_attr, where)
    check("length_m", length_m, positive=False)
    check("free_flow_time_s", fft, positive=False)
    check("free_speed_mps", speed, positive=True, allow_inf=True)
    bad = np.flatnonzero(np.isinf(speed) & (fft > 0))
    if len(bad):
        raise NetworkError(f"{where(bad[0])}: free_speed_mps = inf with free_flow_time_s = {fft[bad[0]]}; "
                           "an infinite speed is accepted only on zero-time links")
    check("lanes", raw.lanes, positive=True)
    check("capacity_veh_per_h", raw.capacity_veh_per_h, positive=True)
    kj = raw.jam_density_veh_per_km_per_lane
    if kj is None:
        kj = np.full(m, DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE)
    check("jam_density_veh_per_km_per_lane", kj, positive=True)
    alpha = raw.bpr_alpha if raw.bpr_alpha is not None else np.full(m, 0.15)
    beta = raw.bpr_beta if raw.bpr_beta is not None else np.full(m, 4.0)
    check("bpr_alpha", alpha, positive=False)
    check("bpr_beta", beta, positive=False)
    values = {"length_m": length_m, "free_flow_time_s": fft, "lanes": raw.lanes,
              "capacity_veh_per_h": raw.capacity_veh_per_h, "jam_density_veh_per_km_per_lane": kj}
    for name, bound in LINK_BOUNDS.items():
        big = np.flatnonzero(np.asarray(values[name], dtype=np.float64) > bound)
        if len(big):
            k = big[0]
            extra = (f" (length_m {_py(length_m[k])!r} at free_speed_mps {_py(speed[k])!r})"
                     if name == "free_flow_time_s" and raw.free_flow_time_s is None else "")
            raise NetworkError(f"{where(k)}: {name} = {_py(values[name][k])!r}{extra}; expected at most {bound:g} "
                               f"(twin.graph.LINK_BOUNDS: physical ranges)")
    storage = np.asarray(raw.lanes, dtype=np.float64) * np.asarray(length_m, dtype=np.float64) / 1000.0 * kj
    big = np.flatnonzero(storage > MAX_LINK_STORAGE_VEH)
    if len(big):
        k = big[0]
        raise NetworkError(f"{where(k)}: lanes x length x jam density = {storage[k]:.3g} vehicles on one link; "
                           f"expected at most {MAX_LINK_STORAGE_VEH:g} (twin.graph.MAX_LINK_STORAGE_VEH)")
    return length_m, speed, fft, kj, alpha, beta


def _check_coordinates(raw, node_ids):
    """Check that node coordinates are finite and given for every node or for none."""
    src = raw.source
    x_m, y_m = raw.x_m, raw.y_m
    missing = np.isnan(x_m) | np.isnan(y_m)
    if missing.any() and not missing.all():
        i = int(np.flatnonzero(missing)[0])
        raise NetworkError(f"{src}: node {_py(node_ids[i])!r} has no coordinates (x_m/y_m NaN) while "
                           f"{int((~missing).sum())} other nodes have them; give every node x, y or none")
    if np.isinf(x_m).any() or np.isinf(y_m).any():
        i = int(np.flatnonzero(np.isinf(x_m) | np.isinf(y_m))[0])
        raise NetworkError(f"{src}: node {_py(node_ids[i])!r} has an infinite coordinate; expected finite metres")


def _checked_zones(raw):
    """Zone of each node, zone ids and the no-through flags, defaults filled in and checked."""
    src = raw.source
    n = raw.n_nodes
    zone_of_node = raw.zone_of_node if raw.zone_of_node is not None else np.full(n, -1, dtype=np.int32)
    zone_ids = np.asarray(raw.zone_ids) if raw.zone_ids is not None else np.arange(
        1, int(zone_of_node.max()) + 2 if len(zone_of_node) else 1, dtype=np.int64)
    if zone_of_node.shape != (n,) or (zone_of_node >= len(zone_ids)).any() or (zone_of_node < -1).any():
        raise NetworkError(f"{src}: zone_of_node must have shape ({n},) with values -1 or 0..{len(zone_ids) - 1}")
    no_through = raw.no_through if raw.no_through is not None else np.zeros(n, dtype=np.bool_)
    return zone_of_node, zone_ids, no_through


def _frozen(a):
    """``a`` as a contiguous read-only array (None stays None)."""
    if a is None:
        return None
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class City:
    """A directed road graph compiled to arrays (see the module docstring).

    Build one with :func:`twin.load_city` or :meth:`City.from_raw`; do not call the
    constructor directly. Attributes ending in ``_idx`` are node indices ``0..n_nodes-1``;
    link arrays have shape ``(n_links,)`` and node arrays ``(n_nodes,)``.

    Attributes
    ----------
    name, source : str
        Short name and where it came from.
    node_ids : ndarray
        External node ids in index order (int64, or str objects).
    x_m, y_m : ndarray of float64
        Node coordinates in metres in a planar frame (all NaN when the source has none).
    lon, lat : ndarray of float64 or None
        Geographic coordinates in degrees, where the source has them.
    link_from_idx, link_to_idx : ndarray of int32
        Tail and head node index of each link.
    length_m, free_speed_mps, free_flow_time_s : ndarray of float64
        Length (metres), free-flow speed (metres/second; ``inf`` only on zero-time links)
        and free-flow traversal time (seconds).
    lanes, capacity_veh_per_h : ndarray of float64
        Lanes in the link's direction; saturation flow of the whole link in vehicles/hour.
    jam_density_veh_per_km_per_lane : ndarray of float64
        Jam density per lane, vehicles/km/lane.
    road_class : ndarray of int8
        Code into ``road_class_names``.
    bpr_alpha, bpr_beta : ndarray of float64
        BPR volume-delay parameters (0.15 and 4 when the source gives none).
    zone_of_node : ndarray of int32
        Zone (district) index of each node, -1 for none; ``zone_ids`` names the zones.
    no_through : ndarray of bool
        Nodes routes may start or end at but never pass through (TNTP centroids).
    fwd_indptr, fwd_link, fwd_head : ndarray
        Forward star: out-links of node ``u`` are ``fwd_link[fwd_indptr[u]:fwd_indptr[u+1]]``.
    rev_indptr, rev_link, rev_tail : ndarray
        Reverse star: in-links of node ``v``.
    """

    name: str
    source: str
    node_ids: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    lon: np.ndarray | None
    lat: np.ndarray | None
    link_from_idx: np.ndarray
    link_to_idx: np.ndarray
    length_m: np.ndarray
    free_speed_mps: np.ndarray
    free_flow_time_s: np.ndarray
    lanes: np.ndarray
    capacity_veh_per_h: np.ndarray
    jam_density_veh_per_km_per_lane: np.ndarray
    road_class: np.ndarray
    road_class_names: tuple
    bpr_alpha: np.ndarray
    bpr_beta: np.ndarray
    zone_of_node: np.ndarray
    zone_ids: np.ndarray
    no_through: np.ndarray
    geom_indptr: np.ndarray | None
    geom_x_m: np.ndarray | None
    geom_y_m: np.ndarray | None
    link_attrs: dict
    meta: dict
    fwd_indptr: np.ndarray
    fwd_link: np.ndarray
    fwd_head: np.ndarray
    rev_indptr: np.ndarray
    rev_link: np.ndarray
    rev_tail: np.ndarray
    _id_lookup: object = field(repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_raw(cls, raw: RawNetwork) -> "City":
        """Validate a :class:`~twin.data.network.RawNetwork` and compile it.

        Raises
        ------
        NetworkError
            Empty graph, duplicate node ids, link end points out of range, or an
            attribute that is NaN, negative or zero where it must be positive; the
            message names the link (its source line where known) and the value.
        """
        src = raw.source
        n, m = raw.n_nodes, raw.n_links
        if n == 0:
            raise NetworkError(f"{src}: the network has no nodes; expected at least 2 nodes and 1 link")
        if m == 0:
            raise NetworkError(f"{src}: the network has no links; expected at least 1 link")
        node_ids = _checked_node_ids(raw)
        where = _link_where(raw, node_ids)
        _check_link_ends(raw)
        length_m, speed, fft, kj, alpha, beta = _checked_link_values(raw, where)
        _check_coordinates(raw, node_ids)
        if len(raw.road_class) and (raw.road_class.min() < 0 or raw.road_class.max() >= len(raw.road_class_names)):
            raise NetworkError(f"{src}: road_class codes must index road_class_names "
                               f"(0..{len(raw.road_class_names) - 1})")
        zone_of_node, zone_ids, no_through = _checked_zones(raw)

        idt = _index_dtype(max(n, m))
        tail = raw.link_from_idx.astype(idt)
        head = raw.link_to_idx.astype(idt)
        fwd_indptr, fwd_link, fwd_head = _csr(tail, head, n)
        rev_indptr, rev_link, rev_tail = _csr(head, tail, n)

        city = cls(
            name=raw.name, source=src, node_ids=_frozen(node_ids),
            x_m=_frozen(raw.x_m), y_m=_frozen(raw.y_m), lon=_frozen(raw.lon), lat=_frozen(raw.lat),
            link_from_idx=_frozen(tail), link_to_idx=_frozen(head),
            length_m=_frozen(length_m), free_speed_mps=_frozen(speed), free_flow_time_s=_frozen(fft),
            lanes=_frozen(raw.lanes), capacity_veh_per_h=_frozen(raw.capacity_veh_per_h),
            jam_density_veh_per_km_per_lane=_frozen(kj), road_class=_frozen(raw.road_class),
            road_class_names=raw.road_class_names, bpr_alpha=_frozen(alpha), bpr_beta=_frozen(beta),
            zone_of_node=_frozen(zone_of_node), zone_ids=_frozen(zone_ids), no_through=_frozen(no_through),
            geom_indptr=_frozen(raw.geom_indptr), geom_x_m=_frozen(raw.geom_x_m), geom_y_m=_frozen(raw.geom_y_m),
            link_attrs={k: _frozen(np.asarray(v)) for k, v in raw.link_attrs.items()}, meta=dict(raw.meta),
            fwd_indptr=_frozen(fwd_indptr), fwd_link=_frozen(fwd_link), fwd_head=_frozen(fwd_head),
            rev_indptr=_frozen(rev_indptr), rev_link=_frozen(rev_link), rev_tail=_frozen(rev_tail),
            _id_lookup=_IdLookup(node_ids),
        )
        logger.info("compiled city %r: %d nodes, %d links", city.name, n, m)
        return city

    # ------------------------------------------------------------------ sizes
    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_links(self) -> int:
        """Number of directed links."""
        return len(self.link_from_idx)

    @property
    def n_zones(self) -> int:
        """Number of zones (districts)."""
        return len(self.zone_ids)

    @property
    def has_coordinates(self) -> bool:
        """Whether nodes carry planar coordinates."""
        return bool(self.n_nodes and not np.isnan(self.x_m[0]))

    @property
    def storage_veh(self) -> np.ndarray:
        """Vehicles a link holds at jam density: length × lanes × jam density (vehicles)."""
        return self.length_m / 1000.0 * self.lanes * self.jam_density_veh_per_km_per_lane

    def __repr__(self):
        return f"City(name={self.name!r}, n_nodes={self.n_nodes}, n_links={self.n_links}, n_zones={self.n_zones})"

    # ------------------------------------------------------------------ ids
    def node_index(self, ids) -> np.ndarray:
        """Map external node ids (a scalar or a sequence) to node indices (int64).

        Raises
        ------
        UnknownNodeError
            When an id is not a node of this city; the message lists the first few.
        """
        return self._id_lookup(ids, self.name)

    # ------------------------------------------------------------------ routing
    def _checked_cost(self, link_cost_s):
        if link_cost_s is None:
            return self.free_flow_time_s
        cost = np.asarray(link_cost_s, dtype=np.float64)
        if cost.shape != (self.n_links,):
            raise NetworkError(f"link_cost_s has shape {cost.shape}; expected ({self.n_links},), one cost per link "
                               f"in link order")
        bad = np.flatnonzero(np.isnan(cost) | (cost < 0))
        if len(bad):
            k = bad[0]
            raise NetworkError(f"link_cost_s[{k}] = {cost[k]}; expected a cost >= 0 (inf closes the link)")
        return cost

    def travel_times(self, origins, destinations=None, link_cost_s=None) -> np.ndarray:
        """Least travel times between nodes, in seconds.

        Parameters
        ----------
        origins : sequence of node ids, or a single id
            External ids of the origins.
        destinations : sequence of node ids, optional
            External ids of the destinations; all nodes in ``node_ids`` order when omitted.
        link_cost_s : ndarray of float64, shape (n_links,), optional
            Cost of each link in seconds (``>= 0``; ``inf`` closes a link); the free-flow
            times when omitted. Any per-link cost works, e.g. live congested times.

        Returns
        -------
        ndarray of float64, shape (n_origins, n_destinations)
            ``inf`` where a destination is unreachable. Routes never pass through a
            ``no_through`` node (TNTP centroids), though they may start or end at one.

        Raises
        ------
        UnknownNodeError
            An origin or destination id is not a node.
        NetworkError
            ``link_cost_s`` has the wrong shape or a NaN or negative entry.

        Notes
        -----
        Dijkstra with a binary heap per origin, in parallel over origins with numba
        (``twin.kernels.routing.many_to_many``); each search stops once every
        destination is settled.
        """
        o_idx = np.atleast_1d(self.node_index(origins))
        d_idx = (np.arange(self.n_nodes, dtype=np.int64) if destinations is None
                 else np.atleast_1d(self.node_index(destinations)))
        cost = self._checked_cost(link_cost_s)
        out = np.empty((len(o_idx), len(d_idx)), dtype=np.float64)
        if len(o_idx) and len(d_idx):
            _many_to_many(self.fwd_indptr, self.fwd_head, np.ascontiguousarray(cost[self.fwd_link]),
                          self.fwd_link, self.no_through, o_idx, d_idx, out)
        return out

    def travel_times_to(self, destinations, origins=None, link_cost_s=None) -> np.ndarray:
        """Least travel times *to* nodes, in seconds: one backward search per destination.

        The transpose of :meth:`travel_times`, cheaper when many origins share few
        destinations (which unit is nearest a call): ``out[j, i]`` is the least time from
        ``origins[i]`` to ``destinations[j]`` (all nodes in ``node_ids`` order when
        ``origins`` is omitted), ``inf`` where unreachable; the same ``no_through`` rule and
        errors as :meth:`travel_times`.
        """
        d_idx = np.atleast_1d(self.node_index(destinations))
        o_idx = (np.arange(self.n_nodes, dtype=np.int64) if origins is None
                 else np.atleast_1d(self.node_index(origins)))
        cost = self._checked_cost(link_cost_s)
        out = np.empty((len(d_idx), len(o_idx)), dtype=np.float64)
        if len(o_idx) and len(d_idx):
            _many_to_many(self.rev_indptr, self.rev_tail, np.ascontiguousarray(cost[self.rev_link]),
                          self.rev_link, self.no_through, d_idx, o_idx, out)
        return out

    def shortest_path_tree(self, origin, link_cost_s=None):
        """One-to-all least costs and predecessor links from one origin.

        Returns
        -------
        dist_s : ndarray of float64, shape (n_nodes,)
            Least cost to each node (``inf`` if unreachable).
        pred_link : ndarray of int64, shape (n_nodes,)
            Index of the link entering each node on its least-cost path; -1 at the origin
            and at unreachable nodes.
        """
        from twin.kernels.routing import dijkstra_sssp

        o = int(np.atleast_1d(self.node_index(origin))[0])
        cost = self._checked_cost(link_cost_s)
        n, m = self.n_nodes, self.n_links
        dist = np.empty(n)
        pred = np.empty(n, dtype=np.int64)
        dijkstra_sssp(self.fwd_indptr, self.fwd_head, np.ascontiguousarray(cost[self.fwd_link]), self.fwd_link,
                      self.no_through, o, np.zeros(n, dtype=np.bool_), n + 1, dist, pred,
                      np.empty(m + 1), np.empty(m + 1, dtype=np.int64))
        return dist, pred

    def path(self, origin, destination, link_cost_s=None) -> np.ndarray:
        """Least-cost path between two nodes as link indices, in travel order.

        Bidirectional Dijkstra (``twin.kernels.routing.bidirectional_dijkstra``). An empty
        array when ``origin == destination``.

        Raises
        ------
        UnknownNodeError
            An id is not a node.
        NetworkError
            The destination cannot be reached from the origin.
        """
        cost, links = self._path(origin, destination, link_cost_s)
        return links

    def path_cost(self, origin, destination, link_cost_s=None) -> float:
        """Least cost (seconds with the default costs) from ``origin`` to ``destination``; ``inf`` if unreachable."""
        return self._search(origin, destination, link_cost_s)[0]

    def _stars(self, cost):
        return (self.fwd_indptr, self.fwd_head, np.ascontiguousarray(cost[self.fwd_link]), self.fwd_link,
                self.rev_indptr, self.rev_tail, np.ascontiguousarray(cost[self.rev_link]), self.rev_link)

    def _search(self, origin, destination, link_cost_s):
        """Bidirectional Dijkstra: (least cost, links written to the buffer or -1, buffer)."""
        from twin.kernels.routing import bidirectional_dijkstra

        o, d = (int(i) for i in self.node_index([origin, destination]))
        cost = self._checked_cost(link_cost_s)
        buf = np.empty(self.n_nodes + 1, dtype=np.int64)
        best, k = bidirectional_dijkstra(*self._stars(cost), self.link_from_idx, self.link_to_idx,
                                         self.no_through, o, d, buf)
        return float(best), k, buf

    def _path(self, origin, destination, link_cost_s):
        best, k, buf = self._search(origin, destination, link_cost_s)
        if k < 0:
            raise NetworkError(f"city {self.name!r}: node {destination!r} cannot be reached from node {origin!r}")
        return best, buf[:k].copy()

    # ------------------------------------------------------------------ interchange
    def to_networkx(self):
        """The city as a networkx graph (metres, seconds, vehicles/hour).

        A ``DiGraph`` when no two links join the same ordered pair of nodes, else a
        ``MultiDiGraph`` keyed by link index. Nodes are the external ids with ``x``, ``y``
        (metres; omitted, with ``G.graph["has_coordinates"] = False``, when the city has
        none), ``zone`` (zone id or None), ``no_through`` and, where known, ``lon``, ``lat``.
        ``G.graph["zone_ids"]`` keeps the zone order, empty zones included. Edges carry ``link_idx``, ``length_m``, ``free_speed_mps``,
        ``free_flow_time_s``, ``lanes``, ``capacity_veh_per_h``,
        ``jam_density_veh_per_km_per_lane``, ``bpr_alpha``, ``bpr_beta`` and ``road_class``
        (its name). ``twin.load_city`` reads the result back to a city with the same nodes,
        links, link attributes above and zones; link polylines and the extra per-link
        columns of ``link_attrs`` (OSM names, TNTP tolls ...) are not carried.
        """
        import networkx as nx

        pairs = self.link_from_idx.astype(np.int64) * self.n_nodes + self.link_to_idx
        multi = len(np.unique(pairs)) != len(pairs)
        G = nx.MultiDiGraph() if multi else nx.DiGraph()
        G.graph.update(name=self.name, source=self.source, road_class_names=list(self.road_class_names),
                       zone_ids=self.zone_ids.tolist(), has_coordinates=self.has_coordinates)
        ids = self.node_ids.tolist()
        zone_ids = self.zone_ids.tolist()
        for i, nid in enumerate(ids):
            z = int(self.zone_of_node[i])
            attrs = dict(zone=zone_ids[z] if z >= 0 else None, no_through=bool(self.no_through[i]))
            if self.has_coordinates:
                attrs.update(x=float(self.x_m[i]), y=float(self.y_m[i]))
            if self.lon is not None:
                attrs.update(lon=float(self.lon[i]), lat=float(self.lat[i]))
            G.add_node(nid, **attrs)
        cols = ("length_m", "free_speed_mps", "free_flow_time_s", "lanes", "capacity_veh_per_h",
                "jam_density_veh_per_km_per_lane", "bpr_alpha", "bpr_beta")
        values = {c: getattr(self, c).tolist() for c in cols}
        for k in range(self.n_links):
            attrs = {c: values[c][k] for c in cols}
            attrs["link_idx"] = k
            attrs["road_class"] = self.road_class_names[self.road_class[k]]
            u, v = ids[self.link_from_idx[k]], ids[self.link_to_idx[k]]
            if multi:
                G.add_edge(u, v, key=k, **attrs)
            else:
                G.add_edge(u, v, **attrs)
        return G


class _IdLookup:
    """Vectorised external-id → index map (sorted search for ints, a dict for strings)."""

    def __init__(self, node_ids):
        self.is_int = node_ids.dtype.kind in "iu"
        if self.is_int:
            self.order = np.argsort(node_ids, kind="stable")
            self.sorted = node_ids[self.order]
        else:
            self.map = {v: i for i, v in enumerate(node_ids.tolist())}

    def __call__(self, ids, city_name):
        scalar = np.ndim(ids) == 0
        arr = np.atleast_1d(np.asarray(ids, dtype=object if not self.is_int else None))
        if self.is_int:
            if arr.dtype.kind not in "iu":
                conv = np.zeros(len(arr), dtype=np.int64)
                ok = np.zeros(len(arr), dtype=bool)
                for i, a in enumerate(arr.tolist()):
                    if isinstance(a, bool):
                        continue
                    try:
                        if isinstance(a, (float, np.floating)):
                            ok[i] = np.isfinite(a) and float(a).is_integer() and abs(a) < 2**63
                            conv[i] = int(a) if ok[i] else 0
                        else:
                            conv[i] = int(str(a).strip())
                            ok[i] = True
                    except (ValueError, TypeError, OverflowError):
                        ok[i] = False
                if not ok.all():
                    raise UnknownNodeError(self._message([_py(v) for v in arr[~ok][:5].tolist()], city_name))
                arr = conv
            pos = np.searchsorted(self.sorted, arr)
            pos = np.minimum(pos, len(self.sorted) - 1)
            found = self.sorted[pos] == arr
            if not found.all():
                raise UnknownNodeError(self._message(arr[~found][:5].tolist(), city_name))
            out = self.order[pos].astype(np.int64)
        else:
            try:
                out = np.array([self.map[str(v)] for v in arr.tolist()], dtype=np.int64)
            except KeyError:
                bad = [v for v in arr.tolist() if str(v) not in self.map][:5]
                raise UnknownNodeError(self._message(bad, city_name)) from None
        return out[0] if scalar else out

    @staticmethod
    def _message(bad, city_name):
        return (f"unknown node id(s) {bad} in city {city_name!r}; node ids are the network's external ids "
                f"(see City.node_ids or `twin info`)")


def write_network(writer, city: City) -> None:
    """Write a city's nodes and links as tables ``/network/nodes`` and ``/network/links``.

    Parameters
    ----------
    writer : twin.results.ResultsWriter
        An open writer.
    city : City

    Notes
    -----
    Node ids are written as int64 when the city's ids are integers, else as UTF-8 strings.
    Link rows are in link-index order; ``from_idx``/``to_idx`` index the node table.
    """
    nodes = {
        "node_id": city.node_ids if city.node_ids.dtype.kind in "iu" else city.node_ids.astype(str),
        "x_m": city.x_m, "y_m": city.y_m,
        "zone_idx": city.zone_of_node, "no_through": city.no_through,
    }
    units = {"node_id": "", "x_m": "m", "y_m": "m", "zone_idx": "", "no_through": ""}
    if city.lon is not None:
        nodes.update(lon_deg=city.lon, lat_deg=city.lat)
        units.update(lon_deg="degree", lat_deg="degree")
    writer.write_table("/network/nodes", nodes, units=units)
    links = {
        "from_idx": city.link_from_idx, "to_idx": city.link_to_idx, "length_m": city.length_m,
        "free_speed_mps": city.free_speed_mps, "free_flow_time_s": city.free_flow_time_s, "lanes": city.lanes,
        "capacity_veh_per_h": city.capacity_veh_per_h,
        "jam_density_veh_per_km_per_lane": city.jam_density_veh_per_km_per_lane,
        "road_class": np.array(city.road_class_names, dtype=object)[city.road_class].astype(str),
    }
    if city.geom_indptr is not None:
        writer.write_array("/network/geom_indptr", np.asarray(city.geom_indptr, dtype=np.int64), units="",
                           attrs={"description": "link k's polyline is geom_x_m/geom_y_m[geom_indptr[k]:geom_indptr[k+1]]"})
        writer.write_array("/network/geom_x_m", np.asarray(city.geom_x_m, dtype=np.float64), units="m")
        writer.write_array("/network/geom_y_m", np.asarray(city.geom_y_m, dtype=np.float64), units="m")
    writer.write_table("/network/links", links, units={
        "from_idx": "", "to_idx": "", "length_m": "m", "free_speed_mps": "m/s", "free_flow_time_s": "s",
        "lanes": "1", "capacity_veh_per_h": "veh/h", "jam_density_veh_per_km_per_lane": "veh/km/lane",
        "road_class": ""})


def scenario_node_index(city, node, where_, key="node") -> int:
    """Node index of a node id written in a scenario (an integer id given as a string is
    accepted); a ScenarioError naming ``where_`` and ``key`` when it is not a node of ``city``."""
    value = node
    if isinstance(node, str) and city.node_ids.dtype.kind in "iu" and node.lstrip("-").isdigit():
        value = int(node)
    try:
        return int(np.atleast_1d(city.node_index([value]))[0])
    except UnknownNodeError as exc:
        raise ScenarioError(f"{where_} {key} = {node!r}: not a node of city {city.name!r} ({exc})") from None


def _many_to_many(indptr, head, cost, link, no_through, origins, dest, out):
    """Least costs from each origin: one search on this thread
    (:func:`twin.kernels.routing.many_to_many_serial`), or several over the numba threads
    (:func:`twin.kernels.routing.many_to_many`; the same result)."""
    import numba

    from twin.kernels.routing import many_to_many, many_to_many_serial

    if len(origins) < 2:
        return many_to_many_serial(indptr, head, cost, link, no_through, origins, dest, out)
    return many_to_many(indptr, head, cost, link, no_through, origins, dest, 4 * numba.get_num_threads(), out)
