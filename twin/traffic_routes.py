"""Routes of the traffic engine: least-cost routes per trip, the check of given routes, and
the gather index of concatenated route slices (re-exported by :mod:`twin.traffic`).
"""

from __future__ import annotations

import numpy as np

from twin.errors import DemandError
from twin.graph import City


#: Up to this many distinct origins, routes are searched on the calling thread in one pass
#: (``tree_routes_serial``; above it, in numba's threads, a counting pass then a filling pass):
#: the re-routing and insertions of a coupled run ask a few hundred trees at a time, where the
#: threads cost more than they save, above all when another process shares the cores.
SERIAL_MAX_ORIGINS = 256


def _search_serially(n_origins) -> bool:
    """Whether ``n_origins`` trees are searched on the calling thread: up to
    :data:`SERIAL_MAX_ORIGINS`, and always with two numba threads or fewer, where the threads'
    two passes (count, then fill) cost as much as the one serial pass on an idle machine and
    more on a busy one. The routes are the same either way."""
    import numba

    return n_origins <= SERIAL_MAX_ORIGINS or numba.get_num_threads() <= 2


def _routes(city: City, o_idx, d_idx, link_cost_s=None):
    """Least-cost routes for every trip: flat link array and offsets; empty if unreachable."""
    from twin.kernels.routing import tree_routes, tree_routes_serial
    import numba

    cost = city.free_flow_time_s if link_cost_s is None else city._checked_cost(link_cost_s)
    order = np.argsort(o_idx, kind="stable")
    uniq, start = np.unique(o_idx[order], return_index=True)
    grp_indptr = np.append(start, len(order)).astype(np.int64)
    grp_dest = d_idx[order]
    slot_cost = np.ascontiguousarray(cost[city.fwd_link])
    hops = np.zeros(len(order), dtype=np.int64)
    args = (city.fwd_indptr, city.fwd_head, slot_cost, city.fwd_link, city.no_through, city.link_from_idx,
            uniq.astype(np.int64), grp_indptr, grp_dest)
    off_grouped = np.zeros(len(order) + 1, dtype=np.int64)
    if _search_serially(len(uniq)):
        links_grouped = tree_routes_serial(*args, hops)
        np.cumsum(np.maximum(hops, 0), out=off_grouped[1:])
    else:
        args += (4 * numba.get_num_threads(),)
        tree_routes(*args, hops, np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), False)
        np.cumsum(np.maximum(hops, 0), out=off_grouped[1:])
        links_grouped = np.empty(off_grouped[-1], dtype=np.int32)
        tree_routes(*args, hops, off_grouped, links_grouped, True)
    # back to trip order
    n = len(o_idx)
    lens = np.empty(n, dtype=np.int64)
    lens[order] = np.maximum(hops, 0)
    route_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=route_off[1:])
    src = np.empty(n, dtype=np.int64)
    src[order] = off_grouped[:-1]
    # gather: position within each route
    idx = np.repeat(src - route_off[:-1], lens) + np.arange(route_off[-1])
    route_links = links_grouped[idx]
    return route_off, route_links, lens == 0


def _check_routes(city, o_idx, d_idx, route_off, route_links):
    """Given routes must be connected walks from each trip's origin to its destination."""
    n = len(o_idx)
    if route_off.shape != (n + 1,) or route_off[0] != 0 or np.any(np.diff(route_off) < 0) \
            or route_off[-1] != len(route_links):
        raise DemandError(f"routes: offsets must have shape ({n + 1},), start at 0, not decrease and end at "
                          f"len(links) = {len(route_links)}")
    if len(route_links) and (route_links.min() < 0 or route_links.max() >= city.n_links):
        raise DemandError(f"routes: link indices must be in 0..{city.n_links - 1}")
    lens = np.diff(route_off)
    has = lens > 0
    first = route_links[route_off[:-1][has]]
    last = route_links[route_off[1:][has] - 1]
    bad = np.flatnonzero(has)[(city.link_from_idx[first] != o_idx[has]) | (city.link_to_idx[last] != d_idx[has])]
    if len(bad):
        raise DemandError(f"routes of trips {bad[:5].tolist()} do not run from their origin to their destination")
    inner = np.ones(len(route_links), dtype=bool)
    inner[route_off[1:][has] - 1] = False
    gaps = np.flatnonzero(inner & (city.link_to_idx[route_links] != np.roll(city.link_from_idx[route_links], -1)))
    if len(gaps):
        trip = np.searchsorted(route_off, gaps[0], side="right") - 1
        raise DemandError(f"route of trip {int(trip)} is not connected at position {int(gaps[0] - route_off[trip])}")


def _gather_index(starts, lens):
    """Indices of the concatenated slices ``[starts[i], starts[i] + lens[i])``, in order."""
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum())
    return np.repeat(np.asarray(starts, dtype=np.int64) - (np.cumsum(lens) - lens), lens) + np.arange(total)
