"""The coupled city day: wall time, where it goes, and peak memory ([speed] issue).

Instance: ``benchmarks/cityday_chicago.toml`` (a copy of ``../shared/anchors/cityday/chicago_1m.toml``:
Chicago-Sketch, ``--persons`` synthetic persons with calls from presence and traffic from their
car legs, 20 stations x 3 ambulances, 8 hospitals, units as vehicles of the traffic, 10 %
re-routing, sync 60 s; ``../shared`` must sit beside the project).

Each configuration runs in a fresh process, as ``twin run scenario --out x.h5`` would: import,
load the scenario (city, zones, population synthesis, routes), simulate, write the results file.
Reported per configuration: the wall time from process start (``total``), of it the imports,
the scenario's load, the simulation and the writing, and inside them the parts below (each
exclusive of the parts nested in it, so the shares add up), with the peak RSS of the process
after its first cycle (one run, as ``twin run`` has it).
``--repeat N`` runs the load-simulate-write cycle N times in the process and reports the fastest
after the first (numba's cache loaded, files in the page cache); the first is printed too.

Parts: ``synthesis`` (the synthetic population), ``zones`` (the city's zone weights from its
TNTP trips), ``kernel`` (the traffic kernel, ``simulate_queue``), ``insert`` (units' legs put
into the traffic), ``reroute`` (the 10 % re-routing and the units' live re-routing),
``unit routes`` (the units' travel-time queries to calls and hospitals), ``presence`` (where
the population is, for calls), ``write pop.`` / ``write traffic`` (their results sections).

Configurations: ``--persons`` (default 100,000 and 1,000,000) x the coupling (units as vehicles;
with ``--leg-start`` also legs timed at their start, ``ambulances_in_traffic = false``) x the
machine (idle; with ``--busy`` also with one CPU-bound process beside the run).

Usage::

    python benchmarks/bench_cityday.py [--persons 100000 1000000] [--leg-start] [--busy] [--repeat 3]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()
HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "cityday_chicago.toml"

#: (label, module, qualified name) of the functions timed in the child, exclusive of each other.
PARTS = [
    ("synthesis", "twin.agents.population_synth", "synthesize_population"),
    ("zones", "twin.agents.population_zones", "default_zone_table"),
    ("kernel", "twin.traffic_engine", "TrafficEngine._kernel"),
    ("insert", "twin.traffic_engine", "TrafficEngine.insert_vehicle"),
    ("reroute", "twin.traffic_engine", "TrafficEngine._reroute"),
    ("unit routes", "twin.graph", "City.travel_times"),
    ("unit routes", "twin.graph", "City.travel_times_to"),
    ("presence", "twin.agents.population_model", "Population.location_at"),
    ("presence", "twin.agents.population_model", "Population.present_by_zone"),
    ("write pop.", "twin.agents.population_model", "Population.write"),
    ("write traffic", "twin.traffic_result", "TrafficResult.write"),
]
STAGES = ["load", "simulate", "write"]


class Timers:
    """Exclusive wall time per label: time in a nested timed call counts for the inner label only."""

    def __init__(self):
        self.spent, self.stack = {}, []

    def wrap(self, label, fn):
        def timed(*a, **kw):
            t0 = time.perf_counter()
            self.stack.append(0.0)
            try:
                return fn(*a, **kw)
            finally:
                inner = self.stack.pop()
                dt = time.perf_counter() - t0
                self.spent[label] = self.spent.get(label, 0.0) + dt - inner
                if self.stack:
                    self.stack[-1] += dt
        timed.__wrapped__ = fn
        return timed


def _install(timers):
    import importlib

    for label, mod, qual in PARTS:
        m = importlib.import_module(mod)
        owner, name = m, qual
        if "." in qual:
            cls, name = qual.split(".")
            owner = getattr(m, cls)
        fn = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        timed = timers.wrap(label, fn)
        setattr(owner, name, timed)
        if owner is m:                   # and wherever the function was imported by name
            for other in list(sys.modules.values()):
                if getattr(other, "__name__", "").startswith("twin") and getattr(other, name, None) is fn:
                    setattr(other, name, timed)


def child(persons, leg_start, repeat):
    t0 = time.perf_counter()
    import twin.agents.population  # noqa: F401  (so that its imported names are patched too)
    import twin.runner as runner
    from twin.flows import Simulation

    imports_s = time.perf_counter() - t0
    timers = Timers()
    _install(timers)
    runner.write_run = timers.wrap("write", runner.write_run)
    Simulation.run = timers.wrap("simulate", Simulation.run)
    overrides = [f"population.persons={persons}"]
    if leg_start:
        overrides.append("traffic.ambulances_in_traffic=false")
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_cityday_") as tmp:
        for _ in range(repeat):
            timers.spent.clear()
            t1 = time.perf_counter()
            sc = timers.wrap("load", runner.load_scenario)(SCENARIO, overrides=overrides)
            res = runner.run(sc, out=Path(tmp) / "day.h5", overwrite=True)
            runs.append(dict(run_s=time.perf_counter() - t1, parts=dict(timers.spent),
                             kpis={k: res.kpis[k] for k in ("n_calls", "response_mean_s", "traffic_vht")
                                   if k in res.kpis}))
            del sc, res                      # (so that the next cycle's peak is not on top of this one's)
            if len(runs) == 1:                   # the peak of one run (later cycles add the allocator's slack)
                first_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(imports_s=imports_s, total_s=time.perf_counter() - T_START, runs=runs, peak_rss_mb=first_kb / 1024)


def _busy():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _run_child(persons, leg_start, busy, repeat):
    hog = _busy() if busy else None
    try:
        out = subprocess.run([sys.executable, __file__, "--child", str(persons), str(int(leg_start)), str(repeat)],
                             capture_output=True, text=True, check=False)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if out.returncode != 0:
        raise SystemExit(f"child failed ({persons:,} persons):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _best(r):
    """The fastest cycle after the first (numba's cache and the files warm), else the only one."""
    runs = r["runs"][1:] or r["runs"]
    return min(runs, key=lambda c: c["run_s"])


def _row(name, r):
    last = _best(r)
    p = last["parts"]
    nested = {label for label, _, _ in PARTS}
    stage = {s: p.get(s, 0.0) for s in STAGES}
    # a stage's exclusive time plus the parts nested in it
    for label in nested:
        home = {"synthesis": "load", "zones": "load", "write pop.": "write", "write traffic": "write"}.get(label,
                                                                                                         "simulate")
        stage[home] += p.get(label, 0.0)
    sim = stage["simulate"]
    line = (f"| {name} | {r['total_s']:.1f} | {r['imports_s']:.1f} | {last['run_s']:.1f} | {stage['load']:.1f} | "
            f"{sim:.1f} | {stage['write']:.1f} | ")
    line += " | ".join(f"{p.get(label, 0.0):.2f}" for label in _labels()) + " | "
    line += f"{100 * p.get('kernel', 0.0) / sim:.0f} % | {r['peak_rss_mb']:.0f} |" if sim else "- | |"
    return line


def _labels():
    out = []
    for label, _, _ in PARTS:
        if label not in out:
            out.append(label)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(child(int(argv[1]), bool(int(argv[2])), int(argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--leg-start", action="store_true", help="also time the day with legs timed at their start")
    ap.add_argument("--busy", action="store_true", help="also time each day with a CPU-bound process beside it")
    ap.add_argument("--repeat", type=int, default=3,
                    help="cycles per process; the fastest after the first is reported (default 3)")
    ap.add_argument("--json", help="also write every figure to this JSON file")
    args = ap.parse_args(argv)
    configs = [(n, ls, busy) for n in args.persons for ls in ([False, True] if args.leg_start else [False])
               for busy in ([False, True] if args.busy else [False])]
    print(f"# coupled city day, Chicago-Sketch; {os.cpu_count()} CPUs; seconds (the fastest of cycles 2..{args.repeat} "
          f"in each process; total = from process start, all cycles)")
    labels = _labels()
    print("| day | total | imports | run | load | simulate | write | " + " | ".join(labels)
          + " | kernel / simulate | peak RSS MB |")
    print("|---" * (9 + len(labels)) + "|")
    every = []
    for n, ls, busy in configs:
        name = f"{n:,} persons, {'legs at start' if ls else 'units as vehicles'}{', busy machine' if busy else ''}"
        r = _run_child(n, ls, busy, args.repeat)
        every.append(dict(persons=n, leg_start=ls, busy=busy, **r))
        print(_row(name, r), flush=True)
        if len(r["runs"]) > 1:
            print(f"|   first cycle: run {r['runs'][0]['run_s']:.1f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps(every, indent=1))


if __name__ == "__main__":
    main()
