"""Access and equity: twin.access against pysal ``access`` and ``inequality`` on the same inputs, in one run.

Instance: the embedded Hefei city with the ``hefei_people`` synthetic population (50,000
persons): demand is the persons aged 65 or more living at each node, supply ``--centres``
care centres of 20 to 60 places at nodes drawn with a fixed seed, travel times the network's
walking times (link length / 1.2 m/s) in seconds. Measures: 2SFCA with a 15-minute catchment,
the enhanced 2SFCA with Luo & Qi's 1 / 0.68 / 0.22 bands (5 / 10 / 15 min), then the Gini and
Theil (split central / peripheral district) of the nodes' 2SFCA accessibility, one value per
older person. ``--scale k`` repeats the demand locations k times (k x 155 rows) for a larger
timing instance.

Reported: the largest difference between twin's and the peer's values (they must agree to
floating point) and each one's wall time (median of ``--repeat`` runs), with the ratio
peer / twin. The peers are ``bench`` extras: ``pip install -e ".[bench]"``; without them
twin's rows are printed alone.

Usage::

    python benchmarks/bench_access.py [--centres 12] [--scale 1] [--repeat 5] [--no-peers]
"""

import argparse
import statistics
import time
import warnings

import numpy as np


def instance(n_centres, scale):
    from twin.runner import load_scenario

    sc = load_scenario("hefei_people")
    pop, city = sc.plans["population"].population, sc.city
    old = np.asarray(pop.age) >= 65
    home = np.asarray(pop.home_node_idx)[old]
    demand = np.bincount(home, minlength=city.n_nodes).astype(np.float64)
    rng = np.random.default_rng(7)
    sites = rng.choice(city.n_nodes, n_centres, replace=False)
    supply = rng.integers(20, 61, n_centres).astype(np.float64)
    walk_s = np.asarray(city.length_m, dtype=np.float64) / 1.2
    ids = np.asarray(city.node_ids)
    times = city.travel_times(ids, ids[sites], link_cost_s=walk_s)
    central = np.asarray(city.zone_of_node) == list(city.zone_ids).index(5)
    if scale > 1:
        demand, times, central = np.tile(demand, scale), np.tile(times, (scale, 1)), np.tile(central, scale)
    return demand, supply, times, central


def timed(fn, repeat):
    out, walls = None, []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return out, statistics.median(walls)


def twin_measures(demand, supply, times, central):
    from twin.access import LUO_QI_BANDS_S, LUO_QI_WEIGHTS, gini, theil_decomposition, two_step_fca

    a, _ = two_step_fca(demand, supply, times, 900.0)
    e, _ = two_step_fca(demand, supply, times, bands_s=LUO_QI_BANDS_S, weights=LUO_QI_WEIGHTS)
    keep = demand > 0
    g = gini(a[keep], demand[keep])
    d = theil_decomposition(a[keep], central[keep], demand[keep])
    return {"2sfca": a, "e2sfca": e, "gini": g, "theil_between": d["between"], "theil_within": d["within"]}


def peer_measures(demand, supply, times, central):
    import pandas as pd
    from access import Access, weights
    from inequality.gini import Gini
    from inequality.theil import TheilD

    n_d, n_s = times.shape
    dem = pd.DataFrame({"id": np.arange(n_d), "pop": demand})
    sup = pd.DataFrame({"id": np.arange(n_s), "s": supply})
    i, j = np.nonzero(np.isfinite(times))
    cost = pd.DataFrame({"o": i, "d": j, "c": times[i, j] / 60.0})
    acc = Access(demand_df=dem, demand_index="id", demand_value="pop", supply_df=sup, supply_index="id",
                 supply_value="s", cost_df=cost, cost_origin="o", cost_dest="d", cost_name="c")
    a = acc.two_stage_fca(name="a", max_cost=15, normalize=False)["a_s"].reindex(range(n_d)).fillna(0).to_numpy()
    step = weights.step_fn({5: 1.0, 10: 0.68, 15: 0.22})
    e = acc.enhanced_two_stage_fca(name="e", max_cost=15, normalize=False, weight_fn=step)["e_s"] \
        .reindex(range(n_d)).fillna(0).to_numpy()
    keep = demand > 0
    per_person = np.repeat(a[keep], demand[keep].astype(np.int64))      # pysal is unweighted: one row per person
    groups = np.repeat(central[keep].astype(int), demand[keep].astype(np.int64))
    d = TheilD(per_person, groups)
    return {"2sfca": a, "e2sfca": e, "gini": Gini(per_person).g, "theil_between": float(np.ravel(d.bg)[0]),
            "theil_within": float(np.ravel(d.wg)[0])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--centres", type=int, default=12)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)
    inputs = instance(args.centres, args.scale)
    print(f"hefei_people 65+: {int(inputs[0].sum()):,} persons at {len(inputs[0]):,} demand rows, "
          f"{args.centres} centres ({int(inputs[1].sum())} places), walking times")
    ours, t_ours = timed(lambda: twin_measures(*inputs), args.repeat)
    peer, t_peer = None, None
    if not args.no_peers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer, t_peer = timed(lambda: peer_measures(*inputs), args.repeat)
        except ImportError as exc:
            print(f"(peers left out: {exc}; pip install -e \".[bench]\")")
    print(f"{'measure':<14} {'twin':>14} {'peer':>14} {'max |diff|':>11}")
    for k, v in ours.items():
        shown = lambda x: "-" if x is None else (f"{x:.6f}" if np.ndim(x) == 0 else f"mean {np.mean(x):.6f}")  # noqa
        diff = "-" if peer is None else f"{float(np.max(np.abs(np.asarray(v) - np.asarray(peer[k])))):.1e}"
        print(f"{k:<14} {shown(v):>14} {shown(None if peer is None else peer[k]):>14} {diff:>11}")
    ratio = "" if t_peer is None else f", peer {t_peer * 1e3:.1f} ms, peer / twin {t_peer / t_ours:.0f}x"
    print(f"wall (all five measures, median of {args.repeat}): twin {t_ours * 1e3:.2f} ms{ratio}")


if __name__ == "__main__":
    main()
