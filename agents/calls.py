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

from twin.emergency import STREAMS, EmsSpec
from twin.errors import ScenarioError

__all__ = ["CallTable", "generate_calls", "spawn_streams", "poisson_arrivals"]

NAN = math.nan


def spawn_streams(seed):
    """Independent generators of one run, by name, spawned from ``seed`` in :data:`STREAMS` order.

    ``seed`` is an int or a :class:`numpy.random.SeedSequence` (a replication's child).
    """
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = seq.spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}


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


def generate_calls(spec: EmsSpec, until_s, streams, calls=None) -> CallTable:
    """Draw every call of ``[0, until_s)`` and its per-call randomness.

    ``calls``, when given, replaces the Poisson arrivals: a mapping (or DataFrame) with
    ``time_s`` (seconds, ascending, in ``[0, until_s)``), ``zone_idx`` and ``type_idx``
    (default 0) — recorded incidents to replay. The per-call randomness is still drawn.

    Zone rates ``arrival_rate_per_h`` share one hourly profile, so the total process is
    generated by thinning and each call's zone is drawn in proportion to the zone rates,
    and its type by the type shares (superposition and splitting of Poisson processes).
    Transported calls go to the hospital nearest their zone (least travel time; ties to
    the lowest index).
    """
    rng = streams["calls"]
    if calls is not None:
        t, zone, ctype = _given_calls(spec, until_s, calls)
        n = len(t)
    else:
        rates = np.array([z.arrival_rate_per_h for z in spec.zones], dtype=np.float64) / 3600.0
        total = float(rates.sum()) if len(rates) else 0.0
        t = poisson_arrivals(rng, total, until_s, spec.hourly_profile)
        n = len(t)
        zone = (rng.choice(len(rates), size=n, p=rates / total) if n else np.empty(0, np.int64)).astype(np.int32)
        shares = np.array([c.share for c in spec.call_types])
        ctype = (rng.choice(len(shares), size=n, p=shares / shares.sum()) if n
                 else np.empty(0, np.int64)).astype(np.int16)
    prio = np.array([c.priority for c in spec.call_types], dtype=np.int8)[ctype]

    processing = spec.dispatch.processing.ppf(streams["dispatch"].random(n))
    srv = streams["service"]
    u_busy = srv.random(n)
    turnout = spec.service.turnout.ppf(srv.random(n))
    u_scene = srv.random(n)
    on_scene = np.empty(n)
    for k, c in enumerate(spec.call_types):
        sel = ctype == k
        on_scene[sel] = c.on_scene.ppf(u_scene[sel])
    p_tr = np.array([c.transport_probability for c in spec.call_types])[ctype] if n else np.empty(0)
    transport = srv.random(n) < p_tr
    handover = spec.service.handover.ppf(srv.random(n))
    u_los = streams["hospital"].random(n)

    hosp = np.full(n, -1, dtype=np.int32)
    if spec.hospitals and n:
        tt = spec.travel_time_s
        hloc = np.array([h.location_idx for h in spec.hospitals])
        zloc = np.array([z.location_idx for z in spec.zones])
        nearest = np.argmin(tt[zloc][:, hloc], axis=1).astype(np.int32)
        hosp = np.where(transport, nearest[zone], -1).astype(np.int32)
    transport &= hosp >= 0
    if spec.service.mode == "busy_time":      # the textbook model has no hospital leg
        transport[:] = False
        hosp[:] = -1
    return CallTable(time_s=t, zone_idx=zone, type_idx=ctype, priority=prio, processing_s=processing,
                     u_busy=u_busy, turnout_s=turnout, on_scene_s=on_scene, transport=transport,
                     handover_s=handover, u_los=u_los, hospital_idx=hosp,
                     n_slots=np.array([len(c.slots) for c in spec.call_types], dtype=np.int16)[ctype])
