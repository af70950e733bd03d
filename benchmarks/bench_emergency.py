"""Benchmark: one simulated year of a city's emergency services, engine vs plain SimPy.

The system (built by :func:`build_spec`) sits on the synthetic city ``grid:30x30``
(``twin.load_city``, 900 nodes, 36 s links): static travel times between 25 station nodes,
10 hospital nodes and 200 call nodes (the least free-flow times, divided by an emergency
speed factor of 1.5), 50 ambulances (30 ALS, 20 BLS), 20 fire engines and 30 police cars at
the 25 stations, 10 hospitals of 30 beds (queue wards), and about 250,000 calls a year of
six types: medical P1/P2/P3, fire (2 engines + 1 ambulance), police, traffic crash (police
+ ambulance). Units drive the full lifecycle (turnout, travel, on scene, transport for
ambulances, wait for a bed, handover, drive back).

Two models of that system run on the same year, in the same process:

* **engine**: :func:`twin.agents.ems.run_ems` (Mesa agents, dispatch centre with policy
  plug-ins, per-call records, KPIs and result tables), timed end to end;
* **plain**: :func:`run_plain`, a bare SimPy model written for this benchmark: units in
  numpy arrays, nearest idle unit of the slot's kind (else its fallback) from the static
  matrix, one ``simpy.Resource`` of beds per hospital, one FCFS queue of open slots, its
  own call draws from numpy. No records beyond the response times.

Events are SimPy events *scheduled* (``Environment._eid``), equal to those processed as
both runs are drained; the engine's count comes from a second, identical run of
:class:`twin.agents.ems.CityModel` (whose simulation-only time is reported too).

A second, optional measure (``--traffic-days N``) runs the same system day by day with
traffic coupled: for each of N days, ``TRAFFIC_TRIPS`` uniform random car trips departing
over the day (:func:`twin.demand.random_trips`, seed = the day) run in a
:class:`twin.traffic.TrafficEngine` advanced in lockstep with the EMS clock by
:class:`twin.scenarios.traffic.TrafficTravelTimes` (sync every 60 s, 1 s ticks), and the units drive
as vehicles of the traffic model (``vehicles=True``, as ``twin run``'s default
``ambulances_in_traffic``: every leg a vehicle inserted into the engine, lights-and-sirens
legs with emergency priority); ``--leg-start`` instead times each leg on the live link
times at its start (speed factor 1.5, no load). It reports the wall time per day, split
into the traffic kernel and the rest, the unit vehicles inserted and the EMS events per
second. The default benchmark is unchanged.

Usage (from the repository root)::

    python benchmarks/bench_emergency.py                 # one year, seed 1
    python benchmarks/bench_emergency.py --days 30 --repeat 3
    python benchmarks/bench_emergency.py --traffic-days 3 [--leg-start] [--jobs 2]
"""

from __future__ import annotations

import argparse
import heapq
import platform
import sys
import time

import numpy as np
import simpy

import twin
from twin.agents.ems import CityModel, run_ems
from twin.emergency import (CallTypeSpec, DispatchSpec, Dist, EmsSpec, HospitalSpec, ServiceSpec, UnitSpec,
                            ZoneSpec, travel_time_matrix)

CALLS_PER_YEAR = 250_000
YEAR_S = 365 * 86400.0

#: name, priority, share, on-scene mean s, transport probability, requires, fallback
CALL_TYPES = (
    ("medical_p1", 1, 0.25, 1200.0, 0.8, {"als": 1}, {"als": "bls"}),
    ("medical_p2", 2, 0.25, 1200.0, 0.6, {"bls": 1}, {"bls": "als"}),
    ("medical_p3", 3, 0.20, 900.0, 0.4, {"bls": 1}, {"bls": "als"}),
    ("fire", 1, 0.08, 3600.0, 0.2, {"fire": 2, "als": 1}, {"als": "bls"}),
    ("police", 2, 0.14, 1800.0, 0.0, {"police": 1}, {}),
    ("crash", 1, 0.08, 1800.0, 0.5, {"police": 1, "als": 1}, {"als": "bls"}),
)
UNITS = {"als": 30, "bls": 20, "fire": 20, "police": 30}
N_STATIONS, N_HOSPITALS, N_ZONES, BEDS = 25, 10, 200, 40
TURNOUT_S, HANDOVER_S, LOS_MEAN_S = 60.0, 900.0, 4 * 3600.0


TRAFFIC_TRIPS = 100_000


def build_spec(seed=0, *, with_layout=False):
    """The benchmark system on ``grid:30x30`` (see the module docstring); with
    ``with_layout`` also the city and the city node index of each location."""
    rng = np.random.default_rng(seed)
    city = twin.load_city("grid:30x30")
    nodes = rng.choice(city.n_nodes, size=N_STATIONS + N_HOSPITALS + N_ZONES, replace=False)
    tt = travel_time_matrix(city, city.node_ids[nodes], link_cost_s=city.free_flow_time_s / 1.5)
    zones = tuple(ZoneSpec(f"z{j}", N_STATIONS + N_HOSPITALS + j, CALLS_PER_YEAR / (365 * 24) / N_ZONES)
                  for j in range(N_ZONES))
    units, k = [], 0
    for kind, n in UNITS.items():
        for i in range(n):
            units.append(UnitSpec(f"{kind}{i}", k % N_STATIONS, None, kind))
            k += 1
    call_types = tuple(CallTypeSpec(name, prio, share, Dist("exponential", scene), p_tr, tuple(req.items()),
                                    tuple(fb.items()))
                       for name, prio, share, scene, p_tr, req, fb in CALL_TYPES)
    hospitals = tuple(HospitalSpec(f"h{h}", N_STATIONS + h, BEDS, Dist("exponential", LOS_MEAN_S), "queue")
                      for h in range(N_HOSPITALS))
    spec = EmsSpec(travel_time_s=tt, zones=zones, call_types=call_types, units=tuple(units), hospitals=hospitals,
                   dispatch=DispatchSpec("nearest", (), Dist("constant", 0.0, 0.0), None),
                   service=ServiceSpec("path", turnout=Dist("constant", TURNOUT_S, 0.0),
                                       handover=Dist("constant", HANDOVER_S, 0.0), return_mode="drive"))
    return (spec, city, nodes) if with_layout else spec


def _traffic_day(day, seed, n_trips, vehicles):
    """One traffic-coupled day (its own engine, model and seeds): the row of the table."""
    from twin.demand import random_trips
    from twin.scenarios.traffic import TrafficTravelTimes
    from twin.traffic import TrafficEngine

    spec, city, nodes = build_spec(with_layout=True)
    t0 = time.perf_counter()
    engine = TrafficEngine(city, random_trips(city, n_trips, 86400.0, seed * 1000 + day), until_s=86400.0,
                           seed=day, stop_when_done=False)
    if vehicles:
        travel = TrafficTravelTimes(engine, nodes, sync_s=60.0, until_s=86400.0, vehicles=True)
    else:
        travel = TrafficTravelTimes(engine, nodes, sync_s=60.0, until_s=86400.0, emergency_speed_factor=1.5)
    model = CityModel(spec, seed=seed * 1000 + day, until_s=86400.0, travel=travel)
    model.run()
    wall = time.perf_counter() - t0
    resp = model.calls.on_scene_at_s - model.calls.time_s
    return dict(day=day, calls=len(model.calls), events=next(model.env._eid), wall=wall, kernel=engine.kernel_s,
                legs=len(travel.legs), resp=float(np.nanmean(resp)))


def run_traffic_days(n_days, seed, n_trips=TRAFFIC_TRIPS, vehicles=True, jobs=1):
    """The system day by day with traffic coupled (see the module docstring); prints a table.
    With ``jobs`` > 1 the days (independent: each has its own seeds) run in that many processes."""
    spec, city, nodes = build_spec(with_layout=True)
    print(f"traffic-coupled days: {n_trips:,} random trips/day over 24 h on {city.name} ({city.n_links} links), "
          f"sync 60 s, dt 1 s, {'units as vehicles with priority' if vehicles else 'legs timed at their start'}"
          f"{f', {jobs} processes' if jobs > 1 else ''}")
    print(f"{'day':>4s} {'calls':>7s} {'events':>9s} {'wall s':>8s} {'traffic s':>10s} {'ems s':>8s} "
          f"{'unit veh':>9s} {'events/s':>10s} {'resp mean s':>11s}")
    t_all = time.perf_counter()
    args = [(day, seed, n_trips, vehicles) for day in range(n_days)]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs)
        rows = pool.map(_traffic_day, *zip(*args))
    else:
        pool, rows = None, (_traffic_day(*a) for a in args)
    walls = []
    for r in rows:
        walls.append(r["wall"])
        print(f"{r['day']:4d} {r['calls']:7d} {r['events']:9d} {r['wall']:8.2f} {r['kernel']:10.2f} "
              f"{r['wall'] - r['kernel']:8.2f} {r['legs']:9d} {r['events'] / r['wall']:10.0f} {r['resp']:11.1f}",
              flush=True)
    if pool is not None:
        pool.shutdown()
    total = time.perf_counter() - t_all
    print(f"mean wall per traffic-coupled day {np.mean(walls):.2f} s (first day includes numba compilation "
          f"unless cached); later days mean {np.mean(walls[1:]) if len(walls) > 1 else float('nan'):.2f} s; "
          f"{n_days} days in {total:.1f} s wall ({total / n_days:.2f} s a day)")


# --------------------------------------------------------------------------------------
# the plain model

def run_plain(spec, until_s, seed):
    """A bare SimPy model of the same system; returns (env, response times s, n calls)."""
    rng = np.random.default_rng(seed)
    kinds = ("als", "bls", "fire", "police")
    tt = spec.travel_time_s
    n_types = len(spec.call_types)
    slots = [[(kinds.index(k), kinds.index(dict(c.fallback)[k]) if k in dict(c.fallback) else -1)
              for k, n in c.requires for _ in range(n)] for c in spec.call_types]
    transport_slot = [next((s for s, (k, f) in enumerate(sl) if k < 2 or 0 <= f < 2), -1) for sl in slots]
    zloc = np.array([z.location_idx for z in spec.zones])
    hloc = np.array([h.location_idx for h in spec.hospitals])
    nearest_h = np.argmin(tt[zloc][:, hloc], axis=1)
    # calls: homogeneous Poisson, zone and type by shares, per-call dice
    rate = sum(z.arrival_rate_per_h for z in spec.zones) / 3600.0
    t = np.sort(rng.uniform(0.0, until_s, rng.poisson(rate * until_s)))
    n = len(t)
    zone = rng.integers(0, len(zloc), n)
    ctype = rng.choice(n_types, n, p=[c.share for c in spec.call_types])
    scene_mean = np.array([c.on_scene.mean_s for c in spec.call_types])
    on_scene = rng.exponential(scene_mean[ctype])
    transport = rng.random(n) < np.array([c.transport_probability for c in spec.call_types])[ctype]
    los = rng.exponential(LOS_MEAN_S, n)
    first_on_scene = np.full(n, np.nan)

    env = simpy.Environment()
    unit_kind = np.array([kinds.index(u.kind) for u in spec.units])
    station = np.array([u.station_idx for u in spec.units])
    unit_loc = station.copy()
    idle = np.ones(len(unit_kind), dtype=bool)
    kind_idx = [np.flatnonzero(unit_kind == k) for k in range(4)]
    returning = [None] * len(unit_kind)
    beds = [simpy.Resource(env, capacity=h.beds) for h in spec.hospitals]
    queue = []                                         # FCFS heap of (call time, call, slot)

    def nearest(kind, dest):
        cand = kind_idx[kind]
        free = cand[idle[cand]]
        if len(free) == 0:
            return -1
        return int(free[np.argmin(tt[unit_loc[free], dest])])

    def stay(h, c, got):
        with beds[h].request() as req:
            yield req
            got.succeed()
            yield env.timeout(los[c])

    def serve(u, c, slot):
        yield env.timeout(TURNOUT_S)
        dest = zloc[zone[c]]
        yield env.timeout(tt[unit_loc[u], dest])
        unit_loc[u] = dest
        if first_on_scene[c] != first_on_scene[c]:
            first_on_scene[c] = env.now
        yield env.timeout(on_scene[c])
        if transport[c] and slot == transport_slot[ctype[c]] and unit_kind[u] < 2:
            h = nearest_h[zone[c]]
            yield env.timeout(tt[dest, hloc[h]])
            unit_loc[u] = hloc[h]
            got = env.event()
            env.process(stay(h, c, got))
            yield got
            yield env.timeout(HANDOVER_S)
        free(u)

    def drive_home(u):
        try:
            yield env.timeout(tt[unit_loc[u], station[u]])
            unit_loc[u] = station[u]
        except simpy.Interrupt:
            pass

    def send(u, c, slot):
        idle[u] = False
        p = returning[u]
        if p is not None and p.is_alive:
            p.interrupt()
        returning[u] = None
        env.process(serve(u, c, slot))

    def free(u):
        idle[u] = True
        k = unit_kind[u]
        for e in sorted(queue):                         # first queued slot this unit may fill
            sk, fb = slots[ctype[e[1]]][e[2]]
            if sk == k or fb == k:
                queue.remove(e)
                heapq.heapify(queue)
                send(u, e[1], e[2])
                return
        if unit_loc[u] != station[u]:
            returning[u] = env.process(drive_home(u))

    def source():
        for c in range(n):
            yield env.timeout(t[c] - env.now)
            dest = zloc[zone[c]]
            for s, (k, fb) in enumerate(slots[ctype[c]]):
                u = nearest(k, dest)
                if u < 0 and fb >= 0:
                    u = nearest(fb, dest)
                if u < 0:
                    heapq.heappush(queue, (t[c], c, s))
                else:
                    send(u, c, s)

    env.process(source())
    env.run()
    return env, first_on_scene - t, n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=float, default=365.0, help="simulated days (default a year)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="best of N wall times")
    ap.add_argument("--profile", action="store_true", help="cProfile one engine run, print the top 25")
    ap.add_argument("--leg-start", action="store_true",
                    help="with --traffic-days: time legs on live link times at their start (no unit vehicles)")
    ap.add_argument("--traffic-days", type=int, default=0, metavar="N",
                    help="instead: N simulated days, each with the traffic engine coupled (wall per day, events/s)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="with --traffic-days: run the days in N processes (default 1)")
    args = ap.parse_args(argv)
    if args.traffic_days:
        run_traffic_days(args.traffic_days, args.seed, vehicles=not args.leg_start, jobs=args.jobs)
        return
    until_s = args.days * 86400.0
    t0 = time.perf_counter()
    spec = build_spec()
    print(f"system: grid:30x30, {spec.n_locations} locations, units {UNITS}, {spec.n_hospitals} hospitals x "
          f"{BEDS} beds, {args.days:g} days (setup {time.perf_counter() - t0:.2f} s)")
    print(f"python {sys.version.split()[0]}, simpy {simpy.__version__}, numpy {np.__version__}, "
          f"{platform.machine()}")
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        run_ems(spec, seed=args.seed, until_s=until_s)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return

    run_plain(spec, 86400.0, args.seed)                # warm-up: first-call imports and caches, untimed
    run_ems(spec, seed=args.seed, until_s=86400.0)
    plain_s, engine_s, sim_s = [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        env, resp, n_plain = run_plain(spec, until_s, args.seed)
        plain_s.append(time.perf_counter() - t0)
        ev_plain = next(env._eid)
        t0 = time.perf_counter()
        res = run_ems(spec, seed=args.seed, until_s=until_s)
        engine_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model = CityModel(spec, seed=args.seed, until_s=until_s)
        model.run()
        sim_s.append(time.perf_counter() - t0)
        ev_engine = next(model.env._eid)
    n_engine = len(res.calls)
    bp, be, bs = min(plain_s), min(engine_s), min(sim_s)
    rows = [("plain SimPy", n_plain, ev_plain, bp, np.nanmean(resp)),
            ("engine (run_ems, total)", n_engine, ev_engine, be, res.kpis["response_mean_s"]),
            ("engine (simulation only)", n_engine, ev_engine, bs, res.kpis["response_mean_s"])]
    print(f"{'model':26s} {'calls':>8s} {'events':>10s} {'wall s':>8s} {'events/s':>10s} {'calls/s':>9s} "
          f"{'resp mean s':>11s}")
    for name, n, ev, wall, r in rows:
        print(f"{name:26s} {n:8d} {ev:10d} {wall:8.2f} {ev / wall:10.0f} {n / wall:9.0f} {r:11.1f}")
    print(f"ratio engine/plain wall time: total {be / bp:.2f}x, simulation only {bs / bp:.2f}x "
          f"(bar: 2.5x); best of {args.repeat}")


if __name__ == "__main__":
    main()
