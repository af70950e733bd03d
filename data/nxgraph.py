"""Reader of networkx road graphs (the authoring and interchange form).

Accepted: ``networkx.DiGraph`` or ``MultiDiGraph`` whose edges carry ``length_m``
(metres, > 0), ``free_speed_mps`` (metres/second, > 0), ``lanes`` (> 0) and
``capacity_veh_per_h`` (vehicles/hour, > 0), and whose nodes carry ``x`` and ``y``
(metres). Optional edge attributes: ``free_flow_time_s``, ``jam_density_veh_per_km_per_lane``,
``bpr_alpha``, ``bpr_beta``, ``road_class`` (a name), ``link_idx`` (link order; edges are
taken in that order when every edge has one, as ``City.to_networkx`` writes). Optional
node attributes: ``zone`` (any hashable zone id), ``no_through`` (bool), ``lon``, ``lat``.
"""

from __future__ import annotations

import math

import numpy as np

from twin.data.network import RawNetwork
from twin.errors import NetworkError

__all__ = ["read_networkx", "REQUIRED_EDGE_ATTRS", "REQUIRED_NODE_ATTRS"]

REQUIRED_EDGE_ATTRS = ("length_m", "free_speed_mps", "lanes", "capacity_veh_per_h")
REQUIRED_NODE_ATTRS = ("x", "y")
_OPTIONAL_EDGE = ("free_flow_time_s", "jam_density_veh_per_km_per_lane", "bpr_alpha", "bpr_beta")


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise NetworkError(f"{what} = {value!r}; expected a number")
    value = float(value)
    if math.isnan(value):
        raise NetworkError(f"{what} is NaN; expected a finite number")
    return value


def _node_coordinates(G, src):
    """Node x and y in metres (NaN for a graph that says it has no coordinates)."""
    n = G.number_of_nodes()
    x = np.empty(n)
    y = np.empty(n)
    # A graph written by City.to_networkx for a city without coordinates says so.
    no_coords = G.graph.get("has_coordinates") is False
    for i, (v, d) in enumerate(G.nodes(data=True)):
        if no_coords:
            x[i] = y[i] = np.nan
            continue
        for key, out in (("x", x), ("y", y)):
            if key not in d:
                raise NetworkError(f"{src}: node {v!r} has no attribute {key!r}; every node needs "
                                   f"{REQUIRED_NODE_ATTRS} in metres")
            out[i] = _number(d[key], f"{src}: node {v!r} attribute {key!r}")
    return x, y


def _zones(G):
    """Zone index of every node (-1 for none) and the zone ids (the graph's ``zone_ids`` when
    they cover the nodes' zones, else the nodes' zones sorted)."""
    zones = [d.get("zone") for _, d in G.nodes(data=True)]
    zone_values = G.graph.get("zone_ids")
    if zone_values is None or not {z for z in zones if z is not None} <= set(zone_values):
        zone_values = sorted({z for z in zones if z is not None}, key=lambda z: (str(type(z)), z))
    zone_values = list(zone_values)
    zone_index = {z: i for i, z in enumerate(zone_values)}
    zone_of_node = np.array([zone_index[z] if z is not None else -1 for z in zones], dtype=np.int32)
    zone_ids = np.array(zone_values, dtype=np.int64 if all(isinstance(z, (int, np.integer)) for z in zone_values)
                        else object)
    return zone_of_node, zone_ids


def read_networkx(G, *, name=None) -> RawNetwork:
    """Convert a networkx directed graph to a :class:`RawNetwork` (see module docstring).

    Raises
    ------
    TypeError
        ``G`` is not a directed networkx graph.
    NetworkError
        An edge or node lacks a required attribute or has a NaN, non-numeric or
        non-positive value (the message names the edge or node and the attribute), or
        the graph is empty.
    """
    import networkx as nx

    if not isinstance(G, nx.DiGraph):  # MultiDiGraph subclasses DiGraph
        raise TypeError(f"expected a networkx DiGraph or MultiDiGraph, got {type(G).__name__}; "
                        "an undirected graph must be made directed first (G.to_directed())")
    src = f"networkx graph {G.graph.get('name') or name or ''}".rstrip()
    if G.number_of_nodes() == 0:
        raise NetworkError(f"{src}: the graph has no nodes")
    if G.number_of_edges() == 0:
        raise NetworkError(f"{src}: the graph has no edges; expected at least 1")
    nodes = list(G.nodes)
    index = {v: i for i, v in enumerate(nodes)}
    x, y = _node_coordinates(G, src)
    if isinstance(G, nx.MultiDiGraph):
        edges = [(u, v, d) for u, v, _, d in G.edges(keys=True, data=True)]
    else:
        edges = list(G.edges(data=True))
    if all("link_idx" in d for _, _, d in edges):
        edges.sort(key=lambda e: e[2]["link_idx"])
    m = len(edges)
    cols = {a: np.empty(m) for a in REQUIRED_EDGE_ATTRS}
    opt = {}
    for a in _OPTIONAL_EDGE:
        have = [a in d for _, _, d in edges]
        if all(have):
            opt[a] = np.empty(m)
        elif any(have):
            u, v, _ = edges[have.index(False)]
            raise NetworkError(f"{src}: edge ({u!r}, {v!r}) has no attribute {a!r} while other edges have it; "
                               f"give {a!r} on every edge or on none")
    tail = np.empty(m, dtype=np.int64)
    head = np.empty(m, dtype=np.int64)
    class_names: dict = {}
    road_class = np.zeros(m, dtype=np.int64)
    for k, (u, v, d) in enumerate(edges):
        tail[k], head[k] = index[u], index[v]
        for a in REQUIRED_EDGE_ATTRS:
            if a not in d:
                raise NetworkError(f"{src}: edge ({u!r}, {v!r}) has no attribute {a!r}; every edge needs "
                                   f"{REQUIRED_EDGE_ATTRS}")
            val = _number(d[a], f"{src}: edge ({u!r}, {v!r}) attribute {a!r}")
            # Zero length and infinite speed are accepted only on explicit zero-time
            # connectors (free_flow_time_s = 0), as TNTP networks have.
            connector = d.get("free_flow_time_s", None) == 0
            if (val <= 0 and not (connector and a == "length_m" and val == 0)) or (
                    math.isinf(val) and not (connector and a == "free_speed_mps")):
                raise NetworkError(f"{src}: edge ({u!r}, {v!r}) attribute {a!r} = {val}; expected a finite "
                                   f"number > 0")
            cols[a][k] = val
        for a, arr in opt.items():
            arr[k] = _number(d[a], f"{src}: edge ({u!r}, {v!r}) attribute {a!r}")
        rc = str(d.get("road_class", "road"))
        road_class[k] = class_names.setdefault(rc, len(class_names))
    if len(class_names) > 127:
        raise NetworkError(f"{src}: {len(class_names)} distinct road_class values; at most 127 are supported")

    zone_of_node, zone_ids = _zones(G)
    no_through = np.array([bool(d.get("no_through", False)) for _, d in G.nodes(data=True)])
    lon = lat = None
    if all("lon" in d and "lat" in d for _, d in G.nodes(data=True)):
        lon = np.array([float(d["lon"]) for _, d in G.nodes(data=True)])
        lat = np.array([float(d["lat"]) for _, d in G.nodes(data=True)])
    names = G.graph.get("road_class_names")
    if names and set(class_names) <= set(names):
        remap = np.array([list(names).index(c) for c in class_names], dtype=np.int64)
        road_class = remap[road_class] if len(remap) else road_class
        class_tuple = tuple(names)
    else:
        class_tuple = tuple(class_names) or ("road",)
    whole = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in nodes)
    if whole:
        big = [v for v in nodes if not -(2 ** 63) <= int(v) < 2 ** 63]
        if big:
            raise NetworkError(f"networkx graph: node id {big[0]} is outside the 64-bit integer range; give ids "
                               f"within -2**63 .. 2**63 - 1, or strings")
    ids = np.array(nodes, dtype=np.int64) if whole else np.array([str(v) for v in nodes], dtype=object)
    return RawNetwork(
        name=name or G.graph.get("name") or "networkx", source=G.graph.get("source") or src,
        node_ids=ids, x_m=x, y_m=y, lon=lon, lat=lat,
        link_from_idx=tail, link_to_idx=head,
        length_m=cols["length_m"], free_speed_mps=cols["free_speed_mps"], lanes=cols["lanes"],
        capacity_veh_per_h=cols["capacity_veh_per_h"], free_flow_time_s=opt.get("free_flow_time_s"),
        jam_density_veh_per_km_per_lane=opt.get("jam_density_veh_per_km_per_lane"),
        bpr_alpha=opt.get("bpr_alpha"), bpr_beta=opt.get("bpr_beta"),
        road_class=road_class.astype(np.int8), road_class_names=class_tuple,
        zone_of_node=zone_of_node, zone_ids=zone_ids, no_through=no_through,
    )
