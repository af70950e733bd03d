"""Gridlock is never silent: forced moves and teleports in the traffic line, a warning past
GRIDLOCK_SHARE of the trips, and replicate / compare list (and on request leave out) the
gridlocked replications."""

import pytest
from twin_small import SMALL

from twin.ensemble import _table, compare, replicate
from twin.errors import ScenarioError
from twin.runner import run
from twin.traffic_result import GRIDLOCK_SHARE, gridlocked

# ten central links of the grid down to 20 veh/h under 3,000 trips in 20 min: queues spill back
JAM = SMALL + """
[traffic]
random_trips = 3000
window_s = 1200.0
""" + "".join(f"""
[[events]]
time_s = 0.0
action = "capacity"
from_node = {a}
to_node = {b}
both_directions = true
capacity_veh_per_h = 20.0
""" for a, b in ((15, 16), (16, 17), (21, 22), (22, 23), (15, 21), (16, 22), (17, 23), (9, 15), (10, 16), (11, 17)))


def test_the_threshold_by_hand():
    assert GRIDLOCK_SHARE == 0.01
    assert gridlocked({"forced_moves": 6, "teleports": 4}, 1000)
    assert not gridlocked({"forced_moves": 6, "teleports": 3}, 1000)
    assert not gridlocked({"forced_moves": 0, "teleports": 0}, 0)


def test_a_gridlocked_run_says_so_in_its_report(caplog):
    res = run(JAM, seed=1)
    t = res.traffic.kpis
    lines = res.flows["traffic"].lines
    assert f"forced moves {t['forced_moves']:,}, teleports {t['teleports']:,}" in lines[0]
    assert gridlocked(t, len(res.traffic.trips))
    assert any(line.startswith("WARNING") and "gridlock" in line for line in lines)
    assert any("gridlock" in r.message for r in caplog.records)
    calm = run(SMALL + "\n[traffic]\nrandom_trips = 200\n", seed=1).flows["traffic"].lines
    assert "forced moves 0, teleports 0" in calm[0] and not any(line.startswith("WARNING") for line in calm)


def test_replications_list_and_can_leave_out_the_gridlocked():
    res = replicate(JAM, replications=2, seed=0)
    assert set(res.gridlocked) == set(res.runs["seed"]) and not res.excluded
    assert {"traffic_forced_moves", "traffic_teleports", "traffic_gridlock"} <= set(res.runs.columns)
    with pytest.raises(ScenarioError, match="exclude_gridlock: all 2 replications were gridlocked"):
        replicate(JAM, replications=2, seed=0, exclude_gridlock=True)
    with pytest.raises(ScenarioError, match="all 2 replications were gridlocked"):
        compare(JAM, SMALL + "\n[traffic]\nrandom_trips = 200\n", replications=2, seed=0, exclude_gridlock=True)


def test_a_pair_is_left_out_when_either_run_is_gridlocked():
    rows = [{"x": 1.0, "traffic_gridlock": 0.0}, {"x": 2.0, "traffic_gridlock": 1.0}, {"x": 3.0}]
    t = _table(rows, [11, 12, 13], 0.95, drop=(12,))
    assert t.runs["seed"].tolist() == [11, 13] and t.gridlocked == (12,) and t.excluded == (12,)
    assert t.summary.loc["x", "mean"] == pytest.approx(2.0)
