"""Forecast members from a snapshot ([forecast]).

- The control member (member 0: the snapshot's own dice and scenario) reproduces the
  uninterrupted run bit for bit in every horizon window.
- A forked member is deterministic for its seed, differs from the control after t0 only, and
  its calls to come are drawn again at the member's rate: over members, the calls in a window
  average the expected count times the rate factor (Poisson superposition and thinning).
- The expected calls of a window are the rates integrated over the TOML's hourly profile; the
  call-rate posterior from the calls observed matches numerical quadrature of prior times
  Poisson likelihood.
- A member's traffic demand factor thins or copies the trips not yet departed (as many as the
  factor says, within Poisson-binomial noise); link counts assimilated by the ensemble
  adjustment Kalman filter give the linear-Gaussian posterior of the demand factor exactly.
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


def _same(a, b):
    """Equal, NaN equal to NaN (a KPI of a window without P1 calls is NaN)."""
    import json

    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture(scope="module")
def snap(tmp_path_factory):
    d = tmp_path_factory.mktemp("fc")
    plain = run("hefei_day", out=d / "day.h5", overrides=HEFEI_DAY_6H, snapshot_at_s=[21600.0, 28800.0])
    return d, plain, f"{d / 'day.h5'}@06:00"


def test_the_control_member_is_the_uninterrupted_run(snap):
    d, plain, at = snap
    meta = read_checkpoint(at)[0]
    hs = [3600.0, 10800.0, 21600.0]
    ctl = run_member(at, meta["scenario"], [], 5, 0, 1.0, hs)
    sc = load_scenario("hefei_day", overrides=HEFEI_DAY_6H).replanned(int(meta["seed"]))
    sim = Simulation(sc, seed=int(meta["seed"]), until_s=sc.run_group.until_s, drain=sc.run_group.drain)
    assert _same(ctl, member_products(sim, sim.run(), 21600.0, hs))
    assert np.isfinite(np.array(ctl["kpis"])).all() and len(ctl["zones"]) == 9


def test_forked_members_are_deterministic_and_differ_after_t0(snap):
    d, plain, at = snap
    meta = read_checkpoint(at)[0]
    hs = [3600.0, 21600.0]
    a = run_member(at, meta["scenario"], [], 5, 1, 1.0, hs)
    b = run_member(at, meta["scenario"], [], 5, 1, 1.0, hs)
    c = run_member(at, meta["scenario"], [], 5, 2, 1.0, hs)
    assert _same(a, b)
    assert not _same(a["kpis"], c["kpis"])


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
    assert res.cut == [86400.0] and res.horizons_s[-1] == 21600.0     # cut at noon, the run's end
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


def test_cut_off_nodes_match_networkx_reachability():
    """``_reaching``: the nodes with a path to a hospital over the open links, as networkx finds them."""
    import networkx as nx

    from twin.loading import load_city
    from twin.scenarios.hazards import _reaching

    city = load_city("grid:4x4")
    rng = np.random.default_rng(3)
    for _ in range(5):
        open_links = rng.random(city.n_links) > 0.35
        g = nx.DiGraph()
        g.add_nodes_from(range(city.n_nodes))
        g.add_edges_from(zip(np.asarray(city.link_from_idx)[open_links].tolist(),
                             np.asarray(city.link_to_idx)[open_links].tolist()))
        targets = [0, 15]
        ref = [any(nx.has_path(g, n, t) for t in targets) for n in range(city.n_nodes)]
        assert _reaching(city, open_links, targets).tolist() == ref


def test_flood_harms_strike_where_and_when_the_scenario_says(tmp_path):
    """hefei_flood from 06:00: the water rises from 10:00 in the southern districts 1 and 2, so
    nobody is in the water by 09:00 and only districts 1 and 2 have people in it later."""
    run("hefei_flood", out=tmp_path / "fl.h5", snapshot_at_s=[21600.0], overrides=["run.until_s=57600"])
    res = forecast(f"{tmp_path / 'fl.h5'}@06:00", members=2, horizons_s=[3 * 3600.0, 10 * 3600.0], seed=1)
    assert set(res.harm_names()) >= {"p1_late", "hospital_full", "roads_cut_off", "people_in_water"}
    water = res.harms["people_in_water"]
    assert not water[:, 0].any()
    assert {res.zones[z] for z in np.flatnonzero(water[:, 1].any(axis=0))} == {"1", "2"}
    assert np.array_equal(res.harms["p1_late"], res.p1_late)
    p, lv = res.risk("people_in_water")
    assert p.shape == (2, 9) and lv.max() <= 4
    with pytest.raises(ScenarioError, match="no harm 'fire'"):
        res.risk("fire")


def test_a_hospital_is_full_in_a_window_when_its_written_occupancy_says_so(tmp_path):
    """hefei_day to noon with 2 beds at the first hospital: the control member's hospital_full
    per window equals what the results file's occupancy series shows for that hospital's district."""
    from twin.results import open_results

    over = HEFEI_DAY_6H + ["hospitals.0.beds=2"]
    run("hefei_day", out=tmp_path / "d.h5", overrides=over, snapshot_at_s=[21600.0])
    at = f"{tmp_path / 'd.h5'}@06:00"
    hs = [1800.0, 3 * 3600.0, 6 * 3600.0]
    ctl = run_member(at, read_checkpoint(at)[0]["scenario"], [], 0, 0, 1.0, hs)
    r = open_results(tmp_path / "d.h5")
    t, beds = r.series("/timeseries/ems_hospital_occupancy/occupancy_beds")
    node = int(r.table("/network/hospitals")["node_idx"].iloc[0])
    city = load_scenario("hefei_day").city
    zone = str(city.zone_ids[city.zone_of_node[node]])
    full0 = beds[:, 0] >= 2
    want = []
    for w in hs:
        j = np.searchsorted(t, 21600.0, side="right") - 1
        want.append(bool((j >= 0 and full0[j]) or full0[(t >= 21600.0) & (t < 21600.0 + w)].any()))
    got = [bool(row[ctl["zones"].index(zone)]) for row in ctl["harms"]["hospital_full"]]
    assert got == want and any(want), (got, want)


def test_a_hazard_ensemble_file_gives_the_members_their_floods(tmp_path):
    sc = load_scenario("hefei_flood")
    p = tmp_path / "hz.toml"
    p.write_text('[[members]]\nname = "dry"\nset = ["hazards.0.depth_mm=[0, 0, 0, 0, 0]"]\n'
                 '[[members]]\nset = ["hazards.0.depth_mm=[0, 400, 700, 700, 0]"]\n')
    from twin.forecast import read_hazard_ensemble

    hz = read_hazard_ensemble(p, sc.resolved_text)
    plan = member_plan(sc, 4, 2, Perturbation(), hazard_members=hz)
    assert [m["overrides"] for m in plan] == [[], hz[0], hz[1], hz[0]]
    p.write_text('[[members]]\nset = ["calls.rate_per_1000_per_day=9"]\n')
    with pytest.raises(ScenarioError, match="member 0: 'calls.rate_per_1000_per_day=9' is not a \\[\\[hazards\\]\\]"):
        read_hazard_ensemble(p)
    p.write_text('[[members]]\nname = "deep"\nset = ["hazards.0.depth_mm=[1, 2]"]\n')
    with pytest.raises(ScenarioError, match="member 0 \\('deep'\\)"):
        read_hazard_ensemble(p, sc.resolved_text)
    p.write_text("members = 3")
    with pytest.raises(ScenarioError, match="expected \\[\\[members\\]\\] tables"):
        read_hazard_ensemble(p)


def test_a_forecast_starts_from_an_observed_state(snap, tmp_path):
    """``twin state`` writes what an operations centre knows at 06:00; a forecast from that file
    starts where the snapshot does: its control member is the uninterrupted run's products."""
    from twin.observed import export_observed

    d, plain, at = snap
    export_observed(at, tmp_path / "state.json")
    hs = [3600.0, 3 * 3600.0]
    res = forecast(str(tmp_path / "state.json"), members=2, horizons_s=hs, seed=4)
    ref = forecast(at, members=2, horizons_s=hs, seed=4)
    assert res.observed is not None and res.observed["links_compared"] > 0
    assert res.observed["link_speed_mae_kmh"] < 0.5          # its own speeds, rounded in the file
    assert np.array_equal(res.kpis[0], ref.kpis[0], equal_nan=True) and np.array_equal(res.district_calls, ref.district_calls)
    assert any("from an observed state" in line for line in res.lines())


def test_link_counts_are_fitted_by_geh(snap):
    """Counts taken from the run's own traffic series fit with GEH 0; a count 1.5 times the
    twin's gives the closed form sqrt(2 (0.5 M)^2 / (2.5 M))."""
    from twin.forecast import link_count_fit
    from twin.results import open_results

    d, plain, at = snap
    meta, t0, states = read_checkpoint(at)
    city = load_scenario("hefei_day").city
    r = open_results(d / "day.h5")
    t, out = r.series("/timeseries/traffic_links/outflow_veh")
    hour = (t // 3600).astype(int)
    k = int(np.argmax(out[hour == 4].sum(axis=0)))           # the busiest link between 04:00 and 05:00 (simulated whole by 06:00)
    m = float(out[hour == 4, k].sum())
    ids = np.asarray(city.node_ids)
    fr, to = str(ids[city.link_from_idx[k]]), str(ids[city.link_to_idx[k]])
    fit = link_count_fit(states, city, t0, [(fr, to, 4, m), (fr, to, 6, 1.0)])
    assert fit["sites"] == 1 and fit["geh_mean"] == pytest.approx(0.0, abs=1e-9)     # 06:00-07:00 not ended
    assert m > 0                                              # ambulances drive before the 07:00 trips
    fit = link_count_fit(states, city, t0, [(fr, to, 4, 1.5 * m)])
    assert fit["geh_mean"] == pytest.approx(math.sqrt(2 * (0.5 * m) ** 2 / (2.5 * m)))
    with pytest.raises(ScenarioError, match="no link from node 1 to node 2"):
        link_count_fit(states, city, t0, [("1", "2", 5, 3.0)])


def _member_sim(at, factors, seed=3, member=1, overrides=()):
    meta, t0, states = read_checkpoint(at)
    sc = load_scenario(meta["scenario"], overrides=list(overrides)).replanned(int(meta["seed"]))
    sim = Simulation(sc, seed=int(meta["seed"]), until_s=sc.run_group.until_s, drain=sc.run_group.drain, start_s=t0)
    return sim, sim.run(state=states, fork={"seed": seed, "member": member, **factors})


def test_a_members_demand_factor_scales_the_trips_still_to_depart(snap):
    """hefei_day from 06:00: its 10,000 trips depart 07:00-09:00, so all are still to come; a
    factor 0.6 cancels each with probability 0.4, a factor 1.5 copies each with probability 0.5."""
    d, plain, at = snap
    n = 10000
    for f, col in ((0.6, "cancelled"), (1.5, None)):
        sim, res = _member_sim(at, {"demand": f})
        tr = res["traffic"].values["traffic"]
        own = tr.trips.iloc[:n]
        if col:
            k = int((own["status"] == "cancelled").sum())
            assert tr.kpis["cancelled"] == k and abs(k - 0.4 * n) < 4 * math.sqrt(0.24 * n)
        else:
            legs = int((res["traffic"].values["unit_legs"]["vehicle"] >= 0).sum())
            extra = len(tr.trips) - n - legs
            assert abs(extra - 0.5 * n) < 4 * math.sqrt(0.25 * n) and "cancelled" not in tr.kpis
    shift = 0.8
    sim, res = _member_sim(at, {"reroute_logit": shift}, overrides=["traffic.reroute_share=0.2"])
    eng = next(f for f in sim.flows if f.name == "traffic").coupling.engine
    assert eng.reroute_share == pytest.approx(1.0 / (1.0 + math.exp(-(math.log(0.25) + shift))))


def test_link_counts_update_the_demand_factors_as_the_closed_form_says(snap):
    """Counts 1.3 times the twin's on the 20 busiest links 07:00-08:00 (snapshot 08:00): the
    posterior mean and variance of the members' demand factors are the linear-Gaussian update of
    the prior ensemble's moments (observation f M, variance C + (0.1 C)^2), its median is near
    1.3, and the GEH at the posterior median is smaller than before."""
    from twin.forecast import COUNT_REL_SD, count_sites, fit_demand
    from twin.results import open_results

    d, plain, at = snap
    at8 = f"{d / 'day.h5'}@08:00"
    meta, t0, states = read_checkpoint(at8)
    city = load_scenario("hefei_day").city
    t, out = open_results(d / "day.h5").series("/timeseries/traffic_links/outflow_veh")
    m7 = out[(t // 3600).astype(int) == 7].sum(axis=0)
    top = np.argsort(-m7)[:20]
    ids = np.asarray(city.node_ids)
    counts = [(str(ids[city.link_from_idx[k]]), str(ids[city.link_to_idx[k]]), 7, 1.3 * float(m7[k])) for k in top]
    sites = count_sites(states, city, t0, counts + [(counts[0][0], counts[0][1], 8, 5.0)])
    assert len(sites) == 20                                      # 08:00-09:00 not ended
    # at 08:00 the traffic has run to its last sync, 07:59: the hour is scaled by 60/59
    got = np.array([x[3] for x in sites])
    assert abs(got.sum() / m7[top].sum() - 1.0) < 0.01
    prior = np.exp(np.random.default_rng(0).normal(0.0, 0.1, 39))
    post, fit = fit_demand(sites, prior)
    m, c = np.array([x[3] for x in sites]), 1.3 * m7[top].astype(float)
    r = np.maximum(1.0, c + (COUNT_REL_SD * c) ** 2)
    var = 1.0 / (1.0 / prior.var(ddof=1) + (m * m / r).sum())
    mean = var * (prior.mean() / prior.var(ddof=1) + (m * c / r).sum())
    assert post.mean() == pytest.approx(mean, rel=1e-9) and post.var(ddof=1) == pytest.approx(var, rel=1e-9)
    assert 1.2 < fit["posterior"][1] < 1.35 and fit["posterior"][2] - fit["posterior"][0] < fit["prior"][2] - fit["prior"][0]
    assert fit["geh_mean_after"] < fit["geh_mean_before"] and fit["sites"] == 20
    assert fit_demand([], prior) == (pytest.approx(prior), None)


def test_a_forecast_assimilates_link_counts_into_its_members(snap, tmp_path):
    d, plain, at = snap
    city = load_scenario("hefei_day").city
    from twin.results import open_results

    t, out = open_results(d / "day.h5").series("/timeseries/traffic_links/outflow_veh")
    m7 = out[(t // 3600).astype(int) == 7].sum(axis=0)
    ids = np.asarray(city.node_ids)
    csv = tmp_path / "counts.csv"
    csv.write_text("from_node,to_node,hour,count\n" + "".join(
        f"{ids[city.link_from_idx[k]]},{ids[city.link_to_idx[k]]},07:00,{0.8 * m7[k]:.0f}\n" for k in np.argsort(-m7)[:10]))
    res = forecast(f"{d / 'day.h5'}@08:00", members=4, horizons_s=[3600.0], seed=2, observed_counts=csv)
    f = res.demand_fit
    assert f is not None and f["sites"] == 10 and f["posterior"][1] < 0.95
    assert res.members[0]["demand"] == 1.0 and all(m["demand"] < 1.0 for m in res.members[1:])
    assert any("traffic demand from 10 counted site-hours" in line for line in res.lines())
    off = forecast(f"{d / 'day.h5'}@08:00", members=2, horizons_s=[3600.0], seed=2, observed_counts=csv,
                   assimilate=False)
    assert off.demand_fit is None and off.count_fit["sites"] == 10
