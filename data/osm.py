"""Read an OpenStreetMap XML extract into a drivable :class:`~twin.data.network.RawNetwork`.

The reader is offline: it streams a local ``.osm``, ``.osm.gz`` or ``.osm.bz2`` file (the
compression is recognised from the file's first bytes) with :func:`xml.etree.ElementTree.iterparse`,
keeps the drivable ways, cuts them into node-to-node *segments*, keeps the largest strongly
connected component, and collapses interstitial nodes into links that keep their polyline.
It reproduces the node and link counts of osmnx 2.1.1 on the same filter (see
``shared/data/osm/REFERENCE.md``) when ``merge_across_attributes=True``.

Fidelity: a static road graph. Turn restrictions, access tags (``access=private``,
``motor_vehicle=no``), ``area=yes``, time-dependent oneways and relations are ignored, as in
the reference filter. Lanes, speeds and capacities come from tags where they parse and from the
defaults table below otherwise.

Drivable ways
-------------
``highway`` in {motorway, trunk, primary, secondary, tertiary, motorway_link, trunk_link,
primary_link, secondary_link, tertiary_link, unclassified, residential, living_street, road},
plus ``service`` when ``include_service=True``. There is no access filter.

Missing nodes (clipped extracts)
--------------------------------
A ``<nd ref>`` to a node absent from the file is dropped and the way is split there: the
present nodes on each side form separate runs, and only consecutive present nodes are joined.
A run (or a way) left with fewer than two distinct nodes gives no segment. Consecutive repeats of
one node are merged, as osmnx does.

Oneway rules
------------
Tag values are compared after stripping and lower-casing.

================================================  ==========================================
tags of the way                                   directions of travel
================================================  ==========================================
``oneway`` = yes / true / 1                       node order only
``oneway`` = -1 / reverse                         reverse node order only
``oneway`` = no / false / 0                       both (overrides the implied rules below)
``junction`` = roundabout / circular              node order only, unless ``oneway`` says otherwise
``highway`` = motorway / motorway_link            node order only, unless ``oneway`` says otherwise
anything else (no tag, ``reversible``, ...)       both
================================================  ==========================================

osmnx differs in four details that none of the reference files exercises: it does not imply
oneway on motorways or ``junction=circular``, it makes a roundabout one-way even with
``oneway=no``, and it also accepts ``T``/``F`` (case-sensitively).

Lanes, speeds and capacities
----------------------------
``lanes`` on a link is the number of lanes in *its* direction. On a one-way way it is the
``lanes`` tag. On a two-way way it is ``lanes:forward`` / ``lanes:backward`` if present, else
``lanes`` minus the other direction's tag if that is given, else ``ceil(lanes / 2)``, and at
least 1. The free speed is ``maxspeed:forward`` / ``maxspeed:backward`` if present, else
``maxspeed``; a number is km/h unless followed by ``mph``; ``km/h``, ``kmh`` and ``kph`` are
accepted; of a ``;`` list the first value counts. Values that do not parse (``none``,
``CN:urban``, ``walk``, ``signals``), are not positive, or are beyond belief (more than
:data:`MAX_TAG_LANES` lanes, faster than :data:`MAX_TAG_SPEED_MPS`) fall back to the class default.
``capacity_veh_per_h = capacity per lane x lanes``.

Defaults (:data:`HIGHWAY_DEFAULTS`) are the MATSim OsmNetworkReader defaults (Horni, Nagel &
Axhausen, *The Multi-Agent Transport Simulation MATSim*, 2016); ``service`` and ``road`` are
our own choices (``service`` as ``living_street``, ``road``, an unknown class, as
``residential``):

==============  ===================  ===============  ==========================
highway         lanes per direction  free speed km/h  capacity veh/h per lane
==============  ===================  ===============  ==========================
motorway        2                    120              2000
motorway_link   1                    80               1500
trunk           1                    80               2000
trunk_link      1                    50               1500
primary         1                    80               1500
primary_link    1                    60               1500
secondary       1                    60               1000
secondary_link  1                    60               1000
tertiary        1                    45               600
tertiary_link   1                    45               600
unclassified    1                    45               600
residential     1                    30               600
living_street   1                    15               300
service         1                    15               300
road            1                    30               600
==============  ===================  ===============  ==========================

Lengths and projection
----------------------
A segment's length is the great-circle (haversine) distance between its nodes with
R = 6,371,009 m (:func:`twin.units.haversine_m`), and a link's length is the sum over its
segments, as in osmnx. Coordinates in metres come from a local equirectangular projection about
the centre ``(lon0, lat0)`` of the kept nodes' bounding box: ``x = R (lon - lon0) cos(lat0)``,
``y = R (lat - lat0)``, angles in radians. North-south distances are exact on the sphere; the
east-west scale is ``cos(lat) / cos(lat0)``, so a projected distance is off by at most about
``|tan(lat0)| |lat - lat0|`` (radians) relative: 0.16 % at 10 km from the origin at 45 degrees,
0.1 % at 30 degrees. The worst factor over the kept nodes is stored as
``meta["projection_max_scale_error"]``. Lengths do not use the projection. The sphere itself
differs from WGS84 by up to about 0.5 %. Extracts that cross the antimeridian are not supported.

Simplification
--------------
The segment graph is a multigraph: every segment of every way is a directed edge. A node is an
*endpoint* unless (osmnx's rule) it has exactly two distinct neighbours, no self-loop, at least
one incoming and one outgoing segment and a total degree of 2 or 4 (1 in + 1 out, or 2 in +
2 out). Chains between endpoints become one link whose geometry is the node polyline (end
points included). With ``merge_across_attributes=False`` (the default) a node is also an
endpoint where the highway class, lanes, free speed or oneway-ness changes along a direction
of travel, so every link has a single set of attributes, and a ring with no endpoint becomes a
self-loop at the ring node met first in the file. With ``merge_across_attributes=True``
chains merge like osmnx: a link takes highway, lanes, speed, capacity, ``osm_way_id`` and ``name`` from the way
that contributes the greatest length to it (the first along the link on a tie), ``oneway`` is
true if any part is one-way (osmnx's list of values is truthy), and components that are a bare
ring are removed, as osmnx's ``remove_rings`` does. In both modes, where parallel segments join
two interstitial nodes only the first one (file order) is kept, as osmnx does; the length lost
that way is ``meta["simplify_dropped_length_m"]`` (0 on the reference files).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from twin.data.network import RawNetwork
from twin.errors import NetworkError
from twin.units import EARTH_RADIUS_M, haversine_m, kmh_to_mps, mph_to_mps

__all__ = [
    "read_osm",
    "HighwayDefaults",
    "HIGHWAY_DEFAULTS",
    "DRIVABLE_HIGHWAYS",
    "DEFAULTS_SOURCE",
    "KEEP_OPTIONS",
]

logger = logging.getLogger(__name__)


class HighwayDefaults(NamedTuple):
    """Defaults for one OSM ``highway`` class when its tags give none."""

    lanes: float
    """Lanes per direction of travel."""
    free_speed_kmh: float
    """Free-flow speed in km/h."""
    capacity_veh_per_h_per_lane: float
    """Saturation flow per lane in vehicles/hour."""


#: Citation of the default table.
DEFAULTS_SOURCE = (
    "MATSim OsmNetworkReader defaults (Horni, Nagel & Axhausen, The Multi-Agent Transport "
    "Simulation MATSim, 2016); service and road are twin's own choices"
)

#: Defaults by highway class (read-only). See the module docstring for the table and its source.
HIGHWAY_DEFAULTS = MappingProxyType(
    {
        "motorway": HighwayDefaults(2.0, 120.0, 2000.0),
        "motorway_link": HighwayDefaults(1.0, 80.0, 1500.0),
        "trunk": HighwayDefaults(1.0, 80.0, 2000.0),
        "trunk_link": HighwayDefaults(1.0, 50.0, 1500.0),
        "primary": HighwayDefaults(1.0, 80.0, 1500.0),
        "primary_link": HighwayDefaults(1.0, 60.0, 1500.0),
        "secondary": HighwayDefaults(1.0, 60.0, 1000.0),
        "secondary_link": HighwayDefaults(1.0, 60.0, 1000.0),
        "tertiary": HighwayDefaults(1.0, 45.0, 600.0),
        "tertiary_link": HighwayDefaults(1.0, 45.0, 600.0),
        "unclassified": HighwayDefaults(1.0, 45.0, 600.0),
        "residential": HighwayDefaults(1.0, 30.0, 600.0),
        "living_street": HighwayDefaults(1.0, 15.0, 300.0),
        "service": HighwayDefaults(1.0, 15.0, 300.0),  # our choice: as living_street
        "road": HighwayDefaults(1.0, 30.0, 600.0),  # our choice: unknown class, as residential
    }
)

#: Highway classes read as drivable when ``include_service=False``.
DRIVABLE_HIGHWAYS = frozenset(HIGHWAY_DEFAULTS) - {"service"}

#: Accepted values of ``read_osm(keep=...)``.
KEEP_OPTIONS = ("largest_scc", "all")

_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_REVERSE = frozenset({"-1", "reverse"})
_ONEWAY_NO = frozenset({"no", "false", "0"})
_IMPLIED_ONEWAY_JUNCTIONS = frozenset({"roundabout", "circular"})
_IMPLIED_ONEWAY_HIGHWAYS = frozenset({"motorway", "motorway_link"})
_WAY_KEYS = frozenset(
    {
        "highway",
        "oneway",
        "junction",
        "lanes",
        "lanes:forward",
        "lanes:backward",
        "maxspeed",
        "maxspeed:forward",
        "maxspeed:backward",
        "name",
    }
)
_NUMBER_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_SPEED_RE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(km/h|kmh|kph|mph)?\s*$", re.IGNORECASE)


# --------------------------------------------------------------------------- public API


def read_osm(
    path,
    *,
    name=None,
    include_service=True,
    keep="largest_scc",
    simplify=True,
    merge_across_attributes=False,
) -> RawNetwork:
    """Read the drivable road network of an OpenStreetMap XML file.

    Parameters
    ----------
    path : str or os.PathLike
        An ``.osm`` file, optionally gzip- or bzip2-compressed (recognised from its first bytes).
    name : str, optional
        Network name; default the file name without ``.osm``, ``.gz``, ``.bz2``.
    include_service : bool, default True
        Also read ``highway=service`` ways (parking aisles, driveways, alleys).
    keep : {"largest_scc", "all"}, default "largest_scc"
        ``"largest_scc"`` keeps the largest strongly connected component of the segment graph
        (before simplification; on a tie, the one holding the node met first in the file);
        ``"all"`` keeps every segment.
    simplify : bool, default True
        Collapse interstitial nodes into polyline links (module docstring, *Simplification*).
        When False every segment between two consecutive way nodes is a link.
    merge_across_attributes : bool, default False
        When False, never merge across a change of highway class, lanes, free speed or
        oneway-ness. When True, merge as osmnx does, so node and link counts reproduce osmnx.

    Returns
    -------
    RawNetwork
        Nodes sorted by OSM id (``node_ids`` int64, ``lon``/``lat`` in degrees, ``x_m``/``y_m``
        in metres), links sorted by (tail, head) index with ``length_m`` (m),
        ``free_speed_mps`` (m/s), ``lanes`` (per direction), ``capacity_veh_per_h`` (veh/h for
        the link), ``road_class`` (int8 code into ``road_class_names``, the sorted highway
        values present), polylines in ``geom_indptr``/``geom_x_m``/``geom_y_m`` and
        ``link_attrs``: ``osm_way_id`` (int64), ``name`` (str, "" when untagged),
        ``highway`` (str), ``highway_merged`` (the sorted distinct classes of the link's
        segments joined by "+", osmnx's notation) and ``oneway`` (bool). ``meta`` records
        what was read, defaulted and dropped, and the projection origin.

    Raises
    ------
    NetworkError
        If the file is missing or unreadable, is not well-formed XML (the message gives line and
        column), is not an ``<osm>`` document, has an id that is not an integer, has no drivable
        way, a drivable way uses a node whose ``lat``/``lon`` do not parse as degrees (the
        message names the node and way), no link is left after the component cut, or ``keep``
        is not one of :data:`KEEP_OPTIONS`.

    Notes
    -----
    The rules (drivable classes, oneway, lanes and speed parsing, defaults, projection,
    simplification) are in the module docstring. Compared with osmnx's
    ``graph_from_xml`` + drivable filter + ``truncate.largest_component(strongly=True)`` +
    ``simplify_graph``, ``merge_across_attributes=True`` gives the same nodes, links, lengths
    and oneway flags on ``shared/data/osm``; the default gives a few more links, the same
    total length.

    Examples
    --------
    >>> import tempfile, os
    >>> xml = '''<osm version="0.6">
    ...  <node id="1" lat="0.0" lon="0.000"/><node id="2" lat="0.0" lon="0.001"/>
    ...  <node id="3" lat="0.0" lon="0.002"/>
    ...  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/></way>
    ... </osm>'''
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "tiny.osm")
    ...     with open(p, "w") as fh:
    ...         _ = fh.write(xml)
    ...     net = read_osm(p)
    >>> net.n_nodes, net.n_links, net.road_class_names
    (2, 2, ('residential',))
    >>> round(float(net.length_m[0]), 1), round(float(net.free_speed_mps[0] * 3.6), 1)
    (222.4, 30.0)
    """
    if keep not in KEEP_OPTIONS:
        raise NetworkError(f"read_osm(keep={keep!r}); expected one of {list(KEEP_OPTIONS)}")
    path = Path(path)
    source = str(path)
    if name is None:
        name = _stem(path)
    classes = DRIVABLE_HIGHWAYS | {"service"} if include_service else DRIVABLE_HIGHWAYS

    parsed = _parse(path, classes)
    meta = {
        "source_format": "osm-xml",
        "compression": parsed.compression,
        "bounds": parsed.bounds,
        "n_file_nodes": parsed.n_nodes,
        "n_file_ways": parsed.n_ways,
        "n_missing_node_refs": parsed.n_missing_refs,
        "n_ways_with_missing_refs": parsed.n_ways_missing,
        "include_service": bool(include_service),
        "keep": keep,
        "simplify": bool(simplify),
        "merge_across_attributes": bool(merge_across_attributes),
        "defaults_source": DEFAULTS_SOURCE,
    }
    if not parsed.ways:
        raise NetworkError(
            f"{source}: no drivable ways among {parsed.n_ways} ways; expected at least one way with "
            f"highway in {sorted(classes)}"
        )
    segs = _build_segments(parsed, source, meta)
    if not segs.u:
        raise NetworkError(
            f"{source}: the {len(parsed.ways)} drivable ways give no segment (each has fewer than two "
            "nodes present in the file)"
        )

    n_seg_nodes = len(segs.node_osm_id)
    u = np.asarray(segs.u, dtype=np.int64)
    v = np.asarray(segs.v, dtype=np.int64)
    lon = np.asarray(segs.lon, dtype=np.float64)
    lat = np.asarray(segs.lat, dtype=np.float64)
    seg_len = haversine_m(lon[u], lat[u], lon[v], lat[v])
    meta.update(
        n_segment_nodes=n_seg_nodes,
        n_segments=len(u),
        segment_length_m=float(seg_len.sum()),
    )

    if keep == "largest_scc":
        keep_seg = _largest_scc(n_seg_nodes, u, v)
    else:
        keep_seg = np.ones(len(u), dtype=bool)
    kept_nodes = np.zeros(n_seg_nodes, dtype=bool)
    kept_nodes[u[keep_seg]] = True
    kept_nodes[v[keep_seg]] = True
    meta.update(
        dropped_nodes=int(n_seg_nodes - kept_nodes.sum()),
        dropped_links=int((~keep_seg).sum()),
        dropped_length_m=float(seg_len[~keep_seg].sum()),
    )
    if keep == "largest_scc":
        logger.info(
            "%s: largest strongly connected component keeps %d of %d nodes and %d of %d segments; "
            "dropped %d nodes, %d segments, %.1f m",
            name,
            int(kept_nodes.sum()),
            n_seg_nodes,
            int(keep_seg.sum()),
            len(u),
            meta["dropped_nodes"],
            meta["dropped_links"],
            meta["dropped_length_m"],
        )
    if not keep_seg.any():
        raise NetworkError(
            f"{source}: the largest strongly connected component of the {len(u)} drivable segments "
            "is a single node, so no link is left (are all ways one-way dead ends?); "
            "use keep='all' to keep them"
        )

    seg_idx = np.flatnonzero(keep_seg)
    if simplify:
        links = _simplify(n_seg_nodes, u, v, segs, seg_len, seg_idx, merge_across_attributes, meta)
    else:
        links = _segment_links(u, v, seg_idx, kept_nodes)
    if not links.tail:
        raise NetworkError(f"{source}: no link is left after simplification (the network is a bare ring)")

    return _assemble(name, source, links, segs, lon, lat, seg_len, meta)


# --------------------------------------------------------------------------- parsing


class _Parsed(NamedTuple):
    ways: list  # (way_id, refs, tags) of drivable ways, file order
    coords: dict  # node id -> (lon, lat) in degrees
    bad_coords: dict  # node id -> (lat text, lon text) that did not parse
    n_nodes: int
    n_ways: int
    n_missing_refs: int
    n_ways_missing: int
    bounds: tuple | None
    compression: str


def _stem(path):
    stem = path.name
    for suffix in (".gz", ".bz2", ".osm", ".xml"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem or path.name


def _open(path):
    try:
        with open(path, "rb") as fh:
            magic = fh.read(3)
    except FileNotFoundError:
        raise NetworkError(f"OSM file not found: {path}") from None
    except IsADirectoryError:
        raise NetworkError(f"{path}: is a directory; expected an .osm, .osm.gz or .osm.bz2 file") from None
    except OSError as exc:
        raise NetworkError(f"{path}: cannot be read ({exc})") from None
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb"), "gzip"
    if magic == b"BZh":
        return bz2.open(path, "rb"), "bz2"
    return open(path, "rb"), "none"


def _int_id(text, what, source):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise NetworkError(f"{source}: {what} id {text!r} is not an integer") from None
    if not -(2 ** 63) <= value < 2 ** 63:
        raise NetworkError(f"{source}: {what} id {text!r} is outside the 64-bit integer range")
    return value


def _is_int(text):
    try:
        int(text)
    except (TypeError, ValueError):
        return False
    return True


def _parse(path, classes):
    """Stream the file once; keep node coordinates and the drivable ways."""
    source = str(path)
    fh, compression = _open(path)
    coords = {}
    bad_coords = {}
    ways = []
    pending = []  # (way_id, ref) not yet seen when the way ended (file order is nodes first)
    n_nodes = n_ways = 0
    bounds = None
    try:
        with fh:
            events = ET.iterparse(fh, events=("start", "end"))
            _, root = next(events)
            if root.tag != "osm":
                raise NetworkError(f"{source}: root element is <{root.tag}>; expected <osm> (an OSM XML file)")
            for event, elem in events:
                if event == "start":
                    continue
                tag = elem.tag
                if tag == "node":
                    n_nodes += 1
                    node_id = _int_id(elem.get("id"), "node", source)
                    lat_text, lon_text = elem.get("lat"), elem.get("lon")
                    try:
                        lat, lon = float(lat_text), float(lon_text)
                        ok = -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
                    except (TypeError, ValueError):
                        ok = False
                    if ok:
                        coords[node_id] = (lon, lat)
                    else:
                        bad_coords[node_id] = (lat_text, lon_text)
                    root.clear()
                elif tag == "way":
                    n_ways += 1
                    refs = []
                    tags = {}
                    for child in elem:
                        if child.tag == "nd":
                            refs.append(child.get("ref"))
                        elif child.tag == "tag":
                            key = child.get("k")
                            if key in _WAY_KEYS:
                                tags[key] = child.get("v")
                    way_id = _int_id(elem.get("id"), "way", source)
                    try:
                        refs = [int(r) for r in refs]
                    except (TypeError, ValueError):
                        bad_ref = next(r for r in refs if not _is_int(r))
                        raise NetworkError(
                            f"{source}: way {way_id} has <nd ref={bad_ref!r}>; expected an integer node id"
                        ) from None
                    # (a ref beyond 64 bits names no node the file can hold: it is absent, as any other)
                    for r in refs:
                        if r not in coords and r not in bad_coords:
                            pending.append((way_id, r))
                    if tags.get("highway") in classes:
                        ways.append((way_id, refs, tags))
                    root.clear()
                elif tag == "relation":
                    root.clear()
                elif tag == "bounds":
                    try:
                        bounds = tuple(float(elem.get(k)) for k in ("minlon", "minlat", "maxlon", "maxlat"))
                    except (TypeError, ValueError):
                        bounds = None
    except ET.ParseError as exc:
        line, column = exc.position
        raise NetworkError(
            f"{source}: not well-formed XML at line {line}, column {column}: {exc}; expected OSM XML"
        ) from None
    except StopIteration:
        raise NetworkError(f"{source}: empty file; expected OSM XML") from None
    except (OSError, EOFError) as exc:
        raise NetworkError(f"{source}: cannot be read or decompressed ({exc})") from None

    missing = [(w, r) for w, r in pending if r not in coords and r not in bad_coords]
    return _Parsed(
        ways=ways,
        coords=coords,
        bad_coords=bad_coords,
        n_nodes=n_nodes,
        n_ways=n_ways,
        n_missing_refs=len(missing),
        n_ways_missing=len({w for w, _ in missing}),
        bounds=bounds,
        compression=compression,
    )


# --------------------------------------------------------------------------- way attributes


#: Tag values beyond these are mistakes (or vandalism), read as absent, so the class default
#: applies: lanes in a way, and a maxspeed in m/s (540 km/h).
MAX_TAG_LANES = 50.0
MAX_TAG_SPEED_MPS = 150.0


def _positive_number(text, maximum=MAX_TAG_LANES):
    """First value of a ``;`` list as a positive float up to ``maximum``, or None."""
    if text is None:
        return None
    m = _NUMBER_RE.match(text.split(";")[0])
    if m is None:
        return None
    value = float(m.group(1))
    return value if 0 < value <= maximum else None


def _speed_mps(text):
    """Parse a ``maxspeed`` value to m/s, or None when it is not a positive number with a unit."""
    if text is None:
        return None
    m = _SPEED_RE.match(text.split(";")[0])
    if m is None:
        return None
    value = float(m.group(1).replace(",", "."))
    if value <= 0:
        return None
    mps = mph_to_mps(value) if (m.group(2) or "").lower() == "mph" else kmh_to_mps(value)
    return mps if mps <= MAX_TAG_SPEED_MPS else None


def _direction(tags, highway):
    """Return +1 (node order only), -1 (reverse only) or 0 (both), and whether ``oneway`` was unrecognised."""
    raw = tags.get("oneway")
    unrecognised = False
    if raw is not None:
        value = raw.strip().lower()
        if value in _ONEWAY_FORWARD:
            return 1, False
        if value in _ONEWAY_REVERSE:
            return -1, False
        if value in _ONEWAY_NO:
            return 0, False
        unrecognised = True
    if (tags.get("junction") or "").strip().lower() in _IMPLIED_ONEWAY_JUNCTIONS:
        return 1, unrecognised
    if highway in _IMPLIED_ONEWAY_HIGHWAYS:
        return 1, unrecognised
    return 0, unrecognised


def _lanes(tags, direction, default):
    """Lanes per direction ``(forward, backward)``, and whether the default was used."""
    total = _positive_number(tags.get("lanes"))
    if direction != 0:
        return (total, total) if total is not None else (default, default), total is None
    fwd_tag = _positive_number(tags.get("lanes:forward"))
    bwd_tag = _positive_number(tags.get("lanes:backward"))
    if total is None and fwd_tag is None and bwd_tag is None:
        return (default, default), True

    def one(own, other):
        if own is not None:
            return own
        if total is not None and other is not None and total - other >= 1:
            return total - other
        if total is not None:
            return max(1.0, float(math.ceil(total / 2.0)))
        return default

    return (max(1.0, one(fwd_tag, bwd_tag)), max(1.0, one(bwd_tag, fwd_tag))), False


class _Segments:
    """Directed node-to-node segments of the drivable ways, in osmnx's insertion order."""

    def __init__(self):
        self.node_osm_id = []
        self.lon = []
        self.lat = []
        self.u = []
        self.v = []
        self.key = []  # index into key_table
        self.way = []  # index into way_id / way_name
        self.way_id = []
        self.way_name = []
        self.key_table = []  # (highway, lanes, speed_mps, capacity_veh_per_h, oneway)


def _key_indexer(segs):
    """Return ``key_of(highway, lanes, speed, oneway)``: the index of that key in ``segs.key_table``, added if new."""
    key_index = {}

    def key_of(highway, lanes, speed, oneway):
        cap = HIGHWAY_DEFAULTS[highway].capacity_veh_per_h_per_lane * lanes
        k = (highway, lanes, speed, cap, oneway)
        idx = key_index.get(k)
        if idx is None:
            idx = key_index[k] = len(segs.key_table)
            segs.key_table.append(k)
        return idx

    return key_of


def _node_indexer(segs, coords, bad, source):
    """Return ``index_of(ref, way_id)``: the segment-graph index of OSM node ``ref``, added if new."""
    node_index = {}

    def index_of(ref, way_id):
        idx = node_index.get(ref)
        if idx is None:
            if ref in bad:
                lat_text, lon_text = bad[ref]
                raise NetworkError(
                    f"{source}: node {ref} (used by way {way_id}) has lat={lat_text!r} lon={lon_text!r}; "
                    "expected decimal degrees with -90 <= lat <= 90 and -180 <= lon <= 180"
                )
            idx = node_index[ref] = len(segs.node_osm_id)
            lon, lat = coords[ref]
            segs.node_osm_id.append(ref)
            segs.lon.append(lon)
            segs.lat.append(lat)
        return idx

    return index_of


def _present_runs(refs, coords, bad):
    """Split ``refs`` at nodes absent from the file, merging consecutive repeats.

    Returns the runs of at least two nodes and the number of absent refs.
    """
    runs = [[]]
    n_missing = 0
    for r in refs:
        if r in coords or r in bad:
            if not runs[-1] or runs[-1][-1] != r:
                runs[-1].append(r)
        else:
            n_missing += 1
            if runs[-1]:
                runs.append([])
    return [run for run in runs if len(run) >= 2], n_missing


def _way_speeds(tags, direction, defaults, speed_unparsed):
    """Free speeds ``(forward, backward)`` in m/s, and whether a default was used.

    An unparsable ``maxspeed`` is counted in ``speed_unparsed``.
    """
    base = tags.get("maxspeed")
    speed_base = _speed_mps(base)
    if base is not None and speed_base is None:
        speed_unparsed[base] += 1
    default_speed = kmh_to_mps(defaults.free_speed_kmh)
    fwd_tag = "maxspeed:backward" if direction == -1 else "maxspeed:forward"
    speed_fwd = _speed_mps(tags.get(fwd_tag)) or speed_base
    speed_bwd = _speed_mps(tags.get("maxspeed:backward")) or speed_base
    defaulted = speed_fwd is None or (direction == 0 and speed_bwd is None)
    return speed_fwd or default_speed, speed_bwd or default_speed, defaulted


def _append_segments(segs, pairs, key, way_idx, reverse):
    """Append one segment per node pair (``b -> a`` when ``reverse``) with attribute key ``key``."""
    for a, b in pairs:
        if reverse:
            a, b = b, a
        segs.u.append(a)
        segs.v.append(b)
        segs.key.append(key)
        segs.way.append(way_idx)


def _build_segments(parsed, source, meta):
    segs = _Segments()
    coords = parsed.coords
    bad = parsed.bad_coords
    n_lanes_default = n_speed_default = n_too_short = n_split = 0
    n_drivable_missing = n_drivable_ways_missing = 0
    speed_unparsed = Counter()
    oneway_unrecognised = Counter()
    key_of = _key_indexer(segs)
    index_of = _node_indexer(segs, coords, bad, source)

    for way_id, refs, tags in parsed.ways:
        highway = tags["highway"]
        defaults = HIGHWAY_DEFAULTS[highway]
        direction, unrecognised = _direction(tags, highway)
        if unrecognised:
            oneway_unrecognised[tags["oneway"]] += 1
        if direction == -1:
            refs = refs[::-1]  # osmnx reverses the node list of a reversed oneway first

        # split at refs absent from the file; merge consecutive repeats
        runs, n_missing = _present_runs(refs, coords, bad)
        if n_missing:
            n_drivable_missing += n_missing
            n_drivable_ways_missing += 1
        if len(runs) > 1:
            n_split += 1
        if not runs:
            n_too_short += 1
            continue

        (lanes_fwd, lanes_bwd), lanes_defaulted = _lanes(tags, direction, defaults.lanes)
        n_lanes_default += lanes_defaulted
        speed_fwd, speed_bwd, speed_defaulted = _way_speeds(tags, direction, defaults, speed_unparsed)
        if speed_defaulted:
            n_speed_default += 1

        way_idx = len(segs.way_id)
        segs.way_id.append(way_id)
        segs.way_name.append(tags.get("name") or "")
        oneway = direction != 0
        key_fwd = key_of(highway, lanes_fwd, speed_fwd, oneway)
        pairs = []
        for run in runs:
            idx = [index_of(r, way_id) for r in run]
            pairs.extend(zip(idx[:-1], idx[1:]))
        _append_segments(segs, pairs, key_fwd, way_idx, reverse=False)
        if not oneway:
            key_bwd = key_of(highway, lanes_bwd, speed_bwd, False)
            _append_segments(segs, pairs, key_bwd, way_idx, reverse=True)

    meta.update(
        n_drivable_ways=len(parsed.ways),
        n_drivable_ways_used=len(segs.way_id),
        n_drivable_ways_too_short=n_too_short,
        n_drivable_missing_node_refs=n_drivable_missing,
        n_drivable_ways_with_missing_refs=n_drivable_ways_missing,
        n_drivable_ways_split_at_clip=n_split,
        n_ways_lanes_defaulted=n_lanes_default,
        n_ways_speed_defaulted=n_speed_default,
        maxspeed_unparsed=dict(speed_unparsed.most_common()),
        oneway_unrecognised=dict(oneway_unrecognised.most_common()),
    )
    if parsed.n_missing_refs:
        logger.info(
            "%s: dropped %d <nd ref>s to nodes absent from the file (%d in %d drivable ways, %d of them split)",
            source,
            parsed.n_missing_refs,
            n_drivable_missing,
            n_drivable_ways_missing,
            n_split,
        )
    return segs


# --------------------------------------------------------------------------- graph steps


def _largest_scc(n_nodes, u, v):
    """Boolean mask of the segments inside the largest strongly connected component."""
    adj = csr_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels)
    tied = np.flatnonzero(sizes == sizes.max())
    # tie-break: the component holding the lowest node index (first met in the file)
    first = {lab: int(np.flatnonzero(labels == lab)[0]) for lab in tied}
    best = min(tied, key=first.__getitem__)
    inside = labels == best
    return inside[u] & inside[v]


class _Links:
    """Links being built: tail, head, segment chain and node polyline (indices into the segment graph)."""

    def __init__(self):
        self.tail = []
        self.head = []
        self.segs = []  # list of segment-index lists
        self.path = []  # list of node-index lists
        self.nodes = None  # ndarray of the segment-graph nodes that are kept


def _segment_links(u, v, seg_idx, kept_nodes):
    links = _Links()
    for s in seg_idx.tolist():
        a, b = int(u[s]), int(v[s])
        links.tail.append(a)
        links.head.append(b)
        links.segs.append([s])
        links.path.append([a, b])
    links.nodes = np.flatnonzero(kept_nodes)
    return links


def _adjacency(n_nodes, u, v, seg_idx):
    """Per node: outgoing and incoming kept segments, distinct successors, and the nodes that have any.

    ``succ[x]`` maps each distinct successor, in first-insertion order, to its first segment
    (networkx order); it is None for a node with no kept segment.
    """
    out_segs = [[] for _ in range(n_nodes)]
    in_segs = [[] for _ in range(n_nodes)]
    for s in seg_idx.tolist():
        out_segs[u[s]].append(s)
        in_segs[v[s]].append(s)
    # distinct successors in first-insertion order, each with its first segment (networkx order)
    succ = [None] * n_nodes
    active = [x for x in range(n_nodes) if out_segs[x] or in_segs[x]]
    for x in active:
        first = {}
        for s in out_segs[x]:
            first.setdefault(v[s], s)
        succ[x] = first
    return out_segs, in_segs, succ, active


def _is_endpoint(x, out_segs, in_segs, succ, u, v, key, merge):
    """osmnx's endpoint rule, plus an attribute change along a direction of travel unless ``merge``."""
    outs = out_segs[x]
    ins = in_segs[x]
    if not outs or not ins:
        return True
    neighbours = set(succ[x])
    neighbours.update(u[s] for s in ins)
    if x in neighbours:
        return True
    if len(neighbours) != 2 or len(outs) + len(ins) not in (2, 4):
        return True
    if not merge:
        for s_in in ins:
            for s_out in outs:
                if v[s_out] != u[s_in] and key[s_out] != key[s_in]:
                    return True
    return False


def _add_ring_endpoints(endpoints, active, n_nodes, u_arr, v_arr, seg_idx):
    """Make the first node of each component with no endpoint (a bare ring) an endpoint; return how many."""
    n_ring_loops = 0
    n_comp, labels = _weak_components(n_nodes, u_arr[seg_idx], v_arr[seg_idx])
    has_endpoint = np.zeros(n_comp, dtype=bool)
    has_endpoint[labels[list(endpoints)]] = True
    for x in active:
        if not has_endpoint[labels[x]]:
            endpoints.add(x)
            has_endpoint[labels[x]] = True
            n_ring_loops += 1
    return n_ring_loops


def _chain_paths(endpoints, succ):
    """Walk from each endpoint through interstitial nodes (osmnx ``_get_paths_to_simplify``).

    Returns the ``(nodes, segments)`` paths and the number of unexpected patterns met.
    """
    paths = []
    n_quirks = 0
    for e in sorted(endpoints):
        for s_node, s_seg in succ[e].items():
            if s_node in endpoints:
                continue
            nodes_p = [e, s_node]
            segs_p = [s_seg]
            in_path = {e, s_node}
            for t, t_seg in succ[s_node].items():
                if t in in_path:
                    continue
                nodes_p.append(t)
                segs_p.append(t_seg)
                in_path.add(t)
                cur = t
                while cur not in endpoints:
                    cands = [(w, ws) for w, ws in succ[cur].items() if w not in in_path]
                    if len(cands) == 1:
                        cur, w_seg = cands[0]
                        nodes_p.append(cur)
                        segs_p.append(w_seg)
                        in_path.add(cur)
                    elif not cands:
                        if e in succ[cur]:
                            nodes_p.append(e)
                            segs_p.append(succ[cur][e])
                        else:
                            n_quirks += 1  # osmnx: "Unexpected simplify pattern"
                        break
                    else:  # pragma: no cover - an interstitial node has at most one way on
                        raise NetworkError(f"internal error: simplification branched at segment node {cur}")
                break
            paths.append((nodes_p, segs_p))
    return paths, n_quirks


def _paths_to_links(u, v, seg_idx, paths, active):
    """Links: the segments between kept nodes, then the simplified paths; and the kept nodes."""
    removed = set()
    for nodes_p, _ in paths:
        removed.update(nodes_p[1:-1])
    links = _Links()
    for s in seg_idx.tolist():
        if u[s] not in removed and v[s] not in removed:
            links.tail.append(u[s])
            links.head.append(v[s])
            links.segs.append([s])
            links.path.append([u[s], v[s]])
    for nodes_p, segs_p in paths:
        if nodes_p[0] not in removed and nodes_p[-1] not in removed:
            links.tail.append(nodes_p[0])
            links.head.append(nodes_p[-1])
            links.segs.append(segs_p)
            links.path.append(nodes_p)
    nodes = np.array([x for x in active if x not in removed], dtype=np.int64)
    return links, nodes


def _simplify(n_nodes, u_arr, v_arr, segs, seg_len, seg_idx, merge, meta):
    """Collapse interstitial nodes following osmnx ``simplify_graph`` (see module docstring)."""
    u = u_arr.tolist()
    v = v_arr.tolist()
    key = segs.key
    out_segs, in_segs, succ, active = _adjacency(n_nodes, u, v, seg_idx)
    endpoints = {x for x in active if _is_endpoint(x, out_segs, in_segs, succ, u, v, key, merge)}
    n_ring_loops = 0
    if not merge:
        # a component with no endpoint (a bare ring) becomes a self-loop at the node met first
        n_ring_loops = _add_ring_endpoints(endpoints, active, n_nodes, u_arr, v_arr, seg_idx)

    paths, n_quirks = _chain_paths(endpoints, succ)
    links, nodes = _paths_to_links(u, v, seg_idx, paths, active)

    n_rings_removed = 0
    if merge:
        links, nodes, n_rings_removed = _remove_rings(links, nodes, n_nodes)

    used = np.zeros(len(u), dtype=bool)
    for chain in links.segs:
        used[chain] = True
    dropped = seg_idx[~used[seg_idx]]
    meta.update(
        n_ring_self_loops=n_ring_loops,
        n_ring_components_removed=n_rings_removed,
        n_simplify_quirks=n_quirks,
        simplify_dropped_length_m=float(seg_len[dropped].sum()),
    )
    links.nodes = nodes
    return links


def _weak_components(n_nodes, u, v):
    adj = csr_matrix((np.ones(len(u), dtype=np.int8), (u, v)), shape=(n_nodes, n_nodes))
    return connected_components(adj, directed=True, connection="weak")


def _remove_rings(links, nodes, n_nodes):
    """Drop weakly connected components in which no node is an endpoint (osmnx ``remove_rings``)."""
    tail = np.asarray(links.tail, dtype=np.int64)
    head = np.asarray(links.head, dtype=np.int64)
    out_deg = np.bincount(tail, minlength=n_nodes)
    in_deg = np.bincount(head, minlength=n_nodes)
    loop = np.zeros(n_nodes, dtype=bool)
    loop[tail[tail == head]] = True
    neighbours = [set() for _ in range(n_nodes)]
    for a, b in zip(links.tail, links.head):
        neighbours[a].add(b)
        neighbours[b].add(a)
    n_comp, labels = _weak_components(n_nodes, tail, head)
    has_endpoint = np.zeros(n_comp, dtype=bool)
    for x in nodes.tolist():
        deg = out_deg[x] + in_deg[x]
        if loop[x] or out_deg[x] == 0 or in_deg[x] == 0 or len(neighbours[x]) != 2 or deg not in (2, 4):
            has_endpoint[labels[x]] = True
    ring_node = ~has_endpoint[labels]
    if not ring_node[nodes].any():
        return links, nodes, 0
    n_removed = len(np.unique(labels[nodes[ring_node[nodes]]]))
    kept = _Links()
    for i, (a, b) in enumerate(zip(links.tail, links.head)):
        if not ring_node[a]:
            kept.tail.append(a)
            kept.head.append(b)
            kept.segs.append(links.segs[i])
            kept.path.append(links.path[i])
    return kept, nodes[~ring_node[nodes]], n_removed


# --------------------------------------------------------------------------- output


def _sorted_nodes(links, segs):
    """Kept segment-graph nodes sorted by OSM id, the OSM ids of all nodes, and the old -> new index map."""
    nodes = links.nodes
    osm_ids = np.asarray(segs.node_osm_id, dtype=np.int64)
    order = np.argsort(osm_ids[nodes], kind="stable")
    nodes = nodes[order]
    new_index = np.full(len(osm_ids), -1, dtype=np.int64)
    new_index[nodes] = np.arange(len(nodes))
    return nodes, osm_ids, new_index


def _projection(lon, lat):
    """Equirectangular projection about the centre of the bounding box of ``lon``/``lat``.

    Returns ``project(lon_deg, lat_deg) -> (x_m, y_m)``, ``lon0``, ``lat0`` and the worst
    east-west scale error over the latitude range.
    """
    lon0 = 0.5 * (lon.min() + lon.max())
    lat0 = 0.5 * (lat.min() + lat.max())
    cos0 = math.cos(math.radians(lat0))

    def project(lon_deg, lat_deg):
        return (
            EARTH_RADIUS_M * np.radians(lon_deg - lon0) * cos0,
            EARTH_RADIUS_M * np.radians(lat_deg - lat0),
        )

    lat_far = np.radians(np.array([lat.min(), lat.max()]))
    max_scale_error = float(np.max(np.abs(np.cos(lat_far) / cos0 - 1.0)))
    return project, lon0, lat0, max_scale_error


def _chain_summary(chain, segs, seg_len):
    """For a link's segment chain: the dominant segment, total length, merged highway and any-oneway."""
    key_table = segs.key_table
    seg_key = segs.key
    seg_way = segs.way
    if len(chain) == 1:
        dominant = chain[0]
        length = float(seg_len[dominant])
        merged = key_table[seg_key[dominant]][0]
        any_oneway = key_table[seg_key[dominant]][4]
    else:
        by_way = {}
        for s in chain:
            by_way[seg_way[s]] = by_way.get(seg_way[s], 0.0) + float(seg_len[s])
        best_way = max(by_way, key=by_way.__getitem__)  # first maximum along the link
        dominant = next(s for s in chain if seg_way[s] == best_way)
        length = float(sum(seg_len[s] for s in chain))
        merged = "+".join(sorted({key_table[seg_key[s]][0] for s in chain}))
        any_oneway = any(key_table[seg_key[s]][4] for s in chain)
    return dominant, length, merged, any_oneway


def _link_columns(links, link_order, segs, seg_len):
    """Per-link columns in ``link_order``, the polyline index pointer and the polyline node indices."""
    n_links = len(link_order)
    key_table = segs.key_table
    seg_way = segs.way
    cols = {
        "length_m": np.empty(n_links),
        "speed": np.empty(n_links),
        "lanes": np.empty(n_links),
        "capacity": np.empty(n_links),
        "oneway": np.empty(n_links, dtype=bool),
        "way_id": np.empty(n_links, dtype=np.int64),
        "highway": np.empty(n_links, dtype=object),
        "highway_merged": np.empty(n_links, dtype=object),
        "way_name": np.empty(n_links, dtype=object),
    }
    geom_len = np.empty(n_links + 1, dtype=np.int64)
    geom_len[0] = 0
    geom_nodes = []
    for out_i, i in enumerate(link_order.tolist()):
        dominant, length, merged, any_oneway = _chain_summary(links.segs[i], segs, seg_len)
        hw, n_lanes, speed_mps, cap, _ = key_table[segs.key[dominant]]
        cols["length_m"][out_i] = length
        cols["speed"][out_i] = speed_mps
        cols["lanes"][out_i] = n_lanes
        cols["capacity"][out_i] = cap
        cols["oneway"][out_i] = any_oneway
        cols["way_id"][out_i] = segs.way_id[seg_way[dominant]]
        cols["way_name"][out_i] = segs.way_name[seg_way[dominant]]
        cols["highway"][out_i] = hw
        cols["highway_merged"][out_i] = merged
        geom_nodes.extend(links.path[i])
        geom_len[out_i + 1] = len(links.path[i])
    geom_indptr = np.cumsum(geom_len)
    geom_nodes = np.asarray(geom_nodes, dtype=np.int64)
    return cols, geom_indptr, geom_nodes


def _assemble(name, source, links, segs, lon_all, lat_all, seg_len, meta):
    nodes, osm_ids, new_index = _sorted_nodes(links, segs)
    lon = lon_all[nodes]
    lat = lat_all[nodes]

    # projection about the centre of the kept nodes' bounding box
    project, lon0, lat0, max_scale_error = _projection(lon, lat)
    x_m, y_m = project(lon, lat)

    tail = new_index[np.asarray(links.tail, dtype=np.int64)]
    head = new_index[np.asarray(links.head, dtype=np.int64)]
    link_order = np.lexsort((head, tail))  # stable: by tail, then head, then build order
    n_links = len(link_order)

    cols, geom_indptr, geom_nodes = _link_columns(links, link_order, segs, seg_len)
    length_m = cols["length_m"]
    speed = cols["speed"]
    lanes = cols["lanes"]
    capacity = cols["capacity"]
    oneway = cols["oneway"]
    way_id = cols["way_id"]
    highway = cols["highway"]
    highway_merged = cols["highway_merged"]
    way_name = cols["way_name"]
    geom_x_m, geom_y_m = project(lon_all[geom_nodes], lat_all[geom_nodes])

    class_names = tuple(sorted(set(highway.tolist())))
    class_code = {c: i for i, c in enumerate(class_names)}
    road_class = np.array([class_code[h] for h in highway.tolist()], dtype=np.int8)

    n_self_loops = int((tail == head).sum())
    meta.update(
        n_nodes=len(nodes),
        n_links=n_links,
        total_length_m=float(length_m.sum()),
        n_oneway_links=int(oneway.sum()),
        n_self_loops=n_self_loops,
        highway_classes=class_names,
        projection="equirectangular",
        lon0_deg=float(lon0),
        lat0_deg=float(lat0),
        earth_radius_m=EARTH_RADIUS_M,
        projection_max_scale_error=max_scale_error,
    )
    logger.info(
        "%s: read %d nodes and %d links (%.1f km, %d one-way) from %s",
        name,
        len(nodes),
        n_links,
        meta["total_length_m"] / 1000.0,
        meta["n_oneway_links"],
        source,
    )
    return RawNetwork(
        name=name,
        source=source,
        node_ids=osm_ids[nodes],
        x_m=x_m,
        y_m=y_m,
        link_from_idx=tail[link_order],
        link_to_idx=head[link_order],
        length_m=length_m,
        free_speed_mps=speed,
        lanes=lanes,
        capacity_veh_per_h=capacity,
        road_class=road_class,
        road_class_names=class_names,
        lon=lon,
        lat=lat,
        geom_indptr=geom_indptr,
        geom_x_m=geom_x_m,
        geom_y_m=geom_y_m,
        link_attrs={
            "osm_way_id": way_id,
            "name": way_name,
            "highway": highway,
            "highway_merged": highway_merged,
            "oneway": oneway,
        },
        meta=meta,
    )
