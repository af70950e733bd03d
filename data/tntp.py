"""Reader of TNTP network files (the Transportation Networks for Research format).

A ``*_net.tntp`` file has ``<KEY> value`` metadata lines up to ``<END OF METADATA>``,
``~`` comment lines, then one directed link per line: init node, term node, capacity,
length, free-flow time, B, power, speed, toll, link type, ending in ``;``. Nodes are
numbered ``1..<NUMBER OF NODES>``; nodes ``1..<NUMBER OF ZONES>`` are zones, and nodes
numbered below ``<FIRST THRU NODE>`` are zone centroids that routes may start or end at
but never pass through.

Units are not part of the format. The free-flow time column is read as **minutes** and
lengths as **miles** unless ``time_unit`` / ``length_unit`` say otherwise, except for the
networks in :data:`KNOWN_NETWORKS`, whose units their upstream READMEs state (Sioux Falls'
times are in 0.01 h; Anaheim's lengths in feet). Node coordinates come from the
``*_node.tntp`` file beside the net file, or a ``*nodes.geojson`` (Anaheim); lon/lat
degrees are projected to metres (local equirectangular about the bounding-box centre),
planar coordinates are scaled by ``coord_unit``.

``*_trips.tntp`` files (:func:`read_tntp_trips`) hold ``Origin o`` blocks of ``d : flow;``
entries (vehicles/hour of the modelled period); ``*_flow.tntp`` files
(:func:`read_tntp_flow`) hold the best-known equilibrium link volumes and costs.

Sources: Transportation Networks for Research Core Team, *Transportation Networks for
Research*, https://github.com/bstabler/TransportationNetworks (format description in its
README).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np

from twin.data.network import RawNetwork
from twin.errors import NetworkError
from twin.units import EARTH_RADIUS_M, length_factor_m, time_factor_s

__all__ = ["read_tntp_net", "read_tntp_trips", "read_tntp_flow", "KNOWN_NETWORKS", "project_lonlat"]

logger = logging.getLogger(__name__)

#: Units of the networks whose upstream README states them, keyed by the lower-case net
#: file name without ``_net.tntp``. ``coord`` is "lonlat" or a planar length unit.
KNOWN_NETWORKS = {
    # README: "time unit is 0.01 hours"; lengths are not documented (same figures as
    # the times), read as miles by convention.
    "siouxfalls": {"time_unit": "0.01h", "length_unit": "mi", "coord": "lonlat"},
    # README: minutes, feet, feet/min; coordinates in anaheim_nodes.geojson (WGS84).
    "anaheim": {"time_unit": "min", "length_unit": "ft", "coord": "lonlat"},
    # README: minutes, miles, cents; Illinois State Plane coordinates in feet.
    "chicagosketch": {"time_unit": "min", "length_unit": "mi", "coord": "ft"},
    "chicagoregional": {"time_unit": "min", "length_unit": "mi", "coord": "ft"},
    # Units not stated upstream (its README leaves them blank); minutes and metres give a
    # walking-pace median free speed, so read its times and lengths with care (a warning
    # is logged). Coordinates span 43.5 x 31.9, which fits central Berlin in kilometres.
    "berlin-center": {"time_unit": "min", "length_unit": "m", "coord": "km"},
}

_META_RE = re.compile(r"^\s*<([^>]+)>\s*(.*?)\s*$")


def _open_text(path):
    try:
        return open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise NetworkError(f"TNTP file not found: {path}") from None
    except OSError as exc:
        raise NetworkError(f"cannot read TNTP file {path}: {exc}") from None


def project_lonlat(lon, lat):
    """Project degrees to metres by a local equirectangular projection.

    ``x = R·(lon − lon0)·cos(lat0)``, ``y = R·(lat − lat0)`` with (lon0, lat0) the centre
    of the bounding box and R = 6,371,009 m. Over a city (tens of km) distances are off
    by less than 0.5 % in the east-west direction, far below link-length uncertainty.

    Returns
    -------
    x_m, y_m : ndarray of float64
    origin : (float, float)
        (lon0, lat0) in degrees.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon0 = 0.5 * (np.nanmin(lon) + np.nanmax(lon))
    lat0 = 0.5 * (np.nanmin(lat) + np.nanmax(lat))
    x = EARTH_RADIUS_M * np.radians(lon - lon0) * math.cos(math.radians(lat0))
    y = EARTH_RADIUS_M * np.radians(lat - lat0)
    return x, y, (float(lon0), float(lat0))


def _read_header(lines, path):
    meta = {}
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        mt = _META_RE.match(s)
        if mt is None:
            raise NetworkError(f"{path}, line {lineno}: expected a metadata line '<KEY> value' before "
                               f"'<END OF METADATA>', found {s[:60]!r}")
        key = mt.group(1).strip().upper()
        if key == "END OF METADATA":
            return meta, lineno
        meta[key] = mt.group(2).split("~")[0].strip()
    raise NetworkError(f"{path}: no '<END OF METADATA>' line; is this a TNTP *_net.tntp file?")


def _int_meta(meta, key, path, default=None):
    if key not in meta:
        if default is not None:
            return default
        raise NetworkError(f"{path}: metadata '<{key}>' is missing; TNTP net files must state it")
    try:
        value = float(meta[key])
    except ValueError:
        raise NetworkError(f"{path}: metadata '<{key}> {meta[key]}' is not an integer") from None
    if not (math.isfinite(value) and value == int(value) and abs(value) <= MAX_TNTP_COUNT):
        raise NetworkError(f"{path}: metadata '<{key}> {meta[key]}'; expected a whole number of at most "
                           f"{MAX_TNTP_COUNT:,} (MAX_TNTP_COUNT)")
    return int(value)


#: Largest count a TNTP header may state (nodes, zones, links): arrays are sized by it, so a
#: mistyped ``<NUMBER OF NODES> 1e10`` is refused rather than allocated (74.5 GiB).
MAX_TNTP_COUNT = 100_000_000


def _read_nodes(net_path: Path, n_nodes):
    """Return (x, y, kind, file) from a node file beside the net file, or None."""
    stem = net_path.name[: -len("_net.tntp")] if net_path.name.lower().endswith("_net.tntp") else net_path.stem
    candidates = [net_path.with_name(stem + "_node.tntp")]
    candidates += sorted(p for p in net_path.parent.glob("*_node.tntp") if p not in candidates)
    candidates += sorted(net_path.parent.glob("*nodes.geojson"))
    for cand in candidates:
        if cand.is_file():
            break
    else:
        return None
    x = np.full(n_nodes, np.nan)
    y = np.full(n_nodes, np.nan)
    if cand.suffix == ".geojson":
        try:
            doc = json.loads(cand.read_text(encoding="utf-8"))
            feats = doc["features"]
            for i, feat in enumerate(feats):
                nid = int(feat["properties"]["id"])
                lon, lat = feat["geometry"]["coordinates"][:2]
                if not 1 <= nid <= n_nodes:
                    raise NetworkError(f"{cand}: feature {i} has node id {nid}; expected 1..{n_nodes}")
                x[nid - 1], y[nid - 1] = float(lon), float(lat)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, NetworkError):
                raise
            raise NetworkError(f"{cand}: not a GeoJSON FeatureCollection of points with an 'id' property "
                               f"({type(exc).__name__}: {exc})") from None
        return x, y, cand
    with _open_text(cand) as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.replace(";", " ").split()
            if not parts or parts[0].startswith("~"):
                continue
            try:
                nid = int(parts[0])
                xv, yv = float(parts[1]), float(parts[2])
            except (ValueError, IndexError):
                if lineno == 1:
                    continue  # column header ("Node X Y ;")
                raise NetworkError(f"{cand}, line {lineno}: expected 'node x y', found {line.strip()[:60]!r}") from None
            if not 1 <= nid <= n_nodes:
                raise NetworkError(f"{cand}, line {lineno}: node id {nid} is outside 1..{n_nodes} "
                                   f"(<NUMBER OF NODES> of the net file)")
            x[nid - 1], y[nid - 1] = xv, yv
    return x, y, cand


def _net_stem(path):
    return path.name[: -len("_net.tntp")] if path.name.lower().endswith("_net.tntp") else path.stem


def _resolve_units(path, known, time_unit, length_unit, lane_capacity_veh_per_h, duplicates):
    """Check the options; return ``(t_unit, l_unit, t_fac, l_fac)`` (seconds and metres per unit)."""
    t_unit = time_unit if time_unit is not None else known.get("time_unit", "min")
    l_unit = length_unit if length_unit is not None else known.get("length_unit", "mi")
    try:
        t_fac, l_fac = time_factor_s(t_unit), length_factor_m(l_unit)
    except ValueError as exc:
        raise NetworkError(f"{path}: {exc}") from None
    if not (isinstance(lane_capacity_veh_per_h, (int, float)) and math.isfinite(lane_capacity_veh_per_h)
            and lane_capacity_veh_per_h > 0):
        raise NetworkError(f"lane_capacity_veh_per_h = {lane_capacity_veh_per_h!r}; expected a number > 0")
    if duplicates not in ("first", "error", "keep"):
        raise NetworkError(f"duplicates = {duplicates!r}; expected 'first', 'error' or 'keep'")
    return t_unit, l_unit, t_fac, l_fac


def _read_link_rows(lines, end, path):
    """Parse the link lines after the header; return ``(arr, lines_arr)`` (10 columns, 1-based line numbers)."""
    rows = []
    line_no = []
    for lineno in range(end + 1, len(lines) + 1):
        s = lines[lineno - 1].strip()
        if not s or s.startswith("~"):
            continue
        s = s.split("~")[0].replace(";", " ")
        parts = s.split()
        if not parts:
            continue
        if len(parts) < 5:
            raise NetworkError(f"{path}, line {lineno}: expected at least 5 columns (init term capacity length "
                               f"free_flow_time), found {len(parts)}: {lines[lineno - 1].strip()[:80]!r}")
        try:
            vals = [float(p) for p in parts[:10]]
        except ValueError:
            raise NetworkError(f"{path}, line {lineno}: non-numeric value in {lines[lineno - 1].strip()[:80]!r}") from None
        vals += [0.15, 4.0, 0.0, 0.0, 0.0][len(vals) - 5:] if len(vals) < 10 else []
        rows.append(vals[:10])
        line_no.append(lineno)
    if not rows:
        raise NetworkError(f"{path}: no link lines after '<END OF METADATA>'")
    return np.array(rows, dtype=np.float64), np.array(line_no, dtype=np.int64)


def _check_link_values(arr, lines_arr, n_nodes, n_links_header, path):
    """Raise on node ids outside ``1..n_nodes``, negative or NaN values, or a capacity <= 0."""
    init, term = arr[:, 0], arr[:, 1]
    for col, what in ((init, "init node"), (term, "term node")):
        bad = np.flatnonzero((col != np.round(col)) | (col < 1) | (col > n_nodes))
        if len(bad):
            k = bad[0]
            raise NetworkError(f"{path}, line {lines_arr[k]}: {what} {col[k]:g} is not a node id in 1..{n_nodes} "
                               f"(<NUMBER OF NODES> {n_nodes})")
    names = ("capacity", "length", "free_flow_time", "b", "power")
    for j, nm in enumerate(names, start=2):
        bad = np.flatnonzero(~np.isfinite(arr[:, j]) | (arr[:, j] < 0))
        if len(bad):
            k = bad[0]
            raise NetworkError(f"{path}, line {lines_arr[k]}: {nm} = {arr[k, j]}; expected a finite number >= 0")
    bad = np.flatnonzero(arr[:, 2] <= 0)
    if len(bad):
        k = bad[0]
        raise NetworkError(f"{path}, line {lines_arr[k]}: capacity = {arr[k, 2]}; expected > 0 vehicles/hour")
    if n_links_header >= 0 and n_links_header != len(arr):
        logger.warning("%s: <NUMBER OF LINKS> %d but %d link lines", path, n_links_header, len(arr))


def _duplicate_mask(arr, lines_arr, tail, head, n_nodes, duplicates, path):
    """Boolean mask of the links to keep under the ``duplicates`` policy."""
    keep = np.ones(len(arr), dtype=bool)
    if duplicates != "keep":
        key = tail * n_nodes + head
        _, first_idx = np.unique(key, return_index=True)
        keep[:] = False
        keep[first_idx] = True
        dup = np.flatnonzero(~keep)
        if len(dup):
            if duplicates == "error":
                k = dup[0]
                raise NetworkError(f"{path}, line {lines_arr[k]}: a second link {int(arr[k, 0])}->{int(arr[k, 1])}; "
                                   f"pass duplicates='first' or 'keep'")
            logger.info("%s: dropped %d duplicate links (kept the first of each pair): lines %s", path, len(dup),
                        lines_arr[dup].tolist()[:10])
    return keep


def _free_speeds(arr, l_fac, t_fac, path, t_unit, l_unit):
    """Return ``(length_m, fft_s, speed)``; fill zero lengths and warn on an implausible median speed."""
    length_m = arr[:, 3] * l_fac
    fft_s = arr[:, 4] * t_fac
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(fft_s > 0, length_m / fft_s, np.inf)
    # A link with a time but no length (rare) gets the median speed of the others, so
    # that length / speed stays consistent with its stated time for the traffic model.
    zero_len = (length_m == 0) & (fft_s > 0)
    if zero_len.any():
        ok = (length_m > 0) & (fft_s > 0)
        med = float(np.median(speed[ok])) if ok.any() else 13.89
        speed = np.where(zero_len, med, speed)
        length_m = np.where(zero_len, fft_s * med, length_m)
        logger.info("%s: %d links have a free-flow time but zero length; length set to time x median speed",
                    path, int(zero_len.sum()))

    moving = np.isfinite(speed) & (fft_s > 0)
    if moving.any():
        med = float(np.median(speed[moving]))
        if not 2.0 <= med <= 40.0:
            logger.warning("%s: median free speed %.2f m/s is implausible for roads; check time_unit (%s) and "
                           "length_unit (%s)", path, med, t_unit, l_unit)
    return length_m, fft_s, speed


def _node_coordinates(path, node_ids, tail, head, coord_unit, known, meta_out):
    """Return ``(x, y, lon, lat)`` from the node file beside ``path`` (NaN x/y and no lon/lat without one)."""
    n_nodes = len(node_ids)
    x = y = np.full(n_nodes, np.nan)
    lon = lat = None
    nodes = _read_nodes(path, n_nodes)
    if nodes is None:
        return x, y, lon, lat
    nx_, ny_, node_file = nodes
    have = ~np.isnan(nx_)
    meta_out["node_file"] = node_file.name
    if not have.all():
        missing = node_ids[~have]
        used = np.zeros(n_nodes, dtype=bool)
        used[tail] = True
        used[head] = True
        if (~have & used).any():
            raise NetworkError(f"{node_file}: no coordinates for node(s) {node_ids[~have & used][:5].tolist()} "
                               f"that links use; every node needs x and y")
        logger.info("%s: %d nodes without links have no coordinates; placed at the centroid",
                    node_file, len(missing))
        nx_[~have] = np.nanmean(nx_)
        ny_[~have] = np.nanmean(ny_)
    coord = coord_unit if coord_unit is not None else known.get("coord")
    if coord is None:
        coord = "lonlat" if (np.abs(nx_).max() <= 180 and np.abs(ny_).max() <= 90) else "m"
    if coord == "lonlat":
        lon, lat = nx_, ny_
        x, y, origin = project_lonlat(lon, lat)
        meta_out.update(projection="local equirectangular", lon0=origin[0], lat0=origin[1])
    else:
        try:
            fac = length_factor_m(coord)
        except ValueError as exc:
            raise NetworkError(f"{path}: coord_unit: {exc}") from None
        x, y = nx_ * fac, ny_ * fac
        meta_out["coord_unit"] = str(coord)
    return x, y, lon, lat


def _zone_arrays(n_nodes, n_zones, first_thru):
    """Return ``(zone_of_node, no_through)``: nodes ``1..n_zones`` are zones, those below ``first_thru`` centroids."""
    zone_of_node = np.full(n_nodes, -1, dtype=np.int32)
    zone_of_node[:n_zones] = np.arange(n_zones, dtype=np.int32)
    no_through = np.zeros(n_nodes, dtype=bool)
    no_through[: max(first_thru - 1, 0)] = True
    return zone_of_node, no_through


def read_tntp_net(path, *, time_unit=None, length_unit=None, coord_unit=None, name=None,
                  duplicates="keep", lane_capacity_veh_per_h=2000.0) -> RawNetwork:
    """Read a TNTP ``*_net.tntp`` file (and its node file, when present).

    Parameters
    ----------
    path : str or Path
        The net file.
    time_unit : str or float, optional
        Unit of the free-flow time column: "min" (default), "s", "h", "0.01h", or seconds
        per unit. Known networks (:data:`KNOWN_NETWORKS`) default to their stated unit.
    length_unit : str or float, optional
        Unit of the length column: "mi" (default), "km", "m", "ft", or metres per unit.
    coord_unit : str or float, optional
        "lonlat" for degrees, or the planar unit of the node file's coordinates ("ft",
        "m", "km", "mi"); default: known network's, else "lonlat" when every x is within
        ±180 and y within ±90, else metres.
    name : str, optional
        Network name; default the file name without ``_net.tntp``.
    lane_capacity_veh_per_h : float
        TNTP files give no lane counts; a link gets ``ceil(capacity / this)`` lanes
        (default 2,000 veh/h/lane, the HCM freeway base capacity per lane), so that its
        storage (lanes × length × jam density) fits its capacity in the traffic model.
    duplicates : {"keep", "first", "error"}
        What to do with a second link between the same ordered node pair: keep both as
        parallel links (default: nothing is dropped silently), keep only the first (the
        TNTP convention for assignment since 2013, e.g. Berlin-Center's 6 pairs), or raise.

    Returns
    -------
    RawNetwork
        Links in file order (less dropped duplicates), with ``bpr_alpha``, ``bpr_beta``,
        ``link_attrs`` ``toll``, ``tntp_link_type``, ``speed`` (raw column) and
        ``source_line``; zones are nodes ``1..<NUMBER OF ZONES>``; ``no_through`` marks the
        centroids below ``<FIRST THRU NODE>``.

    Raises
    ------
    NetworkError
        Missing file or metadata, malformed link line (file and line named), node ids
        outside ``1..<NUMBER OF NODES>``, a negative or NaN value, duplicates with
        ``duplicates="error"``.
    """
    path = Path(path)
    stem = _net_stem(path)
    known = KNOWN_NETWORKS.get(stem.lower(), {})
    t_unit, l_unit, t_fac, l_fac = _resolve_units(path, known, time_unit, length_unit, lane_capacity_veh_per_h,
                                                  duplicates)

    with _open_text(path) as fh:
        lines = fh.read().splitlines()
    meta, end = _read_header(lines, path)
    n_nodes = _int_meta(meta, "NUMBER OF NODES", path)
    n_zones = _int_meta(meta, "NUMBER OF ZONES", path, default=0)
    first_thru = _int_meta(meta, "FIRST THRU NODE", path, default=1)
    n_links_header = _int_meta(meta, "NUMBER OF LINKS", path, default=-1)
    if n_nodes <= 0:
        raise NetworkError(f"{path}: <NUMBER OF NODES> {n_nodes}; expected > 0")

    arr, lines_arr = _read_link_rows(lines, end, path)
    _check_link_values(arr, lines_arr, n_nodes, n_links_header, path)
    tail = arr[:, 0].astype(np.int64) - 1
    head = arr[:, 1].astype(np.int64) - 1
    keep = _duplicate_mask(arr, lines_arr, tail, head, n_nodes, duplicates, path)
    arr, lines_arr, tail, head = arr[keep], lines_arr[keep], tail[keep], head[keep]

    length_m, fft_s, speed = _free_speeds(arr, l_fac, t_fac, path, t_unit, l_unit)
    node_ids = np.arange(1, n_nodes + 1, dtype=np.int64)
    meta_out = {"format": "tntp", "time_unit": str(t_unit), "length_unit": str(l_unit),
                "n_zones": n_zones, "first_thru_node": first_thru, "duplicates_dropped": int((~keep).sum())}
    x, y, lon, lat = _node_coordinates(path, node_ids, tail, head, coord_unit, known, meta_out)

    zone_of_node, no_through = _zone_arrays(n_nodes, n_zones, first_thru)
    link_type = arr[:, 9].astype(np.int64)
    types = np.unique(link_type)
    road_class = np.searchsorted(types, link_type).astype(np.int8)
    return RawNetwork(
        name=name or stem, source=str(path), node_ids=node_ids, x_m=x, y_m=y, lon=lon, lat=lat,
        link_from_idx=tail, link_to_idx=head, length_m=length_m, free_speed_mps=speed,
        lanes=np.maximum(1.0, np.ceil(arr[:, 2] / float(lane_capacity_veh_per_h))), capacity_veh_per_h=arr[:, 2], free_flow_time_s=fft_s,
        road_class=road_class, road_class_names=tuple(f"tntp_type_{t}" for t in types),
        bpr_alpha=arr[:, 5], bpr_beta=arr[:, 6], zone_of_node=zone_of_node,
        zone_ids=np.arange(1, n_zones + 1, dtype=np.int64), no_through=no_through,
        link_attrs={"toll": arr[:, 8], "tntp_link_type": link_type, "speed": arr[:, 7], "source_line": lines_arr},
        meta=meta_out,
    )


_ENTRY_RE = re.compile(r"^\s*([^:;]+?)\s*:\s*([^:;]*?)\s*$")


def read_tntp_trips(path) -> dict:
    """Read a TNTP ``*_trips.tntp`` origin-destination table.

    Parameters
    ----------
    path : str or Path
        The trips file: ``<KEY> value`` metadata up to ``<END OF METADATA>``, then
        ``Origin o`` lines, each followed by ``d : flow;`` entries (several per line).
        ``~`` starts a comment.

    Returns
    -------
    dict
        ``origin_zone``, ``destination_zone`` : ndarray of int64, shape (n_pairs,)
            Zone ids (``1..n_zones``) of the pairs with a non-zero flow and ``o != d``, in
            file order.
        ``demand_veh_per_h`` : ndarray of float64, shape (n_pairs,)
            Their flows, vehicles/hour (TNTP tables are peak-hour vehicle flows).
        ``n_zones`` : int
            ``<NUMBER OF ZONES>`` of the header.
        ``total_od_flow`` : float
            Sum of every flow in the file, intrazonal included (the header's
            ``<TOTAL OD FLOW>`` when the file is consistent; a mismatch is logged).
        ``header_total_od_flow`` : float or None
            ``<TOTAL OD FLOW>`` as stated in the header.
        ``intrazonal_dropped_pairs`` : int
            Number of non-zero ``o == d`` entries left out (they load no link).
        ``intrazonal_dropped_trips`` : float
            Their total flow, vehicles/hour (123,414 in Chicago-Sketch).
        ``metadata`` : dict
            The header, keys upper-case.

    Raises
    ------
    NetworkError
        Missing file or header, missing ``<NUMBER OF ZONES>``, an entry before any
        ``Origin`` line, a malformed ``d : flow`` entry, a non-numeric, non-finite or
        negative flow, an origin or destination outside ``1..n_zones``, or the same pair
        twice; the message names the file and line.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> text = "<NUMBER OF ZONES> 2\\n<END OF METADATA>\\nOrigin 1\\n 1 : 5.0; 2 : 10.0;\\n"
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy_trips.tntp"
    >>> _ = p.write_text(text)
    >>> t = read_tntp_trips(p)
    >>> t["origin_zone"].tolist(), t["destination_zone"].tolist(), t["demand_veh_per_h"].tolist()
    ([1], [2], [10.0])
    >>> t["intrazonal_dropped_trips"]
    5.0
    """
    path = Path(path)
    with _open_text(path) as fh:
        lines = fh.read().splitlines()
    meta, end = _read_header(lines, path)
    n_zones = _int_meta(meta, "NUMBER OF ZONES", path)
    if n_zones <= 0:
        raise NetworkError(f"{path}: <NUMBER OF ZONES> {n_zones}; expected > 0")
    header_total = None
    if "TOTAL OD FLOW" in meta:
        try:
            header_total = float(meta["TOTAL OD FLOW"])
        except ValueError:
            raise NetworkError(f"{path}: metadata '<TOTAL OD FLOW> {meta['TOTAL OD FLOW']}' is not a number") from None

    orig, dest, flow = [], [], []
    seen = set()
    origin = None
    total = 0.0
    intra_pairs = 0
    intra_flow = 0.0
    for lineno in range(end + 1, len(lines) + 1):
        s = lines[lineno - 1].split("~")[0].strip()
        if not s:
            continue
        if s[:6].lower() == "origin":
            word = s[6:].strip().rstrip(";").strip()
            try:
                origin = int(word)
            except ValueError:
                raise NetworkError(f"{path}, line {lineno}: expected 'Origin <zone id>', found {s[:60]!r}") from None
            if not 1 <= origin <= n_zones:
                raise NetworkError(f"{path}, line {lineno}: origin {origin} is outside 1..{n_zones} "
                                   f"(<NUMBER OF ZONES> {n_zones})")
            continue
        if origin is None:
            raise NetworkError(f"{path}, line {lineno}: entry {s[:60]!r} before any 'Origin <zone id>' line")
        for item in s.split(";"):
            if not item.strip():
                continue
            mt = _ENTRY_RE.match(item)
            if mt is None:
                raise NetworkError(f"{path}, line {lineno}: malformed entry {item.strip()[:40]!r}; "
                                   f"expected 'destination : flow;'")
            try:
                d = int(mt.group(1))
            except ValueError:
                raise NetworkError(f"{path}, line {lineno}: destination {mt.group(1)!r} is not an integer zone id") from None
            try:
                q = float(mt.group(2))
            except ValueError:
                raise NetworkError(f"{path}, line {lineno}: flow {mt.group(2)!r} for {origin} -> {d} is not a "
                                   f"number; expected a finite flow >= 0 vehicles/hour") from None
            if not 1 <= d <= n_zones:
                raise NetworkError(f"{path}, line {lineno}: destination {d} (origin {origin}) is outside "
                                   f"1..{n_zones} (<NUMBER OF ZONES> {n_zones})")
            if not math.isfinite(q) or q < 0:
                raise NetworkError(f"{path}, line {lineno}: flow {q!r} for {origin} -> {d}; expected a finite "
                                   f"flow >= 0 vehicles/hour")
            if (origin, d) in seen:
                raise NetworkError(f"{path}, line {lineno}: pair {origin} -> {d} appears a second time; each "
                                   f"pair may be given once")
            seen.add((origin, d))
            total += q
            if q == 0.0:
                continue
            if d == origin:
                intra_pairs += 1
                intra_flow += q
                continue
            orig.append(origin)
            dest.append(d)
            flow.append(q)
    if header_total is not None and abs(total - header_total) > 1e-6 * max(1.0, abs(header_total)):
        logger.warning("%s: entries sum to %.6f but <TOTAL OD FLOW> is %.6f", path, total, header_total)
    if intra_pairs:
        logger.info("%s: dropped %d intrazonal pairs (%.3f veh/h)", path, intra_pairs, intra_flow)
    return {
        "origin_zone": np.array(orig, dtype=np.int64),
        "destination_zone": np.array(dest, dtype=np.int64),
        "demand_veh_per_h": np.array(flow, dtype=np.float64),
        "n_zones": n_zones,
        "total_od_flow": float(total),
        "header_total_od_flow": header_total,
        "intrazonal_dropped_pairs": intra_pairs,
        "intrazonal_dropped_trips": float(intra_flow),
        "metadata": meta,
    }


def read_tntp_flow(path) -> dict:
    """Read a TNTP ``*_flow.tntp`` file of link volumes (best-known equilibrium flows).

    Parameters
    ----------
    path : str or Path
        Lines ``from to volume cost`` (tabs or spaces, an optional trailing ``;``), an
        optional column-title line (``From To Volume Cost``) and an optional metadata
        header up to ``<END OF METADATA>`` (Chicago-Regional has one).

    Returns
    -------
    dict
        ``from_node``, ``to_node`` : ndarray of int64, shape (n_rows,)
            External node ids at each link's ends, in file order (TNTP flow files list
            the links in net-file order).
        ``volume_veh_per_h`` : ndarray of float64
            Link volume, vehicles/hour.
        ``cost`` : ndarray of float64
            Link cost **in the file's own time unit** (not converted: it is a
            generalised cost where the network has tolls or distance weights).

    Raises
    ------
    NetworkError
        Missing file, a line with fewer than four columns or a non-numeric value (file
        and line named), or no data line.
    """
    path = Path(path)
    with _open_text(path) as fh:
        lines = fh.read().splitlines()
    start = 0
    if any(line.strip().upper().startswith("<END OF METADATA>") for line in lines[:50]):
        _, start = _read_header(lines, path)
    rows = []
    titles_seen = False
    for lineno in range(start + 1, len(lines) + 1):
        s = lines[lineno - 1].split("~")[0].replace(";", " ").strip()
        if not s:
            continue
        parts = s.split()
        try:
            vals = [float(p) for p in parts[:4]]
        except ValueError:
            if not titles_seen and not rows:
                titles_seen = True  # column titles ("From To Volume Cost")
                continue
            raise NetworkError(f"{path}, line {lineno}: non-numeric value in {s[:80]!r}; expected "
                               f"'from to volume cost'") from None
        if len(vals) < 4:
            raise NetworkError(f"{path}, line {lineno}: expected 4 columns (from to volume cost), found "
                               f"{len(parts)}: {s[:80]!r}")
        rows.append(vals)
    if not rows:
        raise NetworkError(f"{path}: no 'from to volume cost' lines")
    arr = np.array(rows, dtype=np.float64)
    return {
        "from_node": arr[:, 0].astype(np.int64),
        "to_node": arr[:, 1].astype(np.int64),
        "volume_veh_per_h": arr[:, 2].copy(),
        "cost": arr[:, 3].copy(),
    }
