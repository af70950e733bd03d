"""Scenario call rates per district, type and hour: district profiles, type rates, multipliers."""

import numpy as np
import pytest

from twin.errors import ScenarioError
from twin.runner import load_scenario

NIGHT = [3.0] * 6 + [0.5] * 12 + [2.0] * 6


def district_rates(sc):
    """(24, n_districts, n_types) from the EMS spec's per-zone table."""
    t = sc.ems.rate_table_per_h
    out = np.zeros((24, len(sc.layout.district_names), t.shape[2]))
    for j, d in enumerate(sc.layout.zone_district_idx):
        out[:, d, :] += t[:, j, :]
    return out


def test_plain_scenarios_keep_the_product_form():
    assert load_scenario("hefei_day").ems.rate_table_per_h is None


def test_district_profile_type_rate_and_multiplier():
    base = load_scenario("hefei_day")
    sc = load_scenario("hefei_day", overrides=[f"calls.district_profiles.5={NIGHT}",
                                               "call_types.0.district_multiplier.7=2.0",
                                               "call_types.2.rate_per_h.1=0.25"])
    r = district_rates(sc)
    calls = base.groups["calls"]
    w = np.asarray(calls.hourly_profile)
    pop = calls.population
    names = sc.layout.district_names
    d5, d7, d1 = names.index("5"), names.index("7"), names.index("1")
    per_h = {k: v * calls.rate_per_1000_per_day / 1000 / 24 for k, v in pop.items()}
    shares = [c.share for c in base.groups["call_types"]]
    # district 5 follows its own profile, the others the common one
    np.testing.assert_allclose(r[:, d5, 1], per_h["5"] * np.array(NIGHT) * shares[1], rtol=1e-12)
    np.testing.assert_allclose(r[:, d1, 1], per_h["1"] * w * shares[1], rtol=1e-12)
    # the multiplier doubles type 0 in district 7 only
    np.testing.assert_allclose(r[:, d7, 0], 2.0 * per_h["7"] * w * shares[0], rtol=1e-12)
    np.testing.assert_allclose(r[:, d7, 1], per_h["7"] * w * shares[1], rtol=1e-12)
    # type 2 has its own rates: 0.25/h in district 1 (times its profile), none elsewhere
    np.testing.assert_allclose(r[:, d1, 2], 0.25 * w, rtol=1e-12)
    assert r[:, d7, 2].sum() == 0.0
    # the spec's shares are those the table implies
    got = np.array([c.share for c in sc.ems.call_types])
    np.testing.assert_allclose(got, r.sum(axis=(0, 1)) / r.sum(), rtol=1e-9)


def test_bad_rate_tables_are_named():
    with pytest.raises(ScenarioError, match=r"district_profiles\.42: unknown zone id '42'"):
        load_scenario("hefei_day", overrides=[f"calls.district_profiles.42={NIGHT}"])
    with pytest.raises(ScenarioError, match=r"district_profiles.*expected a list of 24 multipliers"):
        load_scenario("hefei_day", overrides=["calls.district_profiles.5=[1.0, 2.0]"])
    with pytest.raises(ScenarioError, match=r"call_types.0\] \('life-threatening'\) district_multiplier.9x"):
        load_scenario("hefei_day", overrides=["call_types.0.district_multiplier.9x=2.0"])


def test_a_large_city_prints_its_slowest_and_fastest_districts_not_every_row():
    import math

    import pandas as pd

    from twin.scenarios.ems import MAX_DISTRICT_ROWS, _district_lines

    n = 50
    d = pd.DataFrame({"name": [f"d{i}" for i in range(n)], "central": [i == 0 for i in range(n)],
                      "n_calls": [3] * (n - 1) + [0], "response_mean_s": [60.0 * i for i in range(n)],
                      "response_p90_s": [90.0 * i for i in range(n)], "within_target": [0.5] * n})
    k = {"equity_gap_response_mean_s": math.nan}
    lines = _district_lines(k, d)
    rows = [ln for ln in lines if ln.startswith("  d") and not ln.startswith("  district")]
    assert len(rows) == MAX_DISTRICT_ROWS
    assert rows[0].split()[0] == "d48" and rows[-1].split()[0] == "d0"        # slowest first; no-call d49 left out
    assert any("/summary/ems_districts" in ln for ln in lines) and any("50 districts" in ln for ln in lines)
    small = _district_lines(k, d.head(9))
    assert len([ln for ln in small if ln.startswith("  d") and not ln.startswith("  district")]) == 9


def test_the_equity_gap_is_peripheral_minus_central_in_the_kpis_and_the_printed_line():
    """One sign everywhere (``twin run``'s line, the KPIs replicate and compare show): the
    periphery waits 450 s longer and meets the target on 0 of its calls against 1 of 1."""
    import numpy as np
    import pandas as pd

    from twin.ems_result import district_summary
    from twin.scenarios.ems import _district_lines

    calls = pd.DataFrame({"time_s": [1.0, 2.0, 3.0], "zone_idx": [0, 1, 1], "priority": [1, 1, 1],
                          "response_s": [300.0, 600.0, 900.0], "outcome": ["completed"] * 3})
    d, gap = district_summary(calls, [0, 1], ["c", "p"], np.array([True, False]), (480.0, None, None), 0.0, 10.0)
    assert gap["equity_gap_response_mean_s"] == 450.0 and gap["equity_gap_within_target"] == -1.0
    line = _district_lines(gap, d)[0]
    assert "peripheral - central" in line and "mean +7.5 min" in line and "within target -100.0 pp" in line


def test_calls_and_places_carry_district_names_and_the_citys_own_node_ids(tmp_path):
    """One meaning per word (#15 item 5): ``district`` is the name ``twin run`` prints,
    ``zone`` the EMS demand point inside it, ``node`` the city's own id of ``node_idx``."""
    import numpy as np

    from twin.results import open_results
    from twin.runner import load_scenario, run

    res = run("hefei_day", overrides=["run.until_s=7200", "traffic.random_trips=300"], out=tmp_path / "d.h5")
    ids = np.asarray(load_scenario("hefei_day").city.node_ids)
    with open_results(tmp_path / "d.h5") as f:
        calls, hosp, dist = f.table("/events/ems_calls"), f.table("/network/hospitals"), f.table("/network/ems_districts")
    assert len(calls) > 0
    assert (calls["node"].to_numpy() == ids[calls["node_idx"].to_numpy()]).all()
    assert (hosp["node"].to_numpy() == ids[hosp["node_idx"].to_numpy()]).all()
    assert (calls["district"].to_numpy() == dist["name"].to_numpy()[calls["district_idx"].to_numpy()]).all()
    printed = [ln.split()[0] for ln in res.report_lines() if ln.startswith("  ") and ln.split()[0].isdigit()]
    assert set(calls["district"]) <= set(printed) and any(ln.startswith("  district ") for ln in res.report_lines())
