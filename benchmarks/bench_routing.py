"""Many-to-many routing: twin's numba Dijkstra against scipy and networkx, in one run.

Networks: Chicago-Regional (TNTP, 12,982 nodes / 39,018 links, centroids honoured) and
the Campo Grande OpenStreetMap extract, both from ``../shared/data``; the embedded city
too. For each: K origins (seed 42) to all nodes, free-flow link times.

- twin: ``City.travel_times`` with 1 numba thread and with all threads;
- scipy: ``scipy.sparse.csgraph.dijkstra(indices=origins)`` (C, one thread), on the same
  graph with centroids split (the same answer; checked);
- networkx: ``single_source_dijkstra_path_length`` per origin (a subset of origins on
  large graphs, reported per origin).

Compile time is measured apart: the kernels are compiled into a fresh, empty numba cache
directory first (unless ``--warm-cache``), then every timing is the best of ``--repeat``
steady-state runs. Usage::

    python benchmarks/bench_routing.py [--origins 200] [--repeat 5] [--nx-origins 20] [--json out.jsonl]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--origins", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--nx-origins", type=int, default=20)
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--warm-cache", action="store_true", help="keep the existing numba cache (no compile timing)")
    ap.add_argument("--json", default=None, help="append one JSON record per measurement to this file")
    return ap.parse_args()


ARGS = _parse()
if not ARGS.warm_cache:
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="twin-bench-numba-")

import networkx as nx  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402

import twin  # noqa: E402

def _reference():
    import importlib.util

    spec = importlib.util.spec_from_file_location("twin_reference", HERE.parent / "tests/kernels/reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scipy_travel_times = _reference().scipy_travel_times


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench(city, label, records):
    rng = np.random.default_rng(42)
    k = min(ARGS.origins, city.n_nodes)
    o_idx = np.sort(rng.choice(city.n_nodes, size=k, replace=False))
    origins = city.node_ids[o_idx]
    n_threads = numba.config.NUMBA_NUM_THREADS

    t0 = time.perf_counter()
    city.travel_times(origins[:1])
    first_call = time.perf_counter() - t0

    numba.set_num_threads(1)
    t_tw1, D1 = best_of(lambda: city.travel_times(origins), ARGS.repeat)
    numba.set_num_threads(n_threads)
    t_twn, Dn = best_of(lambda: city.travel_times(origins), ARGS.repeat)

    # scipy on the same graph: centroid out-links moved to split copies (same answer),
    # parallel links reduced to the cheapest; the matrix is built once, outside the timing.
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    n = city.n_nodes
    nt = np.flatnonzero(city.no_through)
    split_of = np.full(n, -1, dtype=np.int64)
    split_of[nt] = n + np.arange(len(nt))
    tails = np.where(split_of[city.link_from_idx] >= 0, split_of[city.link_from_idx], city.link_from_idx)
    w = city.free_flow_time_s
    order = np.lexsort((w, city.link_to_idx, tails))
    t_, h_, w_ = tails[order], city.link_to_idx[order].astype(np.int64), w[order]
    first = np.ones(len(t_), dtype=bool)
    first[1:] = (t_[1:] != t_[:-1]) | (h_[1:] != h_[:-1])
    size = n + len(nt)
    A = csr_matrix((w_[first], (t_[first], h_[first])), shape=(size, size))
    starts = np.where(split_of[o_idx] >= 0, split_of[o_idx], o_idx)

    def sp_run():
        D = dijkstra(A, directed=True, indices=starts)[:, :n]
        D[np.arange(len(o_idx)), o_idx] = 0.0
        return D

    t_sp, Dsp = best_of(sp_run, ARGS.repeat)
    check = scipy_travel_times(n, city.link_from_idx, city.link_to_idx, w, city.no_through, o_idx[:5])
    assert np.array_equal(check, Dsp[:5])

    # networkx (no centroid rule in networkx: compare on a graph where centroid out-links
    # only leave from a split copy, as for scipy)
    G = nx.DiGraph()
    split = {int(c): city.n_nodes + i for i, c in enumerate(np.flatnonzero(city.no_through))}
    for kk in range(city.n_links):
        u, v, c = int(city.link_from_idx[kk]), int(city.link_to_idx[kk]), float(city.free_flow_time_s[kk])
        u = split.get(u, u)
        if not G.has_edge(u, v) or G[u][v]["w"] > c:
            G.add_edge(u, v, w=c)
    kn = min(ARGS.nx_origins, k)

    def nx_run():
        out = np.full((kn, city.n_nodes), np.inf)
        for i, s in enumerate(o_idx[:kn]):
            d = nx.single_source_dijkstra_path_length(G, split.get(int(s), int(s)), weight="w")
            cols = [c for c in d if c < city.n_nodes]
            out[i, cols] = [d[c] for c in cols]
            out[i, s] = 0.0
        return out

    t_nx, Dnx = best_of(nx_run, 1)
    t_nx_per = t_nx / kn

    fin = np.isfinite(Dsp) & (Dsp > 0)
    agree = (np.array_equal(np.isinf(D1), np.isinf(Dsp)) and D1.tobytes() == Dn.tobytes()
             and float(np.max(np.abs(D1[fin] - Dsp[fin]) / Dsp[fin], initial=0)) < 1e-9
             and np.allclose(Dnx, D1[:kn], rtol=1e-9))
    rows = [
        ("twin numba, 1 thread", t_tw1),
        (f"twin numba, {n_threads} threads", t_twn),
        (f"scipy {scipy.__version__} csgraph.dijkstra", t_sp),
        (f"networkx {nx.__version__} (x{k}/{kn} extrapolated)", t_nx_per * k),
    ]
    print(f"\n## {label}: {city.n_nodes:,} nodes, {city.n_links:,} links, {k} origins -> all nodes, "
          f"{int(city.no_through.sum())} no-through centroids")
    print(f"first call (compile or cache load + 1 origin): {first_call:.2f} s; results agree: {agree}")
    print("| engine | time s | per origin ms | vs scipy | vs networkx |")
    print("|---|---:|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.4f} | {1000 * t / k:.3f} | {t_sp / t:.2f}x | {t_nx_per * k / t:.0f}x |")
    for name, t in rows:
        records.append(dict(network=label, nodes=city.n_nodes, links=city.n_links, origins=k, engine=name,
                            time_s=round(t, 6), speedup_vs_scipy=round(t_sp / t, 3),
                            speedup_vs_networkx=round(t_nx_per * k / t, 1), first_call_s=round(first_call, 3),
                            agree=bool(agree)))
    return agree


def main():
    shared = Path(ARGS.shared)
    print(f"twin {twin.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, numba threads "
          f"{numba.config.NUMBA_NUM_THREADS}, cache {'warm' if ARGS.warm_cache else 'fresh (compile timed)'}")
    t0 = time.perf_counter()
    probe = twin.load_city("grid:3x3")
    probe.travel_times(probe.node_ids[:2])
    print(f"kernel compile (fresh cache) / cache load: {time.perf_counter() - t0:.2f} s")
    cases = []
    cases.append(("embedded hefei-baohe (OSM)", lambda: twin.load_city("hefei-baohe")))
    cr = shared / "tntp/Chicago-Regional/ChicagoRegional_net.tntp"
    cg = shared / "osm/Campo-Grande/campo-grande.osm.gz"
    if cr.exists():
        cases.append(("Chicago-Regional (TNTP)", lambda: twin.load_city(cr)))
    if cg.exists():
        cases.append(("Campo Grande (OSM)", lambda: twin.load_city(cg)))
    records, ok = [], True
    for label, load in cases:
        t0 = time.perf_counter()
        city = load()
        print(f"\nloaded {label} in {time.perf_counter() - t0:.2f} s")
        ok &= bench(city, label, records)
    if ARGS.json:
        with open(ARGS.json, "a") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
