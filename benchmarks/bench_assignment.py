"""Static user equilibrium (bi-conjugate and plain Frank-Wolfe) on the TNTP networks with best-known solutions.

For Sioux Falls, Anaheim and Chicago-Sketch (``../shared/data/tntp``): iterations and
wall time to reach relative gaps 1e-4 and 1e-5, and the TSTT error against the
best-known TSTT in ``../shared/data/README.md``. Chicago-Sketch routes on the README's
generalised cost (toll 0.02 min/cent, distance 0.04 min/mile). The first run of each
network is discarded (kernel compile or cache load).

Usage::

    python benchmarks/bench_assignment.py [--shared ../shared/data]
"""

import argparse
import time
from pathlib import Path


import twin
from twin.assignment import static_assignment, tntp_demand
from twin.data.tntp import read_tntp_trips

HERE = Path(__file__).resolve().parent
CASES = {  # folder/stem, time unit (s), best-known TSTT (file time unit x veh), generalised cost
    "SiouxFalls": ("SiouxFalls/SiouxFalls", 36.0, 7_480_225.345, False),
    "Anaheim": ("Anaheim/Anaheim", 60.0, 1_419_913.851, False),
    "Chicago-Sketch": ("Chicago-Sketch/ChicagoSketch", 60.0, 18_371_027.72, True),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    args = ap.parse_args()
    root = Path(args.shared) / "tntp"
    print("| network | method | target gap | iterations | final gap | wall s | TSTT rel. error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, (stem, unit_s, tstt_ref, generalised) in CASES.items():
        city = twin.load_city(root / f"{stem}_net.tntp")
        demand = tntp_demand(city, read_tntp_trips(root / f"{stem}_trips.tntp"))
        extra = None
        if generalised:
            extra = 0.02 * 60.0 * city.link_attrs["toll"] + 0.04 * 60.0 / 1609.344 * city.length_m
        static_assignment(city, demand, max_iter=2, extra_cost_s=extra)  # warm-up
        for method, gaps in (("bfw", (1e-4, 1e-5)), ("fw", (1e-4,))):
            for gap in gaps:
                t0 = time.perf_counter()
                res = static_assignment(city, demand, method=method, rel_gap=gap, max_iter=3000, extra_cost_s=extra)
                wall = time.perf_counter() - t0
                err = (res.tstt_veh_s / unit_s - tstt_ref) / tstt_ref
                print(f"| {name} | {method} | {gap:g} | {res.iterations} | {res.rel_gap:.2e} | {wall:.2f} | "
                      f"{err:+.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
