"""The ``twin population`` command: its argument parser and its main function.

This module holds :func:`add_population_parser`, which adds ``twin population CITY
--persons N --out pop.h5`` to the ``twin`` command, and :func:`population_main`, which
synthesises a population (:func:`~twin.agents.population.synthesize_population`), prints
a summary and accessibility table, and optionally writes the results file.
"""

from __future__ import annotations

import time
from pathlib import Path

from twin.agents.activities import MODES, PERSON_TYPES
from twin.agents.population_synth import synthesize_population

def add_population_parser(subparsers):
    """Add ``twin population CITY --persons N --out pop.h5`` to the ``twin`` command's sub-parsers."""
    p = subparsers.add_parser("population", help="synthesise a population and its day (activities, trips)")
    p.add_argument("city", help="embedded city name, network file or synthetic spec")
    p.add_argument("--persons", type=int, default=None, help="persons to synthesise (default: the zone table total)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--zones", help="CSV of zone inputs overriding the defaults (zone_id, persons, age_*, hh_*, ...)")
    p.add_argument("--facilities", help="CSV of facilities: kind, node, weight")
    p.add_argument("--out", help="write persons, households, activities, trips and KPIs to this HDF5 file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=population_main)
    return p


def population_main(args) -> int:
    """Run ``twin population``: synthesise, print a summary table, optionally write the results file."""
    import sys

    from twin.loading import load_city

    if args.out and not args.overwrite and Path(args.out).exists():
        from twin.errors import ResultsError

        raise ResultsError(f"{args.out} already exists; pass --overwrite to replace it")
    city = load_city(args.city)
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=6, unit="phase", desc="population", leave=False)

    def progress(done, total):
        if bar is not None:
            bar.update(done - bar.n)

    t0 = time.perf_counter()
    pop = synthesize_population(city, args.persons, seed=args.seed, zones=args.zones, facilities=args.facilities,
                                progress=progress)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    s = pop.summary()
    acc = pop.accessibility()
    out = sys.stdout
    out.write(f"population of {city.name}: {s['n_persons']:,} persons in {s['n_households']:,} households, "
              f"{s['n_trips']:,} trips, in {wall:.2f} s wall\n\n")
    rows = [("trips per person", f"{s['trips_per_person']:.2f}"),
            ("state per person", f"{s['state_bytes_per_person']:.0f} bytes"),
            ("IPF", f"{s['ipf_iterations']} iterations, max marginal error {s['ipf_max_rel_error']:.1e}")]
    rows += [(f"mode share {m}", f"{s['mode_share_' + m]:.1%}") for m in MODES]
    rows += [(f"persons: {t}", f"{int((pop.person_type == c).sum()):,}") for c, t in enumerate(PERSON_TYPES)]
    for name, value in rows:
        out.write(f"{name:<28} {value}\n")
    out.write("\n{:>8} {:>8} {:>10} {:>8} {:>14} {:>14}\n".format("zone", "central", "residents", "elderly",
                                                                 "care<=15min", "hospital<=30"))
    for r in acc.by_zone.itertuples():
        out.write(f"{r.zone_id!s:>8} {('yes' if r.central else 'no'):>8} {r.residents:>10,} {r.elderly:>8,} "
                  f"{r.elderly_care_walk_share:>14.1%} {r.hospital_drive_share:>14.1%}\n")
    sm = acc.summary
    out.write(f"\nelderly within 15 min walk of care: central {sm['elderly_care_walk_share_central']:.1%}, "
              f"peripheral {sm['elderly_care_walk_share_peripheral']:.1%} (gap "
              f"{sm['elderly_care_walk_share_gap']:+.1%})\n")
    if args.out:
        from twin.graph import write_network
        from twin.results import ResultsWriter

        with ResultsWriter(args.out, meta={"command": "population", "city": city.name, "source": city.source,
                                           "seed": int(args.seed)}, overwrite=args.overwrite) as writer:
            write_network(writer, city)
            pop.write(writer)
        out.write(f"\nwrote {args.out}\n")
    return 0
