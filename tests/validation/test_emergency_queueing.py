"""Erlang B/C and M/M/c formulas (twin.queueing) against hand values and scipy.

Independent references: the textbook definitions written with scipy's Poisson pmf/cdf
(``B = pmf(c; a) / cdf(c; a)``; ``C = B / (1 - ρ(1 - B))``), hand-computed small cases,
and the M/M/1 closed forms. Tolerances are float rounding (rel 1e-12) except where
scipy's own pmf limits accuracy (rel 1e-9).
"""

import math

import numpy as np
import pytest
from scipy import stats

from twin.queueing import (erlang_b, erlang_c, loss_mean_busy, loss_state_probabilities, loss_utilisation,
                           mmc_mean_queue_length, mmc_mean_wait, mmc_state_probabilities,
                           mmc_wait_exceeds_probability)


def erlang_b_scipy(c, a):
    return stats.poisson.pmf(c, a) / stats.poisson.cdf(c, a)


def test_hand_values():
    assert erlang_b(1, 1.0) == pytest.approx(0.5, rel=1e-12)            # a/(1+a)
    assert erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-12)            # (1/2)/(1+1+1/2)
    assert erlang_b(3, 2.0) == pytest.approx((8 / 6) / (1 + 2 + 2 + 8 / 6), rel=1e-12)
    assert erlang_b(0, 5.0) == 1.0 and erlang_b(4, 0.0) == 0.0
    assert erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-12)            # M/M/1: P(wait) = ρ
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # M/M/1: W_q = ρ/(μ - λ), L_q = ρ²/(1-ρ)
    assert mmc_mean_wait(1, 0.8, 10.0) == pytest.approx(0.8 * 10.0 / 0.2, rel=1e-12)
    assert mmc_mean_queue_length(1, 0.8) == pytest.approx(0.64 / 0.2, rel=1e-12)
    assert mmc_wait_exceeds_probability(1, 0.5, 3.0, 2.0) == pytest.approx(0.5 * math.exp(-0.5 * 3.0 / 2.0))


@pytest.mark.parametrize("c,a", [(1, 0.3), (5, 4.0), (10, 7.5), (30, 25.0), (100, 90.0), (200, 150.0)])
def test_erlang_b_and_c_match_scipy_poisson(c, a):
    b = erlang_b(c, a)
    assert b == pytest.approx(erlang_b_scipy(c, a), rel=1e-9)
    rho = a / c
    assert erlang_c(c, a) == pytest.approx(b / (1 - rho * (1 - b)), rel=1e-12)
    p = loss_state_probabilities(c, a)
    np.testing.assert_allclose(p, stats.poisson.pmf(np.arange(c + 1), a) / stats.poisson.cdf(c, a), rtol=1e-9)
    assert loss_mean_busy(c, a) == pytest.approx(float(np.arange(c + 1) @ p), rel=1e-9)
    assert loss_utilisation(c, a) == pytest.approx(loss_mean_busy(c, a) / c, rel=1e-12)


def test_mmc_state_probabilities_are_consistent_with_erlang_c():
    c, a = 4, 2.5
    p = mmc_state_probabilities(c, a, 400)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert p[c:].sum() == pytest.approx(erlang_c(c, a), rel=1e-12)
    lq = float(np.sum(np.maximum(np.arange(len(p)) - c, 0) * p))
    assert lq == pytest.approx(mmc_mean_queue_length(c, a), rel=1e-12)
    assert mmc_mean_wait(c, a, 3600.0) == pytest.approx(lq / (a / 3600.0), rel=1e-12)   # Little


def test_large_systems_are_stable():
    # a**c and c! overflow a float here; the recursion does not.
    b = erlang_b(5000, 4900.0)
    assert 0 < b < 0.05 and math.isfinite(b)
    assert 0 < erlang_c(5000, 4900.0) < 1


@pytest.mark.parametrize("call,match", [
    (lambda: erlang_b(-1, 1.0), "integer >= 0"),
    (lambda: erlang_b(2.5, 1.0), "integer >= 0"),
    (lambda: erlang_b(2, -1.0), "finite number >= 0"),
    (lambda: erlang_c(2, 2.0), "stable only for a < c"),
    (lambda: mmc_mean_wait(2, 1.0, 0.0), "mean_service"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
