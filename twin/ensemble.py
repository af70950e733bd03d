"""Replications and scenario comparisons with confidence intervals, locally or on Dask.

A planner's question is rarely "what happened in one run" but "how sure are we that B
beats A". :func:`replicate` runs a scenario ``R`` times with independent random streams
(``numpy.random.SeedSequence(seed).spawn(R)``, each turned into a run seed) and reports each
KPI's mean with a Student-t confidence interval. :func:`compare` runs two scenarios on the
*same* replication seeds — common random numbers: the same calls, the same dice — and
reports the paired difference B − A with its interval, which is much tighter than the
difference of two independent means.

Replications run in this process by default, or on Dask distributed: ``dask=True`` starts a
local cluster, ``dask="tcp://host:8786"`` uses that scheduler. Each task is a whole run,
identified by the scenario text, its overrides and its seed, so results do not depend on
where or in which order tasks run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.streams import replication_seeds

__all__ = ["replicate", "compare", "EnsembleResult", "ComparisonResult", "replication_seeds", "run_kpis", "map_runs"]

logger = logging.getLogger(__name__)


def _kpi_row(result) -> dict:
    row = {k: float(v) for k, v in result.kpis.items()
           if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}
    if result.traffic is not None:
        from twin.traffic_result import gridlocked

        t = result.traffic.kpis
        for k in ("mean_travel_time_s", "congestion_index", "vht_veh_h", "forced_moves", "teleports"):
            row[f"traffic_{k}"] = float(t[k])
        row["traffic_gridlock"] = float(gridlocked(t, len(result.traffic.trips)))
    row.update(_pool_requests(result.ems))
    return row


def _pool_requests(ems) -> dict:
    """``hospital_<name>_<ward|icu>_requests``: patients leaving an ED for a ward or ICU bed in the
    KPI window (blocked, boarded and transferred ones too), for the hospitals that have the pool.

    A request counts at the hospital whose ED it left when that hospital has the pool, else at
    the hospital that received it (a transfer from an ED without one), so each pool's count is
    the load it is offered.
    """
    if ems is None or ems.stays is None:
        return {}
    st = ems.stays
    inwin = (st["request_s"] >= ems.kpis["window_start_s"]) & (st["request_s"] < ems.kpis["window_end_s"])
    out = {}
    for pool in ("ward", "icu"):
        has = np.array([getattr(h, f"{pool}_beds") is not None for h in ems.spec.hospitals])
        if not has.any():
            continue
        rows = st[inwin & (st["pool"] == pool)]
        src = rows["from_hospital_idx"].to_numpy(np.int64)
        dst = rows["hospital_idx"].to_numpy(np.int64)
        at = np.where(has[src], src, dst)
        for i, h in enumerate(ems.spec.hospitals):
            if has[i]:
                out[f"hospital_{h.name}_{pool}_requests"] = float(np.sum(at == i))
    return out


def run_kpis(scenario_text, overrides, seed) -> dict:
    """One replication's numeric KPIs (a top-level function, so Dask can ship it)."""
    from twin.runner import run

    return _kpi_row(run(scenario_text, seed=seed, overrides=list(overrides or [])))


def _counter(progress, total):
    """``on_result`` for :func:`map_runs` that reports ``progress(done, total)``."""
    if progress is None:
        return None
    done = [0]

    def on_result(i, row):
        done[0] += 1
        progress(done[0], total)
    return on_result


def _check_overrides(text, overrides, option):
    """Load once with the overrides, so a bad one is named at once with the option it came from."""
    if not overrides:
        return
    from twin.runner import load_scenario

    try:
        load_scenario(text, overrides=list(overrides))
    except ScenarioError as exc:
        raise ScenarioError(str(exc).replace("--set ", f"{option} ")) from None


def _scenario_text(spec):
    from twin.runner import load_scenario

    return load_scenario(spec).resolved_text


def map_runs(tasks, dask, on_result=None, workers=None, fn=None):
    """Run ``tasks`` (tuples of :func:`run_kpis` arguments, or of ``fn``'s) here or on Dask; the
    rows in task order.

    ``on_result(i, row)`` is called as each task ends (in completion order on Dask), e.g. to
    store it, so a killed study keeps what it finished. ``workers``: processes of a local Dask
    cluster (default: the machine's cores, at least 2); Dask's own log lines are silenced below
    warnings.
    """
    fn = run_kpis if fn is None else fn
    if not dask:
        rows = []
        for i, t in enumerate(tasks):
            rows.append(fn(*t))
            if on_result is not None:
                on_result(i, rows[-1])
        return rows
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ScenarioError("--dask needs Dask distributed, the 'dist' extra: pip install -e \".[dist]\"") from None
    for name in ("distributed", "distributed.core", "distributed.scheduler", "distributed.nanny",
                 "distributed.http.proxy", "distributed.worker"):     # their INFO lines drown the report
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    if dask is True:
        import os

        n = int(workers) if workers else max(2, os.cpu_count() or 2)
        if n < 1:
            raise ScenarioError(f"workers = {workers!r}; expected at least 1")
        # one numba thread per worker process: the workers are the parallelism, and numba's
        # threads in every worker on the same cores spin against each other (10x slower on 2 cores)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.WARNING, env={"NUMBA_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        cluster = None
        client = Client(str(dask))
    try:
        futures = [client.submit(fn, *t, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        rows = [None] * len(tasks)
        for fut, row in as_completed(futures, with_results=True):
            rows[index[fut.key]] = row
            if on_result is not None:
                on_result(index[fut.key], row)
        return rows
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _summarise(values, confidence):
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(v.mean()) if n else math.nan
    if n < 2:
        return mean, math.nan, n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, half, n


#: Resamples of the percentile bootstrap that replaces an impossible Student-t interval.
BOOTSTRAP_RESAMPLES = 4000


def kpi_bounds(name):
    """The possible range of a KPI by its name: gaps and differences unbounded; shares in
    [0, 1]; times (``_s``, ``_h``), counts and amounts >= 0; anything else unbounded."""
    if any(w in name for w in ("gap", "minus", "diff")):
        return -math.inf, math.inf
    if any(w in name for w in ("share", "within", "blocking", "utilisation", "gridlock")):
        return 0.0, 1.0
    if name.endswith(("_s", "_h", "_n", "_calls", "_moves", "_teleports", "_index", "_mean", "_unmet", "_requested",
                      "_arrivals", "_blocked", "_deliveries")) or name.startswith("n_"):
        return 0.0, math.inf
    return -math.inf, math.inf


def _interval(values, confidence, bounds):
    """``(mean, low, high, n, method)``: Student t on the replication means, or, where that
    interval leaves the KPI's possible range (``bounds``), a percentile bootstrap of the mean
    (fixed resampling seed: byte-identical reruns), which stays inside it."""
    mean, half, n = _summarise(values, confidence)
    if not math.isfinite(half):
        return mean, math.nan, math.nan, n, "t"
    lo, hi = bounds
    if mean - half >= lo - 1e-12 and mean + half <= hi + 1e-12:
        return mean, mean - half, mean + half, n, "t"
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    rng = np.random.default_rng(20240611)
    means = v[rng.integers(0, n, (BOOTSTRAP_RESAMPLES, n))].mean(axis=1)
    a = (1.0 - confidence) / 2.0
    low, high = (float(x) for x in np.quantile(means, [a, 1.0 - a]))
    return mean, low, high, n, "bootstrap"


@dataclass(eq=False)
class EnsembleResult:
    """Replications of one scenario.

    Attributes
    ----------
    runs : pandas.DataFrame
        One row per replication: ``seed`` and every numeric KPI.
    summary : pandas.DataFrame
        Per KPI: ``mean``, ``low``, ``high`` (the ``confidence`` interval), ``half_width``
        (half its width), ``n`` (finite replications) and ``method``: ``"t"`` (Student t), or
        ``"bootstrap"`` where the t interval would leave the KPI's possible range
        (:func:`kpi_bounds`: a share beyond 1, a time below 0); then a percentile bootstrap of
        the mean, which stays inside it (and may be asymmetric about the mean).
    confidence : float
    """

    runs: object
    summary: object
    confidence: float
    #: Seeds of the replications whose traffic was gridlocked (:func:`twin.traffic_result.gridlocked`).
    gridlocked: tuple = ()
    #: Seeds left out of ``runs`` and ``summary`` (``exclude_gridlock``).
    excluded: tuple = ()


@dataclass(eq=False)
class ComparisonResult:
    """Two scenarios on common random numbers.

    Attributes
    ----------
    a, b : EnsembleResult
    difference : pandas.DataFrame
        Per KPI, the paired difference B − A over the replications: ``mean``,
        ``half_width``, ``low``, ``high``, ``n``, and ``significant`` (the interval excludes 0).
    """

    a: EnsembleResult
    b: EnsembleResult
    difference: object


def _stuck(row):
    return row.get("traffic_gridlock", 0.0) > 0


def _table(rows, seeds, confidence, drop=()):
    import pandas as pd

    gridlock = tuple(int(s) for s, r in zip(seeds, rows) if _stuck(r))
    keep = [i for i, s in enumerate(seeds) if int(s) not in set(drop)]
    if not keep:
        raise ScenarioError(f"exclude_gridlock: all {len(seeds)} replications were gridlocked (seeds "
                            f"{', '.join(str(s) for s in drop)}); nothing is left to summarise: relieve the "
                            f"scenario's congestion, or keep them (without --exclude-gridlock)")
    runs = pd.DataFrame([rows[i] for i in keep])
    runs.insert(0, "seed", [seeds[i] for i in keep])
    out = []
    for col in runs.columns[1:]:
        mean, low, high, n, method = _interval(runs[col].to_numpy(), confidence, kpi_bounds(col))
        out.append(dict(kpi=col, mean=mean, half_width=(high - low) / 2.0, low=low, high=high, n=n, method=method))
    return EnsembleResult(runs=runs, summary=pd.DataFrame(out).set_index("kpi"), confidence=confidence,
                          gridlocked=gridlock, excluded=tuple(int(s) for s in drop))


def replicate(spec, *, replications=10, seed=0, overrides=None, confidence=0.95, dask=False,
              exclude_gridlock=False, workers=None, progress=None) -> EnsembleResult:
    """Run a scenario ``replications`` times on independent streams; KPI means with intervals.

    Parameters
    ----------
    spec : str, Path, dict or Scenario
        What :func:`twin.runner.load_scenario` accepts.
    replications : int
    seed : int
        Master seed; replication ``i`` runs with ``replication_seeds(seed, R)[i]``.
    overrides : sequence of str, optional
        Dotted overrides applied to every replication.
    confidence : float
        Interval level (Student t on the replication means).
    dask : bool or str
        False: run here; True: a local Dask cluster; a string: a scheduler address.
    workers : int, optional
        Processes of a local Dask cluster (``dask=True``).
    progress : callable(done, total), optional
        Called as each replication ends (in completion order on Dask).
    exclude_gridlock : bool
        Leave the gridlocked replications (``gridlocked``) out of ``runs`` and ``summary`` (they
        are listed in ``excluded``); by default they stay, and are only listed.
    """
    if not 0.0 < confidence < 1.0:
        raise ScenarioError(f"confidence = {confidence!r}; expected a level in (0, 1)")
    seeds = replication_seeds(seed, replications)
    text = _scenario_text(spec)
    rows = map_runs([(text, tuple(overrides or ()), s) for s in seeds], dask, workers=workers,
                    on_result=_counter(progress, len(seeds)))
    drop = tuple(int(s) for s, r in zip(seeds, rows) if _stuck(r)) if exclude_gridlock else ()
    return _table(rows, seeds, confidence, drop)


def compare(spec_a, spec_b, *, replications=10, seed=0, overrides_a=None, overrides_b=None, confidence=0.95,
            dask=False, exclude_gridlock=False, workers=None, progress=None) -> ComparisonResult:
    """Compare two scenarios (or one scenario with two override sets) on common random numbers.

    Both run on the same replication seeds, so each pair of runs sees the same calls and
    dice and the paired difference isolates the effect of the change (the policy, not
    the luck). Returns per-KPI means of both and the paired difference B − A with its
    interval. With ``exclude_gridlock`` a pair is left out when either run of it is gridlocked.
    """
    if not 0.0 < confidence < 1.0:
        raise ScenarioError(f"confidence = {confidence!r}; expected a level in (0, 1)")
    seeds = replication_seeds(seed, replications)
    ta, tb = _scenario_text(spec_a), _scenario_text(spec_b)
    _check_overrides(ta, overrides_a, "--set-a")
    _check_overrides(tb, overrides_b, "--set-b")
    tasks = [(ta, tuple(overrides_a or ()), s) for s in seeds] + [(tb, tuple(overrides_b or ()), s) for s in seeds]
    rows = map_runs(tasks, dask, workers=workers, on_result=_counter(progress, len(tasks)))
    n = len(seeds)
    drop = tuple(int(s) for i, s in enumerate(seeds) if _stuck(rows[i]) or _stuck(rows[n + i])) if exclude_gridlock \
        else ()
    a = _table(rows[:n], seeds, confidence, drop)
    b = _table(rows[n:], seeds, confidence, drop)
    import pandas as pd

    diff = []
    for col in a.runs.columns[1:]:
        if col not in b.runs.columns:
            continue
        d = b.runs[col].to_numpy() - a.runs[col].to_numpy()
        mean, half, n = _summarise(d, confidence)
        diff.append(dict(kpi=col, mean=mean, half_width=half, low=mean - half, high=mean + half, n=n,
                         significant=bool(n >= 2 and (mean - half > 0 or mean + half < 0))))
    return ComparisonResult(a=a, b=b, difference=pd.DataFrame(diff).set_index("kpi"))
