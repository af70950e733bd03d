"""The evacuation order given by a rule ([coordination] #19 item 4: ``warn evacuation`` with
``[evacuation] order = "rule"``).

The plan is made for ``warning_s`` and every time of it moves with the order, so the checks
are exact against the same scenario with the order at a fixed time (common random numbers:
the same seed draws the same persons, cars and delays):

- a rule firing at ``warning_s`` gives the same run, KPI for KPI and car for car (also among
  other traffic that re-routes);
- a rule firing Δ later moves every departure by exactly Δ, and, with no other traffic, every
  arrival too (the clearance times from the order stay);
- a flood trigger fires at the first check where the water reaches the node, and the order
  comes then;
- walkers leave and vans start with the order;
- a rule that never fires gives no order: nobody is told, the cars read ``cancelled``;
- a snapshot before or after the order resumes exactly.
"""

import numpy as np
import pytest
from twin_small import EVACUATION as FIXED

from twin.errors import ScenarioError
from twin.results import open_results
from twin.runner import from_snapshot, load_scenario, run

RULE = FIXED.replace("warning_s = 3600.0", 'warning_s = 3600.0\norder = "rule"') + """
[[rules]]
name = "order"
when = "time >= {at}"
then = ["warn evacuation"]
"""


def rule(at):
    """The scenario with the order given by a rule at clock time ``at`` (HH:MM)."""
    return RULE.replace("{at}", at)


def _cars(path):
    with open_results(path) as f:
        return f.table("/events/evacuation_cars")


def _evac(kpis):
    return {k: v for k, v in kpis.items() if k.startswith(("evacuation_", "traffic_"))}


@pytest.mark.parametrize("traffic", ["random_trips = 0", "random_trips = 3000\nreroute_share = 0.3"])
def test_a_rule_at_the_planned_time_gives_the_same_run(tmp_path, traffic):
    """Also among other traffic that re-routes: the held cars join the departures as planned."""
    fixed = run(FIXED.replace("random_trips = 0", traffic), seed=5, out=tmp_path / "a.h5")
    ruled = run(rule("01:00").replace("random_trips = 0", traffic), seed=5, out=tmp_path / "b.h5")
    assert _evac(ruled.kpis) == {**_evac(fixed.kpis), "evacuation_order_s": 3600.0}
    assert ruled.kpis["evacuation_order_s"] == 3600.0 and ruled.kpis["rules_fired"] == 1.0
    a, b = _cars(tmp_path / "a.h5"), _cars(tmp_path / "b.h5")
    assert a.equals(b)
    assert ruled.flows["rules"].values["rules"]["action"].tolist() == ["warn evacuation"]


def test_a_later_rule_moves_every_departure_and_arrival_by_the_delay(tmp_path):
    fixed = run(FIXED, seed=6, out=tmp_path / "a.h5")
    late = run(rule("01:30"), seed=6, out=tmp_path / "b.h5")
    a, b = _cars(tmp_path / "a.h5"), _cars(tmp_path / "b.h5")
    assert late.kpis["evacuation_order_s"] == 5400.0
    np.testing.assert_allclose(b["depart_s"], a["depart_s"] + 1800.0, rtol=0, atol=1e-9)
    # no other traffic: the same cars on the same empty roads (arrivals on whole 1 s ticks)
    went = a["arrive_s"].notna().to_numpy()
    np.testing.assert_allclose(b["arrive_s"][went], a["arrive_s"][went] + 1800.0, rtol=0, atol=1.0)
    for pct in (50, 90, 100):
        k = f"evacuation_clearance_{pct}_s"
        assert abs(late.kpis[k] - fixed.kpis[k]) <= 1.0
    assert late.kpis["evacuation_persons_told"] == fixed.kpis["evacuation_persons_told"] == 5000.0
    with open_results(tmp_path / "b.h5") as f:
        t, in_area = f.series("/timeseries/evacuation_area/persons_in_area")
    assert np.all(in_area[t <= 5400.0] == 5000.0) and in_area[-1] < 5000.0


def test_a_flood_trigger_gives_the_order_when_the_water_reaches_the_node(tmp_path):
    from twin.scenarios.hazards import node_depth_mm

    water = """
[[hazards]]
name = "rising"
crs = "city"
polygon = [[-1300.0, -1300.0], [1300.0, -1300.0], [1300.0, 1300.0], [-1300.0, 1300.0]]
times_s = [0.0, 14400.0]
depth_mm = [0.0, 400.0]
facility_depth_mm = 1000.0
"""
    text = RULE.replace('when = "time >= {at}"', 'when = "flood 1 depth_mm >= 150"') + water
    sc = load_scenario(text).replanned(1)
    hz = sc.plans["hazards"][0]
    depth = node_depth_mm(hz, sc.city)
    node = list(np.asarray(sc.city.node_ids)).index(1)
    first = float(hz.times_s[np.flatnonzero(depth[:, node] >= 150.0)[0]])
    expect = float(np.ceil(first / 60.0) * 60.0)
    r = run(text, seed=1, out=tmp_path / "f.h5")
    assert r.kpis["evacuation_order_s"] == expect and 0 < expect < 14400.0
    fixed = run(FIXED + water, seed=1, out=tmp_path / "g.h5")
    np.testing.assert_allclose(_cars(tmp_path / "f.h5")["depart_s"],
                               _cars(tmp_path / "g.h5")["depart_s"] + (expect - 3600.0), rtol=0, atol=1e-9)
    assert "evacuation_order_s" not in fixed.kpis           # (a setting there, not an outcome)


def test_vans_start_with_the_order(tmp_path):
    mixed = ("compliance = 0.8", "compliance = 0.9\nassisted_share = 0.1\nassist_vans = 2\nassist_capacity = 6\n"
             "assist_board_s = 60.0")
    run(FIXED.replace(*mixed), seed=12, out=tmp_path / "a.h5")
    r = run(rule("02:00").replace(*mixed), seed=12, out=tmp_path / "b.h5")
    with open_results(tmp_path / "a.h5") as f:
        a = f.table("/events/evacuation_assisted")
    with open_results(tmp_path / "b.h5") as f:
        b = f.table("/events/evacuation_assisted")
    assert len(a) == len(b) > 300
    assert a["pickup_s"].min() >= 3600.0 and b["pickup_s"].min() >= 7200.0
    # the first load is fetched as long after the order as in the fixed run (empty roads)
    assert b["pickup_s"].min() - 7200.0 == pytest.approx(a["pickup_s"].min() - 3600.0, abs=1.0)
    k = r.kpis
    total = sum(k[f"evacuation_persons_{s}"] for s in ("sheltered", "travelling", "stranded", "no_shelter",
                                                      "stayed", "waiting_assistance"))
    assert total == pytest.approx(5000)


def test_walkers_leave_with_the_order(tmp_path):
    mixed = FIXED.replace("compliance = 0.8", "compliance = 0.9\nwalk_share = 0.3")
    ruled = rule("02:00").replace("compliance = 0.8", "compliance = 0.9\nwalk_share = 0.3")
    run(mixed, seed=3, out=tmp_path / "a.h5")
    r = run(ruled, seed=3, out=tmp_path / "b.h5")
    with open_results(tmp_path / "a.h5") as f:
        wa = f.table("/events/evacuation_walkers")
    with open_results(tmp_path / "b.h5") as f:
        wb = f.table("/events/evacuation_walkers")
    assert len(wa) > 100
    np.testing.assert_allclose(wb["depart_s"], wa["depart_s"] + 3600.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(wb["arrive_s"], wa["arrive_s"] + 3600.0, rtol=0, atol=1e-9)
    k = r.kpis
    total = sum(k[f"evacuation_persons_{s}"] for s in ("sheltered", "travelling", "stranded", "no_shelter", "stayed"))
    assert total == pytest.approx(5000)


def test_a_rule_that_never_fires_gives_no_order(tmp_path):
    r = run(rule("23:00"), seed=5, out=tmp_path / "n.h5")
    k = r.kpis
    assert k["evacuation_persons_told"] == 0 and k["evacuation_cars"] == 0 and np.isnan(k["evacuation_order_s"])
    assert any("no order given" in line for line in r.report_lines())
    planned = load_scenario(rule("23:00")).replanned(5).plans["evacuation"]
    held = int(((planned.cars["shelter_idx"] >= 0) & ~planned.cars["in_place"]).sum())
    tr = r.flows["traffic"].values["traffic"]
    assert held > 1000 and tr.kpis["cancelled"] == held and tr.kpis["not_departed"] == 0
    assert (tr.trips["status"] == "cancelled").sum() == held


@pytest.mark.parametrize("at_s", [3000.0, 7200.0])
def test_a_snapshot_before_or_after_the_order_resumes_exactly(tmp_path, at_s):
    text = rule("01:30")
    out = tmp_path / "s.h5"
    plain = run(text, seed=7, out=out, snapshot_at_s=[at_s])
    again = from_snapshot(f"{out}@{int(at_s // 3600):02d}:{int(at_s % 3600 // 60):02d}")
    assert again.kpis == plain.kpis
    assert plain.kpis["evacuation_order_s"] == 5400.0


@pytest.mark.parametrize("text,match", [
    (FIXED + '[[rules]]\nname = "w"\nwhen = "time >= 01:00"\nthen = ["warn evacuation"]\n',
     "no evacuation whose order a rule gives"),
    (rule("01:00") + 'until = "time >= 02:00"\n', "'warn evacuation' cannot be undone"),
    (rule("01:00").replace('"warn evacuation"', '"warn evacuation now"'), "is not an action"),
    (rule("01:00").replace('order = "rule"', 'order = "soon"'), "soon"),
])
def test_bad_orders_are_named(text, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(text).replanned(1)
