"""The elderly-care flow's run: day-care places and home-care carers on the clock, and its results
(see :mod:`twin.scenarios.eldercare` for the model)."""

from __future__ import annotations

import math

import numpy as np
import simpy

from twin.flows import FlowResult
from twin.units import fmt_min, fmt_pct

__all__ = ["CareOperation", "eldercare_result", "open_windows"]

DAY_S = 86400.0
OUTCOMES = ("served", "turned away", "unserved")


def open_windows(open_s, close_s, until_s):
    """``(start_s, end_s)`` of each day's opening hours within ``[0, until_s)``."""
    out, day = [], 0.0
    while day < until_s:
        a, b = day + open_s, min(day + close_s, until_s)
        if a < b:
            out.append((a, b))
        day += DAY_S
    return out


def _poisson_in(windows, rate_per_s, rng):
    """Poisson arrival times at a constant rate inside the windows (sorted)."""
    times = [rng.uniform(a, b, rng.poisson(rate_per_s * (b - a))) for a, b in windows]
    return np.sort(np.concatenate(times)) if times else np.zeros(0)


class CareOperation:
    """The centres' places and carers for one run (processes registered by :meth:`start`)."""

    def __init__(self, plan, env, until_s, rng, fleet=None):
        self.plan, self.env, self.until_s, self.rng, self.fleet = plan, env, float(until_s), rng, fleet
        g = plan.group
        n_c = len(plan.centres)
        centre = plan.centre_of
        self.residents = np.zeros((n_c, 2))
        np.add.at(self.residents, (centre, plan.band), 1.0)
        self.dependents = np.bincount(centre[plan.dependent], minlength=n_c).astype(np.float64)
        self.visits = []            # [centre, arrive_s, start_s, end_s, outcome]
        self.home = []              # [centre, node_idx, request_s, start_s, done_s, kind (0 visit, 1 meal)]
        self.places = [simpy.Resource(env, capacity=max(1, c.places)) for c in plan.centres]
        self.busy = np.zeros(n_c, dtype=np.int64)
        self.max_busy = np.zeros(n_c, dtype=np.int64)
        self.series = []            # (time_s, busy places per centre)
        self.queues = [simpy.Store(env) for _ in plan.centres]
        self.procs = []             # records of the processes running (_Proc)
        self.next_arrival = [0] * n_c
        self.next_request = [0] * n_c
        self._home_row = {}         # id(row) -> index in home
        rate = np.array(g.daycare_visits_per_person_day)
        self.arrivals, self.requests = [], []
        for c, cg in enumerate(plan.centres):
            win = open_windows(cg.open_s, cg.close_s, self.until_s)
            open_day = cg.close_s - cg.open_s
            lam = float(self.residents[c] @ rate) / open_day
            self.arrivals.append(_poisson_in(win, lam, rng))
            parts = []
            for kind, who, per_day in ((0, plan.dependent, g.home_visits_per_dependent_day),
                                       (1, plan.dependent & plan.alone, g.meals_per_dependent_alone_day)):
                homes = plan.home[who & (centre == c)]
                t = _poisson_in(win, len(homes) * per_day / open_day, rng) if per_day > 0 else np.zeros(0)
                at = homes[rng.integers(0, len(homes), len(t))] if len(homes) else np.zeros(0, np.int64)
                parts.append((t, at, np.full(len(t), kind)))
            t = np.concatenate([p[0] for p in parts])
            order = np.argsort(t, kind="stable")
            self.requests.append((t[order], np.concatenate([p[1] for p in parts])[order],
                                  np.concatenate([p[2] for p in parts])[order]))

    def start(self):
        for c, cg in enumerate(self.plan.centres):
            self._go(_Proc("daycare", c), self._daycare)
            self._go(_Proc("requests", c), self._requests)
            for _ in range(cg.home_staff):
                self._go(_Proc("carer", c), self._carer)
        self._go(_Proc("record", -1), self._record)

    # Every process keeps a record (_Proc) in ``procs`` while it runs, so that a checkpoint can
    # write it as data and start it again at its step (eldercare_state); a restored process
    # first waits on ``wait``, the event it was waiting on.
    def _go(self, rec, fn, wait=None):
        self.procs.append(rec)
        rec.proc = self.env.process(self._run(rec, fn(rec, wait)))
        return rec

    def _run(self, rec, gen):
        yield from gen
        self.procs.remove(rec)

    # ---------------------------------------------------------------- day care
    def _daycare(self, rec, wait=None):
        c = rec.c
        while self.next_arrival[c] < len(self.arrivals[c]):
            t = self.arrivals[c][self.next_arrival[c]]
            yield wait if wait is not None else self.env.timeout(t - self.env.now)
            wait = None
            self.next_arrival[c] += 1
            v = _Proc("visit", c)
            v.t, v.u = float(t), float(self.rng.random())
            self._go(v, self._visit)

    def _visit(self, rec, wait=None):
        """A visit: step 0 waiting for a place (until closing), 1 in the place."""
        env, c = self.env, rec.c
        cg = self.plan.centres[c]
        if rec.row < 0:
            row = [c, rec.t, math.nan, math.nan, 0]
            rec.row = len(self.visits)
            self.visits.append(row)
            if cg.places == 0 or (cg.mode == "loss" and self.busy[c] >= cg.places):
                row[4] = 1
                return
            closing = math.floor(rec.t / DAY_S) * DAY_S + cg.close_s
            rec.req, wait = self.places[c].request(), env.timeout(max(closing - env.now, 0.0))
        row, req = self.visits[rec.row], rec.req
        with req:
            if rec.step == 0:
                rec.wait = wait
                got = yield req | wait
                if req not in got:
                    row[4] = 2                              # waited until closing: unserved
                    return
                self.busy[c] += 1
                self.max_busy[c] = max(self.max_busy[c], self.busy[c])
                row[2] = env.now
                rec.step, wait = 1, env.timeout(float(cg.visit.ppf(rec.u)))
            yield wait
            self.busy[c] -= 1
            row[3] = env.now

    def _record(self, rec, wait=None):
        env = self.env
        if wait is not None:
            yield wait
        while env.now < self.until_s:
            self.series.append((env.now, self.busy.copy()))
            yield env.timeout(min(3600.0, self.until_s - env.now))
        self.series.append((env.now, self.busy.copy()))

    # ---------------------------------------------------------------- home care
    def _requests(self, rec, wait=None):
        c = rec.c
        times, homes, kinds = self.requests[c]
        while self.next_request[c] < len(times):
            i = self.next_request[c]
            yield wait if wait is not None else self.env.timeout(times[i] - self.env.now)
            wait = None
            self.next_request[c] = i + 1
            row = [c, int(homes[i]), times[i], math.nan, math.nan, int(kinds[i])]
            self._home_row[id(row)] = len(self.home)
            self.home.append(row)
            yield self.queues[c].put(row)

    def _carer(self, rec, wait=None):
        """A carer: step 0 closed (waiting for the opening), 1 waiting for a request (until
        closing), 2 driving to the home (fleet), 3 on site (fleet), 4 driving back (fleet),
        5 there and on site, 6 back."""
        env, c = self.env, rec.c
        cg, q = self.plan.centres[c], self.queues[c]
        while wait is not None or env.now < self.until_s:
            if wait is None:
                day = math.floor(env.now / DAY_S) * DAY_S
                a, b = day + cg.open_s, day + cg.close_s
                if env.now < a or env.now >= b:                  # closed: wait for the next opening
                    nxt = a if env.now < a else a + DAY_S
                    rec.step, wait = 0, env.timeout(min(nxt, self.until_s) - env.now)
                else:
                    rec.step, rec.req, wait = 1, q.get(), env.timeout(min(b, self.until_s) - env.now)
            if rec.step == 0:
                yield wait
                wait = None
                continue
            if rec.step == 1:
                get, rec.wait = rec.req, wait
                got = yield get | wait
                wait = None
                if get not in got:
                    get.cancel()
                    continue
                row = get.value
                rec.row = self._home_row[id(row)]
                row[3] = env.now
                rec.u = u = float(self.rng.random())
                if self.fleet is not None:                      # a vehicle of the live traffic, both ways
                    rec.step = 2
                    wait = self.fleet.drive(env, c, len(self.plan.centres) + row[1], leg="to home", priority=0)
                else:
                    there = float(self.plan.drive_s[c, row[1]])
                    rec.there = there if math.isfinite(there) else 0.0
                    on_site = cg.meal_drop if row[5] == 1 else cg.home_visit
                    rec.step, wait = 5, env.timeout(rec.there + float(on_site.ppf(u)))
            yield from self._home_visit(rec, wait)
            wait, rec.step, rec.row = None, 0, -1

    def _home_visit(self, rec, wait):
        env, c = self.env, rec.c
        row = self.home[rec.row]
        on_site = self.plan.centres[c].meal_drop if row[5] == 1 else self.plan.centres[c].home_visit
        if rec.step == 2:
            yield wait
            rec.step, wait = 3, env.timeout(float(on_site.ppf(rec.u)))
        if rec.step == 3:
            yield wait
            row[4] = env.now
            rec.step, wait = 4, self.fleet.drive(env, len(self.plan.centres) + row[1], c, leg="back", priority=0)
        if rec.step == 5:
            yield wait
            row[4] = env.now
            rec.step, wait = 6, env.timeout(rec.there)
        yield wait                                            # step 4 or 6: on the way back


class _Proc:
    """A care process's record: kind (daycare, requests, record, visit, carer), centre, step,
    row (visits or home), the arrival time and uniform of a visit, a carer's uniform and drive
    time, its request (a place or the queue's get) and the event it waits on besides it."""

    __slots__ = ("proc", "kind", "c", "step", "row", "t", "u", "there", "req", "wait")

    def __init__(self, kind, c):
        self.kind, self.c, self.step, self.row = kind, int(c), 0, -1
        self.t = self.u = self.there = math.nan
        self.proc = self.req = self.wait = None


def eldercare_result(op, city, fall_response_s, name):
    """KPIs, report lines and the results-file section of a finished care operation."""
    plan, until = op.plan, op.until_s
    v = np.array([r[1:] for r in op.visits], dtype=np.float64).reshape(-1, 4)
    h = np.array([r[2:] for r in op.home], dtype=np.float64).reshape(-1, 4)
    k = {key: val for key, val in plan.access.items() if not key.startswith("_")}
    arrived = v[:, 0] < until
    k.update(eldercare_residents_65=float(len(plan.home)), eldercare_residents_80=float((plan.band == 1).sum()),
             eldercare_dependent=float(plan.dependent.sum()), eldercare_daycare_visits=float(arrived.sum()),
             eldercare_daycare_turned_away_share=float((v[arrived, 3] == 1).mean()) if arrived.any() else math.nan,
             eldercare_daycare_unserved=float((v[arrived, 3] == 2).sum()))
    started = np.isfinite(v[:, 1])
    k["eldercare_daycare_wait_mean_s"] = float((v[started, 1] - v[started, 0]).mean()) if started.any() else math.nan
    k["eldercare_utilisation_mean"] = _utilisation(op)
    meal = h[:, 3] == 1
    asked = h[:, 0] < until
    started = asked & np.isfinite(h[:, 1]) & (h[:, 1] < until)
    req, done = asked & ~meal, started & ~meal
    wait = np.where(done, h[:, 1], until)[req] - h[req, 0]
    k.update(eldercare_home_visits_requested=float(req.sum()), eldercare_home_visits_started=float(done.sum()),
             eldercare_home_visits_unmet=float(req.sum() - done.sum()),
             eldercare_home_wait_mean_s=float(wait.mean()) if len(wait) else math.nan,
             eldercare_home_wait_p90_s=float(np.percentile(wait, 90)) if len(wait) else math.nan)
    if plan.group.meals_per_dependent_alone_day > 0:
        k.update(eldercare_meals_requested=float((asked & meal).sum()), eldercare_meals_delivered=float(
            (started & meal).sum()), eldercare_meals_unmet=float((asked & meal).sum() - (started & meal).sum()))
    k.update(_free_capacity_coverage(op))
    k["eldercare_visits_by_car_share"] = float(plan.by_car.mean()) if len(plan.by_car) else math.nan
    lines = [f"{'elderly care':<34} {len(plan.home):,} residents 65+ ({int(k['eldercare_residents_80']):,} 80+, "
             f"{int(k['eldercare_dependent']):,} care-dependent), {len(plan.centres)} centres",
             f"{'  within the walking circle':<34} 65+ {fmt_pct(k['eldercare_within_walk_share_65'])}, 80+ "
             f"{fmt_pct(k['eldercare_within_walk_share_80'])}; 2SFCA {k['eldercare_2sfca_per_1000_mean']:.1f} places "
             f"per 1,000, Gini {k.get('eldercare_access_gini', math.nan):.3f}",
             f"{'  day care':<34} {int(arrived.sum()):,} visits, {fmt_pct(k['eldercare_daycare_turned_away_share'])} "
             f"turned away, places used {fmt_pct(k['eldercare_utilisation_mean'])}",
             f"{'  home care':<34} {int(req.sum()):,} visits asked, {int(done.sum()):,} made, wait mean "
             f"{fmt_min(k['eldercare_home_wait_mean_s'])}"
             + (f"; meals {int(k['eldercare_meals_delivered']):,} of {int(k['eldercare_meals_requested']):,} "
                f"delivered" if "eldercare_meals_requested" in k else "")]
    if fall_response_s is not None:
        r = np.asarray(fall_response_s, dtype=np.float64)
        ok = r[np.isfinite(r)]
        k.update(eldercare_fall_calls=float(len(r)),
                 eldercare_fall_response_mean_s=float(ok.mean()) if len(ok) else math.nan,
                 eldercare_fall_response_p90_s=float(np.percentile(ok, 90)) if len(ok) else math.nan)
        lines.append(f"{'  falls and alarms (EMS calls)':<34} {len(r):,}, response mean "
                     f"{fmt_min(k['eldercare_fall_response_mean_s'])}, p90 {fmt_min(k['eldercare_fall_response_p90_s'])}")

    def write(writer):
        _write(writer, op, city, v, h)

    return FlowResult(name, kpis=k, values={"eldercare": op}, lines=lines, write=write)


def _free_capacity_coverage(op):
    """Shares of the 65+ and 80+ within the walking circle of a centre whose day-care places were
    never all taken during the run."""
    plan = op.plan
    free = np.array([op.max_busy[c] < max(cg.places, 1) for c, cg in enumerate(plan.centres)])
    ok = (plan.walk_s[:, free] <= plan.group.walk_limit_s).any(axis=1) if free.any() else \
        np.zeros(plan.walk_s.shape[0], dtype=bool)
    out = {}
    for b, label in ((0, "65"), (1, "80")):
        m = plan.band >= b
        out[f"eldercare_within_walk_free_share_{label}"] = float(ok[plan.home[m]].mean()) if m.any() else math.nan
    return out


def _utilisation(op):
    """Place-hours used over place-hours open, all centres (from the visits)."""
    used = sum(min(r[3] if math.isfinite(r[3]) else op.until_s, op.until_s) - r[2] for r in op.visits
               if math.isfinite(r[2]))
    cap = sum(c.places * sum(b - a for a, b in open_windows(c.open_s, c.close_s, op.until_s))
              for c in op.plan.centres)
    return float(used / cap) if cap > 0 else math.nan



def _write(writer, op, city, v, h):
    plan = op.plan
    names = np.array([c.name for c in plan.centres]).astype(str)
    writer.write_table("/network/care_centres", {
        "name": names, "node_idx": plan.centre_node.astype(np.int64),
        "places": np.array([c.places for c in plan.centres], dtype=np.int64),
        "home_staff": np.array([c.home_staff for c in plan.centres], dtype=np.int64),
        "open_s": np.array([c.open_s for c in plan.centres], dtype=np.float64),
        "close_s": np.array([c.close_s for c in plan.centres], dtype=np.float64),
        "residents_65": op.residents.sum(axis=1), "residents_80": op.residents[:, 1], "dependent": op.dependents},
        units={"name": "", "node_idx": "", "places": "persons", "home_staff": "persons", "open_s": "s", "close_s": "s",
               "residents_65": "persons",
               "residents_80": "persons", "dependent": "persons"})
    centre = np.array([r[0] for r in op.visits], dtype=np.int32)
    writer.write_table("/events/eldercare_visits", {
        "centre": centre, "arrive_s": v[:, 0], "start_s": v[:, 1], "end_s": v[:, 2],
        "outcome": np.array([OUTCOMES[int(o)] for o in v[:, 3]] or [], dtype=str)},
        units={"centre": "", "arrive_s": "s", "start_s": "s", "end_s": "s", "outcome": ""})
    writer.write_table("/events/eldercare_home_visits", {
        "centre": np.array([r[0] for r in op.home], dtype=np.int32),
        "node_idx": np.array([r[1] for r in op.home], dtype=np.int64),
        "request_s": h[:, 0], "start_s": h[:, 1], "done_s": h[:, 2],
        "kind": np.array(["meal" if x == 1 else "visit" for x in h[:, 3]], dtype=str)},
        units={"centre": "", "node_idx": "", "request_s": "s", "start_s": "s", "done_s": "s", "kind": ""})
    if op.series:
        writer.write_array("/timeseries/eldercare_centres/time_s", np.array([s[0] for s in op.series]), units="s")
        writer.write_array("/timeseries/eldercare_centres/occupied_places",
                           np.array([s[1] for s in op.series], dtype=np.float64), units="persons",
                           attrs={"time_path": "/timeseries/eldercare_centres/time_s",
                                  "description": "day-care places taken at each centre (columns: /network/care_centres)"})
    zone = np.asarray(city.zone_of_node)[plan.home]
    near = plan.access["_near"][plan.home]
    acc = plan.access["_per_node_2sfca"][plan.home] * 1000.0
    zs = [z for z in range(len(city.zone_ids)) if (zone == z).any()]
    writer.write_table("/network/eldercare_districts", {
        "zone_id": np.array([str(city.zone_ids[z]) for z in zs]).astype(str),
        "zone_idx": np.array(zs, dtype=np.int64),
        "residents_65": np.array([(zone == z).sum() for z in zs], dtype=np.float64),
        "residents_80": np.array([((zone == z) & (plan.band == 1)).sum() for z in zs], dtype=np.float64),
        "within_walk_share_65": np.array([near[zone == z].mean() for z in zs]),
        "within_walk_share_80": np.array([near[(zone == z) & (plan.band == 1)].mean()
                                          if ((zone == z) & (plan.band == 1)).any() else np.nan for z in zs]),
        "places_per_1000": np.array([acc[zone == z].mean() for z in zs])},
        units={"zone_id": "", "zone_idx": "", "residents_65": "persons", "residents_80": "persons", "within_walk_share_65": "1",
               "within_walk_share_80": "1", "places_per_1000": "1/1000 persons"})
