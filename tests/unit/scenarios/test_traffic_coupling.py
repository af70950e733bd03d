"""The traffic flow's coupling with EMS: live travel times on the units' legs, priority, common random numbers."""

import numpy as np
from twin_small import SMALL

from twin.runner import run


def test_congestion_makes_responses_no_shorter_with_common_random_numbers():
    """Units at one corner station, instant return: a call dispatched the moment it is ready
    found an idle unit, hence at the station. With common random numbers (same calls, same
    dice) each such call's travel time on live link costs (free flow + queue delay >= free
    flow) is at least its static time, and a heavy background makes responses longer."""
    over = ["stations.0.ambulances=3", "calls.rate_per_h=10"]
    static = run(SMALL, overrides=over + ["traffic.random_trips=0"])
    coupled = run(SMALL, overrides=over + ["traffic.random_trips=20000", "traffic.window_s=900"])
    assert static.traffic is None and coupled.traffic is not None
    assert coupled.traffic.kpis["congestion_index"] > 2.0                 # the background is congested
    a, b = static.ems.calls, coupled.ems.calls
    assert a["time_s"].equals(b["time_s"]) and a["zone_idx"].equals(b["zone_idx"])    # same calls
    tt = static.scenario.ems.travel_time_s
    station = static.scenario.ems.units[0].station_idx
    zloc = np.array([z.location_idx for z in static.scenario.ems.zones])
    free = tt[station, zloc[a["zone_idx"].to_numpy()]]
    for calls in (a, b):
        at_station = (calls["wait_s"] == 0).to_numpy()
        assert at_station.sum() >= 3
        assert np.all(calls["travel_s"].to_numpy()[at_station] >= free[at_station] - 1e-9)
    at_station = (a["wait_s"] == 0).to_numpy()
    np.testing.assert_allclose(a["travel_s"].to_numpy()[at_station], free[at_station])
    assert b["travel_s"].mean() > a["travel_s"].mean()
    assert coupled.kpis["response_mean_s"] > static.kpis["response_mean_s"]
    assert coupled.n_syncs == 3600 // 60 + 1


def test_priority_removes_the_queue_delay_green_wave():
    """Legs timed at their start (ambulances_in_traffic = false): with full priority
    (queue_delay_share = 0: queue bypass and signal preemption) an ambulance's leg costs its
    free-flow time whatever the congestion; without it the legs dispatched from the station
    are longer. Common random numbers: same calls, same dice."""
    over = ["stations.0.ambulances=3", "calls.rate_per_h=10", "traffic.random_trips=20000",
            "traffic.window_s=900", "traffic.ambulances_in_traffic=false"]
    stuck = run(SMALL, overrides=over + ["service.queue_delay_share=1"])
    green = run(SMALL, overrides=over + ["service.queue_delay_share=0"])
    a, b = stuck.ems.calls, green.ems.calls
    assert a["time_s"].equals(b["time_s"])
    tt = green.scenario.ems.travel_time_s
    station = green.scenario.ems.units[0].station_idx
    zloc = np.array([z.location_idx for z in green.scenario.ems.zones])
    at_station = (b["wait_s"] == 0).to_numpy()
    free = tt[station, zloc[b["zone_idx"].to_numpy()]]
    np.testing.assert_allclose(b["travel_s"].to_numpy()[at_station], free[at_station])   # bypass: free flow
    assert a["travel_s"].mean() > b["travel_s"].mean()
    assert stuck.kpis["response_mean_s"] > green.kpis["response_mean_s"]
