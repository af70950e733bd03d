"""Scripted incidents (bad input, streams), empirical length of stay, ED triage order."""

import copy

import numpy as np
import pytest

from twin.agents.calls import draw_incident_calls, run_stream
from twin.agents.ems import run_ems
from twin.emergency import (STANDALONE_STREAMS, CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, IncidentSpec,
                            ServiceSpec, UnitSpec, ZoneSpec)
from twin.errors import ScenarioError
from twin.runner import format_kpis, load_scenario, run


# ---- empirical distribution --------------------------------------------------------------

def test_empirical_inverse_cdf_is_exact_and_discrete():
    d = Dist.empirical([7200.0, 3600.0, 86400.0, 3600.0], [1.0, 2.0, 1.0, 4.0])
    # sorted (stably): 3600 (w 2), 3600 (w 4), 7200 (w 1), 86400 (w 1) of 8; cumulative shares
    # 0.25, 0.75, 0.875, 1 (dyadic, so exact in floating point): ppf(u) = x_k for W_{k-1} <= u < W_k
    u = np.array([0.0, 0.74, 0.75, 0.874, 0.875, 0.999999])
    np.testing.assert_array_equal(d.ppf(u), [3600.0, 3600.0, 7200.0, 7200.0, 86400.0, 86400.0])
    assert d.mean_s == (6 * 3600.0 + 7200.0 + 86400.0) / 8
    # equal weights by default; a sample's mean and quantiles are the table's
    e = Dist.parse({"kind": "empirical", "values_s": [100, 200, 300, 400]}, "x")
    x = e.ppf(np.random.default_rng(5).random(200_000))
    assert set(np.unique(x)) == {100.0, 200.0, 300.0, 400.0}
    assert abs(x.mean() - 250.0) < 5 * np.sqrt(12500.0 / 200_000)       # 5 standard errors
    np.testing.assert_array_equal(np.quantile(x, [0.1, 0.3, 0.6, 0.9], method="inverted_cdf"),
                                  [100.0, 200.0, 300.0, 400.0])


@pytest.mark.parametrize("table,match", [
    ({"kind": "empirical"}, "takes 'values_s'"),
    ({"kind": "empirical", "values_s": [], "weights": []}, "non-empty list"),
    ({"kind": "empirical", "values_s": [1, -2]}, r"values_s\[1\]"),
    ({"kind": "empirical", "values_s": [1, 2], "weights": [1]}, "expected 2 weights"),
    ({"kind": "empirical", "values_s": [1, 2], "weights": [0, 0]}, "positive sum"),
    ({"kind": "empirical", "values_s": [1, 2], "mean_s": 5}, "its mean is the table's"),
    ({"kind": "lognormal", "mean_s": 5, "values_s": [1]}, "belong to kind = 'empirical'"),
])
def test_empirical_bad_input_names_the_field(table, match):
    with pytest.raises(ScenarioError, match=match) as exc:
        Dist.parse(table, "hospitals[0].length_of_stay")
    assert "hospitals[0].length_of_stay" in str(exc.value)


def test_empirical_los_in_a_scenario_round_trips():
    table = '{ kind = "empirical", values_s = [3600.0, 7200.0, 86400.0], weights = [5.0, 3.0, 1.0] }'
    sc = load_scenario("hefei_day", overrides=[f"hospitals.0.length_of_stay={table}", "traffic.random_trips=0"])
    los = sc.ems.hospitals[0].length_of_stay
    assert los.kind == "empirical" and los.mean_s == pytest.approx((5 * 3600 + 3 * 7200 + 86400) / 9)
    again = load_scenario(sc.resolved_text)
    assert again.ems.hospitals[0].length_of_stay == los


# ---- ED triage order ---------------------------------------------------------------------

def ed_spec():
    """Three ambulances at the hospital (no travel, no on-scene, turnout or handover time),
    one ED bed in queue mode, constant stays of 1000 s."""
    c = lambda v: Dist("constant", v, 0.0)  # noqa: E731
    return EmsSpec(travel_time_s=np.zeros((1, 1)), zones=(ZoneSpec("z", 0, 1.0),),
                   call_types=(CallTypeSpec("p1", 1, 0.5, c(0.0), 1.0), CallTypeSpec("p3", 3, 0.5, c(0.0), 1.0)),
                   units=tuple(UnitSpec(f"a{i}", 0) for i in range(3)),
                   hospitals=(HospitalSpec("ed", 0, 1, c(1000.0), "queue"),),
                   dispatch=DispatchSpec("nearest", (), c(0.0), None),
                   service=ServiceSpec("path", turnout=c(0.0), handover=c(0.0), return_mode="instant"))


def test_full_ed_serves_a_later_p1_before_an_earlier_p3():
    """P3 at 0 takes the bed; P3 at 10 and P1 at 20 wait; at 1000 the P1 gets it, at 2000 the P3."""
    calls = {"time_s": [0.0, 10.0, 20.0], "zone_idx": [0, 0, 0], "type_idx": [1, 1, 0]}
    res = run_ems(ed_spec(), seed=0, until_s=100.0, calls=calls)
    assert res.calls["bed_s"].tolist() == [0.0, 2000.0, 1000.0]
    assert res.admissions["discharge_s"].tolist() == [1000.0, 3000.0, 2000.0]
    # the same priorities wait FCFS
    same = dict(calls, type_idx=[1, 1, 1])
    assert run_ems(ed_spec(), seed=0, until_s=100.0, calls=same).calls["bed_s"].tolist() == [0.0, 1000.0, 2000.0]


# ---- scripted incidents: bad input and streams ---------------------------------------------

INC = {"name": "bus crash", "node": 8131109677, "time_s": 1800.0, "patients": 12,
       "triage": {"1": 0.2, "2": 0.3, "3": 0.5}}


def scenario_with(**changes):
    sc = load_scenario("hefei_day", overrides=["run.until_s=7200", "traffic.random_trips=0"])
    data = copy.deepcopy(sc.data)
    data["incidents"] = [dict(INC, **changes)]
    return data


@pytest.mark.parametrize("changes,match", [
    ({"node": 1}, r"\[incidents.0\] \('bus crash'\) node = 1: not a node"),
    ({"patients": -3}, r"\[incidents.0\] \('bus crash'\) patients = -3; expected an integer >= 1"),
    ({"triage": {"1": 0.2, "2": 0.3, "3": 0.4}}, r"incidents\[0\] \('bus crash'\).triage: shares .* sum to 0.9"),
    ({"triage": {"4": 1.0}}, r"\('bus crash'\) triage: unknown priority '4'"),
    ({"time_s": 7200.0}, r"\('bus crash'\) time_s = 7200; expected a time before"),
    ({"call_type": "fire"}, r"\('bus crash'\) call_type = 'fire': no such call type"),
])
def test_incident_bad_input_names_the_incident(changes, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(scenario_with(**changes))


def test_incident_spec_errors_name_the_incident():
    c = lambda v: Dist("constant", v, 0.0)  # noqa: E731
    base = dict(travel_time_s=np.zeros((2, 2)), units=(UnitSpec("a", 0),),
                call_types=(CallTypeSpec("t", 1, 1.0, c(0.0)),), hospitals=(HospitalSpec("h", 0, 1),))
    with pytest.raises(ScenarioError, match=r"incidents\[0\] \('mci'\).location_idx: found 5"):
        EmsSpec(**base, incidents=(IncidentSpec("mci", 5, 0.0, 3),))
    with pytest.raises(ScenarioError, match=r"incidents\[0\] \('mci'\).patients: found 0"):
        EmsSpec(**base, incidents=(IncidentSpec("mci", 1, 0.0, 0),))
    spec = EmsSpec(**base, incidents=(IncidentSpec("mci", 1, 500.0, 3),))
    with pytest.raises(ScenarioError, match=r"\('mci'\).time_s = 500; expected a time before until_s = 100"):
        run_ems(spec, seed=0, until_s=100.0)


def test_incident_leaves_other_draws_unchanged_and_is_reported(tmp_path):
    base = run(scenario_with(patients=1), seed=4)          # one patient, for the same location set
    data = scenario_with()
    res = run(data, seed=4, out=tmp_path / "mci.h5")
    n = base.kpis["n_calls"]
    routine = res.ems.calls[res.ems.calls["zone_idx"] >= 0]
    b = base.ems.calls[base.ems.calls["zone_idx"] >= 0]
    for col in ("time_s", "zone_idx", "type_idx", "priority"):
        np.testing.assert_array_equal(routine[col].to_numpy()[:n], b[col].to_numpy()[:n])
    assert res.kpis["n_calls"] == n                         # patients are not routine calls
    inc = res.ems.incidents.iloc[0]
    assert inc["patients"] == 12 and inc["n_transported"] == 12 and inc["first_call_id"] == n
    pat = res.ems.calls.iloc[n:n + 12]
    assert (pat["time_s"] == 1800.0).all() and (pat["outcome"] == "completed").all()
    assert inc["last_on_scene_s"] < inc["scene_clear_s"] < inc["last_at_hospital_s"] < inc["complete_s"]
    assert "incident 'bus crash'" in format_kpis(res) and "12 patients" in format_kpis(res)
    from twin import open_results

    t = open_results(tmp_path / "mci.h5").table("/events/ems_incidents")
    assert t["name"].tolist() == ["bus crash"] and t["patients"].tolist() == [12]
    assert t["last_at_hospital_s"].tolist() == [inc["last_at_hospital_s"]]


def test_standalone_incidents_stream_follows_the_ems_streams():
    assert STANDALONE_STREAMS[-1] == "incidents" and len(STANDALONE_STREAMS) == 6
    child = np.random.SeedSequence(9).spawn(len(STANDALONE_STREAMS))[-1]
    np.testing.assert_array_equal(run_stream(9, "incidents").random(4), np.random.default_rng(child).random(4))
    rep = np.random.SeedSequence(9).spawn(3)[1]
    want = np.random.default_rng(rep.spawn(len(STANDALONE_STREAMS))[-1]).random(4)
    np.testing.assert_array_equal(run_stream(np.random.SeedSequence(9).spawn(3)[1], "incidents").random(4), want)


def test_scenario_incidents_draw_from_the_flows_incidents_stream():
    # In a scenario run the incidents flow owns the stream: its position is the registry's, not the EMS model's.
    from twin.runner import RUN_STREAMS
    from twin.streams import StreamRegistry

    sc = load_scenario(scenario_with())
    res = run(sc, seed=4)
    n = res.kpis["n_calls"]
    (want,) = draw_incident_calls(sc.ems, StreamRegistry(4, RUN_STREAMS).generator("incidents"))
    got = res.ems.calls.iloc[n:n + 12]
    np.testing.assert_array_equal(got["priority"].to_numpy(), want.priority)
    np.testing.assert_array_equal(got["transport"].to_numpy(), want.transport)
    (other,) = draw_incident_calls(sc.ems, StreamRegistry(4, RUN_STREAMS).generator("crashes"))
    assert not np.array_equal(other.u_los, want.u_los)      # another stream gives other dice
