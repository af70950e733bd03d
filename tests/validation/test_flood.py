"""Floods on the network (twin.hazards and the hazards flow), against the published depth-speed
curve and a rising-depth test field whose timing is worked out by hand.

- Pregnolato et al. (2017, Transp. Res. D 55): v(w) = 0.0009 w^2 - 0.5529 w + 86.9448 km/h, so
  86.9448, 40.6548, 12.3648 and 4.9698 km/h at 0, 100, 200 and 250 mm, and impassable from 300.
- The field: a strip across three rows of a 6 x 6 grid (500 m links, 13.9 m/s), depth rising
  linearly 0 -> 200 mm over 30:00-60:00, -> 400 mm at 2:00, back to 0 at 3:00, evaluated every
  10 min. It touches exactly the 6 east-west links crossing x = 1000 m. The curve's speed falls
  under their 50 km/h once the water passes about 76 mm, so they slow from the first step beyond
  (50:00, 133 mm; 40:00 has 67 mm, 54 km/h: no cap), close at 1:30 (300 mm, a step time) and
  reopen at 2:20 (the first step after 2:15, when the receding water passes 300 mm). No vehicle
  enters them while closed.
- Facilities at the strip's nodes (a node's depth is its deepest link's) are out of service over
  exactly that window: a station's idle unit moves to the nearest station in service at 1:30 and
  home at 2:20, no transport leaving in the window goes to the flooded hospital, whose ED
  patients move to the dry one with the rest of their stay, and a shelter in the water is not
  used.
"""

import json

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.hazards import lonlat_to_city, points_in_polygon, pregnolato_speed_kmh
from twin.results import open_results
from twin.runner import load_scenario, run

FLOOD = SMALL.replace("until_s = 3600.0", "until_s = 14400.0") + """
[traffic]
random_trips = 3000
window_s = 10800.0

[[hazards]]
name = "river"
crs = "city"
polygon = [[900.0, -100.0], [1100.0, -100.0], [1100.0, 3000.0], [900.0, 3000.0]]
times_s = [1800.0, 3600.0, 7200.0, 10800.0]
depth_mm = [0.0, 200.0, 400.0, 0.0]
"""


def test_pregnolato_curve_at_the_published_depths():
    v = pregnolato_speed_kmh([0.0, 100.0, 200.0, 250.0, 299.9, 300.0, 500.0])
    np.testing.assert_allclose(v[:4], [86.9448, 40.6548, 12.3648, 4.9698], atol=1e-9)
    assert v[4] > 0 and v[5] == 0 and v[6] == 0
    # with a deeper closing depth the curve stays at its minimum (307 mm) instead of rising again
    deep = pregnolato_speed_kmh(np.linspace(0.0, 590.0, 60), close_depth_mm=600.0)
    assert np.all(np.diff(deep) <= 1e-12) and deep[-1] == pytest.approx(deep.min())


def test_points_in_polygon_concave_and_on_a_brute_grid():
    # an L shape: the notch (top right) is outside
    px, py = [0, 2, 2, 1, 1, 0], [0, 0, 1, 1, 2, 2]
    got = points_in_polygon([0.5, 1.5, 1.5, 0.5, 3.0], [0.5, 0.5, 1.5, 1.5, 0.5], px, py)
    assert got.tolist() == [True, True, False, True, False]
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 3, 500), rng.uniform(-1, 3, 500)
    want = ((x > 0) & (x < 2) & (y > 0) & (y < 1)) | ((x > 0) & (x < 1) & (y >= 1) & (y < 2))
    np.testing.assert_array_equal(points_in_polygon(x, y, px, py), want)


def _strip_links(city):
    return sorted(k for k in range(city.n_links)
                  if {city.x_m[city.link_from_idx[k]], city.x_m[city.link_to_idx[k]]} == {750.0, 1250.0}
                  and city.y_m[city.link_from_idx[k]] > -100)


def test_rising_field_slows_and_closes_the_right_links_at_the_right_times():
    sc = load_scenario(FLOOD)
    (plan,) = sc.plans["hazards"]
    links = _strip_links(sc.city)
    assert len(links) == 6
    wet = np.flatnonzero((plan.depth_mm > 0).any(axis=0)).tolist()
    assert wet == links
    by_action = {}
    for t, action, ls, v in plan.changes:
        by_action.setdefault(action, []).append((t, sorted(ls.tolist()), v))
    assert by_action["close"] == [(5400.0, links, None)]
    assert by_action["open"] == [(8400.0, links, None)]
    first_speed = by_action["speed"][0]
    # 50:00: 133.3 mm is the first step depth whose curve speed is under 50 km/h (500 m in 36 s)
    assert first_speed[0] == 3000.0 and first_speed[1] == links
    assert first_speed[2] == pytest.approx(pregnolato_speed_kmh(400.0 / 3.0)[()] / 3.6)
    assert by_action["speed"][-1][0] >= 8400.0                       # the speed restored as the water goes


def test_no_vehicle_enters_a_closed_link():
    res = run(FLOOD, seed=4)
    city = load_scenario(FLOOD).city
    links = _strip_links(city)
    ts = res.traffic.links["time_s"]
    iv = ts[1] - ts[0]
    closed = (ts >= 5400.0) & (ts + iv <= 8400.0)
    assert res.traffic.links["inflow_veh"][closed][:, links].sum() == 0
    assert res.traffic.links["inflow_veh"][ts + iv <= 5400.0][:, links].sum() > 0
    assert res.kpis["hazard_river_links_closed_max"] == 6.0
    assert res.kpis["hazard_river_closed_link_h"] == pytest.approx(6 * 3000 / 3600)


def test_lonlat_footprints_and_geojson_files(tmp_path):
    sc = load_scenario("hefei_day")
    city = sc.city
    k = 0
    lon, lat = city.lon[city.link_from_idx[k]], city.lat[city.link_from_idx[k]]
    x, y = lonlat_to_city(city, [lon], [lat])
    assert abs(x[0] - city.x_m[city.link_from_idx[k]]) < 1.0 and abs(y[0] - city.y_m[city.link_from_idx[k]]) < 1.0
    box = [[lon - 1e-4, lat - 1e-4], [lon + 1e-4, lat - 1e-4], [lon + 1e-4, lat + 1e-4], [lon - 1e-4, lat + 1e-4]]
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [box + [box[0]]]},
               "properties": {"times_s": [0, 3600], "depth_mm": [500, 500]}}
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    scen = tmp_path / "s.toml"
    scen.write_text(sc.text + '\n[[hazards]]\nname = "pond"\nfile = "f.geojson"\n')
    (plan,) = load_scenario(scen).plans["hazards"]
    touched = np.flatnonzero(plan.depth_mm[0] > 0)
    node = city.link_from_idx[k]
    assert k in touched and all(node in (city.link_from_idx[j], city.link_to_idx[j]) for j in touched)
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::32650"}}, "features": [feature]}))
    with pytest.raises(ScenarioError, match="must be WGS 84"):
        load_scenario(scen)
    far = [[0.0, 0.0], [0.001, 0.0], [0.001, 0.001]]
    feature["geometry"]["coordinates"] = [far + [far[0]]]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with pytest.raises(ScenarioError, match="touches no link of city"):
        load_scenario(scen)


@pytest.mark.parametrize("change,match", [
    ("depth_mm = [0.0, 200.0, 400.0, 0.0]", None),
    ("depth_mm = [0.0, -5.0, 400.0, 0.0]", r"depth_mm\[1\] = -5.0; expected a depth >= 0 mm"),
    ("times_s = [1800.0, 3600.0, 3600.0, 10800.0]", "expected finite seconds in increasing order"),
    ("times_s = [1800.0, 3600.0]", "equal length"),
    ('crs = "city"\nfile = "x.geojson"', "give either file"),
    ('crs = "lonlat"', "touches no link|no longitude/latitude"),
])
def test_bad_floods_are_named(change, match):
    if change.startswith("depth"):
        text = FLOOD.replace("depth_mm = [0.0, 200.0, 400.0, 0.0]", change)
    elif change.startswith("times"):
        text = FLOOD.replace("times_s = [1800.0, 3600.0, 7200.0, 10800.0]", change)
    else:
        text = FLOOD.replace('crs = "city"', change)
    if match is None:
        load_scenario(text)
        return
    with pytest.raises(ScenarioError, match=match):
        load_scenario(text)


def test_two_hazards_with_one_name_are_refused():
    twice = FLOOD + FLOOD[FLOOD.index("[[hazards]]"):]
    with pytest.raises(ScenarioError, match="hazard name 'river' is used twice"):
        load_scenario(twice)


def test_a_flood_without_traffic_says_what_to_add():
    no_traffic = FLOOD.replace("[traffic]\nrandom_trips = 3000\nwindow_s = 10800.0\n", "")
    with pytest.raises(ScenarioError, match=r"\[\[hazards\]\] act on the links the traffic drives on.*add a \[traffic\]"):
        run(no_traffic, seed=1)


CASUALTIES = SMALL.replace("until_s = 3600.0", "until_s = 7200.0").replace("rate_per_h = 4.0", "rate_per_h = 0.1") + """
[[call_types]]
name = "flood-injury"
priority = 2
share = 0.0
on_scene = 600.0

[traffic]
random_trips = 500

[[hazards]]
name = "pool"
crs = "city"
polygon = [[900.0, -100.0], [1100.0, -100.0], [1100.0, 3000.0], [900.0, 3000.0]]
times_s = [0.0]
depth_mm = [200.0]
casualty_call_type = "flood-injury"
casualty_depths_mm = [150.0, 300.0]
casualty_rate_per_100k_h = [500.0, 2000.0]
persons = { "4" = 9000 }
"""


def test_injury_calls_arise_at_the_flooded_nodes_at_the_band_rate():
    """200 mm (the 150-300 mm band, 500 per 100,000 an hour) on the 6 links crossing x = 1000 m,
    whose 6 end nodes are district 4's (9 nodes, 9,000 persons: 1,000 a node): expected
    6 x 1,000 x 500 / 1e5 x 2 h = 60 calls, Poisson (4 sigma = 31)."""
    sc = load_scenario(CASUALTIES.replace("[[call_types]]\nname = \"p1\"", "[[call_types]]\nname = \"p1\"\nshare = 1.0", 1))
    (plan,) = sc.plans["hazards"]
    assert plan.casualty_mean.sum() == pytest.approx(60.0)
    flooded = np.flatnonzero(plan.casualty_mean.sum(axis=0) > 0)
    assert sorted(np.asarray(sc.city.node_ids)[flooded].tolist()) == [23, 24, 29, 30, 35, 36]
    res = run(sc, seed=3)
    n = res.kpis["hazard_pool_casualty_calls"]
    assert abs(n - 60) <= 4 * np.sqrt(60)
    calls = res.ems.calls
    injured = calls[calls["type_idx"] == 1]                         # the second call type: flood-injury
    assert len(injured) == n
    nodes = np.asarray(sc.city.node_ids)[sc.layout.location_node_idx[injured["location_idx"].to_numpy()]]
    assert set(nodes.tolist()) <= {23, 24, 29, 30, 35, 36}


def test_casualty_settings_are_checked():
    base = CASUALTIES.replace("[[call_types]]\nname = \"p1\"", "[[call_types]]\nname = \"p1\"\nshare = 1.0", 1)
    with pytest.raises(ScenarioError, match="2 rates for 3 depth bands"):
        load_scenario(base.replace("casualty_depths_mm = [150.0, 300.0]", "casualty_depths_mm = [150.0, 300.0, 600.0]"))
    with pytest.raises(ScenarioError, match="no such call type"):
        load_scenario(base.replace('casualty_call_type = "flood-injury"', 'casualty_call_type = "drowning"'))
    with pytest.raises(ScenarioError, match="no casualty_call_type"):
        load_scenario(base.replace('casualty_call_type = "flood-injury"\n', ""))
    with pytest.raises(ScenarioError, match="district .7. is not a zone"):
        load_scenario(base.replace('persons = { "4" = 9000 }', 'persons = { "7" = 9000 }'))


def test_a_call_cut_off_by_the_water_waits_and_is_served_when_it_recedes():
    """Every link into and out of the corner node 36 is under 400 mm until 40:00, dry at 50:00
    (evaluated every 10 min: open from 50:00). A patient there at 10:00 gets no unit while the
    water stands (none is sent into it), and the nearest idle unit goes once it recedes."""
    text = SMALL.replace("until_s = 3600.0", "until_s = 7200.0").replace("rate_per_h = 4.0", "rate_per_h = 0.01") + """
[[stations]]
name = "far"
node = 6
ambulances = 1

[traffic]
random_trips = 100

[[incidents]]
name = "stranded"
node = 36
time_s = 600.0
patients = 1

[[hazards]]
name = "corner"
crs = "city"
polygon = [[1000.0, 1000.0], [1400.0, 1000.0], [1400.0, 1400.0], [1000.0, 1400.0]]
times_s = [0.0, 2400.0, 3000.0]
depth_mm = [400.0, 400.0, 0.0]
"""
    sc = load_scenario(text)
    (plan,) = sc.plans["hazards"]
    opened = [t for t, a, links, v in plan.changes if a == "open"]
    assert opened == [3000.0]
    res = run(sc, seed=1)
    calls = res.ems.calls
    patient = calls[calls["zone_idx"] < 0].iloc[0]
    assert patient["time_s"] == 600.0
    assert patient["dispatched_s"] >= 3000.0                       # nobody was sent into the water
    assert np.isfinite(patient["on_scene_s"])                      # served once it receded
    units = res.ems.units
    assert units.loc[patient["unit_idx"], "name"].startswith("far")   # node 6 is nearer node 36 than node 1


FACILITIES = FLOOD.replace("on_scene = 300.0", "on_scene = 300.0\ntransport_probability = 1.0") + """
[[stations]]
name = "river"
node = 29
ambulances = 1

[[hospitals]]
name = "dry"
node = 13
beds = 4
"""


def test_facilities_in_the_water_go_out_of_service_while_it_stands(tmp_path):
    """Station 'river' (node 29) and hospital 'h' (node 36) touch the strip's links, which
    stand at >= 300 mm from 1:30 to 2:20 (the evaluation steps above): both are out then."""
    quiet = FACILITIES.replace("rate_per_h = 4.0", "rate_per_h = 0.01")
    res = run(quiet, seed=2, out=tmp_path / "q.h5")
    with open_results(tmp_path / "q.h5") as f:
        out = f.table("/events/hazard_facility_outages")
        ev = f.table("/events/ems_unit_events")
    assert sorted(zip(out["kind"], out["name"], out["start_s"], out["end_s"])) == [
        ("hospital", "h", 5400.0, 8400.0), ("station", "river", 5400.0, 8400.0)]
    assert res.kpis["hazard_facility_outages"] == 2.0
    # the idle unit of 'river' moves to the nearest station in service, and home when it reopens
    moves = ev[(ev["unit_idx"] == 1) & (ev["event"] == "relocating")]["time_s"].tolist()
    assert moves == [5400.0, 8400.0]
    back = ev[(ev["unit_idx"] == 1) & (ev["event"] == "at_station")]["time_s"].tolist()
    assert len(back) == 2 and 5400.0 < back[0] < 8400.0 < back[1]


def test_transports_avoid_a_hospital_out_of_service(tmp_path):
    res = run(FACILITIES.replace("rate_per_h = 4.0", "rate_per_h = 6.0"), seed=2, out=tmp_path / "b.h5")
    with open_results(tmp_path / "b.h5") as f:
        adm = f.table("/events/ems_admissions")
        ev = f.table("/events/ems_unit_events")
    # the hospital of each transport that left during the outage: never the flooded 'h' (index 0)
    left = ev[(ev["event"] == "transporting") & (ev["time_s"] >= 5400.0) & (ev["time_s"] < 8400.0)]
    assert len(left) >= 2
    hosp = adm.set_index("call_id")["hospital_idx"]
    assert set(hosp[left["call_id"]].tolist()) == {1}
    # before and after, the nearer 'h' takes patients
    assert (hosp[ev[(ev["event"] == "transporting") & (ev["time_s"] < 5400.0)]["call_id"]] == 0).any()
    assert res.kpis["n_calls"] > 0


def test_a_shelter_in_the_water_is_not_used():
    evac = FLOOD + """
[evacuation]
zones = [1]
warning_s = 1800.0
compliance = 1.0
persons = { "1" = 500 }

[[shelters]]
name = "wet"
node = 30
capacity = 5000

[[shelters]]
name = "high"
node = 33
capacity = 5000
"""
    res = run(evac, seed=3)
    assert res.kpis["evacuation_shelters_flooded"] == 1.0
    plan = load_scenario(evac).plans["evacuation"]
    assert plan.flooded == (True, False) and plan.shelters[0][2] == 0.0
    assert set(plan.cars["shelter_idx"]) == {1}


def test_a_hospital_in_the_water_moves_its_patients_to_the_nearest_dry_one(tmp_path):
    """At 1:30 'h' closes: each patient in one of its ED beds (or waiting for one) moves to 'dry'
    at once with the rest of its stay, and 'h' holds nobody while the water stands."""
    busy = FACILITIES.replace("rate_per_h = 4.0", "rate_per_h = 6.0").replace("beds = 4\n", "beds = 4\nlength_of_stay = 7200.0\n", 1)
    res = run(busy, seed=5, out=tmp_path / "h.h5")
    with open_results(tmp_path / "h.h5") as f:
        adm = f.table("/events/ems_admissions")
        t_occ, occ = f.series("/timeseries/ems_hospital_occupancy/occupancy_beds")
    h, dry = adm[adm["hospital_idx"] == 0], adm[adm["hospital_idx"] == 1]
    moved = h[(h["discharge_s"] == 5400.0) & (h["bed_s"] < 5400.0)]
    assert len(moved) >= 2 and res.kpis["hospital_patients_evacuated"] >= len(moved)
    arrived = dry[dry["arrival_s"] == 5400.0]
    assert sorted(arrived["call_id"]) == sorted(h[h["discharge_s"] == 5400.0]["call_id"])
    # in bed at 'dry' they keep the rest of the 2 h stay begun at 'h'
    stay = arrived.merge(moved[["call_id", "bed_s"]], on="call_id", suffixes=("", "_h"))
    got_bed = stay["bed_s"] == 5400.0
    assert got_bed.any()
    np.testing.assert_allclose(stay.loc[got_bed, "discharge_s"], stay.loc[got_bed, "bed_s_h"] + 7200.0)
    window = (t_occ > 5400.0) & (t_occ < 8400.0)
    assert np.all(occ[window, 0] == 0)
