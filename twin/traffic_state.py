"""A :class:`~twin.traffic.TrafficEngine`'s run-time state as plain data, and back.

The state is what the engine changes while it runs: every vehicle's arrays (demand, routes,
status, timing; vehicles inserted during the run too), the links' rings and budgets, the
network events and how far they have been applied, the re-routing stream, the detour history
and the output series so far. The city, the parameters and the kernel's constants are
re-made by building the same scenario. A restored engine continues exactly as the original
(the kernel is deterministic given these arrays).
"""

from __future__ import annotations

import zlib

import numpy as np

from twin.errors import ScenarioError

__all__ = ["engine_snapshot", "engine_restore", "mark_built"]

#: Engine attributes that are arrays the run changes (vehicles grow with insertions).
ARRAYS = ("cap_per_step", "capacity_veh_per_h", "storage", "hole_steps", "ff_steps", "ff_time_s", "link_open",
          "dl_order", "dep_link_indptr")
#: Per-vehicle arrays that change only for some vehicles (re-routed; held or released,
#: :mod:`twin.traffic_fork`): the snapshot holds the entries
#: that differ from the build (``diff_<k>_at``, ``diff_<k>_value``), what was appended, and a
#: checksum of the built part.
DIFFED = ("route_start", "seg_end", "seg_start", "depart_s", "depart_step")
#: Arrays the run only appends to: the snapshot holds what was appended after the build, and a
#: checksum of the built part, which the build of the restoring run must reproduce.
APPENDED = ("veh_class", "o_idx", "d_idx", "routable", "route_seq", "route_owner")
SCALARS = ("n_veh", "event_ptr", "route_used", "n_rerouted")     # (not kernel_s: a wall-clock figure)
#: Output series (interval or tick along the first axis): rows past the last written one are zero.
SERIES = ("inflow", "outflow", "tt_sum_steps", "occ_part", "dep_wait", "step_counts")


def mark_built(engine) -> None:
    """Note the appended arrays' lengths as built and keep the built :data:`DIFFED` arrays (call
    right after the build, before the run; the checksums wait for the first snapshot)."""
    engine._built_len = {k: int(engine.route_used if k in ("route_seq", "route_owner") else engine.n_veh)
                         for k in APPENDED}
    engine._built_parts = None
    engine._built_arrays = {k: getattr(engine, k).copy() for k in DIFFED}


def _built(engine):
    """Lengths and checksums of the appended arrays as built (:func:`mark_built`; the built part
    never changes, so the checksums are taken once)."""
    b = getattr(engine, "_built_parts", None)
    if b is None:
        if not hasattr(engine, "_built_len"):
            mark_built(engine)
        n = engine._built_len
        b = engine._built_parts = {k: (n[k], _crc(getattr(engine, k)[:n[k]])) for k in APPENDED}
        b.update({k: (len(a), _crc(a)) for k, a in engine._built_arrays.items()})
    return b


def _dep_order_sorted(engine) -> bool:
    """Whether the departure order is the vehicles sorted by departure tick, then index (as the
    build and every insertion keep it)."""
    order, n = engine.dep_order, engine.n_veh
    if len(order) != n:
        return False
    if n < 2:
        return True
    step = engine.depart_step[order]
    later, same = step[1:] > step[:-1], step[1:] == step[:-1]
    return bool(np.all(later | (same & (order[1:] > order[:-1]))))


def _crc(a) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8))


def _live_slots(engine):
    """Ring positions holding a vehicle or a hole (the rest of each link's ring is free room)."""
    st, start, cap = engine.state, engine.ring_start, engine.ring_cap.astype(np.int64)
    idx = []
    for head, count in ((st["ring_head"], st["ring_count"]), (st["hole_head"], st["hole_count"])):
        count = count.astype(np.int64)
        link = np.repeat(np.arange(len(count)), count)
        j = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        pos = head[link].astype(np.int64) + j
        pos -= cap[link] * (pos >= cap[link])
        idx.append(start[link] + pos)
    live = np.zeros(len(st["ring"]), dtype=np.bool_)        # (a mask, not np.unique: no sort)
    for i in idx:
        live[i] = True
    return np.flatnonzero(live)


def engine_snapshot(engine) -> dict:
    """The engine's run-time state: ``{key: array | number | JSON-able}``."""
    from twin.checkpoint import generator_state

    out = {f"a_{k}": getattr(engine, k) for k in ARRAYS}
    for k, (n0, crc) in _built(engine).items():
        end = engine.route_used if k in ("route_seq", "route_owner") else engine.n_veh
        out[f"tail_{k}"], out[f"built_{k}"] = getattr(engine, k)[n0:end], [n0, crc]
        if k in DIFFED:
            a = getattr(engine, k)
            at = np.flatnonzero(a[:n0] != engine._built_arrays[k])
            out[f"diff_{k}_at"], out[f"diff_{k}_value"] = at, a[at]
    if not _dep_order_sorted(engine):           # (sorted by departure and index: re-made by the restore)
        out["a_dep_order"] = engine.dep_order
    out["route_capacity"] = len(engine.route_seq)
    live = _live_slots(engine)
    out.update(ring_slots=live, ring_values=engine.state["ring"][live], ring_next_values=engine.state["ring_next"][live])
    out.update({f"state_{k}": v for k, v in engine.state.items() if k not in ("ring", "ring_next")})
    for k, v in engine.out.items():
        if k in SERIES:
            rows = np.flatnonzero(v.reshape(len(v), -1).any(axis=1))
            v = v[:rows[-1] + 1 if len(rows) else 0]
        out[f"out_{k}"] = v
    out.update({k: getattr(engine, k) for k in SCALARS})
    out["events"] = [[float(t), str(a), np.asarray(links).tolist(), None if c is None else float(c)]
                     for t, a, links, c in engine.events]
    out["history"] = [[int(v), [[int(a), int(b)] for a, b in h]] for v, h in engine.history.items()]
    out["rng_reroute"] = generator_state(engine.rng_reroute)
    if getattr(engine, "cancelled", None) is not None:         # trips cancelled or held (twin.traffic_fork)
        out["cancelled"] = np.flatnonzero(engine.cancelled)
    if hasattr(engine, "_exits_iv"):
        out["exits_iv"], out["exits_done"] = int(engine._exits_iv), engine._exits_done
    return out


def engine_restore(engine, state) -> None:
    """Put a state from :func:`engine_snapshot` into a freshly built engine of the same scenario."""
    from twin.checkpoint import set_generator_state

    for k, (n0, crc) in _built(engine).items():
        if [n0, crc] != [int(x) for x in state[f"built_{k}"]]:
            raise ScenarioError(f"checkpoint: the traffic's {k} as built ({n0:,} entries) is not the snapshot's "
                                f"({int(state[f'built_{k}'][0]):,}): another city, demand or seed?")
        arr = getattr(engine, k)
        base = engine._built_arrays[k] if k in DIFFED else arr[:n0]     # (as built, whatever happened since)
        arr = np.concatenate([base, np.asarray(state[f"tail_{k}"], dtype=arr.dtype)])
        if k in DIFFED:
            at = np.asarray(state.get(f"diff_{k}_at", ()), dtype=np.int64)    # (none in an older snapshot)
            if len(at):
                arr[at] = state[f"diff_{k}_value"]
        setattr(engine, k, arr)
    if "a_dep_order" in state:
        engine.dep_order = np.array(state["a_dep_order"], dtype=np.int64)
    else:
        engine.dep_order = np.lexsort((np.arange(len(engine.depart_step)), engine.depart_step)).astype(np.int64)
    for k in ARRAYS:
        old, new = getattr(engine, k), np.asarray(state[f"a_{k}"])
        if new.dtype != old.dtype or (new.ndim and k not in _GROWS and new.shape != old.shape):
            raise ScenarioError(f"checkpoint: traffic array {k!r} is {new.dtype}{list(new.shape)}; this scenario's "
                                f"engine has {old.dtype}{list(old.shape)} (another city or demand?)")
        setattr(engine, k, np.array(new))
    cap = int(state["route_capacity"])
    for k in ("route_seq", "route_owner"):
        used = getattr(engine, k)
        setattr(engine, k, np.concatenate([used, np.zeros(cap - len(used), dtype=used.dtype)]))
    st = engine.state
    for k in st:
        if k in ("ring", "ring_next"):
            st[k] = np.zeros_like(st[k])
            st[k][np.asarray(state["ring_slots"])] = np.asarray(state[f"{k}_values"])
        else:
            st[k] = np.array(state[f"state_{k}"])
    for k, v in engine.out.items():
        saved = np.asarray(state[f"out_{k}"])
        if k in SERIES:
            full = np.zeros_like(v)
            full[:len(saved)] = saved
            saved = full
        engine.out[k] = np.array(saved)
    for k in SCALARS:
        setattr(engine, k, type(getattr(engine, k))(state[k]))
    engine.events = _events(engine.events, state["events"], int(state["event_ptr"]))
    engine.history = {int(v): [(int(a), int(b)) for a, b in h] for v, h in state["history"]}
    set_generator_state(engine.rng_reroute, state["rng_reroute"])
    engine.cancelled = None
    if "cancelled" in state:
        engine.cancelled = np.zeros(engine.n_veh, dtype=bool)
        engine.cancelled[np.asarray(state["cancelled"], dtype=np.int64)] = True
    if "exits_iv" in state:
        engine._exits_iv, engine._exits_done = int(state["exits_iv"]), np.array(state["exits_done"])


def _key(t, a, links, c):
    return float(t), str(a), tuple(int(x) for x in np.atleast_1d(links)), None if c is None else repr(float(c))


def _events(built, saved, ptr):
    """The network events of a restored engine: those applied before the snapshot (saved), then
    the ones the scenario being run schedules (``built``) less those already applied. With the
    snapshot's own scenario that is the saved list; a what-if's changed closures take effect."""
    applied = [(float(t), a, np.asarray(links, dtype=np.int64), c) for t, a, links, c in saved[:ptr]]
    left = {}
    for e in applied:
        left[_key(*e)] = left.get(_key(*e), 0) + 1
    future = []
    for e in built:
        k = _key(*e)
        if left.get(k, 0):
            left[k] -= 1
        else:
            future.append(e)
    return applied + future


#: Arrays whose length changes during a run (vehicles inserted, routes re-written).
_GROWS = {"dl_order"}
