"""The evacuation flow: ``[evacuation]`` and ``[[shelters]]``, people ordered out of districts
drive to shelters through the live traffic.

::

    [evacuation]
    zones = [2, 3]                 # city districts told to leave (or centre + radius_m)
    warning_s = 39600              # the order, 11:00
    order = "time"                 # or "rule": a [[rules]] action 'warn evacuation' gives it
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
  probability ``compliance`` (a binomial draw on the ``evacuation`` stream). Of those who leave,
  ``assisted_share`` need assistance and, of the others, ``walk_share`` walk (binomial draws;
  omitted, the shares of the population present who are 65+ and living alone, and who have no
  car; else 0); the rest travel by car, ``persons_per_vehicle`` to a car (the last car of a
  district takes the remainder). Walkers and assisted persons:
  :mod:`twin.scenarios.evacuation_assist` (walkers on the shortest walk at ``walk_speed_mps``;
  ``assist_vans`` vans fetch the assisted, longest waiting first, through the traffic).
* **When**: each car leaves ``warning_s`` plus a delay drawn from a Rayleigh distribution with
  mean ``mean_delay_s`` (scale ``mean / sqrt(pi / 2)``), the form of evacuation departure
  curves (Tweedie et al. 1986, cited from memory; the mean is a scenario assumption). With
  ``order = "rule"`` the order is given when a ``[[rules]]`` action ``warn evacuation`` fires
  (:mod:`twin.scenarios.rules`, e.g. on a flood depth): the plan is made for ``warning_s`` (who
  is present in its hour, who leaves, their delays, their shelters) and every time of it moves
  with the order (a car leaves at the order plus its delay); the cars wait in the traffic,
  held (:class:`~twin.ports.TripRelease`), until then. A rule that never fires gives no order:
  nobody is told, and the cars read ``cancelled`` in the traffic's trips.
* **From where**: a node of its district, drawn uniformly.
* **Where to**: in order of departure, the shelter the plan gives its district (``shelter_of``)
  while it has room, else the shelter nearest by free-flow time at the order that still has
  room for the car's persons (places are reserved when a car leaves; closures that
  come later are not foreseen, so a car may head for a shelter the water cuts off). A car at a
  shelter's node shelters there when it has room. A car with no shelter in reach with room
  stays (``no shelter``).
* **How**: cars are vehicles of the traffic model (``[traffic]`` or a population's car legs
  must be present): they queue, re-route around closures (a ``[[hazards]]`` flood) when the
  traffic re-routes, and arrive or not by the end of the run.

Every person told ends in exactly one state: ``sheltered``, ``travelling`` (on the way at the
end: in a car, on foot or on a van), ``stranded`` (in a car that has not arrived, with no open
route from where it is to its shelter at the end: cut off by closures), ``no shelter``, ``stayed`` (did not comply) or ``waiting
for assistance``. KPIs: persons in each state, the clearance times (50, 90, 95, 100 % of the
cars that left, from the warning) and, for comparison, the quickest clearance the network
allows for the same cars all ready at the warning (:func:`twin.evacuation.quickest_clearance`,
free-flow, no closures: a lower bound); persons walking, needing assistance, and their wait for
a van (mean, longest; those still waiting count until the end). The series
``/timeseries/evacuation_area`` has, every 5 min, the persons of the area still in it (stayed,
no shelter place, not yet left, waiting for a van: a person counts as out once it leaves) and
those waiting for a van. Places are taken by the cars first (in departure order), then the
walkers, then the vans' loads. Not modelled yet: re-assignment when a shelter fills before a
car arrives, walkers slowed by water. A shelter whose node stands in a
flood's ``facility_depth_mm`` at any time from the order to the end (port
:class:`~twin.ports.FloodedSites`: the forecast is known) is not used (capacity 0, reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.scenarios.evacuation_assist import AssistService, walk_to_shelters
from twin.ports import (EvacuationOrder, FloodedSites, LiveTravel, Presence, ShelterOccupancy, ShelterSites, TripIntake,
                        TripOutcome, TripRelease)
from twin.spec import Table, setting, where

__all__ = ["EvacuationGroup", "ShelterGroup", "EvacuationFlow", "EvacuationPlan"]

STATES = ("sheltered", "travelling", "no shelter", "stayed")


def _names_table(value, where_):
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ScenarioError(f"{where_} = {value!r}; expected a table district -> shelter name, e.g. "
                            f"{{ \"1\" = \"school\" }}")
    return {str(k): v for k, v in value.items()}


@dataclass(frozen=True)
class EvacuationGroup:
    """``[evacuation]``: who is told to leave, when, and how they behave."""

    zones: tuple = setting((), "ids", "city districts (zone ids) told to leave")
    centre: object = setting(None, "node", "instead of zones: the node at the centre of the area told to leave")
    radius_m: float = setting(0.0, "float", "with centre: the radius of the area, metres", minimum=0.0)
    warning_s: float = setting(0.0, "float", "when the order is given, seconds from the start (order = 'rule': the "
                                             "time the plan is made for)", minimum=0.0)
    order: str = setting("time", "choice", "when the order is given: at warning_s (time), or when a [[rules]] action "
                                           "'warn evacuation' fires (rule)", choices=("time", "rule"))
    compliance: float = setting(0.8, "float", "share of the people present who leave (an assumption to vary)",
                                minimum=0.0, maximum=1.0)
    persons_per_vehicle: float = setting(2.5, "float", "persons in each evacuating car", minimum=1.0)
    mean_delay_s: float = setting(1800.0, "float", "mean time from the order to leaving, seconds (Rayleigh)",
                                  minimum=0.0)
    persons: dict | None = setting(None, "table", "district (zone id) -> persons present at the warning (omit: a "
                                                  "[population]'s persons present)")
    lower_bound: bool = setting(True, "bool", "also compute the quickest clearance the network allows (max flows)")
    shelter_of: dict | None = setting(None, "table", "district -> shelter name its cars go to while it has room "
                                                      "(omit: the nearest shelter with room)", convert=_names_table)
    assisted_share: object = setting(None, "rates", "share of those who leave who need assistance (the elderly, "
                                                    "people living alone): a number or district -> share (omit: "
                                                    "a [population]'s persons 65+ living alone present, else 0)")
    walk_share: object = setting(None, "rates", "share of the others who leave on foot: a number or district -> "
                                                "share (omit: a [population]'s persons without a car present, else 0)")
    walk_speed_mps: float = setting(1.2, "float", "walking speed, m/s (an assumption: 1.0-1.3 in evacuation "
                                                  "studies, cited from memory)", minimum=0.0, strict=True)
    assist_vans: int = setting(0, "int", "vans that fetch the persons needing assistance", minimum=0)
    assist_base: object = setting(None, "node", "where the vans start (omit: the first shelter)")
    assist_capacity: int = setting(8, "int", "persons a van carries", minimum=1)
    assist_board_s: float = setting(180.0, "float", "time to help one person aboard, seconds (an assumption)",
                                    minimum=0.0)


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
    flooded: tuple = ()
    walkers: object = None
    assisted: object = None
    room_left: object = None
    assist_base: int = -1


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
        if presence is not None:                 # no more evacuees than the population puts there
            hour = int(g.warning_s // 3600) % 24
            present = presence.present_by_zone()
            for z in area:
                there = float(present.iloc[hour, z_index[str(z)]])
                if full[z] > there + 0.5:
                    raise ScenarioError(f"{at} persons.{z} = {full[z]:g}: more than the {there:,.0f} persons the "
                                        f"[population] puts in district {z} at {hour:02d}:00; give at most that, or "
                                        f"omit persons to take the population present")
    elif presence is not None:
        hour = int(g.warning_s // 3600) % 24
        present = presence.present_by_zone()
        full = {z: float(present.iloc[hour, z_index[str(z)]]) for z in area}
    else:
        raise ScenarioError(f"{at}: who is there? give persons (district -> persons) or a [population]")
    return {z: full[z] * len(nodes) / max(counts[z_index[str(z)]], 1) for z, nodes in area.items()}


def _share(value, z, what, at):
    if isinstance(value, dict):
        if str(z) not in value:
            raise ScenarioError(f"{at} {what}: no share for district {z!r} of the area told to leave")
        value = value[str(z)]
    if not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{at} {what} = {value!r}; expected a share between 0 and 1")
    return float(value)


def _shares(g, city, area, presence, at):
    """District -> (share needing assistance, share of the others walking), from the settings or
    the population present at the warning."""
    z_index = {str(z): i for i, z in enumerate(city.zone_ids)}
    hour = int(g.warning_s // 3600) % 24
    pop = {}
    if presence is not None and (g.assisted_share is None or g.walk_share is None):
        present = np.asarray(presence.present_by_zone(), dtype=np.float64)[hour]
        for flag in ("elderly_alone", "no_car"):
            among = presence.present_among(flag, hour)
            pop[flag] = {z: among[z_index[str(z)]] / max(present[z_index[str(z)]], 1.0) for z in area}
    out = {}
    for z in area:
        a = _share(g.assisted_share, z, "assisted_share", at) if g.assisted_share is not None else \
            pop.get("elderly_alone", {}).get(z, 0.0)
        w = _share(g.walk_share, z, "walk_share", at) if g.walk_share is not None else pop.get("no_car", {}).get(z, 0.0)
        out[z] = (a, w)
    return out


@dataclass(frozen=True)
class _Leavers:
    """Who leaves: cars (district, origin node index, persons, departure s), the persons who
    stayed, and persons walking or needing assistance (district, origin node index; walkers also
    a departure s)."""

    zone: list
    origin: object
    size: object
    depart: object
    stayed: float
    walkers: object
    assisted: object


def _cars(g, area, persons, rng, shares):
    """Draw who leaves and how (draws for walkers and assisted only where their share > 0, after
    the cars' own, so a scenario without them draws exactly as before)."""
    import pandas as pd

    zone, origin, size, w_zone, w_origin, a_zone, a_origin = [], [], [], [], [], [], []
    stayed = 0.0
    for z, nodes in area.items():
        n = int(round(persons[z]))
        go = int(rng.binomial(n, g.compliance)) if n > 0 else 0
        stayed += n - go
        if len(nodes) == 0:
            stayed += go
            continue
        share_a, share_w = shares[z]
        n_a = int(rng.binomial(go, share_a)) if go and share_a > 0 else 0
        n_w = int(rng.binomial(go - n_a, share_w)) if go - n_a and share_w > 0 else 0
        drive = go - n_a - n_w
        n_cars = int(math.ceil(drive / g.persons_per_vehicle)) if drive else 0
        if n_cars:
            per = np.full(n_cars, g.persons_per_vehicle)
            per[-1] = drive - g.persons_per_vehicle * (n_cars - 1)
            zone += [z] * n_cars
            origin.append(nodes[rng.integers(0, len(nodes), n_cars)])
            size.append(per)
        if n_a:
            a_zone += [z] * n_a
            a_origin.append(nodes[rng.integers(0, len(nodes), n_a)])
        if n_w:
            w_zone += [z] * n_w
            w_origin.append(nodes[rng.integers(0, len(nodes), n_w)])
    sigma = g.mean_delay_s / math.sqrt(math.pi / 2.0)
    n = len(zone)
    origin = np.concatenate(origin) if origin else np.zeros(0, dtype=np.int64)
    size = np.concatenate(size) if size else np.zeros(0)
    delay = rng.rayleigh(sigma, n) if sigma > 0 else np.zeros(n)
    w_delay = rng.rayleigh(sigma, len(w_zone)) if sigma > 0 and w_zone else np.zeros(len(w_zone))
    walkers = pd.DataFrame({"zone": w_zone, "origin_idx": np.concatenate(w_origin) if w_origin else np.zeros(0, int),
                            "depart_s": g.warning_s + w_delay})
    assisted = pd.DataFrame({"zone": a_zone, "origin_idx": np.concatenate(a_origin) if a_origin else np.zeros(0, int)})
    return _Leavers(zone, origin, size, g.warning_s + delay, stayed, walkers, assisted)


def _preferred(g, shelters, zones, at):
    """Each car's shelter from ``shelter_of`` (district -> shelter name), -1 where none is given."""
    if not g.shelter_of:
        return None
    names = [sh[0] for sh in shelters]
    pick = {}
    for z, name in g.shelter_of.items():
        if name not in names:
            raise ScenarioError(f"{at} shelter_of.{z} = {name!r}: no such shelter; shelters: {', '.join(names)}")
        pick[str(z)] = names.index(name)
    return np.array([pick.get(str(z), -1) for z in zones], dtype=np.int64)


def _assign(city, shelters, origin, size, depart, preferred=None):
    """Nearest shelter with room, in departure order: shelter index per car (-1 none). By
    free-flow time at the order: closures that come later are not foreseen. A car at a shelter
    node takes that shelter when it has room (its people shelter in place). With ``preferred``
    (a shelter per car, -1 none) a car goes there while it has room and is reachable."""
    nodes = [s[1] for s in shelters]
    room = np.array([s[2] for s in shelters], dtype=np.float64)
    ids = np.asarray(city.node_ids)
    uniq, inv = np.unique(origin, return_inverse=True)
    t = city.travel_times(ids[uniq], ids[nodes]) if len(uniq) else np.zeros((0, len(nodes)))
    out = np.full(len(origin), -1, dtype=np.int64)
    for c in np.argsort(depart, kind="stable"):
        order = np.argsort(t[inv[c]], kind="stable")
        if preferred is not None and preferred[c] >= 0 and origin[c] != nodes[preferred[c]]:
            order = np.concatenate([[preferred[c]], order[order != preferred[c]]])
        for s in order:
            if not np.isfinite(t[inv[c], s]):
                break
            if room[s] >= size[c] - 1e-9:
                out[c], room[s] = s, room[s] - size[c]
                break
    return out, room


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
    water = ctx.port(FloodedSites)
    flooded = tuple(water is not None and any(a < ctx.groups["run"].until_s and b > g.warning_s
                                              for a, b in water.out_of_service(s[1])) for s in shelters)
    shelters = tuple((n, node, 0.0 if f else cap) for (n, node, cap), f in zip(shelters, flooded))
    ctx.provide(ShelterSites, _Sites(tuple(s[0] for s in shelters), np.array([s[1] for s in shelters], dtype=np.int64)))
    if g.order == "rule":
        ctx.provide(EvacuationOrder, _Order(None))       # (so a rule may give it)
    area = _area_nodes(g, city, at)
    persons = _persons(g, city, area, ctx.port(Presence), at)
    lv = _cars(g, area, persons, ctx.streams.generator("evacuation"), _shares(g, city, area, ctx.port(Presence), at))
    shelter, room = _assign(city, shelters, lv.origin, lv.size, lv.depart, _preferred(g, shelters, lv.zone, at))
    walkers = walk_to_shelters(city, shelters, room, lv.walkers, g.walk_speed_mps)
    base = (scenario_node_index(city, g.assist_base, at, "assist_base") if g.assist_base is not None
            else shelters[0][1])
    cars = pd.DataFrame({"zone": lv.zone, "origin_idx": lv.origin, "persons": lv.size, "depart_s": lv.depart,
                         "shelter_idx": shelter})
    node_of = np.array([s[1] for s in shelters] + [-1])
    cars["in_place"] = cars["origin_idx"].to_numpy() == node_of[cars["shelter_idx"].to_numpy()]
    go = cars[(cars["shelter_idx"] >= 0) & ~cars["in_place"]]
    ids = np.asarray(city.node_ids)
    rows = intake.add({"origin": ids[go["origin_idx"].to_numpy()],
                       "destination": ids[[shelters[s][1] for s in go["shelter_idx"]]],
                       "depart_s": go["depart_s"].to_numpy()}, "evacuation")
    bound = _bound(city, go, shelters, g) if g.lower_bound and len(go) else None
    no_place = float(cars.loc[cars["shelter_idx"] < 0, "persons"].sum()) + float((walkers["shelter_idx"] < 0).sum())
    return EvacuationPlan({z: float(p) for z, p in persons.items()}, float(sum(round(p) for p in persons.values())),
                          lv.stayed, cars, no_place, shelters, rows, bound, flooded, walkers, lv.assisted, room, base)


class _Order:
    """The :class:`~twin.ports.EvacuationOrder`: the flow's own ``issue`` at run time."""

    def __init__(self, flow):
        self.flow = flow

    def issue(self) -> bool:
        if self.flow is None:
            raise RuntimeError("EvacuationOrder.issue: only at run time")
        return self.flow.issue()


def _shifted(plan, g, delta_s):
    """The plan and settings with the order ``delta_s`` seconds after ``warning_s`` (inf: never
    given: nobody told, no cars, walkers or assisted)."""
    from dataclasses import replace

    if not math.isfinite(delta_s):
        r0 = plan.rows[0]
        return replace(plan, told=0.0, stayed=0.0, no_shelter=0.0, cars=plan.cars.iloc[:0], rows=(r0, r0),
                       bound=None, walkers=plan.walkers.iloc[:0], assisted=plan.assisted.iloc[:0]), \
            replace(g, warning_s=math.inf)
    cars, wk = plan.cars.copy(), plan.walkers.copy()
    cars["depart_s"] += delta_s
    for k in ("depart_s", "arrive_s"):
        if k in wk:
            wk[k] += delta_s
    return replace(plan, cars=cars, walkers=wk), replace(g, warning_s=g.warning_s + delta_s)


@dataclass(frozen=True)
class _Sites:
    """The plan-time :class:`~twin.ports.ShelterSites`."""

    names: tuple
    node_idx: object


class _Occupancy:
    """The run-time :class:`~twin.ports.ShelterOccupancy`: persons in place from their
    departure, driven cars from their arrival (as far as the traffic has been simulated)."""

    def __init__(self, plan, outcome, assist=None, shift_s=0.0):
        cars, wk = plan.cars, plan.walkers
        go = (cars["shelter_idx"] >= 0).to_numpy()
        here, driven = go & cars["in_place"].to_numpy(), go & ~cars["in_place"].to_numpy()
        walk = (wk["shelter_idx"] >= 0).to_numpy()
        self.n, self.rows, self.outcome, self.assist = len(plan.shelters), plan.rows, outcome, assist
        self.here_t = np.concatenate([cars["depart_s"].to_numpy()[here], wk["arrive_s"].to_numpy()[walk]])
        self.shelter = np.concatenate([cars["shelter_idx"].to_numpy()[here], wk["shelter_idx"].to_numpy()[walk],
                                       cars["shelter_idx"].to_numpy()[driven]])
        self.persons_ = np.concatenate([cars["persons"].to_numpy()[here], np.ones(int(walk.sum())),
                                        cars["persons"].to_numpy()[driven]])
        self.shift_s = shift_s          # the order's time less warning_s, seconds (None: not given yet)

    def _in(self, now_s):
        if self.shift_s is None:
            return np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0)
        t = np.concatenate([self.here_t + self.shift_s, self.outcome.arrivals_s(self.rows)])
        s, p = self.shelter, self.persons_
        if self.assist is not None and self.assist.drops:
            d = np.array(self.assist.drops)
            t, s, p = np.concatenate([t, d[:, 0]]), np.concatenate([s, d[:, 1].astype(np.int64)]), np.concatenate([p, d[:, 2]])
        m = t <= now_s
        return t[m], s[m], p[m]

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


def _walk_assist_kpis(plan, g, assist, until_s, cars):
    """KPIs added by walkers and assisted persons (to add to the car-based states), report
    lines, and the series ``(time_s, persons in the area, waiting for assistance)`` every 5 min."""
    wk, n_a = plan.walkers, len(plan.assisted)
    kpis, lines = {}, []

    def add(**values):
        for k, v in values.items():
            kpis[k] = kpis.get(k, 0.0) + v

    walked = (wk["shelter_idx"] >= 0).to_numpy()
    there = walked & (wk["arrive_s"].to_numpy() <= until_s)
    if len(wk):
        add(evacuation_persons_sheltered=float(there.sum()),
                    evacuation_persons_travelling=float((walked & ~there).sum()),
                    evacuation_persons_walking=float(len(wk)))
        lines.append(f"{'  on foot':<34} {len(wk):,} persons, {int(there.sum()):,} sheltered by the end")
    waiting = np.zeros(0)
    if n_a:
        st = assist.states(until_s) if assist is not None else {"sheltered": 0.0, "travelling": 0.0,
                                                                  "waiting": float(n_a), "no shelter": 0.0}
        picked = assist.pickup_s if assist is not None else np.full(n_a, np.nan)
        wait = np.where(picked <= until_s, picked, until_s) - g.warning_s
        add(evacuation_persons_sheltered=st["sheltered"], evacuation_persons_travelling=st["travelling"],
                    evacuation_persons_no_shelter=st["no shelter"], evacuation_persons_assisted=float(n_a),
                    evacuation_persons_waiting_assistance=st["waiting"],
                    evacuation_assisted_wait_mean_s=float(wait.mean()), evacuation_assisted_wait_max_s=float(wait.max()))
        lines.append(f"{'  needing assistance':<34} {n_a:,} persons, {g.assist_vans} vans: {st['sheltered']:,.0f} "
                     f"sheltered, {st['waiting']:,.0f} still waiting; wait for a van mean {wait.mean() / 60:.0f} min, "
                     f"longest {wait.max() / 60:.0f} min")
        waiting = picked
    times = np.arange(0.0, until_s + 1e-9, 300.0)
    stay = plan.stayed + float(cars.loc[cars["shelter_idx"] < 0, "persons"].sum()) + float((~walked).sum())
    left = lambda t0, t: np.searchsorted(np.sort(t0), t, side="right")          # noqa: E731
    car_t, car_p = cars["depart_s"].to_numpy(), cars["persons"].to_numpy()
    go = (cars["shelter_idx"] >= 0).to_numpy()
    order = np.argsort(car_t[go], kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(car_p[go][order])])
    in_cars = cum[-1] - cum[left(car_t[go], times)]
    in_walk = walked.sum() - left(wk["depart_s"].to_numpy()[walked], times)
    w_a = n_a - left(np.where(np.isnan(waiting), np.inf, waiting), times) if n_a else np.zeros(len(times))
    in_area = np.where(times >= g.warning_s, stay + in_cars + in_walk + w_a, plan.told)
    return kpis, lines, (times, in_area.astype(np.float64), np.where(times >= g.warning_s, w_a, 0.0).astype(np.float64))


def _write_people(writer, plan, assist, cars, times, ids):
    """Walkers, assisted persons and the shelters' occupancy (every 5 min) in the results file."""
    wk, a = plan.walkers, plan.assisted
    if len(wk):
        writer.write_table("/events/evacuation_walkers", {
            "zone": wk["zone"].astype(str).to_numpy().astype(str), "origin": ids[wk["origin_idx"].to_numpy()],
            "depart_s": wk["depart_s"].to_numpy(np.float64), "shelter_idx": wk["shelter_idx"].to_numpy(np.int32),
            "arrive_s": wk["arrive_s"].to_numpy(np.float64)},
            units={"zone": "", "origin": "", "depart_s": "s", "shelter_idx": "", "arrive_s": "s"})
    if len(a):
        n = len(a)
        writer.write_table("/events/evacuation_assisted", {
            "zone": a["zone"].astype(str).to_numpy().astype(str), "origin": ids[a["origin_idx"].to_numpy()],
            "pickup_s": assist.pickup_s if assist is not None else np.full(n, np.nan),
            "drop_s": assist.drop_s if assist is not None else np.full(n, np.nan),
            "shelter_idx": (assist.shelter_idx if assist is not None else np.full(n, -1)).astype(np.int32)},
            units={"zone": "", "origin": "", "pickup_s": "s", "drop_s": "s", "shelter_idx": ""})
    t_in = [cars["arrive_s"].to_numpy(), wk["arrive_s"].to_numpy()]
    s_in = [cars["shelter_idx"].to_numpy(), wk["shelter_idx"].to_numpy()]
    p_in = [cars["persons"].to_numpy(), np.ones(len(wk))]
    if assist is not None and assist.drops:
        d = np.array(assist.drops)
        t_in, s_in, p_in = t_in + [d[:, 0]], s_in + [d[:, 1].astype(np.int64)], p_in + [d[:, 2]]
    t, sh, p = np.concatenate(t_in), np.concatenate(s_in).astype(np.int64), np.concatenate(p_in)
    ok = (sh >= 0) & np.isfinite(t)
    occ = np.zeros((len(times), len(plan.shelters)))
    for k in range(len(plan.shelters)):
        m = ok & (sh == k)
        order = np.argsort(t[m], kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(p[m][order])])
        occ[:, k] = cum[np.searchsorted(t[m][order], times, side="right")]
    writer.write_array("/timeseries/evacuation_shelters/time_s", times, units="s")
    writer.write_array("/timeseries/evacuation_shelters/occupancy_persons", occ, units="persons",
                       attrs={"time_path": "/timeseries/evacuation_shelters/time_s",
                              "description": "persons in each shelter (columns: /network/evacuation_shelters order)"})


def _fmt_min(s):
    return "-" if s is None or not math.isfinite(s) else f"+{s / 60:.0f} min"


class EvacuationFlow(Flow):
    """Districts told to leave; their cars drive to shelters through the traffic."""

    name = "evacuation"
    tables = (Table("evacuation", EvacuationGroup, optional=True), Table("shelters", ShelterGroup, array=True,
                                                                         required=(("node", "the city node id"),)))
    streams = ("evacuation",)
    provides = (ShelterSites, ShelterOccupancy, EvacuationOrder)
    uses = (TripIntake, Presence, TripOutcome, FloodedSites, LiveTravel, TripRelease)

    def active(self, ctx):
        return ctx.groups.get("evacuation") is not None

    def plan(self, ctx):
        return plan_evacuation(ctx)

    def build(self, ctx):
        plan, g = ctx.plan(self), ctx.groups["evacuation"]
        self.assist = None
        if len(plan.assisted) and g.assist_vans:
            live = ctx.port(LiveTravel)
            if live is None:
                raise ScenarioError(f"{where(ctx.scenario.source, 'evacuation')}: assist_vans drive through the "
                                    f"traffic, and this run has none")
            fleet = live.fleet(AssistService.locations(plan.assist_base, plan.shelters, plan.assisted),
                               ("pickup", "to shelter"))
            self.assist = AssistService(ctx.clock, fleet, g, plan.assisted, plan.shelters, plan.room_left, ctx.until_s)
        self.plan_, self.g_ = plan, g
        self.clock, self.order_s = ctx.clock, (g.warning_s if g.order == "time" else None)
        self.occupancy = _Occupancy(plan, ctx.port(TripOutcome), self.assist, None if self.order_s is None else 0.0)
        ctx.provide(ShelterOccupancy, self.occupancy)
        self.release = None
        if g.order == "rule":
            self.release = ctx.port(TripRelease)
            self.release.hold(plan.rows)               # (the intake's trips: the traffic is there)
            ctx.provide(EvacuationOrder, _Order(self))

    def issue(self) -> bool:
        """Give the order now (``order = "rule"``): every time of the plan moves with it."""
        if self.order_s is not None:
            return False
        plan, g = self.plan_, self.g_
        self.order_s = now = float(self.clock.now)
        self._shift(now - g.warning_s)
        driven = (plan.cars["shelter_idx"] >= 0) & ~plan.cars["in_place"]
        self.release.release(plan.rows, plan.cars.loc[driven, "depart_s"].to_numpy() + (now - g.warning_s))
        if self.assist is not None:
            self.assist.start()
        return True

    def _shift(self, delta_s):
        from dataclasses import replace

        self.occupancy.shift_s = delta_s
        if self.assist is not None:
            self.assist.g = replace(self.assist.g, warning_s=self.g_.warning_s + delta_s)

    checkpoints = True      # the cars are trips of the traffic; the order and the vans' state are below

    def start(self, ctx):
        if self.assist is not None and self.order_s is not None:
            self.assist.start()

    def snapshot(self, ctx):
        a = self.assist
        out = {"order_s": self.order_s} if self.release is not None else {}
        if a is None:
            return out
        vans = [[v.step, v.at, list(map(int, v.group)), v.i, v.s, *a.fleet.wait_ref(v.proc._target, ctx.pending)]
                for v in a.vans]
        return {**out, "room": a.room, "pickup_s": a.pickup_s, "drop_s": a.drop_s, "shelter_idx": a.shelter_idx,
                "waiting": list(map(int, a.waiting)), "no_room": bool(a.no_room),
                "drops": [list(d) for d in a.drops], "vans": vans}

    def restore(self, ctx, state, time_s):
        from twin.scenarios.evacuation_assist import _Van

        if self.release is not None and state.get("order_s") is not None:
            self.order_s = float(state["order_s"])         # (the traffic's own state holds the released cars)
            self._shift(self.order_s - self.g_.warning_s)
        a = self.assist
        if a is None:
            return
        for k in ("room", "pickup_s", "drop_s", "shelter_idx"):
            setattr(a, k, np.array(state[k]))
        a.waiting, a.no_room = [int(p) for p in state["waiting"]], bool(state["no_room"])
        a.drops = [(float(t), int(s), float(n)) for t, s, n in state["drops"]]
        for step, at, group, i, s, *ref in state["vans"]:
            v = _Van()
            v.step, v.at, v.group, v.i, v.s = int(step), int(at), [int(p) for p in group], int(i), int(s)
            a.start_van(v, a.fleet.wait_event(ref, ctx.wakeup))

    def harms(self, ctx, result, windows):
        """``shelter_full``: at a shelter's node, the persons arrived by the window's end (by car)
        fill its capacity."""
        if ctx.city is None or not hasattr(self, "arrived_cars"):
            return {}
        plan, cars = ctx.plan(self), self.arrived_cars
        out = np.zeros((len(windows), ctx.city.n_nodes), dtype=bool)
        for k, (_, node, cap) in enumerate(plan.shelters):
            mine = cars[cars["shelter_idx"] == k]
            t, persons = mine["arrive_s"].to_numpy(np.float64), mine["persons"].to_numpy(np.float64)
            for i, (a, b) in enumerate(windows):
                out[i, node] |= bool(cap > 0 and persons[t < b].sum() >= cap)
        return {"shelter_full": out}

    def finish(self, ctx):
        plan, g = ctx.plan(self), ctx.groups["evacuation"]
        if g.order == "rule":
            plan, g = _shifted(plan, g, math.inf if self.order_s is None else self.order_s - g.warning_s)
        cars = plan.cars.copy()
        go = cars["shelter_idx"] >= 0
        driven = go & ~cars["in_place"]
        trips = ctx.port(TripOutcome).trips(plan.rows)
        cars["arrive_s"] = np.nan
        cars.loc[driven, "arrive_s"] = trips["arrive_s"].to_numpy()
        cars.loc[go & cars["in_place"], "arrive_s"] = cars.loc[go & cars["in_place"], "depart_s"]
        arrived = cars["arrive_s"].notna()
        stuck = np.zeros(len(cars), dtype=bool)
        stuck[np.flatnonzero(driven.to_numpy())] = ctx.port(TripOutcome).stranded(plan.rows)
        stuck &= ~arrived.to_numpy()
        self.arrived_cars = cars[arrived]                    # for harms()
        kpis = {"evacuation_persons_told": plan.told, "evacuation_persons_stayed": plan.stayed,
                "evacuation_persons_sheltered": float(cars.loc[arrived, "persons"].sum()),
                "evacuation_persons_travelling": float(cars.loc[go & ~arrived & ~stuck, "persons"].sum()),
                "evacuation_persons_stranded": float(cars.loc[stuck, "persons"].sum()),
                "evacuation_persons_no_shelter": plan.no_shelter,
                "evacuation_cars": float(go.sum())}
        more, extra_lines, area = _walk_assist_kpis(plan, g, self.assist, ctx.until_s, cars)
        for k, v in more.items():
            kpis[k] = kpis.get(k, 0.0) + v
        t = np.sort(cars.loc[arrived, "arrive_s"].to_numpy() - g.warning_s)
        for pct in (50, 90, 95, 100):
            k = int(math.ceil(pct / 100.0 * go.sum())) - 1
            kpis[f"evacuation_clearance_{pct}_s"] = float(t[k]) if 0 <= k < len(t) else math.nan
        if plan.bound is not None:
            for pct, v in plan.bound.cleared_share_s.items():
                kpis[f"evacuation_bound_{pct}_s"] = float(v)
        by = ""
        if ctx.groups["evacuation"].order == "rule":      # (at a fixed time it is a setting, not an outcome)
            kpis["evacuation_order_s"] = g.warning_s if math.isfinite(g.warning_s) else math.nan
            by = " by rule"
        b = "" if plan.bound is None else f" (network's quickest {_fmt_min(kpis['evacuation_bound_90_s'])})"
        lines = [f"{'evacuation':<34} {plan.told:,.0f} persons told at {g.warning_s / 3600:.2f} h{by}: "
                 f"{kpis['evacuation_persons_sheltered']:,.0f} sheltered, {kpis['evacuation_persons_travelling']:,.0f} "
                 f"still travelling, {kpis['evacuation_persons_stranded']:,.0f} stranded, "
                 f"{kpis['evacuation_persons_no_shelter']:,.0f} without a shelter place, {plan.stayed:,.0f} stayed",
                 f"{'evacuation clearance':<34} 90 % of {int(go.sum()):,} cars by "
                 f"{_fmt_min(kpis['evacuation_clearance_90_s'])}{b}, all by {_fmt_min(kpis['evacuation_clearance_100_s'])}"]
        lines += extra_lines
        if not math.isfinite(g.warning_s):
            lines = [f"{'evacuation':<34} no order given (its rule never fired): {ctx.plan(self).told:,.0f} persons "
                     f"of the area not told"]
        if any(plan.flooded):
            kpis["evacuation_shelters_flooded"] = float(sum(plan.flooded))
            lines.append(f"{'  shelters in the water (not used)':<34} "
                         + ", ".join(s[0] for s, f in zip(plan.shelters, plan.flooded) if f))
        city = ctx.city

        def write(writer):
            ids = np.asarray(city.node_ids)
            _write_people(writer, plan, self.assist, cars, area[0], ids)
            writer.write_array("/timeseries/evacuation_area/time_s", area[0], units="s")
            for name, values, what in (("persons_in_area", area[1], "persons of the area told to leave still in it "
                                        "(stayed, not yet left, waiting for assistance)"),
                                       ("waiting_assistance", area[2], "persons waiting for a van")):
                writer.write_array(f"/timeseries/evacuation_area/{name}", values, units="persons",
                                   attrs={"time_path": "/timeseries/evacuation_area/time_s", "description": what})
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
                "capacity": np.array([s[2] for s in plan.shelters], dtype=np.float64),
                **({"flooded": np.array(plan.flooded, dtype=bool)} if any(plan.flooded) else {})},
                units={"name": "", "node": "", "capacity": "persons", **({"flooded": ""} if any(plan.flooded) else {})})

        return FlowResult(self.name, kpis=kpis, values={}, lines=lines, write=write)
