"""Tests of the synthetic city generators (``twin.data.synthetic``).

Counts are checked against closed forms written independently of the generator; link
lengths are recomputed from node coordinates; connectivity comes from scipy's
``connected_components`` (code we did not write).
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.sparse.csgraph import connected_components

from twin.data.network import RawNetwork
from twin.data.synthetic import ROAD_CLASSES, grid_city, ring_radial_city
from twin.errors import NetworkError

ARTERIAL = 0
LOCAL = 1

_ARRAY_FIELDS = ("node_ids", "x_m", "y_m", "link_from_idx", "link_to_idx", "length_m",
                 "free_speed_mps", "lanes", "capacity_veh_per_h", "road_class", "zone_of_node",
                 "zone_ids")


def n_strong_components(net):
    adj = sp.csr_matrix((np.ones(net.n_links), (net.link_from_idx, net.link_to_idx)),
                        shape=(net.n_nodes, net.n_nodes))
    n, _ = connected_components(adj, directed=True, connection="strong")
    return n


def euclidean_m(net):
    f, t = net.link_from_idx, net.link_to_idx
    return np.hypot(net.x_m[t] - net.x_m[f], net.y_m[t] - net.y_m[f])


def assert_same_network(a, b):
    for name in _ARRAY_FIELDS:
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.road_class_names == b.road_class_names
    assert a.meta == b.meta


def check_common(net):
    """Invariants every synthetic network satisfies."""
    assert isinstance(net, RawNetwork)
    assert net.node_ids.dtype == np.int64
    assert_array_equal(net.node_ids, np.arange(1, net.n_nodes + 1))
    assert net.link_from_idx.dtype == np.int64 and net.link_to_idx.dtype == np.int64
    assert net.link_from_idx.min() >= 0 and net.link_to_idx.max() < net.n_nodes
    assert not np.any(net.link_from_idx == net.link_to_idx)
    # no duplicate directed links
    key = net.link_from_idx * net.n_nodes + net.link_to_idx
    assert np.unique(key).size == net.n_links
    # every link has its reverse
    rev = net.link_to_idx * net.n_nodes + net.link_from_idx
    assert np.array_equal(np.sort(key), np.sort(rev))
    assert np.all(net.length_m >= 1.0)
    assert net.free_flow_time_s is None and net.lon is None and net.lat is None
    assert net.road_class_names == ("arterial", "local")
    for code, rc in enumerate(ROAD_CLASSES):
        sel = net.road_class == code
        assert_allclose(net.free_speed_mps[sel], rc.free_speed_kmh / 3.6)
        assert_array_equal(net.lanes[sel], rc.lanes)
        assert_array_equal(net.capacity_veh_per_h[sel], rc.capacity_veh_per_h_per_lane * rc.lanes)
    # zones cover all nodes, every zone is used
    assert net.zone_of_node.dtype == np.int32
    assert net.zone_ids.dtype == np.int64
    assert_array_equal(net.zone_ids, np.arange(1, len(net.zone_ids) + 1))
    assert net.zone_of_node.min() >= 0
    assert_array_equal(np.unique(net.zone_of_node), np.arange(len(net.zone_ids)))
    central, peripheral = net.meta["central_zone_ids"], net.meta["peripheral_zone_ids"]
    assert sorted(central + peripheral) == net.zone_ids.tolist()
    assert n_strong_components(net) == 1


# --------------------------------------------------------------------------------------------
# grid
# --------------------------------------------------------------------------------------------

def expected_grid_arterial_links(n_x, n_y, a):
    rows = sum(1 for j in range(n_y) if j % a == 0)
    cols = sum(1 for i in range(n_x) if i % a == 0)
    return 2 * ((n_x - 1) * rows + (n_y - 1) * cols)


@pytest.mark.parametrize("n_x, n_y, a", [(2, 2, 1), (3, 2, 2), (7, 4, 3), (11, 11, 5), (10, 6, 20)])
def test_grid_counts_classes_lengths(n_x, n_y, a):
    net = grid_city(n_x, n_y, spacing_m=250.0, arterial_every=a, n_districts_x=2, n_districts_y=2)
    assert net.n_nodes == n_x * n_y
    assert net.n_links == 2 * (2 * n_x * n_y - n_x - n_y)
    n_art = expected_grid_arterial_links(n_x, n_y, a)
    assert np.count_nonzero(net.road_class == ARTERIAL) == n_art
    assert np.count_nonzero(net.road_class == LOCAL) == net.n_links - n_art
    assert np.all(net.length_m == 250.0)
    assert_allclose(euclidean_m(net), net.length_m, rtol=1e-12)
    check_common(net)


def test_grid_geometry_centred_and_arterials_on_lines():
    net = grid_city(6, 4, spacing_m=100.0, arterial_every=2)
    assert_allclose([net.x_m.mean(), net.y_m.mean()], [0.0, 0.0], atol=1e-9)
    assert_allclose(net.x_m[:6], [-250, -150, -50, 50, 150, 250])
    assert_allclose(net.y_m[::6], [-150, -50, 50, 150])
    # an arterial link runs along a row or column with index % 2 == 0
    i = np.rint(net.x_m / 100.0 + 2.5).astype(int)
    j = np.rint(net.y_m / 100.0 + 1.5).astype(int)
    f, t = net.link_from_idx, net.link_to_idx
    horizontal = j[f] == j[t]
    on_line = np.where(horizontal, j[f] % 2 == 0, i[f] % 2 == 0)
    assert_array_equal(net.road_class == ARTERIAL, on_line)


def test_grid_link_order_documented():
    net = grid_city(3, 2)
    # eastbound block first: (0,0)->(1,0), (1,0)->(2,0), (0,1)->(1,1), (1,1)->(2,1)
    assert net.link_from_idx[:4].tolist() == [0, 1, 3, 4]
    assert net.link_to_idx[:4].tolist() == [1, 2, 4, 5]
    # then westbound, then northbound
    assert net.link_from_idx[4:8].tolist() == [1, 2, 4, 5]
    assert net.link_from_idx[8:11].tolist() == [0, 1, 2]
    assert net.link_to_idx[8:11].tolist() == [3, 4, 5]


def test_grid_districts_blocks_and_central_split():
    net = grid_city(9, 6, n_districts_x=3, n_districts_y=2)
    zone = net.zone_of_node.reshape(6, 9)
    assert_array_equal(zone[0], [0, 0, 0, 1, 1, 1, 2, 2, 2])
    assert_array_equal(zone[3], [3, 3, 3, 4, 4, 4, 5, 5, 5])
    assert_array_equal(np.bincount(net.zone_of_node), [9] * 6)
    # 3x2 blocks: the two middle blocks are nearest the centre
    assert net.meta["central_zone_ids"] == [2, 5]
    assert net.meta["peripheral_zone_ids"] == [1, 3, 4, 6]


def test_grid_3x3_districts_centre_and_edges_central():
    net = grid_city(9, 9, n_districts_x=3, n_districts_y=3, jitter_m=200.0, seed=4)
    # split uses the unjittered lattice: corners are peripheral, the rest central
    assert net.meta["peripheral_zone_ids"] == [1, 3, 7, 9]
    assert net.meta["central_zone_ids"] == [2, 4, 5, 6, 8]


def test_grid_2x2_districts_none_central_by_symmetry():
    net = grid_city(10, 10)
    assert net.meta["central_zone_ids"] == []
    assert net.meta["peripheral_zone_ids"] == [1, 2, 3, 4]


def test_grid_4x4_districts_inner_block_central():
    # distances: 4 inner < 8 edge (= median) < 4 corner; adding the edges would give 12 vs 4,
    # no closer to 8/8 than 4 vs 12, so the tie stays peripheral
    net = grid_city(8, 8, n_districts_x=4, n_districts_y=4)
    assert net.meta["central_zone_ids"] == [6, 7, 10, 11]


def test_grid_jitter_lengths_are_euclidean_and_bounded():
    net = grid_city(20, 15, spacing_m=100.0, jitter_m=50.0, seed=3)
    assert_allclose(net.length_m, np.maximum(euclidean_m(net), 1.0), rtol=1e-12)
    lattice = grid_city(20, 15, spacing_m=100.0)
    assert np.all(np.abs(net.x_m - lattice.x_m) <= 50.0)
    assert np.all(np.abs(net.y_m - lattice.y_m) <= 50.0)
    assert not np.array_equal(net.x_m, lattice.x_m)
    check_common(net)


def test_grid_jitter_floor_of_one_metre():
    # with jitter = spacing / 2 neighbours can nearly meet; lengths never drop below 1 m
    net = grid_city(60, 60, spacing_m=2.0, jitter_m=1.0, seed=1)
    assert net.length_m.min() >= 1.0
    assert np.any(net.length_m == 1.0)


def test_grid_deterministic_and_seed_sensitive():
    a = grid_city(30, 20, jitter_m=40.0, seed=7)
    b = grid_city(30, 20, jitter_m=40.0, seed=7)
    c = grid_city(30, 20, jitter_m=40.0, seed=8)
    assert_same_network(a, b)
    assert not np.array_equal(a.x_m, c.x_m)
    assert not np.array_equal(a.length_m, c.length_m)
    assert_array_equal(a.link_from_idx, c.link_from_idx)  # topology does not depend on seed


def test_grid_does_not_touch_global_rng():
    state = np.random.get_state()[1].copy()
    grid_city(10, 10, jitter_m=10.0, seed=1)
    assert_array_equal(np.random.get_state()[1], state)


def test_grid_meta_and_name():
    net = grid_city(4, 3, spacing_m=200.0, seed=5)
    assert net.name == "grid_4x3"
    assert net.meta["generator"] == "twin.data.synthetic.grid_city"
    assert net.meta["seed"] == 5
    assert net.meta["params"]["spacing_m"] == 200.0
    assert net.meta["road_classes"]["arterial"]["lanes"] == 2.0
    assert grid_city(4, 3, name="demo").name == "demo"


@settings(max_examples=40, deadline=None)
@given(n_x=st.integers(2, 25), n_y=st.integers(2, 25), a=st.integers(1, 8),
       dx=st.integers(1, 4), dy=st.integers(1, 4))
def test_grid_property_counts(n_x, n_y, a, dx, dy):
    dx, dy = min(dx, n_x), min(dy, n_y)
    net = grid_city(n_x, n_y, arterial_every=a, n_districts_x=dx, n_districts_y=dy)
    assert net.n_links == 2 * (2 * n_x * n_y - n_x - n_y)
    assert np.count_nonzero(net.road_class == ARTERIAL) == expected_grid_arterial_links(n_x, n_y, a)
    assert len(net.zone_ids) == dx * dy
    sizes = np.bincount(net.zone_of_node, minlength=dx * dy)
    assert sizes.min() >= (n_x // dx) * (n_y // dy)
    check_common(net)


def test_grid_300x300_builds():
    net = grid_city(300, 300, jitter_m=100.0, seed=11)
    assert net.n_nodes == 90_000
    assert net.n_links == 2 * (2 * 300 * 300 - 600) == 358_800
    assert np.all(net.length_m >= 1.0)
    assert n_strong_components(net) == 1


# --------------------------------------------------------------------------------------------
# ring-radial
# --------------------------------------------------------------------------------------------

def ring_counts(n_rings, n_spokes, lps):
    q = n_spokes * (1 + lps)
    return 1 + n_rings * q, 2 * n_rings * (n_spokes + q)


@pytest.mark.parametrize("n_rings, n_spokes, lps, a", [(1, 3, 0, 1), (2, 4, 1, 2), (5, 8, 3, 2),
                                                       (6, 6, 0, 3), (3, 12, 2, 7)])
def test_ring_counts_classes_lengths(n_rings, n_spokes, lps, a):
    net = ring_radial_city(n_rings, n_spokes, ring_spacing_m=400.0, arterial_every_ring=a,
                           local_per_sector=lps)
    n_nodes, n_links = ring_counts(n_rings, n_spokes, lps)
    assert (net.n_nodes, net.n_links) == (n_nodes, n_links)
    q = n_spokes * (1 + lps)
    n_art = 2 * (n_rings * n_spokes + (n_rings // a) * q)
    assert np.count_nonzero(net.road_class == ARTERIAL) == n_art
    # radial links: the first 2 * n_rings * n_spokes, straight, length = Euclidean distance
    n_radial = 2 * n_rings * n_spokes
    chord = euclidean_m(net)
    assert_allclose(net.length_m[:n_radial], 400.0)
    assert_allclose(chord[:n_radial], net.length_m[:n_radial], rtol=1e-12)
    assert np.all(net.road_class[:n_radial] == ARTERIAL)
    # ring links: arcs R * 2 pi / q, longer than their chord 2 R sin(pi / q)
    r = np.hypot(net.x_m[net.link_from_idx[n_radial:]], net.y_m[net.link_from_idx[n_radial:]])
    assert_allclose(net.length_m[n_radial:], r * 2 * np.pi / q, rtol=1e-12)
    assert_allclose(chord[n_radial:], 2 * r * np.sin(np.pi / q), rtol=1e-9)
    assert np.all(net.length_m[n_radial:] > chord[n_radial:])
    check_common(net)


def test_ring_geometry():
    net = ring_radial_city(3, 4, ring_spacing_m=100.0, local_per_sector=1)
    assert (net.x_m[0], net.y_m[0]) == (0.0, 0.0)
    radius = np.hypot(net.x_m[1:], net.y_m[1:]).reshape(3, 8)
    assert_allclose(radius, np.array([[100.0], [200.0], [300.0]]) * np.ones((1, 8)))
    # ring 1 node 2 (a spoke node) sits at 90 degrees
    assert_allclose([net.x_m[3], net.y_m[3]], [0.0, 100.0], atol=1e-9)
    # spoke nodes are the only ring nodes with radial links
    radial_ends = np.unique(net.link_to_idx[: 2 * 3 * 4])
    spokes = 1 + np.arange(24).reshape(3, 8)[:, ::2].ravel()
    assert_array_equal(radial_ends, np.union1d([0], spokes))


def test_ring_districts_bands_and_sectors():
    net = ring_radial_city(6, 4, local_per_sector=1, n_districts=4)
    # centre band: centre + rings 1..2; inner rings 3..4; outer rings 5..6
    assert len(net.zone_ids) == 1 + 2 * 4
    assert net.meta["zone_band"] == ["centre"] + ["inner"] * 4 + ["outer"] * 4
    zone = net.zone_of_node[1:].reshape(6, 8)
    assert net.zone_of_node[0] == 0
    assert np.all(zone[:2] == 0)
    assert_array_equal(zone[2], [1, 1, 2, 2, 3, 3, 4, 4])
    assert_array_equal(zone[5], [5, 5, 6, 6, 7, 7, 8, 8])
    assert net.meta["central_zone_ids"] == [1, 2, 3, 4, 5]
    assert net.meta["peripheral_zone_ids"] == [6, 7, 8, 9]
    check_common(net)


def test_ring_single_ring_skips_inner_band():
    net = ring_radial_city(1, 5)
    assert net.meta["zone_band"] == ["centre"] + ["outer"] * 5
    assert np.bincount(net.zone_of_node).tolist() == [1] + [1] * 5
    assert net.meta["central_zone_ids"] == [1]
    check_common(net)


def test_ring_deterministic():
    a = ring_radial_city(4, 7, local_per_sector=2, seed=3)
    b = ring_radial_city(4, 7, local_per_sector=2, seed=3)
    assert_same_network(a, b)
    assert a.meta["params"]["n_districts"] == 7
    assert a.name == "ring_radial_4x7"


@settings(max_examples=40, deadline=None)
@given(n_rings=st.integers(1, 9), n_spokes=st.integers(3, 12), lps=st.integers(0, 4),
       a=st.integers(1, 5), sectors=st.integers(1, 12))
def test_ring_property_counts(n_rings, n_spokes, lps, a, sectors):
    sectors = min(sectors, n_spokes * (1 + lps))
    net = ring_radial_city(n_rings, n_spokes, arterial_every_ring=a, local_per_sector=lps,
                           n_districts=sectors)
    assert (net.n_nodes, net.n_links) == ring_counts(n_rings, n_spokes, lps)
    assert len(net.zone_ids) == 1 + sectors * (2 if n_rings >= 2 else 1)
    check_common(net)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"n_x": 1}, r"grid_city: n_x = 1; expected an integer >= 2"),
    ({"n_y": 0}, r"n_y = 0; expected an integer >= 2"),
    ({"n_x": 2.5}, r"n_x = 2\.5; expected an integer >= 2"),
    ({"n_x": 3.0}, r"n_x = 3\.0; expected an integer"),
    ({"n_x": True}, r"n_x = True; expected an integer"),
    ({"n_x": "4"}, r"n_x = '4'; expected an integer"),
    ({"spacing_m": 0.0}, r"spacing_m = 0\.0; expected a finite number >= 1 metres"),
    ({"spacing_m": -5}, r"spacing_m = -5\.0; expected a finite number >= 1 metres"),
    ({"spacing_m": math.nan}, r"spacing_m = nan; expected a finite number"),
    ({"spacing_m": math.inf}, r"spacing_m = inf; expected a finite number"),
    ({"arterial_every": 0}, r"arterial_every = 0; expected an integer >= 1"),
    ({"n_districts_x": 5}, r"n_districts_x = 5; expected an integer in \[1, n_x = 4\]"),
    ({"n_districts_y": 0}, r"n_districts_y = 0; expected an integer in \[1, n_y = 3\]"),
    ({"jitter_m": -1.0}, r"jitter_m = -1\.0; expected a finite number in \[0, spacing_m / 2 = 250\] metres"),
    ({"jitter_m": 251.0}, r"jitter_m = 251\.0; expected a finite number in \[0, spacing_m / 2 = 250\]"),
    ({"seed": -1}, r"seed = -1; expected an integer >= 0"),
    ({"name": 3}, r"name = 3; expected a str or None"),
])
def test_grid_bad_input(kwargs, match):
    args = {"n_x": 4, "n_y": 3, **kwargs}
    with pytest.raises(NetworkError, match=match):
        grid_city(**args)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_rings": 0}, r"ring_radial_city: n_rings = 0; expected an integer >= 1"),
    ({"n_spokes": 2}, r"n_spokes = 2; expected an integer >= 3"),
    ({"n_spokes": 4.5}, r"n_spokes = 4\.5; expected an integer >= 3"),
    ({"ring_spacing_m": 0}, r"ring_spacing_m = 0\.0; expected a finite number >= 1 metres"),
    ({"arterial_every_ring": 0}, r"arterial_every_ring = 0; expected an integer >= 1"),
    ({"local_per_sector": -1}, r"local_per_sector = -1; expected an integer >= 0"),
    ({"n_districts": 9}, r"n_districts = 9; expected an integer in \[1, nodes per ring = "
                         r"n_spokes \* \(1 \+ local_per_sector\) = 8\]"),
    ({"n_districts": 0}, r"n_districts = 0; expected an integer in \[1, "),
    ({"seed": 1.5}, r"seed = 1\.5; expected an integer >= 0"),
])
def test_ring_bad_input(kwargs, match):
    args = {"n_rings": 3, "n_spokes": 4, "local_per_sector": 1, **kwargs}
    with pytest.raises(NetworkError, match=match):
        ring_radial_city(**args)


def test_numpy_integers_accepted():
    net = grid_city(np.int64(3), np.int32(4), spacing_m=np.float32(100.0), seed=np.uint8(2))
    assert net.n_nodes == 12
    assert ring_radial_city(np.int64(2), np.int16(3)).n_nodes == 7


@pytest.mark.parametrize("spec", ["grid:100000x100000", "grid:3163x3163", "ring:100000x100000"])
def test_huge_synthetic_specs_are_refused_before_allocating(spec):
    """A mistyped size is a NetworkError naming the count and the bound (it was a 74.5 GiB
    MemoryError); the largest allowed grid is about 3,162 x 3,162."""
    import twin
    from twin.data.synthetic import MAX_SYNTHETIC_NODES

    with pytest.raises(NetworkError, match=f"at most {MAX_SYNTHETIC_NODES:,}"):
        twin.load_city(spec)
