"""EMS simulation against queueing theory we did not write (STYLE §14).

Each statistical test runs ``R`` independent replications (``SeedSequence(seed).spawn(R)``,
via :func:`run_replications`), takes one estimate per replication over the window
``[warmup_s, until_s)``, and checks the exact value against a two-sided Student-t
confidence interval ``mean ± t(1 - α/2k, R-1) · s/√R`` with family level ``α = 0.001``
split over the ``k`` quantities the test compares (Bonferroni). Replications are i.i.d.,
so the interval is valid however strongly the events within one run are correlated;
estimates are ratios and time averages over thousands of events, so their replication
means are close to normal. Runs start empty; the warm-up is at least 3.5 relaxation
times (a loss ward relaxes in one mean stay, the M/M/4 at ρ = 0.625 in about
1/(μ(√c - √a)²) ≈ 6 h, the hypercube at ρ ≤ 0.5 in a few hours), so the start-up bias
left is below 0.1 % of each estimate, far below the interval widths. Many shorter
replications (R = 20-30) keep the t quantile small. A false failure then has probability at
most 0.1 % per test, and the seeds are fixed, so the suite is deterministic. Each test
also asserts that the interval is narrow (a stated relative half-width), so it cannot
pass by being uninformative.

Systems (all expressed through :class:`twin.emergency.EmsSpec` builders):

- one ward with Poisson admissions and ``c`` beds, no waiting: Erlang B blocking, mean
  occupied beds ``a(1-B)`` and utilisation ``a(1-B)/c``, for exponential, lognormal and
  empirical-table stays of equal mean (insensitivity of M/G/c/c);
- a pooled fleet of ``c`` identical units with exponential busy time independent of
  location: Erlang C probability of waiting and M/M/c mean wait; with no queue, Erlang B;
- Larson's hypercube (distinguishable units, fixed preference lists, exponential busy
  time, instant return), loss and queue variants: unit workloads, dispatch fractions
  ``f_nj``, mean travel time and probability all busy against :func:`solve_hypercube`.

Then two exact (not statistical) properties of any drained run of the full path model:
Little's law for the dispatch queue and every ward, and one terminal state per call.
"""

import math

import numpy as np
import pytest
from scipy import stats

from twin.agents.ems import run_ems, run_replications
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec,
                            ZoneSpec, hypercube_spec, loss_ward_spec, pooled_fleet_spec, time_average)
from twin.hypercube import solve_hypercube
from twin.queueing import erlang_b, erlang_c, loss_mean_busy, loss_utilisation, mmc_mean_wait

FAMILY_ALPHA = 0.001
HOUR_S = 3600.0
DAY_S = 86400.0


def assert_in_ci(samples, exact, *, k, label, max_rel_half_width=None):
    """Assert ``exact`` lies in the Bonferroni-adjusted t interval of the replication means."""
    x = np.asarray(samples, dtype=np.float64)
    r = len(x)
    mean = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(r))
    t = stats.t.ppf(1.0 - FAMILY_ALPHA / (2 * k), r - 1)
    half = t * se
    assert abs(mean - exact) <= half, (f"{label}: exact {exact:.6g} outside {mean:.6g} ± {half:.3g} "
                                       f"(t={t:.2f}, R={r}, SE={se:.3g})")
    if max_rel_half_width is not None:
        assert half <= max_rel_half_width * abs(exact), (f"{label}: interval ± {half:.3g} is wider than "
                                                         f"{max_rel_half_width:.0%} of {exact:.6g}")
    return mean, half


# --------------------------------------------------------------------------------------
# Beds: Erlang's loss system and insensitivity

WARD_BEDS = 5
WARD_LOAD = 4.0                    # erlangs: 4 admissions/day x 1 day mean stay


# An empirical length-of-stay table of mean exactly 1 day: 0.4 x 12 h + 0.4 x 1 d + 0.2 x 2 d.
EMPIRICAL_LOS = Dist.empirical([0.5 * DAY_S, DAY_S, 2 * DAY_S], [0.4, 0.4, 0.2])


@pytest.mark.parametrize("los", [Dist("exponential", DAY_S), Dist("lognormal", DAY_S, 0.5),
                                 Dist("lognormal", DAY_S, 2.0), EMPIRICAL_LOS],
                         ids=["exponential", "lognormal-cv0.5", "lognormal-cv2", "empirical"])
def test_ward_loss_system_matches_erlang_b(los):
    """One ward, Poisson admissions, c = 5 beds, no waiting, a = 4 erlangs.

    Exact: B(5, 4) = 0.19907, mean occupied beds a(1-B) = 3.2037, utilisation 0.64075 — for
    any stay distribution with a 1-day mean (M/G/c/c insensitivity), here exponential and
    lognormal with cv 0.5 and 2, and an empirical (discrete) table of the same mean. R = 30 replications of 500 days (~2 000 admissions each)
    after a 20-day warm-up (20 mean stays); k = 3 quantities. The interval must be within
    10 % of each value.
    """
    spec = loss_ward_spec(WARD_BEDS, WARD_LOAD / 24.0, los, warmup_s=20 * DAY_S)
    runs = run_replications(spec, seed=101, n_replications=30, until_s=520 * DAY_S)
    wards = [r.hospitals.iloc[0] for r in runs]
    assert_in_ci([w.blocking for w in wards], erlang_b(WARD_BEDS, WARD_LOAD), k=3, label="blocking",
                 max_rel_half_width=0.10)
    assert_in_ci([w.occupancy_mean for w in wards], loss_mean_busy(WARD_BEDS, WARD_LOAD), k=3,
                 label="mean occupied beds", max_rel_half_width=0.10)
    assert_in_ci([w.utilisation for w in wards], loss_utilisation(WARD_BEDS, WARD_LOAD), k=3,
                 label="utilisation", max_rel_half_width=0.10)
    assert all(w.occupancy_max <= WARD_BEDS for w in wards)


# --------------------------------------------------------------------------------------
# Pooled fleet: M/M/c (Erlang C) and M/M/c/c (Erlang B)

FLEET_UNITS = 4
QUEUE_LOAD = 2.5                   # erlangs: 2.5 calls/h x 1 h mean busy time; rho = 0.625
LOSS_LOAD = 3.0                    # erlangs; rho = 0.75


def test_pooled_fleet_queue_matches_erlang_c():
    """c = 4 identical units, exponential busy time (mean 1 h) independent of location, no
    travel, no hospital, calls wait FCFS: M/M/4 at a = 2.5 erlangs (ρ = 0.625).

    Exact: P(wait) = C(4, 2.5) = 0.31986 and W_q = C/(cμ - λ) = 767.66 s; mean number
    waiting L_q = λ W_q = 0.53309 (Little). R = 30 replications of 2 000 h (~5 000 calls)
    after 50 h warm-up; k = 3. Intervals within 6 % (P(wait)) and 12 % (W_q, L_q, whose
    per-call terms are strongly correlated).
    """
    spec = pooled_fleet_spec(FLEET_UNITS, QUEUE_LOAD, Dist("exponential", HOUR_S), warmup_s=50 * HOUR_S)
    runs = run_replications(spec, seed=202, n_replications=30, until_s=2050 * HOUR_S)
    p_wait = erlang_c(FLEET_UNITS, QUEUE_LOAD)
    wq = mmc_mean_wait(FLEET_UNITS, QUEUE_LOAD, HOUR_S)
    assert_in_ci([r.kpis["dispatch_wait_share"] for r in runs], p_wait, k=3, label="P(wait)",
                 max_rel_half_width=0.06)
    assert_in_ci([r.kpis["dispatch_wait_mean_s"] for r in runs], wq, k=3, label="mean wait",
                 max_rel_half_width=0.12)
    assert_in_ci([r.kpis["dispatch_queue_mean"] for r in runs], QUEUE_LOAD / HOUR_S * wq, k=3,
                 label="mean queue length", max_rel_half_width=0.12)
    for r in runs:
        assert r.kpis["n_lost"] == 0
        # FCFS with one priority: calls are dispatched in call order
        d = r.calls.dispatched_s.to_numpy()
        assert np.all(np.diff(d) >= 0)


def test_pooled_fleet_without_queue_matches_erlang_b():
    """The same fleet with ``max_queue = 0`` is M/M/4/4: lost share B(4, 3) = 0.20611 and
    mean utilisation a(1-B)/c = 0.59542. R = 20 replications of 1 000 h; k = 2; intervals
    within 8 %."""
    spec = pooled_fleet_spec(FLEET_UNITS, LOSS_LOAD, Dist("exponential", HOUR_S), max_queue=0,
                             warmup_s=50 * HOUR_S)
    runs = run_replications(spec, seed=203, n_replications=20, until_s=1050 * HOUR_S)
    assert_in_ci([r.kpis["lost_share"] for r in runs], erlang_b(FLEET_UNITS, LOSS_LOAD), k=2,
                 label="lost share", max_rel_half_width=0.08)
    assert_in_ci([r.kpis["unit_utilisation_mean"] for r in runs], loss_utilisation(FLEET_UNITS, LOSS_LOAD),
                 k=2, label="utilisation", max_rel_half_width=0.08)


# --------------------------------------------------------------------------------------
# Larson's hypercube

# The three-unit example of Larson & Odoni, Urban Operations Research §5.4.3 (λ = 1.5 per
# mean service time, μ = 1), with its atoms grouped by preference list (see
# tests/validation/test_emergency_hypercube.py for the reproduction of the book's
# workloads). Times scaled to a 1-hour mean busy time.
HC_RATES_PER_H = [0.50, 0.25, 0.35, 0.40]
HC_PREFS = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [2, 0, 1]]
HC_MEAN_BUSY_S = [HOUR_S, HOUR_S, HOUR_S]
HC_TRAVEL_S = np.array([[180.0, 240.0, 420.0, 480.0],
                        [300.0, 540.0, 150.0, 600.0],
                        [480.0, 270.0, 660.0, 200.0]])


@pytest.mark.parametrize("variant", ["loss", "queue"])
def test_hypercube_simulation_matches_exact_solver(variant):
    """Three distinguishable units, four atoms with Poisson demand, fixed preference lists,
    exponential busy time (mean 1 h) independent of travel, instant return.

    Exact (``solve_hypercube``), queue variant: ρ = (0.5574, 0.4734, 0.4693) as in the
    book; loss variant: ρ = (0.4979, 0.4026, 0.3980) with 13.4 % of calls lost. Compared:
    3 workloads, 12 dispatch fractions f_nj, the mean travel time Σ f_nj τ_nj and the
    share of calls finding every unit busy (lost or queued): k = 17. R = 30 replications
    of 2 000 h (~3 000 calls) after 50 h warm-up. Workload intervals within 5 %, mean
    travel within 3 %.
    """
    spec = hypercube_spec(HC_RATES_PER_H, HC_MEAN_BUSY_S, HC_PREFS, HC_TRAVEL_S, variant=variant,
                          warmup_s=50 * HOUR_S)
    exact = solve_hypercube(np.array(HC_RATES_PER_H) / HOUR_S, 1.0 / np.array(HC_MEAN_BUSY_S), HC_PREFS,
                            variant=variant, travel_time=HC_TRAVEL_S)
    runs = run_replications(spec, seed=303 if variant == "loss" else 304, n_replications=30,
                            until_s=2050 * HOUR_S)
    k = 17
    workloads = np.array([r.units.utilisation.to_numpy() for r in runs])
    for n in range(3):
        assert_in_ci(workloads[:, n], exact.workload[n], k=k, label=f"workload of unit {n}", max_rel_half_width=0.05)
    fracs, travel, busy_share = [], [], []
    for r in runs:
        c = r.calls[(r.calls.time_s >= spec.warmup_s) & (r.calls.unit_idx >= 0)]
        f = np.zeros((3, 4))
        np.add.at(f, (c.unit_idx.to_numpy(), c.zone_idx.to_numpy()), 1.0)
        fracs.append(f / f.sum())
        travel.append(c.travel_s.mean())
        busy_share.append(r.kpis["lost_share"] if variant == "loss" else r.kpis["dispatch_wait_share"])
    fracs = np.array(fracs)
    for n in range(3):
        for j in range(4):
            assert_in_ci(fracs[:, n, j], exact.dispatch_fraction[n, j], k=k, label=f"f[{n},{j}]")
    assert_in_ci(travel, exact.mean_travel_time, k=k, label="mean travel time", max_rel_half_width=0.03)
    assert_in_ci(busy_share, exact.prob_all_busy, k=k, label="P(all busy at arrival)")


# --------------------------------------------------------------------------------------
# Exact properties of the full path model

def city_spec(hospital_mode):
    """Two stations, three zones, two hospitals; three priorities, processing and turnout
    times, transports, a day profile, driving return — every path of the model."""
    tt = np.array([
        # st0   st1   z0    z1    z2    h0    h1
        [0.0, 600.0, 240.0, 420.0, 700.0, 300.0, 800.0],
        [600.0, 0.0, 500.0, 300.0, 200.0, 700.0, 250.0],
        [240.0, 500.0, 0.0, 350.0, 650.0, 200.0, 750.0],
        [420.0, 300.0, 350.0, 0.0, 400.0, 450.0, 350.0],
        [700.0, 200.0, 650.0, 400.0, 0.0, 800.0, 150.0],
        [300.0, 700.0, 200.0, 450.0, 800.0, 0.0, 900.0],
        [800.0, 250.0, 750.0, 350.0, 150.0, 900.0, 0.0]])
    profile = tuple(0.5 if h < 7 else 1.5 for h in range(24))
    return EmsSpec(
        travel_time_s=tt,
        zones=(ZoneSpec("north", 2, 1.0), ZoneSpec("centre", 3, 1.5), ZoneSpec("south", 4, 0.6)),
        call_types=(CallTypeSpec("cardiac", 1, 0.3, Dist("lognormal", 1200.0, 0.5), 0.9),
                    CallTypeSpec("injury", 2, 0.5, Dist("exponential", 900.0), 0.6),
                    CallTypeSpec("minor", 3, 0.2, Dist("constant", 600.0, 0.0), 0.1)),
        units=tuple(UnitSpec(f"amb{i}", i % 2) for i in range(4)),
        hospitals=(HospitalSpec("general", 5, 8, Dist("lognormal", 4 * HOUR_S, 1.0), hospital_mode, 0.3),
                   HospitalSpec("south", 6, 5, Dist("exponential", 3 * HOUR_S), hospital_mode, 0.2)),
        dispatch=DispatchSpec("nearest", (), Dist("lognormal", 90.0, 0.4), None),
        service=ServiceSpec("path", turnout=Dist("constant", 60.0, 0.0), handover=Dist("exponential", 600.0)),
        warmup_s=6 * HOUR_S)


@pytest.mark.parametrize("hospital_mode", ["loss", "queue"])
def test_littles_law_holds_exactly_on_a_drained_run(hospital_mode):
    """From empty to empty, L̄·T = Σ W exactly for every queue: the time integral of the
    dispatch-queue length equals the sum of dispatch waits, and for each ward the
    integrals of occupied beds and of patients waiting for a bed equal the sums of stays
    and of bed waits (relative tolerance 1e-9, float rounding only)."""
    res = run_ems(city_spec(hospital_mode), seed=7, until_s=3 * DAY_S)
    end = res.end_s
    q = res.dispatch_queue
    assert res.calls.wait_s.sum() == pytest.approx(
        time_average(q.time_s, q.queue_length, 0.0, end, integral=True), rel=1e-9, abs=1e-6)
    assert q.queue_length.iloc[-1] == 0
    for h in range(2):
        occ = res.occupancy[res.occupancy.hospital_idx == h]
        adm = res.admissions[(res.admissions.hospital_idx == h) & ~res.admissions.blocked]
        assert (adm.discharge_s - adm.bed_s).sum() == pytest.approx(
            time_average(occ.time_s, occ.occupied_beds, 0.0, end, integral=True), rel=1e-9)
        assert (adm.bed_s - adm.arrival_s).sum() == pytest.approx(
            time_average(occ.time_s, occ.waiting, 0.0, end, integral=True), rel=1e-9, abs=1e-6)
        assert occ.occupied_beds.iloc[-1] == 0 and occ.occupied_beds.max() <= res.spec.hospitals[h].beds
    if hospital_mode == "loss":
        assert res.admissions.bed_s.isna().sum() == res.admissions.blocked.sum()
    else:
        assert not res.admissions.blocked.any() and res.admissions.bed_s.notna().all()


@pytest.mark.parametrize("max_queue", [None, 0, 2])
def test_every_call_ends_in_exactly_one_terminal_state(max_queue):
    """Drained runs: each call is completed or lost, never both, never open; completed calls
    have an ordered timeline and units never serve two calls at once."""
    spec = city_spec("queue")
    spec = EmsSpec(**{**spec.__dict__, "dispatch": DispatchSpec("nearest", (), spec.dispatch.processing, max_queue)})
    res = run_ems(spec, seed=11, until_s=2 * DAY_S)
    c = res.calls
    assert len(c) > 100
    assert set(c.outcome) <= {"completed", "lost"}
    done = c[c.outcome == "completed"]
    lost = c[c.outcome == "lost"]
    assert done.dispatched_s.notna().all() and done.available_s.notna().all() and (done.unit_idx >= 0).all()
    assert lost.dispatched_s.isna().all() and (lost.unit_idx == -1).all() and lost.available_s.isna().all()
    if max_queue is None:
        assert len(lost) == 0
    assert np.all(done.time_s <= done.ready_s)
    assert np.all(done.ready_s <= done.dispatched_s)
    assert np.all(done.dispatched_s < done.on_scene_s)
    assert np.all(done.on_scene_s < done.available_s)
    tr = done[done.transport]
    assert np.all(tr.on_scene_s < tr.at_hospital_s) and np.all(tr.at_hospital_s <= tr.bed_s)
    for _, g in done.sort_values("dispatched_s").groupby("unit_idx"):
        assert np.all(g.dispatched_s.to_numpy()[1:] >= g.available_s.to_numpy()[:-1])
    ev = res.unit_events
    assert (ev.event == "dispatched").sum() == len(done)
    assert (ev.event == "available").sum() == len(done)
