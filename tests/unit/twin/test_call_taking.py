"""Call-taking centres from ``[[agencies]]`` and ``[coordination]`` ([coordination] #19).

The queueing itself is validated against M/M/1 and Erlang C in
tests/validation/test_coordination.py; here: the scenario tables, the siloed and unified
modes on the same calls (common random numbers), the results file, checkpoints and bad input.
"""

import h5py
import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import from_snapshot, load_scenario, run

JOINT = """
[city]
name = "hefei-baohe"
[run]
until_s = 21600.0
seed = 3
[calls]
locations = "nodes"
rate_per_h = 60.0
[[call_types]]
name = "medical"
share = 0.5
on_scene = 600.0
[[call_types]]
name = "police"
share = 0.5
on_scene = 600.0
[[stations]]
name = "central"
node = 8131109677
ambulances = 30
[dispatch]
processing = { kind = "exponential", mean_s = 60.0 }
[[agencies]]
name = "120"
call_types = ["medical"]
call_takers = 1
[[agencies]]
name = "110"
call_types = ["police"]
call_takers = 1
processing = { kind = "exponential", mean_s = 90.0 }
"""


def test_siloed_and_unified_centres_on_the_same_calls(tmp_path):
    siloed = run(JOINT, out=tmp_path / "s.h5")
    unified = run(JOINT, overrides=["coordination.mode=unified"])
    a, b = siloed.ems, unified.ems
    assert np.array_equal(a.calls["time_s"], b.calls["time_s"])                 # the same calls
    assert list(a.call_centres["centre"]) == ["120", "110"] and list(b.call_centres["centre"]) == ["unified"]
    assert b.call_centres["call_takers"].tolist() == [2.0]
    assert a.call_centres["calls"].sum() == b.call_centres["calls"].sum() == a.kpis["n_calls"]
    assert b.kpis["call_taking_wait_mean_s"] < a.kpis["call_taking_wait_mean_s"]   # pooling
    from twin.results import open_results

    r = open_results(tmp_path / "s.h5")
    assert r.table("/summary/ems_call_centres")["centre"].tolist() == ["120", "110"]
    assert len(r.table("/events/ems_call_taking")) == a.kpis["n_calls"]
    assert any(line.startswith("call taking (wait)") for line in siloed.report_lines())


def _processing(result):
    """Per call: its type and its processing (interview) time, s: ready less answered."""
    t = result.ems.call_taking.set_index("call_id")
    calls = result.ems.calls
    return calls["type_idx"].to_numpy(), calls["ready_s"].to_numpy() - t.loc[calls["call_id"], "answer_s"].to_numpy()


def test_an_agencys_processing_time_replaces_the_dispatch_default():
    """The police's own interviews (exponential, mean 90 s) are the dispatch default's (60 s)
    times 1.5, call by call: the same dice."""
    own = run(JOINT)
    default = run(JOINT.replace('processing = { kind = "exponential", mean_s = 90.0 }', ""))
    (kind, a), (_, b) = _processing(own), _processing(default)
    police = np.asarray(kind) == 1
    assert police.sum() > 50 and np.allclose(a[police], 1.5 * b[police], rtol=1e-9, atol=1e-6)
    assert np.allclose(a[~police], b[~police], rtol=1e-9, atol=1e-6)
    sc = load_scenario(JOINT)
    d = sc.replanned(3).plans["ems"].spec.dispatch
    assert d.centres == (("120", 1), ("110", 1)) and d.centre_of_type == (0, 1)
    assert [p.mean_s for p in d.type_processing] == [60.0, 90.0]
    d = load_scenario(JOINT, overrides=["coordination.mode=unified"]).replanned(3).plans["ems"].spec.dispatch
    assert d.centres == (("unified", 2),) and d.centre_of_type == (0, 0)
    plain = load_scenario(JOINT.split("[[agencies]]")[0]).replanned(3).plans["ems"].spec.dispatch
    assert plain.centres == () and plain.type_processing == ()


def test_a_snapshot_resumes_the_call_takers_exactly(tmp_path):
    out = tmp_path / "j.h5"
    plain = run(JOINT, out=out, snapshot_at_s=[7200.0], overrides=["calls.rate_per_h=100"])
    again = from_snapshot(f"{out}@02:00")
    assert again.kpis == plain.kpis
    assert again.ems.call_taking.equals(plain.ems.call_taking)


@pytest.mark.parametrize("extra,match", [
    ('[[agencies]]\nname = "119"\ncall_types = ["fire"]\n', "no call type 'fire'"),
    ('[[agencies]]\nname = "119"\ncall_types = ["police"]\n', "'police' is answered by agency '110' already"),
    ('[[agencies]]\nname = "110"\ncall_types = []\n', "a second agency named '110'"),
    ('[[agencies]]\nname = "12345"\ncall_types = ["x"]\ncall_takers = 0\n', "call_takers"),
])
def test_bad_agencies_are_clear_errors(extra, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(JOINT + extra).replanned(3)


def test_a_call_type_without_an_agency_is_named():
    text = JOINT.replace('call_types = ["police"]\ncall_takers = 1\n', 'call_types = []\ncall_takers = 1\n')
    with pytest.raises(ScenarioError, match="call type 'police' is answered by no agency; add it"):
        load_scenario(text).replanned(3)
    with pytest.raises(ScenarioError, match="mode"):
        load_scenario(JOINT, overrides=["coordination.mode=merged"])


def test_coordination_without_agencies_is_an_error_not_ignored():
    plain = JOINT.split("[[agencies]]")[0]
    with pytest.raises(ScenarioError, match="no \\[\\[agencies\\]\\]"):
        load_scenario(plain, overrides=["coordination.mode=unified"]).replanned(3)
    load_scenario(plain).replanned(3)                      # (the defaults alone are fine)


def test_a_what_if_from_a_snapshot_may_change_the_call_takers(tmp_path):
    """From 02:00 with three police call takers instead of one: the calls waiting then are
    answered at once, the past stays as it was, and the police wait less; the centres
    themselves (siloed to unified) cannot change."""
    out = tmp_path / "w.h5"
    over = ["calls.rate_per_h=100"]
    plain = run(JOINT, out=out, snapshot_at_s=[7200.0], overrides=over)
    more = from_snapshot(f"{out}@02:00", overrides=over + ["agencies.1.call_takers=3"])
    a, b = plain.ems.call_taking, more.ems.call_taking
    before = a["answer_s"] < 7200.0
    assert before.sum() > 50 and a[before].equals(b[before])
    waiting = a[(a["arrive_s"] < 7200.0) & ~before & (a["centre"] == "110")]     # in arrival order
    got = b.set_index("call_id").loc[waiting["call_id"], "answer_s"].to_numpy()
    assert len(waiting) > 2 and (got[:2] == 7200.0).all() and (got[2:] > 7200.0).all()   # two more call takers
    pa, pb = plain.ems.call_centres.set_index("centre"), more.ems.call_centres.set_index("centre")
    assert pb.loc["110", "wait_mean_s"] < pa.loc["110", "wait_mean_s"]
    with pytest.raises(ScenarioError, match="centres were 120, 110; this scenario has unified"):
        from_snapshot(f"{out}@02:00", overrides=over + ["coordination.mode=unified"])


def test_an_incidents_patients_do_not_queue_for_call_takers():
    text = JOINT + ('[[incidents]]\nname = "bus crash"\nnode = 8131109677\ntime_s = 3600.0\npatients = 10\n'
                    'call_type = "medical"\ntransport_probability = 0.0\n')
    res = run(text)
    calls = res.ems.calls
    patients = calls.loc[calls["zone_idx"] < 0, "call_id"]
    assert len(patients) == 10 and not res.ems.call_taking["call_id"].isin(patients).any()
    assert (calls.loc[calls["zone_idx"] < 0, "ready_s"] >= 3600.0).all()


# A crash needs an ambulance and a police car; the 110 answers it, the 120 owns the ambulances.
OWNED = (JOINT.replace("ambulances = 30\n", "ambulances = 30\npolice = 10\n").replace("share = 0.5", "share = 0.4")
         .replace('call_types = ["medical"]\n', 'call_types = ["medical"]\nunits = ["als", "bls"]\n')
         .replace('call_types = ["police"]\n', 'call_types = ["police", "crash"]\nunits = ["police"]\n')
         .replace('name = "police"\nshare = 0.4\non_scene = 600.0\n',
                  'name = "police"\nshare = 0.4\non_scene = 600.0\nrequires = { police = 1 }\n')
         .replace('[[stations]]', '[[call_types]]\nname = "crash"\nshare = 0.2\non_scene = 600.0\n'
                                  'requires = { als = 1, police = 1 }\n\n[[stations]]'))


def test_a_call_needing_another_agencys_units_is_transferred(tmp_path):
    siloed, unified = run(OWNED, out=tmp_path / "o.h5"), run(OWNED, overrides=["coordination.mode=unified"])
    d = load_scenario(OWNED).replanned(3).plans["ems"].spec.dispatch
    assert d.centre_of_kind == (0, 0, -1, 1) and d.transfer.mean_s == 60.0 and len(d.centre_processing) == 2
    calls = siloed.ems.calls
    crash = calls.loc[calls["type_idx"] == 2, "call_id"]
    t = siloed.ems.call_taking
    assert len(crash) > 50 and set(t.loc[t["transferred"], "call_id"]) == set(crash)
    assert (t.loc[t["transferred"], "centre"] == "120").all()
    assert siloed.ems.kpis["calls_transferred"] == len(crash) and unified.ems.kpis["calls_transferred"] == 0
    assert siloed.ems.kpis["transfer_delay_mean_s"] > 60.0          # the delay, a wait, a second interview
    per = siloed.ems.call_centres.set_index("centre")
    assert per.loc["120", "transfers_in"] == len(crash) and per.loc["110", "transfers_in"] == 0
    a = siloed.ems.assignments.merge(calls[["call_id", "type_idx"]], on="call_id")
    amb = a[(a["type_idx"] == 2) & (a["unit_idx"] < 30)]
    done = t[t["transferred"]].set_index("call_id")["done_s"]
    assert (amb["dispatched_s"].to_numpy() >= done.loc[amb["call_id"]].to_numpy()).all()   # sent by the 120
    # the crashes' full sets and the agencies' first units, written and reported
    from twin.results import open_results

    k = siloed.ems.kpis
    assert k["full_set_calls"] == len(crash) and k["full_set_mean_s"] > unified.ems.kpis["full_set_mean_s"]
    per = open_results(tmp_path / "o.h5").table("/summary/ems_agency_response").set_index("agency")
    assert per.loc["120", "on_scene_mean_s"] == pytest.approx(k["agency_120_on_scene_mean_s"])
    assert per.loc["110", "calls"] == (calls["type_idx"] >= 1).sum()
    assert any(line.startswith("full set on scene") for line in siloed.report_lines())


def test_a_snapshot_resumes_transfers_in_flight_exactly(tmp_path):
    out = tmp_path / "t.h5"
    text = OWNED + '[coordination]\ntransfer = { kind = "constant", mean_s = 300.0 }\n'
    plain = run(text, out=out, snapshot_at_s=[7200.0])
    t = plain.ems.call_taking
    assert ((t["transferred"]) & (t["arrive_s"] > 7200.0) & (t["arrive_s"] < 7500.0)).any()   # one in flight
    again = from_snapshot(f"{out}@02:00")
    assert again.kpis == plain.kpis and again.ems.call_taking.equals(plain.ems.call_taking)


@pytest.mark.parametrize("old,new,match", [
    ('units = ["police"]', 'units = ["police", "als"]', "'als' units are owned by agency '120' already"),
    ('units = ["police"]', 'units = ["polce"]', "no unit kind 'polce'"),
])
def test_bad_unit_ownership_is_a_clear_error(old, new, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(OWNED.replace(old, new)).replanned(3)


# Two police agencies with jurisdictions: the west (districts 1-4, a station in district 4
# with 3 police cars, too few for its calls) and the east (5-9, the central station in
# district 5 with 10).
SPLIT = (OWNED
         .replace('[[agencies]]\nname = "110"\ncall_types = ["police", "crash"]\nunits = ["police"]\n',
                  '[[agencies]]\nname = "110-east"\ncall_types = ["police", "crash"]\nunits = ["police"]\n'
                  'districts = ["5", "6", "7", "8", "9"]\n')
         + '[[agencies]]\nname = "110-west"\ncall_types = ["police", "crash"]\nunits = ["police"]\n'
           'districts = ["1", "2", "3", "4"]\ncall_takers = 1\nprocessing = { kind = "exponential", mean_s = 90.0 }\n'
           '[[stations]]\nname = "west"\nnode = 11227977868\nambulances = 0\npolice = 3\n')


def test_jurisdictions_are_hard_borders_unless_mutual_aid_or_unified():
    sc = load_scenario(SPLIT).replanned(3)
    d = sc.plans["ems"].spec.dispatch
    assert [c[0] for c in d.centres] == ["120", "110-east", "110-west"]
    assert isinstance(d.centre_of_type[1], tuple) and set(d.centre_of_type[1]) == {1, 2}    # by zone
    assert d.agency_of_unit.count(1) == 10 and d.agency_of_unit.count(2) == 3
    hard = run(SPLIT)
    assert hard.ems.kpis["cross_border_units"] == 0 and "mutual_aid_requests" not in hard.ems.kpis
    per = hard.ems.call_centres.set_index("centre")
    assert per.loc["110-west", "calls"] > 20 and per.loc["110-east", "calls"] > 20
    aid = run(SPLIT.replace('districts = ["1", "2", "3", "4"]\n',
                            'districts = ["1", "2", "3", "4"]\nmutual_aid = ["110-east"]\n'))
    assert aid.ems.kpis["mutual_aid_requests"] > 0
    assert aid.ems.kpis["cross_border_units"] >= aid.ems.kpis["mutual_aid_units"] > 0
    unified = run(SPLIT, overrides=["coordination.mode=unified"])
    assert unified.ems.kpis["cross_border_units"] > 0          # the nearest police car, any agency's


@pytest.mark.parametrize("old,new,match", [
    ('districts = ["1", "2", "3", "4"]\n', 'districts = ["1", "2", "3", "4", "5"]\n',
     "'police' is answered by agency '110-east' already in district 5"),
    ('districts = ["1", "2", "3", "4"]\n', 'districts = ["1", "2", "3", "x"]\n', "unknown zone id 'x'"),
    ('districts = ["1", "2", "3", "4"]\n', 'districts = ["1", "2", "3"]\n',
     "call type 'police' is answered by no agency in district\\(s\\) 4"),
    ('districts = ["1", "2", "3", "4"]\n', 'districts = ["1", "2", "3", "4"]\nmutual_aid = ["119"]\n',
     "mutual_aid: '119' is not another agency"),
])
def test_bad_jurisdictions_are_clear_errors(old, new, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(SPLIT.replace(old, new)).replanned(3)


def test_agencies_sharing_a_call_type_keep_their_own_interview_times():
    """110-west interviews for a constant 200 s, 110-east keeps its exponential 90 s: each call
    answered in the west takes 200 s, and each in the east the same time as when both drew
    from the exponential (the same dice per call)."""
    i = SPLIT.index('name = "110-west"')
    text = SPLIT[:i] + SPLIT[i:].replace('processing = { kind = "exponential", mean_s = 90.0 }', "processing = 200.0", 1)
    both, own = run(SPLIT), run(text)

    def interview(res, centre):
        t = res.ems.call_taking
        t = t[(t["centre"] == centre) & ~t["transferred"]]
        return (t["done_s"] - t["answer_s"]).set_axis(t["call_id"])

    west = interview(own, "110-west")
    assert len(west) > 20 and np.allclose(west.to_numpy(), 200.0)
    assert not np.allclose(interview(both, "110-west").to_numpy(), 200.0)
    a, b = interview(both, "110-east"), interview(own, "110-east")
    common = a.index.intersection(b.index)
    assert len(common) > 20 and np.allclose(a.loc[common], b.loc[common])
