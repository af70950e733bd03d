"""Emergency response on one SimPy clock: units, hospitals and dispatch in a Mesa model.

:class:`CityModel` is a :class:`mesa.Model` that holds the :class:`simpy.Environment`
clock (float seconds from the start) and the few actors — :class:`Unit` (ALS and BLS
ambulances, fire engines, police cars),
:class:`~twin.agents.hospital.Hospital` wards and one
:class:`~twin.agents.dispatch.DispatchCentre` — as Mesa agents that own SimPy processes
and resources. Calls are the many: one :class:`~twin.agents.calls.CallTable` of arrays.
:func:`run_ems` builds the model from an :class:`~twin.emergency.EmsSpec`, runs it and
returns an :class:`~twin.emergency.EmsResult` of tables and KPIs.

Process model (fidelity)
------------------------
*Path mode.* Dispatched → (turnout) en route → (travel) on scene → (on-scene time)
transporting with probability ``transport_probability`` to the hospital nearest the zone
(with hospital diversion: the nearest not on diversion when the transport starts, on current
travel times; see :mod:`twin.agents.hospital` for ED → ward/ICU flow and transfers) →
at hospital → (bed granted: immediately, after a wait in a queue ward, or blocked in a
loss ward) handover → available → returning to station (driving, or instantly). An
available unit may be dispatched while returning; its travel time is then counted from
the place it started returning from (it has no position in between). Travel times are
static (one matrix, no congestion).

*Busy-time mode* (the textbook model of Larson's hypercube and of M/M/c fleets). The whole
busy period is one draw of the unit's busy-time distribution, independent of travel;
then the unit is at its station (instant return). The travel time from station to zone
is recorded, and ``on_scene_at_s = dispatched_s + travel_s`` is nominal.

Travel times come from a *travel-time provider* (``CityModel.travel``): by default
:class:`StaticTravelTimes` reads ``spec.travel_time_s``. Another provider (the runner's
traffic coupling, :class:`twin.runner.TrafficTravelTimes`) can answer from live, congested
link times; the model asks it whenever a leg starts (wheels rolling to the scene, leaving
the scene for hospital, starting to return) and when the nearest-idle policy compares units,
and the leg then lasts that long (no re-timing en route). A provider with a ``drive(env,
origin_idx, destination_idx, *, leg, priority)`` method instead moves the unit as a vehicle
(the runner's traffic coupling with ``ambulances_in_traffic``): each leg (``leg`` one of
``"response"``, ``"transport"``, ``"transfer"``, ``"return"``; ``priority`` the call's)
waits on the event it returns and lasts until the vehicle arrives; ``time_s`` then serves
as the estimate for dispatch choices, hospital choice and ``calls.travel_s`` until the
unit is on scene (then the driven time).

*Several units per call.* A call type ``requires`` units by kind (one ALS ambulance by
default; e.g. two fire engines and an ambulance for a fire), one *slot* per unit. When the
call is ready each slot, in requirement order, takes the policy's choice among the idle
units of its kind, else of its fallback kind (ALS -> BLS by default). Slots left unfilled
keep the call in the dispatch queue (partial dispatch: the units found go at once); each
freed unit takes the first queued call with an open slot of its kind (or of a kind it is
the fallback for). The queue limit ``max_queue`` applies to calls that got no unit at all:
only those are lost. Every unit runs its own lifecycle; only the unit filling the call's
first ambulance slot transports (if the call is transported), the others go back after the
on-scene time. The call's response time ends when its first unit is on scene; the call is
completed when its last unit is free. ``calls.unit_idx``, ``dispatched_s`` and
``travel_s`` are those of the first unit dispatched (travel: of the first on scene), and
``available_s`` the time the last unit was free; ``EmsResult.assignments`` lists every
unit sent.

*Move-up* (optional, ``DispatchSpec.relocation``): whenever a unit of a table's kinds
becomes busy or free, :class:`~twin.agents.dispatch.Relocator` re-assigns the available
units to the table's row for their count; a unit ordered elsewhere drives there
(``relocating``, then ``at_station``) and can be dispatched on the way, from the place it
started moving. A unit freed after a call returns to its home station unless ordered.

*Calls during the run*: :meth:`CityModel.add_calls` (traffic crashes) and
:meth:`CityModel.request_transfer` (inter-hospital transfers by ambulance) append rows to
the call table.

*Scripted incidents* (``EmsSpec.incidents``, mass-casualty incidents): the patients' calls
are appended to the call table when the model is built, after the drawn calls, and reach
the dispatch centre at the incident's time (see :class:`~twin.emergency.IncidentSpec`).

Ties at equal times follow SimPy's FIFO event order; a unit that becomes available takes
the first queued call (priority, call time, call id) it is eligible for before any later
event is processed.
"""

from __future__ import annotations

import logging
import math

import mesa
import numpy as np
import pandas as pd
import simpy

from twin.agents.calls import (CallTable, draw_call_table, draw_incident_calls, generate_calls, poisson_arrivals,
                               run_stream, spawn_streams)
from twin.agents.dispatch import DispatchCentre, NearestIdle, Relocator, make_policy
from twin.agents.hospital import Hospital
from twin.emergency import (AMBULANCE_KINDS, OUTCOMES, UNIT_EVENTS, UNIT_KINDS, EmsResult, EmsSpec, UnitSpec,
                            response_summary, time_average)
from twin.errors import ScenarioError

__all__ = ["CityModel", "Unit", "StaticTravelTimes", "run_ems", "run_replications", "TRANSFER_TYPE"]

logger = logging.getLogger(__name__)

# Lifecycle and outcome codes: indices into twin.emergency.UNIT_EVENTS and OUTCOMES.
(DISPATCHED, EN_ROUTE, ON_SCENE, TRANSPORTING, AT_HOSPITAL, HANDOVER, AVAILABLE, RETURNING,
 AT_STATION, RELOCATING) = (UNIT_EVENTS.index(name) for name in UNIT_EVENTS)
IDLE_STATES = (AVAILABLE, RETURNING, AT_STATION, RELOCATING)
#: Name of the internal call type of inter-hospital transfers (type index n_call_types).
TRANSFER_TYPE = "inter-hospital transfer"
COMPLETED, LOST = OUTCOMES.index("completed"), OUTCOMES.index("lost")


class StaticTravelTimes:
    """The default travel-time provider: the spec's static matrix (no congestion).

    A provider is any object with two methods:

    ``start(model)``
        Called once when the model is built (after its agents, before the call source);
        it may start SimPy processes on ``model.env`` (e.g. a traffic clock).
    ``time_s(origin_idx, destination_idx)``
        Travel time now, in seconds, from location ``origin_idx`` (an int, or a sequence
        of ints giving an ndarray of float64) to location ``destination_idx``; ``inf``
        when unreachable.

    Parameters
    ----------
    travel_time_s : ndarray of float64, shape (n_locations, n_locations)
    """

    def __init__(self, travel_time_s):
        self.travel_time_s = travel_time_s

    def start(self, model) -> None:
        return None

    def time_s(self, origin_idx, destination_idx):
        if isinstance(origin_idx, (int, np.integer)):
            return float(self.travel_time_s[origin_idx, destination_idx])
        return self.travel_time_s[np.asarray(origin_idx, dtype=np.int64), destination_idx]


class _NearestIdleNow(NearestIdle):
    """:class:`~twin.agents.dispatch.NearestIdle` on the provider's current travel times.

    Used when a non-static provider is given; eligibility (a finite static time) is unchanged.
    """

    def choose(self, model, call_idx, idle_units):
        if not idle_units:
            return None
        dest = model.calls.location_idx[call_idx]
        tt = np.asarray(model.travel.time_s([u.location_idx for u in idle_units], dest), dtype=np.float64)
        k = int(np.argmin(tt))
        return idle_units[k] if math.isfinite(tt[k]) else None


class Unit(mesa.Agent):
    """A response unit: a Mesa agent whose assignments are SimPy processes.

    Attributes
    ----------
    unit_idx : int
        Row of the unit in ``spec.units`` and in the units table.
    kind : int
        Index of the unit's kind in :data:`twin.emergency.UNIT_KINDS`.
    location_idx : int
        Last fixed location (station, scene or hospital) in the travel-time matrix.
    state : int
        Last lifecycle code (index into :data:`twin.emergency.UNIT_EVENTS`).
    """

    def __init__(self, model, unit_idx: int, spec: UnitSpec):
        super().__init__(model)
        self.env = model.env
        self.unit_idx = unit_idx
        self.spec = spec
        self.station_idx = spec.station_idx
        self.location_idx = spec.station_idx
        self.state = AT_STATION
        self.kind = UNIT_KINDS.index(spec.kind)
        self.is_ambulance = spec.kind in AMBULANCE_KINDS
        self._transports = False
        self._row = None
        self.busy_time = spec.busy_time if spec.busy_time is not None else model.spec.service.busy_time
        self._move_proc = None
        self.dest_idx = spec.station_idx          # where an idle unit is or is heading
        self._reloc_row = None
        self._textbook = model.spec.service.mode == "busy_time"
        self._instant_return = model.spec.service.return_mode == "instant"
        self._drive_leg = getattr(model.travel, "drive", None)   # units as vehicles in traffic

    @property
    def idle(self) -> bool:
        return self.state in IDLE_STATES

    def _log(self, call_idx, code):
        self.state = code
        self.model.unit_events.append((self.env.now, self.unit_idx, call_idx, code))

    def assign(self, call_idx: int, slot: int = 0):
        """Dispatch this (idle) unit to a call now, filling requirement ``slot`` of it."""
        if self._move_proc is not None:
            self._stop_move("dispatched")
        model = self.model
        calls, now = model.calls, self.env.now
        if calls.unit_idx[call_idx] < 0:                  # the call's first unit
            calls.dispatched_s[call_idx] = now
            calls.unit_idx[call_idx] = self.unit_idx
        calls.n_units[call_idx] += 1
        self._transports = self.is_ambulance and slot == model.transport_slot[calls.type_idx[call_idx]]
        self._row = [call_idx, self.unit_idx, slot, now, math.nan, math.nan]
        model.assignments.append(self._row)
        self._log(call_idx, DISPATCHED)
        if calls.type_idx[call_idx] >= model.n_call_types:
            self.env.process(self._serve_transfer(call_idx))
        else:
            self.env.process(self._serve_textbook(call_idx) if self._textbook else self._serve_path(call_idx))

    def _serve_textbook(self, c):
        model, calls = self.model, self.model.calls
        travel = model.travel.time_s(self.location_idx, int(calls.location_idx[c]))
        arrive = self.env.now + travel
        if not arrive >= calls.on_scene_at_s[c]:          # NaN (first unit) or earlier than the first
            calls.travel_s[c] = travel
            calls.on_scene_at_s[c] = arrive
        self._row[4] = arrive
        yield self.env.timeout(float(self.busy_time.ppf(calls.u_busy[c])))
        self.location_idx = self.station_idx
        self._release(c)

    def _leg(self, origin, dest, leg, c, planned_s=None):
        """Drive from ``origin`` to ``dest`` for call ``c``; return the seconds it took.

        On the provider's times (``planned_s``, else ``travel.time_s``), or as a vehicle of
        the provider's ``drive`` when it has one (the leg then lasts until the vehicle arrives).
        """
        env = self.env
        if self._drive_leg is None:
            t = planned_s if planned_s is not None else self.model.travel.time_s(origin, dest)
            yield env.timeout(t)
            return t
        t0 = env.now
        yield self._drive_leg(env, origin, dest, leg=leg, priority=int(self.model.calls.priority[c]))
        return env.now - t0

    def _serve_path(self, c):
        env, model, calls = self.env, self.model, self.model.calls
        travel_time_s = model.travel.time_s
        if calls.turnout_s[c] > 0:
            yield env.timeout(float(calls.turnout_s[c]))
        self._log(c, EN_ROUTE)
        dest = int(calls.location_idx[c])
        travel = travel_time_s(self.location_idx, dest)
        if calls.travel_s[c] != calls.travel_s[c]:        # NaN: the first unit rolling
            calls.travel_s[c] = travel
        travel = yield from self._leg(self.location_idx, dest, "response", c, travel)
        self.location_idx = dest
        if calls.on_scene_at_s[c] != calls.on_scene_at_s[c]:   # the first unit on scene
            calls.on_scene_at_s[c] = env.now
            calls.travel_s[c] = travel
        self._row[4] = env.now
        self._log(c, ON_SCENE)
        yield env.timeout(float(calls.on_scene_s[c]))
        if self._transports and calls.transport[c]:
            if model.any_diversion:
                calls.hospital_idx[c] = model.choose_hospital(c, dest)
            hosp = model.hospitals[calls.hospital_idx[c]]
            self._log(c, TRANSPORTING)
            yield from self._leg(dest, hosp.spec.location_idx, "transport", c)
            self.location_idx = hosp.spec.location_idx
            calls.at_hospital_s[c] = env.now
            self._log(c, AT_HOSPITAL)
            admitted = yield hosp.admit(c, float(calls.u_los[c]), int(calls.priority[c]))
            if admitted:
                calls.bed_s[c] = env.now
            self._log(c, HANDOVER)
            yield env.timeout(float(calls.handover_s[c]))
        self._release(c)

    def _serve_transfer(self, c):
        """An inter-hospital transfer: drive to the sending hospital, load the patient
        (handover time; the ED bed is freed), drive to the receiving one, hand over into
        the reserved ICU bed, handover time again."""
        env, model, calls = self.env, self.model, self.model.calls
        if calls.turnout_s[c] > 0:
            yield env.timeout(float(calls.turnout_s[c]))
        self._log(c, EN_ROUTE)
        origin = int(calls.location_idx[c])
        calls.travel_s[c] = yield from self._leg(self.location_idx, origin, "transfer", c)
        self.location_idx = origin
        calls.on_scene_at_s[c] = env.now
        self._row[4] = env.now
        self._log(c, ON_SCENE)
        yield env.timeout(float(calls.on_scene_s[c]))
        transfer = model.transfers[c]
        transfer.picked_up.succeed()
        hosp = model.hospitals[calls.hospital_idx[c]]
        self._log(c, TRANSPORTING)
        yield from self._leg(origin, hosp.spec.location_idx, "transfer", c)
        self.location_idx = hosp.spec.location_idx
        calls.at_hospital_s[c] = calls.bed_s[c] = env.now
        self._log(c, AT_HOSPITAL)
        hosp.begin_reserved(transfer.row, transfer.request, transfer.los_s)
        self._log(c, HANDOVER)
        yield env.timeout(float(calls.handover_s[c]))
        self._release(c)

    def _release(self, c):
        model = self.model
        calls = model.calls
        self._row[5] = self.env.now
        calls.available_s[c] = self.env.now
        calls.open_slots[c] -= 1
        if calls.open_slots[c] == 0:                      # the call's last unit is free
            calls.outcome[c] = COMPLETED
        self._log(c, AVAILABLE)
        if model.dispatch.unit_free(self):
            return
        at_home = self.location_idx == self.station_idx or self._textbook or self._instant_return
        self.dest_idx = self.station_idx
        if at_home:
            self.location_idx = self.station_idx
            self._log(c, AT_STATION)
        if model.relocator is not None:
            model.relocator.changed(self.kind, c)         # may order this unit elsewhere
        if not at_home and self._move_proc is None:
            self.move_to(self.station_idx, RETURNING, c)

    def move_to(self, dest_idx: int, code: int = RELOCATING, call_idx: int = -1, row=None):
        """Drive this idle unit to location ``dest_idx`` now (returning or relocating),
        redirecting it if it is already moving. ``row`` is its relocation record."""
        if self._move_proc is not None:
            self._stop_move("redirected")
        self.dest_idx = dest_idx
        self._reloc_row = row
        self._move_proc = self.env.process(self._drive(dest_idx, code, call_idx))

    def _stop_move(self, cause):
        if self._move_proc.is_alive:
            self._move_proc.interrupt(cause)
        row = self._reloc_row
        if row is not None:                                # driven until now (interrupted)
            row[5] = self.env.now
            row[6] = self.env.now - row[0]
            self._reloc_row = None
        self._move_proc = None

    def _drive(self, dest, code, c):
        self._log(c, code)
        try:
            if self._drive_leg is None:
                yield self.env.timeout(self.model.travel.time_s(self.location_idx, dest))
            else:   # a redirected unit's vehicle drives on to the end of this leg in the traffic model
                yield self._drive_leg(self.env, self.location_idx, dest, leg="return", priority=0)
        except simpy.Interrupt:
            return
        self._move_proc = None
        row = self._reloc_row
        if row is not None:
            row[5] = self.env.now
            row[6] = self.env.now - row[0]
            row[8] = True
            self._reloc_row = None
        self.location_idx = dest
        self._log(c, AT_STATION)


class _Transfer:
    """An inter-hospital transfer in progress (see :meth:`CityModel.request_transfer`)."""

    __slots__ = ("row", "request", "los_s", "picked_up", "from_hospital_idx")

    def __init__(self, row, request, los_s, picked_up, from_hospital_idx):
        self.row, self.request, self.los_s = row, request, los_s
        self.picked_up, self.from_hospital_idx = picked_up, from_hospital_idx


class CityModel(mesa.Model):
    """Mesa model of the EMS system on a SimPy clock.

    Parameters
    ----------
    spec : EmsSpec
    seed : int or numpy.random.SeedSequence
        Run seed; streams :data:`twin.emergency.STREAMS` are spawned from it.
    until_s : float
        Calls and walk-ins arrive on ``[0, until_s)``.
    policy : object, optional
        A dispatch policy overriding ``spec.dispatch.policy`` (see :mod:`twin.agents.dispatch`).
    calls : mapping, optional
        Given calls (``time_s, zone_idx, type_idx``) instead of Poisson arrivals.
    travel : travel-time provider, optional
        Where units' travel times come from (see :class:`StaticTravelTimes`, the default).
        With another provider and the ``nearest`` policy, units are compared on the
        provider's current times.

    Attributes
    ----------
    env : simpy.Environment
    calls : CallTable
    units : list of Unit
    hospitals : list of Hospital
    dispatch : DispatchCentre
    unit_events : list of (time_s, unit_idx, call_idx, code)
    assignments : list of [call_idx, unit_idx, slot, dispatched_s, on_scene_s, available_s]
        One row per unit sent to a call (NaN until reached).
    type_slots : list of tuple of (kind, fallback kind or -1)
        The requirement slots of each call type, as :data:`~twin.emergency.UNIT_KINDS` indices.
    transport_slot : ndarray of int64, shape (n_call_types,)
        The slot whose unit transports (the first ambulance slot), -1 for none.
    """

    def __init__(self, spec: EmsSpec, *, seed, until_s: float, policy=None, calls=None, travel=None):
        streams = spawn_streams(seed)
        super().__init__(rng=streams["agents"])
        self.spec = spec
        self.seed = seed
        self.until_s = float(until_s)
        self.env = simpy.Environment()
        self.calls = generate_calls(spec, self.until_s, streams, calls)
        self.zone_location = np.array([z.location_idx for z in spec.zones], dtype=np.int64)
        self.unit_events = []
        self.assignments = []
        self.calls.location_idx = self.zone_location[self.calls.zone_idx].astype(np.int32)
        code = {k: i for i, k in enumerate(UNIT_KINDS)}
        self.n_call_types = len(spec.call_types)
        # the call types, then the internal inter-hospital transfer type (one ALS, else BLS)
        self.type_slots = [tuple((code[k], code[f] if f is not None else -1) for k, f in ct.slots)
                           for ct in spec.call_types] + [((code["als"], code["bls"]),)]
        amb = {code[k] for k in AMBULANCE_KINDS}
        self.transport_slot = np.array([next((s for s, (k, f) in enumerate(slots) if k in amb or f in amb), -1)
                                        for slots in self.type_slots], dtype=np.int64)
        self.travel = travel if travel is not None else StaticTravelTimes(spec.travel_time_s)
        if policy is None:
            policy = (_NearestIdleNow() if travel is not None and spec.dispatch.policy == "nearest"
                      else make_policy(spec.dispatch))
        self.dispatch = DispatchCentre(self, policy, spec.dispatch.max_queue)
        self.units = [Unit(self, i, u) for i, u in enumerate(spec.units)]
        self.units_of_kind = [[u for u in self.units if u.kind == k] for k in range(len(UNIT_KINDS))]
        # Move-up and transfers by ambulance (optional): their generators are children of
        # existing streams, spawned only when used, so other runs' draws are unchanged.
        self.relocator = None
        if spec.dispatch.relocation:
            self.relocator = Relocator(self, spec.dispatch.relocation, spec.dispatch.compliance_rate,
                                       streams["dispatch"].spawn(1)[0])
        self.transfers = {}     # call_idx -> _Transfer
        self.transfer_rng = (streams["service"].spawn(1)[0]
                             if any(h.transfer_by_ambulance for h in spec.hospitals) else None)
        self._n_first_calls = len(self.calls)
        self.hospitals = [Hospital(self, h, hs) for h, hs in enumerate(spec.hospitals)]
        # Every agent exists now. mesa.Agent numbers agents with a class-level dict keyed by
        # model (mesa 3.x), which would keep this model and all it holds (a traffic engine
        # too) alive for the life of the process: drop this model's entry.
        getattr(mesa.Agent, "_ids", {}).pop(self, None)
        hstreams = streams["hospital"].spawn(len(self.hospitals)) if self.hospitals else []
        for hosp, rng in zip(self.hospitals, hstreams):
            t = poisson_arrivals(rng, hosp.spec.walk_in_rate_per_h / 3600.0, self.until_s)
            if len(t):
                self.env.process(hosp.walk_in_source(t, rng.random(len(t))))
        # Patient flow and diversion (optional): a further spawn, so the streams above are
        # unchanged for specs that do not use them.
        self.any_flow = any(h.has_flow for h in spec.hospitals)
        self.any_diversion = any(h.diversion for h in spec.hospitals)
        self.diverted = []      # (call_idx, time_s, nearest hospital_idx, chosen hospital_idx)
        if self.any_flow:
            for hosp, rng in zip(self.hospitals, streams["hospital"].spawn(len(self.hospitals))):
                hosp.flow_rng = rng
        self.travel.start(self)
        if len(self.calls):
            self.env.process(self._call_source(0, len(self.calls)))
        # Scripted incidents (optional): appended after the drawn calls, from the run's own
        # last stream, so runs without incidents are unchanged.
        self.incident_calls = []     # per incident: its call indices
        if spec.incidents:
            for table in draw_incident_calls(spec, run_stream(seed, "incidents")):
                idx = self.calls.append(table)
                self.incident_calls.append(idx)
                self.env.process(self._call_source(int(idx[0]), int(idx[-1]) + 1))

    def idle_units(self, kind=None):
        """Units free for dispatch (of one kind, a :data:`~twin.emergency.UNIT_KINDS`
        index, when given), in unit-index order."""
        units = self.units if kind is None else self.units_of_kind[kind]
        return [u for u in units if u.state in IDLE_STATES]

    def transfer_target(self, hospital):
        """The hospital nearest ``hospital`` (travel time now; ties: lowest index) with a
        free ICU bed, other than itself; None when there is none."""
        cand = [h for h in self.hospitals if h is not hospital and h.has_free("icu")]
        if not cand:
            return None
        tt = np.array([self.travel.time_s(hospital.spec.location_idx, h.spec.location_idx) for h in cand],
                      dtype=np.float64)
        k = int(np.argmin(tt))
        return cand[k] if math.isfinite(tt[k]) else None

    def choose_hospital(self, call_idx, origin_idx):
        """Hospital for a transport leaving ``origin_idx`` now, with diversion: the nearest
        (travel time now; ties: lowest index) not on diversion, else the nearest overall."""
        tt = np.array([self.travel.time_s(origin_idx, h.spec.location_idx) for h in self.hospitals],
                      dtype=np.float64)
        order = np.argsort(tt, kind="stable")
        order = [int(k) for k in order if math.isfinite(tt[k])]
        if not order:
            return int(self.calls.hospital_idx[call_idx])
        nearest = order[0]
        chosen = next((k for k in order if not self.hospitals[k].on_diversion), nearest)
        if self.hospitals[nearest].on_diversion and chosen != nearest:
            self.diverted.append((call_idx, self.env.now, nearest, chosen))
        return chosen

    def _call_source(self, first=0, stop=None):
        env, times, dispatch = self.env, self.calls.time_s, self.dispatch
        for c in range(first, len(times) if stop is None else stop):
            yield env.timeout(times[c] - env.now)
            dispatch.receive(c)

    def add_calls(self, time_s, zone_idx, type_idx, rng) -> np.ndarray:
        """Add calls that arise during the run (e.g. traffic crashes); returns their indices.

        ``time_s`` (ascending, ``>= env.now``), ``zone_idx`` and ``type_idx`` are arrays; each
        call's dice are drawn from ``rng``. The calls reach the dispatch centre at their times.
        """
        t = np.asarray(time_s, dtype=np.float64)
        if not len(t):
            return np.empty(0, dtype=np.int64)
        if np.any(np.diff(t) < 0) or t[0] < self.env.now:
            raise ValueError(f"add_calls: times must be ascending and >= now = {self.env.now}")
        table = draw_call_table(self.spec, t, zone_idx, type_idx, {"dispatch": rng, "service": rng, "hospital": rng})
        table.location_idx = self.zone_location[table.zone_idx].astype(np.int32)
        idx = self.calls.append(table)
        self.env.process(self._call_source(int(idx[0]), int(idx[-1]) + 1))
        return idx

    def request_transfer(self, sending, receiving, row, request, los_s):
        """Ask dispatch now for an ambulance to move a patient (stay ``row``) from hospital
        ``sending`` to the ICU bed ``request`` reserved at ``receiving``; returns the event
        that fires when the patient has been loaded (the ED bed can then be freed)."""
        rng, spec = self.transfer_rng, self.spec
        now = self.env.now
        n_t = self.n_call_types
        u_busy, u_turn = rng.random(2)
        table = CallTable(time_s=np.array([now]), zone_idx=np.array([-1], np.int32),
                          type_idx=np.array([n_t], np.int16), priority=np.array([3], np.int8),
                          processing_s=np.zeros(1), u_busy=np.array([u_busy]),
                          turnout_s=spec.service.turnout.ppf([u_turn]),
                          on_scene_s=np.array([float(spec.service.handover.ppf(rng.random()))]),
                          transport=np.array([True]),
                          handover_s=np.array([float(spec.service.handover.ppf(rng.random()))]),
                          u_los=np.zeros(1), hospital_idx=np.array([receiving.hospital_idx], np.int32),
                          n_slots=np.ones(1, np.int16),
                          location_idx=np.array([sending.spec.location_idx], np.int32))
        c = int(self.calls.append(table)[0])
        transfer = _Transfer(row, request, los_s, self.env.event(), sending.hospital_idx)
        self.transfers[c] = transfer
        self.dispatch.receive(c)
        return transfer.picked_up

    def is_transfer(self, call_idx) -> bool:
        """Whether a call is an inter-hospital transfer request (never lost)."""
        return self.calls.type_idx[call_idx] >= self.n_call_types

    def never_lost(self, call_idx) -> bool:
        """Whether a call waits in the dispatch queue whatever ``max_queue`` is: a call with no
        zone (an inter-hospital transfer or a scripted incident's patient)."""
        return self.calls.zone_idx[call_idx] < 0

    def run(self, drain: bool = True, progress=None) -> float:
        """Run to ``until_s`` and, with ``drain``, on until every call and stay has ended.

        ``progress(done_s, total_s)``, when given, is called after every simulated hour up
        to ``until_s`` (running in hour steps does not change the event order).
        Returns the end time in seconds.
        """
        if progress is not None:
            t = 0.0
            while t < self.until_s:
                t = min(t + 3600.0, self.until_s)
                self.env.run(until=t)
                progress(t, self.until_s)
        else:
            self.env.run(until=self.until_s)
        if drain:
            self.env.run()
        return float(self.env.now)


# --------------------------------------------------------------------------------------
# result assembly

def _calls_frame(calls):
    outcome = np.asarray(OUTCOMES, dtype=object)[calls.outcome]
    return pd.DataFrame({
        "call_id": np.arange(len(calls), dtype=np.int64), "time_s": calls.time_s, "zone_idx": calls.zone_idx,
        "type_idx": calls.type_idx, "priority": calls.priority, "ready_s": calls.ready_s,
        "dispatched_s": calls.dispatched_s, "unit_idx": calls.unit_idx, "travel_s": calls.travel_s,
        "on_scene_s": calls.on_scene_at_s, "transport": calls.transport, "hospital_idx": calls.hospital_idx,
        "at_hospital_s": calls.at_hospital_s, "bed_s": calls.bed_s, "available_s": calls.available_s,
        "outcome": outcome, "n_units": calls.n_units, "location_idx": calls.location_idx,
        "wait_s": calls.dispatched_s - calls.ready_s,
        "response_s": calls.on_scene_at_s - calls.time_s})


def _assignments_frame(model):
    """Every unit sent, in call order (then dispatch order): one row per assignment."""
    cols = ["call_id", "unit_idx", "slot", "dispatched_s", "on_scene_s", "available_s"]
    a = np.array(model.assignments, dtype=np.float64).reshape(-1, 6)
    a = a[np.argsort(a[:, 0], kind="stable")]
    frame = pd.DataFrame(a, columns=cols)
    for name, dtype in (("call_id", np.int64), ("unit_idx", np.int32), ("slot", np.int16)):
        frame[name] = frame[name].astype(dtype)
    return frame


def _overlap(a, b, start, end):
    return np.clip(np.minimum(b, end) - np.maximum(a, start), 0.0, None)


def _kpis_and_tables(model, start, end):
    spec, calls = model.spec, model.calls
    span = end - start
    kpis = {"window_start_s": start, "window_end_s": end}
    inwin = (calls.time_s >= start) & (calls.time_s < end) & (calls.zone_idx >= 0)   # no transfers, incidents
    n = int(inwin.sum())
    kpis["n_calls"] = n
    kpis["n_lost"] = int(np.sum(inwin & (calls.outcome == LOST)))
    kpis["n_open"] = int(np.sum(inwin & (calls.outcome == 0)))
    kpis["lost_share"] = kpis["n_lost"] / n if n else math.nan
    resp = calls.on_scene_at_s - calls.time_s
    for key, val in response_summary(resp[inwin]).items():
        kpis[f"response_{key}"] = val
    for p in (1, 2, 3):
        sel = inwin & (calls.priority == p)
        if not sel.any():
            continue
        for key, val in response_summary(resp[sel], spec.response_target_s[p - 1]).items():
            kpis[f"response_p{p}_{key}"] = val
    served = inwin & ~np.isnan(calls.dispatched_s)
    wait = (calls.dispatched_s - calls.ready_s)[served]
    kpis["dispatch_wait_mean_s"] = float(wait.mean()) if len(wait) else math.nan
    kpis["dispatch_wait_share"] = float(np.mean(wait > 0)) if len(wait) else math.nan
    qs = np.array(model.dispatch.queue_series, dtype=np.float64)
    kpis["dispatch_queue_mean"] = time_average(qs[:, 0], qs[:, 1], start, end)

    asg = _assignments_frame(model)
    a_unit = asg["unit_idx"].to_numpy(np.int64)
    a_disp, a_free = asg["dispatched_s"].to_numpy(), asg["available_s"].to_numpy()
    busy = _overlap(a_disp, np.where(np.isnan(a_free), np.inf, a_free), start, end)   # still busy: to the end
    busy_s = np.bincount(a_unit, weights=busy, minlength=spec.n_units)
    disp_in = (a_disp >= start) & (a_disp < end)
    n_disp = np.bincount(a_unit[disp_in], minlength=spec.n_units)
    units = pd.DataFrame({"unit_idx": np.arange(spec.n_units), "name": [u.name for u in spec.units],
                          "kind": [u.kind for u in spec.units],
                          "station_idx": [u.station_idx for u in spec.units], "n_dispatches": n_disp,
                          "busy_s": busy_s, "utilisation": busy_s / span})
    kpis["unit_utilisation_mean"] = float(units["utilisation"].mean()) if spec.n_units else math.nan

    adm_rows, occ_rows, hosp_rows = [], [], []
    for h in model.hospitals:
        for call_id, arr, bed, dis, blocked in h.admissions:
            adm_rows.append((h.hospital_idx, call_id, arr, bed, dis, blocked))
        s = np.array(h.series, dtype=np.float64)
        occ_rows.append(pd.DataFrame({"time_s": s[:, 0], "hospital_idx": h.hospital_idx,
                                      "occupied_beds": s[:, 1].astype(np.int64), "waiting": s[:, 2].astype(np.int64)}))
        a = np.array([r[1:5] for r in h.admissions], dtype=np.float64).reshape(-1, 4)
        arr_in = (a[:, 0] >= start) & (a[:, 0] < end)
        n_arr = int(arr_in.sum())
        n_blk = int(np.sum(arr_in & (a[:, 3] > 0)))
        got = arr_in & ~np.isnan(a[:, 1])
        occ = time_average(s[:, 0], s[:, 1], start, end)
        row = {"hospital_idx": h.hospital_idx, "name": h.spec.name, "beds": h.spec.beds, "arrivals": n_arr,
               "blocked": n_blk, "blocking": n_blk / n_arr if n_arr else math.nan, "occupancy_mean": occ,
               "occupancy_max": int(s[:, 1].max()), "utilisation": occ / h.spec.beds if h.spec.beds else math.nan,
               "bed_wait_mean_s": float(np.mean(a[got, 1] - a[got, 0])) if got.any() else math.nan,
               "waiting_mean": time_average(s[:, 0], s[:, 2], start, end)}
        hosp_rows.append(row)
        for key in ("arrivals", "blocked", "blocking", "occupancy_mean", "utilisation", "bed_wait_mean_s"):
            kpis[f"hospital_{h.spec.name}_{key}"] = row[key]
    admissions = pd.DataFrame(adm_rows, columns=["hospital_idx", "call_id", "arrival_s", "bed_s", "discharge_s",
                                                 "blocked"])
    occupancy = (pd.concat(occ_rows, ignore_index=True) if occ_rows else
                 pd.DataFrame(columns=["time_s", "hospital_idx", "occupied_beds", "waiting"]))
    hospitals = pd.DataFrame(hosp_rows, columns=["hospital_idx", "name", "beds", "arrivals", "blocked", "blocking",
                                                 "occupancy_mean", "occupancy_max", "utilisation", "bed_wait_mean_s",
                                                 "waiting_mean"])
    return kpis, units, admissions, occupancy, hospitals, asg


STAY_COLUMNS = ["call_id", "pool", "hospital_idx", "from_hospital_idx", "request_s", "bed_s", "discharge_s",
                "blocked", "transferred"]


def _p90(x):
    return float(np.percentile(x, 90)) if len(x) else math.nan


def _flow_tables(model, start, end):
    """Patient-flow and diversion KPIs and tables (only for specs that use them)."""
    kpis = {}
    rows = [r for h in model.hospitals for r in h.stays]
    stays = pd.DataFrame(rows, columns=STAY_COLUMNS)
    stays = stays.sort_values(["request_s", "call_id", "hospital_idx"], kind="stable").reset_index(drop=True)
    stays["boarding_s"] = stays["bed_s"] - stays["request_s"]
    inwin = (stays["request_s"] >= start) & (stays["request_s"] < end)
    board = stays[inwin & ~stays["transferred"] & stays["bed_s"].notna()]
    occ_rows, per_div, hrows = [], [], []
    dv = pd.DataFrame(model.diverted, columns=["call_id", "time_s", "nearest_hospital_idx", "hospital_idx"])
    dv = dv.astype({"call_id": np.int64, "time_s": np.float64, "nearest_hospital_idx": np.int32,
                    "hospital_idx": np.int32})
    dv_in = dv[(dv["time_s"] >= start) & (dv["time_s"] < end)]
    for h in model.hospitals:
        i = h.hospital_idx
        log = np.array(h.diversion_log, dtype=np.float64)
        on_t = log[:, 0]
        div_s = time_average(on_t, log[:, 1], start, end, integral=True)
        for (t0, on), nxt in zip(h.diversion_log, h.diversion_log[1:] + [(math.nan, None)]):
            if on:
                per_div.append((i, t0, nxt[0]))
        row = {"hospital_idx": i, "name": h.spec.name,
               "ward_beds": -1 if h.spec.ward_beds is None else h.spec.ward_beds,
               "icu_beds": -1 if h.spec.icu_beds is None else h.spec.icu_beds}
        mine = stays[inwin & (stays["hospital_idx"] == i)]
        for name in ("ward", "icu"):
            pm = mine[mine["pool"] == name]
            row[f"{name}_admissions"] = int((pm["bed_s"].notna()).sum())
            row[f"{name}_blocked"] = int(pm["blocked"].sum())
            pool = h.pools.get(name)
            if pool is not None:
                ps = np.array(pool[3], dtype=np.float64)
                occ_rows.append(pd.DataFrame({"time_s": ps[:, 0], "hospital_idx": i, "pool": name,
                                              "occupied_beds": ps[:, 1].astype(np.int64),
                                              "boarding": ps[:, 2].astype(np.int64)}))
                row[f"{name}_occupancy_mean"] = time_average(ps[:, 0], ps[:, 1], start, end)
            else:
                row[f"{name}_occupancy_mean"] = math.nan
        b = board[board["hospital_idx"] == i]["boarding_s"].to_numpy(np.float64)
        row.update(n_boarded=int(np.sum(b > 0)), boarding_mean_s=float(b.mean()) if len(b) else math.nan,
                   boarding_p90_s=_p90(b), diversion_h=div_s / 3600.0,
                   diverted_from=int((dv_in["nearest_hospital_idx"] == i).sum()),
                   diverted_to=int((dv_in["hospital_idx"] == i).sum()),
                   transfers_out=int((inwin & stays["transferred"] & (stays["from_hospital_idx"] == i)).sum()),
                   transfers_in=int((inwin & stays["transferred"] & (stays["hospital_idx"] == i)).sum()))
        hrows.append(row)
    b = board["boarding_s"].to_numpy(np.float64)
    kpis.update(boarding_mean_s=float(b.mean()) if len(b) else math.nan, boarding_p90_s=_p90(b),
                n_boarded=int(np.sum(b > 0)), n_diverted=len(dv_in),
                diversion_h=float(sum(r["diversion_h"] for r in hrows)),
                n_transfers=int((inwin & stays["transferred"]).sum()),
                n_inpatient_blocked=int((inwin & stays["blocked"]).sum()))
    flow = pd.DataFrame(hrows)
    periods = pd.DataFrame(per_div, columns=["hospital_idx", "start_s", "end_s"])
    pool_occ = (pd.concat(occ_rows, ignore_index=True) if occ_rows else
                pd.DataFrame(columns=["time_s", "hospital_idx", "pool", "occupied_beds", "boarding"]))
    return kpis, stays, dv, periods, flow, pool_occ


RELOCATION_COLUMNS = ["time_s", "unit_idx", "from_location_idx", "to_location_idx", "planned_s", "end_s",
                      "driven_s", "obeyed", "completed"]


def _relocation_table(model, start, end):
    """Move orders and the relocation KPIs over the window (orders given in it)."""
    rel = pd.DataFrame(model.relocator.moves, columns=RELOCATION_COLUMNS)
    rel = rel.astype({"time_s": np.float64, "unit_idx": np.int32, "from_location_idx": np.int32,
                      "to_location_idx": np.int32, "planned_s": np.float64, "end_s": np.float64,
                      "driven_s": np.float64, "obeyed": bool, "completed": bool})
    t = rel["time_s"].to_numpy()
    w = rel[(t >= start) & (t < end)]
    kpis = {"relocation_orders": len(w), "relocation_moves": int(w["obeyed"].sum()),
            "relocation_refused": int((~w["obeyed"]).sum()), "relocation_completed": int(w["completed"].sum()),
            "relocation_diverted": int((w["obeyed"] & ~w["completed"] & w["end_s"].notna()).sum()),
            "relocation_driving_s": float(w["driven_s"].sum()),
            "relocation_driving_mean_s": float(w.loc[w["obeyed"], "driven_s"].mean()) if w["obeyed"].any()
            else math.nan}
    return kpis, rel


def _transfer_kpis(model, start, end):
    """Inter-hospital transfers by ambulance: count, wait for the ambulance, total time."""
    calls = model.calls
    idx = np.array(sorted(model.transfers), dtype=np.int64)
    t = calls.time_s[idx]
    idx = idx[(t >= start) & (t < end)]
    wait = calls.on_scene_at_s[idx] - calls.time_s[idx]
    total = calls.bed_s[idx] - calls.time_s[idx]
    return {"n_transfers_ambulance": int(len(idx)),
            "transfer_pickup_mean_s": float(np.nanmean(wait)) if np.isfinite(wait).any() else math.nan,
            "transfer_time_mean_s": float(np.nanmean(total)) if np.isfinite(total).any() else math.nan}


INCIDENT_COLUMNS = ["incident_idx", "name", "location_idx", "time_s", "patients", "n_p1", "n_p2", "n_p3",
                    "first_call_id", "n_transported", "last_on_scene_s", "scene_clear_s", "last_at_hospital_s",
                    "complete_s", "n_hospitals_used", "hospitals"]


def _max_or_nan(x):
    """The largest value, NaN when empty or when any is NaN (a stage not reached by all)."""
    return float(np.max(x)) if len(x) and not np.isnan(x).any() else math.nan


def _incident_table(model):
    """One row per scripted incident and its ``incident_<i>_*`` scalar KPIs (see
    :attr:`twin.emergency.EmsResult.incidents`)."""
    calls, spec = model.calls, model.spec
    ev = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    rows, kpis = [], {}
    for i, (inc, idx) in enumerate(zip(spec.incidents, model.incident_calls)):
        t0 = inc.time_s
        prio = calls.priority[idx]
        tr = calls.transport[idx]
        done = bool((calls.outcome[idx] == COMPLETED).all())
        # A unit leaves the scene when it starts transporting, else when it is free there.
        mine = ev[np.isin(ev[:, 2], idx)]
        leave = {}
        for t, u, c, code in mine:
            if code == TRANSPORTING or (code == AVAILABLE and (u, c) not in leave):
                leave[(u, c)] = t
        clear = max(leave.values()) - t0 if done and leave else math.nan
        at_h = calls.at_hospital_s[idx[tr]]
        used = sorted({int(h) for h in calls.hospital_idx[idx[tr]][~np.isnan(at_h)]})
        row = {"incident_idx": i, "name": inc.name, "location_idx": inc.location_idx, "time_s": t0,
               "patients": len(idx), "n_p1": int((prio == 1).sum()), "n_p2": int((prio == 2).sum()),
               "n_p3": int((prio == 3).sum()), "first_call_id": int(idx[0]), "n_transported": int(tr.sum()),
               "last_on_scene_s": _max_or_nan(calls.on_scene_at_s[idx] - t0), "scene_clear_s": clear,
               "last_at_hospital_s": _max_or_nan(at_h - t0) if tr.any() and done else math.nan,
               "complete_s": float(np.max(calls.available_s[idx])) - t0 if done else math.nan,
               "n_hospitals_used": len(used), "hospitals": ";".join(spec.hospitals[h].name for h in used)}
        rows.append(row)
        for key in ("patients", "last_on_scene_s", "scene_clear_s", "last_at_hospital_s", "complete_s",
                    "n_hospitals_used"):
            kpis[f"incident_{i}_{key}"] = row[key]
    return kpis, pd.DataFrame(rows, columns=INCIDENT_COLUMNS)


def run_ems(spec, *, seed, until_s: float, drain: bool = True, policy=None, calls=None, travel=None,
            progress=None) -> EmsResult:
    """Simulate an EMS system and return its records and KPIs.

    Parameters
    ----------
    spec : EmsSpec or dict
        The system (a dict goes through :meth:`EmsSpec.from_dict`).
    seed : int or numpy.random.SeedSequence
        Run seed (``>= 0``), or a replication's child sequence. The same spec and seed give
        identical tables.
    until_s : float
        Calls and walk-ins arrive on ``[0, until_s)``; KPIs cover ``[spec.warmup_s, until_s)``.
    drain : bool
        Keep running after ``until_s`` until every call has ended and every bed is free, so
        that every call ends ``completed`` or ``lost``. Without it, unfinished calls are
        ``open``.
    policy : object, optional
        Dispatch policy overriding the spec's (see :mod:`twin.agents.dispatch`).
    calls : mapping or DataFrame, optional
        Calls to replay (``time_s`` ascending in ``[0, until_s)``, ``zone_idx``, optional
        ``type_idx``) instead of the Poisson arrivals.
    travel : travel-time provider, optional
        Live travel times instead of ``spec.travel_time_s`` (see :class:`StaticTravelTimes`;
        :func:`twin.runner.run` passes its traffic coupling here).
    progress : callable(done_s, total_s), optional
        Called after every simulated hour up to ``until_s``.

    Returns
    -------
    EmsResult
        ``kpis`` holds ``n_calls, n_lost, lost_share``, response-time ``mean/p50/p90``
        overall and per priority with ``response_p{k}_within_target`` where a target is
        set, ``dispatch_wait_mean_s`` and ``dispatch_wait_share`` (served calls),
        ``dispatch_queue_mean`` (time average), ``unit_utilisation_mean`` and, per ward,
        ``hospital_<name>_{arrivals, blocked, blocking, occupancy_mean, utilisation,
        bed_wait_mean_s}``. Scripted incidents' patients (and inter-hospital transfers)
        are left out of these; with incidents, ``incident_<i>_{patients, last_on_scene_s,
        scene_clear_s, last_at_hospital_s, complete_s, n_hospitals_used}`` per incident
        ``i`` (see :attr:`~twin.emergency.EmsResult.incidents`).

    Raises
    ------
    ScenarioError
        A malformed spec, a negative seed, or ``until_s <= warmup_s``.
    """
    spec = EmsSpec.from_dict(spec) if not isinstance(spec, EmsSpec) else spec
    if not isinstance(seed, np.random.SeedSequence) and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ScenarioError(f"run_ems: seed = {seed!r}; expected an integer >= 0 or a numpy SeedSequence")
    if not (isinstance(until_s, (int, float)) and math.isfinite(until_s) and until_s > spec.warmup_s):
        raise ScenarioError(f"run_ems: until_s = {until_s!r}; expected a finite number of seconds > warmup_s "
                            f"= {spec.warmup_s}")
    for i, inc in enumerate(spec.incidents):
        if not inc.time_s < until_s:
            raise ScenarioError(f"ems.incidents[{i}] ('{inc.name}').time_s = {inc.time_s:g}; expected a time before "
                                f"until_s = {until_s:g} s (calls arrive on [0, until_s))")
    model = CityModel(spec, seed=seed, until_s=float(until_s), policy=policy, calls=calls, travel=travel)
    logger.info("EMS run: %d calls, %d units, %d hospitals, until %.0f s", len(model.calls), spec.n_units,
                spec.n_hospitals, until_s)
    end_s = model.run(drain=drain, progress=progress)
    kpis, units, admissions, occupancy, hospitals, assignments = _kpis_and_tables(model, spec.warmup_s, float(until_s))
    flow = {}
    if model.any_flow or model.any_diversion:
        fk, stays, diverted, periods, flow_h, pool_occ = _flow_tables(model, spec.warmup_s, float(until_s))
        kpis.update(fk)
        flow = dict(stays=stays, diverted=diverted, diversion_periods=periods, hospital_flow=flow_h,
                    pool_occupancy=pool_occ)
    extra = {}
    if model.relocator is not None:
        rk, extra["relocations"] = _relocation_table(model, spec.warmup_s, float(until_s))
        kpis.update(rk)
    if model.transfer_rng is not None:
        kpis.update(_transfer_kpis(model, spec.warmup_s, float(until_s)))
    if spec.incidents:
        ik, extra["incidents"] = _incident_table(model)
        kpis.update(ik)
    ev = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    unit_events = pd.DataFrame({"time_s": ev[:, 0], "unit_idx": ev[:, 1].astype(np.int32),
                                "call_id": ev[:, 2].astype(np.int64),
                                "event": np.asarray(UNIT_EVENTS, dtype=object)[ev[:, 3].astype(np.int64)]})
    qs = np.array(model.dispatch.queue_series, dtype=np.float64)
    dq = pd.DataFrame({"time_s": qs[:, 0], "queue_length": qs[:, 1].astype(np.int64)})
    return EmsResult(calls=_calls_frame(model.calls), unit_events=unit_events, units=units, admissions=admissions,
                     occupancy=occupancy, hospitals=hospitals, dispatch_queue=dq, kpis=kpis, seed=seed,
                     until_s=float(until_s), end_s=end_s, spec=spec, assignments=assignments, **flow, **extra)


def run_replications(spec, *, seed: int, n_replications: int, until_s: float, **kwargs):
    """Independent replications of :func:`run_ems`, one child ``SeedSequence`` each.

    The children come from ``numpy.random.SeedSequence(seed).spawn(n_replications)``, so
    replication ``r`` is the same whatever ``n_replications`` is, and two specs run with
    the same seed see the same calls (common random numbers). Returns a list of
    :class:`~twin.emergency.EmsResult`.
    """
    if isinstance(n_replications, bool) or not isinstance(n_replications, (int, np.integer)) or n_replications < 1:
        raise ScenarioError(f"run_replications: n_replications = {n_replications!r}; expected an integer >= 1")
    spec = EmsSpec.from_dict(spec) if not isinstance(spec, EmsSpec) else spec
    children = np.random.SeedSequence(seed).spawn(int(n_replications))
    return [run_ems(spec, seed=child, until_s=until_s, **kwargs) for child in children]
