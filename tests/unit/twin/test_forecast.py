"""Forecast members from a snapshot ([forecast]).

- The control member (member 0: the snapshot's own dice and scenario) reproduces the
  uninterrupted run bit for bit in every horizon window.
- A forked member is deterministic for its seed, differs from the control after t0 only, and
  its calls to come are drawn again at the member's rate: over members, the calls in a window
  average the expected count times the rate factor (Poisson superposition and thinning).
- The expected calls of a window are the rates integrated over the TOML's hourly profile; the
  call-rate posterior from the calls observed matches numerical quadrature of prior times
  Poisson likelihood.
- Verification against synthetic truths held out: the members' 90 % intervals cover the truth
  in 80-97 % of over 200 (truth, issue, horizon, district) cases, and the CRPS of a fixed
  window does not grow when it is forecast from a later state.
"""

import math
import tomllib
from pathlib import Path


import numpy as np
import pytest

from twin.agents.ems_forecast import expected_calls
from twin.checkpoint import read_checkpoint
from twin.errors import ScenarioError
from twin.flows import Simulation
from twin.forecast import (Perturbation, _ems_spec, fit_call_rate, forecast, member_plan, member_products,
                           read_call_log, run_member)
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
    assert res.district_calls.shape == (4, 3, 9) and res.fit["observed"] > 0
    assert np.array_equal(res.district_calls.sum(axis=2), res.kpis[:, :, 0])      # districts add up to the calls
    res.write(d / "fc.h5")
    import h5py

    with h5py.File(d / "fc.h5", "r") as h:
        assert h["/forecast/members/district_calls"].shape == (4, 3, 9)
        assert h["/forecast/risk/p1_late_level"].attrs["classes"] == "very low, low, moderate, high, very high"
        assert h["/forecast/fans/n_calls"].attrs["units"] == "1"
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


def test_the_cli_forecasts_writes_and_plots(snap, capsys):
    from twin.cli import main

    d, plain, at = snap
    log = d / "log.csv"
    log.write_text("time\n" + "".join(f"0{h}:{m}0\n" for h in range(6) for m in range(6)))   # 36 calls to 06:00
    assert main(["forecast", "--from", at, "-n", "3", "--horizons", "1h,3h", "--observed-calls", str(log),
                 "--out", str(d / "cli.h5")]) == 0
    out = capsys.readouterr().out
    assert "call rate from the calls 00:00-06:00: 36 observed" in out and "wrote" in out
    pytest.importorskip("matplotlib")
    for chart in ("forecast-fan", "forecast-risk"):
        assert main(["plot", str(d / "cli.h5"), chart, "--out", str(d / f"{chart}.png")]) == 0
        assert (d / f"{chart}.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):
        main(["forecast", "--from", at, "--horizons", "soon"])


def _toml(name):
    return tomllib.loads((Path(__file__).parents[3] / "scenarios" / f"{name}.toml").read_text())


def test_expected_calls_integrate_the_hourly_profile():
    raw = _toml("hefei_day")["calls"]
    per_h = raw["rate_per_1000_per_day"] * sum(raw["population"].values()) / 1000.0 / 24.0
    prof = raw["hourly_profile"]
    spec = _ems_spec(load_scenario("hefei_day"), 1)
    assert expected_calls(spec, 0.0, 86400.0).sum() == pytest.approx(per_h * sum(prof), rel=1e-12)
    assert expected_calls(spec, 6 * 3600.0, 12 * 3600.0).sum() == pytest.approx(per_h * sum(prof[6:12]), rel=1e-12)
    assert expected_calls(spec, 6.5 * 3600.0, 7.25 * 3600.0).sum() == pytest.approx(
        per_h * (0.5 * prof[6] + 0.25 * prof[7]), rel=1e-12)
    assert expected_calls(spec, 23 * 3600.0, 26 * 3600.0).sum() == pytest.approx(per_h * (prof[23] + prof[0] + prof[1]))


def test_the_call_rate_posterior_matches_quadrature():
    """Prior log f ~ N(0, 0.2^2), 26 calls observed where 19.0 were expected: P5/P50/P95 of the
    importance-resampled factor agree with the quadrature of prior x Poisson likelihood."""
    spec = _ems_spec(load_scenario("hefei_day"), 1)
    lam = float(expected_calls(spec, 0.0, 21600.0).sum())
    times = np.linspace(0.0, 21000.0, 26)
    factors, fit = fit_call_rate(spec, times, 0.0, 21600.0, 0.2, 5, 39, particles=20000)
    x = np.linspace(-1.5, 1.5, 200001)
    logp = -0.5 * (x / 0.2) ** 2 + 26 * x - lam * np.exp(x)
    cdf = np.cumsum(np.exp(logp - logp.max()))
    cdf /= cdf[-1]
    exact = [math.exp(x[np.searchsorted(cdf, q)]) for q in (0.05, 0.5, 0.95)]
    assert fit["observed"] == 26 and fit["expected"] == pytest.approx(lam)
    assert np.allclose(fit["posterior"], exact, rtol=0.02), (fit["posterior"], exact)
    assert len(factors) == 39 and exact[0] * 0.9 < np.median(factors) < exact[2]
    assert fit["ess"] > 0.3 * fit["particles"]


def test_a_call_log_csv_is_read_and_checked(tmp_path):
    p = tmp_path / "calls.csv"
    p.write_text("time,district\n00:30,5\n05:59:30,2\n")
    assert read_call_log(p).tolist() == [1800.0, 21570.0]
    p.write_text("time_s\n12.5\n")
    assert read_call_log(p).tolist() == [12.5]
    p.write_text("time\nsoon\n")
    with pytest.raises(ScenarioError, match="line 2: time 'soon'; expected HH:MM"):
        read_call_log(p)
    with pytest.raises(ScenarioError, match="cannot read"):
        read_call_log(tmp_path / "none.csv")


def test_forecasts_verify_against_synthetic_truths(tmp_path):
    """hefei_day's EMS (no traffic) at 4x the call rate; 4 truths with their own rate factors,
    forecasts from 06:00 and 09:00 for 3, 6 and 12 h, 40 members each: 216 cases."""
    from twin.forecast_verify import verify_forecasts

    text = (Path(__file__).parents[3] / "scenarios" / "hefei_day.toml").read_text()
    text = text[:text.index("[traffic]")]
    v = verify_forecasts(text, truths=4, issue_times_s=[21600.0, 32400.0], horizons_s=[10800.0, 21600.0, 43200.0],
                         members=40, workdir=tmp_path, overrides=["calls.rate_per_1000_per_day=2.6"],
                         target_s=(32400.0, 43200.0))
    assert v.cases >= 200
    assert 0.80 <= v.overall_coverage() <= 0.97, v.lines()
    assert np.all(np.diff(v.crps) > 0)              # longer windows hold more calls
    # the fixed window 09:00-12:00 from 06:00 and from 09:00 (the truth's calls to 09:00 known):
    # the later forecast's CRPS is not larger beyond two standard errors of the paired difference
    from twin.scores import crps_ensemble

    c = crps_ensemble(v.target_members, v.target_truth, fair=True)
    early = c[[i for i, f in enumerate(v.forecasts) if f["t0_s"] == 21600.0]]
    late = c[[i for i, f in enumerate(v.forecasts) if f["t0_s"] == 32400.0]]
    diff = (late - early).ravel()
    assert diff.mean() <= 2.0 * diff.std(ddof=1) / math.sqrt(len(diff)), v.lines()
    assert set(v.lead_time_crps()) == {10800.0, 0.0}
