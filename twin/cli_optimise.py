"""``twin optimise``: propose plans with an exact model, simulate them on common random numbers,
print the ranking with intervals, write the chosen plan."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from twin.errors import OptimisationError
from twin.optimise import DECISIONS, MODELS, StockItem, optimise
from twin.units import parse_clock_s, parse_duration_s

__all__ = ["add_optimise_parser", "optimise_main", "format_study"]


def _arg(parse):
    def convert(text):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__
    return convert


def _node_ids(text):
    out = []
    for tok in str(text).split(","):
        tok = tok.strip()
        if tok:
            out.append(int(tok) if tok.lstrip("-").isdigit() else tok)
    return out


def add_optimise_parser(subparsers):
    """Add ``twin optimise`` to the CLI's subparsers (``twin.cli.build_parser`` calls this)."""
    p = subparsers.add_parser(
        "optimise", help="optimise stations, fleet, beds, stock or care centres: MILP plans verified by simulation",
        description="Propose the model's optimum and its best neighbours for one decision, run each plan (and the "
                    "scenario's current one) on common random numbers, and rank them by a KPI with intervals "
                    "(multiple comparisons with the best, Bonferroni). Writes the chosen plan as a scenario.")
    p.add_argument("scenario", help="scenario TOML file or built-in name (e.g. hefei_day)")
    p.add_argument("--decide", required=True, choices=DECISIONS, help="what to decide")
    p.add_argument("--model", default="p-median", choices=MODELS,
                   help="siting model for --decide stations (default p-median; fleet always uses mexclp)")
    p.add_argument("--replications", "-n", type=int, default=10, help="replications per plan (default 10)")
    p.add_argument("--plans", type=int, default=4, help="the optimum and its best neighbours (default 4)")
    p.add_argument("--seed", type=int, default=0, help="master seed of the replication streams (default 0)")
    p.add_argument("--sites", type=int, help="station sites (default: as many as the scenario has)")
    p.add_argument("--standard", type=_arg(parse_duration_s), metavar="DURATION",
                   help="coverage standard, travel time (e.g. 7min; default: the P1 target less the turnout)")
    p.add_argument("--candidates", type=_node_ids, metavar="ID,ID,...", help="candidate nodes (default: every node)")
    p.add_argument("--keep", type=_node_ids, default=[], metavar="ID,ID,...", help="sites that must stay open")
    p.add_argument("--costs", default="free-flow", choices=["free-flow", "congested"],
                   help="travel costs: free-flow, or the simulated link times of the hour from --at")
    p.add_argument("--at", type=_arg(parse_clock_s), default=8 * 3600.0, metavar="HH:MM",
                   help="start of the hour whose congestion prices travel with --costs congested (default 08:00)")
    p.add_argument("--pool", default="ed", choices=["ed", "ward", "icu"],
                   help="the beds --decide beds splits between the hospitals that have them (default ed)")
    p.add_argument("--demand-from", metavar="RUN.h5",
                   help="weigh the nodes where this run's calls arose (a twin run --out file on the same city) "
                        "instead of the zones' call rates")
    p.add_argument("--kpi", help="ranking KPI (default response_mean_s; stock_cost for --decide stock)")
    p.add_argument("--maximise", action="store_true", default=None,
                   help="a larger KPI is better (default: only for shares such as response_p1_within_target)")
    p.add_argument("--confidence", type=float, default=0.95, help="family confidence (default 0.95)")
    p.add_argument("--study", metavar="PATH", help="JSON-lines store of every replication; a study resumes from it")
    p.add_argument("--out", metavar="PATH",
                   help="write the chosen plan here: a scenario TOML (stock: a [[stock]] table of units per hospital)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override the scenario (every plan)")
    p.add_argument("--dask", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Dask: a local cluster, or the scheduler at ADDRESS")
    c = p.add_argument_group("care (--decide care: new elderly-care centres, --sites of them, default 1)")
    c.add_argument("--places", type=int, help="day-care places of each new centre (default: the existing centres' mean)")
    c.add_argument("--peripheral-weight", type=float, default=2.0,
                   help="weight of an 80+ resident outside the central district in the covering model (default 2)")
    g = p.add_argument_group("stock (--decide stock: one item stocked at the hospitals)")
    d = StockItem()
    g.add_argument("--item", default=d.name, help=f"item name (default {d.name})")
    g.add_argument("--use-per-arrival", type=float, default=d.use_per_arrival,
                   help=f"units used per ED arrival (default {d.use_per_arrival:g})")
    g.add_argument("--unit-cost", type=float, default=d.unit_cost, help=f"per unit bought (default {d.unit_cost:g})")
    g.add_argument("--overage-cost", type=float, default=d.overage_cost,
                   help=f"per unit left over (default {d.overage_cost:g})")
    g.add_argument("--shortage-cost", type=float, default=d.shortage_cost,
                   help=f"per unit short (default {d.shortage_cost:g})")
    g.add_argument("--ship-cost-per-h", type=float, default=d.ship_cost_per_h,
                   help=f"per unit and hour of driving between hospitals (default {d.ship_cost_per_h:g}; inf: none)")
    p.set_defaults(func=optimise_main)
    return p


def _display(kpi, value):
    """A KPI value in display units: minutes for ``*_s``, percent for shares, else as is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kpi.endswith("_s"):
        return f"{value / 60.0:.2f}"
    if any(w in kpi for w in ("within", "share", "blocking", "utilisation")):
        return f"{100.0 * value:.1f}"
    return f"{value:.4g}"


def _kpi_unit(kpi):
    if kpi.endswith("_s"):
        return "min"
    if any(w in kpi for w in ("within", "share", "blocking", "utilisation")):
        return "%"
    return ""


def _model_line(res):
    i = res.model_info
    if res.decide == "beds":
        return (f"model: Erlang B marginal analysis, {i['total_beds']} {i['pool'].upper()} beds; arrivals/h "
                f"{', '.join(f'{k} {v:g}' for k, v in i['arrivals_per_h'].items())}")
    if res.decide == "care":
        return (f"model: MCLP on walking times: {i['sites']} new centre(s) of {i['places']} places beside the "
                f"{i['existing']} existing, among {i['candidates']} candidates, covering the 80+ at "
                f"{i['demand_points']} nodes within {i['standard_s'] / 60:.0f} min (peripheral weight "
                f"{i['peripheral_weight']:g}); MILP gap {100 * i['gap']:.2f} % ({i['status']}), solved in "
                f"{i['solve_time_s']:.2f} s")
    if res.decide == "stock":
        return (f"model: {i['model']}, {i['scenarios_in_sample']} simulated runs to fit, "
                f"{i['evaluation_seeds']} others to evaluate; solved in {i['solve_time_s']:.2f} s")
    std = "" if i.get("standard_s") is None else f", standard {i['standard_s'] / 60:.1f} min"
    points = "nodes with calls in the run" if i.get("demand") == "run" else "zones"
    return (f"model: {i['model']} on {i['costs']} costs: {i['sites']} site(s) among {i['candidates']} candidates for "
            f"{i['demand_points']} {points}, {i['fleet']} ambulances{std}, q = {i['q']:.2f}; MILP gap "
            f"{100 * i['gap']:.2f} % ({i['status']}), solved in {i['solve_time_s']:.2f} s")


def format_study(res, scenario_name, replications, seed):
    """The study's report as text: what was modelled, then the ranking table."""
    unit = _kpi_unit(res.kpi)
    unit_txt = f", {unit}" if unit else ""
    sense = "higher" if res.maximise else "lower"
    lines = [f"optimise {scenario_name}: decide {res.decide}; {replications} replications a plan (seed {seed}), "
             f"common random numbers",
             _model_line(res),
             f"ranking by {res.kpi} ({sense} is better{unit_txt}); vs best: paired difference, "
             f"{100 * res.confidence:g} % family interval (Bonferroni)", ""]
    label = res.model_info.get("objective_label", "objective")
    munit = _kpi_unit(label)
    lines.insert(3, f"model column: the model's {label.replace('_s', '')}{' (' + munit + ')' if munit else ''} "
                    f"at each plan")
    head = f"{'plan':<12} {'verdict':<7} {'mean':>9} {'±':>8} {'vs best':>9} {'±':>8} {'model':>9}  plan"
    lines.append(head)
    for name, row in res.ranking.iterrows():
        dh = row["diff_half_width"]
        lines.append(f"{name:<12} {row['verdict']:<7} {_display(res.kpi, row['mean']):>9} "
                     f"{_display(res.kpi, row['half_width']):>8} "
                     f"{'' if name == res.ranking.index[0] else _signed(res.kpi, row['diff']):>9} "
                     f"{'' if name == res.ranking.index[0] else _display(res.kpi, dh):>8} "
                     f"{_display(label, row['model_objective']):>9}  {row['plan_detail']}{('  ' + row['note']) if row['note'] else ''}")
    lines += ["", _verdict_line(res, replications)]
    return "\n".join(lines) + "\n"


def _verdict_line(res, replications):
    """What the ranking says of the chosen plan against the current one."""
    best = res.ranking.index[0]
    tied = [n for n, r in res.ranking.iterrows() if r["verdict"] == "tied"]
    text = f"chosen: {best} (the best mean)"
    if best == "current":
        return text + (f"; tied with {', '.join(tied)} at {replications} replications" if tied else
                       ": every proposal is worse than the current plan")
    if res.ranking.loc["current", "verdict"] == "worse":
        text += "; better than the current plan (its interval excludes 0)"
    else:
        text += (f"; not shown better than the current plan at {replications} replications "
                 f"(keep the current plan, or run more replications)")
    return text + (f"; tied with {', '.join(t for t in tied if t != 'current')}" if set(tied) - {"current"} else "")


def _signed(kpi, value):
    text = _display(kpi, abs(value))
    return text if text == "-" else ("+" if value >= 0 else "-") + text


def _write_atomic(path, text, overwrite):
    path = Path(path)
    if path.exists() and not overwrite:
        raise OptimisationError(f"--out {path}: exists; give --overwrite to replace it")
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def optimise_main(args) -> int:
    """``twin optimise``: run the study with a progress bar, print the ranking, write ``--out``."""
    if args.out:                                 # before hours of runs, not after
        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise OptimisationError(f"--out {out}: exists; give --overwrite to replace it")
        if not out.parent.is_dir():
            raise OptimisationError(f"--out {out}: folder {out.parent} does not exist")
    items = (StockItem(args.item, args.use_per_arrival, args.unit_cost, args.overage_cost, args.shortage_cost,
                       args.ship_cost_per_h),)
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=1, unit="run", desc="optimise", leave=False)

    def progress(done, total):
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    dask = (True if args.dask == "local" else args.dask) if args.dask else False
    try:
        res = optimise(args.scenario, args.decide, model=args.model, replications=args.replications, seed=args.seed,
                       plans=args.plans, overrides=args.set, sites=args.sites, standard_s=args.standard,
                       candidates=args.candidates, keep=args.keep, costs=args.costs, at_s=args.at, items=items,
                       pool=args.pool, demand_from=args.demand_from,
                       kpi=args.kpi, maximise=args.maximise, confidence=args.confidence, store=args.study,
                       dask=dask, progress=progress, care_places=args.places,
                       peripheral_weight=args.peripheral_weight)
    finally:
        if bar is not None:
            bar.close()
    sys.stdout.write(format_study(res, args.scenario, args.replications, args.seed))
    if args.out:
        _write_atomic(args.out, res.chosen_toml, args.overwrite)
        sys.stdout.write(f"wrote {args.out}\n")
    return 0
