"""PyVista meshes of the road network, zones and facilities.

Everything here is geometry plus named arrays: links become line cells of a
:class:`pyvista.PolyData` whose ``cell_data`` carry the link attributes, zones become
(optionally extruded) convex-hull polygons, facilities become vertices with ``point_data``.
A mesh can be built from a compiled :class:`twin.City` or from a results file alone (its
``/network/nodes`` and ``/network/links`` tables, see ``docs/results-format.md``), so a
results file renders without the network it came from.

Coordinates are the city's planar metres (``x_m``, ``y_m``), with ``z = 0`` for the ground.
Link and zone order is the source order: cell ``k`` of :func:`city_mesh` is link ``k``, so a
``(n_links,)`` result array is assigned with ``mesh.cell_data[name] = values`` as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyvista as pv

from twin.errors import ResultsError
from twin.graph import City
from twin.results import Results, open_results

__all__ = ["NetworkArrays", "network_arrays", "city_mesh", "zones_mesh", "points_mesh", "node_points_mesh"]

# Default tube radius per lane, as a share of the network's bounding-box diagonal: readable
# at any city size (a metre figure would vanish on a 40 km region and swamp a 1 km grid).
_TUBE_RADIUS_PER_LANE_SHARE = 0.0008


@dataclass(frozen=True, eq=False)
class NetworkArrays:
    """The network arrays the viz layer needs, from a :class:`~twin.City` or a results file.

    Attributes
    ----------
    name : str
        City name (``""`` when a results file does not record it).
    x_m, y_m : ndarray of float64, shape (n_nodes,)
        Node coordinates in metres.
    zone_of_node : ndarray of int32, shape (n_nodes,)
        Zone index of each node, -1 for none.
    link_from_idx, link_to_idx : ndarray of int32, shape (n_links,)
        Tail and head node of each link.
    length_m, lanes, free_flow_time_s, capacity_veh_per_h, jam_density_veh_per_km_per_lane : ndarray of float64
        Link attributes (metres, lanes, seconds, vehicles/hour, vehicles/km/lane).
    road_class : ndarray of int8, shape (n_links,)
        Code into ``road_class_names``.
    road_class_names : tuple of str
    geom_indptr : ndarray of int64, shape (n_links + 1,), or None
        Link ``k``'s polyline is ``geom_x_m[geom_indptr[k]:geom_indptr[k+1]]`` (end points
        included); None draws straight links.
    geom_x_m, geom_y_m : ndarray of float64 or None
    """

    name: str
    x_m: np.ndarray
    y_m: np.ndarray
    zone_of_node: np.ndarray
    link_from_idx: np.ndarray
    link_to_idx: np.ndarray
    length_m: np.ndarray
    lanes: np.ndarray
    free_flow_time_s: np.ndarray
    capacity_veh_per_h: np.ndarray
    jam_density_veh_per_km_per_lane: np.ndarray
    road_class: np.ndarray
    road_class_names: tuple
    geom_indptr: np.ndarray | None = None
    geom_x_m: np.ndarray | None = None
    geom_y_m: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.x_m)

    @property
    def n_links(self) -> int:
        """Number of links."""
        return len(self.link_from_idx)


def _index_dtype(n):
    return np.int32 if n < 2**31 - 1 else np.int64


def _from_city(city: City) -> NetworkArrays:
    if not city.has_coordinates:
        raise ResultsError(f"city {city.name!r} has no node coordinates (x_m/y_m are NaN); it cannot be drawn. "
                           "Load a network with coordinates (OSM, a CSV network with x/y, grid:NxM)")
    return NetworkArrays(
        name=city.name, x_m=np.asarray(city.x_m, dtype=np.float64), y_m=np.asarray(city.y_m, dtype=np.float64),
        zone_of_node=np.asarray(city.zone_of_node, dtype=np.int32),
        link_from_idx=city.link_from_idx, link_to_idx=city.link_to_idx, length_m=city.length_m,
        lanes=np.asarray(city.lanes, dtype=np.float64), free_flow_time_s=city.free_flow_time_s,
        capacity_veh_per_h=city.capacity_veh_per_h,
        jam_density_veh_per_km_per_lane=city.jam_density_veh_per_km_per_lane,
        road_class=np.asarray(city.road_class, dtype=np.int8), road_class_names=tuple(city.road_class_names),
        geom_indptr=None if city.geom_indptr is None else np.asarray(city.geom_indptr, dtype=np.int64),
        geom_x_m=city.geom_x_m, geom_y_m=city.geom_y_m)


def _from_results(res: Results) -> NetworkArrays:
    keys = set(res.keys("/network"))
    missing = [p for p in ("/network/nodes", "/network/links") if p not in keys]
    if missing:
        raise ResultsError(f"{str(res.path)!r} has no {' and no '.join(missing)} table; the viz layer draws the "
                           "network from them (write them with twin.write_network(writer, city))")
    nodes = res.table("/network/nodes")
    links = res.table("/network/links")
    for table, path, need in ((nodes, "/network/nodes", ("x_m", "y_m")),
                              (links, "/network/links", ("from_idx", "to_idx", "length_m", "lanes"))):
        absent = [c for c in need if c not in table.columns]
        if absent:
            raise ResultsError(f"{str(res.path)!r}: table {path} lacks columns {absent}; it has {list(table.columns)}")
    m = len(links)
    x_m = nodes["x_m"].to_numpy(np.float64)
    y_m = nodes["y_m"].to_numpy(np.float64)
    if len(x_m) and np.isnan(x_m).all():
        raise ResultsError(f"{str(res.path)!r}: the network has no node coordinates (x_m/y_m are NaN); "
                           "it cannot be drawn")

    def col(name, default):
        return links[name].to_numpy(np.float64) if name in links.columns else np.full(m, default)

    if "road_class" in links.columns:
        names, codes = np.unique(links["road_class"].astype(str).to_numpy(), return_inverse=True)
        road_class_names, road_class = tuple(str(n) for n in names), codes.astype(np.int8)
    else:
        road_class_names, road_class = ("",), np.zeros(m, dtype=np.int8)
    idt = _index_dtype(max(len(x_m), m))
    geom = [p for p in ("/network/geom_indptr", "/network/geom_x_m", "/network/geom_y_m") if p in keys]
    geom_arrays = [res.array(p) for p in geom] if len(geom) == 3 else [None, None, None]
    zone = nodes["zone_idx"].to_numpy(np.int32) if "zone_idx" in nodes.columns else np.full(len(x_m), -1, np.int32)
    return NetworkArrays(
        name=str(res.meta.get("city", "")), x_m=x_m, y_m=y_m, zone_of_node=zone,
        link_from_idx=links["from_idx"].to_numpy().astype(idt), link_to_idx=links["to_idx"].to_numpy().astype(idt),
        length_m=col("length_m", np.nan), lanes=col("lanes", 1.0), free_flow_time_s=col("free_flow_time_s", np.nan),
        capacity_veh_per_h=col("capacity_veh_per_h", np.nan),
        jam_density_veh_per_km_per_lane=col("jam_density_veh_per_km_per_lane", np.nan),
        road_class=road_class, road_class_names=road_class_names,
        geom_indptr=None if geom_arrays[0] is None else np.asarray(geom_arrays[0], dtype=np.int64),
        geom_x_m=geom_arrays[1], geom_y_m=geom_arrays[2])


def network_arrays(source) -> NetworkArrays:
    """Collect the arrays needed to draw a network.

    Parameters
    ----------
    source : twin.City, twin.results.Results, str, os.PathLike or NetworkArrays
        A compiled city, an open results file, or the path of one (opened and closed here).

    Returns
    -------
    NetworkArrays

    Raises
    ------
    ResultsError
        A results file without ``/network/nodes`` and ``/network/links`` tables, or a
        network without node coordinates.
    TypeError
        ``source`` is none of the accepted types.

    Notes
    -----
    From a results file, ``road_class`` codes index the sorted unique class names of the
    links table; link geometry is read from ``/network/geom_indptr``, ``/network/geom_x_m``
    and ``/network/geom_y_m`` when the file has all three, else links are straight.
    """
    if isinstance(source, NetworkArrays):
        return source
    if isinstance(source, City):
        return _from_city(source)
    if isinstance(source, Results):
        return _from_results(source)
    if isinstance(source, (str, os.PathLike)):
        with open_results(source) as res:
            return _from_results(res)
    raise TypeError(f"expected a twin.City, a results file (twin.open_results) or its path; "
                    f"got {type(source).__name__}")


def _polylines(net: NetworkArrays):
    """Every link's vertices: (indptr, x, y), end points included, straight where no geometry."""
    if net.geom_indptr is not None:
        return net.geom_indptr, np.asarray(net.geom_x_m, np.float64), np.asarray(net.geom_y_m, np.float64)
    m = net.n_links
    indptr = np.arange(0, 2 * m + 1, 2, dtype=np.int64)
    ends = np.empty(2 * m, dtype=np.int64)
    ends[0::2] = net.link_from_idx
    ends[1::2] = net.link_to_idx
    return indptr, net.x_m[ends], net.y_m[ends]


def _right_normals(x, y, starts, ends):
    """Unit normal to the right of travel at every vertex (mean of its segments' normals)."""
    dx, dy = np.diff(x), np.diff(y)
    seg_len = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        nx_, ny_ = np.where(seg_len > 0, dy / seg_len, 0.0), np.where(seg_len > 0, -dx / seg_len, 0.0)
    n = len(x)
    out_x, out_y = np.zeros(n), np.zeros(n)
    has_next = ~ends  # vertex g starts segment g (to g + 1) of its own link
    has_prev = ~starts  # vertex g ends segment g - 1
    out_x[:-1] += np.where(has_next[:-1], nx_, 0.0)
    out_y[:-1] += np.where(has_next[:-1], ny_, 0.0)
    out_x[1:] += np.where(has_prev[1:], nx_, 0.0)
    out_y[1:] += np.where(has_prev[1:], ny_, 0.0)
    norm = np.hypot(out_x, out_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, out_x / norm, 0.0), np.where(norm > 0, out_y / norm, 0.0)


def city_mesh(source, *, tubes=False, tube_radius_m=None, offset_m=0.0, z_m=0.0) -> pv.PolyData:
    """Links of a road network as line cells of a :class:`pyvista.PolyData`.

    Parameters
    ----------
    source : twin.City, twin.results.Results, str or os.PathLike
        A compiled city, or a results file holding ``/network/nodes`` and ``/network/links``
        (see :func:`network_arrays`).
    tubes : bool, default False
        Return tubes (triangle strips around each link) instead of lines, with a radius of
        ``tube_radius_m`` per lane, so wider roads look wider.
    tube_radius_m : float, optional
        Tube radius per lane in metres; by default 0.08 % of the network's bounding-box
        diagonal (about 3.5 m on a 4.4 km district).
    offset_m : float or array_like of float, shape (n_links,), default 0.0
        Shift every link (or each link by its own value) this many metres to the right of
        its direction of travel, so the two directions of a two-way road are drawn side by
        side instead of on top of each other (negative shifts left, for left-hand traffic).
    z_m : float, default 0.0
        Height of the network plane, metres.

    Returns
    -------
    pyvista.PolyData
        Cell ``k`` is link ``k`` (a polyline following the link geometry where the source
        has it, else a straight segment). ``cell_data``: ``link_idx`` (int32), ``lanes``
        (float64), ``length_m`` (float64), ``road_class`` (int8 code; the names are in
        ``field_data["road_class_names"]``), ``free_flow_time_s`` (float64).
        ``point_data``: ``node_idx`` (int32; -1 at interior geometry vertices).
        When ``offset_m == 0`` and ``tubes`` is False, points ``0..n_nodes-1`` are the nodes
        in node order and are shared by the links that meet there; interior geometry
        vertices follow. Otherwise each link has its own points, in link order.
        With ``tubes=True`` the cells are the tube strips; their ``cell_data`` still carry
        ``link_idx`` and the other link arrays.

    Raises
    ------
    ResultsError
        The source has no network tables or no node coordinates.

    Examples
    --------
    >>> import twin
    >>> from twin.viz.mesh import city_mesh
    >>> mesh = city_mesh(twin.load_city("grid:4x4"))
    >>> mesh.n_cells, mesh.n_points, mesh.cell_data["link_idx"][:3].tolist()
    (48, 16, [0, 1, 2])
    """
    net = network_arrays(source)
    indptr, gx, gy = _polylines(net)
    m, n_nodes, n_vert = net.n_links, net.n_nodes, len(gx)
    counts = np.diff(indptr)
    if (counts < 2).any():
        k = int(np.flatnonzero(counts < 2)[0])
        raise ResultsError(f"link {k} has {int(counts[k])} geometry vertices; expected at least 2 (its end points)")
    starts = np.zeros(n_vert, dtype=bool)
    starts[indptr[:-1]] = True
    ends = np.zeros(n_vert, dtype=bool)
    ends[indptr[1:] - 1] = True
    node_of_vertex = np.full(n_vert, -1, dtype=np.int64)
    node_of_vertex[indptr[:-1]] = net.link_from_idx
    node_of_vertex[indptr[1:] - 1] = net.link_to_idx
    idt = _index_dtype(max(n_nodes + n_vert, m))
    offset = np.asarray(offset_m, dtype=np.float64)
    if offset.ndim and offset.shape != (m,):
        raise ValueError(f"offset_m has shape {offset.shape}; expected a float or one offset per link, shape ({m},)")
    link_of_vertex = np.repeat(np.arange(m), counts)
    shared = not offset.any() and not tubes
    if shared:
        interior = ~(starts | ends)
        point_of_vertex = node_of_vertex.copy()
        point_of_vertex[interior] = n_nodes + np.arange(int(interior.sum()))
        px = np.concatenate([net.x_m, gx[interior]])
        py = np.concatenate([net.y_m, gy[interior]])
        node_idx = np.concatenate([np.arange(n_nodes), np.full(int(interior.sum()), -1)])
    else:
        # End points sit exactly on their nodes even when the stored geometry is rounded.
        px, py = gx.copy(), gy.copy()
        on_node = node_of_vertex >= 0
        px[on_node], py[on_node] = net.x_m[node_of_vertex[on_node]], net.y_m[node_of_vertex[on_node]]
        if offset.any():
            nx_, ny_ = _right_normals(px, py, starts, ends)
            shift = offset[link_of_vertex] if offset.ndim else float(offset)
            px, py = px + shift * nx_, py + shift * ny_
        point_of_vertex = np.arange(n_vert)
        node_idx = node_of_vertex
    lines = np.empty(n_vert + m, dtype=np.int64)
    header = indptr[:-1] + np.arange(m)
    lines[header] = counts
    body = np.ones(n_vert + m, dtype=bool)
    body[header] = False
    lines[body] = point_of_vertex
    points = np.column_stack([px, py, np.full(len(px), float(z_m))])
    mesh = pv.PolyData(points, lines=lines)
    mesh.point_data["node_idx"] = node_idx.astype(idt)
    mesh.cell_data["link_idx"] = np.arange(m, dtype=idt)
    mesh.cell_data["lanes"] = np.asarray(net.lanes, dtype=np.float64)
    mesh.cell_data["length_m"] = np.asarray(net.length_m, dtype=np.float64)
    mesh.cell_data["road_class"] = np.asarray(net.road_class, dtype=np.int8)
    mesh.cell_data["free_flow_time_s"] = np.asarray(net.free_flow_time_s, dtype=np.float64)
    mesh.field_data["road_class_names"] = np.array(net.road_class_names, dtype=str)
    if tubes:
        if tube_radius_m is None:
            tube_radius_m = _TUBE_RADIUS_PER_LANE_SHARE * _diagonal_m(net)
        if not tube_radius_m > 0:
            raise ValueError(f"tube_radius_m = {tube_radius_m!r}; expected a radius per lane > 0 metres")
        mesh.point_data["tube_radius_m"] = float(tube_radius_m) * np.asarray(net.lanes, np.float64)[link_of_vertex]
        field = mesh.field_data["road_class_names"]
        mesh = mesh.tube(scalars="tube_radius_m", absolute=True, n_sides=8, capping=False)
        mesh.field_data["road_class_names"] = field
    return mesh


def _diagonal_m(net: NetworkArrays) -> float:
    if not net.n_nodes:
        return 1.0
    diag = float(np.hypot(np.ptp(net.x_m), np.ptp(net.y_m)))
    return diag if diag > 0 else 1.0


def zones_mesh(source, *, values=None, extrude_m=None, z_m=0.0) -> pv.PolyData:
    """Zones as convex-hull polygons of their nodes, optionally extruded by a per-zone value.

    Parameters
    ----------
    source : twin.City, twin.results.Results, str or os.PathLike
        See :func:`network_arrays`.
    values : array_like of float, shape (n_zones,), optional
        One value per zone (zone index order), stored as ``cell_data["value"]``.
    extrude_m : float, optional
        Height in metres of the zone with the largest ``values``; every zone is extruded to
        ``extrude_m * value / max(values)`` (NaN and negative values give flat zones). Needs
        ``values``. None draws flat polygons.
    z_m : float, default 0.0
        Height of the base, metres.

    Returns
    -------
    pyvista.PolyData
        Flat: one polygon per drawable zone. Extruded: per zone a top polygon, one quad per
        hull edge and a bottom polygon. ``cell_data``: ``zone_idx`` (int32) and, with
        ``values``, ``value`` (float64). Zones whose nodes span no area (fewer than three
        distinct points, or all on a line) are left out; ``zone_idx`` tells which are there.

    Raises
    ------
    ValueError
        ``values`` has the wrong shape, or ``extrude_m`` is given without ``values``.
    """
    from scipy.spatial import ConvexHull, QhullError

    net = network_arrays(source)
    zone = np.asarray(net.zone_of_node)
    n_zones = int(zone.max()) + 1 if len(zone) and zone.max() >= 0 else 0
    if values is not None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1 or len(values) < n_zones:
            raise ValueError(f"values has shape {values.shape}; expected one value per zone, shape ({n_zones},)")
        n_zones = len(values)
    if extrude_m is not None and values is None:
        raise ValueError("extrude_m needs values: the zone heights are proportional to them")
    heights = np.zeros(n_zones)
    if extrude_m is not None:
        top = np.nanmax(values) if n_zones and np.isfinite(values).any() else 0.0
        if top > 0:
            heights = np.nan_to_num(np.clip(values / top, 0.0, None)) * float(extrude_m)
    points, faces, cell_zone = [], [], []
    n_pts = 0
    for z in range(n_zones):
        xy = np.unique(np.column_stack([net.x_m[zone == z], net.y_m[zone == z]]), axis=0)
        if len(xy) < 3:
            continue
        try:
            hull = ConvexHull(xy)
        except QhullError:
            continue
        ring = xy[hull.vertices]  # counter-clockwise in 2-D
        k = len(ring)
        h = heights[z]
        base = np.column_stack([ring, np.full(k, float(z_m))])
        if h > 0:
            topp = base + [0.0, 0.0, h]
            points += [base, topp]
            b = n_pts + np.arange(k)
            t = b + k
            faces.append(np.concatenate([[k], t]))
            for i in range(k):
                j = (i + 1) % k
                faces.append(np.array([4, b[i], b[j], t[j], t[i]]))
            faces.append(np.concatenate([[k], b[::-1]]))
            cell_zone += [z] * (k + 2)
            n_pts += 2 * k
        else:
            points.append(base)
            faces.append(np.concatenate([[k], n_pts + np.arange(k)]))
            cell_zone.append(z)
            n_pts += k
    if points:
        mesh = pv.PolyData(np.vstack(points), faces=np.concatenate(faces).astype(np.int64))
    else:
        mesh = pv.PolyData()
    cell_zone = np.asarray(cell_zone, dtype=np.int32)
    mesh.cell_data["zone_idx"] = cell_zone
    if values is not None:
        mesh.cell_data["value"] = values[cell_zone] if len(cell_zone) else np.zeros(0)
    return mesh


def points_mesh(x_m, y_m, values=None, *, z_m=0.0, name="value") -> pv.PolyData:
    """Facilities or units as vertices with values (hospitals, stations, ambulances ...).

    Parameters
    ----------
    x_m, y_m : array_like of float, shape (n,)
        Planar coordinates in metres.
    values : array_like of shape (n,), or dict of str to array_like, optional
        Values per point, stored in ``point_data`` under ``name`` (an array) or under each
        key (a dict), e.g. ``{"occupancy": occ, "beds": beds}``.
    z_m : float or array_like, default 0.0
        Height of the points, metres.
    name : str, default "value"
        Array name when ``values`` is a single array.

    Returns
    -------
    pyvista.PolyData
        ``n`` points, each with a vertex cell, in input order; ``point_data["point_idx"]``
        (int32) numbers them.

    Raises
    ------
    ValueError
        Coordinates or values of different lengths.

    Examples
    --------
    >>> from twin.viz.mesh import points_mesh
    >>> pts = points_mesh([0.0, 100.0], [0.0, 50.0], {"occupancy": [3, 7]})
    >>> pts.n_points, pts.point_data["occupancy"].tolist()
    (2, [3, 7])
    """
    x = np.asarray(x_m, dtype=np.float64).ravel()
    y = np.asarray(y_m, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x_m has {len(x)} values and y_m {len(y)}; expected one x and one y per point")
    z = np.broadcast_to(np.asarray(z_m, dtype=np.float64), x.shape)
    mesh = pv.PolyData(np.column_stack([x, y, z])) if len(x) else pv.PolyData()
    mesh.point_data["point_idx"] = np.arange(len(x), dtype=np.int32)
    if values is None:
        return mesh
    items = values.items() if isinstance(values, dict) else [(name, values)]
    for key, arr in items:
        arr = np.asarray(arr)
        if arr.shape[:1] != x.shape:
            raise ValueError(f"values {key!r} has shape {arr.shape}; expected ({len(x)},), one per point")
        mesh.point_data[key] = arr
    return mesh


def node_points_mesh(source, node_idx, values=None, *, z_m=0.0, name="value") -> pv.PolyData:
    """Points at network nodes, e.g. hospitals from a table with a node index and occupancy.

    Parameters
    ----------
    source : twin.City, twin.results.Results, str or os.PathLike
        The network (see :func:`network_arrays`).
    node_idx : array_like of int, shape (n,)
        Node index of each point (row of ``/network/nodes``).
    values, z_m, name
        As in :func:`points_mesh`.

    Returns
    -------
    pyvista.PolyData
        As :func:`points_mesh`, plus ``point_data["node_idx"]``.

    Raises
    ------
    ValueError
        A node index out of range.
    """
    net = network_arrays(source)
    idx = np.asarray(node_idx).astype(np.int64).ravel()
    bad = np.flatnonzero((idx < 0) | (idx >= net.n_nodes))
    if len(bad):
        raise ValueError(f"node_idx[{bad[0]}] = {idx[bad[0]]}; expected a node index in [0, {net.n_nodes})")
    mesh = points_mesh(net.x_m[idx], net.y_m[idx], values, z_m=z_m, name=name)
    mesh.point_data["node_idx"] = idx.astype(_index_dtype(net.n_nodes))
    return mesh
