"""Tests of the TNTP and networkx readers, ``twin.load_city`` dispatch and ``grid_districts``.

TNTP inputs are small files written by hand in ``tmp_path``; expected values are the file's
numbers times the unit factors written out here (60 s per minute, 1609.344 m per mile,
0.3048 m per foot), so a wrong factor in ``twin.units`` would show. Unit conversions are a
single float64 multiplication on both sides, compared with rtol 1e-15 (exact up to the last
bit). The lon/lat projection is checked against the haversine distance within 0.5 %, the
error bound stated in ``project_lonlat``'s docstring.
"""

import math
import re

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import twin
from twin.data.network import grid_districts
from twin.data.tntp import read_tntp_net
from twin.errors import NetworkError, UnknownCityError

MILE_M = 1609.344
FOOT_M = 0.3048
R_EARTH_M = 6_371_009.0
RTOL = 1e-15

# Four nodes, two zones, nodes 1-2 are centroids (first thru node 3). Columns:
# init term capacity length free_flow_time b power speed toll type
LINKS = [
    "1 3 1000 2 10 0.15 4 0 0 1 ;",
    "3 4 2000 1 6 0.15 4 0 0 2 ;",
    "4 2 1000 0.5 3 0.2 5 0 0 1 ;",
    "2 1 500 1 0 0.15 4 0 0 1 ;",
]


def write_net(tmp_path, links=LINKS, *, nodes=4, zones=2, first_thru=3, stem="toy", end=True, comment=True):
    """Write ``<stem>_net.tntp``; return (path, list of its lines)."""
    lines = [f"<NUMBER OF ZONES> {zones}", f"<NUMBER OF NODES> {nodes}", f"<FIRST THRU NODE> {first_thru}",
             f"<NUMBER OF LINKS> {len(links)}"]
    if end:
        lines.append("<END OF METADATA>")
    lines.append("")
    if comment:
        lines.append("~ init_node term_node capacity length free_flow_time b power speed toll link_type ;")
    lines += list(links)
    path = tmp_path / f"{stem}_net.tntp"
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def line_of(lines, text):
    """1-based line number of ``text`` in the written file."""
    return lines.index(text) + 1


def write_nodes(tmp_path, rows, stem="toy"):
    path = tmp_path / f"{stem}_node.tntp"
    path.write_text("Node X Y ;\n" + "".join(f"{r} ;\n" for r in rows))
    return path


# --- TNTP: units -----------------------------------------------------------------------------


def test_tntp_defaults_minutes_and_miles(tmp_path):
    path, lines = write_net(tmp_path)
    raw = read_tntp_net(path)
    assert_allclose(raw.free_flow_time_s, np.array([10, 6, 3, 0]) * 60.0, rtol=RTOL)
    assert_allclose(raw.length_m, np.array([2, 1, 0.5, 1]) * MILE_M, rtol=RTOL)
    assert_allclose(raw.free_speed_mps[:3], raw.length_m[:3] / raw.free_flow_time_s[:3], rtol=RTOL)
    assert raw.free_speed_mps[3] == np.inf  # zero-time connector
    assert_array_equal(raw.capacity_veh_per_h, [1000, 2000, 1000, 500])
    assert_array_equal(raw.bpr_alpha, [0.15, 0.15, 0.2, 0.15])
    assert_array_equal(raw.bpr_beta, [4, 4, 5, 4])
    assert raw.road_class_names == ("tntp_type_1", "tntp_type_2")
    assert_array_equal(raw.road_class, [0, 1, 0, 0])
    assert_array_equal(raw.link_attrs["source_line"], [line_of(lines, s) for s in LINKS])
    assert raw.name == "toy" and raw.meta["time_unit"] == "min" and raw.meta["length_unit"] == "mi"
    assert not twin.load_city(path).has_coordinates  # no node file beside it


@pytest.mark.parametrize("unit, seconds", [("min", 60.0), ("h", 3600.0), ("0.01h", 36.0), ("s", 1.0),
                                           (30.0, 30.0), (2, 2.0)])
def test_tntp_time_unit(tmp_path, unit, seconds):
    path, _ = write_net(tmp_path)
    raw = read_tntp_net(path, time_unit=unit)
    assert_allclose(raw.free_flow_time_s, np.array([10, 6, 3, 0]) * seconds, rtol=RTOL)
    assert_allclose(twin.load_city(path, time_unit=unit).free_flow_time_s, raw.free_flow_time_s, rtol=RTOL)


@pytest.mark.parametrize("unit, metres", [("mi", MILE_M), ("km", 1000.0), ("m", 1.0), ("ft", FOOT_M), (2.5, 2.5)])
def test_tntp_length_unit(tmp_path, unit, metres):
    path, _ = write_net(tmp_path)
    raw = read_tntp_net(path, length_unit=unit)
    assert_allclose(raw.length_m, np.array([2, 1, 0.5, 1]) * metres, rtol=RTOL)


@pytest.mark.parametrize("kwargs, match", [
    (dict(time_unit="fortnight"), r"time_unit = 'fortnight'; expected one of \['0\.01h', 'h', 'min', 's'\]"),
    (dict(time_unit="60"), r"time_unit = '60'"),
    (dict(time_unit=-1.0), r"time_unit = -1\.0; expected a positive finite number"),
    (dict(length_unit="yard"), r"length_unit = 'yard'; expected one of \['ft', 'km', 'm', 'mi'\]"),
])
def test_tntp_unknown_unit(tmp_path, kwargs, match):
    path, _ = write_net(tmp_path)
    with pytest.raises(NetworkError, match=re.escape(str(path)) + ": " + match):
        read_tntp_net(path, **kwargs)


def test_tntp_zero_length_with_time_gets_median_speed(tmp_path):
    """A link with a time but length 0 gets length = time x median speed of the others."""
    links = ["1 2 1000 1 1 ;", "2 3 1000 2 1 ;", "3 1 1000 0 1 ;"]
    path, _ = write_net(tmp_path, links, nodes=3, zones=0, first_thru=1)
    raw = read_tntp_net(path)
    med = np.median([MILE_M / 60.0, 2 * MILE_M / 60.0])
    assert_allclose(raw.free_speed_mps, [MILE_M / 60.0, 2 * MILE_M / 60.0, med], rtol=1e-12)
    assert_allclose(raw.length_m[2], 60.0 * med, rtol=1e-12)


# --- TNTP: zones and centroids -------------------------------------------------------------------


def test_tntp_centroids_and_zones(tmp_path):
    path, _ = write_net(tmp_path)
    city = twin.load_city(path)
    assert_array_equal(city.no_through, [True, True, False, False])
    assert_array_equal(city.zone_of_node, [0, 1, -1, -1])
    assert_array_equal(city.zone_ids, [1, 2])
    assert city.meta["first_thru_node"] == 3 and city.meta["n_zones"] == 2
    # 2 -> 1 -> 3 would pass through centroid 1: node 3 (and so 4) is unreachable from 2.
    # From 1: 3 = 600 s, 4 = 600 + 360, 2 = 960 + 180 (all exact integer seconds).
    assert_array_equal(city.travel_times([1, 2]), [[0, 1140, 600, 960], [0, 0, np.inf, np.inf]])


def test_tntp_first_thru_node_1_means_no_centroids(tmp_path):
    path, _ = write_net(tmp_path, first_thru=1)
    city = twin.load_city(path)
    assert not city.no_through.any()
    assert city.travel_times([2], [3])[0, 0] == 600.0  # 2 -> 1 (0 s) -> 3 (600 s)


# --- TNTP: malformed files ---------------------------------------------------------------------


def test_tntp_missing_end_of_metadata_with_links(tmp_path):
    path, lines = write_net(tmp_path, end=False)
    first_non_meta = lines[5]  # the "~ init_node ..." comment line
    with pytest.raises(NetworkError, match=re.escape(f"{path}, line {line_of(lines, first_non_meta)}: expected a "
                                                     "metadata line '<KEY> value' before '<END OF METADATA>'")):
        read_tntp_net(path)


def test_tntp_missing_end_of_metadata_header_only(tmp_path):
    path, _ = write_net(tmp_path, links=[], end=False, comment=False)
    with pytest.raises(NetworkError, match=re.escape(f"{path}: no '<END OF METADATA>' line")):
        read_tntp_net(path)


def test_tntp_missing_number_of_nodes(tmp_path):
    path = tmp_path / "x_net.tntp"
    path.write_text("<NUMBER OF ZONES> 1\n<END OF METADATA>\n1 2 1 1 1 ;\n")
    with pytest.raises(NetworkError, match=r"metadata '<NUMBER OF NODES>' is missing"):
        read_tntp_net(path)


def test_tntp_no_link_lines(tmp_path):
    path, _ = write_net(tmp_path, links=[])
    with pytest.raises(NetworkError, match=r"no link lines after '<END OF METADATA>'"):
        read_tntp_net(path)


@pytest.mark.parametrize("bad, message", [
    ("1 3 1000 x 10 ;", "non-numeric value in '1 3 1000 x 10 ;'"),
    ("1 9 1000 1 10 ;", "term node 9 is not a node id in 1..4 (<NUMBER OF NODES> 4)"),
    ("5 1 1000 1 10 ;", "init node 5 is not a node id in 1..4"),
    ("0 1 1000 1 10 ;", "init node 0 is not a node id in 1..4"),
    ("1.5 3 1000 1 10 ;", "init node 1.5 is not a node id in 1..4"),
    ("1 3 -5 1 10 ;", "capacity = -5.0; expected a finite number >= 0"),
    ("1 3 0 1 10 ;", "capacity = 0.0; expected > 0 vehicles/hour"),
    ("1 3 1000 -1 10 ;", "length = -1.0; expected a finite number >= 0"),
    ("1 3 1000 nan 10 ;", "length = nan; expected a finite number >= 0"),
    ("1 3 1000 1 -2 ;", "free_flow_time = -2.0; expected a finite number >= 0"),
    ("1 3 1000 1 10 -0.1 4 ;", "b = -0.1; expected a finite number >= 0"),
    ("1 3 1000 1 ;", "expected at least 5 columns (init term capacity length free_flow_time), found 4"),
])
def test_tntp_bad_link_line_names_file_and_line(tmp_path, bad, message):
    links = LINKS[:2] + [bad] + LINKS[2:]
    path, lines = write_net(tmp_path, links)
    with pytest.raises(NetworkError, match=re.escape(f"{path}, line {line_of(lines, bad)}: {message}")):
        read_tntp_net(path)


def test_tntp_missing_file(tmp_path):
    with pytest.raises(NetworkError, match=r"TNTP file not found: .*nope_net\.tntp"):
        read_tntp_net(tmp_path / "nope_net.tntp")


# --- TNTP: duplicates ----------------------------------------------------------------------


DUP_LINKS = ["1 3 1000 2 10 ;", "3 4 2000 1 6 ;", "1 3 900 3 12 ;", "4 1 1000 1 1 ;"]


def test_tntp_duplicates_keep(tmp_path):
    path, _ = write_net(tmp_path, DUP_LINKS, first_thru=1)
    raw = read_tntp_net(path)
    assert raw.n_links == 4
    assert_array_equal(raw.capacity_veh_per_h, [1000, 2000, 900, 1000])
    assert raw.meta["duplicates_dropped"] == 0
    G = twin.load_city(path).to_networkx()
    assert isinstance(G, nx.MultiDiGraph) and G.number_of_edges(1, 3) == 2


def test_tntp_duplicates_first(tmp_path):
    path, lines = write_net(tmp_path, DUP_LINKS, first_thru=1)
    raw = read_tntp_net(path, duplicates="first")
    assert raw.n_links == 3
    assert_array_equal(raw.capacity_veh_per_h, [1000, 2000, 1000])
    assert_array_equal(raw.link_attrs["source_line"], [line_of(lines, DUP_LINKS[i]) for i in (0, 1, 3)])
    assert raw.meta["duplicates_dropped"] == 1
    assert twin.load_city(path, duplicates="first").n_links == 3


def test_tntp_duplicates_error_and_bad_option(tmp_path):
    path, lines = write_net(tmp_path, DUP_LINKS, first_thru=1)
    with pytest.raises(NetworkError, match=re.escape(f"{path}, line {line_of(lines, DUP_LINKS[2])}: a second "
                                                     "link 1->3; pass duplicates='first' or 'keep'")):
        read_tntp_net(path, duplicates="error")
    with pytest.raises(NetworkError, match=r"duplicates = 'last'; expected 'first', 'error' or 'keep'"):
        read_tntp_net(path, duplicates="last")


# --- TNTP: node files ----------------------------------------------------------------------


def test_tntp_node_file_lonlat(tmp_path):
    """Degrees are detected (|x| <= 180, |y| <= 90), kept as lon/lat and projected to metres;
    the projected distances match haversine within 0.5 % (project_lonlat's stated bound)."""
    path, _ = write_net(tmp_path)
    write_nodes(tmp_path, ["1 -96.00 43.00", "2 -96.01 43.00", "3 -96.00 43.01", "4 -96.01 43.01"])
    city = twin.load_city(path)
    assert_array_equal(city.lon, [-96.0, -96.01, -96.0, -96.01])
    assert_array_equal(city.lat, [43.0, 43.0, 43.01, 43.01])
    assert city.meta["node_file"] == "toy_node.tntp" and city.meta["projection"] == "local equirectangular"
    # Node 1 is east of node 2 and south of node 3; the frame is centred on the bounding box.
    assert city.x_m[0] > city.x_m[1] and city.y_m[2] > city.y_m[0]
    assert_allclose([city.x_m.mean(), city.y_m.mean()], [0.0, 0.0], atol=1e-9)

    def haversine(lon1, lat1, lon2, lat2):
        p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
        a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * R_EARTH_M * math.asin(math.sqrt(a))

    for i, j in ((0, 1), (0, 2), (0, 3)):
        d = math.hypot(city.x_m[i] - city.x_m[j], city.y_m[i] - city.y_m[j])
        assert_allclose(d, haversine(city.lon[i], city.lat[i], city.lon[j], city.lat[j]), rtol=5e-3)


@pytest.mark.parametrize("coord_unit, factor", [("ft", FOOT_M), ("km", 1000.0), ("m", 1.0), (2.0, 2.0)])
def test_tntp_node_file_planar_coord_unit(tmp_path, coord_unit, factor):
    path, _ = write_net(tmp_path)
    write_nodes(tmp_path, ["1 0 0", "2 10 0", "3 0 20", "4 10 20"])
    city = twin.load_city(path, coord_unit=coord_unit)
    assert city.lon is None
    assert_allclose(city.x_m, np.array([0, 10, 0, 10]) * factor, rtol=RTOL)
    assert_allclose(city.y_m, np.array([0, 0, 20, 20]) * factor, rtol=RTOL)


def test_tntp_node_file_planar_detected_as_metres(tmp_path):
    """Coordinates outside +-180 / +-90 cannot be degrees: read as metres."""
    path, _ = write_net(tmp_path)
    write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 1000", "4 1000 1000"])
    raw = read_tntp_net(path)
    assert raw.lon is None and raw.meta["coord_unit"] == "m"
    assert_array_equal(raw.x_m, [0, 1000, 0, 1000])


def test_tntp_node_file_small_planar_values_read_as_degrees_unless_told(tmp_path):
    """Documented heuristic: values within +-180/+-90 are taken as lon/lat; coord_unit overrides."""
    path, _ = write_net(tmp_path)
    write_nodes(tmp_path, ["1 0 0", "2 1 0", "3 0 1", "4 1 1"])
    assert read_tntp_net(path).lon is not None
    raw = read_tntp_net(path, coord_unit="km")
    assert raw.lon is None
    assert_array_equal(raw.x_m, [0, 1000, 0, 1000])


def test_tntp_node_file_missing_a_used_node(tmp_path):
    path, _ = write_net(tmp_path)
    node_file = write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 1000"])
    with pytest.raises(NetworkError, match=re.escape(f"{node_file}: no coordinates for node(s) [4] that links use")):
        twin.load_city(path)


def test_tntp_node_file_unused_node_placed_at_centroid(tmp_path):
    path, _ = write_net(tmp_path, nodes=5)
    write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 1000", "4 1000 1000"])
    raw = read_tntp_net(path)
    assert_array_equal(raw.x_m, [0, 1000, 0, 1000, 500])
    assert_array_equal(raw.y_m, [0, 0, 1000, 1000, 500])


def test_tntp_node_file_bad_rows(tmp_path):
    path, _ = write_net(tmp_path)
    node_file = write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 1000", "9 5 5"])
    with pytest.raises(NetworkError, match=re.escape(f"{node_file}, line 5: node id 9 is outside 1..4")):
        read_tntp_net(path)
    node_file = write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 zz"])
    with pytest.raises(NetworkError, match=re.escape(f"{node_file}, line 4: expected 'node x y', found '3 0 zz ;'")):
        read_tntp_net(path)


def test_tntp_unknown_coord_unit(tmp_path):
    path, _ = write_net(tmp_path)
    write_nodes(tmp_path, ["1 0 0", "2 1000 0", "3 0 1000", "4 1000 1000"])
    with pytest.raises(NetworkError, match=r"coord_unit: .*'furlong'; expected one of \['ft', 'km', 'm', 'mi'\]"):
        read_tntp_net(path, coord_unit="furlong")


# --- networkx reader via load_city ---------------------------------------------------------


EDGE = dict(length_m=100.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0)


def triangle(kind=nx.DiGraph):
    """1 -> 2 -> 3 -> 1, 100 m at 10 m/s each; edge (2, 3) is 'primary', the others unnamed."""
    G = kind()
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    G.add_node(3, x=100.0, y=100.0)
    G.add_edge(1, 2, **EDGE)
    G.add_edge(2, 3, **EDGE, road_class="primary")
    G.add_edge(3, 1, **EDGE)
    return G


def test_nx_valid_graph():
    city = twin.load_city(triangle())
    assert (city.n_nodes, city.n_links) == (3, 3)
    assert_array_equal(city.node_ids, [1, 2, 3])
    assert_array_equal(city.free_flow_time_s, [10.0, 10.0, 10.0])
    assert city.road_class_names == ("road", "primary")
    assert_array_equal(city.road_class, [0, 1, 0])
    assert city.name == "networkx"
    assert twin.load_city(triangle(), name="tri").name == "tri"


def test_nx_road_class_names_preserved_from_graph_attribute():
    G = triangle()
    G.graph["road_class_names"] = ["motorway", "primary", "road"]
    city = twin.load_city(G)
    assert city.road_class_names == ("motorway", "primary", "road")
    assert_array_equal(city.road_class, [2, 1, 2])


def test_nx_string_node_ids():
    G = nx.relabel_nodes(triangle(), {1: "a", 2: "b", 3: "c"})
    city = twin.load_city(G)
    assert city.node_ids.dtype == object
    assert list(city.node_ids) == ["a", "b", "c"]
    assert_array_equal(city.travel_times(["a"], ["c"]), [[20.0]])


def test_nx_multidigraph_parallel_edges():
    G = triangle(nx.MultiDiGraph)
    G.add_edge(1, 2, **{**EDGE, "length_m": 50.0, "lanes": 2})
    city = twin.load_city(G)
    assert city.n_links == 4
    assert city.path_cost(1, 2) == 5.0


def test_nx_missing_node_attribute():
    G = triangle()
    del G.nodes[2]["x"]
    with pytest.raises(NetworkError, match=r"node 2 has no attribute 'x'; every node needs \('x', 'y'\)"):
        twin.load_city(G)


@pytest.mark.parametrize("attr", ["length_m", "free_speed_mps", "lanes", "capacity_veh_per_h"])
def test_nx_missing_edge_attribute(attr):
    G = triangle()
    del G.edges[2, 3][attr]
    with pytest.raises(NetworkError, match=rf"edge \(2, 3\) has no attribute '{attr}'; every edge needs"):
        twin.load_city(G)


@pytest.mark.parametrize("where, key, value, match", [
    ("edge", "length_m", float("nan"), r"edge \(2, 3\) attribute 'length_m' is NaN"),
    ("edge", "capacity_veh_per_h", "1800", r"edge \(2, 3\) attribute 'capacity_veh_per_h' = '1800'; expected a number"),
    ("edge", "lanes", True, r"edge \(2, 3\) attribute 'lanes' = True; expected a number"),
    ("edge", "lanes", None, r"edge \(2, 3\) attribute 'lanes' = None; expected a number"),
    ("edge", "length_m", 0.0, r"edge \(2, 3\) attribute 'length_m' = 0\.0; expected a finite number > 0"),
    ("edge", "free_speed_mps", -3.0, r"edge \(2, 3\) attribute 'free_speed_mps' = -3\.0; expected a finite"),
    ("edge", "free_speed_mps", math.inf, r"edge \(2, 3\) attribute 'free_speed_mps' = inf; expected a finite"),
    ("edge", "bpr_alpha", "x", r"edge \(2, 3\) attribute 'bpr_alpha' = 'x'; expected a number"),
    ("node", "y", float("nan"), r"node 3 attribute 'y' is NaN"),
    ("node", "y", "1", r"node 3 attribute 'y' = '1'; expected a number"),
])
def test_nx_bad_attribute_values(where, key, value, match):
    G = triangle()
    if key == "bpr_alpha":
        for e in G.edges:
            G.edges[e]["bpr_alpha"] = 0.15
    target = G.edges[2, 3] if where == "edge" else G.nodes[3]
    target[key] = value
    with pytest.raises(NetworkError, match=match):
        twin.load_city(G)


def test_nx_zero_length_only_on_zero_time_connectors():
    G = triangle()
    for e in G.edges:  # an optional attribute goes on every edge or on none
        G.edges[e]["free_flow_time_s"] = G.edges[e]["length_m"] / G.edges[e]["free_speed_mps"]
    G.edges[2, 3].update(length_m=0.0, free_flow_time_s=0.0)
    city = twin.load_city(G)
    assert city.free_flow_time_s[1] == 0.0 and city.length_m[1] == 0.0
    G.edges[2, 3].update(free_speed_mps=math.inf)  # inf speed too is fine on a connector
    assert twin.load_city(G).free_flow_time_s[1] == 0.0
    G.edges[2, 3].update(free_speed_mps=10.0, free_flow_time_s=5.0)
    with pytest.raises(NetworkError, match=r"edge \(2, 3\) attribute 'length_m' = 0\.0"):
        twin.load_city(G)
    for e in G.edges:
        del G.edges[e]["free_flow_time_s"]
    with pytest.raises(NetworkError, match=r"edge \(2, 3\) attribute 'length_m' = 0\.0"):
        twin.load_city(G)


def test_nx_optional_attribute_on_some_edges_is_not_silently_dropped():
    G = triangle()
    G.edges[2, 3]["bpr_alpha"] = 0.5
    try:
        city = twin.load_city(G)
    except NetworkError:
        return  # rejecting the partial column is an acceptable fix
    assert city.bpr_alpha[1] == 0.5


def test_nx_zones_and_no_through():
    G = triangle()
    G.nodes[1]["zone"] = "north"
    G.nodes[3]["zone"] = "east"
    G.nodes[1]["no_through"] = True
    city = twin.load_city(G)
    assert list(city.zone_ids) == ["east", "north"]
    assert_array_equal(city.zone_of_node, [1, -1, 0])
    assert_array_equal(city.no_through, [True, False, False])


def test_nx_undirected_graph_is_a_type_error():
    with pytest.raises(TypeError, match=r"expected a networkx DiGraph or MultiDiGraph, got Graph"):
        twin.load_city(nx.Graph(triangle()))


def test_nx_empty_graphs():
    with pytest.raises(NetworkError, match=r"the graph has no nodes"):
        twin.load_city(nx.DiGraph())
    G = nx.DiGraph()
    G.add_node(1, x=0.0, y=0.0)
    with pytest.raises(NetworkError, match=r"the graph has no edges"):
        twin.load_city(G)


def test_nx_unknown_option():
    with pytest.raises(NetworkError, match=r"unknown option\(s\) \['foo'\] for a networkx graph; accepted: \['name'\]"):
        twin.load_city(triangle(), foo=1)


# --- load_city dispatch --------------------------------------------------------------------


def test_load_city_unknown_embedded_name():
    with pytest.raises(UnknownCityError, match=r"'hefei' is neither an existing file nor an embedded city") as info:
        twin.load_city("hefei")
    assert "hefei-baohe" in str(info.value)


def test_load_city_nonexistent_path(tmp_path):
    missing = tmp_path / "nowhere_net.tntp"
    with pytest.raises(UnknownCityError, match=r"is neither an existing file nor an embedded city"):
        twin.load_city(missing)
    with pytest.raises(UnknownCityError):
        twin.load_city(str(missing))


def test_load_city_unknown_extension(tmp_path):
    path = tmp_path / "roads.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(NetworkError, match=r"roads\.txt: unrecognised network file type; expected") as info:
        twin.load_city(path)
    assert not isinstance(info.value, UnknownCityError)


def test_load_city_unknown_tntp_option(tmp_path):
    path, _ = write_net(tmp_path)
    with pytest.raises(NetworkError, match=r"unknown option\(s\) \['foo'\] for a TNTP network; accepted: "
                                           r"\['time_unit', 'length_unit', 'coord_unit', 'name', 'duplicates', "
                                           r"'lane_capacity_veh_per_h'\]"):
        twin.load_city(path, foo=1)


def test_load_city_unknown_embedded_option():
    with pytest.raises(NetworkError, match=r"unknown option\(s\) \['foo'\] for embedded city 'hefei-baohe'; "
                                           r"accepted: \["):
        twin.load_city("hefei-baohe", foo=1)


@pytest.mark.parametrize("source", [42, None, 3.5, b"grid:3x3", ["grid:3x3"]])
def test_load_city_wrong_type(source):
    with pytest.raises(TypeError, match=r"load_city\(source\): got .*; expected"):
        twin.load_city(source)


def test_load_city_synthetic_spec_counts():
    """A grid of nx x ny intersections with two-way links between 4-neighbours has
    2 * ((nx - 1) * ny + nx * (ny - 1)) links: 2 * (9 + 8) = 34 for 4 x 3."""
    city = twin.load_city("grid:4x3")
    assert (city.n_nodes, city.n_links) == (12, 34)


def test_load_city_passes_a_city_through():
    city = twin.load_city("grid:3x3")
    assert twin.load_city(city) is city
    with pytest.raises(NetworkError, match=r"options \['seed'\] cannot apply to an already compiled City"):
        twin.load_city(city, seed=1)


# --- grid_districts ----------------------------------------------------------------------


def test_grid_districts_3x3_on_uniform_grid():
    """A 6 x 6 lattice of points 0..5 splits into 3 x 3 cells of 2 x 2 points; zones are
    numbered 1..9 row-major from the south-west and only the middle cell (zone 5) is central."""
    xs, ys = np.meshgrid(np.arange(6.0), np.arange(6.0))
    x, y = xs.ravel(), ys.ravel()
    zone_of_node, zone_ids, central = grid_districts(x, y, 3, 3)
    assert zone_of_node.dtype == np.int32 and zone_ids.dtype == np.int64
    assert_array_equal(zone_ids, np.arange(1, 10))
    expected = (y // 2).astype(int) * 3 + (x // 2).astype(int)
    assert_array_equal(zone_of_node, expected)
    assert_array_equal(np.bincount(zone_of_node), np.full(9, 4))  # every node in exactly one zone
    assert_array_equal(central, [False] * 4 + [True] + [False] * 4)


def test_grid_districts_skips_empty_cells():
    """Points only in the four corners: 4 districts, numbered 1..4, none central."""
    x = np.array([0.0, 9.0, 0.0, 9.0])
    y = np.array([0.0, 0.0, 9.0, 9.0])
    zone_of_node, zone_ids, central = grid_districts(x, y, 3, 3)
    assert_array_equal(zone_ids, [1, 2, 3, 4])
    assert_array_equal(zone_of_node, [0, 1, 2, 3])
    assert not central.any()


def test_embedded_city_districts_cover_every_node():
    city = twin.load_city("hefei-baohe")
    assert city.n_zones == 9
    assert_array_equal(city.zone_ids, np.arange(1, 10))
    assert city.zone_of_node.min() == 0 and city.zone_of_node.max() == 8
    assert city.meta["central_zone_ids"] == [5]
