"""The rules flow ([coordination] #19): ``[[rules]]`` on the simulated state.

Each trigger is checked against the state it reads, recomputed here from the run's own
tables: a rule fires at the first multiple of its ``check_every_s`` at which its condition
holds (the call count of the last hour from the calls table, a hospital's occupancy from its
step series, a flood's depth from the hazard plan, the clock); a trigger that does not depend
on chance fires at the same time for every seed, and one that never holds never fires.
"""

from importlib import resources

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import from_snapshot, load_scenario, run


def builtin(name, rules):
    """A built-in scenario with these rules instead of its own."""
    text = resources.files("twin.scenarios").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return text.split("\n[[rules]]")[0] + "\n" + rules


def first_check(times_s, ok, step=60.0):
    """The first multiple of ``step`` among ``times_s`` where ``ok`` holds, or None."""
    hits = [t for t, o in zip(times_s, ok) if o and t % step == 0]
    return hits[0] if hits else None


def fired(result, rule_idx, how="do"):
    t = result.rules
    return t.loc[(t["rule_idx"] == rule_idx) & (t["how"] == how), "time_s"].tolist()


CLOCK = """
[[rules]]
name = "at two"
when = "time >= 02:00"
then = ["close station south"]

[[rules]]
name = "never"
when = "time >= 02:00 and hospital north-ed occupancy > 1.5"
then = ["divert hospital north-ed"]
"""


def test_a_clock_rule_fires_at_its_time_for_every_seed_and_an_impossible_one_never():
    text = builtin("hefei_joint", CLOCK)
    for seed in (1, 2, 3):
        r = run(text, seed=seed, overrides=["run.until_s=21600"])
        assert fired(r, 0) == [7200.0] and fired(r, 1) == []
        assert r.rules["action"].tolist() == ["close station south"] and r.kpis["rules_fired"] == 1.0


def test_a_call_count_rule_fires_when_the_last_hour_holds_enough_calls():
    """Police calls of the last 60 minutes >= 20, checked every 60 s: the first check time
    with 20 calls in (t - 3600, t], counted from the calls table."""
    text = builtin("hefei_joint", '[[rules]]\nname = "wave"\nwhen = "calls police in any per_hour >= 20"\n'
                                  'then = ["close station south"]\n'
                                  '[[rules]]\nname = "wave in 7"\nwhen = "calls any in 7 per_hour >= 6"\n'
                                  'then = ["close station north"]\n')
    r = run(text, overrides=["run.until_s=43200"])
    calls = r.ems.calls
    police = np.sort(calls.loc[calls["type_idx"] == 3, "time_s"].to_numpy())
    grid = np.arange(0.0, 43200.0, 60.0)
    count = np.searchsorted(police, grid, side="right") - np.searchsorted(police, grid - 3600.0, side="right")
    expect = first_check(grid, count >= 20)
    assert expect is not None and fired(r, 0) == [expect]
    sc = load_scenario(text)
    lay = sc.replanned(1).plans["ems"].layout
    district = np.asarray(lay.district_names)[np.asarray(lay.zone_district_idx)[calls["zone_idx"].to_numpy()]]
    in7 = np.sort(calls.loc[district == "7", "time_s"].to_numpy())
    count = np.searchsorted(in7, grid, side="right") - np.searchsorted(in7, grid - 3600.0, side="right")
    expect = first_check(grid, count >= 6)
    assert expect is not None and fired(r, 1) == [expect]


def test_a_hospital_rule_diverts_and_undoes_on_its_occupancy():
    """Divert north-ed (16 beds) at 80 % occupancy, undo below 50 %, again and again: every
    firing and undo at the first check where its condition holds on the hospital's step
    series; transports from calls while it is diverted go to west-ed."""
    text = builtin("hefei_joint", '[[rules]]\nname = "full"\nwhen = "hospital north-ed occupancy >= 0.8"\n'
                                  'then = ["divert hospital north-ed"]\nuntil = "hospital north-ed occupancy < 0.5"\n'
                                  'once = false\n')
    r = run(text)
    occ = r.ems.occupancy
    series = occ[occ["hospital_idx"] == 0] if "hospital_idx" in occ else None
    assert series is not None
    t_s, beds = series["time_s"].to_numpy(), series["occupied_beds"].to_numpy()
    grid = np.arange(0.0, 86400.0, 60.0)
    at = beds[np.searchsorted(t_s, grid, side="right") - 1] / 16.0
    on, expect_do, expect_undo = False, [], []
    for t, x in zip(grid, at):
        if not on and x >= 0.8:
            on = True
            expect_do.append(t)
        elif on and x < 0.5:
            on = False
            expect_undo.append(t)
    assert len(expect_do) >= 2 and fired(r, 0) == expect_do and fired(r, 0, "undo") == expect_undo
    calls = r.ems.calls
    spans = list(zip(expect_do, expect_undo + [np.inf]))
    during = np.zeros(len(calls), dtype=bool)
    for a, b in spans:
        during |= (calls["time_s"] > a + 60.0) & (calls["at_hospital_s"] < b)
    moved = calls[during & calls["transport"].astype(bool) & calls["at_hospital_s"].notna()]
    assert len(moved) > 3 and (moved["hospital_idx"] == 1).all()


def test_a_link_rule_closes_the_link_and_a_vehicles_rule_reads_the_traffic():
    base = run("hefei_day", overrides=["run.until_s=36000"])
    inflow = base.traffic.links["inflow_veh"]
    t_iv = base.traffic.links["time_s"]
    busiest = int(np.argmax(inflow[(t_iv >= 25200) & (t_iv < 27000)].sum(axis=0)))
    sc = load_scenario("hefei_day")
    city = sc.city
    a, b = city.node_ids[city.link_from_idx[busiest]], city.node_ids[city.link_to_idx[busiest]]
    text = builtin("hefei_day", f'[[rules]]\nname = "close it"\nwhen = "time >= 07:30"\nthen = ["close link {a} {b}"]\n'
                                f'[[rules]]\nname = "queue"\nwhen = "link {a} {b} vehicles >= 1"\n'
                                f'then = ["open link {a} {b}"]\ncheck_every_s = 300\n')
    r = run(text, overrides=["run.until_s=36000"])
    assert fired(r, 0) == [27000.0]
    q = fired(r, 1)
    assert len(q) == 1 and 25200.0 <= q[0] < 27000.0       # vehicles on it in the rush, before the closure
    links = r.traffic.links
    after = links["time_s"] >= 27300.0                      # one 5-min interval after the closure
    closed = [k for k in range(city.n_links) if city.link_from_idx[k] == city.link_from_idx[busiest]
              and city.link_to_idx[k] == city.link_to_idx[busiest]]
    assert links["inflow_veh"][after][:, closed].sum() == 0
    assert base.traffic.links["inflow_veh"][after][:, closed].sum() > 0


def test_a_flood_rule_fires_when_the_water_reaches_the_node():
    from twin.scenarios.hazards import node_depth_mm

    sc = load_scenario("hefei_flood").replanned(1)
    plan = sc.plans["hazards"][0]
    depth = node_depth_mm(plan, sc.city)
    node = int(np.argmax(depth.max(axis=0)))
    expect = float(plan.times_s[np.flatnonzero(depth[:, node] >= 200.0)[0]])
    text = builtin("hefei_flood", f'[[rules]]\nname = "water"\nwhen = "flood {sc.city.node_ids[node]} depth_mm >= 200"\n'
                                  f'then = ["close station central"]\n')
    r = run(text, overrides=["run.until_s=50400"])
    assert fired(r, 0) == [expect]


def test_a_snapshot_resumes_the_rules_exactly(tmp_path):
    text = builtin("hefei_joint", '[[rules]]\nname = "full"\nwhen = "hospital north-ed occupancy >= 0.8"\n'
                                  'then = ["divert hospital north-ed"]\nuntil = "hospital north-ed occupancy < 0.5"\n'
                                  'once = false\n' + CLOCK)
    out = tmp_path / "r.h5"
    plain = run(text, out=out, snapshot_at_s=[36000.0])
    assert len(fired(plain, 0)) >= 2 and fired(plain, 0)[0] < 36000.0 < fired(plain, 0)[-1]
    again = from_snapshot(f"{out}@10:00")
    assert again.kpis == plain.kpis and again.rules.equals(plain.rules)
    from twin.results import open_results

    t = open_results(out).table("/events/rules")
    assert t["action"].tolist() == plain.rules["action"].tolist()


@pytest.mark.parametrize("when,then,match", [
    ("hospital north-ed ocupancy >= 0.9", "divert hospital north-ed", "unknown hospital variable 'ocupancy'"),
    ("hospital south-ed occupancy >= 0.9", "divert hospital north-ed", "no hospital 'south-ed'"),
    ("hospital north-ed occupancy => 0.9", "divert hospital north-ed", "'=>' is not a comparison"),
    ("hospital north-ed occupancy >= lots", "divert hospital north-ed", "'lots' is not a number"),
    ("time >= 08:00 and and time < 09:00", "divert hospital north-ed", "term 2 is empty"),
    ("weather rain >= 1", "divert hospital north-ed", "unknown state 'weather'"),
    ("calls police in 12 per_hour >= 3", "divert hospital north-ed", "unknown district '12'"),
    ("calls robbery in any per_hour >= 3", "divert hospital north-ed", "no such call type"),
    ("time >= 08:00", "explode hospital north-ed", "'explode hospital north-ed' is not an action"),
    ("time >= 08:00", "close station nowhere", "no station 'nowhere'"),
    ("time >= 08:00", "close link 1 2", "not a node of city"),
    ("time >= 08:00", "divert hospital 'north-ed", "No closing quotation"),
    ("time >= 08:00", "add beds 0 hospital north-ed", "expected a whole number from 1"),
    ("time >= 08:00", "move unit nobody to station north", "no unit 'nobody'"),
    ("link 1 2 queues >= 3", "close station north", "unknown link variable 'queues'"),
])
def test_bad_rules_are_clear_errors_naming_the_rule_and_the_word(when, then, match):
    text = builtin("hefei_joint", f'[[rules]]\nname = "bad"\nwhen = "{when}"\nthen = ["{then}"]\n')
    with pytest.raises(ScenarioError, match=match) as e:
        load_scenario(text).replanned(1)
    assert "[rules] 'bad'" in str(e.value) or "rules" in str(e.value)


def test_or_binds_looser_than_and():
    from twin.scenarios.rules import parse_condition

    names = {"hospital": lambda name, at: {"a": 0, "b": 1}[name]}
    alts = parse_condition("time >= 01:00 and hospital a waiting > 2 or hospital b occupancy >= 0.5", "here", names)
    assert [[t.text for t in alt] for alt in alts] == [["time >= 01:00", "hospital a waiting > 2"],
                                                        ["hospital b occupancy >= 0.5"]]
    assert alts[0][0].value == 3600.0 and alts[1][0].args == (1,)


def test_a_rule_reading_the_traffic_needs_traffic():
    text = builtin("hefei_joint", '[[rules]]\nname = "q"\nwhen = "time >= 01:00"\n'
                                  'then = ["close link 267120721 5014290913"]\n')
    with pytest.raises(ScenarioError, match="has no traffic"):
        run(text, overrides=["run.until_s=7200"])


def test_surge_beds_open_at_a_time_and_close_as_patients_leave():
    """``add beds 4 hospital north-ed`` from 08:00 to 14:00 on a north-ed cut to 6 beds: up to
    10 patients in bed only from 08:00, the waiting ones taking the new beds at 08:00; from
    14:00 a patient gets a bed only while fewer than 6 are in one."""
    text = builtin("hefei_joint", '[[rules]]\nname = "surge"\nwhen = "time >= 08:00"\n'
                                  'then = ["add beds 4 hospital north-ed"]\nuntil = "time >= 14:00"\n')
    r = run(text, overrides=["hospitals.0.beds=6", "hospitals.0.walk_in_rate_per_h=3"])
    assert fired(r, 0) == [28800.0] and fired(r, 0, "undo") == [50400.0]
    occ = r.ems.occupancy
    s = occ[occ["hospital_idx"] == 0]
    t, b, w = (s[k].to_numpy() for k in ("time_s", "occupied_beds", "waiting"))
    assert b[t < 28800].max() <= 6 and b.max() <= 10
    at8 = t == 28800.0
    waiting_before = w[t < 28800][-1]
    assert waiting_before > 0 and b[at8].max() == min(6 + 4, b[t < 28800][-1] + waiting_before)
    after = t >= 50400.0
    up = np.flatnonzero(np.diff(b) > 0) + 1                  # each patient put in a bed
    assert np.all(b[up[after[up]] ] <= 6)
    assert int(r.ems.hospitals["beds"].iloc[0]) == 6 and r.rules["action"].tolist() == [
        "add beds 4 hospital north-ed", "remove beds 4 hospital north-ed"]


def test_a_unit_moves_to_another_station_and_back():
    """``move unit south-1 to station north`` at 01:00, ``return`` at 05:00: the unit relocates
    (now, or once free) and comes back; the log names both."""
    text = builtin("hefei_joint", '[[rules]]\nname = "cover"\nwhen = "time >= 01:00"\n'
                                  'then = ["move unit south-1 to station north"]\nuntil = "time >= 05:00"\n')
    r = run(text, overrides=["run.until_s=28800"])
    assert r.rules["action"].tolist() == ["move unit south-1 to station north", "return unit south-1"]
    units = r.ems.units
    u = int(units.loc[units["name"] == "south-1", "unit_idx"].iloc[0])
    ue = r.ems.unit_events
    moves = ue.loc[(ue["unit_idx"] == u) & (ue["event"] == "relocating"), "time_s"].to_numpy()
    assert ((moves >= 3600.0) & (moves < 18000.0)).any() and (moves >= 18000.0).any()
    plain = run(builtin("hefei_joint", ""), overrides=["run.until_s=28800"]).ems.unit_events
    assert not (plain.loc[plain["unit_idx"] == u, "event"] == "relocating").any()


def test_a_snapshot_keeps_surge_beds_and_moved_units(tmp_path):
    text = builtin("hefei_joint", '[[rules]]\nname = "surge"\nwhen = "time >= 08:00"\n'
                                  'then = ["add beds 4 hospital north-ed", "move unit south-1 to station north", '
                                  '"post police at node 5014290910"]\nuntil = "time >= 14:00"\n' + CLOCK)
    out = tmp_path / "s.h5"
    plain = run(text, out=out, snapshot_at_s=[36000.0], overrides=["hospitals.0.beds=6"])
    again = from_snapshot(f"{out}@10:00")
    assert again.kpis == plain.kpis and again.rules.equals(plain.rules)
    assert plain.rules["action"].str.startswith("post police").any()
    assert plain.rules["action"].str.startswith("post police").any()


def test_a_posted_police_car_leaves_dispatch_and_a_junction_gets_capacity():
    """On hefei_rush (traffic, police at central): 'post police at node N' and 'capacity link
    A B 3600' at 07:00 until 09:00. The nearest idle police car drives to N and answers no call
    until recalled, and drives there at 07:00 and home at 09:00; the log has the capacity change
    and its restore (to the city's capacity) in rule order, undone in reverse."""
    import re

    sc = load_scenario("hefei_rush")
    city = sc.city
    k = int(np.argmax(city.capacity_veh_per_h))
    a, b = city.node_ids[city.link_from_idx[k]], city.node_ids[city.link_to_idx[k]]
    text = resources.files("twin.scenarios").joinpath("hefei_rush.toml").read_text(encoding="utf-8") + f"""
[[stations]]
name = "police"
node = 8131109677
police = 2

[[rules]]
name = "junction"
when = "time >= 07:00"
then = ["post police at node {a}", "capacity link {a} {b} 3600"]
until = "time >= 09:00"
"""
    r = run(text, overrides=["run.until_s=43200"])
    acts = r.rules["action"].tolist()
    assert re.fullmatch(r"post police at node \S+ \(police-police-\d\)", acts[0])
    assert acts[1:] == [f"capacity link {a} {b} 3600", f"restore link {a} {b}",
                        f"recall police from node {a} ({acts[0].split('(')[1]}"]
    unit = acts[0].split("(")[1].rstrip(")")
    units = r.ems.units
    u = int(units.loc[units["name"] == unit, "unit_idx"].iloc[0])
    asg = r.ems.assignments
    sent = asg.loc[asg["unit_idx"] == u, "dispatched_s"].to_numpy()
    assert not ((sent >= 25200.0) & (sent < 32400.0)).any()
    ev = r.ems.unit_events
    moves = ev.loc[(ev["unit_idx"] == u) & (ev["event"] == "relocating"), "time_s"].to_numpy()
    assert 25200.0 in moves and 32400.0 in moves
