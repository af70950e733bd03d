"""The dispatch centre and its unit-selection policies (plug-ins).

A call reaches the centre at its call time, is processed for ``processing_s`` and becomes
*ready*. With call-taking centres (:attr:`twin.emergency.DispatchSpec.centres`) it first waits
for a free call taker of its centre, who stays with it while it is processed
(:class:`twin.agents.call_taking.CallTakers`). The call type names the units it needs, one
*slot* per unit with a kind and an optional fallback kind (see
:attr:`twin.emergency.CallTypeSpec.slots`). For each slot in order the policy picks an
eligible idle unit of the slot's kind, else of its fallback
kind. Units found are dispatched at once (partial dispatch). If a slot stays open the call
joins (or stays in) the dispatch queue, ordered by priority, then call time, then call id;
a call that got no unit at all is lost instead when ``max_queue`` calls already wait
(``0`` for a loss system). When a unit becomes available it takes the first queued call,
in that order, that it is eligible for and that has an open slot of its kind (one of its
kind first, else one it is the fallback for).

Agencies (siloed centres, :attr:`twin.emergency.DispatchSpec.centre_of_kind`): a ready
call's centre sends only the units it owns (or that no centre owns) and transfers the call to
each centre owning other units it needs: after the transfer delay the call waits for a call
taker there, is interviewed again, and that centre sends its units (their slots queue like
any other). With jurisdictions a call's centre and the centre owning a kind depend on the
call's zone, and every unit belongs to one centre (``centre_of_unit``): a slot takes only its
centre's units, or unowned ones (a fallback kind too). With mutual aid, a centre that leaves
a slot open asks its partners, and ``aid_delay`` later their units may fill the slots still
open (one hop: the partners' partners are not asked).

A policy is any object with two methods (see :class:`NearestIdle`):
``choose(model, call_idx, idle_units) -> Unit | None`` and
``eligible(model, unit, call_idx) -> bool``. Units drive to the call's
``calls.location_idx`` (its zone's location; the sending hospital for an inter-hospital
transfer, which is never lost and which the preference policy serves as ``nearest`` does;
a scripted incident's patient, at the incident's location, is never lost either and is
served the same way).

:class:`Relocator` is the optional move-up (system-status management) of idle units to a
compliance table (see :class:`twin.emergency.RelocationSpec`).
"""

from __future__ import annotations

import heapq
import math

import mesa
import numpy as np
from scipy.optimize import linear_sum_assignment

from twin.emergency import OUTCOMES, UNIT_KINDS

__all__ = ["DispatchCentre", "NearestIdle", "PreferenceList", "Relocator", "make_policy"]

LOST = OUTCOMES.index("lost")


class NearestIdle:
    """The idle unit with the least travel time from its current location to the call.

    Ties go to the lowest unit index. A unit with infinite travel time is not eligible.
    A returning unit is taken to be at the place it started returning from.
    """

    name = "nearest"

    def choose(self, model, call_idx, idle_units):
        if not idle_units:
            return None
        dest = model.calls.location_idx[call_idx]
        tt = model.spec.travel_time_s[[u.location_idx for u in idle_units], dest]
        k = int(np.argmin(tt))
        return idle_units[k] if math.isfinite(tt[k]) else None

    def eligible(self, model, unit, call_idx):
        dest = model.calls.location_idx[call_idx]
        return math.isfinite(model.spec.travel_time_s[unit.location_idx, dest])


class PreferenceList:
    """The first idle unit on the zone's fixed preference list (Larson's hypercube rule).

    Parameters
    ----------
    preference_lists : sequence of sequences of int
        Unit indices in order of preference, one list per zone.
    """

    name = "preference"

    def __init__(self, preference_lists):
        self.lists = [tuple(p) for p in preference_lists]
        self._members = [set(p) for p in self.lists]

    def choose(self, model, call_idx, idle_units):
        zone = model.calls.zone_idx[call_idx]
        if zone < 0:                                    # not a zone's call: a transfer
            return NearestIdle.choose(self, model, call_idx, idle_units)
        idle = {u.unit_idx: u for u in idle_units}
        for unit_idx in self.lists[zone]:
            if unit_idx in idle:
                return idle[unit_idx]
        return None

    def eligible(self, model, unit, call_idx):
        zone = model.calls.zone_idx[call_idx]
        if zone < 0:
            return NearestIdle.eligible(self, model, unit, call_idx)
        return unit.unit_idx in self._members[zone]


def make_policy(dispatch_spec):
    """The policy object named by a :class:`~twin.emergency.DispatchSpec`."""
    if dispatch_spec.policy == "preference":
        return PreferenceList(dispatch_spec.preference_lists)
    return NearestIdle()


class DispatchCentre(mesa.Agent):
    """Receives calls, queues them by priority and assigns units through a policy.

    Attributes
    ----------
    queue : list
        Heap of ``(priority, time_s, call_idx)``.
    pending : dict
        Open slots (indices into the call type's slots) of each queued call.
    queue_series : list of (time_s, length)
        Step series of the queue length (calls with an open slot).
    """

    def __init__(self, model, policy, max_queue=None):
        super().__init__(model)
        self.env = model.env
        self.policy = policy
        self.max_queue = max_queue
        self.queue = []
        self.pending = {}
        self.queue_series = [(0.0, 0)]
        self.processing = {}        # call -> its call-taking process (calls not ready yet)
        d = model.spec.dispatch
        self._instant = d.processing.is_zero and all(q.is_zero for p in d.type_processing
                                                     for q in (p if isinstance(p, tuple) else (p,)))
        self.takers = None
        self.transferring = {}      # (call, centre) -> [its transfer process, step: 0 delay, 1 interview]
        self.aiding = {}            # (call, centre) -> its mutual-aid request (the delay)
        self.aided = set()          # (call, centre): aid asked; the partners' units may fill its slots
        self.aid_log = []           # [call, centre, time asked s, units the partners sent then]
        self.owner = None           # the centre of each unit (-1: any) when centres own units
        self._splits = {}           # (type, zone) -> (own slots, ((centre, slots), ...))
        if d.centres:
            from twin.agents.call_taking import CallTakers
            from twin.ems_centres import per_zone

            self.takers = CallTakers([c[0] for c in d.centres], [c[1] for c in d.centres])
            n_z = len(model.spec.zones)
            self.centre_of = per_zone(d.centre_of_type, n_z)
            if d.centre_of_kind:
                self.kind_centre = per_zone(d.centre_of_kind, n_z)
                self.owner = (np.asarray(d.centre_of_unit, dtype=np.int64) if d.centre_of_unit else
                              np.array([self.kind_centre[UNIT_KINDS.index(u.kind), 0] for u in model.spec.units],
                                       dtype=np.int64))
                self.partners = [frozenset(m) for m in d.mutual_aid] if d.mutual_aid else [frozenset()] * len(d.centres)

    def call_centre(self, call_idx) -> int:
        """The centre answering a call (its type's in its zone), or -1 (no call to answer: an
        inter-hospital transfer, a scripted incident's patient)."""
        calls = self.model.calls
        t, z = int(calls.type_idx[call_idx]), int(calls.zone_idx[call_idx])
        return int(self.centre_of[t, z]) if z >= 0 and t < self.model.n_call_types else -1

    def _split(self, call_idx):
        """``(own slots, ((centre, slots), ...))``: the call's slots its centre sends, and those
        each other centre owning their units sends (after a transfer)."""
        calls = self.model.calls
        key = (int(calls.type_idx[call_idx]), int(calls.zone_idx[call_idx]))
        if key not in self._splits:
            k0, own, other = self.call_centre(call_idx), [], {}
            for s, (kind, _) in enumerate(self.model.type_slots[key[0]]):
                k = int(self.kind_centre[kind, key[1]])
                (own if k in (-1, k0) else other.setdefault(k, [])).append(s)
            self._splits[key] = (tuple(own), tuple((k, tuple(v)) for k, v in sorted(other.items())))
        return self._splits[key]

    def _allowed(self, call_idx, slot):
        """The centres whose units may fill ``slot`` of the call (None: any unit): the slot's
        centre, and its mutual-aid partners once aid was asked."""
        if self.owner is None:
            return None
        k0 = self.call_centre(call_idx)
        if k0 < 0:
            return None
        z = int(self.model.calls.zone_idx[call_idx])
        k = int(self.kind_centre[self.model.type_slots[self.model.calls.type_idx[call_idx]][slot][0], z])
        k = k0 if k < 0 else k
        return self.partners[k] | {k, -1} if (call_idx, k) in self.aided else {k, -1}

    def receive(self, call_idx):
        """A call arrives now (with call takers: it may wait for one)."""
        if self.takers is not None:
            k = self.call_centre(call_idx)
            if k >= 0 and not self.takers.arrive(call_idx, k, self.env.now):
                return
        self._answered(call_idx)

    def restore_takers(self, state) -> None:
        """Take the call takers' state back (a checkpoint); calls waiting while call takers are
        free (the what-if gave more) are answered now."""
        self.takers.restore(state)
        for key in self.takers.take_waiting(self.env.now):
            self._answer(key)

    def _answer(self, key):
        """A call taker has just answered ``(call, centre)``: the call at its own centre, or a
        transfer (interviewed again there)."""
        if key in self.takers.transfers:
            self.transferring[key] = [self.env.process(self._transfer(*key, at=1)), 1]
        else:
            self._answered(key[0])

    def _answered(self, call_idx):
        if self._instant:
            self._processed(call_idx)
        else:
            self.processing[call_idx] = self.env.process(self._process(call_idx))

    def _process(self, call_idx, wait=None):
        yield wait if wait is not None else self.env.timeout(float(self.model.calls.processing_s[call_idx]))
        del self.processing[call_idx]
        self._processed(call_idx)

    def _processed(self, call_idx):
        """Processing is over: the call taker takes the next waiting call; this one is ready."""
        if self.takers is not None:
            nxt = self.takers.release(call_idx, self.call_centre(call_idx), self.env.now)
            if nxt is not None:
                self._answer(nxt)
        self._ready(call_idx)

    def _transfer(self, call_idx, centre, at=0, wait=None):
        """A call transferred to ``centre`` (which owns units it needs): the transfer delay
        (step 0), a call taker there (the queue: no process), the interview (step 1), then
        that centre sends its units."""
        env, calls, d = self.env, self.model.calls, self.model.spec.dispatch
        key = (call_idx, centre)
        if at == 0:
            yield wait if wait is not None else env.timeout(float(d.transfer.ppf(calls.u_transfer[call_idx])))
            wait = None
            if not self.takers.arrive(call_idx, centre, env.now, transfer=True):
                del self.transferring[key]
                return                                      # (answered later: _answer)
            self.transferring[key][1] = 1
        interview = d.centre_processing[centre].ppf(calls.u_reinterview[call_idx]) if d.centre_processing else 0.0
        yield wait if wait is not None else env.timeout(float(interview))
        del self.transferring[key]
        nxt = self.takers.release(call_idx, centre, env.now)
        if nxt is not None:
            self._answer(nxt)
        if calls.outcome[call_idx] != LOST:
            self._send(call_idx, dict(self._split(call_idx)[1])[centre], centre, transfer=True)

    def _aid(self, call_idx, centre, wait=None):
        """Mutual aid: ``aid_delay`` after ``centre`` found none of its own units idle for the
        call, its partners' units may fill the slots still open (one is sent now where idle)."""
        calls = self.model.calls
        yield wait if wait is not None else self.env.timeout(
            float(self.model.spec.dispatch.aid_delay.ppf(calls.u_aid[call_idx])))
        del self.aiding[(call_idx, centre)]
        self.aided.add((call_idx, centre))
        n = self._fill(call_idx)
        self.aid_log.append([call_idx, centre, self.env.now, n])
        if n:
            self.queue_series.append((self.env.now, len(self.queue)))

    def _pick(self, call_idx, kind, fallback, slot=None):
        """The policy's choice among the idle units of ``kind`` (else of ``fallback``) that may
        fill ``slot`` (or None)."""
        model = self.model
        allowed = None if slot is None else self._allowed(call_idx, slot)
        for k in (kind, fallback):
            if k < 0:
                continue
            idle = model.idle_units(k)
            if allowed is not None:
                idle = [u for u in idle if self.owner[u.unit_idx] in allowed]
            unit = self.policy.choose(model, call_idx, idle)
            if unit is not None:
                return unit
        return None

    def _ready(self, call_idx):
        """The call is ready at its centre: the units of its own centre are sent, and in siloed
        mode the call is transferred to each centre owning other units it needs."""
        calls = self.model.calls
        calls.ready_s[call_idx] = self.env.now
        k0 = self.call_centre(call_idx) if self.owner is not None else -1
        if k0 < 0:
            self._send(call_idx, range(len(self.model.type_slots[calls.type_idx[call_idx]])), k0)
            return
        own, other = self._split(call_idx)
        self._send(call_idx, own, k0)
        if calls.outcome[call_idx] == LOST:
            return
        for k, _ in other:
            self.transferring[(call_idx, k)] = [self.env.process(self._transfer(call_idx, k)), 0]

    def _send(self, call_idx, slot_ids, centre, transfer=False):
        """``centre`` sends a unit to each of the call's slots ``slot_ids`` (the policy's choice),
        queues the call with the slots left open (a call none of whose units could be sent is
        lost instead when the queue is full; a transfer's slots always queue) and asks its
        mutual-aid partners for them."""
        model = self.model
        calls = model.calls
        slots = model.type_slots[calls.type_idx[call_idx]]
        pending = []
        sent = []
        for s in slot_ids:
            unit = self._pick(call_idx, *slots[s], s)
            if unit is None:
                pending.append(s)
            else:
                unit.assign(call_idx, s)
                sent.append(unit.kind)
        if sent and model.relocator is not None:
            for kind in sorted(set(sent)):
                model.relocator.changed(kind)
        if not pending:
            return
        if call_idx in self.pending:                       # (own slots still open when a transfer's come)
            self.pending[call_idx].extend(pending)
        elif (not transfer and len(pending) == len(slot_ids) and self.max_queue is not None
                and len(self.queue) >= self.max_queue and not model.never_lost(call_idx)):
            calls.outcome[call_idx] = LOST
            return
        else:
            self.pending[call_idx] = pending
            heapq.heappush(self.queue, (int(calls.priority[call_idx]), float(calls.time_s[call_idx]), call_idx))
            self.queue_series.append((self.env.now, len(self.queue)))
        if centre >= 0 and self.owner is not None and self.partners[centre] and (call_idx, centre) not in self.aided:
            self.aiding[(call_idx, centre)] = self.env.process(self._aid(call_idx, centre))

    def _slot_for(self, unit, call_idx):
        """The open slot of a queued call that ``unit`` may fill (its own kind first), or None."""
        slots = self.model.type_slots[self.model.calls.type_idx[call_idx]]
        pending = self.pending[call_idx]
        if self.owner is not None:
            pending = [s for s in pending if (a := self._allowed(call_idx, s)) is None
                       or self.owner[unit.unit_idx] in a]
        for s in pending:
            if slots[s][0] == unit.kind:
                break
        else:
            s = next((s for s in pending if slots[s][1] == unit.kind), None)
            if s is None:
                return None
        return s if self.policy.eligible(self.model, unit, call_idx) else None

    def unit_free(self, unit) -> bool:
        """``unit`` has just become available; give it the first queued call it may serve.

        Returns True when the unit was assigned.
        """
        if not self.queue:
            return False
        entry = self.queue[0]
        slot = self._slot_for(unit, entry[2])
        if slot is None:
            for entry in sorted(self.queue):
                slot = self._slot_for(unit, entry[2])
                if slot is not None:
                    break
            else:
                return False
        call_idx = entry[2]
        pending = self.pending[call_idx]
        pending.remove(slot)
        if not pending:
            del self.pending[call_idx]
            if entry is self.queue[0]:
                heapq.heappop(self.queue)
            else:
                self.queue.remove(entry)
                heapq.heapify(self.queue)
            self.queue_series.append((self.env.now, len(self.queue)))
        unit.assign(call_idx, slot)
        return True


    def _fill(self, call_idx) -> int:
        """Offer the queued call's open slots to the idle units now (the policy's choice for
        each); returns how many units were sent."""
        model, n = self.model, 0
        if call_idx not in self.pending:
            return 0
        slots = model.type_slots[model.calls.type_idx[call_idx]]
        for s in list(self.pending[call_idx]):
            unit = self._pick(call_idx, *slots[s], s)
            if unit is None:
                continue
            self.pending[call_idx].remove(s)
            unit.assign(call_idx, s)
            n += 1
        if not self.pending[call_idx]:
            del self.pending[call_idx]
            self.queue = [e for e in self.queue if e[2] != call_idx]
            heapq.heapify(self.queue)
        return n

    def retry(self) -> int:
        """Offer the queued calls to the idle units again (a route may have opened since they were
        last offered: a flood receding): in queue order (priority, then call time), each open
        slot to the policy's choice among the idle units; returns how many units were assigned."""
        n = sum(self._fill(entry[2]) for entry in sorted(self.queue))
        if n:
            self.queue_series.append((self.env.now, len(self.queue)))
        return n


class Relocator:
    """Move-up of idle units to a compliance table (system-status management).

    Parameters
    ----------
    model : CityModel
    rules : sequence of twin.emergency.RelocationSpec
    compliance_rate : float
        Probability that a move order is obeyed.
    rng : numpy.random.Generator
        Draws the compliance of each order (only when ``compliance_rate < 1``).

    Attributes
    ----------
    moves : list of [time_s, unit_idx, from_location_idx, to_location_idx, planned_s, end_s,
        driven_s, obeyed, completed]
        One row per move order (refused ones too, with ``obeyed`` False and no driving).

    Notes
    -----
    The assignment of the available units of a table's kinds to the row's stations
    minimises the summed travel time now (cost 0 for a unit at or heading to the station)
    and is exact: :func:`scipy.optimize.linear_sum_assignment` (the Hungarian method's
    successor, Crouse 2016); its ties are deterministic. Units are taken in unit-index
    order. An unreachable station (infinite time) is not assigned.
    """

    def __init__(self, model, rules, compliance_rate, rng):
        from twin.emergency import UNIT_KINDS

        self.model = model
        self.compliance_rate = float(compliance_rate)
        self.rng = rng
        self.moves = []
        self.rules = []
        self.rule_of_kind = {}
        for i, r in enumerate(rules):
            codes = {UNIT_KINDS.index(k) for k in r.kinds}
            units = [u for u in model.units if u.kind in codes]
            self.rules.append((units, [np.asarray(row, dtype=np.int64) for row in r.table]))
            for k in codes:
                self.rule_of_kind[k] = i

    def changed(self, kind, call_idx=-1):
        """A unit of ``kind`` became busy or free: re-balance its table now."""
        i = self.rule_of_kind.get(kind)
        if i is None:
            return
        units, rows = self.rules[i]
        idle = [u for u in units if u.idle]
        if not idle:
            return
        row = rows[min(len(idle), len(rows)) - 1]
        if not len(row):
            return
        travel = self.model.travel
        origins = [u.location_idx for u in idle]
        cost = np.empty((len(idle), len(row)))
        for j, s in enumerate(row):
            cost[:, j] = np.asarray(travel.time_s(origins, int(s)), dtype=np.float64)
        dest = np.array([u.dest_idx for u in idle], dtype=np.int64)
        cost[dest[:, None] == row[None, :]] = 0.0
        finite = np.isfinite(cost)
        big = (cost[finite].sum() + 1.0) * (len(idle) + 1) if finite.any() else 1.0
        r_idx, c_idx = linear_sum_assignment(np.where(finite, cost, big))
        now = self.model.env.now
        for r, c in zip(r_idx, c_idx):
            unit, target = idle[r], int(row[c])
            if unit.dest_idx == target or not finite[r, c]:
                continue
            obeyed = self.compliance_rate >= 1.0 or bool(self.rng.random() < self.compliance_rate)
            rec = [now, unit.unit_idx, unit.location_idx, target, float(cost[r, c]), math.nan, 0.0, obeyed, False]
            self.moves.append(rec)
            if obeyed:
                unit.move_to(target, row=rec)
