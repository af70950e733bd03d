"""Replications and comparisons (twin.ensemble).

Checks: replication seeds are independent and reproducible; a scenario compared with itself
on common random numbers differs by exactly 0 in every KPI (the point of CRN); a real
change gives a significant paired difference where a large effect is expected; Dask gives
the same numbers as the local run (a task is a whole run identified by text, overrides and
seed); the Student-t interval matches a hand computation.
"""

import math

import numpy as np
import pytest

from twin.ensemble import compare, replicate, replication_seeds
from twin.errors import ScenarioError

SHORT = ["run.until_s=21600", "traffic.random_trips=0"]


def test_replication_seeds_are_reproducible_and_distinct():
    a = replication_seeds(7, 20)
    assert a == replication_seeds(7, 20)
    assert len(set(a)) == 20
    assert a[:5] != replication_seeds(8, 5)
    with pytest.raises(ScenarioError, match="replications = 0"):
        replication_seeds(7, 0)


def test_interval_is_student_t():
    from scipy import stats

    res = replicate("hefei_day", replications=3, seed=1, overrides=SHORT)
    v = res.runs["response_mean_s"].to_numpy()
    half = stats.t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3)
    row = res.summary.loc["response_mean_s"]
    assert row["mean"] == pytest.approx(v.mean())
    assert row["half_width"] == pytest.approx(half)
    assert row["n"] == 3


def test_common_random_numbers_give_zero_difference_for_the_same_scenario():
    res = compare("hefei_day", "hefei_day", replications=3, seed=2, overrides_a=SHORT, overrides_b=SHORT)
    assert np.all(res.difference["mean"].to_numpy()[np.isfinite(res.difference["mean"].to_numpy())] == 0)
    assert not res.difference["significant"].any()


def test_fewer_ambulances_respond_later():
    fewer = SHORT + [f"stations.{i}.ambulances=1" for i in range(3)]
    res = compare("hefei_day", "hefei_day", replications=4, seed=3, overrides_a=SHORT, overrides_b=fewer)
    d = res.difference
    assert d.loc["n_calls", "mean"] == 0                      # same calls (CRN)
    assert d.loc["response_mean_s", "mean"] > 0


def test_dask_gives_the_same_numbers_as_local():
    pytest.importorskip("dask.distributed")
    local = replicate("hefei_day", replications=2, seed=5, overrides=SHORT)
    remote = replicate("hefei_day", replications=2, seed=5, overrides=SHORT, dask=True)
    np.testing.assert_array_equal(local.runs.to_numpy(), remote.runs.to_numpy())


def test_dask_without_the_dist_extra_says_what_to_install(monkeypatch):
    import sys

    from twin.ensemble import map_runs

    monkeypatch.setitem(sys.modules, "dask.distributed", None)       # as if the extra were not installed
    with pytest.raises(ScenarioError, match=r"--dask needs Dask distributed, the 'dist' extra: pip install -e"):
        map_runs([("unused", (), 1)], True)
