"""Synthesis of households and persons: IPF of the zone marginals, then a day per person.

This module holds :func:`synthesize_population` and the steps it runs in order (option
checks, residents per zone, households by size and the household-size x age-band IPF
(:func:`ipf`), persons dealt into households with their ages, sex, health, employment and
cars, homes and facilities, the travel-time matrices over zone nodes, work and school
places), with the integerisation and weighted-sampling helpers of those steps. The day
itself is built by :mod:`twin.agents.population_plans`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from twin.agents.activities import (
    OTHER, RETIREE, SCHOOL, STUDENT, WORK, WORKER, ActivityParams, ModeParams)
from twin.agents.population_defaults import (
    AGE_BANDS, AGE_COLUMNS, CHRONIC, CHRONIC_SHARE_BY_BAND, ELDERLY_ALONE, HOUSEHOLD_COLUMNS, HOUSEHOLD_SIZES,
    IPF_SEED, MALE_SHARE)
from twin.agents.population_model import Population
from twin.agents.population_plans import _build_plans, _DestinationChooser
from twin.agents.population_zones import (
    _activity_nodes, default_zone_table, place_facilities, read_facilities, read_zone_table)
from twin.errors import NetworkError, ScenarioError

# The logger of twin.agents.population, where these messages have always been logged.
logger = logging.getLogger("twin.agents.population")

# Students: weight by age (6-14 compulsory school, 15-17 senior secondary, 18-22 tertiary).
_STUDENT_WEIGHT = [(6, 15, 1.0), (15, 18, 0.9), (18, 23, 0.5), (23, 30, 0.05)]
_WORKER_WEIGHT = [(18, 60, 1.0), (60, 65, 0.35), (65, 70, 0.1)]
_STREAMS = ("households", "persons", "facilities", "homes", "patterns", "timing", "destinations", "modes")
_OPTIONS = ("zones", "facilities", "activities", "modes", "progress", "link_cost_s")


# ------------------------------------------------------------------------------ IPF
def ipf(seed, row_totals, col_totals, *, tol=1e-10, max_iter=2000):
    """Iterative proportional fitting of 2-D tables, vectorised over a leading axis.

    Parameters
    ----------
    seed : ndarray of float64, shape (n_rows, n_cols) or (n_tables, n_rows, n_cols)
        Non-negative seed; its zeros stay zero (structural zeros).
    row_totals : ndarray of float64, shape (n_tables, n_rows)
    col_totals : ndarray of float64, shape (n_tables, n_cols)
        Targets; each table's row and column totals must have the same sum.

    Returns
    -------
    table : ndarray of float64, shape (n_tables, n_rows, n_cols)
    iterations : int
    max_rel_error : ndarray of float64, shape (n_tables,)
        Largest absolute marginal error of each table divided by its total.

    Notes
    -----
    Deming & Stephan (1940): alternately scale rows and columns to their targets. It
    converges to the table closest to the seed in Kullback-Leibler divergence whenever the
    targets are consistent with the seed's zero pattern (Bishop, Fienberg & Holland 1975).

    Examples
    --------
    >>> t, it, err = ipf(np.ones((2, 2)), np.array([[3.0, 1.0]]), np.array([[2.0, 2.0]]))
    >>> t.round(6).tolist(), bool(err[0] < 1e-10)
    ([[[1.5, 1.5], [0.5, 0.5]]], True)
    """
    row_totals = np.asarray(row_totals, dtype=np.float64)
    col_totals = np.asarray(col_totals, dtype=np.float64)
    x = np.broadcast_to(np.asarray(seed, dtype=np.float64),
                        (row_totals.shape[0], row_totals.shape[1], col_totals.shape[1])).copy()
    total = np.maximum(row_totals.sum(axis=1), 1e-300)
    err = np.full(len(x), np.inf)
    it = 0
    for it in range(1, max_iter + 1):
        s = x.sum(axis=2)
        x *= np.divide(row_totals, s, out=np.zeros_like(s), where=s > 0)[:, :, None]
        s = x.sum(axis=1)
        x *= np.divide(col_totals, s, out=np.zeros_like(s), where=s > 0)[:, None, :]
        err = np.maximum(np.abs(x.sum(axis=2) - row_totals).max(axis=1),
                         np.abs(x.sum(axis=1) - col_totals).max(axis=1)) / total
        if err.max() < tol:
            break
    return x, it, err


def _round_rows(values, totals):
    """Largest-remainder rounding of each row of ``values`` (…, k) to integer ``totals`` (…)."""
    values = np.asarray(values, dtype=np.float64)
    floor = np.floor(values + 1e-9)
    rest = (np.asarray(totals) - floor.sum(axis=-1)).astype(np.int64)
    rem = values - floor
    order = np.argsort(-rem, axis=-1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(values.shape[-1])[(None,) * (values.ndim - 1)], axis=-1)
    return (floor + (rank < rest[..., None])).astype(np.int64)


def _households_by_size(persons, shares):
    """Integer households by size per zone with ``sum(size * H) == persons`` exactly."""
    sizes = np.array(HOUSEHOLD_SIZES)
    mean = shares @ sizes
    n_hh = np.rint(persons / mean)
    hh = _round_rows(shares * (persons / mean)[:, None], n_hh)
    for z in range(len(persons)):
        d = int(persons[z] - hh[z] @ sizes)
        while d != 0:  # shift single households one size up or down; |d| is a few persons
            if d > 0:
                s = next((s for s in range(len(sizes) - 1) if hh[z, s] > 0), None)
                if s is None:
                    hh[z, 0] += 1
                else:
                    hh[z, s] -= 1
                    hh[z, s + 1] += 1
                d -= 1
            else:
                s = next(s for s in range(len(sizes) - 1, -1, -1) if hh[z, s] > 0)
                hh[z, s] -= 1
                if s > 0:
                    hh[z, s - 1] += 1
                d += 1
    return hh


def _weighted_take(zone, weight, k, u, what, zone_ids):
    """Per zone, pick ``k[z]`` items without replacement with probability ~ weight (Efraimidis-Spirakis)."""
    with np.errstate(divide="ignore"):
        key = np.where(weight > 0, np.log(u) / np.where(weight > 0, weight, 1.0), -np.inf)
    eligible = np.bincount(zone, weights=(weight > 0).astype(float), minlength=len(k)).astype(np.int64)
    residents = np.bincount(zone, minlength=len(k))
    # A shortfall in a tiny zone is rounding noise (capped); in a real zone the share is infeasible.
    bad = np.flatnonzero((k > eligible) & ((k - eligible) > 0.05 * k) & (residents >= 100))
    if len(bad):
        z = bad[0]
        raise ScenarioError(f"zone {zone_ids[z]!r}: {int(k[z])} {what} asked for, but only {int(eligible[z])} "
                            f"of {int(residents[z])} residents are of eligible age; lower the zone's '{what}' share")
    k = np.minimum(k, eligible)
    order = np.lexsort((-key, zone))
    start = np.searchsorted(zone[order], np.arange(len(k)))
    rank = np.empty(len(zone), dtype=np.int64)
    rank[order] = np.arange(len(zone)) - start[zone[order]]
    return rank < k[zone]


def _age_weight(age, table):
    w = np.zeros(len(age))
    for lo, hi, v in table:
        w[(age >= lo) & (age < hi)] = v
    return w


# ------------------------------------------------------------------------------ synthesis
def synthesize_population(city, n_persons=None, *, seed, **options) -> Population:
    """Synthesise households and persons for a city and give each person a day.

    Parameters
    ----------
    city : twin.City
        A city with zones (``zone_of_node``); homes and activities are on zone nodes.
    n_persons : int, optional
        Persons to synthesise; the zone table's residents are scaled to this total
        (largest-remainder rounding over zones). The zone table's own total when omitted.
    seed : int
        Seed of every random draw (named streams spawned from ``SeedSequence(seed)``:
        households, persons, facilities, homes, patterns, timing, destinations, modes).
    **options
        ``zones`` (CSV path or DataFrame, see :func:`read_zone_table`), ``facilities`` (CSV
        path or DataFrame, :func:`read_facilities`), ``activities``
        (:class:`~twin.agents.activities.ActivityParams`), ``modes``
        (:class:`~twin.agents.activities.ModeParams`), ``progress`` (callable
        ``progress(done, total)`` over 6 phases), ``link_cost_s`` (ndarray of float64,
        shape (n_links,): car link travel times in seconds, e.g. congested times from a
        traffic run; default free flow). ``link_cost_s`` sets the car times of destination
        choice (gravity), mode choice and car-leg durations, and the car routes of
        :meth:`Population.location_at`; walk, bike and transit times do not depend on it,
        and :meth:`Population.accessibility` stays free flow unless given its own costs.

    Returns
    -------
    Population

    Raises
    ------
    ScenarioError
        Bad zone or facility table (see those readers), unknown option, a city without
        zones, a populated zone without nodes, a zone from which no facility of a needed
        kind can be reached, or IPF that cannot fit the marginals (the zone is named).

    Notes
    -----
    The method and its defaults are in the module docstring. Same seed and inputs give
    identical arrays on any thread count.

    Examples
    --------
    >>> import twin
    >>> pop = synthesize_population(twin.load_city("hefei-baohe"), 2000, seed=1)
    >>> pop.n_persons, bool(pop.n_trips > 0)
    (2000, True)
    """
    _check_options(options, seed)
    timings, phase = _phase_clock(options.get("progress"))
    act_params, mode_params, car_cost = _parameters(city, options)
    streams = _spawn_streams(seed)

    zt = default_zone_table(city)
    if options.get("zones") is not None:
        zt = read_zone_table(options["zones"], city, base=zt)
    zone_ids = city.zone_ids.tolist()
    nodes = _activity_nodes(city)

    # 1. residents per zone, households by size, IPF of size x age ----------------------
    persons_z, n_nodes_z = _residents_by_zone(city, zt, nodes, n_persons, zone_ids)
    hh, counts, n_iter, err, excess = _fit_household_ages(zt, persons_z, zone_ids)

    # 2. persons into households ----------------------------------------------------------
    band, household, hh_zone_idx, hh_size = _persons_into_households(hh, counts, streams["households"])
    age, sex, chronic, health, ptype, hh_car, car_available = _person_attributes(
        band, household, hh_zone_idx, hh_size, zt, zone_ids, streams["persons"], mode_params)
    phase("households and persons", 1)

    # 3. homes and facilities ---------------------------------------------------------------
    facilities = _facilities(city, zt, options.get("facilities"), streams["facilities"])
    hh_node_idx = _home_nodes(city, nodes, n_nodes_z, hh_zone_idx, streams["homes"])
    home = hh_node_idx[household]
    phase("homes and facilities", 2)

    # 4. travel-time matrices over zone nodes ------------------------------------------
    car_time, distance, row_of = _zone_node_matrices(city, nodes, car_cost)
    chooser = _DestinationChooser(city, facilities, car_time, row_of, act_params)
    phase("travel times", 3)

    # 5. work and school places, day patterns, destinations, times, modes ------------------
    work_node = _work_and_school_nodes(ptype, home, chooser, streams["destinations"])
    plans = _build_plans(ptype, chronic, home, work_node, car_available, car_time, distance, row_of, chooser,
                         act_params, mode_params, streams)
    phase("activity chains", 5)

    pop = Population(
        city=city, age=age, sex=sex, person_type=ptype, health_flags=health, car_available=car_available,
        household_idx=household, home_node_idx=home.astype(np.int32), work_node_idx=work_node,
        hh_size=hh_size, hh_zone_idx=hh_zone_idx, hh_node_idx=hh_node_idx, hh_car=hh_car, **plans,
        facilities=facilities, zone_table=zt,
        meta={"seed": int(seed), "ipf_iterations": int(n_iter), "ipf_max_rel_error": float(err.max()),
              "age_adjusted_zones": int((excess > 0).sum()),
              "streams": list(_STREAMS), "modes": {"speed_mps": dict(mode_params.speed_mps),
                                                   "terminal_s": dict(mode_params.terminal_s)},
              "car_link_cost": "free flow" if car_cost is None else "link_cost_s",
              "timings_s": timings, "zone_source": zt.attrs.get("source", "")},
        _matrix_nodes=nodes, _car_time_s=car_time, _distance_m=distance, _car_link_cost_s=car_cost)
    phase("done", 6)
    return pop


# ------------------------------------------------------------------------------ synthesis steps
def _check_options(options, seed):
    """Reject unknown options and a seed that is not an int (bools included)."""
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ScenarioError(f"synthesize_population: unknown option(s) {unknown}; accepted: {list(_OPTIONS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"synthesize_population: seed must be an int; got {type(seed).__name__}")


def _phase_clock(progress):
    """``(timings, phase)``: ``phase(name, done)`` records the time since now, logs it, reports progress."""
    t0 = time.perf_counter()
    timings = {}

    def phase(name, done):
        timings[name] = time.perf_counter() - t0
        logger.info("population: %s done (%.2f s)", name, timings[name])
        if progress is not None:
            progress(done, 6)

    return timings, phase


def _parameters(city, options):
    """The checked ``(activities, modes, link_cost_s)`` options (defaults where omitted)."""
    act_params = options.get("activities") or ActivityParams()
    mode_params = options.get("modes") or ModeParams()
    if not isinstance(act_params, ActivityParams):
        raise TypeError(f"activities must be an ActivityParams; got {type(act_params).__name__}")
    if not isinstance(mode_params, ModeParams):
        raise TypeError(f"modes must be a ModeParams; got {type(mode_params).__name__}")
    car_cost = options.get("link_cost_s")
    if car_cost is not None:
        try:
            car_cost = np.array(city._checked_cost(car_cost), dtype=np.float64)
        except NetworkError as exc:
            raise ScenarioError(f"synthesize_population: {exc}") from None
    return act_params, mode_params, car_cost


def _spawn_streams(seed):
    """One independent generator per name of ``_STREAMS``, spawned from ``SeedSequence(seed)``."""
    return dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(len(_STREAMS)))))


def _residents_by_zone(city, zt, nodes, n_persons, zone_ids):
    """``(persons_z, n_nodes_z)``: integer residents and zone nodes per zone, checked."""
    nz = city.n_zones
    target = zt["persons"].to_numpy(float)
    if target.sum() <= 0:
        raise ScenarioError("zone table: every zone has persons = 0; give at least one populated zone")
    total = int(round(target.sum())) if n_persons is None else int(n_persons)
    if total < 1:
        raise ScenarioError(f"n_persons = {n_persons!r}; expected an integer >= 1")
    persons_z = _round_rows(target[None, :] * (total / target.sum()), np.array([total]))[0]
    n_nodes_z = np.bincount(city.zone_of_node[nodes], minlength=nz)
    bad = np.flatnonzero((persons_z > 0) & (n_nodes_z == 0))
    if len(bad):
        raise ScenarioError(f"zone {zone_ids[bad[0]]!r} has {persons_z[bad[0]]} residents but no nodes in city "
                            f"{city.name!r}; set its persons to 0")
    return persons_z, n_nodes_z


def _fit_household_ages(zt, persons_z, zone_ids):
    """Households by size and the integer (zone, size, age band) person counts, by IPF.

    Returns ``(hh, counts, n_iter, err, excess)``: households (nz, 6), persons (nz, 6, 5),
    IPF iterations and relative errors, and the children moved to 15-59 per zone.
    """
    hh_shares = zt[list(HOUSEHOLD_COLUMNS)].to_numpy(float)
    hh_shares = hh_shares / hh_shares.sum(axis=1, keepdims=True)
    hh = _households_by_size(persons_z.astype(float), hh_shares)                 # (nz, 6)
    sizes = np.array(HOUSEHOLD_SIZES)
    age_shares = zt[list(AGE_COLUMNS)].to_numpy(float)
    age_shares = age_shares / age_shares.sum(axis=1, keepdims=True)
    rows = hh * sizes[None, :]
    cols = persons_z[:, None] * age_shares
    # Children never live alone (IPF_SEED's structural zero). Where a small zone's rounded
    # households leave fewer places in 2+ person households than children, the excess
    # children become 15-59 year-olds (logged, counted in meta["age_adjusted_zones"]).
    excess = np.maximum(cols[:, 0] - rows[:, 1:].sum(axis=1), 0.0)
    cols[:, 0] -= excess
    cols[:, 1] += excess
    if excess.any():
        logger.info("population: %d zone(s) too small to house their children; moved %.1f persons to age 15-59",
                    int((excess > 0).sum()), float(excess.sum()))
    table, n_iter, err = ipf(IPF_SEED, rows.astype(float), cols)
    worst = int(np.argmax(err))
    if err[worst] > 1e-6:
        raise ScenarioError(f"zone {zone_ids[worst]!r}: IPF did not fit the age and household-size marginals "
                            f"(relative error {err[worst]:.2g} after {n_iter} iterations); the age shares are "
                            "inconsistent with the household sizes (e.g. more children than places in 2+ person "
                            "households)")
    counts = _round_rows(table, rows)                                                  # (nz, 6, 5) integers
    return hh, counts, n_iter, err, excess


def _persons_into_households(hh, counts, rng):
    """Deal the persons of each (zone, size) cell round-robin into its households, adults first.

    Returns ``(band, household, hh_zone_idx, hh_size)``: each person's age band and
    household (int32), sorted by household; each household's zone (int32) and size (uint8).
    """
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    band = (cell % len(AGE_BANDS)).astype(np.int64)
    group = cell // len(AGE_BANDS)                      # zone * 6 + size index
    u = rng.random(len(cell))
    order = np.lexsort((u, band == 0, group))
    band, group = band[order], group[order]
    g_start = np.searchsorted(group, np.arange(hh.size))
    rank = np.arange(len(group)) - g_start[group]
    hh_flat = hh.ravel()
    hh_offset = np.concatenate([[0], np.cumsum(hh_flat)])
    household = hh_offset[group] + rank % np.maximum(hh_flat[group], 1)
    order = np.lexsort((rank, household))
    band, household = band[order], household[order].astype(np.int32)
    hh_group = np.repeat(np.arange(hh.size), hh_flat)
    hh_zone_idx = (hh_group // len(HOUSEHOLD_SIZES)).astype(np.int32)
    hh_size = np.bincount(household, minlength=len(hh_group)).astype(np.uint8)
    return band, household, hh_zone_idx, hh_size


def _person_attributes(band, household, hh_zone_idx, hh_size, zt, zone_ids, rng, mode_params):
    """Age, sex, health, person type and cars, all drawn from the ``persons`` stream ``rng``.

    Returns ``(age, sex, chronic, health, ptype, hh_car, car_available)``; students and
    workers are taken per zone to the zone shares (:func:`_weighted_take`).
    """
    n = len(band)
    lo = np.array([b[1] for b in AGE_BANDS])[band]
    hi = np.array([b[2] for b in AGE_BANDS])[band]
    age = (lo + np.floor(rng.random(n) * (hi - lo))).astype(np.uint8)
    sex = (rng.random(n) < MALE_SHARE).astype(np.int8)
    chronic = rng.random(n) < np.array(CHRONIC_SHARE_BY_BAND)[band]
    alone = (age >= 65) & (hh_size[household] == 1)
    health = (chronic * CHRONIC | alone * ELDERLY_ALONE).astype(np.uint8)
    zone = hh_zone_idx[household]
    resid = np.bincount(zone, minlength=len(zone_ids))
    k_stud = np.rint(resid * zt["students"].to_numpy(float)).astype(np.int64)
    k_work = np.rint(resid * zt["workers"].to_numpy(float)).astype(np.int64)
    student = _weighted_take(zone, _age_weight(age, _STUDENT_WEIGHT), k_stud, rng.random(n), "students", zone_ids)
    worker = _weighted_take(zone, _age_weight(age, _WORKER_WEIGHT) * ~student, k_work, rng.random(n), "workers",
                            zone_ids)
    ptype = np.where(worker, WORKER, np.where(student, STUDENT, np.where(age >= 60, RETIREE, OTHER))).astype(np.int8)
    hh_car = rng.random(len(hh_zone_idx)) < mode_params.car_ownership
    car_available = hh_car[household] & (age >= 18) & (age < 75)
    return age, sex, chronic, health, ptype, hh_car, car_available


def _facilities(city, zt, override_source, rng):
    """The default facilities (``facilities`` stream ``rng``), kinds in ``override_source`` replaced."""
    facilities = place_facilities(city, zt, rng)
    if override_source is not None:
        override = read_facilities(override_source, city)
        facilities = pd.concat([facilities[~facilities["kind"].isin(set(override["kind"]))], override],
                               ignore_index=True)
    return facilities


def _home_nodes(city, nodes, n_nodes_z, hh_zone_idx, rng):
    """Home node of each household (int32): a uniform node of its zone, from the ``homes`` stream."""
    zone_nodes = nodes[np.argsort(city.zone_of_node[nodes], kind="stable")]
    z_ptr = np.concatenate([[0], np.cumsum(n_nodes_z)])
    pick = np.floor(rng.random(len(hh_zone_idx)) * n_nodes_z[hh_zone_idx]).astype(np.int64)
    return zone_nodes[z_ptr[hh_zone_idx] + pick].astype(np.int32)


def _zone_node_matrices(city, nodes, car_cost):
    """``(car_time, distance, row_of)``: car times and lengths between zone nodes, and node -> row."""
    ids = city.node_ids[nodes]
    car_time = city.travel_times(ids, ids, link_cost_s=car_cost)
    distance = city.travel_times(ids, ids, link_cost_s=city.length_m)
    row_of = np.full(city.n_nodes, -1, dtype=np.int64)
    row_of[nodes] = np.arange(len(nodes))
    return car_time, distance, row_of


def _work_and_school_nodes(ptype, home, chooser, rng):
    """Workplace of each worker and school of each student (int32, -1 for neither), by gravity."""
    work_node = np.full(len(ptype), -1, dtype=np.int32)
    for code, act in ((WORKER, WORK), (STUDENT, SCHOOL)):
        sel = np.flatnonzero(ptype == code)
        work_node[sel] = chooser.choose(act, home[sel], rng.random(len(sel)))
    return work_node
