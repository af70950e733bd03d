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
traffic flow, :class:`twin.scenarios.traffic.TrafficTravelTimes`) can answer from live, congested
link times; the model asks it whenever a leg starts (wheels rolling to the scene, leaving
the scene for hospital, starting to return) and when the nearest-idle policy compares units,
and the leg then lasts that long (no re-timing en route). A provider whose ``drives`` is
true has a ``drive(env,
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
import simpy

from twin.agents.calls import (CallTable, draw_call_table, draw_incident_calls, generate_calls, poisson_arrivals,
                               run_stream, spawn_streams)
from twin.agents.dispatch import DispatchCentre, NearestIdle, Relocator, make_policy
from twin.agents.ems_assembly import ems_result
from twin.agents.hospital import Hospital
from twin.agents.hospital_choice import choose_hospital, door_wait_s
from twin.emergency import AMBULANCE_KINDS, OUTCOMES, UNIT_EVENTS, UNIT_KINDS, EmsResult, EmsSpec, UnitSpec
from twin.errors import ScenarioError
from twin.streams import replication_seeds

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

    A provider is any object with an attribute and two methods:

    ``drives``
        False here. True: the provider also has ``drive(env, origin_idx, destination_idx,
        *, leg, priority)``, returning an event that fires when the unit arrives (units as
        vehicles in traffic).
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

    drives = False

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

    Used when a non-static provider is given. Eligibility is a finite travel time now too: a
    unit is not sent into an area the closures cut off; the call waits in the queue, offered
    again at each synchronisation (:meth:`DispatchCentre.retry`).
    """

    def choose(self, model, call_idx, idle_units):
        if not idle_units:
            return None
        dest = model.calls.location_idx[call_idx]
        tt = np.asarray(model.travel.time_s([u.location_idx for u in idle_units], dest), dtype=np.float64)
        k = int(np.argmin(tt))
        return idle_units[k] if math.isfinite(tt[k]) else None

    def eligible(self, model, unit, call_idx):
        return math.isfinite(float(model.travel.time_s(unit.location_idx, int(model.calls.location_idx[call_idx]))))


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
        # units as vehicles in traffic: a provider that ``drives`` moves them leg by leg
        self._drive_leg = model.travel.drive if model.travel.drives else None
        # the assignment in progress (see _serve_path): process, call, step, leg, bed awaited
        self.serve, self.serve_call, self.at, self.leg_now, self.granted = None, -1, -1, None, None
        self.posted = False                       # on a post (a rule's traffic control): not dispatched
        self.move_args = None                     # (destination, code, call) of the drive in progress

    @property
    def idle(self) -> bool:
        return self.state in IDLE_STATES and not self.posted

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
            self.serve = self.env.process(self._serve_transfer(call_idx))
        else:
            self.serve = self.env.process(self._serve_textbook(call_idx) if self._textbook else self._serve_path(call_idx))
        self.serve_call = call_idx

    # A unit's assignment is a process that a checkpoint can write as data and start again
    # where it was (twin.agents.ems_state): ``at`` names the step it is in, ``leg_now`` the
    # leg being driven ((start_s, planned_s or None)), and a restored process comes back with
    # the event it waits on (``wait``).
    def _serve_textbook(self, c, wait=None):
        model, calls = self.model, self.model.calls
        self.at = 0
        if wait is None:
            travel = model.travel.time_s(self.location_idx, int(calls.location_idx[c]))
            arrive = self.env.now + travel
            if not arrive >= calls.on_scene_at_s[c]:          # NaN (first unit) or earlier than the first
                calls.travel_s[c] = travel
                calls.on_scene_at_s[c] = arrive
            self._row[4] = arrive
            wait = self.env.timeout(float(self.busy_time.ppf(calls.u_busy[c])))
        yield wait
        self.location_idx = self.station_idx
        self._release(c)

    def _leg(self, origin, dest, leg, c, planned=None, wait=None):
        """Drive from ``origin`` to ``dest`` for call ``c``; return the seconds it took.

        On the provider's times (``planned`` = (start_s, seconds or None), else ``travel.time_s``),
        or as a vehicle of the provider's ``drive`` when it has one (the leg then lasts until the
        vehicle arrives).
        """
        env = self.env
        t0, t = planned if planned is not None else (env.now, None)
        if self._drive_leg is None:
            t = t if t is not None else self.model.travel.time_s(origin, dest)
            self.leg_now = (t0, t)
            yield wait if wait is not None else env.timeout(t)
            return t
        self.leg_now = (t0, None)
        yield wait if wait is not None else self._drive_leg(env, origin, dest, leg=leg,
                                                            priority=int(self.model.calls.priority[c]))
        return env.now - t0

    def _turnout(self, c, wait):
        """Step 0 of a call: the turnout time (or a restored wait for its end), then en route."""
        self.at = 0
        if wait is not None:
            yield wait
        elif self.model.calls.turnout_s[c] > 0:
            yield self.env.timeout(float(self.model.calls.turnout_s[c]))
        self._log(c, EN_ROUTE)

    def _serve_path(self, c, at=0, wait=None, leg=None):
        env, model, calls = self.env, self.model, self.model.calls
        dest = int(calls.location_idx[c])
        if at == 0:
            yield from self._turnout(c, wait)
            travel = model.travel.time_s(self.location_idx, dest)
            if calls.travel_s[c] != calls.travel_s[c]:        # NaN: the first unit rolling
                calls.travel_s[c] = travel
            wait, leg = None, (env.now, travel)
        if at <= 1:
            self.at = 1
            travel = yield from self._leg(self.location_idx, dest, "response", c, leg, wait)
            self.location_idx = dest
            if calls.on_scene_at_s[c] != calls.on_scene_at_s[c]:   # the first unit on scene
                calls.on_scene_at_s[c] = env.now
                calls.travel_s[c] = travel
            self._row[4] = env.now
            self._log(c, ON_SCENE)
            wait = None
        if at <= 2:
            self.at = 2
            yield wait if wait is not None else env.timeout(float(calls.on_scene_s[c]))
            wait, leg = None, None
            if not (self._transports and calls.transport[c]):
                self._release(c)
                return
            if model.any_diversion or model.any_out_of_service or model.door_choice or model.needs[
                    calls.type_idx[c]]:
                calls.hospital_idx[c] = model.choose_hospital(c, dest)
            self._log(c, TRANSPORTING)
        hosp = model.hospitals[calls.hospital_idx[c]]
        if at <= 3:
            self.at = 3
            yield from self._leg(dest, hosp.spec.location_idx, "transport", c, leg, wait)
            self.location_idx = hosp.spec.location_idx
            calls.at_hospital_s[c] = env.now
            self._log(c, AT_HOSPITAL)
            wait = hosp.admit(c, float(calls.u_los[c]), int(calls.priority[c]))
        if at <= 4:
            self.at, self.granted = 4, wait
            admitted = yield wait
            self.granted = None
            if admitted:
                calls.bed_s[c] = env.now
            self._log(c, HANDOVER)
            wait = None
        self.at = 5
        yield wait if wait is not None else env.timeout(float(calls.handover_s[c]))
        self._release(c)

    def _serve_transfer(self, c, at=0, wait=None, leg=None):
        """An inter-hospital transfer: drive to the sending hospital (steps 0 turnout, 1 the
        drive), load the patient (2: handover time; the ED bed is freed), drive to the
        receiving one (3), hand over into the reserved ICU bed (5: handover time again). A
        restored one starts at its step ``at`` with the event it waits on, as
        :meth:`_serve_path`."""
        env, model, calls = self.env, self.model, self.model.calls
        origin, transfer = int(calls.location_idx[c]), model.transfers[c]
        if at == 0:
            yield from self._turnout(c, wait)
            wait = None
        if at <= 1:
            self.at = 1
            calls.travel_s[c] = yield from self._leg(self.location_idx, origin, "transfer", c, leg, wait)
            self.location_idx = origin
            calls.on_scene_at_s[c] = env.now
            self._row[4] = env.now
            self._log(c, ON_SCENE)
            wait, leg = None, None
        if at <= 2:
            self.at = 2
            yield wait if wait is not None else env.timeout(float(calls.on_scene_s[c]))
            transfer.picked = True
            transfer.picked_up.succeed()
            self._log(c, TRANSPORTING)
            wait = None
        hosp = model.hospitals[calls.hospital_idx[c]]
        if at <= 3:
            self.at = 3
            yield from self._leg(origin, hosp.spec.location_idx, "transfer", c, leg, wait)
            self.location_idx = hosp.spec.location_idx
            calls.at_hospital_s[c] = calls.bed_s[c] = env.now
            self._log(c, AT_HOSPITAL)
            hosp.begin_reserved(transfer.row, transfer.request, transfer.los_s)
            transfer.row = transfer.request = None          # (the stay has begun: the bed is the inpatient's)
            self._log(c, HANDOVER)
            wait = None
        self.at = 5
        yield wait if wait is not None else env.timeout(float(calls.handover_s[c]))
        self._release(c)

    def _release(self, c):
        model = self.model
        calls = model.calls
        self.serve, self.serve_call, self.at = None, -1, -1
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
        self.move_args = (dest_idx, code, call_idx)
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

    def _drive(self, dest, code, c, wait=None):
        if wait is None:
            self._log(c, code)
        try:
            if wait is not None:
                yield wait
            elif self._drive_leg is None:
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

    __slots__ = ("row", "request", "los_s", "picked_up", "from_hospital_idx", "picked")

    def __init__(self, row, request, los_s, picked_up, from_hospital_idx):
        self.row, self.request, self.los_s = row, request, los_s        # (None once the stay has begun)
        self.picked_up, self.from_hospital_idx, self.picked = picked_up, from_hospital_idx, False


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
    env : simpy.Environment, optional
        The clock to run on (a simulation's shared clock); a new one by default.
    streams : dict, optional
        Generators of :data:`twin.emergency.STREAMS` by name (a simulation's registry);
        spawned from ``seed`` by default.
    incident_rng : numpy.random.Generator, optional
        The scripted incidents' stream (default: run stream ``incidents`` of ``seed``).
    start : bool
        Register the processes on the clock now (:meth:`start`); a simulation that starts
        its flows in order passes False and calls :meth:`start` itself.

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

    def __init__(self, spec: EmsSpec, *, seed, until_s: float, policy=None, calls=None, travel=None, env=None,
                 streams=None, incident_rng=None, start=True):
        streams = spawn_streams(seed) if streams is None else streams
        super().__init__(rng=streams["agents"])
        self.streams = streams
        self.spec = spec
        self.seed = seed
        self.until_s = float(until_s)
        self.env = simpy.Environment() if env is None else env
        self.call_listeners = []    # callback(call_idx, time_s, priority) when a call reaches dispatch
        self.calls = generate_calls(spec, self.until_s, streams, calls)
        self.zone_location = np.array([z.location_idx for z in spec.zones], dtype=np.int64)
        self.unit_events = []
        self.assignments = []
        self.sources = []           # [process, next call, stop] of the call sources running
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
        self.first_calls = len(self.calls)      # the calls drawn up front (a forecast member redraws them)
        self.hospitals = [Hospital(self, h, hs) for h, hs in enumerate(spec.hospitals)]
        # Every agent exists now. mesa.Agent numbers agents with a class-level dict keyed by
        # model (mesa 3.x), which would keep this model and all it holds (a traffic engine
        # too) alive for the life of the process: drop this model's entry.
        getattr(mesa.Agent, "_ids", {}).pop(self, None)
        self._to_start = []          # process registrations, done by start()
        self.running = False         # started (or restored from a checkpoint)
        hstreams = streams["hospital"].spawn(len(self.hospitals)) if self.hospitals else []
        for hosp, rng in zip(self.hospitals, hstreams):
            t = poisson_arrivals(rng, hosp.spec.walk_in_rate_per_h / 3600.0, self.until_s)
            if len(t):
                hosp.walk_ins = (t, rng.random(len(t)))
                self._to_start.append(hosp.start_walk_ins)
        # Patient flow and diversion (optional): a further spawn, so the streams above are
        # unchanged for specs that do not use them.
        self.any_flow = any(h.has_flow for h in spec.hospitals)
        self.any_diversion = any(h.diversion for h in spec.hospitals)
        self.any_out_of_service = False          # set when a hospital goes out of service (a flood)
        self.diverted = []      # (call_idx, time_s, nearest hospital_idx, chosen hospital_idx)
        self.door_choice = spec.dispatch.hospital_choice == "door"
        self.specialty = [ct.specialty for ct in spec.call_types] + [""]     # (+ inter-hospital transfers)
        self.icu_need = [bool(ct.icu) for ct in spec.call_types] + [False]
        self.needs = [bool(s or i) for s, i in zip(self.specialty, self.icu_need)]   # chosen at the scene
        self.hospital_report_s = float(spec.dispatch.hospital_report_s)
        # every choice at a scene: (call_idx, time_s, nearest, chosen, travel to the nearest s, to the
        # chosen s, expected door wait at the nearest s, at the chosen s; NaN waits: nearest choice)
        self.hospital_choices = []
        self.posted_log = []    # [unit_idx, post location, start_s, end_s (NaN: still there)]
        if self.any_flow:
            for hosp, rng in zip(self.hospitals, streams["hospital"].spawn(len(self.hospitals))):
                hosp.flow_rng = rng
        self._to_start.append(lambda: self.travel.start(self))
        if len(self.calls):
            self._to_start.append(lambda n=len(self.calls): self._source(0, n))
        # Scripted incidents (optional): appended after the drawn calls, from the run's own
        # last stream, so runs without incidents are unchanged.
        self.incident_calls = []     # per incident: its call indices
        if spec.incidents:
            rng = run_stream(seed, "incidents") if incident_rng is None else incident_rng
            for table in draw_incident_calls(spec, rng):
                idx = self.calls.append(table)
                self.incident_calls.append(idx)
                self._to_start.append(lambda a=int(idx[0]), b=int(idx[-1]) + 1: self._source(a, b))
        if start:
            self.start()

    def start(self) -> None:
        """Register the model's processes on the clock (walk-ins, the travel provider's,
        the call sources), in that order; once. ``CityModel(..., start=True)`` does it."""
        todo, self._to_start = self._to_start, []
        self.running = True
        for fn in todo:
            fn()

    def idle_units(self, kind=None):
        """Units free for dispatch (of one kind, a :data:`~twin.emergency.UNIT_KINDS`
        index, when given), in unit-index order."""
        units = self.units if kind is None else self.units_of_kind[kind]
        return [u for u in units if u.state in IDLE_STATES and not u.posted]

    def transfer_target(self, hospital):
        """The hospital nearest ``hospital`` (travel time now; ties: lowest index) with a
        free ICU bed, other than itself; None when there is none."""
        cand = [h for h in self.hospitals if h is not hospital and h.has_free("icu") and not h.out_of_service]
        if not cand:
            return None
        tt = np.array([self.travel.time_s(hospital.spec.location_idx, h.spec.location_idx) for h in cand],
                      dtype=np.float64)
        k = int(np.argmin(tt))
        return cand[k] if math.isfinite(tt[k]) else None

    def choose_hospital(self, call_idx, origin_idx):
        """Hospital for a transport leaving ``origin_idx`` now
        (:func:`twin.agents.hospital_choice.choose_hospital`)."""
        return choose_hospital(self, call_idx, origin_idx)

    def door_wait_s(self, k):
        """Expected wait for an ED bed at hospital ``k`` (:func:`twin.agents.hospital_choice.door_wait_s`)."""
        return door_wait_s(self, k)

    def _source(self, first, stop, wait=None) -> None:
        """Start a call source: calls ``first .. stop - 1`` reach dispatch at their times."""
        rec = [None, int(first), int(stop)]          # process, next call, stop
        self.sources.append(rec)
        rec[0] = self.env.process(self._call_source(rec, wait))

    def _call_source(self, rec, wait=None):
        env, times = self.env, self.calls.time_s
        while rec[1] < rec[2]:
            c = rec[1]
            yield wait if wait is not None else env.timeout(times[c] - env.now)
            wait, rec[1] = None, c + 1
            self.receive(c)
        self.sources[:] = [r for r in self.sources if r is not rec]

    def receive(self, call_idx) -> None:
        """A call reaches the dispatch centre now (its listeners hear of it first)."""
        for fn in self.call_listeners:
            fn(call_idx, self.env.now, int(self.calls.priority[call_idx]))
        self.dispatch.receive(call_idx)

    def add_calls(self, time_s, zone_idx, type_idx, rng) -> np.ndarray:
        """Add calls that arise during the run (e.g. traffic crashes); returns their indices.

        ``time_s`` (ascending, ``>= env.now``), ``zone_idx`` and ``type_idx`` are arrays; each
        call's dice are drawn from ``rng``. The calls reach the dispatch centre at their times.
        """
        t = np.asarray(time_s, dtype=np.float64)
        if not len(t):
            return np.empty(0, dtype=np.int64)
        if np.any(np.diff(t) < 0) or (self.running and t[0] < self.env.now):   # (built from a checkpoint: not now)
            raise ValueError(f"add_calls: times must be ascending and >= now = {self.env.now}")
        table = draw_call_table(self.spec, t, zone_idx, type_idx, {"dispatch": rng, "service": rng, "hospital": rng})
        table.location_idx = self.zone_location[table.zone_idx].astype(np.int32)
        idx = self.calls.append(table)
        self._source(int(idx[0]), int(idx[-1]) + 1)
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
        self.receive(c)
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
        ``dispatch_queue_mean`` (time average), ``unit_utilisation_mean``, the ambulance
        offload delay (the crew's wait with its patient for a bed: ``offload_delay_mean_s``,
        ``offload_delay_p90_s`` over transports that got a bed, ``offload_unit_h`` in all) and, per ward,
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
    return ems_result(model, end_s)


def run_replications(spec, *, seed: int, n_replications: int, until_s: float, **kwargs):
    """Independent replications of :func:`run_ems`, one run seed each.

    Replication ``r`` runs with ``twin.streams.replication_seeds(seed, n_replications)[r]`` —
    the derivation :func:`twin.ensemble.replicate` uses — so it is the same whatever
    ``n_replications`` is, and two specs run with the same seed see the same calls (common
    random numbers). Returns a list of :class:`~twin.emergency.EmsResult`.
    """
    if isinstance(n_replications, bool) or not isinstance(n_replications, (int, np.integer)) or n_replications < 1:
        raise ScenarioError(f"run_replications: n_replications = {n_replications!r}; expected an integer >= 1")
    spec = EmsSpec.from_dict(spec) if not isinstance(spec, EmsSpec) else spec
    return [run_ems(spec, seed=s, until_s=until_s, **kwargs) for s in replication_seeds(seed, int(n_replications))]
