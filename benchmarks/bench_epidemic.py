"""Epidemic: twin's epidemic against Covasim on the same population size, days and disease, in one run.

Instance: ``--persons`` synthetic persons (default 1,000,000) on ``--city`` (the embedded
Hefei city by default, or a TNTP / OSM file such as ``../shared/data/tntp/Chicago-Sketch``'s
net file), ``--days`` days (180), ten persons infected on day 0.

Both models run Covasim 4.0.1's default disease: beta 0.016 per contact-day, layer weights
household 3.0, school 0.6, work 0.6, community 0.3, the same lognormal durations and
probabilities by age; Covasim with ``use_waning = False`` (one infection per person, as in
twin). The contacts differ by design: Covasim's ``hybrid`` population draws households and
random school, work (20, 16 contacts) and community (20 a day) layers; twin builds its layers
from the synthetic day plans (households, classes and teams at the same place and time,
zone-hours out of home), so the same beta spreads differently and the final sizes differ.
A second twin row scales its layers to a next-generation R0 of ``--r0`` (3.0) for an epidemic
of Covasim's size, where the transmission work is largest.

Reported per engine: the set-up wall time (population and contacts), the simulation wall time
(days only), person-days simulated per second of simulation, peak memory of the process so far,
and the share infected. Covasim is a ``bench`` extra (``pip install -e ".[bench]"``); without it
twin's rows are printed alone.

Usage::

    python benchmarks/bench_epidemic.py [--persons 1000000] [--days 180] [--city hefei-baohe] [--r0 3.0] [--no-peers]
"""

import argparse
import resource
import time

import numpy as np


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_twin(city, persons, days, r0=None, seed=1):
    from twin.agents.epidemic import Disease, EpidemicRun
    from twin.agents.epidemic_contacts import contacts_from_population
    from twin.agents.population import synthesize_population

    t0 = time.perf_counter()
    pop = synthesize_population(city, persons, seed=seed)
    contacts = contacts_from_population(pop, seed=seed)
    run = EpidemicRun(contacts, Disease(), pop.age, np.random.default_rng(seed), days, home_zone=pop.home_zone_idx,
                      n_zones=city.n_zones)
    if r0 is not None:
        run.calibrate_r0(r0)
    run.seed(np.random.default_rng(seed + 1).choice(persons, 10, replace=False), 0)
    t1 = time.perf_counter()
    res = run.run()
    t2 = time.perf_counter()
    return {"setup_s": t1 - t0, "sim_s": t2 - t1, "attack": res.attack_rate, "rss_mb": _rss_mb(),
            "contacts": contacts.contacts_per_person()}


def run_covasim(persons, days, seed=1):
    import covasim as cv

    t0 = time.perf_counter()
    sim = cv.Sim(pop_size=persons, n_days=days, pop_type="hybrid", pop_infected=10, rand_seed=seed, verbose=0,
                 use_waning=False)
    sim.initialize()
    t1 = time.perf_counter()
    sim.run()
    t2 = time.perf_counter()
    return {"setup_s": t1 - t0, "sim_s": t2 - t1, "attack": float(sim.results["cum_infections"][-1]) / persons,
            "rss_mb": _rss_mb(), "version": cv.__version__}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--persons", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=180)
    p.add_argument("--city", default="hefei-baohe", help="embedded city name or a network file")
    p.add_argument("--r0", type=float, default=3.0, help="the second twin row's next-generation R0")
    p.add_argument("--no-peers", action="store_true", help="twin only")
    a = p.parse_args(argv)
    import twin

    city = twin.load_city(a.city)
    pd_ = a.persons * a.days
    rows = [("twin (Covasim's beta)", run_twin(city, a.persons, a.days)),
            (f"twin (R0 {a.r0:g})", run_twin(city, a.persons, a.days, r0=a.r0))]
    if not a.no_peers:
        try:
            rows.append(("Covasim hybrid", run_covasim(a.persons, a.days)))
        except ImportError:
            print("covasim is not installed (pip install -e \".[bench]\"); twin's rows only")
    print(f"{city.name}: {a.persons:,} persons x {a.days} days = {pd_ / 1e6:.0f} M person-days")
    print(f"{'engine':<24} {'setup s':>8} {'sim s':>8} {'M person-days/s':>16} {'peak RSS MB':>12} {'infected':>9}")
    for name, r in rows:
        print(f"{name:<24} {r['setup_s']:8.1f} {r['sim_s']:8.2f} {pd_ / r['sim_s'] / 1e6:16.1f} {r['rss_mb']:12.0f} "
              f"{100 * r['attack']:8.1f}%")
    cov = [r for n, r in rows if n.startswith("Covasim")]
    if cov:
        for name, r in rows[:2]:
            print(f"{name}: simulation {cov[0]['sim_s'] / r['sim_s']:.1f}x Covasim's speed, end to end "
                  f"{(cov[0]['sim_s'] + cov[0]['setup_s']) / (r['sim_s'] + r['setup_s']):.1f}x")
    print("twin contacts per person per day:", {k: round(v, 2) for k, v in rows[0][1]["contacts"].items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
