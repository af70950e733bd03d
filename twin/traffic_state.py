"""A :class:`~twin.traffic.TrafficEngine`'s run-time state as plain data, and back.

The state is what the engine changes while it runs: every vehicle's arrays (demand, routes,
status, timing; vehicles inserted during the run too), the links' rings and budgets, the
network events and how far they have been applied, the re-routing stream, the detour history
and the output series so far. The city, the parameters and the kernel's constants are
re-made by building the same scenario. A restored engine continues exactly as the original
(the kernel is deterministic given these arrays).
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError

__all__ = ["engine_snapshot", "engine_restore"]

#: Engine attributes that are arrays the run changes (vehicles grow with insertions).
ARRAYS = ("veh_class", "o_idx", "d_idx", "depart_s", "cap_per_step", "capacity_veh_per_h", "storage", "hole_steps",
          "ff_steps", "ff_time_s", "link_open", "routable", "depart_step", "dep_order", "route_start", "seg_end",
          "seg_start", "route_seq", "route_owner", "dl_order", "dep_link_indptr")
SCALARS = ("n_veh", "event_ptr", "route_used", "n_rerouted")     # (not kernel_s: a wall-clock figure)


def engine_snapshot(engine) -> dict:
    """The engine's run-time state: ``{key: array | number | JSON-able}``."""
    from twin.checkpoint import generator_state

    out = {f"a_{k}": getattr(engine, k) for k in ARRAYS}
    used = int(engine.route_used)            # the route store past route_used is unused (uninitialised) room
    out["a_route_seq"], out["a_route_owner"] = engine.route_seq[:used], engine.route_owner[:used]
    out["route_capacity"] = len(engine.route_seq)
    out.update({f"state_{k}": v for k, v in engine.state.items()})
    out.update({f"out_{k}": v for k, v in engine.out.items()})
    out.update({k: getattr(engine, k) for k in SCALARS})
    out["events"] = [[float(t), str(a), np.asarray(links).tolist(), None if c is None else float(c)]
                     for t, a, links, c in engine.events]
    out["history"] = [[int(v), [[int(a), int(b)] for a, b in h]] for v, h in engine.history.items()]
    out["rng_reroute"] = generator_state(engine.rng_reroute)
    if hasattr(engine, "_exits_iv"):
        out["exits_iv"], out["exits_done"] = int(engine._exits_iv), engine._exits_done
    return out


def engine_restore(engine, state) -> None:
    """Put a state from :func:`engine_snapshot` into a freshly built engine of the same scenario."""
    from twin.checkpoint import set_generator_state

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
    for name, d in (("state", engine.state), ("out", engine.out)):
        for k in d:
            d[k] = np.array(state[f"{name}_{k}"])
    for k in SCALARS:
        setattr(engine, k, type(getattr(engine, k))(state[k]))
    engine.events = _events(engine.events, state["events"], int(state["event_ptr"]))
    engine.history = {int(v): [(int(a), int(b)) for a, b in h] for v, h in state["history"]}
    set_generator_state(engine.rng_reroute, state["rng_reroute"])
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
_GROWS = {"veh_class", "o_idx", "d_idx", "depart_s", "routable", "depart_step", "dep_order", "route_start", "seg_end",
          "seg_start", "route_seq", "route_owner", "dl_order"}
