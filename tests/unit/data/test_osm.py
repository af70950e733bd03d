"""Tests of the OpenStreetMap XML reader (``twin.data.osm``).

The two real extracts are checked against osmnx 2.1.1's figures in
``shared/data/osm/REFERENCE.md`` (code we did not write): node and link counts, one-way and
self-loop counts and the class breakdown exactly; total lengths to 1e-6 relative, because the
table rounds them to 0.1 m (at most 5e-7 relative on these networks). Small hand-written files
check each rule of the module docstring; their lengths are recomputed here with an independent
great-circle formula (spherical Vincenty, R = 6,371,009 m).
"""

import bz2
import gzip
import logging
import math
from collections import Counter
from functools import lru_cache

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from twin.data.network import RawNetwork
from twin.data.osm import HIGHWAY_DEFAULTS, read_osm
from twin.errors import NetworkError

R_M = 6_371_009.0
HEFEI = "osm/Hefei-Luogang/map.osm"
CAMPO = "osm/Campo-Grande/campo-grande.osm.gz"

# REFERENCE.md: (include_service) -> nodes, directed edges, length m, oneway edges, self-loops
# for "SCC->simplify", then the unsimplified graph before and after the SCC cut.
REFERENCE = {
    (HEFEI, True): dict(n_nodes=148, n_links=278, length_m=98_508.1, n_oneway=200, n_loops=0,
                        seg=(1_083, 1_398, 132_288.7), scc=(771, 1_061, 98_508.1)),
    (HEFEI, False): dict(n_nodes=146, n_links=273, length_m=98_011.5, n_oneway=199, n_loops=0,
                         seg=(1_060, 1_346, 131_071.0), scc=(763, 1_043, 98_011.5)),
    (CAMPO, True): dict(n_nodes=8_018, n_links=24_055, length_m=2_650_130.1, n_oneway=1_685, n_loops=34,
                        seg=(14_493, 35_055, 2_720_083.5), scc=(13_927, 34_019, 2_650_130.1)),
    (CAMPO, False): dict(n_nodes=7_567, n_links=22_976, length_m=2_580_619.0, n_oneway=1_598, n_loops=10,
                         seg=(13_252, 32_406, 2_628_417.2), scc=(12_939, 31_850, 2_580_619.0)),
}
CASES = sorted(REFERENCE)
CASE_IDS = [f"{p.split('/')[1]}-{'drive+service' if s else 'drive'}" for p, s in CASES]

HEFEI_DRIVE_CLASSES = {"tertiary": 67, "unclassified": 46, "secondary": 45, "primary": 41, "trunk_link": 30,
                       "primary_link": 25, "residential": 14, "trunk+trunk_link": 2,
                       "primary+unclassified": 1, "primary+tertiary": 1, "residential+trunk_link": 1}
CAMPO_DRIVE_CLASSES = {"residential": 18_945, "tertiary": 1_666, "secondary": 1_519, "unclassified": 440,
                       "primary": 313, "primary_link": 31, "residential+tertiary": 24,
                       "residential+unclassified": 18, "residential+secondary": 9, "tertiary+unclassified": 4,
                       "secondary_link": 4, "residential+tertiary+unclassified": 2, "secondary+tertiary": 1}


@lru_cache(maxsize=None)
def _load(path, include_service, merge):
    return read_osm(path, include_service=include_service, merge_across_attributes=merge)


def great_circle_m(lon1, lat1, lon2, lat2):
    """Central angle by the spherical Vincenty (atan2) formula, not the haversine the reader uses."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    num = math.hypot(math.cos(p2) * math.sin(dl),
                     math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl))
    den = math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    return R_M * math.atan2(num, den)


def osm_xml(nodes, ways):
    """An OSM XML document: ``nodes`` maps id to (lon, lat), ``ways`` is [(id, refs, tags)]."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for node_id, (lon, lat) in nodes.items():
        lines.append(f'  <node id="{node_id}" lat="{lat}" lon="{lon}"/>')
    for way_id, refs, tags in ways:
        lines.append(f'  <way id="{way_id}">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


def line_nodes(n, start_id=1, dlon=0.001, lat=0.0):
    """``n`` nodes due east of (0, lat), ``dlon`` degrees apart."""
    return {start_id + i: (round(i * dlon, 7), lat) for i in range(n)}


@pytest.fixture
def write(tmp_path):
    def _write(nodes, ways, name="test.osm"):
        path = tmp_path / name
        path.write_text(osm_xml(nodes, ways), encoding="utf-8")
        return path
    return _write


def link(net, tail_id, head_id):
    """Indices of the links from OSM node ``tail_id`` to ``head_id``."""
    index = {int(n): i for i, n in enumerate(net.node_ids)}
    return np.flatnonzero((net.link_from_idx == index[tail_id]) & (net.link_to_idx == index[head_id]))


def geometry(net, k):
    lo, hi = net.geom_indptr[k], net.geom_indptr[k + 1]
    return net.geom_x_m[lo:hi], net.geom_y_m[lo:hi]


# --------------------------------------------------------------------------- reference extracts


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_merge_mode_reproduces_osmnx(shared_data, case):
    path, include_service = case
    ref = REFERENCE[case]
    net = _load(str(shared_data / path), include_service, True)
    assert (net.n_nodes, net.n_links) == (ref["n_nodes"], ref["n_links"])
    assert_allclose(net.length_m.sum(), ref["length_m"], rtol=1e-6)
    assert int(net.link_attrs["oneway"].sum()) == ref["n_oneway"]
    assert int((net.link_from_idx == net.link_to_idx).sum()) == ref["n_loops"]
    meta = net.meta
    assert (meta["n_segment_nodes"], meta["n_segments"]) == ref["seg"][:2]
    assert_allclose(meta["segment_length_m"], ref["seg"][2], rtol=1e-6)
    scc = (meta["n_segment_nodes"] - meta["dropped_nodes"], meta["n_segments"] - meta["dropped_links"])
    assert scc == ref["scc"][:2]
    assert_allclose(meta["segment_length_m"] - meta["dropped_length_m"], ref["scc"][2], rtol=1e-6)
    assert meta["simplify_dropped_length_m"] == 0.0


@pytest.mark.parametrize("path, expected", [(HEFEI, HEFEI_DRIVE_CLASSES), (CAMPO, CAMPO_DRIVE_CLASSES)],
                         ids=["Hefei", "Campo-Grande"])
def test_merge_mode_class_breakdown_matches_osmnx(shared_data, path, expected):
    net = _load(str(shared_data / path), False, True)
    assert dict(Counter(net.link_attrs["highway_merged"].tolist())) == expected


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_default_mode_splits_at_attribute_changes(shared_data, case):
    path, include_service = case
    ref = REFERENCE[case]
    net = _load(str(shared_data / path), include_service, False)
    assert net.n_links >= ref["n_links"]
    assert net.n_nodes >= ref["n_nodes"]
    assert_allclose(net.length_m.sum(), ref["length_m"], rtol=1e-6)
    # one set of attributes per link
    assert_array_equal(net.link_attrs["highway_merged"], net.link_attrs["highway"])


def test_campo_grande_clip_is_reported(shared_data):
    net = _load(str(shared_data / CAMPO), True, True)
    assert net.meta["n_missing_node_refs"] == 3_080
    assert net.meta["n_ways_with_missing_refs"] == 214
    assert net.meta["compression"] == "gzip"


@pytest.mark.parametrize("path", [HEFEI, CAMPO], ids=["Hefei", "Campo-Grande"])
def test_reference_arrays_are_consistent(shared_data, path):
    net = _load(str(shared_data / path), True, False)
    assert isinstance(net, RawNetwork)
    assert net.node_ids.dtype == np.int64 and np.all(np.diff(net.node_ids) > 0)
    assert net.link_attrs["osm_way_id"].dtype == np.int64
    assert all(isinstance(s, str) for s in net.link_attrs["name"])
    assert net.road_class_names == tuple(sorted(set(net.link_attrs["highway"])))
    assert_array_equal(np.asarray(net.road_class_names)[net.road_class], net.link_attrs["highway"])
    assert np.all(net.length_m > 0) and np.all(net.free_speed_mps > 0)
    assert np.all(net.lanes >= 1) and np.all(net.capacity_veh_per_h > 0)
    # polylines start and end at their link's nodes
    first, last = net.geom_indptr[:-1], net.geom_indptr[1:] - 1
    assert_array_equal(net.geom_x_m[first], net.x_m[net.link_from_idx])
    assert_array_equal(net.geom_y_m[last], net.y_m[net.link_to_idx])
    # projection origin is the centre of the nodes' bounding box
    assert net.meta["lon0_deg"] == pytest.approx(0.5 * (net.lon.min() + net.lon.max()))
    assert net.meta["lat0_deg"] == pytest.approx(0.5 * (net.lat.min() + net.lat.max()))


def test_projection_error_within_stated_bound(shared_data):
    """Planar segment lengths differ from great-circle ones by at most the stated scale error."""
    net = read_osm(shared_data / CAMPO, simplify=False, keep="all")
    f, t = net.link_from_idx, net.link_to_idx
    planar = np.hypot(net.x_m[t] - net.x_m[f], net.y_m[t] - net.y_m[f])
    bound = net.meta["projection_max_scale_error"]
    assert 0 < bound < 2e-3  # 0.2 degrees of latitude at 20 degrees S
    assert np.all(np.abs(planar / net.length_m - 1.0) <= bound + 1e-6)


# --------------------------------------------------------------------------- oneway rules


def test_oneway_minus_one_reverses(write):
    path = write(line_nodes(3), [(7, [1, 2, 3], {"highway": "residential", "oneway": "-1"})])
    net = read_osm(path, keep="all")
    assert net.n_links == 1
    assert len(link(net, 3, 1)) == 1
    x, _ = geometry(net, 0)
    assert np.all(np.diff(x) < 0)  # drawn from node 3 back to node 1
    assert net.link_attrs["oneway"][0]
    assert net.link_attrs["osm_way_id"][0] == 7


@pytest.mark.parametrize("value, forward, backward", [
    ("yes", True, False), ("true", True, False), ("1", True, False), ("YES", True, False),
    ("-1", False, True), ("reverse", False, True),
    ("no", True, True), ("false", True, True), ("0", True, True), ("reversible", True, True),
])
def test_oneway_values(write, value, forward, backward):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "tertiary", "oneway": value})])
    net = read_osm(path, keep="all")
    assert (len(link(net, 1, 2)) == 1, len(link(net, 2, 1)) == 1) == (forward, backward)


def test_roundabout_is_oneway_and_becomes_a_self_loop(write):
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.001), 3: (0.0, 0.002), 4: (-0.001, 0.001), 5: (0.0, -0.002)}
    ways = [(1, [1, 2, 3, 4, 1], {"highway": "secondary", "junction": "roundabout"}),
            (2, [5, 1], {"highway": "residential"})]
    net = read_osm(write(nodes, ways))
    assert net.n_nodes == 2 and net.n_links == 3
    (loop,) = link(net, 1, 1)
    assert net.link_attrs["oneway"][loop]
    x, y = geometry(net, loop)
    assert len(x) == 5 and x[0] == x[-1] and y[0] == y[-1]
    expected = sum(great_circle_m(*nodes[a], *nodes[b]) for a, b in [(1, 2), (2, 3), (3, 4), (4, 1)])
    assert net.length_m[loop] == pytest.approx(expected, rel=1e-9)
    # counter-clockwise as drawn: 1 -> 2 (east) first
    assert x[1] > x[0]


def test_circular_implies_oneway_but_explicit_no_wins(write):
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.001), 3: (0.0, 0.002), 5: (0.0, -0.002)}
    for tags, n_loops in [({"junction": "circular"}, 1), ({"junction": "roundabout", "oneway": "no"}, 2)]:
        ways = [(1, [1, 2, 3, 1], {"highway": "tertiary", **tags}), (2, [5, 1], {"highway": "residential"})]
        net = read_osm(write(nodes, ways))
        assert len(link(net, 1, 1)) == n_loops, tags


def test_motorway_implies_oneway_and_uses_defaults(write):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "motorway"}),
                                 (2, [1, 2], {"highway": "motorway_link", "oneway": "no"})])
    net = read_osm(path, keep="all", simplify=False)
    fwd, bwd = link(net, 1, 2), link(net, 2, 1)
    assert len(fwd) == 2 and len(bwd) == 1
    motorway = fwd[net.link_attrs["highway"][fwd] == "motorway"][0]
    assert net.lanes[motorway] == 2
    assert net.free_speed_mps[motorway] == pytest.approx(120 / 3.6)
    assert net.capacity_veh_per_h[motorway] == 4000
    assert net.link_attrs["highway"][bwd[0]] == "motorway_link"


# --------------------------------------------------------------------------- lanes, speeds, defaults


@pytest.mark.parametrize("maxspeed, speed_kmh", [
    ("50", 50.0), ("50 km/h", 50.0), ("50kmh", 50.0), ("30 mph", 30 * 1.609344), ("20;30", 20.0),
    ("none", 60.0), ("CN:urban", 60.0), ("walk", 60.0), ("0", 60.0), ("fast", 60.0),
    ("9" * 400, 60.0), ("600", 60.0),              # beyond belief ([reliability]): the class default
])
def test_maxspeed_parsing(write, maxspeed, speed_kmh):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "secondary", "oneway": "yes", "maxspeed": maxspeed})])
    net = read_osm(path, keep="all")
    assert net.free_speed_mps[0] == pytest.approx(speed_kmh / 3.6, rel=1e-12)
    expected_unparsed = {maxspeed: 1} if speed_kmh == 60.0 else {}
    assert net.meta["maxspeed_unparsed"] == expected_unparsed


@pytest.mark.parametrize("tags, fwd_lanes, bwd_lanes", [
    ({"lanes": "3"}, 2, 2),
    ({"lanes": "1"}, 1, 1),
    ({"lanes": "4", "lanes:forward": "3"}, 3, 1),
    ({"lanes": "4", "lanes:forward": "3", "lanes:backward": "2"}, 3, 2),
    ({"lanes:backward": "2"}, 1, 2),
    ({"lanes": "many"}, 1, 1),
    ({"lanes": "1000000000"}, 1, 1),                 # beyond belief ([reliability]): the class default
    ({"lanes": "4" * 400}, 1, 1),
    ({}, 1, 1),
])
def test_two_way_lanes(write, tags, fwd_lanes, bwd_lanes):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "secondary", **tags})])
    net = read_osm(path)
    fwd, bwd = link(net, 1, 2)[0], link(net, 2, 1)[0]
    assert (net.lanes[fwd], net.lanes[bwd]) == (fwd_lanes, bwd_lanes)
    assert net.capacity_veh_per_h[fwd] == 1000 * fwd_lanes
    assert net.capacity_veh_per_h[bwd] == 1000 * bwd_lanes


def test_oneway_lanes_and_directional_speed(write):
    ways = [(1, [1, 2], {"highway": "primary", "oneway": "yes", "lanes": "3"}),
            (2, [3, 4], {"highway": "primary", "maxspeed": "60", "maxspeed:backward": "40"})]
    net = read_osm(write(line_nodes(4), ways), keep="all")
    (k,) = link(net, 1, 2)
    assert net.lanes[k] == 3 and net.capacity_veh_per_h[k] == 4500
    assert net.free_speed_mps[link(net, 3, 4)[0]] == pytest.approx(60 / 3.6)
    assert net.free_speed_mps[link(net, 4, 3)[0]] == pytest.approx(40 / 3.6)


@pytest.mark.parametrize("highway", sorted(HIGHWAY_DEFAULTS))
def test_default_table(write, highway):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": highway, "oneway": "yes"})])
    net = read_osm(path, keep="all")
    d = HIGHWAY_DEFAULTS[highway]
    assert net.lanes[0] == d.lanes
    assert net.free_speed_mps[0] == pytest.approx(d.free_speed_kmh / 3.6)
    assert net.capacity_veh_per_h[0] == d.capacity_veh_per_h_per_lane * d.lanes
    assert net.road_class_names == (highway,)


def test_published_defaults():
    """Spot values of the MATSim OsmNetworkReader table, as published."""
    assert tuple(HIGHWAY_DEFAULTS["motorway"]) == (2, 120, 2000)
    assert tuple(HIGHWAY_DEFAULTS["trunk_link"]) == (1, 50, 1500)
    assert tuple(HIGHWAY_DEFAULTS["tertiary"]) == (1, 45, 600)
    assert tuple(HIGHWAY_DEFAULTS["living_street"]) == (1, 15, 300)


def test_service_filter_and_class_names(write):
    ways = [(1, [1, 2], {"highway": "service"}), (2, [2, 3], {"highway": "residential", "name": "Rua A"}),
            (3, [3, 4], {"highway": "footway"})]
    path = write(line_nodes(4), ways)
    net = read_osm(path, simplify=False)
    assert net.road_class_names == ("residential", "service")
    assert net.n_nodes == 3
    assert set(net.link_attrs["name"]) == {"", "Rua A"}
    net = read_osm(path, include_service=False)
    assert net.road_class_names == ("residential",) and net.n_nodes == 2


# --------------------------------------------------------------------------- simplification


def test_degree_two_collapse_keeps_geometry(write):
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.0005), 3: (0.002, 0.0), 4: (0.003, 0.001)}
    path = write(nodes, [(1, [1, 2, 3, 4], {"highway": "residential"})])
    net = read_osm(path)
    assert_array_equal(net.node_ids, [1, 4])
    assert net.n_links == 2
    (k,) = link(net, 1, 4)
    x, y = geometry(net, k)
    assert len(x) == 4
    # vertices are the projected nodes, in order
    lat0 = 0.5 * (0.0 + 0.001)
    lon0 = 0.5 * (0.0 + 0.003)
    for (lon, lat), xi, yi in zip(nodes.values(), x, y):
        assert xi == pytest.approx(R_M * math.radians(lon - lon0) * math.cos(math.radians(lat0)), abs=1e-6)
        assert yi == pytest.approx(R_M * math.radians(lat - lat0), abs=1e-6)
    expected = sum(great_circle_m(*nodes[a], *nodes[b]) for a, b in [(1, 2), (2, 3), (3, 4)])
    assert net.length_m[k] == pytest.approx(expected, rel=1e-9)
    assert net.meta["projection"] == "equirectangular"
    assert (net.meta["lon0_deg"], net.meta["lat0_deg"]) == pytest.approx((lon0, lat0))
    assert_allclose(net.lon, [0.0, 0.003])
    # without simplification every segment is a link
    assert read_osm(path, simplify=False).n_links == 6


def test_default_mode_keeps_attribute_changes(write):
    ways = [(1, [1, 2], {"highway": "residential", "name": "A"}),
            (2, [2, 3, 4], {"highway": "tertiary", "name": "B"}),
            (3, [4, 5], {"highway": "tertiary", "maxspeed": "30"})]
    path = write(line_nodes(5), ways)
    net = read_osm(path)
    assert_array_equal(net.node_ids, [1, 2, 4, 5])  # 3 collapsed; 2 (class) and 4 (speed) kept
    assert net.n_links == 6
    merged = read_osm(path, merge_across_attributes=True)
    assert_array_equal(merged.node_ids, [1, 5])
    (k,) = link(merged, 1, 5)
    # way 2 is the longest part: its attributes win
    assert merged.link_attrs["highway"][k] == "tertiary"
    assert merged.link_attrs["name"][k] == "B"
    assert merged.link_attrs["osm_way_id"][k] == 2
    assert merged.free_speed_mps[k] == pytest.approx(45 / 3.6)
    assert merged.link_attrs["highway_merged"][k] == "residential+tertiary"
    assert merged.length_m.sum() == pytest.approx(net.length_m.sum(), rel=1e-12)


def test_oneway_to_two_way_change_is_an_endpoint(write):
    ways = [(1, [1, 2, 3], {"highway": "residential", "oneway": "yes"}),
            (2, [3, 4, 5], {"highway": "residential"})]
    for merge in (False, True):
        net = read_osm(write(line_nodes(5), ways), keep="all", merge_across_attributes=merge)
        assert_array_equal(net.node_ids, [1, 3, 5])
        assert net.n_links == 3


def test_bare_ring(write):
    """A lone roundabout: a self-loop by default; osmnx (merge mode) removes bare rings."""
    nodes = {1: (0.0, 0.0), 2: (0.001, 0.001), 3: (0.0, 0.002)}
    path = write(nodes, [(1, [1, 2, 3, 1], {"highway": "tertiary", "junction": "roundabout"})])
    net = read_osm(path)
    assert net.n_links == 1 and net.link_from_idx[0] == net.link_to_idx[0]
    assert len(geometry(net, 0)[0]) == 4
    assert net.meta["n_ring_self_loops"] == 1
    with pytest.raises(NetworkError, match="no link is left"):
        read_osm(path, merge_across_attributes=True)


# --------------------------------------------------------------------------- clipping and components


def test_missing_refs_split_the_way(write):
    nodes = line_nodes(6)
    del nodes[3]
    ways = [(1, [1, 2, 3, 4, 5], {"highway": "residential"}),  # 3 is absent: 1-2 and 4-5
            (2, [99, 6], {"highway": "residential"}),            # one node left: no link
            (3, [5, 6, 98], {"highway": "residential"})]         # clipped at the end
    net = read_osm(write(nodes, ways), keep="all", simplify=False)
    pairs = {(int(net.node_ids[a]), int(net.node_ids[b])) for a, b in zip(net.link_from_idx, net.link_to_idx)}
    assert pairs == {(1, 2), (2, 1), (4, 5), (5, 4), (5, 6), (6, 5)}
    assert net.meta["n_missing_node_refs"] == 3
    assert net.meta["n_ways_with_missing_refs"] == 3
    assert net.meta["n_drivable_ways_split_at_clip"] == 1
    assert net.meta["n_drivable_ways_too_short"] == 1


def test_way_left_with_one_node_gives_no_links(write):
    ways = [(1, [1, 2], {"highway": "residential"}), (2, [3, 99], {"highway": "residential"}),
            (3, [4, 4], {"highway": "residential"})]
    net = read_osm(write(line_nodes(4), ways), keep="all")
    assert_array_equal(net.node_ids, [1, 2])
    assert net.meta["n_drivable_ways_too_short"] == 2


def test_largest_scc_drops_and_reports(write, caplog):
    ways = [(1, [1, 2, 3], {"highway": "residential"}), (2, [3, 4], {"highway": "residential", "oneway": "yes"})]
    nodes = line_nodes(4)
    path = write(nodes, ways)
    with caplog.at_level(logging.INFO, logger="twin.data.osm"):
        net = read_osm(path, simplify=False)
    assert_array_equal(net.node_ids, [1, 2, 3])
    assert net.meta["dropped_nodes"] == 1 and net.meta["dropped_links"] == 1
    assert net.meta["dropped_length_m"] == pytest.approx(great_circle_m(*nodes[3], *nodes[4]), rel=1e-9)
    assert "dropped 1 nodes, 1 segments" in caplog.text
    everything = read_osm(path, keep="all", simplify=False)
    assert everything.n_nodes == 4 and everything.meta["dropped_nodes"] == 0


# --------------------------------------------------------------------------- compressed input


@pytest.mark.parametrize("opener, suffix", [(gzip.open, ".osm.gz"), (bz2.open, ".osm.bz2"), (gzip.open, ".osm")])
def test_compressed_input(tmp_path, write, opener, suffix):
    nodes = line_nodes(3)
    ways = [(1, [1, 2, 3], {"highway": "residential", "oneway": "yes"})]
    plain = read_osm(write(nodes, ways), keep="all")
    path = tmp_path / f"city{suffix}"
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write(osm_xml(nodes, ways))
    net = read_osm(path, keep="all")
    assert net.name == "city"
    assert_array_equal(net.node_ids, plain.node_ids)
    assert_array_equal(net.length_m, plain.length_m)
    assert_array_equal(net.geom_x_m, plain.geom_x_m)


# --------------------------------------------------------------------------- bad input


def test_file_not_found(tmp_path):
    with pytest.raises(NetworkError, match="not found"):
        read_osm(tmp_path / "nowhere.osm")


def test_malformed_xml_names_the_line(tmp_path):
    path = tmp_path / "bad.osm"
    path.write_text('<osm version="0.6">\n  <node id="1" lat="0" lon="0"/>\n  <way id="2">\n</osm>\n')
    with pytest.raises(NetworkError, match=r"bad\.osm: not well-formed XML at line 4"):
        read_osm(path)


def test_not_xml_and_not_osm(tmp_path):
    path = tmp_path / "notes.osm"
    path.write_text("this is not xml\n")
    with pytest.raises(NetworkError, match="line 1"):
        read_osm(path)
    path.write_text("<gpx></gpx>")
    with pytest.raises(NetworkError, match="expected <osm>"):
        read_osm(path)
    path.write_bytes(b"")
    with pytest.raises(NetworkError, match="notes.osm"):
        read_osm(path)


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.osm.gz"
    path.write_bytes(gzip.compress(osm_xml(line_nodes(2), []).encode())[:30])
    with pytest.raises(NetworkError, match="cut.osm.gz"):
        read_osm(path)


def test_no_drivable_ways(write):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "footway"}), (2, [1, 2], {"building": "yes"})])
    with pytest.raises(NetworkError, match="no drivable ways among 2 ways"):
        read_osm(path)


def test_unparsable_coordinates_name_the_node(write):
    nodes = {**line_nodes(2), 3: ("east", 0.0), 4: (0.0, 95.0)}
    ways = [(1, [1, 2], {"highway": "residential"})]
    read_osm(write(nodes, ways))  # bad nodes that no drivable way uses are ignored
    for bad in (3, 4):
        path = write(nodes, ways + [(2, [2, bad], {"highway": "residential"})])
        with pytest.raises(NetworkError, match=f"node {bad} \\(used by way 2\\)"):
            read_osm(path)


def test_bad_ids(tmp_path):
    path = tmp_path / "ids.osm"
    path.write_text('<osm><node id="x1" lat="0" lon="0"/></osm>')
    with pytest.raises(NetworkError, match="node id 'x1' is not an integer"):
        read_osm(path)
    path.write_text('<osm><node id="1" lat="0" lon="0"/><way id="5"><nd ref="a"/></way></osm>')
    with pytest.raises(NetworkError, match="way 5 has <nd ref='a'>"):
        read_osm(path)


def test_empty_after_scc(write):
    path = write(line_nodes(3), [(1, [1, 2, 3], {"highway": "residential", "oneway": "yes"})])
    with pytest.raises(NetworkError, match="strongly connected component"):
        read_osm(path)
    assert read_osm(path, keep="all").n_links == 1


def test_unknown_keep_lists_options(write):
    path = write(line_nodes(2), [(1, [1, 2], {"highway": "residential"})])
    with pytest.raises(NetworkError, match="largest_scc.*all"):
        read_osm(path, keep="biggest")
