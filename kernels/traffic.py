"""Mesoscopic per-vehicle traffic: a spatial queue with flow capacity, storage and holes.

Model (fidelity and sources)
----------------------------
Every vehicle is an individual FIFO entity on a link. A link has

- a free-flow traversal time of ``ff_steps`` ticks: a vehicle that entered at tick ``k``
  may leave from tick ``k + ff_steps`` on (forward kinematic wave at free speed);
- an outflow (flow) capacity of ``cap_per_step`` vehicles per tick, accumulated in a
  per-link budget (each vehicle leaving spends 1) capped at ``cap_per_step + 1``, so a
  saturated link discharges exactly its capacity on average, fractions carried from
  tick to tick; a link that was idle may release one vehicle more in its first tick;
- a storage of ``storage`` vehicles (length × lanes × jam density): a vehicle may enter
  only while ``vehicles + holes < storage``, so queues spill back onto upstream links;
- **holes**: the space a leaving vehicle frees reaches the link's upstream end only
  ``hole_steps`` ticks later (length / backward wave speed ``w`` of the triangular
  fundamental diagram), so a queue's discharge propagates upstream at ``w``, not
  instantly.

This is the queue model of Gawron (1998) and Cetin, Burri & Nagel (2003) as used by
MATSim's QSim, with the backward-travelling holes of Charypar, Axhausen & Nagel (2007)
and Agarwal, Zilske, Rao & Nagel (2015). With holes it reproduces the triangular (LWR)
fundamental diagram's three regimes at link level: free-flow travel at ``v_f``, discharge
at capacity, and spillback/recovery waves at ``w``. It does not resolve waves *inside* a
link (a queue is a point at the link's downstream end until it fills the storage), and
times are whole ticks: each link takes ``max(1, round(t_ff / dt))`` ticks at free flow.

Node model: at a node, the in-links whose head vehicle is due are served in an order
drawn at random with probability proportional to capacity (MATSim's QNode rule), each
moving as many vehicles as its budget, the vehicles' due times and the downstream
storage allow; the draw uses a counter-based hash of (seed, tick, node), so it is
reproducible and independent of everything else. A blocked head vehicle blocks its link
(FIFO diverge). A head vehicle blocked at the head of its link for ``stuck_steps`` ticks
is moved into its next link even if that is full, by one vehicle beyond its storage; if
that link holds one too many already, the vehicle is teleported along its route to the
first link with room, each skipped link costing its free-flow ticks, or to its
destination (SUMO's teleport; skipped links see no inflow or outflow) (the gridlock-resolution rule of MATSim's ``stuckTime`` and
SUMO's ``time-to-teleport``); each such move is counted and reported.

Fixed-time signals: a signalised link discharges (into its next link or out of the
network) only in its green ticks, ``from <= k mod cycle < to`` (the window wraps around
the cycle end when ``from > to``); a red link is not a candidate of its node's draw.
Its outflow budget keeps topping up during red, capped at ``cap_per_step + 1`` as
always, so a queue that waited through red discharges ``cap_per_step`` per green tick
plus one vehicle from the full budget in the first green tick: the ``i``-th queued
vehicle leaves at ``G + ceil(i / cap_per_step) - 1`` (``G`` the first green tick), and a
green of ``g`` ticks passes between ``cap_per_step · g`` and ``cap_per_step · g + 1``
vehicles. The stuck rule counts only green ticks: waiting at red is not being stuck.
Signals are fixed-time and per in-link, as MATSim's signal groups (one green/red
window per link; no actuation, no turn-specific phases or lanes: a link's whole queue
sees one signal).

Closed links accept no vehicle: no departure enters one, no forced move pushes into
one, and a teleport skips over one; vehicles already on a closed link may leave it.

Emergency priority (``priority`` on, ``veh_class == 1``): an emergency vehicle with
priority is not a FIFO entity. It never enters a link's ring, so it

- is not held by the queue, the outflow budget or the node draw: it passes the queued
  part of a link on the shoulder or the opposing lane at ``bypass_speed_mps`` and the rest
  at free speed. Entering link ``N`` at tick ``k`` it is due at ``k + T`` with
  ``T = max(ff_steps, round_half_up(((1 - f) t_ff + max(f t_ff, l_q / v_bypass)) / dt))``,
  ``l_q = min(length, q × queue_m_per_veh)`` the length of the queue it finds (``q`` the
  vehicles on ``N`` already due, ``queue_m_per_veh = 1 / (lanes × jam density)`` the
  effective vehicle length per lane) and ``f = l_q / length``; with no queue ``T =
  ff_steps``. The queue is read once, at entry (a vehicle does not see the queue grow or
  shrink while it drives the link);
- ignores red signals (preemption: its own green wherever it arrives; the cross traffic's
  signal timing is not changed, i.e. no recovery loss is modelled);
- takes no storage (it does not block entry and is not blocked by a full link: it may
  exceed a link's storage by any number of emergency vehicles) and leaves no hole;
- is blocked only by a closed link: it waits at the end of its link (or, at departure,
  at its origin) until that opens or it is re-routed; no stuck rule or teleport applies.

Priority vehicles move in a fourth phase of each tick, after nodes and departures, in
vehicle index order: a departed one enters its first link in its departure tick, one
that is due moves into its next link (or arrives) — one link per tick at most. They count
in the link in-/outflows, occupancy and travel times like any vehicle. With priority off
an emergency vehicle is an ordinary one; runs without priority vehicles are unchanged to
the byte. The bypass rule is a kinematic simplification in the spirit of the emergency
lanes of SUMO's ``bluelight`` device (which lets such vehicles pass queues on a virtual
lane at reduced speed) and of signal pre-emption (Nelson & Bullock 2000): it makes the
"green wave halves ambulance travel time" claim testable against its closed form, not
true by construction (see ``tests/validation/test_emergency_priority.py``).

Max-pressure signals (Varaiya 2013; normalised by storage as Kouvelas, Lioris, Fayazi &
Varaiya 2014): a controlled node has phases, each a set of its in-links (in
``twin.signals`` the two approach directions). Every ``mp_period_steps`` ticks (the
minimum green), at the start of the tick, each node gives the next period to the phase
of largest pressure ``sum_L s_L (q_L / S_L - mean_v o_N(v))`` (``q_L`` vehicles queued on
``L``, ``S_L`` its storage, ``s_L`` its saturation flow, ``o_N(v)`` the occupied share of
the next link of each queued vehicle; the routes give the turning shares), keeping the
current phase on ties; a switch costs ``mp_lost_steps`` ticks of red for everyone (amber
and all-red). The decision is written into the links' signal windows (cycle = period), so
the node model is the fixed-time one: a max-pressure link discharges only in its green.
Approximation: the stuck rule on a controlled link counts the green ticks of the
*current* decision's window extended back periodically (past decisions are not kept).

This module imports only numpy, numba and math (STYLE §2).
"""

import math

import numba
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

__all__ = [
    "simulate_queue",
    "departure_setup",
    "queued_due",
    "insert_at",
    "vehicle_route_position",
    "max_pressure_decide",
    "VEH_ORDINARY",
    "VEH_EMERGENCY",
    "COUNTER_NAMES",
    "STATUS_NOT_DEPARTED",
    "STATUS_WAITING",
    "STATUS_EN_ROUTE",
    "STATUS_ARRIVED",
    "STATUS_UNROUTABLE",
]

#: Vehicle state codes (int8).
STATUS_NOT_DEPARTED = 0
STATUS_WAITING = 1      # departed, waiting to enter its first link
STATUS_EN_ROUTE = 2
STATUS_ARRIVED = 3
STATUS_UNROUTABLE = 4

#: Vehicle classes (int8, ``veh_class``).
VEH_ORDINARY = 0
VEH_EMERGENCY = 1

#: ``head_due`` of an empty link.
NEVER = 2**62
#: Low 32 bits of a ring entry (the route index).
MASK32 = 0xFFFFFFFF

#: Names of the entries of the ``counters`` array ``simulate_queue`` fills.
COUNTER_NAMES = ("departed", "entered", "arrived", "forced_moves", "last_step", "released", "teleports")


@njit(cache=True, nogil=True, inline="always")
def _uniform(seed, k, node, draw):
    """A uniform in [0, 1) from a splitmix64 hash of (seed, tick, node, draw)."""
    x = np.uint64(seed) ^ (np.uint64(k) * np.uint64(0x9E3779B97F4A7C15))
    x ^= np.uint64(node) * np.uint64(0xBF58476D1CE4E5B9)
    x ^= np.uint64(draw) * np.uint64(0x94D049BB133111EB)
    x += np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return float(x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def _prefetch(arr, i):
    """Hint the CPU to fetch ``arr[i]`` into cache; a no-op when run as Python.

    Compiled, it is ``llvm.prefetch`` (read, high locality), used where the kernel knows which
    route entry and ring slots a vehicle will touch a little later. It changes no result
    (the tests compare the kernel with its reference, and its Python body, exactly).
    """


if not numba.config.DISABLE_JIT:
    @intrinsic
    def _prefetch_intrinsic(typingctx, arr, idx):
        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
            ir = cgutils.ir
            i32, i8p = ir.IntType(32), ir.IntType(8).as_pointer()
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return types.void(arr, idx), codegen

    @overload(_prefetch, inline="always")
    def _prefetch_compiled(arr, i):
        def impl(arr, i):
            _prefetch_intrinsic(arr, i)
        return impl


@njit(cache=True, nogil=True, inline="always")
def _release_holes(L, k, ring, ring_start, ring_cap, hole_head, hole_count):
    """Drop the holes of link L whose release tick has come (they are FIFO)."""
    hb = ring_start[L]
    while hole_count[L] > 0 and (ring[hb + hole_head[L]] >> 32) <= k:
        hh = hole_head[L] + 1
        hole_head[L] = 0 if hh == ring_cap[L] else hh
        hole_count[L] -= 1


@njit(cache=True, nogil=True, inline="always")
def _is_green(k, cycle, g_from, g_to):
    """Whether tick ``k`` is green for a signal of ``cycle`` ticks, green in [g_from, g_to) (wrapping)."""
    m = k % cycle
    if g_from <= g_to:
        return g_from <= m and m < g_to
    return m >= g_from or m < g_to


@njit(cache=True, nogil=True, inline="always")
def _next_green(t, cycle, g_from, g_to):
    """The first green tick >= ``t``."""
    if _is_green(t, cycle, g_from, g_to):
        return t
    d = g_from - t % cycle
    if d < 0:
        d += cycle
    return t + d


@njit(cache=True, nogil=True, inline="always")
def _green_before(n, cycle, g_from, g_to):
    """The number of green ticks in [0, n), n >= 0."""
    m = n % cycle
    if g_from <= g_to:
        return (n // cycle) * (g_to - g_from) + max(0, min(m, g_to) - g_from)
    return (n // cycle) * (cycle - g_from + g_to) + min(m, g_to) + max(0, m - g_from)


@njit(cache=True, nogil=True)
def vehicle_route_position(r_lo, r_hi, route_seq, ring, ring_start, ring_cap, ring_head, ring_count):
    """Where a vehicle is whose current route segment is ``route_seq[r_lo:r_hi]``.

    Returns ``(r, due)``: the route index ``r`` of the ring entry that is the vehicle (route
    indices belong to one vehicle each) and the tick it may leave that link, or ``(-1, -1)``
    when it is in no ring (not yet entered, arrived, or an emergency vehicle bypassing the
    rings). Scans the rings of the segment's links: O(segment links × ring occupancy).
    """
    for r in range(r_lo, r_hi):
        L = route_seq[r]
        if L < 0:
            break
        base = ring_start[L]
        rc = ring_cap[L]
        h = ring_head[L]
        for j in range(ring_count[L]):
            s = h + j
            if s >= rc:
                s -= rc
            e = ring[base + s]
            if (e & MASK32) == r:
                return r, e >> 32
    return -1, -1


@njit(cache=True, nogil=True)
def _bypass_steps(N, k, ring, ring_start, ring_cap, ring_head, ring_count, ff_steps, bypass_speed_mps, dt_s,
                  length_m, ff_time_s, queue_m_per_veh):
    """Ticks an emergency vehicle with priority takes on link ``N`` that it enters at tick ``k``.

    ``q`` = the vehicles on ``N`` already due (queued at its downstream end); their queue is
    ``min(length, q * queue_m_per_veh)`` metres long, a share ``f`` of the link. The free
    part takes ``(1 - f) t_ff``, the queued part ``max(f t_ff, queue / bypass_speed)``
    (never faster than free flow); the total is rounded half up to ticks, at least
    ``ff_steps``. With no queue it is exactly ``ff_steps``.
    """
    base = ring_start[N]
    rc = ring_cap[N]
    h = ring_head[N]
    q = 0
    for j in range(ring_count[N]):
        s = h + j
        if s >= rc:
            s -= rc
        if (ring[base + s] >> 32) <= k:
            q += 1
    if q == 0:
        return ff_steps[N]
    ln = length_m[N]
    qm = q * queue_m_per_veh[N]
    if qm > ln:
        qm = ln
    f = qm / ln if ln > 0.0 else 0.0
    t_q = qm / bypass_speed_mps
    t_q_free = ff_time_s[N] * f
    if t_q < t_q_free:
        t_q = t_q_free
    steps = int(math.floor((ff_time_s[N] * (1.0 - f) + t_q) / dt_s + 0.5))
    return steps if steps > ff_steps[N] else ff_steps[N]


@njit(cache=True, nogil=True)
def _link_pressure(L, k, ring, ring_start, ring_cap, ring_head, ring_count, hole_head, hole_count, storage,
                   cap_per_step, route_seq):
    """Max-pressure weight of in-link ``L`` at tick ``k`` (normalised, Kouvelas et al. 2014).

    ``s_L (q_L / S_L - (1 / q_L) sum_v o_N(v))``: ``q_L`` the vehicles queued on ``L`` (due),
    ``S`` storage, ``s_L`` the saturation flow (``cap_per_step``), and for each queued
    vehicle ``v`` (ring order) ``o`` the occupied share ``min(1, (vehicles + pending holes) /
    storage)`` of its next link ``N(v)`` (0 when ``L`` is its last link). 0 with no queue.
    """
    base = ring_start[L]
    rc = ring_cap[L]
    h = ring_head[L]
    q = 0
    down = 0.0
    for j in range(ring_count[L]):
        s = h + j
        if s >= rc:
            s -= rc
        entry = ring[base + s]
        if (entry >> 32) > k:
            continue
        q += 1
        nxt = route_seq[(entry & MASK32) + 1]
        if nxt >= 0:
            _release_holes(nxt, k, ring, ring_start, ring_cap, hole_head, hole_count)
            o = (ring_count[nxt] + hole_count[nxt]) / storage[nxt]
            down += o if o < 1.0 else 1.0
    if q == 0:
        return 0.0
    return cap_per_step[L] * (q / storage[L] - down / q)


@njit(cache=True, nogil=True)
def max_pressure_decide(k, mp_phase_indptr, mp_link_indptr, mp_link, mp_period_steps, mp_lost_steps, mp_phase,
                        ring, ring_start, ring_cap, ring_head, ring_count, hole_head, hole_count, storage,
                        cap_per_step, route_seq, link_head, node_wake, sig_green_from, sig_green_to):
    """Give each max-pressure node's green, for the ``mp_period_steps`` ticks from ``k``, to its best phase.

    Controlled node ``i`` has phases ``mp_phase_indptr[i] .. mp_phase_indptr[i+1]``; phase
    ``p``'s in-links are ``mp_link[mp_link_indptr[p]:mp_link_indptr[p+1]]``. A phase's
    pressure is the sum of its links' :func:`_link_pressure` (in link order). The node keeps
    its current phase ``mp_phase[i]`` (an index within the node, -1 before the first
    decision) when that has the largest pressure, else takes the first phase with the
    largest pressure. The chosen phase's links are green in ``[lost, period)`` of the
    period (``lost = 0`` when the phase continues, ``mp_lost_steps`` after a switch: amber
    and all-red), the other phases' links red (``from == to == 0``). Writes
    ``sig_green_from``/``sig_green_to`` (the links' ``sig_cycle`` is the period) and wakes
    the node at ``k``.
    """
    n_mp = mp_phase_indptr.shape[0] - 1
    for i in range(n_mp):
        p0 = mp_phase_indptr[i]
        cur = mp_phase[i]
        best = 0
        best_p = -np.inf
        cur_p = -np.inf
        for ph in range(p0, mp_phase_indptr[i + 1]):
            pr = 0.0
            for s in range(mp_link_indptr[ph], mp_link_indptr[ph + 1]):
                pr += _link_pressure(mp_link[s], k, ring, ring_start, ring_cap, ring_head, ring_count, hole_head,
                                     hole_count, storage, cap_per_step, route_seq)
            if pr > best_p:
                best_p = pr
                best = ph - p0
            if ph - p0 == cur:
                cur_p = pr
        if cur >= 0 and cur_p == best_p:
            best = cur
        lost = 0 if best == cur else mp_lost_steps
        mp_phase[i] = best
        for ph in range(p0, mp_phase_indptr[i + 1]):
            green = ph - p0 == best
            for s in range(mp_link_indptr[ph], mp_link_indptr[ph + 1]):
                L = mp_link[s]
                sig_green_from[L] = lost if green else 0
                sig_green_to[L] = mp_period_steps if green else 0
                hn = link_head[L]
                if node_wake[hn] > k:
                    node_wake[hn] = k
    return 0


@njit(cache=True, nogil=True)
def simulate_queue(
    # network
    in_indptr, in_link, link_head, ff_steps, cap_per_step, storage, hole_steps,
    sig_cycle, sig_green_from, sig_green_to, link_open,
    ring_start, ring_cap,
    # demand
    route_seq, route_start, depart_step, dep_order, dep_link_indptr, dep_link_order,
    # parameters
    n_steps, stuck_steps, seed, steps_per_interval, stop_when_done,
    # emergency priority
    veh_class, priority, bypass_speed_mps, dt_s, length_m, ff_time_s, queue_m_per_veh,
    # max-pressure signal control
    mp_phase_indptr, mp_link_indptr, mp_link, mp_period_steps, mp_lost_steps,
    # state (in/out)
    ring, ring_next, ring_head, ring_count, hole_head, hole_count, head_due, head_since, node_wake,
    acc, acc_step, status, arrive_step, ev_entry, ev_enter_step, mp_phase,
    # set-up kept between calls (departure_setup)
    n_routable, ev_list, link_dep_scan,
    # outputs
    inflow, outflow, tt_sum_steps, occ_part, dep_wait, step_counts, counters,
):
    """Run the spatial-queue model for ``n_steps`` ticks (see module docstring).

    All arrays are preallocated by the caller (``twin.traffic``); shapes below use
    ``n_links``, ``n_nodes``, ``n_veh`` (vehicles) and ``n_iv`` (output intervals).

    Parameters
    ----------
    in_indptr, in_link : int64 (n_nodes+1,), int32 (n_links,)
        Reverse star: in-links of each node.
    link_head : int32 (n_links,)
        Head node of each link.
    ff_steps : int32 (n_links,)
        Free-flow traversal ticks, >= 1.
    cap_per_step : float64 (n_links,)
        Outflow capacity, vehicles per tick.
    storage : int32 (n_links,)
        Storage in vehicles, >= 1.
    hole_steps : int32 (n_links,)
        Ticks for freed space to reach the upstream end, >= 1.
    sig_cycle : int32 (n_links,)
        Signal cycle of each link in ticks; 0 for an unsignalised link (always green).
    sig_green_from, sig_green_to : int32 (n_links,)
        Green window of each signalised link, ticks within the cycle with the offset
        already applied: tick ``k`` is green when ``from <= k mod cycle < to``, or, if
        ``from > to``, when ``k mod cycle >= from`` or ``< to`` (wrapping around the cycle
        end); ``from == to`` is never green. Read only where ``sig_cycle != 0``.
    link_open : bool (n_links,)
        False for a closed link: it accepts no vehicle (departures wait, forced moves
        are refused, teleports skip it); vehicles on it may still leave.
    ring_start, ring_cap : int64, int32 (n_links,)
        Each link's slice of the vehicle and hole rings; ``ring_cap > storage``.
    route_seq : int32
        All routes, each followed by the sentinel ``-1 - v`` of its vehicle ``v``:
        vehicle ``v``'s links are ``route_seq[route_start[v]:]`` up to its sentinel.
    route_start : int64 (n_veh,)
        Index of each vehicle's first link in ``route_seq`` (unroutable vehicles never
        depart, whatever it holds).
    depart_step : int64 (n_veh,)
        Tick of planned departure.
    dep_order : int64 (n_veh,)
        Vehicles sorted by (depart_step, vehicle).
    dep_link_indptr, dep_link_order : int64 (n_links+1,), int64 (n_veh,)
        Vehicles grouped by first link, each group sorted by (depart_step, vehicle).
    n_steps : int
        Ticks to run (from the current ``counters[4]``).
    stuck_steps : int
        Ticks a due head vehicle may stay blocked before it is forced on.
    seed : int
        Seed of the node-order hash.
    steps_per_interval : int
        Ticks per output interval.
    stop_when_done : bool
        Stop early once every routable vehicle has arrived.
    veh_class : int8 (n_veh,)
        :data:`VEH_ORDINARY` (0) or :data:`VEH_EMERGENCY` (1). Read only when ``priority``.
    priority : bool
        Emergency priority on: emergency vehicles bypass queues, budgets, storage and red
        signals (module docstring). Off: every vehicle is ordinary, whatever its class.
    bypass_speed_mps : float
        Speed at which a priority vehicle passes a link's queued part, m/s (> 0).
    dt_s : float
        Tick length, seconds (for the bypass time).
    length_m, ff_time_s, queue_m_per_veh : float64 (n_links,)
        Link length, free-flow time (s) and queue length per queued vehicle (effective
        vehicle length / lanes = 1 / (lanes × jam density), metres), for the bypass time.
    mp_phase_indptr, mp_link_indptr, mp_link : int64 (n_mp+1,), int64 (n_phases+1,), int32
        Max-pressure control (see :func:`max_pressure_decide`): the phases of each
        controlled node and the in-links of each phase (each link in one phase at most;
        its ``sig_cycle`` must be ``mp_period_steps``). ``n_mp = 0``: none.
    mp_period_steps, mp_lost_steps : int
        Decision period (every tick ``k`` with ``k % period == 0``) and the lost time
        (amber + all-red) after a phase switch, ticks; ``0 <= lost < period``.
    ring : int64 (sum(ring_cap),)
        Per-link FIFO rings. Slots ``ring_head .. ring_head + ring_count`` hold vehicles,
        each ``due_tick << 32 | route_index``: the tick the vehicle may leave and its
        position in ``route_seq``. The ``hole_count`` slots just behind them, from
        ``hole_head``, hold holes, ``release_tick << 32``: a leaving vehicle's slot
        becomes its hole. Keeping no other per-vehicle state on the move path keeps the
        hot data small (the cost is memory traffic, as the shared speed-limit probe found).
    ring_next : int32 (sum(ring_cap),)
        For each vehicle slot of ``ring``, ``route_seq[route_index + 1]``: the link the
        vehicle moves into next (or its ``-1 - vehicle`` sentinel), written when it enters
        the link, while that part of ``route_seq`` is in cache; leaving then reads no
        ``route_seq`` (a cache miss per move otherwise). Whoever rewrites a ring entry's
        route index (re-routing) rewrites this too.
    ring_head, ring_count, hole_head, hole_count : int32 (n_links,)
        Ring positions and counts of vehicles and holes (``ring_count`` is the number of
        vehicles on the link).
    head_due : int64 (n_links,)
        Due tick of each link's head vehicle (a large number when empty): a cache that
        lets the node scan skip idle links without touching the rings.
    head_since : int64 (n_links,)
        Tick the link's current head vehicle became its head. The stuck rule measures
        the time a due head has been blocked: ``k - max(due, head_since)``, as MATSim's
        ``lastMovementTimeOfFirstVehicle`` (time spent queueing behind others does not count);
        on a signalised link only the green ticks in ``[max(due, head_since), k)`` count.
    node_wake : int64 (n_nodes,)
        A lower bound of the earliest tick at which one of each node's in-links has a
        due head vehicle in a green tick: a node is visited only from that tick on
        (event-driven node visits; the outcome is the same as visiting every node every
        tick).
    acc, acc_step : float64, int64 (n_links,)
        Outflow budget and the tick it was last topped up.
    status, arrive_step : int8, int64 (n_veh,)
        State code and arrival tick (-1 until arrival).
    ev_entry, ev_enter_step : int64 (n_veh,)
        A priority vehicle on a link: ``due_tick << 32 | route_index`` as in the rings
        (-1 when not on a link) and the tick it entered the link. Unused for others.
    mp_phase : int32 (n_mp,)
        Current phase of each max-pressure node, an index within the node (-1: none yet).
    n_routable, ev_list, link_dep_scan : int, int64 (n_ev,), int64 (n_links,)
        What :func:`departure_setup` computes from ``status``, ``veh_class`` and the departure
        groups, kept by the caller between calls while none of those changes from outside (the
        kernel changes none of it in a way that invalidates it): the vehicles not
        unroutable, the emergency vehicles not unroutable (``priority`` only), and per link
        a position in its departure group before which every vehicle has entered (in/out:
        the kernel scans on from it and stores where the entered prefix ends). Re-make them
        whenever a vehicle is added, a status is set from outside or the groups are re-built.
    inflow, outflow, tt_sum_steps : (n_iv, n_links)
        Per-interval vehicles entering and leaving each link, and the sum of the link
        ticks of those leaving.
    dep_wait : int64 (n_iv, n_links, 2)
        Per interval and first link: vehicles that entered the network there (``[..., 0]``)
        and the ticks they waited to enter after their departure time (``[..., 1]``). The
        wait at the origin belongs to no link's travel time; route choice needs it.
    occ_part : int64 (n_iv, n_links)
        Within-interval part of the vehicle-ticks present: an entry at tick ``k`` adds the
        ticks left in its interval, an exit subtracts them. The caller adds
        ``steps_per_interval`` × (vehicles present at the interval's start, from the
        cumulative in- and outflows) to get exact vehicle-ticks per interval.
    step_counts : int64 (n_steps_total, 3)
        Per tick: departed, in network (entered - arrived), arrived — for conservation.
    counters : int64 (7,)
        See :data:`COUNTER_NAMES`; ``counters[4]`` is the next tick to run.

    Returns
    -------
    int
        Ticks run.
    """
    n_nodes = in_indptr.shape[0] - 1
    n_veh_total = depart_step.shape[0]
    n_iv = inflow.shape[0]
    routable = n_routable
    dep_ptr = counters[5] + 0  # vehicles released so far in dep_order (unroutable ones included)
    k0 = counters[4]
    # per-link pointer into its departure group: vehicles entered so far (the scan goes on
    # from where the last call's ended: a vehicle once entered stays entered)
    link_dep_ptr = np.zeros(dep_link_indptr.shape[0] - 1, dtype=np.int64)
    for L in range(link_dep_ptr.shape[0]):
        p = max(link_dep_scan[L], dep_link_indptr[L])
        while p < dep_link_indptr[L + 1] and status[dep_link_order[p]] >= STATUS_EN_ROUTE:
            p += 1
        link_dep_ptr[L] = p
        link_dep_scan[L] = p
    active = np.zeros(link_dep_ptr.shape[0], dtype=np.int64)   # links with waiting departures
    is_active = np.zeros(link_dep_ptr.shape[0], dtype=np.bool_)
    n_active = 0
    for L in range(link_dep_ptr.shape[0]):
        p = link_dep_ptr[L]
        if p < dep_link_indptr[L + 1] and status[dep_link_order[p]] == STATUS_WAITING:
            active[n_active] = L
            is_active[L] = True
            n_active += 1
    cand = np.empty(in_link.shape[0], dtype=np.int64)
    cand_w = np.empty(in_link.shape[0], dtype=np.float64)
    # emergency vehicles with priority bypass the queues (phase 4 of a tick)
    n_ev = ev_list.shape[0] if priority else 0
    n_mp = mp_phase_indptr.shape[0] - 1
    ran = 0
    for k in range(k0, k0 + n_steps):
        ran += 1
        iv = min(k // steps_per_interval, n_iv - 1)
        iv_end = (iv + 1) * steps_per_interval
        # ------------------------------------------------------- max-pressure
        if n_mp > 0 and k % mp_period_steps == 0:
            max_pressure_decide(k, mp_phase_indptr, mp_link_indptr, mp_link, mp_period_steps, mp_lost_steps,
                                mp_phase, ring, ring_start, ring_cap, ring_head, ring_count, hole_head, hole_count,
                                storage, cap_per_step, route_seq, link_head, node_wake, sig_green_from, sig_green_to)
        # ---------------------------------------------------------------- nodes
        for node in range(n_nodes):
            if node_wake[node] > k:
                continue
            nc = 0
            wsum = 0.0
            for s in range(in_indptr[node], in_indptr[node + 1]):
                L = in_link[s]
                if head_due[L] <= k:
                    if sig_cycle[L] != 0 and not _is_green(k, sig_cycle[L], sig_green_from[L], sig_green_to[L]):
                        continue
                    # the head's next-but-one link is read when it moves (below): fetch it now
                    hs = ring_start[L] + ring_head[L]
                    _prefetch(route_seq, (ring[hs] & MASK32) + 2)
                    nx = ring_next[hs]
                    if nx >= 0:                       # and where it enters its next link's ring
                        t = ring_head[nx] + ring_count[nx]
                        _prefetch(ring, ring_start[nx] + (t if t < ring_cap[nx] else t - ring_cap[nx]))
                        _prefetch(ring, ring_start[nx] + hole_head[nx])
                    cand[nc] = L
                    cand_w[nc] = cap_per_step[L]
                    wsum += cap_per_step[L]
                    nc += 1
            draw = 0
            while nc > 0:
                # capacity-weighted draw of the next in-link to serve
                pick = 0
                if nc > 1:
                    u = _uniform(seed, k, node, draw) * wsum
                    draw += 1
                    c = 0.0
                    pick = nc - 1
                    for j in range(nc):
                        c += cand_w[j]
                        if u < c:
                            pick = j
                            break
                L = cand[pick]
                wsum -= cand_w[pick]
                cand[pick] = cand[nc - 1]
                cand_w[pick] = cand_w[nc - 1]
                nc -= 1
                # top up the outflow budget lazily
                cap = cap_per_step[L]
                top = cap + 1.0
                if acc_step[L] < k:
                    a = acc[L] + cap * (k - acc_step[L])
                    acc[L] = a if a < top else top
                    acc_step[L] = k
                base = ring_start[L]
                rc = ring_cap[L]
                while ring_count[L] > 0 and acc[L] >= 1.0:
                    slot = base + ring_head[L]
                    entry = ring[slot]
                    due = entry >> 32
                    if due > k:
                        break
                    r = entry & MASK32
                    nxt = ring_next[slot]     # = route_seq[r + 1], stored on entry (no cache miss)
                    tr = r + 1        # route index of the link the vehicle moves into
                    extra = 0         # ticks added by a teleport
                    last = nxt < 0
                    if not last:
                        # release holes that have reached nxt's upstream end
                        _release_holes(nxt, k, ring, ring_start, ring_cap, hole_head, hole_count)
                        if not link_open[nxt] or ring_count[nxt] + hole_count[nxt] >= storage[nxt]:
                            blocked_from = due if due > head_since[L] else head_since[L]
                            blocked = k - blocked_from
                            if sig_cycle[L] != 0:       # only green ticks count as blocked
                                c, gf, gt = sig_cycle[L], sig_green_from[L], sig_green_to[L]
                                blocked = _green_before(k, c, gf, gt) - _green_before(blocked_from, c, gf, gt)
                            if blocked < stuck_steps:
                                break
                            if link_open[nxt] and ring_count[nxt] + hole_count[nxt] < ring_cap[nxt] - 1:
                                counters[3] += 1          # forced into the full next link
                            else:
                                # No physical room either (or closed): teleport along the route
                                # to the first open link with room (SUMO's rule), the skipped links
                                # costing their free-flow ticks; past the last link the
                                # vehicle arrives after the free-flow time of the rest.
                                counters[6] += 1
                                while True:
                                    extra += ff_steps[nxt]
                                    tr += 1
                                    nxt = route_seq[tr]
                                    if nxt < 0:
                                        last = True
                                        break
                                    _release_holes(nxt, k, ring, ring_start, ring_cap, hole_head, hole_count)
                                    if link_open[nxt] and ring_count[nxt] + hole_count[nxt] < ring_cap[nxt] - 1:
                                        break
                    # leave L
                    acc[L] -= 1.0
                    ring[slot] = (np.int64(k) + hole_steps[L]) << 32   # the slot becomes the hole
                    hole_count[L] += 1
                    h = ring_head[L] + 1
                    if h == rc:
                        h = 0
                    ring_head[L] = h
                    ring_count[L] -= 1
                    head_since[L] = k
                    if ring_count[L] > 0:
                        head_due[L] = ring[base + h] >> 32
                        _prefetch(route_seq, (ring[base + h] & MASK32) + 2)   # the new head's, for later
                    else:
                        head_due[L] = NEVER
                    occ_part[iv, L] -= iv_end - k
                    outflow[iv, L] += 1
                    tt_sum_steps[iv, L] += k - (due - ff_steps[L])
                    if last:
                        v = -1 - nxt
                        status[v] = STATUS_ARRIVED
                        arrive_step[v] = k + extra
                        counters[2] += 1
                    else:
                        nb = ring_start[nxt]
                        tslot = ring_head[nxt] + ring_count[nxt]
                        if tslot >= ring_cap[nxt]:
                            tslot -= ring_cap[nxt]
                        nd = np.int64(k) + extra + ff_steps[nxt]
                        ring[nb + tslot] = (nd << 32) | tr
                        ring_next[nb + tslot] = route_seq[tr + 1]
                        if ring_count[nxt] == 0:
                            head_due[nxt] = nd
                            head_since[nxt] = k
                            hn = link_head[nxt]
                            if nd < node_wake[hn]:
                                node_wake[hn] = nd
                        ring_count[nxt] += 1
                        occ_part[iv, nxt] += iv_end - k
                        inflow[iv, nxt] += 1
            wake = NEVER
            for s in range(in_indptr[node], in_indptr[node + 1]):
                L = in_link[s]
                due_l = head_due[L]
                if due_l < wake and sig_cycle[L] != 0:
                    # a head due in red (at the next tick or later) can move at the next green
                    t = due_l if due_l > k else k + 1
                    g = _next_green(t, sig_cycle[L], sig_green_from[L], sig_green_to[L])
                    if g > t:
                        due_l = g
                if due_l < wake:
                    wake = due_l
            node_wake[node] = wake
        # ---------------------------------------------------------- departures
        while dep_ptr < n_veh_total and depart_step[dep_order[dep_ptr]] <= k:
            v = dep_order[dep_ptr]
            dep_ptr += 1
            counters[5] = dep_ptr
            if status[v] == STATUS_UNROUTABLE:
                continue
            status[v] = STATUS_WAITING
            counters[0] += 1
            if priority and veh_class[v] != VEH_ORDINARY:
                continue          # enters in phase 4, past any queue at the origin
            L = route_seq[route_start[v]]
            if not is_active[L]:
                is_active[L] = True
                active[n_active] = L
                n_active += 1
        j = 0
        while j < n_active:
            L = active[j]
            hb = ring_start[L]
            _release_holes(L, k, ring, ring_start, ring_cap, hole_head, hole_count)
            p = link_dep_ptr[L]
            end = dep_link_indptr[L + 1]
            while p < end:
                v = dep_link_order[p]
                if status[v] == STATUS_UNROUTABLE or (priority and veh_class[v] != VEH_ORDINARY):
                    p += 1
                    continue
                if status[v] != STATUS_WAITING or ring_count[L] + hole_count[L] >= storage[L] or not link_open[L]:
                    break
                tslot = ring_head[L] + ring_count[L]
                if tslot >= ring_cap[L]:
                    tslot -= ring_cap[L]
                ring[hb + tslot] = ((np.int64(k) + ff_steps[L]) << 32) | route_start[v]
                ring_next[hb + tslot] = route_seq[route_start[v] + 1]
                if ring_count[L] == 0:
                    head_due[L] = k + ff_steps[L]
                    head_since[L] = k
                    hn = link_head[L]
                    if head_due[L] < node_wake[hn]:
                        node_wake[hn] = head_due[L]
                ring_count[L] += 1
                occ_part[iv, L] += iv_end - k
                dep_wait[iv, L, 0] += 1
                dep_wait[iv, L, 1] += k - depart_step[v]
                status[v] = STATUS_EN_ROUTE
                inflow[iv, L] += 1
                counters[1] += 1
                p += 1
            link_dep_ptr[L] = p
            if p >= end or status[dep_link_order[p]] != STATUS_WAITING:
                # nothing waiting: drop from the active list (order kept deterministic)
                is_active[L] = False
                n_active -= 1
                active[j] = active[n_active]
            else:
                j += 1
        # ------------------------------------------- emergency vehicles (priority)
        for e in range(n_ev):
            v = ev_list[e]
            sv = status[v]
            if sv == STATUS_WAITING:
                L = route_seq[route_start[v]]
                if not link_open[L]:
                    continue
                nd = np.int64(k) + _bypass_steps(L, k, ring, ring_start, ring_cap, ring_head, ring_count, ff_steps,
                                                 bypass_speed_mps, dt_s, length_m, ff_time_s, queue_m_per_veh)
                ev_entry[v] = (nd << 32) | route_start[v]
                ev_enter_step[v] = k
                status[v] = STATUS_EN_ROUTE
                occ_part[iv, L] += iv_end - k
                inflow[iv, L] += 1
                dep_wait[iv, L, 0] += 1
                dep_wait[iv, L, 1] += k - depart_step[v]
                counters[1] += 1
            elif sv == STATUS_EN_ROUTE:
                entry = ev_entry[v]
                if (entry >> 32) > k:
                    continue
                r = entry & MASK32
                L = route_seq[r]
                nxt = route_seq[r + 1]
                if nxt >= 0 and not link_open[nxt]:
                    continue      # waits at the end of L for the link to open (or a re-route)
                occ_part[iv, L] -= iv_end - k
                outflow[iv, L] += 1
                tt_sum_steps[iv, L] += k - ev_enter_step[v]
                if nxt < 0:
                    status[v] = STATUS_ARRIVED
                    arrive_step[v] = k
                    ev_entry[v] = -1
                    counters[2] += 1
                else:
                    nd = np.int64(k) + _bypass_steps(nxt, k, ring, ring_start, ring_cap, ring_head, ring_count,
                                                     ff_steps, bypass_speed_mps, dt_s, length_m, ff_time_s,
                                                     queue_m_per_veh)
                    ev_entry[v] = (nd << 32) | (r + 1)
                    ev_enter_step[v] = k
                    occ_part[iv, nxt] += iv_end - k
                    inflow[iv, nxt] += 1
        if k < step_counts.shape[0]:
            step_counts[k, 0] = counters[0]
            step_counts[k, 1] = counters[1] - counters[2]
            step_counts[k, 2] = counters[2]
        counters[4] = k + 1
        if stop_when_done and counters[2] >= routable:
            break
    return ran


@njit(cache=True)
def departure_setup(status, veh_class, priority, dep_link_indptr):
    """The set-up :func:`simulate_queue` takes as ``n_routable, ev_list, link_dep_scan``.

    ``n_routable``: vehicles whose status is not :data:`STATUS_UNROUTABLE`; ``ev_list``: the
    emergency vehicles among them in index order (none without ``priority``);
    ``link_dep_scan``: each link's departure group start (the kernel scans on from there).
    O(vehicles): the caller keeps the three between kernel calls and re-makes them when it
    changes vehicles itself.
    """
    n_routable = 0
    n_ev = 0
    for v in range(status.shape[0]):
        if status[v] != STATUS_UNROUTABLE:
            n_routable += 1
            if priority and veh_class[v] != VEH_ORDINARY:
                n_ev += 1
    ev_list = np.empty(n_ev, dtype=np.int64)
    e = 0
    for v in range(status.shape[0]):
        if priority and veh_class[v] != VEH_ORDINARY and status[v] != STATUS_UNROUTABLE:
            ev_list[e] = v
            e += 1
    return n_routable, ev_list, dep_link_indptr[:-1].copy()


@njit(cache=True)
def queued_due(ring, ring_start, ring_cap, ring_head, ring_count, due_by, out):
    """Vehicles in each link's ring whose due tick is ``<= due_by`` (queued at its end), into ``out``
    (int64, n_links). O(vehicles on the road); the engine's live link times count these."""
    for L in range(ring_count.shape[0]):
        c = 0
        h = ring_head[L]
        cap = ring_cap[L]
        base = ring_start[L]
        for j in range(ring_count[L]):
            slot = h + j
            if slot >= cap:
                slot -= cap
            if (ring[base + slot] >> 32) <= due_by:
                c += 1
        out[L] = c
    return out


@njit(cache=True)
def insert_at(buf, n, pos, value):
    """Put ``value`` at ``buf[pos]``, moving ``buf[pos:n]`` one place on (``buf`` holds at least
    ``n + 1`` entries); a move of the tail only, with no new array."""
    for i in range(n, pos, -1):
        buf[i] = buf[i - 1]
    buf[pos] = value
