"""twin.siting: every model against brute-force enumeration on small random instances, the MEXCLP
switch from spreading to stacking computed by hand, and bad input named."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.errors import InfeasibleError, OptimisationError
from twin.siting import double_standard, lscp, mclp, mexclp, p_center, p_median

# ---- instances and plain enumeration -----------------------------------------------------------


@st.composite
def instances(draw):
    n = draw(st.integers(2, 6))
    m = draw(st.integers(2, 5))
    cost = np.array(draw(st.lists(st.one_of(st.integers(0, 20), st.just(-1)), min_size=n * m, max_size=n * m)),
                    dtype=float).reshape(n, m)
    cost[cost < 0] = math.inf
    w = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)), dtype=float)
    return cost, w


def nearest(cost, sites):
    return cost[:, list(sites)].min(axis=1)


def brute_median(cost, w, p):
    vals = []
    for s in itertools.combinations(range(cost.shape[1]), p):
        near = nearest(cost, s)
        vals.append(math.inf if np.any((w > 0) & ~np.isfinite(near)) else float(np.sum(w[w > 0] * near[w > 0])))
    return min(vals)


def brute_center(cost, w, p):
    return min(float(np.max(nearest(cost, s)[w > 0])) for s in itertools.combinations(range(cost.shape[1]), p))


def allocations(units, m, cap):
    for a in itertools.product(range(cap + 1), repeat=m):
        if sum(a) == units:
            yield np.array(a)


def solved_or_infeasible(solve, best):
    """The model's objective, or None when it reports the problem infeasible."""
    try:
        return solve()
    except (InfeasibleError, OptimisationError):
        assert not math.isfinite(best), f"the model refused a problem whose best plan is {best}"
        return None


# ---- brute force -------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(1, 3))
def test_p_median_matches_enumeration(inst, p):
    cost, w = inst
    p = min(p, cost.shape[1])
    best = brute_median(cost, w, p) if (w > 0).any() else 0.0
    r = solved_or_infeasible(lambda: p_median(cost, p, weights=w), best)
    if r is not None:
        assert r.objective == pytest.approx(best, abs=1e-6)
        assert len(r.sites) == p
        assert r.status == "optimal" and r.gap == 0.0


@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(1, 3))
def test_p_center_matches_enumeration(inst, p):
    cost, w = inst
    if not (w > 0).any():
        return
    p = min(p, cost.shape[1])
    best = brute_center(cost, w, p)
    r = solved_or_infeasible(lambda: p_center(cost, p, weights=w), best)
    if r is not None:
        assert r.objective == pytest.approx(best)
        assert len(r.sites) == p
        assert np.max(r.nearest_cost(cost)[w > 0]) == pytest.approx(best)


@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(0, 20))
def test_lscp_matches_enumeration(inst, standard):
    cost, w = inst
    m = cost.shape[1]
    dem = w > 0
    best = math.inf
    for k in range(0, m + 1):
        if any(np.all((cost[dem][:, list(s)] <= standard).any(axis=1)) for s in itertools.combinations(range(m), k)):
            best = k
            break
    r = solved_or_infeasible(lambda: lscp(cost, standard, weights=w), best)
    if r is not None:
        assert r.objective == pytest.approx(best) and len(r.sites) == best
        assert np.all((cost[dem][:, r.sites] <= standard).any(axis=1))


@settings(max_examples=60, deadline=None)
@given(instances(), st.integers(1, 3), st.integers(0, 20))
def test_mclp_matches_enumeration(inst, p, standard):
    cost, w = inst
    p = min(p, cost.shape[1])
    best = max(float(np.sum(w * (cost[:, list(s)] <= standard).any(axis=1)))
               for s in itertools.combinations(range(cost.shape[1]), p))
    r = mclp(cost, p, standard, weights=w)
    assert r.objective == pytest.approx(best, abs=1e-6)
    assert float(np.sum(w * (cost[:, r.sites] <= standard).any(axis=1))) == pytest.approx(best, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(instances(), st.integers(1, 4), st.integers(0, 20), st.sampled_from([0.0, 0.2, 0.5, 0.8]))
def test_mexclp_matches_enumeration(inst, units, standard, q):
    cost, w = inst
    m = cost.shape[1]
    cover = cost <= standard
    best = max(float(np.sum(w * (1 - q ** (cover @ a)))) for a in allocations(units, m, units))
    r = mexclp(cost, units, standard, q, weights=w)
    assert r.objective == pytest.approx(best, abs=1e-6)
    assert r.units.sum() == units
    assert float(np.sum(w * (1 - q ** (cover @ r.units)))) == pytest.approx(best, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(instances(), st.integers(1, 4), st.integers(0, 10), st.integers(0, 10), st.sampled_from([0.0, 0.5, 0.9]))
def test_double_standard_matches_enumeration(inst, units, r1, extra, alpha):
    cost, w = inst
    r2 = r1 + extra
    m, dem = cost.shape[1], w > 0
    near, far = (cost <= r1).astype(int), (cost <= r2).astype(int)
    best = -math.inf
    for a in allocations(units, m, 2):
        k1, k2 = near @ a, far @ a
        if np.all(k2[dem] >= 1) and np.sum(w * (k1 >= 1)) >= alpha * w.sum() - 1e-9:
            best = max(best, float(np.sum(w * (k1 >= 2))))
    best_or_inf = best if best > -math.inf else math.inf
    r = solved_or_infeasible(lambda: double_standard(cost, units, r1, r2, alpha, weights=w), best_or_inf)
    if r is not None:
        assert r.objective == pytest.approx(best, abs=1e-6)
        assert r.units.max() <= 2 and r.units.sum() == units


def test_fixed_sites_stay_open():
    rng = np.random.default_rng(3)
    cost = rng.integers(1, 50, size=(12, 8)).astype(float)
    free = p_median(cost, 3)
    forced = p_median(cost, 3, fixed=[7])
    assert 7 in forced.sites and forced.objective >= free.objective
    best = min(np.sum(nearest(cost, s)) for s in itertools.combinations(range(8), 3) if 7 in s)
    assert forced.objective == pytest.approx(best)
    assert 7 in mexclp(cost, 4, 20, 0.3, fixed=[7]).sites
    assert 7 in lscp(cost, 30, fixed=[7]).sites


def test_capacitated_median_respects_capacity_and_enumeration():
    rng = np.random.default_rng(5)
    cost = rng.integers(1, 30, size=(8, 5)).astype(float)
    w = rng.integers(1, 4, size=8).astype(float)
    cap = np.full(5, w.sum() / 2.5)
    r = p_median(cost, 3, weights=w, capacity=cap, single_source=True)
    best = math.inf
    for s in itertools.combinations(range(5), 3):        # single sourcing: every assignment of points to s
        for assign in itertools.product(s, repeat=8):
            load = np.bincount(assign, weights=w, minlength=5)
            if np.all(load <= cap + 1e-9):
                best = min(best, float(np.sum(w * cost[np.arange(8), assign])))
    assert r.objective == pytest.approx(best)
    with pytest.raises(InfeasibleError, match="no feasible plan"):
        p_median(cost, 1, weights=w, capacity=cap)


# ---- MEXCLP: spreading versus stacking --------------------------------------------------------

def test_mexclp_switches_from_spreading_to_stacking_at_the_hand_computed_busy_fraction():
    """Three points, each a candidate covering only itself; weights 1, W = 4 and 0.5; two units.
    Spreading (one unit at point 0, one at point 1) is worth (1 - q)(1 + W); stacking both at
    point 1 is worth W (1 - q^2) = W (1 - q)(1 + q). Spreading wins iff 1 + W > W (1 + q), i.e.
    q < 1 / W = 0.25 (spreading to point 2 instead of 0 is worth less, 0.5 < 1)."""
    cost = np.array([[0.0, 9.0, 9.0], [9.0, 0.0, 9.0], [9.0, 9.0, 0.0]])
    w = np.array([1.0, 4.0, 0.5])
    spread = mexclp(cost, 2, 5.0, 0.20, weights=w)
    stack = mexclp(cost, 2, 5.0, 0.30, weights=w)
    assert spread.units.tolist() == [1, 1, 0]
    assert stack.units.tolist() == [0, 2, 0]
    assert spread.objective == pytest.approx(0.8 * 5.0)
    assert stack.objective == pytest.approx(4.0 * (1 - 0.3 ** 2))
    tie = 0.25                                            # both plans are worth 3.75
    assert mexclp(cost, 2, 5.0, tie, weights=w).objective == pytest.approx(0.75 * 5.0)


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call,err,match", [
    (lambda c: p_median(c, 9), OptimisationError, r"p = 9; expected an integer in 1..4 \(candidates: 4"),
    (lambda c: p_median(c, 2, fixed=[6]), OptimisationError, r"fixed site 6: not a candidate; candidates are 0..3"),
    (lambda c: p_median(c, 1, fixed=[0, 1]), OptimisationError, r"p = 1; expected an integer in 2..4"),
    (lambda c: p_median(c, 2, weights=[1, 2]), OptimisationError, r"weights: shape \(2,\); expected \(3,\)"),
    (lambda c: p_median(c, 2, weights=[1, -2, 1]), OptimisationError, r"weights\[1\] = -2.0; expected"),
    (lambda c: p_median(np.where(c == 0, -1, c), 2), OptimisationError, r"cost_s\[0, 0\] = -1.0; expected a cost >= 0"),
    (lambda c: lscp(c, 1.0), InfeasibleError, r"demand point 1 has no candidate within standard_s = 1"),
    (lambda c: lscp(c, -1.0), OptimisationError, r"standard_s = -1.0; expected a finite cost >= 0"),
    (lambda c: mexclp(c, 2, 5.0, 1.0), OptimisationError, r"q = 1.0; expected a busy probability 0 <= q < 1"),
    (lambda c: mexclp(c, 9, 5.0, 0.1, max_per_site=2), InfeasibleError, r"9 units do not fit on 4 sites"),
    (lambda c: double_standard(c, 2, 9.0, 5.0, 0.5), OptimisationError, r"r1_s = 9 > r2_s = 5"),
    (lambda c: double_standard(c, 2, 1.0, 2.0, 0.5), InfeasibleError, r"demand point 1 has no candidate within r2_s"),
])
def test_bad_input_is_named(call, err, match):
    cost = np.array([[0.0, 5.0, 9.0, 3.0], [5.0, 4.0, 4.0, 6.0], [9.0, 4.0, 0.0, 7.0]])
    with pytest.raises(err, match=match):
        call(cost)


def test_unreachable_weighted_demand_is_named():
    cost = np.array([[0.0, 1.0], [math.inf, math.inf]])
    with pytest.raises(OptimisationError, match=r"demand point 1 \(weight 1\) reaches no candidate site"):
        p_median(cost, 1)
    assert p_median(cost, 1, weights=[1.0, 0.0]).sites.tolist() == [0]
