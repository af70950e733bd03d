"""Emergency calls as arrays: non-homogeneous Poisson generation and the per-call record.

Calls are the "many" of the EMS model (STYLE §3): one :class:`CallTable` holds a numpy
array per attribute, drawn up front for the whole horizon and filled in by the actors as
each call moves through dispatch, units and hospitals. Every random quantity a call can
need (processing time, busy time, on-scene time, transport, handover, length of stay) is
pre-drawn per call from its own stream, so a call keeps its dice whatever unit or policy
serves it (common random numbers, STYLE §10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.emergency import STANDALONE_STREAMS, STREAMS, EmsSpec
from twin.errors import ScenarioError

__all__ = ["CallTable", "generate_calls", "spawn_streams", "run_stream", "poisson_arrivals", "table_arrivals",
           "draw_call_table", "draw_incident_calls"]

NAN = math.nan


def spawn_streams(seed):
    """Independent generators of one run, by name, spawned from ``seed`` in :data:`STREAMS` order.

    ``seed`` is an int or a :class:`numpy.random.SeedSequence` (a replication's child).
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = seq.spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


def run_stream(seed, name) -> np.random.Generator:
    """The generator of stream ``name`` of a standalone EMS run (:data:`twin.emergency.STANDALONE_STREAMS`).

    It is child ``STANDALONE_STREAMS.index(name)`` of ``seed`` (an int, or a replication's
    :class:`numpy.random.SeedSequence`), the same as ``SeedSequence(seed).spawn(n)[index]``
    for any ``n > index``, built without spawning (so no other child is touched).
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    child = np.random.SeedSequence(seq.entropy, spawn_key=tuple(seq.spawn_key) + (STANDALONE_STREAMS.index(name),),
                                   pool_size=seq.pool_size)
    return np.random.default_rng(child)


def poisson_arrivals(rng, rate_per_s, until_s, profile=None, period_s=3600.0):
    """Arrival times of a Poisson process on ``[0, until_s)``, homogeneous or by thinning.

    Parameters
    ----------
    rng : numpy.random.Generator
    rate_per_s : float
        Base rate, events/second.
    until_s : float
    profile : sequence of float, optional
        Multipliers of the rate in consecutive periods of ``period_s`` seconds, repeating
        (24 hourly values for a daily profile).

    Returns
    -------
    ndarray of float64, sorted

    Notes
    -----
    Thinning (Lewis & Shedler 1979): candidates at the peak rate ``rate × max(profile)``
    are kept with probability ``profile[period(t)] / max(profile)``.
    """
    peak = 1.0 if profile is None else max(profile)
    if rate_per_s <= 0 or peak <= 0 or until_s <= 0:
        return np.empty(0)
    n = rng.poisson(rate_per_s * peak * until_s)
    t = np.sort(rng.uniform(0.0, until_s, size=n))
    if profile is None:
        return t
    prof = np.asarray(profile, dtype=np.float64)
    keep = rng.random(n) * peak < prof[(t // period_s).astype(np.int64) % len(prof)]
    return t[keep]


def table_arrivals(rng, rate_table_per_h, until_s, period_s=3600.0):
    """Arrivals of independent Poisson processes with piecewise-constant rates per cell.

    Parameters
    ----------
    rng : numpy.random.Generator
    rate_table_per_h : ndarray of float64, shape (n_periods, n_zones, n_types)
        Rate of each (zone, type) cell in each period (repeating), events/hour.
    until_s : float
    period_s : float
        Length of one period (an hour for a daily table of 24).

    Returns
    -------
    time_s : ndarray of float64, sorted
    zone_idx : ndarray of int32
    type_idx : ndarray of int16

    Notes
    -----
    The superposition of the cells is a Poisson process with the period's total rate; it
    is drawn by thinning candidates at the peak total rate (Lewis & Shedler 1979), and each
    arrival's cell is drawn in proportion to the cells' rates in its period (splitting), so
    the count of every (period, zone, type) cell is an independent Poisson variable with
    mean ``rate × time covered``.
    """
    rt = np.asarray(rate_table_per_h, dtype=np.float64) / 3600.0
    n_per, n_z, n_t = rt.shape
    per_rate = rt.reshape(n_per, -1).sum(axis=1)
    peak = float(per_rate.max()) if n_per else 0.0
    empty = (np.empty(0), np.empty(0, np.int32), np.empty(0, np.int16))
    if peak <= 0 or until_s <= 0:
        return empty
    n = rng.poisson(peak * until_s)
    t = np.sort(rng.uniform(0.0, until_s, size=n))
    per = (t // period_s).astype(np.int64) % n_per
    keep = rng.random(n) * peak < per_rate[per]
    t, per = t[keep], per[keep]
    u = rng.random(len(t))
    cell = np.empty(len(t), dtype=np.int64)
    for h in range(n_per):
        sel = per == h
        if sel.any():
            cdf = np.cumsum(rt[h].ravel())
            cell[sel] = np.minimum(np.searchsorted(cdf, u[sel] * cdf[-1], side="right"), n_z * n_t - 1)
    return t, (cell // n_t).astype(np.int32), (cell % n_t).astype(np.int16)


def _given_calls(spec, until_s, calls):
    where = "calls"
    try:
        t = np.asarray(calls["time_s"], dtype=np.float64)
        zone = np.asarray(calls["zone_idx"])
        ctype = np.asarray(calls["type_idx"]) if "type_idx" in calls else np.zeros(len(t), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(f"{where}: {exc}; expected columns time_s (s), zone_idx and optional type_idx") from None
    if not (len(zone) == len(t) == len(ctype)):
        raise ScenarioError(f"{where}: columns have lengths {len(t)}, {len(zone)}, {len(ctype)}; expected equal")
    if len(t) and (np.any(~np.isfinite(t)) or np.any(np.diff(t) < 0) or t[0] < 0 or t[-1] >= until_s):
        raise ScenarioError(f"{where}.time_s: expected ascending finite times in [0, until_s = {until_s})")
    for name, arr, n in (("zone_idx", zone, spec.n_zones), ("type_idx", ctype, len(spec.call_types))):
        if len(arr) and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= n):
            raise ScenarioError(f"{where}.{name}: expected integers in 0..{n - 1}")
    return t, zone.astype(np.int32), ctype.astype(np.int16)


@dataclass
class CallTable:
    """Struct-of-arrays record of every call (inputs drawn up front, outputs filled in).

    Input arrays: ``time_s, zone_idx, type_idx, priority, processing_s, u_busy, turnout_s,
    on_scene_s, transport, handover_s, u_los, hospital_idx, n_slots`` (units required).
    ``location_idx`` (where the units drive to: the zone's location, or for an
    inter-hospital transfer the sending hospital's) is filled in by the model when None.
    Output arrays, NaN or -1 until set: ``ready_s, dispatched_s, unit_idx, travel_s,
    on_scene_at_s, at_hospital_s, bed_s, available_s, outcome`` (codes of
    :data:`twin.emergency.OUTCOMES`), ``n_units`` (units sent so far) and ``open_slots``
    (required units not yet free again; the call is completed at 0).
    """

    time_s: np.ndarray
    zone_idx: np.ndarray
    type_idx: np.ndarray
    priority: np.ndarray
    processing_s: np.ndarray
    u_busy: np.ndarray
    turnout_s: np.ndarray
    on_scene_s: np.ndarray
    transport: np.ndarray
    handover_s: np.ndarray
    u_los: np.ndarray
    hospital_idx: np.ndarray
    n_slots: np.ndarray | None = None
    location_idx: np.ndarray | None = None
    u_transfer: np.ndarray | None = None
    u_reinterview: np.ndarray | None = None
    u_aid: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.time_s)
        for name in ("ready_s", "dispatched_s", "travel_s", "on_scene_at_s", "at_hospital_s", "bed_s",
                     "available_s"):
            setattr(self, name, np.full(n, NAN))
        self.unit_idx = np.full(n, -1, dtype=np.int32)
        self.outcome = np.zeros(n, dtype=np.int8)
        if self.n_slots is None:
            self.n_slots = np.ones(n, dtype=np.int16)
        self.n_units = np.zeros(n, dtype=np.int16)
        self.open_slots = self.n_slots.copy()

    def __len__(self):
        return len(self.time_s)

    def append(self, other: "CallTable") -> np.ndarray:
        """Add ``other``'s calls after these (arrays are concatenated); returns their indices.

        Used for calls that arise during the run (traffic crashes, inter-hospital
        transfers). Code holding the table reads its arrays by attribute, so it sees the
        longer arrays.
        """
        n0 = len(self)
        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray):
                setattr(self, name, np.concatenate([value, getattr(other, name).astype(value.dtype, copy=False)]))
        return np.arange(n0, len(self), dtype=np.int64)


def generate_calls(spec: EmsSpec, until_s, streams, calls=None) -> CallTable:
    """Draw every call of ``[0, until_s)`` and its per-call randomness.

    ``calls``, when given, replaces the Poisson arrivals: a mapping (or DataFrame) with
    ``time_s`` (seconds, ascending, in ``[0, until_s)``), ``zone_idx`` and ``type_idx``
    (default 0) — recorded incidents to replay. The per-call randomness is still drawn.

    Without ``spec.rate_table_per_h``, zone rates ``arrival_rate_per_h`` share one hourly
    profile, so the total process is generated by thinning and each call's zone is drawn in
    proportion to the zone rates, and its type by the type shares (superposition and
    splitting of Poisson processes). With it, :func:`table_arrivals` draws every (hour,
    zone, type) cell at its own rate. Transported calls go to the hospital nearest their
    zone (least travel time; ties to the lowest index).
    """
    rng = streams["calls"]
    if calls is not None:
        t, zone, ctype = _given_calls(spec, until_s, calls)
    elif spec.rate_table_per_h is not None:
        t, zone, ctype = table_arrivals(rng, spec.rate_table_per_h, until_s)
    else:
        rates = np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64) / 3600.0
        total = float(rates.sum()) if len(rates) else 0.0
        t = poisson_arrivals(rng, total, until_s, spec.hourly_profile)
        n = len(t)
        zone = (rng.choice(len(rates), size=n, p=rates / total) if n else np.empty(0, np.int64)).astype(np.int32)
        shares = np.array([c.share for c in spec.call_types])
        ctype = (rng.choice(len(shares), size=n, p=shares / shares.sum()) if n
                 else np.empty(0, np.int64)).astype(np.int16)
    return draw_call_table(spec, t, zone, ctype, streams)


def draw_call_table(spec: EmsSpec, time_s, zone_idx, type_idx, streams, *, priority=None,
                    transport_probability=None, location_idx=None) -> CallTable:
    """A :class:`CallTable` for given call times, zones and types, drawing each call's dice.

    ``streams`` maps ``dispatch``, ``service`` and ``hospital`` to generators (the run's
    streams for the calls drawn up front; one child generator for calls added later).
    ``priority`` (int8 per call), ``transport_probability`` (one float) and ``location_idx``
    (per call; the nearest hospital is then the location's, not the zone's) replace the
    call types' and zones' when given (scripted incidents); the draws are the same.
    """
    t, zone, ctype = np.asarray(time_s, np.float64), np.asarray(zone_idx, np.int32), np.asarray(type_idx, np.int16)
    n = len(t)
    prio = (np.array([c.priority for c in spec.call_types], dtype=np.int8)[ctype] if priority is None
            else np.asarray(priority, dtype=np.int8))

    u_proc = streams["dispatch"].random(n)
    processing = np.asarray(spec.dispatch.processing.ppf(u_proc), dtype=np.float64)
    for k, d in enumerate(spec.dispatch.type_processing):        # each agency's own interview times
        sel = ctype == k
        if isinstance(d, tuple):                                 # (per zone: the agency answering there)
            for z in np.unique(zone[sel]):
                at = sel & (zone == z)
                if z >= 0:
                    processing[at] = d[z].ppf(u_proc[at])
        else:
            processing[sel] = d.ppf(u_proc[sel])
    srv = streams["service"]
    u_busy = srv.random(n)
    turnout = spec.service.turnout.ppf(srv.random(n))
    u_scene = srv.random(n)
    on_scene = np.empty(n)
    for k, c in enumerate(spec.call_types):
        sel = ctype == k
        on_scene[sel] = c.on_scene.ppf(u_scene[sel])
    if transport_probability is not None:
        p_tr = np.full(n, float(transport_probability))
    else:
        p_tr = np.array([c.transport_probability for c in spec.call_types])[ctype] if n else np.empty(0)
    transport = srv.random(n) < p_tr
    handover = spec.service.handover.ppf(srv.random(n))
    u_los = streams["hospital"].random(n)
    # a transfer's dice, drawn last (in either coordination mode, so both see the same calls)
    u_tr = streams["dispatch"].random((3, n)) if spec.dispatch.centres else (None, None, None)

    hosp = np.full(n, -1, dtype=np.int32)
    if spec.hospitals and n:
        tt = spec.travel_time_s
        hloc = np.array([h.location_idx for h in spec.hospitals])
        if location_idx is None:
            zloc = np.array([z.location_idx for z in spec.zones])
            nearest = np.argmin(tt[zloc][:, hloc], axis=1).astype(np.int32)[zone]
        else:
            nearest = np.argmin(tt[np.asarray(location_idx, dtype=np.int64)][:, hloc], axis=1).astype(np.int32)
        hosp = np.where(transport, nearest, -1).astype(np.int32)
    transport &= hosp >= 0
    if spec.service.mode == "busy_time":      # the textbook model has no hospital leg
        transport[:] = False
        hosp[:] = -1
    return CallTable(time_s=t, zone_idx=zone, type_idx=ctype, priority=prio, processing_s=processing,
                     u_busy=u_busy, turnout_s=turnout, on_scene_s=on_scene, transport=transport,
                     handover_s=handover, u_los=u_los, hospital_idx=hosp,
                     n_slots=np.array([len(c.slots) for c in spec.call_types], dtype=np.int16)[ctype],
                     location_idx=None if location_idx is None else np.asarray(location_idx, dtype=np.int32),
                     u_transfer=u_tr[0], u_reinterview=u_tr[1], u_aid=u_tr[2])


def draw_incident_calls(spec: EmsSpec, rng) -> tuple:
    """The calls of every scripted incident (:attr:`EmsSpec.incidents`), one per patient.

    Incidents are drawn in spec order from ``rng`` (the run's ``incidents`` stream): for
    each, the patients' priorities from its triage shares (``rng.choice``), sorted P1 first
    (stable), then the patients' dice as :func:`draw_call_table` draws them. Patients have
    ``zone_idx`` -1 and ``location_idx`` the incident's.

    Returns
    -------
    tables : list of CallTable
        One per incident, in spec order (calls at ``time_s``, the incident's time).
    """
    type_names = [c.name for c in spec.call_types]
    streams = {"dispatch": rng, "service": rng, "hospital": rng}
    tables = []
    for inc in spec.incidents:
        k = type_names.index(inc.call_type)
        n = inc.patients
        if inc.triage is None:
            prio = np.full(n, spec.call_types[k].priority, dtype=np.int8)
        else:
            prio = np.sort(rng.choice(3, size=n, p=np.asarray(inc.triage, dtype=np.float64)) + 1,
                           kind="stable").astype(np.int8)
        tables.append(draw_call_table(spec, np.full(n, inc.time_s), np.full(n, -1, np.int32), np.full(n, k, np.int16),
                                      streams, priority=prio, transport_probability=inc.transport_probability,
                                      location_idx=np.full(n, inc.location_idx, np.int32)))
    return tables
