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


# ------------------------------------------------------------------------------------------
# traffic: the spatial queue of twin.kernels.traffic.simulate_queue
# ------------------------------------------------------------------------------------------

__all__ += ["simulate_queue_reference"]


def simulate_queue_reference(in_links, ff_steps, cap_per_step, storage, hole_steps, ring_cap, routes, depart_step,
                             n_steps, stuck_steps, seed, steps_per_interval, stop_when_done=True, *,
                             sig_cycle=None, sig_green_from=None, sig_green_to=None, link_open=None,
                             veh_class=None, priority=False, bypass_speed_mps=1.0, dt_s=1.0, length_m=None,
                             ff_time_s=None, queue_m_per_veh=None, mp_phases=None, mp_period_steps=1,
                             mp_lost_steps=0):
    """The spatial-queue model of :mod:`twin.kernels.traffic`, written from its docstring.

    One object per thing: each link has a ``deque`` of ``(due tick, vehicle, position in
    its route)`` (FIFO), a list of the ticks at which the space freed by leaving vehicles
    (holes) reaches its upstream end, and an outflow budget; each vehicle has its route as
    a list of links. Every node is visited every tick, in index order.

    Signals: link ``L`` is green at tick ``k`` when ``sig_cycle[L] == 0`` or ``k mod
    sig_cycle[L]`` lies in its green window ``[from, to)`` (or, when ``from > to``, in
    ``[from, cycle)`` or ``[0, to)``). Closed links (``link_open[L]`` false) take no vehicle.

    One tick ``k``:

    1. Nodes, in index order. The in-links that are green and whose head vehicle is due
       (``due <= k``) are the candidates. While there are candidates, one is drawn with probability
       proportional to ``cap_per_step`` and served (below). The draw is the kernel's:
       ``u = _uniform(seed, k, node, draw) * total`` with ``draw`` counting the draws
       at this node and tick, ``total`` a running total of the candidates' weights (their
       sum in in-link order, less each drawn weight), the first candidate whose cumulative
       weight exceeds ``u`` (the last one if none does), and the drawn candidate replaced
       by the last one in the list. A single candidate is served without a draw.
    2. Serving link ``L``: its budget is topped up (lazily, once per tick at most):
       ``budget = min(cap + 1, budget + cap * (k - last top-up))``; it starts full
       (``cap + 1``, last top-up 0). Then, while the budget is >= 1 and the head vehicle
       is due, the head moves on: out of the network if ``L`` is its last link (arrival
       at ``k``), otherwise into its next link ``N`` if ``N`` is open and ``vehicles(N) +
       pending holes(N) < storage(N)`` (a hole is pending until its release tick), or, when
       that fails, if it is stuck and ``N`` is open and its ring has a free slot beyond the
       one the kernel always keeps (``vehicles + pending holes < ring_cap - 1``): a forced
       move, counted; if it is stuck and ``N`` is closed or has no free slot either, a
       teleport, counted: the vehicle skips along its route to the first open link with a
       free slot, due there after the free-flow ticks of the skipped links plus its own, or
       arrives after the free-flow ticks of the rest of its route when no link has one.
       Stuck: blocked at the head for ``stuck_steps`` green ticks of ``L`` or more, counting
       the ticks ``t`` with ``max(due, tick it became the head) <= t < k`` (a vehicle
       becomes the head when the one before it leaves, or when it enters an empty link). Otherwise the head, and so the link, waits. A move costs 1 budget, leaves a
       hole on ``L`` released at ``k + hole_steps(L)``, and gives the vehicle the due tick
       ``k + ff_steps(N)`` on ``N``.
    3. Departures: vehicles whose ``depart_step <= k`` depart in ``(depart_step, vehicle)``
       order and queue for their first link; then each open link takes its waiting vehicles
       in that order while ``vehicles + pending holes < storage`` (no stuck rule for them),
       each due at ``k + ff_steps``.
    4. Emergency vehicles with priority (``priority`` and ``veh_class[v] == 1``; they are
       never in a link's deque, take no storage, ignore signals and budgets, and are left
       out of step 3's queues), in vehicle order: a departed one enters its first link if it
       is open; one on a link whose due tick has come leaves it, arriving if it was the
       last link, else entering its next link if that is open (else it waits). Entering
       link ``N`` at ``k`` it is due at ``k + T``: ``q`` = vehicles in ``N``'s deque with
       ``due <= k``; ``T = ff_steps(N)`` if ``q == 0``, else ``queue = min(length, q ×
       queue_m_per_veh)``, ``f = queue / length`` (0 if length is 0), ``T = max(ff_steps,
       floor((ff_time (1 - f) + max(ff_time f, queue / bypass_speed)) / dt + 0.5))``.
    5. If ``stop_when_done`` and every routable vehicle has arrived, stop.

    Max-pressure (``mp_phases``: per controlled node, a list of phases, each a list of
    in-links): those links get ``sig_cycle = mp_period_steps`` and start red (``from = to
    = 0``). At the start of every tick ``k`` with ``k % mp_period_steps == 0``, before step
    1, each node (in list order) computes each phase's pressure, the sum over its links (in
    order) of ``cap (q / storage - down / q)`` (0 if ``q == 0``), with ``q`` the vehicles
    in the link's deque with ``due <= k`` and ``down`` the sum, over them in deque order,
    of ``min(1, (vehicles + pending holes) / storage)`` of their next link (0 if none);
    keeps its current phase if its pressure equals the largest, else takes the first
    phase with the largest; the chosen links get ``from = lost, to = period`` (``lost =
    0`` if the phase is kept, else ``mp_lost_steps``), the others ``from = to = 0``.

    Parameters
    ----------
    in_links : list of lists of int
        In-links of each node, in the order the node lists them (``City.rev_link``); the
        order matters for the draw.
    ff_steps, cap_per_step, storage, hole_steps, ring_cap : array-like (n_links,)
        Per-link free-flow ticks, capacity (vehicles/tick), storage (vehicles), hole
        ticks, and ring size (``storage + 2`` in ``twin.traffic``).
    routes : list of lists of int
        Each vehicle's links; an empty route is an unroutable vehicle (never departs).
    depart_step : array-like of int (n_veh,)
    n_steps, stuck_steps, seed, steps_per_interval : int
    stop_when_done : bool
    sig_cycle, sig_green_from, sig_green_to : array-like of int (n_links,), optional
        Fixed-time signals as the kernel takes them (cycle 0: unsignalised); default none.
    link_open : array-like of bool (n_links,), optional
        Default: every link open.
    veh_class, priority, bypass_speed_mps, dt_s, length_m, ff_time_s, queue_m_per_veh
        Emergency priority (step 4); ``veh_class`` defaults to all ordinary.
    mp_phases, mp_period_steps, mp_lost_steps
        Max-pressure control (above); default none.

    Returns
    -------
    dict
        ``arrive_step`` (int64, -1 if not arrived), ``status`` (int8, the kernel's codes),
        ``inflow``, ``outflow`` (int64, interval × link; interval ``min(k // spi, n_iv - 1)``
        with ``n_iv = ceil(n_steps / spi)``), ``forced_moves`` (int), ``ticks`` (ticks run)
        and ``step_counts`` (int64, ticks × (departed, in network, arrived)).
    """
    import math
    from collections import deque

    from twin.kernels import traffic as K

    uniform = getattr(K._uniform, "py_func", K._uniform)   # the kernel's hash, run as Python
    ff = [int(x) for x in ff_steps]
    cap = [float(x) for x in cap_per_step]
    storage = [int(x) for x in storage]
    hole_steps = [int(x) for x in hole_steps]
    ring_cap = [int(x) for x in ring_cap]
    routes = [[int(L) for L in r] for r in routes]
    depart_step = [int(x) for x in depart_step]
    n_links, n_veh, n_nodes = len(ff), len(routes), len(in_links)
    sig_cycle = [0] * n_links if sig_cycle is None else [int(x) for x in sig_cycle]
    sig_from = [0] * n_links if sig_green_from is None else [int(x) for x in sig_green_from]
    sig_to = [0] * n_links if sig_green_to is None else [int(x) for x in sig_green_to]
    link_open = [True] * n_links if link_open is None else [bool(x) for x in link_open]
    veh_class = [0] * len(routes) if veh_class is None else [int(x) for x in veh_class]
    is_ev = [bool(priority) and c != 0 and bool(r) for c, r in zip(veh_class, routes)]
    mp_phases = [] if mp_phases is None else [[[int(L) for L in ph] for ph in node] for node in mp_phases]
    mp_current = [-1] * len(mp_phases)
    for node in mp_phases:
        for ph in node:
            for L in ph:
                sig_cycle[L], sig_from[L], sig_to[L] = int(mp_period_steps), 0, 0
    ev_on = {}                                     # emergency vehicle -> [due, position in route, entry tick]
    spi = int(steps_per_interval)
    n_iv = -(-int(n_steps) // spi)

    vehicles = [deque() for _ in range(n_links)]   # (due, vehicle, position in route), FIFO
    holes = [[] for _ in range(n_links)]           # release ticks of the freed space
    budget = [c + 1.0 for c in cap]                # outflow budget, full at the start
    topped_up = [0] * n_links
    head_since = [0] * n_links                     # tick the current head vehicle became the head
    waiting = [deque() for _ in range(n_links)]    # departed vehicles waiting to enter (first link)

    status = [K.STATUS_NOT_DEPARTED if r else K.STATUS_UNROUTABLE for r in routes]
    arrive_step = [-1] * n_veh
    inflow = np.zeros((n_iv, n_links), dtype=np.int64)
    outflow = np.zeros((n_iv, n_links), dtype=np.int64)
    to_depart = deque(sorted((v for v in range(n_veh) if routes[v]), key=lambda v: (depart_step[v], v)))
    routable = len(to_depart)
    tally = dict(departed=0, entered=0, arrived=0, forced=0, teleports=0)
    step_counts = []

    def pending_holes(L, k):
        holes[L] = [t for t in holes[L] if t > k]
        return len(holes[L])

    def has_space(L, k):
        return len(vehicles[L]) + pending_holes(L, k) < storage[L]

    def has_slot(L, k):
        """Open, with a ring slot beyond the storage (for forced moves and teleports)."""
        return link_open[L] and len(vehicles[L]) + pending_holes(L, k) < ring_cap[L] - 1

    def green(L, k):
        c = sig_cycle[L]
        if c == 0:
            return True
        m, f, t = k % c, sig_from[L], sig_to[L]
        return f <= m < t if f <= t else (m >= f or m < t)

    def enter(L, v, pos, k, iv, extra=0):
        if not vehicles[L]:
            head_since[L] = k
        vehicles[L].append((k + extra + ff[L], v, pos))
        inflow[iv, L] += 1

    def serve(L, k, iv):
        if topped_up[L] < k:
            budget[L] = min(cap[L] + 1.0, budget[L] + cap[L] * (k - topped_up[L]))
            topped_up[L] = k
        while vehicles[L] and budget[L] >= 1.0:
            due, v, pos = vehicles[L][0]
            if due > k:
                return
            last = pos == len(routes[v]) - 1
            extra = 0                  # ticks added by a teleport
            new_pos = pos + 1
            if not last:
                N = routes[v][pos + 1]
                if not (link_open[N] and has_space(N, k)):
                    since = max(due, head_since[L])
                    if sig_cycle[L] == 0:
                        blocked = k - since
                    else:                  # only green ticks count
                        blocked = sum(1 for t in range(since, k) if green(L, t))
                    if blocked < stuck_steps:
                        return
                    if has_slot(N, k):
                        tally["forced"] += 1
                    else:
                        # teleport along the route to the first link with a free ring slot,
                        # each skipped link costing its free-flow ticks, or to the destination
                        tally["teleports"] += 1
                        while True:
                            extra += ff[routes[v][new_pos]]
                            new_pos += 1
                            if new_pos == len(routes[v]):
                                last = True
                                break
                            N = routes[v][new_pos]
                            if has_slot(N, k):
                                break
            vehicles[L].popleft()
            head_since[L] = k
            budget[L] -= 1.0
            holes[L].append(k + hole_steps[L])
            outflow[iv, L] += 1
            if last:
                status[v] = K.STATUS_ARRIVED
                arrive_step[v] = k + extra
                tally["arrived"] += 1
            else:
                enter(N, v, new_pos, k, iv, extra)

    def bypass_ticks(N, k):
        q = sum(1 for due, _, _ in vehicles[N] if due <= k)
        if q == 0:
            return ff[N]
        length = float(length_m[N])
        queue = min(length, q * float(queue_m_per_veh[N]))
        f = queue / length if length > 0 else 0.0
        t = float(ff_time_s[N]) * (1.0 - f) + max(float(ff_time_s[N]) * f, queue / float(bypass_speed_mps))
        return max(ff[N], math.floor(t / float(dt_s) + 0.5))

    def pressure(L, k):
        q, down = 0, 0.0
        for due, v, pos in vehicles[L]:
            if due > k:
                continue
            q += 1
            if pos + 1 < len(routes[v]):
                N = routes[v][pos + 1]
                down += min(1.0, (len(vehicles[N]) + pending_holes(N, k)) / storage[N])
        return 0.0 if q == 0 else cap[L] * (q / storage[L] - down / q)

    def decide(k):
        for i, phases in enumerate(mp_phases):
            pr = []
            for ph in phases:
                total = 0.0
                for L in ph:
                    total += pressure(L, k)
                pr.append(total)
            best = pr.index(max(pr))
            if mp_current[i] >= 0 and pr[mp_current[i]] == max(pr):
                best = mp_current[i]
            lost = 0 if best == mp_current[i] else int(mp_lost_steps)
            mp_current[i] = best
            for j, ph in enumerate(phases):
                for L in ph:
                    sig_from[L], sig_to[L] = (lost, int(mp_period_steps)) if j == best else (0, 0)

    ticks = 0
    for k in range(int(n_steps)):
        ticks += 1
        iv = min(k // spi, n_iv - 1)
        if mp_phases and k % int(mp_period_steps) == 0:
            decide(k)
        for node in range(n_nodes):
            cands = [L for L in in_links[node] if vehicles[L] and vehicles[L][0][0] <= k and green(L, k)]
            total = 0.0
            for L in cands:
                total += cap[L]
            draw = 0
            while cands:
                pick = 0
                if len(cands) > 1:
                    with np.errstate(over="ignore"):      # the uint64 hash wraps by design
                        u = float(uniform(seed, k, node, draw)) * total
                    draw += 1
                    pick = len(cands) - 1
                    cum = 0.0
                    for j, L in enumerate(cands):
                        cum += cap[L]
                        if u < cum:
                            pick = j
                            break
                L = cands[pick]
                total -= cap[L]
                cands[pick] = cands[-1]
                cands.pop()
                serve(L, k, iv)
        while to_depart and depart_step[to_depart[0]] <= k:
            v = to_depart.popleft()
            status[v] = K.STATUS_WAITING
            tally["departed"] += 1
            if not is_ev[v]:
                waiting[routes[v][0]].append(v)
        for L in range(n_links):
            while waiting[L] and link_open[L] and has_space(L, k):
                v = waiting[L].popleft()
                enter(L, v, 0, k, iv)
                status[v] = K.STATUS_EN_ROUTE
                tally["entered"] += 1
        for v in range(n_veh):
            if not is_ev[v]:
                continue
            if status[v] == K.STATUS_WAITING:
                L = routes[v][0]
                if link_open[L]:
                    ev_on[v] = [k + bypass_ticks(L, k), 0, k]
                    inflow[iv, L] += 1
                    status[v] = K.STATUS_EN_ROUTE
                    tally["entered"] += 1
            elif status[v] == K.STATUS_EN_ROUTE and ev_on[v][0] <= k:
                _, pos, _ = ev_on[v]
                L = routes[v][pos]
                if pos + 1 < len(routes[v]):
                    N = routes[v][pos + 1]
                    if not link_open[N]:
                        continue
                    outflow[iv, L] += 1
                    ev_on[v] = [k + bypass_ticks(N, k), pos + 1, k]
                    inflow[iv, N] += 1
                else:
                    outflow[iv, L] += 1
                    del ev_on[v]
                    status[v] = K.STATUS_ARRIVED
                    arrive_step[v] = k
                    tally["arrived"] += 1
        step_counts.append((tally["departed"], tally["entered"] - tally["arrived"], tally["arrived"]))
        if stop_when_done and tally["arrived"] >= routable:
            break
    return dict(arrive_step=np.array(arrive_step, dtype=np.int64), status=np.array(status, dtype=np.int8),
                inflow=inflow, outflow=outflow, forced_moves=tally["forced"], teleports=tally["teleports"],
                ticks=ticks,
                step_counts=np.array(step_counts, dtype=np.int64).reshape(-1, 3))
