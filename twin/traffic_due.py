"""Day-to-day route choice: :func:`dynamic_user_equilibrium` and its :class:`DueResult`
(re-exported by :mod:`twin.traffic`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from twin.errors import DemandError
from twin.graph import City
from twin.traffic_engine import TrafficEngine
from twin.traffic_inputs import read_trips
from twin.traffic_result import TrafficResult
from twin.traffic_routes import _gather_index, _routes

# log records keep the logger name they had before the split into modules: twin.traffic
logger = logging.getLogger("twin.traffic")


@dataclass(eq=False)
class DueResult:
    """What :func:`dynamic_user_equilibrium` returns.

    Attributes
    ----------
    result : TrafficResult
        The last iteration's simulation.
    rel_gap : ndarray of float64, shape (iterations,)
        Relative gap of each iteration's simulation (see :func:`dynamic_user_equilibrium`).
    mean_travel_time_s : ndarray of float64, shape (iterations,)
        Mean travel time of the completed trips in each iteration, seconds.
    switched : ndarray of int64, shape (iterations,)
        Trips that took a new route after each iteration.
    routes : (ndarray, ndarray)
        The last iteration's route offsets and links (input to ``TrafficEngine(routes=...)``).
    """

    result: TrafficResult
    rel_gap: np.ndarray
    mean_travel_time_s: np.ndarray
    switched: np.ndarray
    routes: tuple


def _route_costs(route_off, route_links, cost_by_trip_iv, trip_iv):
    """Cost of each trip's route on the link costs of its departure interval."""
    lens = np.diff(route_off)
    if not len(route_links):
        return np.zeros(len(lens))
    owner_iv = np.repeat(trip_iv, lens)
    vals = cost_by_trip_iv[owner_iv, route_links]
    out = np.add.reduceat(np.append(vals, 0.0), route_off[:-1])
    out[lens == 0] = 0.0
    return out


def dynamic_user_equilibrium(city: City, trips, *, until_s, iterations=10, rel_gap=1e-3, seed=0, dt_s=1.0,
                             interval_s=300.0, stuck_time_s=300.0, progress=None, **options) -> DueResult:
    """Day-to-day route choice toward dynamic user equilibrium by the method of successive averages.

    Each iteration simulates the day with the current routes, reads the experienced
    travel time of every link in every interval (``mean_travel_time_s``; free-flow where
    no vehicle left the link), and finds each trip's best route on the link times of its
    departure interval, each link's time including the mean wait of the trips that entered
    the network on it. A share ``1 / (n + 2)`` of the trips (seeded draw) whose best route
    is faster than their current one take it for the next day (MSA on route flows).

    Parameters
    ----------
    iterations : int
        Most days to simulate.
    rel_gap : float
        Stop when the relative gap falls to this value.
    **options
        Passed to :class:`TrafficEngine` (``events``, ``signals`` ...; not ``routes``).

    Returns
    -------
    DueResult

    Notes
    -----
    Relative gap of a day: ``sum(experienced - best) / sum(experienced)`` over the trips
    that completed, where *experienced* is the trip's simulated travel time and *best* the
    least cost on the link times of its departure interval (a snapshot of the time-
    dependent costs, not a time-dependent shortest path: a documented approximation). It
    is 0 at equilibrium under that snapshot, and may be slightly negative.
    """
    if not (isinstance(iterations, int) and iterations >= 1):
        raise DemandError(f"iterations = {iterations!r}; expected an integer >= 1")
    if "routes" in options:
        raise DemandError("dynamic_user_equilibrium chooses the routes; do not pass routes=")
    o_idx, d_idx, depart_s = read_trips(city, trips)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(2)[1])
    route_off, route_links, _ = _routes(city, o_idx, d_idx)
    spi_s = None   # the engine's interval length, read from the first engine
    gaps, means, switched = [], [], []
    res = None
    for n in range(iterations):
        eng = TrafficEngine(city, trips, until_s=until_s, seed=seed, dt_s=dt_s, interval_s=interval_s,
                            stuck_time_s=stuck_time_s, routes=(route_off, route_links), **options)
        eng.run()
        res = eng.result()
        spi_s = eng.spi * eng.params.dt_s
        mtt = res.links["mean_travel_time_s"]
        link_t = np.where(np.isfinite(mtt), mtt, city.free_flow_time_s[None, :])
        # trips that could not enter a full first link waited at their origin: that wait
        # is charged to the link (a full link delays entry from upstream too, where it
        # shows in the upstream link's time: an approximation, documented)
        link_t = link_t + np.nan_to_num(res.links["entry_wait_s"], nan=0.0)
        trip_iv = np.minimum((depart_s // spi_s).astype(np.int64), len(link_t) - 1)
        tt = res.trips["travel_time_s"].to_numpy()
        done = np.isfinite(tt)
        # best routes on the snapshot costs of each departure interval
        best_off = np.zeros(len(o_idx) + 1, dtype=np.int64)
        best_parts, best_cost = [None] * len(link_t), np.full(len(o_idx), np.inf)
        lens = np.zeros(len(o_idx), dtype=np.int64)
        for iv in np.unique(trip_iv):
            sel = np.flatnonzero(trip_iv == iv)
            ro, rl, unr = _routes(city, o_idx[sel], d_idx[sel], link_cost_s=link_t[iv])
            best_parts[iv] = (sel, ro, rl)
            lens[sel] = np.diff(ro)
            best_cost[sel] = _route_costs(ro, rl, link_t[iv][None, :], np.zeros(len(sel), dtype=np.int64))
        np.cumsum(lens, out=best_off[1:])
        best_links = np.empty(int(best_off[-1]), dtype=np.int64)
        for part in best_parts:
            if part is None:
                continue
            sel, ro, rl = part
            best_links[_gather_index(best_off[:-1][sel], np.diff(ro))] = rl
        exp = tt[done]
        gap = float((exp - best_cost[done]).sum() / exp.sum()) if done.any() and exp.sum() > 0 else float("nan")
        gaps.append(gap)
        means.append(float(exp.mean()) if done.any() else float("nan"))
        logger.info("DUE iteration %d: relative gap %.3e, mean travel time %.1f s", n, gap, means[-1])
        if progress is not None:
            progress(n + 1, iterations)
        if gap <= rel_gap or n == iterations - 1:
            switched.append(0)
            break
        cur_cost = _route_costs(route_off, route_links, link_t, trip_iv)
        better = best_cost < cur_cost - 1e-6
        switch = better & (rng.random(len(o_idx)) < 1.0 / (n + 2))
        switched.append(int(switch.sum()))
        # new routes: the best route where switching, else the current one
        new_lens = np.where(switch, lens, np.diff(route_off))
        new_off = np.zeros(len(o_idx) + 1, dtype=np.int64)
        np.cumsum(new_lens, out=new_off[1:])
        src = np.concatenate([route_links, best_links])
        starts = np.where(switch, best_off[:-1] + len(route_links), route_off[:-1])
        route_links = src[_gather_index(starts, new_lens)]
        route_off = new_off
    return DueResult(result=res, rel_gap=np.array(gaps), mean_travel_time_s=np.array(means),
                     switched=np.array(switched, dtype=np.int64), routes=(route_off, route_links))
