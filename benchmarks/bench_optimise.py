"""Siting solvers: twin (scipy's HiGHS) against pysal spopt (PuLP with CBC) on the same cost
matrices, in one run.

Instances:

* ``pmed1``: OR-Library p-median instance 1 (``../shared/data/opt/pmed1.txt``, 100 nodes,
  p = 5; Beasley 1985), whose published optima are 5819 (p-median) and 127 (p-center).
* ``hefei``: the embedded city's ``hefei_day`` scenario as ``twin optimise`` sees it: 155 zones
  weighted by calls per hour, 155 candidate nodes, free-flow emergency travel times (s).
* ``grid:NxN`` (``--grid N``, default 15): a synthetic city, every node a zone of weight 1 and
  a candidate, free-flow travel times (s); a larger instance for the timings.

Models per instance: p-median and p-center with ``p`` sites, LSCP and MCLP at a coverage
standard (pmed1: 40 cost units, hefei: 120 s, grid: 240 s). Reported per (instance, model): the
objective of each (they must agree: both are exact), each one's wall time for building and
solving the model (median of ``--repeat`` runs; spopt's includes PuLP writing the model for
CBC, which is how spopt is used), and the ratio spopt / twin. spopt is a ``bench`` extra:
``pip install -e ".[bench]"``; without it, twin's rows are printed alone.

Usage::

    python benchmarks/bench_optimise.py [--shared ../shared/data] [--grid 15] [--repeat 3] [--no-peers]
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STANDARDS = {"pmed1": 40.0, "hefei": 120.0}


def instances(shared, grid_n):
    """``name -> (cost[demand, candidate], weights, p, standard)``."""
    from twin.data.orlib import read_orlib_pmed
    from twin.optimise_plans import siting_inputs
    from twin.runner import load_scenario

    out = {}
    pmed = Path(shared) / "opt" / "pmed1.txt"
    if pmed.exists():
        cost, p = read_orlib_pmed(pmed)
        out["pmed1"] = (cost, np.ones(cost.shape[0]), p, STANDARDS["pmed1"])
    else:
        print(f"(pmed1 left out: {pmed} not found)")
    inp = siting_inputs(load_scenario("hefei_day"))
    out["hefei"] = (inp.cost_s, inp.weights, 3, STANDARDS["hefei"])
    if grid_n:
        import twin

        city = twin.load_city(f"grid:{grid_n}x{grid_n}")
        cost = city.travel_times(city.node_ids).T
        out[f"grid:{grid_n}x{grid_n}"] = (cost, np.ones(cost.shape[0]), 4, 240.0)
    return out


def run_twin(model, cost, w, p, standard):
    """Solve with twin; ``(wall s, objective, status)``."""
    from twin.siting import lscp, mclp, p_center, p_median

    t0 = time.perf_counter()
    if model == "p-median":
        r = p_median(cost, p, weights=w)
    elif model == "p-center":
        r = p_center(cost, p, weights=w)
    elif model == "lscp":
        r = lscp(cost, standard, weights=w)
    else:
        r = mclp(cost, p, standard, weights=w)
    return time.perf_counter() - t0, float(r.objective), r.status


def run_spopt(model, cost, w, p, standard, time_limit_s):
    """Solve with spopt and CBC; ``(wall s, objective, status)``, status "time limit" when CBC
    stopped at ``time_limit_s`` (its objective then is the best plan found, not a proven optimum)."""
    import pulp
    from spopt.locate import LSCP, MCLP, PCenter, PMedian

    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
    t0 = time.perf_counter()
    if model == "p-median":
        m = PMedian.from_cost_matrix(cost, w, p_facilities=p).solve(solver)
    elif model == "p-center":
        m = PCenter.from_cost_matrix(cost, p_facilities=p).solve(solver)
    elif model == "lscp":
        m = LSCP.from_cost_matrix(cost, standard).solve(solver)
    else:
        m = MCLP.from_cost_matrix(cost, w, standard, p_facilities=p).solve(solver)
    dt = time.perf_counter() - t0
    value = float(pulp.value(m.problem.objective))      # MCLP: the covered weight, as twin's
    status = "time limit" if dt >= time_limit_s else pulp.LpStatus[m.problem.status].lower()
    return dt, value, status


def timed(fn, repeat, *args):
    """Median wall time of ``repeat`` runs, and the last run's objective and status."""
    times, last = [], None
    for _ in range(repeat):
        dt, obj, status = fn(*args)
        times.append(dt)
        last = (obj, status)
        if status == "time limit":
            break                  # once is enough to know it does not finish
    return statistics.median(times), last


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--grid", type=int, default=15, help="grid side of the synthetic instance (0: none)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--models", default="p-median,p-center,lscp,mclp")
    ap.add_argument("--peer-time-limit", type=float, default=300.0, help="CBC's time limit per solve, s (default 300)")
    args = ap.parse_args(argv)
    peers = not args.no_peers
    if peers:
        try:
            import spopt  # noqa: F401
        except ImportError:
            print("spopt not installed (pip install -e \".[bench]\"): twin only")
            peers = False
    import scipy

    print(f"scipy {scipy.__version__} (HiGHS)" + (f"; spopt {__import__('spopt').__version__} with PuLP "
                                                  f"{__import__('pulp').__version__} (CBC)" if peers else ""))
    print(f"median of {args.repeat} runs, wall seconds for building and solving the model; "
          f"CBC limited to {args.peer_time_limit:g} s\n")
    print(f"{'instance':<11} {'model':<9} {'size':>9} {'twin obj':>11} {'spopt obj':>11} {'same':>5} "
          f"{'twin s':>8} {'spopt s':>8} {'ratio':>6}  spopt status")
    for name, (cost, w, p, standard) in instances(args.shared, args.grid).items():
        for model in args.models.split(","):
            size = f"{cost.shape[0]}x{cost.shape[1]}"
            tt, (tobj, _) = timed(run_twin, args.repeat, model, cost, w, p, standard)
            if not peers:
                print(f"{name:<11} {model:<9} {size:>9} {tobj:>11.6g} {'-':>11} {'-':>5} {tt:>8.3f}", flush=True)
                continue
            st, (sobj, status) = timed(run_spopt, args.repeat, model, cost, w, p, standard, args.peer_time_limit)
            same = "yes" if abs(sobj - tobj) <= 1e-6 * max(1.0, abs(tobj)) else "NO"
            print(f"{name:<11} {model:<9} {size:>9} {tobj:>11.6g} {sobj:>11.6g} {same:>5} {tt:>8.3f} {st:>8.3f} "
                  f"{st / tt:>6.1f}  {status}", flush=True)
        print(flush=True)


if __name__ == "__main__":
    main()
