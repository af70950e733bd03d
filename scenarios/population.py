"""The population flow: ``[population]``, a synthetic population feeding calls and traffic.

``persons`` people and their day are synthesised at load time
(:func:`twin.agents.population.synthesize_population`, seed ``[population] seed`` or, when
omitted, the run's ``population`` stream, so ``--seed`` changes the population too). The
flow offers two plan-time ports:

* :class:`~twin.ports.Presence` with ``calls_from_presence = true`` (default): persons present
  per district hour by hour (``Population.present_by_zone`` at 00:00 ... 23:00), from which
  the EMS flow takes its call rates;
* :class:`~twin.ports.TripDemand` with ``traffic_from_cars = true`` (default): the
  population's car legs (``Population.vehicle_trips()``) less the few whose origin and
  destination are the same node (the traffic model rejects them), over at least a whole day
  (``min_horizon_s = 86400``).

The results file gets the population (``Population.write``: ``/events/population_*``,
``/timeseries/population_present``, ``/summary/population_*``) and ``twin run`` a
population line.
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.ports import DayPlans, Presence, Residents, TripDemand
from twin.spec import Table, setting, where

__all__ = ["PopulationGroup", "PopulationFlow", "car_trips", "population_seed"]


@dataclass(frozen=True)
class PopulationGroup:
    """``[population]``: a synthetic population feeding calls and traffic (optional table)."""

    persons: int | None = setting(None, "int", "persons to synthesise "
                                               "(twin.agents.population.synthesize_population; at most 100 million)",
                                               minimum=1, maximum=100_000_000)
    seed: int | None = setting(None, "int", "population seed (default: the 'population' stream of the run seed)",
                               minimum=0)
    calls_from_presence: bool = setting(True, "bool", "call rates from the persons present in each district "
                                                      "(needs [calls] rate_per_1000_per_day)")
    traffic_from_cars: bool = setting(True, "bool", "background traffic = the population's car legs when "
                                                    "[traffic] has no random_trips or trips")


def car_trips(population):
    """The population's car legs as traffic demand (``origin``, ``destination``, ``depart_s``).

    Legs whose origin and destination are the same node are left out (the traffic model
    rejects them).
    """
    t = population.vehicle_trips()
    t = t[t["origin"].to_numpy() != t["destination"].to_numpy()]
    return t[["origin", "destination", "depart_s"]].reset_index(drop=True)


def population_seed(group, streams) -> int:
    """Seed of the synthesis: ``[population] seed``, else the run's ``population`` stream."""
    return int(group.seed) if group.seed is not None else streams.int_seed("population")


@dataclass(frozen=True, eq=False)
class _Presence:
    population: object
    #: Where the setting that asks for presence-driven calls lives (for messages).
    label: str

    def present_by_zone(self):
        return self.population.present_by_zone()

    def present_among(self, flag, hour):
        import numpy as np

        from twin.agents.population_defaults import ELDERLY_ALONE

        pop = self.population
        keep = (np.asarray(pop.health_flags) & ELDERLY_ALONE) > 0 if flag == "elderly_alone" else \
            ~np.asarray(pop.car_available, dtype=bool)
        zone = pop.location_at(float(hour) * 3600.0).zone_idx
        return np.bincount(np.asarray(zone)[keep], minlength=pop.city.n_zones).astype(np.float64)


@dataclass(frozen=True, eq=False)
class _Residents:
    """The plan-time :class:`~twin.ports.Residents` of a synthetic population."""

    population: object

    def residents(self):
        import numpy as np

        pop = self.population
        return {"age": np.asarray(pop.age, dtype=np.int64), "home_node_idx": np.asarray(pop.home_node_idx, dtype=np.int64),
                "living_alone": np.asarray(pop.hh_size)[np.asarray(pop.household_idx)] == 1,
                "car": np.asarray(pop.car_available, dtype=bool)}


@dataclass(frozen=True, eq=False)
class _DayPlans:
    """The plan-time :class:`~twin.ports.DayPlans` of a synthetic population."""

    pop: object

    def population(self):
        return self.pop


class _CarDemand:
    """The car legs as a :class:`~twin.ports.TripDemand`; ``used`` once asked for."""

    min_horizon_s = 86400.0

    def __init__(self, population):
        self.population = population
        self.used = False

    def trips(self):
        self.used = True
        return car_trips(self.population)


@dataclass(frozen=True, eq=False)
class PopulationPlan:
    """The synthesised population and the seed it was made with."""

    population: object
    seed: int
    demand: object = None


class PopulationFlow(Flow):
    """Synthetic residents: presence for the calls, car legs for the traffic."""

    name = "population"
    tables = (Table("population", PopulationGroup, optional=True),)
    streams = ("population",)
    result_names = ("population",)
    provides = (Presence, TripDemand, Residents, DayPlans)
    checkpoints = True            # everything is planned before the run: no run-time state

    def plan(self, ctx):
        from twin.agents.population import synthesize_population

        pg = ctx.groups["population"]
        if pg.persons is None:
            raise ScenarioError(f"{where(ctx.source, 'population')}: missing 'persons' (the number of persons to "
                                f"synthesise, an integer >= 1)")
        from twin.preflight import check_memory

        check_memory(pg.persons * 1500, f"{where(ctx.source, 'population')} persons = {pg.persons:,} (about 1.5 kB "
                                        f"a person with their day plans and contacts, measured at 1M)",
                     "synthesise fewer persons")
        seed = population_seed(pg, ctx.streams)
        prev = ctx.previous.get(self.name)
        if prev is not None and prev.seed == seed:
            pop = prev.population
        else:
            try:
                pop = synthesize_population(ctx.city, pg.persons, seed=seed)
            except ScenarioError as exc:
                raise ScenarioError(f"{ctx.source}: [population] persons = {pg.persons}: {exc}") from None
        if pg.calls_from_presence:
            ctx.provide(Presence, _Presence(pop, f"{where(ctx.source, 'population')} calls_from_presence = true"))
        ctx.provide(Residents, _Residents(pop))
        ctx.provide(DayPlans, _DayPlans(pop))
        demand = _CarDemand(pop) if pg.traffic_from_cars else None
        if demand is not None:
            ctx.provide(TripDemand, demand)
        return PopulationPlan(pop, seed, demand)

    def finish(self, ctx):
        pg, pop = ctx.groups["population"], ctx.plan(self).population
        s = pop.summary()
        demand = ctx.plan(self).demand
        from_cars = demand is not None and demand.used
        uses = [u for u, on in (("calls from presence", pg.calls_from_presence),
                                ("traffic from car legs", from_cars)) if on]
        car = s["mode_share_car"]
        line = (f"{'population':<34} {pop.n_persons:,} persons, {pop.n_households:,} households, "
                f"{s['trips_per_person']:.2f} trips/person, car share "
                f"{'-' if car != car else f'{100 * car:.1f} %'} (seed {pop.meta['seed']}; "
                f"{', '.join(uses) or 'not coupled'})")
        return FlowResult(self.name, values={"population": pop}, lines=[line], write=pop.write,
                          meta={"population_persons": int(pop.n_persons),
                                "calls_from_presence": bool(pg.calls_from_presence),
                                "traffic_from_cars": from_cars})
