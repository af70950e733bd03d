"""The relief flow: ``[relief]`` and ``[[depots]]``, trucks carry relief items from depots to
the shelters through the live, damaged network.

::

    [relief]
    demand_per_person_day = { water_l = 15.0, food_kg = 0.6 }   # each sheltered person's need a day
    unit_mass_kg = { water_l = 1.0 }      # kg per unit of an item (omitted items: 1 kg)
    truck_capacity_kg = 10000
    start_s = 36000                       # relief operations start (10:00)
    review_s = 600                        # the dispatcher reviews the needs every 10 min
    cover_s = 86400                       # a shelter should hold a day's supply
    min_load_kg = 2000                    # a truck leaves with at least this much ...
    load_s = 1800                         # ... loaded in 30 min, unloaded in 30 min
    unload_s = 1800

    [[depots]]
    name = "warehouse"
    node = 5014290910
    trucks = 4
    stock = { water_l = 400000, food_kg = 20000 }   # units of each item

Item names are free; put the unit in the name (``water_l``, ``food_kg``, ``blankets``). The
shelters and the persons in them come from the evacuation flow (ports
:class:`~twin.ports.ShelterSites`, :class:`~twin.ports.ShelterOccupancy`); trucks are ordinary
vehicles of the traffic model (port :class:`~twin.ports.LiveTravel`, ``fleet``): they queue,
drive around closures on live link times, and wait where they are when no route is open.

The model, at the fidelity of a planning study:

* **Consumption**: each shelter's occupants draw ``demand_per_person_day`` of every item,
  continuously (exactly: the occupancy integrated over time, person-seconds). What a shelter
  holds is consumed first; the rest of the demand is *unmet* (units short, cumulative).
* **Need**: at a review, a shelter's *target* of an item is its occupants × the daily need ×
  ``cover_s`` / 1 day; its *shortfall* is the target less what it holds and what is on the way.
* **Dispatch rule** (largest unmet need first, nearest depot with stock): while a depot has an
  idle truck, take the (shelter, item) with the largest shortfall in person-days (shortfall /
  daily need per person) among shelters that *qualify* — whose shortfall over all items weighs
  at least ``min_load_kg``, or that hold (with what is on the way) less than half the target of
  an item — and send the idle truck of the depot with stock of the item nearest to the shelter
  by live truck travel time. It loads that item (up to the shortfall, the stock and its
  capacity), then fills up with the shelter's other short items in the same order.
* **A trip**: loading ``load_s``, the drive, unloading ``unload_s`` (the items count as delivered
  once unloaded), the drive back; then the truck is idle at its depot.

Every unit of stock is, at any time, at a depot, on a truck, or delivered (held at a shelter or
consumed): ``conservation()`` returns the four totals. KPIs: deliveries, the mean and 90th
percentile time from dispatch to delivery, units short and the share of demand met per item,
stock left per item. The results file gets ``/events/relief_deliveries``, ``/network/relief_depots``
and ``/timeseries/relief_shelters/*`` (occupancy, held and unmet units per shelter at each
review) and ``/timeseries/relief_depots/*`` (stock at each review). Not modelled: trucks of
several sizes, depots restocked during the run, shelters sharing supplies, a foreseen
occupancy (the dispatcher sees who has arrived, not who is on the way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import LiveTravel, ShelterOccupancy, ShelterSites
from twin.spec import Table, setting, where

__all__ = ["ReliefGroup", "DepotGroup", "ReliefFlow", "ReliefPlan"]

DAY_S = 86400.0


@dataclass(frozen=True)
class ReliefGroup:
    """``[relief]``: what sheltered people need, and how the trucks are dispatched."""

    demand_per_person_day: dict | None = setting(None, "table", "item -> units each sheltered person needs a day")
    unit_mass_kg: dict | None = setting(None, "table", "item -> kg per unit (omitted items: 1 kg)")
    truck_capacity_kg: float = setting(10000.0, "float", "what a truck carries, kg", minimum=0.0, strict=True)
    start_s: float = setting(0.0, "float", "when relief operations start, seconds from the start", minimum=0.0)
    review_s: float = setting(600.0, "float", "how often the dispatcher reviews the needs, seconds", minimum=0.0,
                              strict=True)
    cover_s: float = setting(DAY_S, "float", "the supply a shelter should hold, seconds of its occupants' need",
                             minimum=0.0, strict=True)
    min_load_kg: float = setting(2000.0, "float", "a truck leaves when a shelter's shortfall weighs this much (or "
                                                  "it holds under half its target of an item), kg", minimum=0.0)
    load_s: float = setting(1800.0, "float", "loading a truck at the depot, seconds", minimum=0.0)
    unload_s: float = setting(1800.0, "float", "unloading at the shelter, seconds", minimum=0.0)


@dataclass(frozen=True)
class DepotGroup:
    """``[[depots]]``: a warehouse with trucks and stock."""

    name: str = setting("", "str", "depot name")
    node: object = setting(None, "node", "city node id")
    trucks: int = setting(2, "int", "trucks based here", minimum=0)
    stock: dict | None = setting(None, "table", "item -> units in stock at the start")


@dataclass(frozen=True)
class ReliefPlan:
    """Items (names, need per person per day, kg per unit), depots (names, node indices,
    trucks, stock (depot × item)) and the shelters (names, node indices)."""

    group: ReliefGroup
    items: tuple
    need_per_day: object
    mass_kg: object
    depots: tuple
    depot_node: object
    trucks: object
    stock: object
    shelters: tuple
    shelter_node: object


def plan_relief(ctx):
    """Check ``[relief]`` and ``[[depots]]`` against the city and the shelters."""
    g, depots, source = ctx.groups.get("relief"), ctx.groups.get("depots") or [], ctx.source
    at = where(source, "relief")
    if g is None:
        raise ScenarioError(f"{where(source, 'depots')}: depots supply shelters under a [relief] table; add "
                            f"[relief] with demand_per_person_day")
    if not g.demand_per_person_day:
        raise ScenarioError(f"{at}: demand_per_person_day is missing; give item -> units a sheltered person needs "
                            f"a day, e.g. {{ water_l = 15.0, food_kg = 0.6 }}")
    items = tuple(g.demand_per_person_day)
    sites = ctx.port(ShelterSites)
    if sites is None:
        raise ScenarioError(f"{at}: relief goes to shelters, and this scenario has none: add [evacuation] and "
                            f"[[shelters]]")
    if not depots:
        raise ScenarioError(f"{at}: no [[depots]]; give at least one depot (node, trucks, stock)")
    mass = dict.fromkeys(items, 1.0)
    for k, v in (g.unit_mass_kg or {}).items():
        if k not in mass:
            raise ScenarioError(f"{at} unit_mass_kg: item {k!r} is not in demand_per_person_day; items: "
                                f"{', '.join(items)}")
        if v <= 0 or v > g.truck_capacity_kg:
            raise ScenarioError(f"{at} unit_mass_kg.{k} = {v:g}; expected a mass > 0 and at most truck_capacity_kg "
                                f"({g.truck_capacity_kg:g} kg)")
        mass[k] = v
    stock = np.zeros((len(depots), len(items)))
    for d, dep in enumerate(depots):
        for k, v in (dep.stock or {}).items():
            if k not in items:
                raise ScenarioError(f"{where(source, 'depots', d, dep.name)} stock: item {k!r} is not in [relief] "
                                    f"demand_per_person_day; items: {', '.join(items)}")
            stock[d, items.index(k)] = v
    nodes = np.array([scenario_node_index(ctx.city, dep.node, where(source, "depots", d, dep.name))
                      for d, dep in enumerate(depots)], dtype=np.int64)
    return ReliefPlan(g, items, np.array([g.demand_per_person_day[k] for k in items]),
                      np.array([mass[k] for k in items]), tuple(d.name for d in depots), nodes,
                      np.array([d.trucks for d in depots], dtype=np.int64), stock, tuple(sites.names),
                      np.asarray(sites.node_idx, dtype=np.int64))


class ReliefOperation:
    """The run's relief state and processes (see the module docstring).

    Arrays are shelter × item (``held``, ``unmet``, ``consumed``, ``delivered``, ``on_way``)
    and depot × item (``stock``), in units of each item.
    """

    def __init__(self, plan, occupancy, fleet, env, until_s):
        self.plan, self.occ, self.fleet, self.env, self.until_s = plan, occupancy, fleet, env, float(until_s)
        n_s, n_k = len(plan.shelters), len(plan.items)
        self.held, self.unmet, self.consumed, self.delivered, self.on_way = (np.zeros((n_s, n_k)) for _ in range(5))
        self.stock = plan.stock.astype(np.float64).copy()
        self.idle = plan.trucks.copy()
        self.ps_last = np.zeros(n_s)
        self.deliveries = []          # (depot, shelter, dispatch_s, arrive_s, delivered_s, amounts)
        self.trips = []               # the trips under way (_Trip)
        self.series = []              # (time_s, occupancy, held, unmet, stock)

    # ------------------------------------------------------------------ accounts
    def settle(self, now_s):
        """Consumption up to ``now_s`` (at most the horizon): held stock first, the rest unmet."""
        ps = self.occ.person_seconds(min(now_s, self.until_s))
        demand = np.maximum(ps - self.ps_last, 0.0)[:, None] * (self.plan.need_per_day / DAY_S)[None, :]
        self.ps_last = np.maximum(ps, self.ps_last)
        take = np.minimum(self.held, demand)
        self.held -= take
        self.consumed += take
        self.unmet += demand - take

    def conservation(self):
        """Units of each item at depots, on trucks, held at shelters and consumed (their sum is
        the initial stock)."""
        return {"depots": self.stock.sum(axis=0), "on_trucks": self.on_way.sum(axis=0),
                "held": self.held.sum(axis=0), "consumed": self.consumed.sum(axis=0)}

    # ------------------------------------------------------------------ processes
    def review(self, wait=None):
        """The dispatcher: settle, record and dispatch every ``review_s`` up to the horizon
        (restored from a checkpoint: after ``wait``, its next review)."""
        g, env = self.plan.group, self.env
        if wait is not None:
            yield wait
        elif g.start_s > env.now:
            yield env.timeout(g.start_s - env.now)
        while True:
            self.settle(env.now)
            self.series.append((env.now, self.occ.persons(env.now), self.held.copy(), self.unmet.copy(),
                                self.stock.copy()))
            if env.now >= self.until_s:
                return
            self.dispatch(env.now)
            yield env.timeout(min(g.review_s, self.until_s - env.now))

    def dispatch(self, now_s):
        """Send idle trucks by the rule of the module docstring."""
        p, g = self.plan, self.plan.group
        target = self.occ.persons(now_s)[:, None] * p.need_per_day[None, :] * (g.cover_s / DAY_S)
        blocked = np.zeros(target.shape, dtype=bool)
        n_d = len(p.depots)
        while self.idle.any():
            short = target - self.held - self.on_way
            days = np.where(short > 1e-9, short / np.where(p.need_per_day > 0, p.need_per_day, np.inf), 0.0)
            qualifies = ((np.maximum(short, 0.0) * p.mass_kg).sum(axis=1) >= max(g.min_load_kg, 1e-9)) | \
                        ((self.held + self.on_way < 0.5 * target - 1e-9).any(axis=1))
            days[~qualifies] = 0.0
            days[blocked] = 0.0
            if not (days > 0).any():
                return
            s, k = np.unravel_index(int(np.argmax(days)), days.shape)
            ok = np.flatnonzero((self.idle > 0) & (self.stock[:, k] > 1e-9))
            t = np.array([self.fleet.time_s(int(d), n_d + int(s)) for d in ok])
            if not len(ok) or not np.isfinite(t).any():
                blocked[s, k] = True
                continue
            d = int(ok[int(np.argmin(t))])
            load = self._load(d, s, k, short, days)
            self.stock[d] -= load
            self.on_way[s] += load
            self.idle[d] -= 1
            self.start_trip(_Trip(d, int(s), load, now_s))

    def _load(self, d, s, k, short, days):
        """Units of each item a truck from depot ``d`` takes to shelter ``s``: item ``k`` first,
        then the shelter's other short items by shortfall in person-days."""
        p = self.plan
        load, room = np.zeros(len(p.items)), p.group.truck_capacity_kg
        for j in [k] + [int(j) for j in np.argsort(-days[s], kind="stable") if j != k and days[s, j] > 0]:
            units = min(short[s, j], self.stock[d, j], room / p.mass_kg[j])
            if units > 0:
                load[j] = units
                room -= units * p.mass_kg[j]
        return load

    def start_trip(self, rec, wait=None):
        self.trips.append(rec)
        rec.proc = self.env.process(self._trip(rec, wait))

    def _trip(self, rec, wait=None):
        """A truck's trip: step 0 loading, 1 driving to the shelter, 2 unloading, 3 driving back."""
        g, env, n_d = self.plan.group, self.env, len(self.plan.depots)
        d, s, load = rec.d, rec.s, rec.load
        if rec.step == 0:
            if wait is not None:
                yield wait
            elif g.load_s > 0:
                yield env.timeout(g.load_s)
            rec.step, wait = 1, None
        if rec.step == 1:
            yield wait if wait is not None else self.fleet.drive(env, d, n_d + s, leg="delivery", priority=0)
            rec.arrive = env.now
            rec.step, wait = 2, (env.timeout(g.unload_s) if g.unload_s > 0 else None)
        if rec.step == 2:
            if wait is not None:
                yield wait
            self.settle(env.now)
            self.held[s] += load
            self.delivered[s] += load
            self.on_way[s] -= load
            self.deliveries.append((d, s, rec.t0, rec.arrive, env.now, load))
            rec.step, wait = 3, None
        yield wait if wait is not None else self.fleet.drive(env, n_d + s, d, leg="return", priority=0)
        self.idle[d] += 1
        self.trips.remove(rec)


class _Trip:
    """A truck on a trip: depot, shelter, load (units of each item), dispatch time, step (see
    :meth:`ReliefOperation._trip`), arrival time at the shelter, process."""

    __slots__ = ("d", "s", "load", "t0", "step", "arrive", "proc")

    def __init__(self, d, s, load, t0):
        self.d, self.s, self.load, self.t0 = int(d), int(s), load, float(t0)
        self.step, self.arrive, self.proc = 0, math.nan, None


class ReliefFlow(Flow):
    """Trucks from depots to shelters (an event flow on the traffic's clock)."""

    name = "relief"
    tables = (Table("relief", ReliefGroup, optional=True),
              Table("depots", DepotGroup, array=True, required=(("node", "the city node id"),)))
    uses = (ShelterSites, ShelterOccupancy, LiveTravel)
    result_names = ("relief",)

    def plan(self, ctx):
        return plan_relief(ctx)

    def build(self, ctx):
        p = ctx.plan(self)
        live, occ = ctx.port(LiveTravel), ctx.port(ShelterOccupancy)
        if live is None or occ is None:
            raise ScenarioError(f"{where(ctx.scenario.source, 'relief')}: trucks drive through the traffic to the "
                                f"evacuation's shelters; this run has no {'traffic' if live is None else 'shelters'}")
        fleet = live.fleet(np.concatenate([p.depot_node, p.shelter_node]), ("delivery", "return"))
        self.op = ReliefOperation(p, occ, fleet, ctx.clock, ctx.until_s)

    checkpoints = True

    def start(self, ctx, wait=None):
        self.review = ctx.clock.process(self.op.review(wait))

    _ARRAYS = ("held", "unmet", "consumed", "delivered", "on_way", "stock", "idle", "ps_last")

    def snapshot(self, ctx):
        op = self.op
        out = {k: getattr(op, k) for k in self._ARRAYS}
        out["deliveries"] = [[d, s, t0, a, b, list(map(float, load))] for d, s, t0, a, b, load in op.deliveries]
        out["series"] = [[t, list(map(float, o)), h.tolist(), u.tolist(), st.tolist()] for t, o, h, u, st in op.series]
        out["trips"] = [[r.d, r.s, list(map(float, r.load)), r.t0, r.step, r.arrive,
                         *op.fleet.wait_ref(r.proc._target, ctx.pending)] for r in op.trips]
        out["review"] = ctx.pending(self.review._target) if self.review.is_alive else []
        return out

    def restore(self, ctx, state, time_s):
        op = self.op
        for k in self._ARRAYS:
            setattr(op, k, np.array(state[k]).astype(getattr(op, k).dtype))
        op.deliveries = [(int(d), int(s), float(t0), float(a), float(b), np.array(load))
                         for d, s, t0, a, b, load in state["deliveries"]]
        op.series = [(float(t), np.array(o), np.array(h), np.array(u), np.array(st)) for t, o, h, u, st in state["series"]]
        for d, s, load, t0, step, arrive, *ref in state["trips"]:
            rec = _Trip(d, s, np.array(load), t0)
            rec.step, rec.arrive = int(step), float(arrive)
            op.start_trip(rec, op.fleet.wait_event(ref, ctx.wakeup))
        if len(state["review"]):
            self.start(ctx, ctx.wakeup(state["review"]))

    def finish(self, ctx):
        return relief_result(self.op, self.name)


def relief_result(op, name):
    """KPIs, report lines and the results-file section of a finished relief operation."""
    p = op.plan
    op.settle(op.until_s)
    times = np.array([r[4] - r[2] for r in op.deliveries])
    kpis = {"relief_deliveries": float(len(op.deliveries)),
            "relief_delivery_mean_s": float(times.mean()) if len(times) else math.nan,
            "relief_delivery_p90_s": float(np.percentile(times, 90)) if len(times) else math.nan,
            "relief_truck_legs_no_route": float(op.fleet.no_route_legs)}
    demand = op.consumed.sum(axis=0) + op.unmet.sum(axis=0)
    parts = []
    for k, item in enumerate(p.items):
        kpis[f"relief_{item}_unmet"] = float(op.unmet[:, k].sum())
        kpis[f"relief_{item}_met_share"] = float(op.consumed[:, k].sum() / demand[k]) if demand[k] > 0 else math.nan
        kpis[f"relief_{item}_stock_left"] = float(op.stock[:, k].sum())
        met = kpis[f"relief_{item}_met_share"]
        parts.append(f"{item} {'-' if math.isnan(met) else f'{100 * met:.1f} %'} met "
                     f"({kpis[f'relief_{item}_unmet']:,.0f} short, {kpis[f'relief_{item}_stock_left']:,.0f} left)")
    mean = kpis["relief_delivery_mean_s"]
    lines = [f"{'relief':<34} {len(op.deliveries)} deliveries by {int(p.trucks.sum())} trucks from {len(p.depots)} "
             f"depot{'s' if len(p.depots) != 1 else ''}, {'-' if math.isnan(mean) else f'{mean / 60:.0f} min'} from dispatch on average"
             + (f"; {op.fleet.no_route_legs} truck legs waited for a route" if op.fleet.no_route_legs else ""),
             f"{'relief needs':<34} " + "; ".join(parts)]

    def write(writer):
        _write_relief(writer, op)

    return FlowResult(name, kpis=kpis, values={"relief": op}, lines=lines, write=write)


def _write_relief(writer, op):
    p, rows = op.plan, op.deliveries
    cols = {"depot": np.array([p.depots[r[0]] for r in rows], dtype=str),
            "shelter": np.array([p.shelters[r[1]] for r in rows], dtype=str),
            "dispatch_s": np.array([r[2] for r in rows], dtype=np.float64),
            "arrive_s": np.array([r[3] for r in rows], dtype=np.float64),
            "delivered_s": np.array([r[4] for r in rows], dtype=np.float64)}
    units = {"depot": "", "shelter": "", "dispatch_s": "s", "arrive_s": "s", "delivered_s": "s"}
    for k, item in enumerate(p.items):
        cols[item] = np.array([r[5][k] for r in rows], dtype=np.float64)
        units[item] = item.rsplit("_", 1)[-1] if "_" in item else "1"
    writer.write_table("/events/relief_deliveries", cols, units=units)
    dep = {"name": np.array(p.depots, dtype=str), "node_idx": p.depot_node.astype(np.int64),
           "trucks": p.trucks.astype(np.int64)}
    dep_units = {"name": "", "node_idx": "", "trucks": "1"}
    for k, item in enumerate(p.items):
        dep[f"stock_{item}"] = p.stock[:, k].astype(np.float64)
        dep_units[f"stock_{item}"] = units[item]
    writer.write_table("/network/relief_depots", dep, units=dep_units)
    if not op.series:
        return
    t = np.array([r[0] for r in op.series])
    writer.write_array("/timeseries/relief_shelters/time_s", t, units="s")
    writer.write_array("/timeseries/relief_shelters/occupancy_persons", np.array([r[1] for r in op.series]),
                       units="persons", attrs={"time_path": "/timeseries/relief_shelters/time_s",
                                               "columns_are": "shelters: " + ", ".join(p.shelters)})
    writer.write_array("/timeseries/relief_depots/time_s", t, units="s")
    for k, item in enumerate(p.items):
        for var, idx, what in (("held", 2, "held at each shelter"), ("unmet", 3, "short at each shelter, cumulative")):
            writer.write_array(f"/timeseries/relief_shelters/{var}_{item}", np.array([r[idx][:, k] for r in op.series]),
                               units=units[item], attrs={"time_path": "/timeseries/relief_shelters/time_s",
                                                         "description": f"{item} {what}"})
        writer.write_array(f"/timeseries/relief_depots/stock_{item}", np.array([r[4][:, k] for r in op.series]),
                           units=units[item], attrs={"time_path": "/timeseries/relief_depots/time_s",
                                                     "description": f"{item} in stock at each depot"})
