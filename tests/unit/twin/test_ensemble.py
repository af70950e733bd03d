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
    with pytest.raises(ScenarioError, match=r"replications = 1000000000; expected an integer >= 1 and <= 100,000"):
        replication_seeds(7, 10**9)                 # (a mistyped -n: refused at once, not minutes of seeds)


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


def test_a_killed_dask_worker_loses_no_replication():
    """A worker process of a local Dask cluster killed (SIGKILL) while it runs a replication:
    Dask runs that task again on a worker that lives, and the replications are the same numbers
    as a local run (each task is a whole run named by its seed, never by its worker)."""
    import os
    import signal

    dd = pytest.importorskip("dask.distributed")
    local = replicate("hefei_day", replications=6, seed=6, overrides=SHORT)
    cluster = dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = dd.Client(cluster)
    killed = []
    try:
        pids = client.run(os.getpid)                     # worker address -> its process id

        def kill_a_busy_worker(done, total):
            if killed:
                return
            busy = [addr for addr, keys in client.processing().items() if keys and addr in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append(busy[0])

        remote = replicate("hefei_day", replications=6, seed=6, overrides=SHORT, dask=cluster.scheduler_address,
                           progress=kill_a_busy_worker)
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was busy after the first result: nothing was killed"
    np.testing.assert_array_equal(local.runs.to_numpy(), remote.runs.to_numpy())


def test_dask_without_the_dist_extra_says_what_to_install(monkeypatch):
    import sys

    from twin.ensemble import map_runs

    monkeypatch.setitem(sys.modules, "dask.distributed", None)       # as if the extra were not installed
    with pytest.raises(ScenarioError, match=r"--dask needs Dask distributed, the 'dist' extra: pip install -e"):
        map_runs([("unused", (), 1)], True)


def test_replications_read_the_files_beside_the_scenario(tmp_path, monkeypatch):
    """Regression ([reliability] 1): the workers get the resolved scenario text, so a relative
    trips file must mean the one beside the scenario file, not one in the current directory."""
    from twin.runner import load_scenario, run
    from twin_small import SMALL

    here, elsewhere = tmp_path / "study", tmp_path / "cwd"
    here.mkdir()
    elsewhere.mkdir()
    (here / "trips.csv").write_text("origin,destination,depart_s\n1,36,0\n1,36,10\n6,31,20\n")
    (elsewhere / "trips.csv").write_text("origin,destination,depart_s\n1,2,0\n")
    scen = here / "s.toml"
    scen.write_text(SMALL + '\n[traffic]\ntrips = "trips.csv"\n')
    monkeypatch.chdir(elsewhere)
    def cars(result):
        trips = result.traffic.trips
        return len(trips[trips["vehicle_class"] == "car"])

    assert cars(run(scen, seed=3)) == 3
    sc = load_scenario(scen)
    assert sc.groups["traffic"].trips == str((here / "trips.csv").resolve())
    assert cars(run(sc.resolved_text, seed=3)) == 3                # the text the workers get
    res = replicate(scen, replications=2, seed=0)
    ref = replicate(sc.resolved_text, replications=2, seed=0)
    assert res.runs.equals(ref.runs)
    # the run's /meta records what it read, with the file's digest
    import hashlib

    from twin.results import open_results

    run(scen, seed=3, out=tmp_path / "r.h5")
    with open_results(tmp_path / "r.h5") as f:
        inputs = f.meta["inputs"]
    assert inputs == {"traffic.trips": {"path": str((here / "trips.csv").resolve()),
                                        "sha256": hashlib.sha256((here / "trips.csv").read_bytes()).hexdigest()}}


def test_an_impossible_t_interval_becomes_a_bootstrap_inside_the_range():
    from twin.ensemble import BOOTSTRAP_RESAMPLES, _interval, kpi_bounds

    share = [1.0, 1.0, 1.0, 0.9, 1.0]           # Student t: 0.98 ± 0.056 reaches 1.036
    mean, low, high, n, method = _interval(share, 0.95, kpi_bounds("response_p1_within_target"))
    assert method == "bootstrap" and mean == pytest.approx(0.98) and 0.9 <= low <= high <= 1.0
    # the bootstrap is the percentile interval of resampled means, reproducibly
    rng = np.random.default_rng(20240611)
    v = np.array(share)
    means = v[rng.integers(0, 5, (BOOTSTRAP_RESAMPLES, 5))].mean(axis=1)
    assert (low, high) == tuple(np.quantile(means, [0.025, 0.975]))
    assert _interval(share, 0.95, kpi_bounds("response_p1_within_target")) == (mean, low, high, n, method)
    # a bed wait cannot be negative; a gap can
    wait = [0.0, 0.0, 0.0, 0.0, 900.0]
    assert _interval(wait, 0.95, kpi_bounds("hospital_h_bed_wait_mean_s"))[1] >= 0.0
    assert _interval(wait, 0.95, kpi_bounds("equity_gap_response_mean_s"))[4] == "t"
    # where t stays inside the range it is kept
    assert _interval([0.5, 0.6, 0.55, 0.52], 0.95, (0.0, 1.0))[4] == "t"
    assert kpi_bounds("eldercare_within_walk_gap_peripheral_minus_central") == (-math.inf, math.inf)


def test_compare_names_the_option_a_bad_override_came_from():
    with pytest.raises(ScenarioError, match=r"^--set-b hospitals.0.bedz"):
        compare("hefei_day", "hefei_day", replications=2, overrides_b=["hospitals.0.bedz=3"])
    with pytest.raises(ScenarioError, match=r"\(with --set-a overrides\): \[run\] seed = -1"):
        compare("hefei_day", "hefei_day", replications=2, overrides_a=["run.seed=-1"])


def test_replications_report_their_progress(capsys):
    from twin.cli import main

    seen = []
    replicate("hefei_day", replications=2, seed=1, overrides=SHORT, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    seen.clear()
    compare("hefei_day", "hefei_day", replications=2, seed=1, overrides_a=SHORT, overrides_b=SHORT,
            progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert main(["replicate", "hefei_day", "-n", "2"] + [f"--set={o}" for o in SHORT]) == 0
    err = capsys.readouterr().err                      # not a terminal here: a line per tenth
    assert "replicate: 1 of 2 runs done" in err and "replicate: 2 of 2 runs done" in err
    assert main(["replicate", "hefei_day", "-n", "2", "-q"] + [f"--set={o}" for o in SHORT]) == 0
    assert "runs done" not in capsys.readouterr().err
