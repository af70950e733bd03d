"""Evacuation at city scale: 100,000 people out of central Chicago-Sketch, simulated through the
traffic model, against the network's quickest clearance (the time-expanded max-flow bound).

Workload (``../shared/data/tntp/Chicago-Sketch``): the ``--zones`` TNTP zones nearest zone 1's
centroid are ordered out at 01:00, ``--persons`` people shared equally between them, everyone
complying, 2.5 to a car (40,000 cars for 100,000 people), leaving after Rayleigh delays of mean
``--delay`` minutes; ``--shelters`` shelters at the nodes ranked 20th, 40th ... by free-flow time
from zone 1, each taking ``--capacity`` people. One ambulance station and one hospital keep
the EMS flow quiet (one call an hour). No background traffic. Re-routing: ``--reroute`` of the
drivers every 5 minutes.

Reported: the run's wall time and the bound's, cars, persons sheltered, the simulated
clearance (50/90/100 % of the cars, from the order) and the bound's, and their ratio. The bound
assumes everyone ready at the order; ``--delay 0`` compares like with like.

Usage::

    python benchmarks/bench_evacuation.py [--persons 100000] [--zones 40] [--delay 30] [--reroute 0.2]
"""

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
NET = HERE.parent.parent / "shared" / "data" / "tntp" / "Chicago-Sketch" / "ChicagoSketch_net.tntp"


def scenario(args):
    import twin

    city = twin.load_city(str(NET))
    z = np.asarray(city.zone_of_node)
    ids = np.asarray(city.node_ids)
    centre = int(np.flatnonzero(z == 0)[0])
    t = city.travel_times([ids[centre]])[0]
    zone_nodes = np.flatnonzero(z >= 0)
    near = zone_nodes[np.argsort(t[zone_nodes], kind="stable")[:args.zones]]
    zones = [int(city.zone_ids[z[n]]) for n in near]
    order = np.argsort(t, kind="stable")
    candidates = [n for n in order if z[n] < 0 and np.isfinite(t[n])]
    shelters = [int(ids[candidates[20 * (k + 1)]]) for k in range(args.shelters)]
    each = args.persons / len(zones)
    persons = ", ".join(f'"{zid}" = {each:.0f}' for zid in zones)
    shelter_tables = "\n".join(f'[[shelters]]\nname = "s{k}"\nnode = {n}\ncapacity = {args.capacity}\n'
                               for k, n in enumerate(shelters))
    return f"""
[city]
name = "{NET}"

[run]
until_s = {args.hours * 3600.0}
seed = 1

[calls]
rate_per_h = 1.0

[[call_types]]
name = "p1"
priority = 1
on_scene = 600.0

[[stations]]
name = "st"
node = {int(ids[centre])}
ambulances = 1

[[hospitals]]
name = "h"
node = {int(ids[centre])}
beds = 10

[traffic]
random_trips = 0
reroute_share = {args.reroute}
ambulances_in_traffic = false

[evacuation]
zones = [{", ".join(map(str, zones))}]
warning_s = 3600.0
compliance = 1.0
persons_per_vehicle = 2.5
mean_delay_s = {args.delay * 60.0}
persons = {{ {persons} }}

{shelter_tables}
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=float, default=100_000)
    ap.add_argument("--zones", type=int, default=40)
    ap.add_argument("--shelters", type=int, default=10)
    ap.add_argument("--capacity", type=float, default=15_000)
    ap.add_argument("--delay", type=float, default=30.0, help="mean departure delay, minutes")
    ap.add_argument("--reroute", type=float, default=0.2)
    ap.add_argument("--hours", type=float, default=12.0)
    args = ap.parse_args(argv)
    from twin.runner import load_scenario, run

    text = scenario(args)
    t0 = time.perf_counter()
    sc = load_scenario(text)
    t_plan = time.perf_counter() - t0
    res = run(sc, seed=1)
    wall = time.perf_counter() - t0
    k = res.kpis
    bound = sc.plans["evacuation"].bound
    print(f"Chicago-Sketch: {args.persons:,.0f} persons in {args.zones} zones, {int(k['evacuation_cars']):,} cars, "
          f"{args.shelters} shelters, mean delay {args.delay:g} min, re-route share {args.reroute:g}")
    print(f"wall {wall:.1f} s (load and plan {t_plan:.1f} s, of which the bound {bound.solve_time_s:.1f} s)")
    print(f"sheltered {k['evacuation_persons_sheltered']:,.0f}, still travelling "
          f"{k['evacuation_persons_travelling']:,.0f}, without a place {k['evacuation_persons_no_shelter']:,.0f}")
    print(f"{'share':>6} {'simulated min':>14} {'bound min':>10} {'ratio':>6}")
    for p in (50, 90, 100):
        s, b = k[f"evacuation_clearance_{p}_s"] / 60, k[f"evacuation_bound_{p}_s"] / 60
        print(f"{p:>5}% {s:>14.1f} {b:>10.1f} {s / b:>6.2f}")
    t = res.traffic.kpis
    print(f"traffic: forced moves {t['forced_moves']:,}, teleports {t['teleports']:,}")


if __name__ == "__main__":
    main()
