"""The network-events flow ([[events]]): closures and capacity changes reach the traffic at their
times through the LinkControl port, are written to the results file, and bad events are named."""

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.results import open_results
from twin.runner import load_scenario, run

TRAFFIC = SMALL.replace("until_s = 3600.0", "until_s = 7200.0") + """
[traffic]
random_trips = 3000
window_s = 3600.0
"""

EVENTS = TRAFFIC + """
[[events]]
name = "bridge"
time_s = 600.0
action = "close"
from_node = 15
to_node = 16
both_directions = true

[[events]]
time_s = 1800.0
action = "capacity"
from_node = 8
to_node = 9
capacity_veh_per_h = 120
"""


def _links(city, a, b):
    return [k for k in range(city.n_links)
            if city.node_ids[city.link_from_idx[k]] == a and city.node_ids[city.link_to_idx[k]] == b]


def test_events_act_on_the_traffic_at_their_times(tmp_path):
    out = tmp_path / "ev.h5"
    res = run(EVENTS, seed=2, out=out)
    city = load_scenario(EVENTS).city
    links = res.traffic.links
    t = links["time_s"]
    interval = t[1] - t[0]
    closed = _links(city, 15, 16) + _links(city, 16, 15)
    before, after = t + interval <= 600.0, t >= 600.0
    assert links["inflow_veh"][before][:, closed].sum() > 0            # used before the closure ...
    assert links["inflow_veh"][after][:, closed].sum() == 0            # ... and never after it
    cap = _links(city, 8, 9)
    late = t >= 1800.0
    assert np.all(links["outflow_veh"][late][:, cap] <= 120.0 * interval / 3600.0 + 1.0)
    trips = res.traffic.trips
    assert (trips["status"] == "arrived").mean() > 0.99                 # the traffic drove around the closure
    assert res.kpis["network_events"] == 2.0
    with open_results(out) as f:
        table = f.table("/events/network_events")
    assert table["action"].tolist() == ["close", "close", "capacity"]
    assert table["name"].tolist() == ["bridge", "bridge", "event1"]          # unnamed items get <table>N
    assert sorted(zip(table["from_node"], table["to_node"]))[:2] == [(8, 9), (15, 16)]
    assert table["capacity_veh_per_h"].tolist()[2] == 120.0


def test_same_run_without_events_differs_only_by_them():
    plain = run(TRAFFIC, seed=2)
    with_events = run(EVENTS, seed=2)
    assert plain.traffic.kpis["vht_veh_h"] != with_events.traffic.kpis["vht_veh_h"]
    first = plain.traffic.links["inflow_veh"][0]
    np.testing.assert_array_equal(first, with_events.traffic.links["inflow_veh"][0])   # identical before 600 s


@pytest.mark.parametrize("event,match", [
    ('from_node = 999\nto_node = 16', r"\[events.0\] \('event0'\) from_node = 999: not a node of city"),
    ('from_node = 1\nto_node = 36', "no link from node 1 to node 36"),
    ('from_node = 15\nto_node = 16\naction = "capacity"', "action = 'capacity' needs the new saturation flow"),
    ('from_node = 15\nto_node = 16\ncapacity_veh_per_h = 10.0', "belongs to action = 'capacity' only"),
    ('from_node = 15\nto_node = 16\ntime_s = 9000.0', "time_s = 9000; expected a time before"),
    ('from_node = 15\nto_node = 16\naction = "shut"', "shut"),
])
def test_bad_events_are_named(event, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(TRAFFIC + "\n[[events]]\n" + event + "\n")


def test_events_without_traffic_say_what_to_add():
    with pytest.raises(ScenarioError, match=r"\[\[events\]\] act on the links the traffic drives on.*add a \[traffic\]"):
        run(SMALL + '\n[[events]]\nfrom_node = 15\nto_node = 16\n', seed=1)


def test_a_speed_event_slows_the_vehicles_entering_after_it():
    """600 m at 10 m/s: 60 s; from t = 50 s the link's free speed is 5 m/s: a vehicle entering at
    0 keeps its 60 s, one entering at 100 s takes 120 s (whole ticks of 1 s)."""
    import networkx as nx

    import twin

    G = nx.DiGraph()
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=600.0, y=0.0)
    G.add_edge(1, 2, length_m=600.0, free_speed_mps=10.0, lanes=1, capacity_veh_per_h=1800.0)
    city = twin.load_city(G)
    res = twin.simulate_traffic(city, {"origin": [1, 1], "destination": [2, 2], "depart_s": [0.0, 100.0]},
                                until_s=600, events=[{"time_s": 50.0, "action": "speed", "link": 0,
                                                      "free_speed_mps": 5.0}])
    assert res.trips["travel_time_s"].tolist() == [60.0, 120.0]
    with pytest.raises(twin.errors.DemandError, match="free_speed_mps = None; expected a speed > 0"):
        twin.simulate_traffic(city, {"origin": [1], "destination": [2], "depart_s": [0.0]}, until_s=60,
                              events=[{"time_s": 5.0, "action": "speed", "link": 0}])
