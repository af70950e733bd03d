"""Stand-in travel demand: uniform random OD trips (the population's car legs replace it)."""

from __future__ import annotations

import numpy as np

__all__ = ["random_trips"]


def random_trips(city, n_trips, window_s, seed):
    """Uniform random OD demand: ``n_trips`` trips between distinct nodes, departures uniform in [0, window_s).

    A documented stand-in for real demand, drawn from ``numpy.random.default_rng(seed)``;
    departures sorted. Returns ``{"origin", "destination", "depart_s"}`` (node ids, seconds).
    """
    rng = np.random.default_rng(seed)
    o = rng.integers(0, city.n_nodes, size=n_trips)
    d = rng.integers(0, city.n_nodes - 1, size=n_trips)
    d = d + (d >= o)  # origin != destination
    dep = np.sort(rng.uniform(0.0, window_s, size=n_trips))
    return {"origin": city.node_ids[o], "destination": city.node_ids[d], "depart_s": dep}
