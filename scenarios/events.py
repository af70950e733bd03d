"""The network-events flow: ``[[events]]``, scripted changes to the links during a run.

Each table is one event, what ``twin traffic --events`` reads, now in any scenario::

    [[events]]
    time_s = 36000                 # 10:00
    action = "close"               # "close", "open", "capacity" or "speed"
    from_node = 5314007306         # every link from this node to the next (both ids external)
    to_node = 6874907011
    both_directions = true         # also the links back (default false)

    [[events]]
    time_s = 39600
    action = "capacity"
    from_node = 5314007306
    to_node = 6874907011
    capacity_veh_per_h = 600       # the links' new saturation flow

    [[events]]
    time_s = 43200
    action = "speed"
    from_node = 5314007306
    to_node = 6874907011
    free_speed_mps = 3.0           # the links' new free speed, for vehicles entering from then on

A closure takes the links out of the network from its time on: vehicles about to enter them
re-route, units drive around them, and a reopening lets everyone reconsider (the traffic
engine's event rules, :mod:`twin.traffic_engine`). Events need live traffic (a ``[traffic]``
table with demand, or the population's car legs): they act on the traffic flow through the
:class:`~twin.ports.LinkControl` port. ``twin run`` prints a line counting them, and the results
file gets ``/events/network_events``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import LinkControl, link_control
from twin.spec import Table, setting, where

__all__ = ["EventGroup", "NetworkEventsFlow"]

ACTIONS = ("close", "open", "capacity", "speed")


@dataclass(frozen=True)
class EventGroup:
    """``[[events]]``: a scripted change to the links between two nodes at a time."""

    name: str = setting("", "str", "event name (optional)")
    time_s: float = setting(0.0, "float", "when it happens, seconds from the start (< run.until_s)", minimum=0.0)
    action: str = setting("close", "choice", "what happens to the links", choices=ACTIONS)
    from_node: object = setting(None, "node", "city node id the links leave")
    to_node: object = setting(None, "node", "city node id the links reach")
    both_directions: bool = setting(False, "bool", "also the links from to_node back to from_node")
    capacity_veh_per_h: float | None = setting(None, "float", "new saturation flow of each link, vehicles/hour "
                                                              "(action = 'capacity' only)", minimum=0.0)
    free_speed_mps: float | None = setting(None, "float", "new free speed of each link, m/s, for vehicles entering "
                                                          "from then on (action = 'speed' only)", minimum=0.0)


def _links(city, a, b):
    return np.flatnonzero((np.asarray(city.link_from_idx) == a) & (np.asarray(city.link_to_idx) == b))


def plan_events(groups, city, source, until_s):
    """``[(time_s, action, link indices, capacity or None, group)]`` in time order (then file order),
    with located errors."""
    out = []
    for i, g in enumerate(groups):
        at = where(source, "events", i, g.name)
        if g.time_s >= until_s:
            raise ScenarioError(f"{at} time_s = {g.time_s:g}; expected a time before [run] until_s = {until_s:g}")
        a = scenario_node_index(city, g.from_node, at, "from_node")
        b = scenario_node_index(city, g.to_node, at, "to_node")
        links = _links(city, a, b)
        if g.both_directions:
            links = np.concatenate([links, _links(city, b, a)])
        if links.size == 0:
            raise ScenarioError(f"{at}: no link from node {g.from_node!r} to node {g.to_node!r}"
                                f"{' (either way)' if g.both_directions else ''} in city {city.name!r}")
        for action, key, what in (("capacity", "capacity_veh_per_h", "the new saturation flow, vehicles/hour"),
                                  ("speed", "free_speed_mps", "the new free speed, m/s")):
            value = getattr(g, key)
            if g.action == action and (value is None or not value > 0):
                raise ScenarioError(f"{at} {key} = {value!r}; action = {action!r} needs {what} > 0")
            if g.action != action and value is not None:
                raise ScenarioError(f"{at} {key} is given but action = {g.action!r}; it belongs to "
                                    f"action = {action!r} only")
        value = g.capacity_veh_per_h if g.action == "capacity" else g.free_speed_mps
        out.append((float(g.time_s), g.action, links, value, g))
    return sorted(out, key=lambda e: e[0])


class NetworkEventsFlow(Flow):
    """Scripted closures, reopenings and capacity changes of links during the run."""

    name = "events"
    tables = (Table("events", EventGroup, array=True,
                    required=(("from_node", "the city node id the links leave"),
                              ("to_node", "the city node id the links reach"))),)
    uses = (LinkControl,)
    checkpoints = True            # its events are scheduled into the traffic's state at the build

    def plan(self, ctx):
        return plan_events(ctx.groups["events"], ctx.city, ctx.source, ctx.groups["run"].until_s)

    def build(self, ctx):
        control = link_control(ctx, "events")
        for t, action, links, value, _ in ctx.plan(self):
            if action == "speed":
                control.schedule(t, action, links, free_speed_mps=value)
            else:
                control.schedule(t, action, links, capacity_veh_per_h=value)

    def finish(self, ctx):
        events = ctx.plan(self)
        city = ctx.city
        counts = {a: sum(1 for e in events if e[1] == a) for a in ACTIONS}
        labels = (("close", "closure"), ("open", "reopening"), ("capacity", "capacity change"),
                  ("speed", "speed change"))
        text = ", ".join(f"{counts[a]} {label}{'s' if counts[a] != 1 else ''}" for a, label in labels if counts[a])
        lines = [f"{'network events':<34} {text} on {len({int(k) for e in events for k in e[2]})} links"]
        rows = [(t, action, int(k), cap, g.name) for t, action, links, cap, g in events for k in links]

        def write(writer):
            ids = np.asarray(city.node_ids)
            li = np.array([r[2] for r in rows], dtype=np.int64)
            from_id, to_id = ids[np.asarray(city.link_from_idx)[li]], ids[np.asarray(city.link_to_idx)[li]]
            writer.write_table("/events/network_events", {
                "time_s": np.array([r[0] for r in rows], dtype=np.float64),
                "action": np.array([r[1] for r in rows]).astype(str),
                "link_idx": li.astype(np.int32),
                "from_node": from_id if from_id.dtype.kind in "iu" else from_id.astype(str),
                "to_node": to_id if to_id.dtype.kind in "iu" else to_id.astype(str),
                "capacity_veh_per_h": np.array([r[3] if r[1] == "capacity" else np.nan for r in rows], dtype=np.float64),
                "free_speed_mps": np.array([r[3] if r[1] == "speed" else np.nan for r in rows], dtype=np.float64),
                "name": np.array([r[4] for r in rows]).astype(str)},
                units={"time_s": "s", "action": "", "link_idx": "", "from_node": "", "to_node": "",
                       "capacity_veh_per_h": "veh/h", "free_speed_mps": "m/s", "name": ""})

        return FlowResult(self.name, kpis={"network_events": float(len(events))}, lines=lines, write=write)
