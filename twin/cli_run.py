"""``twin run``: run a scenario, print each flow's report, write ``--out``."""

from __future__ import annotations

import sys

from twin.errors import ScenarioError
from twin.results import check_out_path
from twin.runner import builtin_scenarios, format_kpis, load_scenario, resume, run, scenario_fields
from twin.units import parse_duration_s

__all__ = ["add_run_parser", "run_main"]


def add_run_parser(subparsers):
    """Add ``twin run`` to the CLI's subparsers (``twin.cli.build_parser`` calls this)."""
    p = subparsers.add_parser("run", help="run a scenario (EMS on a city, optionally coupled with traffic)",
                              description="Run a scenario TOML file or a built-in scenario and print its KPIs.")
    p.add_argument("scenario", nargs="?", help="scenario TOML file or built-in name (e.g. hefei_day)")
    p.add_argument("--out", help="write the results file (HDF5) here")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--seed", type=int, help="run seed (default: [run] seed)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value, e.g. --set run.until_s=3600 --set hospitals.0.beds=20 (repeatable)")
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.add_argument("--keys", action="store_true", help="list every scenario key with its description and exit")
    from twin.cli_format import add_format_argument

    add_format_argument(p)
    p.add_argument("--checkpoint-every", type=_duration_arg, default=None, metavar="DURATION",
                   help="keep the latest checkpoint in <out>.partial every DURATION of simulated time (e.g. 10d, "
                        "1h); twin run --resume <out>.partial continues after a crash")
    p.add_argument("--resume", metavar="PARTIAL", help="continue the run whose checkpoint is in PARTIAL "
                   "(<out>.partial of a run with --checkpoint-every) and write its results file")
    p.add_argument("--snapshot-at", type=_times_arg, default=(), metavar="TIMES",
                   help="keep the city's state at these times in --out (e.g. 06:00,08:00 or 6h), to start what-ifs "
                        "from: --start-from")
    p.add_argument("--start-from", metavar="FILE@TIME", help="run from a saved state on (run.h5@08:00, run.h5.partial, "
                   "or an observed state state.json): SCENARIO (default: the snapshot's own) with --set changes from "
                   "that time on")
    p.set_defaults(func=run_main)
    s = subparsers.add_parser("state", help="write the observed state of a snapshot (units, beds, open calls, link "
                              "speeds) as JSON", description="Write the state at a snapshot in the observed-state "
                              "format (twin.observed): what an operations centre would feed in. twin run "
                              "--start-from FILE.json runs from such a file.")
    s.add_argument("snapshot", help="run.h5@08:00 (kept with --snapshot-at) or a checkpoint file run.h5.partial")
    s.add_argument("--out", required=True, help="the JSON file to write")
    s.set_defaults(func=_state_main)
    return p


def _state_main(args) -> int:
    from twin.observed import export_observed

    doc = export_observed(args.snapshot, args.out)
    busy = sum(1 for u in doc["units"] if "call" in u)
    sys.stdout.write(f"state at {doc['time_s'] / 3600:.2f} h of {doc['scenario']}: {len(doc['units'])} units ({busy} "
                     f"on calls), {len(doc['calls'])} open calls, {sum(h['ed_beds_occupied'] for h in doc['hospitals'])} "
                     f"ED beds taken, {len(doc['links'])} links\nwrote {args.out}\n")
    return 0


def _times_arg(text):
    import argparse

    from twin.checkpoint import parse_at

    try:
        return tuple(parse_at(f"x@{t.strip()}")[1] for t in str(text).split(",") if t.strip())
    except ScenarioError:
        raise argparse.ArgumentTypeError(f"times {text!r}; expected e.g. 06:00,08:00 or 6h,8h") from None


def _duration_arg(text):
    import argparse

    try:
        return parse_duration_s(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"duration {text!r}; expected e.g. 10d, 6h, 30min or seconds") from None


def _formatted(args, res) -> bool:
    """``--format csv|json``: the KPIs for programs on standard output (the note on the written
    file on standard error); False for the table."""
    if getattr(args, "format", "table") == "table":
        return False
    from twin.cli_format import write_run

    write_run(res, args.format, sys.stdout)
    if res.path is not None:
        sys.stderr.write(f"wrote {res.path}\n")
    return True


def run_main(args) -> int:
    """``twin run``: run, print the KPI report, write ``--out``."""
    out = sys.stdout
    if getattr(args, "resume", None):
        res = resume(args.resume)
        if _formatted(args, res):
            return 0
        out.write(f"resumed {args.resume} from its checkpoint; simulated the rest in {res.wall_s:.2f} s wall\n\n")
        out.write(format_kpis(res))
        out.write(f"\nwrote {res.path}\n")
        return 0
    if getattr(args, "start_from", None):
        from twin.runner import from_snapshot

        res = from_snapshot(args.start_from, scenario=args.scenario, overrides=args.overrides, out=args.out,
                            overwrite=args.overwrite)
        if _formatted(args, res):
            return 0
        out.write(f"ran from {args.start_from}{' with ' + ', '.join(args.overrides) if args.overrides else ''}; "
                  f"simulated the rest in {res.wall_s:.2f} s wall\n\n")
        out.write(format_kpis(res))
        out.write(f"\nwrote {res.path}\n" if res.path is not None else "")
        return 0
    if args.list:
        for name in builtin_scenarios():
            out.write(f"{name}\n")
        return 0
    if args.keys:
        from twin.scenario import scenario_tables
        from twin.spec import table_field_details

        out.write(f"{'key':<34} {'kind':<7} {'default':<14} description\n")
        for key, (kind, default, desc) in table_field_details(scenario_tables()).items():
            shown = default if len(default) <= 14 else default[:11] + "..."
            out.write(f"{key:<34} {kind:<7} {shown:<14} {desc}\n")
        return 0
    if not args.scenario:
        raise ScenarioError(f"give a scenario file or built-in name; built-in scenarios: "
                            f"{', '.join(builtin_scenarios())}")
    if args.out is not None:                  # (before the scenario's build, which may take a while)
        check_out_path(args.out, overwrite=args.overwrite)
    scenario = load_scenario(args.scenario, overrides=args.overrides)
    rg = scenario.run_group
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=round(rg.until_s), unit="sim-s", desc="run", leave=False)

    def progress(done_s, total_s):
        if bar is not None:
            bar.update(round(done_s) - bar.n)

    try:
        res = run(scenario, seed=args.seed, out=args.out, progress=progress, overwrite=args.overwrite,
                  checkpoint_every_s=getattr(args, "checkpoint_every", None),
                  snapshot_at_s=getattr(args, "snapshot_at", ()))
    finally:
        if bar is not None:
            bar.close()
    if _formatted(args, res):
        return 0
    city = scenario.city
    order = [f.name for f in scenario.all_flows]
    parts = [res.flows[n].values["header"] for n in sorted(res.flows, key=order.index)
             if "header" in res.flows[n].values]
    if res.traffic is None:
        parts.append("static free-flow travel times")
    out.write(f"scenario {scenario.name} on {city.name} ({city.n_nodes:,} nodes): {rg.until_s / 3600:g} h, seed "
              f"{res.seed}, {'; '.join(parts)}\n")
    if rg.description:
        out.write(f"{rg.description}\n")
    out.write(f"simulated in {res.wall_s:.2f} s wall\n\n")
    out.write(format_kpis(res))
    if res.path is not None:
        out.write(f"\nwrote {res.path}\n")
    return 0
