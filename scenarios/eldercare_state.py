"""The elderly-care operation's run-time state as plain data, and back (checkpoints, [state]).

What a :class:`~twin.scenarios.eldercare_ops.CareOperation` changes while it runs: the visits
and home-care requests so far, the places in use, the requests waiting for a carer, how far
the pre-drawn arrivals and requests have come, its random stream, and each process at its
step — a visitor waiting for a place (in queue order) or in one, a carer closed, waiting for a
request, driving, on site or on the way back — with the time of its next event. The arrivals'
and requests' times are re-drawn identically by the build.
"""

from __future__ import annotations

import numpy as np

from twin.errors import ScenarioError

__all__ = ["care_snapshot", "care_restore"]

_FLOATS = ("t", "u", "there")


def _position(op, rec):
    """Where a process's request stands: a place taken (its index among the users), waiting for
    a place (after the users, in queue order), or a carer's wait for a request (queue order)."""
    if rec.kind == "visit":
        res = op.places[rec.c]
        users = [id(r) for r in res.users]
        if id(rec.req) in users:
            return users.index(id(rec.req))
        return len(users) + [id(r) for r in res.queue].index(id(rec.req))
    return [id(g) for g in op.queues[rec.c].get_queue].index(id(rec.req))


def _wait_of(op, rec, pending):
    """The event a process waits on, as data: a clock event, or a leg of the carers' fleet."""
    if (rec.kind == "visit" and rec.step == 0) or (rec.kind == "carer" and rec.step == 1):
        return ["clock", *pending(rec.wait)]             # besides its request: the closing time
    target = rec.proc._target
    return op.fleet.wait_ref(target, pending) if op.fleet is not None else ["clock", *pending(target)]


def care_snapshot(op, pending) -> dict:
    """The operation's state (``pending``: :meth:`twin.flows.RunContext.pending`)."""
    from twin.checkpoint import generator_state

    procs = []
    for rec in op.procs:
        pos = _position(op, rec) if rec.kind == "visit" or (rec.kind == "carer" and rec.step == 1) else -1
        procs.append({"kind": rec.kind, "c": rec.c, "step": rec.step, "row": rec.row, "t": rec.t, "u": rec.u,
                      "there": rec.there, "pos": pos, "wait": _wait_of(op, rec, pending)})
    return {"visits": [list(r) for r in op.visits], "home": [list(r) for r in op.home],
            "series_t": np.array([t for t, _ in op.series], dtype=np.float64),
            "series_busy": np.array([b for _, b in op.series], dtype=np.int64).reshape(len(op.series), -1),
            "busy": op.busy, "max_busy": op.max_busy, "next_arrival": list(op.next_arrival),
            "next_request": list(op.next_request), "rng": generator_state(op.rng),
            "waiting": [[op._home_row[id(row)] for row in q.items] for q in op.queues], "procs": procs}


def care_restore(op, state, wakeup) -> None:
    """Put :func:`care_snapshot`'s state into a freshly built operation and start its processes
    again (``wakeup``: :meth:`twin.flows.RunContext.wakeup`)."""
    from twin.checkpoint import set_generator_state
    from twin.scenarios.eldercare_ops import _Proc

    if len(state["next_arrival"]) != len(op.plan.centres):
        raise ScenarioError(f"checkpoint: {len(state['next_arrival'])} care centres; this scenario has "
                            f"{len(op.plan.centres)} (a what-if from a snapshot keeps the centres)")
    op.visits = [[int(c), float(t), float(a), float(b), int(o)] for c, t, a, b, o in state["visits"]]
    op.home = [[int(c), int(n), float(t), float(a), float(b), int(k)] for c, n, t, a, b, k in state["home"]]
    op._home_row = {id(row): i for i, row in enumerate(op.home)}
    busy = np.asarray(state["series_busy"])
    op.series = [(float(t), busy[i].astype(np.int64)) for i, t in enumerate(np.asarray(state["series_t"]))]
    op.busy, op.max_busy = np.array(state["busy"]), np.array(state["max_busy"])
    op.next_arrival, op.next_request = [int(x) for x in state["next_arrival"]], [int(x) for x in state["next_request"]]
    set_generator_state(op.rng, state["rng"])
    for q, rows in zip(op.queues, state["waiting"]):
        q.items = [op.home[int(i)] for i in rows]
    recs = []
    for p in state["procs"]:
        rec = _Proc(p["kind"], p["c"])
        rec.step, rec.row = int(p["step"]), int(p["row"])
        for k in _FLOATS:
            setattr(rec, k, float(p[k]))
        recs.append((rec, int(p["pos"]), p["wait"]))
    # the places taken, then the queues for places and for requests, in their order
    for rec, pos, _ in sorted((x for x in recs if x[1] >= 0), key=lambda x: (x[0].kind, x[0].c, x[1])):
        rec.req = op.places[rec.c].request() if rec.kind == "visit" else op.queues[rec.c].get()
    fns = {"daycare": op._daycare, "requests": op._requests, "record": op._record, "visit": op._visit,
           "carer": op._carer}
    for rec, _, wait in recs:
        ev = op.fleet.wait_event(wait, wakeup) if op.fleet is not None else wakeup(wait[1:])
        op._go(rec, fns[rec.kind], ev)
