"""Access and equity measures (twin.access) against hand computations.

- 2SFCA (the issue's example): populations [100, 200, 300], supplies [10, 20], times
  [[5, 20], [10, 10], [25, 5]] min, 15-min catchment: ratios [1/30, 0.04], accessibility
  [0.033333, 0.073333, 0.04]; within 15 min [10, 30, 20].
- Enhanced 2SFCA with Luo & Qi's 1 / 0.68 / 0.22 bands, worked by hand:
  R = [10 / (100 + 0.68·200), 20 / (0.68·200 + 300)], A = [R0, 0.68 (R0 + R1), R1].
- Σ population × accessibility = the supply that has demand in reach, for any decay used in
  both steps (a property test).
- Gini of [1..5] = 0.266667, of [0, 0, 0, 1] = 0.75 (no n/(n-1) correction, as pysal); Theil
  of [1..5] split by groups {1, 2} and {3, 4, 5}: between = 0.2 ln(1.5/3) + 0.8 ln(4/3), and
  between + within = total to 1e-12. Integer weights equal repeating the values.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.access import (LUO_QI_BANDS_S, LUO_QI_WEIGHTS, band_weights, cumulative_opportunities, gini, group_gap,
                         theil, theil_decomposition, two_step_fca)
from twin.errors import ScenarioError

T = np.array([[5, 20], [10, 10], [25, 5]]) * 60.0


def test_two_step_fca_by_hand():
    a, r = two_step_fca([100, 200, 300], [10, 20], T, 900.0)
    np.testing.assert_allclose(r, [10 / 300, 20 / 500])
    np.testing.assert_allclose(a, [10 / 300, 10 / 300 + 20 / 500, 20 / 500])
    assert np.dot([100, 200, 300], a) == pytest.approx(30.0)
    assert cumulative_opportunities([10, 20], T, 900.0).tolist() == [10.0, 30.0, 20.0]


def test_enhanced_two_step_fca_by_hand():
    a, r = two_step_fca([100, 200, 300], [10, 20], T, bands_s=LUO_QI_BANDS_S, weights=LUO_QI_WEIGHTS)
    r0, r1 = 10 / (100 + 0.68 * 200), 20 / (0.68 * 200 + 300)
    np.testing.assert_allclose(r, [r0, r1])
    np.testing.assert_allclose(a, [r0, 0.68 * (r0 + r1), r1])
    assert band_weights([0.0, 300.0, 300.1, 900.0, 900.1, math.inf]).tolist() == [1.0, 1.0, 0.68, 0.22, 0.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 5), st.integers(0, 10_000))
def test_accessibility_shares_out_exactly_the_supply_in_reach(n_d, n_s, seed):
    rng = np.random.default_rng(seed)
    p, s = rng.integers(0, 500, n_d).astype(float), rng.uniform(0, 50, n_s)
    t = rng.uniform(0, 1500, (n_d, n_s))
    t[rng.random((n_d, n_s)) < 0.2] = np.inf
    for kw in ({"threshold_s": 900.0}, {"bands_s": (200.0, 700.0, 1200.0), "weights": (1.0, 0.5, 0.1)}):
        a, r = two_step_fca(p, s, t, **kw)
        w = (t <= 900.0) if "threshold_s" in kw else band_weights(t, kw["bands_s"], kw["weights"])
        served = (p @ w) > 0
        assert np.dot(p, a) == pytest.approx(s[served].sum(), rel=1e-9, abs=1e-9)


def test_gini_and_theil_by_hand():
    assert gini([1, 2, 3, 4, 5]) == pytest.approx(0.266667, abs=1e-6)
    assert gini([0, 0, 0, 1]) == 0.75
    assert gini([3, 3, 3]) == 0.0
    y = np.array([1, 2, 3, 4, 5.0])
    d = theil_decomposition(y, [0, 0, 1, 1, 1])
    assert d["total"] == pytest.approx(np.mean(y / 3 * np.log(y / 3)), abs=1e-15) == pytest.approx(theil(y))
    assert d["between"] == pytest.approx(0.2 * math.log(1.5 / 3) + 0.8 * math.log(4 / 3), abs=1e-12)
    assert d["between"] + d["within"] == pytest.approx(d["total"], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=12), st.integers(0, 10_000))
def test_integer_weights_repeat_the_values(xs, seed):
    rng = np.random.default_rng(seed)
    x = np.array(xs, dtype=float)
    w = rng.integers(1, 4, len(x))
    rep = np.repeat(x, w)
    assert gini(x, w) == pytest.approx(gini(rep), abs=1e-12)
    assert theil(x, w) == pytest.approx(theil(rep), abs=1e-12)
    g = rng.integers(0, 3, len(x))
    d, e = theil_decomposition(x, g, w), theil_decomposition(rep, np.repeat(g, w))
    assert d["between"] == pytest.approx(e["between"], abs=1e-12) and d["within"] == pytest.approx(e["within"],
                                                                                                   abs=1e-12)
    assert d["between"] + d["within"] == pytest.approx(d["total"], abs=1e-12)


def test_group_gap_and_bad_inputs():
    assert group_gap([1.0, 3.0, 5.0], [True, False, False]) == pytest.approx(3.0)
    with pytest.raises(ScenarioError, match=r"times_s has shape \(2, 2\); expected \(demand, supply\) = \(3, 2\)"):
        two_step_fca([1, 2, 3], [1, 2], T[:2], 900.0)
    with pytest.raises(ScenarioError, match="give threshold_s"):
        two_step_fca([1, 2, 3], [1, 2], T)
    with pytest.raises(ScenarioError, match="demand must be finite numbers >= 0"):
        two_step_fca([1, -2, 3], [1, 2], T, 900.0)
    with pytest.raises(ScenarioError, match="theil: values must be >= 0"):
        theil([1.0, -1.0])
