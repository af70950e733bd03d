"""Per-zone, per-type, per-hour call rates: generated counts against their Poisson means.

The generator (:func:`twin.agents.calls.table_arrivals`, used by
:func:`twin.agents.calls.generate_calls` when ``EmsSpec.rate_table_per_h`` is given) must
make the count of each (hour of day, zone, call type) cell an independent Poisson variable
with mean ``rate × days``. We check that with Pearson's chi-square over all cells, and
that the test has power: the same counts are rejected against the expectation of the
product model (one daily profile for all zones, fixed type shares) with the same daily
totals.
"""

import numpy as np
from scipy import stats

from twin.agents.calls import generate_calls, spawn_streams
from twin.emergency import CallTypeSpec, EmsSpec, UnitSpec, ZoneSpec

DAYS = 200


def table():
    """3 zones x 2 types with different daily shapes: a business zone busy by day, a
    residential one by night, and a flat one; type 'b' is relatively more common at night."""
    h = np.arange(24)
    day = 1.0 + 0.8 * np.cos((h - 13) / 24 * 2 * np.pi)
    night = 1.0 + 0.8 * np.cos((h - 1) / 24 * 2 * np.pi)
    rt = np.empty((24, 3, 2))
    rt[:, 0, 0], rt[:, 0, 1] = 1.2 * day, 0.3 * day
    rt[:, 1, 0], rt[:, 1, 1] = 0.6 * night, 0.5 * night
    rt[:, 2, 0], rt[:, 2, 1] = 0.4, 0.2 * night
    return rt


def spec(rt):
    return EmsSpec(travel_time_s=np.zeros((4, 4)),
                   zones=tuple(ZoneSpec(f"z{j}", j + 1, float(rt[:, j, :].sum() / 24)) for j in range(3)),
                   call_types=(CallTypeSpec("a", 1, 0.5), CallTypeSpec("b", 2, 0.5)),
                   units=(UnitSpec("u", 0),), rate_table_per_h=rt)


def cell_counts(calls):
    hour = (calls.time_s // 3600).astype(int) % 24
    counts = np.zeros((24, 3, 2))
    np.add.at(counts, (hour, calls.zone_idx, calls.type_idx), 1)
    return counts


def test_counts_per_zone_type_hour_match_the_poisson_means():
    """Pearson chi-square over the 144 cells (expected counts 8 to 432, at least the 5 the
    approximation needs) with 144 degrees of freedom; accepted when p > 0.001. The
    total is checked with a 4-sigma z-interval. Deterministic for the fixed seed; a wrong
    generator (e.g. one daily profile, or per-zone rates without the hour) fails."""
    rt = table()
    calls = generate_calls(spec(rt), DAYS * 86400.0, spawn_streams(3))
    observed = cell_counts(calls)
    expected = rt * DAYS
    assert expected.min() >= 5
    chi2 = float((((observed - expected) ** 2) / expected).sum())
    p = stats.chi2.sf(chi2, df=expected.size)
    assert p > 1e-3, (chi2, p)
    n, mu = observed.sum(), expected.sum()
    assert abs(n - mu) < 4 * np.sqrt(mu)
    # the calls' types and priorities agree
    assert set(np.unique(calls.priority[calls.type_idx == 1])) == {2}


def test_the_product_model_is_rejected_by_the_same_counts():
    """Power check: the product model with the same zone and type totals (one common hourly
    profile, fixed type shares) gives other cell means; the chi-square rejects it."""
    rt = table()
    calls = generate_calls(spec(rt), DAYS * 86400.0, spawn_streams(3))
    observed = cell_counts(calls)
    zone_day = rt.sum(axis=(0, 2))                    # calls/day per zone (x 1 h)
    type_share = rt.sum(axis=(0, 1)) / rt.sum()
    hour_share = rt.sum(axis=(1, 2)) / rt.sum()
    product = hour_share[:, None, None] * 24 * zone_day[None, :, None] / 24 * type_share[None, None, :] * DAYS
    product *= rt.sum() * DAYS / product.sum()
    chi2 = float((((observed - product) ** 2) / product).sum())
    assert stats.chi2.sf(chi2, df=product.size) < 1e-9


def test_same_seed_same_calls_and_the_product_path_is_unchanged():
    rt = table()
    a = generate_calls(spec(rt), 3 * 86400.0, spawn_streams(9))
    b = generate_calls(spec(rt), 3 * 86400.0, spawn_streams(9))
    np.testing.assert_array_equal(a.time_s, b.time_s)
    np.testing.assert_array_equal(a.zone_idx, b.zone_idx)
    # without a table, a zone's share is its rate share (the product form, as before)
    plain = EmsSpec(travel_time_s=np.zeros((4, 4)), zones=(ZoneSpec("z0", 1, 2.0), ZoneSpec("z1", 2, 1.0)),
                    units=(UnitSpec("u", 0),))
    c = generate_calls(plain, 100 * 86400.0, spawn_streams(1))
    share = np.mean(c.zone_idx == 0)
    assert abs(share - 2 / 3) < 4 * np.sqrt(2 / 9 / len(c))
