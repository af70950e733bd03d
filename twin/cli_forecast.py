"""``twin forecast``: an ensemble run on from a snapshot; KPI fans and district risk over the horizons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.errors import ScenarioError

__all__ = ["add_forecast_parser"]


def _horizons(text):
    from twin.units import parse_duration_s

    try:
        return [float(parse_duration_s(t.strip())) for t in str(text).split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--horizons {text!r}: {exc} (e.g. 3h,6h,24h,48h)") from None


def add_forecast_parser(subparsers):
    """Add ``twin forecast`` to the CLI's subparsers (``twin.cli.build_parser`` calls this)."""
    p = subparsers.add_parser(
        "forecast", help="run an ensemble on from a snapshot: KPI fans and district risk over 3/6/24/48 h",
        description="Warm-start every member from the snapshot (twin run --snapshot-at), each on its own dice "
                    "and with its own call-rate, flood-depth, traffic-demand and re-routing factors (member 0: the "
                    "snapshot's own, the uninterrupted run), the call-rate factors fitted to the calls so far and the "
                    "demand factors to link counts; print P10/P50/P90 "
                    "of the KPIs per horizon and, per district, the probability that a P1 call waits beyond its target with its risk class.")
    p.add_argument("scenario", nargs="?", help="scenario for the members (default: the snapshot's own)")
    p.add_argument("--from", dest="snapshot", required=True, metavar="RUN.h5@HH:MM",
                   help="the state to start from: a snapshot kept with twin run --snapshot-at, a .partial checkpoint, "
                        "or an observed state.json (twin state; units, beds, open calls, link speeds)")
    p.add_argument("--horizons", type=_horizons, default=None, metavar="3h,6h,24h,48h",
                   help="lead times after the snapshot (default 3h,6h,24h,48h; cut at the scenario's end)")
    p.add_argument("--members", "-n", type=int, default=40, help="ensemble members, the control included (default 40)")
    p.add_argument("--seed", type=int, default=0, help="seed of the members' dice and factors (default 0)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override for every member (e.g. a newer "
                   "flood forecast: hazards.0.depth_mm=[...])")
    p.add_argument("--call-rate-sigma", type=float, default=0.2, help="log-sd of the members' call-rate factor (0.2)")
    p.add_argument("--hazard-depth-sigma", type=float, default=0.25,
                   help="log-sd of each polygon flood's depth factor (0.25)")
    p.add_argument("--demand-sigma", type=float, default=0.1,
                   help="log-sd of the traffic demand factor on the trips not yet departed (0.1)")
    p.add_argument("--reroute-sigma", type=float, default=0.5,
                   help="sd of the shift of the share of drivers re-routing, on the logit scale (0.5)")
    p.add_argument("--observed-calls", type=Path, metavar="CALLS.csv",
                   help="call log to assimilate (a 'time' column, HH:MM; default: the snapshot's own calls so far)")
    p.add_argument("--observed-counts", type=Path, metavar="COUNTS.csv",
                   help="hourly link counts (from_node, to_node, hour, count): their GEH against the twin's "
                        "traffic so far is reported, and they are assimilated into the demand factors")
    p.add_argument("--hazard-ensemble", type=Path, metavar="MEMBERS.toml",
                   help="the hazard forecast's members ([[members]] set = [\"hazards.0.depth_mm=[...]\"]), taken in "
                        "turn instead of the depth factors")
    p.add_argument("--no-assimilation", action="store_true",
                   help="draw the call-rate and demand factors from their priors instead of fitting them to the "
                        "calls and link counts so far")
    p.add_argument("--out", type=Path, help="write the members and products to this HDF5 file (/forecast)")
    p.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                   help="run the members on Dask: a local cluster, or the scheduler at ADDRESS")
    p.add_argument("--workers", type=int, metavar="N", help="processes of the local Dask cluster (--dask)")
    p.set_defaults(func=_cmd_forecast)


def _cmd_forecast(args):
    from twin.forecast import DEFAULT_HORIZONS_S, Perturbation, forecast
    from twin.progress import progress_reporter

    if args.out is not None and args.out.exists():
        raise ScenarioError(f"--out {str(args.out)!r} exists; remove it or choose another name")
    if args.out is not None and not args.out.resolve().parent.is_dir():
        raise ScenarioError(f"--out {str(args.out)!r}: no folder {str(args.out.resolve().parent)!r}")
    if args.horizons is not None and not args.horizons:
        raise ScenarioError("--horizons: no lead times given (e.g. 3h,6h,24h)")
    if args.members < 1:
        raise ScenarioError(f"--members {args.members}: expected at least 1")
    pert = Perturbation(call_rate_sigma=args.call_rate_sigma, hazard_depth_sigma=args.hazard_depth_sigma,
                        demand_sigma=args.demand_sigma, reroute_sigma=args.reroute_sigma)
    progress, close = progress_reporter(args, "forecast", "member")
    try:
        res = forecast(args.snapshot, scenario=args.scenario, overrides=args.set, members=args.members,
                       horizons_s=args.horizons or DEFAULT_HORIZONS_S, seed=args.seed, perturbation=pert,
                       assimilate=not args.no_assimilation, observed_calls=args.observed_calls,
                       hazard_ensemble=args.hazard_ensemble, observed_counts=args.observed_counts,
                       dask=(True if args.dask == "local" else args.dask) if args.dask else False,
                       workers=args.workers, progress=progress)
    finally:
        close()
    sys.stdout.write("\n".join(res.lines()) + "\n")
    if args.out is not None:
        res.write(args.out)
        sys.stdout.write(f"wrote {args.out} (twin plot {args.out} forecast-fan; forecast-risk)\n")
    return 0
