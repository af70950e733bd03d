"""Unit kinds and multi-unit dispatch: exact timelines, fallback, transport, terminal states."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from twin.agents.ems import run_ems
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec,
                            ZoneSpec)
from twin.errors import ScenarioError
from twin.runner import load_scenario

# Locations: 0 station A, 1 station B, 2 the zone, 3 the hospital.
TT = np.array([[0.0, 100.0, 300.0, 500.0],
               [100.0, 0.0, 200.0, 400.0],
               [300.0, 200.0, 0.0, 250.0],
               [500.0, 400.0, 250.0, 0.0]])
C = Dist("constant", 0.0, 0.0)


def const(s):
    return Dist("constant", s, 0.0)


def fire_spec(**call_type):
    """Fire engines f0 (station A) and f1 (station B), ALS a0 (station A); every time constant."""
    ct = {"name": "fire", "priority": 1, "share": 1.0, "on_scene": const(600.0), "transport_probability": 1.0,
          "requires": {"fire": 2, "als": 1}, **call_type}
    return EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 2, 1.0),), call_types=(CallTypeSpec(**ct),),
                   units=(UnitSpec("f0", 0, None, "fire"), UnitSpec("f1", 1, None, "fire"),
                          UnitSpec("a0", 0, None, "als")),
                   hospitals=(HospitalSpec("h", 3, 2, const(1000.0), "queue"),),
                   service=ServiceSpec("path", turnout=const(60.0), handover=const(300.0)))


def timeline(res):
    ue = res.unit_events
    return list(zip(ue.time_s, ue.unit_idx, ue.call_id, ue.event))


def test_multi_unit_timeline_partial_dispatch_and_only_the_ambulance_transports():
    """Call 0 gets both engines (nearest first) and the ambulance at once; call 1, 100 s
    later, finds no unit and waits. Each unit joins call 1 as it becomes free (partial
    dispatch): f1 first, straight from the scene; the ambulance last, from the hospital.
    Only the ambulance transports. Response ends with the first unit on scene."""
    res = run_ems(fire_spec(), seed=0, until_s=3600.0, calls={"time_s": [0.0, 100.0], "zone_idx": [0, 0]})
    assert timeline(res) == [
        (0.0, 1, 0, "dispatched"), (0.0, 0, 0, "dispatched"), (0.0, 2, 0, "dispatched"),
        (60.0, 1, 0, "en_route"), (60.0, 0, 0, "en_route"), (60.0, 2, 0, "en_route"),
        (260.0, 1, 0, "on_scene"), (360.0, 0, 0, "on_scene"), (360.0, 2, 0, "on_scene"),
        (860.0, 1, 0, "available"), (860.0, 1, 1, "dispatched"), (920.0, 1, 1, "en_route"),
        (920.0, 1, 1, "on_scene"), (960.0, 0, 0, "available"), (960.0, 0, 1, "dispatched"),
        (960.0, 2, 0, "transporting"), (1020.0, 0, 1, "en_route"), (1020.0, 0, 1, "on_scene"),
        (1210.0, 2, 0, "at_hospital"), (1210.0, 2, 0, "handover"), (1510.0, 2, 0, "available"),
        (1510.0, 2, 1, "dispatched"), (1520.0, 1, 1, "available"), (1520.0, 1, 1, "returning"),
        (1570.0, 2, 1, "en_route"), (1620.0, 0, 1, "available"), (1620.0, 0, 1, "returning"),
        (1720.0, 1, 1, "at_station"), (1820.0, 2, 1, "on_scene"), (1920.0, 0, 1, "at_station"),
        (2420.0, 2, 1, "transporting"), (2670.0, 2, 1, "at_hospital"), (2670.0, 2, 1, "handover"),
        (2970.0, 2, 1, "available"), (2970.0, 2, 1, "returning"), (3470.0, 2, 1, "at_station")]
    c = res.calls
    assert c.response_s.tolist() == [260.0, 820.0]
    assert c.unit_idx.tolist() == [1, 1] and c.dispatched_s.tolist() == [0.0, 860.0]
    assert c.travel_s.tolist() == [200.0, 0.0]             # of the first unit on scene
    assert c.available_s.tolist() == [1510.0, 2970.0]      # the last unit free
    assert c.n_units.tolist() == [3, 3] and c.outcome.tolist() == ["completed"] * 2
    a = res.assignments
    assert a[["call_id", "unit_idx", "slot"]].values.tolist() == [[0, 1, 0], [0, 0, 1], [0, 2, 2], [1, 1, 0],
                                                                  [1, 0, 1], [1, 2, 2]]
    assert a.on_scene_s.tolist() == [260.0, 360.0, 360.0, 920.0, 1020.0, 1820.0]
    transporting = res.unit_events[res.unit_events.event == "transporting"]
    assert set(transporting.unit_idx) == {2}
    assert res.units.busy_s.tolist() == [1620.0, 1520.0, 2970.0]
    assert res.units.kind.tolist() == ["fire", "fire", "als"]


def medical_spec(fallback=(("als", "bls"),), max_queue=None):
    """ALS a0 at station A, BLS b0 at station B; medical calls need one ALS."""
    return EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 2, 1.0),),
                   call_types=(CallTypeSpec("p1", 1, 1.0, const(600.0), 0.0, (("als", 1),), fallback),),
                   units=(UnitSpec("a0", 0, None, "als"), UnitSpec("b0", 1, None, "bls")),
                   dispatch=DispatchSpec("nearest", (), C, max_queue),
                   service=ServiceSpec("path", turnout=const(0.0), return_mode="instant"))


def test_fallback_sends_a_bls_when_no_als_is_idle():
    """Call 0 takes the ALS although the BLS is nearer; call 1 finds the ALS busy and gets
    the BLS (fallback); call 2 waits for the first unit free, the BLS at 810 s, which
    leaves from the scene (zero travel)."""
    res = run_ems(medical_spec(), seed=0, until_s=3600.0, calls={"time_s": [0.0, 10.0, 20.0], "zone_idx": [0] * 3})
    assert res.calls.unit_idx.tolist() == [0, 1, 1]
    assert res.calls.dispatched_s.tolist() == [0.0, 10.0, 810.0]
    assert res.calls.response_s.tolist() == [300.0, 200.0, 790.0]


def test_without_fallback_a_call_waits_for_its_kind():
    res = run_ems(medical_spec(fallback=()), seed=0, until_s=3600.0,
                  calls={"time_s": [0.0, 10.0], "zone_idx": [0, 0]})
    assert res.calls.unit_idx.tolist() == [0, 0]
    assert res.calls.dispatched_s.tolist() == [0.0, 900.0]
    assert res.assignments.unit_idx.tolist() == [0, 0]     # the BLS is never sent
    assert res.units.n_dispatches.tolist() == [2, 0]


def test_a_freed_unit_skips_queued_calls_it_cannot_serve():
    """A queued police call does not block a fire engine from a later fire call."""
    spec = EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 2, 1.0),),
                   call_types=(CallTypeSpec("police", 2, 0.5, const(600.0), 0.0, {"police": 1}, {}),
                               CallTypeSpec("fire", 1, 0.5, const(1200.0), 0.0, {"fire": 1}, {})),
                   units=(UnitSpec("p0", 0, None, "police"), UnitSpec("f0", 1, None, "fire")),
                   service=ServiceSpec("path", turnout=const(0.0), return_mode="instant"))
    calls = {"time_s": [0.0, 1.0, 2.0, 3.0], "zone_idx": [0] * 4, "type_idx": [0, 1, 0, 1]}
    res = run_ems(spec, seed=0, until_s=3600.0, calls=calls)
    assert res.calls.unit_idx.tolist() == [0, 1, 0, 1]
    # at 900 s the police car skips the queued fire call (priority 1) for the police call
    assert res.calls.dispatched_s.tolist() == [0.0, 1.0, 900.0, 1401.0]


def test_loss_system_loses_only_calls_that_got_no_unit():
    """max_queue = 0: a fire call that gets one engine of two keeps its open slot queued;
    a call that gets no unit at all is lost."""
    spec = EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 2, 1.0),),
                   call_types=(CallTypeSpec("fire", 1, 1.0, const(600.0), 0.0, {"fire": 2}, {}),),
                   units=(UnitSpec("f0", 0, None, "fire"), UnitSpec("f1", 1, None, "fire")),
                   dispatch=DispatchSpec("nearest", (), C, 0),
                   service=ServiceSpec("path", turnout=const(0.0), return_mode="instant"))
    calls = {"time_s": [0.0, 500.0, 1000.0, 1001.0], "zone_idx": [0] * 4}
    res = run_ems(spec, seed=0, until_s=3600.0, calls=calls)
    c = res.calls
    # call 0 holds f1 until 800 and f0 until 900; call 1 is lost; call 2 gets both;
    # call 3 finds none, but the queue limit counts calls without units only: lost
    assert c.outcome.tolist() == ["completed", "lost", "completed", "lost"]
    assert c.n_units.tolist() == [2, 0, 2, 0]
    small = CallTypeSpec("small", 1, 0.5, const(600.0), 0.0, {"fire": 1}, {})
    spec2 = EmsSpec(**{**spec.__dict__, "call_types": (small, dataclasses.replace(spec.call_types[0], share=0.5))})
    calls = {"time_s": [0.0, 10.0, 20.0], "zone_idx": [0] * 3, "type_idx": [0, 1, 0]}
    res = run_ems(spec2, seed=0, until_s=3600.0, calls=calls)
    # call 1 gets f0 and keeps its second slot queued until f1 is free (800 s); call 2 is lost
    c = res.calls
    assert c.outcome.tolist() == ["completed", "completed", "lost"]
    assert res.assignments[["call_id", "unit_idx", "dispatched_s"]].values.tolist() == [
        [0, 1, 0.0], [1, 0, 10.0], [1, 1, 800.0]]
    assert res.dispatch_queue.queue_length.tolist() == [0, 1, 0]


def mixed_spec(max_queue=None):
    rng = np.random.default_rng(4)
    n = 8
    tt = rng.uniform(60.0, 900.0, (n, n))
    tt = (tt + tt.T) / 2
    np.fill_diagonal(tt, 0.0)
    exp = lambda m: Dist("exponential", m)  # noqa: E731
    types = (CallTypeSpec("medical_p1", 1, 0.3, exp(900.0), 0.8, {"als": 1}),
             CallTypeSpec("medical_p3", 3, 0.2, exp(600.0), 0.3, {"bls": 1}, {"bls": "als"}),
             CallTypeSpec("fire", 1, 0.15, exp(1800.0), 0.2, {"fire": 2, "als": 1}),
             CallTypeSpec("police", 2, 0.2, exp(1200.0), 0.0, {"police": 1}, {}),
             CallTypeSpec("crash", 1, 0.15, exp(1200.0), 0.5, {"police": 1, "als": 1}))
    kinds = ["als"] * 3 + ["bls"] * 2 + ["fire"] * 3 + ["police"] * 2
    units = tuple(UnitSpec(f"u{i}", i % 3, None, k) for i, k in enumerate(kinds))
    return EmsSpec(travel_time_s=tt, zones=tuple(ZoneSpec(f"z{j}", 3 + j, 1.5) for j in range(4)),
                   call_types=types, units=units, hospitals=(HospitalSpec("h", 7, 3, exp(7200.0), "queue"),),
                   dispatch=DispatchSpec("nearest", (), C, max_queue))


@pytest.mark.parametrize("max_queue", [None, 0, 2])
def test_every_call_ends_in_exactly_one_terminal_state(max_queue):
    spec = mixed_spec(max_queue)
    res = run_ems(spec, seed=11, until_s=2 * 86400.0)
    c = res.calls
    assert len(c) > 100
    assert set(c.outcome) <= {"completed", "lost"}
    need = np.array([len(t.slots) for t in spec.call_types])[c.type_idx.to_numpy()]
    done = (c.outcome == "completed").to_numpy()
    assert np.array_equal(c.n_units.to_numpy()[done], need[done])          # every slot was filled
    assert (c.n_units[~done] == 0).all() and c.on_scene_s[~done].isna().all()
    assert (res.assignments.groupby("call_id").size().reindex(c.call_id, fill_value=0).to_numpy()
            == c.n_units.to_numpy()).all()
    assert res.assignments.available_s.notna().all()
    if max_queue is None:
        assert done.all()
    if max_queue == 0:
        assert (~done).any()
    # each unit's events alternate between assignments: dispatched ... available
    ue = res.unit_events
    for _, g in ue.groupby("unit_idx"):
        ev = g.event.tolist()
        assert ev.count("dispatched") == ev.count("available")
    # only ambulances transport; only transported calls' first ambulance slot does
    kind = np.array([u.kind for u in spec.units])
    assert set(kind[ue.unit_idx[ue.event == "transporting"]]) <= {"als", "bls"}
    assert (ue.event == "transporting").sum() == int(c.transport[done].sum())


def test_first_unit_on_scene_ends_the_response():
    res = run_ems(mixed_spec(), seed=3, until_s=86400.0)
    first = res.assignments.groupby("call_id").on_scene_s.min()
    c = res.calls.set_index("call_id")
    np.testing.assert_array_equal(c.on_scene_s.loc[first.index].to_numpy(), first.to_numpy())
    multi = c.n_units > 1
    assert multi.any()
    last = res.assignments.groupby("call_id").available_s.max()
    np.testing.assert_array_equal(c.available_s.loc[last.index].to_numpy(), last.to_numpy())


def test_same_seed_same_records():
    a = run_ems(mixed_spec(), seed=5, until_s=86400.0)
    b = run_ems(mixed_spec(), seed=5, until_s=86400.0)
    pd.testing.assert_frame_equal(a.calls, b.calls)
    pd.testing.assert_frame_equal(a.unit_events, b.unit_events)
    pd.testing.assert_frame_equal(a.assignments, b.assignments)
    c = run_ems(mixed_spec(), seed=6, until_s=86400.0)
    assert not a.calls.time_s.equals(c.calls.time_s)


def test_textbook_mode_sends_every_unit_with_one_busy_draw():
    spec = EmsSpec(**{**fire_spec(transport_probability=0.0).__dict__,
                      "service": ServiceSpec("busy_time", busy_time=const(1000.0))})
    res = run_ems(spec, seed=0, until_s=3600.0, calls={"time_s": [0.0], "zone_idx": [0]})
    assert res.assignments.available_s.tolist() == [1000.0] * 3
    assert res.calls.response_s.tolist() == [200.0] and res.calls.travel_s.tolist() == [200.0]


# --------------------------------------------------------------------------------------
# bad input

def base_dict():
    return {"travel_time_s": TT.tolist(), "zones": [{"name": "z", "location_idx": 2, "arrival_rate_per_h": 1.0}],
            "units": [{"name": "a", "station_idx": 0}, {"name": "f", "station_idx": 1, "kind": "fire"}],
            "call_types": [{"name": "fire", "requires": {"fire": 1, "als": 1}}]}


def changed(**kw):
    d = base_dict()
    for key, value in kw.items():
        table, idx, field = key.split("__")
        d[table][int(idx)][field] = value
    return d


@pytest.mark.parametrize("data,match", [
    (changed(units__1__kind="tank"), r"ems.units\[1\] \('f'\).kind: found 'tank'; expected one of 'als', 'bls', "
                                     r"'fire', 'police'"),
    (changed(call_types__0__requires={"swat": 1}), r"ems.call_types\[0\] \('fire'\).requires: found 'swat'"),
    (changed(call_types__0__requires={"fire": -1}), r"requires.fire: found -1; expected an integer >= 0"),
    (changed(call_types__0__requires={"fire": 0}), r"requires: found \{'fire': 0\}; expected at least one unit"),
    (changed(call_types__0__requires={"fire": 2}),
     r"ems.call_types\[0\] \('fire'\): requires 2 'fire' unit\(s\) but the system has 1 .* no unit set can serve"),
    (changed(call_types__0__requires={"police": 1}), r"call_types\[0\] \('fire'\): requires 1 'police'"),
    (changed(call_types__0__fallback={"als": "als"}), r"fallback.als: found 'als'; expected a different kind"),
    (changed(call_types__0__fallback={"als": "medic"}), r"fallback.als: found 'medic'"),
    (changed(call_types__0__requires={"fire": 1}, call_types__0__transport_probability=0.5),
     r"transport_probability: found 0.5 but the call type requires no ambulance"),
])
def test_kind_errors_say_what_where_and_what_is_accepted(data, match):
    with pytest.raises(ScenarioError, match=match):
        EmsSpec.from_dict(data)


def test_fallback_counts_towards_what_a_call_type_can_get():
    d = changed(units__0__kind="bls")                     # no ALS, but als -> bls by default
    assert EmsSpec.from_dict(d).call_types[0].slots == (("fire", None), ("als", "bls"))
    with pytest.raises(ScenarioError, match=r"requires 1 'als' unit\(s\) but the system has 0"):
        EmsSpec.from_dict(changed(units__0__kind="bls", call_types__0__fallback={}))


# --------------------------------------------------------------------------------------
# scenario files

TOML = """
[city]
name = "grid:6x6"

[run]
until_s = 7200.0
seed = 3

[calls]
rate_per_h = 6.0

[[call_types]]
name = "medical"
share = 0.5
transport_probability = 0.5

[[call_types]]
name = "fire"
share = 0.3
requires = {fire = 2, als = 1}

[[call_types]]
name = "crash"
share = 0.2
requires = {police = 1, bls = 1}
fallback = {bls = "als"}

[[stations]]
name = "north"
node = 1
ambulances = 1
fire = 2

[[stations]]
name = "south"
node = 36
bls = 1
police = 1

[[hospitals]]
name = "h"
node = 18
beds = 10
"""


def write(tmp_path, text):
    path = tmp_path / "units.toml"
    path.write_text(text)
    return path


def test_scenario_maps_unit_kinds_and_requirements(tmp_path):
    sc = load_scenario(write(tmp_path, TOML))
    ems = sc.ems
    assert [(u.name, u.kind) for u in ems.units] == [("north-1", "als"), ("north-fire-1", "fire"),
                                                     ("north-fire-2", "fire"), ("south-bls-1", "bls"),
                                                     ("south-police-1", "police")]
    assert [t.requires for t in ems.call_types] == [(("als", 1),), (("fire", 2), ("als", 1)),
                                                    (("police", 1), ("bls", 1))]
    assert ems.call_types[2].fallback == (("bls", "als"),)
    res = run_ems(ems, seed=1, until_s=7200.0)
    assert set(res.calls.outcome) == {"completed"}
    # a station with no count keeps its one default ambulance
    sc = load_scenario(write(tmp_path, TOML.replace("bls = 1\npolice = 1\n", "")
                             .replace('requires = {police = 1, bls = 1}\nfallback = {bls = "als"}\n', "")))
    assert [u.kind for u in sc.ems.units if u.name.startswith("south")] == ["als"]


@pytest.mark.parametrize("old,new,match", [
    ("fire = 2\n", "tanks = 2\n", r"unknown key 'tanks' in .*\[stations.0\] \('north'\); .*accepted keys: name, "
                                   r"node, ambulances, als, bls, fire, police"),
    ("fire = 2\n", "fire = -1\n", r"\[stations.0\] \('north'\) fire = -1; expected an integer >= 0"),
    ("requires = {fire = 2, als = 1}", "requires = {fire = 2, medic = 1}",
     r"\[call_types.1\] \('fire'\) requires: unknown unit kind 'medic'; expected one of 'als', 'bls', 'fire', "
     r"'police'"),
    ("requires = {fire = 2, als = 1}", "requires = {fire = -2}", r"requires.fire = -2; expected an integer >= 0"),
    ('fallback = {bls = "als"}', 'fallback = {bls = "medic"}', r"fallback.bls = 'medic'; unknown unit kind"),
    ("requires = {fire = 2, als = 1}", "requires = {fire = 3, als = 1}",
     r"call_types\[1\] \('fire'\): requires 3 'fire' unit\(s\) but the system has 2"),
])
def test_scenario_kind_errors(tmp_path, old, new, match):
    assert old in TOML
    with pytest.raises(ScenarioError, match=match):
        load_scenario(write(tmp_path, TOML.replace(old, new, 1)))


def test_a_finished_model_is_freed_with_its_traffic_engine():
    """mesa 3's Agent numbers agents in a class-level dict keyed by model, which kept every
    model (and the traffic engine its travel provider holds) alive for the whole process: a
    year of traffic-coupled days ran out of memory. After a run, nothing holds the model."""
    import gc
    import weakref

    from twin.agents.ems import CityModel
    from twin.runner import run

    sc = load_scenario("hefei_day", overrides=["run.until_s=3600", "traffic.window_start_s=0",
                                               "traffic.random_trips=200"])
    model = CityModel(sc.ems, seed=1, until_s=3600.0)
    model.run()
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    import mesa

    run("hefei_day", overrides=["run.until_s=3600", "traffic.window_start_s=0", "traffic.random_trips=200"])
    gc.collect()
    assert not any(isinstance(k, CityModel) for k in getattr(mesa.Agent, "_ids", {}))
