"""The traffic flow: ``[traffic]``, background traffic on the city, kept in step with the clock.

With demand — ``random_trips > 0`` or a ``trips`` CSV, or else the car legs of a
:class:`~twin.ports.TripDemand` port (a synthetic population) — the flow builds a
:class:`~twin.traffic.TrafficEngine` on the scenario's city and advances it in lockstep with
the clock: a process at SimPy's ``URGENT`` priority (:class:`twin.clock.UrgentTimeout`) calls
``engine.run_until(now)`` every ``sync_s`` seconds (default 60) up to the traffic horizon
(``traffic.until_s``; default ``run.until_s``, or at least the demand's ``min_horizon_s``);
link times stay as last seen after it. Without demand the flow stays out of the run
(static travel times).

Ports: :class:`~twin.ports.LiveTravel` (travel-time providers on live link times, and units
as vehicles) and :class:`~twin.ports.Exposure` (vehicle exits per link and a hook at each
synchronisation, e.g. for crash calls).

*Units as vehicles* (``ambulances_in_traffic = true``, the default). Every leg a unit drives
(to the scene, scene to hospital, between hospitals, back to its station or to a move-up
post) is a vehicle inserted into the engine at the leg's start
(:meth:`~twin.traffic.TrafficEngine.insert_vehicle`, routed on the current link times) and
the leg lasts until that vehicle arrives in the traffic model
(:meth:`~twin.traffic.TrafficEngine.arrival_event`, which fires at the simulated arrival
time itself). Units thus add load, queue, and are re-timed by congestion met on the way.
Lights and sirens: response legs to calls of priority ``<= lights_and_sirens_priority``
(default 2) and transports of priority-1 patients are emergency vehicles; with
``emergency_priority`` (default true) they pass queues at ``bypass_speed_mps`` and red
signals (the kernel's priority rule, :mod:`twin.kernels.traffic`) and re-route on live times
every re-routing period. Dispatch and hospital choices use the engine's emergency link
times (``link_travel_times_s(emergency=True)``) as estimates. Limits: a unit redirected
while returning leaves its vehicle to finish the old leg (one extra car), and starts the
new leg from where the old one started; legs starting after the traffic horizon, or not
finished by it, take the last link times. ``[service] emergency_speed_factor`` and
``queue_delay_share`` must stay 1 here (they belong to the next mode).

*Legs timed at their start* (``ambulances_in_traffic = false``). Whenever a unit starts a
leg, and when the nearest-idle policy compares units, the travel time is the least-cost
path on the *current* link costs ``free_flow_time_s / emergency_speed_factor +
queue_delay_share × queue delay`` (the delay is ``TrafficEngine.link_travel_times_s() -
free_flow_time_s``: vehicles already queued at the link's end over its capacity). The leg
then lasts that long: the ambulance adds no load and is not re-timed when congestion
changes mid-leg; priority is the share of the queue delay it keeps (1 none, 0 full bypass
and preemption).

Randomness: ``traffic_demand`` (the random trips) and ``traffic`` (the engine's re-routing
draws), both as integer seeds of their streams.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.clock import UrgentTimeout
from twin.errors import DemandError, ScenarioError
from twin.flows import Flow, FlowResult
from twin.ports import Exposure, LinkControl, LiveTravel, TripDemand, TripIntake, TripOutcome, TripRelease
from twin.spec import Table, setting
from twin.traffic_result import GRIDLOCK_SHARE, gridlocked
from twin.units import fmt_min as _fmt_min

__all__ = ["TrafficGroup", "TrafficFlow", "TrafficTravelTimes", "traffic_trips"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrafficGroup:
    """``[traffic]``: background traffic coupled to the clock (optional table)."""

    random_trips: int = setting(0, "int", "uniform random OD trips (twin.demand.random_trips; at most 100 million)",
                                minimum=0, maximum=100_000_000)
    trips: str = setting("", "str", "CSV of trips (origin, destination, depart_s), relative to the scenario file",
                         path=True)
    window_start_s: float = setting(0.0, "float", "start of the random trips' departure window, seconds",
                                    minimum=0.0)
    window_s: float = setting(3600.0, "float", "length of the departure window, seconds", minimum=0.0, strict=True)
    until_s: float | None = setting(None, "float", "traffic horizon, seconds (default run.until_s)", minimum=0.0,
                                    strict=True)
    dt_s: float = setting(1.0, "float", "traffic tick, seconds", minimum=0.0, strict=True)
    sync_s: float = setting(60.0, "float", "the other flows read link times this often, seconds", minimum=0.0,
                            strict=True)
    reroute_share: float = setting(0.0, "float", "share of vehicles re-routing en route", minimum=0.0, maximum=1.0)
    reroute_interval_s: float = setting(300.0, "float", "re-routing period, seconds", minimum=0.0, strict=True)
    signals: bool = setting(False, "bool", "signals at every node with 3+ in-links (control: signal_control)")
    signal_control: str = setting("fixed-time", "choice", "with signals = true: 'fixed-time' (Webster splits) or "
                                                          "'max-pressure' (Varaiya 2013)",
                                  choices=("fixed-time", "max-pressure"))
    signal_cycle_s: float = setting(90.0, "float", "fixed-time signal cycle, seconds", minimum=0.0, strict=True)
    min_green_s: float = setting(15.0, "float", "max-pressure decision period, seconds", minimum=0.0, strict=True)
    ambulances_in_traffic: bool = setting(True, "bool", "units drive as vehicles of the traffic model (else each "
                                                        "leg is timed on the live link times at its start)")
    emergency_priority: bool = setting(True, "bool", "lights-and-sirens legs pass queues and red signals "
                                                     "(ambulances_in_traffic)")
    bypass_speed_mps: float = setting(5.0, "float", "speed of an emergency vehicle past a queue, m/s", minimum=0.0,
                                      strict=True)
    lights_and_sirens_priority: int = setting(2, "int", "response legs to calls of this priority or more urgent "
                                                        "(1 = most) use lights and sirens; transports only for "
                                                        "priority 1", minimum=0)


def traffic_trips(tg, city, seed_demand, *, path=None, source="scenario"):
    """The ``[traffic]`` table's own demand (its CSV, then its random trips) sorted by
    departure, or None when it has none."""
    import pandas as pd

    from twin.demand import random_trips

    parts = []
    if tg.trips:
        p = Path(tg.trips)
        if not p.is_absolute() and path is not None:
            p = path.parent / p
        try:
            csv = pd.read_csv(p)
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{source}: [traffic] trips = {tg.trips!r}: cannot read {p}: {exc}") from None
        missing = [c for c in ("origin", "destination", "depart_s") if c not in csv.columns]
        if missing:
            raise ScenarioError(f"{source}: [traffic] trips = {tg.trips!r}: {p} has no column(s) "
                                f"{', '.join(missing)}; expected origin, destination (node ids) and depart_s "
                                f"(seconds); found {', '.join(map(str, csv.columns)) or 'no columns'}")
        parts.append(csv)
    if tg.random_trips:
        t = random_trips(city, tg.random_trips, tg.window_s, seed_demand)
        t["depart_s"] = t["depart_s"] + tg.window_start_s
        parts.append(pd.DataFrame(t))
    if not parts:
        return None
    trips = pd.concat(parts, ignore_index=True)
    return trips.sort_values("depart_s", kind="stable").reset_index(drop=True)


def sync_loop(env, engine, *, sync_s, until_s, on_sync, wait=None):
    """The synchronisation process: ``engine.run_until(now)`` then ``on_sync(now, next_s)``
    every ``sync_s`` seconds at URGENT priority, up to ``until_s`` (restored from a
    checkpoint: after ``wait``, its pending step)."""
    if wait is not None:
        yield wait
    while True:
        engine.run_until(min(env.now, until_s))
        on_sync(env.now, min(sync_s, until_s - env.now))
        if env.now >= until_s:
            return
        yield UrgentTimeout(env, min(sync_s, until_s - env.now))


class TrafficTravelTimes:
    """Travel-time provider for :class:`twin.agents.ems.CityModel` on live traffic.

    Parameters
    ----------
    engine : twin.traffic.TrafficEngine
        Advanced to the clock every ``sync_s`` seconds (by the traffic flow, or, used on its
        own, by :meth:`start`'s process).
    location_node_idx : ndarray of int, shape (n_locations,)
        City node of each EMS location.
    sync_s : float
        Synchronisation period, seconds.
    until_s : float
        Last synchronisation time (the traffic horizon); later legs see the last link times.
    emergency_speed_factor : float
        Ambulance speed over link free-flow speed (queue delays are not scaled).
    queue_delay_share : float
        Share of the live queue delay an ambulance suffers (1: none of the priority
        measures; 0: it bypasses queues and signals preempt for it). Without ``vehicles`` only.
    vehicles : bool
        Units drive as vehicles of the engine (:meth:`drive`); then ``emergency_speed_factor``
        and ``queue_delay_share`` must be 1 (the kernel moves them at link speeds, with its
        own priority rule).
    lights_and_sirens_priority : int
        With ``vehicles``: response legs to calls of priority ``<=`` this, and transports of
        priority 1, are emergency vehicles (priority in the engine when it has
        ``emergency_priority``); other legs are ordinary vehicles.
    coupled : bool
        The traffic flow drives the synchronisation (and calls :meth:`invalidate`); else
        :meth:`start` registers a synchronisation process of its own.
    legs : tuple of str, optional
        Leg kinds (default :attr:`LEGS`, the EMS legs); a fleet of trucks names its own.
    ordinary : bool
        With ``vehicles``: never emergency vehicles (a fleet of trucks); times and routes on
        the ordinary live link times.

    Notes
    -----
    Without ``vehicles``, link costs are ``free_flow_time_s / emergency_speed_factor + share ×
    (live - free_flow_time_s)`` with ``live = engine.link_travel_times_s()``; with them, the
    engine's own emergency link times (``link_travel_times_s(emergency=True)``: the bypass
    time when priority is on). Least-cost rows from an origin are cached until the next
    synchronisation. See :mod:`twin.scenarios.traffic` for the fidelity.
    """

    #: Leg codes of :attr:`legs`.
    LEGS = ("response", "transport", "transfer", "return")

    def __init__(self, engine, location_node_idx, *, sync_s=60.0, until_s, emergency_speed_factor=1.0,
                 queue_delay_share=1.0, vehicles=False, lights_and_sirens_priority=2, coupled=False, legs=None,
                 ordinary=False):
        if vehicles and (emergency_speed_factor != 1.0 or queue_delay_share != 1.0):
            raise ScenarioError("[service] emergency_speed_factor and queue_delay_share apply to legs timed on "
                                "live link times; with [traffic] ambulances_in_traffic = true the units are "
                                "vehicles of the traffic model (priority: [traffic] emergency_priority, "
                                "bypass_speed_mps). Leave both at 1 or set ambulances_in_traffic = false")
        self.vehicles = bool(vehicles)
        if legs is not None:
            self.LEGS = tuple(legs)
        self.ordinary = bool(ordinary)
        self.ls_priority = int(lights_and_sirens_priority)
        self.legs = []            # (vehicle index, leg code, emergency, start_s, end_s) of driven legs
        self.engine = engine
        self.city = engine.city
        self.loc_nodes = np.asarray(location_node_idx, dtype=np.int64)
        self.sync_s = float(sync_s)
        self.until_s = float(until_s)
        self.factor = float(emergency_speed_factor)
        self.queue_share = float(queue_delay_share)
        self.coupled = bool(coupled)
        self._cost = None
        self._rows = {}
        self._route_cost = {}          # emergency (bool) -> routing costs of unit vehicles
        self.n_syncs = 0
        self.no_route_legs = 0         # legs that found no open route (cut off by closures) and waited
        self.active = []               # the legs being driven (_Leg)

    def start(self, model) -> None:
        """Called by the EMS model once built: on its own, register the synchronisation."""
        if not self.coupled:
            model.env.process(sync_loop(model.env, self.engine, sync_s=self.sync_s, until_s=self.until_s,
                                        on_sync=lambda now, nxt: self.invalidate()))

    def invalidate(self) -> None:
        """Forget cached link costs and rows (after the engine has advanced)."""
        self._cost = None
        self._rows.clear()
        self._route_cost.clear()
        self.n_syncs += 1

    def link_cost_s(self) -> np.ndarray:
        """Current ambulance cost of every link, seconds (``inf`` when closed)."""
        if self._cost is None:
            if self.vehicles:
                self._cost = np.asarray(self.engine.link_travel_times_s(emergency=not self.ordinary),
                                        dtype=np.float64)
                return self._cost
            ff = self.city.free_flow_time_s
            live = self.engine.link_travel_times_s()
            cost = ff / self.factor + self.queue_share * np.maximum(live - ff, 0.0)
            cost[~np.isfinite(live)] = np.inf
            self._cost = cost
        return self._cost

    def drive(self, env, origin_idx, destination_idx, *, leg, priority):
        """With ``vehicles``: drive one leg as a vehicle of the engine; a SimPy process
        ending when it arrives. Without, there is nothing to drive (``AttributeError``)."""
        if not self.vehicles:
            raise AttributeError("drive: this provider times legs at their start (vehicles = False)")
        emergency = not self.ordinary and ((leg == "response" and 0 < priority <= self.ls_priority)
                                           or (leg == "transport" and priority == 1))
        rec = _Leg(int(origin_idx), int(destination_idx), self.LEGS.index(leg), emergency, env.now)
        return self._start_leg(env, rec)

    @property
    def drives(self) -> bool:
        """Whether units drive as vehicles (:meth:`drive`) rather than take :meth:`time_s`."""
        return self.vehicles

    def _start_leg(self, env, rec, wait=None):
        self.active.append(rec)
        rec.proc = env.process(self._leg(env, rec, wait))
        return rec.proc

    def _leg(self, env, rec, wait=None):
        """One leg (``rec``: a :class:`_Leg`) from its ``phase`` on: 0 starting, 1 past the
        traffic horizon, 2 waiting for a route to open, 3 past the horizon after waiting,
        4 driving (the vehicle ``rec.v``), 5 the rest at the last link times."""
        o, d, t0 = rec.o, rec.d, rec.t0
        no, nd = int(self.loc_nodes[o]), int(self.loc_nodes[d])
        if no == nd:
            self.active.remove(rec)
            return
        dt = self.engine.params.dt_s
        if rec.phase == 0:
            if env.now + dt >= self.until_s:        # past the traffic horizon: the last link times
                rec.phase, wait = 1, env.timeout(self._last_s(o, d, no, nd))
            else:
                self.engine.run_until(env.now)
                rec.phase = 2
        if rec.phase == 1:
            yield wait
            self.active.remove(rec)
            return
        ids = self.city.node_ids
        while rec.phase == 2:
            if wait is None:
                # routed on this sync period's link times (those the dispatch estimates used)
                cost = self._route_cost_s(rec.emergency)
                try:
                    rec.v = self.engine.insert_vehicle(ids[no], ids[nd], depart_s=env.now, emergency=rec.emergency,
                                                       link_cost_s=cost)
                    rec.phase = 4
                    break
                except DemandError:                 # cut off (closures): wait where it is for a route to open
                    if not rec.counted:
                        self.no_route_legs, rec.counted = self.no_route_legs + 1, True
                    if env.now + self.sync_s >= self.until_s:
                        rec.phase, wait = 3, env.timeout(self._static_s(no, nd))   # past the traffic: as if open
                        break
                    wait = env.timeout(self.sync_s)
            yield wait
            wait = None
            self.engine.run_until(env.now)
        if rec.phase == 3:
            yield wait
            self.legs.append((-1, rec.leg, rec.emergency, t0, env.now))
            self.active.remove(rec)
            return
        if rec.phase == 4:
            if wait is None:
                wait, rec.watch = self.engine.arrival_watch(env, rec.v)
            try:
                yield wait
                wait = None
            except DemandError:                     # the horizon came first: the rest at the last link times
                left = self._last_s(o, d, no, nd) - (env.now - t0)
                wait = None
                if left > 0:
                    rec.phase, wait = 5, env.timeout(left)
        if wait is not None:
            yield wait
        self.legs.append((rec.v, rec.leg, rec.emergency, t0, env.now))
        self.active.remove(rec)

    # ---- checkpoints -------------------------------------------------------------------
    def wait_ref(self, event, pending) -> list:
        """What a process of this provider's users waits on, as data: ``["leg", k]`` (the k-th
        leg being driven) or ``["clock", time_s, priority, order]`` (``pending``:
        :meth:`twin.flows.RunContext.pending`)."""
        k = next((k for k, rec in enumerate(self.active) if rec.proc is event), None)
        return ["leg", k] if k is not None else ["clock", *pending(event)]

    def wait_event(self, ref, wakeup):
        """The event that :meth:`wait_ref`'s data names, at a restore (the legs are restored first,
        by the traffic flow; ``wakeup``: :meth:`twin.flows.RunContext.wakeup`)."""
        return self.active[int(ref[1])].proc if ref[0] == "leg" else wakeup(ref[1:])

    def snapshot(self, pending) -> dict:
        """The legs being driven and the caches as data (``pending``: the clock's
        :meth:`~twin.flows.RunContext.pending`); a leg is named by its position in ``active``."""
        act = []
        for rec in self.active:
            target = rec.proc._target
            waits = rec.watch._target if rec.phase == 4 else target
            act.append([rec.o, rec.d, rec.leg, bool(rec.emergency), rec.t0, rec.phase, rec.v, bool(rec.counted)]
                       + pending(waits))
        return {"active": act, "legs": [list(x) for x in self.legs], "n_syncs": self.n_syncs,
                "no_route_legs": self.no_route_legs,
                "cost": self._cost if self._cost is not None else np.zeros(0), "has_cost": self._cost is not None,
                "rows": [[int(k), v.tolist()] for k, v in self._rows.items()],
                "route_cost": [[bool(k), v.tolist()] for k, v in self._route_cost.items()]}

    def restore(self, state, env, wakeup) -> None:
        """Take :meth:`snapshot`'s state back: the legs start again where they were."""
        self.legs = [(int(v), int(g), bool(e), float(a), float(b)) for v, g, e, a, b in state["legs"]]
        self.n_syncs, self.no_route_legs = int(state["n_syncs"]), int(state["no_route_legs"])
        self._cost = np.array(state["cost"]) if bool(state["has_cost"]) else None
        self._rows = {int(k): np.array(v, dtype=np.float64) for k, v in state["rows"]}
        self._route_cost = {bool(k): np.array(v, dtype=np.float64) for k, v in state["route_cost"]}
        self.active = []
        for o, d, leg, em, t0, phase, v, counted, *entry in state["active"]:
            rec = _Leg(int(o), int(d), int(leg), bool(em), float(t0))
            rec.phase, rec.v, rec.counted = int(phase), int(v), bool(counted)
            wait = wakeup(entry)
            if rec.phase == 4:
                wait, rec.watch = self.engine.arrival_watch(env, rec.v, wait=wait)
            self._start_leg(env, rec, wait)

    def _last_s(self, o, d, no, nd):
        """The leg's time at the last link times, past the traffic horizon; where closures cut
        it off then, its free-flow time (as if open: :meth:`_static_s`)."""
        t = self.time_s(o, d)
        return t if math.isfinite(t) else self._static_s(no, nd)

    def _static_s(self, no, nd):
        """Free-flow time between two node indices, closures ignored (the fallback when none opens)."""
        ids = self.city.node_ids
        return float(self.city.travel_times([ids[no]], [ids[nd]])[0, 0]) / self.factor

    def legs_table(self):
        """Driven legs: ``vehicle`` (row of the traffic trips table), ``leg``, ``emergency``,
        ``start_s``, ``end_s``, ``travel_time_s``."""
        import pandas as pd

        rows = self.legs
        df = pd.DataFrame({
            "vehicle": np.array([r[0] for r in rows], dtype=np.int64),
            "leg": pd.Categorical([self.LEGS[r[1]] for r in rows], categories=list(self.LEGS)),
            "emergency": np.array([r[2] for r in rows], dtype=bool),
            "start_s": np.array([r[3] for r in rows], dtype=np.float64),
            "end_s": np.array([r[4] for r in rows], dtype=np.float64)})
        df["travel_time_s"] = df["end_s"] - df["start_s"]
        return df

    def _row(self, origin):
        row = self._rows.get(origin)
        if row is None:
            ids = self.city.node_ids
            row = self.city.travel_times(ids[self.loc_nodes[origin]], ids[self.loc_nodes],
                                         link_cost_s=self.link_cost_s())[0]
            self._rows[origin] = row
        return row

    def _col(self, destination):
        """Times from every location to ``destination`` (one backward search), cached like rows."""
        key = -1 - destination
        col = self._rows.get(key)
        if col is None:
            ids = self.city.node_ids
            col = self.city.travel_times_to(ids[self.loc_nodes[destination]], ids[self.loc_nodes],
                                            link_cost_s=self.link_cost_s())[0]
            self._rows[key] = col
        return col

    def time_s(self, origin_idx, destination_idx):
        if isinstance(origin_idx, (int, np.integer)):
            return float(self._row(int(origin_idx))[destination_idx])
        if isinstance(destination_idx, (int, np.integer)):   # many units to one place: one backward search
            return self._col(int(destination_idx))[np.asarray(origin_idx, dtype=np.int64)]
        return np.array([self._row(int(o))[destination_idx] for o in origin_idx], dtype=np.float64)

    def _route_cost_s(self, emergency):
        """Link costs a unit vehicle is routed on: the current emergency (or ordinary) link
        times, closed links at the engine's finite closed cost; cached until the next sync."""
        key = bool(emergency)
        if key not in self._route_cost:
            from twin.traffic_inputs import CLOSED_COST_S

            cost = self.link_cost_s() if key else np.asarray(self.engine.link_travel_times_s(), dtype=np.float64)
            self._route_cost[key] = np.where(np.isfinite(cost), cost, CLOSED_COST_S)
        return self._route_cost[key]


class _Leg:
    """A leg being driven: origin, destination, leg code, emergency, start time; its step
    (``phase``, see :meth:`TrafficTravelTimes._leg`), vehicle, whether it was counted as cut
    off, its process and (driving) the process watching the vehicle."""

    __slots__ = ("o", "d", "leg", "emergency", "t0", "phase", "v", "counted", "proc", "watch")

    def __init__(self, o, d, leg, emergency, t0):
        self.o, self.d, self.leg, self.emergency, self.t0 = o, d, leg, emergency, t0
        self.phase, self.v, self.counted, self.proc, self.watch = 0, -1, False, None, None


@dataclass(frozen=True, eq=False)
class TrafficPlan:
    """The traffic settings in force (defaults when the demand came from a port), the trips
    (None: no demand, the flow stays out of the run), their origin, the horizon, and the
    trips other flows add (:class:`_Intake`)."""

    group: TrafficGroup
    trips: object
    from_port: bool
    horizon_s: float
    intake: object = None

    def all_trips(self):
        """The traffic's own trips, then those other flows added, or None when there are none."""
        import pandas as pd

        if not self.intake.parts:
            return self.trips                  # unchanged: the traffic's own demand exactly as planned
        parts = ([] if self.trips is None else [pd.DataFrame(self.trips)]) + list(self.intake.parts)
        trips = pd.concat(parts, ignore_index=True)
        if "vehicle_class" in trips:
            trips["vehicle_class"] = trips["vehicle_class"].fillna("car")       # added trips are cars
        return trips


class _Intake:
    """The plan-time :class:`~twin.ports.TripIntake`: trips other flows add, after the traffic's own."""

    def __init__(self, n_base):
        self.n_base, self.parts = int(n_base), []

    def add(self, trips, label):
        import pandas as pd

        t = pd.DataFrame(trips)
        missing = [c for c in ("origin", "destination", "depart_s") if c not in t]
        if missing:
            raise ScenarioError(f"trips added by {label}: no column {missing[0]!r}")
        start = self.n_base + sum(len(p) for p in self.parts)
        self.parts.append(t[["origin", "destination", "depart_s"]].reset_index(drop=True))
        return start, start + len(t)


class _Coupling:
    """The run-time ports: the engine, its synchronisation and the providers made on it."""

    def __init__(self, engine, group, horizon_s):
        self.engine, self.group, self.horizon_s = engine, group, float(horizon_s)
        self.length_m = engine.city.length_m
        self.providers = []
        self.fleets = []
        self.listeners = []
        self.n_syncs = 0
        self.result = None
        self.sync_proc = None

    # LiveTravel
    def provider(self, location_node_idx, *, emergency_speed_factor=1.0, queue_delay_share=1.0):
        g = self.group
        p = TrafficTravelTimes(self.engine, location_node_idx, sync_s=g.sync_s, until_s=self.horizon_s,
                               emergency_speed_factor=emergency_speed_factor, queue_delay_share=queue_delay_share,
                               vehicles=g.ambulances_in_traffic,
                               lights_and_sirens_priority=g.lights_and_sirens_priority, coupled=True)
        self.providers.append(p)
        return p

    def fleet(self, location_node_idx, legs):
        p = TrafficTravelTimes(self.engine, location_node_idx, sync_s=self.group.sync_s, until_s=self.horizon_s,
                               vehicles=True, coupled=True, legs=legs, ordinary=True)
        self.fleets.append(p)
        return p

    # LinkControl
    def schedule(self, time_s, action, links, capacity_veh_per_h=None, free_speed_mps=None) -> None:
        self.engine.schedule_event(time_s, action, links, capacity_veh_per_h, free_speed_mps)   # units: next sync

    # TripOutcome
    def trips(self, rows):
        if self.result is None:
            raise RuntimeError("TripOutcome.trips: the traffic flow has not finished")   # a flow-order bug
        start, stop = rows
        return self.result.trips.iloc[start:stop].reset_index(drop=True)

    def stranded(self, rows):
        e, city = self.engine, self.engine.city
        v = np.arange(*rows)
        out = np.zeros(len(v), dtype=bool)
        left = np.flatnonzero(e.state["arrive_step"][v] < 0)
        if not len(left) or e.link_open.all():
            return out
        node = e.vehicle_nodes(v[left])
        dest = e.d_idx[v[left]]
        cost = np.where(e.link_open, city.free_flow_time_s, np.inf)
        ids = np.asarray(city.node_ids)
        for d in np.unique(dest):
            m = dest == d
            t = city.travel_times_to([ids[d]], ids[node[m]], link_cost_s=cost)[0]
            out[left[m]] = ~np.isfinite(t) & (node[m] != d)
        return out

    def arrivals_s(self, rows):
        start, stop = rows
        step = self.engine.state["arrive_step"][start:stop]
        return np.where(step >= 0, step * self.engine.params.dt_s, np.nan)

    # TripRelease
    def hold(self, rows) -> None:
        from twin.traffic_fork import hold_trips, pending_trips

        hold_trips(self.engine, pending_trips(self.engine, rows))

    def release(self, rows, depart_s) -> None:
        from twin.traffic_fork import cancelled_mask, release_trips

        e, (start, stop) = self.engine, rows
        held = cancelled_mask(e)[start:stop] & (e.depart_step[start:stop] > e.n_steps_total)
        release_trips(e, np.arange(start, stop)[held], np.asarray(depart_s, dtype=np.float64)[held])

    # Exposure
    def link_exits(self):
        return self.engine.link_exits()

    def vehicles_on_links(self):
        return self.engine.state["ring_count"].astype(np.float64)

    def queued_on_links(self):
        return self.engine.queued_on_links()

    def on_sync(self, callback) -> None:
        self.listeners.append(callback)

    def _synced(self, now_s, next_s):
        for p in self.providers + self.fleets:
            p.invalidate()
        self.n_syncs += 1
        for fn in self.listeners:
            fn(now_s, next_s)


class TrafficFlow(Flow):
    """Vehicles on the city's links, advanced in blocks to the clock (an array flow)."""

    name = "traffic"
    tables = (Table("traffic", TrafficGroup, optional=True),)
    streams = ("traffic_demand", "traffic")
    result_names = ("traffic", "traffic_group", "n_syncs", "unit_legs", "traffic_from_cars", "header")
    provides = (LiveTravel, Exposure, LinkControl, TripIntake, TripOutcome, TripRelease)
    uses = (TripDemand,)

    def active(self, ctx):
        return ctx.groups.get("traffic") is not None or ctx.has(TripDemand)

    def plan(self, ctx):
        tg = ctx.groups.get("traffic")
        until = ctx.groups["run"].until_s
        own = tg is not None and bool(tg.random_trips or tg.trips)
        demand = ctx.port(TripDemand)
        if own:
            trips = traffic_trips(tg, ctx.city, ctx.streams.int_seed("traffic_demand"), path=ctx.path,
                                  source=ctx.source)
        elif demand is not None:
            tg = tg if tg is not None else TrafficGroup()
            trips = demand.trips()
            until = max(until, demand.min_horizon_s)
        else:
            logger.info("[traffic] has no demand (random_trips = 0, no trips file): static travel times")
            trips = None
        horizon = tg.until_s if tg.until_s is not None else until
        intake = _Intake(0 if trips is None else len(trips))
        ctx.provide(TripIntake, intake)
        return TrafficPlan(tg, trips, not own and trips is not None, horizon, intake)

    def build(self, ctx):
        plan = ctx.plan(self)
        self.coupling = None
        trips = plan.all_trips()
        if trips is None:
            return
        from twin.traffic import TrafficEngine

        tg = plan.group
        signals = None
        if tg.signals:
            from twin.signals import signal_plan

            signals = signal_plan(ctx.city, tg.signal_control, cycle_s=tg.signal_cycle_s, min_green_s=tg.min_green_s)
        engine = TrafficEngine(ctx.city, trips, until_s=plan.horizon_s, seed=ctx.streams.int_seed("traffic"),
                               dt_s=tg.dt_s, reroute_share=tg.reroute_share, reroute_interval_s=tg.reroute_interval_s,
                               signals=signals, stop_when_done=False, emergency_priority=tg.emergency_priority,
                               bypass_speed_mps=tg.bypass_speed_mps)
        from twin.traffic_state import mark_built

        mark_built(engine)                      # (what a checkpoint need not hold)
        self.coupling = _Coupling(engine, tg, plan.horizon_s)
        ctx.provide(LiveTravel, self.coupling)
        ctx.provide(Exposure, self.coupling)
        ctx.provide(LinkControl, self.coupling)
        ctx.provide(TripOutcome, self.coupling)
        ctx.provide(TripRelease, self.coupling)
        logger.info("traffic coupled: %d %strips, sync every %.0f s up to %.0f s", len(trips),
                    "demand-port " if plan.from_port else "", tg.sync_s, plan.horizon_s)

    checkpoints = True

    def start(self, ctx, wait=None):
        c = self.coupling
        if c is not None:
            c.sync_proc = ctx.clock.process(sync_loop(ctx.clock, c.engine, sync_s=c.group.sync_s,
                                                      until_s=c.horizon_s, on_sync=c._synced, wait=wait))

    def snapshot(self, ctx):
        from twin.traffic_state import engine_snapshot

        c = self.coupling
        if c is None:
            return {}
        out = {f"engine_{k}": v for k, v in engine_snapshot(c.engine).items()}
        out["n_syncs"] = c.n_syncs
        out["sync"] = ctx.pending(c.sync_proc._target) if c.sync_proc is not None and c.sync_proc.is_alive else []
        for kind, ps in (("provider", c.providers), ("fleet", c.fleets)):
            for i, p in enumerate(ps):
                out.update({f"{kind}{i}_{k}": v for k, v in p.snapshot(ctx.pending).items()})
        return out

    def restore(self, ctx, state, time_s):
        from twin.traffic_state import engine_restore

        c = self.coupling
        if c is None:
            return
        engine_restore(c.engine, {k[7:]: v for k, v in state.items() if k.startswith("engine_")})
        c.n_syncs = int(state["n_syncs"])
        for kind, ps in (("provider", c.providers), ("fleet", c.fleets)):
            for i, p in enumerate(ps):
                pre = f"{kind}{i}_"
                p.restore({k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}, ctx.clock, ctx.wakeup)
        if len(state["sync"]):
            self.start(ctx, wait=ctx.wakeup(state["sync"]))

    def fork(self, ctx, rng, factors):
        """A forecast member: the traffic's own trips not yet departed scaled by ``demand``
        (:func:`twin.traffic_fork.scale_demand`), and the share of drivers re-routing on live
        times moved by ``reroute_logit`` on the logit scale (a share of 0 or 1 stays)."""
        from twin.traffic_fork import scale_demand

        c = self.coupling
        if c is None:
            return
        f = float(factors.get("demand", 1.0))
        if f != 1.0:
            scale_demand(c.engine, (0, ctx.plan(self).intake.n_base), f, rng)
        shift, s = float(factors.get("reroute_logit", 0.0)), c.engine.reroute_share
        if shift and 0.0 < s < 1.0:
            c.engine.reroute_share = 1.0 / (1.0 + math.exp(-(math.log(s / (1.0 - s)) + shift)))

    def finish(self, ctx):
        c = self.coupling
        if c is None:
            return FlowResult(self.name, values={"traffic": None, "traffic_group": None, "n_syncs": 0,
                                                 "unit_legs": None, "traffic_from_cars": False})
        c.engine.run_until(c.horizon_s)
        result = c.result = c.engine.result()
        tg = c.group
        legs = c.providers[0].legs_table() if c.providers and c.providers[0].vehicles else None
        kpis = _leg_kpis(legs) if legs is not None else {}
        cut_off = sum(p.no_route_legs for p in c.providers)
        if cut_off:                              # only when it happens: other runs' KPIs stay as they were
            kpis["unit_legs_no_route"] = cut_off
        meta = {"coupling": "units as vehicles in traffic" if legs is not None else "traffic at leg start",
                "dt_s": float(tg.dt_s), "interval_s": float(result.params.interval_s), "sync_s": float(tg.sync_s)}
        t = result.kpis
        n_legs = int((legs["vehicle"] >= 0).sum()) if legs is not None else 0
        n_fleet = sum(int(sum(1 for r in f.legs if r[0] >= 0)) for f in c.fleets)
        lines = [f"{'traffic':<34} {len(result.trips) - n_legs - n_fleet:,} trips"
                 f"{f' + {n_legs:,} unit legs' if n_legs else ''}{f' + {n_fleet:,} fleet legs' if n_fleet else ''}, "
                 f"completed {t['completed']:,}, "
                 f"congestion index {t['congestion_index']:.3f}, mean trip {_fmt_min(t['mean_travel_time_s'])}, "
                 f"forced moves {t['forced_moves']:,}, teleports {t['teleports']:,}"]
        if gridlocked(t, len(result.trips)):
            share = (t["forced_moves"] + t["teleports"]) / max(len(result.trips), 1)
            text = (f"gridlock: the gridlock rule moved {t['forced_moves']:,} stuck vehicles into full links and "
                    f"teleported {t['teleports']:,} ({100 * share:.1f} % of the trips, warning from "
                    f"{100 * GRIDLOCK_SHARE:g} %); travel times and response times of this run reflect the rule")
            logger.warning(text)
            lines.append(f"{'WARNING':<34} {text}")
        if legs is not None:
            prio = "with priority" if tg.emergency_priority else "no priority"
            lines.append(f"{'units as vehicles':<34} {kpis['unit_legs']:,} legs, {kpis['unit_legs_emergency']:,} "
                         f"lights and sirens ({prio}) mean {_fmt_min(kpis['unit_leg_emergency_mean_s'])}, others "
                         f"mean {_fmt_min(kpis['unit_leg_ordinary_mean_s'])}"
                         + (f"; {cut_off:,} cut off by closures (waited for a route)" if cut_off else ""))

        def write(writer):
            result.write(writer)
            if legs is not None:
                _write_legs(writer, legs, kpis)

        values = {"traffic": result, "traffic_group": tg, "n_syncs": c.n_syncs, "unit_legs": legs,
                  "traffic_from_cars": ctx.plan(self).from_port,
                  "header": f"traffic coupled every {tg.sync_s:g} s ({len(result.trips):,} trips)"}
        return FlowResult(self.name, kpis=kpis, values=values, lines=lines, meta=meta, write=write)


def _leg_kpis(legs) -> dict:
    em = legs["emergency"].to_numpy()
    tt = legs["travel_time_s"].to_numpy()
    return dict(unit_legs=len(legs), unit_legs_emergency=int(em.sum()),
                unit_leg_emergency_mean_s=float(tt[em].mean()) if em.any() else math.nan,
                unit_leg_ordinary_mean_s=float(tt[~em].mean()) if (~em).any() else math.nan)


def _write_legs(writer, lg, kpis):
    writer.write_table("/events/ems_unit_legs", {
        "vehicle": lg["vehicle"].to_numpy(), "leg": lg["leg"].astype(str).to_numpy(),
        "emergency": lg["emergency"].to_numpy(), "start_s": lg["start_s"].to_numpy(),
        "end_s": lg["end_s"].to_numpy(), "travel_time_s": lg["travel_time_s"].to_numpy()},
        units={"vehicle": "", "leg": "", "emergency": "", "start_s": "s", "end_s": "s", "travel_time_s": "s"})
    for name, unit in (("unit_legs", "1"), ("unit_legs_emergency", "1"), ("unit_leg_emergency_mean_s", "s"),
                       ("unit_leg_ordinary_mean_s", "s")):
        writer.write_summary(f"ems_{name}", kpis[name], units=unit)
