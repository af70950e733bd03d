"""Epidemic control: precise (a health code with testing, isolation and contact tracing) and
blanket (district lockdowns, school closures), and hospital capacity surges, day by day.

Kinds of :class:`Intervention`, each active on days ``[start_day, end_day)``:

``health_code``
    *Precise.* A person whose symptoms begin on an active day is tested with probability
    ``test_share``; the result comes ``delay_d`` days after onset and is positive with
    probability ``sensitivity``. A positive person ("red code") who complies (``compliance``)
    is isolated from the start of the next day for ``isolation_d`` days: in a facility
    (``isolation = "facility"``, China's centralised isolation: no contact at all) or at home
    (household contacts only). Each of their household, school and work contacts is traced
    with probability ``trace_share`` and, complying, quarantined at home ("yellow code") from
    the start of the day after ``result + trace_delay_d`` for ``quarantine_d`` days.
    Community contacts are not traceable. Tested, positive and traced persons are counted.
``lockdown``
    *Blanket.* In the listed districts every activity out of home stops (their schools',
    workplaces' and zone-hours' contacts) and their residents stay home.
``school_closure``
    The school layer is off.
``beds``
    ``ward_beds`` / ``icu_beds`` more beds open from ``start_day`` to the end of the run.

The cost side: every day counts the persons restricted to their home or a facility
(isolated, quarantined, locked down); their sum is the *person-days restricted*.
Draws come from the generator given (the run's ``epidemic_control`` stream).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.kernels import epidemic as K

__all__ = ["Intervention", "Controls", "INTERVENTION_KINDS", "absent_today", "travel_demand"]

INTERVENTION_KINDS = ("health_code", "lockdown", "school_closure", "beds")


@dataclass(frozen=True)
class Intervention:
    """One intervention (see the module docstring); ``zones`` are zone indices."""

    kind: str
    start_day: int = 0
    end_day: int | None = None
    name: str = ""
    zones: tuple = ()
    test_share: float = 0.8
    sensitivity: float = 0.9
    delay_d: float = 1.0
    compliance: float = 0.9
    isolation: str = "facility"
    isolation_d: float = 14.0
    trace_share: float = 0.8
    trace_delay_d: float = 1.0
    quarantine_d: float = 14.0
    ward_beds: int = 0
    icu_beds: int = 0

    def __post_init__(self):
        at = f"intervention {self.name or self.kind!r}"
        if self.kind not in INTERVENTION_KINDS:
            raise ScenarioError(f"{at}: kind {self.kind!r}; expected one of {', '.join(INTERVENTION_KINDS)}")
        if self.end_day is not None and self.end_day <= self.start_day:
            raise ScenarioError(f"{at}: end_day {self.end_day} must be after start_day {self.start_day}")
        if self.kind == "lockdown" and not self.zones:
            raise ScenarioError(f"{at}: a lockdown needs zones = [...] (the districts locked down)")
        if self.isolation not in ("facility", "home"):
            raise ScenarioError(f"{at}: isolation {self.isolation!r}; expected 'facility' or 'home'")
        for name in ("test_share", "sensitivity", "compliance", "trace_share"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ScenarioError(f"{at}: {name} = {v!r}; expected a share in [0, 1]")
        for name in ("delay_d", "isolation_d", "trace_delay_d", "quarantine_d"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ScenarioError(f"{at}: {name} = {v!r}; expected days >= 0")

    def active(self, day) -> bool:
        return self.start_day <= day and (self.end_day is None or day < self.end_day)


class Controls:
    """The interventions of one run, applied day by day to an :class:`~twin.agents.epidemic.EpidemicRun`.

    Call :meth:`today` before the run's step of day ``d`` (the day's restrictions, as keyword
    arguments of ``EpidemicRun.step``) and :meth:`after` after it (tests, isolation, tracing).
    """

    def __init__(self, interventions, run, home_zone, rng):
        self.items = tuple(interventions)
        self.run, self.rng = run, rng
        self.home_zone = np.asarray(home_zone, dtype=np.int64)
        n = run.n
        self.q_from = np.full(n, np.inf)              # quarantined at home from this day ...
        self.q_until = np.full(n, -np.inf)            # ... to before this day
        self.iso_from = np.full(n, np.inf)            # isolated from this day ...
        self.iso_until = np.full(n, -np.inf)          # ... to before this day
        self.iso_home = np.zeros(n, dtype=bool)
        self.tested = np.zeros(n, dtype=bool)
        self.counts = {"tests": 0, "positives": 0, "traced": 0}
        self.rows = []
        self._school = run.contacts.layer("school")

    def today(self, day) -> dict:
        """Restrictions of day ``day``: ``layer_scale``, ``home_only``, ``zone_closed``, ``isolated``."""
        run = self.run
        for it in self.items:
            if it.kind == "beds" and it.start_day == day:
                run.add_beds(it.ward_beds, it.icu_beds)
        scale = np.ones(len(run.contacts.layer_names))
        closed = np.zeros(max(run.n_zones, 1), dtype=bool)
        for it in self.items:
            if not it.active(day):
                continue
            if it.kind == "school_closure" and self._school >= 0:
                scale[self._school] = 0.0
            elif it.kind == "lockdown":
                closed[list(it.zones)] = True
        isolated_now = (self.iso_from <= day) & (day < self.iso_until)
        quarantined = (self.q_from <= day) & (day < self.q_until)
        locked = closed[self.home_zone]
        home_only = quarantined | locked | (isolated_now & self.iso_home)
        isolated = isolated_now & ~self.iso_home
        self.rows.append({"day": day, "isolated": int(np.count_nonzero(isolated_now)),
                          "quarantined": int(np.count_nonzero(quarantined & ~isolated_now)),
                          "locked_down": int(np.count_nonzero(locked & ~quarantined & ~isolated_now))})
        return {"layer_scale": scale, "home_only": home_only, "zone_closed": closed, "isolated": isolated}

    def after(self, day) -> None:
        """Tests of today's symptom onsets, and the isolation and tracing their results start."""
        run = self.run
        codes = [it for it in self.items if it.kind == "health_code" and it.active(day)]
        if not codes:
            return
        it = codes[0]
        t = run.t_onset
        onset = np.flatnonzero((t >= day) & (t < day + 1) & ~self.tested)
        if not len(onset):
            return
        u = self.rng.random((len(onset), 3))
        tested = onset[u[:, 0] < it.test_share]
        self.tested[tested] = True
        positive = tested[u[u[:, 0] < it.test_share, 1] < it.sensitivity]
        self.counts["tests"] += len(tested)
        self.counts["positives"] += len(positive)
        result = run.t_onset[positive] + it.delay_d
        comply = self.rng.random(len(positive)) < it.compliance
        start = np.ceil(result[comply])
        who = positive[comply]
        self.iso_from[who] = np.minimum(self.iso_from[who], start)
        self.iso_until[who] = np.maximum(self.iso_until[who], start + it.isolation_d)
        self.iso_home[who] = it.isolation == "home"
        self._trace(positive, result, it)

    def _trace(self, positive, result, it):
        c = self.run.contacts
        traced, since = [], []
        for p, r in zip(positive, result):
            nbr = c.edge_nbr[c.edge_indptr[p]:c.edge_indptr[p + 1]]
            if len(nbr):
                traced.append(nbr)
                since.append(np.full(len(nbr), r))
        if not traced:
            return
        who, since = np.concatenate(traced).astype(np.int64), np.concatenate(since)
        keep = self.rng.random(len(who)) < it.trace_share * it.compliance
        who, since = who[keep], since[keep]
        self.counts["traced"] += len(who)
        start = np.ceil(since + it.trace_delay_d)
        np.minimum.at(self.q_from, who, start)
        np.maximum.at(self.q_until, who, start + it.quarantine_d)

    def restricted(self):
        """Per day: persons isolated, quarantined and locked down (a list of dicts)."""
        return self.rows


def absent_today(state, restrictions=None):
    """Persons who do not leave home today (bool, n_persons): in hospital or dead (``state``),
    or restricted by today's controls (``home_only`` / ``isolated`` of :meth:`Controls.today`)."""
    out = np.isin(state, (K.SEV, K.CRIT, K.DEAD))
    if restrictions:
        out |= np.asarray(restrictions["home_only"], dtype=bool) | np.asarray(restrictions["isolated"], dtype=bool)
    return out


def travel_demand(pop, absent):
    """The car trips of a day on which the ``absent`` persons stay home: the population's car
    legs (``origin``, ``destination``, ``depart_s``, ``person``) less theirs and less those
    whose origin is their destination (what the traffic model rejects), by departure: the
    demand of a traffic run of that day (write it as ``[traffic] trips``)."""
    t = pop.vehicle_trips()
    keep = ~np.asarray(absent, dtype=bool)[t["person"].to_numpy()]
    keep &= t["origin"].to_numpy() != t["destination"].to_numpy()
    return t[keep].reset_index(drop=True)
