"""Synthetic population with its day: 1,000,000 persons on the embedded city and Chicago-Sketch.

For each city: ``synthesize_population(city, N, seed=1)`` (households, persons, facilities,
travel-time matrices, activity chains, modes), then ``Population.location_at`` for all
persons at 08:30 (travellers placed along their routes; the route trees it needs are built
once, timed apart, and cached; the midpoint rule ``along_routes=False`` for comparison),
``Population.trips()`` and the bytes of person/household/plan state per person.

Compile time is measured apart: a first run on 2,000 persons compiles the kernels into a
fresh, empty numba cache directory (unless ``--warm-cache``); every other timing is the best
of ``--repeat`` steady-state runs. The numba thread count is reported (set it with
``NUMBA_NUM_THREADS``; the issue's target is 2 cores). Usage::

    NUMBA_NUM_THREADS=2 taskset -c 0,1 python benchmarks/bench_population.py [--persons 1000000] [--repeat 3]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--warm-cache", action="store_true", help="keep the existing numba cache (no compile timing)")
    ap.add_argument("--json", default=None, help="append one JSON record per city to this file")
    return ap.parse_args()


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    args = _parse()
    if not args.warm_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-bench-pop-")
    import numba

    import twin
    from twin.agents.population import synthesize_population

    cities = [("hefei-baohe (embedded)", "hefei-baohe")]
    chicago = Path(args.shared) / "tntp" / "Chicago-Sketch" / "ChicagoSketch_net.tntp"
    if chicago.exists():
        cities.append(("Chicago-Sketch (TNTP)", str(chicago)))
    else:
        print(f"skipping Chicago-Sketch: {chicago} not found", file=sys.stderr)
    print(f"python {platform.python_version()}, numba {numba.__version__}, threads {numba.get_num_threads()}, "
          f"cpus {os.cpu_count()}, persons {args.persons:,}")
    compiled = False
    for label, source in cities:
        city = twin.load_city(source)
        if not compiled:
            t0 = time.perf_counter()
            synthesize_population(city, 2_000, seed=1).location_at(30_000.0)
            print(f"compile + first small run: {time.perf_counter() - t0:.2f} s")
            compiled = True
        synthesize_population(city, 2_000, seed=1)
        t_syn, pop = best_of(lambda: synthesize_population(city, args.persons, seed=1), args.repeat)
        t0 = time.perf_counter()
        trees = pop.route_trees()
        t_trees = time.perf_counter() - t0
        trees_mb = sum(a.nbytes for a in trees) / 1e6
        pop.location_at(0.0)
        t_loc, loc = best_of(lambda: pop.location_at(8.5 * 3600.0), max(args.repeat, 5))
        t_mid, _ = best_of(lambda: pop.location_at(8.5 * 3600.0, along_routes=False), max(args.repeat, 5))
        t_trips, trips = best_of(pop.trips, args.repeat)
        nbytes = pop.state_nbytes()
        rec = {"city": label, "n_nodes": city.n_nodes, "n_zones": city.n_zones, "persons": pop.n_persons,
               "households": pop.n_households, "trips": pop.n_trips, "threads": numba.get_num_threads(),
               "synthesize_s": round(t_syn, 3), "location_at_ms": round(1000 * t_loc, 2),
               "location_at_midpoint_ms": round(1000 * t_mid, 2), "travelling_at_0830": loc.n_travelling,
               "route_trees_s": round(t_trees, 3), "route_trees_mb": round(trees_mb, 1),
               "trips_table_s": round(t_trips, 3),
               "state_bytes_per_person": round(nbytes["total"] / pop.n_persons, 1),
               "phases_s": {k: round(v, 3) for k, v in pop.meta["timings_s"].items()}}
        print(f"{label:<26} {city.n_nodes:>5} nodes {city.n_zones:>4} zones | synthesize {t_syn:6.2f} s | "
              f"location_at {1000 * t_loc:6.1f} ms (midpoint rule {1000 * t_mid:.1f} ms; {loc.n_travelling:,} "
              f"travelling; route trees {t_trees:.2f} s, {trees_mb:.1f} MB, once) | trips() {t_trips:5.2f} s | "
              f"{rec['state_bytes_per_person']:.0f} B/person | {pop.n_trips:,} trips")
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
