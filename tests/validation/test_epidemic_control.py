"""Epidemic control: each intervention does what it says, on the hefei population's contacts.

The checks are structural facts of the rules (no school transmission while schools are shut,
only household transmission in a citywide lockdown, no transmission from anyone isolated in a
facility, more beds fewer refusals) and the precise-versus-blanket comparison on common random
numbers: a health code from day 40 against no control (paired differences), and a four-week
citywide lockdown's cost (28 days x every resident).
"""

import numpy as np
import pytest

from twin.agents.epidemic import Disease, EpidemicRun
from twin.agents.epidemic_contacts import contacts_from_population
from twin.agents.epidemic_control import Controls, Intervention
from twin.ensemble import compare
from twin.errors import ScenarioError
from twin.runner import load_scenario

DAYS = 70


@pytest.fixture(scope="module")
def city():
    sc = load_scenario("hefei_epidemic", overrides=["population.persons=6000"])
    pop = sc.plans["population"].population
    return pop, contacts_from_population(pop, seed=3)


def _run(city, interventions, seed=1, ward=None):
    pop, c = city
    run = EpidemicRun(c, Disease(beta=0.05), pop.age, np.random.default_rng(seed), DAYS,
                      home_zone=pop.home_zone_idx, n_zones=pop.city.n_zones, ward_beds=ward, icu_beds=None)
    run.seed(np.arange(0, 6000, 300), 0)
    controls = Controls(interventions, run, pop.home_zone_idx, np.random.default_rng(seed + 100))
    for d in range(DAYS):
        run.step(**controls.today(d))
        controls.after(d)
    return run, controls


def test_school_closure_stops_school_transmission_on_its_days(city):
    run, _ = _run(city, [Intervention("school_closure", 20, 40)])
    d = run.result().daily
    assert (d["new_school"].iloc[20:40] == 0).all()
    assert d["new_school"].iloc[40:].sum() > 0 and d["new_school"].iloc[:20].sum() > 0


def test_a_citywide_lockdown_leaves_only_household_transmission(city):
    zones = tuple(range(city[0].city.n_zones))
    run, controls = _run(city, [Intervention("lockdown", 15, 45, zones=zones)])
    d = run.result().daily.iloc[15:45]
    assert (d[["new_school", "new_work", "new_community"]].to_numpy() == 0).all()
    assert d["new_household"].sum() > 0
    rows = controls.restricted()
    assert all(r["locked_down"] + r["isolated"] + r["quarantined"] == 6000 for r in rows[15:45])


def test_nobody_isolated_in_a_facility_infects_anyone(city):
    run, controls = _run(city, [Intervention("health_code", 10, None, test_share=1.0, sensitivity=1.0,
                                             compliance=1.0, delay_d=0.5)])
    res = run.result()
    infected = np.flatnonzero(res.infector >= 0)
    src = res.infector[infected]
    day_of = np.floor(res.t_inf_d[infected])
    during = (controls.iso_from[src] <= day_of) & (day_of < controls.iso_until[src])
    assert controls.counts["positives"] > 20 and np.isfinite(controls.iso_from).sum() > 20
    assert not during.any()


def test_more_beds_fewer_refusals(city):
    few, _ = _run(city, [], ward=2)
    more, _ = _run(city, [Intervention("beds", 0, None, ward_beds=30)], ward=2)
    r_few, r_more = few.result().daily, more.result().daily
    assert r_few["ward_refused"].sum() > 0 and r_more["ward_refused"].sum() < r_few["ward_refused"].sum()
    assert r_more["ward_occupied"].max() > 2


@pytest.mark.parametrize("kw, message", [
    ({"kind": "curfew"}, "kind 'curfew'"),
    ({"kind": "lockdown"}, "needs zones"),
    ({"kind": "school_closure", "start_day": 5, "end_day": 5}, "must be after"),
    ({"kind": "health_code", "sensitivity": 1.5}, "sensitivity"),
    ({"kind": "health_code", "isolation": "hotel"}, "isolation 'hotel'"),
])
def test_bad_interventions_are_clear_errors(kw, message):
    with pytest.raises(ScenarioError, match=message):
        Intervention(**kw)


@pytest.mark.parametrize("override, message", [
    ("interventions.1.zones=['1', '42']", r"zones \['42'\] are not districts"),
    ("interventions.0.zones=['1']", "zones belong to kind = 'lockdown'"),
    ("interventions.0.start_day=500", "not within the run's"),
])
def test_bad_intervention_tables_name_the_table(override, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario("hefei_epidemic", overrides=["population.persons=4000", "interventions.0.enabled=true",
                                                   "interventions.1.enabled=true", override])


def test_compare_gives_paired_differences_of_infections_and_restricted_days():
    """A health code against no control on common random numbers (the same contacts, dice and
    seeds), and the lockdown's cost in closed form: 28 days x every resident."""
    base = ["population.persons=6000", "run.until_s=10368000", "epidemic.r0=3.0"]
    cmp = compare("hefei_epidemic", "hefei_epidemic", replications=3, seed=0, overrides_a=base,
                  overrides_b=base + ["interventions.0.enabled=true"])
    a, b, diff = cmp.a.summary["mean"], cmp.b.summary["mean"], cmp.difference
    assert b["epidemic_infected"] < 0.5 * a["epidemic_infected"]
    assert diff.loc["epidemic_infected", "high"] < 0
    assert a["epidemic_restricted_person_days"] == 0 < b["epidemic_restricted_person_days"]
    lock = compare("hefei_epidemic", "hefei_epidemic", replications=2, seed=0, overrides_a=base,
                   overrides_b=base + ["interventions.1.enabled=true"])
    assert (lock.b.runs["epidemic_locked_down_person_days"] == 28 * 6000).all()
