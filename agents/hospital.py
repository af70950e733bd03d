"""Hospital wards as Mesa agents owning a SimPy bed resource.

A ward has ``beds`` beds (a :class:`simpy.Resource`). A patient arrives by ambulance or
walks in (a Poisson stream of the ward's own). In a *loss* ward a patient who finds every
bed occupied is blocked (turned away and counted), as in Erlang's loss system; in a
*queue* ward patients wait for a bed in triage order — priority 1 first, then 2, then 3
(walk-ins count as 3), and by arrival time (then arrival order) within a priority
(:class:`simpy.PriorityResource`, no pre-emption; with one priority this is FCFS) — and an
ambulance waits with its patient (offload delay). A patient holds the bed for a length of stay drawn from the ward's
distribution by inverse transform of a pre-drawn uniform.

Patient flow (optional, :class:`~twin.emergency.HospitalSpec` ``ward_beds``, ``icu_beds``,
``diversion``, ``transfer``). The ward above is then the emergency department (ED). After
the ED stay a patient needs a ward or ICU bed with the priority's probabilities (drawn,
with the inpatient length of stay, from the hospital's own ``flow`` stream at the moment
the ED stay ends). A patient who finds the pool full *boards*: keeps the ED bed and waits
FCFS for a ward / ICU bed (``boarding = true``), or is counted as blocked and leaves
(``boarding = false``, the pool is a loss system). An ICU patient of a hospital with
``transfer = true`` and no free ICU bed of its own goes at once to the nearest hospital
(travel time now) with a free ICU bed instead, freeing the ED bed; the transfer takes no
ambulance and no time (a simplification), unless ``transfer_by_ambulance``: then the
receiving ICU bed is reserved at once, an inter-hospital transfer (priority 3) is sent to
the dispatch centre, and the patient boards in the ED until the ambulance has loaded them
(see :meth:`twin.agents.ems.CityModel.request_transfer`). Diversion: a hospital with ``diversion = true``
is on diversion while its ED (or ICU) occupancy is at least ``diversion_threshold`` of
its beds; the changes are logged in ``diversion_log``. Out of service (a flood): the ward
takes no new ambulance patients (``out_of_service``), and :meth:`Hospital.evacuate` moves its
ED patients and walk-ins to another hospital.
"""

from __future__ import annotations

import dataclasses
import math

import mesa
import numpy as np
import simpy

from twin.agents.hospital_choice import needs_icu
from twin.emergency import HospitalSpec

__all__ = ["Hospital"]


class Hospital(mesa.Agent):
    """A ward: beds, admissions record and occupancy step series.

    Parameters
    ----------
    model : CityModel
        Owns the clock ``model.env``.
    hospital_idx : int
        Index of the ward in ``spec.hospitals``.
    spec : HospitalSpec

    Attributes
    ----------
    beds : simpy.Resource or simpy.PriorityResource
        Capacity ``spec.beds`` (at least 1 for SimPy; a 0-bed loss ward blocks everyone);
        a priority resource in a queue ward (waiting patients in triage order).
    occupied, waiting : int
        Beds in use and patients waiting for one (queue wards).
    """

    def __init__(self, model, hospital_idx: int, spec: HospitalSpec):
        super().__init__(model)
        self.env = model.env
        self.hospital_idx = hospital_idx
        self.spec = spec
        # A loss ward never queues, so it keeps the plain resource.
        self._by_priority = spec.mode == "queue"
        self.beds = (simpy.PriorityResource if self._by_priority else simpy.Resource)(self.env,
                                                                                       capacity=max(1, spec.beds))
        self.occupied = 0
        self.waiting = 0
        # admissions: (call_id, arrival_s, bed_s, discharge_s, blocked)
        self.admissions = []
        self.series = [(0.0, 0, 0)]
        # patient flow: pool -> [Resource, occupied, boarding, series [(t, occupied, boarding)]]
        self.pools = {}
        for name, n in (("ward", spec.ward_beds), ("icu", spec.icu_beds)):
            if n is not None:
                self.pools[name] = [simpy.Resource(self.env, capacity=max(1, n)), 0, 0, [(0.0, 0, 0)], n]
        # stays: [call_id, pool, hospital_idx (where the bed is), ed_hospital_idx, request_s, bed_s,
        #         discharge_s, blocked, transferred]
        self.stays = []
        self.flow_rng = None
        self.on_diversion = False
        self.diversion_log = [(0.0, False)]
        self.forced_diversion = None              # a rule's diversion (True / False), None: its own rule
        self.out_of_service = False               # no new ambulance patients (e.g. flooded)
        self.redirect = None                      # where walk-ins go while out of service
        self._active = {}                         # _Stay -> process of the stays that can be moved
        self.inpatients = []                      # [process, pool name, request, stay row] of ward / ICU stays
        self.boarding = []                        # the stays (_Stay) boarding in the ED for a ward / ICU bed
        self.transferring = []                    # the stays waiting in the ED for a transfer's ambulance
        self.walk_ins, self.walk_in_next = None, 0     # pre-drawn walk-ins (times, uniforms), the next one
        self.walk_in_proc = None
        self.transfers_out = []                   # (time_s, call_id, to hospital_idx, was in bed)
        self.base_beds, self.surge = spec.beds, 0  # its own ED beds; surge beds opened during the run

    def add_beds(self, n: int) -> None:
        """Open ``n`` surge ED beds now (``n < 0``: close that many of them; never the
        hospital's own beds): waiting patients take new beds at once in triage order; closed
        beds are taken out as their patients leave."""
        self.set_surge(max(0, self.surge + int(n)))
        self._record()

    def set_surge(self, surge: int) -> None:
        """The ED has its own beds plus ``surge`` (no record; :meth:`add_beds`, or a restore)."""
        self.surge = int(surge)
        beds = self.base_beds + self.surge
        self.spec = dataclasses.replace(self.spec, beds=beds)
        self.beds._capacity = max(1, beds)        # simpy keeps the capacity private
        while self.beds.put_queue and len(self.beds.users) < self.beds.capacity:
            self.beds._trigger_put(None)          # one grant per call, in the queue's (triage) order

    def _record(self):
        self.series.append((self.env.now, self.occupied, self.waiting))
        self._check_diversion()

    def _check_diversion(self):
        spec = self.spec
        if self.forced_diversion is not None:
            on = self.forced_diversion
        elif not spec.diversion:
            on = False
        else:
            thr = spec.diversion_threshold
            on = spec.beds > 0 and self.occupied >= thr * spec.beds - 1e-9
            icu = self.pools.get("icu")
            if icu is not None and icu[4] > 0 and icu[1] >= thr * icu[4] - 1e-9:
                on = True
            if spec.beds == 0 and spec.mode == "loss":
                on = True
        if on != self.on_diversion:
            self.on_diversion = on
            self.diversion_log.append((self.env.now, on))

    def _pool_record(self, name):
        pool = self.pools[name]
        pool[3].append((self.env.now, pool[1], pool[2]))
        if name == "icu":
            self._check_diversion()

    def admit(self, call_id: int, u_los: float, priority: int = 3, los_s=None) -> simpy.Event:
        """Bring a patient to the ward now; returns an event that fires when the patient
        has a bed (value ``True``) or is blocked (value ``False``, loss wards).
        ``priority`` (1..3) orders the wait for a bed in a queue ward (1 first) and selects
        the ward / ICU admission probabilities. ``los_s`` fixes the stay (seconds; a patient
        moved in by :meth:`evacuate` keeps the rest of its own); default drawn with ``u_los``."""
        granted = self.env.event()
        self.env.process(self._stay(_Stay(call_id, u_los, priority, los_s, granted)))
        return granted

    def _stay(self, st, wait=None):
        """A patient's ED stay: wait for a bed (``st.phase`` 0), lie in it (1), then (patient
        flow) the ward / ICU step. A restored stay (:mod:`twin.agents.ems_state`) comes back
        with its request, its phase and the clock event it waits on (``wait``)."""
        env = self.env
        if st.row is None:
            st.row = row = [st.call_id, env.now, math.nan, math.nan, False]
            self.admissions.append(row)
            if self.spec.mode == "loss" and self.occupied >= self.spec.beds:
                row[4] = True
                st.granted.succeed(False)
                return
            st.req = self.beds.request(priority=int(st.priority)) if self._by_priority else self.beds.request()
            self.waiting += 1
            self._record()
        row, call_id, u_los, priority = st.row, st.call_id, st.u_los, st.priority
        if st.phase < 2:
            self._active[st] = env.active_process  # this stay can be moved (evacuate) while it waits or lies in bed
        try:
            with st.req as req:
                if st.phase < 2:
                    moved = yield from self._ed_bed(st, req, wait)
                    if moved:
                        return
                    del self._active[st]
                if self.spec.has_flow:
                    st.phase = 2
                    yield from self._after_ed(call_id, priority, st)
                self.occupied -= 1
                row[3] = env.now
        finally:
            self._active.pop(st, None)
        self._record()

    def _ed_bed(self, st, req, wait):
        """Wait for the ED bed (phase 0) and lie in it (1); True when evacuated meanwhile."""
        env, row, call_id, u_los, priority = self.env, st.row, st.call_id, st.u_los, st.priority
        if st.phase == 0:
            try:
                yield req
            except simpy.Interrupt as stop:             # evacuated while waiting for a bed
                self.waiting -= 1
                row[3] = env.now
                self._record()
                if not st.granted.triggered:
                    st.granted.succeed(False)        # the crew leaves the patient to the transfer
                self._moved(stop.cause, call_id, u_los, priority, None)
                return True
            self.waiting -= 1
            self.occupied += 1
            row[2] = env.now
            self._record()
            st.granted.succeed(True)
            los = float(st.los_s) if st.los_s is not None else float(self.spec.length_of_stay.ppf(u_los))
            st.end, st.phase = env.now + los, 1
            wait = env.timeout(los)
        try:
            yield wait
        except simpy.Interrupt as stop:             # evacuated from its bed: the rest of the stay elsewhere
            self.occupied -= 1
            row[3] = env.now
            self._record()
            self._moved(stop.cause, call_id, u_los, priority, st.end - env.now)
            return True
        return False

    def _moved(self, target, call_id, u_los, priority, left_s):
        self.transfers_out.append((self.env.now, call_id, target.hospital_idx, left_s is not None))
        target.admit(call_id, u_los, priority, los_s=left_s)

    def evacuate(self, target) -> int:
        """Move every patient waiting for or lying in an ED bed (not those past their ED stay) to
        hospital ``target`` now: a patient in bed keeps the rest of its stay, a waiting one starts
        there; the move takes no ambulance and no time (as :meth:`start_stay` transfers do).
        Walk-ins go to ``target`` while this ward is out of service. Returns the patients moved."""
        self.redirect = target
        moving = list(self._active.values())
        for proc in moving:
            proc.interrupt(target)
        return len(moving)

    # ---- patient flow -------------------------------------------------------------------
    def _after_ed(self, call_id, priority, st=None):
        """At the end of the ED stay (holding the ED bed): route to ward / ICU / home, board
        while the pool is full. Returns when the ED bed can be freed. A boarding patient's stay
        ``st`` holds ``board = [pool name, request, length of stay, stay row]`` (a restored one
        comes back with it and resumes the wait)."""
        spec, env = self.spec, self.env
        if st is not None and st.board is not None:
            name, req, los, row = st.board
            yield from self._board(name, self.pools[name], req, los, row, st)
            return
        if st is not None and st.transfer is not None:          # restored: waiting for the ambulance
            yield from self._await_pickup(st, st.transfer)
            return
        u, u_los = self.flow_rng.random(2)
        k = int(priority) - 1
        p_ward, p_icu = spec.ward_probability[k], spec.icu_probability[k]
        if needs_icu(self.model, call_id):           # (known at the scene: the call type's)
            name = "icu"
        elif u < p_ward:
            name = "ward"
        elif u < p_ward + p_icu:
            name = "icu"
        else:
            return
        los = float((spec.ward_los if name == "ward" else spec.icu_los).ppf(u_los))
        pool = self.pools.get(name)
        if name == "icu" and spec.transfer and (pool is None or pool[1] >= pool[4]):
            target = self.model.transfer_target(self)
            if target is not None:
                if spec.transfer_by_ambulance:
                    row, req = target.reserve(call_id, "icu", self.hospital_idx)
                    yield from self._await_pickup(st, self.model.request_transfer(self, target, row, req, los))
                    return
                target.start_stay(call_id, "icu", los, self.hospital_idx, transferred=True)
                return
        row = [call_id, name, self.hospital_idx, self.hospital_idx, env.now, math.nan, math.nan, False, False]
        self.stays.append(row)
        if pool is None or pool[4] == 0 or (not spec.boarding and pool[1] >= pool[4]):
            row[7] = True
            return
        req = pool[0].request()
        if not req.triggered:                          # boarding: wait in the ED bed
            pool[2] += 1
            self._pool_record(name)
        yield from self._board(name, pool, req, los, row, st)

    def _await_pickup(self, st, picked_up):
        """Hold the ED bed until the transfer's ambulance has loaded the patient (the stay is
        in ``transferring`` meanwhile, with ``st.transfer`` the pick-up event)."""
        if st is None:
            yield picked_up
            return
        st.transfer = picked_up
        self.transferring.append(st)
        yield picked_up
        st.transfer = None
        self.transferring.remove(st)

    def _board(self, name, pool, req, los, row, st):
        if not req.triggered or st is not None and st.board is not None:
            if st is not None:
                st.board = [name, req, los, row]
                self.boarding.append(st)
            yield req
            if st is not None:
                st.board = None
                self.boarding.remove(st)
            pool[2] -= 1
        pool[1] += 1
        row[5] = self.env.now
        self._pool_record(name)
        self.env.process(self._inpatient(pool, name, req, los, row))

    def start_stay(self, call_id, name, los, from_idx, transferred=False):
        """Put a patient into a free bed of pool ``name`` now (a transfer in)."""
        pool = self.pools[name]
        row = [call_id, name, self.hospital_idx, from_idx, self.env.now, self.env.now, math.nan, False, transferred]
        self.stays.append(row)
        req = pool[0].request()
        assert req.triggered, "start_stay needs a free bed"
        pool[1] += 1
        self._pool_record(name)
        self.env.process(self._inpatient(pool, name, req, los, row))

    def reserve(self, call_id, name, from_idx):
        """Hold a free bed of pool ``name`` now for a patient on the way (a transfer in by
        ambulance); returns the stay row and the granted request (see :meth:`begin_reserved`)."""
        pool = self.pools[name]
        row = [call_id, name, self.hospital_idx, from_idx, self.env.now, math.nan, math.nan, False, True]
        self.stays.append(row)
        req = pool[0].request()
        assert req.triggered, "reserve needs a free bed"
        pool[1] += 1
        self._pool_record(name)
        return row, req

    def begin_reserved(self, row, req, los):
        """The patient of a reserved bed (:meth:`reserve`) arrives now; the stay starts."""
        row[5] = self.env.now
        self.env.process(self._inpatient(self.pools[row[1]], row[1], req, los, row))

    def has_free(self, name) -> bool:
        pool = self.pools.get(name)
        return pool is not None and pool[1] < pool[4]

    def _inpatient(self, pool, name, req, los, row, wait=None):
        rec = [self.env.active_process, name, req, row]
        self.inpatients.append(rec)
        yield wait if wait is not None else self.env.timeout(los)
        self.inpatients.remove(rec)
        pool[0].release(req)
        pool[1] -= 1
        row[6] = self.env.now
        self._pool_record(name)

    def start_walk_ins(self, wait=None) -> None:
        """Start admitting the pre-drawn walk-ins ``walk_ins`` (from ``walk_in_next`` on)."""
        self.walk_in_proc = self.env.process(self.walk_in_source(*self.walk_ins, wait=wait))

    def walk_in_source(self, arrivals_s: np.ndarray, u_los: np.ndarray, wait=None):
        """SimPy process admitting pre-drawn walk-in patients at ``arrivals_s``; the next one is
        ``walk_in_next`` (a restored source starts there, waiting on ``wait``)."""
        env = self.env
        while self.walk_in_next < len(arrivals_s):
            i = self.walk_in_next
            yield wait if wait is not None else env.timeout(arrivals_s[i] - env.now)
            wait, self.walk_in_next = None, i + 1
            (self.redirect if self.out_of_service and self.redirect is not None else self).admit(-1, u_los[i])


class _Stay:
    """An ED stay in progress: the patient, the bed request, the phase (0 waiting for a bed,
    1 in bed until ``end``, 2 past the ED stay: boarding (``board``) or waiting for a transfer's
    ambulance (``transfer``, the pick-up event)) and the admissions row."""

    __slots__ = ("call_id", "u_los", "priority", "los_s", "granted", "row", "req", "phase", "end", "board", "transfer")

    def __init__(self, call_id, u_los, priority, los_s, granted):
        self.call_id, self.u_los, self.priority, self.los_s, self.granted = call_id, u_los, priority, los_s, granted
        self.row, self.req, self.phase, self.end, self.board, self.transfer = None, None, 0, math.nan, None, None
