"""Units as vehicles of the traffic model ([traffic] ambulances_in_traffic = true).

What is checked: the coupling is exact (each leg a unit drives lasts exactly as long as its
vehicle takes in the traffic model, departing when the leg starts), no vehicle is lost
(traffic trips = background trips + unit legs), the lights-and-sirens rule picks the
emergency vehicles, and the "green wave" claim is testable: in a congested background, with
common random numbers, emergency priority (queue bypass + signal preemption in the kernel)
shortens the emergency legs, never below their free-flow time.
"""

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import run

SCENARIO = """
[city]
name = "grid:6x6"

[run]
until_s = 5400.0
seed = 3

[calls]
rate_per_h = 12.0

[[call_types]]
name = "p1"
priority = 1
share = 0.5
on_scene = 300.0
transport_probability = 1.0

[[call_types]]
name = "p3"
priority = 3
share = 0.5
on_scene = 300.0
transport_probability = 0.0

[[stations]]
name = "corner"
node = 1
ambulances = 3

[[hospitals]]
name = "h"
node = 36
beds = 8

[service]
turnout = 0.0

[traffic]
random_trips = 20000
window_s = 900.0
until_s = 14400.0
ambulances_in_traffic = true
"""


@pytest.fixture(scope="module")
def pair():
    on = run(SCENARIO)
    off = run(SCENARIO, overrides=["traffic.emergency_priority=false"])
    return on, off


def test_each_leg_is_its_vehicle_exactly(pair):
    on, _ = pair
    legs, trips = on.unit_legs, on.traffic.trips
    assert len(legs) > 20
    assert len(trips) == 20000 + len(legs)
    n_background = int((trips["vehicle_class"] == "car").sum()) - int((~legs["emergency"]).sum())
    assert n_background == len(trips) - len(legs)
    veh = trips.loc[legs["vehicle"].to_numpy()]
    # a leg starting between ticks departs at the next tick (dt = 1 s) and ends on arrival
    np.testing.assert_array_equal(veh["depart_s"].to_numpy(), np.ceil(legs["start_s"].to_numpy() - 1e-9))
    np.testing.assert_array_equal(veh["arrive_s"].to_numpy(), legs["end_s"].to_numpy())
    assert (veh["vehicle_class"].astype(str).to_numpy() == np.where(legs["emergency"], "emergency", "car")).all()
    # lights and sirens: responses to priority <= 2 and priority-1 transports; returns never
    assert not legs.loc[legs["leg"] == "return", "emergency"].any()
    assert legs.loc[legs["leg"] == "transport", "emergency"].all()      # every transport here is a p1
    resp = legs[legs["leg"] == "response"]
    assert resp["emergency"].any() and not resp["emergency"].all()      # p1 yes, p3 no
    # the call's response travel time is its unit's driven leg
    calls = on.ems.calls
    done = calls["on_scene_s"].notna().to_numpy()
    assert set(np.round(calls["travel_s"].to_numpy()[done], 6)) <= set(np.round(resp["travel_time_s"], 6))
    k = on.kpis
    assert k["unit_legs"] == len(legs) and k["unit_legs_emergency"] == int(legs["emergency"].sum())


def test_priority_shortens_emergency_legs_in_congestion(pair):
    on, off = pair
    assert on.traffic.kpis["congestion_index"] > 1.5 and off.traffic.kpis["congestion_index"] > 1.5
    a, b = on.ems.calls, off.ems.calls
    assert a["time_s"].equals(b["time_s"])                               # common random numbers: same calls
    em_on = on.unit_legs[on.unit_legs["emergency"]]
    em_off = off.unit_legs[off.unit_legs["emergency"]]
    ratio = em_off["travel_time_s"].mean() / em_on["travel_time_s"].mean()
    assert ratio > 1.2, f"priority should shorten emergency legs in this jam (ratio {ratio:.2f})"
    # never faster than free flow: the vehicle's route at free-flow times is a lower bound
    tr = on.traffic.trips.loc[em_on["vehicle"].to_numpy()]
    assert np.all(tr["travel_time_s"].to_numpy() >= tr["free_flow_time_s"].to_numpy() - 1.0 - 1e-9)
    assert on.kpis["response_mean_s"] < off.kpis["response_mean_s"]


def test_live_time_options_conflict_with_vehicles():
    with pytest.raises(ScenarioError, match="ambulances_in_traffic"):
        run(SCENARIO, overrides=["service.queue_delay_share=0"])
