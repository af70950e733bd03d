"""Evacuees on foot and evacuees who need assistance (the evacuation flow's helpers).

**On foot**: each walker leaves at its departure time for the nearest shelter with room by
walking distance (the shortest path over the road links' lengths), at ``walk_speed_mps``, in
departure order, after the cars have taken their places. Walkers are not vehicles: traffic and
closures do not slow them (a stated simplification; a pedestrian network is not modelled).

**Assisted** (the elderly, people living alone): they wait where they are from the order until
a van fetches them. ``assist_vans`` vans start at ``assist_base``; each, while persons wait and
the run lasts, takes the person waiting longest (then the lowest index), then the nearest
waiting persons of the same district (live van travel time) up to ``assist_capacity`` or the
largest room left at one shelter, drives to each in turn (``assist_board_s`` to help each one
aboard), and takes them to the nearest shelter (live time) with room for them all (else the
roomiest). Vans are
ordinary vehicles of the traffic (:class:`~twin.ports.LiveTravel` ``fleet``): they queue, drive
around closures and wait when cut off. When no shelter has room left, the persons still waiting
have no shelter place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["walk_to_shelters", "AssistService"]


def walk_to_shelters(city, shelters, room, walkers, speed_mps):
    """Shelter index (-1: none) and arrival time (s) of each walker; ``room`` (persons per
    shelter) is reduced in place."""
    out = walkers.copy()
    out["shelter_idx"] = -1
    out["arrive_s"] = np.nan
    if not len(out):
        return out
    ids = np.asarray(city.node_ids)
    nodes = [s[1] for s in shelters]
    uniq, inv = np.unique(out["origin_idx"].to_numpy(), return_inverse=True)
    dist = city.travel_times(ids[uniq], ids[nodes], link_cost_s=np.asarray(city.length_m, dtype=np.float64))
    shelter, arrive = out["shelter_idx"].to_numpy().copy(), out["arrive_s"].to_numpy().copy()
    depart = out["depart_s"].to_numpy()
    for w in np.argsort(depart, kind="stable"):
        for s in np.argsort(dist[inv[w]], kind="stable"):
            if not np.isfinite(dist[inv[w], s]):
                break
            if room[s] >= 1.0 - 1e-9:
                shelter[w], room[s] = s, room[s] - 1.0
                arrive[w] = depart[w] + dist[inv[w], s] / speed_mps
                break
    out["shelter_idx"], out["arrive_s"] = shelter, arrive
    return out


class AssistService:
    """The vans of the assisted evacuation on the run's clock (see the module docstring).

    ``pickup_s``, ``drop_s`` and ``shelter_idx`` per assisted person (NaN / -1 until it happens);
    ``drops`` lists ``(time_s, shelter_idx, persons)`` for the shelters' occupancy.
    """

    def __init__(self, env, fleet, g, assisted, shelters, room, until_s):
        self.env, self.fleet, self.g, self.until_s = env, fleet, g, float(until_s)
        self.zone = assisted["zone"].astype(str).to_numpy()
        self.origin = assisted["origin_idx"].to_numpy()
        self.n_shelters = len(shelters)
        self.room = np.asarray(room, dtype=np.float64).copy()
        n = len(self.origin)
        self.pickup_s, self.drop_s = np.full(n, np.nan), np.full(n, np.nan)
        self.shelter_idx = np.full(n, -1, dtype=np.int64)
        self.waiting = list(range(n))
        self.no_room = False
        self.drops = []
        self.vans = []                  # the vans at work (_Van)
        # fleet locations: the base, the shelters, then each assisted person's node
        self.loc_of_person = 1 + self.n_shelters + np.arange(n)

    @staticmethod
    def locations(base_idx, shelters, assisted):
        return np.concatenate([[base_idx], [s[1] for s in shelters], assisted["origin_idx"].to_numpy()]).astype(np.int64)

    def start(self):
        for _ in range(self.g.assist_vans if len(self.origin) else 0):
            self.start_van(_Van())

    def start_van(self, van, wait=None):
        self.vans.append(van)
        van.proc = self.env.process(self._van(van, wait))

    def _group(self):
        """The next load: the person waiting longest, then the nearest of the same district."""
        size = int(min(self.g.assist_capacity, self.room.max(initial=0.0) + 1e-9))
        if size < 1:
            self.no_room = True
            return []
        first = self.waiting.pop(0)
        group, here = [first], int(self.loc_of_person[first])
        while len(group) < size:
            same = [p for p in self.waiting if self.zone[p] == self.zone[first]]
            if not same:
                break
            t = [self.fleet.time_s(here, int(self.loc_of_person[p])) for p in same]
            p = same[int(np.argmin(t))]
            self.waiting.remove(p)
            group.append(p)
            here = int(self.loc_of_person[p])
        return group

    def _van(self, van, wait=None):
        """A van: step 0 before the warning, 1 driving to a person, 2 boarding them, 3 driving to
        the shelter, 4 choosing its next load (a restored van starts at its step, on ``wait``)."""
        env, g = self.env, self.g
        if van.step == 0:
            if wait is not None:
                yield wait
            elif g.warning_s > env.now:
                yield env.timeout(g.warning_s - env.now)
            van.step, wait = 4, None
        while True:
            if van.step == 4:
                if not (self.waiting and env.now < self.until_s and not self.no_room):
                    break
                van.group, van.i = self._group(), 0
                if not van.group:
                    break
                van.step = 1
            while van.step in (1, 2):
                p = van.group[van.i]
                if van.step == 1:
                    yield wait if wait is not None else self.fleet.drive(env, van.at, int(self.loc_of_person[p]),
                                                                         leg="pickup", priority=0)
                    van.at, van.step = int(self.loc_of_person[p]), 2
                    wait = env.timeout(g.assist_board_s) if g.assist_board_s > 0 else None
                if wait is not None:
                    yield wait
                    wait = None
                self.pickup_s[p] = env.now
                van.i += 1
                van.step = 1 if van.i < len(van.group) else 3
            if wait is None:
                t = np.array([self.fleet.time_s(van.at, 1 + s) for s in range(self.n_shelters)])
                fits = np.flatnonzero((self.room >= len(van.group) - 1e-9) & np.isfinite(t))
                van.s = int(fits[np.argmin(t[fits])]) if len(fits) else int(np.argmax(self.room))
                self.room[van.s] -= len(van.group)
                wait = self.fleet.drive(env, van.at, 1 + van.s, leg="to shelter", priority=0)
            yield wait
            wait = None
            van.at = 1 + van.s
            self.drop_s[van.group], self.shelter_idx[van.group] = env.now, van.s
            self.drops.append((env.now, van.s, float(len(van.group))))
            van.step = 4
        self.vans.remove(van)

    def states(self, until_s):
        """Counts at ``until_s``: sheltered, on a van, waiting, without a shelter place."""
        dropped = self.drop_s <= until_s
        picked = self.pickup_s <= until_s
        waiting = ~picked
        no_place = waiting & self.no_room
        return {"sheltered": float(dropped.sum()), "travelling": float((picked & ~dropped).sum()),
                "waiting": float((waiting & ~no_place).sum()), "no shelter": float(no_place.sum())}


class _Van:
    """A van's record: step (see :meth:`AssistService._van`), where it is (a fleet location),
    its load (person indices), the next person to pick up, the shelter, its process."""

    __slots__ = ("step", "at", "group", "i", "s", "proc")

    def __init__(self):
        self.step, self.at, self.group, self.i, self.s, self.proc = 0, 0, [], 0, -1, None
