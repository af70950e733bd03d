"""Forecast scores and assimilation against closed forms ([forecast] validation).

- Linear-Gaussian update: a prior N(10, 4) observed as 12 with noise variance 1 has the
  posterior N(11.6, 0.8) (Kalman: gain 4 / 5); the ensemble filter with 10^4 members must
  reproduce both within 0.03.
- CRPS of N(0, 1) at 0 is 2 phi(0) - 1/sqrt(pi) = 0.233695 (Gneiting and Raftery 2007).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.assimilate import (eakf_update, effective_size, importance_weights, normalised_weights,
                             poisson_log_likelihood, systematic_resample)
from twin.errors import ScenarioError
from twin.scores import central_interval, crps_ensemble, crps_gaussian, interval_coverage


def test_ensemble_filter_reproduces_the_linear_gaussian_posterior():
    rng = np.random.default_rng(12)
    prior = rng.normal(10.0, 2.0, 10_000)
    post = eakf_update(prior, 12.0, 1.0)
    assert abs(post.mean() - 11.6) < 0.03 and abs(post.var(ddof=1) - 0.8) < 0.03
    # the same from the prior ensemble's own moments, to rounding (the filter is deterministic)
    m, v = prior.mean(), prior.var(ddof=1)
    va = 1 / (1 / v + 1)
    assert post.mean() == pytest.approx(va * (m / v + 12.0), abs=1e-9)
    assert post.var(ddof=1) == pytest.approx(va, rel=1e-9)


def test_an_unobserved_variable_moves_by_its_regression():
    """Two correlated variables (corr 0.8), the first observed: the second's posterior is the
    bivariate normal's conditional update (mean + cov/var * shift of the first's mean)."""
    rng = np.random.default_rng(3)
    cov = np.array([[4.0, 0.8 * 2 * 3], [0.8 * 2 * 3, 9.0]])
    prior = rng.multivariate_normal([10.0, 50.0], cov, 20_000)
    post = eakf_update(prior, [12.0], [1.0], obs_operator=[[1.0, 0.0]])
    c = np.cov(prior.T)
    k = c[0, 0] / (c[0, 0] + 1.0)
    shift0 = k * (12.0 - prior[:, 0].mean())
    assert post[:, 0].mean() - prior[:, 0].mean() == pytest.approx(shift0, rel=1e-9)
    assert post[:, 1].mean() - prior[:, 1].mean() == pytest.approx(c[0, 1] / c[0, 0] * shift0, rel=1e-9)
    # and the Kalman posterior covariance of the unobserved one: c11 - c01^2 / (c00 + r)
    assert np.var(post[:, 1], ddof=1) == pytest.approx(c[1, 1] - c[0, 1] ** 2 / (c[0, 0] + 1.0), rel=1e-6)


def test_filter_inputs_are_checked():
    with pytest.raises(ScenarioError, match="members >= 2"):
        eakf_update([1.0], 1.0, 1.0)
    with pytest.raises(ScenarioError, match="variances > 0"):
        eakf_update([1.0, 2.0], 1.0, 0.0)
    with pytest.raises(ScenarioError, match="give obs_operator"):
        eakf_update(np.zeros((5, 2)), [1.0], [1.0])


def test_crps_of_a_gaussian_at_its_mean_is_the_closed_form():
    assert crps_gaussian(0.0, 1.0, 0.0) == pytest.approx(0.233695, abs=5e-7)
    assert crps_gaussian(0.0, 1.0, 0.0) == pytest.approx(2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi), rel=1e-12)
    # the ensemble estimator converges to it: 10^5 quantiles of N(0, 1)
    from scipy.stats import norm

    q = norm.ppf((np.arange(100_000) + 0.5) / 100_000)
    assert crps_ensemble(q, 0.0) == pytest.approx(0.233695, abs=1e-4)
    # scale: sigma = 3 -> 3 x; a shift of the truth by 1 sigma: 0.6020 (closed form, numerically)
    assert crps_gaussian(5.0, 3.0, 5.0) == pytest.approx(3 * 0.233695, abs=2e-6)
    assert crps_ensemble(q, 1.0) == pytest.approx(crps_gaussian(0.0, 1.0, 1.0), abs=1e-4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=30), st.floats(-1e3, 1e3))
def test_the_sorted_formula_equals_the_double_sum(xs, y):
    x = np.array(xs)
    direct = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()
    assert crps_ensemble(x, y) == pytest.approx(direct, abs=1e-9 * (1 + np.abs(x).max() + abs(y)))
    if len(x) > 1:
        fair = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).sum() / (len(x) * (len(x) - 1))
        assert crps_ensemble(x, y, fair=True) == pytest.approx(fair, abs=1e-9 * (1 + np.abs(x).max() + abs(y)))


def test_one_member_crps_is_the_absolute_error_and_shapes_broadcast():
    assert crps_ensemble([3.0], 5.0) == 2.0
    out = crps_ensemble(np.zeros((4, 3, 7)), np.ones((4, 3)))
    assert out.shape == (4, 3) and np.all(out == 1.0)
    with pytest.raises(ScenarioError, match="do not match"):
        crps_ensemble(np.zeros((4, 7)), np.ones(3))


def test_coverage_of_honest_intervals_is_their_level():
    rng = np.random.default_rng(5)
    members = rng.normal(size=(4000, 200))
    truth = rng.normal(size=4000)
    assert interval_coverage(members, truth, 0.9) == pytest.approx(0.9, abs=0.02)
    lo, hi = central_interval(np.arange(101.0), 0.9)
    assert (lo, hi) == pytest.approx((5.0, 95.0), abs=1e-12)


def test_importance_resampling():
    rng = np.random.default_rng(9)
    prior = rng.normal(10.0, 2.0, 50_000)
    w = importance_weights(prior, 12.0, 1.0)
    assert float(w @ prior) == pytest.approx(11.6, abs=0.03)
    idx = systematic_resample(w, rng)
    assert prior[idx].mean() == pytest.approx(11.6, abs=0.03)
    counts = np.bincount(idx, minlength=len(w))
    assert np.all(np.abs(counts - len(w) * w) < 1.0)
    assert 0 < effective_size(w) < len(w)


def test_poisson_weights_are_scipys_likelihood_normalised():
    from scipy import stats

    lam = np.array([[3.0, 10.0], [5.0, 5.0], [0.5, 12.0]])
    k = np.array([4, 9])
    w = normalised_weights(poisson_log_likelihood(lam, k))
    ref = np.exp(stats.poisson.logpmf(k, lam).sum(axis=1))
    assert np.allclose(w, ref / ref.sum(), rtol=1e-12)
    assert poisson_log_likelihood(np.array([0.0, 1.0]), 0).tolist() == [0.0, -1.0]     # nothing seen where none expected
    idx = systematic_resample(w, np.random.default_rng(1), n=1000)
    assert len(idx) == 1000 and all(abs(np.sum(idx == i) - 1000 * w[i]) < 1 for i in range(3))
    with pytest.raises(ScenarioError, match="at least one finite"):
        normalised_weights([-np.inf, -np.inf])
    with pytest.raises(ScenarioError, match="expected counts of shape"):
        poisson_log_likelihood(lam, [1, 2, 3])
