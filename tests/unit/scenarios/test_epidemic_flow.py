"""[epidemic] in scenarios: contacts from the day plans, the daily clock, hospitals, calls, results, errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin
import twin.scenarios
from twin.agents.epidemic_contacts import contacts_from_population
from twin.errors import ScenarioError
from twin.runner import load_scenario, run

SMALL = ["population.persons=4000", "run.until_s=2592000", "epidemic.r0=3.0"]      # 30 days


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("epi") / "epi.h5"
    return run("hefei_epidemic", seed=2, out=out, overrides=SMALL + ["epidemic.call_share=1.0"])


def test_contact_layers_follow_the_day_plans():
    sc = load_scenario("hefei_epidemic", overrides=["population.persons=4000"])
    pop = sc.plans["population"].population
    c = contacts_from_population(pop, work_group=17, school_group=21, community_contacts=3, seed=1)
    hh = np.asarray(pop.household_idx)
    src = np.repeat(np.arange(c.n_persons), np.diff(c.edge_indptr))
    home = c.edge_layer == c.layer("household")
    assert (hh[src[home]] == hh[c.edge_nbr[home]]).all()
    # every household of m members gives m (m - 1) directed contacts
    sizes = np.bincount(hh)
    assert home.sum() == int((sizes * (sizes - 1)).sum())
    # symmetric, no self-contacts, groups no larger than the caps
    pairs = set(zip(src.tolist(), c.edge_nbr.tolist(), c.edge_layer.tolist()))
    assert all((j, i, la) in pairs for i, j, la in pairs) and not (src == c.edge_nbr).any()
    for name, cap in (("work", 17), ("school", 21)):
        k = c.layer(name)
        deg = np.bincount(src[c.edge_layer == k], minlength=c.n_persons)
        assert 0 < deg.max() <= cap - 1
    # community buckets hold persons out of home; each person's buckets contain them
    for p in range(0, c.n_persons, 97):
        for b in c.pbucket[c.pb_indptr[p]:c.pb_indptr[p + 1]]:
            assert p in c.bucket_member[c.bucket_indptr[b]:c.bucket_indptr[b + 1]]
    per = c.contacts_per_person()
    assert per["household"] > 1.0 and per["work"] > 1.0 and per["community"] > 0


def test_the_flow_runs_day_by_day_and_writes_its_results(small):
    d = small.epidemic.daily
    assert len(d) == 30 and (d["day"] == np.arange(30)).all()
    assert small.kpis["epidemic_r0"] == pytest.approx(3.0, rel=0.01)
    assert small.kpis["epidemic_infected"] == 4000 - d["susceptible"].iloc[-1] > 10
    with twin.open_results(small.path) as r:
        t_s, new = r.series("/timeseries/epidemic/new_infections")
        assert (t_s == np.arange(30) * 86400.0).all() and new.sum() == d["new_infections"].sum()
        assert r.units("/timeseries/epidemic/new_infections") == "persons/day"
        inf = r.table("/events/epidemic_infections")
        assert len(inf) == small.kpis["epidemic_infected"] and (np.diff(inf["time_s"]) >= 0).all()
        assert set(inf["layer"]) <= {"seeded", "household", "school", "work", "community"}
        assert (inf["layer"] == "seeded").sum() == 10
        t_s, by_zone = r.series("/timeseries/epidemic/new_by_zone")
        assert by_zone.shape == (30, small.scenario.city.n_zones) and by_zone.sum() == len(inf)


def test_severe_cases_call_120_on_the_clock(small):
    calls = small.kpis["epidemic_calls"]
    severe = small.kpis["epidemic_severe"]
    assert calls == severe > 0          # call_share = 1: every severe case with a district calls
    with twin.open_results(small.path) as r:
        c = r.table("/events/ems_calls")
    assert len(c) >= calls


def test_one_seed_gives_identical_results_and_another_differs():
    a = run("hefei_epidemic", seed=5, overrides=SMALL).epidemic.daily
    b = run("hefei_epidemic", seed=5, overrides=SMALL).epidemic.daily
    c = run("hefei_epidemic", seed=6, overrides=SMALL).epidemic.daily
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


@pytest.mark.parametrize("override, message", [
    ("epidemic_seeds.0.zone=99", "is not a district"),
    ("epidemic_seeds.0.persons=100000", "residents left to seed"),
    ("epidemic_seeds.0.day=400", "not within the run's"),
    ("epidemic.profile_mean_d=5.0", "give both profile_mean_d and profile_sd_d"),
    ("epidemic.call_type=nonesuch", "no such call type"),
    ("epidemic.beta=-1", r"\[epidemic\] beta = -1.0; expected"),
    ("epidemic.latent={kind='lognormal', mean_d=-2, sd_d=1}", "latent"),
    ("epidemic.latent={kind='weibull', mean_d=2, sd_d=1}", "weibull"),
    ("epidemic.mild=0", "mild: mean 0.0 d"),
    ("epidemic.severe={kind='lognormal', mean_d=nan, sd_d=1}", "severe"),
])
def test_bad_input_is_a_clear_error(override, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario("hefei_epidemic", overrides=["population.persons=4000", override])


def test_an_unreachable_r0_and_a_missing_population_are_clear_errors(tmp_path):
    zero = ["epidemic.household_weight=0", "epidemic.school_weight=0", "epidemic.work_weight=0",
            "epidemic.community_weight=0"]
    with pytest.raises(ScenarioError, match="cannot be reached"):
        run("hefei_epidemic", overrides=SMALL + zero)
    text = ((Path(twin.scenarios.__file__).parent / "hefei_epidemic.toml").read_text().replace("[population]", "[unused_population]")
            .replace("persons = 100000", "").replace("calls_from_presence = true", "")
            .replace("traffic_from_cars = false", "").replace("[unused_population]", ""))
    text = text.replace("rate_per_1000_per_day = 0.65", "rate_per_h = 2.0")
    p = tmp_path / "no_people.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError, match="add a \\[population\\] table"):
        load_scenario(p)


def test_the_epidemic_chart_reads_the_results_file(small, tmp_path):
    pytest.importorskip("matplotlib")
    from twin.viz.charts import plot_chart

    fig = plot_chart(small.path, "epidemic", tmp_path / "e.png", figsize=(11, 6))
    assert (tmp_path / "e.png").stat().st_size > 10_000
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["y (km)", "", "thousands", "persons", "persons"]          # "": the map's colour bar
    icu = fig.axes[4]
    assert any(line.get_label() == f"{int(small.kpis['epidemic_icu_beds'])} ICU beds" for line in icu.get_lines())


def test_who_stays_home_sets_the_days_car_trips(tmp_path):
    from twin.agents.epidemic_control import travel_demand

    over = SMALL + ["interventions.1.enabled=true", "interventions.1.start_day=10", "interventions.1.end_day=20"]
    res = run("hefei_epidemic", seed=3, overrides=over)
    d = res.epidemic.daily
    pop = res.scenario.plans["population"].population
    everyone = len(travel_demand(pop, np.zeros(pop.n_persons, dtype=bool)))
    assert d["car_trips"].iloc[0] == everyone > 0 and d["stay_home"].iloc[0] == 0
    assert (d["car_trips"].iloc[10:20] == 0).all() and (d["stay_home"].iloc[10:20] == 4000).all()
    assert 0 < d["car_trips"].iloc[25] <= everyone
    # the demand of a day: the car legs of those who go out, none of the absent persons'
    absent = np.zeros(pop.n_persons, dtype=bool)
    absent[::3] = True
    trips = travel_demand(pop, absent)
    assert not absent[trips["person"]].any()
    assert len(trips) == everyone - len(travel_demand(pop, ~absent))


def _pool_at(ems, pool, t_s):
    occ = ems.pool_occupancy
    total = 0
    for _, g in occ[occ["pool"] == pool].groupby("hospital_idx"):
        g = g[g["time_s"] <= t_s]
        total += int(g["occupied_beds"].iloc[-1]) if len(g) else 0
    return total


def test_epidemic_patients_take_the_hospitals_beds_on_the_clock():
    """With the hospitals' pools, the severe and critical lie in the EMS's ward and ICU beds,
    and the EMS's own inpatients leave the epidemic fewer beds."""
    over = SMALL + ["run.until_s=5184000", "hospitals.0.ward_beds=2", "hospitals.1.ward_beds=1",
                    "hospitals.0.icu_beds=1", "hospitals.1.icu_beds=1"]
    alone = run("hefei_epidemic", seed=4, overrides=over)
    d = alone.epidemic.daily
    assert d["ward_occupied"].max() == 3 and d["ward_refused"].sum() > 0
    for day in (30, 45, 59):                       # the day's end: the same beds in use, seen by both
        assert _pool_at(alone.ems, "ward", (day + 1) * 86400.0 - 1.0) == d["ward_occupied"].iloc[day]
    # the EMS's own patients now need ward beds too (a third of P1 and P2 after the ED)
    shared = run("hefei_epidemic", seed=4, overrides=over + ["hospitals.0.ward_probability=[0.3, 0.3, 0.0]",
                                                              "hospitals.1.ward_probability=[0.3, 0.3, 0.0]"])
    e = shared.epidemic.daily
    assert e["ward_refused"].sum() > d["ward_refused"].sum()
    stays = shared.ems.stays
    assert (stays["call_id"] >= -1).sum() > 0 and (stays["call_id"] == -2).sum() == e["ward_admissions"].sum() + \
        e["icu_admissions"].sum() - shared.flows["epidemic"].kpis.get("epidemic_bed_conflicts", 0)


def test_an_epidemic_nobody_catches_is_a_clear_error(tmp_path):
    text = (Path(twin.scenarios.__file__).parent / "hefei_epidemic.toml").read_text()
    start = text.index("[[epidemic_seeds]]")
    text = text[:start] + text[text.index("[[interventions]]"):]
    p = tmp_path / "no_seeds.toml"
    p.write_text(text.replace("persons = 100000", "persons = 3000"))
    with pytest.raises(ScenarioError, match=r"nobody is ever infected; add \[\[epidemic_seeds\]\]"):
        load_scenario(p)
