"""A mass-casualty incident against its closed form (STYLE §14: theory-checked numbers).

System: ``K`` identical ambulances at one station ``S``, an incident of ``N > K`` patients at
``X`` at time ``t0``, one hospital ``H`` with enough beds (no waiting), static travel times,
every duration constant, call processing 0, units driving back (``return_mode = "drive"``).
Every patient is transported (the incident default).

At ``t0`` the first ``K`` patients get a unit each and the others wait in the dispatch queue.
A unit is free at the hospital after its handover and takes the next waiting patient at once,
from the hospital (it is re-dispatched before it drives back). So the patients are served in
``R = ceil(N / K)`` rounds; round ``r`` is dispatched at

    d_1 = 0,    d_r = A + (r - 2) B   (r >= 2), durations from t0, with
    A = turnout + t(S, X) + on_scene + t(X, H) + handover   (the first round, from the station)
    B = turnout + t(H, X) + on_scene + t(X, H) + handover   (the later ones, from the hospital)

and its patient's unit is on scene at ``d_r + turnout + t(origin, X)``, leaves the scene
(the scene is clear of the round) ``on_scene`` later, is at hospital ``t(X, H)`` after that
and free ``handover`` later. The incident KPIs are those of the last round, ``r = R``. All
times are integers of seconds, so the comparison is exact (no tolerance).
"""

import math

import numpy as np
import pytest

from twin.agents.ems import run_ems
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, IncidentSpec, ServiceSpec,
                            UnitSpec)

T_SX, T_XH, T_SH = 300.0, 600.0, 400.0
TURNOUT, ON_SCENE, HANDOVER = 60.0, 900.0, 600.0
T0 = 1000.0


def mci_spec(n_patients, n_units, triage=None):
    tt = np.array([[0.0, T_SX, T_SH],
                   [T_SX, 0.0, T_XH],
                   [T_SH, T_XH, 0.0]])
    c = lambda v: Dist("constant", v, 0.0)  # noqa: E731
    return EmsSpec(travel_time_s=tt,
                   call_types=(CallTypeSpec("trauma", 1, 1.0, c(ON_SCENE), 0.0),),
                   units=tuple(UnitSpec(f"a{i}", 0) for i in range(n_units)),
                   hospitals=(HospitalSpec("h", 2, 1000, c(86400.0)),),
                   dispatch=DispatchSpec("nearest", (), c(0.0), None),
                   service=ServiceSpec("path", turnout=c(TURNOUT), handover=c(HANDOVER), return_mode="drive"),
                   incidents=(IncidentSpec("bus crash", 1, T0, n_patients, triage),))


def closed_form(n, k):
    rounds = math.ceil(n / k)
    a = TURNOUT + T_SX + ON_SCENE + T_XH + HANDOVER
    b = TURNOUT + T_XH + ON_SCENE + T_XH + HANDOVER
    d = 0.0 if rounds == 1 else a + (rounds - 2) * b
    on_scene = d + TURNOUT + (T_SX if rounds == 1 else T_XH)
    clear = on_scene + ON_SCENE
    return {"last_on_scene_s": on_scene, "scene_clear_s": clear, "last_at_hospital_s": clear + T_XH,
            "complete_s": clear + T_XH + HANDOVER}


@pytest.mark.parametrize("n,k", [(5, 2), (4, 2), (7, 3), (2, 3), (25, 6)])
def test_time_to_clear_the_scene_follows_the_closed_form(n, k):
    res = run_ems(mci_spec(n, k), seed=3, until_s=7200.0)
    row = res.incidents.iloc[0]
    assert row["patients"] == n and row["n_transported"] == n and row["n_hospitals_used"] == 1
    assert row["hospitals"] == "h" and row["first_call_id"] == 0
    for key, want in closed_form(n, k).items():
        assert row[key] == want, key
        assert res.kpis[f"incident_0_{key}"] == want
    calls = res.calls
    assert (calls["outcome"] == "completed").all() and (calls["zone_idx"] == -1).all()
    # round by round: the r-th unit-load of patients is on scene at the round's time
    on = np.sort(calls["on_scene_s"].to_numpy() - T0)
    want = [closed_form(min(r * k, n), k)["last_on_scene_s"] for r in range(1, math.ceil(n / k) + 1)]
    assert sorted(set(on)) == want
    # patients are routine calls of no KPI: the routine call count is 0
    assert res.kpis["n_calls"] == 0


def test_triage_mix_orders_the_rounds_and_is_seeded():
    """Priorities are drawn from the triage shares (the incidents stream, so the same seed
    gives the same mix), numbered P1 first, and served P1 first."""
    spec = mci_spec(30, 4, triage=(0.2, 0.3, 0.5))
    a = run_ems(spec, seed=11, until_s=7200.0)
    b = run_ems(spec, seed=11, until_s=7200.0)
    pa = a.calls["priority"].to_numpy()
    np.testing.assert_array_equal(pa, b.calls["priority"].to_numpy())
    assert set(pa) <= {1, 2, 3} and np.all(np.diff(pa) >= 0)
    row = a.incidents.iloc[0]
    assert row["n_p1"] + row["n_p2"] + row["n_p3"] == 30
    assert [row["n_p1"], row["n_p2"], row["n_p3"]] == [int((pa == p).sum()) for p in (1, 2, 3)]
    on = a.calls["on_scene_s"].to_numpy()
    for p in (1, 2):                                   # every P(p) is on scene no later than any P(p+1)
        if (pa == p).any() and (pa == p + 1).any():
            assert on[pa == p].max() <= on[pa == p + 1].min()
    # the triage counts follow the shares over many seeds (binomial; 5 sd bounds)
    n1 = [run_ems(mci_spec(200, 50, (0.2, 0.3, 0.5)), seed=s, until_s=7200.0).incidents.iloc[0]["n_p1"]
          for s in range(5)]
    assert abs(np.mean(n1) - 40.0) < 5 * math.sqrt(200 * 0.2 * 0.8 / 5)
