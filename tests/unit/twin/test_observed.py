"""The observed state ([state] #21 item 4): hefei_rush at 08:00 written in the observed-state
format, loaded back, agrees with the snapshot in every field the format carries, and the run
from it equals the uninterrupted run; changed observations are taken; contradictions are clear
errors naming the row."""

import copy
import json

import pytest

from twin.cli import main
from twin.errors import ScenarioError
from twin.observed import FORMAT, export_observed, load_observed, observed_state
from twin.runner import from_snapshot, run

AT = 28800.0          # 08:00, the bus crash


@pytest.fixture(scope="module")
def rush(tmp_path_factory):
    d = tmp_path_factory.mktemp("observed")
    plain = run("hefei_rush", out=d / "rush.h5", snapshot_at_s=[AT])
    assert main(["state", f"{d / 'rush.h5'}@08:00", "--out", str(d / "state.json")]) == 0
    doc = json.loads((d / "state.json").read_text())
    return d, plain, doc


def test_the_format_carries_units_beds_open_calls_and_link_speeds(rush):
    d, _, doc = rush
    assert doc["format"] == FORMAT and doc["version"] == 1 and doc["time_s"] == AT and doc["scenario"] == "hefei_rush"
    assert len(doc["units"]) == 6 and {h["hospital"] for h in doc["hospitals"]} == {"north-ed", "west-ed"}
    busy = [u for u in doc["units"] if "call" in u]
    assert busy and all(u["status"] not in ("at_station", "available") for u in busy)
    assert {c["call"] for c in doc["calls"] if c["status"] == "assigned"} == {u["call"] for u in busy}
    assert len(doc["links"]) == 285 and all(r["speed_kmh"] >= 0 for r in doc["links"])
    assert export_observed(f"{d / 'rush.h5'}@08:00", d / "again.json") == doc        # deterministic


def test_loaded_back_it_equals_the_snapshot_and_runs_as_the_uninterrupted_run(rush):
    d, plain, doc = rush
    sc, seed, t, states, report = load_observed(d / "state.json")
    assert t == AT and report["units_moved"] == [] and report["calls_added"] == []
    assert report["links_compared"] == 285 and report["link_speed_mae_kmh"] < 1e-3
    again = observed_state(sc, seed, t, states)
    assert {k: again[k] for k in ("units", "hospitals", "calls", "links")} == \
        {k: doc[k] for k in ("units", "hospitals", "calls", "links")}
    a, b = from_snapshot(d / "state.json"), from_snapshot(d / "state.json")
    assert a.kpis == b.kpis                                  # deterministic for its seed
    assert a.kpis == plain.kpis                              # nothing the format omits was lost here


def test_changed_observations_are_taken(rush):
    d, plain, doc = rush
    obs = copy.deepcopy(doc)
    idle = next(u for u in obs["units"] if u["status"] == "at_station")
    idle["node"] = 11027557490                               # the north station
    obs["hospitals"][0]["ed_beds_occupied"] = 15             # north-ed: more patients than the twin has
    obs["hospitals"][1]["ed_beds_occupied"] = 2              # west-ed: fewer
    obs["hospitals"][0]["ed_waiting"] = 2
    node = obs["calls"][0]["node"]
    obs["calls"].append({"call": "feed-901", "time_s": AT - 60.0, "node": node, "type": "life-threatening",
                         "status": "waiting"})
    sc, seed, t, states, report = load_observed(obs)
    assert report["units_moved"] == [idle["unit"]] and report["calls_added"] == ["feed-901"]
    now = observed_state(sc, seed, t, states)
    moved = next(u for u in now["units"] if u["unit"] == idle["unit"])
    assert moved["node"] == 11027557490 and moved["status"] in ("at_station", "dispatched")
    assert [(h["ed_beds_occupied"], h["ed_waiting"]) for h in now["hospitals"]] == [(15, 2), (2, 0)]
    new = [c for c in now["calls"] if c["time_s"] == AT - 60.0]
    assert len(new) == 1 and new[0]["type"] == "life-threatening"
    assert new[0]["status"] == "assigned"                   # an idle unit takes the new call at once
    res = from_snapshot_doc(d, obs)
    assert res.kpis["n_calls"] == plain.kpis["n_calls"] + 1


def from_snapshot_doc(d, obs):
    (d / "changed.json").write_text(json.dumps(obs))
    return from_snapshot(d / "changed.json")


@pytest.mark.parametrize("change,message", [
    (lambda o: o.update(version=2), "version 2; this twin reads version 1"),
    (lambda o: o.update(format="other"), "not a 'twin-observed-state' document"),
    (lambda o: o.update(time_s=-5), "time_s = -5"),
    (lambda o: o["units"].append({"unit": "airport-1", "status": "at_station"}), r"units\[6\] \('airport-1'\): no unit"),
    (lambda o: o["units"][0].update(status="at_station", call="c1"), "an idle unit has no call"),
    (lambda o: o["units"][0].update(status="parked"), "status = 'parked'"),
    (lambda o: next(u for u in o["units"] if "call" in u).pop("call"), "a busy unit names the call it serves"),
    (lambda o: next(u for u in o["units"] if u["status"] == "at_station").update(node=1), "not an emergency place"),
    (lambda o: o["hospitals"][1].update(ed_beds_occupied=40), "40 patients in 12 ED beds"),
    (lambda o: o["hospitals"][0].update(ed_beds_occupied=-1), "ed_beds_occupied = -1"),
    (lambda o: o["calls"].append({"call": "x", "time_s": 100.0, "node": 1, "type": "meteor", "status": "waiting"}),
     "type = 'meteor'"),
    (lambda o: o["calls"].append({"call": "x", "time_s": 100.0, "node": o["calls"][0]["node"],
                                  "type": "urgent", "status": "assigned"}), "no unit in the units list serves it"),
    (lambda o: o["links"][0].update(speed_kmh="fast"), r"links\[0\]: speed_kmh = 'fast'"),
    (lambda o: next(u for u in o["units"] if "call" in u).update(status="handover"),
     "takes a busy unit as the twin has it"),                # (this version's limit, named)
])
def test_contradictions_and_bad_rows_are_clear_errors(rush, change, message):
    _, _, doc = rush
    obs = copy.deepcopy(doc)
    change(obs)
    with pytest.raises(ScenarioError, match=message):
        load_observed(obs)


def test_a_what_if_from_an_observed_state_changes_only_what_follows(rush):
    d, plain, doc = rush
    more = from_snapshot(d / "state.json", overrides=["stations.0.ambulances=4"])   # from 08:00 on
    assert more.kpis["response_p1_mean_s"] < plain.kpis["response_p1_mean_s"]
    ue_a, ue_b = plain.ems.unit_events, more.ems.unit_events
    name_a, name_b = plain.ems.units["name"].to_numpy(), more.ems.units["name"].to_numpy()
    before_a = [(t, name_a[u], c, e) for t, u, c, e in ue_a.itertuples(index=False) if t < AT]
    before_b = [(t, name_b[u], c, e) for t, u, c, e in ue_b.itertuples(index=False) if t < AT]
    assert before_a == before_b


def test_observed_state_of_a_run_with_its_own_seed_loads_back(tmp_path):
    run("hefei_rush", out=tmp_path / "s7.h5", snapshot_at_s=[AT], seed=7)
    doc = export_observed(f"{tmp_path / 's7.h5'}@08:00", tmp_path / "s7.json")
    assert doc["seed"] == 7
    sc, seed, t, states, _ = load_observed(tmp_path / "s7.json")
    assert seed == 7 and observed_state(sc, seed, t, states)["units"] == doc["units"]
