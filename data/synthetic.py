"""Seeded synthetic cities: a Manhattan grid and a ring-radial town.

What this models
----------------
Two stylised street layouts used for tests, benchmarks and scaling studies, returned as a
:class:`~twin.data.network.RawNetwork` (planar metres, origin at the city centre, no lon/lat):

* :func:`grid_city` -- an ``n_x`` by ``n_y`` lattice of intersections with two-way streets
  between 4-neighbours; every ``arterial_every``-th row and column is an arterial.
* :func:`ring_radial_city` -- a centre node, concentric rings and straight spokes (the
  "Moscow / Paris" pattern); spokes and every ``arterial_every_ring``-th ring are arterials.

Fidelity: topology and link lengths are exact for the stated geometry; link attributes come
from one small table per road class (:data:`ROAD_CLASSES`), not from any real city. Every
building step is a numpy array operation (no Python loop per node or link), so a
1000 x 1000 grid (one million nodes, about four million links) builds in about a second.

Districts (zones) are filled in ``zone_of_node`` / ``zone_ids`` and split into "central" and
"peripheral" in ``meta`` (see :func:`grid_city`, Notes) so that later analyses can compare
service levels between them.

Randomness: the only random step (grid node jitter) draws from
``numpy.random.default_rng(seed)``; the same arguments and seed give identical arrays.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from twin.data.network import RawNetwork
from twin.errors import NetworkError
from twin.units import kmh_to_mps

__all__ = ["RoadClass", "ROAD_CLASSES", "grid_city", "ring_radial_city"]

#: Shortest link the generators emit, in metres (jittered nodes may come closer than this).
_MIN_LENGTH_M = 1.0


@dataclass(frozen=True)
class RoadClass:
    """Attributes shared by every link of one synthetic road class.

    Parameters
    ----------
    name : str
        Class name, as stored in ``RawNetwork.road_class_names``.
    lanes : float
        Lanes per direction.
    free_speed_kmh : float
        Free-flow speed in km/h (converted to m/s with :func:`twin.units.kmh_to_mps`).
    capacity_veh_per_h_per_lane : float
        Saturation flow of one lane, in vehicles/hour/lane. Link capacity is this times
        ``lanes``.
    """

    name: str
    lanes: float
    free_speed_kmh: float
    capacity_veh_per_h_per_lane: float

    @property
    def free_speed_mps(self) -> float:
        """Free-flow speed in metres/second."""
        return kmh_to_mps(self.free_speed_kmh)

    @property
    def capacity_veh_per_h(self) -> float:
        """Saturation flow of the whole link (all lanes of one direction), vehicles/hour."""
        return self.capacity_veh_per_h_per_lane * self.lanes


#: Attribute table of the synthetic road classes; the tuple position is the
#: ``road_class`` code (0 = arterial, 1 = local).
#:
#: ============  =====  ==========  ===================  =====================
#: class         lanes  speed km/h  veh/h/lane           link capacity veh/h
#: ============  =====  ==========  ===================  =====================
#: ``arterial``  2      50          1,800                3,600
#: ``local``     1      30          900                  900
#: ============  =====  ==========  ===================  =====================
#:
#: These are modelling choices, not measurements. 50 and 30 km/h are common urban and
#: residential speed limits. The per-lane flows sit inside the range of the Highway Capacity
#: Manual: HCM 6th ed. (TRB, 2016), Chapter 19, uses a base saturation flow of 1,900 pc/h/ln
#: (metropolitan areas of 250,000 people or more) as the upper reference; the arterial value
#: allows for heavy vehicles and turning, the local value for stop/yield control, parking
#: and pedestrians roughly halving the usable time.
ROAD_CLASSES = (
    RoadClass("arterial", lanes=2.0, free_speed_kmh=50.0, capacity_veh_per_h_per_lane=1800.0),
    RoadClass("local", lanes=1.0, free_speed_kmh=30.0, capacity_veh_per_h_per_lane=900.0),
)

_ARTERIAL = np.int8(0)
_LOCAL = np.int8(1)


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------

#: Most intersections a synthetic city may have (a grid of about 3,162 x 3,162; its arrays take
#: a few GB), so that a mistyped spec such as ``grid:100000x100000`` is refused, not allocated.
MAX_SYNTHETIC_NODES = 10_000_000


def _check_size(func, what, n_nodes):
    if n_nodes > MAX_SYNTHETIC_NODES:
        raise NetworkError(f"{func}: {what} = {n_nodes:,} intersections; at most {MAX_SYNTHETIC_NODES:,} "
                           f"(MAX_SYNTHETIC_NODES)")
    return n_nodes


def _check_int(func, name, value, minimum, maximum=None, max_text=None):
    """Return ``value`` as a Python int, or raise NetworkError naming the parameter."""
    accepted = f"an integer >= {minimum}"
    if maximum is not None:
        accepted = f"an integer in [{minimum}, {max_text or maximum}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise NetworkError(f"{func}: {name} = {value!r}; expected {accepted}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise NetworkError(f"{func}: {name} = {value!r}; expected {accepted}")
    return value


def _check_float(func, name, value, minimum, maximum=None, max_text=None, unit="metres"):
    """Return ``value`` as a finite float in ``[minimum, maximum]``, or raise NetworkError."""
    accepted = f"a finite number >= {minimum:g} {unit}"
    if maximum is not None:
        accepted = f"a finite number in [{minimum:g}, {max_text or f'{maximum:g}'}] {unit}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise NetworkError(f"{func}: {name} = {value!r}; expected {accepted}")
    value = float(value)
    if not math.isfinite(value) or value < minimum or (maximum is not None and value > maximum):
        raise NetworkError(f"{func}: {name} = {value!r}; expected {accepted}")
    return value


def _check_name(func, name):
    if name is not None and not isinstance(name, str):
        raise NetworkError(f"{func}: name = {name!r}; expected a str or None")


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------

def _class_attributes(road_class):
    """Per-link speed, lanes and capacity arrays looked up from :data:`ROAD_CLASSES`."""
    speed = np.array([c.free_speed_mps for c in ROAD_CLASSES], dtype=np.float64)
    lanes = np.array([c.lanes for c in ROAD_CLASSES], dtype=np.float64)
    capacity = np.array([c.capacity_veh_per_h for c in ROAD_CLASSES], dtype=np.float64)
    return speed[road_class], lanes[road_class], capacity[road_class]


def _both_directions(from_idx, to_idx, *per_link):
    """Append the reverse of every link: rows ``[forward..., backward...]``."""
    out = [np.concatenate([from_idx, to_idx]), np.concatenate([to_idx, from_idx])]
    out.extend(np.concatenate([a, a]) for a in per_link)
    return out


def _central_split(zone_of_node, n_zones, x_m, y_m):
    """Classify zones as central or peripheral by the distance of their node centroid.

    Returns (distance_m, is_central); ``distance_m`` is rounded to the micrometre so that
    zones that are equidistant by symmetry compare equal despite float rounding.
    """
    count = np.bincount(zone_of_node, minlength=n_zones).astype(np.float64)
    cx = np.bincount(zone_of_node, weights=x_m, minlength=n_zones) / count
    cy = np.bincount(zone_of_node, weights=y_m, minlength=n_zones) / count
    distance_m = np.round(np.hypot(cx, cy), 6) + 0.0  # + 0.0 turns -0.0 into 0.0
    median_m = np.median(distance_m)
    below = distance_m < median_m
    at_or_below = distance_m <= median_m
    # Zones tied at the median are symmetric copies of each other, so they move as one
    # block: to the central side only when that brings the two groups closer to half each.
    half = n_zones / 2.0
    if abs(np.count_nonzero(at_or_below) - half) < abs(np.count_nonzero(below) - half):
        return distance_m, at_or_below
    return distance_m, below


def _zone_meta(zone_ids, distance_m, is_central):
    return {
        "zone_centroid_distance_m": [float(d) for d in distance_m],
        "central_zone_ids": [int(z) for z in zone_ids[is_central]],
        "peripheral_zone_ids": [int(z) for z in zone_ids[~is_central]],
        "central_rule": ("zone node-centroid distance from the city centre below the median over "
                         "zones; zones at the median join them if that balances the group sizes"),
    }


def _road_class_meta():
    return {c.name: asdict(c) for c in ROAD_CLASSES}


# --------------------------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------------------------

def grid_city(n_x, n_y, *, spacing_m=500.0, arterial_every=5, n_districts_x=2, n_districts_y=2,
              jitter_m=0.0, seed=0, name=None) -> RawNetwork:
    """Build a seeded Manhattan-grid city of ``n_x * n_y`` intersections.

    Parameters
    ----------
    n_x, n_y : int
        Number of intersection columns (along x) and rows (along y). Each must be >= 2.
    spacing_m : float, optional
        Distance between neighbouring intersections, in metres. Must be >= 1.
    arterial_every : int, optional
        Row ``j`` is an arterial when ``j % arterial_every == 0``, column ``i`` likewise (so
        row 0 and column 0 always are). ``1`` makes every street an arterial. Must be >= 1.
    n_districts_x, n_districts_y : int, optional
        Districts along x and y; the city is cut into ``n_districts_x * n_districts_y``
        rectangular blocks of whole columns/rows. Each must be in ``[1, n_x]`` (``[1, n_y]``).
    jitter_m : float, optional
        Half-width of the uniform displacement added to each node coordinate, in metres.
        Must be in ``[0, spacing_m / 2]``. ``0`` gives an exact lattice.
    seed : int, optional
        Seed of ``numpy.random.default_rng``, used for the jitter only. Must be >= 0.
    name : str, optional
        Network name; default ``"grid_{n_x}x{n_y}"``.

    Returns
    -------
    RawNetwork
        ``n_x * n_y`` nodes and ``2 * (2 * n_x * n_y - n_x - n_y)`` directed links, with
        ``road_class`` (0 = arterial, 1 = local), ``zone_of_node``, ``zone_ids`` and ``meta``
        filled; ``free_flow_time_s`` is None (derived later as ``length_m / free_speed_mps``).

    Raises
    ------
    NetworkError
        If a count is not an integer or is out of range, a length is not a finite number in
        range, or ``name`` is not a str; the message names the parameter, the value and
        what is accepted.

    Notes
    -----
    Node ``k = j * n_x + i`` (column ``i``, row ``j``) has id ``k + 1`` and sits at
    ``x = (i - (n_x - 1) / 2) * spacing_m``, ``y = (j - (n_y - 1) / 2) * spacing_m`` before
    jitter, so the origin is the centre of the lattice. Jitter draws ``x`` offsets for all
    nodes, then ``y`` offsets, from ``default_rng(seed).uniform(-jitter_m, jitter_m)``.

    Links come in four blocks: eastbound ``(i, j) -> (i + 1, j)`` in node order, then the
    westbound reverses, then northbound ``(i, j) -> (i, j + 1)``, then southbound. A link
    lying along an arterial row or column is ``"arterial"``, any other ``"local"`` (see
    :data:`ROAD_CLASSES` for lanes, speed and capacity). With ``a = arterial_every`` there are
    ``2 * ((n_x - 1) * ceil(n_y / a) + (n_y - 1) * ceil(n_x / a))`` arterial links.

    Lengths are ``spacing_m`` exactly without jitter, and the Euclidean distance between the
    (jittered) end nodes, never below 1 m, with it.

    Column ``i`` belongs to district column ``i * n_districts_x // n_x`` (blocks differ in
    width by at most one column), row ``j`` likewise; zone index
    ``dy * n_districts_x + dx`` has id ``index + 1``.

    A zone is *central* when the distance ``d`` of its nodes' centroid (on the unjittered
    lattice, rounded to 1e-6 m) from the centre is below the median of ``d`` over zones, else
    *peripheral* (``meta["central_zone_ids"]`` / ``meta["peripheral_zone_ids"]``; the
    distances are in ``meta["zone_centroid_distance_m"]``). Zones exactly at the median are
    symmetric copies, so they are kept together: they join the central group only when that
    makes the two group sizes closer to half the zones each. Examples: 3 x 3 districts give
    the centre and the four edge blocks central, the four corners peripheral; 3 x 2 give the
    two middle blocks central. With at most two districts along each axis all districts are
    equidistant and none is central, so use three or more along an axis when comparing
    centre and periphery.

    Examples
    --------
    >>> net = grid_city(3, 2, spacing_m=100.0, arterial_every=2, n_districts_x=1, n_districts_y=1)
    >>> net.n_nodes, net.n_links
    (6, 14)
    >>> net.x_m.tolist()
    [-100.0, 0.0, 100.0, -100.0, 0.0, 100.0]
    >>> sorted(set(net.road_class_names[c] for c in net.road_class))
    ['arterial', 'local']
    """
    func = "grid_city"
    n_x = _check_int(func, "n_x", n_x, 2)
    n_y = _check_int(func, "n_y", n_y, 2)
    spacing_m = _check_float(func, "spacing_m", spacing_m, _MIN_LENGTH_M)
    arterial_every = _check_int(func, "arterial_every", arterial_every, 1)
    n_districts_x = _check_int(func, "n_districts_x", n_districts_x, 1, n_x, f"n_x = {n_x}")
    n_districts_y = _check_int(func, "n_districts_y", n_districts_y, 1, n_y, f"n_y = {n_y}")
    jitter_m = _check_float(func, "jitter_m", jitter_m, 0.0, spacing_m / 2.0,
                            f"spacing_m / 2 = {spacing_m / 2.0:g}")
    seed = _check_int(func, "seed", seed, 0)
    _check_name(func, name)

    n_nodes = _check_size(func, f"n_x x n_y = {n_x:,} x {n_y:,}", n_x * n_y)
    col = (np.arange(n_x, dtype=np.float64) - (n_x - 1) / 2.0) * spacing_m
    row = (np.arange(n_y, dtype=np.float64) - (n_y - 1) / 2.0) * spacing_m
    x0 = np.tile(col, n_y)
    y0 = np.repeat(row, n_x)

    if jitter_m > 0.0:
        rng = np.random.default_rng(seed)
        x_m = x0 + rng.uniform(-jitter_m, jitter_m, size=n_nodes)
        y_m = y0 + rng.uniform(-jitter_m, jitter_m, size=n_nodes)
    else:
        x_m, y_m = x0, y0

    node_idx = np.arange(n_nodes, dtype=np.int64).reshape(n_y, n_x)
    east_from = node_idx[:, :-1].ravel()
    north_from = node_idx[:-1, :].ravel()
    arterial_row = np.arange(n_y) % arterial_every == 0
    arterial_col = np.arange(n_x) % arterial_every == 0
    east_class = np.where(np.repeat(arterial_row, n_x - 1), _ARTERIAL, _LOCAL).astype(np.int8)
    north_class = np.where(np.tile(arterial_col, n_y - 1), _ARTERIAL, _LOCAL).astype(np.int8)

    east = _both_directions(east_from, east_from + 1, east_class)
    north = _both_directions(north_from, north_from + n_x, north_class)
    link_from_idx = np.concatenate([east[0], north[0]])
    link_to_idx = np.concatenate([east[1], north[1]])
    road_class = np.concatenate([east[2], north[2]])
    del east, north, east_from, north_from, east_class, north_class

    if jitter_m > 0.0:
        length_m = np.hypot(x_m[link_to_idx] - x_m[link_from_idx], y_m[link_to_idx] - y_m[link_from_idx])
        np.maximum(length_m, _MIN_LENGTH_M, out=length_m)
    else:
        length_m = np.full(link_from_idx.shape[0], spacing_m, dtype=np.float64)
    free_speed_mps, lanes, capacity_veh_per_h = _class_attributes(road_class)

    district_col = np.arange(n_x, dtype=np.int64) * n_districts_x // n_x
    district_row = np.arange(n_y, dtype=np.int64) * n_districts_y // n_y
    zone_of_node = (district_row[:, None] * n_districts_x + district_col[None, :]).ravel().astype(np.int32)
    n_zones = n_districts_x * n_districts_y
    zone_ids = np.arange(1, n_zones + 1, dtype=np.int64)
    distance_m, is_central = _central_split(zone_of_node, n_zones, x0, y0)
    del x0, y0

    params = {"n_x": n_x, "n_y": n_y, "spacing_m": spacing_m, "arterial_every": arterial_every,
              "n_districts_x": n_districts_x, "n_districts_y": n_districts_y, "jitter_m": jitter_m,
              "seed": seed}
    meta = {"generator": f"twin.data.synthetic.{func}", "params": params, "seed": seed,
            "road_classes": _road_class_meta(), **_zone_meta(zone_ids, distance_m, is_central)}
    return RawNetwork(
        name=name if name is not None else f"grid_{n_x}x{n_y}",
        source=f"synthetic {func}(n_x={n_x}, n_y={n_y}, seed={seed})",
        node_ids=np.arange(1, n_nodes + 1, dtype=np.int64),
        x_m=x_m,
        y_m=y_m,
        link_from_idx=link_from_idx,
        link_to_idx=link_to_idx,
        length_m=length_m,
        free_speed_mps=free_speed_mps,
        lanes=lanes,
        capacity_veh_per_h=capacity_veh_per_h,
        free_flow_time_s=None,
        road_class=road_class,
        road_class_names=tuple(c.name for c in ROAD_CLASSES),
        zone_of_node=zone_of_node,
        zone_ids=zone_ids,
        meta=meta,
    )


# --------------------------------------------------------------------------------------------
# ring-radial
# --------------------------------------------------------------------------------------------

def ring_radial_city(n_rings, n_spokes, *, ring_spacing_m=1000.0, arterial_every_ring=2,
                     local_per_sector=0, n_districts=None, seed=0, name=None) -> RawNetwork:
    """Build a ring-radial city: a centre, concentric rings and straight spokes.

    Parameters
    ----------
    n_rings : int
        Number of rings around the centre node. Must be >= 1.
    n_spokes : int
        Number of straight radial roads from the centre to the outer ring. Must be >= 3.
    ring_spacing_m : float, optional
        Radial distance between successive rings (and from the centre to ring 1), in metres.
        Must be >= 1.
    arterial_every_ring : int, optional
        Ring ``r`` (1-based) is an arterial when ``r % arterial_every_ring == 0``, else local.
        Must be >= 1. Spokes are always arterials.
    local_per_sector : int, optional
        Extra nodes on every ring between two successive spokes (intersections with local
        streets), evenly spaced in angle. Must be >= 0.
    n_districts : int, optional
        Number of angular *sectors* the inner and outer bands are cut into (see Notes); the
        total number of zones is ``1 + 2 * n_districts`` (``1 + n_districts`` when
        ``n_rings == 1``). Default ``n_spokes`` (one sector between each pair of spokes).
        Must be in ``[1, n_spokes * (1 + local_per_sector)]``.
    seed : int, optional
        Recorded in ``meta``; the layout has no random element. Must be >= 0.
    name : str, optional
        Network name; default ``"ring_radial_{n_rings}x{n_spokes}"``.

    Returns
    -------
    RawNetwork
        With ``q = n_spokes * (1 + local_per_sector)`` nodes per ring:
        ``1 + n_rings * q`` nodes and ``2 * n_rings * (n_spokes + q)`` directed links, with
        ``road_class`` (0 = arterial, 1 = local), ``zone_of_node``, ``zone_ids`` and ``meta``
        filled; ``free_flow_time_s`` is None.

    Raises
    ------
    NetworkError
        If a count is not an integer or is out of range, ``ring_spacing_m`` is not a finite
        number >= 1, or ``name`` is not a str.

    Notes
    -----
    Node 0 (id 1) is the centre at the origin. Ring ``r`` (1..``n_rings``) has radius
    ``R_r = r * ring_spacing_m`` and nodes ``k = 0..q-1`` at angle ``2 pi k / q``
    (counter-clockwise from +x), with index ``1 + (r - 1) * q + k``; node ``k`` lies on a
    spoke when ``k % (1 + local_per_sector) == 0``.

    Links: first the radial (spoke) links outward -- centre to ring 1, then ring ``r`` to
    ring ``r + 1`` -- ``n_rings * n_spokes`` of them, all ``"arterial"``, each straight with
    length ``ring_spacing_m``; then the ring links counter-clockwise ``k -> k + 1 (mod q)``,
    ``n_rings * q`` of them, each a circular arc of length ``R_r * 2 pi / q`` (longer than
    the chord between its end nodes), ``"arterial"`` on arterial rings, else ``"local"``.
    Each block is followed by its reverse links. Arterial links number
    ``2 * (n_rings * n_spokes + (n_rings // arterial_every_ring) * q)``.

    Districts: rings split into three bands, ``centre`` (the centre node and rings
    ``1..n_rings // 3``, a single zone), ``inner`` (rings up to ``2 * n_rings // 3``) and
    ``outer`` (the rest); the inner and outer bands are each cut into ``n_districts``
    sectors, ring node ``k`` falling in sector ``k * n_districts // q``. Zone ids run 1
    (centre), then inner sectors, then outer sectors; an empty inner band (``n_rings == 1``)
    is skipped. ``meta["zone_band"]`` names each zone's band. Central and peripheral zones
    follow the rule of :func:`grid_city` (centroid distance below the median, ties joining
    when that balances the groups): when ``n_districts >= 2`` divides ``q`` (congruent
    sectors) the centre and inner zones are central and the outer ones peripheral, and with
    one ring only the centre is central.

    Examples
    --------
    >>> net = ring_radial_city(2, 4, local_per_sector=1)
    >>> net.n_nodes, net.n_links
    (17, 48)
    >>> net.meta["zone_band"]
    ['centre', 'inner', 'inner', 'inner', 'inner', 'outer', 'outer', 'outer', 'outer']
    """
    func = "ring_radial_city"
    n_rings = _check_int(func, "n_rings", n_rings, 1)
    n_spokes = _check_int(func, "n_spokes", n_spokes, 3)
    ring_spacing_m = _check_float(func, "ring_spacing_m", ring_spacing_m, _MIN_LENGTH_M)
    arterial_every_ring = _check_int(func, "arterial_every_ring", arterial_every_ring, 1)
    local_per_sector = _check_int(func, "local_per_sector", local_per_sector, 0)
    per_ring = n_spokes * (1 + local_per_sector)
    _check_size(func, f"1 + n_rings x n_spokes x (1 + local_per_sector) = 1 + {n_rings:,} x {n_spokes:,} x "
                      f"{1 + local_per_sector:,}", 1 + n_rings * per_ring)
    if n_districts is None:
        n_districts = n_spokes
    n_districts = _check_int(func, "n_districts", n_districts, 1, per_ring,
                             f"nodes per ring = n_spokes * (1 + local_per_sector) = {per_ring}")
    seed = _check_int(func, "seed", seed, 0)
    _check_name(func, name)

    n_nodes = 1 + n_rings * per_ring
    radius_m = np.arange(1, n_rings + 1, dtype=np.float64) * ring_spacing_m
    angle = 2.0 * np.pi * np.arange(per_ring, dtype=np.float64) / per_ring
    x_m = np.concatenate([[0.0], (radius_m[:, None] * np.cos(angle)[None, :]).ravel()])
    y_m = np.concatenate([[0.0], (radius_m[:, None] * np.sin(angle)[None, :]).ravel()])

    # ring_node[r - 1, k] is the index of node k on ring r
    ring_node = 1 + np.arange(n_rings * per_ring, dtype=np.int64).reshape(n_rings, per_ring)
    spoke_node = ring_node[:, :: 1 + local_per_sector]  # (n_rings, n_spokes)
    radial_from = np.concatenate([np.zeros(n_spokes, dtype=np.int64), spoke_node[:-1].ravel()])
    radial_to = spoke_node.ravel()
    n_radial = radial_to.shape[0]
    radial = _both_directions(radial_from, radial_to,
                              np.full(n_radial, ring_spacing_m),
                              np.full(n_radial, _ARTERIAL, dtype=np.int8))

    ring_from = ring_node.ravel()
    ring_to = np.roll(ring_node, -1, axis=1).ravel()
    ring_length_m = np.repeat(radius_m * (2.0 * np.pi / per_ring), per_ring)
    arterial_ring = np.arange(1, n_rings + 1) % arterial_every_ring == 0
    ring_class = np.where(np.repeat(arterial_ring, per_ring), _ARTERIAL, _LOCAL).astype(np.int8)
    ring = _both_directions(ring_from, ring_to, ring_length_m, ring_class)

    link_from_idx, link_to_idx, length_m, road_class = (
        np.concatenate([a, b]) for a, b in zip(radial, ring))
    free_speed_mps, lanes, capacity_veh_per_h = _class_attributes(road_class)

    n_core = n_rings // 3
    n_mid = 2 * n_rings // 3
    ring_number = np.arange(1, n_rings + 1)
    band_of_ring = np.where(ring_number <= n_core, 0, np.where(ring_number <= n_mid, 1, 2))
    has_inner = n_mid > n_core
    band_offset = np.array([0, 1, 1 + n_districts * has_inner], dtype=np.int64)
    sector = np.arange(per_ring, dtype=np.int64) * n_districts // per_ring
    ring_zone = np.where(band_of_ring[:, None] == 0, 0,
                         band_offset[band_of_ring][:, None] + sector[None, :])
    zone_of_node = np.concatenate([[0], ring_zone.ravel()]).astype(np.int32)
    n_zones = 1 + n_districts * (1 + has_inner)
    zone_ids = np.arange(1, n_zones + 1, dtype=np.int64)
    zone_band = ["centre"] + ["inner"] * (n_districts * has_inner) + ["outer"] * n_districts
    distance_m, is_central = _central_split(zone_of_node, n_zones, x_m, y_m)

    params = {"n_rings": n_rings, "n_spokes": n_spokes, "ring_spacing_m": ring_spacing_m,
              "arterial_every_ring": arterial_every_ring, "local_per_sector": local_per_sector,
              "n_districts": n_districts, "seed": seed}
    meta = {"generator": f"twin.data.synthetic.{func}", "params": params, "seed": seed,
            "road_classes": _road_class_meta(), "zone_band": zone_band,
            **_zone_meta(zone_ids, distance_m, is_central)}
    return RawNetwork(
        name=name if name is not None else f"ring_radial_{n_rings}x{n_spokes}",
        source=f"synthetic {func}(n_rings={n_rings}, n_spokes={n_spokes}, seed={seed})",
        node_ids=np.arange(1, n_nodes + 1, dtype=np.int64),
        x_m=x_m,
        y_m=y_m,
        link_from_idx=link_from_idx,
        link_to_idx=link_to_idx,
        length_m=length_m,
        free_speed_mps=free_speed_mps,
        lanes=lanes,
        capacity_veh_per_h=capacity_veh_per_h,
        free_flow_time_s=None,
        road_class=road_class,
        road_class_names=tuple(c.name for c in ROAD_CLASSES),
        zone_of_node=zone_of_node,
        zone_ids=zone_ids,
        meta=meta,
    )
