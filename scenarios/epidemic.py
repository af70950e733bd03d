"""The epidemic flow: ``[epidemic]`` and ``[[epidemic_seeds]]``, an outbreak on the population's contacts.

The synthetic population's households and day plans (port :class:`~twin.ports.DayPlans`) give
the contact layers (household, school, work, community; :mod:`twin.agents.epidemic_contacts`);
the disease (:mod:`twin.agents.epidemic`, Covasim 4.0.1's defaults) spreads on them one day
at a time on the run's clock: at 00:00 of day ``d`` the flow advances day ``d`` (the day's
transitions, then its transmission). The run's ``[run] until_s`` sets the days (``ceil(until_s
/ 86400)``).

Hospitals: severe cases need a ward bed, critical ones an ICU bed (loss pools; refused, they
fare worse by ``no_hosp_factor`` / ``no_icu_factor``). The pools hold ``ward_beds`` /
``icu_beds``, by default the ward and ICU beds of the scenario's ``[[hospitals]]`` (port
:class:`~twin.ports.HospitalBeds`), unlimited when neither is given. The hospitals' pools are
then shared on the clock (port :class:`~twin.ports.InpatientBeds`): each epidemic admission
takes a bed in the hospital with the most free beds at its time (its stay appears among the
EMS's inpatient stays with call id -2), and at 00:00 the beds the EMS's own inpatients hold are
not the epidemic's that day (a daily handshake: an EMS patient who takes the last bed during the
day leaves an epidemic admission without a hospital bed, counted as a *bed conflict*; the
epidemic's outcome was already decided with its own count). With ``call_share`` > 0, that share
of the new severe cases call 120 at the time they become severe, from their home district (port
:class:`~twin.ports.CallIntake`): the ambulances answer them through the city like every other
call.

Control (``[[interventions]]``, :mod:`twin.agents.epidemic_control`): a health code (test the
symptomatic, isolate the positive, trace and quarantine their household, school and work
contacts), district lockdowns, school closures and bed surges, each on a span of days; the
person-days restricted are their cost. Who stays home each day (in hospital, dead, isolated,
quarantined, locked down) sets the day's travel: the series ``car_trips`` counts the car legs
still made, and :func:`twin.agents.epidemic_control.travel_demand` gives that day's trips for a
traffic run.

Results: ``/timeseries/epidemic/*`` (one value per day: persons in each state, new infections
by layer, the day's events, beds in use), ``/timeseries/epidemic/new_by_zone`` (days x zones)
and ``/events/epidemic_infections`` (who infected whom, when, on which layer); KPIs
``epidemic_*`` and a report section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.ports import CallIntake, CallPlan, DayPlans, HospitalBeds, InpatientBeds
from twin.spec import Table, setting, where

__all__ = ["EpidemicGroup", "EpidemicSeedGroup", "InterventionGroup", "EpidemicFlow", "DAY_S"]

DAY_S = 86400.0
_DUR_HELP = "days: a number (constant) or {kind = 'lognormal' | 'gamma' | 'exponential', mean_d = ..., sd_d = ...}"


def _dur(value, where_):
    from twin.agents.epidemic import _duration

    if isinstance(value, dict):
        extra = sorted(set(value) - {"kind", "mean_d", "sd_d"})
        if extra or "kind" not in value or "mean_d" not in value:
            raise ScenarioError(f"{where_}: found {value!r}; expected {_DUR_HELP}")
        value = (value["kind"], value["mean_d"], value.get("sd_d", 0.0))
    elif isinstance(value, (list, tuple)):
        value = tuple(value)
    try:
        d = _duration(where_, value, zero_ok=str(where_).rstrip().endswith("latent"))
    except ScenarioError as exc:
        raise ScenarioError(f"{exc}; accepted: {_DUR_HELP}") from None
    return (d.kind, float(d.mean_s), float(d.mean_s * d.cv) if d.kind in ("lognormal", "gamma") else 0.0)


def _dur_plain(value):
    kind, mean, sd = value
    return mean if kind == "constant" else {"kind": kind, "mean_d": mean, "sd_d": sd}


def _dur_setting(name, description):
    from twin.agents.epidemic import DURATION_DEFAULTS

    return setting(DURATION_DEFAULTS[name], "dist", f"{description}, {_DUR_HELP} (default Covasim's)",
                   convert=_dur, plain=_dur_plain)


@dataclass(frozen=True)
class EpidemicGroup:
    """``[epidemic]``: the disease, the contact layers and the hospital beds (optional table)."""

    beta: float = setting(0.016, "float", "transmission per contact-day of full infectiousness (Covasim's 0.016)",
                          minimum=0.0)
    r0: float | None = setting(None, "float", "target R0: every layer's rate scaled so that the next-generation "
                                             "matrix's spectral radius is r0 (omit: beta as given)",
                               minimum=0.0, strict=True)
    household_weight: float = setting(3.0, "float", "relative transmission in the household layer", minimum=0.0)
    school_weight: float = setting(0.6, "float", "relative transmission in the school layer", minimum=0.0)
    work_weight: float = setting(0.6, "float", "relative transmission in the work layer", minimum=0.0)
    community_weight: float = setting(0.3, "float", "relative transmission in the community layer", minimum=0.0)
    school_group: int = setting(21, "int", "largest class, pupils (20 contacts each when full)", minimum=2)
    work_group: int = setting(17, "int", "largest team, workers (16 contacts each when full)", minimum=2)
    community_contacts: int = setting(3, "int", "community contacts per person per hour out of home", minimum=0)
    min_overlap_s: float = setting(900.0, "float", "least shared time for a school or work contact, seconds",
                                   minimum=0.0)
    asymptomatic_factor: float = setting(1.0, "float", "relative infectiousness of the asymptomatic", minimum=0.0)
    no_hosp_factor: float = setting(2.0, "float", "x probability of becoming critical without a ward bed",
                                    minimum=0.0)
    no_icu_factor: float = setting(2.0, "float", "x probability of dying without an ICU bed", minimum=0.0)
    ward_beds: int | None = setting(None, "int", "ward beds for the severe (omit: the hospitals' ward_beds, "
                                                 "else unlimited)", minimum=0)
    icu_beds: int | None = setting(None, "int", "ICU beds for the critical (omit: the hospitals' icu_beds, "
                                                "else unlimited)", minimum=0)
    profile_mean_d: float | None = setting(None, "float", "gamma infectiousness profile: mean days after "
                                                          "infection (omit: constant while infectious)",
                                           minimum=0.0, strict=True)
    profile_sd_d: float | None = setting(None, "float", "gamma infectiousness profile: sd, days", minimum=0.0,
                                         strict=True)
    call_share: float = setting(0.0, "float", "share of new severe cases that call 120 (0..1)", minimum=0.0,
                                maximum=1.0)
    call_type: str = setting("", "str", "call type of those calls (default: the first [[call_types]])")
    latent: object = _dur_setting("latent", "exposed -> infectious")
    presymptomatic: object = _dur_setting("presymptomatic", "infectious -> symptoms")
    asymptomatic: object = _dur_setting("asymptomatic", "asymptomatic -> recovered")
    mild: object = _dur_setting("mild", "mild symptoms -> recovered")
    to_severe: object = _dur_setting("to_severe", "symptoms -> severe")
    to_critical: object = _dur_setting("to_critical", "severe -> critical")
    severe: object = _dur_setting("severe", "severe -> recovered")
    to_death: object = _dur_setting("to_death", "critical -> dead")
    critical: object = _dur_setting("critical", "critical -> recovered")


@dataclass(frozen=True)
class EpidemicSeedGroup:
    """``[[epidemic_seeds]]``: persons infected on a day, among the residents of a district."""

    name: str = setting("", "str", "seeding name")
    zone: object = setting(None, "node", "district (zone) id whose residents are seeded")
    day: int = setting(0, "int", "day of the infections (0 = the first)", minimum=0)
    persons: int = setting(1, "int", "persons infected (residents of the zone, susceptible, drawn at random)",
                           minimum=1)


@dataclass(frozen=True)
class InterventionGroup:
    """``[[interventions]]``: an epidemic control on days [start_day, end_day) (twin.agents.epidemic_control)."""

    name: str = setting("", "str", "intervention name")
    kind: str = setting("health_code", "choice", "health_code (test, isolate, trace), lockdown (districts), "
                                                 "school_closure or beds (a capacity surge)",
                        choices=("health_code", "lockdown", "school_closure", "beds"))
    enabled: bool = setting(True, "bool", "false: declared but not applied (switch it on with --set)")
    start_day: int = setting(0, "int", "first day it applies", minimum=0)
    end_day: int | None = setting(None, "int", "first day it no longer applies (omit: to the end)", minimum=1)
    zones: tuple = setting((), "ids", "lockdown: the districts (zone ids) locked down")
    test_share: float = setting(0.8, "float", "health code: share of new symptomatic cases tested", minimum=0.0,
                                maximum=1.0)
    sensitivity: float = setting(0.9, "float", "health code: share of the infected a test finds", minimum=0.0,
                                 maximum=1.0)
    delay_d: float = setting(1.0, "float", "health code: days from symptoms to the result", minimum=0.0)
    compliance: float = setting(0.9, "float", "health code: share who isolate or quarantine when told",
                                minimum=0.0, maximum=1.0)
    isolation: str = setting("facility", "choice", "health code: the positive isolate in a facility (no contacts) "
                                                   "or at home (household contacts)", choices=("facility", "home"))
    isolation_d: float = setting(14.0, "float", "health code: days of isolation", minimum=0.0)
    trace_share: float = setting(0.8, "float", "health code: share of household, school and work contacts traced",
                                 minimum=0.0, maximum=1.0)
    trace_delay_d: float = setting(1.0, "float", "health code: days from the result to the contacts' quarantine",
                                   minimum=0.0)
    quarantine_d: float = setting(14.0, "float", "health code: days of home quarantine of a traced contact",
                                  minimum=0.0)
    ward_beds: int = setting(0, "int", "beds: ward beds opened at start_day", minimum=0)
    icu_beds: int = setting(0, "int", "beds: ICU beds opened at start_day", minimum=0)


def _interventions(ctx, n_days):
    from twin.agents.epidemic_control import Intervention

    zone_ids = [str(z) for z in ctx.city.zone_ids]
    out = []
    for i, g in enumerate(ctx.groups["interventions"]):
        at = f"{where(ctx.source, f'interventions.{i}')} ('{g.name or g.kind}')"
        if not g.enabled:
            continue
        bad = [z for z in g.zones if str(z) not in zone_ids]
        if bad:
            raise ScenarioError(f"{at}: zones {bad} are not districts of {ctx.city.name}; districts: "
                                f"{', '.join(zone_ids[:12])}{' ...' if len(zone_ids) > 12 else ''}")
        if g.zones and g.kind != "lockdown":
            raise ScenarioError(f"{at}: zones belong to kind = 'lockdown', not {g.kind!r}")
        if g.start_day >= n_days:
            raise ScenarioError(f"{at}: start_day {g.start_day} is not within the run's {n_days} days")
        try:
            out.append(Intervention(g.kind, g.start_day, g.end_day, g.name, tuple(zone_ids.index(str(z))
                                                                                  for z in g.zones),
                                    g.test_share, g.sensitivity, g.delay_d, g.compliance, g.isolation, g.isolation_d,
                                    g.trace_share, g.trace_delay_d, g.quarantine_d, g.ward_beds, g.icu_beds))
        except ScenarioError as exc:
            raise ScenarioError(f"{at}: {exc}") from None
    return tuple(out)


@dataclass(frozen=True, eq=False)
class EpidemicPlan:
    """The contact layers, the disease, the seeds (person indices by day) and the bed pools."""

    contacts: object
    disease: object
    age: np.ndarray
    home_zone: np.ndarray
    seeds: tuple
    ward_beds: object
    icu_beds: object
    n_days: int
    call_type: int
    call_zone: np.ndarray
    interventions: tuple = ()
    car_legs: np.ndarray = None
    shared: tuple = ()


def _disease(g):
    from twin.agents.epidemic import Disease
    from twin.kernels.epidemic import DUR_COLUMNS

    if (g.profile_mean_d is None) != (g.profile_sd_d is None):
        raise ScenarioError("[epidemic]: give both profile_mean_d and profile_sd_d (a gamma infectiousness profile) "
                            "or neither (constant infectiousness)")
    return Disease(beta=g.beta, layer_weights={"household": g.household_weight, "school": g.school_weight,
                                               "work": g.work_weight, "community": g.community_weight},
                   durations={name: getattr(g, name) for name in DUR_COLUMNS},
                   asymptomatic_factor=g.asymptomatic_factor, no_hosp_factor=g.no_hosp_factor,
                   no_icu_factor=g.no_icu_factor,
                   profile_d=None if g.profile_mean_d is None else (g.profile_mean_d, g.profile_sd_d))


def _seeds(ctx, pop, home_zone, n_days, rng):
    """Seeded persons per item: (day, person indices), residents of the zone drawn without replacement."""
    city, out, taken = ctx.city, [], np.zeros(pop.n_persons, dtype=bool)
    zone_ids = [str(z) for z in city.zone_ids]
    for i, s in enumerate(ctx.groups["epidemic_seeds"]):
        at = f"{where(ctx.source, f'epidemic_seeds.{i}')} ('{s.name}')"
        if str(s.zone) not in zone_ids:
            from twin.spec import did_you_mean

            raise ScenarioError(f"{at}: zone {s.zone!r} is not a district of {city.name}; districts: "
                                f"{', '.join(zone_ids[:12])}{' ...' if len(zone_ids) > 12 else ''}"
                                f"{did_you_mean(str(s.zone), zone_ids)}")
        if s.day >= n_days:
            raise ScenarioError(f"{at}: day {s.day} is not within the run's {n_days} days (days 0..{n_days - 1})")
        z = zone_ids.index(str(s.zone))
        pool = np.flatnonzero((home_zone == z) & ~taken)
        if s.persons > len(pool):
            raise ScenarioError(f"{at}: persons = {s.persons} but district {s.zone} has {len(pool)} residents "
                                f"left to seed")
        who = np.sort(rng.choice(pool, size=s.persons, replace=False))
        taken[who] = True
        out.append((int(s.day), who))
    return tuple(out)


def plan_epidemic(ctx):
    from twin.agents.epidemic_contacts import contacts_from_population

    g = ctx.groups["epidemic"] or EpidemicGroup()
    plans = ctx.port(DayPlans)
    if plans is None:
        raise ScenarioError(f"{where(ctx.source, 'epidemic')}: the epidemic spreads on a synthetic population's "
                            f"contacts; add a [population] table (persons = ...)")
    pop = plans.population()
    n_days = int(math.ceil(ctx.groups["run"].until_s / DAY_S))
    rng = ctx.streams.generator("epidemic_contacts")
    disease = _disease(g)
    contacts = contacts_from_population(pop, work_group=g.work_group, school_group=g.school_group,
                                        community_contacts=g.community_contacts, min_overlap_s=g.min_overlap_s,
                                        seed=int(rng.integers(2 ** 31)))
    home_zone = np.asarray(pop.home_zone_idx, dtype=np.int64)
    seeds = _seeds(ctx, pop, home_zone, n_days, rng)
    if not seeds:
        raise ScenarioError(f"{where(ctx.source, 'epidemic')}: nobody is ever infected; add [[epidemic_seeds]] "
                            f"(zone = district id, day = 0, persons = 10)")
    beds = ctx.port(HospitalBeds)
    have = beds.beds() if beds is not None else {"ward": 0, "icu": 0}
    ward = g.ward_beds if g.ward_beds is not None else (have["ward"] or None)
    icu = g.icu_beds if g.icu_beds is not None else (have["icu"] or None)
    shared = tuple(pool for pool, own, n in (("ward", g.ward_beds, have["ward"]), ("icu", g.icu_beds, have["icu"]))
                   if own is None and n)
    call_type, call_zone = -1, np.full(pop.n_persons, -1, dtype=np.int64)
    if g.call_share > 0:
        cp = ctx.port(CallPlan)
        if cp is None:
            raise ScenarioError(f"{where(ctx.source, 'epidemic')} call_share = {g.call_share}: no dispatch centre "
                                f"takes the calls")
        call_type = cp.call_type_index(g.call_type, where(ctx.source, "epidemic.call_type")) if g.call_type else 0
        call_zone = np.asarray(cp.zone_of_node(), dtype=np.int64)[np.asarray(pop.home_node_idx)]
    car = pop.vehicle_trips()
    car = car[car["origin"].to_numpy() != car["destination"].to_numpy()]
    car_legs = np.bincount(car["person"].to_numpy(), minlength=pop.n_persons)
    return EpidemicPlan(contacts, disease, np.asarray(pop.age), home_zone, seeds, ward, icu, n_days, call_type,
                        call_zone, _interventions(ctx, n_days), car_legs, shared)


def _resized_pool(saved, beds, now_d):
    """A checkpoint's bed pool (each bed's release time, days) in a pool of ``beds`` beds: the
    same array when the size is unchanged; else the beds in use now, then free ones (a what-if
    with more or fewer beds; patients in beds keep them even when that is more than ``beds``)."""
    if len(saved) == beds:
        return saved
    busy = np.sort(saved[saved > now_d])
    return np.concatenate([busy, np.full(max(beds - len(busy), 0), -np.inf)])


class EpidemicFlow(Flow):
    """An outbreak on the population's contacts, with hospital and ICU beds and calls to 120."""

    name = "epidemic"
    tables = (Table("epidemic", EpidemicGroup, optional=True),
              Table("epidemic_seeds", EpidemicSeedGroup, array=True, required=(("zone", "the district id"),)),
              Table("interventions", InterventionGroup, array=True, required=(("kind", "the intervention kind"),)))
    streams = ("epidemic_contacts", "epidemic", "epidemic_calls", "epidemic_control")
    uses = (DayPlans, HospitalBeds, CallPlan, CallIntake, InpatientBeds)
    result_names = ("epidemic",)
    checkpoints = True

    def plan(self, ctx):
        return plan_epidemic(ctx)

    def build(self, ctx):
        from twin.agents.epidemic import EpidemicRun

        p = ctx.plan(self)
        self.rng = ctx.streams.generator("epidemic")
        self.run = EpidemicRun(p.contacts, p.disease, p.age, self.rng, p.n_days, home_zone=p.home_zone,
                               n_zones=ctx.city.n_zones, ward_beds=p.ward_beds, icu_beds=p.icu_beds)
        g = ctx.groups["epidemic"]
        if g is not None and g.r0 is not None:
            try:
                self.run.calibrate_r0(g.r0)
            except ScenarioError as exc:
                raise ScenarioError(f"{where(ctx.scenario.source, 'epidemic')}: {exc}") from None
        self.r0 = self.run.r0()
        self.call_rng = ctx.streams.generator("epidemic_calls")
        self.travel = []
        self.beds = ctx.port(InpatientBeds) if p.shared else None
        self.bed_conflicts = 0
        self.controls = None
        if p.interventions:
            from twin.agents.epidemic_control import Controls

            self.controls = Controls(p.interventions, self.run, p.home_zone, ctx.streams.generator("epidemic_control"))
        self.calls = []
        self.intake = ctx.port(CallIntake) if p.call_type >= 0 else None
        self._proc, self._holds = None, []          # the day process; bed holds waiting for their time

    def start(self, ctx):
        self._proc = ctx.clock.process(self._days(ctx))

    # the state a checkpoint holds (what build does not re-create from the seed)
    # (the layer rates are re-made by build from the scenario, so a what-if may change them)
    _RUN_ARRAYS = ("state", "t_state", "t_next", "next_state", "t_inf", "inf_start", "inf_end", "infector",
                   "inf_layer", "bed", "t_severe", "t_onset", "stays", "zone_new")
    _POOLS = ("ward_free_at", "icu_free_at")
    _CONTROL_ARRAYS = ("q_from", "q_until", "iso_from", "iso_until", "iso_home", "tested")

    def snapshot(self, ctx):
        from twin.checkpoint import generator_state

        run = self.run
        out = {f"run_{k}": getattr(run, k) for k in self._RUN_ARRAYS + self._POOLS}
        out.update(run_day=int(run.day), run_rows=list(run._rows), rng=generator_state(self.rng),
                   call_rng=generator_state(self.call_rng), travel=[list(t) for t in self.travel],
                   calls=[int(c) for c in self.calls], bed_conflicts=int(self.bed_conflicts))
        if self.controls is not None:
            c = self.controls
            out.update({f"control_{k}": getattr(c, k) for k in self._CONTROL_ARRAYS})
            out.update(control_counts=dict(c.counts), control_rows=list(c.rows), control_rng=generator_state(c.rng))
        out["wait"] = ctx.pending(self._proc._target) if self._proc is not None and self._proc.is_alive else []
        out["holds"] = [[pool, at_s, stay_s] + ctx.pending(proc._target) for proc, pool, at_s, stay_s in self._holds
                        if proc.is_alive]
        return out

    def restore(self, ctx, state, time_s):
        from twin.checkpoint import set_generator_state

        run = self.run
        for k in self._RUN_ARRAYS:
            setattr(run, k, np.array(state[f"run_{k}"]))
        for k in self._POOLS:
            setattr(run, k, _resized_pool(np.array(state[f"run_{k}"]), len(getattr(run, k)), time_s / DAY_S))
        run.day, run._rows = int(state["run_day"]), [dict(r) for r in state["run_rows"]]
        set_generator_state(self.rng, state["rng"])
        set_generator_state(self.call_rng, state["call_rng"])
        self.travel = [tuple(t) for t in state["travel"]]
        self.calls = list(state["calls"])
        self.bed_conflicts = int(state["bed_conflicts"])
        if self.controls is not None and "control_counts" in state:     # (a what-if may add controls)
            c = self.controls
            for k in self._CONTROL_ARRAYS:
                setattr(c, k, np.array(state[f"control_{k}"]))
            c.counts, c.rows = dict(state["control_counts"]), [dict(r) for r in state["control_rows"]]
            set_generator_state(c.rng, state["control_rng"])
        wait = state.get("wait")
        if wait is not None and len(wait):
            self._proc = ctx.clock.process(self._days(ctx, first=run.day, wait=ctx.wakeup(wait)))
        for pool, at_s, stay_s, *entry in state.get("holds", []):
            self._hold_at(ctx.clock, pool, float(at_s), float(stay_s), ctx.wakeup(entry))

    def _days(self, ctx, first=0, wait=None):
        from twin.agents.epidemic_control import absent_today

        p, run, env = ctx.plan(self), self.run, ctx.clock
        share = ctx.groups["epidemic"].call_share if ctx.groups["epidemic"] else 0.0
        if wait is not None:
            yield wait
        elif first * DAY_S > env.now:
            yield env.timeout(first * DAY_S - env.now)
        for d in range(first, p.n_days):
            for day, who in p.seeds:
                if day == d:
                    run.seed(who, d)
            if self.beds is not None:
                self._share_beds(d, p.shared)
            kw = self.controls.today(d) if self.controls is not None else None
            absent = absent_today(run.state, kw)
            self.travel.append((int(np.count_nonzero(absent)), int(p.car_legs[~absent].sum())))
            run.step(**(kw or {}))
            if self.controls is not None:
                self.controls.after(d)
            if self.intake is not None:
                self._call(run.new_severe(d), share, env.now, p)
            if self.beds is not None:
                self._occupy(d, p.shared, env)
            if d + 1 < p.n_days:
                yield env.timeout(DAY_S)

    def _share_beds(self, d, pools):
        """At 00:00: the beds the hospitals' own patients hold now are not the epidemic's today."""
        stays = self.run.stays
        for pool in pools:
            col = 0 if pool == "ward" else 2
            mine = int(np.count_nonzero((stays[:, col] <= d) & (stays[:, col + 1] > d)))
            self.run.reserve_beds(pool, self.beds.in_use(pool) - mine, d + 1.0)

    def _occupy(self, d, pools, env):
        """Today's epidemic admissions take their beds in the hospitals, each at its time."""
        stays = self.run.stays
        for pool in pools:
            col = 0 if pool == "ward" else 2
            who = np.flatnonzero((stays[:, col] >= d) & (stays[:, col] < d + 1))
            for t_in, t_out in sorted(zip(stays[who, col], stays[who, col + 1])):
                self._hold_at(env, pool, t_in * DAY_S, (t_out - t_in) * DAY_S)

    def _hold_at(self, env, pool, at_s, stay_s, wait=None):
        rec = [None, pool, at_s, stay_s]
        rec[0] = env.process(self._hold(env, pool, at_s, stay_s, wait, rec))
        self._holds.append(rec)

    def _hold(self, env, pool, at_s, stay_s, wait, rec):
        yield wait if wait is not None else env.timeout(max(at_s - env.now, 0.0))
        self._holds.remove(rec)
        if not self.beds.admit(pool, stay_s, -2):
            self.bed_conflicts += 1

    def _call(self, new, share, now_s, plan):
        new = new[self.call_rng.random(len(new)) < share]
        zone = plan.call_zone[new]
        new, zone = new[zone >= 0], zone[zone >= 0]
        if not len(new):
            return
        t = np.maximum(self.run.t_severe[new] * DAY_S, now_s)
        idx = self.intake.add_calls(t, zone, np.full(len(new), plan.call_type), self.call_rng)
        self.calls.extend(np.asarray(idx).tolist())

    def finish(self, ctx):
        from twin.scenarios.epidemic_report import epidemic_result

        res = self.run.result()
        res.daily["stay_home"] = [a for a, _ in self.travel[:len(res.daily)]]
        res.daily["car_trips"] = [c for _, c in self.travel[:len(res.daily)]]
        out = epidemic_result(res, ctx.city, ctx.plan(self), len(self.calls), self.r0, self.name, self.controls)
        if self.beds is not None:
            out.kpis["epidemic_bed_conflicts"] = float(self.bed_conflicts)
        return out
