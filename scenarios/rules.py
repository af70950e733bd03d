"""The rules flow: ``[[rules]]``, the joint-governance scenes an operations hub scripts.

A rule watches the simulated state and acts when its condition starts to hold::

    [[rules]]
    name = "north-ed full: divert"
    when = "hospital north-ed occupancy >= 0.9"
    then = ["divert hospital north-ed"]
    until = "hospital north-ed occupancy < 0.7"     # optional: the actions are undone then
    once = false                                     # fire again after an undo (default true)
    check_every_s = 60                               # how often it looks (default 60 s)

``when`` and ``until`` are conditions: terms joined by ``and`` and ``or`` (``and`` binds
tighter; no parentheses), each comparing a state variable with a number (``>=``, ``>``,
``<=``, ``<``, ``==``):

==========================================================  =====================================
``time >= 08:00`` (or seconds, ``time >= 28800``)            the clock
``hospital <name> occupancy >= 0.9``                         ED beds occupied / ED beds (0..1)
``hospital <name> waiting >= 3``                             patients waiting for an ED bed
``calls <call type | any> in <district | any> per_hour >= 5``  calls received in the last 60 min
``link <from node> <to node> vehicles >= 40``                vehicles on the link(s) now
``link <from node> <to node> queue >= 20``                   of them, those queued (waiting to leave)
``flood <node> depth_mm >= 300``                             water depth at a node, mm
==========================================================  =====================================

``then`` lists actions, done in that order: ``close link <from> <to>`` / ``open link <from>
<to>`` (every link between the two nodes), ``divert hospital <name>`` / ``undivert hospital
<name>`` (no new ambulance patients while another hospital is open; undivert hands the
hospital back to its own diversion rule), ``close hospital <name>`` / ``open hospital <name>``
(out of service: its ED patients move, see :class:`~twin.ports.FacilityControl`), ``close
station <name>`` / ``open station <name>``, ``add beds <n> hospital <name>`` / ``remove beds
<n> hospital <name>`` (surge ED beds: waiting patients take them at once; removing takes back
surge beds only, each as its patient leaves), ``move unit <unit> to station <name>`` /
``return unit <unit>`` (a unit's home station: idle, it drives there at once, busy, after its
call; units are named ``<station>-1`` ..., ``<station>-<kind>-1`` ...), ``post <kind> at node
<id>`` (the nearest idle unit of that kind, e.g. a police car controlling traffic at a
junction, drives there and stays out of dispatch; undone: ``recall``, it is free again and
drives home; none idle: nothing is sent, the log says so), ``capacity link <from> <to>
<veh/h>`` (the links' capacity, e.g. raised while police direct the junction; undone:
``restore``, the city's own capacity), ``warn evacuation`` (gives the ``[evacuation]`` order
now, when its ``order = "rule"``: see :mod:`twin.scenarios.evacuation`; it cannot be undone,
so a rule with it has no ``until``, and a second firing does nothing). With ``until``, the
inverse actions are done, in reverse order, when it holds after a firing.

The text is parsed when the scenario loads, by a tokenizer and a fixed grammar (never
``eval``): a syntax error, an unknown variable, hospital, station, call type, district or
node is an error naming the rule and the word. Rules are checked at multiples of their
``check_every_s`` (rule order at the same time), so a rule whose trigger does not depend on
chance fires at the same time for every seed; one that never holds never fires. Every action
done is a row of ``/events/rules``.
"""

from __future__ import annotations

import math
import operator
import shlex
from collections import deque
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import (CallIntake, CallPlan, EvacuationOrder, Exposure, FacilityControl, FloodedSites, LinkControl,
                        link_control)
from twin.spec import Table, setting, where

__all__ = ["RuleGroup", "RulesFlow", "parse_condition", "parse_action"]

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
INVERSE = {"close": "open", "open": "close", "divert": "undivert", "undivert": "divert", "add": "remove",
           "remove": "add", "move": "return", "return": "move", "post": "recall", "recall": "post",
           "capacity": "restore", "restore": "capacity", "warn": None}
HOUR_S = 3600.0


@dataclass(frozen=True)
class RuleGroup:
    """``[[rules]]``: a condition on the simulated state and the actions it triggers."""

    name: str = setting("", "str", "rule name")
    when: str = setting("", "str", "condition that fires the rule: terms joined by 'and' / 'or' (see "
                                   "twin.scenarios.rules)")
    then: tuple = setting((), "ids", "actions, in order: 'close link A B', 'divert hospital H', 'close station S', "
                                     "'add beds 4 hospital H', 'move unit U to station S', 'post police at node N', "
                                     "'capacity link A B 2400', 'warn evacuation' ...")
    until: str = setting("", "str", "condition that undoes the actions (inverse actions, reverse order); omit: "
                                    "never undone")
    once: bool = setting(True, "bool", "fire once; false: fire again when 'when' holds after an undo")
    check_every_s: float = setting(60.0, "float", "how often the rule looks at the state, seconds", minimum=1.0,
                                   maximum=86_400.0)


@dataclass(frozen=True)
class Term:
    """One comparison: ``subject`` (``time``, ``hospital``, ``calls``, ``link``, ``flood``), its
    arguments (indices), the variable, the operator and the threshold."""

    subject: str
    args: tuple
    variable: str
    op: str
    value: float
    text: str


def _number(word, at):
    try:
        if ":" in word:
            h, m = word.split(":")
            return int(h) * HOUR_S + int(m) * 60.0
        x = float(word)
    except ValueError:
        raise ScenarioError(f"{at}: {word!r} is not a number (or a time HH:MM)") from None
    if not math.isfinite(x):
        raise ScenarioError(f"{at}: {word!r} is not a finite number")
    return x


def _words(text, at):
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ScenarioError(f"{at}: {exc} in {text!r}") from None


GRAMMAR = ("time <op> <s or HH:MM>; hospital <name> occupancy|waiting <op> <n>; calls <type|any> in <district|any> "
           "per_hour <op> <n>; link <from node> <to node> vehicles|queue <op> <n>; flood <node> depth_mm <op> <mm>")


def parse_condition(text, at, names) -> tuple:
    """Condition ``text`` as alternatives (``or``) of :class:`Term` s (``and``, which binds
    tighter): a tuple of tuples. ``names`` resolves hospitals, call types, districts and nodes
    (see :func:`_resolvers`); a located ScenarioError otherwise."""
    words = _words(text, at)
    if not words:
        raise ScenarioError(f"{at}: an empty condition; expected terms joined by 'and' / 'or': {GRAMMAR}")
    alternatives, terms, term, k = [], [], [], 0
    for w in words + ["or"]:
        if w not in ("and", "or"):
            term.append(w)
            continue
        k += 1
        if not term:
            raise ScenarioError(f"{at}: term {k} is empty ('and' / 'or' twice, or at an end)")
        terms.append(_term(term, f"{at} term {k} ({' '.join(term)!r})", names))
        term = []
        if w == "or":
            alternatives.append(tuple(terms))
            terms = []
    return tuple(alternatives)


def _term(w, at, names):
    shapes = {"time": 3, "hospital": 5, "calls": 7, "link": 6, "flood": 5}
    subject = w[0]
    if subject not in shapes:
        raise ScenarioError(f"{at}: unknown state {subject!r}; expected one of {', '.join(shapes)}: {GRAMMAR}")
    if len(w) != shapes[subject]:
        raise ScenarioError(f"{at}: expected {shapes[subject]} words for {subject!r}; the forms are: {GRAMMAR}")
    op, value = w[-2], w[-1]
    if op not in OPS:
        raise ScenarioError(f"{at}: {op!r} is not a comparison; expected one of {', '.join(OPS)}")
    x = _number(value, at)
    text = " ".join(w)
    if subject == "time":
        return Term("time", (), "time", op, x, text)
    if subject == "hospital":
        if w[2] not in ("occupancy", "waiting"):
            raise ScenarioError(f"{at}: unknown hospital variable {w[2]!r}; expected occupancy or waiting")
        return Term("hospital", (names["hospital"](w[1], at),), w[2], op, x, text)
    if subject == "calls":
        if w[2] != "in" or w[4] != "per_hour":
            raise ScenarioError(f"{at}: expected 'calls <type|any> in <district|any> per_hour <op> <n>'")
        t = -1 if w[1] == "any" else names["call_type"](w[1], at)
        d = -1 if w[3] == "any" else names["district"](w[3], at)
        return Term("calls", (t, d), "per_hour", op, x, text)
    if subject == "link":
        if w[3] not in ("vehicles", "queue"):
            raise ScenarioError(f"{at}: unknown link variable {w[3]!r}; expected vehicles or queue")
        return Term("link", (names["links"](w[1], w[2], at),), w[3], op, x, text)
    if w[2] != "depth_mm":
        raise ScenarioError(f"{at}: unknown flood variable {w[2]!r}; expected depth_mm")
    return Term("flood", (names["node"](w[1], at),), "depth_mm", op, x, text)


def parse_action(text, at, names) -> tuple:
    """``(verb, kind, target, text)`` of an action (``target``: link indices, or a facility index)."""
    w = _words(text, at)
    forms = ("close|open link <from> <to>; divert|undivert hospital <name>; close|open hospital|station <name>; "
             "add|remove beds <n> hospital <name>; move unit <unit> to station <name>; return unit <unit>; "
             "post <kind> at node <id>; capacity link <from> <to> <veh/h>; warn evacuation")
    if len(w) < 2 or w[0] not in INVERSE:
        raise ScenarioError(f"{at}: {text!r} is not an action; expected {forms}")
    verb, kind = w[0], w[1]
    if kind == "beds" and verb in ("add", "remove") and len(w) == 5 and w[3] == "hospital":
        n = _number(w[2], at)
        if n != int(n) or not 1 <= n <= 100_000:
            raise ScenarioError(f"{at}: {w[2]!r} beds; expected a whole number from 1 to 100,000")
        return verb, "beds", (names["hospital"](w[4], at), int(n)), " ".join(w)
    if kind == "unit" and verb == "move" and len(w) == 6 and w[3] == "to" and w[4] == "station":
        return verb, "unit", (names["unit"](w[2], at), names["station"](w[5], at)), " ".join(w)
    if kind == "unit" and verb == "return" and len(w) == 3:
        return verb, "unit", (names["unit"](w[2], at), None), " ".join(w)
    if verb == "post" and len(w) == 5 and w[2] == "at" and w[3] == "node":
        if kind not in ("police", "fire", "als", "bls"):
            raise ScenarioError(f"{at}: 'post {kind}': expected a unit kind (police, fire, als, bls)")
        return verb, "post", (kind, names["node"](w[4], at)), " ".join(w)
    if verb == "capacity" and kind == "link" and len(w) == 5:
        cap = _number(w[4], at)
        if not 0 < cap <= 1e6:
            raise ScenarioError(f"{at}: capacity {w[4]!r} veh/h; expected a number in (0, 1e6]")
        return verb, "capacity", (names["links"](w[2], w[3], at), cap), " ".join(w)
    if verb == "warn" and kind == "evacuation" and len(w) == 2:
        names["evacuation"](at)
        return verb, "evacuation", None, " ".join(w)
    if kind == "link" and verb in ("close", "open") and len(w) == 4:
        return verb, "link", names["links"](w[2], w[3], at), " ".join(w)
    if kind == "hospital" and len(w) == 3:
        return verb, "hospital", names["hospital"](w[2], at), " ".join(w)
    if kind == "station" and verb in ("close", "open") and len(w) == 3:
        return verb, "station", names["station"](w[2], at), " ".join(w)
    raise ScenarioError(f"{at}: {text!r} is not an action; expected {forms}")


def _resolvers(ctx, plan):
    """Name lookups for the parser, each a located ScenarioError when the name is unknown."""
    city = ctx.city

    def facility(kind):
        def find(name, at):
            if plan is None:
                raise ScenarioError(f"{at}: {kind} {name!r}: this scenario has no emergency service "
                                    f"([[stations]], [[hospitals]])")
            return plan.site_index(kind, name, at)
        return find

    def call_type(name, at):
        if plan is None:
            raise ScenarioError(f"{at}: call type {name!r}: this scenario has no emergency service")
        return plan.call_type_index(name, at)

    zones = [str(z) for z in city.zone_ids] if city.n_zones else []

    def district(name, at):
        if name not in zones:
            raise ScenarioError(f"{at}: unknown district {name!r}; city {city.name!r} has "
                                f"{', '.join(zones) if zones else 'no districts'}")
        return zones.index(name)

    def node(name, at):
        return scenario_node_index(city, name, at, "node")

    def links(a, b, at):
        i, j = node(a, at), node(b, at)
        k = np.flatnonzero((np.asarray(city.link_from_idx) == i) & (np.asarray(city.link_to_idx) == j))
        if k.size == 0:
            raise ScenarioError(f"{at}: no link from node {a!r} to node {b!r} in city {city.name!r}")
        return tuple(int(x) for x in k)

    def evacuation(at):
        if not ctx.has(EvacuationOrder):
            raise ScenarioError(f"{at}: 'warn evacuation' gives the [evacuation] order, and this scenario has no "
                                f"evacuation whose order a rule gives: add [evacuation] with order = \"rule\"")

    return {"hospital": facility("hospital"), "station": facility("station"), "unit": facility("unit"),
            "call_type": call_type, "evacuation": evacuation,
            "district": district, "node": node, "links": links}


def plan_rules(ctx):
    """Each rule parsed: ``(group, when terms, until terms or (), actions)``, and the floods
    (the plan-time :class:`~twin.ports.FloodedSites`, or None) the flood terms read."""
    plan = ctx.port(CallPlan)
    names = _resolvers(ctx, plan)
    out = []
    for i, g in enumerate(ctx.groups["rules"]):
        at = where(ctx.source, "rules", i, g.name)
        when = parse_condition(g.when, f"{at} when", names)
        until = parse_condition(g.until, f"{at} until", names) if g.until.strip() else ()
        if not g.then:
            raise ScenarioError(f"{at} then: no actions; expected a list such as ['divert hospital <name>']")
        actions = tuple(parse_action(str(a), f"{at} then[{k}]", names) for k, a in enumerate(g.then))
        if until and any(a[1] == "evacuation" for a in actions):
            raise ScenarioError(f"{at} until: 'warn evacuation' cannot be undone (those who left do not come back "
                                f"by rule); drop until, or put the warning in a rule of its own")
        posts = [a[2][1] for a in actions if a[1] == "post"]
        if posts and plan is None:
            raise ScenarioError(f"{at} then: 'post' sends a unit, and this scenario has no emergency service "
                                f"([[stations]])")
        if posts:
            plan.add_places(posts)       # (the node is then a place units can be sent to)
        out.append((g, when, until, actions))
    return tuple(out), ctx.port(FloodedSites)


class RulesFlow(Flow):
    """Rules on the simulated state: conditions checked on the clock, actions through ports."""

    name = "rules"
    tables = (Table("rules", RuleGroup, array=True, required=(("when", "the condition that fires it"),
                                                                ("then", "its actions"))),)
    uses = (CallPlan, CallIntake, FacilityControl, LinkControl, Exposure, FloodedSites, EvacuationOrder)
    result_names = ("rules",)
    checkpoints = True

    def plan(self, ctx):
        return plan_rules(ctx)

    def build(self, ctx):
        rules, flooded = ctx.plan(self)
        self.rules, self.clock, self.until_s = rules, ctx.clock, float(ctx.until_s)
        subjects = {t.subject for _, when, until, _ in rules for alt in when + until for t in alt}
        kinds = {a[1] for *_, actions in rules for a in actions}
        first = {}
        for i, (g, when, until, actions) in enumerate(rules):
            for x in [t.subject for alt in when + until for t in alt] + [a[1] for a in actions]:
                first.setdefault(x, where(ctx.scenario.source, "rules", i, g.name))
        self.links = link_control(ctx, "rules") if kinds & {"link", "capacity"} else None
        self.city = ctx.city
        self.posted = {}                  # (rule, action) -> the units its posts sent, in order
        self.facilities = ctx.port(FacilityControl)
        self.order = ctx.port(EvacuationOrder)
        self.exposure = ctx.port(Exposure) if "link" in subjects else None
        if "link" in subjects and self.exposure is None:
            raise ScenarioError(f"{first['link']}: 'link ... vehicles' reads the traffic, and this scenario has no "
                                f"traffic: add a [traffic] table with random_trips or trips")
        self.flooded = flooded if "flood" in subjects else None
        if "flood" in subjects and self.flooded is None:
            raise ScenarioError(f"{first['flood']}: 'flood ... depth_mm' reads the floods, and this scenario has "
                                f"none: add a [[hazards]] flood")
        self.intake = ctx.port(CallIntake) if "calls" in subjects else None
        self.recent = deque()             # (time s, call type, district) of the calls of the last hour
        self.fired = [0] * len(rules)     # firings of each rule
        self.on = [False] * len(rules)    # fired and not undone
        self.waits = [None] * len(rules)  # the clock event each rule's process waits on
        self.log = []                     # [time_s, rule index, "do" | "undo", action text]

    def start(self, ctx):
        if self.intake is not None:
            self.intake.on_call(self._heard)
        for i in range(len(self.rules)):
            self.clock.process(self._watch(i))

    def _heard(self, call_idx, time_s, priority):
        t, d = self.intake.describe(call_idx)
        if t >= 0:                        # (not an inter-hospital transfer)
            self.recent.append((float(time_s), int(t), int(d)))

    # ---- the state read
    def _value(self, term, now):
        s = term.subject
        if s == "time":
            return now
        if s == "hospital":
            return self.facilities.status("hospital", term.args[0])[term.variable]
        if s == "calls":
            while self.recent and self.recent[0][0] <= now - HOUR_S:
                self.recent.popleft()
            t, d = term.args
            return float(sum(1 for _, ct, cd in self.recent if (t < 0 or ct == t) and (d < 0 or cd == d)))
        if s == "link":
            on = self.exposure.vehicles_on_links() if term.variable == "vehicles" else self.exposure.queued_on_links()
            return float(on[list(term.args[0])].sum())
        return float(self.flooded.depth_mm(term.args[0], now))

    def _holds(self, alternatives, now):
        return any(all(OPS[t.op](self._value(t, now), t.value) for t in terms) for terms in alternatives)

    def _watch(self, i, wait=None):
        g, when, until, actions = self.rules[i]
        env, step = self.clock, float(g.check_every_s)
        if wait is None:                                  # the first check: the next multiple of the step
            wait = env.timeout(math.ceil(env.now / step) * step - env.now)
        while True:
            self.waits[i] = wait
            yield wait
            now = env.now
            if now >= self.until_s:
                self.waits[i] = None
                return
            if not self.on[i] and (not g.once or self.fired[i] == 0) and self._holds(when, now):
                self.fired[i] += 1
                self.on[i] = True
                for a in actions:
                    self._do(i, a, a[0], "do")
            elif self.on[i] and until and self._holds(until, now):
                self.on[i] = False
                for a in reversed(actions):
                    self._do(i, a, INVERSE[a[0]], "undo")
            wait = env.timeout(step)

    def _do(self, i, action, verb, how):
        _, kind, target, text = action
        now = self.clock.now
        words = f"{verb} {' '.join(text.split()[1:])}"
        if kind == "link":
            self.links.schedule(now, verb, np.asarray(target, dtype=np.int64))
        elif kind == "beds":
            self.facilities.add_beds(target[0], target[1] if verb == "add" else -target[1])
        elif kind == "post":
            sent = self.posted.setdefault((i, self.rules[i][3].index(action)), [])
            if verb == "post":
                unit = self.facilities.post(*target)
                sent.append(unit)
                words += f" ({self.facilities.unit_name(unit)})" if unit >= 0 else " (none idle)"
            else:
                unit = sent.pop() if sent else -1
                if unit >= 0:
                    self.facilities.recall(unit)
                words = f"recall {target[0]} from node {text.split()[4]}" + (
                    f" ({self.facilities.unit_name(unit)})" if unit >= 0 else "")
        elif kind == "capacity":
            links = np.asarray(target[0], dtype=np.int64)
            if verb == "capacity":
                self.links.schedule(now, "capacity", links, capacity_veh_per_h=target[1])
            else:
                for k in links:
                    self.links.schedule(now, "capacity", [k], capacity_veh_per_h=float(self.city.capacity_veh_per_h[k]))
                words = f"restore link {' '.join(text.split()[2:4])}"
        elif kind == "unit":
            self.facilities.restation(target[0], target[1] if verb == "move" else None)
            words = f"{verb} unit {text.split()[2]}" + (f" to station {text.split()[5]}" if verb == "move" else "")
        elif kind == "evacuation":
            if not self.order.issue():
                words += " (given before)"
        elif verb in ("divert", "undivert"):
            self.facilities.divert(target, True if verb == "divert" else None)
        else:
            self.facilities.set_in_service(kind, target, verb == "open")
        self.log.append([now, i, how, words])

    # ---- checkpoints
    def snapshot(self, ctx):
        return {"fired": list(self.fired), "on": list(self.on), "log": [list(r) for r in self.log],
                "posted": [[i, k, list(u)] for (i, k), u in sorted(self.posted.items())],
                "recent": [list(r) for r in self.recent],
                "waits": [ctx.pending(w) if w is not None else None for w in self.waits]}

    def restore(self, ctx, state, time_s):
        self.fired = [int(x) for x in state["fired"]]
        self.on = [bool(x) for x in state["on"]]
        self.log = [[float(t), int(i), str(h), str(a)] for t, i, h, a in state["log"]]
        self.recent = deque((float(t), int(c), int(d)) for t, c, d in state["recent"])
        self.posted = {(int(i), int(k)): [int(x) for x in u] for i, k, u in state.get("posted", [])}
        if self.intake is not None:
            self.intake.on_call(self._heard)
        for i, entry in enumerate(state["waits"]):
            if entry is not None:
                self.clock.process(self._watch(i, ctx.wakeup(entry)))

    # ---- results
    def finish(self, ctx):
        rules, log = self.rules, self.log

        def clock(t):
            return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"

        lines = []
        for i, (g, *_) in enumerate(rules):
            times = sorted({r[0] for r in log if r[1] == i and r[2] == "do"})
            undone = sorted({r[0] for r in log if r[1] == i and r[2] == "undo"})
            label = f"rule {g.name or i + 1}"
            what = (f"fired at {', '.join(clock(t) for t in times)}" if times else "never fired")
            if undone:
                what += f"; undone at {', '.join(clock(t) for t in undone)}"
            lines.append(f"{label[:33]:<34} {what}")
        import pandas as pd

        names = [g.name or f"rule {i + 1}" for i, (g, *_) in enumerate(rules)]
        table = pd.DataFrame({"time_s": np.array([r[0] for r in log], dtype=np.float64),
                              "rule_idx": np.array([r[1] for r in log], dtype=np.int32),
                              "rule": [names[r[1]] for r in log], "how": [r[2] for r in log],
                              "action": [r[3] for r in log]})

        def write(writer):
            writer.write_table("/events/rules", {
                "time_s": table["time_s"].to_numpy(), "rule_idx": table["rule_idx"].to_numpy(),
                **{k: table[k].to_numpy(dtype=object).astype(str) for k in ("rule", "how", "action")}},
                units={"time_s": "s", "rule_idx": "", "rule": "", "how": "", "action": ""})

        kpis = {"rules_fired": float(sum(self.fired)), "rule_actions": float(len(log))}
        return FlowResult(self.name, kpis=kpis, values={"rules": table}, lines=lines, write=write)
