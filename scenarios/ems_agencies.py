"""``[[agencies]]`` and ``[coordination]`` into the dispatch's centres ([coordination] #19).

An agency answers call types and owns unit kinds within its jurisdiction (districts; all
when omitted). Agencies answering the same call type, or owning the same unit kind, must
have disjoint districts; every call type must be answered in every district with calls. A
unit belongs to the agency owning its kind in its station's district (none: any centre may
send it). In siloed mode each agency is a centre (:class:`~twin.ems_groups.DispatchSpec`
``centre_of_*``, ``mutual_aid``); in unified mode one centre answers everything and sends
any unit. The agencies' tables (``agency_of_*``) are kept in both modes for the per-agency
and cross-border KPIs.
"""

from __future__ import annotations

import math

from twin.emergency import UNIT_KINDS
from twin.errors import ScenarioError
from twin.spec import did_you_mean, where

__all__ = ["dispatch_centres"]


def _flat(rows, empty):
    """Per-zone rows as one index where a row is the same in every zone (``empty`` without
    zones)."""
    return tuple(empty if not r else r[0] if len(set(r)) == 1 else tuple(r) for r in rows)


def _claim(owner, items, valid, i, juris, agencies, at, what, taken):
    """Agency ``i`` claims ``items`` (names among ``valid``) in its districts ``juris``;
    ``owner[item][district]`` is the claiming agency (-1: none yet)."""
    for x in map(str, items):
        if x not in valid:
            raise ScenarioError(f"{at}: no {what} {x!r}; {did_you_mean(x, valid)}{what}s: "
                                f"{', '.join(map(repr, valid))}")
        row = owner.setdefault(x, None) or [-1] * len(juris[i][1])
        owner[x] = row
        for d in juris[i][0]:
            if row[d] >= 0:
                raise ScenarioError(f"{at}: {x!r} {taken.format(repr(agencies[row[d]].name), juris[i][1][d])}")
            row[d] = i


def dispatch_centres(groups, label, dist, zone_district, units, unit_district) -> dict:
    """The centres' and agencies' fields of the :class:`~twin.ems_groups.DispatchSpec`
    (none without agencies). ``dist`` names the districts; ``zone_district`` and
    ``unit_district`` give each zone's and unit's (its station's) district index."""
    agencies = groups.get("agencies") or []
    if not agencies:
        from twin.scenarios.ems_tables import CoordinationGroup

        if groups.get("coordination", CoordinationGroup()) != CoordinationGroup():
            raise ScenarioError(f"{where(label, 'coordination')}: it says how agencies' centres work together, and "
                                f"this scenario has no [[agencies]]; add them (name, call_types, units) or remove "
                                f"[coordination]")
        return {}
    types = [c.name for c in groups["call_types"]]
    names = [a.name for a in agencies]
    juris = []
    for i, a in enumerate(agencies):
        at = where(label, "agencies", i, a.name)
        if a.name in names[:i]:
            raise ScenarioError(f"{at}: a second agency named {a.name!r}; expected unique names")
        ds = sorted({dist(str(d), f"{at} districts") for d in a.districts}) if a.districts else range(dist.n)
        juris.append((ds, dist.names))
    type_owner, kind_owner = {}, {}
    for i, a in enumerate(agencies):
        at = where(label, "agencies", i, a.name)
        _claim(type_owner, a.call_types, types, i, juris, agencies, f"{at} call_types", "call type",
               "is answered by agency {} already in district {}; a call type belongs to one agency in each "
               "district")
        _claim(kind_owner, a.units, UNIT_KINDS, i, juris, agencies, f"{at} units", "unit kind",
               "units are owned by agency {} already in district {}; a unit kind belongs to one agency in each "
               "district (or to none: then any centre sends it)")
        for p in map(str, a.mutual_aid):
            if p not in names or p == a.name:
                raise ScenarioError(f"{at} mutual_aid: {p!r} is not another agency; agencies: "
                                    f"{', '.join(map(repr, names))}")
    used = sorted(set(zone_district))
    for t in types:
        row = type_owner.get(t, [-1] * dist.n)
        missing = [dist.names[d] for d in used if row[d] < 0]
        if missing and len(missing) == len(used):
            raise ScenarioError(f"{where(label, 'agencies')}: call type {t!r} is answered by no agency; add it to one "
                                f"agency's call_types")
        if missing:
            raise ScenarioError(f"{where(label, 'agencies')}: call type {t!r} is answered by no agency in district(s) "
                                f"{', '.join(missing)}; add it to the call_types of an agency whose districts hold "
                                f"them")
    of_type = _flat([[type_owner[t][d] for d in zone_district] for t in types], 0)
    out = {"agencies": tuple(names)}
    if kind_owner:
        none = [-1] * dist.n
        out.update(agency_of_kind=_flat([[kind_owner.get(k, none)[d] for d in zone_district] for k in UNIT_KINDS], -1),
                   agency_of_unit=tuple(kind_owner.get(u.kind, none)[d] for u, d in zip(units, unit_district)))
    takers = [math.inf if a.call_takers is None else int(a.call_takers) for a in agencies]
    coord, default = groups["coordination"], groups["dispatch"].processing
    if coord.mode == "unified":
        out.update(centres=(("unified", sum(takers)),), centre_of_type=(0,) * len(types))
    else:
        out.update(centres=tuple(zip(names, takers)), centre_of_type=of_type,
                   hospital_report_s=float(coord.hospital_report_s))
        if kind_owner:
            out.update(centre_of_kind=out["agency_of_kind"], centre_of_unit=out["agency_of_unit"],
                       transfer=coord.transfer, aid_delay=coord.aid_delay)
            if any(a.mutual_aid for a in agencies):
                out["mutual_aid"] = tuple(tuple(names.index(str(p)) for p in a.mutual_aid) for a in agencies)
            if coord.reinterview:
                out["centre_processing"] = tuple(a.processing if a.processing is not None else default
                                                 for a in agencies)
    own = [[agencies[i].processing for i in sorted(set(type_owner[t])) if i >= 0] for t in types]
    if any(p is not None for ps in own for p in ps):

        def agency_s(i):
            return agencies[i].processing if i >= 0 and agencies[i].processing is not None else default

        # one Dist per type, or per zone where agencies with different interview times share it
        out["type_processing"] = tuple(
            tuple(agency_s(type_owner[t][d]) for d in zone_district) if len(set(ps)) > 1
            else (ps[0] if ps[0] is not None else default) for t, ps in zip(types, own))
    return out
