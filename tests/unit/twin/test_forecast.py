"""Forecast members from a snapshot ([forecast]).

- The control member (member 0: the snapshot's own dice and scenario) reproduces the
  uninterrupted run bit for bit in every horizon window.
- A forked member is deterministic for its seed, differs from the control after t0 only, and
  its calls to come are drawn again at the member's rate: over members, the calls in a window
  average the expected count times the rate factor (Poisson superposition and thinning).
"""

import numpy as np
import pytest

from twin.checkpoint import read_checkpoint
from twin.errors import ScenarioError
from twin.flows import Simulation
from twin.forecast import Perturbation, forecast, member_plan, member_products, run_member
from twin.runner import load_scenario, run

HEFEI_DAY_6H = ["run.until_s=43200"]            # hefei_day to noon: EMS and traffic, quick


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    d = tmp_path_factory.mktemp("fc")
    plain = run("hefei_day", out=d / "day.h5", overrides=HEFEI_DAY_6H, snapshot_at_s=[21600.0])
    return d, plain, f"{d / 'day.h5'}@06:00"


def test_the_control_member_is_the_uninterrupted_run(snap):
    d, plain, at = snap
    meta = read_checkpoint(at)[0]
    hs = [3600.0, 10800.0, 21600.0]
    ctl = run_member(at, meta["scenario"], [], 5, 0, 1.0, hs)
    sc = load_scenario("hefei_day", overrides=HEFEI_DAY_6H).replanned(int(meta["seed"]))
    sim = Simulation(sc, seed=int(meta["seed"]), until_s=sc.run_group.until_s, drain=sc.run_group.drain)
    assert ctl == member_products(sim, sim.run(), 21600.0, hs)
    assert np.isfinite(np.array(ctl["kpis"])).all() and len(ctl["zones"]) == 9


def test_forked_members_are_deterministic_and_differ_after_t0(snap):
    d, plain, at = snap
    meta = read_checkpoint(at)[0]
    hs = [3600.0, 21600.0]
    a = run_member(at, meta["scenario"], [], 5, 1, 1.0, hs)
    b = run_member(at, meta["scenario"], [], 5, 1, 1.0, hs)
    c = run_member(at, meta["scenario"], [], 5, 2, 1.0, hs)
    assert a == b
    assert a["kpis"] != c["kpis"]


def test_a_members_calls_follow_its_rate_factor(snap):
    """hefei_day's call rate from 06:00 to noon, times 0.5 and 2.5: the mean count over 12
    members each is within 4 standard errors of the expected count (Poisson)."""
    d, plain, at = snap
    meta = read_checkpoint(at)[0]
    hs = [21600.0]
    base = np.mean([run_member(at, meta["scenario"], [], 7, m, 1.0, hs)["kpis"][0][0] for m in range(1, 13)])
    for f in (0.5, 2.5):
        n = [run_member(at, meta["scenario"], [], 7, m, f, hs)["kpis"][0][0] for m in range(1, 13)]
        expected = f * base
        assert abs(np.mean(n) - expected) < 4 * np.sqrt(expected / 12 + f * f * base / 12), (f, np.mean(n), expected)


def test_forecast_products_and_checks(snap):
    d, plain, at = snap
    res = forecast(at, members=4, horizons_s=[3600.0, 10800.0, 86400.0], seed=3)
    assert res.kpis.shape == (4, 3, 3) and res.p1_late.shape[:2] == (4, 3)
    assert res.cut == [21600.0 + 86400.0] and res.horizons_s[-1] == 21600.0     # cut at noon, the run's end
    fans = res.fans()
    assert np.all(fans["n_calls"][0] <= fans["n_calls"][1]) and np.all(fans["n_calls"][1] <= fans["n_calls"][2])
    p, lv = res.risk()
    assert p.shape == lv.shape and np.all((0 <= p) & (p <= 1))
    assert any("forecast from 06:00, 4 members" in line for line in res.lines())
    with pytest.raises(ScenarioError, match="expected a whole number"):
        forecast(at, members=0)
    with pytest.raises(ScenarioError, match="ascending durations"):
        forecast(at, horizons_s=[6 * 3600.0, 3 * 3600.0])
    with pytest.raises(ScenarioError, match="log-sd"):
        Perturbation(call_rate_sigma=-1.0)


def test_member_factors_do_not_depend_on_the_number_of_members():
    sc = load_scenario("hefei_flood")
    a, b = member_plan(sc, 5, 11, Perturbation()), member_plan(sc, 9, 11, Perturbation())
    assert a == b[:5]
    assert a[0]["overrides"] == [] and a[0]["call_rate"] == 1.0
    assert a[1]["overrides"][0].startswith("hazards.0.depth_mm=[")
