"""The evacuation flow: ``[evacuation]`` and ``[[shelters]]``, people ordered out of districts
drive to shelters through the live traffic.

::

    [evacuation]
    zones = [2, 3]                 # city districts told to leave (or centre + radius_m)
    warning_s = 39600              # the order, 11:00
    compliance = 0.8               # share of the people present who leave
    persons_per_vehicle = 2.5
    mean_delay_s = 1800            # mean time from the order to leaving (Rayleigh)
    persons = { "2" = 4000, "3" = 2500 }   # who is there; omitted: a [population]'s persons present

    [[shelters]]
    name = "school"
    node = 8131109677
    capacity = 3000                # persons

The model, at the fidelity of a planning study:

* **Who leaves**: in each district told, the persons present (the ``persons`` table, or the
  synthetic population's persons present in the hour of the warning), each leaving with
  probability ``compliance`` (a binomial draw on the ``evacuation`` stream). They travel by
  car, ``persons_per_vehicle`` to a car (the last car of a district takes the remainder).
* **When**: each car leaves ``warning_s`` plus a delay drawn from a Rayleigh distribution with
  mean ``mean_delay_s`` (scale ``mean / sqrt(pi / 2)``), the form of evacuation departure
  curves (Tweedie et al. 1986, cited from memory; the mean is a scenario assumption).
* **From where**: a node of its district, drawn uniformly.
* **Where to**: in order of departure, the shelter nearest by free-flow time at the order that
  still has room for the car's persons (places are reserved when a car leaves; closures that
  come later are not foreseen, so a car may head for a shelter the water cuts off). A car at a
  shelter's node shelters there when it has room. A car with no shelter in reach with room
  stays (``no shelter``).
* **How**: cars are vehicles of the traffic model (``[traffic]`` or a population's car legs
  must be present): they queue, re-route around closures (a ``[[hazards]]`` flood) when the
  traffic re-routes, and arrive or not by the end of the run.

Every person told ends in exactly one state: ``sheltered``, ``travelling`` (not arrived by the
end), ``no shelter`` or ``stayed`` (did not comply). KPIs: persons in each state, the
clearance times (50, 90, 95, 100 % of the cars that left, from the warning) and, for
comparison, the quickest clearance the network allows for the same cars all ready at the
warning (:func:`twin.evacuation.quickest_clearance`, free-flow, no closures: a lower bound).
Not modelled yet: people needing assistance (the elderly, people living alone), walking,
shelters opening or closing, and re-assignment when a shelter fills before a car arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import Presence, ShelterOccupancy, ShelterSites, TripIntake, TripOutcome
from twin.spec import Table, setting, where

__all__ = ["EvacuationGroup", "ShelterGroup", "EvacuationFlow", "EvacuationPlan"]

STATES = ("sheltered", "travelling", "no shelter", "stayed")


@dataclass(frozen=True)
class EvacuationGroup:
    """``[evacuation]``: who is told to leave, when, and how they behave."""

    zones: tuple = setting((), "ids", "city districts (zone ids) told to leave")
    centre: object = setting(None, "node", "instead of zones: the node at the centre of the area told to leave")
    radius_m: float = setting(0.0, "float", "with centre: the radius of the area, metres", minimum=0.0)
    warning_s: float = setting(0.0, "float", "when the order is given, seconds from the start", minimum=0.0)
    compliance: float = setting(0.8, "float", "share of the people present who leave (an assumption to vary)",
                                minimum=0.0, maximum=1.0)
    persons_per_vehicle: float = setting(2.5, "float", "persons in each evacuating car", minimum=1.0)
    mean_delay_s: float = setting(1800.0, "float", "mean time from the order to leaving, seconds (Rayleigh)",
                                  minimum=0.0)
    persons: dict | None = setting(None, "table", "district (zone id) -> persons present at the warning (omit: a "
                                                  "[population]'s persons present)")
    lower_bound: bool = setting(True, "bool", "also compute the quickest clearance the network allows (max flows)")


@dataclass(frozen=True)
class ShelterGroup:
    """``[[shelters]]``: a place evacuees can go."""

    name: str = setting("", "str", "shelter name")
    node: object = setting(None, "node", "city node id")
    capacity: float = setting(1000.0, "float", "persons it takes", minimum=0.0)


@dataclass(frozen=True)
class EvacuationPlan:
    """Who leaves, from where, when and to which shelter (one row per car), and the persons in
    each state before the run; ``rows`` are the cars' rows in the traffic result."""

    zone_persons: dict
    told: float
    stayed: float
    cars: object
    no_shelter: float
    shelters: tuple
    rows: tuple
    bound: object


def _area_nodes(g, city, at):
    """``zone id -> node indices`` of the area told to leave."""
    if bool(g.zones) == (g.centre is not None):
        raise ScenarioError(f"{at}: give either zones (district ids) or centre with radius_m")
    if g.centre is not None:
        c = scenario_node_index(city, g.centre, at, "centre")
        d = np.hypot(np.asarray(city.x_m) - city.x_m[c], np.asarray(city.y_m) - city.y_m[c])
        inside = np.flatnonzero(d <= g.radius_m)
        return {_py(zid): inside[np.asarray(city.zone_of_node)[inside] == z] for z, zid in enumerate(city.zone_ids)
                if (np.asarray(city.zone_of_node)[inside] == z).any()}
    ids = {str(z): z_idx for z_idx, z in enumerate(city.zone_ids)}
    out = {}
    for z in g.zones:
        if str(z) not in ids:
            raise ScenarioError(f"{at} zones: district {z!r} is not a zone of city {city.name!r}; zones: "
                                f"{', '.join(map(str, city.zone_ids))}")
        out[_py(city.zone_ids[ids[str(z)]])] = np.flatnonzero(np.asarray(city.zone_of_node) == ids[str(z)])
    return out


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _persons(g, city, area, presence, at):
    """Persons present in each district of the area at the warning (the area's share of a
    district's nodes, for a radius)."""
    counts = np.bincount(np.asarray(city.zone_of_node)[np.asarray(city.zone_of_node) >= 0],
                         minlength=len(city.zone_ids))
    z_index = {str(z): i for i, z in enumerate(city.zone_ids)}
    if g.persons:
        table = {str(k): float(v) for k, v in g.persons.items()}
        unknown = [k for k in table if k not in z_index]
        if unknown:
            raise ScenarioError(f"{at} persons: district {unknown[0]!r} is not a zone of city {city.name!r}")
        missing = [z for z in area if str(z) not in table]
        if missing:
            raise ScenarioError(f"{at} persons: no count for district {missing[0]!r} of the area told to leave")
        full = {z: table[str(z)] for z in area}
    elif presence is not None:
        hour = int(g.warning_s // 3600) % 24
        present = presence.present_by_zone()
        full = {z: float(present.iloc[hour, z_index[str(z)]]) for z in area}
    else:
        raise ScenarioError(f"{at}: who is there? give persons (district -> persons) or a [population]")
    return {z: full[z] * len(nodes) / max(counts[z_index[str(z)]], 1) for z, nodes in area.items()}


def _cars(g, area, persons, rng):
    """One row per car: district, origin node index, persons, departure (s)."""
    zone, origin, size = [], [], []
    stayed = 0.0
    for z, nodes in area.items():
        n = int(round(persons[z]))
        go = int(rng.binomial(n, g.compliance)) if n > 0 else 0
        stayed += n - go
        n_cars = int(math.ceil(go / g.persons_per_vehicle)) if go else 0
        if n_cars == 0 or len(nodes) == 0:
            stayed += go if len(nodes) == 0 else 0
            continue
        per = np.full(n_cars, g.persons_per_vehicle)
        per[-1] = go - g.persons_per_vehicle * (n_cars - 1)
        zone += [z] * n_cars
        origin.append(nodes[rng.integers(0, len(nodes), n_cars)])
        size.append(per)
    sigma = g.mean_delay_s / math.sqrt(math.pi / 2.0)
    n = len(zone)
    origin = np.concatenate(origin) if origin else np.zeros(0, dtype=np.int64)
    size = np.concatenate(size) if size else np.zeros(0)
    delay = rng.rayleigh(sigma, n) if sigma > 0 else np.zeros(n)
    return zone, origin, size, g.warning_s + delay, stayed


def _assign(city, shelters, origin, size, depart):
    """Nearest shelter with room, in departure order: shelter index per car (-1 none). By
    free-flow time at the order: closures that come later are not foreseen. A car at a shelter
    node takes that shelter when it has room (its people shelter in place)."""
    nodes = [s[1] for s in shelters]
    room = np.array([s[2] for s in shelters], dtype=np.float64)
    ids = np.asarray(city.node_ids)
    uniq, inv = np.unique(origin, return_inverse=True)
    t = city.travel_times(ids[uniq], ids[nodes]) if len(uniq) else np.zeros((0, len(nodes)))
    out = np.full(len(origin), -1, dtype=np.int64)
    for c in np.argsort(depart, kind="stable"):
        for s in np.argsort(t[inv[c]], kind="stable"):
            if not np.isfinite(t[inv[c], s]):
                break
            if room[s] >= size[c] - 1e-9:
                out[c], room[s] = s, room[s] - size[c]
                break
    return out


def plan_evacuation(ctx):
    """The evacuation of a scenario (see the module docstring); adds the cars to the traffic."""
    import pandas as pd

    g, city, source = ctx.groups["evacuation"], ctx.city, ctx.source
    at = where(source, "evacuation")
    intake = ctx.port(TripIntake)
    if intake is None:
        raise ScenarioError(f"{at}: evacuees drive through the traffic, and this scenario has no traffic: add a "
                            f"[traffic] table (it may have random_trips = 0) or a [population]")
    if g.warning_s >= ctx.groups["run"].until_s:
        raise ScenarioError(f"{at} warning_s = {g.warning_s:g}; expected a time before [run] until_s")
    shelters = tuple((s.name, scenario_node_index(city, s.node, where(source, "shelters", i, s.name)), s.capacity)
                     for i, s in enumerate(ctx.groups["shelters"]))
    if not shelters:
        raise ScenarioError(f"{at}: no [[shelters]]; give at least one shelter (node, capacity)")
    ctx.provide(ShelterSites, _Sites(tuple(s[0] for s in shelters), np.array([s[1] for s in shelters], dtype=np.int64)))
    area = _area_nodes(g, city, at)
    persons = _persons(g, city, area, ctx.port(Presence), at)
    zone, origin, size, depart, stayed = _cars(g, area, persons, ctx.streams.generator("evacuation"))
    shelter = _assign(city, shelters, origin, size, depart)
    cars = pd.DataFrame({"zone": zone, "origin_idx": origin, "persons": size, "depart_s": depart, "shelter_idx": shelter})
    node_of = np.array([s[1] for s in shelters] + [-1])
    cars["in_place"] = cars["origin_idx"].to_numpy() == node_of[cars["shelter_idx"].to_numpy()]
    go = cars[(cars["shelter_idx"] >= 0) & ~cars["in_place"]]
    ids = np.asarray(city.node_ids)
    rows = intake.add({"origin": ids[go["origin_idx"].to_numpy()],
                       "destination": ids[[shelters[s][1] for s in go["shelter_idx"]]],
                       "depart_s": go["depart_s"].to_numpy()}, "evacuation")
    bound = _bound(city, go, shelters, g) if g.lower_bound and len(go) else None
    return EvacuationPlan({z: float(p) for z, p in persons.items()}, float(sum(round(p) for p in persons.values())),
                          stayed, cars, float(cars.loc[cars["shelter_idx"] < 0, "persons"].sum()), shelters, rows, bound)


@dataclass(frozen=True)
class _Sites:
    """The plan-time :class:`~twin.ports.ShelterSites`."""

    names: tuple
    node_idx: object


class _Occupancy:
    """The run-time :class:`~twin.ports.ShelterOccupancy`: persons in place from their
    departure, driven cars from their arrival (as far as the traffic has been simulated)."""

    def __init__(self, plan, outcome):
        cars = plan.cars
        go = (cars["shelter_idx"] >= 0).to_numpy()
        here, driven = go & cars["in_place"].to_numpy(), go & ~cars["in_place"].to_numpy()
        self.n, self.rows, self.outcome = len(plan.shelters), plan.rows, outcome
        self.here_t = cars["depart_s"].to_numpy()[here]
        self.shelter = np.concatenate([cars["shelter_idx"].to_numpy()[here], cars["shelter_idx"].to_numpy()[driven]])
        self.persons_ = np.concatenate([cars["persons"].to_numpy()[here], cars["persons"].to_numpy()[driven]])

    def _in(self, now_s):
        t = np.concatenate([self.here_t, self.outcome.arrivals_s(self.rows)])
        m = t <= now_s
        return t[m], self.shelter[m], self.persons_[m]

    def persons(self, now_s):
        _, s, p = self._in(now_s)
        return np.bincount(s, weights=p, minlength=self.n)

    def person_seconds(self, now_s):
        t, s, p = self._in(now_s)
        return np.bincount(s, weights=p * (now_s - t), minlength=self.n)


def _bound(city, go, shelters, g):
    from twin.evacuation import quickest_clearance

    ids = np.asarray(city.node_ids)
    counts = go.groupby("origin_idx").size()
    # places in cars: a district's last car carries fewer people, so count at least the cars sent
    sent = np.bincount(go["shelter_idx"].to_numpy(), minlength=len(shelters))
    places = [max(s[2] / g.persons_per_vehicle, float(sent[i])) for i, s in enumerate(shelters)]
    return quickest_clearance(city, {ids[o]: float(n) for o, n in counts.items()}, [ids[s[1]] for s in shelters],
                              shelter_capacity=places, step_s=60.0)


def _fmt_min(s):
    return "-" if s is None or not math.isfinite(s) else f"+{s / 60:.0f} min"


class EvacuationFlow(Flow):
    """Districts told to leave; their cars drive to shelters through the traffic."""

    name = "evacuation"
    tables = (Table("evacuation", EvacuationGroup, optional=True), Table("shelters", ShelterGroup, array=True,
                                                                         required=(("node", "the city node id"),)))
    streams = ("evacuation",)
    provides = (ShelterSites, ShelterOccupancy)
    uses = (TripIntake, Presence, TripOutcome)

    def active(self, ctx):
        return ctx.groups.get("evacuation") is not None

    def plan(self, ctx):
        return plan_evacuation(ctx)

    def build(self, ctx):
        ctx.provide(ShelterOccupancy, _Occupancy(ctx.plan(self), ctx.port(TripOutcome)))

    def finish(self, ctx):
        plan, g = ctx.plan(self), ctx.groups["evacuation"]
        cars = plan.cars.copy()
        go = cars["shelter_idx"] >= 0
        driven = go & ~cars["in_place"]
        trips = ctx.port(TripOutcome).trips(plan.rows)
        cars["arrive_s"] = np.nan
        cars.loc[driven, "arrive_s"] = trips["arrive_s"].to_numpy()
        cars.loc[go & cars["in_place"], "arrive_s"] = cars.loc[go & cars["in_place"], "depart_s"]
        arrived = cars["arrive_s"].notna()
        kpis = {"evacuation_persons_told": plan.told, "evacuation_persons_stayed": plan.stayed,
                "evacuation_persons_sheltered": float(cars.loc[arrived, "persons"].sum()),
                "evacuation_persons_travelling": float(cars.loc[go & ~arrived, "persons"].sum()),
                "evacuation_persons_no_shelter": plan.no_shelter,
                "evacuation_cars": float(go.sum())}
        t = np.sort(cars.loc[arrived, "arrive_s"].to_numpy() - g.warning_s)
        for pct in (50, 90, 95, 100):
            k = int(math.ceil(pct / 100.0 * go.sum())) - 1
            kpis[f"evacuation_clearance_{pct}_s"] = float(t[k]) if 0 <= k < len(t) else math.nan
        if plan.bound is not None:
            for pct, v in plan.bound.cleared_share_s.items():
                kpis[f"evacuation_bound_{pct}_s"] = float(v)
        b = "" if plan.bound is None else f" (network's quickest {_fmt_min(kpis['evacuation_bound_90_s'])})"
        lines = [f"{'evacuation':<34} {plan.told:,.0f} persons told at {g.warning_s / 3600:.2f} h: "
                 f"{kpis['evacuation_persons_sheltered']:,.0f} sheltered, {kpis['evacuation_persons_travelling']:,.0f} "
                 f"still travelling, {plan.no_shelter:,.0f} without a shelter place, {plan.stayed:,.0f} stayed",
                 f"{'evacuation clearance':<34} 90 % of {int(go.sum()):,} cars by "
                 f"{_fmt_min(kpis['evacuation_clearance_90_s'])}{b}, all by {_fmt_min(kpis['evacuation_clearance_100_s'])}"]
        city = ctx.city

        def write(writer):
            ids = np.asarray(city.node_ids)
            writer.write_table("/events/evacuation_cars", {
                "zone": cars["zone"].astype(str).to_numpy().astype(str),
                "origin": ids[cars["origin_idx"].to_numpy()],
                "persons": cars["persons"].to_numpy(np.float64), "depart_s": cars["depart_s"].to_numpy(np.float64),
                "shelter_idx": cars["shelter_idx"].to_numpy(np.int32), "arrive_s": cars["arrive_s"].to_numpy(np.float64)},
                units={"zone": "", "origin": "", "persons": "persons", "depart_s": "s", "shelter_idx": "",
                       "arrive_s": "s"})
            writer.write_table("/network/evacuation_shelters", {
                "name": np.array([s[0] for s in plan.shelters]).astype(str),
                "node": ids[[s[1] for s in plan.shelters]],
                "capacity": np.array([s[2] for s in plan.shelters], dtype=np.float64)},
                units={"name": "", "node": "", "capacity": "persons"})

        return FlowResult(self.name, kpis=kpis, values={}, lines=lines, write=write)
