"""Changing a running traffic's demand ahead of its clock: trips cancelled or copied before
they depart (a forecast member's demand factor, :mod:`twin.forecast`), or held back until an
order given during the run releases them (an evacuation warning a rule gives).

Only trips not yet released by the kernel (departure tick at or after the engine's next
tick, still ``not_departed``) can change; the past stays as it was. A cancelled trip keeps its
row (its index is its row in the results, and other flows hold row ranges) and never departs:
the kernel skips it as it skips an unroutable trip, and the result lists it as ``cancelled``.
A copy is a new vehicle at the end, with the original's origin, destination, departure and
planned route, so a run with copies equals a run built with those trips appended (tested).
A held trip (:func:`hold_trips`) waits with a departure tick past the horizon and reads
``cancelled`` until :func:`release_trips` gives it a departure at or after the next tick; it
keeps its planned route. Which trips are cancelled or held is part of a checkpoint
(:mod:`twin.traffic_state`).
"""

from __future__ import annotations

import numpy as np

from twin.errors import DemandError

__all__ = ["pending_trips", "cancelled_mask", "cancel_trips", "copy_trips", "scale_demand", "hold_trips",
           "release_trips"]


def pending_trips(engine, rows=None) -> np.ndarray:
    """Indices of the vehicles (within ``rows = (start, stop)``, default all) that the kernel has
    not released yet: they can still be cancelled or copied."""
    K, st = engine.K, engine.state["status"]
    a, b = (0, engine.n_veh) if rows is None else (int(rows[0]), int(rows[1]))
    v = np.arange(a, b, dtype=np.int64)
    return v[(st[a:b] == K.STATUS_NOT_DEPARTED) & (engine.depart_step[a:b] >= engine.now_step)]


def cancelled_mask(engine) -> np.ndarray:
    """Per vehicle, whether its trip was cancelled (:func:`cancel_trips`; vehicles added since
    were not)."""
    c = getattr(engine, "cancelled", None)
    out = np.zeros(engine.n_veh, dtype=bool)
    if c is not None:
        out[:len(c)] = c
    return out


def _check_pending(engine, v, what):
    v = np.asarray(v, dtype=np.int64)
    if len(v) and (v.min() < 0 or v.max() >= engine.n_veh):
        raise DemandError(f"{what}: vehicle indices must be in 0..{engine.n_veh - 1}")
    if len(v) and not np.isin(v, pending_trips(engine)).all():
        raise DemandError(f"{what}: only trips not yet departed (departing at {engine.now_s:g} s or later) can change")
    return v


def cancel_trips(engine, vehicles) -> None:
    """Cancel trips not yet departed: they never depart and are reported ``cancelled``."""
    v = _check_pending(engine, vehicles, "cancel_trips")
    if not len(v):
        return
    engine.cancelled = cancelled_mask(engine)
    engine.cancelled[v] = True
    engine.state["status"][v] = engine.K.STATUS_UNROUTABLE      # the kernel skips these at departure
    engine._build_departure_groups()


def copy_trips(engine, vehicles) -> np.ndarray:
    """Append a copy of each trip not yet departed (same origin, destination, departure tick and
    planned route); return the new vehicles' indices."""
    v = _check_pending(engine, vehicles, "copy_trips")
    if not len(v):
        return v
    K, n0 = engine.K, engine.n_veh
    a, b = engine.seg_start[v], engine.seg_end[v]            # each route up to its sentinel
    lens = b - a
    need = int(lens.sum()) + len(v)
    engine._reserve_routes(need)
    new = np.arange(n0, n0 + len(v), dtype=np.int64)
    start = engine.route_used + np.concatenate([[0], np.cumsum(lens + 1)[:-1]])
    off = np.concatenate([[0], np.cumsum(lens)[:-1]])
    local = np.arange(int(lens.sum())) - np.repeat(off, lens)          # position within each route
    engine.route_seq[np.repeat(start, lens) + local] = engine.route_seq[np.repeat(a, lens) + local]
    engine.route_seq[start + lens] = -1 - new
    engine.route_owner[engine.route_used:engine.route_used + need] = np.repeat(new, lens + 1).astype(np.int32)
    engine.route_used += need
    for k in ("o_idx", "d_idx", "depart_s", "routable", "depart_step", "veh_class"):
        arr = getattr(engine, k)
        setattr(engine, k, np.concatenate([arr, arr[v]]))
    engine.route_start = np.concatenate([engine.route_start, start])
    engine.seg_start = np.concatenate([engine.seg_start, start])
    engine.seg_end = np.concatenate([engine.seg_end, start + lens])
    st = engine.state
    st["status"] = np.concatenate([st["status"], np.full(len(v), K.STATUS_NOT_DEPARTED, dtype=st["status"].dtype)])
    st["arrive_step"] = np.concatenate([st["arrive_step"], np.full(len(v), -1, dtype=np.int64)])
    st["ev_entry"] = np.concatenate([st["ev_entry"], np.full(len(v), -1, dtype=np.int64)])
    st["ev_enter_step"] = np.concatenate([st["ev_enter_step"], np.zeros(len(v), dtype=np.int64)])
    engine.n_veh = n0 + len(v)
    # the released prefix keeps its order: every new vehicle departs at or after the next tick
    engine.dep_order = np.lexsort((np.arange(engine.n_veh), engine.depart_step)).astype(np.int64)
    engine._build_departure_groups()
    return new


def scale_demand(engine, rows, factor, rng) -> tuple:
    """Scale the trips of ``rows`` not yet departed by ``factor`` (>= 0): each is made into
    ``floor(factor)`` or ``floor(factor) + 1`` trips (the latter with probability
    ``factor - floor(factor)``, one uniform draw from ``rng`` per trip, in index order), the
    least variance a factor allows; 0 copies cancel it. Returns ``(cancelled, copies)``."""
    f = float(factor)
    if not (np.isfinite(f) and f >= 0):
        raise DemandError(f"scale_demand: factor {factor!r}; expected a finite number >= 0")
    v = pending_trips(engine, rows)
    n = np.floor(f).astype(np.int64) + (rng.random(len(v)) < f - np.floor(f))
    cancel_trips(engine, v[n == 0])
    extra = np.repeat(v, np.maximum(n - 1, 0))
    copy_trips(engine, extra)
    return int((n == 0).sum()), int(len(extra))


def hold_trips(engine, vehicles) -> None:
    """Hold trips not yet departed: they wait, departing never, until :func:`release_trips`
    (reported ``cancelled`` if never released)."""
    v = _check_pending(engine, vehicles, "hold_trips")
    if not len(v):
        return
    engine.cancelled = cancelled_mask(engine)
    engine.cancelled[v] = True
    engine.depart_step[v] = engine.n_steps_total + 1             # past the horizon: never released
    engine.dep_order = np.lexsort((np.arange(engine.n_veh), engine.depart_step)).astype(np.int64)
    engine._build_departure_groups()


def release_trips(engine, vehicles, depart_s) -> None:
    """Let held trips depart at ``depart_s`` (seconds, one per trip; a time before the next
    tick is the next tick): each then departs as if it had been planned so."""
    v = np.asarray(vehicles, dtype=np.int64)
    t = np.asarray(depart_s, dtype=np.float64).reshape(-1)
    if len(t) != len(v):
        raise DemandError(f"release_trips: {len(v)} trips and {len(t)} departure times")
    if not np.isfinite(t).all():
        raise DemandError("release_trips: departure times must be finite seconds")
    held = cancelled_mask(engine)
    if len(v) and (v.min() < 0 or v.max() >= engine.n_veh or not held[v].all()
                   or (engine.depart_step[v] <= engine.n_steps_total).any()):
        raise DemandError("release_trips: only held trips (hold_trips) can be released")
    if not len(v):
        return
    dt = engine.params.dt_s
    t = np.maximum(t, engine.now_s)
    if not engine.depart_s.flags.writeable:                  # (a view of the caller's trips table)
        engine.depart_s = engine.depart_s.copy()
    engine.depart_s[v] = t
    engine.depart_step[v] = np.maximum(np.ceil(t / dt - 1e-9).astype(np.int64), engine.now_step)
    held[v] = False
    engine.cancelled = held
    # the released prefix keeps its order: every released trip departs at or after the next tick
    engine.dep_order = np.lexsort((np.arange(engine.n_veh), engine.depart_step)).astype(np.int64)
    engine._build_departure_groups()
