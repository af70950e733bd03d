"""Typhoons (twin.hazards.holland_wind_mps and the hazards flow), against Holland's (1980) closed
forms and a brute-force wind field.

- With no Coriolis term the profile peaks at the radius of maximum wind with
  V_max = sqrt(B Δp / (ρ e)) (ρ = 1.15 kg/m³), falls off on both sides, and vanishes at the
  centre; the Coriolis term lowers every speed (f > 0).
- On the 6 x 6 grid a storm parked at the centre (R_m = 900 m, V_max 35 m/s) closes exactly the
  exposed links whose wind, sampled every 5 m along them by brute force, reaches 30 m/s (those
  within 1 m/s of the threshold, where the flow's 50 m sampling may differ, are left out), and
  slows every link reaching 20 m/s to 0.6 of its free speed.
"""

import math

import numpy as np
import pytest
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.hazards import AIR_DENSITY_KG_M3, holland_wind_mps
from twin.runner import load_scenario, run


def test_holland_profile_closed_forms():
    dp, rm, b = 4000.0, 30e3, 1.8
    vmax = math.sqrt(b * dp / (AIR_DENSITY_KG_M3 * math.e))
    r = np.array([1.0, 10e3, 20e3, rm, 40e3, 100e3, 300e3])
    v = holland_wind_mps(r, dp, rm, b)
    assert v[3] == pytest.approx(vmax, rel=1e-12)
    assert np.argmax(v) == 3 and v[0] < 1e-6
    fine = holland_wind_mps(np.linspace(1e3, 200e3, 20001), dp, rm, b)
    assert fine.max() == pytest.approx(vmax, rel=1e-6)
    assert np.all(holland_wind_mps(r, dp, rm, b, latitude_deg=30.0) < v + 1e-12)
    # the southern hemisphere is the mirror image: the same speeds, dying out far away
    np.testing.assert_allclose(holland_wind_mps(r, dp, rm, b, latitude_deg=-30.0),
                               holland_wind_mps(r, dp, rm, b, latitude_deg=30.0))
    assert holland_wind_mps([1000e3], dp, rm, b, latitude_deg=-25.0)[0] < 5.0


STORM = SMALL.replace("until_s = 3600.0", "until_s = 7200.0") + """
[traffic]
random_trips = 300

[[hazards]]
name = "parked"
kind = "typhoon"
crs = "city"
track = [[0.0, 0.0], [0.0, 0.0]]
times_s = [0.0, 7200.0]
pressure_drop_hpa = [{dp}, {dp}]
rmw_m = [900.0, 900.0]
exposed_road_classes = ["{cls}"]
"""


def _brute_wind(city, dp_pa, rm):
    out = np.zeros(city.n_links)
    for k in range(city.n_links):
        a, b = city.link_from_idx[k], city.link_to_idx[k]
        f = np.linspace(0.0, 1.0, int(city.length_m[k] // 5) + 2)
        x = city.x_m[a] + f * (city.x_m[b] - city.x_m[a])
        y = city.y_m[a] + f * (city.y_m[b] - city.y_m[a])
        out[k] = holland_wind_mps(np.hypot(x, y), dp_pa, rm, 1.5).max()
    return out


def test_parked_storm_closes_the_exposed_links_in_the_eyewall():
    dp = 35.0 ** 2 * AIR_DENSITY_KG_M3 * math.e / 1.5 / 100.0        # hPa giving V_max = 35 m/s
    sc = load_scenario(STORM.format(dp=dp, cls="arterial"))
    (plan,) = sc.plans["hazards"]
    city = sc.city
    wind = _brute_wind(city, dp * 100.0, 900.0)
    exposed = np.asarray(city.road_class) == list(city.road_class_names).index("arterial")
    clear = np.abs(wind - 30.0) > 1.0
    closed = plan.closed[0]
    np.testing.assert_array_equal(closed[clear], (exposed & (wind >= 30.0))[clear])
    assert closed.any() and not closed[~exposed].any()
    speeds = {k: v for t, a, links, v in plan.changes if a == "speed" for k in links}
    nominal = city.length_m / city.free_flow_time_s
    for k in np.flatnonzero((wind >= 21.0) & ~closed):
        assert speeds[k] == pytest.approx(0.6 * nominal[k])
    res = run(sc, seed=2)
    assert res.kpis["hazard_parked_links_closed_max"] == closed.sum()
    assert "typhoon 'parked'" in " ".join(res.flows["hazards"].lines)


@pytest.mark.parametrize("change,match", [
    (("exposed_road_classes = [\"arterial\"]", "exposed_road_classes = [\"bridge\"]"), "'bridge' is not a road class"),
    (("rmw_m = [900.0, 900.0]", "rmw_m = [900.0]"), "rmw_m must give one value > 0 for each of the 2"),
    (("times_s = [0.0, 7200.0]", "times_s = [0.0]"), "one increasing time for each of the 2 track points"),
    (("kind = \"typhoon\"", "kind = \"typhoon\"\ncasualty_call_type = \"p1\""), "casualties are modelled for floods"),
])
def test_bad_typhoons_are_named(change, match):
    text = STORM.format(dp=50.0, cls="arterial").replace(*change)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(text)


def test_a_moving_storm_over_the_embedded_city_closes_exposed_links_as_it_passes():
    """A storm crossing Hefei (Baohe) from the south-west: each link's wind at every step is the
    Holland wind at its sampled points from the centre interpolated along the lon/lat track,
    exposed roads (trunk, trunk_link, primary) close only while the eyewall is over them, and
    the coupled day runs."""
    from twin.hazards import link_sample_points, lonlat_to_city

    base = load_scenario("hefei_day")
    storm = """
[[hazards]]
name = "in-fa"
kind = "typhoon"
track = [[117.20, 31.70], [117.40, 31.87]]
times_s = [3600.0, 10800.0]
pressure_drop_hpa = [40.0, 40.0]
rmw_m = [3000.0, 3000.0]
step_s = 600.0
exposed_road_classes = ["trunk", "trunk_link", "primary"]
"""
    text = base.text.replace("until_s = 86400.0", "until_s = 14400.0") + storm
    sc = load_scenario(text)
    (plan,) = sc.plans["hazards"]
    city = sc.city
    cx, cy = lonlat_to_city(city, [117.20, 117.40], [31.70, 31.87])
    x, y, k = link_sample_points(city, 50.0)
    lat = float(np.mean([31.70, 31.87]))
    for step, t in enumerate(plan.times_s):
        f = np.clip((t - 3600.0) / 7200.0, 0.0, 1.0)
        r = np.hypot(x - (cx[0] + f * (cx[1] - cx[0])), y - (cy[0] + f * (cy[1] - cy[0])))
        want = np.zeros(city.n_links)
        np.maximum.at(want, k, holland_wind_mps(r, 4000.0, 3000.0, 1.5, lat))
        np.testing.assert_allclose(plan.depth_mm[step], want, rtol=1e-9)
    names = np.asarray(city.road_class_names)[np.asarray(city.road_class)]
    exposed = np.isin(names, ["trunk", "trunk_link", "primary"])
    assert not plan.closed[:, ~exposed].any()
    assert np.array_equal(plan.closed, (plan.depth_mm >= 30.0) & exposed[None, :])
    hit = np.flatnonzero(plan.closed.any(axis=1))
    assert len(hit) and plan.times_s[hit[0]] > 3600.0 and plan.times_s[hit[-1]] < 10800.0 + 3600.0
    assert not plan.closed[0].any() and not plan.closed[-1].any()       # before it comes, after it leaves
    res = run(sc, seed=1)
    assert res.kpis["hazard_in-fa_links_closed_max"] == plan.closed.sum(axis=1).max() > 0
