"""Observed states: read one, write a twin state as one, make a twin state agree with one (the
format and the rules are in :mod:`twin.observed`, which loads the scenarios)."""

from __future__ import annotations

import copy
import heapq
import json
import math
import re
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError

__all__ = ["FORMAT", "VERSION", "IDLE", "BUSY", "apply_observed", "observed_state", "read_observed", "spin_up"]

#: Tie-break order of the events an observation adds: after every event of a real run.
_ORDER = 2 ** 52
_NORMAL = 1


FORMAT = "twin-observed-state"
VERSION = 1
IDLE = ("available", "at_station", "returning", "relocating")
BUSY = ("dispatched", "en_route", "on_scene", "transporting", "at_hospital", "handover")


def _restored(scenario, seed, time_s, states):
    """A simulation built and restored at ``time_s`` (not run): for reading live values."""
    from twin.flows import Simulation

    sim = Simulation(scenario, seed=seed, until_s=scenario.run_group.until_s, start_s=time_s)
    for f in sim.flows:
        f.build(sim.ctx)
    for f in sim.flows:
        f.restore(sim.ctx, states[f.name], time_s)
    return sim


def _flow(sim, name):
    return next((f for f in sim.flows if f.name == name), None)


def observed_state(scenario, seed, time_s, states) -> dict:
    """The observed-state document of a twin state (flow name -> state) at ``time_s``."""
    from twin.emergency import UNIT_EVENTS

    sim = _restored(scenario, seed, time_s, states)
    ems = _flow(sim, "ems")
    if ems is None:
        raise ScenarioError("observed state: the scenario has no emergency services (stations, hospitals)")
    model, nodes = ems.model, np.asarray(sim.ctx.plan(ems).layout.location_node_id)
    calls, types = model.calls, [c.name for c in model.spec.call_types]
    last = {}
    for t, u, _, _ in model.unit_events:
        last[u] = t
    serving = {}
    units = []
    for u in model.units:
        c = int(u.serve_call) if u.serve is not None and u.serve.is_alive else -1
        row = {"unit": u.spec.name, "status": UNIT_EVENTS[u.state], "node": int(nodes[u.location_idx]),
               "since_s": float(last.get(u.unit_idx, 0.0))}
        if c >= 0:
            row["call"] = f"c{c}"
            serving.setdefault(c, []).append(u.spec.name)
        units.append(row)
    hospitals = [{"hospital": h.spec.name, "ed_beds_occupied": int(h.occupied), "ed_waiting": int(h.waiting),
                  "in_service": not h.out_of_service} for h in model.hospitals]
    waiting = set(model.dispatch.pending) | set(model.dispatch.processing) | {c for c, _ in model.dispatch.transferring}
    if model.dispatch.takers is not None:                     # waiting for a call taker
        waiting |= {c for q in model.dispatch.takers.waiting for c, _ in q}
    open_calls = []
    for c in np.flatnonzero((calls.outcome == 0) & (calls.time_s <= time_s)):
        c = int(c)
        if c not in waiting and c not in serving:
            continue                                   # (its units are free: it is about to complete)
        name = types[calls.type_idx[c]] if calls.type_idx[c] < len(types) else "inter-hospital transfer"
        open_calls.append({"call": f"c{c}", "time_s": float(calls.time_s[c]), "node": int(nodes[calls.location_idx[c]]),
                           "type": name, "status": "waiting" if c not in serving else "assigned"})
    doc = {"format": FORMAT, "version": VERSION, "time_s": float(time_s), "scenario": scenario.name, "seed": int(seed),
           "scenario_toml": scenario.resolved_text,
           "units": units, "hospitals": hospitals, "calls": open_calls, "links": []}
    tf = _flow(sim, "traffic")
    if tf is not None and tf.coupling is not None:
        e, city = tf.coupling.engine, scenario.city
        e.run_until(time_s)
        live = np.asarray(e.link_travel_times_s(), dtype=np.float64)
        speed = np.where(np.isfinite(live) & (live > 0), city.length_m / np.where(live > 0, live, 1.0) * 3.6, 0.0)
        ids = np.asarray(city.node_ids)
        doc["links"] = [{"from_node": int(ids[a]), "to_node": int(ids[b]), "speed_kmh": round(float(v), 3)}
                        for a, b, v in zip(city.link_from_idx, city.link_to_idx, speed)]
    return doc


def read_observed(path_or_doc) -> dict:
    """The document of an observed-state file (or dict), checked for its format and version."""
    if isinstance(path_or_doc, dict):
        doc, label = path_or_doc, "observed state"
    else:
        label = f"observed state {str(path_or_doc)!r}"
        try:
            doc = json.loads(Path(path_or_doc).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ScenarioError(f"{label}: no such file") from None
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{label}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ScenarioError(f"{label}: not a '{FORMAT}' document (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise ScenarioError(f"{label}: version {doc.get('version')!r}; this twin reads version {VERSION}")
    t = doc.get("time_s")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t < 0:
        raise ScenarioError(f"{label}: time_s = {t!r}; expected seconds >= 0 from the scenario start")
    for key in ("units", "hospitals", "calls", "links"):
        if not isinstance(doc.get(key, []), list):
            raise ScenarioError(f"{label}: {key!r} must be a list of rows")
    return doc


def spin_up(scenario, seed, time_s) -> dict:
    """The twin's own state at ``time_s``: the scenario run from its start with ``seed``."""
    from twin.flows import Simulation

    class _Got(Exception):
        pass

    got = {}

    def take(t, states):
        got.update(copy.deepcopy(states))     # (the clock goes on through time t's events before it stops)
        raise _Got

    until = scenario.run_group.until_s
    if not 0.0 < time_s < until:
        raise ScenarioError(f"observed state: time_s = {time_s:g} s; expected a time after the start and before the "
                            f"scenario's until_s = {until:g} s")
    sim = Simulation(scenario, seed=seed, until_s=until)
    try:
        sim.run(snapshot_at_s=[time_s], on_checkpoint=take)
    except _Got:
        return got
    raise ScenarioError(f"observed state: the twin's own state at {time_s:g} s cannot be written (see the warning "
                        f"above: e.g. a transfer by ambulance under way then); load it at another time")


def _where(key, i, row, name_key):
    return f"observed state {key}[{i}]" + (f" ({row.get(name_key)!r})" if isinstance(row, dict) else "")


def _int(row, key, where, default=None):
    v = row.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ScenarioError(f"{where}: {key} = {v!r}; expected a whole number >= 0")
    return int(v)


def apply_observed(doc, scenario, seed, states) -> dict:
    """Change ``states`` (flow name -> state, the prior at ``doc["time_s"]``) in place to agree
    with ``doc``; returns a report of what changed and of the link-speed fit."""
    if "ems" not in states:
        raise ScenarioError("observed state: the scenario has no emergency services (stations, hospitals)")
    st, t = states["ems"], float(doc["time_s"])
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x0B5E,)))    # the 'observed' stream
    report = {"units_moved": [], "hospitals_changed": [], "calls_added": []}
    calls = _check_calls(doc, scenario, st, t)
    _units(doc, st, calls, report)
    _hospitals(doc, scenario, st, t, rng, report)
    _new_calls(doc, scenario, st, t, calls, rng, report)
    report.update(_link_fit(doc, scenario, seed, states))
    return report


def _prior_call(u):
    return f"c{u['serve']['c']}" if u["serve"] is not None else None


def _check_calls(doc, scenario, st, t):
    """The listed calls by id: (row index, row, the twin's call index or -1)."""
    types = [c.name for c in scenario.plans["ems"].spec.call_types]
    nodes = np.asarray(st["location_node_id"])
    n = len(st["calls_time_s"])
    out = {}
    for i, row in enumerate(doc.get("calls", [])):
        at = _where("calls", i, row, "call")
        if not isinstance(row, dict) or not isinstance(row.get("call"), str):
            raise ScenarioError(f"{at}: expected {{\"call\": id, \"time_s\", \"node\", \"type\", \"status\"}}")
        if row["call"] in out:
            raise ScenarioError(f"{at}: call {row['call']!r} is listed twice")
        if row.get("type") not in types:
            raise ScenarioError(f"{at}: type = {row.get('type')!r}; the scenario's call types are {types}")
        if row.get("status") not in ("waiting", "assigned"):
            raise ScenarioError(f"{at}: status = {row.get('status')!r}; expected 'waiting' or 'assigned'")
        ts = row.get("time_s")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not ts <= t:
            raise ScenarioError(f"{at}: time_s = {ts!r}; expected the time the call came in, <= the state's {t:g}")
        m = re.fullmatch(r"c(\d+)", row["call"])
        k = int(m.group(1)) if m else -1
        same = (0 <= k < n and st["calls_outcome"][k] == 0 and int(nodes[st["calls_location_idx"][k]]) == row.get("node")
                and int(st["calls_type_idx"][k]) == types.index(row["type"]))
        out[row["call"]] = (i, row, k if same else -1)
    return out


def _units(doc, st, calls, report):
    from twin.emergency import UNIT_EVENTS

    names = list(st["unit_names"])
    nodes = np.asarray(st["location_node_id"])
    loc = {int(n): i for i, n in reversed(list(enumerate(nodes)))}
    served = set()
    for i, row in enumerate(doc.get("units", [])):
        at = _where("units", i, row, "unit")
        if not isinstance(row, dict) or row.get("unit") not in names:
            raise ScenarioError(f"{at}: no unit of that name; the scenario's units: {', '.join(names[:8])} ...")
        status, call = row.get("status"), row.get("call")
        if status not in UNIT_EVENTS:
            raise ScenarioError(f"{at}: status = {status!r}; expected one of {list(UNIT_EVENTS)}")
        if status in IDLE and call is not None:
            raise ScenarioError(f"{at}: {status} and serving call {call!r} at once; an idle unit has no call")
        if status in BUSY and call is None:
            raise ScenarioError(f"{at}: {status} with no call; a busy unit names the call it serves")
        u = st["units"][names.index(row["unit"])]
        prior = (UNIT_EVENTS[u["state"]], _prior_call(u))
        if status in BUSY:
            if call not in calls:
                raise ScenarioError(f"{at}: serves call {call!r}, which the calls list does not have")
            served.add(call)
            k = calls[call][2]
            if k < 0 or (status, f"c{k}") != prior:
                raise ScenarioError(f"{at}: {status} on call {call!r}; the twin has it {prior[0]}"
                                    f"{' on ' + prior[1] if prior[1] else ''}. This version takes a busy unit as the "
                                    f"twin has it (its status and call) and idle units anywhere")
            continue
        if status in ("returning", "relocating"):
            if prior[0] != status:
                raise ScenarioError(f"{at}: {status}; the twin has it {prior[0]} (this version takes a unit on its "
                                    f"way back as the twin has it)")
            continue
        node = row.get("node")
        if isinstance(node, bool) or not isinstance(node, int) or node not in loc:
            raise ScenarioError(f"{at}: node = {node!r} is not an emergency place of the scenario (a station, "
                                f"hospital or call location)")
        if u["serve"] is not None:
            raise ScenarioError(f"{at}: {status}; the twin has it {prior[0]} on {prior[1]} (this version does not "
                                f"free a unit from its call)")
        if (prior[0], int(nodes[u["location"]])) != (status, node) or u["move"] is not None:
            u.update(state=UNIT_EVENTS.index(status), location=loc[node], dest=loc[node], move=None, reloc=-1)
            report["units_moved"].append(row["unit"])
    for call, (i, row, _) in calls.items():
        if row["status"] == "assigned" and call not in served:
            raise ScenarioError(f"{_where('calls', i, row, 'call')}: assigned, but no unit in the units list serves it")


def _hospitals(doc, scenario, st, t, rng, report):
    names = list(st["hospital_names"])
    groups = scenario.groups["hospitals"]
    for i, row in enumerate(doc.get("hospitals", [])):
        at = _where("hospitals", i, row, "hospital")
        if not isinstance(row, dict) or row.get("hospital") not in names:
            raise ScenarioError(f"{at}: no hospital of that name; the scenario's: {', '.join(names)}")
        k = names.index(row["hospital"])
        h, g = st["hospitals"][k], groups[k]
        occ = _int(row, "ed_beds_occupied", at, h["occupied"])
        wait = _int(row, "ed_waiting", at, h["waiting"])
        if occ > g.beds:
            raise ScenarioError(f"{at}: {occ} patients in {g.beds} ED beds")
        if "in_service" in row:
            h["out_of_service"] = not bool(row["in_service"])
        if (occ, wait) == (h["occupied"], h["waiting"]):
            continue
        _beds(h, g, occ, wait, t, rng, at)
        report["hospitals_changed"].append(row["hospital"])


def _beds(h, g, occ, wait, t, rng, at):
    """ED beds ``occ`` taken and ``wait`` patients waiting: the twin's patients with the least stay
    left leave, extra patients (walk-ins) get a stay drawn from the ward's distribution."""
    live = h["live"]
    in_bed = sorted((x for x in live if x[5] == 1), key=lambda x: x[6])
    boarding = [x for x in live if x[5] == 2]                      # in an ED bed until a ward / ICU bed frees
    queue = sorted((x for x in live if x[5] == 0), key=lambda x: x[7])
    if occ < len(boarding):
        raise ScenarioError(f"{at}: {occ} ED beds taken; the twin has {len(boarding)} patients boarding in them for a "
                            f"ward or ICU bed")
    occ -= len(boarding)
    for x in in_bed[:max(len(in_bed) - occ, 0)]:                  # leave now
        h["admissions"][x[4]][3] = t
        live.remove(x)
    walk_ins = [x for x in queue if x[0] < 0]
    drop = len(queue) - wait
    if drop > len(walk_ins):
        raise ScenarioError(f"{at}: {wait} waiting; the twin has {len(queue) - len(walk_ins)} ambulance patients "
                            f"waiting there (their crews wait with them)")
    for x in walk_ins[len(walk_ins) - max(drop, 0):] if drop > 0 else []:
        h["admissions"][x[4]][3] = t
        live.remove(x)
    n_new = 0
    for phase, count in ((1, occ - len(in_bed)), (0, wait - len(queue))):
        for _ in range(max(count, 0)):
            u = float(rng.random())
            los = float(g.length_of_stay.ppf(u)) if phase == 1 else -1.0
            h["admissions"].append([-1, t, t if phase == 1 else math.nan, math.nan, False])
            entry = [t + los, _NORMAL, _ORDER + n_new] if phase == 1 else []
            live.append([-1, u, 3, los, len(h["admissions"]) - 1, phase, t + los if phase == 1 else math.nan,
                         0, *entry])
            n_new += 1
    users = sorted((x for x in live if x[5] >= 1), key=lambda x: (x[7], x[4]))
    waiting = sorted((x for x in live if x[5] == 0), key=lambda x: (x[7], x[4]))
    for pos, x in enumerate(users + waiting):                     # beds taken first, then the queue in order
        x[7] = pos
    h["occupied"], h["waiting"] = len(users), len(waiting)
    h["series"].append([t, len(users), len(waiting)])


def _new_calls(doc, scenario, st, t, calls, rng, report):
    """Calls the feed lists that the twin does not have join the dispatch queue (``waiting``)."""
    from twin.agents.calls import draw_call_table

    spec = scenario.plans["ems"].spec
    types = [c.name for c in spec.call_types]
    nodes = np.asarray(st["location_node_id"])
    zone_of = {int(nodes[z.location_idx]): k for k, z in enumerate(spec.zones)}
    d = st["dispatch"]
    for call, (i, row, k) in calls.items():
        if k >= 0:
            continue
        at = _where("calls", i, row, "call")
        if row["status"] != "waiting":
            raise ScenarioError(f"{at}: assigned, and the twin does not have this call (this version adds new calls "
                                f"as waiting)")
        if isinstance(row.get("node"), bool) or not isinstance(row.get("node"), int) or row["node"] not in zone_of:
            raise ScenarioError(f"{at}: node = {row.get('node')!r} is not a call location of the scenario")
        z, ty = zone_of[row["node"]], types.index(row["type"])
        table = draw_call_table(spec, [float(row["time_s"])], [z], [ty], {"dispatch": rng, "service": rng, "hospital": rng})
        table.location_idx = np.array([spec.zones[z].location_idx], dtype=np.int32)
        table.ready_s[:] = t
        c = len(st["calls_time_s"])
        for key, value in vars(table).items():
            if isinstance(value, np.ndarray):
                old = np.asarray(st[f"calls_{key}"])
                st[f"calls_{key}"] = np.concatenate([old, value.astype(old.dtype)])
        d["pending"].append([c, list(range(int(table.n_slots[0])))])
        heapq.heappush(d["queue"], [int(table.priority[0]), float(row["time_s"]), c])
        d["series"].append([t, len(d["queue"])])
        report["calls_added"].append(call)
        st["dispatch_now"] = True                 # idle units take the new calls when the run starts


def _link_fit(doc, scenario, seed, states):
    """Observed link speeds against the twin's: mean absolute error and links off by > 10 km/h."""
    rows = doc.get("links", [])
    if not rows:
        return {"links_compared": 0}
    twin = {}                  # (from, to) -> the speeds of the links between them (parallel links in order)
    for r in observed_state(scenario, seed, doc["time_s"], states)["links"]:
        twin.setdefault((r["from_node"], r["to_node"]), []).append(r["speed_kmh"])
    seen, diff = {}, []
    for i, row in enumerate(rows):
        key = (row.get("from_node"), row.get("to_node"))
        if key not in twin:
            raise ScenarioError(f"observed state links[{i}]: no link from node {key[0]!r} to node {key[1]!r}")
        k = seen[key] = seen.get(key, -1) + 1
        if k >= len(twin[key]):
            raise ScenarioError(f"observed state links[{i}]: {k + 1} links from node {key[0]!r} to node {key[1]!r}; "
                                f"the city has {len(twin[key])}")
        v = row.get("speed_kmh")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ScenarioError(f"observed state links[{i}]: speed_kmh = {v!r}; expected km/h >= 0")
        diff.append(abs(float(v) - twin[key][k]))
    diff = np.asarray(diff)
    return {"links_compared": len(diff), "link_speed_mae_kmh": float(diff.mean()),
            "links_off_10kmh": int((diff > 10.0).sum())}
