"""Tests of the compiled city graph (``twin.graph``): validation, ids, routing, interchange.

Routing expectations on the hand-made graph are worked out by hand in the comments; its
link times are integer seconds, so every path cost is an exact float64 sum and is compared
exactly. Round trips (networkx, results file, repeated loads) compare arrays exactly:
they copy numbers, they compute nothing.
"""

import networkx as nx
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import twin
from twin.data.network import RawNetwork
from twin.errors import NetworkError, UnknownNodeError
from twin.graph import City, write_network
from twin.results import ResultsWriter, open_results

# Every array a round trip through networkx must reproduce (City.to_networkx docstring).
ROUND_TRIP_FIELDS = (
    "node_ids", "x_m", "y_m", "lon", "lat", "link_from_idx", "link_to_idx", "length_m",
    "free_speed_mps", "free_flow_time_s", "lanes", "capacity_veh_per_h",
    "jam_density_veh_per_km_per_lane", "road_class", "bpr_alpha", "bpr_beta",
    "zone_of_node", "zone_ids", "no_through",
)

# Every array of a City, for byte-level determinism checks.
ALL_ARRAYS = ROUND_TRIP_FIELDS + (
    "fwd_indptr", "fwd_link", "fwd_head", "rev_indptr", "rev_link", "rev_tail",
)


def assert_same_city(a, b):
    """Equal arrays (values and dtypes), class names and counts."""
    for name in ROUND_TRIP_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
            continue
        assert x.dtype == y.dtype, name
        assert_array_equal(x, y, err_msg=name)
    assert a.road_class_names == b.road_class_names
    assert (a.n_nodes, a.n_links, a.n_zones) == (b.n_nodes, b.n_links, b.n_zones)


# --- a three-node ring built from arrays -------------------------------------------------


def _raw(**overrides):
    """Ring 10 -> 20 -> 30 -> 10, link times 10, 10, 14.1 s."""
    fields = dict(
        name="toy", source="toy.src", node_ids=np.array([10, 20, 30]),
        x_m=np.array([0.0, 100.0, 100.0]), y_m=np.array([0.0, 0.0, 100.0]),
        link_from_idx=np.array([0, 1, 2]), link_to_idx=np.array([1, 2, 0]),
        length_m=np.array([100.0, 100.0, 141.0]), free_speed_mps=np.array([10.0, 10.0, 10.0]),
        lanes=np.array([1.0, 1.0, 2.0]), capacity_veh_per_h=np.array([1800.0, 1800.0, 3600.0]),
    )
    fields.update(overrides)
    return RawNetwork(**fields)


def test_from_raw_valid_ring():
    city = City.from_raw(_raw())
    assert (city.n_nodes, city.n_links, city.n_zones) == (3, 3, 0)
    assert_array_equal(city.free_flow_time_s, [10.0, 10.0, 14.1])
    assert city.has_coordinates
    assert not city.node_ids.flags.writeable
    assert_array_equal(city.zone_of_node, [-1, -1, -1])


_EMPTY_LINKS = dict(link_from_idx=np.array([], dtype=np.int64), link_to_idx=np.array([], dtype=np.int64),
                    length_m=np.array([]), free_speed_mps=np.array([]), lanes=np.array([]),
                    capacity_veh_per_h=np.array([]))


@pytest.mark.parametrize("overrides, match", [
    pytest.param(dict(node_ids=np.array([], dtype=np.int64), x_m=np.array([]), y_m=np.array([]), **_EMPTY_LINKS),
                 r"^toy\.src: the network has no nodes", id="empty-nodes"),
    pytest.param(_EMPTY_LINKS, r"^toy\.src: the network has no links", id="no-links"),
    pytest.param(dict(node_ids=np.array([10, 20, 10])),
                 r"toy\.src: node id 10 appears more than once", id="duplicate-int-id"),
    pytest.param(dict(node_ids=np.array(["a", "b", "a"], dtype=object)),
                 r"toy\.src: node id 'a' appears more than once", id="duplicate-str-id"),
    pytest.param(dict(link_to_idx=np.array([1, 3, 0])),
                 r"link 1 has link_to_idx = 3; expected a node index in \[0, 3\)", id="head-out-of-range"),
    pytest.param(dict(link_from_idx=np.array([0, -1, 2])),
                 r"link 1 has link_from_idx = -1; expected a node index in \[0, 3\)", id="tail-negative"),
    pytest.param(dict(length_m=np.array([100.0, np.nan, 141.0])),
                 r"link 1 \(20->30\): length_m is NaN", id="nan-length"),
    pytest.param(dict(length_m=np.array([100.0, -1.0, 141.0])),
                 r"link 1 \(20->30\): length_m = .*-1\.0.*; expected >= 0", id="negative-length"),
    pytest.param(dict(length_m=np.array([100.0, np.inf, 141.0])),
                 r"link 1 \(20->30\): length_m = inf; expected a finite number", id="inf-length"),
    pytest.param(dict(capacity_veh_per_h=np.array([1800.0, 0.0, 3600.0])),
                 r"link 1 \(20->30\): capacity_veh_per_h = .*0\.0.*; expected > 0", id="zero-capacity"),
    pytest.param(dict(lanes=np.array([1.0, 1.0, -2.0])),
                 r"link 2 \(30->10\): lanes = .*-2\.0.*; expected > 0", id="negative-lanes"),
    pytest.param(dict(free_speed_mps=np.array([10.0, np.inf, 10.0]), free_flow_time_s=np.array([10.0, 5.0, 14.1])),
                 r"link 1 \(20->30\): free_speed_mps = inf with free_flow_time_s = 5\.0; an infinite speed is "
                 r"accepted only on zero-time links", id="inf-speed-positive-time"),
    pytest.param(dict(jam_density_veh_per_km_per_lane=np.array([0.0, 133.0, 133.0])),
                 r"link 0 \(10->20\): jam_density_veh_per_km_per_lane = .*0\.0.*; expected > 0", id="zero-jam"),
    pytest.param(dict(bpr_alpha=np.array([-1.0, 0.15, 0.15])),
                 r"link 0 \(10->20\): bpr_alpha = .*-1\.0.*; expected >= 0", id="negative-alpha"),
    pytest.param(dict(x_m=np.array([0.0, np.nan, 100.0])),
                 r"toy\.src: node .*20.* has no coordinates \(x_m/y_m NaN\) while 2 other nodes have them",
                 id="partial-coordinates"),
    pytest.param(dict(y_m=np.array([0.0, np.inf, 100.0])),
                 r"toy\.src: node .*20.* has an infinite coordinate", id="inf-coordinate"),
    pytest.param(dict(zone_of_node=np.array([0, 1, 2]), zone_ids=np.array([1, 2])),
                 r"toy\.src: zone_of_node must have shape \(3,\) with values -1 or 0\.\.1", id="zone-too-large"),
    pytest.param(dict(zone_of_node=np.array([0, -2, 1]), zone_ids=np.array([1, 2])),
                 r"toy\.src: zone_of_node must have shape \(3,\) with values -1 or 0\.\.1", id="zone-below-minus-1"),
    pytest.param(dict(road_class=np.array([0, 1, 0])),
                 r"toy\.src: road_class codes must index road_class_names \(0\.\.0\)", id="road-class-code"),
])
def test_from_raw_rejects(overrides, match):
    with pytest.raises(NetworkError, match=match):
        City.from_raw(_raw(**overrides))


def test_from_raw_error_names_the_source_line():
    raw = _raw(length_m=np.array([100.0, -1.0, 141.0]), link_attrs={"source_line": np.array([7, 8, 9])})
    with pytest.raises(NetworkError, match=r"toy\.src: link 1 \(20->30, line 8\): length_m"):
        City.from_raw(raw)


def test_from_raw_accepts_all_missing_coordinates_and_zero_time_links():
    city = City.from_raw(_raw(x_m=np.full(3, np.nan), y_m=np.full(3, np.nan),
                              length_m=np.array([100.0, 0.0, 141.0]),
                              free_speed_mps=np.array([10.0, np.inf, 10.0]),
                              free_flow_time_s=np.array([10.0, 0.0, 14.1])))
    assert not city.has_coordinates
    assert_array_equal(city.free_flow_time_s, [10.0, 0.0, 14.1])


def test_from_raw_messages_print_plain_numbers():
    with pytest.raises(NetworkError) as info:
        City.from_raw(_raw(length_m=np.array([100.0, -1.0, 141.0])))
    assert "length_m = -1.0;" in str(info.value)
    with pytest.raises(NetworkError) as info:
        City.from_raw(_raw(x_m=np.array([0.0, np.nan, 100.0])))
    assert "node 20 has no coordinates" in str(info.value)


# --- node ids ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid():
    """grid:4x3: int node ids 1..12 (index = id - 1)."""
    return twin.load_city("grid:4x3")


@pytest.fixture(scope="module")
def str_city():
    """The 3x3 grid relabelled to string ids 'n1'..'n9'."""
    G = twin.load_city("grid:3x3").to_networkx()
    return twin.load_city(nx.relabel_nodes(G, {v: f"n{v}" for v in G.nodes}))


def test_node_index_int_ids(grid):
    assert_array_equal(grid.node_ids, np.arange(1, 13))
    assert grid.node_index(5) == 4
    assert np.ndim(grid.node_index(5)) == 0
    got = grid.node_index([12, 1, 5])
    assert got.dtype == np.int64
    assert_array_equal(got, [11, 0, 4])
    assert_array_equal(grid.node_index(np.array([3, 3], dtype=np.int32)), [2, 2])
    assert grid.node_index([]).shape == (0,)


def test_node_index_numeric_strings_and_integral_floats_accepted(grid):
    # The CLI passes ids as text; "5" (surrounding blanks ignored) and 5.0 mean node 5.
    assert grid.node_index("5") == 4
    assert grid.node_index(" 5") == 4
    assert_array_equal(grid.node_index(["5", "12"]), [4, 11])
    assert grid.node_index(5.0) == 4
    assert grid.node_index(np.float64(12.0)) == 11


@pytest.mark.parametrize("bad", [5.5, "5.5", "x", "", True, 2**70, float("nan")])
def test_node_index_rejects_non_integer_ids(grid, bad):
    with pytest.raises(UnknownNodeError, match=r"unknown node id\(s\) .* in city 'grid_4x3'"):
        grid.node_index(bad)


def test_node_index_unknown_ids_are_listed(grid):
    with pytest.raises(UnknownNodeError, match=r"unknown node id\(s\) \[99, 100\] in city 'grid_4x3'") as info:
        grid.node_index([3, 99, 100])
    assert isinstance(info.value, LookupError)  # UnknownNodeError is a NetworkError and a LookupError
    with pytest.raises(UnknownNodeError, match=r"\[0\]"):
        grid.node_index(0)


def test_node_index_lists_only_the_unknown_ids(grid):
    with pytest.raises(UnknownNodeError) as info:
        grid.node_index([3, 5.5])
    assert "[5.5]" in str(info.value)


def test_node_index_str_ids(str_city):
    assert str_city.node_ids.dtype == object
    assert str_city.node_index("n3") == 2
    assert_array_equal(str_city.node_index(["n9", "n1"]), [8, 0])
    with pytest.raises(UnknownNodeError, match=r"unknown node id\(s\) \['zz'\]"):
        str_city.node_index(["n3", "zz"])
    with pytest.raises(UnknownNodeError, match=r"unknown node id\(s\) \[3\]"):
        str_city.node_index(3)


# --- routing on a hand-made graph --------------------------------------------------------

#: (tail id, head id, free-flow seconds). Node 50 only leaves (no link enters it).
#: Ids are deliberately not in index order: node_ids = [50, 10, 40, 20, 30].
HAND_LINKS = [(10, 20, 10), (20, 30, 10), (10, 30, 25), (30, 40, 5), (20, 40, 30), (40, 10, 7), (50, 10, 3)]
HAND_IDS = [50, 10, 40, 20, 30]


def hand_city(no_through=()):
    pos = {v: i for i, v in enumerate(HAND_IDS)}
    t = np.array([c for _, _, c in HAND_LINKS], dtype=np.float64)
    raw = RawNetwork(
        name="hand", source="hand-made", node_ids=np.array(HAND_IDS),
        x_m=np.arange(5.0), y_m=np.zeros(5),
        link_from_idx=[pos[u] for u, _, _ in HAND_LINKS], link_to_idx=[pos[v] for _, v, _ in HAND_LINKS],
        length_m=t * 10.0, free_speed_mps=np.full(len(t), 10.0), lanes=np.ones(len(t)),
        capacity_veh_per_h=np.full(len(t), 1800.0),
        no_through=np.isin(HAND_IDS, list(no_through)),
    )
    return City.from_raw(raw)


INF = np.inf


def test_travel_times_hand_computed():
    """Exact: every cost is a sum of integer seconds.

    From 10: 20 = 10; 30 = min(10+10, 25) = 20; 40 = 20+5 = 25; 50 unreachable.
    From 40: 10 = 7; 20 = 17; 30 = 27. From 50: 10 = 3, then +the times from 10.
    """
    city = hand_city()
    got = city.travel_times([10, 40, 50])
    assert got.shape == (3, 5)
    # destinations omitted -> node_ids order [50, 10, 40, 20, 30]
    assert_array_equal(got, [[INF, 0, 25, 10, 20],
                             [INF, 7, 0, 17, 27],
                             [0, 3, 28, 13, 23]])


def test_travel_times_destination_order_and_scalar_origin():
    city = hand_city()
    got = city.travel_times(10, [40, 20, 10, 40])
    assert got.shape == (1, 4)
    assert_array_equal(got, [[25, 10, 0, 25]])
    assert city.travel_times([], [10]).shape == (0, 1)


def test_inf_cost_closes_a_link():
    """Closing 20->30 forces 10->30 directly (25 s), then 40 costs 30 s; closing 10->30
    as well leaves 30 unreachable and 40 only via 20 (10 + 30 = 40 s)."""
    city = hand_city()
    cost = city.free_flow_time_s.copy()
    cost[1] = np.inf  # 20->30
    assert_array_equal(city.travel_times([10], [30, 40], link_cost_s=cost), [[25, 30]])
    assert_array_equal(city.path(10, 40, link_cost_s=cost), [2, 3])
    cost[2] = np.inf  # 10->30
    assert_array_equal(city.travel_times([10], [30, 40], link_cost_s=cost), [[INF, 40]])
    assert city.path_cost(10, 30, link_cost_s=cost) == INF
    with pytest.raises(NetworkError, match=r"node 30 cannot be reached from node 10"):
        city.path(10, 30, link_cost_s=cost)


def test_no_through_node_is_an_end_but_not_a_passage():
    """20 as a centroid: reachable from 10 (10 s) but not passable, so 30 = 25 (direct) and
    40 = 30; from 20 itself routes may start (20 -> 30 = 10)."""
    city = hand_city(no_through=[20])
    assert_array_equal(city.travel_times([10, 20], [20, 30, 40]), [[10, 25, 30], [0, 10, 15]])


def test_path_path_cost_and_tree():
    city = hand_city()
    links = city.path(10, 40)
    assert_array_equal(links, [0, 1, 3])  # 10->20->30->40
    assert city.path_cost(10, 40) == 25.0
    assert city.free_flow_time_s[links].sum() == 25.0
    assert city.path(40, 40).shape == (0,)
    assert city.path_cost(40, 40) == 0.0
    assert city.path_cost(10, 50) == INF
    dist, pred = city.shortest_path_tree(10)
    assert_array_equal(dist, [INF, 0, 25, 10, 20])
    assert_array_equal(pred, [-1, -1, 3, 0, 1])


@pytest.mark.parametrize("cost, match", [
    (np.ones(3), r"link_cost_s has shape \(3,\); expected \(7,\)"),
    (np.ones((7, 1)), r"link_cost_s has shape \(7, 1\); expected \(7,\)"),
    (np.array([1, 1, np.nan, 1, 1, 1, 1.0]), r"link_cost_s\[2\] = nan; expected a cost >= 0"),
    (np.array([1, 1, 1, 1, -0.5, 1, 1.0]), r"link_cost_s\[4\] = -0\.5; expected a cost >= 0 \(inf closes"),
])
def test_bad_link_costs(cost, match):
    city = hand_city()
    for call in (lambda: city.travel_times([10], link_cost_s=cost),
                 lambda: city.path(10, 40, link_cost_s=cost),
                 lambda: city.shortest_path_tree(10, link_cost_s=cost)):
        with pytest.raises(NetworkError, match=match):
            call()


def test_routing_unknown_node():
    city = hand_city()
    with pytest.raises(UnknownNodeError, match=r"\[77\]"):
        city.travel_times([10], [77])
    with pytest.raises(UnknownNodeError, match=r"\[77\]"):
        city.path(77, 10)


# --- networkx round trips ------------------------------------------------------------------


def parallel_city():
    """String ids, two parallel a->b links, zones, a centroid, lon/lat and three road classes."""
    raw = RawNetwork(
        name="par", source="hand-made parallel", node_ids=np.array(["a", "b", "c"], dtype=object),
        x_m=np.array([0.0, 100.0, 50.0]), y_m=np.array([0.0, 0.0, 80.0]),
        lon=np.array([117.0, 117.001, 117.0005]), lat=np.array([31.0, 31.0, 31.0007]),
        link_from_idx=[0, 0, 1, 2, 1], link_to_idx=[1, 1, 2, 0, 0],
        length_m=[100.0, 120.0, 94.0, 94.0, 100.0], free_speed_mps=[10.0, 20.0, 10.0, np.inf, 10.0],
        free_flow_time_s=[10.0, 6.0, 9.4, 0.0, 10.0], lanes=[1.0, 2.0, 1.0, 1.0, 1.5],
        capacity_veh_per_h=[900.0, 3600.0, 900.0, 9999.0, 1200.0],
        jam_density_veh_per_km_per_lane=[130.0, 140.0, 150.0, 160.0, 170.0],
        bpr_alpha=[0.15, 0.2, 0.15, 0.0, 0.15], bpr_beta=[4.0, 5.0, 4.0, 0.0, 4.0],
        road_class=[0, 1, 0, 2, 0], road_class_names=("local", "arterial", "connector"),
        zone_of_node=[0, -1, 1], zone_ids=np.array([5, 6]), no_through=[False, False, True],
    )
    return City.from_raw(raw)


def test_round_trip_digraph():
    city = hand_city(no_through=[20])
    G = city.to_networkx()
    assert type(G) is nx.DiGraph
    assert G.number_of_edges() == city.n_links
    assert G.edges[30, 40]["free_flow_time_s"] == 5.0
    assert_same_city(city, twin.load_city(G))


def test_round_trip_synthetic_grid():
    city = twin.load_city("grid:5x4")
    G = city.to_networkx()
    assert type(G) is nx.DiGraph
    assert_same_city(city, twin.load_city(G))


def test_round_trip_multidigraph_with_parallel_links():
    city = parallel_city()
    G = city.to_networkx()
    assert type(G) is nx.MultiDiGraph
    assert G.number_of_edges("a", "b") == 2
    assert {k for _, _, k in G.edges("a", keys=True)} == {0, 1}  # keyed by link index
    back = twin.load_city(G)
    assert_same_city(city, back)
    assert back.name == "par" and back.source == "hand-made parallel"


def test_round_trip_tntp_with_centroids(shared_data):
    """Anaheim: 38 centroid zones (nodes below <FIRST THRU NODE> 39), lon/lat from GeoJSON."""
    city = twin.load_city(shared_data / "tntp" / "Anaheim" / "Anaheim_net.tntp")
    assert city.no_through.sum() == 38 and city.n_zones == 38 and city.lon is not None
    assert_same_city(city, twin.load_city(city.to_networkx()))


def test_round_trip_tntp_with_zero_time_connectors(shared_data):
    """Chicago-Sketch: zone connectors with free-flow time 0 (speed inf), three link types."""
    city = twin.load_city(shared_data / "tntp" / "Chicago-Sketch" / "ChicagoSketch_net.tntp")
    zero = city.free_flow_time_s == 0
    assert zero.any() and np.isinf(city.free_speed_mps[zero]).all()
    assert_same_city(city, twin.load_city(city.to_networkx()))


def test_round_trip_embedded_city():
    city = twin.load_city("hefei-baohe")
    back = twin.load_city(city.to_networkx())
    assert_same_city(city, back)
    assert back.road_class_names == city.road_class_names
    assert "residential" in city.road_class_names


def test_round_trip_city_without_coordinates():
    city = City.from_raw(_raw(x_m=np.full(3, np.nan), y_m=np.full(3, np.nan)))
    assert_same_city(city, twin.load_city(city.to_networkx()))


def test_round_trip_keeps_empty_and_unsorted_zones():
    city = City.from_raw(_raw(zone_of_node=np.array([0, 0, 2]), zone_ids=np.array([30, 10, 20])))
    assert_same_city(city, twin.load_city(city.to_networkx()))


# --- results file --------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: twin.load_city("hefei-baohe"), parallel_city], ids=["hefei", "str-ids"])
def test_write_network_round_trip(tmp_path, make):
    city = make()
    path = tmp_path / "net.h5"
    with ResultsWriter(path) as writer:
        write_network(writer, city)
    with open_results(path) as res:
        links = res.table("/network/links")
        nodes = res.table("/network/nodes")
        units = res.units("/network/links")
    assert len(links) == city.n_links and len(nodes) == city.n_nodes
    for col in ("length_m", "free_speed_mps", "free_flow_time_s", "lanes", "capacity_veh_per_h",
                "jam_density_veh_per_km_per_lane"):
        assert_array_equal(links[col].to_numpy(), getattr(city, col), err_msg=col)
    assert_array_equal(links["from_idx"].to_numpy(), city.link_from_idx)
    assert_array_equal(links["to_idx"].to_numpy(), city.link_to_idx)
    assert list(links["road_class"]) == [city.road_class_names[c] for c in city.road_class]
    assert units["length_m"] == "m" and units["free_flow_time_s"] == "s"
    assert [str(v) for v in nodes["node_id"]] == [str(v) for v in city.node_ids]
    assert_array_equal(nodes["x_m"].to_numpy(), city.x_m)
    assert_array_equal(nodes["zone_idx"].to_numpy(), city.zone_of_node)
    assert_array_equal(nodes["no_through"].to_numpy(), city.no_through)
    assert_array_equal(nodes["lon_deg"].to_numpy(), city.lon)


# --- determinism ---------------------------------------------------------------------------


def _tntp_source(tmp_path):
    path = tmp_path / "det_net.tntp"
    path.write_text("<NUMBER OF ZONES> 1\n<NUMBER OF NODES> 3\n<FIRST THRU NODE> 2\n<END OF METADATA>\n"
                    "1 2 1000 1 2 ;\n2 3 900 1.5 3 ;\n3 1 800 2 4 ;\n3 2 800 2 4 ;\n")
    return path


@pytest.mark.parametrize("source", ["hefei-baohe", "grid:20x20", "ring:3x8", "tntp"])
def test_loading_twice_is_byte_identical(tmp_path, source):
    if source == "tntp":
        source = _tntp_source(tmp_path)
    a, b = twin.load_city(source), twin.load_city(source)
    for name in ALL_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
            continue
        assert x.dtype == y.dtype, name
        assert x.tobytes() == y.tobytes(), name
    assert a.road_class_names == b.road_class_names
    assert a.meta == b.meta


def test_travel_times_to_is_the_transpose_with_no_through_nodes():
    """Backward searches give the transpose of the forward matrix: exactly on the hand city
    (integer costs, a no-through node), to rounding on a grid with random costs."""
    city = hand_city(no_through=[20])
    assert_array_equal(city.travel_times_to([10, 40, 50]), city.travel_times(city.node_ids, [10, 40, 50]).T)
    grid = twin.load_city("grid:6x6")
    cost = np.random.default_rng(0).uniform(1.0, 50.0, grid.n_links)
    ids = grid.node_ids
    # the same paths summed in the other order: equal to rounding
    np.testing.assert_allclose(grid.travel_times_to(ids[[0, 7, 35]], ids, link_cost_s=cost),
                               grid.travel_times(ids, ids[[0, 7, 35]], link_cost_s=cost).T, rtol=1e-13)


@pytest.mark.parametrize("attr,value,match", [
    ("capacity_veh_per_h", 1e12, r"capacity_veh_per_h = 1000000000000.0; expected at most 1e\+07"),
    ("lanes", 1e9, r"lanes = 1000000000.0; expected at most 1000"),
    ("jam_density_veh_per_km_per_lane", 5000.0, r"jam_density_veh_per_km_per_lane = 5000.0; expected at most 1000"),
    ("free_speed_mps", 1e-300, r"free_flow_time_s = .*at free_speed_mps 1e-300\); expected at most 1e\+07"),
    ("length_m", 1e12, r"length_m = 1000000000000.0; expected at most 1e\+07"),
])
def test_link_values_beyond_physical_ranges_are_refused(attr, value, match):
    """[reliability] #16 items 2 and 7: capacity 1e12 or lanes 1e9 overflowed the traffic's
    counters (or took all memory), a speed of 1e-300 gave a delay of -2.8e298 veh*h."""
    G = nx.DiGraph()
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    base = dict(length_m=100.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0,
                jam_density_veh_per_km_per_lane=150.0)
    G.add_edge(1, 2, **{**base, attr: value})
    G.add_edge(2, 1, **base)
    with pytest.raises(NetworkError, match=match):
        twin.load_city(G)
    G[1][2][attr] = base[attr]
    assert twin.load_city(G).n_links == 2


def test_a_link_holding_more_vehicles_than_the_counters_allow_is_refused():
    G = nx.DiGraph()
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=100.0, y=0.0)
    G.add_edge(1, 2, length_m=9e6, free_speed_mps=30.0, lanes=900, capacity_veh_per_h=1800.0)
    G.add_edge(2, 1, length_m=100.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0)
    with pytest.raises(NetworkError, match=r"lanes x length x jam density = 1.08e\+09 vehicles on one link"):
        twin.load_city(G)
