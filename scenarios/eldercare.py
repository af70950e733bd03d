"""The elderly-care flow: ``[eldercare]`` and ``[[care_centres]]``, fifteen-minute care circles.

::

    [eldercare]
    walk_limit_s = 900                       # the 15-minute circle (walking)
    daycare_visits_per_person_day = { "65" = 0.01, "80" = 0.03 }   # by age band (from 65, from 80)
    care_need_share = { "65" = 0.16, "80" = 0.47 }                 # care-dependent share by age band
    home_visits_per_dependent_day = 0.5      # home-care visits each care-dependent person needs a day
    fall_calls_per_1000_year = { "65" = 40.0, "80" = 120.0 }      # falls and alarms that call the EMS
    fall_call_type = "fall"

    [[care_centres]]
    name = "north-station"
    node = 11027557490
    places = 40                              # day-care places (persons at once)
    home_staff = 3                           # carers making home visits
    open_s = 28800                           # 08:00 ...
    close_s = 64800                          # ... 18:00, every day of the run

Who: the synthetic population's residents aged 65 or more (port :class:`~twin.ports.Residents`),
in two age bands (65-79 and 80+); each is *care-dependent* with the band's ``care_need_share``
(a Bernoulli draw on the ``eldercare_need`` stream; by default the ADL-disability prevalence of
:data:`CARE_NEED_SHARE`, Chen et al. 2023). A resident goes to the centre nearest on foot (link
length / ``walk_speed_mps``) when it is within ``walk_limit_s``; beyond, one with a car available
is driven to the centre nearest by car, the others walk to the nearest however far.

What happens, every day of the run, while the centres are open:

* **Day care**: visits arrive at each centre as a Poisson process, at the rate its residents'
  bands give; a visit takes a place for ``visit`` (a duration distribution). A full centre in
  ``mode = "loss"`` turns the visitor away (Erlang's loss system, the validation), in ``"queue"``
  the visitor waits for a place until closing time, then goes home unserved.
* **Home care**: each care-dependent resident asks for visits at ``home_visits_per_dependent_day``
  (Poisson, uniform over the opening hours); the centre's ``home_staff`` carers take them first
  come first served, drive there, stay ``home_visit`` and drive back: as vehicles of the live
  traffic when the scenario has one (:class:`~twin.ports.LiveTravel` ``fleet``), else at
  free-flow times. Requests
  still waiting at closing wait for the next day; those left at the end are unmet.
* **Meals on wheels**: each care-dependent resident living alone gets
  ``meals_per_dependent_alone_day`` deliveries a day, requested like home visits and carried by
  the same carers (``meal_drop`` on site), in the same first-come-first-served queue.
* **Falls and alarms** become EMS calls at the residents' homes (port
  :class:`~twin.ports.CallIntake`), Poisson over the whole run at the bands' yearly rates (the
  scenario's; ``hefei_eldercare`` documents its choice against about 42 per 1,000 aged 65+ a
  year in an ambulance service's records); their response times come back through
  :class:`~twin.ports.CallOutcome`.

Access, fixed by where the centres are (:mod:`twin.access`): the share of the 65+ and of the
80+ within ``walk_limit_s`` of a centre, the 2SFCA places per 1,000 older persons per district
(catchment ``walk_limit_s``), and equity across residents: Gini and Theil (between / within
central and peripheral districts) of the 2SFCA accessibility, and the peripheral - central gap
of the 15-minute coverage; the day-care places within 5, 10 and 15 minutes' walk of the average
older resident (cumulative opportunities). The coverage counting only centres that were never full
(``eldercare_within_walk_free_share_*``) comes from the run. Not modelled: visitors driven to a
farther centre when the nearest is full, opening hours by weekday.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.dists import Dist
from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.graph import scenario_node_index
from twin.ports import CallIntake, CallOutcome, CallPlan, LiveTravel, Residents
from twin.spec import Table, setting, where

__all__ = ["ElderCareGroup", "CareCentreGroup", "ElderCareFlow", "ElderCarePlan", "BANDS"]

#: Age bands: lower bounds, years (65-79, 80+).
BANDS = (65, 80)
#: Care-dependent share by band: the prevalence of ADL disability among older people in China in
#: a meta-analysis of 100 studies (Chen et al. 2023, Int. J. Front. Med. 5(8),
#: doi:10.25236/IJFM.2023.050801): 10.8 % at 60-69 and 21.2 % at 70-79 (their mean, 16.0 %,
#: for 65-79, an interpolation of ours) and 47.0 % in the oldest group (read as 80+).
CARE_NEED_SHARE = (0.16, 0.47)
DAY_S = 86400.0
YEAR_S = 365.0 * DAY_S


def _dist(value, where_):
    return Dist.parse(value, where_)


def _bands(value, where_):
    """A number for every band, or a table band -> number (keys "65", "80"): a tuple in
    :data:`BANDS` order."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = {b: float(value) for b in BANDS}
    elif isinstance(value, dict):
        unknown = [k for k in value if str(k) not in {str(b) for b in BANDS}]
        if unknown:
            raise ScenarioError(f"{where_}: band {unknown[0]!r}; expected age bands "
                                f"{', '.join(repr(str(b)) for b in BANDS)}")
        out = {b: float(value.get(str(b), 0.0)) for b in BANDS}
    else:
        raise ScenarioError(f"{where_} = {value!r}; expected a number or a table age band -> number, e.g. "
                            f"{{ \"65\" = 0.01, \"80\" = 0.03 }}")
    bad = [b for b, v in out.items() if not math.isfinite(v) or v < 0]
    if bad:
        raise ScenarioError(f"{where_}.{bad[0]} = {out[bad[0]]!r}; expected a number >= 0")
    return tuple(out[b] for b in BANDS)


def _bands_plain(value):
    return {str(b): v for b, v in zip(BANDS, value)}


@dataclass(frozen=True)
class ElderCareGroup:
    """``[eldercare]``: care demand by age band, the walking circle, fall calls."""

    walk_limit_s: float = setting(900.0, "float", "the care circle: walking time to a centre, seconds", minimum=0.0,
                                  strict=True)
    walk_speed_mps: float = setting(1.0, "float", "older persons' walking speed, m/s (an assumption)", minimum=0.0,
                                    strict=True)
    daycare_visits_per_person_day: object = setting((0.01, 0.03), "bands", "day-care visits per resident a "
                                                    "day by age band (assumption)", convert=_bands, plain=_bands_plain)
    care_need_share: object = setting(CARE_NEED_SHARE, "bands", "care-dependent share by age band (default: ADL "
                                      "disability prevalence, Chen et al. 2023)", convert=_bands, plain=_bands_plain)
    home_visits_per_dependent_day: float = setting(0.5, "float", "home-care visits a care-dependent resident needs a "
                                                                 "day", minimum=0.0)
    meals_per_dependent_alone_day: float = setting(0.0, "float", "meals delivered a day to each care-dependent "
                                                                 "resident living alone (by the carers)", minimum=0.0)
    fall_calls_per_1000_year: object = setting((0.0, 0.0), "bands", "falls and alarms calling the EMS per "
                                               "1,000 residents a year by age band (assumption)", convert=_bands, plain=_bands_plain)
    fall_call_type: str = setting("", "str", "EMS call type of the falls (omit: no fall calls)")
    seed: int | None = setting(None, "int", "seed of the care-need draw (omit: the run's eldercare stream)")


@dataclass(frozen=True)
class CareCentreGroup:
    """``[[care_centres]]``: a community elderly-care station."""

    name: str = setting("", "str", "centre name")
    node: object = setting(None, "node", "city node id")
    places: int = setting(20, "int", "day-care places (persons at once)", minimum=0)
    home_staff: int = setting(0, "int", "carers making home visits", minimum=0)
    open_s: float = setting(28800.0, "float", "opening time of day, seconds after midnight", minimum=0.0,
                            maximum=DAY_S)
    close_s: float = setting(64800.0, "float", "closing time of day, seconds after midnight", minimum=0.0,
                             maximum=DAY_S)
    mode: str = setting("loss", "choice", "a full centre turns visitors away (loss) or they wait (queue)",
                        choices=("loss", "queue"))
    visit: object = setting(Dist("constant", 14400.0, 0.0), "dist", "a day-care visit's length, seconds",
                            convert=_dist, plain=Dist.plain)
    home_visit: object = setting(Dist("constant", 2700.0, 0.0), "dist", "a home visit's length on site, seconds",
                                 convert=_dist, plain=Dist.plain)
    meal_drop: object = setting(Dist("constant", 300.0, 0.0), "dist", "a meal delivery's time on site, seconds",
                                convert=_dist, plain=Dist.plain)


@dataclass(frozen=True)
class ElderCarePlan:
    """Residents 65+ (home node, band, care-dependent), the centres, the walking times, the
    centre serving each resident, the access measures, and the fall calls' type."""

    group: ElderCareGroup
    centres: tuple
    centre_node: np.ndarray
    home: np.ndarray
    band: np.ndarray
    alone: np.ndarray
    dependent: np.ndarray
    walk_s: np.ndarray
    serving: np.ndarray
    drive_s: np.ndarray
    access: dict
    fall_type: int = -1
    call_plan: object = None
    centre_of: np.ndarray = None
    by_car: np.ndarray = None


def plan_eldercare(ctx):
    g, source = ctx.groups.get("eldercare"), ctx.source
    at = where(source, "eldercare")
    centres = ctx.groups.get("care_centres") or []
    if g is None:
        raise ScenarioError(f"{where(source, 'care_centres')}: care centres serve the residents of an [eldercare] "
                            f"table; add [eldercare]")
    if not centres:
        raise ScenarioError(f"{at}: no [[care_centres]]; give at least one centre (node, places)")
    people = ctx.port(Residents)
    if people is None:
        raise ScenarioError(f"{at}: care demand comes from the residents; add a [population]")
    city = ctx.city
    nodes = np.array([scenario_node_index(city, c.node, where(source, "care_centres", i, c.name))
                      for i, c in enumerate(centres)], dtype=np.int64)
    for i, c in enumerate(centres):
        if c.close_s <= c.open_s:
            raise ScenarioError(f"{where(source, 'care_centres', i, c.name)}: close_s = {c.close_s:g} must be after "
                                f"open_s = {c.open_s:g} (seconds after midnight)")
    r = people.residents()
    old = r["age"] >= BANDS[0]
    home, band = r["home_node_idx"][old], (r["age"][old] >= BANDS[1]).astype(np.int64)
    rng = np.random.default_rng(g.seed) if g.seed is not None else ctx.streams.generator("eldercare_need")
    share = np.array(g.care_need_share)
    if (share > 1).any():
        raise ScenarioError(f"{at} care_need_share: expected shares between 0 and 1")
    dependent = rng.random(len(home)) < share[band]
    ids = np.asarray(city.node_ids)
    walk = city.travel_times(ids, ids[nodes], link_cost_s=np.asarray(city.length_m, dtype=np.float64) / g.walk_speed_mps)
    drive = city.travel_times(ids[nodes], ids)
    serving = np.argmin(walk, axis=1)
    # who goes where: the nearest centre on foot within the circle, else by car (nearest by drive)
    # for those with a car, else the nearest on foot however far
    far = walk[home, serving[home]] > g.walk_limit_s
    by_car = far & r["car"][old]
    centre_of = np.where(by_car, np.argmin(drive[:, home], axis=0), serving[home])
    fall_type, call_plan = -1, None
    if g.fall_call_type:
        call_plan = ctx.port(CallPlan)
        if call_plan is None:
            raise ScenarioError(f"{at} fall_call_type: fall calls need the EMS tables (call types, stations)")
        call_plan.check_servable(g.fall_call_type, f"{at} fall_call_type")
        call_plan.calls_anywhere()
        fall_type = call_plan.call_type_index(g.fall_call_type, f"{at} fall_call_type")
    plan = ElderCarePlan(g, tuple(centres), nodes, home, band, r["living_alone"][old], dependent, walk, serving, drive,
                         {}, fall_type, call_plan, centre_of, by_car)
    plan.access.update(access_measures(plan, city))
    return plan


def access_measures(plan, city) -> dict:
    """The 15-minute coverage, 2SFCA and equity of the plan's centres (see the module docstring)."""
    from twin.access import cumulative_opportunities, gini, group_gap, theil_decomposition, two_step_fca

    g = plan.group
    per_node = np.bincount(plan.home, minlength=city.n_nodes).astype(np.float64)
    places = np.array([c.places for c in plan.centres], dtype=np.float64)
    acc, _ = two_step_fca(per_node, places, plan.walk_s, g.walk_limit_s)
    near = plan.walk_s.min(axis=1) <= g.walk_limit_s
    zone = np.asarray(city.zone_of_node)
    central_zone = _central_zone(city)
    out = {}
    for b, label in ((0, "65"), (1, "80")):
        m = plan.band >= b
        out[f"eldercare_within_walk_share_{label}"] = float(near[plan.home[m]].mean()) if m.any() else math.nan
    person_acc = acc[plan.home] * 1000.0                 # places per 1,000 older persons in reach
    out["eldercare_2sfca_per_1000_mean"] = float(person_acc.mean()) if len(person_acc) else math.nan
    for minutes in (5, 10, 15):
        opp = cumulative_opportunities(places, plan.walk_s, 60.0 * minutes)
        out[f"eldercare_places_within_{minutes}min_mean"] = float(opp[plan.home].mean()) if len(plan.home) else math.nan
    if len(person_acc):
        central = zone[plan.home] == central_zone
        d = theil_decomposition(person_acc, central) if person_acc.sum() > 0 else {"total": 0, "between": 0,
                                                                                    "within": 0}
        out.update(eldercare_access_gini=gini(person_acc), eldercare_access_theil=d["total"],
                   eldercare_access_theil_between=d["between"], eldercare_access_theil_within=d["within"],
                   eldercare_within_walk_gap_peripheral_minus_central=group_gap(near[plan.home].astype(float),
                                                                                central))
    out["_per_node_2sfca"] = acc
    out["_central_zone"] = central_zone
    out["_near"] = near
    return out


def _central_zone(city):
    """The central district: the zone whose nodes' centroid is nearest the city's centroid."""
    zone = np.asarray(city.zone_of_node)
    x, y = np.asarray(city.x_m), np.asarray(city.y_m)
    best, best_d = -1, math.inf
    for z in range(len(city.zone_ids)):
        m = zone == z
        if m.any():
            d = math.hypot(x[m].mean() - x.mean(), y[m].mean() - y.mean())
            if d < best_d:
                best, best_d = z, d
    return best


class ElderCareFlow(Flow):
    """Care centres with places and carers, older residents' visits and home care, fall calls."""

    name = "eldercare"
    tables = (Table("eldercare", ElderCareGroup, optional=True),
              Table("care_centres", CareCentreGroup, array=True, required=(("node", "the city node id"),)))
    streams = ("eldercare_need", "eldercare")
    uses = (Residents, CallPlan, CallIntake, CallOutcome, LiveTravel)
    result_names = ("eldercare",)

    def plan(self, ctx):
        return plan_eldercare(ctx)

    def build(self, ctx):
        from twin.scenarios.eldercare_ops import CareOperation

        plan = ctx.plan(self)
        rng = ctx.streams.generator("eldercare")
        live = ctx.port(LiveTravel)
        fleet = (live.fleet(np.concatenate([plan.centre_node, np.arange(ctx.city.n_nodes)]), ("to home", "back"))
                 if live is not None and any(c.home_staff for c in plan.centres) else None)
        self.op = CareOperation(plan, ctx.clock, ctx.until_s, rng, fleet)
        self.fall_calls = None
        if plan.fall_type >= 0:
            self.fall_calls = self._falls(ctx, plan, rng)

    @staticmethod
    def _falls(ctx, plan, rng):
        g = plan.group
        rate = np.array(g.fall_calls_per_1000_year) / 1000.0 / YEAR_S
        n = rng.poisson(rate[plan.band] * ctx.until_s)
        who = np.repeat(np.arange(len(n)), n)
        times = rng.uniform(0.0, ctx.until_s, len(who))
        zones = plan.call_plan.zone_of_node()[plan.home[who]]
        keep = zones >= 0
        order = np.argsort(times[keep], kind="stable")
        times, zones = times[keep][order], zones[keep][order]
        if not len(times):
            return np.zeros(0, dtype=np.int64)
        return ctx.port(CallIntake).add_calls(times, zones, np.full(len(times), plan.fall_type), rng)

    checkpoints = True

    def start(self, ctx):
        self.op.start()

    def snapshot(self, ctx):
        from twin.scenarios.eldercare_state import care_snapshot

        return care_snapshot(self.op, ctx.pending)

    def restore(self, ctx, state, time_s):
        from twin.scenarios.eldercare_state import care_restore

        care_restore(self.op, state, ctx.wakeup)

    def finish(self, ctx):
        from twin.scenarios.eldercare_ops import eldercare_result

        response = None
        if self.fall_calls is not None:
            response = ctx.port(CallOutcome).response_times_s(self.fall_calls) if len(self.fall_calls) else \
                np.zeros(0)
        return eldercare_result(self.op, ctx.city, response, self.name)
