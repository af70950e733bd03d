"""Coordination ([coordination] #19): call takers pooled in one centre against siloed centres.

Queueing theory we did not write: two siloed centres, each one call taker answering Poisson
calls at 0.8/min with exponential interviews of mean 1 min, are two M/M/1 queues with mean
wait rho/(mu - lambda) = 4.00 min; one unified centre with both call takers answering all the
calls (1.6/min) is an M/M/2 queue with Erlang C(2, 1.6) = 0.7111 and mean wait
C/(2 mu - lambda) = 1.778 min. Both modes run on the same calls and interviews (common random
numbers), so the paired difference per replication estimates 4.00 - 1.778 = 2.222 min with a
small variance. Statistical checks as in test_emergency_analytic.py: R independent
replications, a Bonferroni t interval at family level 0.001, and a bound on the interval's
relative half-width so a test cannot pass by being uninformative. Warm-up 6 h (the M/M/1 at
rho = 0.8 relaxes in about 1/(mu (1 - sqrt(rho))^2), 1.5 h), then 100 h (about 4,800 calls
per centre) in each of 12 replications; intervals within 20-25 % (mean waits at this load vary
much from run to run) and 8 % (the probability of waiting).
"""

import math

import numpy as np
import pytest
from scipy import stats

from twin.agents.ems import run_ems, run_replications
from twin.emergency import CallTypeSpec, DispatchSpec, Dist, EmsSpec, ServiceSpec, UnitSpec, ZoneSpec
from twin.queueing import erlang_c, mmc_mean_wait

FAMILY_ALPHA = 0.001
LAMBDA_PER_MIN = 0.8          # per centre (each call type)
MEAN_INTERVIEW_S = 60.0


def centre_spec(mode, *, hours=100.0):
    siloed = mode == "siloed"
    return EmsSpec(travel_time_s=np.zeros((1, 1)),
                   zones=(ZoneSpec("zone", 0, 2 * LAMBDA_PER_MIN * 60.0),),
                   call_types=(CallTypeSpec("medical", share=0.5), CallTypeSpec("police", share=0.5)),
                   units=tuple(UnitSpec(f"u{i}", 0) for i in range(40)),
                   dispatch=DispatchSpec("nearest", (), Dist("exponential", MEAN_INTERVIEW_S), None,
                                         centres=(("medical", 1), ("police", 1)) if siloed else (("unified", 2),),
                                         centre_of_type=(0, 1) if siloed else (0, 0)),
                   service=ServiceSpec(mode="busy_time", busy_time=Dist("constant", 1.0, 0.0)),
                   warmup_s=6 * 3600.0)


def assert_in_ci(samples, exact, *, k, label, max_rel_half_width):
    x = np.asarray(samples, dtype=np.float64)
    se = float(x.std(ddof=1) / math.sqrt(len(x)))
    half = stats.t.ppf(1.0 - FAMILY_ALPHA / (2 * k), len(x) - 1) * se
    assert abs(float(x.mean()) - exact) <= half, f"{label}: exact {exact:.5g} outside {x.mean():.5g} ± {half:.3g}"
    assert half <= max_rel_half_width * abs(exact), f"{label}: interval ± {half:.3g} too wide to tell"


def test_pooled_call_takers_match_erlang_c_and_siloed_ones_mm1():
    until = 106 * 3600.0
    siloed = run_replications(centre_spec("siloed"), seed=31, n_replications=12, until_s=until)
    unified = run_replications(centre_spec("unified"), seed=31, n_replications=12, until_s=until)
    mu = 1.0 / MEAN_INTERVIEW_S
    lam = LAMBDA_PER_MIN / 60.0
    w1 = (lam / mu) / (mu - lam)                                   # M/M/1: 240 s
    w2 = mmc_mean_wait(2, 2 * lam / mu, MEAN_INTERVIEW_S)           # M/M/2: 106.7 s
    assert w1 == pytest.approx(240.0) and w2 == pytest.approx(106.667, rel=1e-4)
    assert erlang_c(2, 1.6) == pytest.approx(0.7111, abs=1e-4)
    s = [r.kpis["call_taking_wait_mean_s"] for r in siloed]
    u = [r.kpis["call_taking_wait_mean_s"] for r in unified]
    assert_in_ci(s, w1, k=4, label="siloed mean wait", max_rel_half_width=0.2)
    assert_in_ci(u, w2, k=4, label="unified mean wait", max_rel_half_width=0.25)
    assert_in_ci([r.kpis["call_taking_wait_share"] for r in unified], erlang_c(2, 1.6), k=4,
                 label="unified P(wait)", max_rel_half_width=0.08)
    assert_in_ci(np.subtract(s, u), w1 - w2, k=4, label="paired difference", max_rel_half_width=0.2)
    for r in siloed:                                # each centre sees only its own calls
        per = r.call_centres.set_index("centre")
        assert set(per.index) == {"medical", "police"} and per["call_takers"].tolist() == [1.0, 1.0]


def test_without_call_takers_nothing_changes():
    """No centres: the run is the one without agencies, call by call; a centre with unlimited
    call takers (inf) is the same too."""
    from dataclasses import replace

    base = centre_spec("unified")

    a = run_ems(replace(base, dispatch=replace(base.dispatch, centres=(), centre_of_type=())), seed=4, until_s=20 * 3600)
    b = run_ems(replace(base, dispatch=replace(base.dispatch, centres=(("all", math.inf),))), seed=4, until_s=20 * 3600)
    assert a.calls.equals(b.calls)
    assert b.kpis["call_taking_wait_mean_s"] == 0.0 and "call_taking_wait_mean_s" not in a.kpis


def test_a_call_waits_for_a_call_taker_in_arrival_order():
    """One call taker, interviews of exactly 60 s, calls at 0, 10 and 20 s: answered at 0, 60
    and 120 s, ready for dispatch 60 s later each (an event timeline)."""
    from dataclasses import replace

    spec = centre_spec("unified")
    spec = replace(spec, dispatch=replace(spec.dispatch, processing=Dist("constant", 60.0, 0.0),
                                          centres=(("one", 1),), centre_of_type=(0, 0)), warmup_s=0.0)
    calls = {"time_s": [0.0, 10.0, 20.0], "zone_idx": [0, 0, 0], "type_idx": [1, 0, 1]}
    res = run_ems(spec, seed=1, until_s=3600.0, calls=calls)
    t = res.call_taking
    assert t["answer_s"].tolist() == [0.0, 60.0, 120.0] and t["wait_s"].tolist() == [0.0, 50.0, 100.0]
    assert res.calls["ready_s"].tolist() == [60.0, 120.0, 180.0]


def transfer_spec(mode, *, transfer_s=45.0, medical_s=90.0, police_s=120.0, takers=math.inf):
    """A crash needs a police car and an ambulance; the police centre answers it. In siloed
    mode the medical centre owns the ambulances: the call is transferred there."""
    siloed = mode == "siloed"
    tt = np.array([[0.0, 300.0, 420.0], [300.0, 0.0, 200.0], [420.0, 200.0, 0.0]])
    kinds = (("als", 1), ("police", 1))
    dispatch = DispatchSpec(
        "nearest", (), Dist("constant", police_s, 0.0), None,
        centres=(("medical", takers), ("police", takers)) if siloed else (("unified", takers),),
        centre_of_type=(0, 1) if siloed else (0, 0),
        type_processing=(Dist("constant", medical_s, 0.0), Dist("constant", police_s, 0.0)),
        agencies=("medical", "police"), agency_of_unit=(0, 1), agency_of_kind=(0, 0, -1, 1),
        **({"centre_of_kind": (0, 0, -1, 1), "transfer": Dist("constant", transfer_s, 0.0),
            "centre_processing": (Dist("constant", medical_s, 0.0), Dist("constant", police_s, 0.0))}
           if siloed else {}))
    return EmsSpec(travel_time_s=tt, zones=(ZoneSpec("scene", 0, 1.0),),
                   call_types=(CallTypeSpec("medical", share=0.5), CallTypeSpec("crash", share=0.5, requires=kinds)),
                   units=(UnitSpec("amb", 1, kind="als"), UnitSpec("car", 2, kind="police")),
                   dispatch=dispatch,
                   service=ServiceSpec(mode="busy_time", busy_time=Dist("constant", 600.0, 0.0)), warmup_s=0.0)


def test_a_transferred_call_is_later_by_the_transfer_and_the_second_interview():
    """Free flow, constant times: the crash's ambulance reaches the scene later in siloed
    mode by exactly the transfer delay plus the medical centre's interview (45 + 90 s); its
    police car at the same time in both modes (an event timeline)."""
    calls = {"time_s": [100.0], "zone_idx": [0], "type_idx": [1]}
    on_scene = {}
    for mode in ("unified", "siloed"):
        res = run_ems(transfer_spec(mode), seed=1, until_s=3600.0, calls=calls)
        a = res.assignments.set_index("unit_idx").sort_index()      # 0: the ambulance, 1: the police car
        on_scene[mode] = a["on_scene_s"].to_dict()
        assert a["dispatched_s"].tolist() == ([220.0, 220.0] if mode == "unified" else [355.0, 220.0])
    assert on_scene["unified"] == {0: 100.0 + 120.0 + 300.0, 1: 100.0 + 120.0 + 420.0}
    assert on_scene["siloed"][0] - on_scene["unified"][0] == 45.0 + 90.0
    assert on_scene["siloed"][1] == on_scene["unified"][1]
    # the full set (both units) and each agency's first unit, from the call at 100 s
    assert (res.kpis["full_set_mean_s"], res.kpis["full_set_calls"]) == (655.0 - 100.0, 1)
    assert res.kpis["agency_medical_on_scene_mean_s"] == 555.0 and res.kpis["agency_police_on_scene_mean_s"] == 540.0
    assert res.agency_response["agency"].tolist() == ["medical", "police"]
    assert res.agency_response["unit_kinds"].tolist() == ["als;bls", "police"]
    t = res.call_taking
    assert t["centre"].tolist() == ["medical", "police"] and t["transferred"].tolist() == [True, False]
    assert t["arrive_s"].tolist() == [265.0, 100.0] and t["done_s"].tolist() == [355.0, 220.0]
    assert res.kpis["calls_transferred"] == 1 and res.kpis["transfer_delay_mean_s"] == 135.0


def test_a_transfer_waits_for_a_call_taker_at_the_receiving_centre():
    """One call taker at each centre: a medical call at 200 s holds the medical call taker
    until 290 s, so the crash transferred at 265 s waits 25 s for it; its interview ends at
    380 s, when the one ambulance is busy with the medical call (290 to 890 s): the crash
    waits in the queue for it."""
    calls = {"time_s": [100.0, 200.0], "zone_idx": [0, 0], "type_idx": [1, 0]}
    res = run_ems(transfer_spec("siloed", takers=1), seed=1, until_s=3600.0, calls=calls)
    t = res.call_taking.set_index(["call_id", "centre"])
    assert t.loc[(0, "medical"), "wait_s"] == 25.0 and t.loc[(0, "medical"), "done_s"] == 290.0 + 90.0
    a = res.assignments
    assert a.loc[(a.call_id == 1), "dispatched_s"].item() == 290.0
    assert a.loc[(a.call_id == 0) & (a.unit_idx == 0), "dispatched_s"].item() == 890.0


# Jurisdictions: Larson's hypercube with restricted preference lists (hard borders) against
# nearest-first lists over the whole fleet (open borders), on the three-unit, four-atom system
# of test_emergency_analytic.py. Agency A (units 0 and 1) has atoms 0 and 1, agency B (unit 2)
# atoms 2 and 3. Loss variant: a call finding no allowed unit idle is lost.
HC_RATES_PER_H = [0.50, 0.25, 0.35, 0.40]
HC_TRAVEL_S = np.array([[180.0, 240.0, 420.0, 480.0],
                        [300.0, 540.0, 150.0, 600.0],
                        [480.0, 270.0, 660.0, 200.0]])
ATOM_AGENCY = (0, 0, 1, 1)
UNIT_AGENCY = (0, 0, 1)


def jurisdiction_spec(borders, *, aid=False):
    from dataclasses import replace

    from twin.emergency import hypercube_spec

    base = hypercube_spec(HC_RATES_PER_H, [3600.0] * 3, [[0, 1, 2]] * 4, HC_TRAVEL_S, variant="loss",
                          warmup_s=50 * 3600.0)
    agencies = dict(agencies=("A", "B"), agency_of_unit=UNIT_AGENCY, agency_of_kind=(ATOM_AGENCY, -1, -1, -1))
    if borders == "hard":
        centres = dict(centres=(("A", math.inf), ("B", math.inf)), centre_of_type=(ATOM_AGENCY,),
                       centre_of_kind=(ATOM_AGENCY, -1, -1, -1), centre_of_unit=UNIT_AGENCY)
        if aid:
            centres.update(mutual_aid=((1,), (0,)), aid_delay=Dist("constant", 120.0, 0.0))
    else:
        centres = dict(centres=(("unified", math.inf),), centre_of_type=(0,))
    return replace(base, dispatch=DispatchSpec("nearest", (), Dist("constant", 0.0, 0.0), 0, **agencies, **centres))


@pytest.mark.parametrize("borders", ["hard", "open"])
def test_jurisdictions_match_the_hypercube_with_restricted_or_nearest_first_lists(borders):
    """Exact (``solve_hypercube``, loss variant): hard borders are preference lists holding
    only the atom's agency's units, nearest first by travel time ([0, 1], [0, 1], [2], [2]);
    open borders are nearest-first lists over all three units ([0, 1, 2], [0, 2, 1],
    [1, 0, 2], [2, 0, 1]). Compared: the
    three workloads, the lost share and the share of dispatches across a border (0 with hard
    borders; with open borders the exact sum of f_nj over units of the other agency). R = 20
    replications of 1,000 h after 50 h warm-up; k = 5 intervals; workloads within 6 %."""
    from twin.hypercube import solve_hypercube

    nearest = [np.argsort(HC_TRAVEL_S[:, j], kind="stable").tolist() for j in range(4)]
    prefs = ([[u for u in p if UNIT_AGENCY[u] == ATOM_AGENCY[j]] for j, p in enumerate(nearest)]
             if borders == "hard" else nearest)
    exact = solve_hypercube(np.array(HC_RATES_PER_H) / 3600.0, np.full(3, 1 / 3600.0), prefs, variant="loss")
    other = np.array([[UNIT_AGENCY[n] != ATOM_AGENCY[j] for j in range(4)] for n in range(3)])
    cross = float(exact.dispatch_fraction[other].sum())
    runs = run_replications(jurisdiction_spec(borders), seed=41, n_replications=30, until_s=2050 * 3600.0)
    workloads = np.array([r.units.utilisation.to_numpy() for r in runs])
    for n in range(3):
        assert_in_ci(workloads[:, n], exact.workload[n], k=5, label=f"workload of unit {n}", max_rel_half_width=0.06)
    assert_in_ci([r.kpis["lost_share"] for r in runs], exact.prob_all_busy, k=5, label="lost share",
                 max_rel_half_width=0.15)
    shares = [r.kpis["cross_border_share"] for r in runs]
    if borders == "hard":
        assert cross == 0.0 and all(s == 0.0 for s in shares)
    else:
        assert cross > 0.05
        assert_in_ci(shares, cross, k=5, label="cross-border share", max_rel_half_width=0.1)


def test_mutual_aid_sends_a_partners_unit_after_the_aid_delay():
    """Hard borders with mutual aid (120 s), queueing calls: agency A's two units are busy
    with calls at 0 and 10 s (atom 0); a third A call at 20 s waits, and at 140 s B's idle unit
    is sent across the border (an event timeline)."""
    from dataclasses import replace

    spec = jurisdiction_spec("hard", aid=True)
    spec = replace(spec, dispatch=replace(spec.dispatch, max_queue=None), warmup_s=0.0)
    calls = {"time_s": [0.0, 10.0, 20.0], "zone_idx": [0, 1, 0], "type_idx": [0, 0, 0]}
    res = run_ems(spec, seed=2, until_s=600.0, calls=calls, drain=False)
    a = res.assignments.sort_values("call_id")
    assert a["unit_idx"].tolist() == [0, 1, 2] and a["dispatched_s"].tolist() == [0.0, 10.0, 140.0]
    assert res.kpis["mutual_aid_requests"] == 1 and res.kpis["mutual_aid_units"] == 1
    assert res.kpis["cross_border_units"] == 1


def _union_overlap(spans, lo, hi):
    """Length of [lo, hi] covered by the union of ``spans`` (a list of (start, end))."""
    total, cur = 0.0, lo
    for a, b in sorted(spans):
        a, b = max(a, cur), min(b, hi)
        if b > a:
            total += b - a
            cur = b
    return total


@pytest.mark.parametrize("mode", ["siloed", "unified"])
def test_units_idle_while_a_call_waited_elsewhere(mode):
    """A slot's wait (ready at its first centre to its unit sent) overlapping any time a unit
    that could fill it was free somewhere, recounted here from the unit events with interval
    unions. Unified: never (a slot waits only while no such unit is free); siloed: transfers,
    hard borders and aid delays leave free units idle while calls wait."""
    from twin.emergency import UNIT_KINDS
    from twin.runner import run

    r = run("hefei_joint", overrides=[f"coordination.mode={mode}"])
    ems = r.ems
    ue, calls, asg = ems.unit_events, ems.calls, ems.assignments
    free_ev = ue["event"].isin(["available", "returning", "at_station", "relocating"]).to_numpy()
    spans = {}
    for u in range(len(ems.units)):
        rows = np.flatnonzero(ue["unit_idx"].to_numpy() == u)
        start = 0.0
        for i in rows:
            t = ue["time_s"].iat[i]
            if free_ev[i] and start is None:
                start = t
            elif not free_ev[i] and start is not None:
                spans.setdefault(u, []).append((start, t))
                start = None
        if start is not None:
            spans.setdefault(u, []).append((start, math.inf))
    kind = ems.units["kind"].to_numpy()
    sent = asg.groupby(["call_id", "slot"])["dispatched_s"].min().to_dict()
    n, total = 0, 0.0
    for c in calls.itertuples():
        if c.outcome == "lost" or not np.isfinite(c.ready_s):
            continue
        for s, (k, f) in enumerate(ems.spec.call_types[c.type_idx].slots):
            end = sent.get((c.call_id, s), ems.end_s)
            ok = [u for u in range(len(kind)) if kind[u] in (k, f)]
            x = _union_overlap([sp for u in ok for sp in spans.get(u, [])], c.ready_s, end)
            n += x > 1.0
            total += x
    assert r.kpis["slots_waited_with_idle_units"] == n
    assert r.kpis["wait_with_idle_units_h"] == pytest.approx(total / 3600.0, rel=1e-9, abs=1e-9)
    assert (n == 0) == (mode == "unified") and set(UNIT_KINDS) >= set(kind)
