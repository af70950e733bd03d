"""The 12345 flow: non-emergency requests to the citizen hotline, worked by field teams.

A request (a damaged road, a water leak, noise ...) is reported to the 12345 hotline, forwarded
to the department that handles its type, and closed when a field team of that department has
driven to the site and done the work there::

    [requests]
    population = { "1" = 12000, "2" = 38000 }   # persons present per district (no [population])
    hourly_profile = [0.2, 0.1, ...]              # 24 multipliers of the rate (mean 1 keeps the total)
    forward = { kind = "constant", mean_s = 1800 }   # hotline ticket -> the department's work order
    policy = "fifo"                               # or "deadline", "nearest"

    [[request_types]]
    name = "road-damage"
    department = "roads"
    rate_per_1000_per_day = 0.3                   # requests a day per 1,000 persons present
    on_site = { kind = "lognormal", mean_s = 3600, cv = 0.5 }
    sla_s = 86400                                 # closed within a day of the call

    [[departments]]
    name = "roads"
    node = 8131109677                             # the teams' base
    teams = 3
    hours = [8, 18]                               # a team starts work only from 08:00 to 18:00

The model, at the fidelity of a service-level study:

* **Demand**: in hour ``h`` of the day, district ``d`` reports type ``k`` as a Poisson process
  of rate ``r_k / 1000 / 24 × P[h, d] × w[h]`` per hour: ``r_k`` the type's
  ``rate_per_1000_per_day``, ``P`` the persons present (the population's
  :class:`~twin.ports.Presence` when the scenario has one, else ``[requests] population`` at
  every hour), ``w`` the ``hourly_profile`` (default flat). A request's site is a node of its
  district drawn with equal weight (``locations = "nodes"``), or the district's centroid node
  (``"centroid"``: the node nearest the mean coordinate of its nodes). Requests arrive on ``[0,
  until_s)``; all draws are made when the run is built, from the ``requests`` stream. A
  forecast member (:mod:`twin.forecast`) draws the requests called after its start again on
  its own dice, at its ``call_rate`` factor (the emergency calls' factor); those called before
  stay as they were.
* **Forwarding**: the work order reaches the department ``forward`` after the call (default
  0 s; a ticket queue of hours is common, an assumption to set per city).
* **Field teams**: a department's ``teams`` wait at its base. A team idle at the base takes a
  waiting work order by the ``policy`` (``fifo``: the oldest work order; ``deadline``: the
  earliest SLA deadline; ``nearest``: the site nearest by current travel time), drives there,
  works ``on_site`` and closes the request. If another order waits it drives straight on to
  it; otherwise it drives back and is free again at the base (an order that comes in while it
  drives back waits for it). Teams start a job only within ``hours`` (of the day, ``[0, 24]``
  by default); work under way is finished. The drives are ordinary vehicles of the traffic
  when the scenario has traffic (:class:`~twin.ports.LiveTravel`: queues, closures, waiting for
  a route), else free-flow times.
* **Service level**: a request is *within the SLA* when it is closed no later than ``sla_s``
  after the call, *missed* when it is closed later or still open after its deadline at the end
  of the run, and *undetermined* when it is open and its deadline is after the end. The share
  within the SLA is within / (within + missed).

KPIs: ``requests_received``, ``requests_closed``, ``requests_within_sla_share``,
``requests_open_end`` (backlog at the end), ``requests_backlog_max``, ``requests_close_mean_s``
and ``requests_close_p90_s`` (call to closure, closed requests), and per department
``requests_<department>_within_sla_share`` and ``requests_<department>_team_utilisation``
(team-time away from the base / team-time), per district ``requests_district_<d>_within_sla_share``.
The results file gets ``/events/requests`` (one row per request), ``/summary/requests_districts``,
``/summary/requests_departments`` and ``/timeseries/requests/*`` (the backlog: requests
received and not closed, per district, every ``backlog_every_s``).

Not modelled: a request reported twice, work needing several visits or several teams, teams
of different skills in one department, priorities within a type, a team reassigned on its way
back, the hotline's own call takers (the EMS flow's centres model those for 110/119/120).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.dists import Dist
from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import LiveTravel, Presence
from twin.spec import Table, did_you_mean, setting, where

__all__ = ["RequestsGroup", "RequestTypeGroup", "DepartmentGroup", "RequestsFlow", "RequestPlan", "plan_requests"]

HOUR_S, DAY_S = 3600.0, 86400.0
#: The most requests a run may draw (an expected count above it is an error, not a hang).
MAX_REQUESTS = 5_000_000
POLICIES = ("fifo", "deadline", "nearest")


def _dist(value, where_):
    return Dist.parse(value, where_)


@dataclass(frozen=True)
class RequestsGroup:
    """``[requests]``: where the persons are, when they call, and how work orders are taken."""

    population: dict | None = setting(None, "table", "district id -> persons present at every hour, when the "
                                                     "scenario has no [population]")
    hourly_profile: tuple = setting((1.0,) * 24, "floats", "24 multipliers of the rates by hour of day (hour 0 = "
                                                           "the run's first hour; mean 1 keeps the daily total)",
                                    min_len=24, max_len=24)
    locations: str = setting("nodes", "choice", "a request's site: any node of its district (nodes) or the "
                                                "district's centroid node (centroid)", choices=("nodes", "centroid"))
    forward: object = setting(Dist("constant", 0.0, 0.0), "dist", "from the call to the department's work order, "
                                                                  "seconds", convert=_dist, plain=Dist.plain)
    policy: str = setting("fifo", "choice", "which waiting work order a free team takes: the oldest (fifo), the "
                                            "earliest SLA deadline (deadline) or the nearest (nearest)",
                          choices=POLICIES)
    backlog_every_s: float = setting(3600.0, "float", "the backlog time series' step, seconds", minimum=60.0)


@dataclass(frozen=True)
class RequestTypeGroup:
    """``[[request_types]]``: a kind of request, its rate, its department and its service level."""

    name: str = setting("", "str", "request type name")
    department: str = setting("", "str", "the [[departments]] name that handles it")
    rate_per_1000_per_day: float = setting(0.0, "float", "requests a day per 1,000 persons present", minimum=0.0,
                                           maximum=1e6)
    on_site: object = setting(Dist("constant", 1800.0, 0.0), "dist", "the work at the site, seconds",
                              convert=_dist, plain=Dist.plain)
    sla_s: float = setting(DAY_S, "float", "service-level target: closed within this long after the call, seconds",
                           minimum=0.0, strict=True)


@dataclass(frozen=True)
class DepartmentGroup:
    """``[[departments]]``: a department's field teams and their base."""

    name: str = setting("", "str", "department name")
    node: object = setting(None, "node", "city node id of the teams' base")
    teams: int = setting(1, "int", "field teams", minimum=0, maximum=10_000)
    hours: tuple = setting((0.0, 24.0), "floats", "[start, end] hours of the day in which a team starts a job",
                           min_len=2, max_len=2)


@dataclass(frozen=True, eq=False)
class RequestPlan:
    """Types (names, department index, SLA, on-site time), departments (names, base node
    indices, teams, hours), districts (names, candidate site node indices) and the rates
    ``rate_per_h`` (24, districts, types)."""

    group: RequestsGroup
    types: tuple
    type_dept: np.ndarray
    sla_s: np.ndarray
    on_site: tuple
    depts: tuple
    dept_node: np.ndarray
    teams: np.ndarray
    hours: np.ndarray
    districts: tuple
    district_nodes: tuple
    rate_per_h: np.ndarray


def _districts(city, g, at):
    """District names and, per district, the node indices a request may come from."""
    if city.n_zones:
        names = tuple(str(z) for z in city.zone_ids)
        of = np.asarray(city.zone_of_node, dtype=np.int64)
    else:
        names, of = ("city",), np.zeros(city.n_nodes, dtype=np.int64)
    nodes = []
    for d in range(len(names)):
        idx = np.flatnonzero(of == d)
        if g.locations == "centroid" and len(idx) and city.has_coordinates:
            x, y = city.x_m[idx], city.y_m[idx]
            idx = idx[[int(np.argmin((x - x.mean()) ** 2 + (y - y.mean()) ** 2))]]
        elif g.locations == "centroid" and len(idx):
            idx = idx[:1]
        nodes.append(idx)
    return names, tuple(nodes)


def _present(g, names, presence, at):
    """Persons present (24, districts)."""
    if presence is not None:
        if g.population:
            raise ScenarioError(f"{at} population conflicts with the scenario's [population] (persons present "
                                f"come from it); remove [requests] population")
        return np.asarray(presence.present_by_zone().to_numpy(dtype=np.float64), dtype=np.float64)
    if not g.population:
        raise ScenarioError(f"{at}: requests come from the persons present; add [population], or [requests] "
                            f"population = {{ district id = persons }} (districts: {', '.join(names)})")
    pop = np.zeros(len(names))
    for k, v in g.population.items():
        if str(k) not in names:
            raise ScenarioError(f"{at} population: no district {k!r}; {did_you_mean(k, names)}districts: "
                                f"{', '.join(names)}")
        pop[names.index(str(k))] = v
    return np.tile(pop, (24, 1))


def plan_requests(ctx):
    """Check ``[requests]``, ``[[request_types]]`` and ``[[departments]]`` against the city."""
    source, city = ctx.source, ctx.city
    g = ctx.groups.get("requests") or RequestsGroup()
    types, depts = ctx.groups.get("request_types") or [], ctx.groups.get("departments") or []
    at = where(source, "requests")
    if not types:
        first = "departments" if depts else "requests"
        raise ScenarioError(f"{where(source, first)}: no [[request_types]]; give at least one (name, department, "
                            f"rate_per_1000_per_day)")
    if not depts:
        raise ScenarioError(f"{where(source, 'request_types')}: no [[departments]]; give the department of each "
                            f"request type (name, node, teams)")
    dnames = [d.name for d in depts]
    tnames = [t.name for t in types]
    for label, names in (("departments", dnames), ("request_types", tnames)):
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ScenarioError(f"{where(source, label)}: name {dup[0]!r} is used twice; names must be unique")
    type_dept = []
    for i, t in enumerate(types):
        if t.department not in dnames:
            raise ScenarioError(f"{where(source, 'request_types', i, t.name)} department = {t.department!r}: no such "
                                f"[[departments]]; {did_you_mean(t.department, dnames)}departments: "
                                f"{', '.join(dnames)}")
        type_dept.append(dnames.index(t.department))
    hours = np.array([d.hours for d in depts], dtype=np.float64).reshape(len(depts), 2)
    for i, d in enumerate(depts):
        a, b = hours[i]
        if not (0.0 <= a < b <= 24.0):
            raise ScenarioError(f"{where(source, 'departments', i, d.name)} hours = [{a:g}, {b:g}]; expected "
                                f"[start, end] with 0 <= start < end <= 24 (hours of the day; no shift past "
                                f"midnight)")
    nodes = np.array([scenario_node_index(city, d.node, where(source, "departments", i, d.name))
                      for i, d in enumerate(depts)], dtype=np.int64)
    names, dnodes = _districts(city, g, at)
    present = _present(g, names, ctx.port(Presence), at)
    rate = np.array([t.rate_per_1000_per_day for t in types])
    lam = (present[:, :, None] / 1000.0 / 24.0) * rate[None, None, :] * np.asarray(g.hourly_profile)[:, None, None]
    empty = [names[d] for d in range(len(names)) if not len(dnodes[d])]
    lam[:, [names.index(e) for e in empty], :] = 0.0
    dnodes = _reachable(city, nodes, dnodes, np.asarray(type_dept), lam, names, at)
    return RequestPlan(g, tuple(tnames), np.asarray(type_dept, dtype=np.int64),
                       np.array([t.sla_s for t in types]), tuple(t.on_site for t in types), tuple(dnames), nodes,
                       np.array([d.teams for d in depts], dtype=np.int64), hours, names, dnodes, lam)


def _reachable(city, base, dnodes, type_dept, lam, names, at):
    """Leave out of each district's sites the nodes a department's teams cannot reach from
    their base and return from on free-flow roads; a district with requests and no site left
    is an error."""
    ids = city.node_ids
    out = np.asarray(city.travel_times(ids[base]))                   # (departments, nodes)
    back = np.asarray(city.travel_times_to(ids[base]))
    ok_all = np.isfinite(out) & np.isfinite(back)
    kept = []
    for d, idx in enumerate(dnodes):
        depts = sorted({int(type_dept[k]) for k in range(lam.shape[2]) if lam[:, d, k].any()})
        ok = np.ones(len(idx), dtype=bool)
        for j in depts:
            ok &= ok_all[j, idx]
        if len(idx) and not ok.any() and depts:
            raise ScenarioError(f"{at}: no node of district {names[d]} can be reached from a department base and "
                                f"back (check the departments' nodes)")
        kept.append(idx[ok])
    return tuple(kept)


class _StaticFleet:
    """Free-flow drives when the scenario has no traffic: ``time_s`` and ``drive`` (a timeout)."""

    def __init__(self, city, loc_nodes):
        self.city, self.loc_nodes = city, np.asarray(loc_nodes, dtype=np.int64)
        self._rows = {}
        self.no_route_legs = 0

    def time_s(self, origin_idx, destination_idx):
        if not isinstance(origin_idx, (int, np.integer)):
            return np.array([self.time_s(int(o), destination_idx) for o in origin_idx], dtype=np.float64)
        row = self._rows.get(int(origin_idx))
        if row is None:
            ids = self.city.node_ids
            row = self.city.travel_times(ids[self.loc_nodes[int(origin_idx)]], ids[self.loc_nodes])[0]
            self._rows[int(origin_idx)] = row
        return row[destination_idx] if not isinstance(destination_idx, (int, np.integer)) else float(row[destination_idx])

    def drive(self, env, o, d, *, leg, priority):
        return env.timeout(float(self.time_s(o, d)))

    def wait_ref(self, event, pending):
        return ["clock", *pending(event)]

    def wait_event(self, ref, wakeup):
        return wakeup(ref[1:])


def _draw(p, until, rng, scale=1.0):
    """Every request of a run of ``until`` seconds (plan ``p``), from the rates times ``scale``,
    in call order: the per-request arrays of :attr:`RequestOperation.DRAWN` and ``order`` (the
    work orders' order)."""
    n_h = int(math.ceil(until / HOUR_S)) if until > 0 else 0
    start = np.arange(n_h) * HOUR_S
    span = np.minimum(HOUR_S, until - start)
    lam = p.rate_per_h[np.arange(n_h) % 24] * (span / HOUR_S)[:, None, None] * scale   # (hours, districts, types)
    expected = float(lam.sum())
    if expected > MAX_REQUESTS:
        raise ScenarioError(f"[[request_types]]: the rates give about {expected:,.0f} requests over the run, "
                            f"more than the {MAX_REQUESTS:,} a run may hold; lower rate_per_1000_per_day or "
                            f"run.until_s")
    counts = rng.poisson(lam).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    h, d, k = np.unravel_index(cell, lam.shape)
    t = start[h] + rng.random(len(cell)) * span[h]
    o = np.argsort(t, kind="stable")
    out = {"t_s": t[o], "district": d[o].astype(np.int64), "type": k[o].astype(np.int64)}
    u = rng.random((len(o), 3))
    site = np.zeros(len(o), dtype=np.int64)
    for j in range(len(p.districts)):
        m = out["district"] == j
        if m.any():
            nodes = p.district_nodes[j]
            site[m] = nodes[np.minimum((u[m, 0] * len(nodes)).astype(np.int64), len(nodes) - 1)]
    out["site_node"] = site
    out["order_s"] = out["t_s"] + p.group.forward.ppf(u[:, 1])
    out["on_site_s"] = np.zeros(len(o))
    for k in range(len(p.types)):
        m = out["type"] == k
        out["on_site_s"][m] = p.on_site[k].ppf(u[m, 2])
    out["deadline_s"] = out["t_s"] + p.sla_s[out["type"]]
    out["dept"] = p.type_dept[out["type"]]
    out["order"] = np.argsort(out["order_s"], kind="stable")
    return out


class RequestOperation:
    """The run's requests, queues and teams (see the module docstring). Per request:
    ``t_s`` (call), ``type``, ``district``, ``loc`` (location index: departments' bases
    first, then the sites), ``order_s`` (work order), ``on_site_s``; outcomes ``team``,
    ``dispatch_s``, ``arrive_s``, ``closed_s`` (NaN / -1 until they happen)."""

    #: Per-request arrays drawn up front (:func:`_draw`), in call order.
    DRAWN = ("t_s", "district", "type", "site_node", "order_s", "on_site_s", "deadline_s", "dept")

    def __init__(self, plan, rng, env, until_s, city, live):
        p = self.plan = plan
        self.env, self.until_s = env, float(until_s)
        for k, v in _draw(plan, self.until_s, rng).items():
            setattr(self, k, v)
        # places the teams drive between: the bases, then every node a request may come from
        self.sites = np.unique(np.concatenate([np.asarray(x, dtype=np.int64) for x in p.district_nodes] + [[]]
                                              ).astype(np.int64))
        loc_nodes = np.concatenate([p.dept_node, self.sites]).astype(np.int64)
        self.fleet = (live.fleet(loc_nodes, ("to_site", "return")) if live is not None
                      else _StaticFleet(city, loc_nodes))
        self._outcomes(0)
        self.team_dept = np.repeat(np.arange(len(p.depts)), p.teams).astype(np.int64)
        self.idle = [list(np.flatnonzero(self.team_dept == j)) for j in range(len(p.depts))]   # team ids at base
        self.queue = [[] for _ in range(len(p.depts))]                                           # request ids waiting
        self.since = np.zeros(len(self.team_dept))     # when each busy team left its base
        self.busy_s = np.zeros(len(self.team_dept))    # team-time away from the base, seconds
        self.next = 0                                  # the next work order (in order_s order) to come in
        self.jobs = []

    def _outcomes(self, n0):
        """Each request's location and, from request ``n0`` on, outcomes not happened yet."""
        n = len(self.t_s)
        self.loc = (len(self.plan.depts) + np.searchsorted(self.sites, self.site_node)).astype(np.int64)
        self.team = np.concatenate([getattr(self, "team", np.zeros(0, np.int64))[:n0],
                                    np.full(n - n0, -1, dtype=np.int64)])
        for k in ("dispatch_s", "arrive_s", "closed_s"):
            setattr(self, k, np.concatenate([getattr(self, k, np.zeros(0))[:n0], np.full(n - n0, np.nan)]))

    def redraw(self, rng, rate_factor, now_s):
        """A forecast member's requests: those called after ``now_s`` drawn again with ``rng``,
        every rate times ``rate_factor`` (a Poisson count at ``f`` times the mean); those called
        before stay, with what became of them. Call :meth:`intake` again after (the order of the
        work orders to come changes)."""
        if not (rate_factor >= 0.0 and math.isfinite(rate_factor)):
            raise ValueError(f"redraw: rate factor {rate_factor}; expected a finite factor >= 0")
        n0 = int(np.searchsorted(self.t_s, now_s, side="right"))          # (call order: a prefix)
        new = _draw(self.plan, self.until_s, rng, rate_factor)
        ahead = new["t_s"] > now_s
        came = self.order[:self.next]                                    # work orders already in
        for k in self.DRAWN:
            setattr(self, k, np.concatenate([getattr(self, k)[:n0], new[k][ahead]]))
        self._outcomes(n0)
        rest = np.setdiff1d(np.arange(len(self.t_s)), came)
        self.order = np.concatenate([came, rest[np.argsort(self.order_s[rest], kind="stable")]]).astype(np.int64)

    # ------------------------------------------------------------------ the rules
    def on_shift(self, j, now):
        a, b = self.plan.hours[j]
        hod = (now % DAY_S) / HOUR_S
        return a <= hod < b

    def pick(self, j, at_loc):
        """Take a waiting work order of department ``j`` for a team at location ``at_loc``."""
        q, policy = self.queue[j], self.plan.group.policy
        if policy == "fifo":
            i = 0
        elif policy == "deadline":
            i = int(np.argmin(self.deadline_s[q]))
        else:
            t = self.fleet.time_s(np.array([int(at_loc)]), self.loc[q])        # (1, waiting), seconds
            i = int(np.argmin(np.asarray(t, dtype=np.float64).reshape(-1)))
        return q.pop(i)

    def dispatch(self, j, now):
        """Send department ``j``'s teams at the base to its waiting work orders."""
        j = int(j)
        if not self.on_shift(j, now):
            return
        while self.idle[j] and self.queue[j]:
            r = self.pick(j, j)
            team = self.idle[j].pop(0)
            self.since[team] = now
            self.start_job(_Job(team, r, j, j))

    # ------------------------------------------------------------------ processes
    def intake(self, wait=None):
        """Work orders come in at their ``order_s`` (restored: after ``wait``). Interrupted (a
        forecast member's :meth:`redraw`), it waits for the next one of the new order."""
        import simpy

        env = self.env
        if wait is not None:
            try:
                yield wait
            except simpy.Interrupt:
                pass
        while self.next < len(self.order):
            r = int(self.order[self.next])
            if self.order_s[r] > env.now:
                try:
                    yield env.timeout(self.order_s[r] - env.now)
                except simpy.Interrupt:
                    continue
            self.next += 1
            j = int(self.dept[r])
            self.queue[j].append(r)
            self.dispatch(j, env.now)

    def shifts(self, j, wait=None):
        """Department ``j``'s shift starts: its teams take the waiting work orders."""
        env, a = self.env, self.plan.hours[j][0] * HOUR_S
        if wait is not None:
            yield wait
            self.dispatch(j, env.now)
        while True:
            if env.now >= self.until_s and not self.queue[j]:
                return
            day = math.floor((env.now - a) / DAY_S) + 1
            yield env.timeout(day * DAY_S + a - env.now)
            self.dispatch(j, env.now)

    def start_job(self, rec, wait=None):
        self.jobs.append(rec)
        rec.proc = self.env.process(self._job(rec, wait))

    def _job(self, rec, wait=None):
        """A team's work: step 0 driving to the site, 1 on site, 2 driving back to the base."""
        env, fleet = self.env, self.fleet
        j = rec.dept
        while True:
            r = rec.r
            if rec.step == 0:
                if wait is None:
                    self.team[r], self.dispatch_s[r] = rec.team, env.now
                    wait = fleet.drive(env, rec.origin, int(self.loc[r]), leg="to_site", priority=0)
                yield wait
                self.arrive_s[r] = env.now
                rec.step, wait = 1, env.timeout(self.on_site_s[r])
            if rec.step == 1:
                yield wait
                wait = None
                self.closed_s[r] = env.now
                if self.queue[j] and self.on_shift(j, env.now):
                    rec.origin, rec.r, rec.step = int(self.loc[r]), self.pick(j, int(self.loc[r])), 0
                    continue
                rec.step, rec.origin = 2, int(self.loc[r])
            break
        yield wait if wait is not None else fleet.drive(env, rec.origin, j, leg="return", priority=0)
        self.busy_s[rec.team] += env.now - self.since[rec.team]
        self.idle[j].append(rec.team)
        self.idle[j].sort()
        self.jobs.remove(rec)
        self.dispatch(j, env.now)


class _Job:
    """A team on a job: team, request, department, step (see :meth:`RequestOperation._job`),
    the location it drives from, its process."""

    __slots__ = ("team", "r", "dept", "origin", "step", "proc")

    def __init__(self, team, r, dept, origin, step=0):
        self.team, self.r, self.dept = int(team), int(r), int(dept)
        self.origin, self.step, self.proc = int(origin), int(step), None


class RequestsFlow(Flow):
    """12345 requests worked by departments' field teams (an event flow on the shared clock)."""

    name = "requests"
    tables = (Table("requests", RequestsGroup, optional=True),
              Table("request_types", RequestTypeGroup, array=True,
                    required=(("department", "the [[departments]] name that handles it"),
                              ("rate_per_1000_per_day", "requests a day per 1,000 persons present"))),
              Table("departments", DepartmentGroup, array=True, required=(("node", "the teams' base, a city node id"),)))
    streams = ("requests",)
    uses = (Presence, LiveTravel)
    result_names = ("requests",)
    checkpoints = True

    def plan(self, ctx):
        return plan_requests(ctx)

    def build(self, ctx):
        self.op = RequestOperation(ctx.plan(self), ctx.streams.generator("requests"), ctx.clock, ctx.until_s,
                                   ctx.city, ctx.port(LiveTravel))

    def start(self, ctx):
        self._start(ctx, {}, fresh=True)

    def _start(self, ctx, waits, fresh):
        """The intake and the shift processes (restored: only those that were waiting, on ``waits``)."""
        op = self.op
        self.intake = ctx.clock.process(op.intake(waits.get("intake"))) if fresh or "intake" in waits else None
        self.shift_procs = {j: ctx.clock.process(op.shifts(j, waits.get(j))) for j in range(len(op.plan.depts))
                            if tuple(op.plan.hours[j]) != (0.0, 24.0) and (fresh or j in waits)}

    _ARRAYS = ("team", "dispatch_s", "arrive_s", "closed_s", "since", "busy_s")

    def snapshot(self, ctx):
        op = self.op
        out = {k: getattr(op, k) for k in self._ARRAYS}
        out["queue"] = [list(map(int, q)) for q in op.queue]
        out["idle"] = [list(map(int, q)) for q in op.idle]
        out["next"] = int(op.next)
        out["intake"] = ctx.pending(self.intake._target) if self.intake is not None and self.intake.is_alive else []
        out["shifts"] = [[j, *ctx.pending(p._target)] for j, p in self.shift_procs.items() if p.is_alive]
        out["jobs"] = [[r.team, r.r, r.dept, r.origin, r.step, *op.fleet.wait_ref(r.proc._target, ctx.pending)]
                       for r in op.jobs]
        return out

    def restore(self, ctx, state, time_s):
        op = self.op
        for k in self._ARRAYS:
            setattr(op, k, np.array(state[k]).astype(getattr(op, k).dtype))
        op.queue = [list(map(int, q)) for q in state["queue"]]
        op.idle = [list(map(int, q)) for q in state["idle"]]
        op.next = int(state["next"])
        for team, r, dept, origin, step, *ref in state["jobs"]:
            op.start_job(_Job(team, r, dept, origin, step), op.fleet.wait_event(ref, ctx.wakeup))
        waits = {int(j): ctx.wakeup(entry) for j, *entry in state["shifts"]}
        if len(state["intake"]):
            waits["intake"] = ctx.wakeup(state["intake"])
        self._start(ctx, waits, fresh=False)

    def fork(self, ctx, rng, factors):
        """A forecast member: the requests called from now on drawn again with ``rng``, their
        rate times the member's ``call_rate`` (the same factor as the emergency calls')."""
        self.op.redraw(rng, float(factors.get("call_rate", 1.0)), float(ctx.clock.now))
        if self.intake is not None and self.intake.is_alive:
            self.intake.interrupt()
        else:
            self.intake = ctx.clock.process(self.op.intake())

    def finish(self, ctx):
        return requests_result(self.op, ctx.clock.now)


def _outcomes(op, end_s):
    """Per request: 1 within the SLA, 0 missed, -1 undetermined at ``end_s``."""
    closed = np.isfinite(op.closed_s)
    out = np.full(len(op.t_s), -1, dtype=np.int8)
    out[closed] = (op.closed_s[closed] <= op.deadline_s[closed]).astype(np.int8)
    out[~closed & (op.deadline_s <= end_s)] = 0
    return out


def _share(outcome, mask):
    w, m = int(((outcome == 1) & mask).sum()), int(((outcome == 0) & mask).sum())
    return w / (w + m) if w + m else math.nan


def requests_result(op, end_s):
    """KPIs, report lines and the results-file section of a finished 12345 operation."""
    p = op.plan
    n = len(op.t_s)
    outcome = _outcomes(op, end_s)
    closed = np.isfinite(op.closed_s)
    close_s = op.closed_s[closed] - op.t_s[closed]
    times, backlog = _backlog(op, end_s)
    horizon = max(float(end_s), 1e-9)
    busy = op.busy_s.copy()
    for rec in op.jobs:                                 # teams still out at the end
        busy[rec.team] += end_s - op.since[rec.team]
    kpis = {"requests_received": float(n), "requests_closed": float(closed.sum()),
            "requests_within_sla_share": _share(outcome, np.ones(n, dtype=bool)),
            "requests_open_end": float(n - closed.sum()),
            "requests_backlog_max": float(backlog.sum(axis=1).max()) if len(times) else 0.0,
            "requests_close_mean_s": float(close_s.mean()) if len(close_s) else math.nan,
            "requests_close_p90_s": float(np.percentile(close_s, 90)) if len(close_s) else math.nan}
    dept_rows = []
    for j, name in enumerate(p.depts):
        m = op.dept == j
        teams = op.team_dept == j
        util = float(busy[teams].sum() / (teams.sum() * horizon)) if teams.any() else math.nan
        kpis[f"requests_{name}_within_sla_share"] = _share(outcome, m)
        kpis[f"requests_{name}_team_utilisation"] = util
        dept_rows.append((name, int(m.sum()), int((closed & m).sum()), kpis[f"requests_{name}_within_sla_share"], util))
    dist_rows = []
    for d, name in enumerate(p.districts):
        m = op.district == d
        if not m.any():
            continue
        kpis[f"requests_district_{name}_within_sla_share"] = _share(outcome, m)
        dist_rows.append((d, name, int(m.sum()), int((closed & m).sum()), int(((outcome == 1) & m).sum()),
                          int(((outcome == 0) & m).sum()), int((~closed & m).sum())))
    share, mean = kpis["requests_within_sla_share"], kpis["requests_close_mean_s"]
    undetermined = int((outcome == -1).sum())
    lines = [f"{'12345 requests':<34} {n:,} received, {int(closed.sum()):,} closed, "
             f"{'-' if math.isnan(share) else f'{100 * share:.1f} %'} within the SLA"
             + (f" ({undetermined} open, not yet due)" if undetermined else "")
             + f"; {'-' if math.isnan(mean) else f'{mean / 3600:.1f} h'} to close on average, "
             f"backlog {int(kpis['requests_open_end'])} at the end (at most {int(kpis['requests_backlog_max'])})"]
    for name, n_d, _, s, u in dept_rows:
        j = p.depts.index(name)
        lines.append(f"  {name:<32} {n_d:,} requests, {'-' if math.isnan(s) else f'{100 * s:.1f} %'} within the SLA; "
                     f"{int(p.teams[j])} team{'s' if p.teams[j] != 1 else ''}, {'-' if math.isnan(u) else f'{100 * u:.0f} %'}"
                     f" busy")
    if dist_rows:
        lines.append(f"{'  within the SLA by district':<34} " + ", ".join(
            f"{name} {'-' if w + mi == 0 else f'{100 * w / (w + mi):.0f} %'}" for _, name, _, _, w, mi, _ in dist_rows))

    def write(writer):
        _write_requests(writer, op, outcome, times, backlog, dept_rows, dist_rows)

    return FlowResult("requests", kpis=kpis, values={"requests": op}, lines=lines, write=write)


def _backlog(op, end_s):
    """Requests received and not closed at each step (times, districts)."""
    step = op.plan.group.backlog_every_s
    times = np.arange(0.0, float(end_s) + 1e-9, step)
    if not len(times) or times[-1] < end_s:
        times = np.append(times, float(end_s))
    closed = np.where(np.isfinite(op.closed_s), op.closed_s, np.inf)
    out = np.zeros((len(times), len(op.plan.districts)))
    for d in range(len(op.plan.districts)):
        m = op.district == d
        got = np.searchsorted(np.sort(op.t_s[m]), times, side="right")
        done = np.searchsorted(np.sort(closed[m]), times, side="right")
        out[:, d] = got - done
    return times, out


def _write_requests(writer, op, outcome, times, backlog, dept_rows, dist_rows):
    p = op.plan
    cols = {"time_s": op.t_s, "type": np.array([p.types[k] for k in op.type], dtype=str),
            "district": np.array([p.districts[d] for d in op.district], dtype=str),
            "node_idx": op.site_node.astype(np.int64),
            "department": np.array([p.depts[j] for j in op.dept], dtype=str),
            "order_s": op.order_s, "team": op.team, "dispatch_s": op.dispatch_s, "arrive_s": op.arrive_s,
            "closed_s": op.closed_s, "deadline_s": op.deadline_s, "within_sla": outcome}
    units = {"time_s": "s", "type": "", "district": "", "node_idx": "", "department": "", "order_s": "s",
             "team": "", "dispatch_s": "s", "arrive_s": "s", "closed_s": "s", "deadline_s": "s",
             "within_sla": "1 within, 0 missed, -1 open and not yet due"}
    writer.write_table("/events/requests", cols, units=units)
    writer.write_table("/summary/requests_departments", {
        "name": np.array([r[0] for r in dept_rows], dtype=str), "node_idx": p.dept_node.astype(np.int64),
        "teams": p.teams.astype(np.int64), "received": np.array([r[1] for r in dept_rows], dtype=np.int64),
        "closed": np.array([r[2] for r in dept_rows], dtype=np.int64),
        "within_sla_share": np.array([r[3] for r in dept_rows], dtype=np.float64),
        "team_utilisation": np.array([r[4] for r in dept_rows], dtype=np.float64)},
        units={"name": "", "node_idx": "", "teams": "1", "received": "1", "closed": "1", "within_sla_share": "1",
               "team_utilisation": "1"})
    writer.write_table("/summary/requests_districts", {
        "district": np.array([r[1] for r in dist_rows], dtype=str),
        "received": np.array([r[2] for r in dist_rows], dtype=np.int64),
        "closed": np.array([r[3] for r in dist_rows], dtype=np.int64),
        "within_sla": np.array([r[4] for r in dist_rows], dtype=np.int64),
        "missed_sla": np.array([r[5] for r in dist_rows], dtype=np.int64),
        "open_end": np.array([r[6] for r in dist_rows], dtype=np.int64)},
        units={"district": "", "received": "1", "closed": "1", "within_sla": "1", "missed_sla": "1", "open_end": "1"})
    writer.write_array("/timeseries/requests/time_s", times, units="s")
    writer.write_array("/timeseries/requests/backlog", backlog, units="requests",
                       attrs={"time_path": "/timeseries/requests/time_s",
                              "columns_are": "districts: " + ", ".join(p.districts),
                              "description": "requests received and not closed"})
