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
