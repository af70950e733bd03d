"""Where an ambulance takes its patient: the nearest hospital, or the least travel time plus
the expected wait for an ED bed ([dispatch] hospital_choice = "door"; for a patient needing
the ICU, known at the scene from the call type, plus the expected wait for an ICU bed), on the
hospitals' status as the centre sees it (live, or as of their last report: [coordination]
hospital_report_s).

Functions of a :class:`~twin.agents.ems.CityModel` (``model``): its hospitals, units, calls,
travel provider and clock.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from twin.emergency import UNIT_EVENTS

__all__ = ["choose_hospital", "door_wait_s", "icu_wait_s", "needs_icu"]

TRANSPORTING = UNIT_EVENTS.index("transporting")


def choose_hospital(model, call_idx, origin_idx):
    """Hospital for a transport leaving ``origin_idx`` now, among those in service (all, when
    none is) and not on diversion (all, when every one is): with ``hospital_choice =
    "nearest"`` the nearest (travel time now; ties: lowest index), with ``"door"`` the least
    travel time plus :func:`door_wait_s` (ties: the nearer, then the lower index; a full
    loss ward only when every one is). A call type with a specialty takes only hospitals
    offering it, and one whose patients need the ICU only hospitals with ICU beds (adding
    :func:`icu_wait_s` to the door wait), while one of them is reachable and in service;
    ``nearest`` in the record is the nearest in service whatever the patient needs."""
    tt = np.array([model.travel.time_s(origin_idx, h.spec.location_idx) for h in model.hospitals],
                  dtype=np.float64)
    order = np.argsort(tt, kind="stable")
    order = [int(k) for k in order if math.isfinite(tt[k])]
    order = [k for k in order if not model.hospitals[k].out_of_service] or order
    if not order:
        return int(model.calls.hospital_idx[call_idx])
    nearest = order[0]
    need = model.specialty[model.calls.type_idx[call_idx]] if any(model.specialty) else ""
    if need:
        order = [k for k in order if need in model.hospitals[k].spec.specialties] or order
    icu = needs_icu(model, call_idx)
    if icu:
        order = [k for k in order if model.hospitals[k].spec.icu_beds] or order
    open_ = [k for k in order if not model.hospitals[k].on_diversion]
    chosen = open_[0] if open_ else order[0]
    waits = {}
    if model.door_choice:
        cand = open_ or order
        waits = {k: door_wait_s(model, k) + (icu_wait_s(model, k) if icu else 0.0) for k in set(cand) | {nearest}}
        finite = [k for k in cand if math.isfinite(waits[k])] or cand
        chosen = min(finite, key=lambda k: (tt[k] + waits[k], tt[k], k))
    if model.hospitals[order[0]].on_diversion and chosen != order[0]:
        model.diverted.append((call_idx, model.env.now, order[0], chosen))
    model.hospital_choices.append((int(call_idx), model.env.now, nearest, chosen, float(tt[nearest]),
                                  float(tt[chosen]), waits.get(nearest, math.nan), waits.get(chosen, math.nan)))
    return chosen


def door_wait_s(model, k):
    """Expected wait for an ED bed at hospital ``k`` for a patient arriving now, seconds, on
    the status the centre sees (live, or as of the last report every ``hospital_report_s``):
    with ``n`` = beds occupied + patients waiting + ambulances already on their way there
    with a patient, 0 while ``n`` is below the beds ``c``; else, in a queue ward, the
    ``n - c + 1`` bed releases ahead of this patient at ``c`` per mean length of stay
    (exact for exponential stays, first come first served), and in a loss ward ``inf``
    (turned away)."""
    h = model.hospitals[k]
    occupied, waiting = _as_seen(model, (h.occupied, h.waiting), h.series)
    calls = model.calls
    n = occupied + waiting + _on_way(model, k, lambda c: calls.type_idx[c] < model.n_call_types)
    if n >= h.spec.beds and (h.spec.mode != "queue" or h.spec.beds == 0):
        return math.inf
    return _releases_s(n, h.spec.beds, h.spec.length_of_stay.mean_s)


def _as_seen(model, live, series):
    """``(in a bed, waiting)`` now (``live``), or as of the last report every
    ``hospital_report_s`` from a ``[(time_s, in a bed, waiting), ...]`` series."""
    if model.hospital_report_s <= 0:
        return live
    report = math.floor(model.env.now / model.hospital_report_s) * model.hospital_report_s
    row = series[max(bisect.bisect_right(series, report, key=lambda r: r[0]) - 1, 0)]
    return row[1], row[2]


def _on_way(model, k, carries):
    """Ambulances transporting a patient to hospital ``k`` now whose call satisfies ``carries``."""
    return sum(1 for u in model.units if u.at == 3 and u.serve_call >= 0 and u.state == TRANSPORTING
               and model.calls.hospital_idx[u.serve_call] == k and carries(u.serve_call))


def _releases_s(n, c, mean_s):
    """Expected wait of a patient finding ``n`` ahead for ``c`` beds of mean stay ``mean_s``: 0
    below ``c``, else ``n - c + 1`` releases at ``c`` per mean stay."""
    return 0.0 if n < c else (n - c + 1) * mean_s / c


def needs_icu(model, call_idx) -> bool:
    """Whether call ``call_idx``'s patient needs an ICU bed, known at the scene (its call type's
    ``icu``; False for walk-ins, ``call_idx < 0``, and inter-hospital transfers)."""
    need = getattr(model, "icu_need", None)
    if not need or not any(need) or not 0 <= call_idx < len(model.calls.type_idx):
        return False
    return bool(need[model.calls.type_idx[call_idx]])


def icu_wait_s(model, k):
    """Expected wait for an ICU bed at hospital ``k`` for a patient needing one, arriving now,
    seconds, on the status the centre sees (as :func:`door_wait_s`): with ``n`` = ICU beds
    occupied + patients boarding in the ED for one + ambulances on their way there with an ICU
    patient, 0 while ``n`` is below the ICU beds ``c``; else ``(n - c + 1)`` ICU releases at
    ``c`` per mean ICU stay (exact for exponential stays, first come first served, when the ED
    stay is short against the ICU stay: the bed is needed after it, so this is an upper
    bound); ``inf`` without ICU beds."""
    h = model.hospitals[k]
    pool = h.pools.get("icu")
    if pool is None or pool[4] == 0:
        return math.inf
    occupied, boarding = _as_seen(model, (pool[1], pool[2]), pool[3])
    n = occupied + boarding + _on_way(model, k, lambda c: needs_icu(model, c))
    return _releases_s(n, pool[4], h.spec.icu_los.mean_s)
