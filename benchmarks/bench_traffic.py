"""Mesoscopic traffic: twin against UXsim (and SUMO meso) on the shared grid workload, in one run.

Workload: ``../shared/anchors/traffic/gen_workload.py`` (seed 42): n x n grids of 500 m,
50 km/h, 2-lane links; N trips with uniform OD and departures in the first hour. Each
engine runs in its own child process so its peak RSS is its own (wait4 rusage, as the
anchor scripts measure it). Peers are run through the anchor's own scripts when their
package is installed (``pip install -e ".[bench]"``): UXsim's C++ engine (``deltan`` 5,
its default DUO route choice) always, SUMO meso only with ``--sumo`` (minutes per case):
SUMO's ``duarouter`` fixed shortest paths (``meso``), the same with every driver at the speed
limit (``meso-speeddev0``: SUMO's default speed factor N(1, 0.1) off, as twin and UXsim drive)
and its re-routing device on every vehicle (``meso-reroute``, period 300 s). With ``--sumo`` twin also runs on duarouter's exact routes:
fixed (row "twin (SUMO routes)", beside SUMO meso) and with every vehicle re-routing on live
times every 300 s (row "twin (SUMO routes, re-route 1)", beside meso-reroute). The same paths
through both models separate the route effect from the model effect.

twin: capacity 1,800 veh/h/lane (the value of the shared speed-limit probe), jam density
one vehicle per 7.5 m of lane, dt 1 s, fixed least free-flow-time routes.

Reported per case: simulation seconds (twin: the kernel loop, as UXsim's
``exec_simulation`` time; routing apart), trips per second of simulation, end-to-end
seconds (twin: load, validation, routing, simulation, assembling results; peers: the
whole child process), peak RSS, completed trips, mean / p90 travel time (arrival − planned
departure) and veh-km. Compile time is measured apart (first run in a fresh numba cache).

Usage::

    python benchmarks/bench_traffic.py [--cases 10:10000,30:50000,30:200000] [--no-peers] [--sumo] [--chicago]
                                       [--reroute 0.2] [--sumo-modes meso,meso-reroute] [--repeat 3]

With ``--repeat K`` twin's and UXsim's children run K times each (a fresh process every
time, as the machine is noisy): the table gives the median simulation seconds with the
range, and the ratio of the medians.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ANCHORS = HERE.parent.parent / "shared" / "anchors" / "traffic"


def run_child(cmd, env=None):
    """Run a child process; return (rc, wall_s, peak_rss_mb, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, ru.ru_maxrss / 1024.0, out


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    return None


def sumo_homogeneous(workdir, n, N, env):
    """SUMO meso on the anchor's net and duarouter routes with every driver at the speed limit.

    SUMO draws each vehicle's speed factor from N(1, 0.1) by default (``speedDev``); twin and
    UXsim drive every vehicle at the link speed. ``--default.speeddev 0`` makes SUMO do the
    same, so the light-traffic comparison is like for like. Needs the anchor's ``meso`` run
    first (it builds the net and routes). Travel time = duration + departDelay, as the anchor.
    """
    import xml.etree.ElementTree as ET

    import numpy as np

    d = Path(workdir) / "sumo" / f"grid{n}"
    net, rou, ti = d / "grid.net.xml", d / f"N{N}.rou.xml", d / f"N{N}.meso-speeddev0.tripinfo.xml"
    base = {"peer": "sumo-meso-speeddev0", "grid": n, "trips": N}
    if not (net.exists() and rou.exists()):
        return dict(base, error="run the 'meso' mode first (it builds the net and routes)")
    sys.path.insert(0, str(ANCHORS))
    import bench_sumo

    rc, wall, rss, out = run_child([bench_sumo.sumo_bin("sumo"), "-n", str(net), "-r", str(rou), "--mesosim", "true",
                                    "--tripinfo-output", str(ti), "--duration-log.statistics", "true",
                                    "--no-step-log", "true", "--no-warnings", "true", "--seed", "42",
                                    "--default.speeddev", "0"], env=env)
    if rc != 0:
        return dict(base, error=out[-2000:])
    tt, length = [], 0.0
    for _, el in ET.iterparse(ti, events=("end",)):
        if el.tag == "tripinfo":
            tt.append(float(el.get("duration")) + float(el.get("departDelay", 0)))
            length += float(el.get("routeLength"))
            el.clear()
    tt = np.array(tt)
    import re

    m = re.search(r"Duration:\s*([0-9.]+)\s*s", out) or re.search(r"Duration:\s*([0-9]+)ms", out)
    sim_s = (float(m.group(1)) / (1000 if "ms" in m.group(0) else 1)) if m else wall
    return dict(base, sim_s=round(sim_s, 2), trips_per_sim_s=round(N / sim_s), peak_rss_mb=round(rss),
                completed=len(tt), mean_tt_s=round(float(tt.mean()), 1), p90_tt_s=round(float(np.percentile(tt, 90)), 1),
                veh_km=round(length / 1000))


def repeated(run, base, k):
    """Run a child ``k`` times; its record with the median ``sim_s`` (and the range as ``sim_s_range``)."""
    recs = []
    for _ in range(max(1, k)):
        rc, wall, rss, out = run()
        rec = last_json(out)
        if rec is None:
            return dict(base, error=out[-2000:])
        rec.update(peak_rss_mb=round(rss), process_wall_s=round(wall, 2))
        recs.append(rec)
    recs.sort(key=lambda r: r["sim_s"])
    med = dict(recs[len(recs) // 2])
    if len(recs) > 1:
        med["sim_s_range"] = f"{recs[0]['sim_s']}-{recs[-1]['sim_s']}"
    return med


def read_sumo_routes(city, trips, rou_xml):
    """duarouter's route per trip (vehicle ``t<trip_id>``) as twin route arrays (offsets, link indices)."""
    import re

    import numpy as np

    text = Path(rou_xml).read_text()
    edges = {int(m.group(1)): m.group(2).split()
             for m in re.finditer(r'<vehicle id="t(\d+)"[^>]*>\s*<route edges="([^"]*)"', text)}
    node = {int(v): i for i, v in enumerate(city.node_ids)}
    link = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(city.link_from_idx, city.link_to_idx))}
    off, links = [0], []
    for t in trips["trip_id"]:
        for e in edges[int(t)]:  # edge ids are l<from>_<to> (the anchor's netconvert input)
            a, b = e[1:].split("_")
            links.append(link[(node[int(a)], node[int(b)])])
        off.append(len(links))
    return np.asarray(off, dtype=np.int64), np.asarray(links, dtype=np.int64)


def twin_one(workdir, n, N, reroute_share=0.0, routes_xml="", warm_only=False):
    """Child-process body: run twin on one case and print one JSON line.

    With ``routes_xml`` (a duarouter route file) every trip follows duarouter's route instead
    of twin's own least free-flow-time tree route.
    """
    import numpy as np
    import pandas as pd

    import twin
    from twin import traffic as T
    from twin.traffic_routes import _routes

    t0 = time.perf_counter()
    city = twin.load_city(Path(workdir) / f"grid{n}_links.csv")
    trips = pd.read_csv(Path(workdir) / f"trips_grid{n}_N{N}_s42.csv").rename(columns={"dest": "destination"})
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    twin.simulate_traffic(city, trips.iloc[:50], until_s=3600)  # compile or load the kernels' cache
    t_warm = time.perf_counter() - t0
    if warm_only:
        print(json.dumps({"first_call_s": round(t_warm, 2)}))
        return
    t0 = time.perf_counter()
    o, d, _ = T.read_trips(city, trips)
    busiest = int(np.bincount(_routes(city, o, d)[1], minlength=city.n_links).max())  # planned load
    t_route = time.perf_counter() - t0
    t0 = time.perf_counter()
    if routes_xml:
        # duarouter's paths (parsing them is not timed as routing); horizon long enough to clear jams
        t_parse = time.perf_counter()
        routes = read_sumo_routes(city, trips, routes_xml)
        t0 += time.perf_counter() - t_parse
        eng = T.TrafficEngine(city, trips, until_s=8 * 3600, routes=routes, reroute_share=reroute_share,
                              reroute_interval_s=300.0)
        eng.run()
        res = eng.result()
    else:
        res = twin.simulate_traffic(city, trips, until_s=4 * 3600, reroute_share=reroute_share)
    t_total = time.perf_counter() - t0
    tt = res.trips["travel_time_s"].to_numpy()
    done = res.trips["status"].astype(str).to_numpy() == "arrived"
    t_sim = res.meta["kernel_s"]  # the simulation loop alone, as UXsim's exec_simulation time
    print(json.dumps({
        "peer": "twin", "grid": n, "trips": N, "load_s": round(t_load, 3), "first_call_s": round(t_warm, 2),
        "route_s": round(t_route, 3), "sim_s": round(t_sim, 3), "end_to_end_s": round(t_load + t_total, 3),
        "trips_per_sim_s": round(N / t_sim), "completed": int(done.sum()),
        "mean_tt_s": round(float(np.mean(tt[done])), 1), "p90_tt_s": round(float(np.percentile(tt[done], 90)), 1),
        "veh_km": round(res.kpis["vkt_veh_km"]), "ff_mean_tt_s": round(float(trips["ff_tt_s"].mean()), 1),
        "forced_moves": res.kpis["forced_moves"], "sim_end_time_s": res.kpis["simulated_s"],
        "reroute_share": reroute_share, "rerouted": res.kpis["rerouted"], "teleports": res.kpis["teleports"],
        "max_link_volume_veh": int(np.bincount(routes[1], minlength=city.n_links).max()) if routes_xml else busiest,
    }))


def chicago(shared, reroute_shares=(0.0, 0.2)):
    """Chicago-Sketch with its full TNTP demand spread over a 3-hour peak (routing included)."""
    import numpy as np

    import twin
    from twin.data.tntp import read_tntp_trips

    root = Path(shared) / "tntp" / "Chicago-Sketch"
    city = twin.load_city(root / "ChicagoSketch_net.tntp")
    tr = read_tntp_trips(root / "ChicagoSketch_trips.tntp")
    rng = np.random.default_rng(0)
    dem = tr["demand_veh_per_h"]
    # whole trips per OD pair: floor plus a Bernoulli draw of the fraction (expected total kept)
    n = np.floor(dem).astype(np.int64) + (rng.random(len(dem)) < dem - np.floor(dem))
    trips = {"origin": np.repeat(tr["origin_zone"], n), "destination": np.repeat(tr["destination_zone"], n)}
    trips["depart_s"] = rng.uniform(0.0, 3 * 3600.0, len(trips["origin"]))
    twin.simulate_traffic(city, {k: v[:100] for k, v in trips.items()}, until_s=600)   # compile / cache load
    print(f"\n## Chicago-Sketch: {city.n_nodes} nodes, {city.n_links} links, {len(trips['origin']):,} trips "
          f"(TNTP demand less {tr['intrazonal_dropped_trips']:,.0f} intrazonal) departing over 3 h, horizon 6 h")
    print("| re-route share | wall s (routing included) | kernel s | completed | en route at 6 h | mean TT s "
          "| congestion index | forced / teleports |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for share in reroute_shares:
        t0 = time.perf_counter()
        res = twin.simulate_traffic(city, trips, until_s=6 * 3600, reroute_share=share)
        wall = time.perf_counter() - t0
        k = res.kpis
        print(f"| {share} | {wall:.1f} | {res.meta['kernel_s']:.1f} | {k['completed']:,} | {k['en_route']:,} | "
              f"{k['mean_travel_time_s']:.0f} | {k['congestion_index']:.2f} | {k['forced_moves']} / {k['teleports']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chicago", action="store_true", help="also run Chicago-Sketch with its full TNTP demand")
    ap.add_argument("--cases", default="10:10000,10:50000,30:50000,30:200000")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--sumo", action="store_true", help="also run SUMO meso (slow: minutes per case)")
    ap.add_argument("--sumo-modes", default="meso,meso-speeddev0,meso-reroute",
                    help="SUMO runs with --sumo: meso (duarouter's fixed paths), meso-speeddev0 (the same with "
                         "every driver at the speed limit, as twin and UXsim) and/or meso-reroute")
    ap.add_argument("--workdir", default=None, help="workload folder (default: a temporary one)")
    ap.add_argument("--json", default=None, help="append one JSON record per run to this file")
    ap.add_argument("--reroute", type=float, default=0.0,
                    help="share of twin's vehicles re-routing every 300 s on live times (UXsim always runs DUO)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run twin's and UXsim's children this many times each; report the median sim s and the range")
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        twin_one(args.one[0], int(args.one[1]), int(args.one[2]), float(args.one[3]),
                 args.one[4] if len(args.one) > 4 else "", len(args.one) > 5)
        return 0
    if not (ANCHORS / "gen_workload.py").exists():
        print(f"no workload generator at {ANCHORS}; ../shared is needed", file=sys.stderr)
        return 2
    workdir = args.workdir or tempfile.mkdtemp(prefix="twin-traffic-")
    env = dict(os.environ, ANCHOR_WORKDIR=workdir)
    cases = [tuple(int(v) for v in c.split(":")) for c in args.cases.split(",")]
    # fresh numba cache: the first twin run compiles; the rest reuse it
    env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="twin-traffic-numba-")
    py = sys.executable
    for n, N in cases:
        subprocess.run([py, str(ANCHORS / "gen_workload.py"), str(n), str(N)], env=env, check=True,
                       capture_output=True)
    try:
        import uxsim  # noqa: F401
        have_uxsim = not args.no_peers
    except ImportError:
        have_uxsim = False
    records = []
    # compile the kernels into the fresh cache in a child of its own, so no measured child's peak
    # RSS includes LLVM's compile memory; the measured children load the cached kernels
    n0, N0 = cases[0]
    rc, wall, rss, out = run_child([py, __file__, "--one", workdir, str(n0), str(N0), "0", "", "warm"], env=env)
    warm = last_json(out) or {}
    for n, N in cases:
        shares = [0.0] + ([args.reroute] if args.reroute else [])
        for share in shares:
            rec = repeated(lambda: run_child([py, __file__, "--one", workdir, str(n), str(N), str(share)], env=env),
                           {"peer": "twin", "grid": n, "trips": N}, args.repeat)
            if "error" not in rec:
                rec["peer"] = f"twin (re-route {share:g})" if share else "twin (fixed routes)"
            records.append(rec)
        if have_uxsim:
            records.append(repeated(lambda: run_child([py, str(ANCHORS / "bench_uxsim.py"), "--one", str(n), str(N),
                                                        "5", "cpp"], env=env),
                                    {"peer": "uxsim-cpp", "grid": n, "trips": N}, args.repeat))
        if args.sumo:
            res_file = Path(workdir) / "results" / "sumo.jsonl"
            for mode in args.sumo_modes.split(","):
                if mode == "meso-speeddev0":
                    records.append(sumo_homogeneous(workdir, n, N, env))
                    continue
                rc, wall, rss, out = run_child([py, str(ANCHORS / "bench_sumo.py"), f"{n}:{N}:{mode}"], env=env)
                if rc == 0 and res_file.exists():
                    records.append(json.loads(res_file.read_text().strip().splitlines()[-1]))
                else:
                    records.append({"peer": f"sumo-{mode}", "grid": n, "trips": N, "error": out[-2000:]})
            # the same paths through twin: the route effect apart from the model effect. Fixed
            # (as SUMO meso) and with every vehicle re-routing every 300 s (as meso-reroute)
            rou = Path(workdir) / "sumo" / f"grid{n}" / f"N{N}.rou.xml"
            for share, label in ((0.0, "twin (SUMO routes)"), (1.0, "twin (SUMO routes, re-route 1)")):
                if not rou.exists() or ("meso-reroute" if share else "meso") not in args.sumo_modes.split(","):
                    continue
                rc, wall, rss, out = run_child([py, __file__, "--one", workdir, str(n), str(N), str(share), str(rou)],
                                               env=env)
                rec = last_json(out) or {"peer": "twin", "grid": n, "trips": N, "error": out[-2000:]}
                rec["peer"] = label
                rec.update(peak_rss_mb=round(rss), process_wall_s=round(wall, 2))
                records.append(rec)
    print("| case | engine | sim s | trips/sim-s | end-to-end s | peak RSS MB | completed | mean TT s | p90 TT s "
          "| veh-km | teleports | busiest link veh | UXsim time / this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, N in cases:
        rows = [r for r in records if r.get("grid") == n and r.get("trips") == N]
        ux = next((r for r in rows if str(r.get("peer", "")).startswith("uxsim") and "sim_s" in r), None)
        for r in rows:
            if "error" in r:
                print(f"| grid{n}/{N // 1000}k | {r['peer']} | error: {r['error'][-200:]!r} |")
                continue
            ratio = f"{ux['sim_s'] / r['sim_s']:.1f}x" if ux and r.get("sim_s") else ""
            if r.get("sim_s_range"):
                r = dict(r, sim_s=f"{r['sim_s']} ({r['sim_s_range']})")
            print(f"| grid{n}/{N // 1000}k | {r['peer']} | {r.get('sim_s', '')} | {r.get('trips_per_sim_s', '')} | "
                  f"{r.get('end_to_end_s', r.get('process_wall_s', ''))} | {r.get('peak_rss_mb', '')} | "
                  f"{r.get('completed', '')} | {r.get('mean_tt_s', '')} | {r.get('p90_tt_s', '')} | "
                  f"{r.get('veh_km', '')} | {r.get('teleports', '')} | {r.get('max_link_volume_veh', '')} | {ratio} |")
    if "first_call_s" in warm:
        print(f"\ntwin first call (kernel compile into a fresh cache + 50 trips, in a child of its own): "
              f"{warm['first_call_s']} s; routing shown apart: "
              + ", ".join(f"grid{r['grid']}/{r['trips'] // 1000}k {r['route_s']} s" for r in records
                          if r.get("peer") == "twin (fixed routes)" and "route_s" in r))
    if args.chicago:
        chicago(HERE.parent.parent / "shared" / "data")
    if args.json:
        with open(args.json, "a") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
