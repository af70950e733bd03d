"""Simulation-optimisation studies (twin.optimise): ranking and selection, common random numbers,
the resumable store, the chosen plan as a scenario, and the stock study.

The light grid scenario (one ambulance on a 6x6 grid, one call every two hours, no transport)
runs a whole day in a fraction of a second, so studies here run on it for real.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest
from twin_small import LIGHT
from scipy import stats

from twin.ensemble import run_kpis
from twin.errors import OptimisationError
from twin.optimise import StockItem, optimise, rank_plans
from twin.runner import load_scenario
from twin.streams import replication_seeds


#: Two EDs and every patient transported: ED arrivals are the stock study's demand.
TWO_EDS = LIGHT.replace("transport_probability = 0.0", "transport_probability = 1.0").replace(
    'name = "h"\nnode = 36\nbeds = 4', 'name = "east"\nnode = 6\nbeds = 4\n\n[[hospitals]]\nname = "west"\nnode = 31\nbeds = 4')


def _runs(table):
    rows = [dict(plan=p, replication=r, seed=r, k=v) for p, vals in table.items() for r, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_rank_plans_matches_a_hand_computation():
    runs = _runs({"a": [10.0, 12.0, 11.0, 13.0], "b": [9.0, 10.5, 10.0, 11.0], "c": [30.0, 31.0, 29.0, 33.0]})
    out = rank_plans(runs, "k", confidence=0.9)
    assert list(out.index) == ["b", "a", "c"]
    assert out.loc["b", "verdict"] == "best" and out.loc["b", "diff"] == 0.0
    # a - b = [1, 1.5, 1, 2]; Bonferroni over 2 comparisons at family level 0.9: t(1 - 0.1/4, 3)
    d = np.array([1.0, 1.5, 1.0, 2.0])
    t = stats.t.ppf(1 - 0.1 / 4, 3)
    assert out.loc["a", "diff"] == pytest.approx(d.mean())
    assert out.loc["a", "diff_half_width"] == pytest.approx(t * d.std(ddof=1) / 2.0)
    assert out.loc["a", "verdict"] == "worse"          # 1.375 > 0.98
    assert out.loc["c", "verdict"] == "worse"
    a = np.array([10.0, 12.0, 11.0, 13.0])
    assert out.loc["a", "half_width"] == pytest.approx(stats.t.ppf(0.95, 3) * a.std(ddof=1) / 2.0)
    # a noisy difference is a tie, and maximise turns the order round
    tie = rank_plans(_runs({"a": [10.0, 20.0, 10.0], "b": [12.0, 11.0, 14.0]}), "k")
    assert tie.loc["a", "verdict"] == "tied" or tie.loc["b", "verdict"] == "tied"
    assert list(rank_plans(runs, "k", maximise=True).index) == ["c", "a", "b"]
    with pytest.raises(OptimisationError, match="rank KPI 'nope' is not a KPI of these runs; known: k"):
        rank_plans(runs, "nope")


def test_rank_plans_pairs_only_complete_replications():
    """A KPI undefined (NaN) in one plan's replication drops that replication for every plan, so
    the means stay paired: without it, plan a would look best only by missing its worst day."""
    runs = _runs({"a": [1.0, 2.0, math.nan, 3.0], "b": [1.5, 2.5, 3.5, 3.4]})
    out = rank_plans(runs, "k")
    assert out.loc["a", "n"] == 3 and out.loc["a", "mean"] == pytest.approx(2.0)
    assert out.loc["b", "mean"] == pytest.approx((1.5 + 2.5 + 3.4) / 3)
    with pytest.raises(OptimisationError, match="undefined \\(NaN\\) in every replication"):
        rank_plans(_runs({"a": [math.nan, math.nan], "b": [1.0, 2.0]}), "k")


@pytest.mark.parametrize("kwargs,match", [
    (dict(decide="sites"), "decide = 'sites'; expected one of stations, fleet, beds, stock"),
    (dict(decide="stations", model="k-means"), "model = 'k-means'; expected one of p-median"),
    (dict(decide="stations", costs="live"), "costs = 'live'; expected one of free-flow, congested"),
    (dict(decide="stations", replications=1), "replications = 1; expected an integer >= 2"),
    (dict(decide="stations", plans=1.5), "plans = 1.5; expected an integer >= 1"),
    (dict(decide="stations", confidence=95), "confidence = 95; expected a level in"),
    (dict(decide="stock", items=()), "no stock items"),
    (dict(decide="stock", items=(StockItem("a"), StockItem("a"))), "names must be unique"),
])
def test_bad_study_options_are_named(kwargs, match):
    with pytest.raises(OptimisationError, match=match):
        optimise(LIGHT, **kwargs)


def test_bad_stock_item_is_named():
    with pytest.raises(OptimisationError, match="stock item 'kit': shortage_cost = -1; expected a finite number >= 0"):
        StockItem(shortage_cost=-1)


def test_every_plan_runs_on_the_replication_seeds():
    """Common random numbers: replication r of every plan runs with replication_seeds(seed)[r], so
    each plan's rows are exactly that plan's scenario run with those seeds."""
    from twin.optimise import plan_scenario_data
    from twin.spec import dump_toml

    res = optimise(LIGHT, "stations", replications=3, plans=2, seed=5)
    seeds = replication_seeds(5, 3)
    sc = load_scenario(LIGHT)
    for plan in res.plans:
        text = sc.resolved_text if plan.name == "current" else dump_toml(plan_scenario_data(sc.data, plan))
        rows = res.runs[res.runs["plan"] == plan.name]
        for r, s in enumerate(seeds):
            assert rows.iloc[r]["response_mean_s"] == run_kpis(text, (), s)["response_mean_s"], (plan.name, r)


def test_chosen_plan_is_a_scenario_that_runs_the_plan():
    res = optimise(LIGHT, "stations", replications=3, plans=2)
    sc = load_scenario(res.chosen_toml)
    assert [(s["node"], s["ambulances"]) for s in sc.data["stations"]] == list(res.chosen.stations)
    assert res.chosen.name == res.ranking.index[0]
    assert set(res.ranking.columns) >= {"mean", "half_width", "diff", "diff_half_width", "verdict",
                                         "model_objective", "plan_detail"}


def test_study_resumes_after_a_kill(tmp_path):
    """A store cut after three replications (and a torn fourth line) continues with only the
    missing runs, and gives the same numbers as the uninterrupted study."""
    full = tmp_path / "full.jsonl"
    ref = optimise(LIGHT, "stations", replications=3, plans=2, store=full)
    lines = full.read_bytes().split(b"\n")
    assert json.loads(lines[0])["decide"] == "stations" and len([ln for ln in lines if ln]) == 1 + 3 * 3
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"\n".join(lines[:4]) + b"\n" + lines[4][:25])     # header, 3 records, a torn record
    calls = []
    res = optimise(LIGHT, "stations", replications=3, plans=2, store=cut, progress=lambda d, t: calls.append(d))
    assert len(calls) == 9 - 3
    pd.testing.assert_frame_equal(res.runs, ref.runs)
    pd.testing.assert_frame_equal(res.ranking, ref.ranking)
    assert cut.read_bytes() != b"" and all(json.loads(ln) for ln in cut.read_bytes().split(b"\n") if ln)
    # a finished study re-runs nothing
    again = []
    optimise(LIGHT, "stations", replications=3, plans=2, store=cut, progress=lambda d, t: again.append(d))
    assert again == []


def test_store_of_another_study_is_refused(tmp_path):
    store = tmp_path / "s.jsonl"
    optimise(LIGHT, "stations", replications=2, plans=1, store=store)
    with pytest.raises(OptimisationError, match="holds another study"):
        optimise(LIGHT, "stations", replications=3, plans=1, store=store)
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not json\n")
    with pytest.raises(OptimisationError, match="line 1: not a study record"):
        optimise(LIGHT, "stations", replications=2, plans=1, store=junk)
    head = store.read_text().split("\n")[0]
    junk.write_text(head + "\n[1, 2]\n")
    with pytest.raises(OptimisationError, match="line 2: not a study record"):
        optimise(LIGHT, "stations", replications=2, plans=1, store=junk)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")                                       # killed before the header landed: a new study
    optimise(LIGHT, "stations", replications=2, plans=1, store=empty)
    assert json.loads(empty.read_text().split("\n")[0])["decide"] == "stations"
    with pytest.raises(OptimisationError, match="expected a file in an existing folder"):
        optimise(LIGHT, "stations", replications=2, plans=1, store=tmp_path)


def test_fleet_study_moves_vehicles_between_existing_stations():
    two = LIGHT.replace('[[stations]]\nname = "corner"\nnode = 1\nambulances = 1',
                        '[[stations]]\nname = "corner"\nnode = 1\nambulances = 2\n\n[[stations]]\nname = "far"\n'
                        'node = 36\nambulances = 1')
    res = optimise(two, "fleet", replications=2, plans=3, model="p-center")      # fleet always uses the MEXCLP
    assert res.model_info["model"] == "mexclp" and res.model_info["candidates"] == 2
    for plan in res.plans:
        assert {n for n, _ in plan.stations} <= {1, 36} and sum(k for _, k in plan.stations) == 3


def test_congested_study_prices_travel_with_the_rush_hour():
    res = optimise("hefei_day", "stations", replications=2, plans=1, costs="congested", at_s=8 * 3600.0,
                   overrides=["run.until_s=32400"])
    free = optimise("hefei_day", "stations", replications=2, plans=1, overrides=["run.until_s=32400"])
    assert res.model_info["costs"] == "congested"
    cur = {p.name: p for p in res.plans}["current"].model_objective
    assert cur > {p.name: p for p in free.plans}["current"].model_objective      # queues make travel longer


def test_a_plan_equal_to_the_current_one_in_another_order_is_not_run_twice():
    from twin.optimise import Plan

    a = Plan("current", stations=((36, 1), (1, 2)))
    b = Plan("optimum", stations=((1, 2), (36, 1)))
    assert a.key() == b.key() and a.describe() != b.describe()


def test_stock_study_fits_and_evaluates_on_separate_runs():
    item = StockItem("kit", use_per_arrival=2.0, overage_cost=1.0, shortage_cost=9.0, ship_cost_per_h=2.0)
    res = optimise(TWO_EDS, "stock", replications=4, items=(item,))
    seeds = replication_seeds(0, 8)
    assert [p.name for p in res.plans] == ["current", "optimum", "per-site", "mean-value"]
    assert res.kpi == "stock_cost" and not res.maximise
    assert sorted(set(res.runs["seed"])) == sorted(seeds[4:])         # evaluated on the runs it was not fitted to
    text = load_scenario(TWO_EDS).resolved_text
    arrivals = [run_kpis(text, (), s)["hospital_east_arrivals"] for s in seeds[4:]]
    cur = res.runs[res.runs["plan"] == "current"]
    # no stock: every unit used is short, at 9 a unit
    np.testing.assert_allclose(cur["stock_cost"], 9.0 * 2.0 * (np.array(arrivals) + np.array(
        [run_kpis(text, (), s)["hospital_west_arrivals"] for s in seeds[4:]])))
    assert res.ranking.loc["current", "verdict"] == "worse"
    assert "[[stock]]" in res.chosen_toml and 'item = "kit"' in res.chosen_toml
    assert math.isfinite(res.model_info["solve_time_s"])
    # no moves between hospitals at all: each stocks for itself, and the plans still price
    alone = optimise(TWO_EDS, "stock", replications=4, items=(StockItem("kit", ship_cost_per_h=math.inf),))
    assert np.isfinite(alone.runs["stock_cost"]).all()
    with pytest.raises(OptimisationError, match="the scenario has no \\[\\[hospitals\\]\\]"):
        optimise(LIGHT.replace('[[hospitals]]\nname = "h"\nnode = 36\nbeds = 4', ''), "stock", replications=2)
    with pytest.raises(OptimisationError, match="overage_cost \\+ shortage_cost = 0"):
        StockItem(overage_cost=0.0, shortage_cost=0.0)


#: Two hospitals with wards: most transported patients go on to a ward bed (6 h mean stay).
WARDS = TWO_EDS.replace('name = "east"\nnode = 6\nbeds = 4', 'name = "east"\nnode = 6\nbeds = 4\nward_beds = 2\n'
                        'ward_los = 21600.0\nward_probability = [0.8, 0.8, 0.8]\nlength_of_stay = 3600.0').replace(
    'name = "west"\nnode = 31\nbeds = 4', 'name = "west"\nnode = 31\nbeds = 4\nward_beds = 4\n'
    'ward_los = 21600.0\nward_probability = [0.8, 0.8, 0.8]\nlength_of_stay = 3600.0')


def test_ward_requests_are_counted_per_emergency_department():
    from twin.runner import run

    res = run(WARDS, seed=11)
    row = run_kpis(load_scenario(WARDS).resolved_text, (), 11)
    st = res.ems.stays
    inwin = st["request_s"] < 86400.0                              # the KPI window: the day (the run drains on)
    for i, name in enumerate(("east", "west")):
        want = int((inwin & (st["from_hospital_idx"] == i) & (st["pool"] == "ward")).sum())
        assert row[f"hospital_{name}_ward_requests"] == want
    assert sum(row[f"hospital_{n}_ward_requests"] for n in ("east", "west")) > 0
    assert "hospital_east_icu_requests" not in row                 # no ICU pool, no KPI


def test_ward_beds_study_splits_the_ward_beds():
    res = optimise(WARDS, "beds", pool="ward", replications=3, plans=3, kpi="n_inpatient_blocked")
    assert res.model_info["pool"] == "ward" and res.model_info["total_beds"] == 6
    for plan in res.plans:
        beds = dict(plan.beds)
        assert sum(beds.values()) == 6 and min(beds.values()) >= 1 and plan.pool == "ward"
    cur = res.runs[res.runs["plan"] == "current"]
    window_h = 24.0
    for name in ("east", "west"):
        assert res.model_info["arrivals_per_h"][name] == pytest.approx(
            cur[f"hospital_{name}_ward_requests"].mean() / window_h, abs=1e-4)
    chosen = load_scenario(res.chosen_toml).data["hospitals"]
    assert [h["ward_beds"] for h in chosen] == [b for _, b in res.chosen.beds]
    assert [h["beds"] for h in chosen] == [4, 4]                   # the EDs are not touched
    with pytest.raises(OptimisationError, match="pool = 'icu': no hospital has icu_beds"):
        optimise(WARDS, "beds", pool="icu", replications=2)
    with pytest.raises(OptimisationError, match="pool = 'beds'; expected one of ed, ward, icu"):
        optimise(WARDS, "beds", pool="beds", replications=2)


def test_study_on_the_demand_of_a_run(tmp_path):
    from twin.runner import run

    out = tmp_path / "run.h5"
    run(LIGHT, seed=9, out=out)
    res = optimise(LIGHT, "stations", replications=2, plans=2, demand_from=out)
    assert res.model_info["demand"] == "run"
    assert res.model_info["demand_points"] < 36               # only the nodes where calls arose
    store = tmp_path / "s.jsonl"
    optimise(LIGHT, "stations", replications=2, plans=1, demand_from=out, store=store)
    run(LIGHT, seed=10, out=out, overwrite=True)               # another run: another study
    with pytest.raises(OptimisationError, match="holds another study"):
        optimise(LIGHT, "stations", replications=2, plans=1, demand_from=out, store=store)
