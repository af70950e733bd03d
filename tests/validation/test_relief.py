"""Relief logistics (the relief flow): trucks from depots to shelters through the traffic.

- One truck, one shelter of P persons there from t = 0, one item: each trip is loading + the
  free-flow drive + unloading (empty roads: the drive is the links' free-flow ticks), the truck
  leaves again at the first review after it is back, and the shelter's unmet demand is the
  closed form of a depleting inventory: q·T - sum_k min(C, q·(T - t_k)) for deliveries of C
  units at t_k and consumption q = P·r / day (the truck is the only supply; each load runs out
  before the next when C/q is shorter than the round trip).
- Conservation: every unit of stock is at a depot, on a truck, held at a shelter or consumed,
  on a flooded run with two items and several trucks; deliveries add up to held + consumed.
- The rule: the shelter with the largest shortfall in person-days first; the nearest depot
  that has the item, not the nearest depot.
- Cut off: with every road into the shelter closed for an hour the truck waits for a route,
  delivers once it opens, and the run ends.
"""

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.results import open_results
from twin.runner import load_scenario, run

BASE = SMALL.replace("until_s = 3600.0", "until_s = 14400.0") + """
[traffic]
random_trips = 0

[evacuation]
centre = 8
radius_m = 0.0
warning_s = 0.0
compliance = 1.0
mean_delay_s = 0.0
persons = { "1" = 9000 }
lower_bound = false

[[shelters]]
name = "school"
node = 8
capacity = 50000

[relief]
demand_per_person_day = { water_l = 15.0 }
truck_capacity_kg = 1000
review_s = 60.0
load_s = 600.0
unload_s = 600.0

[[depots]]
name = "store"
node = 29
trucks = 1
stock = { water_l = 100000 }
"""


def _free_flow_s(text, a, b):
    city = load_scenario(text).city
    return float(city.travel_times([a], [b])[0, 0])


@pytest.mark.parametrize("persons", [9000, 45000])
def test_one_truck_matches_the_round_trip_and_the_depleting_inventory(persons):
    text = BASE.replace('persons = { "1" = 9000 }', f'persons = {{ "1" = {persons} }}')
    res = run(text, seed=1)
    op, k = res.relief, res.kpis
    p = k["evacuation_persons_sheltered"]
    assert p > 0 and k["evacuation_cars"] > 0 and k["evacuation_clearance_100_s"] == 0.0    # all in place at 0
    tau = _free_flow_s(text, 29, 8)
    d = np.array([(r[2], r[3], r[4]) for r in op.deliveries])
    drive = d[:, 1] - d[:, 0] - 600.0
    assert np.all(np.abs(drive - tau) <= 5.0)            # a tick (1 s) per link of the route at most
    assert np.all(d[:, 2] - d[:, 1] == 600.0)
    # the truck leaves at a review (60 s grid) within one review period of being back
    back = d[:-1, 2] + drive[:-1]
    assert np.all(d[:, 0] % 60.0 == 0.0) and np.all((d[1:, 0] - back >= 0.0) & (d[1:, 0] - back <= 60.0))
    assert d[0, 0] == 0.0
    q, c, t_end = p * 15.0 / 86400.0, 1000.0, 14400.0
    t_k = d[d[:, 2] <= t_end, 2]
    if c / q < np.diff(t_k).min():      # each load runs out before the next: a depleting inventory
        assert persons == 45000
        expected = q * t_end - np.minimum(c, q * (t_end - t_k)).sum()
    else:                               # a load outlasts a round trip: short only until the first
        assert persons == 9000
        expected = q * t_k[0]
    assert k["relief_water_l_unmet"] == pytest.approx(expected, rel=1e-9)


FLOODED = SMALL.replace("until_s = 3600.0", "until_s = 14400.0") + """
[traffic]
random_trips = 300

[evacuation]
zones = [1, 2]
warning_s = 0.0
compliance = 0.9
mean_delay_s = 1200.0
persons = { "1" = 3000, "2" = 3000 }

[[shelters]]
name = "school"
node = 8
capacity = 4000

[[shelters]]
name = "hall"
node = 17
capacity = 2000

[relief]
demand_per_person_day = { water_l = 15.0, food_kg = 0.6 }
truck_capacity_kg = 4000
review_s = 300.0
min_load_kg = 500.0
load_s = 600.0
unload_s = 600.0

[[depots]]
name = "store"
node = 29
trucks = 3
stock = { water_l = 100000 }

[[depots]]
name = "far"
node = 36
trucks = 2
stock = { water_l = 20000, food_kg = 3000 }
""" + "".join(f"""
[[events]]
time_s = {t}
action = "{a}"
from_node = 17
to_node = {n}
both_directions = true
""" for n in (11, 16, 18, 23) for t, a in ((3600.0, "close"), (7200.0, "open")))


def test_every_unit_is_at_a_depot_on_a_truck_or_delivered(tmp_path):
    res = run(FLOODED, seed=4, out=tmp_path / "r.h5")
    op = res.relief
    c = op.conservation()
    initial = op.plan.stock.sum(axis=0)
    assert initial.tolist() == [120000.0, 3000.0]
    assert np.allclose(c["depots"] + c["on_trucks"] + c["held"] + c["consumed"], initial, rtol=0, atol=1e-6)
    with open_results(tmp_path / "r.h5") as f:
        dl = f.table("/events/relief_deliveries")
        t = f.series("/timeseries/relief_shelters/unmet_water_l")
    assert np.allclose([dl["water_l"].sum(), dl["food_kg"].sum()], c["held"] + c["consumed"])
    assert len(dl) == res.kpis["relief_deliveries"] >= 4
    assert set(dl["shelter"]) == {"school", "hall"}
    unmet = t[1]
    assert np.all(np.diff(unmet, axis=0) >= -1e-9)          # unmet demand is cumulative


def test_largest_shortfall_first_and_the_nearest_depot_that_has_the_item():
    two = BASE + """
[[shelters]]
name = "hall"
node = 29
capacity = 50000
"""
    # the area's persons all shelter at 8 (in place); the hall at the depot's node stays empty
    res = run(two, seed=1)
    assert {r[1] for r in res.relief.deliveries} == {0}
    # a nearer depot without water: the truck comes from the farther one that has it
    near = BASE.replace('stock = { water_l = 100000 }', 'stock = { water_l = 100000 }\n\n[[depots]]\nname = "near"\n'
                                                       'node = 9\ntrucks = 1\nstock = { water_l = 0 }')
    res = run(near, seed=1)
    assert res.relief.deliveries and {r[0] for r in res.relief.deliveries} == {0}


def test_a_shelter_cut_off_for_an_hour_gets_its_truck_when_a_road_opens():
    closed = BASE + "".join(f"""
[[events]]
time_s = 0.0
action = "close"
from_node = 8
to_node = {n}
both_directions = true

[[events]]
time_s = 3600.0
action = "open"
from_node = 8
to_node = {n}
both_directions = true
""" for n in (2, 7, 9, 14))
    res = run(closed, seed=1)
    first = res.relief.deliveries[0]
    assert first[3] >= 3600.0 and res.kpis["relief_truck_legs_no_route"] >= 1


@pytest.mark.parametrize("change, match", [
    (("stock = { water_l = 100000 }", "stock = { milk_l = 5 }"), r"\[depots.0\] \('store'\) stock: item 'milk_l'"),
    (("node = 29\ntrucks", "node = 999\ntrucks"), r"\[depots.0\] \('store'\) node = 999"),
    (("truck_capacity_kg = 1000", "truck_capacity_kg = 1000\nunit_mass_kg = { water_l = 2000 }"),
     r"unit_mass_kg.water_l = 2000"),
    (("demand_per_person_day = { water_l = 15.0 }\n", ""), r"demand_per_person_day is missing"),
    (("[[depots]]\nname = \"store\"", "[[depotz]]\nname = \"store\""), r"depotz"),
])
def test_bad_relief_is_named(change, match):
    with pytest.raises(ScenarioError, match=match):
        load_scenario(BASE.replace(*change))


def test_relief_needs_shelters_and_depots():
    no_evac = BASE[:BASE.index("[evacuation]")] + BASE[BASE.index("[relief]"):]
    with pytest.raises(ScenarioError, match=r"relief goes to shelters.*\[evacuation\]"):
        load_scenario(no_evac)
    with pytest.raises(ScenarioError, match=r"no \[\[depots\]\]"):
        load_scenario(BASE[:BASE.index("[[depots]]")])
