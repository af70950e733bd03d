"""Elderly care (the eldercare flow) on the 6 x 6 grid with a synthetic population.

- Erlang B: a centre open all day in loss mode, Poisson visits at 2 an hour lasting 2 h (4
  erlangs) on 4 places for 60 days: the share turned away is B(4, 4) = 0.3107 and the mean
  places taken a(1 - B) = 2.757 (insensitive to the visit length's law), within four standard
  errors of the 60-day estimate (a batch-means error over the days).
- Access: the walking-circle shares and the 2SFCA are those of twin.access on the plan's walking
  times; the 2SFCA shares out exactly the places of centres with residents in reach.
- Home care: carers start visits only while their centre is open, requests wait FIFO, and
  every request ends started or unmet.
- Fall calls reach the EMS at the band rates (Poisson count within 5 sigma) and come back with
  response times.
"""

import math

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.queueing import erlang_b
from twin.results import open_results
from twin.runner import load_scenario, run

POP = """
[population]
persons = 3000
calls_from_presence = false
traffic_from_cars = false
"""

CARE = SMALL.replace("until_s = 3600.0", "until_s = 86400.0") + POP + """
[eldercare]
home_visits_per_dependent_day = 0.5

[[care_centres]]
name = "west"
node = 15
places = 6
home_staff = 2

[[care_centres]]
name = "east"
node = 22
places = 6
home_staff = 1
mode = "queue"
"""


def test_a_loss_centre_turns_away_the_erlang_b_share():
    days = 60
    base = (SMALL.replace("until_s = 3600.0", f"until_s = {days * 86400.0}") + POP
            + '\n[eldercare]\n\n[[care_centres]]\nname = "c"\nnode = 15\nplaces = 4\nopen_s = 0.0\n'
              'close_s = 86400.0\nvisit = 7200.0\n')
    n = len(load_scenario(base).plans["eldercare"].home)
    rate = 48.0 / n                                       # 2 visits an hour in all
    text = base.replace("[eldercare]\n", f"[eldercare]\ndaycare_visits_per_person_day = {rate!r}\n")
    res = run(text, seed=21)
    op = res.eldercare
    v = np.array([r[1:] for r in op.visits])
    day = (v[:, 0] // 86400).astype(int)
    away = np.array([(v[day == d, 3] == 1).mean() for d in range(days)])
    b = erlang_b(4, 4.0)
    assert b == pytest.approx(0.3107, abs=1e-4)
    assert abs(away.mean() - b) <= 4 * away.std(ddof=1) / math.sqrt(days)
    assert res.kpis["eldercare_daycare_turned_away_share"] == pytest.approx((v[:, 3] == 1).mean())
    busy = res.kpis["eldercare_utilisation_mean"] * 4
    assert busy == pytest.approx(4.0 * (1 - b), abs=0.12)


def test_access_measures_are_the_library_s_on_the_walking_times():
    from twin.access import two_step_fca

    sc = load_scenario(CARE)
    plan, city = sc.plans["eldercare"], sc.city
    near = plan.walk_s.min(axis=1) <= 900.0
    assert plan.access["eldercare_within_walk_share_65"] == pytest.approx(near[plan.home].mean())
    assert plan.access["eldercare_within_walk_share_80"] == pytest.approx(near[plan.home[plan.band == 1]].mean())
    per_node = np.bincount(plan.home, minlength=city.n_nodes)
    acc, ratio = two_step_fca(per_node, [6, 6], plan.walk_s, 900.0)
    np.testing.assert_allclose(plan.access["_per_node_2sfca"], acc)
    reached = (per_node @ (plan.walk_s <= 900.0)) > 0
    assert float(per_node @ acc) == pytest.approx(6.0 * reached.sum())
    # the walking times are the links' lengths at 1 m/s: the grid's Manhattan distance in seconds
    x, y = np.asarray(city.x_m), np.asarray(city.y_m)
    np.testing.assert_allclose(plan.walk_s[:, 0], np.abs(x - x[plan.centre_node[0]]) + np.abs(y - y[plan.centre_node[0]]))


def test_home_care_runs_in_opening_hours_first_come_first_served(tmp_path):
    res = run(CARE, seed=3, out=tmp_path / "c.h5")
    k = res.kpis
    with open_results(tmp_path / "c.h5") as f:
        h = f.table("/events/eldercare_home_visits")
        dist = f.table("/network/eldercare_districts")
        cen = f.table("/network/care_centres")
    started = h[h["start_s"].notna()]
    tod = started["start_s"] % 86400.0
    assert len(started) > 10 and ((tod >= 28800.0) & (tod < 64800.0)).all()
    assert (started["start_s"] >= started["request_s"]).all()
    for c in (0, 1):                                       # FIFO: start order follows request order
        s = started[started["centre"] == c].sort_values("request_s")
        assert (np.diff(s["start_s"].to_numpy()) >= 0).all()
    assert k["eldercare_home_visits_started"] + k["eldercare_home_visits_unmet"] == k["eldercare_home_visits_requested"]
    assert cen["residents_65"].sum() == k["eldercare_residents_65"] and dist["residents_65"].sum() == k["eldercare_residents_65"]


def test_falls_call_the_ems_at_the_band_rates():
    text = CARE.replace("[eldercare]\n", '[eldercare]\nfall_calls_per_1000_year = { "65" = 20000.0, "80" = 60000.0 }\n'
                                         'fall_call_type = "p1"\n')
    res = run(text, seed=4)
    plan = load_scenario(text).plans["eldercare"]
    k = res.kpis
    mean = (np.where(plan.band == 1, 60.0, 20.0) / 365.0).sum()
    assert abs(k["eldercare_fall_calls"] - mean) <= 5 * math.sqrt(mean) and k["eldercare_fall_calls"] > 20
    assert k["eldercare_fall_response_mean_s"] > 0


@pytest.mark.parametrize("change, match", [
    (('node = 15\n', 'node = 99\n'), r"\[care_centres.0\] \('west'\) node = 99"),
    (("[eldercare]\n", '[eldercare]\ncare_need_share = { "70" = 0.1 }\n'), r"care_need_share: band '70'"),
    (("[eldercare]\n", "[eldercare]\ncare_need_share = 1.5\n"), "expected shares between 0 and 1"),
    (("places = 6\nhome_staff = 2", "places = 6\nhome_staff = 2\nopen_s = 64800.0\nclose_s = 28800.0"),
     r"close_s = 28800 must be after open_s = 64800"),
    ((POP, ""), r"care demand comes from the residents; add a \[population\]"),
    (("[eldercare]\n", '[eldercare]\nfall_call_type = "stroke"\n'), "fall_call_type = 'stroke': no such call type"),
])
def test_bad_care_scenarios_are_named(change, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(CARE.replace(*change))


def test_the_care_map_colours_districts_by_coverage_and_labels_use(tmp_path):
    pytest.importorskip("matplotlib")
    from twin.viz.charts import plot_chart

    run(CARE, seed=3, out=tmp_path / "c.h5")
    fig = plot_chart(tmp_path / "c.h5", "eldercare", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 10_000
    ax = fig.axes[0]
    with open_results(tmp_path / "c.h5") as f:
        nodes, dist = f.table("/network/nodes"), f.table("/network/eldercare_districts")
        visits, cen = f.table("/events/eldercare_visits"), f.table("/network/care_centres")
    share = dict(zip(dist["zone_idx"], dist["within_walk_share_80"]))
    want = np.array([share.get(z, np.nan) for z in nodes["zone_idx"]])
    got = np.asarray(ax.collections[0].get_array(), dtype=float)
    np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)])
    ok = visits["start_s"].notna()
    used = [((visits["end_s"][ok & (visits["centre"] == c)].fillna(86400.0).clip(upper=86400.0)
              - visits["start_s"][ok & (visits["centre"] == c)]).sum()) for c in (0, 1)]
    labels = sorted(t.get_text() for t in ax.texts)
    expect = sorted(f"{n} {100 * u / (p * (cl - op)):.0f} %" for n, u, p, op, cl in
                    zip(cen["name"], used, cen["places"], cen["open_s"], cen["close_s"]))
    assert labels == expect


def test_with_traffic_the_carers_drive_as_vehicles(tmp_path):
    text = CARE + "\n[traffic]\nrandom_trips = 100\n"
    res = run(text, seed=3, out=tmp_path / "t.h5")
    plan = load_scenario(text).plans["eldercare"]
    with open_results(tmp_path / "t.h5") as f:
        h = f.table("/events/eldercare_home_visits")
    done = h[h["done_s"].notna()]
    drive = plan.drive_s[done["centre"].to_numpy(), done["node_idx"].to_numpy()]
    # each visit: at least the free-flow drive (whole ticks per link) and the 45 min on site
    assert len(done) > 5 and np.all(done["done_s"] - done["start_s"] >= drive + 2700.0 - 1e-6)
    assert "fleet legs" in res.flows["traffic"].lines[0]
    for minutes in (5, 10, 15):
        assert res.kpis[f"eldercare_places_within_{minutes}min_mean"] >= 0
    assert (res.kpis["eldercare_places_within_5min_mean"] <= res.kpis["eldercare_places_within_10min_mean"]
            <= res.kpis["eldercare_places_within_15min_mean"])


def test_meals_go_to_the_dependent_living_alone_and_full_centres_do_not_count_as_free(tmp_path):
    text = CARE.replace("home_visits_per_dependent_day = 0.5", "home_visits_per_dependent_day = 0.5\n"
                        "meals_per_dependent_alone_day = 2.0").replace("places = 6\nhome_staff = 2",
                                                                      "places = 1\nhome_staff = 2")
    text = text.replace("[eldercare]\n", '[eldercare]\ndaycare_visits_per_person_day = { "65" = 0.05, "80" = 0.05 }\n')
    text = text.replace('places = 6\nhome_staff = 1\nmode = "queue"', 'places = 40\nhome_staff = 1\nmode = "queue"')
    res = run(text, seed=6, out=tmp_path / "m.h5")
    plan = res.eldercare.plan                            # the run's own draw of who is care-dependent
    with open_results(tmp_path / "m.h5") as f:
        h = f.table("/events/eldercare_home_visits")
    meals = h[h["kind"] == "meal"]
    alone_homes = set(plan.home[plan.dependent & plan.alone].tolist())
    assert len(meals) > 5 and set(meals["node_idx"]) <= alone_homes
    k = res.kpis
    assert k["eldercare_meals_requested"] == len(meals[meals["request_s"] < 86400.0])
    assert k["eldercare_meals_delivered"] + k["eldercare_meals_unmet"] == k["eldercare_meals_requested"]
    # 'west' (1 place, busy) is full at some time: only the residents near 'east' count as covered
    op = res.eldercare
    assert op.max_busy[0] == 1 and op.max_busy[1] < 40
    near_east = (plan.walk_s[:, 1] <= 900.0)[plan.home]
    assert k["eldercare_within_walk_free_share_65"] == pytest.approx(near_east.mean())
    assert k["eldercare_within_walk_free_share_65"] < k["eldercare_within_walk_share_65"]


def test_residents_beyond_the_circle_with_a_car_are_driven_to_the_nearest_by_car():
    plan = load_scenario(CARE).plans["eldercare"]
    far = plan.walk_s[plan.home, plan.serving[plan.home]] > 900.0
    assert plan.by_car.any() and not plan.by_car[~far].any()
    np.testing.assert_array_equal(plan.centre_of[plan.by_car], np.argmin(plan.drive_s[:, plan.home[plan.by_car]], axis=0))
    np.testing.assert_array_equal(plan.centre_of[~plan.by_car], plan.serving[plan.home[~plan.by_car]])
