"""twin.allocation: bed allocation against exhaustive search (Erlang B), pre-positioning against
the newsvendor and against a brute-force grid, and bad input named."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.allocation import allocate_beds, erlang_b_curve, preposition, stock_cost
from twin.errors import InfeasibleError, OptimisationError
from twin.queueing import erlang_b


def test_erlang_b_curve_is_the_closed_form():
    for a in (0.0, 0.5, 7.3, 40.0):
        curve = erlang_b_curve(a, 60)
        assert curve[0] == 1.0
        np.testing.assert_allclose(curve, [erlang_b(c, a) for c in range(61)], rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.5, 8.0), st.floats(0.5, 3.0)), min_size=1, max_size=3),
       st.integers(0, 14), st.integers(0, 2))
def test_bed_allocation_equals_exhaustive_search(pools, total, minimum):
    lam = np.array([p[0] for p in pools])
    stay = np.array([p[1] for p in pools])
    w = np.array([p[2] for p in pools])
    n = len(pools)
    if minimum * n > total:
        with pytest.raises(InfeasibleError, match="below the pools' minimum beds"):
            allocate_beds(lam, stay, total, minimum=minimum, weights=w)
        return
    plan = allocate_beds(lam, stay, total, minimum=minimum, weights=w)
    best = min(sum(w[h] * lam[h] * erlang_b(c[h], lam[h] * stay[h]) for h in range(n))
               for c in itertools.product(range(minimum, total + 1), repeat=n) if sum(c) == total)
    assert plan.beds.sum() == total and np.all(plan.beds >= minimum)
    assert plan.objective == pytest.approx(best, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(plan.blocking, [erlang_b(c, a) for c, a in zip(plan.beds, lam * stay)], rtol=1e-12)


def test_bed_allocation_bad_input():
    with pytest.raises(OptimisationError, match=r"mean_stay_h\[1\] = 0.0; expected a finite number > 0"):
        allocate_beds([1.0, 2.0], [3.0, 0.0], 10)
    with pytest.raises(OptimisationError, match=r"mean_stay_h: 1 values; expected 2, one per pool"):
        allocate_beds([1.0, 2.0], [3.0], 10)
    with pytest.raises(OptimisationError, match=r"total_beds = -1; expected an integer >= 0"):
        allocate_beds([1.0], [3.0], -1)
    with pytest.raises(OptimisationError, match=r"arrival_rate_per_h\[0\] = nan"):
        allocate_beds([float("nan")], [3.0], 4)


# ---- pre-positioning ----------------------------------------------------------------------------

def test_newsvendor_saa_lands_on_the_critical_quantile():
    """One item, demand N(1000, 200^2), underage 9, overage 1: the optimum is the 0.9 quantile,
    1000 + 200 z_0.9 = 1256.31. The SAA optimum on 10,000 scenarios is an empirical 0.9
    quantile, whose standard error is sqrt(0.9 x 0.1 / 10^4) / phi(z_0.9) x 200 = 3.4: +-10
    is three standard errors."""
    from scipy.stats import norm

    exact = 1000 + 200 * norm.ppf(0.9)
    assert exact == pytest.approx(1256.31, abs=0.01)
    d = np.random.default_rng(20261201).normal(1000, 200, 10_000)
    plan = preposition(d, overage_cost=1.0, shortage_cost=9.0)
    assert abs(plan.stock.item() - exact) <= 10.0
    # the LP's optimum is a 0.9 sample quantile and its cost is the sample mean cost at that stock
    assert np.mean(d <= plan.stock.item() + 1e-6) >= 0.9 - 1e-9
    assert plan.expected_cost == pytest.approx(stock_cost(plan.stock, d, overage_cost=1, shortage_cost=9).mean())


def test_two_depots_two_items_match_a_grid_search():
    rng = np.random.default_rng(4)
    d = rng.integers(0, 4, size=(6, 2, 2)).astype(float)               # 6 scenarios, 2 zones, 2 items
    ship = np.array([[0.0, 3.0], [3.0, 0.0]])
    over, short = np.array([1.0, 2.0]), np.array([6.0, 9.0])
    plan = preposition(d, overage_cost=over, shortage_cost=short, ship_cost=ship, capacity=[4, 4], integer=True)

    from scipy.optimize import linprog

    def cost_of(x):            # x[depot, item]; each scenario's shipping LP, exactly
        total = 0.0
        for s in range(len(d)):
            for k in range(2):  # items are independent given the stock
                # vars y00 y01 y10 y11 (depot, zone) then u0 u1
                c = np.concatenate([ship.ravel() - over[k], [short[k], short[k]]])
                a_eq = [[1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 0, 1]]
                a_ub = [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]
                r = linprog(c, A_ub=a_ub, b_ub=x[:, k], A_eq=a_eq, b_eq=d[s, :, k], bounds=(0, None))
                total += r.fun + over[k] * x[:, k].sum()
        return total / len(d)

    grid = [np.array(v, dtype=float).reshape(2, 2) for v in itertools.product(range(5), repeat=4)
            if v[0] + v[1] <= 4 and v[2] + v[3] <= 4]
    assert len(grid) == 15 * 15
    best = min(grid, key=cost_of)
    assert plan.expected_cost == pytest.approx(cost_of(best), rel=1e-9)
    assert plan.expected_cost == pytest.approx(cost_of(plan.stock), rel=1e-9)


def test_preposition_bad_input():
    with pytest.raises(OptimisationError, match=r"demand\[0, 0, 0\] = -1.0; expected a finite quantity >= 0"):
        preposition([-1.0, 2.0], overage_cost=1, shortage_cost=1)
    with pytest.raises(OptimisationError, match=r"shortage_cost = -3; expected finite costs >= 0"):
        preposition([1.0, 2.0], overage_cost=1, shortage_cost=-3)
    with pytest.raises(OptimisationError, match=r"ship_cost: shape \(2, 3\); expected \(depots, 1\)"):
        preposition([1.0, 2.0], overage_cost=1, shortage_cost=1, ship_cost=np.zeros((2, 3)))


def test_fixed_stock_is_evaluated_not_chosen():
    """``fixed_stock`` prices a given plan: with one depot, its cost is the newsvendor's, scenario by scenario."""
    import numpy as np

    from twin.allocation import preposition, stock_cost

    d = np.array([80.0, 100.0, 130.0])
    for x in (0.0, 90.0, 100.0, 150.0):
        r = preposition(d, overage_cost=1.0, shortage_cost=9.0, unit_cost=0.5, fixed_stock=[[x]])
        assert r.stock.item() == x
        assert r.expected_cost == pytest.approx(stock_cost([x], d, overage_cost=1.0, shortage_cost=9.0,
                                                            unit_cost=0.5).mean())
    with pytest.raises(OptimisationError, match=r"fixed_stock: shape \(2,\); expected \(1, 1\)"):
        preposition(d, overage_cost=1.0, shortage_cost=9.0, fixed_stock=[1.0, 2.0])
