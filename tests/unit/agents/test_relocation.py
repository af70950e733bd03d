"""Move-up (system-status management): exact timelines, compliance, determinism, effect."""

import dataclasses

import numpy as np
import pytest

from twin.agents.ems import run_ems
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, RelocationSpec, ServiceSpec, UnitSpec,
                            ZoneSpec)
from twin.errors import ScenarioError

# Locations: 0 station A, 1 station B, 2 zone near B.
TT = np.array([[0.0, 600.0, 660.0],
               [600.0, 0.0, 60.0],
               [660.0, 60.0, 0.0]])


def const(s):
    return Dist("constant", s, 0.0)


def spec(table=((1,), (0, 1)), compliance_rate=1.0, relocation=True):
    rel = (RelocationSpec(("als",), table),) if relocation else ()
    return EmsSpec(travel_time_s=TT, zones=(ZoneSpec("z", 2, 1.0),),
                   call_types=(CallTypeSpec("p1", 1, 1.0, const(1000.0)),),
                   units=(UnitSpec("a", 0), UnitSpec("b", 1)),
                   dispatch=DispatchSpec("nearest", (), const(0.0), None, rel, compliance_rate),
                   service=ServiceSpec("path", turnout=const(60.0), handover=const(0.0)))


def timeline(res):
    ue = res.unit_events
    return list(zip(ue.time_s, ue.unit_idx, ue.call_id, ue.event))


def test_move_up_timeline_and_units_end_at_the_table_stations():
    """b (nearest) takes the call at 0; with one unit left the table wants station B, so a
    moves up A -> B (600 s). When b is free at 1120 two are available: the least-total-time
    assignment to [A, B] sends a back to A (600 s) and lets b return to B (0 extra)."""
    res = run_ems(spec(), seed=0, until_s=3600.0, calls={"time_s": [0.0], "zone_idx": [0]})
    assert timeline(res) == [
        (0.0, 1, 0, "dispatched"), (0.0, 0, -1, "relocating"), (60.0, 1, 0, "en_route"),
        (120.0, 1, 0, "on_scene"), (600.0, 0, -1, "at_station"), (1120.0, 1, 0, "available"),
        (1120.0, 0, -1, "relocating"), (1120.0, 1, 0, "returning"), (1180.0, 1, 0, "at_station"),
        (1720.0, 0, -1, "at_station")]
    rel = res.relocations
    assert rel[["unit_idx", "from_location_idx", "to_location_idx"]].values.tolist() == [[0, 0, 1], [0, 1, 0]]
    assert rel["completed"].all() and rel["driven_s"].tolist() == [600.0, 600.0]
    k = res.kpis
    assert (k["relocation_moves"], k["relocation_refused"], k["relocation_driving_s"]) == (2, 0, 1200.0)


def test_a_relocating_unit_is_diverted_to_a_call():
    """A second call at 300 s finds a on its way A -> B: it is dispatched from A (its
    last fixed place), 660 s away, and the move ends as diverted after 300 s driven."""
    res = run_ems(spec(), seed=0, until_s=3600.0, calls={"time_s": [0.0, 300.0], "zone_idx": [0, 0]})
    c = res.calls
    assert c["unit_idx"].tolist() == [1, 0]
    assert c["travel_s"].tolist() == [60.0, 660.0]
    first = res.relocations.iloc[0]
    assert (first["end_s"], first["driven_s"], first["completed"]) == (300.0, 300.0, False)
    assert res.kpis["relocation_diverted"] == 1


def test_compliance_zero_gives_no_moves_and_the_plain_run():
    calls = {"time_s": [0.0, 300.0, 2000.0], "zone_idx": [0, 0, 0]}
    off = run_ems(spec(relocation=False), seed=3, until_s=7200.0, calls=calls)
    zero = run_ems(spec(compliance_rate=0.0), seed=3, until_s=7200.0, calls=calls)
    assert zero.kpis["relocation_moves"] == 0 and zero.kpis["relocation_refused"] > 0
    assert zero.calls.equals(off.calls.assign())
    assert timeline(zero) == timeline(off)


def test_partial_compliance_is_deterministic():
    s = spec(compliance_rate=0.5)
    a = run_ems(s, seed=7, until_s=5 * 86400.0)
    b = run_ems(s, seed=7, until_s=5 * 86400.0)
    assert a.relocations.equals(b.relocations) and a.calls.equals(b.calls)
    assert 0 < a.kpis["relocation_moves"] and 0 < a.kpis["relocation_refused"]


def two_districts(relocation):
    """Districts a (quiet, station A) and b (busy, station B), 900 s apart; one unit each.
    The table keeps B staffed when only one unit is free."""
    tt = np.array([[0.0, 900.0, 60.0, 960.0],
                   [900.0, 0.0, 960.0, 60.0],
                   [60.0, 960.0, 0.0, 900.0],
                   [960.0, 60.0, 900.0, 0.0]])
    rel = (RelocationSpec(("als",), ((1,), (0, 1))),) if relocation else ()
    return EmsSpec(travel_time_s=tt, zones=(ZoneSpec("a", 2, 0.05), ZoneSpec("b", 3, 0.6)),
                   call_types=(CallTypeSpec("p1", 1, 1.0, Dist("exponential", 1800.0)),),
                   units=(UnitSpec("A", 0), UnitSpec("B", 1)),
                   dispatch=DispatchSpec("nearest", (), const(0.0), None, rel),
                   service=ServiceSpec("path", turnout=const(0.0), handover=const(0.0)))


def test_move_up_improves_p1_coverage_where_it_must():
    """Station B empties at every b call (0.6/h, 30 min each); without move-up the next b
    call waits for A's 960 s drive. With it A moves to B while B is away, so more calls are
    reached within 8 minutes. Common random numbers: the same 60 days of calls.

    About a third of b calls find B busy; with move-up those arriving after A's 15-minute
    move are reached from B's post (seed 11: 78 % -> 87 % within target). The margin
    asserted, 5 points, is about five standard deviations of a paired difference over ~1,000
    calls (sd <= sqrt(0.1 / 1000) = 0.01 when at most 10 % of calls change), and a policy
    that did nothing would fail it."""
    off = run_ems(two_districts(False), seed=11, until_s=60 * 86400.0)
    on = run_ems(two_districts(True), seed=11, until_s=60 * 86400.0)
    assert off.kpis["n_calls"] == on.kpis["n_calls"] > 800
    assert on.kpis["response_p1_within_target"] > off.kpis["response_p1_within_target"] + 0.05
    assert on.kpis["response_mean_s"] < off.kpis["response_mean_s"]
    assert on.kpis["relocation_moves"] > 50


def test_bad_tables_are_named():
    with pytest.raises(ScenarioError, match=r"relocation\[0\]\.table\[0\].*location 2 is not a station"):
        spec(table=((2,),))
    with pytest.raises(ScenarioError, match=r"relocation\[0\]\.table\[0\].*at most 1 station"):
        spec(table=((0, 1),))
    with pytest.raises(ScenarioError, match=r"compliance_rate.*\[0, 1\]"):
        spec(compliance_rate=1.5)
    with pytest.raises(ScenarioError, match=r"relocation\[0\]\.kinds.*'ems'|relocation\[0\]\.kinds"):
        dataclasses.replace(spec(), dispatch=DispatchSpec("nearest", relocation=(RelocationSpec(("ems",), ((0,),)),)))
