"""[reliability] #16 item 6: each loader crash its reproducer found is a NetworkError now.

The fuzz tests (tests/property/test_fuzz_files.py) search for such inputs at random; these are
the reproducers themselves, so each stays fixed: a CSV network with a header-only nodes file or
a short row, node ids of 2**63 (CSV, networkx, OpenStreetMap), unhashable or mixed-type edge
attributes, a TNTP ``<NUMBER OF NODES>`` of ``inf`` or ``1e10`` (an OverflowError and a 74.5 GiB
MemoryError before), and ``lanes`` / ``maxspeed`` of 400 digits (tests/unit/data/test_osm.py).
"""

import networkx as nx
import pytest

import twin
from twin.errors import NetworkError

BIG = str(2 ** 63)
LINKS = "from_node,to_node,length_m,speed_mps,lanes\n1,2,100,10,1\n2,1,100,10,1\n"
NODES = "node_id,x_m,y_m\n1,0,0\n2,100,0\n"


def _csv(tmp_path, nodes, links=LINKS):
    (tmp_path / "x_nodes.csv").write_text(nodes)
    (tmp_path / "x_links.csv").write_text(links)
    return tmp_path / "x_links.csv"


@pytest.mark.parametrize("nodes, links, match", [
    ("node_id,x_m,y_m\n", LINKS, "no node rows after the header"),
    ("node_id,x_m,y_m\n1,0\n2,100,0\n", LINKS, r"line 2: column 'y_m' = ''; expected a number"),
    (NODES.replace("2,100", BIG + ",100"), LINKS.replace("\n1,2,", f"\n1,{BIG},").replace("\n2,1,", f"\n{BIG},1,"),
     r"line 3: column 'node_id' = 9223372036854775808; expected an integer id in"),
])
def test_csv_network(tmp_path, nodes, links, match):
    with pytest.raises(NetworkError, match=match):
        twin.load_city(_csv(tmp_path, nodes, links))
    assert twin.load_city(_csv(tmp_path, NODES)).n_nodes == 2          # (the same files, well formed)


@pytest.mark.parametrize("count", ["inf", "1e10", "10000000000", "2.5"])
def test_tntp_counts(tmp_path, count):
    path = tmp_path / "t_net.tntp"
    path.write_text(f"<NUMBER OF ZONES> 1\n<NUMBER OF NODES> {count}\n<FIRST THRU NODE> 1\n<NUMBER OF LINKS> 1\n"
                    f"<END OF METADATA>\n~\n1 2 1000 1 10 1 1 0 0 1 ;\n")
    with pytest.raises(NetworkError, match=rf"<NUMBER OF NODES> {count}'; expected a whole number of at most"):
        twin.load_city(path)


def _graph(a=1, b=2, **edge):
    g = nx.DiGraph()
    g.add_node(a, x=0.0, y=0.0)
    g.add_node(b, x=100.0, y=0.0)
    e = {**dict(length_m=100.0, free_speed_mps=10.0, lanes=1.0, capacity_veh_per_h=1800.0), **edge}
    g.add_edge(a, b, **e)
    g.add_edge(b, a, **e)
    return g


@pytest.mark.parametrize("graph, match", [
    (_graph(2 ** 63, 2 ** 63 + 1), "node id 9223372036854775808 is outside the 64-bit integer range"),
    (_graph(lanes=[1, 2]), r"attribute 'lanes' = \[1, 2\]; expected a number"),
    (_graph(length_m="abc"), "attribute 'length_m' = 'abc'; expected a number"),
])
def test_networkx_graph(graph, match):
    with pytest.raises(NetworkError, match=match):
        twin.load_city(graph)


def test_osm_node_id_beyond_64_bits(tmp_path):
    path = tmp_path / "a.osm"
    path.write_text(f'<?xml version="1.0"?><osm version="0.6"><node id="1" lat="31.80" lon="117.20"/>'
                    f'<node id="{BIG}" lat="31.81" lon="117.21"/><node id="3" lat="31.82" lon="117.20"/>'
                    f'<way id="10"><nd ref="1"/><nd ref="{BIG}"/><nd ref="3"/><tag k="highway" v="primary"/></way>'
                    f'</osm>')
    with pytest.raises(NetworkError, match="node id '9223372036854775808' is outside the 64-bit integer range"):
        twin.load_city(path)
