"""The traffic engine: :class:`TrafficEngine`, the state of one run advanced by the numba
kernel in blocks, with events, en-route re-routing, vehicle insertion and live link times
(re-exported by :mod:`twin.traffic`).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from twin.errors import DemandError
from twin.graph import City
from twin.traffic_inputs import (CLOSED_COST_S, DEFAULT_BYPASS_SPEED_MPS, TrafficParams, _is_real, link_arrays,
                                 read_events, read_trips, read_vehicle_class)
from twin.traffic_events import NetworkEventsMixin
from twin.traffic_setup import KernelSetupMixin
from twin.traffic_result import TrafficResult, _assemble
from twin.traffic_routes import _check_routes, _gather_index, _routes

# log records keep the logger name they had before the split into modules: twin.traffic
logger = logging.getLogger("twin.traffic")


def _check_options(*, until_s, seed, dt_s, reroute_share, reroute_interval_s, emergency_priority,
                   bypass_speed_mps):
    """Reject engine options outside their ranges (the :class:`TrafficParams` checks the rest)."""
    if not (_is_real(until_s) and math.isfinite(until_s) and until_s > 0):
        raise DemandError(f"until_s = {until_s!r}; expected a finite number of seconds > 0")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemandError(f"seed = {seed!r}; expected an integer >= 0")
    if not (_is_real(reroute_share) and 0.0 <= reroute_share <= 1.0):
        raise DemandError(f"reroute_share = {reroute_share!r}; expected a share in [0, 1]")
    if not (_is_real(reroute_interval_s) and math.isfinite(reroute_interval_s)
            and reroute_interval_s >= dt_s):
        raise DemandError(f"reroute_interval_s = {reroute_interval_s!r}; expected seconds >= dt_s")
    if not isinstance(emergency_priority, (bool, np.bool_)):
        raise DemandError(f"emergency_priority = {emergency_priority!r}; expected True or False")
    if not (_is_real(bypass_speed_mps) and math.isfinite(bypass_speed_mps) and bypass_speed_mps > 0):
        raise DemandError(f"bypass_speed_mps = {bypass_speed_mps!r}; expected a finite speed > 0 m/s")


class TrafficEngine(NetworkEventsMixin, KernelSetupMixin):
    """The state of one traffic run, advanced by the numba kernel in blocks.

    :func:`simulate_traffic` is the usual entry point; the engine is what it drives, and
    what a coupled simulation (the emergency model's SimPy clock) steps through time:
    :meth:`run_until`, :meth:`link_travel_times_s`, :meth:`route_travel_time_s`,
    :meth:`insert_vehicle` and :meth:`arrival_event`.
    Parameters as for :func:`simulate_traffic`.
    """

    def __init__(self, city: City, trips, *, until_s, seed=0, dt_s=1.0, interval_s=300.0, stuck_time_s=300.0,
                 stop_when_done=True, events=None, signals=None, reroute_share=0.0, reroute_interval_s=300.0,
                 routes=None, emergency_priority=True, bypass_speed_mps=DEFAULT_BYPASS_SPEED_MPS):
        from twin.kernels import traffic as K

        self.K = K
        self.city = city
        self.params = TrafficParams(dt_s=float(dt_s), interval_s=float(interval_s),
                                    stuck_time_s=float(stuck_time_s), stop_when_done=bool(stop_when_done))
        _check_options(until_s=until_s, seed=seed, dt_s=dt_s, reroute_share=reroute_share,
                       reroute_interval_s=reroute_interval_s, emergency_priority=emergency_priority,
                       bypass_speed_mps=bypass_speed_mps)
        self.emergency_priority = bool(emergency_priority)
        self.bypass_speed_mps = float(bypass_speed_mps)
        self.until_s = float(until_s)
        self.seed = int(seed)
        self._init_demand(trips)
        self._init_links(events)
        self._init_rerouting(reroute_share, reroute_interval_s)
        self._init_signals(signals)
        route_off, route_links, unroutable = self._initial_routes(routes)
        self._init_clock(until_s)
        self._init_route_store(route_off, route_links)
        self._init_state(unroutable)
        self._init_outputs()

    # ---------------------------------------------------------------- construction
    def _init_demand(self, trips):
        """The trips as node indices, departure times and vehicle classes."""
        o_idx, d_idx, depart_s = read_trips(self.city, trips)
        self.veh_class = read_vehicle_class(trips, len(o_idx))
        self.o_idx, self.d_idx, self.depart_s = o_idx, d_idx, depart_s
        self.n_veh = len(o_idx)

    def _init_links(self, events):
        """The kernel's per-link arrays (the ones events change are copies) and the events table."""
        city = self.city
        self.la = la = link_arrays(city, self.params.dt_s)
        self.cap_per_step = la["cap_per_step"].copy()
        self.capacity_veh_per_h = city.capacity_veh_per_h.copy()
        self.storage = la["storage"].copy()
        self.hole_steps = la["hole_steps"].copy()
        self.ff_steps = la["ff_steps"].copy()                 # speed events change these two
        self.ff_time_s = city.free_flow_time_s.copy()
        self.link_open = np.ones(city.n_links, dtype=np.bool_)
        self.events = read_events(city, events) if events is not None else []
        self.event_ptr = 0

    def _init_rerouting(self, reroute_share, reroute_interval_s):
        """The re-routing share, its period in ticks and the stream that picks who re-routes."""
        self.reroute_share = float(reroute_share)
        self.reroute_steps = max(1, int(round(reroute_interval_s / self.params.dt_s)))
        seq = np.random.SeedSequence(self.seed)
        self.rng_reroute = np.random.default_rng(seq.spawn(1)[0])

    def _init_signals(self, signals):
        """Signal windows per in-link in ticks (all zero without signals) and the max-pressure arrays."""
        city = self.city
        self.mp = dict(mp_phase_indptr=np.zeros(1, dtype=np.int64), mp_link_indptr=np.zeros(1, dtype=np.int64),
                       mp_link=np.zeros(0, dtype=np.int32), mp_period_steps=1, mp_lost_steps=0)
        if signals is not None:
            if not hasattr(signals, "to_ticks"):
                raise DemandError(f"signals must be a twin.signals.SignalPlan or MaxPressurePlan; got "
                                  f"{type(signals).__name__}")
            ticks = signals.to_ticks(self.params.dt_s)
            if len(ticks) == 4:                     # max-pressure: the kernel decides the windows
                self.mp = ticks[3]
            self.sig_cycle, self.sig_green_from, self.sig_green_to = (
                np.array(a, dtype=np.int32) for a in ticks[:3])
            if self.sig_cycle.shape != (city.n_links,):
                raise DemandError(f"the signal plan covers {len(self.sig_cycle)} links; city {city.name!r} has "
                                  f"{city.n_links} (build it with twin.signals for this city)")
        else:
            self.sig_cycle = np.zeros(city.n_links, dtype=np.int32)
            self.sig_green_from = np.zeros(city.n_links, dtype=np.int32)
            self.sig_green_to = np.zeros(city.n_links, dtype=np.int32)

    def _initial_routes(self, routes):
        """The trips' routes, computed (free flow) or given and checked: (offsets, links, unroutable)."""
        city, o_idx, d_idx = self.city, self.o_idx, self.d_idx
        if routes is None:
            route_off, route_links, unroutable = _routes(city, o_idx, d_idx)
        else:
            route_off, route_links = (np.asarray(a, dtype=np.int64) for a in routes)
            _check_routes(city, o_idx, d_idx, route_off, route_links)
            unroutable = np.diff(route_off) == 0
        if unroutable.any():
            logger.warning("%d trips have no route (destination unreachable); they are reported 'unroutable'",
                           int(unroutable.sum()))
        self.routable = ~unroutable
        return route_off, route_links, unroutable

    def _init_clock(self, until_s):
        """Ticks of the horizon, ticks per output interval, and each trip's departure tick and order."""
        params = self.params
        dt = params.dt_s
        self.n_steps_total = int(math.ceil(until_s / dt))
        self.spi = spi = max(1, int(round(params.interval_s / dt)))
        if abs(spi * dt - params.interval_s) > 1e-9 * max(1.0, params.interval_s):
            raise DemandError(f"interval_s = {params.interval_s} is not a whole number of ticks of dt_s = {dt}; "
                              f"use e.g. {spi * dt:g} s")
        self.n_iv = (self.n_steps_total + spi - 1) // spi
        self.depart_step = np.ceil(self.depart_s / dt - 1e-9).astype(np.int64)
        self.dep_order = np.lexsort((np.arange(self.n_veh), self.depart_step)).astype(np.int64)

    def _init_route_store(self, route_off, route_links):
        """Lay the routes out in ``route_seq`` and group the vehicles by first link."""
        n_veh = self.n_veh
        # routes with a sentinel -1 - v after each (see the kernel's route_seq)
        lens = np.diff(route_off)
        self.route_start = (route_off[:-1] + np.arange(n_veh)).astype(np.int64)
        self.seg_end = self.route_start + lens            # sentinel position of each vehicle's route
        self.seg_start = self.route_start.copy()          # start of each vehicle's current route segment
        used = len(route_links) + n_veh
        self.route_seq = np.empty(max(16, used + used // 4), dtype=np.int32)
        self.route_owner = np.empty(len(self.route_seq), dtype=np.int32)
        mask = np.ones(used, dtype=bool)
        mask[self.seg_end] = False
        self.route_seq[:used][mask] = route_links
        self.route_seq[self.seg_end] = -1 - np.arange(n_veh)
        self.route_owner[:used] = np.repeat(np.arange(n_veh), lens + 1)
        self.route_used = used
        self._check_route_size(used)
        self.history = {}                                  # vehicle -> [(segment start, cut position)]
        self._build_departure_groups()

    def _init_state(self, unroutable):
        """The kernel's state arrays: link rings, holes, heads, budgets and per-vehicle status."""
        city, K, la, n_veh = self.city, self.K, self.la, self.n_veh
        storage = la["storage"]
        self.ring_cap = (storage + 2).astype(np.int32)
        self.ring_start = np.zeros(city.n_links, dtype=np.int64)
        np.cumsum(self.ring_cap[:-1], out=self.ring_start[1:])
        total_ring = int(self.ring_cap.sum())
        self.state = dict(
            ring=np.zeros(total_ring, dtype=np.int64), ring_next=np.zeros(total_ring, dtype=np.int32),
            ring_head=np.zeros(city.n_links, dtype=np.int32), ring_count=np.zeros(city.n_links, dtype=np.int32),
            hole_head=np.zeros(city.n_links, dtype=np.int32), hole_count=np.zeros(city.n_links, dtype=np.int32),
            head_due=np.full(city.n_links, K.NEVER, dtype=np.int64),
            head_since=np.zeros(city.n_links, dtype=np.int64),
            node_wake=np.full(city.n_nodes, K.NEVER, dtype=np.int64),
            # a fresh link has the full budget of a link that has long been idle
            acc=la["cap_per_step"] + 1.0,
            acc_step=np.zeros(city.n_links, dtype=np.int64),
            status=np.where(unroutable, K.STATUS_UNROUTABLE, K.STATUS_NOT_DEPARTED).astype(np.int8),
            arrive_step=np.full(n_veh, -1, dtype=np.int64),
            ev_entry=np.full(n_veh, -1, dtype=np.int64), ev_enter_step=np.zeros(n_veh, dtype=np.int64),
            mp_phase=np.full(len(self.mp["mp_phase_indptr"]) - 1, -1, dtype=np.int32),
        )
        # emergency bypass: queue metres per queued vehicle = effective vehicle length / lanes
        self.queue_m_per_veh = 1000.0 / (city.jam_density_veh_per_km_per_lane * city.lanes)

    def _init_outputs(self):
        """The kernel's output arrays, the stuck-time ticks, the run's counters and the kernel's argument order."""
        import inspect

        n_iv, n_links, K = self.n_iv, self.city.n_links, self.K
        from twin.preflight import check_memory

        check_memory(n_iv * n_links * 40 + self.n_steps_total * 24,
                     f"the traffic's link series ({n_iv:,} intervals of {self.params.interval_s:g} s x {n_links:,} "
                     f"links)", "shorten the horizon or lengthen the interval")
        self.out = dict(
            inflow=np.zeros((n_iv, n_links), dtype=np.int32),
            outflow=np.zeros((n_iv, n_links), dtype=np.int32),
            tt_sum_steps=np.zeros((n_iv, n_links), dtype=np.int64),
            occ_part=np.zeros((n_iv, n_links), dtype=np.int64),
            dep_wait=np.zeros((n_iv, n_links, 2), dtype=np.int64),
            step_counts=np.zeros((self.n_steps_total, 3), dtype=np.int64),
            counters=np.zeros(len(K.COUNTER_NAMES), np.int64),
        )
        self.stuck_steps = max(1, int(round(self.params.stuck_time_s / self.params.dt_s)))
        self.kernel_s = 0.0
        self.n_rerouted = 0
        # the kernel is called positionally, its arguments looked up by its parameter names
        self._kernel_params = list(inspect.signature(
            getattr(K.simulate_queue, "py_func", K.simulate_queue)).parameters)

    # ---------------------------------------------------------------- bookkeeping
    @staticmethod
    def _check_route_size(n):
        if n >= 2**31 - 1:
            raise DemandError(f"{n:,} route entries (links over all routes plus one per trip); at most "
                              f"2**31 - 2 are supported")

    def _reserve_routes(self, need):
        """Room for ``need`` more entries in ``route_seq`` and ``route_owner`` (growing by half)."""
        if self.route_used + need > len(self.route_seq):
            grow = max(need, len(self.route_seq) // 2)
            self._check_route_size(self.route_used + grow)
            self.route_seq = np.concatenate([self.route_seq, np.empty(grow, dtype=np.int32)])
            self.route_owner = np.concatenate([self.route_owner, np.empty(grow, dtype=np.int32)])

    def _build_departure_groups(self):
        """Group the vehicles by first link; those already on the road first (kernel contract)."""
        n_veh = self.n_veh
        ok = self.routable
        first = np.where(ok, self.route_seq[np.minimum(self.route_start, len(self.route_seq) - 1)], 0)
        first = first.astype(np.int64)
        status = getattr(self, "state", {}).get("status")
        entered = (status >= self.K.STATUS_EN_ROUTE) if status is not None else np.zeros(n_veh, dtype=bool)
        order = np.lexsort((np.arange(n_veh), self.depart_step, ~entered, first))
        self.dl_order = order[ok[order]].astype(np.int64)
        self.dep_link_indptr = np.zeros(self.city.n_links + 1, dtype=np.int64)
        np.cumsum(np.bincount(first[ok], minlength=self.city.n_links), out=self.dep_link_indptr[1:])

    @property
    def now_step(self) -> int:
        """The next tick to simulate."""
        return int(self.out["counters"][4])

    @property
    def now_s(self) -> float:
        """Simulated time reached, seconds."""
        return self.now_step * self.params.dt_s

    def _kernel(self, n_steps):
        args = dict(
            in_indptr=self.city.rev_indptr, in_link=self.city.rev_link, link_head=self.city.link_to_idx,
            ff_steps=self.ff_steps, cap_per_step=self.cap_per_step, storage=self.storage,
            hole_steps=self.hole_steps, sig_cycle=self.sig_cycle, sig_green_from=self.sig_green_from,
            sig_green_to=self.sig_green_to, link_open=self.link_open,
            ring_start=self.ring_start, ring_cap=self.ring_cap, route_seq=self.route_seq,
            route_start=self.route_start, depart_step=self.depart_step, dep_order=self.dep_order,
            dep_link_indptr=self.dep_link_indptr, dep_link_order=self.dl_order,
            n_steps=int(n_steps), stuck_steps=self.stuck_steps, seed=self.seed, steps_per_interval=self.spi,
            stop_when_done=self.params.stop_when_done, veh_class=self.veh_class, priority=self.emergency_priority,
            bypass_speed_mps=self.bypass_speed_mps, dt_s=self.params.dt_s, length_m=self.city.length_m,
            ff_time_s=self.ff_time_s, queue_m_per_veh=self.queue_m_per_veh, **self.mp,
            **self.state, **self.out, **self._departure_setup())
        t0 = time.perf_counter()
        self.K.simulate_queue(*[args[name] for name in self._kernel_params])
        self.kernel_s += time.perf_counter() - t0

    def _all_done(self):
        return self.params.stop_when_done and self.out["counters"][2] >= int(self.routable.sum())

    # ---------------------------------------------------------------- running
    def run(self, progress=None):
        """Run to ``until_s`` (or until every trip has arrived)."""
        self.run_until(self.until_s, progress=progress)

    def run_until(self, t_s, progress=None):
        """Advance the simulation to time ``t_s`` (seconds), applying events and re-routing on the way."""
        dt = self.params.dt_s
        k_stop = min(self.n_steps_total, int(math.ceil(t_s / dt - 1e-9)))
        block = max(self.spi, int(3600 // max(dt, 1e-9)))
        while self.now_step < k_stop and not self._all_done():
            k = self.now_step
            self._apply_events(k)
            rerouting = self.reroute_share > 0 or self._ev_pending()
            if rerouting and k > 0 and k % self.reroute_steps == 0:
                self._reroute(share=self.reroute_share)
            nxt = min(k_stop, (k // block + 1) * block)
            if self.event_ptr < len(self.events):
                nxt = min(nxt, max(k + 1, int(math.ceil(self.events[self.event_ptr][0] / dt - 1e-9))))
            if rerouting:
                nxt = min(nxt, (k // self.reroute_steps + 1) * self.reroute_steps)
            self._kernel(nxt - k)
            if progress is not None:
                progress(min(self.now_s, self.until_s), self.until_s)

    def _ev_pending(self):
        """Whether an emergency vehicle has not arrived yet (it re-routes at every opportunity)."""
        ev = self._emergency_vehicles()
        return bool(len(ev)) and bool((self.state["status"][ev] < self.K.STATUS_ARRIVED).any())

    # ---------------------------------------------------------------- insertion
    def insert_vehicle(self, origin, destination, *, depart_s=None, link_cost_s=None, emergency=False) -> int:
        """Add a vehicle during the run, routed on the current link times; return its index.

        Parameters
        ----------
        origin, destination : node id
            External node ids (different).
        depart_s : float, optional
            Departure time, seconds; the current time when omitted (never earlier than it).
        link_cost_s : ndarray, shape (n_links,), optional
            Link costs for its route; the live :meth:`link_travel_times_s` when omitted
            (for an emergency vehicle, its own live times: ``emergency=True``).
        emergency : bool
            An emergency vehicle: with the engine's ``emergency_priority`` it passes queues
            and red signals, and it re-routes on live times at every re-routing period.

        Returns
        -------
        int
            The vehicle's index: its row in the result's ``trips`` table. Poll
            :meth:`arrival_s` (or use :meth:`arrival_event` with SimPy) to learn when it arrives.

        Raises
        ------
        DemandError
            ``origin == destination``, or no open route joins them.
        UnknownNodeError
            A node id is not in the city.

        Notes
        -----
        Without ``emergency`` the vehicle is an ordinary vehicle of the model. The per-vehicle
        arrays grow in amortised O(1) (views of buffers that double); the two departure orders
        take an O(vehicles) insertion each, which suits the tens to thousands of vehicles a
        coupled model inserts, not a whole demand.
        """
        K = self.K
        dt = self.params.dt_s
        o, d = (int(i) for i in self.city.node_index([origin, destination]))
        if o == d:
            raise DemandError(f"insert_vehicle: origin == destination ({origin!r}); a trip must leave its origin")
        if not isinstance(emergency, (bool, np.bool_)):
            raise DemandError(f"insert_vehicle: emergency = {emergency!r}; expected True or False")
        if link_cost_s is None:
            cost = self.link_travel_times_s(emergency=bool(emergency))
            cost = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        else:
            cost = self.city._checked_cost(link_cost_s)
        ro, rl, unr = _routes(self.city, np.array([o]), np.array([d]), link_cost_s=cost)
        if unr[0] or cost[rl].sum() >= CLOSED_COST_S:
            raise DemandError(f"insert_vehicle: no open route from node {origin!r} to node {destination!r}")
        step = self.now_step if depart_s is None else max(self.now_step, int(math.ceil(float(depart_s) / dt - 1e-9)))
        v = self.n_veh
        # the new vehicle's route, with its sentinel, at the end of route_seq
        need = len(rl) + 1
        self._reserve_routes(need)
        start = self.route_used
        self.route_seq[start:start + len(rl)] = rl
        self.route_seq[start + len(rl)] = -1 - v
        self.route_owner[start:start + need] = v
        self.route_used += need
        setup_kept = getattr(self, "_setup", None) is not None and all(
            a is b for a, b in zip(self._setup[0], self._setup_key()))
        ev_kept = getattr(self, "_evs", None) is not None and self._evs[0] is self.veh_class
        for name, x in (("o_idx", o), ("d_idx", d), ("depart_s", step * dt), ("routable", True),
                        ("depart_step", step), ("route_start", start), ("seg_start", start),
                        ("seg_end", start + len(rl)), ("veh_class", 1 if emergency else 0)):
            setattr(self, name, self._grow1(name, getattr(self, name), x))
        for name, x in (("status", K.STATUS_NOT_DEPARTED), ("arrive_step", -1), ("ev_entry", -1),
                        ("ev_enter_step", 0)):
            self.state[name] = self._grow1("state_" + name, self.state[name], x)
        self.n_veh = v + 1
        # O(vehicles) insertion into both departure orders, keeping the kernel's contract (no
        # re-sort): dep_order is sorted by (depart_step, index) and the new vehicle has the
        # largest index and a step not released yet, so it goes after every vehicle departing
        # at or before its step; in its first link's group (entered vehicles first, then by
        # depart_step and index) it goes after the entered prefix and the earlier departures.
        lo, hi = 0, len(self.dep_order)              # (a bisection: no gather of every departure tick)
        order, dstep = self.dep_order, self.depart_step
        while lo < hi:
            mid = (lo + hi) // 2
            if dstep[order[mid]] <= step:
                lo = mid + 1
            else:
                hi = mid
        self.dep_order = self._grow1("dep_order", self.dep_order, v, at=lo)
        first = int(rl[0])
        lo, hi = int(self.dep_link_indptr[first]), int(self.dep_link_indptr[first + 1])
        grp = self.dl_order[lo:hi]
        entered = self.state["status"][grp] >= K.STATUS_EN_ROUTE
        n_pre = int(np.argmin(entered)) if not entered.all() else len(grp)
        at = lo + n_pre + int(np.searchsorted(self.depart_step[grp[n_pre:]], step, side="right"))
        self.dl_order = self._grow1("dl_order", self.dl_order, v, at=at)
        self.dep_link_indptr[first + 1:] += 1
        if ev_kept:
            self._evs = (self.veh_class, np.append(self._evs[1], v) if emergency else self._evs[1])
        if setup_kept:
            # the new vehicle is routable, an emergency one joins ev_list (last: largest index),
            # and it enters its group at or after the entered prefix: the groups after it shift
            kept = self._setup[2]
            kept["n_routable"] += 1
            if emergency and self.emergency_priority:
                kept["ev_list"] = np.append(kept["ev_list"], v)
            kept["link_dep_scan"][first + 1:] += 1
            self._setup = (self._setup_key(), self._setup[1], kept)
        return v

    def arrival_s(self, vehicle) -> float:
        """Arrival time of a vehicle, seconds, or NaN while it has not arrived."""
        k = int(self.state["arrive_step"][int(vehicle)])
        return k * self.params.dt_s if k >= 0 else math.nan

    def link_exits(self) -> np.ndarray:
        """Vehicles that have left each link so far (cumulative over the run), shape (n_links,).

        Differences between two calls give the vehicles (and, times ``city.length_m``, the
        vehicle-metres) driven on each link in between; finished output intervals are summed
        once, so a call costs O(links).
        """
        out, spi = self.out["outflow"], self.spi
        if not hasattr(self, "_exits_iv"):
            self._exits_iv, self._exits_done = 0, np.zeros(out.shape[1], dtype=np.int64)
        iv_now = min(self.now_step // spi, out.shape[0] - 1)
        if iv_now > self._exits_iv:
            self._exits_done += out[self._exits_iv:iv_now].sum(axis=0).astype(np.int64)
            self._exits_iv = iv_now
        return self._exits_done + out[iv_now]

    def arrival_lower_bound_s(self, vehicle) -> float:
        """Earliest time the vehicle can still arrive, seconds, or NaN where not known cheaply.

        For a vehicle not yet on the road: its departure plus its route's free-flow ticks;
        on a link: the tick it may leave that link (its due tick; an emergency vehicle
        bypassing queues has its own) plus the free-flow ticks of the rest of its route. No
        vehicle of the model travels a link faster than its free-flow ticks, so it is a true
        lower bound. The arrival time itself once arrived. NaN for a vehicle waiting to enter
        its first link while others hold it back (rare: use a tick).
        """
        v = int(vehicle)
        K, dt = self.K, self.params.dt_s
        status = int(self.state["status"][v])
        if status == K.STATUS_ARRIVED:
            return self.arrival_s(v)
        ff = self.ff_steps
        if status <= K.STATUS_WAITING:
            r0, k0 = int(self.route_start[v]), max(int(self.depart_step[v]), self.now_step)
        elif self.emergency_priority and self.veh_class[v] != 0 and self.state["ev_entry"][v] >= 0:
            entry = int(self.state["ev_entry"][v])
            r0, k0 = (entry & 0xFFFFFFFF) + 1, max(entry >> 32, self.now_step)
        else:
            st = self.state
            r, due = K.vehicle_route_position(int(self.seg_start[v]), int(self.seg_end[v]), self.route_seq, st["ring"],
                                              self.ring_start, self.ring_cap, st["ring_head"], st["ring_count"])
            if r < 0:
                return math.nan
            r0, k0 = int(r) + 1, max(int(due), self.now_step)
        end = int(self.seg_end[v])          # the sentinel of the current segment
        if not int(self.seg_start[v]) <= r0 <= end:
            end = r0
            while self.route_seq[end] >= 0:
                end += 1
        return (k0 + int(ff[self.route_seq[r0:end]].sum())) * dt

    def arrival_event(self, env, vehicle, *, poll_s=None):
        """A SimPy event that succeeds, with the arrival time as its value, once the vehicle arrives.

        A SimPy process advances this engine and checks the vehicle. With ``poll_s`` it checks
        every ``poll_s`` seconds (``run_until(env.now)``): the event fires at the first check
        after the arrival has been simulated, late by at most ``poll_s``. Without it (the
        default) it sleeps until :meth:`arrival_lower_bound_s` (else one tick); at each
        check it also simulates the tick that starts at ``env.now``, so the event fires at the
        arrival's own time, not later: its value equals ``env.now`` then. That look-ahead means
        a vehicle inserted later at the same instant departs one tick later. Advance the engine
        to ``env.now`` (``run_until``) before :meth:`insert_vehicle`, or pass ``depart_s=env.now``.
        """
        return self.arrival_watch(env, vehicle, poll_s=poll_s)[0]

    def arrival_watch(self, env, vehicle, *, poll_s=None, wait=None):
        """:meth:`arrival_event` and the process that watches the vehicle: ``(event, process)``.
        A watch restored from a checkpoint first waits on ``wait`` (its pending check)."""
        dt = self.params.dt_s
        event = env.event()

        def watch(wait):
            if wait is not None:
                yield wait
            while True:
                if poll_s is None:
                    self.run_until(env.now + dt)
                else:
                    self.run_until(env.now)
                t = self.arrival_s(vehicle)
                if not math.isnan(t):
                    event.succeed(t)
                    return
                if self.now_step >= self.n_steps_total:
                    event.fail(DemandError(f"vehicle {vehicle} did not arrive by the traffic horizon "
                                           f"({self.n_steps_total * dt:.0f} s)"))
                    return
                if poll_s is not None:
                    w = float(poll_s)
                else:
                    lb = self.arrival_lower_bound_s(vehicle)
                    w = lb - env.now if math.isfinite(lb) and lb - env.now >= dt else dt
                yield env.timeout(w)

        return event, env.process(watch(wait))

    # ---------------------------------------------------------------- live state
    def _on_road(self):
        """(vehicle, link, route position, due tick, slot) of every vehicle on a link.

        Vehicles in the rings first (ring order, ``slot`` their ring slot), then the
        emergency vehicles with priority that bypass the rings (vehicle order, ``slot =
        -1 - vehicle``).
        """
        st = self.state
        counts = st["ring_count"].astype(np.int64)
        total = int(counts.sum())
        link = np.repeat(np.arange(self.city.n_links), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        j = np.arange(total) - first
        slot = self.ring_start[link] + (st["ring_head"][link].astype(np.int64) + j) % self.ring_cap[link]
        entry = st["ring"][slot]
        ev = self._emergency_vehicles()                 # (only emergency vehicles bypass)
        ev = ev[st["ev_entry"][ev] >= 0]
        if len(ev):
            entry = np.concatenate([entry, st["ev_entry"][ev]])
            slot = np.concatenate([slot, -1 - ev.astype(np.int64)])
        pos = entry & self.K.MASK32
        due = entry >> 32
        veh = self.route_owner[pos]
        if len(ev):
            link = np.concatenate([link, self.route_seq[pos[total:]].astype(np.int64)])
        return veh, link, pos, due, slot

    def queued_on_links(self) -> np.ndarray:
        """Vehicles in each link's ring past their due tick (held at its end at least a tick), float array."""
        veh, link, pos, due, slot = self._on_road()
        q = (slot >= 0) & (due < self.now_step)
        return np.bincount(link[q], minlength=self.city.n_links).astype(np.float64)

    def vehicle_nodes(self, vehicles) -> np.ndarray:
        """City node index each vehicle is at or heading for now: its origin before it enters
        the network, the end of its current link on the road, its destination once arrived."""
        v = np.asarray(vehicles, dtype=np.int64)
        out = np.where(self.state["status"][v] == self.K.STATUS_ARRIVED, self.d_idx[v], self.o_idx[v]).astype(np.int64)
        veh, link, _, _, _ = self._on_road()
        at = np.full(self.n_veh, -1, dtype=np.int64)
        at[veh] = np.asarray(self.city.link_to_idx)[link]
        return np.where(at[v] >= 0, at[v], out)

    def link_travel_times_s(self, *, emergency=False) -> np.ndarray:
        """Current travel time of every link, seconds (``inf`` when closed).

        Free-flow time plus the point-queue delay of the vehicles already due at the
        link's end: ``queued / capacity``. A live estimate for routing, not a forecast.
        With ``emergency`` and the engine's priority on: the time an emergency vehicle
        entering now would take (the bypass rule of :mod:`twin.kernels.traffic`, in
        seconds, not rounded to ticks).
        """
        st = self.state                      # (bypassing emergency vehicles hold no queue)
        queued = self.K.queued_due(st["ring"], self.ring_start, self.ring_cap, st["ring_head"], st["ring_count"],
                                   self.now_step, np.empty(self.city.n_links, dtype=np.int64))
        city = self.city
        if emergency and self.emergency_priority:
            q_m = np.minimum(city.length_m, queued * self.queue_m_per_veh)
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.where(city.length_m > 0, q_m / city.length_m, 0.0)
            t = self.ff_time_s * (1.0 - f) + np.maximum(self.ff_time_s * f,
                                                                 q_m / self.bypass_speed_mps)
        else:
            with np.errstate(divide="ignore"):
                delay = queued * self.params.dt_s / self.cap_per_step
            t = self.ff_time_s + delay
        t[~self.link_open] = np.inf
        return t

    def route_travel_time_s(self, links) -> float:
        """Expected travel time of a route (link indices) on the current link times, seconds."""
        return float(self.link_travel_times_s()[np.asarray(links, dtype=np.int64)].sum())

    # ---------------------------------------------------------------- re-routing
    def _append_segments(self, vehicles, cuts, seg_links, seg_off):
        """Append new route segments (one per vehicle) with sentinels; return their start positions.

        ``cuts[i]`` is where vehicle i leaves its current segment: the driven part of that
        segment is ``seg_start .. cuts[i]`` (exclusive), kept for the driven-route output.
        """
        lens = np.diff(seg_off)
        need = int(lens.sum()) + len(vehicles)
        self._reserve_routes(need)
        base = self.route_used
        seg_start = base + seg_off[:-1] + np.arange(len(vehicles))
        sentinel = seg_start + lens
        mask = np.ones(need, dtype=bool)
        mask[sentinel - base] = False
        self.route_seq[base:base + need][mask] = seg_links
        self.route_seq[sentinel] = -1 - vehicles
        self.route_owner[base:base + need] = np.repeat(vehicles, lens + 1)
        self.route_used += need
        for v, old, cut in zip(vehicles.tolist(), self.seg_start[vehicles].tolist(), np.asarray(cuts).tolist()):
            self.history.setdefault(v, []).append((old, cut))
        self.seg_start[vehicles] = seg_start
        self.seg_end[vehicles] = sentinel
        return seg_start

    def _segment_sums(self, starts, ends, per_link):
        """Sum of ``per_link`` over the route positions ``[starts[i], ends[i])`` of each vehicle."""
        lens = np.maximum(np.asarray(ends, dtype=np.int64) - starts, 0)
        out = np.zeros(len(lens))
        if not len(lens) or not lens.sum():
            return out
        vals = per_link[self.route_seq[_gather_index(starts, lens)]]
        off = np.cumsum(lens) - lens
        out = np.add.reduceat(np.append(vals, 0.0), off)
        out[lens == 0] = 0.0
        return out

    def _reroute(self, share, not_started=False):
        """Re-route vehicles whose route crosses a closed link, and ``share`` of the others on the road.

        With ``not_started``, vehicles not yet on the road reconsider too (from their origin,
        switching when faster), as after a reopening.
        """
        K = self.K
        # closed links cost a prohibitive finite amount, so prefix sums stay finite
        cost = self.link_travel_times_s()
        cost = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        closed_any = not self.link_open.all()
        closed_f = (~self.link_open).astype(np.float64)
        status = self.state["status"]
        # 1. vehicles on the road: from the head node of their current link
        veh, link, pos, due, slot = self._on_road()
        end = self.seg_end[veh]
        must = (self._segment_sums(pos + 1, end, closed_f) > 0 if closed_any
                else np.zeros(len(veh), dtype=bool))
        pick = must | (self.rng_reroute.random(len(veh)) < share) if share > 0 else must
        # emergency vehicles always reconsider, on their own live link times
        is_ev = self.veh_class[veh] != 0
        pick = pick | is_ev
        origin = self.city.link_to_idx[link].astype(np.int64)
        dest = self.d_idx[veh]
        pick &= origin != dest
        groups = [(pick & ~is_ev, cost)]
        if is_ev.any():
            ev_cost = self.link_travel_times_s(emergency=True)
            groups.append((pick & is_ev, np.where(np.isfinite(ev_cost), ev_cost, CLOSED_COST_S)))
        for group, gcost in groups:
            if not group.any():
                continue
            sel = np.flatnonzero(group)
            ro, rl, unr = _routes(self.city, origin[sel], dest[sel], link_cost_s=gcost)
            new_cost = np.add.reduceat(np.append(gcost[rl], 0.0), ro[:-1]) if len(rl) else np.zeros(len(sel))
            new_cost = np.where(np.diff(ro) > 0, new_cost, np.inf)
            old_cost = self._segment_sums(pos[sel] + 1, end[sel], gcost)
            better = ~unr & ((new_cost < old_cost - 1e-9) | must[sel]) & (new_cost < CLOSED_COST_S)
            if better.any():
                b = np.flatnonzero(better)
                lens = np.diff(ro)[b]
                seg_off = np.zeros(len(b) + 1, dtype=np.int64)
                np.cumsum(lens + 1, out=seg_off[1:])
                # each new segment: the current link, then the new route from its head node
                seg_links = np.empty(int(seg_off[-1]), dtype=np.int32)
                head_pos = np.zeros(len(seg_links), dtype=bool)
                head_pos[seg_off[:-1]] = True
                seg_links[head_pos] = link[sel[b]]
                seg_links[~head_pos] = rl[_gather_index(ro[:-1][b], lens)]
                vs = veh[sel[b]].astype(np.int64)
                new_start = self._append_segments(vs, pos[sel[b]], seg_links, seg_off)
                # point the ring entries (or a bypassing emergency vehicle's entry) at the
                # new segments, due tick kept
                new_entry = (due[sel[b]] << 32) | new_start
                sl = slot[sel[b]]
                ring_vehicle = sl >= 0
                self.state["ring"][sl[ring_vehicle]] = new_entry[ring_vehicle]
                self.state["ring_next"][sl[ring_vehicle]] = self.route_seq[new_start[ring_vehicle] + 1]
                self.state["ev_entry"][-1 - sl[~ring_vehicle]] = new_entry[~ring_vehicle]
                self.n_rerouted += len(b)
        # 2. vehicles not yet on the road whose route crosses a closed link: from the origin
        if closed_any or not_started:
            waiting = np.flatnonzero(self.routable & (status <= K.STATUS_WAITING))
            if len(waiting):
                st = self.route_start[waiting]
                crosses = (self._segment_sums(st, self.seg_end[waiting], closed_f) > 0 if closed_any
                           else np.zeros(len(waiting), dtype=bool))
                w = waiting[crosses | not_started]
                if len(w):
                    ro, rl, unr = _routes(self.city, self.o_idx[w], self.d_idx[w],
                                          link_cost_s=cost)
                    seg_cost = np.add.reduceat(np.append(cost[rl], 0.0), ro[:-1]) if len(rl) else np.zeros(len(w))
                    old_cost = self._segment_sums(self.route_start[w], self.seg_end[w], cost)
                    must_w = self._segment_sums(self.route_start[w], self.seg_end[w], closed_f) > 0
                    good = ~unr & (np.diff(ro) > 0) & (seg_cost < CLOSED_COST_S) & (must_w | (seg_cost < old_cost - 1e-9))
                    if good.any():
                        g = np.flatnonzero(good)
                        seg_links = rl[_gather_index(ro[:-1][g], np.diff(ro)[g])].astype(np.int32)
                        seg_off = np.zeros(len(g) + 1, dtype=np.int64)
                        np.cumsum(np.diff(ro)[g], out=seg_off[1:])
                        vs = w[g].astype(np.int64)
                        self.route_start[vs] = self._append_segments(vs, self.seg_start[vs], seg_links, seg_off)
                        self.n_rerouted += len(g)
                        self._build_departure_groups()

    # ---------------------------------------------------------------- results
    def driven_routes(self):
        """Each vehicle's route as driven (re-routing included): (offsets, links)."""
        n = self.n_veh
        pv, pa, pb = [], [], []
        for v, hist in self.history.items():
            for old, cut in hist:
                pv.append(v)
                pa.append(old)
                pb.append(cut)
        pv = np.concatenate([np.array(pv, dtype=np.int64), np.arange(n, dtype=np.int64)])
        pa = np.concatenate([np.array(pa, dtype=np.int64), self.seg_start])
        pb = np.concatenate([np.array(pb, dtype=np.int64), self.seg_end])
        order = np.argsort(pv, kind="stable")      # per vehicle: history pieces in order, then the current
        pv, pa, pb = pv[order], pa[order], pb[order]
        lens = np.maximum(pb - pa, 0)
        links = self.route_seq[_gather_index(pa, lens)].astype(np.int64)
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(pv, weights=lens, minlength=n).astype(np.int64), out=off[1:])
        return off, links

    def result(self) -> TrafficResult:
        """Assemble the :class:`TrafficResult` of the run so far."""
        import pandas as pd

        st, out, spi, n_iv = self.state, self.out, self.spi, self.n_iv
        k_end = self.now_step
        # vehicle-ticks per interval: within-interval parts plus whole intervals of the
        # vehicles present at each interval's start; the last interval ends at k_end.
        present_start = np.zeros_like(out["occ_part"])
        np.cumsum((out["inflow"] - out["outflow"])[:-1], axis=0, out=present_start[1:])
        vsteps = out["occ_part"] + spi * present_start
        if n_iv and k_end < n_iv * spi:
            last_iv = max(k_end - 1, 0) // spi
            present = st["ring_count"].astype(np.int64)
            ev = self._emergency_vehicles()
            ev = ev[st["ev_entry"][ev] >= 0]
            if len(ev):
                on = self.route_seq[st["ev_entry"][ev] & self.K.MASK32]
                present = present + np.bincount(on, minlength=self.city.n_links)
            vsteps[last_iv] -= present * ((last_iv + 1) * spi - k_end)
            vsteps[last_iv + 1:] = 0
        outs = dict(out, occ_vsteps=vsteps)
        route_off, route_links = self.driven_routes()
        # copies: a result taken mid-run must not change when the engine runs on
        outs = {k: np.array(v, copy=True) for k, v in outs.items()}
        st = {k: np.array(v, copy=True) for k, v in st.items()}
        res = _assemble(self.city, self.o_idx, self.d_idx, self.depart_s, route_off, route_links,
                        st, outs, self.params, k_end, spi, n_iv, outs["step_counts"][:k_end], pd)
        res.trips["vehicle_class"] = pd.Categorical.from_codes(np.minimum(self.veh_class, 1).astype(np.int8),
                                                               categories=["car", "emergency"])
        res.kpis["rerouted"] = int(self.n_rerouted)
        if getattr(self, "cancelled", None) is not None:     # cancelled or held trips (twin.traffic_fork)
            from twin.traffic_fork import cancelled_mask

            gone = cancelled_mask(self)
            res.trips["status"] = res.trips["status"].cat.add_categories(["cancelled"])
            res.trips.loc[gone, "status"] = "cancelled"
            res.kpis["unroutable"] -= int((gone & (st["status"] == self.K.STATUS_UNROUTABLE)).sum())
            res.kpis["not_departed"] -= int((gone & (st["status"] == self.K.STATUS_NOT_DEPARTED)).sum())
            res.kpis["cancelled"] = int(gone.sum())
        res.meta["kernel_s"] = self.kernel_s
        return res
