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
from twin_small import EVACUATION as EVAC

from twin.errors import ScenarioError
from twin.results import open_results
from twin.runner import load_scenario, run



def _cars(path):
    with open_results(path) as f:
        return f.table("/events/evacuation_cars"), f.table("/network/evacuation_shelters")


def test_every_person_told_ends_in_exactly_one_state(tmp_path):
    res = run(EVAC, seed=5, out=tmp_path / "e.h5")
    k = res.kpis
    total = (k["evacuation_persons_sheltered"] + k["evacuation_persons_travelling"] + k["evacuation_persons_no_shelter"]
             + k["evacuation_persons_stayed"] + k["evacuation_persons_stranded"])
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
    arrive and are counted as stranded (no open route from where they are); the ambulance, cut off too, waits for a route, and the
    run ends (a closure that disconnects the network never hangs it)."""
    flooded = EVAC + """
[[hazards]]
name = "everywhere"
crs = "city"
polygon = [[-1300.0, -1300.0], [1300.0, -1300.0], [1300.0, 1300.0], [-1300.0, 1300.0]]
times_s = [0.0, 5400.0]
depth_mm = [0.0, 600.0]
facility_depth_mm = 1000.0       # the shelters stay in service (upper floors)
"""
    res = run(flooded, seed=9)
    k = res.kpis
    assert k["evacuation_persons_stranded"] > 0       # every link closed: no car still on its way can arrive
    assert k["evacuation_persons_travelling"] == 0
    total = (k["evacuation_persons_sheltered"] + k["evacuation_persons_travelling"] + k["evacuation_persons_no_shelter"]
             + k["evacuation_persons_stayed"] + k["evacuation_persons_stranded"])
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
    too_many = text.replace("warning_s = 36000.0", 'warning_s = 36000.0\npersons = { "5" = 10000000 }')
    with pytest.raises(ScenarioError, match=r"persons.5 = 1e\+07: more than the [\d,]+ persons the \[population\] "
                                            r"puts in district 5 at 10:00"):
        load_scenario(too_many)
    zone5 = list(sc.city.zone_ids).index(5)
    assert plan.told == pytest.approx(round(float(present.iloc[10, zone5])), abs=1)
    # who needs help and who walks: the population's shares in the district at the warning
    pop = sc.plans["population"].population
    here = pop.location_at(36000.0).zone_idx == zone5
    n_go = len(plan.cars) and plan.cars["persons"].sum() + len(plan.walkers) + len(plan.assisted)
    alone = float(((pop.health_flags & 2) > 0)[here].mean())
    no_car = float((~pop.car_available)[here].mean())
    for got, n, p in ((len(plan.assisted), n_go, alone), (len(plan.walkers), n_go - len(plan.assisted), no_car)):
        assert abs(got - n * p) <= 5 * (n * p * (1 - p)) ** 0.5 + 1      # binomial, 5 sigma
    assert len(plan.assisted) > 0 and len(plan.walkers) > 0


MIXED = EVAC.replace("compliance = 0.8", "compliance = 0.9\nassisted_share = 0.1\nwalk_share = 0.2\n"
                     "assist_vans = 2\nassist_capacity = 6\nassist_board_s = 60.0")


def test_walkers_and_assisted_each_end_in_one_state_and_the_area_empties(tmp_path):
    res = run(MIXED, seed=11, out=tmp_path / "m.h5")
    k = res.kpis
    total = sum(k[f"evacuation_persons_{s}"] for s in ("sheltered", "travelling", "stranded", "no_shelter", "stayed",
                                                      "waiting_assistance"))
    assert total == pytest.approx(5000)
    assert k["evacuation_persons_assisted"] > 300 and k["evacuation_persons_walking"] > 600
    with open_results(tmp_path / "m.h5") as f:
        t, in_area = f.series("/timeseries/evacuation_area/persons_in_area")
        _, waiting = f.series("/timeseries/evacuation_area/waiting_assistance")
    assert in_area[t <= 3600.0].tolist() == [5000.0] * int((t <= 3600.0).sum())
    assert np.all(np.diff(in_area) <= 1e-9) and np.all(np.diff(waiting[t >= 3600.0]) <= 1e-9)
    assert in_area[-1] == pytest.approx(k["evacuation_persons_stayed"] + k["evacuation_persons_waiting_assistance"]
                                        + k["evacuation_persons_no_shelter"])


def test_a_walker_arrives_after_the_shortest_walk_at_walking_speed():
    plan = load_scenario(MIXED).plans["evacuation"]
    wk = plan.walkers
    city = load_scenario(MIXED).city
    ids = np.asarray(city.node_ids)
    nodes = [s[1] for s in plan.shelters]
    d = city.travel_times(ids[wk["origin_idx"].to_numpy()], ids[nodes], link_cost_s=np.asarray(city.length_m))
    # on the 6 x 6 grid of 500 m links the shortest walk is the Manhattan distance
    x, y = np.asarray(city.x_m), np.asarray(city.y_m)
    o, s = wk["origin_idx"].to_numpy(), np.asarray(nodes)[wk["shelter_idx"].to_numpy()]
    manhattan = np.abs(x[o] - x[s]) + np.abs(y[o] - y[s])
    np.testing.assert_allclose(d[np.arange(len(wk)), wk["shelter_idx"].to_numpy()], manhattan)
    np.testing.assert_allclose(wk["arrive_s"] - wk["depart_s"], manhattan / 1.2)


def test_vans_fetch_the_longest_waiting_in_loads_of_their_capacity():
    k = run(MIXED, seed=12).kpis
    n_a = k["evacuation_persons_assisted"]
    assert k["evacuation_assisted_wait_mean_s"] > 0 and k["evacuation_assisted_wait_max_s"] <= 14400.0 - 3600.0
    # without vans nobody is fetched: everyone needing help is still waiting at the end
    none = run(MIXED.replace("assist_vans = 2", "assist_vans = 0"), seed=12).kpis
    assert none["evacuation_persons_waiting_assistance"] == n_a
    assert none["evacuation_assisted_wait_max_s"] == 14400.0 - 3600.0


def test_van_loads_respect_capacity_and_the_queue():
    from twin.flows import Simulation

    sc = load_scenario(MIXED)
    sim = Simulation(sc, seed=12, until_s=14400.0)
    sim.run()
    (flow,) = [f for f in sim.flows if f.name == "evacuation"]
    a = flow.assist
    drops = np.array(a.drops)
    assert len(drops) and drops[:, 2].max() <= 6 and drops[:, 2].sum() == np.isfinite(a.drop_s).sum()
    picked = np.flatnonzero(np.isfinite(a.pickup_s))
    assert np.all(a.pickup_s[picked] >= 3600.0)
    # each load is one district's; the first of each load is the longest waiting (lowest index) then
    loads = {}
    for p in picked:
        loads.setdefault((a.drop_s[p], a.shelter_idx[p]), []).append(p)
    assert all(len({a.zone[p] for p in ps}) == 1 for ps in loads.values())


@pytest.mark.parametrize("change,match", [
    (("assisted_share = 0.1", "assisted_share = 1.5"), r"assisted_share = 1.5; expected a share between 0 and 1"),
    (("walk_share = 0.2", 'walk_share = { "2" = 0.1 }'), "walk_share: no share for district 1"),
])
def test_bad_shares_are_named(change, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(MIXED.replace(*change))


def test_cars_cut_off_from_their_shelter_are_stranded_the_others_drive_on(tmp_path):
    """Every road into shelter 'east' (node 18) closes for good at 1:10, while cars are on their
    way: exactly the cars bound for 'east' that have not arrived are stranded."""
    cut = EVAC.replace("compliance = 0.8", "compliance = 1.0\nmean_delay_s = 600.0") + "".join(f"""
[[events]]
time_s = 4200.0
action = "close"
from_node = 18
to_node = {n}
both_directions = true
""" for n in (12, 17, 24))
    res = run(cut, seed=13, out=tmp_path / "c.h5")
    cars, _ = _cars(tmp_path / "c.h5")
    k = res.kpis
    late_east = cars[(cars["shelter_idx"] == 0) & cars["arrive_s"].isna()]["persons"].sum()
    late_north = cars[(cars["shelter_idx"] == 1) & cars["arrive_s"].isna()]["persons"].sum()
    assert late_east > 0 and k["evacuation_persons_stranded"] == pytest.approx(late_east)
    assert k["evacuation_persons_travelling"] == pytest.approx(late_north)


def test_a_district_sent_to_a_chosen_shelter_goes_there_until_it_is_full():
    """District 1 is nearer 'north' for some nodes and 'east' for others; with shelter_of every
    car goes to 'east' while its 3,000 places last, and the rest to the nearest with room."""
    chosen = EVAC.replace("persons = { \"1\" = 5000 }", "persons = { \"1\" = 5000 }\nshelter_of = { \"1\" = \"east\" }")
    cars = load_scenario(chosen).plans["evacuation"].cars
    east = cars[cars["shelter_idx"] == 0]
    assert east["persons"].sum() == pytest.approx(3000.0)
    first = cars.sort_values("depart_s", kind="stable").head(len(east) - 5)
    assert (first["shelter_idx"] == 0).all()
    free = load_scenario(EVAC).plans["evacuation"].cars          # nearest: 'east' does not fill
    assert free.loc[free["shelter_idx"] == 0, "persons"].sum() < 2800
    assert free["persons"].sum() == pytest.approx(cars["persons"].sum())
    with pytest.raises(ScenarioError, match=r"shelter_of.1 = 'gym': no such shelter; shelters: east, north"):
        load_scenario(chosen.replace('"east" }', '"gym" }'))
