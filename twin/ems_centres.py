"""The call-taking centres' and agencies' fields of a :class:`~twin.ems_groups.DispatchSpec`:
their checks, and the per-zone tables the dispatch reads.

A field "per type" or "per kind" holds, for each row, either one index (the same in every
zone) or a tuple of one index per zone (jurisdictions); :func:`per_zone` makes it a
``(rows, zones)`` array either way.
"""

from __future__ import annotations

import math

import numpy as np

from twin.dists import Dist
from twin.errors import ScenarioError

__all__ = ["per_zone", "check_centres"]


def per_zone(rows, n_zones) -> np.ndarray:
    """``rows`` (each an index, or one index per zone) as an int64 array ``(len(rows), n_zones)``."""
    out = np.empty((len(rows), n_zones), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i] = r if isinstance(r, (int, np.integer)) else np.asarray(r, dtype=np.int64)
    return out


def _fail(where, what):
    raise ScenarioError(f"{where}: {what}")


def _is_int(x, lo, hi):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and lo <= x < hi


def _check_rows(value, where, n_rows, n_zones, lo, hi, rows_are):
    """Each of ``n_rows`` rows an index in ``[lo, hi)`` or a tuple of ``n_zones`` of them."""
    ok = len(value) == n_rows and all(
        _is_int(r, lo, hi) or (isinstance(r, (tuple, list)) and len(r) == n_zones and all(_is_int(x, lo, hi) for x in r))
        for r in value)
    if not ok:
        _fail(where, f"found {list(value)}; expected for each of the {n_rows} {rows_are} an index from {lo} to "
                     f"{hi - 1}, or a tuple of one per zone ({n_zones})")


def _check_dists(value, where, n):
    if value and (len(value) != n or not all(isinstance(x, Dist) for x in value)):
        _fail(where, f"found {list(value)}; expected one Dist per centre ({n})")


def check_centres(spec, unit_kinds) -> None:
    """Check the centres' and agencies' fields of ``spec.dispatch`` (see
    :class:`~twin.ems_groups.DispatchSpec`; ``unit_kinds``: :data:`twin.emergency.UNIT_KINDS`);
    raises :class:`~twin.errors.ScenarioError`."""
    UNIT_KINDS = unit_kinds
    w, d = "ems.dispatch", spec.dispatch
    n_t, n_z, n_u, n_k = len(spec.call_types), len(spec.zones), len(spec.units), len(UNIT_KINDS)
    if d.type_processing and len(d.type_processing) != n_t:
        _fail(f"{w}.type_processing", f"found {len(d.type_processing)} entries for {n_t} call types; expected "
                                      f"one Dist per call type")
    for i, x in enumerate(d.type_processing):
        if not (isinstance(x, Dist) or (isinstance(x, tuple) and len(x) == n_z and all(isinstance(y, Dist) for y in x))):
            _fail(f"{w}.type_processing[{i}]", f"found {x!r}; expected a Dist, or a tuple of one Dist per zone")
    for name in ("transfer", "aid_delay"):
        if not isinstance(getattr(d, name), Dist):
            _fail(f"{w}.{name}", f"found {getattr(d, name)!r}; expected a Dist")
    n_a = len(d.agencies)
    if not all(isinstance(a, str) for a in d.agencies) or len(set(d.agencies)) != n_a:
        _fail(f"{w}.agencies", f"found {list(d.agencies)}; expected unique names")
    if d.agency_of_unit and (len(d.agency_of_unit) != n_u or not all(_is_int(a, -1, n_a) for a in d.agency_of_unit)):
        _fail(f"{w}.agency_of_unit", f"found {list(d.agency_of_unit)}; expected an agency index or -1 for each of "
                                     f"the {n_u} units")
    if d.agency_of_kind:
        _check_rows(d.agency_of_kind, f"{w}.agency_of_kind", n_k, n_z, -1, n_a, "unit kinds")
    if not d.centres:
        for name in ("centre_of_type", "centre_of_kind", "centre_of_unit", "centre_processing", "mutual_aid"):
            if getattr(d, name):
                _fail(f"{w}.{name}", "given without centres")
        return
    for i, c in enumerate(d.centres):
        ok = isinstance(c, (tuple, list)) and len(c) == 2 and isinstance(c[0], str)
        n = c[1] if ok else None
        if not ok or isinstance(n, bool) or not isinstance(n, (int, float, np.integer)) or not (
                n == math.inf or (math.isfinite(n) and float(n) == int(n) and 1 <= n <= 100_000)):
            _fail(f"{w}.centres[{i}]", f"found {c!r}; expected (name, call takers: a whole number from 1 to "
                                       f"100,000, or inf)")
    n_c = len(d.centres)
    names = [c[0] for c in d.centres]
    if len(set(names)) != len(names):
        _fail(f"{w}.centres", f"duplicate names in {names}; expected unique centre names")
    _check_rows(d.centre_of_type, f"{w}.centre_of_type", n_t, n_z, 0, n_c, "call types")
    if d.centre_of_kind:
        _check_rows(d.centre_of_kind, f"{w}.centre_of_kind", n_k, n_z, -1, n_c, "unit kinds")
    if d.centre_of_unit:
        if len(d.centre_of_unit) != n_u or not all(_is_int(k, -1, n_c) for k in d.centre_of_unit):
            _fail(f"{w}.centre_of_unit", f"found {list(d.centre_of_unit)}; expected a centre index or -1 for each of "
                                         f"the {n_u} units")
    elif d.centre_of_kind and not all(_is_int(k, -1, n_c) for k in d.centre_of_kind):
        _fail(f"{w}.centre_of_unit", "missing; expected with a centre_of_kind that differs by zone")
    _check_dists(d.centre_processing, f"{w}.centre_processing", n_c)
    if d.mutual_aid and (len(d.mutual_aid) != n_c or not all(
            isinstance(m, (tuple, list)) and all(_is_int(k, 0, n_c) and k != i for k in m)
            for i, m in enumerate(d.mutual_aid))):
        _fail(f"{w}.mutual_aid", f"found {list(d.mutual_aid)}; expected for each centre a tuple of other centres' "
                                 f"indices")
