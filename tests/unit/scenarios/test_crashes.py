"""Traffic-crash calls tied to the coupled traffic's exposure (vehicle-km per zone)."""

import math

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import load_scenario, run
from twin.scenarios.crashes import CRASH_RATE_PER_MILLION_VEH_KM, link_zone_index

RATE = 20000.0       # per million veh-km: far above reality, to get enough calls in 2 h
OVER = ["run.until_s=7200", "traffic.random_trips=2000", "traffic.window_start_s=0", "traffic.window_s=3600",
        f"crashes.rate_per_million_veh_km={RATE}"]


@pytest.fixture(scope="module")
def result():
    return run("hefei_day", seed=2, overrides=OVER)


def test_exposure_is_the_engine_vehicle_km_zone_by_zone(result):
    """The exposure recorded at the syncs adds up, zone by zone, to the vehicle-km computed
    independently from the traffic result's link exits (outflow x length)."""
    ce = result.crash_exposure
    links = result.traffic.links
    city = result.scenario.city
    lz = link_zone_index(result.scenario.city, result.scenario.plans["ems"])
    per_link = links["outflow_veh"].sum(axis=0) * city.length_m / 1000.0
    want = np.bincount(lz[lz >= 0], weights=per_link[lz >= 0], minlength=result.scenario.ems.n_zones)
    got = np.bincount(ce["zone_idx"], weights=ce["veh_km"], minlength=len(want))
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert (lz >= 0).all()                     # every link's tail node is a zone of hefei_day
    np.testing.assert_allclose(ce["veh_km"].sum(), result.traffic.kpis["vkt_veh_km"], rtol=1e-9)
    np.testing.assert_allclose(ce["expected_calls"], np.where(ce["end_s"] < 7200.0, RATE * ce["veh_km"] / 1e6, 0.0),
                               rtol=1e-12)


def test_crash_call_count_matches_the_exposure_expectation(result):
    """The number of crash calls is Poisson with mean rate x vehicle-km / 1e6 (summed over
    the periods whose calls fall before until_s). Accepted: within 4 standard deviations
    (|n - mu| < 4 sqrt(mu); a correct generator fails this with probability 6e-5), and the
    calls table holds exactly the calls drawn, in the zones drawn."""
    k = result.kpis
    mu, n = k["crash_expected_calls"], k["n_crash_calls"]
    assert mu > 30
    assert abs(n - mu) < 4 * math.sqrt(mu)
    calls = result.ems.calls
    crash_type = [c.name for c in result.scenario.ems.call_types].index("traffic-crash")
    crash = calls[calls["type_idx"] == crash_type]
    assert len(crash) == n
    ce = result.crash_exposure
    np.testing.assert_array_equal(np.bincount(crash["zone_idx"], minlength=result.scenario.ems.n_zones),
                                  np.bincount(ce["zone_idx"], weights=ce["n_calls"],
                                              minlength=result.scenario.ems.n_zones).astype(int))
    assert (crash["time_s"] < 7200.0).all() and set(crash["outcome"]) == {"completed"}


def test_default_rate_and_no_crashes_without_traffic():
    assert CRASH_RATE_PER_MILLION_VEH_KM == pytest.approx(0.59 / 1.609344, rel=0.01)
    sc = load_scenario("hefei_day")
    assert sc.groups["crashes"].rate_per_million_veh_km == CRASH_RATE_PER_MILLION_VEH_KM
    res = run("hefei_day", seed=2, overrides=["run.until_s=3600", "traffic.random_trips=0"])
    assert "n_crash_calls" not in res.kpis and res.crash_exposure is None


def test_unknown_crash_call_type_is_named():
    with pytest.raises(ScenarioError, match=r"\[crashes\] call_type = 'crash'.*no such call type.*'traffic-crash'"):
        load_scenario("hefei_day", overrides=['crashes.call_type="crash"'])


def test_the_old_traffic_keys_say_where_they_moved(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('[traffic]\nrandom_trips = 10\ncrash_call_type = "traffic-crash"\n\n'
                    '[calls]\nrate_per_h = 1.0\n')
    with pytest.raises(ScenarioError, match=r"old.toml: \[traffic\] crash_call_type: this key moved to "
                                            r"\[crashes\] call_type"):
        load_scenario(path)
