"""Zone inputs and facilities of the synthetic population, and the readers that override them.

This module holds the per-zone inputs (:func:`default_zone_table`, overridden from a CSV or
DataFrame by :func:`read_zone_table`), the default placement of workplaces, schools,
markets, parks, clinics, elderly-care centres and hospitals on zone nodes
(:func:`place_facilities`, overridden by :func:`read_facilities`), and the small zone
helpers they share with the rest of the population modules (zone nodes, central zones).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from twin.agents.activities import FACILITY_KINDS
from twin.agents.population_defaults import (
    AGE_COLUMNS, CENSUS_2020_AGE_SHARES, CENSUS_2020_HOUSEHOLD_SHARES, DEFAULT_STUDENTS_SHARE, DEFAULT_TOTAL_PERSONS,
    DEFAULT_WORKERS_SHARE, HOUSEHOLD_COLUMNS, PERSONS_PER_FACILITY, PERSONS_PER_HOSPITAL, ZONE_COLUMNS)
from twin.errors import ScenarioError, UnknownNodeError

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
    ids = np.asarray(city.zone_ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")

    def position(z):                   # each zone id's index in city.zone_ids, -1 if not a zone
        at = np.minimum(np.searchsorted(ids[order], z), len(ids) - 1)
        return np.where(ids[order][at] == z, order[at], -1) if len(ids) else np.full(len(z), -1)

    o, d = position(od["origin_zone"]), position(od["destination_zone"])
    keep = (o >= 0) & (d >= 0)
    f = od["demand_veh_per_h"][keep]
    # bincount adds each bin's weights in input order: the sums of a loop over the pairs
    prod = np.bincount(o[keep], weights=f, minlength=city.n_zones).astype(np.float64)
    attr = np.bincount(d[keep], weights=f, minlength=city.n_zones).astype(np.float64)
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
