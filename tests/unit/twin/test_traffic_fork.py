"""A running traffic's demand changed ahead of its clock (twin.traffic_fork).

The references are runs built with the changed demand from the start: cancelling trips
before they depart equals never having them (every other vehicle tick for tick, on a loaded
grid where they queue together), copies equal the same trips appended to the table, and trips
held from the start and released mid-run equal the same trips planned at their released
times.
"""

import numpy as np
import pandas as pd
import pytest

import twin
from twin.errors import DemandError
from twin.traffic import TrafficEngine
from twin.traffic_fork import cancel_trips, copy_trips, hold_trips, pending_trips, release_trips, scale_demand

COLS = ["origin", "destination", "depart_s", "arrive_s", "travel_time_s", "n_links"]


@pytest.fixture(scope="module")
def loaded():
    from twin.demand import random_trips

    city = twin.load_city("grid:5x5")
    return city, pd.DataFrame(random_trips(city, 16000, 3600.0, 5))


def test_cancelled_trips_equal_trips_never_there(loaded):
    city, trips = loaded
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    eng.run_until(1200.0)
    v = pending_trips(eng)
    assert len(v) and (trips["depart_s"].to_numpy()[v] >= 1200.0 - 1.0).all()
    gone = v[np.random.default_rng(1).random(len(v)) < 0.3]
    cancel_trips(eng, gone)
    eng.run()
    res = eng.result()
    ref = TrafficEngine(city, trips.drop(index=gone).reset_index(drop=True), until_s=9000, stop_when_done=False)
    ref.run()
    keep = np.setdiff1d(np.arange(len(trips)), gone)
    a = res.trips.loc[keep, COLS].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, ref.result().trips[COLS])
    assert (res.trips.loc[gone, "status"] == "cancelled").all() and res.trips.loc[gone, "arrive_s"].isna().all()
    k = res.kpis
    assert k["cancelled"] == len(gone) and k["unroutable"] == ref.result().kpis["unroutable"]
    np.testing.assert_array_equal(res.links["outflow_veh"], ref.result().links["outflow_veh"])


def test_copies_equal_the_same_trips_appended(loaded):
    city, trips = loaded
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    eng.run_until(900.0)
    v = pending_trips(eng)[::7]
    new = copy_trips(eng, v)
    assert list(new) == list(range(len(trips), len(trips) + len(v)))
    eng.run()
    ref = TrafficEngine(city, pd.concat([trips, trips.iloc[v]], ignore_index=True), until_s=9000,
                        stop_when_done=False)
    ref.run()
    pd.testing.assert_frame_equal(eng.result().trips[COLS], ref.result().trips[COLS])
    assert "cancelled" not in eng.result().kpis


def test_scale_demand_draws_the_factor_and_leaves_the_past(loaded):
    city, trips = loaded
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    eng.run_until(1800.0)
    before = eng.result().links["outflow_veh"][:6].copy()
    n = len(pending_trips(eng, (0, len(trips))))
    gone, extra = scale_demand(eng, (0, len(trips)), 1.4, np.random.default_rng(3))
    assert gone == 0 and abs(extra - 0.4 * n) < 4 * np.sqrt(0.24 * n)
    assert len(pending_trips(eng)) == n + extra
    gone2, extra2 = scale_demand(eng, (0, len(trips)), 0.5, np.random.default_rng(4))
    assert extra2 == 0 and abs(gone2 - 0.5 * n) < 4 * np.sqrt(0.25 * n)
    eng.run()
    res = eng.result()
    np.testing.assert_array_equal(res.links["outflow_veh"][:6], before)   # the past as it was
    k = res.kpis
    assert k["completed"] + k["en_route"] + k["waiting"] + k["not_departed"] + k["unroutable"] + k["cancelled"] \
        == len(res.trips)
    e2 = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    e2.run_until(1800.0)
    assert scale_demand(e2, (0, len(trips)), 1.0, np.random.default_rng(3)) == (0, 0)


def test_only_trips_not_departed_change(loaded):
    city, trips = loaded
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    eng.run_until(1800.0)
    gone = np.flatnonzero(trips["depart_s"].to_numpy() < 1000.0)[:3]
    with pytest.raises(DemandError, match="not yet departed"):
        cancel_trips(eng, gone)
    with pytest.raises(DemandError, match="not yet departed"):
        copy_trips(eng, gone)
    with pytest.raises(DemandError, match="indices"):
        copy_trips(eng, [10**9])
    with pytest.raises(DemandError, match="factor"):
        scale_demand(eng, None, -1.0, np.random.default_rng(0))


def test_held_trips_released_mid_run_equal_trips_planned_then(loaded):
    city, trips = loaded
    held = np.flatnonzero(np.random.default_rng(2).random(len(trips)) < 0.2)
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    hold_trips(eng, held)
    eng.run_until(1500.0)
    assert (eng.state["status"][held] == 0).all()                  # none departed while held
    later = trips["depart_s"].to_numpy()[held] + 1500.0           # each 1500 s later than planned
    release_trips(eng, held, later)
    eng.run()
    res = eng.result()
    moved = trips.copy()
    moved.loc[held, "depart_s"] = later
    ref = TrafficEngine(city, moved, until_s=9000, stop_when_done=False)
    ref.run()
    pd.testing.assert_frame_equal(res.trips[COLS], ref.result().trips[COLS])
    assert "cancelled" not in res.kpis or res.kpis["cancelled"] == 0
    np.testing.assert_array_equal(res.links["outflow_veh"], ref.result().links["outflow_veh"])


def test_trips_held_to_the_end_read_cancelled_and_bad_releases_are_errors(loaded):
    city, trips = loaded
    eng = TrafficEngine(city, trips, until_s=9000, stop_when_done=False)
    held = np.flatnonzero(trips["depart_s"].to_numpy() > 3000.0)[:50]
    hold_trips(eng, held)
    eng.run_until(600.0)
    with pytest.raises(DemandError, match="only held trips"):
        release_trips(eng, [0], [700.0])
    with pytest.raises(DemandError, match="2 trips and 1 departure"):
        release_trips(eng, held[:2], [700.0])
    with pytest.raises(DemandError, match="finite"):
        release_trips(eng, held[:1], [np.inf])
    release_trips(eng, held[:1], [100.0])                      # before now: departs at the next tick
    assert eng.depart_step[held[0]] == eng.now_step
    eng.run()
    res = eng.result()
    assert res.kpis["cancelled"] == 49 and (res.trips.loc[held[1:], "status"] == "cancelled").all()
    assert res.kpis["not_departed"] == 0 and res.trips.loc[held[0], "arrive_s"] > 600.0
