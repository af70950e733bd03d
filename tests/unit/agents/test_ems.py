"""EMS actors and spec: exact timelines, determinism, common random numbers, bad input."""

import numpy as np
import pandas as pd
import pytest

from twin.agents.calls import poisson_arrivals
from twin.agents.dispatch import PreferenceList
from twin.agents.ems import CityModel, run_ems, run_replications
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec,
                            ZoneSpec, pooled_fleet_spec, time_average, travel_time_matrix)
from twin.errors import ScenarioError
from twin.loading import load_city


def one_unit_spec():
    """Station 0, zone 1, hospital 2; every time constant, so the timeline is exact."""
    tt = np.array([[0.0, 300.0, 400.0],
                   [300.0, 0.0, 200.0],
                   [400.0, 200.0, 0.0]])
    return EmsSpec(travel_time_s=tt,
                   zones=(ZoneSpec("z", 1, 1.0),),
                   call_types=(CallTypeSpec("p1", 1, 1.0, Dist("constant", 600.0, 0.0), 1.0),),
                   units=(UnitSpec("a", 0),),
                   hospitals=(HospitalSpec("h", 2, 1, Dist("constant", 1000.0, 0.0), "queue"),),
                   dispatch=DispatchSpec("nearest", (), Dist("constant", 30.0, 0.0), None),
                   service=ServiceSpec("path", turnout=Dist("constant", 60.0, 0.0),
                                       handover=Dist("constant", 300.0, 0.0), return_mode="drive"))


def test_exact_timeline_of_one_unit():
    """Three calls: the second waits in the dispatch queue, the third reaches the unit while
    it is returning (the return is interrupted; travel counted from the hospital)."""
    calls = {"time_s": [0.0, 100.0, 3000.0], "zone_idx": [0, 0, 0]}
    res = run_ems(one_unit_spec(), seed=0, until_s=3600.0, calls=calls)
    ev = list(zip(res.unit_events.time_s, res.unit_events.call_id, res.unit_events.event))
    assert ev == [
        (30.0, 0, "dispatched"), (90.0, 0, "en_route"), (390.0, 0, "on_scene"), (990.0, 0, "transporting"),
        (1190.0, 0, "at_hospital"), (1190.0, 0, "handover"), (1490.0, 0, "available"),
        (1490.0, 1, "dispatched"), (1550.0, 1, "en_route"), (1750.0, 1, "on_scene"), (2350.0, 1, "transporting"),
        (2550.0, 1, "at_hospital"), (2550.0, 1, "handover"), (2850.0, 1, "available"), (2850.0, 1, "returning"),
        (3030.0, 2, "dispatched"), (3090.0, 2, "en_route"), (3290.0, 2, "on_scene"), (3890.0, 2, "transporting"),
        (4090.0, 2, "at_hospital"), (4090.0, 2, "handover"), (4390.0, 2, "available"), (4390.0, 2, "returning"),
        (4790.0, 2, "at_station")]
    c = res.calls
    assert c.response_s.tolist() == [390.0, 1650.0, 290.0]
    assert c.wait_s.tolist() == [0.0, 1360.0, 0.0]
    assert c.travel_s.tolist() == [300.0, 200.0, 200.0]
    assert c.outcome.tolist() == ["completed"] * 3
    assert res.admissions.bed_s.tolist() == [1190.0, 2550.0, 4090.0]
    assert res.admissions.discharge_s.tolist() == [2190.0, 3550.0, 5090.0]
    assert res.end_s == 5090.0
    assert res.kpis["response_p1_within_target"] == pytest.approx(2 / 3)


def test_loss_ward_blocks_and_queue_ward_delays():
    spec = one_unit_spec()
    loss = EmsSpec(**{**spec.__dict__, "hospitals": (HospitalSpec("h", 2, 1, Dist("constant", 5000.0, 0.0),
                                                                  "loss"),)})
    calls = {"time_s": [0.0, 100.0], "zone_idx": [0, 0]}
    res = run_ems(loss, seed=0, until_s=3600.0, calls=calls)
    assert res.admissions.blocked.tolist() == [False, True]
    assert np.isnan(res.calls.bed_s[1]) and res.calls.outcome.tolist() == ["completed"] * 2
    assert res.hospitals.blocking[0] == 0.5


def test_same_seed_gives_identical_tables_and_different_seeds_differ():
    spec = pooled_fleet_spec(3, 2.0, Dist("lognormal", 3600.0, 0.8))
    a = run_ems(spec, seed=5, until_s=50 * 3600.0)
    b = run_ems(spec, seed=5, until_s=50 * 3600.0)
    pd.testing.assert_frame_equal(a.calls, b.calls)
    pd.testing.assert_frame_equal(a.unit_events, b.unit_events)
    assert a.kpis == b.kpis
    c = run_ems(spec, seed=6, until_s=50 * 3600.0)
    assert not a.calls.time_s.equals(c.calls.time_s)


def test_policies_see_common_random_numbers():
    """Two policies run with one seed face the same calls (STYLE §10)."""
    tt = np.array([[0, 0, 100, 500], [0, 0, 400, 120], [100, 400, 0, 0], [500, 120, 0, 0]], dtype=float)
    base = EmsSpec(travel_time_s=tt, zones=(ZoneSpec("w", 2, 1.0), ZoneSpec("e", 3, 1.0)),
                   units=(UnitSpec("u0", 0), UnitSpec("u1", 1)),
                   service=ServiceSpec("busy_time", busy_time=Dist("exponential", 1800.0)))
    near = run_ems(base, seed=3, until_s=100 * 3600.0)
    pref = run_ems(base, seed=3, until_s=100 * 3600.0, policy=PreferenceList([[1, 0], [0, 1]]))
    for col in ("time_s", "zone_idx", "type_idx", "priority"):
        assert near.calls[col].equals(pref.calls[col])
    # the perverse preference sends the far unit first, so travel is longer
    assert pref.calls.travel_s.mean() > near.calls.travel_s.mean()


def test_priority_orders_the_dispatch_queue():
    spec = pooled_fleet_spec(1, 1.0, Dist("constant", 1000.0, 0.0))
    spec = EmsSpec(**{**spec.__dict__, "call_types": (CallTypeSpec("low", 3, 0.5), CallTypeSpec("high", 1, 0.5))})
    calls = {"time_s": [0.0, 10.0, 20.0, 30.0], "zone_idx": [0, 0, 0, 0], "type_idx": [0, 0, 1, 0]}
    res = run_ems(spec, seed=0, until_s=100.0, calls=calls)
    assert res.calls.dispatched_s.tolist() == [0.0, 2000.0, 1000.0, 3000.0]


def test_replications_are_independent_and_reproducible():
    spec = pooled_fleet_spec(2, 1.0, Dist("exponential", 1800.0))
    r1 = run_replications(spec, seed=9, n_replications=3, until_s=20 * 3600.0)
    r2 = run_replications(spec, seed=9, n_replications=2, until_s=20 * 3600.0)
    pd.testing.assert_frame_equal(r1[1].calls, r2[1].calls)
    assert not r1[0].calls.time_s.equals(r1[1].calls.time_s)


def test_thinning_follows_the_hourly_profile():
    rng = np.random.default_rng(1)
    profile = [0.0] * 6 + [2.0] * 12 + [1.0] * 6
    t = poisson_arrivals(rng, 10 / 3600.0, 200 * 86400.0, profile)
    hour = (t // 3600).astype(int) % 24
    counts = np.bincount(hour, minlength=24)
    assert counts[:6].sum() == 0
    # expected 200 days x 20/h in the peak hours; Poisson SD ~ sqrt(48 000) ≈ 219: 5 SD bounds
    assert abs(counts[6:18].sum() - 200 * 12 * 20) < 5 * np.sqrt(200 * 12 * 20)
    assert abs(counts[18:].sum() - 200 * 6 * 10) < 5 * np.sqrt(200 * 6 * 10)


def test_city_travel_times_and_model_agents():
    city = load_city("grid:3x3")
    nodes = city.node_ids[[0, 4, 8]]
    tt = travel_time_matrix(city, nodes)
    np.testing.assert_array_equal(tt, city.travel_times(list(nodes), list(nodes)))
    spec = EmsSpec(travel_time_s=tt, zones=(ZoneSpec("z", 2, 3.0),), units=(UnitSpec("a", 0), UnitSpec("b", 1)),
                   service=ServiceSpec("busy_time", busy_time=Dist("exponential", 600.0)))
    model = CityModel(spec, seed=1, until_s=3600.0)
    assert len(model.agents) == 3          # two units and the dispatch centre are Mesa agents
    end = model.run()
    assert end >= 3600.0 and (model.calls.outcome == 1).all()


def test_time_average_edges():
    assert time_average([0.0, 2.0, 2.0], [1.0, 5.0, 3.0], 0.0, 4.0) == 2.0
    assert time_average([], [], 0.0, 1.0, initial=2.0) == 2.0
    assert time_average([1.0], [4.0], 2.0, 3.0, integral=True) == 4.0


# --------------------------------------------------------------------------------------
# bad input

def good():
    return {"travel_time_s": [[0.0, 60.0], [60.0, 0.0]],
            "zones": [{"name": "z", "location_idx": 1, "arrival_rate_per_h": 2.0}],
            "units": [{"name": "a", "station_idx": 0}],
            "call_types": [{"name": "c", "priority": 1, "share": 1.0, "on_scene": 300,
                            "transport_probability": 0.5}],
            "hospitals": [{"name": "h", "location_idx": 0, "beds": 2,
                           "length_of_stay": {"kind": "lognormal", "mean_s": 3600, "cv": 0.5}}]}


def with_(path, value):
    d = good()
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return d


def test_good_dict_runs():
    res = run_ems(good(), seed=1, until_s=10 * 3600.0)
    assert set(res.calls.outcome) <= {"completed", "lost"}


@pytest.mark.parametrize("data,match", [
    ({**good(), "warmup": 5}, r"unknown key 'warmup' in ems; did you mean 'warmup_s'\?"),
    (with_(["units", 0, "station"], 0), r"unknown key 'station' in ems.units\[0\]; did you mean 'station_idx'"),
    (with_(["call_types", 0, "priority"], 4),
     r"ems.call_types\[0\] \('c'\).priority: found 4; expected an integer in 1..3"),
    (with_(["call_types", 0, "share"], 0.7), r"ems.call_types: shares sum to 0.7; expected 1"),
    (with_(["call_types", 0, "on_scene"], {"kind": "weibull", "mean_s": 5}),
     r"ems.call_types\[0\].on_scene: distribution kind: found 'weibull'; expected one of 'constant', 'exponential'"),
    (with_(["call_types", 0, "on_scene"], {"kind": "lognormal", "mean_s": 5, "cv": 0}),
     r"lognormal distribution cv: found 0; expected a number > 0"),
    (with_(["hospitals", 0, "beds"], -2), r"ems.hospitals\[0\] \('h'\).beds: found -2; expected an integer >= 0"),
    (with_(["hospitals", 0, "mode"], "divert"), r"mode: found 'divert'; expected one of 'loss', 'queue'"),
    (with_(["zones", 0, "location_idx"], 5),
     r"ems.zones\[0\] \('z'\).location_idx: found 5; expected an integer in 0..1"),
    (with_(["travel_time_s"], [[0.0, 1.0]]), r"ems.travel_time_s: shape \(1, 2\); expected a non-empty square"),
    (with_(["travel_time_s"], [[0.0, -1.0], [1.0, 0.0]]), r"ems.travel_time_s\[0\]\[1\]: found -1.0"),
    (with_(["travel_time_s"], [[0.0, float("inf")], [float("inf"), 0.0]]), r"no eligible unit's station can reach"),
    ({**good(), "dispatch": {"policy": "preference", "preference_lists": []}},
     r"ems.dispatch.preference_lists: found 0 lists for 1 zones"),
    ({**good(), "dispatch": {"policy": "closest"}},
     r"ems.dispatch.policy: found 'closest'; expected one of 'nearest', 'preference'"),
    ({**good(), "dispatch": {"policy": "preference", "preference_lists": [[0, 0]]}}, r"expected distinct unit indices"),
    ({**good(), "service": {"mode": "teleport"}},
     r"ems.service.mode: found 'teleport'; expected one of 'path', 'busy_time'"),
    ({**good(), "hospitals": []}, r"calls are transported .* but there are no hospitals"),
    ({**good(), "units": []}, r"ems.units: no units but zones have calls"),
    ({**good(), "hourly_profile": [1.0] * 23}, r"ems.hourly_profile: 23 values; expected 24"),
    ({k: v for k, v in good().items() if k != "travel_time_s"}, r"missing 'travel_time_s'"),
])
def test_spec_errors_say_what_where_and_what_is_accepted(data, match):
    with pytest.raises(ScenarioError, match=match):
        EmsSpec.from_dict(data)


def test_run_errors():
    with pytest.raises(ScenarioError, match=r"seed = -1; expected an integer >= 0"):
        run_ems(good(), seed=-1, until_s=10.0)
    spec = EmsSpec.from_dict({**good(), "warmup_s": 100.0})
    with pytest.raises(ScenarioError, match=r"until_s = 50.0; expected .* > warmup_s = 100.0"):
        run_ems(spec, seed=1, until_s=50.0)
    with pytest.raises(ScenarioError, match=r"calls.time_s: expected ascending"):
        run_ems(spec, seed=1, until_s=500.0, calls={"time_s": [5.0, 1.0], "zone_idx": [0, 0]})
    with pytest.raises(ScenarioError, match=r"calls.zone_idx: expected integers in 0..0"):
        run_ems(spec, seed=1, until_s=500.0, calls={"time_s": [1.0], "zone_idx": [3]})
    with pytest.raises(ScenarioError, match=r"n_replications = 0"):
        run_replications(spec, seed=1, n_replications=0, until_s=500.0)
