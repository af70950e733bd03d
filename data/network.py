"""The plain array form every network loader returns.

A :class:`RawNetwork` is what a reader of a foreign format (TNTP, OpenStreetMap, networkx,
the synthetic generator) hands to the core: numpy arrays over nodes and links, indexed
``0..n-1``, with units in the field names. It is deliberately dumb: it checks shapes and
dtypes, and ``twin.graph.City`` validates values and compiles the CSR form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RawNetwork", "DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE", "grid_districts"]

#: Jam density used when a source gives none: one vehicle per 7.5 m of lane, the
#: effective vehicle length of SUMO and MATSim (5 m car + 2.5 m gap), in vehicles/km/lane.
DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE = 1000.0 / 7.5


@dataclass(eq=False)
class RawNetwork:
    """Arrays describing a directed road network, before compilation into a ``City``.

    Parameters
    ----------
    name : str
        Short name of the network (file stem or embedded-city name).
    source : str
        Where it came from (a path or a description), used in error messages.
    node_ids : ndarray, shape (n_nodes,)
        External node ids (int64 or str objects), unique.
    x_m, y_m : ndarray of float64, shape (n_nodes,)
        Node coordinates in metres in a planar frame (NaN only where the source gives none).
    link_from_idx, link_to_idx : ndarray of int32/int64, shape (n_links,)
        Tail and head node *indices* of every directed link.
    length_m : ndarray of float64, shape (n_links,)
        Link length in metres.
    free_speed_mps : ndarray of float64, shape (n_links,)
        Free-flow speed in metres/second.
    lanes : ndarray of float64, shape (n_links,)
        Number of lanes in the link's direction (may be fractional in sketch networks).
    capacity_veh_per_h : ndarray of float64, shape (n_links,)
        Saturation flow of the whole link, vehicles/hour.
    free_flow_time_s : ndarray of float64, shape (n_links,), optional
        Free-flow traversal time in seconds. When None, ``length_m / free_speed_mps``.
        TNTP files give it directly (it may be 0 on centroid connectors).
    road_class : ndarray of int8, shape (n_links,), optional
        Code into ``road_class_names``.
    road_class_names : tuple of str
        Name of each road-class code.
    jam_density_veh_per_km_per_lane : ndarray of float64, shape (n_links,), optional
        Jam density per lane; default :data:`DEFAULT_JAM_DENSITY_VEH_PER_KM_PER_LANE`.
    bpr_alpha, bpr_beta : ndarray of float64, shape (n_links,), optional
        BPR volume-delay parameters ``t = t0 * (1 + alpha * (v/c)**beta)``.
    zone_of_node : ndarray of int32, shape (n_nodes,), optional
        Zone (district) index of each node, -1 for none.
    zone_ids : ndarray, shape (n_zones,), optional
        External id of each zone index.
    no_through : ndarray of bool, shape (n_nodes,), optional
        Nodes that a route may start or end at but never pass through (TNTP zone centroids).
    lon, lat : ndarray of float64, shape (n_nodes,), optional
        Geographic coordinates in degrees where the source has them.
    geom_indptr : ndarray of int64, shape (n_links + 1,), optional
        Link ``k``'s polyline is ``geom_x_m[geom_indptr[k]:geom_indptr[k+1]]`` (end points included).
    geom_x_m, geom_y_m : ndarray of float64, optional
        Concatenated polyline vertices in metres.
    link_attrs : dict of str to ndarray, shape (n_links,)
        Extra per-link columns (``toll``, ``tntp_link_type``, ``osm_way_id``, ``name`` ...).
    meta : dict
        Free-form facts about the load (projection origin, what was dropped and why).
    """

    name: str
    source: str
    node_ids: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    link_from_idx: np.ndarray
    link_to_idx: np.ndarray
    length_m: np.ndarray
    free_speed_mps: np.ndarray
    lanes: np.ndarray
    capacity_veh_per_h: np.ndarray
    free_flow_time_s: np.ndarray | None = None
    road_class: np.ndarray | None = None
    road_class_names: tuple = ("road",)
    jam_density_veh_per_km_per_lane: np.ndarray | None = None
    bpr_alpha: np.ndarray | None = None
    bpr_beta: np.ndarray | None = None
    zone_of_node: np.ndarray | None = None
    zone_ids: np.ndarray | None = None
    no_through: np.ndarray | None = None
    lon: np.ndarray | None = None
    lat: np.ndarray | None = None
    geom_indptr: np.ndarray | None = None
    geom_x_m: np.ndarray | None = None
    geom_y_m: np.ndarray | None = None
    link_attrs: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.node_ids)
        m = len(self.link_from_idx)
        for name in ("x_m", "y_m", "lon", "lat"):
            a = getattr(self, name)
            if a is not None:
                a = np.ascontiguousarray(a, dtype=np.float64)
                if a.shape != (n,):
                    raise ValueError(f"{self.source}: {name} has shape {a.shape}; expected ({n},)")
                setattr(self, name, a)
        for name in ("length_m", "free_speed_mps", "lanes", "capacity_veh_per_h", "free_flow_time_s",
                     "jam_density_veh_per_km_per_lane", "bpr_alpha", "bpr_beta"):
            a = getattr(self, name)
            if a is not None:
                a = np.ascontiguousarray(a, dtype=np.float64)
                if a.shape != (m,):
                    raise ValueError(f"{self.source}: {name} has shape {a.shape}; expected ({m},)")
                setattr(self, name, a)
        for name in ("link_from_idx", "link_to_idx"):
            a = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            if a.shape != (m,):
                raise ValueError(f"{self.source}: {name} has shape {a.shape}; expected ({m},)")
            setattr(self, name, a)
        if self.road_class is None:
            self.road_class = np.zeros(m, dtype=np.int8)
        self.road_class = np.ascontiguousarray(self.road_class, dtype=np.int8)
        self.road_class_names = tuple(self.road_class_names)
        if self.zone_of_node is not None:
            self.zone_of_node = np.ascontiguousarray(self.zone_of_node, dtype=np.int32)
        if self.no_through is not None:
            self.no_through = np.ascontiguousarray(self.no_through, dtype=np.bool_)
        for k, v in self.link_attrs.items():
            if len(v) != m:
                raise ValueError(f"{self.source}: link attribute {k!r} has length {len(v)}; expected {m}")

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_links(self) -> int:
        return len(self.link_from_idx)


def grid_districts(x_m, y_m, n_x=3, n_y=3):
    """Cut a city's extent into ``n_x`` x ``n_y`` equal rectangles, one district each.

    A documented stand-in for administrative districts where the source has none (OSM
    extracts). Only rectangles holding at least one node become districts, numbered
    1..k in row-major order from the south-west. The district holding the extent's
    centre, and with ``n_x, n_y >= 3`` every district not on the border, is "central";
    the rest "peripheral".

    Returns
    -------
    zone_of_node : ndarray of int32, shape (n_nodes,)
    zone_ids : ndarray of int64, shape (k,)
    central : ndarray of bool, shape (k,)
    """
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
    ix = np.minimum(((x - x0) / max(x1 - x0, 1e-9) * n_x).astype(np.int64), n_x - 1)
    iy = np.minimum(((y - y0) / max(y1 - y0, 1e-9) * n_y).astype(np.int64), n_y - 1)
    cell = iy * n_x + ix
    used, zone_of_node = np.unique(cell, return_inverse=True)
    cx, cy = used % n_x, used // n_x
    inner = (cx > 0) & (cx < n_x - 1) & (cy > 0) & (cy < n_y - 1)
    centre = (cx == n_x // 2) & (cy == n_y // 2)
    central = inner | centre
    return zone_of_node.astype(np.int32), np.arange(1, len(used) + 1, dtype=np.int64), central
