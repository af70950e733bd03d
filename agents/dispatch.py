"""The dispatch centre and its unit-selection policies (plug-ins).

A call reaches the centre at its call time, is processed for ``processing_s`` and becomes
*ready*. The call type names the units it needs, one *slot* per unit with a kind and an
optional fallback kind (see :attr:`twin.emergency.CallTypeSpec.slots`). For each slot in
order the policy picks an eligible idle unit of the slot's kind, else of its fallback
kind. Units found are dispatched at once (partial dispatch). If a slot stays open the call
joins (or stays in) the dispatch queue, ordered by priority, then call time, then call id;
a call that got no unit at all is lost instead when ``max_queue`` calls already wait
(``0`` for a loss system). When a unit becomes available it takes the first queued call,
in that order, that it is eligible for and that has an open slot of its kind (one of its
kind first, else one it is the fallback for).

A policy is any object with two methods (see :class:`NearestIdle`):
``choose(model, call_idx, idle_units) -> Unit | None`` and
``eligible(model, unit, call_idx) -> bool``.
"""

from __future__ import annotations

import heapq
import math

import mesa
import numpy as np

from twin.emergency import OUTCOMES

__all__ = ["DispatchCentre", "NearestIdle", "PreferenceList", "make_policy"]

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
        dest = model.zone_location[model.calls.zone_idx[call_idx]]
        tt = model.spec.travel_time_s[[u.location_idx for u in idle_units], dest]
        k = int(np.argmin(tt))
        return idle_units[k] if math.isfinite(tt[k]) else None

    def eligible(self, model, unit, call_idx):
        dest = model.zone_location[model.calls.zone_idx[call_idx]]
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
        idle = {u.unit_idx: u for u in idle_units}
        for unit_idx in self.lists[model.calls.zone_idx[call_idx]]:
            if unit_idx in idle:
                return idle[unit_idx]
        return None

    def eligible(self, model, unit, call_idx):
        return unit.unit_idx in self._members[model.calls.zone_idx[call_idx]]


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
        self._instant = model.spec.dispatch.processing.is_zero

    def receive(self, call_idx):
        """A call arrives now."""
        if self._instant:
            self._ready(call_idx)
        else:
            self.env.process(self._process(call_idx))

    def _process(self, call_idx):
        yield self.env.timeout(float(self.model.calls.processing_s[call_idx]))
        self._ready(call_idx)

    def _pick(self, call_idx, kind, fallback):
        """The policy's choice among idle units of ``kind``, else of ``fallback`` (or None)."""
        model = self.model
        unit = self.policy.choose(model, call_idx, model.idle_units(kind))
        if unit is None and fallback >= 0:
            unit = self.policy.choose(model, call_idx, model.idle_units(fallback))
        return unit

    def _ready(self, call_idx):
        model = self.model
        calls = model.calls
        calls.ready_s[call_idx] = self.env.now
        slots = model.type_slots[calls.type_idx[call_idx]]
        pending = []
        for s, (kind, fallback) in enumerate(slots):
            unit = self._pick(call_idx, kind, fallback)
            if unit is None:
                pending.append(s)
            else:
                unit.assign(call_idx, s)
        if not pending:
            return
        if len(pending) == len(slots) and self.max_queue is not None and len(self.queue) >= self.max_queue:
            calls.outcome[call_idx] = LOST
            return
        self.pending[call_idx] = pending
        heapq.heappush(self.queue, (int(calls.priority[call_idx]), float(calls.time_s[call_idx]), call_idx))
        self.queue_series.append((self.env.now, len(self.queue)))

    def _slot_for(self, unit, call_idx):
        """The open slot of a queued call that ``unit`` may fill (its own kind first), or None."""
        slots = self.model.type_slots[self.model.calls.type_idx[call_idx]]
        pending = self.pending[call_idx]
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
