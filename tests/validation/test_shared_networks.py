"""Every network in ../shared/data loads, with the published counts, and routes like scipy.

Counts come from ``../shared/data/README.md`` (TNTP headers and link lines). Travel
times are compared with ``scipy.sparse.csgraph.dijkstra`` on the same link costs; TNTP
centroids (nodes below <FIRST THRU NODE>) are honoured on both sides (see
``reference.scipy_travel_times``). Tolerance: max relative difference < 1e-9, as the
foundation issue requires; any real routing difference is orders of magnitude larger.
"""

import numpy as np
import pytest

import twin
from twin_reference import scipy_travel_times

TNTP = {
    # folder/file: (nodes, links, zones, first thru node)
    "SiouxFalls/SiouxFalls_net.tntp": (24, 76, 24, 1),
    "Anaheim/Anaheim_net.tntp": (416, 914, 38, 39),
    "Chicago-Sketch/ChicagoSketch_net.tntp": (933, 2950, 387, 1),
    "Chicago-Regional/ChicagoRegional_net.tntp": (12982, 39018, 1790, 1791),
    "Berlin-Center/berlin-center_net.tntp": (12981, 28376, 865, 866),
}


def _compare_with_scipy(city, n_origins, seed):
    rng = np.random.default_rng(seed)
    o = rng.choice(city.n_nodes, size=min(n_origins, city.n_nodes), replace=False)
    # include centroids as origins and destinations where there are any
    cent = np.flatnonzero(city.no_through)
    if len(cent):
        o = np.unique(np.concatenate([o, cent[:5]]))
    got = city.travel_times(city.node_ids[o])
    ref = scipy_travel_times(city.n_nodes, city.link_from_idx, city.link_to_idx, city.free_flow_time_s,
                             city.no_through, o)
    assert np.array_equal(np.isinf(got), np.isinf(ref))
    fin = np.isfinite(ref) & (ref > 0)
    rel = np.abs(got[fin] - ref[fin]) / ref[fin]
    assert rel.max(initial=0.0) < 1e-9
    assert np.all(got[ref == 0] == 0)
    return got


@pytest.mark.parametrize("rel", sorted(TNTP))
def test_tntp_counts_and_routing(shared_data, rel):
    n_nodes, n_links, n_zones, first_thru = TNTP[rel]
    city = twin.load_city(shared_data / "tntp" / rel)
    assert (city.n_nodes, city.n_links, city.n_zones) == (n_nodes, n_links, n_zones)
    assert city.no_through.sum() == first_thru - 1
    assert city.has_coordinates
    _compare_with_scipy(city, 40, seed=len(rel))


def test_centroids_are_never_passed_through(shared_data):
    """On Anaheim (first thru node 39), dropping the rule makes some trips shorter: proof it is active."""
    city = twin.load_city(shared_data / "tntp/Anaheim/Anaheim_net.tntp")
    D = city.travel_times(city.node_ids[:38], city.node_ids[:38])
    ref_free = scipy_travel_times(city.n_nodes, city.link_from_idx, city.link_to_idx, city.free_flow_time_s,
                                  np.zeros(city.n_nodes, dtype=bool), np.arange(38), np.arange(38))
    assert np.all(D >= ref_free - 1e-9)
    for o in range(38):
        for d in (5, 20):
            if o != d:
                links = city.path(city.node_ids[o], city.node_ids[d])
                inner = city.link_to_idx[links][:-1]
                assert not city.no_through[inner].any()


def test_sioux_falls_time_unit_and_berlin_duplicates(shared_data):
    sf = twin.load_city(shared_data / "tntp/SiouxFalls/SiouxFalls_net.tntp")
    # Sioux Falls' README: the time unit is 0.01 h; link 1->2 has free-flow time 6 units.
    k = np.flatnonzero((sf.link_from_idx == 0) & (sf.link_to_idx == 1))[0]
    assert sf.free_flow_time_s[k] == pytest.approx(6 * 36.0)
    minutes = twin.load_city(shared_data / "tntp/SiouxFalls/SiouxFalls_net.tntp", time_unit="min")
    assert minutes.free_flow_time_s[k] == pytest.approx(360.0)
    berlin = twin.load_city(shared_data / "tntp/Berlin-Center/berlin-center_net.tntp", duplicates="first")
    assert berlin.n_links == 28376 - 6
    with pytest.raises(twin.NetworkError, match="a second link"):
        twin.load_city(shared_data / "tntp/Berlin-Center/berlin-center_net.tntp", duplicates="error")


@pytest.mark.parametrize("rel,nodes,links,length_m", [
    # osmnx 2.1.1 "drive+service, SCC->simplify" rows of ../shared/data/osm/REFERENCE.md
    ("osm/Hefei-Luogang/map.osm", 148, 278, 98_508.1),
    ("osm/Campo-Grande/campo-grande.osm.gz", 8_018, 24_055, 2_650_130.1),
])
def test_osm_loads_and_routes(shared_data, rel, nodes, links, length_m):
    exact = twin.load_city(shared_data / rel, merge_across_attributes=True)
    assert (exact.n_nodes, exact.n_links) == (nodes, links)
    city = twin.load_city(shared_data / rel)
    assert city.n_links >= links
    # total length is independent of how degree-2 nodes are collapsed; 0.05 m is the
    # rounding of the reference figure.
    assert city.length_m.sum() == pytest.approx(length_m, abs=0.06)
    D = _compare_with_scipy(city, 30, seed=1)
    assert np.isfinite(D).all()  # largest strongly connected component: everything reachable
