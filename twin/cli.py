"""The ``twin`` command line.

::

    twin --version
    twin info [CITY] [--out city.h5]          counts, components, bounding box, lane-km by road class
    twin route [CITY] FROM TO                  least free-flow-time path, its length and time
    twin run SCENARIO [--out run.h5] [--seed N] [--set KEY=VALUE ...] [--list] [--keys]
                                               emergency response (and coupled traffic) on a city; KPI table
    twin replicate SCENARIO -n 10 [--dask [ADDRESS]]   KPI means with confidence intervals
    twin compare A [B] --set-b KEY=VALUE -n 10  paired differences on common random numbers
    twin traffic CITY [TRIPS.csv | --random-trips N] [--until 4h] [--out run.h5]
                                               mesoscopic traffic; prints network KPIs
    twin render RUN.h5 [--layer congestion] [--time 08:00] [--out frame.png|day.gif]
    twin plot RUN.h5 {travel-times,network,...} [--out chart.png]
    twin view RUN.h5 [--layer congestion]     interactive window with a time slider (needs a display)
    twin population CITY [--persons N] [--seed S] [--zones z.csv] [--facilities f.csv] [--out pop.h5]

CITY is an embedded city name (default ``hefei-baohe``), a TNTP ``*_net.tntp`` or OSM
``.osm[.gz|.bz2]`` path, or a synthetic spec such as ``grid:10x10``. ``-v`` / ``-q`` set
the log level; the library itself never prints.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import numpy as np

__all__ = ["main", "city_info", "parse_duration_s", "random_trips"]

from twin.demand import random_trips  # noqa: E402  (twin.cli.random_trips, as before)

logger = logging.getLogger("twin.cli")


def city_info(city) -> dict:
    """Facts about a city for ``twin info``: counts, components, bounding box, lane-km by class."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    A = csr_matrix((np.ones(city.n_links), (city.link_from_idx, city.link_to_idx)),
                   shape=(city.n_nodes, city.n_nodes))
    n_scc, scc_labels = connected_components(A, directed=True, connection="strong")
    n_wcc, _ = connected_components(A, directed=True, connection="weak")
    largest_scc = int(np.bincount(scc_labels).max())
    lane_km = city.length_m * city.lanes / 1000.0
    classes = []
    for code, name in enumerate(city.road_class_names):
        sel = city.road_class == code
        if sel.any():
            classes.append(dict(road_class=name, links=int(sel.sum()), km=float(city.length_m[sel].sum() / 1000),
                                lane_km=float(lane_km[sel].sum()),
                                mean_free_speed_kmh=float(np.mean(np.where(np.isfinite(city.free_speed_mps[sel]),
                                                                           city.free_speed_mps[sel], np.nan)) * 3.6)
                                if np.isfinite(city.free_speed_mps[sel]).any() else float("nan"),
                                capacity_veh_per_h=float(np.median(city.capacity_veh_per_h[sel]))))
    info = dict(name=city.name, source=city.source, nodes=city.n_nodes, links=city.n_links, zones=city.n_zones,
                no_through_nodes=int(city.no_through.sum()), strong_components=int(n_scc),
                largest_strong_component_nodes=largest_scc, weak_components=int(n_wcc),
                total_km=float(city.length_m.sum() / 1000), lane_km=float(lane_km.sum()), classes=classes)
    if city.has_coordinates:
        info["bbox_m"] = (float(city.x_m.min()), float(city.y_m.min()), float(city.x_m.max()), float(city.y_m.max()))
    if "dropped_nodes" in city.meta:
        info["dropped"] = dict(nodes=int(city.meta["dropped_nodes"]), links=int(city.meta.get("dropped_links", 0)),
                               length_m=float(city.meta.get("dropped_length_m", 0.0)))
    if city.lon is not None:
        info["bbox_lonlat"] = (float(city.lon.min()), float(city.lat.min()), float(city.lon.max()),
                               float(city.lat.max()))
    return info


def _print_info(info, out):
    w = out.write
    w(f"city     {info['name']}  ({info['source']})\n")
    w(f"nodes    {info['nodes']:,}    links {info['links']:,}    districts {info['zones']:,}"
      f"    no-through (centroid) nodes {info['no_through_nodes']:,}\n")
    w(f"strongly connected components {info['strong_components']:,} (largest {info['largest_strong_component_nodes']:,}"
      f" nodes); weakly connected {info['weak_components']:,}\n")
    w(f"length   {info['total_km']:,.1f} km of links, {info['lane_km']:,.1f} lane-km\n")
    if "dropped" in info:
        d = info["dropped"]
        w(f"dropped  {d['nodes']:,} nodes, {d['links']:,} links, {d['length_m'] / 1000:,.1f} km outside the largest "
          f"strongly connected component\n")
    if "bbox_m" in info:
        x0, y0, x1, y1 = info["bbox_m"]
        w(f"extent   {(x1 - x0) / 1000:,.2f} km x {(y1 - y0) / 1000:,.2f} km (x {x0:,.0f}..{x1:,.0f} m, "
          f"y {y0:,.0f}..{y1:,.0f} m)\n")
    if "bbox_lonlat" in info:
        w("bbox     lon {:.5f}..{:.5f}, lat {:.5f}..{:.5f}\n".format(*(info["bbox_lonlat"][i] for i in (0, 2, 1, 3))))
    w("\n{:<22} {:>7} {:>10} {:>10} {:>12} {:>16}\n".format("road class", "links", "km", "lane-km",
                                                        "free km/h", "capacity veh/h"))
    for c in info["classes"]:
        w("{:<22} {:>7,} {:>10,.2f} {:>10,.2f} {:>12.1f} {:>16,.0f}\n".format(
            c["road_class"], c["links"], c["km"], c["lane_km"], c["mean_free_speed_kmh"], c["capacity_veh_per_h"]))


def _parse_node(city, text):
    """Node ids on the command line are strings; match the city's id type."""
    if city.node_ids.dtype.kind in "iu":
        try:
            return int(text)
        except ValueError:
            from twin.errors import UnknownNodeError

            raise UnknownNodeError(f"node id {text!r} is not an integer; city {city.name!r} has integer node ids "
                                   f"such as {city.node_ids[:3].tolist()}") from None
    return text


def _cmd_info(args):
    import twin

    if args.out and not args.overwrite:
        from pathlib import Path

        if Path(args.out).exists():
            from twin.errors import ResultsError

            raise ResultsError(f"{args.out} already exists; pass --overwrite to replace it")
    city = twin.load_city(args.city)
    info = city_info(city)
    _print_info(info, sys.stdout)
    if args.out:
        from twin.graph import write_network
        from twin.results import ResultsWriter

        with ResultsWriter(args.out, meta={"command": "info", "city": city.name, "source": city.source},
                           overwrite=args.overwrite) as writer:
            write_network(writer, city)
            writer.write_summary("n_nodes", city.n_nodes, units="1")
            writer.write_summary("n_links", city.n_links, units="1")
            writer.write_summary("total_length_m", float(city.length_m.sum()), units="m")
            writer.write_summary("lane_length_m", float((city.length_m * city.lanes).sum()), units="m")
        sys.stdout.write(f"\nwrote {args.out}\n")
    return 0


def _cmd_route(args):
    import twin

    city = twin.load_city(args.city)
    o, d = _parse_node(city, args.origin), _parse_node(city, args.destination)
    links = city.path(o, d)
    time_s = float(city.free_flow_time_s[links].sum())
    length_m = float(city.length_m[links].sum())
    nodes = [o] + [city.node_ids[i].item() if hasattr(city.node_ids[i], "item") else city.node_ids[i]
                   for i in city.link_to_idx[links]]
    out = sys.stdout
    out.write(f"route {o} -> {d} in {city.name}: {len(links)} links, {length_m / 1000:,.3f} km, "
              f"free-flow time {time_s:,.1f} s ({time_s / 60:,.2f} min)\n")
    out.write("nodes: " + " ".join(str(v) for v in nodes) + "\n")
    if args.links:
        names = city.link_attrs.get("name")
        out.write("\n{:>6} {:>12} {:>12} {:>9} {:>8}  {}\n".format("link", "from", "to", "length_m", "time_s", "name"))
        for k in links:
            out.write("{:>6} {:>12} {:>12} {:>9.1f} {:>8.1f}  {}\n".format(
                int(k), str(city.node_ids[city.link_from_idx[k]]), str(city.node_ids[city.link_to_idx[k]]),
                city.length_m[k], city.free_flow_time_s[k], names[k] if names is not None else ""))
    return 0


def parse_duration_s(text) -> float:
    """Parse '4h', '90min', '30s', '1h30min' or a plain number of seconds into seconds (an argparse type)."""
    from twin.units import parse_duration_s as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cmd_traffic(args):
    import pandas as pd

    import twin
    from twin.errors import DemandError

    city = twin.load_city(args.city)
    if (args.trips is None) == (args.random_trips is None):
        raise DemandError("give a trips CSV file or --random-trips N (not both)")
    if args.trips is not None:
        try:
            trips = pd.read_csv(args.trips)
        except (OSError, ValueError) as exc:
            raise DemandError(f"cannot read trips file {args.trips}: {exc}") from None
        if "destination" not in trips and "dest" in trips:
            trips = trips.rename(columns={"dest": "destination"})
    else:
        trips = random_trips(city, args.random_trips, args.window, args.seed)
    if args.out and not args.overwrite:
        from pathlib import Path

        if Path(args.out).exists():
            from twin.errors import ResultsError

            raise ResultsError(f"{args.out} already exists; pass --overwrite to replace it")
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=round(args.until), unit="sim-s", desc="traffic", leave=False)

    def progress(done_s, total_s):
        if bar is not None:
            bar.update(round(done_s) - bar.n)

    import time

    t0 = time.perf_counter()
    events = None
    if args.events:
        try:
            events = pd.read_csv(args.events)
        except (OSError, ValueError) as exc:
            raise DemandError(f"cannot read events file {args.events}: {exc}") from None
    signals = None
    if args.signals:
        from twin.signals import signal_plan

        signals = signal_plan(city, args.signals, cycle_s=args.cycle, min_green_s=args.min_green,
                              lost_time_s=args.lost_time)
    res = twin.simulate_traffic(city, trips, until_s=args.until, seed=args.seed, dt_s=args.dt,
                                interval_s=args.interval, events=events, signals=signals,
                                reroute_share=args.reroute, reroute_interval_s=args.reroute_interval,
                                emergency_priority=not args.no_emergency_priority,
                                bypass_speed_mps=args.bypass_speed, progress=progress)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    k = res.kpis
    out = sys.stdout
    n = len(res.trips)
    out.write(f"traffic on {city.name}: {n:,} trips, simulated {k['simulated_s']:,.0f} s in {wall:.2f} s wall "
              f"({n / max(wall, 1e-9):,.0f} trips/s)\n\n")
    rows = [("completed", f"{k['completed']:,}"), ("en route at end", f"{k['en_route']:,}"),
            ("waiting to enter", f"{k['waiting']:,}"), ("not departed", f"{k['not_departed']:,}"),
            ("unroutable", f"{k['unroutable']:,}"), ("mean travel time", f"{k['mean_travel_time_s']:,.1f} s"),
            ("p90 travel time", f"{k['p90_travel_time_s']:,.1f} s"),
            ("congestion index", f"{k['congestion_index']:.3f} (travel / free-flow time)"),
            ("vehicle-km", f"{k['vkt_veh_km']:,.0f} veh-km"), ("vehicle-hours", f"{k['vht_veh_h']:,.1f} veh-h"),
            ("delay", f"{k['delay_veh_h']:,.1f} veh-h"), ("forced moves (gridlock rule)", f"{k['forced_moves']:,}"),
            ("teleports (gridlock rule)", f"{k['teleports']:,}"), ("re-routed", f"{k['rerouted']:,}")]
    for name, value in rows:
        out.write(f"{name:<30} {value}\n")
    if args.out:
        from twin.graph import write_network
        from twin.results import ResultsWriter

        with ResultsWriter(args.out, meta={"command": "traffic", "city": city.name, "source": city.source,
                                           "seed": int(args.seed), "until_s": float(args.until),
                                           "dt_s": float(args.dt), "interval_s": float(args.interval),
                                           "reroute_share": float(args.reroute),
                                           "signals": bool(args.signals),
                                           "events": str(args.events or ""),
                                           "trips": str(args.trips) if args.trips else
                                           f"random uniform OD, {args.random_trips} trips over {args.window} s"},
                           overwrite=args.overwrite) as writer:
            write_network(writer, city)
            res.write(writer)
        out.write(f"\nwrote {args.out}\n")
    return 0


def _print_table(df, out, columns):
    """KPI rows in display units (:mod:`twin.kpi_display`): label with its unit, values scaled,
    settings echoed back (windows, targets) left out; ``n`` and booleans as they are."""
    from twin.kpi_display import format_value, is_constant, kpi_display

    rows = [(kpi, row, *kpi_display(kpi)) for kpi, row in df.iterrows() if not is_constant(kpi)]
    width = max([40] + [len(f"{label} ({unit})" if unit else label) for _, _, label, unit, _ in rows])
    out.write(f"{'kpi (unit)':<{width}} " + " ".join(f"{c:>12}" for c in columns) + "\n")
    for kpi, row, label, unit, factor in rows:
        cells = []
        for c in columns:
            v = row[c]
            if isinstance(v, str):
                cells.append(f"{v:>12}")
            elif isinstance(v, (bool, np.bool_)) or c == "n":
                cells.append(f"{v!s:>12}" if isinstance(v, (bool, np.bool_)) else f"{int(v):>12}")
            else:
                cells.append(f"{format_value(float(v) * factor, unit):>12}")
        name = f"{label} ({unit})" if unit else label
        out.write(f"{name:<{width}} " + " ".join(cells) + "\n")
    out.write("\n(minutes, hours and km from the file's seconds, hours and metres; shares in %, their "
              "differences in percentage points; windows and targets left out)\n")


def _dask_arg(value):
    return True if value == "local" else value


def _cmd_replicate(args):
    from twin.ensemble import replicate

    from twin.progress import progress_reporter

    progress, close = progress_reporter(args, "replicate", "run")
    try:
        res = replicate(args.scenario, replications=args.replications, seed=args.seed, overrides=args.set,
                        confidence=args.confidence, dask=_dask_arg(args.dask) if args.dask else False,
                        exclude_gridlock=args.exclude_gridlock, workers=args.workers, progress=progress)
    finally:
        close()
    if args.format != "table":
        from twin.cli_format import write_summary

        write_summary(res.summary, args.format, {"scenario": args.scenario, "replications": args.replications,
                                                 "seed": args.seed, "confidence": args.confidence,
                                                 "gridlocked_seeds": [int(s) for s in res.gridlocked],
                                                 "gridlocked_excluded": bool(res.excluded)})
        return 0
    sys.stdout.write(f"{args.scenario}: {args.replications} replications (seed {args.seed}), "
                     f"{100 * args.confidence:g}% intervals\n\n")
    _print_table(res.summary, sys.stdout, ["mean", "half_width", "low", "high", "n", "method"])
    sys.stdout.write("(method: t = Student t on the replications; bootstrap = percentile bootstrap of the mean, "
                     "used where the t interval would leave the KPI's possible range, e.g. a share above 100 %)\n")
    _gridlock_note(sys.stdout, args.replications, [("", res)])
    return 0


def _gridlock_note(out, n, results):
    """Say which replications were gridlocked, and whether they were left out."""
    from twin.traffic_result import GRIDLOCK_SHARE

    for label, res in results:
        if res.gridlocked:
            seeds = ", ".join(str(s) for s in res.gridlocked)
            out.write(f"\n{label}gridlock (forced moves + teleports >= {100 * GRIDLOCK_SHARE:g} % of trips) in "
                      f"{len(res.gridlocked)} of {n} replications (seeds {seeds}): "
                      + ("left out of the table (--exclude-gridlock)" if res.excluded else
                         "their KPIs reflect the gridlock rule; --exclude-gridlock leaves them out") + "\n")


def _cmd_compare(args):
    from twin.ensemble import compare

    from twin.progress import progress_reporter

    progress, close = progress_reporter(args, "compare", "run")
    try:
        res = compare(args.a, args.b or args.a, replications=args.replications, seed=args.seed,
                      overrides_a=args.set_a, overrides_b=args.set_b, confidence=args.confidence,
                      dask=_dask_arg(args.dask) if args.dask else False, exclude_gridlock=args.exclude_gridlock,
                      workers=args.workers, progress=progress)
    finally:
        close()
    table = res.difference.copy()
    table.insert(0, "A", res.a.summary["mean"].reindex(table.index))
    table.insert(1, "B", res.b.summary["mean"].reindex(table.index))
    if args.format != "table":
        from twin.cli_format import write_summary

        write_summary(table, args.format, {"a": args.a, "b": args.b or args.a, "set_a": args.set_a or [],
                                           "set_b": args.set_b or [], "replications": args.replications,
                                           "seed": args.seed, "confidence": args.confidence,
                                           "pairs_excluded": len(res.a.excluded) if res.a.excluded else 0})
        return 0
    sys.stdout.write(f"B - A on common random numbers: {args.replications} replications (seed {args.seed}), "
                     f"{100 * args.confidence:g}% intervals\n  A = {args.a} {' '.join(args.set_a or [])}\n"
                     f"  B = {args.b or args.a} {' '.join(args.set_b or [])}\n\n")
    _print_table(table, sys.stdout, ["A", "B", "mean", "half_width", "significant"])
    _gridlock_note(sys.stdout, args.replications, [("A: ", res.a), ("B: ", res.b)])
    if res.a.excluded:
        sys.stdout.write(f"pairs left out (either run gridlocked): {len(res.a.excluded)} of {args.replications}\n")
    return 0


#: Optional packages and the ``pyproject.toml`` extra that installs them.
EXTRAS = {"pyvista": "viz", "vtk": "viz", "matplotlib": "viz", "imageio": "viz", "dask": "dist",
          "distributed": "dist", "hypothesis": "test", "pytest": "test"}


def missing_extra(exc):
    """The one-line hint for a missing optional package (``pip install -e ".[viz]"``), or None."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    extra = EXTRAS.get(name)
    if extra is None:
        return None
    return f"this needs the '{extra}' extra (missing package {name!r}): pip install -e \".[{extra}]\""


def build_parser():
    from twin._version import __version__
    from twin.cli_format import add_format_argument
    from twin.data.embedded import DEFAULT_CITY

    ap = argparse.ArgumentParser(prog="twin", description="A city-operations digital twin.")
    ap.add_argument("--version", action="version", version=f"twin {__version__}")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    ap.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="counts, components, extent and lane-km by road class of a city")
    p.add_argument("city", nargs="?", default=DEFAULT_CITY,
                   help=f"embedded city name, network file or synthetic spec (default {DEFAULT_CITY})")
    p.add_argument("--out", help="also write the network to this results file (HDF5)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_info)
    p = sub.add_parser("route", help="least free-flow-time path between two nodes")
    p.add_argument("city", help="embedded city name, network file or synthetic spec")
    p.add_argument("origin", help="origin node id")
    p.add_argument("destination", help="destination node id")
    p.add_argument("--links", action="store_true", help="list the path's links")
    p.set_defaults(func=_cmd_route)
    p = sub.add_parser("traffic", help="simulate trips through the network (mesoscopic, per vehicle)")
    p.add_argument("city", help="embedded city name, network file or synthetic spec")
    p.add_argument("trips", nargs="?", help="CSV with columns origin, destination (or dest), depart_s")
    p.add_argument("--random-trips", type=int, metavar="N", help="instead of a file: N uniform random OD trips")
    p.add_argument("--window", type=parse_duration_s, default=3600.0,
                   help="departure window of --random-trips (default 1h)")
    p.add_argument("--until", type=parse_duration_s, default=4 * 3600.0, help="simulated horizon (default 4h)")
    p.add_argument("--dt", type=float, default=1.0, help="tick in seconds (default 1)")
    p.add_argument("--interval", type=parse_duration_s, default=300.0, help="link series interval (default 300 s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--events", help="CSV of network events: time_s, action (close|open|capacity), link or "
                                    "from_node,to_node, capacity_veh_per_h")
    p.add_argument("--reroute", type=float, default=0.0, metavar="SHARE",
                   help="share of vehicles on the road that re-route on live times (default 0)")
    p.add_argument("--reroute-interval", type=parse_duration_s, default=300.0,
                   help="re-routing period (default 300 s)")
    p.add_argument("--signals", nargs="?", const="fixed-time", choices=["none", "fixed-time", "max-pressure"],
                   help="signals at every node with 3+ in-links: fixed-time (Webster split; the default when "
                        "given alone) or max-pressure (adaptive, twin.signals.max_pressure_plan)")
    p.add_argument("--cycle", type=parse_duration_s, default=90.0,
                   help="fixed-time signal cycle (default 90 s)")
    p.add_argument("--min-green", type=parse_duration_s, default=15.0,
                   help="max-pressure decision period / shortest green (default 15 s)")
    p.add_argument("--lost-time", type=parse_duration_s, default=4.0,
                   help="lost time (amber + all-red) per phase change (default 4 s)")
    p.add_argument("--no-emergency-priority", action="store_true",
                   help="trips with vehicle_class 'emergency' drive as cars (no pre-emption, no queue bypass)")
    p.add_argument("--bypass-speed", type=float, default=5.0, metavar="M_PER_S",
                   help="speed at which emergency vehicles pass queues, m/s (default 5)")
    p.add_argument("--out", help="write network, trips, link series and KPIs to this results file (HDF5)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_traffic)
    from twin.cli_run import add_run_parser

    add_run_parser(sub)
    p = sub.add_parser("replicate", help="run a scenario on independent streams; KPI means with confidence intervals")
    p.add_argument("scenario", help="scenario TOML file or built-in name")
    p.add_argument("--replications", "-n", type=int, default=10, help="replications (default 10)")
    p.add_argument("--seed", type=int, default=0, help="master seed of the replication streams (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every replication")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Dask: a local cluster, or the scheduler at ADDRESS")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes of the local Dask cluster (--dask; default: the machine's cores)")
    p.add_argument("--exclude-gridlock", action="store_true",
                   help="leave gridlocked replications out of the intervals (compare: the pair); listed either way")
    add_format_argument(p)
    p.set_defaults(func=_cmd_replicate)
    p = sub.add_parser("compare", help="compare two scenarios (or override sets) on common random numbers")
    p.add_argument("a", help="scenario A (file or built-in name)")
    p.add_argument("b", nargs="?", help="scenario B (default: A, changed by --set-b)")
    p.add_argument("--set-a", action="append", metavar="KEY=VALUE", help="override for A")
    p.add_argument("--set-b", action="append", metavar="KEY=VALUE", help="override for B")
    p.add_argument("--replications", "-n", type=int, default=10, help="replication pairs (default 10)")
    p.add_argument("--seed", type=int, default=0, help="master seed of the replication streams (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Dask: a local cluster, or the scheduler at ADDRESS")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes of the local Dask cluster (--dask; default: the machine's cores)")
    p.add_argument("--exclude-gridlock", action="store_true",
                   help="leave gridlocked replications out of the intervals (compare: the pair); listed either way")
    add_format_argument(p)
    p.set_defaults(func=_cmd_compare)
    from twin.cli_forecast import add_forecast_parser
    from twin.cli_optimise import add_optimise_parser
    from twin.cli_population import add_population_parser
    from twin.viz.cli import add_plot_parser, add_render_parser, add_report_parser, add_view_parser  # no VTK yet

    for add in (add_optimise_parser, add_forecast_parser, add_render_parser, add_plot_parser, add_view_parser,
                add_report_parser, add_population_parser):
        add(sub)
    for p in sub.choices.values():          # -v / -q also after the command (twin run X -v)
        p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                       help="more log output (-vv for debug)")
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors")
    return ap


def main(argv=None) -> int:
    """Entry point of the ``twin`` command; returns the exit status."""
    ap = build_parser()
    args = ap.parse_args(argv)
    level = logging.ERROR if args.quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        ap.print_help()
        return 2
    from twin.errors import TwinError

    try:
        return args.func(args)
    except TwinError as exc:
        sys.stderr.write(f"twin {args.command}: error: {exc}\n")
        if getattr(exc, "hdf5_unusable", False):  # a failed write (disk full): HDF5's teardown may crash
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except ModuleNotFoundError as exc:      # an optional extra is not installed: say which, in one line
        hint = missing_extra(exc)
        if hint is None:
            raise
        sys.stderr.write(f"twin {args.command}: error: {hint}\n")
        return 2
    except KeyboardInterrupt:               # Ctrl-C: one line, the shell's status for SIGINT, no traceback
        sys.stderr.write(f"twin {args.command}: interrupted; no results file was completed under its final name "
                         f"(one being written is left as a .partial file)\n")
        return 130
    except BrokenPipeError:                 # `twin run --keys | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
