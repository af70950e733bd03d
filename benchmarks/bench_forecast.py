"""Forecasts: how long ``twin forecast`` takes, and how good its members are against held-out truths.

1. **Timing** (``--time``): ``hefei_flood`` is run to its end with a snapshot at 06:00, then a
   forecast of ``--members`` members (default 40) for 3, 6, 24 and 48 h (cut at the day's end)
   runs from it in this process, and once more on a local Dask cluster of ``--workers``
   processes (default 2). Reported: wall time of each (s) and per member.
2. **Verification** (``--verify``): synthetic truths (``twin.forecast_verify``): ``--truths``
   runs of hefei_day's EMS (no traffic) at 4x its call rate, each with its own call-rate factor
   drawn from the members' prior and its own seed; forecasts from each truth's 06:00 and 09:00
   states (the nominal rate, the truth's calls so far assimilated, every member perturbed) for
   3, 6 and 12 h. Reported per horizon: the mean CRPS of the calls per district (calls) and the
   share of (truth, issue, horizon, district) cases inside the members' 90 % interval; and the
   CRPS of the fixed window 09:00-12:00 from each issue time.

How to read them: CRPS is the forecast's error in the forecast quantity's units (for one member
it is the absolute error); smaller is better, and a window holding more calls has a larger
one. An honest 90 % interval holds the truth in about 90 % of cases; far fewer means the
members are too sure, nearly all that they are too spread.

Usage::

    python benchmarks/bench_forecast.py [--time] [--verify] [--members 40] [--truths 8] [--workers 2]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timing(members, workers, tmp):
    from twin.forecast import forecast
    from twin.runner import run

    t = time.perf_counter()
    run("hefei_flood", out=tmp / "flood.h5", snapshot_at_s=[21600.0])
    print(f"hefei_flood day with a snapshot at 06:00: {time.perf_counter() - t:.1f} s")
    hs = [3 * 3600.0, 6 * 3600.0, 24 * 3600.0, 48 * 3600.0]
    for label, dask in (("in this process", False), (f"Dask, {workers} local workers", True)):
        t = time.perf_counter()
        res = forecast(f"{tmp / 'flood.h5'}@06:00", members=members, horizons_s=hs, seed=0, dask=dask,
                       workers=workers)
        dt = time.perf_counter() - t
        print(f"forecast, {members} members, {label}: {dt:.1f} s ({dt / members:.2f} s per member)")
    print("\n".join(res.lines()))


def verify(members, truths, tmp):
    from twin.forecast_verify import verify_forecasts

    text = (HERE.parent / "scenarios" / "hefei_day.toml").read_text()
    text = text[:text.index("[traffic]")]
    t = time.perf_counter()
    v = verify_forecasts(text, truths=truths, issue_times_s=[21600.0, 32400.0],
                         horizons_s=[10800.0, 21600.0, 43200.0], members=members, workdir=tmp,
                         overrides=["calls.rate_per_1000_per_day=2.6"], target_s=(32400.0, 43200.0))
    print("\n".join(v.lines()))
    print(f"({time.perf_counter() - t:.0f} s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--members", type=int, default=40)
    ap.add_argument("--truths", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    both = not (args.time or args.verify)
    with tempfile.TemporaryDirectory() as d:
        if args.time or both:
            timing(args.members, args.workers, Path(d))
        if args.verify or both:
            verify(args.members, args.truths, Path(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
