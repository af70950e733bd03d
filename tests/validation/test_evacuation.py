"""Evacuation (the evacuation flow on the traffic model): conservation of persons, the departure
curve, nearest-with-space shelters, stranding by a flood, and the network's quickest clearance
as a floor under every simulated clearance.

- Conservation: every person told is sheltered, still travelling, without a shelter place or
  stayed; each car's persons are counted once.
- Departures: delays after the warning follow the Rayleigh law of the given mean (a
  Kolmogorov-Smirnov test at level 0.001 on 1,600 cars, so a correct sampler fails 1 run in
  1,000 and a wrong scale fails at once).
- Shelters: no shelter takes more than its capacity; when the nearest fills, cars go to the next.
- With every car leaving at the warning, the simulated 100 % clearance is at least the LP bound
  (it ignores storage, merges and route choice), and the bound is what
  twin.evacuation.quickest_clearance gives for the same cars.
"""

import numpy as np
import pytest
from scipy import stats
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.results import open_results
from twin.runner import load_scenario, run

EVAC = SMALL.replace("until_s = 3600.0", "until_s = 14400.0") + """
[traffic]
random_trips = 0

[evacuation]
zones = [1]
warning_s = 3600.0
compliance = 0.8
persons = { "1" = 5000 }

[[shelters]]
name = "east"
node = 18
capacity = 3000

[[shelters]]
name = "north"
node = 33
capacity = 3000
"""


def _cars(path):
    with open_results(path) as f:
        return f.table("/events/evacuation_cars"), f.table("/network/evacuation_shelters")


def test_every_person_told_ends_in_exactly_one_state(tmp_path):
    res = run(EVAC, seed=5, out=tmp_path / "e.h5")
    k = res.kpis
    total = (k["evacuation_persons_sheltered"] + k["evacuation_persons_travelling"] + k["evacuation_persons_no_shelter"]
             + k["evacuation_persons_stayed"])
    assert k["evacuation_persons_told"] == 5000 and total == pytest.approx(5000)
    cars, shelters = _cars(tmp_path / "e.h5")
    assert cars["persons"].sum() == pytest.approx(5000 - k["evacuation_persons_stayed"])
    assert np.all(cars["persons"] > 0) and np.all(cars["persons"] <= 2.5)
    # zone 1 is the south-west quarter: every car leaves from one of its nodes
    city = load_scenario(EVAC).city
    zone1 = set(np.asarray(city.node_ids)[np.asarray(city.zone_of_node) == 0].tolist())
    assert set(cars["origin"].tolist()) <= zone1


def test_departures_follow_the_rayleigh_curve_of_the_given_mean(tmp_path):
    run(EVAC, seed=6, out=tmp_path / "e.h5")
    cars, _ = _cars(tmp_path / "e.h5")
    delay = cars["depart_s"].to_numpy() - 3600.0
    sigma = 1800.0 / np.sqrt(np.pi / 2)
    assert stats.kstest(delay, stats.rayleigh(scale=sigma).cdf).pvalue > 1e-3
    assert stats.kstest(delay, stats.rayleigh(scale=1.3 * sigma).cdf).pvalue < 1e-3     # the test can fail


def test_shelters_fill_nearest_first_and_never_beyond_capacity(tmp_path):
    small = EVAC.replace("capacity = 3000\n\n[[shelters]]", "capacity = 1000\n\n[[shelters]]")
    res = run(small, seed=7, out=tmp_path / "e.h5")
    cars, shelters = _cars(tmp_path / "e.h5")
    taken = cars[cars["shelter_idx"] >= 0].groupby("shelter_idx")["persons"].sum()
    assert taken[0] <= 1000 + 1e-9 and taken[1] <= 3000 + 1e-9
    assert taken[0] > 1000 - 2.5                                # the nearer one filled up ...
    assert taken[1] > 0                                         # ... and the rest went on
    assert res.kpis["evacuation_persons_no_shelter"] == pytest.approx(
        max(0.0, 5000 - res.kpis["evacuation_persons_stayed"] - 4000), abs=2.5)


def test_simulated_clearance_is_never_below_the_network_bound():
    """Everyone leaving at the order: the simulated 100 % clearance is at least the bound (less
    one vehicle's headway), and so is every other share."""
    now = EVAC.replace("compliance = 0.8", "compliance = 1.0\nmean_delay_s = 0.0")
    res = run(now, seed=8)
    k = res.kpis
    assert k["evacuation_persons_travelling"] == 0
    for pct in (50, 90, 95, 100):
        assert k[f"evacuation_clearance_{pct}_s"] >= k[f"evacuation_bound_{pct}_s"] - 2.0
    assert k["evacuation_bound_50_s"] <= k["evacuation_bound_100_s"]


def test_people_at_a_shelter_node_shelter_in_place_and_fractional_cars_fit():
    """The area is node 19 alone (8 of district 3's 72 persons, all leaving, in cars of 2.5, 2.5,
    2.5 and 0.5). With the 9-place shelter at node 19 they shelter in place, driving nowhere;
    with it at node 20 they drive there, and the bound counts the 4 cars against 9 places
    (3.6 cars of 2.5) without refusing the last, smaller car."""
    base = EVAC.replace("zones = [1]", "centre = 19\nradius_m = 10.0").replace('persons = { "1" = 5000 }',
                                                                             'persons = { "3" = 72 }')
    base = base.replace("compliance = 0.8", "compliance = 1.0").replace("capacity = 3000\n\n[[shelters]]",
                                                                         "capacity = 9\n\n[[shelters]]")
    home = load_scenario(base.replace("node = 18", "node = 19"))
    cars = home.plans["evacuation"].cars
    assert cars["persons"].tolist() == [2.5, 2.5, 2.5, 0.5]
    assert cars["in_place"].all() and (cars["shelter_idx"] == 0).all()
    res = run(home, seed=3)
    assert res.kpis["evacuation_persons_sheltered"] == pytest.approx(8.0)
    away = load_scenario(base.replace("node = 18", "node = 20"))
    plan = away.plans["evacuation"]
    assert not plan.cars["in_place"].any() and (plan.cars["shelter_idx"] == 0).all()
    assert plan.bound is not None and plan.bound.shelter_arrivals.tolist() == pytest.approx([4.0, 0.0])


def test_a_flood_on_the_way_strands_the_late_cars_and_the_run_ends():
    """The whole grid floods, closing every link from 1:30 on: cars still on their way never
    arrive and are counted as travelling; the ambulance, cut off too, waits for a route, and the
    run ends (a closure that disconnects the network never hangs it)."""
    flooded = EVAC + """
[[hazards]]
name = "everywhere"
crs = "city"
polygon = [[-1300.0, -1300.0], [1300.0, -1300.0], [1300.0, 1300.0], [-1300.0, 1300.0]]
times_s = [0.0, 5400.0]
depth_mm = [0.0, 600.0]
"""
    res = run(flooded, seed=9)
    k = res.kpis
    assert k["evacuation_persons_travelling"] > 0
    total = (k["evacuation_persons_sheltered"] + k["evacuation_persons_travelling"] + k["evacuation_persons_no_shelter"]
             + k["evacuation_persons_stayed"])
    assert total == pytest.approx(5000)


@pytest.mark.parametrize("change,match", [
    (("zones = [1]", "zones = [7]"), "district 7 is not a zone of city"),
    (("zones = [1]", "zones = [1]\ncentre = 1\nradius_m = 100.0"), "give either zones"),
    (('persons = { "1" = 5000 }', 'persons = { "2" = 5000 }'), "no count for district 1"),
    (("node = 18", "node = 999"), r"\[shelters.0\] \('east'\) node = 999: not a node"),
    (("warning_s = 3600.0", "warning_s = 20000.0"), "expected a time before"),
    (("[traffic]\nrandom_trips = 0\n", ""), "evacuees drive through the traffic"),
])
def test_bad_evacuations_are_named(change, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(EVAC.replace(*change))


def test_without_counts_the_population_present_at_the_warning_leaves():
    people = load_scenario("hefei_people")
    text = people.text.replace("[calls]", """[evacuation]
zones = [5]
warning_s = 36000.0

[[shelters]]
name = "gym"
node = 11027557490
capacity = 100000

[calls]""", 1)
    sc = load_scenario(text)
    plan = sc.plans["evacuation"]
    present = sc.plans["population"].population.present_by_zone()
    zone5 = list(sc.city.zone_ids).index(5)
    assert plan.told == pytest.approx(round(float(present.iloc[10, zone5])), abs=1)
