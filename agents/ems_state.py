"""An EMS model's run-time state as plain data, and back (checkpoints, [state]).

:func:`model_snapshot` writes what a :class:`~twin.agents.ems.CityModel` changes while it
runs: the call table (calls added during the run too) and its records; each unit's status,
place, the step of the call it serves (turnout, driving to the scene, on scene, transporting,
waiting for a bed, handing over) or of its drive home or to a move-up post, with the time of
its next event; the dispatch queue and the calls being taken; each hospital's patients in a
bed (and when they leave) or waiting for one in triage order, its inpatients in ward and ICU
beds, the walk-ins still to come, diversion and out-of-service status; the move-up orders
and every random stream drawn during the run. :func:`model_restore` puts it into a freshly
built model of the same scenario and starts each process again at its step, each pending
event at its time and in its original tie-break order. Whatever the build re-creates from the
seed (the calls drawn up front, the walk-ins' times) is not in the state. Inter-hospital
transfers by ambulance are too: the ICU bed reserved at the receiving hospital, the patient
holding its ED bed until the ambulance has loaded it, and the ambulance at its step.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ScenarioError

__all__ = ["model_snapshot", "model_restore"]

_ASSIGN_TYPES = (int, int, int, float, float, float)
_MOVE_TYPES = (float, int, int, int, float, float, float, bool, bool)


def _gen_state(rng):
    from twin.checkpoint import generator_state

    return generator_state(rng) if rng is not None else None


def _set_gen(rng, state):
    from twin.checkpoint import set_generator_state

    if rng is not None and state is not None:
        set_generator_state(rng, state)


def _typed(rows, types):
    return [[t(x) for t, x in zip(types, r)] for r in rows]


def _wait_ref(target, pending, legs, granted):
    """What a unit's process waits on, as data: a leg being driven, a bed, or a clock event."""
    if id(target) in legs:
        return ["leg", legs[id(target)]]
    if id(target) in granted:
        return ["admit", *granted[id(target)]]
    return ["clock", *pending(target)]


def _refuse(why):
    from twin.errors import CheckpointNotNow

    raise CheckpointNotNow(f"{why} cannot be written to a checkpoint yet")


# ------------------------------------------------------------------------------------ snapshot
def _hospital_snapshot(h, pending, granted, pickups, reserved):
    live = list(h._active) + list(h.boarding) + list(h.transferring)  # waiting for / in an ED bed, boarding, transfer
    if len(h.beds.users) != sum(st.phase >= 1 for st in live):
        _refuse(f"hospital {h.spec.name!r}: an ED bed held by a patient in no known step")
    users = {id(r): i for i, r in enumerate(h.beds.users)}
    queue = {id(r): i for i, r in enumerate(h.beds.queue)}
    rows = {id(r): i for i, r in enumerate(h.admissions)}
    stays = []
    for st in live:
        where = users.get(id(st.req), -1)
        pos = where if where >= 0 else len(users) + queue[id(st.req)]
        entry = pending(h._active[st]._target) if st.phase == 1 else []
        stays.append([int(st.call_id), float(st.u_los), int(st.priority), -1.0 if st.los_s is None else float(st.los_s),
                      rows[id(st.row)], int(st.phase), float(st.end), pos, *entry])
        granted[id(st.granted)] = (h.hospital_idx, rows[id(st.row)])
    stay_rows = {id(r): i for i, r in enumerate(h.stays)}
    boarding = []                                         # [pool, stay row, length of stay, place in the pool's queue]
    for st in h.boarding:
        name, req, los, row = st.board
        boarding.append([name, stay_rows[id(row)], float(los), [id(r) for r in h.pools[name][0].queue].index(id(req))])
    inpatients = []
    for proc, name, req, row in h.inpatients:
        inpatients.append([name, stay_rows[id(row)], *pending(proc._target)])
    for name, pool in h.pools.items():
        if len(pool[0].queue) != sum(1 for st in h.boarding if st.board[0] == name) or \
                len(pool[0].users) != sum(1 for x in h.inpatients if x[1] == name) + reserved.get((h.hospital_idx, name), 0):
            _refuse(f"hospital {h.spec.name!r}: a {name} bed held by a patient in no known step")
    walk = h.walk_in_proc
    return {"occupied": h.occupied, "waiting": h.waiting, "admissions": [list(r) for r in h.admissions],
            "series": [list(x) for x in h.series],
            "pools": {k: [p[1], p[2], [list(x) for x in p[3]]] for k, p in h.pools.items()},
            "stays": [list(r) for r in h.stays], "on_diversion": bool(h.on_diversion),
            "forced_diversion": h.forced_diversion,
            "diversion_log": [list(x) for x in h.diversion_log], "out_of_service": bool(h.out_of_service),
            "redirect": -1 if h.redirect is None else h.redirect.hospital_idx,
            "transfers_out": [list(x) for x in h.transfers_out], "walk_in_next": int(h.walk_in_next),
            "walk_in_wait": pending(walk._target) if walk is not None and walk.is_alive else [],
            "live": stays, "boarding": boarding, "inpatients": inpatients, "flow_rng": _gen_state(h.flow_rng),
            "transferring": [pickups[id(st.transfer)] for st in h.transferring], "surge": int(h.surge)}


def _unit_snapshot(u, pending, legs, granted, assign_rows, move_rows):
    rec = {"state": int(u.state), "location": int(u.location_idx), "dest": int(u.dest_idx),
           "station": int(u.station_idx), "posted": bool(u.posted),
           "transports": bool(u._transports), "row": assign_rows.get(id(u._row), -1),
           "reloc": move_rows.get(id(u._reloc_row), -1), "serve": None, "move": None}
    if u.serve is not None and u.serve.is_alive:
        c = int(u.serve_call)
        kind = "transfer" if u.model.is_transfer(c) else "textbook" if u._textbook else "path"
        rec["serve"] = {"c": c, "kind": kind, "at": int(u.at),
                        "leg": list(u.leg_now) if u.at in (1, 3) else None,
                        "wait": _wait_ref(u.serve._target, pending, legs, granted)}
    if u._move_proc is not None and u._move_proc.is_alive:
        dest, code, c = u.move_args
        rec["move"] = {"dest": int(dest), "code": int(code), "c": int(c),
                       "wait": _wait_ref(u._move_proc._target, pending, legs, granted)}
    return rec


def model_snapshot(model, pending) -> dict:
    """The model's run-time state (``pending``: :meth:`twin.flows.RunContext.pending`)."""
    out = {f"calls_{k}": v for k, v in vars(model.calls).items() if isinstance(v, np.ndarray)}
    ue = np.array(model.unit_events, dtype=np.float64).reshape(-1, 4)
    out.update(events_t=ue[:, 0], events_i=ue[:, 1:].astype(np.int64))
    assign_rows = {id(r): i for i, r in enumerate(model.assignments)}
    out["assignments"] = [list(r) for r in model.assignments]
    rel = model.relocator
    move_rows = {id(r): i for i, r in enumerate(rel.moves)} if rel is not None else {}
    if rel is not None:
        out.update(moves=[list(r) for r in rel.moves], relocator_rng=_gen_state(rel.rng))
    out["diverted"] = [list(x) for x in model.diverted]
    if model.posted_log:
        out["posted_log"] = [list(x) for x in model.posted_log]
    if model.hospital_choices:
        out["hospital_choices"] = [list(x) for x in model.hospital_choices]
    out["sources"] = [[rec[1], rec[2], *pending(rec[0]._target)] for rec in model.sources]
    d = model.dispatch
    out["dispatch"] = {"queue": [list(e) for e in d.queue], "pending": [[c, list(s)] for c, s in d.pending.items()],
                       "series": [list(x) for x in d.queue_series],
                       "processing": [[c, *pending(p._target)] for c, p in d.processing.items()],
                       "transferring": [[c, k, at, *pending(p._target)] for (c, k), (p, at) in d.transferring.items()],
                       "aiding": [[c, k, *pending(p._target)] for (c, k), p in d.aiding.items()],
                       "aided": [list(x) for x in sorted(d.aided)], "aid_log": [list(r) for r in d.aid_log]}
    if d.takers is not None:
        out["dispatch"]["takers"] = d.takers.snapshot()
    granted, pickups, reserved = {}, {}, {}
    out["transfers"] = []           # [call, from hospital, picked up, stay row at the receiving one (-1: begun), los_s]
    for c, t in sorted(model.transfers.items()):
        pickups[id(t.picked_up)] = int(c)
        to = model.hospitals[int(model.calls.hospital_idx[c])]
        row = -1 if t.row is None else next(i for i, r in enumerate(to.stays) if r is t.row)
        if row >= 0:
            reserved[(to.hospital_idx, t.row[1])] = reserved.get((to.hospital_idx, t.row[1]), 0) + 1
        out["transfers"].append([int(c), int(t.from_hospital_idx), bool(t.picked), row,
                                 -1.0 if t.los_s is None else float(t.los_s)])
    out["hospitals"] = [_hospital_snapshot(h, pending, granted, pickups, reserved) for h in model.hospitals]
    legs = {id(rec.proc): k for k, rec in enumerate(getattr(model.travel, "active", ()))}
    out["units"] = [_unit_snapshot(u, pending, legs, granted, assign_rows, move_rows) for u in model.units]
    out["unit_names"] = [u.spec.name for u in model.units]
    out["hospital_names"] = [h.spec.name for h in model.hospitals]
    out["any_out_of_service"] = bool(model.any_out_of_service)
    out["streams"] = {k: _gen_state(g) for k, g in model.streams.items()}
    out["transfer_rng"] = _gen_state(model.transfer_rng)
    out["random"] = _py_random_state(model.random)
    out["first_calls"] = int(model.first_calls)
    return out


def _py_random_state(r):
    version, internal, gauss = r.getstate()
    return [version, list(internal), gauss]


# ------------------------------------------------------------------------------------- restore
def _hospital_restore(model, h, s, wakeup, granted):
    from twin.agents.hospital import _Stay

    h.occupied, h.waiting = int(s["occupied"]), int(s["waiting"])
    h.admissions = [[int(a), float(b), float(c), float(d), bool(e)] for a, b, c, d, e in s["admissions"]]
    h.series = [(float(t), int(a), int(b)) for t, a, b in s["series"]]
    for k, (occ, board, series) in s["pools"].items():
        p = h.pools[k]
        p[1], p[2], p[3] = int(occ), int(board), [(float(t), int(a), int(b)) for t, a, b in series]
    h.stays = [[int(r[0]), r[1], int(r[2]), int(r[3]), float(r[4]), float(r[5]), float(r[6]), bool(r[7]), bool(r[8])]
               for r in s["stays"]]
    h.on_diversion, h.out_of_service = bool(s["on_diversion"]), bool(s["out_of_service"])
    forced = s.get("forced_diversion")
    h.forced_diversion = None if forced is None else bool(forced)
    h.diversion_log = [(float(t), bool(on)) for t, on in s["diversion_log"]]
    h.redirect = model.hospitals[int(s["redirect"])] if int(s["redirect"]) >= 0 else None
    h.transfers_out = [(float(t), int(c), int(k), bool(b)) for t, c, k, b in s["transfers_out"]]
    _set_gen(h.flow_rng, s["flow_rng"])
    env = h.env
    stays = []
    for call_id, u_los, prio, los_s, row, phase, end, pos, *entry in s["live"]:
        st = _Stay(int(call_id), float(u_los), int(prio), None if los_s < 0 else float(los_s), env.event())
        st.row, st.phase, st.end = h.admissions[int(row)], int(phase), float(end)
        stays.append((int(pos), st, entry))
        granted[(h.hospital_idx, int(row))] = st.granted
    if int(s.get("surge", 0)):                            # surge beds a rule opened
        h.set_surge(int(s["surge"]))
    taken = sum(1 for _, st, _ in stays if st.phase >= 1)
    if taken > h.beds.capacity:
        raise ScenarioError(f"checkpoint: hospital {h.spec.name!r} has {taken} patients in ED beds; this scenario gives "
                            f"it {h.spec.beds} (a what-if from a snapshot may add beds, not take occupied ones away)")
    for name, pool in h.pools.items():
        held = sum(1 for x in s["inpatients"] if x[0] == name)
        if held > pool[0].capacity:
            raise ScenarioError(f"checkpoint: hospital {h.spec.name!r} has {held} {name} patients; this scenario "
                                f"gives it {pool[4]} {name} beds (a what-if may add beds, not take occupied ones away)")
    for _, st, _ in sorted(stays, key=lambda x: x[0]):      # beds taken, then the queue in its order
        st.req = h.beds.request(priority=st.priority) if h._by_priority else h.beds.request()
    inpatients = [(name, h.pools[name][0].request(), h.stays[int(row)], entry) for name, row, *entry in s["inpatients"]]
    for c, t in sorted(model.transfers.items()):            # ICU beds reserved for transfers on their way here
        if isinstance(t.row, int) and int(model.calls.hospital_idx[c]) == h.hospital_idx:
            t.row = h.stays[t.row]
            t.request = h.pools[t.row[1]][0].request()
    past = [st for _, st, _ in stays if st.phase == 2]       # boarding, then waiting for a transfer's ambulance
    n_board, moving = len(s.get("boarding", [])), s.get("transferring", [])
    if len(past) != n_board + len(moving):
        raise ScenarioError(f"checkpoint: hospital {h.spec.name!r}: {len(past)} stays past the ED, {n_board} "
                            f"boarding and {len(moving)} waiting for a transfer recorded")
    boarders = past[:n_board]
    for st, c in zip(past[n_board:], moving):
        if int(c) not in model.transfers:
            raise ScenarioError(f"checkpoint: hospital {h.spec.name!r}: transfer call {c} is not in the state")
        st.transfer = model.transfers[int(c)].picked_up
    for st, (name, row, los, qpos) in sorted(zip(boarders, s.get("boarding", [])), key=lambda x: x[1][3]):
        st.board = [name, h.pools[name][0].request(), float(los), h.stays[int(row)]]   # the pool's queue in order
    for _, st, entry in stays:                               # in the order they could be moved, then boarding
        env.process(h._stay(st, wakeup(entry) if st.phase == 1 else None))
    for name, req, row, entry in inpatients:
        env.process(h._inpatient(h.pools[name], name, req, math.nan, row, wakeup(entry)))
    h.walk_in_next = int(s["walk_in_next"])
    if len(s["walk_in_wait"]):
        h.start_walk_ins(wakeup(s["walk_in_wait"]))


def _unit_wait(ref, wakeup, legs, granted):
    kind = ref[0]
    if kind == "leg":
        return legs[int(ref[1])].proc
    if kind == "admit":
        return granted[(int(ref[1]), int(ref[2]))]
    return wakeup(ref[1:])


def _unit_restore(model, u, s, wakeup, legs, granted):
    u.state, u.location_idx, u.dest_idx = int(s["state"]), int(s["location"]), int(s["dest"])
    u.posted = bool(s.get("posted", False))
    u.station_idx = int(s["station"])         # a station out of service (a flood) moves the units' home
    u._transports = bool(s["transports"])
    u._row = model.assignments[s["row"]] if s["row"] >= 0 else None
    u._reloc_row = model.relocator.moves[s["reloc"]] if s["reloc"] >= 0 else None
    env = model.env
    sv = s["serve"]
    if sv is not None:
        c, wait = int(sv["c"]), _unit_wait(sv["wait"], wakeup, legs, granted)
        u.serve_call = c
        if sv["kind"] == "textbook":
            u.serve = env.process(u._serve_textbook(c, wait))
        elif sv["kind"] == "transfer":
            leg = tuple(sv["leg"]) if sv["leg"] is not None else None
            u.serve = env.process(u._serve_transfer(c, at=int(sv["at"]), wait=wait, leg=leg))
        else:
            leg = tuple(sv["leg"]) if sv["leg"] is not None else None
            u.serve = env.process(u._serve_path(c, at=int(sv["at"]), wait=wait, leg=leg))
    mv = s["move"]
    if mv is not None:
        u.move_args = (int(mv["dest"]), int(mv["code"]), int(mv["c"]))
        u._move_proc = env.process(u._drive(*u.move_args, wait=_unit_wait(mv["wait"], wakeup, legs, granted)))


def _unit_map(model, state):
    """New unit index of each saved unit (matched by name); a saved unit the scenario does not
    have, or other hospitals, is an error. Units the snapshot lacks start idle at their station."""
    names = {u.spec.name: u.unit_idx for u in model.units}
    missing = [n for n in state["unit_names"] if n not in names]
    if missing:
        raise ScenarioError(f"checkpoint: unit {missing[0]!r} (of {len(missing)} in the snapshot) is not in this "
                            f"scenario's units ({', '.join(list(names)[:6])} ...); a what-if from a snapshot may "
                            f"add units, not remove them")
    hosp = [h.spec.name for h in model.hospitals]
    if list(state["hospital_names"]) != hosp:
        raise ScenarioError(f"checkpoint: hospitals {list(state['hospital_names'])}; this scenario has {hosp} (a "
                            f"what-if from a snapshot keeps the hospitals)")
    return np.array([names[n] for n in state["unit_names"]], dtype=np.int64)


def _remap_units(state, new_idx) -> dict:
    """The saved state with its unit indices in the new scenario's numbering."""
    if np.array_equal(new_idx, np.arange(len(new_idx))):
        return state
    state = dict(state)
    ui = np.array(state["calls_unit_idx"])
    state["calls_unit_idx"] = np.where(ui >= 0, new_idx[np.maximum(ui, 0)], ui).astype(ui.dtype)
    ix = np.array(state["events_i"]).reshape(-1, 3).copy()
    ix[:, 0] = new_idx[ix[:, 0]]
    state["events_i"] = ix
    state["assignments"] = [[r[0], int(new_idx[int(r[1])]), *r[2:]] for r in state["assignments"]]
    if "moves" in state:
        state["moves"] = [[r[0], int(new_idx[int(r[1])]), *r[2:]] for r in state["moves"]]
    return state


def model_restore(model, state, wakeup) -> None:
    from twin.agents.ems import _Transfer

    """Put :func:`model_snapshot`'s state into ``model`` (built, not started) and start its
    processes again (``wakeup``: :meth:`twin.flows.RunContext.wakeup`). Units are matched by
    name: a what-if from a snapshot may add units (they start idle at their station)."""
    new_idx = _unit_map(model, state)
    state = _remap_units(state, new_idx)
    model.running = True
    model.first_calls = int(state.get("first_calls", model.first_calls))
    for k, v in vars(model.calls).items():
        if isinstance(v, np.ndarray):
            setattr(model.calls, k, np.array(state[f"calls_{k}"]).astype(v.dtype, copy=False))
    t, ix = np.asarray(state["events_t"]), np.asarray(state["events_i"]).reshape(-1, 3)
    model.unit_events = [(float(a), int(b), int(c), int(d)) for a, (b, c, d) in zip(t, ix)]
    model.assignments = _typed(state["assignments"], _ASSIGN_TYPES)
    if model.relocator is not None:
        model.relocator.moves = _typed(state.get("moves", []), _MOVE_TYPES)
        _set_gen(model.relocator.rng, state.get("relocator_rng"))
    model.diverted = [(int(a), float(b), int(c), int(d)) for a, b, c, d in state["diverted"]]
    model.posted_log = [[int(u), int(p), float(a), float(b)] for u, p, a, b in state.get("posted_log", [])]
    model.hospital_choices = [(int(a), float(b), int(c), int(d), *map(float, rest))
                              for a, b, c, d, *rest in state.get("hospital_choices", [])]
    model.any_out_of_service = bool(state["any_out_of_service"])
    for k, g in model.streams.items():
        _set_gen(g, state["streams"].get(k))
    _set_gen(model.transfer_rng, state["transfer_rng"])
    version, internal, gauss = state["random"]
    model.random.setstate((version, tuple(internal), gauss))
    env = model.env
    d = model.dispatch
    d.queue = [(int(p), float(t), int(c)) for p, t, c in state["dispatch"]["queue"]]
    d.pending = {int(c): [int(x) for x in slots] for c, slots in state["dispatch"]["pending"]}
    d.queue_series = [(float(t), int(n)) for t, n in state["dispatch"]["series"]]
    saved = state["dispatch"].get("takers")
    if d.takers is None and saved is not None and any(saved["waiting"]):
        raise ScenarioError("checkpoint: the snapshot has calls waiting for call takers and this scenario has no "
                            "[[agencies]]; keep the agencies (their call takers may change)")
    model.transfers = {}
    for c, from_idx, picked, row, los_s in state.get("transfers", []):     # (rows: indices until the hospitals)
        t = _Transfer(int(row) if int(row) >= 0 else None, None, None if los_s < 0 else float(los_s), env.event(),
                      int(from_idx))
        t.picked = bool(picked)
        model.transfers[int(c)] = t
    granted = {}
    for h, s in zip(model.hospitals, state["hospitals"]):
        _hospital_restore(model, h, s, wakeup, granted)
    if any(h.forced_diversion is not None for h in model.hospitals):     # (a rule diverted one)
        model.any_diversion = True
    legs = list(getattr(model.travel, "active", ()))
    for k, s in zip(new_idx, state["units"]):
        _unit_restore(model, model.units[k], s, wakeup, legs, granted)
    for c, *entry in state["dispatch"]["processing"]:
        d.processing[int(c)] = env.process(d._process(int(c), wakeup(entry)))
    for c, k, at, *entry in state["dispatch"].get("transferring", []):
        key = (int(c), int(k))
        d.transferring[key] = [env.process(d._transfer(*key, at=int(at), wait=wakeup(entry))), int(at)]
    for c, k, *entry in state["dispatch"].get("aiding", []):
        d.aiding[(int(c), int(k))] = env.process(d._aid(int(c), int(k), wakeup(entry)))
    d.aided = {(int(c), int(k)) for c, k in state["dispatch"].get("aided", [])}
    d.aid_log = [[int(c), int(k), float(t), int(n)] for c, k, t, n in state["dispatch"].get("aid_log", [])]
    if d.takers is not None and saved is not None:
        d.restore_takers(saved)
    for rec in model.sources:         # started by another flow's build (calls added up front): the state has it
        rec[2] = rec[1]
    model.sources = []
    for nxt, stop, *entry in state["sources"]:
        model._source(int(nxt), int(stop), wakeup(entry))
