"""Synthetic population and its activity-based day, as struct-of-arrays.

What it models, and at what fidelity
------------------------------------
*Zones.* Each district (``City.zone_ids``) has a resident total and marginals: five age
bands, six household sizes, the share of workers and of students, and a jobs weight
(:func:`default_zone_table`, overridable per zone from a CSV table, :func:`read_zone_table`).

*Synthesis* (:func:`synthesize_population`) follows the IPF method of Beckman, Baggerly &
McKay (1996, "Creating synthetic baseline populations", *Transp. Res. A* 30(6)), reduced to
one zone-level table: per zone, (1) households by size are integerised from the size
shares (largest-remainder rounding, then single-person steps so that the persons add up
exactly); (2) the table *household size x age band* is fitted by iterative proportional
fitting from a documented seed (:data:`IPF_SEED`) to the persons-by-size row totals and the
age-band column totals, until the largest marginal error is below ``1e-10`` of the zone
total; (3) each row is integerised by largest-remainder rounding (row totals exact, so
column totals are within one person per household size, at most 6 persons per band and
zone, of their targets); (4) the persons of each (zone, size) cell are dealt round-robin
into its households, adults first, so each household gets an adult whenever the row has
enough. Ages are uniform within a band; students and workers are drawn per zone without
replacement with age-dependent weights (Efraimidis & Spirakis 2006 weighted sampling), so
their counts match the zone shares exactly.

*Day* (:mod:`twin.agents.activities`): one tour-based day per person; gravity destination
choice on car times (free flow, or the congested link times given as ``link_cost_s``);
tour-level multinomial-logit mode choice; times from clipped normal departure and duration
distributions. Car legs are trips for traffic (:meth:`Population.vehicle_trips`); other
modes move at mode speeds over shortest network distances. No joint household scheduling.

*Congestion feedback* is one step at a time, by the caller: synthesise on link times from a
traffic run (``synthesize_population(..., link_cost_s=...)``: destination and mode choice
and car-leg durations on those times), or keep the choices and re-time the plans from the
observed car-leg times (:meth:`Population.with_travel_times`). No equilibrium loop is run.

*Where is everyone* (:meth:`Population.location_at`): at an activity, its node; while
travelling, the node of the trip's least-cost route reached at the elapsed fraction of the
trip (shortest-path trees per origin, built once and cached).

*Storage*: :meth:`Population.write` to the HDF5 results store and
:func:`read_population` / :meth:`Population.read` back, exactly.

Defaults and sources (all overridable; they are defaults, not local data)
--------------------------------------------------------------------------
The person and household shares are **national** figures for mainland China from the 7th
National Population Census (reference time 1 November 2020), not figures for Anhui
province, Hefei or Baohe District; a real city differs (Hefei, a migrant destination, is
younger than the national mean). Every zone gets the same national shares. Override them
per zone with a zone table (CSV or DataFrame, :func:`read_zone_table`; ``twin population
--zones zones.csv``). :data:`DEFAULT_SOURCES` lists each figure with its scope, source and
status; in short:

- Age bands 0-14 / 15-59 / 60-64 / 65-79 / 80+: 17.95 / 63.35 / 5.20 / 10.96 / 2.54 %.
  0-14, 15-59, 60+ (18.70 %) and 65+ (13.50 %) are the published national shares (NBS,
  Communiqué of the 7th National Population Census No. 5, age composition, 11 May 2021;
  also given at the State Council Information Office press conference that day). 60-64 is
  derived (18.70 - 13.50). The 80+ share is 35.8 million aged 80+ over the census total of
  1,411.78 million; the 35.8 million was entered from memory of the census yearbook's
  national age table and is not checked against it (approximate, about +-0.1 percentage
  point), and 65-79 (13.50 - 2.54) inherits that uncertainty.
- Household sizes 1..6+: 25.39 / 29.68 / 20.99 / 13.17 / 6.19 / 4.58 % of family households
  (national). Only the mean, 2.62 persons per family household (Communiqué No. 2,
  households), is checked against a published source. The distribution was entered from
  memory of the China Population Census Yearbook 2020 (family households by size) and is
  approximate (each share perhaps +-1 percentage point); it is consistent with the mean
  (2.59 with the 6+ class counted as 6; 6+ households are synthesised as 6 persons).
- Sex: 51.24 % male (national), derived from the published sex ratio of 105.07 males per 100
  females (Communiqué No. 4, sex composition; also in Xinhua's census highlights of
  11 May 2021): 105.07 / 205.07. Workers 45 % of residents and students 17 % are assumptions, not census
  figures (national employed persons are about 53 % of the population but include rural
  and 65+ workers; about 240 million enrolled, primary to tertiary, in 2020).
- Chronic condition prevalence by band 2 / 15 / 55 / 70 / 80 % (assumption, in line with
  the National Health Commission's statement that about 78 % of people aged 60+ have at
  least one chronic disease). "Elderly living alone" = aged 65+ in a 1-person household.
- Zone residents: 150,000 in all (about 10,000 residents/km² over the 14.5 km² embedded
  extract) split by road length in each zone; on TNTP cities with a ``*_trips.tntp`` beside
  the net file, residents in proportion to each zone's origin demand and jobs to its
  destination demand (zone demand as a proxy for population and jobs). Jobs elsewhere:
  residents x 1.6 in central zones, x 0.8 in peripheral ones.
- Facilities (:func:`place_facilities`): every zone node is a workplace (the zone's jobs
  spread evenly); schools and markets 1 per 10,000 residents, parks 1 per 20,000, clinics
  (community health centres) 1 per 25,000, elderly-care centres 1 per 30,000 per zone
  (at least one school, market and clinic per zone), hospitals 1 per 200,000 city-wide (at
  least one), on distinct random nodes of the zone (seeded). The service thresholds echo
  the 15-minute life circle of GB 50180-2018 (Standard for urban residential area planning).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.agents.activities import (
    ACTIVITIES, CAR, FACILITY_KINDS, FACILITY_OF_ACTIVITY, HOME, MODES, OTHER, PATTERNS, PERSON_TYPES, RETIREE,
    SCHOOL, STUDENT, TRAVEL, WALK, WORK, WORKER, ActivityParams, ModeParams, mode_probabilities)
from twin.errors import NetworkError, ResultsError, ScenarioError, TwinError, UnknownNodeError
from twin.kernels.population import choose_from_cumulative, locate_persons, locate_persons_on_routes

__all__ = [
    "AGE_BANDS", "AGE_COLUMNS", "HOUSEHOLD_COLUMNS", "HOUSEHOLD_SIZES", "ZONE_COLUMNS", "IPF_SEED",
    "CHRONIC", "ELDERLY_ALONE", "DEFAULT_SOURCES",
    "default_zone_table", "read_zone_table", "place_facilities", "read_facilities", "ipf",
    "synthesize_population", "read_population", "Population", "Locations", "Accessibility",
    "add_population_parser", "population_main",
]

logger = logging.getLogger(__name__)

#: Age bands: (zone-table column, first age, last age + 1).
AGE_BANDS = (("age_0_14", 0, 15), ("age_15_59", 15, 60), ("age_60_64", 60, 65), ("age_65_79", 65, 80),
             ("age_80_plus", 80, 95))
AGE_COLUMNS = tuple(b[0] for b in AGE_BANDS)
CENSUS_2020_AGE_SHARES = (0.1795, 0.6335, 0.0520, 0.1096, 0.0254)
#: Every default person/household figure: (figure, value, scope, source, status). "published"
#: = checked against the source named; "derived" = arithmetic on published figures;
#: "approximate" = entered from memory of the source, not checked; "assumption" = no source.
DEFAULT_SOURCES = (
    ("age 0-14 share", 0.1795, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 15-59 share", 0.6335, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 60+ share", 0.1870, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 65+ share", 0.1350, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 60-64 share", 0.0520, "China (national)", "60+ minus 65+", "derived"),
    ("age 80+ share", 0.0254, "China (national)",
     "35.8 million aged 80+ (China Population Census Yearbook 2020) / 1,411.78 million", "approximate"),
    ("age 65-79 share", 0.1096, "China (national)", "65+ minus 80+", "approximate"),
    ("persons per family household", 2.62, "China (national)",
     "NBS, 7th census Communique No. 2 (households), 11 May 2021", "published"),
    ("family households by size 1..6+", (0.2539, 0.2968, 0.2099, 0.1317, 0.0619, 0.0458), "China (national)",
     "China Population Census Yearbook 2020, family households by size", "approximate"),
    ("male share", 0.5124, "China (national)",
     "sex ratio 105.07 (NBS, 7th census Communique No. 4, sex composition): 105.07 / 205.07", "derived"),
    ("workers share of residents", 0.45, "model", "assumption (see module docstring)", "assumption"),
    ("students share of residents", 0.17, "model", "assumption (see module docstring)", "assumption"),
    ("chronic condition by age band", (0.02, 0.15, 0.55, 0.70, 0.80), "model",
     "assumption, in line with the National Health Commission's ~78 % of 60+ with a chronic disease",
     "assumption"),
)
#: Household sizes synthesised (the 6+ class as 6) and their zone-table columns.
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_COLUMNS = ("hh_1", "hh_2", "hh_3", "hh_4", "hh_5", "hh_6plus")
CENSUS_2020_HOUSEHOLD_SHARES = (0.2539, 0.2968, 0.2099, 0.1317, 0.0619, 0.0458)
MALE_SHARE = 0.5124
DEFAULT_WORKERS_SHARE = 0.45
DEFAULT_STUDENTS_SHARE = 0.17
DEFAULT_TOTAL_PERSONS = 150_000
CHRONIC_SHARE_BY_BAND = (0.02, 0.15, 0.55, 0.70, 0.80)
ZONE_COLUMNS = ("zone_id", "persons", *AGE_COLUMNS, *HOUSEHOLD_COLUMNS, "workers", "students", "jobs")
#: Seed of the (household size x age band) IPF: no child lives alone; the elderly are
#: over-represented in 1-2 person households; children and three-generation households in
#: larger ones. An assumption; only its zero pattern and ratios matter.
IPF_SEED = np.array([
    # 0-14 15-59 60-64 65-79 80+
    [0.0, 1.0, 1.0, 1.5, 2.0],   # 1 person
    [0.3, 1.0, 1.5, 2.0, 2.0],   # 2
    [1.0, 1.0, 0.6, 0.5, 0.5],   # 3
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 4
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 5
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 6+
])
#: Health flag bits (uint8).
CHRONIC, ELDERLY_ALONE = 1, 2
#: Residents per facility by kind, and whether every populated zone gets at least one.
PERSONS_PER_FACILITY = {"school": (10_000, True), "market": (10_000, True), "park": (20_000, False),
                        "clinic": (25_000, True), "elderly_care": (30_000, False)}
PERSONS_PER_HOSPITAL = 200_000
# Students: weight by age (6-14 compulsory school, 15-17 senior secondary, 18-22 tertiary).
_STUDENT_WEIGHT = [(6, 15, 1.0), (15, 18, 0.9), (18, 23, 0.5), (23, 30, 0.05)]
_WORKER_WEIGHT = [(18, 60, 1.0), (60, 65, 0.35), (65, 70, 0.1)]
_PATTERN_NAMES = tuple(PATTERNS)
_STREAMS = ("households", "persons", "facilities", "homes", "patterns", "timing", "destinations", "modes")
_OPTIONS = ("zones", "facilities", "activities", "modes", "progress", "link_cost_s")
#: Cost kind (first axis of the route trees) that routes each mode: car on car link times,
#: the other modes on link lengths (they move at a mode speed over the shortest distance).
_TREE_OF_MODE = np.array([0 if m == "car" else 1 for m in MODES], dtype=np.int64)
_SHARE_TOL = 1e-3


# ------------------------------------------------------------------------------ zone inputs
def _activity_nodes(city):
    nodes = np.flatnonzero(city.zone_of_node >= 0)
    if not len(nodes):
        raise ScenarioError(f"city {city.name!r} has no zones (every node has zone -1); a population needs "
                            "districts: load a city with zones or give node attribute 'zone'")
    return nodes


def _central_zones(city):
    """Boolean per zone: central (``meta['central_zone_ids']``, else nearer the centre than the median)."""
    ids = city.zone_ids.tolist()
    if "central_zone_ids" in city.meta:
        central = set(city.meta["central_zone_ids"])
        return np.array([z in central for z in ids], dtype=bool)
    z = city.zone_of_node
    if not city.has_coordinates or city.n_zones < 2:
        return np.zeros(city.n_zones, dtype=bool)
    ok = z >= 0
    count = np.bincount(z[ok], minlength=city.n_zones).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.bincount(z[ok], weights=city.x_m[ok], minlength=city.n_zones) / count
        cy = np.bincount(z[ok], weights=city.y_m[ok], minlength=city.n_zones) / count
    dist = np.hypot(cx - city.x_m[ok].mean(), cy - city.y_m[ok].mean())
    dist = np.where(count > 0, dist, np.inf)
    return dist < np.median(dist[count > 0]) if (count > 0).sum() > 1 else count > 0


def _tntp_zone_demand(city):
    src = str(city.source)
    if not src.endswith("_net.tntp"):
        return None
    path = Path(src[: -len("_net.tntp")] + "_trips.tntp")
    if not path.exists():
        return None
    from twin.data.tntp import read_tntp_trips

    od = read_tntp_trips(path)
    pos = {int(v): i for i, v in enumerate(city.zone_ids.tolist())}
    prod = np.zeros(city.n_zones)
    attr = np.zeros(city.n_zones)
    for o, d, f in zip(od["origin_zone"].tolist(), od["destination_zone"].tolist(), od["demand_veh_per_h"].tolist()):
        if o in pos and d in pos:
            prod[pos[o]] += f
            attr[pos[d]] += f
    return (prod, attr, str(path)) if prod.sum() > 0 else None


def default_zone_table(city, total_persons=DEFAULT_TOTAL_PERSONS) -> pd.DataFrame:
    """The documented default zone inputs of a city (see the module docstring for sources).

    Parameters
    ----------
    city : twin.City
        A city with zones (``zone_of_node``).
    total_persons : float, default 150,000
        Residents of the whole city.

    Returns
    -------
    pandas.DataFrame
        One row per zone, in ``city.zone_ids`` order, columns :data:`ZONE_COLUMNS`;
        ``attrs["source"]`` says how residents and jobs were split.

    Notes
    -----
    The age, household-size and sex shares are national figures of China's 2020 census,
    the same in every zone (scope, source and status of each in :data:`DEFAULT_SOURCES`);
    give local figures per zone with :func:`read_zone_table`.

    Raises
    ------
    ScenarioError
        The city has no zones.

    Examples
    --------
    >>> import twin
    >>> table = default_zone_table(twin.load_city("hefei-baohe"))
    >>> len(table), round(float(table["persons"].sum()))
    (9, 150000)
    """
    nodes = _activity_nodes(city)
    nz = city.n_zones
    central = _central_zones(city)
    demand = _tntp_zone_demand(city)
    if demand is not None:
        prod, attr, path = demand
        persons = total_persons * prod / prod.sum()
        jobs = total_persons * DEFAULT_WORKERS_SHARE * attr / attr.sum()
        source = f"residents by origin demand, jobs by destination demand of {path}"
    else:
        tail_zone = city.zone_of_node[city.link_from_idx]
        ok = tail_zone >= 0
        length = np.bincount(tail_zone[ok], weights=city.length_m[ok], minlength=nz)
        counts = np.bincount(city.zone_of_node[nodes], minlength=nz).astype(float)
        weight = np.where(length > 0, length, 0.0) if length.sum() > 0 else counts
        weight = np.where(counts > 0, weight, 0.0)
        persons = total_persons * weight / weight.sum()
        jobs = persons * np.where(central, 1.6, 0.8)
        jobs = jobs * (total_persons * DEFAULT_WORKERS_SHARE / jobs.sum()) if jobs.sum() > 0 else jobs
        source = "residents by road length per zone; jobs x1.6 central, x0.8 peripheral"
    table = pd.DataFrame({"zone_id": city.zone_ids, "persons": persons})
    for col, share in zip(AGE_COLUMNS, CENSUS_2020_AGE_SHARES):
        table[col] = share
    for col, share in zip(HOUSEHOLD_COLUMNS, CENSUS_2020_HOUSEHOLD_SHARES):
        table[col] = share
    table["workers"] = DEFAULT_WORKERS_SHARE
    table["students"] = DEFAULT_STUDENTS_SHARE
    table["jobs"] = jobs
    table.attrs["source"] = source
    return table


def _read_table(source, what):
    """A CSV path or DataFrame as a DataFrame, and how to name it in messages."""
    where = str(source) if isinstance(source, (str, Path)) else what
    if isinstance(source, (str, Path)):
        try:
            return pd.read_csv(source), where
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"cannot read {what} {where}: {exc}") from None
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), where
    raise TypeError(f"{what}: got {type(source).__name__}; expected a CSV path or a pandas DataFrame")


def read_zone_table(source, city, *, base=None) -> pd.DataFrame:
    """Override zone inputs from a CSV file or DataFrame, one row per zone.

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        Column ``zone_id`` plus any of :data:`ZONE_COLUMNS`. A share group (the five age
        columns, the six household columns) is given whole or not at all, and sums to 1
        (within 0.001; it is then renormalised). Zones and columns not given keep ``base``.
    city : twin.City
    base : pandas.DataFrame, optional
        Table to update; :func:`default_zone_table` when omitted.

    Returns
    -------
    pandas.DataFrame
        The merged table, in ``city.zone_ids`` order.

    Raises
    ------
    ScenarioError
        Unknown or duplicate zone, unknown column, a missing column of a share group, a
        negative, NaN or non-numeric count, shares that do not sum to 1, ``workers`` or
        ``students`` outside [0, 1] or summing above 1; the message names the row and zone.
    """
    df, where = _read_table(source, "zone table")
    table = (default_zone_table(city) if base is None else base).copy()
    unknown = [c for c in df.columns if c not in ZONE_COLUMNS]
    if unknown:
        raise ScenarioError(f"{where}: unknown column(s) {unknown}; accepted: {list(ZONE_COLUMNS)}")
    if "zone_id" not in df.columns:
        raise ScenarioError(f"{where}: no 'zone_id' column; expected zone_id plus any of {list(ZONE_COLUMNS[1:])}")
    for group, name in ((AGE_COLUMNS, "age"), (HOUSEHOLD_COLUMNS, "household-size")):
        given = [c for c in group if c in df.columns]
        if given and len(given) != len(group):
            raise ScenarioError(f"{where}: {name} share columns {given} given without "
                                f"{[c for c in group if c not in given]}; give all of {list(group)} or none")
    ids = table["zone_id"].tolist()
    pos = {str(v): i for i, v in enumerate(ids)}
    seen = {}
    for i, zid in enumerate(df["zone_id"].tolist()):
        row = f"{where} row {i + 1} (zone {zid!r})"
        key = str(zid).strip()
        if key.endswith(".0"):
            key = key[:-2]
        if key not in pos:
            raise ScenarioError(f"{row}: zone_id {zid!r} is not a zone of city {city.name!r}; its zones are "
                                f"{ids[:12]}{' ...' if len(ids) > 12 else ''}")
        if key in seen:
            raise ScenarioError(f"{row}: zone {zid!r} already given in row {seen[key] + 1}; one row per zone")
        seen[key] = i
        values = {}
        for col in df.columns[df.columns != "zone_id"]:
            v = df[col].iloc[i]
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ScenarioError(f"{row}: {col} = {v!r}; expected a number") from None
            if not math.isfinite(v) or v < 0:
                raise ScenarioError(f"{row}: {col} = {v!r}; expected a finite number >= 0")
            values[col] = v
        for group, name in ((AGE_COLUMNS, "age"), (HOUSEHOLD_COLUMNS, "household-size")):
            if group[0] in values:
                total = sum(values[c] for c in group)
                if abs(total - 1.0) > _SHARE_TOL:
                    raise ScenarioError(f"{row}: {name} shares {[values[c] for c in group]} sum to {total:.6g}; "
                                        f"expected 1 (within {_SHARE_TOL})")
                for c in group:
                    values[c] /= total
        for col in ("workers", "students"):
            if col in values and values[col] > 1:
                raise ScenarioError(f"{row}: {col} = {values[col]}; expected a share of residents in [0, 1]")
        j = pos[key]
        for col, v in values.items():
            table.loc[j, col] = v
        if table.loc[j, "workers"] + table.loc[j, "students"] > 1 + 1e-12:
            raise ScenarioError(f"{row}: workers + students = {table.loc[j, 'workers'] + table.loc[j, 'students']:.4g}"
                                f"; expected at most 1 (shares of residents)")
    table.attrs["source"] = f"{table.attrs.get('source', 'defaults')}; overridden by {where}"
    return table


# ------------------------------------------------------------------------------ facilities
def place_facilities(city, zone_table, rng) -> pd.DataFrame:
    """Place the default facilities on nodes (rule in the module docstring).

    Parameters
    ----------
    city : twin.City
    zone_table : pandas.DataFrame
        Zone inputs (:func:`default_zone_table`); its ``persons`` and ``jobs`` set counts.
    rng : numpy.random.Generator
        The ``facilities`` stream.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (str, one of :data:`~twin.agents.activities.FACILITY_KINDS`),
        ``node_idx`` (int32) and ``weight`` (float64: jobs for workplaces, 1 otherwise).
    """
    nodes = _activity_nodes(city)
    zone = city.zone_of_node[nodes]
    persons = zone_table["persons"].to_numpy(float)
    jobs = zone_table["jobs"].to_numpy(float)
    n_in_zone = np.bincount(zone, minlength=city.n_zones)
    kinds, node_idx, weight = [], [], []
    w = jobs[zone] / np.maximum(n_in_zone[zone], 1)
    kinds += ["workplace"] * len(nodes)
    node_idx.append(nodes)
    weight.append(w)
    for kind, (per, at_least_one) in PERSONS_PER_FACILITY.items():
        count_z = np.rint(persons / per).astype(np.int64)
        if at_least_one:
            count_z = np.maximum(count_z, 1)
        elif count_z.sum() == 0:
            count_z[np.argmax(persons)] = 1   # at least one in the city, in the most populous zone
        for z in range(city.n_zones):
            cand = nodes[zone == z]
            if not len(cand) or persons[z] <= 0:
                continue
            count = min(int(count_z[z]), len(cand))
            if count:
                chosen = np.sort(rng.choice(cand, size=count, replace=False))
                kinds += [kind] * count
                node_idx.append(chosen)
                weight.append(np.ones(count))
    p = persons[zone] / np.maximum(n_in_zone[zone], 1)
    n_hosp = min(max(1, int(round(persons.sum() / PERSONS_PER_HOSPITAL))), int((p > 0).sum()) or len(nodes))
    prob = p / p.sum() if p.sum() > 0 else None
    chosen = np.sort(rng.choice(nodes, size=n_hosp, replace=False, p=prob))
    kinds += ["hospital"] * n_hosp
    node_idx.append(chosen)
    weight.append(np.ones(n_hosp))
    return pd.DataFrame({"kind": kinds, "node_idx": np.concatenate(node_idx).astype(np.int32),
                         "weight": np.concatenate(weight).astype(np.float64)})


def read_facilities(source, city) -> pd.DataFrame:
    """Read facility overrides: columns ``kind``, ``node`` (external node id), optional ``weight``.

    Returns the table in the form of :func:`place_facilities`. Kinds given replace the
    default facilities of those kinds; other kinds keep the defaults.

    Raises
    ------
    ScenarioError
        Missing column, unknown kind, unknown node, a node outside every zone, or a
        negative or NaN weight; the message names the row.
    """
    df, where = _read_table(source, "facility table")
    missing = [c for c in ("kind", "node") if c not in df.columns]
    unknown = [c for c in df.columns if c not in ("kind", "node", "weight")]
    if missing or unknown:
        raise ScenarioError(f"{where}: columns {list(df.columns)}; expected kind, node and optionally weight")
    kinds, nodes, weights = [], [], []
    for i in range(len(df)):
        row = f"{where} row {i + 1}"
        kind = str(df["kind"].iloc[i]).strip()
        if kind not in FACILITY_KINDS:
            raise ScenarioError(f"{row}: kind {kind!r}; accepted: {list(FACILITY_KINDS)}")
        node = df["node"].iloc[i]
        node = node.item() if hasattr(node, "item") else node
        try:
            idx = int(city.node_index(node))
        except UnknownNodeError:
            raise ScenarioError(f"{row}: node {node!r} is not a node of city {city.name!r}") from None
        if city.zone_of_node[idx] < 0:
            raise ScenarioError(f"{row}: node {node!r} lies in no zone; facilities must be on zone nodes")
        weight = float(df["weight"].iloc[i]) if "weight" in df.columns else 1.0
        if not math.isfinite(weight) or weight < 0:
            raise ScenarioError(f"{row}: weight = {weight!r}; expected a finite number >= 0")
        kinds.append(kind)
        nodes.append(idx)
        weights.append(weight)
    return pd.DataFrame({"kind": kinds, "node_idx": np.array(nodes, dtype=np.int32),
                         "weight": np.array(weights, dtype=np.float64)})


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


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Locations:
    """Where everyone is at one instant: arrays of shape (n_persons,)."""

    t_s: float
    node_idx: np.ndarray
    zone_idx: np.ndarray
    activity: np.ndarray
    n_travelling: int


@dataclass(frozen=True)
class Accessibility:
    """15-minute life-circle metrics: a per-zone table and central/peripheral summary."""

    by_zone: pd.DataFrame
    summary: dict


_PERSON_DTYPES = {"age": np.uint8, "sex": np.int8, "person_type": np.int8, "health_flags": np.uint8,
                  "car_available": np.bool_, "household_idx": np.int32, "home_node_idx": np.int32,
                  "work_node_idx": np.int32}
_HOUSEHOLD_DTYPES = {"hh_size": np.uint8, "hh_zone_idx": np.int32, "hh_node_idx": np.int32, "hh_car": np.bool_}
_ACTIVITY_DTYPES = {"act_type": np.int8, "act_node_idx": np.int32, "act_start_s": np.float64,
                    "act_end_s": np.float64, "act_mode": np.int8}


@dataclass(eq=False)
class Population:
    """A synthetic population and its day, as struct-of-arrays (never an object per person).

    Build one with :func:`synthesize_population`.

    Attributes
    ----------
    city : twin.City
    age : ndarray of uint8, shape (n_persons,)
        Age in years.
    sex : ndarray of int8
        0 female, 1 male.
    person_type : ndarray of int8
        Code into :data:`~twin.agents.activities.PERSON_TYPES` (worker, student, retiree,
        other); this is also the employment status.
    health_flags : ndarray of uint8
        Bits :data:`CHRONIC` (chronic condition) and :data:`ELDERLY_ALONE` (65+, 1-person household).
    car_available : ndarray of bool
    household_idx, home_node_idx, work_node_idx : ndarray of int32
        Household row; home node; workplace or school node (-1 for neither).
    hh_size : ndarray of uint8, shape (n_households,)
    hh_zone_idx, hh_node_idx : ndarray of int32
    hh_car : ndarray of bool
    act_indptr : ndarray of int64, shape (n_persons + 1,)
        Person ``p``'s activities are slots ``act_indptr[p]:act_indptr[p+1]`` in time order.
    act_type : ndarray of int8, shape (n_activities,)
        Code into :data:`~twin.agents.activities.ACTIVITIES`.
    act_node_idx : ndarray of int32
    act_start_s, act_end_s : ndarray of float64
        Arrival and departure, seconds after midnight (home: 0 and ``inf``).
    act_mode : ndarray of int8
        Mode of the trip arriving at the activity (code into ``MODES``), -1 for the first.
    facilities : pandas.DataFrame
        ``kind``, ``node_idx``, ``weight``.
    zone_table : pandas.DataFrame
        The zone inputs the population was fitted to.
    meta : dict
        Seed, IPF iterations and error, parameters, timings.
    """

    city: object
    age: np.ndarray
    sex: np.ndarray
    person_type: np.ndarray
    health_flags: np.ndarray
    car_available: np.ndarray
    household_idx: np.ndarray
    home_node_idx: np.ndarray
    work_node_idx: np.ndarray
    hh_size: np.ndarray
    hh_zone_idx: np.ndarray
    hh_node_idx: np.ndarray
    hh_car: np.ndarray
    act_indptr: np.ndarray
    act_type: np.ndarray
    act_node_idx: np.ndarray
    act_start_s: np.ndarray
    act_end_s: np.ndarray
    act_mode: np.ndarray
    facilities: pd.DataFrame
    zone_table: pd.DataFrame
    meta: dict = field(default_factory=dict)
    _matrix_nodes: np.ndarray = field(default=None, repr=False)
    _car_time_s: np.ndarray = field(default=None, repr=False)
    _distance_m: np.ndarray = field(default=None, repr=False)
    _car_link_cost_s: np.ndarray = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        n = len(self.age)
        for group, size in ((_PERSON_DTYPES, n), (_HOUSEHOLD_DTYPES, len(self.hh_size)),
                            (_ACTIVITY_DTYPES, len(self.act_type))):
            for name, dtype in group.items():
                a = getattr(self, name)
                if a.dtype != dtype or a.shape != (size,) or not a.flags.c_contiguous:
                    raise TypeError(f"Population.{name}: dtype {a.dtype}, shape {a.shape}; expected "
                                    f"contiguous {np.dtype(dtype).name} of shape ({size},)")
        if self.act_indptr.dtype != np.int64 or self.act_indptr.shape != (n + 1,):
            raise TypeError(f"Population.act_indptr: expected int64 of shape ({n + 1},)")

    # sizes ------------------------------------------------------------------------
    @property
    def n_persons(self) -> int:
        """Number of persons."""
        return len(self.age)

    @property
    def n_households(self) -> int:
        """Number of households."""
        return len(self.hh_size)

    @property
    def n_trips(self) -> int:
        """Number of trips (activities after each person's first)."""
        return len(self.act_type) - self.n_persons

    @property
    def home_zone_idx(self) -> np.ndarray:
        """Zone index of each person's home (int32)."""
        return self.hh_zone_idx[self.household_idx]

    def state_nbytes(self) -> dict:
        """Bytes held in person, household and activity (plan) arrays."""
        persons = sum(getattr(self, k).nbytes for k in _PERSON_DTYPES)
        households = sum(getattr(self, k).nbytes for k in _HOUSEHOLD_DTYPES)
        plans = sum(getattr(self, k).nbytes for k in _ACTIVITY_DTYPES) + self.act_indptr.nbytes
        return {"persons": persons, "households": households, "plans": plans, "total": persons + households + plans}

    def __repr__(self):
        return (f"Population(city={self.city.name!r}, n_persons={self.n_persons}, n_households={self.n_households}, "
                f"n_trips={self.n_trips})")

    # trips ------------------------------------------------------------------------
    def _trip_slots(self):
        first = np.zeros(len(self.act_type), dtype=bool)
        first[self.act_indptr[:-1]] = True
        return np.flatnonzero(~first)

    def trips(self, *, ids=True) -> pd.DataFrame:
        """All trips, in person then time order.

        Parameters
        ----------
        ids : bool, default True
            Origin and destination as external node ids; node indices (``*_idx``) if False.

        Returns
        -------
        pandas.DataFrame
            ``person`` (int32), ``origin``, ``destination``, ``depart_s``, ``arrive_s``
            (float64, s), ``mode`` and ``purpose`` (categoricals: the destination activity;
            ``home`` for return legs).
        """
        k = self._trip_slots()
        person = (np.searchsorted(self.act_indptr, k, side="right") - 1).astype(np.int32)
        o, d = self.act_node_idx[k - 1], self.act_node_idx[k]
        cols = {"person": person}
        if ids:
            cols.update(origin=self.city.node_ids[o], destination=self.city.node_ids[d])
        else:
            cols.update(origin_idx=o, destination_idx=d)
        cols.update(depart_s=self.act_end_s[k - 1], arrive_s=self.act_start_s[k],
                    mode=pd.Categorical.from_codes(self.act_mode[k], MODES),
                    purpose=pd.Categorical.from_codes(self.act_type[k], ACTIVITIES))
        return pd.DataFrame(cols)

    def vehicle_trips(self) -> pd.DataFrame:
        """Car legs as traffic demand: ``origin``, ``destination``, ``depart_s`` (+ ``person``), by departure."""
        t = self.trips()
        t = t[t["mode"] == "car"].sort_values(["depart_s", "person"], kind="stable")
        return t[["origin", "destination", "depart_s", "person"]].reset_index(drop=True)

    # where is everyone ----------------------------------------------------------
    def location_at(self, t_s, *, along_routes=True) -> Locations:
        """Node, zone and activity of every person at time ``t_s`` (seconds after midnight).

        Parameters
        ----------
        t_s : float
            The instant.
        along_routes : bool, default True
            Place a traveller on its trip's route: the trip's least-cost path (car legs by
            the car link times the plan was made with, other modes by link length) at the
            node reached after the elapsed fraction of the trip (see
            ``twin.kernels.population.locate_persons_on_routes``). The first call builds and
            caches one shortest-path tree per trip-origin node and cost kind
            (:meth:`route_trees`). With False, a traveller is at the trip's origin before
            its mid-time and at its destination afterwards (no trees needed).

        Returns
        -------
        Locations
            Travellers have activity ``travel``. Vectorised (numba), parallel over persons.
            ``zone_idx`` is the zone of ``node_idx``; a traveller on a node outside every
            zone (the through nodes of TNTP cities) counts in the zone of the nearer end of
            its trip, so everyone is in a zone at every time.

        Raises
        ------
        ScenarioError
            ``t_s`` is not a finite number.
        """
        t_s = float(t_s)
        if not math.isfinite(t_s):
            raise ScenarioError(f"location_at: t_s = {t_s}; expected finite seconds after midnight")
        node = np.empty(self.n_persons, dtype=np.int32)
        act = np.empty(self.n_persons, dtype=np.int8)
        if along_routes:
            row_of, dist, pred = self.route_trees()
            n_trav = locate_persons_on_routes(t_s, self.act_indptr, self.act_start_s, self.act_end_s,
                                              self.act_node_idx, self.act_type, self.act_mode, TRAVEL, row_of,
                                              _TREE_OF_MODE, dist, pred, node, act)
        else:
            n_trav = locate_persons(t_s, self.act_indptr, self.act_start_s, self.act_end_s, self.act_node_idx,
                                    self.act_type, TRAVEL, node, act)
        zone = self.city.zone_of_node[node]
        off = zone < 0
        if off.any():
            # a traveller on a node outside every zone (a TNTP through node): the zone of the
            # nearer end of its trip, so every person is in some zone at every time
            near = np.empty(self.n_persons, dtype=np.int32)
            locate_persons(t_s, self.act_indptr, self.act_start_s, self.act_end_s, self.act_node_idx,
                           self.act_type, TRAVEL, near, np.empty(self.n_persons, dtype=np.int8))
            zone = zone.copy()
            zone[off] = self.city.zone_of_node[near[off]]
        return Locations(t_s, node, zone, act, int(n_trav))

    def route_trees(self):
        """Shortest-path trees from every activity node, built on first use and cached.

        Returns
        -------
        row_of_node : ndarray of int64, shape (n_nodes,)
            Tree row of each node (-1 outside every zone: no trip starts there).
        dist : ndarray of float64, shape (2, n_rows, n_nodes)
            Least cost from each row's node: ``[0]`` car time (s) on the car link times of
            the plans (free flow, or ``link_cost_s`` of the synthesis), ``[1]`` length (m).
        pred_node : ndarray of int32, shape (2, n_rows, n_nodes)
            Predecessor node on each least-cost path (-1 at the root and unreachable nodes).

        Notes
        -----
        One Dijkstra per zone node and cost kind (``twin.kernels.routing.dijkstra_sssp``);
        memory ``24 * n_rows * n_nodes`` bytes (0.6 MB on the embedded city, 8.7 MB on
        Chicago-Sketch), independent of the number of persons.
        """
        if "trees" not in self._cache:
            self._cache["trees"] = _route_trees(self.city, self._matrix_nodes, self._car_link_cost_s)
        return self._cache["trees"]

    def with_travel_times(self, car_travel_time_s) -> "Population":
        """A copy whose plans are re-timed from observed car travel times.

        Parameters
        ----------
        car_travel_time_s : array-like of float, shape (n_vehicle_trips,)
            Observed node-to-node travel time of each car leg, seconds, in the row order of
            :meth:`vehicle_trips` (e.g. the travel times of a traffic run on that demand);
            NaN keeps a leg's planned time.

        Returns
        -------
        Population
            Car legs take ``observed + terminal_s["car"]`` (the parking time of the plan's
            mode parameters); every later departure and arrival of the person shifts so
            that activity durations are kept, so the plans stay continuous (each trip
            departs when the previous activity ends) and time-consistent
            (``start <= end <= next start``). Destinations, modes and routes are unchanged.
            ``meta["retimed"]`` counts the legs changed and their mean delay.

        Raises
        ------
        ScenarioError
            Wrong length, or a negative or infinite time (the row, person and trip are named).
        """
        obs = np.asarray(car_travel_time_s, dtype=np.float64).ravel()
        slots = self._vehicle_trip_slots()
        if obs.shape != (len(slots),):
            raise ScenarioError(f"with_travel_times: got {obs.size} car travel times; expected one per row of "
                                f"vehicle_trips() ({len(slots)})")
        bad = np.flatnonzero(~np.isnan(obs) & ~(np.isfinite(obs) & (obs >= 0)))
        if len(bad):
            i = int(bad[0])
            k = int(slots[i])
            person = int(np.searchsorted(self.act_indptr, k, side="right") - 1)
            raise ScenarioError(f"with_travel_times: row {i} (person {person}, trip from node "
                                f"{_py(self.city.node_ids[self.act_node_idx[k - 1]])!r} to "
                                f"{_py(self.city.node_ids[self.act_node_idx[k]])!r}) has travel time {obs[i]}; "
                                "expected seconds >= 0 or NaN (keep the plan)")
        terminal = self.meta.get("modes", {}).get("terminal_s", {}).get("car", ModeParams().terminal_s["car"])
        dur = self.act_start_s.copy()
        dur[1:] -= self.act_end_s[:-1]                     # planned duration of the trip arriving at each slot
        dur[self.act_indptr[:-1]] = 0.0
        ok = ~np.isnan(obs)
        new_dur = dur.copy()
        new_dur[slots[ok]] = obs[ok] + terminal
        start, end = self.act_start_s.copy(), self.act_end_s.copy()
        stay = self.act_end_s - self.act_start_s           # kept; inf for the last activity
        touched = new_dur != dur                           # slots from the first changed leg on are re-timed
        lengths = np.diff(self.act_indptr)
        for j in range(1, int(lengths.max()) if len(lengths) else 0):
            k = self.act_indptr[:-1][lengths > j] + j
            touched[k] |= touched[k - 1]
            k = k[touched[k]]
            start[k] = end[k - 1] + new_dur[k]
            end[k] = np.where(np.isfinite(stay[k]), start[k] + stay[k], np.inf)
        delay = new_dur[slots[ok]] - dur[slots[ok]]
        meta = {**self.meta, "retimed": {"car_legs": int(ok.sum()),
                                         "mean_delay_s": float(delay.mean()) if len(delay) else 0.0}}
        return dataclasses.replace(self, act_start_s=start, act_end_s=end, meta=meta, _cache={})

    def _vehicle_trip_slots(self):
        """Activity slots of the car legs, in :meth:`vehicle_trips` row order."""
        k = self._trip_slots()
        k = k[self.act_mode[k] == CAR]
        person = np.searchsorted(self.act_indptr, k, side="right") - 1
        return k[np.lexsort((person, self.act_end_s[k - 1]))]

    def present_by_zone(self, times_s=None) -> pd.DataFrame:
        """Persons present in each zone at each time (default: every hour 00:00..23:00).

        Returns a DataFrame indexed by ``time_s`` with one column per zone id; rows sum to
        ``n_persons`` (travellers count in the zone of the node they are at, or of the
        nearer end of their trip on a node outside every zone; see :meth:`location_at`).
        """
        times = np.arange(24) * 3600.0 if times_s is None else np.asarray(times_s, dtype=np.float64)
        out = np.empty((len(times), self.city.n_zones), dtype=np.int64)
        for i, t in enumerate(times):
            loc = self.location_at(t)
            out[i] = np.bincount(loc.zone_idx, minlength=self.city.n_zones)
        return pd.DataFrame(out, index=pd.Index(times, name="time_s"), columns=self.city.zone_ids)

    # accessibility ----------------------------------------------------------------
    def accessibility(self, *, walk_limit_s=900.0, drive_limit_s=1800.0, elderly_age=65,
                      link_cost_s=None) -> Accessibility:
        """The 15-minute life circle, per district and central vs peripheral.

        Parameters
        ----------
        walk_limit_s : float, default 900
            Walking time limit to an elderly-care centre or clinic (walk speed of the run).
        drive_limit_s : float, default 1800
            Driving time limit to a hospital.
        elderly_age : int, default 65
        link_cost_s : ndarray of float64, shape (n_links,), optional
            Link travel times for the driving times, seconds: free flow when omitted;
            congested times from a traffic run (e.g. ``TrafficEngine.link_travel_times_s()``
            at the peak, or a ``mean_travel_time_s`` row of its link series) give the
            congested accessibility.

        Returns
        -------
        Accessibility
            ``by_zone``: ``zone_id``, ``central``, ``residents``, ``elderly``,
            ``elderly_care_walk_share`` (share of elderly within ``walk_limit_s`` walking of
            a clinic or elderly-care centre) and ``hospital_drive_share`` (share of residents
            within ``drive_limit_s`` driving of a hospital). ``summary``: both shares for
            ``central``, ``peripheral`` and ``all`` residents, and ``*_gap`` = central
            minus peripheral (NaN where a side has nobody).
        """
        walk = self.meta["modes"]["speed_mps"]["walk"]
        row = self._row_of(self.home_node_idx)
        fac = self.facilities
        care = self._row_of(fac["node_idx"].to_numpy()[fac["kind"].isin(["clinic", "elderly_care"]).to_numpy()])
        hosp = self._row_of(fac["node_idx"].to_numpy()[(fac["kind"] == "hospital").to_numpy()])
        n_rows = len(self._matrix_nodes)
        walk_ok = (self._distance_m[:, care].min(axis=1) / walk <= walk_limit_s) if len(care) else np.zeros(n_rows, bool)
        if not len(hosp):
            drive_ok = np.zeros(n_rows, bool)
        elif link_cost_s is None and self._car_link_cost_s is None:
            drive_ok = self._car_time_s[:, hosp].min(axis=1) <= drive_limit_s
        else:
            link_cost_s = self.city.free_flow_time_s if link_cost_s is None else link_cost_s
            ids = self.city.node_ids
            car = self.city.travel_times(ids[self._matrix_nodes], ids[self._matrix_nodes[hosp]], link_cost_s=link_cost_s)
            drive_ok = car.min(axis=1) <= drive_limit_s
        zone = self.home_zone_idx
        nz = self.city.n_zones
        elderly = self.age >= elderly_age
        residents = np.bincount(zone, minlength=nz)
        n_eld = np.bincount(zone, weights=elderly, minlength=nz)
        eld_ok = np.bincount(zone, weights=elderly & walk_ok[row], minlength=nz)
        res_ok = np.bincount(zone, weights=drive_ok[row], minlength=nz)
        central = _central_zones(self.city)
        with np.errstate(invalid="ignore", divide="ignore"):
            by_zone = pd.DataFrame({"zone_id": self.city.zone_ids, "central": central, "residents": residents,
                                    "elderly": n_eld.astype(np.int64), "elderly_care_walk_share": eld_ok / n_eld,
                                    "hospital_drive_share": res_ok / residents})
        summary = {}
        for name, sel in (("central", central), ("peripheral", ~central), ("all", np.ones(nz, bool))):
            summary[f"elderly_care_walk_share_{name}"] = _ratio(eld_ok[sel].sum(), n_eld[sel].sum())
            summary[f"hospital_drive_share_{name}"] = _ratio(res_ok[sel].sum(), residents[sel].sum())
        for m in ("elderly_care_walk_share", "hospital_drive_share"):
            summary[f"{m}_gap"] = summary[f"{m}_central"] - summary[f"{m}_peripheral"]
        return Accessibility(by_zone, summary)

    def _row_of(self, node_idx):
        lookup = np.full(self.city.n_nodes, -1, dtype=np.int64)
        lookup[self._matrix_nodes] = np.arange(len(self._matrix_nodes))
        return lookup[np.asarray(node_idx)]

    # marginals ----------------------------------------------------------------------
    def marginals(self) -> pd.DataFrame:
        """Synthesised vs target counts per zone and marginal (age bands, household sizes, workers, students).

        Columns ``zone_id``, ``marginal``, ``target``, ``synthesised``, ``abs_error``.
        Targets are the zone shares times the zone's synthesised residents (persons for
        age bands, workers and students; households for sizes).
        """
        zone = self.home_zone_idx
        nz = self.city.n_zones
        residents = np.bincount(zone, minlength=nz).astype(float)
        rows = []
        band = np.searchsorted([b[2] for b in AGE_BANDS], self.age, side="right")
        zt = self.zone_table
        for a, col in enumerate(AGE_COLUMNS):
            rows.append((col, residents * zt[col].to_numpy(float), np.bincount(zone[band == a], minlength=nz)))
        sizes = np.minimum(self.hh_size, 6)
        hh_mean = zt[list(HOUSEHOLD_COLUMNS)].to_numpy(float) @ np.array(HOUSEHOLD_SIZES)
        for s, col in enumerate(HOUSEHOLD_COLUMNS):
            target = residents / hh_mean * zt[col].to_numpy(float)
            rows.append((col, target, np.bincount(self.hh_zone_idx[sizes == s + 1], minlength=nz)))
        for code, col in ((WORKER, "workers"), (STUDENT, "students")):
            rows.append((col, residents * zt[col].to_numpy(float),
                         np.bincount(zone[self.person_type == code], minlength=nz)))
        frames = [pd.DataFrame({"zone_id": self.city.zone_ids, "marginal": col, "target": t,
                                "synthesised": s.astype(np.int64)}) for col, t, s in rows]
        out = pd.concat(frames, ignore_index=True)
        out["abs_error"] = (out["synthesised"] - out["target"]).abs()
        return out

    # equality and reading back --------------------------------------------------------
    def equals(self, other) -> bool:
        """Whether two populations hold identical arrays, facilities, zone inputs and meta.

        The cities must have the same size; the wall-clock ``meta["timings_s"]`` is ignored.
        """
        if not isinstance(other, Population) or self.city.n_nodes != other.city.n_nodes:
            return False
        names = [*_PERSON_DTYPES, *_HOUSEHOLD_DTYPES, *_ACTIVITY_DTYPES, "act_indptr"]
        pairs = [(getattr(self, k), getattr(other, k)) for k in names]
        if not all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in pairs):
            return False
        a, b = self._car_link_cost_s, other._car_link_cost_s
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            return False
        try:
            pd.testing.assert_frame_equal(self.facilities, other.facilities)
            pd.testing.assert_frame_equal(self.zone_table, other.zone_table)
        except AssertionError:
            return False
        def state(meta):
            return {k: v for k, v in _jsonable(meta).items() if k != "timings_s"}

        return state(self.meta) == state(other.meta)

    @classmethod
    def read(cls, path, city=None, *, prefix="population") -> "Population":
        """Load a population from a results file written by :meth:`write`.

        Parameters
        ----------
        path : str or Path
            The HDF5 results file.
        city : twin.City, optional
            The city it was synthesised on; when omitted, ``load_city`` of the stored
            name, then of the stored source path, the first with the stored size (works for
            embedded cities and network files still in place; pass ``city`` for synthetic or
            in-memory cities).
        prefix : str, default "population"
            The prefix the population was written under.

        Returns
        -------
        Population
            Equal to the one written (:meth:`equals`): person, household and plan arrays
            with their dtypes, facilities, zone inputs, meta and the car link costs of the
            plans; travel-time matrices are recomputed from the city.

        Raises
        ------
        ResultsError
            No population under ``prefix`` (or one written before read-back was
            supported), or a city whose size differs from the stored one.
        """
        from twin.results import open_results

        with open_results(path) as res:
            meta_all = res.meta
            if f"{prefix}_meta" not in meta_all or f"{prefix}_city" not in meta_all:
                raise ResultsError(f"{str(path)!r} holds no population written under prefix {prefix!r} with its "
                                   f"metadata (/meta/{prefix}_meta); write it with Population.write")
            info = meta_all[f"{prefix}_city"]
            city = _city_for(info, city, path)
            persons = res.table(f"/events/{prefix}_persons")
            hh = res.table(f"/events/{prefix}_households")
            acts = res.table(f"/events/{prefix}_activities")
            fac = res.table(f"/events/{prefix}_facilities")
            zones = res.table(f"/events/{prefix}_zones")
            cost_path = f"/network/{prefix}_car_link_cost_s"
            car_cost = np.ascontiguousarray(res.array(cost_path), dtype=np.float64) if cost_path in res.keys() else None
        arr = {k: np.ascontiguousarray(persons[k].to_numpy(), dtype=d) for k, d in _PERSON_DTYPES.items()}
        for k, col in (("hh_size", "size"), ("hh_zone_idx", "zone_idx"), ("hh_node_idx", "home_node_idx"),
                       ("hh_car", "car")):
            arr[k] = np.ascontiguousarray(hh[col].to_numpy(), dtype=_HOUSEHOLD_DTYPES[k])
        for k, col in (("act_type", "type"), ("act_node_idx", "node_idx"), ("act_start_s", "start_s"),
                       ("act_end_s", "end_s"), ("act_mode", "arrival_mode")):
            arr[k] = np.ascontiguousarray(acts[col].to_numpy(), dtype=_ACTIVITY_DTYPES[k])
        n = len(arr["age"])
        person = acts["person"].to_numpy()
        if len(person) and (np.diff(person) < 0).any():
            raise ResultsError(f"{str(path)!r}: /events/{prefix}_activities is not in person order")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(person, minlength=n), out=indptr[1:])
        facilities = pd.DataFrame({"kind": [FACILITY_KINDS[int(c)] for c in fac["kind"].to_numpy()],
                                   "node_idx": fac["node_idx"].to_numpy().astype(np.int32),
                                   "weight": fac["weight"].to_numpy().astype(np.float64)})
        zt = pd.DataFrame({"zone_id": city.zone_ids,
                           **{c: zones[c].to_numpy().astype(np.float64) for c in ZONE_COLUMNS[1:]}})
        zt.attrs["source"] = str(meta_all.get(f"{prefix}_zone_source", ""))
        nodes = _activity_nodes(city)
        ids = city.node_ids[nodes]
        return cls(city=city, **arr, act_indptr=indptr, facilities=facilities, zone_table=zt,
                   meta=meta_all[f"{prefix}_meta"], _matrix_nodes=nodes,
                   _car_time_s=city.travel_times(ids, ids, link_cost_s=car_cost),
                   _distance_m=city.travel_times(ids, ids, link_cost_s=city.length_m), _car_link_cost_s=car_cost)

    # summary and storage ------------------------------------------------------------
    def summary(self) -> dict:
        """Headline figures: counts, trips per person, mode and purpose shares, bytes per person."""
        t_mode = self.act_mode[self._trip_slots()]
        t_purp = self.act_type[self._trip_slots()]
        n_trips = max(len(t_mode), 1)
        out = {"n_persons": self.n_persons, "n_households": self.n_households, "n_trips": self.n_trips,
               "trips_per_person": self.n_trips / max(self.n_persons, 1),
               "state_bytes_per_person": self.state_nbytes()["total"] / max(self.n_persons, 1),
               "ipf_iterations": self.meta.get("ipf_iterations"), "ipf_max_rel_error": self.meta.get("ipf_max_rel_error")}
        for code, m in enumerate(MODES):
            out[f"mode_share_{m}"] = float((t_mode == code).sum() / n_trips)
        for code, a in enumerate(ACTIVITIES[:-1]):
            out[f"purpose_share_{a}"] = float((t_purp == code).sum() / n_trips)
        return out

    def write(self, writer, *, prefix="population") -> None:
        """Write persons, households, activities, trips, facilities, hourly presence and KPIs.

        Tables ``/events/{prefix}_persons``, ``_households``, ``_activities``, ``_trips``,
        ``_facilities``; series ``/timeseries/{prefix}_present`` (hour x zone, persons)
        with ``time_s``; scalars ``/summary/{prefix}_*``; code tables in ``/meta/{prefix}_codes``.
        Codes (person type, activity, mode, facility kind) are int8 indices into those lists.
        """
        writer.write_meta(**{f"{prefix}_codes": {"person_type": list(PERSON_TYPES), "activity": list(ACTIVITIES),
                                                 "mode": list(MODES), "facility_kind": list(FACILITY_KINDS),
                                                 "sex": ["female", "male"],
                                                 "health_flags": {"chronic": CHRONIC, "elderly_alone": ELDERLY_ALONE}},
                             f"{prefix}_seed": int(self.meta["seed"]),
                             f"{prefix}_zone_source": str(self.zone_table.attrs.get("source", "")),
                             # wall-clock timings stay out of the file: one seed, byte-identical files
                             f"{prefix}_meta": {k: v for k, v in _jsonable(self.meta).items() if k != "timings_s"},
                             f"{prefix}_city": {"name": str(self.city.name), "source": str(self.city.source),
                                                "n_nodes": int(self.city.n_nodes), "n_links": int(self.city.n_links),
                                                "n_zones": int(self.city.n_zones)}})
        zt = self.zone_table
        zone_col = zt["zone_id"].to_numpy()
        writer.write_table(f"/events/{prefix}_zones",
                           {"zone_id": zone_col if zone_col.dtype.kind in "iu" else zone_col.astype(str),
                            **{c: zt[c].to_numpy(np.float64) for c in ZONE_COLUMNS[1:]}},
                           units={"zone_id": "", "persons": "persons", "jobs": "jobs",
                                  **{c: "1" for c in ZONE_COLUMNS[1:] if c not in ("persons", "jobs")}})
        if self._car_link_cost_s is not None:
            writer.write_array(f"/network/{prefix}_car_link_cost_s", self._car_link_cost_s, units="s",
                               attrs={"description": "car link travel times the population's plans were made with"})
        writer.write_table(f"/events/{prefix}_persons", {k: getattr(self, k) for k in _PERSON_DTYPES},
                           units={"age": "year", **{k: "" for k in _PERSON_DTYPES if k != "age"}})
        writer.write_table(f"/events/{prefix}_households",
                           {"size": self.hh_size, "zone_idx": self.hh_zone_idx, "home_node_idx": self.hh_node_idx,
                            "car": self.hh_car}, units={"size": "1", "zone_idx": "", "home_node_idx": "", "car": ""})
        person = np.repeat(np.arange(self.n_persons, dtype=np.int32), np.diff(self.act_indptr))
        writer.write_table(f"/events/{prefix}_activities",
                           {"person": person, "type": self.act_type, "node_idx": self.act_node_idx,
                            "start_s": self.act_start_s, "end_s": self.act_end_s, "arrival_mode": self.act_mode},
                           units={"person": "", "type": "", "node_idx": "", "start_s": "s", "end_s": "s",
                                  "arrival_mode": ""})
        t = self.trips(ids=False)
        writer.write_table(f"/events/{prefix}_trips",
                           {"person": t["person"].to_numpy(), "origin_idx": t["origin_idx"].to_numpy(),
                            "destination_idx": t["destination_idx"].to_numpy(), "depart_s": t["depart_s"].to_numpy(),
                            "arrive_s": t["arrive_s"].to_numpy(), "mode": t["mode"].cat.codes.to_numpy(np.int8),
                            "purpose": t["purpose"].cat.codes.to_numpy(np.int8)},
                           units={"person": "", "origin_idx": "", "destination_idx": "", "depart_s": "s",
                                  "arrive_s": "s", "mode": "", "purpose": ""})
        kind_code = np.array([FACILITY_KINDS.index(k) for k in self.facilities["kind"]], dtype=np.int8)
        writer.write_table(f"/events/{prefix}_facilities",
                           {"kind": kind_code, "node_idx": self.facilities["node_idx"].to_numpy(np.int32),
                            "weight": self.facilities["weight"].to_numpy(np.float64)},
                           units={"kind": "", "node_idx": "", "weight": "1"})
        present = self.present_by_zone()
        writer.write_array(f"/timeseries/{prefix}_present/time_s", present.index.to_numpy(), units="s")
        writer.write_array(f"/timeseries/{prefix}_present/persons", present.to_numpy().astype(np.float32),
                           units="persons", attrs={"time_path": f"/timeseries/{prefix}_present/time_s",
                                                   "columns_are": "zones in network zone order"})
        for name, value in self.summary().items():
            if value is not None:
                unit = "B" if name.endswith("bytes_per_person") else "1"
                writer.write_summary(f"{prefix}_{name}", value, units=unit)
        for name, value in self.accessibility().summary.items():
            writer.write_summary(f"{prefix}_{name}", float(value), units="1")


def _jsonable(value):
    """``value`` with numpy scalars and tuples made plain, for JSON metadata."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return _py(value)


def read_population(path, city=None, *, prefix="population") -> "Population":
    """Load a population written by :meth:`Population.write` (see :meth:`Population.read`)."""
    return Population.read(path, city, prefix=prefix)


def _city_for(info, city, path):
    """The city a stored population belongs to, checked against the stored sizes."""
    want = {k: info.get(k) for k in ("n_nodes", "n_links", "n_zones")}

    def size(c):
        return {"n_nodes": c.n_nodes, "n_links": c.n_links, "n_zones": c.n_zones}

    if city is None:
        from twin.loading import load_city

        for spec in (info.get("name"), info.get("source")):
            try:
                city = load_city(spec)
            except (TwinError, OSError, ValueError, TypeError):
                continue
            if size(city) == want:
                break
        else:
            raise ResultsError(f"{str(path)!r}: cannot load the population's city {info.get('name')!r} (source "
                               f"{info.get('source')!r}) with {want}; pass city= to read it")
    got = size(city)
    if got != want:
        raise ResultsError(f"{str(path)!r}: the population was made on city {info.get('name')!r} with {want}; the "
                           f"city given has {got}")
    return city


def _py(value):
    """A numpy scalar as the plain Python value, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _ratio(a, b):
    return float(a) / float(b) if b > 0 else float("nan")


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
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ScenarioError(f"synthesize_population: unknown option(s) {unknown}; accepted: {list(_OPTIONS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"synthesize_population: seed must be an int; got {type(seed).__name__}")
    progress = options.get("progress")
    t0 = time.perf_counter()
    timings = {}

    def phase(name, done):
        timings[name] = time.perf_counter() - t0
        logger.info("population: %s done (%.2f s)", name, timings[name])
        if progress is not None:
            progress(done, 6)

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
    streams = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(len(_STREAMS)))))

    zt = default_zone_table(city)
    if options.get("zones") is not None:
        zt = read_zone_table(options["zones"], city, base=zt)
    zone_ids = city.zone_ids.tolist()
    nodes = _activity_nodes(city)
    nz = city.n_zones

    # 1. residents per zone, households by size, IPF of size x age ----------------------
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

    # 2. persons into households ----------------------------------------------------------
    rng = streams["households"]
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
    n = len(band)
    hh_group = np.repeat(np.arange(hh.size), hh_flat)
    hh_zone_idx = (hh_group // len(HOUSEHOLD_SIZES)).astype(np.int32)
    hh_size = np.bincount(household, minlength=len(hh_group)).astype(np.uint8)
    rng = streams["persons"]
    lo = np.array([b[1] for b in AGE_BANDS])[band]
    hi = np.array([b[2] for b in AGE_BANDS])[band]
    age = (lo + np.floor(rng.random(n) * (hi - lo))).astype(np.uint8)
    sex = (rng.random(n) < MALE_SHARE).astype(np.int8)
    chronic = rng.random(n) < np.array(CHRONIC_SHARE_BY_BAND)[band]
    alone = (age >= 65) & (hh_size[household] == 1)
    health = (chronic * CHRONIC | alone * ELDERLY_ALONE).astype(np.uint8)
    zone = hh_zone_idx[household]
    resid = np.bincount(zone, minlength=nz)
    k_stud = np.rint(resid * zt["students"].to_numpy(float)).astype(np.int64)
    k_work = np.rint(resid * zt["workers"].to_numpy(float)).astype(np.int64)
    student = _weighted_take(zone, _age_weight(age, _STUDENT_WEIGHT), k_stud, rng.random(n), "students", zone_ids)
    worker = _weighted_take(zone, _age_weight(age, _WORKER_WEIGHT) * ~student, k_work, rng.random(n), "workers",
                            zone_ids)
    ptype = np.where(worker, WORKER, np.where(student, STUDENT, np.where(age >= 60, RETIREE, OTHER))).astype(np.int8)
    hh_car = rng.random(len(hh_group)) < mode_params.car_ownership
    car_available = hh_car[household] & (age >= 18) & (age < 75)
    phase("households and persons", 1)

    # 3. homes and facilities ---------------------------------------------------------------
    facilities = place_facilities(city, zt, streams["facilities"])
    if options.get("facilities") is not None:
        override = read_facilities(options["facilities"], city)
        facilities = pd.concat([facilities[~facilities["kind"].isin(set(override["kind"]))], override],
                               ignore_index=True)
    zone_nodes = nodes[np.argsort(city.zone_of_node[nodes], kind="stable")]
    z_ptr = np.concatenate([[0], np.cumsum(n_nodes_z)])
    pick = np.floor(streams["homes"].random(len(hh_group)) * n_nodes_z[hh_zone_idx]).astype(np.int64)
    hh_node_idx = zone_nodes[z_ptr[hh_zone_idx] + pick].astype(np.int32)
    home = hh_node_idx[household]
    phase("homes and facilities", 2)

    # 4. travel-time matrices over zone nodes ------------------------------------------
    ids = city.node_ids[nodes]
    car_time = city.travel_times(ids, ids, link_cost_s=car_cost)
    distance = city.travel_times(ids, ids, link_cost_s=city.length_m)
    row_of = np.full(city.n_nodes, -1, dtype=np.int64)
    row_of[nodes] = np.arange(len(nodes))
    chooser = _DestinationChooser(city, facilities, car_time, row_of, act_params)
    phase("travel times", 3)

    # 5. work and school places, day patterns, destinations, times, modes ------------------
    rng = streams["destinations"]
    work_node = np.full(n, -1, dtype=np.int32)
    for code, act in ((WORKER, WORK), (STUDENT, SCHOOL)):
        sel = np.flatnonzero(ptype == code)
        work_node[sel] = chooser.choose(act, home[sel], rng.random(len(sel)))
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


def _route_trees(city, rows_nodes, car_link_cost_s):
    """(row_of_node, dist, pred_node) of :meth:`Population.route_trees`."""
    from twin.kernels.routing import dijkstra_sssp

    n, m = city.n_nodes, city.n_links
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[rows_nodes] = np.arange(len(rows_nodes))
    dist = np.empty((2, len(rows_nodes), n))
    pred = np.empty((2, len(rows_nodes), n), dtype=np.int32)
    pred_link = np.empty(n, dtype=np.int64)
    heap_d, heap_v = np.empty(m + 1), np.empty(m + 1, dtype=np.int64)
    no_target = np.zeros(n, dtype=np.bool_)
    car = city.free_flow_time_s if car_link_cost_s is None else car_link_cost_s
    for kind, cost in enumerate((car, city.length_m)):
        slot_cost = np.ascontiguousarray(np.asarray(cost, dtype=np.float64)[city.fwd_link])
        for r, node in enumerate(rows_nodes):
            dijkstra_sssp(city.fwd_indptr, city.fwd_head, slot_cost, city.fwd_link, city.no_through, int(node),
                          no_target, n + 1, dist[kind, r], pred_link, heap_d, heap_v)
            pred[kind, r] = np.where(pred_link >= 0, city.link_from_idx[np.maximum(pred_link, 0)], -1)
    return row_of, dist, pred


class _DestinationChooser:
    """Gravity-model destination choice from any zone node to the facilities of an activity."""

    def __init__(self, city, facilities, car_time, row_of, params):
        self.city = city
        self.row_of = row_of
        self.cum = {}
        self.cols = {}
        kinds = facilities["kind"].to_numpy()
        for act, kind in FACILITY_OF_ACTIVITY.items():
            sel = kinds == kind
            fac_nodes = facilities["node_idx"].to_numpy()[sel]
            if not len(fac_nodes):
                self.cum[act] = None
                continue
            beta = params.gravity_beta_per_min[ACTIVITIES[act]]
            t_min = car_time[:, row_of[fac_nodes]] / 60.0
            with np.errstate(invalid="ignore"):
                w = facilities["weight"].to_numpy()[sel][None, :] * np.exp(-beta * t_min)
            w = np.where(np.isfinite(t_min), w, 0.0)
            self.cum[act] = np.ascontiguousarray(np.cumsum(w, axis=1))
            self.cols[act] = fac_nodes.astype(np.int32)

    def choose(self, act, origin_node_idx, u):
        """Facility node for each origin (int32), by the gravity model of ``act``."""
        if not len(origin_node_idx):
            return np.empty(0, dtype=np.int32)
        kind = FACILITY_OF_ACTIVITY[act]
        cum = self.cum[act]
        if cum is None:
            raise ScenarioError(f"no facility of kind {kind!r} in city {self.city.name!r}, but residents need one "
                                f"for activity {ACTIVITIES[act]!r}; add {kind} facilities or set that activity's "
                                "pattern shares to 0")
        rows = self.row_of[origin_node_idx]
        dead = cum[rows, -1] <= 0
        if dead.any():
            node = int(origin_node_idx[np.flatnonzero(dead)[0]])
            z = _py(self.city.zone_ids[self.city.zone_of_node[node]])
            raise ScenarioError(f"zone {z!r}: no {kind} facility can be reached "
                                f"by road from node {_py(self.city.node_ids[node])!r} (or all have weight 0); "
                                f"add a reachable {kind}")
        out = np.empty(len(rows), dtype=np.int32)
        choose_from_cumulative(cum, rows, np.ascontiguousarray(u, dtype=np.float64), out)
        return self.cols[act][out]


def _clipped_normal(rng, spec_h, n):
    mean, sd, lo, hi = spec_h
    return np.clip(rng.normal(mean, sd, n), lo, hi) * 3600.0


def _mode_time_s(mode, o_rows, d_rows, car_time, distance, params):
    """Door-to-door time of each trip by its mode (seconds)."""
    out = np.empty(len(mode))
    for code, name in enumerate(MODES):
        sel = mode == code
        base = car_time[o_rows[sel], d_rows[sel]] if code == CAR else \
            distance[o_rows[sel], d_rows[sel]] / params.speed_mps[name]
        out[sel] = base + params.terminal_s[name]
    return out


def _build_plans(ptype, chronic, home, work_node, car_available, car_time, distance, row_of, chooser,
                 act_params, mode_params, streams):
    n = len(ptype)
    names = _PATTERN_NAMES
    lengths = np.array([len(PATTERNS[p]) for p in names])
    # day pattern by person type (retirees with a chronic condition use their own shares)
    pattern = np.zeros(n, dtype=np.int64)
    u = streams["patterns"].random(n)
    type_key = np.where((ptype == RETIREE) & chronic, len(PERSON_TYPES), ptype)
    for t, key in enumerate((*PERSON_TYPES, "retiree_chronic")):
        sel = np.flatnonzero(type_key == t)
        shares = act_params.pattern_shares[key]
        probs = np.array([shares.get(p, 0.0) for p in names])
        pattern[sel] = np.minimum(np.searchsorted(np.cumsum(probs), u[sel], side="right"), len(names) - 1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths[pattern], out=indptr[1:])
    n_act = int(indptr[-1])
    a_type = np.empty(n_act, dtype=np.int8)
    a_node = np.empty(n_act, dtype=np.int32)
    a_start = np.empty(n_act, dtype=np.float64)
    a_end = np.empty(n_act, dtype=np.float64)
    a_mode = np.full(n_act, -1, dtype=np.int8)
    rng_t, rng_d, rng_m = streams["timing"], streams["destinations"], streams["modes"]
    for p_code, name in enumerate(names):
        who = np.flatnonzero(pattern == p_code)
        if not len(who):
            continue
        seq = PATTERNS[name]
        base = indptr[who]
        a_type[base] = HOME
        a_node[base] = home[who]
        a_start[base] = 0.0
        if len(seq) == 1:
            a_end[base] = np.inf
            continue
        prev = home[who]
        place = []
        for act in seq[1:-1]:
            if act in (WORK, SCHOOL):
                node = work_node[who]
            else:
                node = chooser.choose(act, prev, rng_d.random(len(who)))
            place.append(node)
            prev = node
        place.append(home[who])
        # tour mode from the first leg's times (same mode for every leg of the tour)
        o_rows, d_rows = row_of[home[who]], row_of[place[0]]
        times = np.column_stack([_mode_time_s(np.full(len(who), m), o_rows, d_rows, car_time, distance, mode_params)
                                 for m in range(len(MODES))])
        prob = mode_probabilities(times, car_available[who], mode_params)
        mode = np.minimum((rng_m.random(len(who))[:, None] > np.cumsum(prob, axis=1)).sum(axis=1),
                          len(MODES) - 1).astype(np.int8)
        mode = np.where(prob[np.arange(len(who)), mode] > 0, mode, WALK).astype(np.int8)
        end = _clipped_normal(rng_t, act_params.departure_h[ACTIVITIES[seq[1]]], len(who))
        a_end[base] = end
        prev = home[who]
        for k, act in enumerate(seq[1:], start=1):
            slot = base + k
            node = place[k - 1]
            tt = _mode_time_s(mode, row_of[prev], row_of[node], car_time, distance, mode_params)
            bad = ~np.isfinite(tt)
            if bad.any():
                i = np.flatnonzero(bad)[0]
                c = chooser.city
                raise ScenarioError(f"node {_py(c.node_ids[node[i]])!r} cannot be reached by road from node "
                                    f"{_py(c.node_ids[prev[i]])!r} (zone {_py(c.zone_ids[c.zone_of_node[prev[i]]])!r}); "
                                    "the network must let residents return home")
            start = end + tt
            a_type[slot] = act
            a_node[slot] = node
            a_start[slot] = start
            a_mode[slot] = mode
            if k == len(seq) - 1:
                end = np.full(len(who), np.inf)
            else:
                end = start + _clipped_normal(rng_t, act_params.duration_h[ACTIVITIES[act]], len(who))
            a_end[slot] = end
            prev = node
    return {"act_indptr": indptr, "act_type": a_type, "act_node_idx": a_node, "act_start_s": a_start,
            "act_end_s": a_end, "act_mode": a_mode}


# ------------------------------------------------------------------------------ CLI
def add_population_parser(subparsers):
    """Add ``twin population CITY --persons N --out pop.h5`` to the ``twin`` command's sub-parsers."""
    p = subparsers.add_parser("population", help="synthesise a population and its day (activities, trips)")
    p.add_argument("city", help="embedded city name, network file or synthetic spec")
    p.add_argument("--persons", type=int, default=None, help="persons to synthesise (default: the zone table total)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--zones", help="CSV of zone inputs overriding the defaults (zone_id, persons, age_*, hh_*, ...)")
    p.add_argument("--facilities", help="CSV of facilities: kind, node, weight")
    p.add_argument("--out", help="write persons, households, activities, trips and KPIs to this HDF5 file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=population_main)
    return p


def population_main(args) -> int:
    """Run ``twin population``: synthesise, print a summary table, optionally write the results file."""
    import sys

    from twin.loading import load_city

    if args.out and not args.overwrite and Path(args.out).exists():
        from twin.errors import ResultsError

        raise ResultsError(f"{args.out} already exists; pass --overwrite to replace it")
    city = load_city(args.city)
    bar = None
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=6, unit="phase", desc="population", leave=False)

    def progress(done, total):
        if bar is not None:
            bar.update(done - bar.n)

    t0 = time.perf_counter()
    pop = synthesize_population(city, args.persons, seed=args.seed, zones=args.zones, facilities=args.facilities,
                                progress=progress)
    wall = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    s = pop.summary()
    acc = pop.accessibility()
    out = sys.stdout
    out.write(f"population of {city.name}: {s['n_persons']:,} persons in {s['n_households']:,} households, "
              f"{s['n_trips']:,} trips, in {wall:.2f} s wall\n\n")
    rows = [("trips per person", f"{s['trips_per_person']:.2f}"),
            ("state per person", f"{s['state_bytes_per_person']:.0f} bytes"),
            ("IPF", f"{s['ipf_iterations']} iterations, max marginal error {s['ipf_max_rel_error']:.1e}")]
    rows += [(f"mode share {m}", f"{s['mode_share_' + m]:.1%}") for m in MODES]
    rows += [(f"persons: {t}", f"{int((pop.person_type == c).sum()):,}") for c, t in enumerate(PERSON_TYPES)]
    for name, value in rows:
        out.write(f"{name:<28} {value}\n")
    out.write("\n{:>8} {:>8} {:>10} {:>8} {:>14} {:>14}\n".format("zone", "central", "residents", "elderly",
                                                                 "care<=15min", "hospital<=30"))
    for r in acc.by_zone.itertuples():
        out.write(f"{r.zone_id!s:>8} {('yes' if r.central else 'no'):>8} {r.residents:>10,} {r.elderly:>8,} "
                  f"{r.elderly_care_walk_share:>14.1%} {r.hospital_drive_share:>14.1%}\n")
    sm = acc.summary
    out.write(f"\nelderly within 15 min walk of care: central {sm['elderly_care_walk_share_central']:.1%}, "
              f"peripheral {sm['elderly_care_walk_share_peripheral']:.1%} (gap "
              f"{sm['elderly_care_walk_share_gap']:+.1%})\n")
    if args.out:
        from twin.graph import write_network
        from twin.results import ResultsWriter

        with ResultsWriter(args.out, meta={"command": "population", "city": city.name, "source": city.source,
                                           "seed": int(args.seed)}, overwrite=args.overwrite) as writer:
            write_network(writer, city)
            pop.write(writer)
        out.write(f"\nwrote {args.out}\n")
    return 0

