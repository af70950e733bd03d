"""Checkpoints: what ``--checkpoint-every`` costs on the coupled city day, and what a resume saves.

Instance: ``benchmarks/cityday_chicago.toml`` (the [speed] issue's coupled city day on
Chicago-Sketch: ``--persons`` synthetic persons, default 1,000,000, calls from presence and
traffic from their car legs, 20 stations x 3 ambulances as vehicles, 8 hospitals, 10 %
re-routing; ``../shared`` must sit beside the project).

Runs, in one process: a warm-up run (so that every timed run finds numba's cache and the city
loaded), then ``--repeat`` times the day without checkpoints followed by the day with a
checkpoint every ``--every`` (default 1h: 23 checkpoints), then a resume from the checkpoint at
``--resume-at`` (default 18:00). Reported: wall time of each (the best of ``--repeat``), the
overhead in % of the plain run (best against best; and each pair of runs in turn, sorted, with
their median), the time spent taking and writing the states (in the last checkpointed run),
the size of the last checkpoint, and whether the resumed results equal the uninterrupted
run's (dataset by dataset outside ``/meta``).

Usage::

    python benchmarks/bench_checkpoint.py [--persons 1000000] [--every 1h] [--resume-at 18h] [--repeat 1]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "cityday_chicago.toml"


def main(argv=None):
    from twin.units import parse_duration_s

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=1_000_000)
    ap.add_argument("--every", default="1h")
    ap.add_argument("--resume-at", default="18h")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs of each kind (the best is reported)")
    args = ap.parse_args(argv)
    every, at = parse_duration_s(args.every), parse_duration_s(args.resume_at)
    sys.path.insert(0, str(HERE.parent / "tests" / "scenarios"))
    from digest import digests

    import twin.checkpoint as ck
    import twin.runner as runner
    from twin.runner import load_scenario, resume, run

    scenario = load_scenario(SCENARIO, overrides=[f"population.persons={args.persons}"])
    spent = {"states_s": 0.0, "write_s": 0.0, "n": 0, "bytes": 0}
    write = ck.write_checkpoint

    def timed_write(path, **kw):
        t0 = time.perf_counter()
        out = write(path, **kw)
        spent["write_s"] += time.perf_counter() - t0
        spent["n"] += 1
        spent["bytes"] = os.path.getsize(out)
        if abs(kw["time_s"] - at) < 1e-6:
            shutil.copy(out, str(out) + ".kept")
        return out

    ck.write_checkpoint = timed_write
    snap = runner.Simulation.snapshot

    def timed_snapshot(self):
        t0 = time.perf_counter()
        out = snap(self)
        spent["states_s"] += time.perf_counter() - t0
        return out

    runner.Simulation.snapshot = timed_snapshot
    tmp = Path(tempfile.mkdtemp(prefix="bench_ckpt_"))
    try:
        run(scenario, out=tmp / "warm.h5")
        plain_s, ck_s = [], []
        for _ in range(args.repeat):            # interleaved: a slow spell of the machine hits both kinds
            plain_s.append(_wall(lambda: run(scenario, out=tmp / "plain.h5", overwrite=True)))
            spent.update(states_s=0.0, write_s=0.0, n=0)
            ck_s.append(_wall(lambda: run(scenario, out=tmp / "ck.h5", overwrite=True, checkpoint_every_s=every)))
        during = dict(spent)                    # (the resume below checkpoints too)
        plain = min(plain_s)
        kept = Path(str(tmp / "ck.h5") + ".partial.kept")
        t0 = time.perf_counter()
        resume(kept, overwrite=True)
        res_s = time.perf_counter() - t0
        same = digests(tmp / "ck.h5") == digests(tmp / "plain.h5")
        best = min(ck_s)
        print(f"city day, Chicago-Sketch, {args.persons:,} persons ({os.cpu_count()} cores)")
        print(f"{'run':<44} {'wall s':>8}")
        print(f"{'without checkpoints':<44} {plain:8.2f}")
        pairs = sorted(100.0 * (c - p) / p for p, c in zip(plain_s, ck_s))
        print(f"{f'checkpoint every {args.every} ({during[chr(110)]} checkpoints)':<44} {best:8.2f}"
              f"   overhead {100.0 * (best - plain) / plain:+.1f} % (best vs best); run by run "
              f"{', '.join(f'{x:+.1f}' for x in pairs)} %, median {pairs[len(pairs) // 2]:+.1f} %")
        print(f"{'  taking the states':<44} {during['states_s']:8.2f}")
        print(f"{'  writing them (HDF5, fsync, rename)':<44} {during['write_s']:8.2f}"
              f"   {during['bytes'] / 1e6:.1f} MB the last")
        print(f"{f'resume from {args.resume_at} to the end':<44} {res_s:8.2f}   results identical: {same}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _wall(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
