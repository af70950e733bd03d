"""Shortest-path kernels over a CSR road graph.

All kernels take the forward star of a directed graph in CSR form:

``indptr`` (int32/int64, shape (n_nodes + 1,))
    Out-links of node ``u`` occupy slots ``indptr[u]:indptr[u + 1]``.
``head`` (int32, shape (n_links,))
    Head node of the link in each slot.
``slot_cost`` (float64, shape (n_links,))
    Cost of the link in each slot (seconds, metres, ...), ``>= 0`` or ``inf`` (closed).
``slot_link`` (int32, shape (n_links,))
    Link index of each slot, used for predecessor links.
``no_through`` (bool, shape (n_nodes,))
    Nodes a path may start or end at but never pass through (TNTP zone centroids).

Dijkstra keeps its frontier in an implicit-array min-heap with lazy deletion: a node may
be pushed once per improving relaxation and stale entries are skipped when popped, so the
heap holds at most ``n_links + 1`` entries. The heap is the 4-ary form of the binary heap
(children of slot ``i`` at ``4i+1..4i+4``): half the depth, the four children in one cache
line; on Chicago-Regional it runs 1.35-1.4x faster than the 2-ary form with identical
results (see BENCHMARKS.md). Distances are exact sums of ``slot_cost`` along a path, in the
order the path is walked, so they agree with any other correct Dijkstra to the last bit
unless two different paths tie in cost. Ties between equal-cost predecessors are broken
by the first relaxation that reached the final distance, which depends only on the CSR
order, so results never depend on the thread count.

This module imports only numpy, numba and math (STYLE §2).
"""


import numpy as np
from numba import njit, prange

__all__ = [
    "dijkstra_sssp",
    "many_to_many",
    "bidirectional_dijkstra",
    "all_or_nothing",
    "tree_routes",
    "tree_routes_serial",
]


@njit(cache=True, nogil=True, inline="always")
def _heap_push(heap_d, heap_v, size, d, v):
    """Insert (d, v) into the 4-ary min-heap of ``size`` entries; return the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 2
        if heap_d[parent] <= d:
            break
        heap_d[i] = heap_d[parent]
        heap_v[i] = heap_v[parent]
        i = parent
    heap_d[i] = d
    heap_v[i] = v
    return size + 1


@njit(cache=True, nogil=True, inline="always")
def _heap_pop(heap_d, heap_v, size):
    """Remove the root of the 4-ary min-heap; return the new size. The caller read the root before."""
    size -= 1
    if size == 0:
        return 0
    d = heap_d[size]
    v = heap_v[size]
    i = 0
    while True:
        child = 4 * i + 1
        if child >= size:
            break
        best = child
        best_d = heap_d[child]
        end = min(child + 4, size)
        for j in range(child + 1, end):
            if heap_d[j] < best_d:
                best_d = heap_d[j]
                best = j
        if best_d >= d:
            break
        heap_d[i] = best_d
        heap_v[i] = heap_v[best]
        i = best
    heap_d[i] = d
    heap_v[i] = v
    return size


@njit(cache=True, nogil=True)
def dijkstra_sssp(indptr, head, slot_cost, slot_link, no_through, source, is_target, n_targets,
                  dist, pred_link, heap_d, heap_v, want_pred=True):
    """One-to-all Dijkstra from ``source``, stopping early once every target is settled.

    Parameters
    ----------
    indptr, head, slot_cost, slot_link, no_through : ndarray
        The CSR forward star (module docstring).
    source : int
        Source node index.
    is_target : ndarray of bool, shape (n_nodes,)
        Nodes whose distance the caller needs; the search stops when all are settled.
    n_targets : int
        Number of True entries in ``is_target``; pass ``n_nodes + 1`` (or any larger
        number) to settle everything reachable.
    dist : ndarray of float64, shape (n_nodes,)
        Output: cost from ``source``; ``inf`` where unreachable (or not settled before the
        early stop — only non-target nodes can be left so).
    pred_link : ndarray of int32/int64, shape (n_nodes,)
        Output: link index entering each node on its shortest path, -1 for the source and
        unreached nodes.
    heap_d, heap_v : ndarray of float64 / int64, shape (n_links + 1,)
        Work space.
    want_pred : bool
        Whether to fill ``pred_link`` (skipping it saves about 7 % when only costs are needed).

    Returns
    -------
    int
        Number of nodes settled.
    """
    n = dist.shape[0]
    for i in range(n):
        dist[i] = np.inf
    if want_pred:
        for i in range(n):
            pred_link[i] = -1
    dist[source] = 0.0
    size = _heap_push(heap_d, heap_v, 0, 0.0, source)
    settled = 0
    remaining = n_targets
    while size > 0:
        d = heap_d[0]
        u = heap_v[0]
        size = _heap_pop(heap_d, heap_v, size)
        if d > dist[u]:
            continue  # stale entry
        settled += 1
        if is_target[u]:
            remaining -= 1
            if remaining == 0:
                break
        if no_through[u] and u != source:
            continue
        for s in range(indptr[u], indptr[u + 1]):
            nd = d + slot_cost[s]
            v = head[s]
            if nd < dist[v]:
                dist[v] = nd
                if want_pred:
                    pred_link[v] = slot_link[s]
                size = _heap_push(heap_d, heap_v, size, nd, v)
    # Nodes reached but not settled before an early stop carry tentative distances; the
    # caller reads targets only, which are all settled.
    return settled


@njit(cache=True, nogil=True, parallel=True)
def many_to_many(indptr, head, slot_cost, slot_link, no_through, origins, dest, n_chunks, out):
    """Cost from every origin to every destination, parallel over origins.

    Parameters
    ----------
    origins : ndarray of int64, shape (n_origins,)
        Origin node indices.
    dest : ndarray of int64, shape (n_dest,)
        Destination node indices (duplicates allowed).
    n_chunks : int
        Origins are processed in this many contiguous chunks, each with its own work
        arrays, spread over the numba threads (a few per thread balances the load).
    out : ndarray of float64, shape (n_origins, n_dest)
        Output: ``out[i, j]`` is the least cost from ``origins[i]`` to ``dest[j]``, ``inf``
        where unreachable.

    Returns
    -------
    int
        Total number of nodes settled over all origins.

    Notes
    -----
    Each origin writes only its own row, so the result is identical for any thread count
    (and to :func:`many_to_many_serial`).
    """
    is_target, n_targets = _targets(indptr.shape[0] - 1, dest)
    n_orig = origins.shape[0]
    # Origins are split into contiguous chunks, each with its own work arrays (allocated
    # once per chunk, not per origin). Every origin writes only its own row, so the
    # result does not depend on the chunking or the thread count.
    n_chunks = max(1, min(n_orig, n_chunks))
    total = np.zeros(max(n_chunks, 1), dtype=np.int64)
    for c in prange(n_chunks):
        total[c] = _rows(indptr, head, slot_cost, slot_link, no_through, origins, dest, is_target, n_targets,
                         c * n_orig // n_chunks, (c + 1) * n_orig // n_chunks, out)
    return total.sum()


@njit(cache=True, nogil=True)
def many_to_many_serial(indptr, head, slot_cost, slot_link, no_through, origins, dest, out):
    """:func:`many_to_many` on the calling thread: for a search or two (no parallel region to
    open and no threads to wake, which costs more than the searches on a small graph, and far
    more when other processes hold the cores)."""
    is_target, n_targets = _targets(indptr.shape[0] - 1, dest)
    return _rows(indptr, head, slot_cost, slot_link, no_through, origins, dest, is_target, n_targets,
                 0, origins.shape[0], out)


@njit(cache=True, nogil=True)
def _targets(n, dest):
    is_target = np.zeros(n, dtype=np.bool_)
    for j in range(dest.shape[0]):
        is_target[dest[j]] = True
    n_targets = 0
    for i in range(n):
        if is_target[i]:
            n_targets += 1
    return is_target, n_targets


@njit(cache=True, nogil=True)
def _rows(indptr, head, slot_cost, slot_link, no_through, origins, dest, is_target, n_targets, lo, hi, out):
    """Rows ``lo .. hi - 1`` of :func:`many_to_many` with one set of work arrays; nodes settled."""
    n = indptr.shape[0] - 1
    m = head.shape[0]
    dist = np.empty(n, dtype=np.float64)
    pred = np.empty(0, dtype=np.int64)
    heap_d = np.empty(m + 1, dtype=np.float64)
    heap_v = np.empty(m + 1, dtype=np.int64)
    total = 0
    for i in range(lo, hi):
        total += dijkstra_sssp(indptr, head, slot_cost, slot_link, no_through, origins[i],
                               is_target, n_targets, dist, pred, heap_d, heap_v, False)
        for j in range(dest.shape[0]):
            out[i, j] = dist[dest[j]]
    return total


@njit(cache=True, nogil=True)
def bidirectional_dijkstra(f_indptr, f_head, f_cost, f_link, r_indptr, r_tail, r_cost, r_link,
                           link_tail, link_head, no_through, source, target, path_out):
    """Least-cost path from ``source`` to ``target`` by bidirectional Dijkstra.

    The forward search scans out-links on the forward star; the backward search scans
    in-links on the reverse star (``r_tail[s]`` is the tail node of the link in reverse
    slot ``s``). Both stop when ``top_forward + top_backward >= best``, the classic
    criterion (Goldberg & Harrelson 2005, §3), which is exact for non-negative costs.
    No-through nodes are expanded only when they are the source (forward) or the target
    (backward), and a meeting at a no-through node other than the end points is refused.

    Parameters
    ----------
    link_tail, link_head : ndarray of int32/int64, shape (n_links,)
        End nodes of every link, to walk the trees back into a path.
    path_out : ndarray of int64, shape (>= n_nodes,)
        Output: the path's link indices in order from source to target.

    Returns
    -------
    (float, int)
        The least cost (``inf`` if unreachable) and the number of links written to
        ``path_out`` (-1 if unreachable).
    """
    n = f_indptr.shape[0] - 1
    m = f_head.shape[0]
    if source == target:
        return 0.0, 0
    df = np.full(n, np.inf)
    db = np.full(n, np.inf)
    pf = np.full(n, -1, dtype=np.int64)   # link entering v on the forward tree
    pb = np.full(n, -1, dtype=np.int64)   # link leaving v on the backward tree
    done_f = np.zeros(n, dtype=np.bool_)
    done_b = np.zeros(n, dtype=np.bool_)
    hfd = np.empty(m + 1)
    hfv = np.empty(m + 1, dtype=np.int64)
    hbd = np.empty(m + 1)
    hbv = np.empty(m + 1, dtype=np.int64)
    df[source] = 0.0
    db[target] = 0.0
    sf = _heap_push(hfd, hfv, 0, 0.0, source)
    sb = _heap_push(hbd, hbv, 0, 0.0, target)
    best = np.inf
    meet_link = -1   # link u->v joining the forward and backward trees
    meet_node = -1
    while sf > 0 and sb > 0:
        # Drop stale roots so the stopping test reads true tentative minima.
        while sf > 0 and hfd[0] > df[hfv[0]]:
            sf = _heap_pop(hfd, hfv, sf)
        while sb > 0 and hbd[0] > db[hbv[0]]:
            sb = _heap_pop(hbd, hbv, sb)
        if sf == 0 or sb == 0:
            break
        if hfd[0] + hbd[0] >= best:
            break
        if hfd[0] <= hbd[0]:
            d = hfd[0]
            u = hfv[0]
            sf = _heap_pop(hfd, hfv, sf)
            done_f[u] = True
            if no_through[u] and u != source:
                continue
            for s in range(f_indptr[u], f_indptr[u + 1]):
                v = f_head[s]
                nd = d + f_cost[s]
                if nd < df[v]:
                    df[v] = nd
                    pf[v] = f_link[s]
                    sf = _heap_push(hfd, hfv, sf, nd, v)
                if db[v] < np.inf and (v == target or not no_through[v]):
                    cand = d + f_cost[s] + db[v]
                    if cand < best:
                        best = cand
                        meet_link = f_link[s]
                        meet_node = v
        else:
            d = hbd[0]
            v = hbv[0]
            sb = _heap_pop(hbd, hbv, sb)
            done_b[v] = True
            if no_through[v] and v != target:
                continue
            for s in range(r_indptr[v], r_indptr[v + 1]):
                u = r_tail[s]
                nd = d + r_cost[s]
                if nd < db[u]:
                    db[u] = nd
                    pb[u] = r_link[s]
                    sb = _heap_push(hbd, hbv, sb, nd, u)
                if df[u] < np.inf and (u == source or not no_through[u]):
                    cand = df[u] + r_cost[s] + d
                    if cand < best:
                        best = cand
                        meet_link = r_link[s]
                        meet_node = v
    if best == np.inf:
        return np.inf, -1
    # meet_link runs from a node on the forward tree to meet_node on the backward tree.
    k = 0
    x = link_tail[meet_link]
    while x != source:  # forward part, collected backwards then flipped
        lk = pf[x]
        path_out[k] = lk
        k += 1
        x = link_tail[lk]
    for i in range(k // 2):
        tmp = path_out[i]
        path_out[i] = path_out[k - 1 - i]
        path_out[k - 1 - i] = tmp
    path_out[k] = meet_link
    k += 1
    x = meet_node
    while x != target:
        lk = pb[x]
        path_out[k] = lk
        k += 1
        x = link_head[lk]
    return best, k


@njit(cache=True, nogil=True, parallel=True)
def all_or_nothing(indptr, head, slot_cost, slot_link, no_through, link_tail, origins, dest_offsets,
                   dest_nodes, dest_demand, n_chunks, link_flow_out, sp_cost_out):
    """Load every OD demand on its least-cost path (all-or-nothing assignment).

    Parameters
    ----------
    indptr, head, slot_cost, slot_link, no_through : ndarray
        The CSR forward star (module docstring); ``slot_cost`` is the generalised cost
        of each slot's link (seconds), ``>= 0``.
    link_tail : ndarray of int32/int64, shape (n_links,)
        Tail node of every link, to walk predecessor links back to the origin.
    origins : ndarray of int64, shape (n_origins,)
        Origin node indices (each once).
    dest_offsets : ndarray of int64, shape (n_origins + 1,)
        OD pairs in CSR form: origin ``i``'s pairs are ``dest_offsets[i]:dest_offsets[i+1]``.
    dest_nodes : ndarray of int64, shape (n_pairs,)
        Destination node index of each pair.
    dest_demand : ndarray of float64, shape (n_pairs,)
        Demand of each pair, vehicles/hour, ``>= 0``.
    n_chunks : int
        Origins are split into this many contiguous chunks (fewer if there are fewer
        origins), each with its own work arrays and link-flow buffer. The result depends
        on ``n_chunks`` (in the last bits: the order of the float sums) but never on the
        thread count; callers pass a fixed number.
    link_flow_out : ndarray of float64, shape (n_links,)
        Output: flow loaded on each link, vehicles/hour.
    sp_cost_out : ndarray of float64, shape (n_pairs,)
        Output: least cost of each pair, ``inf`` where unreachable (its demand is then
        not loaded) and ``0`` where the destination is the origin.

    Returns
    -------
    int
        Number of pairs with a positive demand and no path.

    Notes
    -----
    One Dijkstra per origin (``dijkstra_sssp`` with predecessors, stopping once the
    origin's destinations are settled), then each destination's demand is added to the
    links of its predecessor chain. Chunks add into private buffers that are summed
    afterwards in chunk order 0, 1, ..., per link, so no float sum crosses ``prange``
    iterations and the flows are byte-identical for any number of threads. Ties between
    equal-cost paths follow ``dijkstra_sssp`` (first relaxation in CSR order).
    """
    n = indptr.shape[0] - 1
    m = head.shape[0]
    n_orig = origins.shape[0]
    n_chunks = max(1, min(n_orig, n_chunks))
    chunk_flow = np.zeros((n_chunks, m), dtype=np.float64)
    unreachable = np.zeros(n_chunks, dtype=np.int64)
    for c in prange(n_chunks):
        lo = c * n_orig // n_chunks
        hi = (c + 1) * n_orig // n_chunks
        dist = np.empty(n, dtype=np.float64)
        pred = np.empty(n, dtype=np.int64)
        heap_d = np.empty(m + 1, dtype=np.float64)
        heap_v = np.empty(m + 1, dtype=np.int64)
        is_target = np.zeros(n, dtype=np.bool_)
        flow = chunk_flow[c]
        for i in range(lo, hi):
            o = origins[i]
            a = dest_offsets[i]
            b = dest_offsets[i + 1]
            n_targets = 0
            for j in range(a, b):
                d = dest_nodes[j]
                if not is_target[d]:
                    is_target[d] = True
                    n_targets += 1
            if n_targets > 0:
                dijkstra_sssp(indptr, head, slot_cost, slot_link, no_through, o, is_target, n_targets,
                              dist, pred, heap_d, heap_v, True)
            for j in range(a, b):
                d = dest_nodes[j]
                is_target[d] = False
                cost = dist[d]
                sp_cost_out[j] = cost
                q = dest_demand[j]
                if cost == np.inf:
                    if q > 0.0:
                        unreachable[c] += 1
                    continue
                if q == 0.0:
                    continue
                v = d
                while v != o:
                    lk = pred[v]
                    flow[lk] += q
                    v = link_tail[lk]
    for k in prange(m):
        total = 0.0
        for c in range(n_chunks):
            total += chunk_flow[c, k]
        link_flow_out[k] = total
    n_bad = 0
    for c in range(n_chunks):
        n_bad += unreachable[c]
    return n_bad


@njit(cache=True, nogil=True, parallel=True)
def tree_routes(indptr, head, slot_cost, slot_link, no_through, link_tail, origins, grp_indptr, grp_dest,
                n_chunks, hops, route_off, route_links, fill):
    """Least-cost routes of many trips, one shortest-path tree per distinct origin.

    Trips are grouped by origin: group ``g`` (origin ``origins[g]``) holds trips
    ``grp_indptr[g]:grp_indptr[g+1]`` with destinations ``grp_dest``. Called twice: with
    ``fill=False`` it writes each trip's number of links into ``hops`` (-1 when the
    destination is unreachable, 0 never occurs for origin != destination); the caller
    turns the counts into ``route_off`` (prefix sums) and calls again with ``fill=True``
    to write the links, in travel order, into ``route_links[route_off[t]:route_off[t+1]]``.

    Each origin's tree is computed by :func:`dijkstra_sssp` (predecessor links), so the
    routes agree with ``City.path`` up to ties between equal-cost paths. Each trip writes
    only its own slots, so the result does not depend on the thread count.
    """
    n_groups = origins.shape[0]
    n_chunks = max(1, min(n_groups, n_chunks))
    for c in prange(n_chunks):
        _tree_route_groups(indptr, head, slot_cost, slot_link, no_through, link_tail, origins, grp_indptr, grp_dest,
                           c * n_groups // n_chunks, (c + 1) * n_groups // n_chunks, hops, route_off, route_links, fill)


@njit(cache=True, nogil=True)
def tree_routes_serial(indptr, head, slot_cost, slot_link, no_through, link_tail, origins, grp_indptr, grp_dest,
                       hops):
    """:func:`tree_routes` on the calling thread, in one pass: the same routes, returned as one
    array in trip (grouped) order, trip ``t`` taking ``max(hops[t], 0)`` links (``hops`` as
    :func:`tree_routes` writes it). For the few hundred trees a coupled run asks at a time,
    where waking threads costs more than the searches (far more when other processes hold
    the cores) and a second search per origin to fill the routes would double the work."""
    dist, pred, heap_d, heap_v, is_target = _tree_work_arrays(indptr.shape[0] - 1, head.shape[0])
    links = np.empty(max(16, 8 * grp_dest.shape[0]), dtype=np.int32)
    used = 0
    for g in range(origins.shape[0]):
        src = _search_group(indptr, head, slot_cost, slot_link, no_through, origins, grp_indptr, grp_dest, g,
                            is_target, dist, pred, heap_d, heap_v)
        for t in range(grp_indptr[g], grp_indptr[g + 1]):
            count = _hops(link_tail, pred, dist, src, grp_dest[t])
            hops[t] = count
            if count < 0:
                continue
            if used + count > links.shape[0]:
                grown = np.empty(max(2 * links.shape[0], used + count), dtype=np.int32)
                grown[:used] = links[:used]
                links = grown
            _write_route(link_tail, pred, src, grp_dest[t], links, used + count - 1)
            used += count
    return links[:used]


@njit(cache=True, nogil=True)
def _tree_route_groups(indptr, head, slot_cost, slot_link, no_through, link_tail, origins, grp_indptr, grp_dest,
                       lo, hi, hops, route_off, route_links, fill):
    """Groups ``lo .. hi - 1`` of :func:`tree_routes` with one set of work arrays."""
    dist, pred, heap_d, heap_v, is_target = _tree_work_arrays(indptr.shape[0] - 1, head.shape[0])
    for g in range(lo, hi):
        src = _search_group(indptr, head, slot_cost, slot_link, no_through, origins, grp_indptr, grp_dest, g,
                            is_target, dist, pred, heap_d, heap_v)
        for t in range(grp_indptr[g], grp_indptr[g + 1]):
            if not fill:
                hops[t] = _hops(link_tail, pred, dist, src, grp_dest[t])
            elif hops[t] > 0:
                _write_route(link_tail, pred, src, grp_dest[t], route_links, route_off[t] + hops[t] - 1)


@njit(cache=True, nogil=True)
def _tree_work_arrays(n, m):
    """One search's work arrays on ``n`` nodes and ``m`` links: distances, predecessor links,
    the heap's keys and values, and the target marks (all False)."""
    return (np.empty(n, dtype=np.float64), np.empty(n, dtype=np.int64), np.empty(m + 1, dtype=np.float64),
            np.empty(m + 1, dtype=np.int64), np.zeros(n, dtype=np.bool_))


@njit(cache=True, nogil=True, inline="always")
def _search_group(indptr, head, slot_cost, slot_link, no_through, origins, grp_indptr, grp_dest, g,
                  is_target, dist, pred, heap_d, heap_v):
    """The shortest-path tree of group ``g``'s origin, stopped once its destinations are settled
    (``is_target`` is all False again on return); returns the origin."""
    n_targets = 0
    for t in range(grp_indptr[g], grp_indptr[g + 1]):
        d = grp_dest[t]
        if not is_target[d]:
            is_target[d] = True
            n_targets += 1
    src = origins[g]
    dijkstra_sssp(indptr, head, slot_cost, slot_link, no_through, src, is_target, n_targets,
                  dist, pred, heap_d, heap_v, True)
    for t in range(grp_indptr[g], grp_indptr[g + 1]):
        is_target[grp_dest[t]] = False
    return src


@njit(cache=True, nogil=True, inline="always")
def _hops(link_tail, pred, dist, src, d):
    """Links on the tree's route from ``src`` to ``d``; -1 when ``d`` is unreachable."""
    if dist[d] == np.inf:
        return -1
    count = 0
    x = d
    while x != src:
        count += 1
        x = link_tail[pred[x]]
    return count


@njit(cache=True, nogil=True, inline="always")
def _write_route(link_tail, pred, src, d, out, last):
    """Write the tree's route from ``src`` to ``d`` into ``out``, ending at index ``last``."""
    j = last
    x = d
    while x != src:
        lk = pred[x]
        out[j] = lk
        j -= 1
        x = link_tail[lk]
