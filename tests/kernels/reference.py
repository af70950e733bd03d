"""Plain reference implementations of the kernels, for tests (slow and obvious is fine)."""

import heapq

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra as scipy_dijkstra

__all__ = ["dijkstra_reference", "scipy_travel_times", "path_cost", "all_or_nothing_reference"]


def dijkstra_reference(n_nodes, tail, head, cost, no_through, source):
    """Textbook Dijkstra with heapq over an edge list; no-through nodes are not expanded."""
    out = [[] for _ in range(n_nodes)]
    for k in range(len(tail)):
        out[tail[k]].append((head[k], cost[k]))
    dist = np.full(n_nodes, np.inf)
    dist[source] = 0.0
    heap = [(0.0, source)]
    done = np.zeros(n_nodes, dtype=bool)
    while heap:
        d, u = heapq.heappop(heap)
        if done[u]:
            continue
        done[u] = True
        if no_through[u] and u != source:
            continue
        for v, c in out[u]:
            if d + c < dist[v]:
                dist[v] = d + c
                heapq.heappush(heap, (d + c, v))
    return dist


def scipy_travel_times(n_nodes, tail, head, cost, no_through, origins, destinations=None):
    """Least costs with ``scipy.sparse.csgraph.dijkstra``, honouring no-through nodes.

    Each no-through node ``c`` is split: its out-links start from a new node ``c'``, from
    which searches that originate at ``c`` start, so no path passes through ``c``.
    Parallel links keep their least cost (scipy would sum duplicates).
    """
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    cost = np.asarray(cost, dtype=np.float64)
    nt = np.flatnonzero(no_through)
    split = np.full(n_nodes, -1, dtype=np.int64)
    split[nt] = n_nodes + np.arange(len(nt))
    t2 = np.where(split[tail] >= 0, split[tail], tail)
    finite = np.isfinite(cost)
    t2, h2, c2 = t2[finite], head[finite], cost[finite]
    size = n_nodes + len(nt)
    order = np.lexsort((c2, h2, t2))
    t2, h2, c2 = t2[order], h2[order], c2[order]
    first = np.ones(len(t2), dtype=bool)
    first[1:] = (t2[1:] != t2[:-1]) | (h2[1:] != h2[:-1])
    A = csr_matrix((c2[first], (t2[first], h2[first])), shape=(size, size))
    origins = np.asarray(origins, dtype=np.int64)
    starts = np.where(split[origins] >= 0, split[origins], origins)
    D = scipy_dijkstra(A, directed=True, indices=starts)[:, :n_nodes]
    D[np.arange(len(origins)), origins] = 0.0
    if destinations is not None:
        D = D[:, np.asarray(destinations, dtype=np.int64)]
    return D


def path_cost(links, cost):
    """Sum of link costs along a path, in path order (as the kernels add them)."""
    total = 0.0
    for k in links:
        total += cost[k]
    return total


def all_or_nothing_reference(n_nodes, tail, head, cost, no_through, origins, dest_offsets, dest_nodes, dest_demand):
    """All-or-nothing loading with a heapq Dijkstra per origin that keeps predecessor links.

    Returns ``(link_flow, sp_cost)`` like ``twin.kernels.routing.all_or_nothing``. Flows are
    summed in the obvious order (origin by origin, destination by destination), so they
    match the kernel to rounding only; with equal-cost alternative paths the two may pick
    different paths, so compare on costs without ties.
    """
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    out = [[] for _ in range(n_nodes)]
    for k in range(len(tail)):
        out[tail[k]].append(k)
    flow = np.zeros(len(tail))
    sp = np.full(len(dest_nodes), np.inf)
    for i, o in enumerate(origins):
        dist = np.full(n_nodes, np.inf)
        pred = np.full(n_nodes, -1, dtype=np.int64)
        dist[o] = 0.0
        heap = [(0.0, int(o))]
        done = np.zeros(n_nodes, dtype=bool)
        while heap:
            d, u = heapq.heappop(heap)
            if done[u]:
                continue
            done[u] = True
            if no_through[u] and u != o:
                continue
            for k in out[u]:
                v = head[k]
                if d + cost[k] < dist[v]:
                    dist[v] = d + cost[k]
                    pred[v] = k
                    heapq.heappush(heap, (d + cost[k], int(v)))
        for j in range(dest_offsets[i], dest_offsets[i + 1]):
            dn = dest_nodes[j]
            sp[j] = dist[dn]
            if np.isfinite(dist[dn]):
                v = dn
                while v != o:
                    flow[pred[v]] += dest_demand[j]
                    v = tail[pred[v]]
    return flow, sp
