"""The hazards flow: ``[[hazards]]``, floods and typhoons that slow and close the links over time.

Each table is one flood (:mod:`twin.hazards` has the model)::

    [[hazards]]
    name = "river"
    kind = "flood"
    polygon = [[117.268, 31.833], [117.284, 31.833], [117.284, 31.845], [117.268, 31.845]]
    crs = "lonlat"                 # polygon in longitude/latitude (default), or "city" metres
    times_s = [36000, 43200, 57600, 72000]
    depth_mm = [0, 350, 350, 100]  # the water rises from 10:00, stands, then recedes
    step_s = 600                   # links re-evaluated every 10 min

A typhoon (:func:`twin.hazards.holland_wind_mps`, Holland 1980) moves along a track::

    [[hazards]]
    name = "in-fa"
    kind = "typhoon"
    track = [[117.10, 31.60], [117.30, 31.78], [117.50, 31.95]]   # the centre, lon/lat
    times_s = [28800, 43200, 57600]
    pressure_drop_hpa = [45, 40, 30]
    rmw_m = [40000, 40000, 45000]
    exposed_road_classes = ["trunk", "trunk_link"]   # elevated roads: closed from close_wind_mps

Each link's wind is the largest gradient wind at points along it; exposed road classes close
from ``close_wind_mps`` (30 m/s) and every link keeps ``slow_factor`` (0.6) of its free speed
from ``slow_wind_mps`` (20 m/s) - thresholds that are assumptions to vary, not published values.

A flood may also come as ``file = "flood.geojson"``: a FeatureCollection of Polygon / MultiPolygon features in WGS 84,
each with properties ``times_s`` and ``depth_mm``, or as a depth grid over time from a hydraulic
model: ``file = "depth.nc"`` (``.h5``, ``.nc``: HDF5, NetCDF-4 or NetCDF-3 with ``x_m``, ``y_m``
or ``lon``, ``lat``, ``time_s`` and ``depth_mm`` (time, y, x); :mod:`twin.flood_grid`, bilinear
in space, linear in time). Every ``step_s`` the flow samples each
link's depth, caps its free speed by Pregnolato et al.'s (2017) depth-speed curve and closes it
from ``close_depth_mm`` (300 mm) on; it reopens when the water falls below. The changes reach
the traffic through :class:`~twin.ports.LinkControl` (vehicles and units re-route around
closures), so a flood needs live traffic. ``twin run`` prints a line per flood; the results
file gets ``/timeseries/hazard_<name>_link_depth`` (mm per link and step) and
``/events/hazard_<name>_link_changes``.

Injuries in the water become EMS calls when ``casualty_call_type`` names a call type: in each
step, ``Poisson(persons × rate / 100,000 × step hours)`` calls at each node, the rate that of the
depth band (``casualty_depths_mm``) of the deepest link touching the node, the persons those
present at the node (a district's persons shared equally by its nodes; the ``persons`` table, or
the population's persons present that hour), at uniform times in the step, from the
``hazards`` stream. The rates are scenario assumptions: no published figure is built in.
Evacuees are not taken out of the persons exposed.
"""

from __future__ import annotations

import math
import dataclasses
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.hazards import (CLOSE_DEPTH_MM, Flood, FloodPolygon, check_timeline, flooded_free_speed_mps, lonlat_to_city,
                          read_flood_geojson)
from twin.flood_grid import GRID_SUFFIXES, read_flood_grid
from twin.ports import CallIntake, CallPlan, FacilityControl, FloodedSites, LinkControl, Presence, link_control
from twin.spec import Table, setting, where

__all__ = ["HazardGroup", "HazardFlow", "plan_flood"]


def _points(value, where_, least=1, what="a list of [x, y] pairs of numbers"):
    ok = isinstance(value, (list, tuple)) and len(value) >= least and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p) for p in value)
    if not ok:
        raise ScenarioError(f"{where_} = {value!r}; expected {what}")
    return tuple((float(a), float(b)) for a, b in value)


def _polygon(value, where_):
    ok = isinstance(value, (list, tuple)) and len(value) >= 3 and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in p) for p in value)
    if not ok:
        raise ScenarioError(f"{where_} = {value!r}; expected a list of at least 3 [x, y] pairs of numbers")
    return tuple((float(a), float(b)) for a, b in value)


@dataclass(frozen=True)
class HazardGroup:
    """``[[hazards]]``: a flood, its footprint and its depth over time."""

    name: str = setting("", "str", "hazard name")
    kind: str = setting("flood", "choice", "'flood' (a depth field) or 'typhoon' (a moving Holland wind field)",
                        choices=("flood", "typhoon"))
    file: str = setting("", "str", "GeoJSON of footprints (WGS 84), each feature with properties times_s and "
                                   "depth_mm; or a depth grid (.h5 / .nc: x_m, y_m or lon, lat; time_s; depth_mm "
                                   "(time, y, x), see twin.flood_grid); relative to the scenario file", path=True)
    polygon: tuple | None = setting(None, "polygon", "one footprint instead of a file: [[x, y], ...] in the crs",
                                    convert=_polygon)
    crs: str = setting("lonlat", "choice", "coordinates of polygon or track: 'lonlat' (degrees) or 'city' (the "
                                           "city's metres)", choices=("lonlat", "city"))
    times_s: tuple = setting((), "floats", "timeline of polygon's depth or of the typhoon's track: seconds from the "
                                           "start, increasing")
    depth_mm: tuple = setting((), "floats", "depth timeline of polygon: water depth at those times, mm")
    step_s: float = setting(600.0, "float", "how often the links' depths are re-evaluated, seconds", minimum=0.0,
                            strict=True)
    sample_m: float = setting(50.0, "float", "largest spacing of the points sampled along each link, metres",
                              minimum=0.0, strict=True)
    close_depth_mm: float = setting(CLOSE_DEPTH_MM, "float", "depth from which a link is impassable, mm "
                                                            "(Pregnolato et al. 2017: 300)", minimum=0.0, strict=True)
    track: tuple | None = setting(None, "track", "typhoon: the centre at each of times_s, [[x, y], ...] in the crs",
                                  convert=_points)
    pressure_drop_hpa: tuple = setting((), "floats", "typhoon: ambient minus central pressure at each of times_s, hPa")
    rmw_m: tuple = setting((), "floats", "typhoon: radius of maximum wind at each of times_s, metres")
    holland_b: float = setting(1.5, "float", "typhoon: Holland's shape parameter B (about 1 to 2.5)", minimum=0.5,
                               maximum=3.0)
    latitude_deg: float | None = setting(None, "float", "typhoon: latitude for the Coriolis term (default: the "
                                                        "track's, with crs = 'lonlat'; 0 otherwise)",
                                         minimum=-90.0, maximum=90.0)
    close_wind_mps: float = setting(30.0, "float", "typhoon: gust-free wind from which exposed links close, m/s "
                                                   "(an assumption: Beaufort 11 starts at 28.5)", minimum=0.0,
                                    strict=True)
    exposed_road_classes: tuple = setting((), "ids", "typhoon: road classes that close in high wind (bridges, "
                                                     "elevated roads: e.g. ['trunk', 'trunk_link'])")
    slow_wind_mps: float = setting(20.0, "float", "typhoon: wind from which every link slows, m/s (an assumption: "
                                                  "a gale, Beaufort 8)", minimum=0.0, strict=True)
    slow_factor: float = setting(0.6, "float", "typhoon: share of the free speed kept in that wind (an "
                                               "assumption)", minimum=0.0, maximum=1.0, strict=True)
    casualty_call_type: str = setting("", "str", "EMS call type of the injuries in the water (omit: none)")
    casualty_depths_mm: tuple = setting((150.0, 300.0, 600.0), "floats", "lower bounds of the depth bands of "
                                        "casualty_rate_per_100k_h, mm, increasing")
    casualty_rate_per_100k_h: tuple = setting((), "floats", "injury calls per 100,000 persons per hour in each "
                                              "depth band: a scenario assumption (no published rate is built in)")
    persons: dict | None = setting(None, "table", "district (zone id) -> persons present, for the casualties "
                                                  "(omit: a [population]'s persons present, hour by hour)")
    facility_depth_mm: float = setting(CLOSE_DEPTH_MM, "float", "flood: depth at a facility's node (its deepest "
                                       "link) from which stations, hospitals and shelters there are out of service, "
                                       "mm (an assumption: the depth that cuts road access)", minimum=0.0,
                                       strict=True)


def _flood(g, city, at):
    """The flood of table ``g``: footprints (polygon or GeoJSON) or a depth grid (HDF5 / NetCDF)."""
    if bool(g.file) == (g.polygon is not None):
        raise ScenarioError(f"{at}: give either file (a GeoJSON or a depth grid) or polygon with times_s and depth_mm")
    if g.file:
        if g.times_s or g.depth_mm:
            raise ScenarioError(f"{at}: times_s and depth_mm belong to polygon; a file carries its own")
        if str(g.file).lower().endswith(GRID_SUFFIXES):
            return read_flood_grid(g.file, city, sample_m=g.sample_m, where=f"{at} file")
        return Flood(city, read_flood_geojson(g.file, city, where=f"{at} file"), sample_m=g.sample_m)
    t, d = check_timeline(g.times_s, g.depth_mm, at)
    ring = np.asarray(g.polygon)
    if g.crs == "lonlat":
        x, y = lonlat_to_city(city, ring[:, 0], ring[:, 1], where=f"{at} polygon")
    else:
        x, y = ring[:, 0], ring[:, 1]
    return Flood(city, [FloodPolygon(x, y, t, d)], sample_m=g.sample_m)


@dataclass(frozen=True)
class FloodPlan:
    """A hazard's effect, worked out at load time: the evaluation times, each link's depth (mm,
    a flood) or wind (m/s, a typhoon) at them, the link changes to schedule ``(time_s, action,
    links, speed)``, and the expected casualty calls per evaluation step and node (``None``
    without casualties)."""

    group: HazardGroup
    times_s: np.ndarray
    depth_mm: np.ndarray
    changes: tuple
    casualty_mean: object = None
    casualty_type: int = -1
    closed: object = None                # (steps, links) bool: closed at each evaluation time
    call_plan: object = None             # the EMS's CallPlan: zones of the nodes, once every flow has planned


def _link_changes(times, states, nominal):
    """Close / open / speed events from each step's ``(closed, free speed)`` of every link."""
    changes, closed, speed = [], np.zeros(len(nominal), dtype=bool), nominal.copy()
    for t, (shut, v) in zip(times, states):
        if (shut & ~closed).any():
            changes.append((float(t), "close", np.flatnonzero(shut & ~closed), None))
        if (~shut & closed).any():
            changes.append((float(t), "open", np.flatnonzero(~shut & closed), None))
        moved = ~shut & (np.abs(v - speed) > 1e-6 * nominal)
        for value in np.unique(v[moved]):                    # one event per new speed
            changes.append((float(t), "speed", np.flatnonzero(moved & (v == value)), float(value)))
        closed, speed = shut, np.where(moved, v, speed)
    return tuple(changes)


def plan_flood(g, city, until_s, at):
    """The hazard of table ``g`` over ``[0, until_s)``: its :class:`FloodPlan` (located errors)."""
    if g.kind == "typhoon":
        return plan_typhoon(g, city, until_s, at)
    flood = _flood(g, city, at)
    if not flood.touch.any():
        raise ScenarioError(f"{at}: the footprint touches no link of city '{city.name}' (outside the city, or "
                            f"in the wrong coordinates: crs = {g.crs!r})")
    times = np.arange(0.0, until_s, g.step_s)
    nominal = np.asarray(city.length_m) / np.asarray(city.free_flow_time_s)
    depth = np.array([flood.link_depth_mm(t) for t in times])
    states = [(d >= g.close_depth_mm, flooded_free_speed_mps(city, d, g.close_depth_mm)) for d in depth]
    return FloodPlan(g, times, depth, _link_changes(times, states, nominal),
                     closed=np.array([c for c, _ in states]).reshape(len(times), city.n_links))


def _track(g, city, at):
    from twin.hazards import TyphoonTrack

    if g.track is None or g.polygon is not None or g.file:
        raise ScenarioError(f"{at}: a typhoon needs track (its centre at each of times_s), not polygon or file")
    n = len(g.track)
    t = np.asarray(g.times_s, dtype=np.float64)
    if len(t) != n or np.any(np.diff(t) <= 0):
        raise ScenarioError(f"{at}: times_s must give one increasing time for each of the {n} track points")
    for key in ("pressure_drop_hpa", "rmw_m"):
        v = np.asarray(getattr(g, key), dtype=np.float64)
        if v.shape != (n,) or np.any(v <= 0):
            raise ScenarioError(f"{at}: {key} must give one value > 0 for each of the {n} track points")
    pts = np.asarray(g.track)
    if g.crs == "lonlat":
        x, y = lonlat_to_city(city, pts[:, 0], pts[:, 1], where=f"{at} track")
        lat = float(np.mean(pts[:, 1])) if g.latitude_deg is None else g.latitude_deg
    else:
        x, y = pts[:, 0], pts[:, 1]
        lat = 0.0 if g.latitude_deg is None else g.latitude_deg
    names = list(city.road_class_names)
    bad = [c for c in g.exposed_road_classes if c not in names]
    if bad:
        raise ScenarioError(f"{at} exposed_road_classes: {bad[0]!r} is not a road class of city '{city.name}'; "
                            f"classes: {', '.join(names)}")
    return TyphoonTrack(t, x, y, np.asarray(g.pressure_drop_hpa) * 100.0, np.asarray(g.rmw_m, dtype=np.float64),
                        g.holland_b, lat)


def plan_typhoon(g, city, until_s, at):
    """A typhoon's wind on the links: exposed road classes close from ``close_wind_mps``, every
    link keeps ``slow_factor`` of its free speed from ``slow_wind_mps``."""
    from twin.hazards import Typhoon

    storm = Typhoon(city, _track(g, city, at), sample_m=g.sample_m)
    times = np.arange(0.0, until_s, g.step_s)
    nominal = np.asarray(city.length_m) / np.asarray(city.free_flow_time_s)
    exposed = np.isin(np.asarray(city.road_class), [list(city.road_class_names).index(c)
                                                    for c in g.exposed_road_classes])
    wind = np.array([storm.link_wind_mps(t) for t in times])
    states = [(exposed & (w >= g.close_wind_mps), np.where(w >= g.slow_wind_mps, nominal * g.slow_factor, nominal))
              for w in wind]
    return FloodPlan(g, times, wind, _link_changes(times, states, nominal),
                     closed=np.array([c for c, _ in states]).reshape(len(times), city.n_links))


def _persons_by_node(g, city, presence, at):
    """Persons at each node, hour by hour: ``(24, n_nodes)``; a district's persons shared by its nodes."""
    z = np.asarray(city.zone_of_node)
    per = np.bincount(z[z >= 0], minlength=len(city.zone_ids)).astype(np.float64)
    if g.persons:
        index = {str(k): i for i, k in enumerate(city.zone_ids)}
        zone = np.zeros(len(city.zone_ids))
        for k, v in g.persons.items():
            if str(k) not in index:
                raise ScenarioError(f"{at} persons: district {k!r} is not a zone of city {city.name!r}")
            zone[index[str(k)]] = float(v)
        by_hour = np.tile(zone, (24, 1))
    elif presence is not None:
        by_hour = np.asarray(presence.present_by_zone(), dtype=np.float64)
    else:
        raise ScenarioError(f"{at}: casualties need the persons present: give persons (district -> persons) or a "
                            f"[population]")
    out = np.zeros((24, city.n_nodes))
    ok = z >= 0
    out[:, ok] = by_hour[:, z[ok]] / np.maximum(per[z[ok]], 1.0)
    return out


def node_depth_mm(plan, city):
    """Each node's depth at each evaluation step (steps, nodes), mm: its deepest link."""
    depth = np.zeros((len(plan.times_s), city.n_nodes))
    for ends in (city.link_from_idx, city.link_to_idx):
        np.maximum.at(depth.T, np.asarray(ends), plan.depth_mm.T)
    return depth


class _FloodedSites:
    """The plan-time :class:`~twin.ports.FloodedSites` of the floods of a scenario."""

    def __init__(self, plans, city):
        floods = [p for p in plans if p.group.kind == "flood"]
        self.depths = [(np.asarray(p.times_s, dtype=np.float64), node_depth_mm(p, city)) for p in floods]
        self.wet = [(p.times_s, depth >= p.group.facility_depth_mm) for p, (_, depth) in zip(floods, self.depths)]

    def depth_mm(self, node_idx, t_s):
        out = 0.0
        for times, depth in self.depths:
            k = int(np.searchsorted(times, float(t_s), side="right")) - 1
            if k >= 0:
                out = max(out, float(depth[k, int(node_idx)]))
        return out

    def out_of_service(self, node_idx):
        spans = []
        for times, wet in self.wet:
            w = wet[:, int(node_idx)]
            edges = np.flatnonzero(np.diff(np.concatenate([[False], w, [False]]).astype(np.int8)))
            spans += [(float(times[a]), float(times[b]) if b < len(times) else math.inf)
                      for a, b in zip(edges[::2], edges[1::2])]
        merged = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        return tuple(merged)


def _reaching(city, open_links, targets):
    """Bool per node: some node of ``targets`` can be reached from it over the ``open_links``."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    k = np.flatnonzero(open_links)
    rev = csr_matrix((np.ones(len(k)), (np.asarray(city.link_to_idx)[k], np.asarray(city.link_from_idx)[k])),
                     shape=(city.n_nodes, city.n_nodes))
    seen = np.zeros(city.n_nodes, dtype=bool)
    for n in targets:
        if not seen[n]:
            seen[breadth_first_order(rev, int(n), directed=True, return_predecessors=False)] = True
    return seen


def casualty_means(plan, city, persons_by_node):
    """Expected injury calls per (evaluation step, node): persons there x the rate of the depth
    band of the deepest link touching the node x the step (hours)."""
    g = plan.group
    bands = np.asarray(g.casualty_depths_mm, dtype=np.float64)
    rates = np.asarray(g.casualty_rate_per_100k_h, dtype=np.float64)
    depth = node_depth_mm(plan, city)
    band = np.searchsorted(bands, depth, side="right") - 1           # -1: below the first band
    rate = np.where(band >= 0, rates[np.clip(band, 0, len(rates) - 1)], 0.0)
    hour = (plan.times_s // 3600).astype(np.int64) % 24
    return persons_by_node[hour] * rate / 1e5 * g.step_s / 3600.0


def _check_casualties(g, at):
    if g.kind != "flood" and (g.casualty_call_type or g.casualty_rate_per_100k_h):
        raise ScenarioError(f"{at}: casualties are modelled for floods only; leave casualty_* out of a {g.kind}")
    if not g.casualty_call_type:
        if g.casualty_rate_per_100k_h:
            raise ScenarioError(f"{at}: casualty_rate_per_100k_h is given but no casualty_call_type; name the EMS "
                                f"call type the injuries become")
        return False
    d, r = g.casualty_depths_mm, g.casualty_rate_per_100k_h
    if len(r) != len(d) or not d:
        raise ScenarioError(f"{at}: casualty_rate_per_100k_h has {len(r)} rates for {len(d)} depth bands "
                            f"(casualty_depths_mm); give one rate per band")
    if any(b <= a for a, b in zip(d, d[1:])) or any(v < 0 for v in d + r):
        raise ScenarioError(f"{at}: casualty_depths_mm must increase and every depth and rate be >= 0")
    return True


def _outage(env, facilities, rec, wait=None):
    """A facility out of service from ``start_s`` to ``end_s`` (inf: for good). ``rec`` is
    ``[kind, index, start_s, end_s, step (0 before, 1 out, 2 done), process, dropped]``; a
    restored outage starts at its step, waiting on ``wait``."""
    if rec[6]:                           # made by the build of a run restored from a checkpoint
        return
    kind, index, start_s, end_s = rec[:4]
    if rec[4] == 0:
        if wait is not None:
            yield wait
        elif start_s > env.now:
            yield env.timeout(start_s - env.now)
        wait = None
        facilities.set_in_service(kind, index, False)
        rec[4] = 1
    if math.isfinite(end_s):
        yield wait if wait is not None else env.timeout(end_s - env.now)
        facilities.set_in_service(kind, index, True)
    rec[4] = 2


def _start_outage(env, facilities, rec, wait=None):
    rec[5] = env.process(_outage(env, facilities, rec, wait))
    return rec


class HazardFlow(Flow):
    """Floods on the links, applied to the traffic as they rise and fall; injuries in the water
    become EMS calls."""

    name = "hazards"
    tables = (Table("hazards", HazardGroup, array=True),)
    streams = ("hazards",)
    provides = (FloodedSites,)
    uses = (LinkControl, CallPlan, CallIntake, Presence, FacilityControl)

    def plan(self, ctx):
        until = ctx.groups["run"].until_s
        names = [g.name for g in ctx.groups["hazards"]]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ScenarioError(f"{where(ctx.source, 'hazards')}: hazard name {dup[0]!r} is used twice; names must be "
                                f"unique (they name the results)")
        plans = []
        for i, g in enumerate(ctx.groups["hazards"]):
            at = where(ctx.source, "hazards", i, g.name)
            p = plan_flood(g, ctx.city, until, at)
            if _check_casualties(g, at):
                calls = ctx.port(CallPlan)
                if calls is None:
                    raise ScenarioError(f"{at}: casualty calls need the EMS tables (call types, stations)")
                where_ = f"{at} casualty_call_type"
                calls.check_servable(g.casualty_call_type, where_)
                calls.calls_anywhere()
                mean = casualty_means(p, ctx.city, _persons_by_node(g, ctx.city, ctx.port(Presence), at))
                p = dataclasses.replace(p, casualty_mean=mean, call_plan=calls,
                                        casualty_type=calls.call_type_index(g.casualty_call_type, where_))
            plans.append(p)
        ctx.provide(FloodedSites, _FloodedSites(plans, ctx.city))
        return tuple(plans)

    def build(self, ctx):
        control = link_control(ctx, "hazards")
        self.casualties, self.casualty_idx = {}, {}
        rng = ctx.streams.generator("hazards")
        for plan in ctx.plan(self):
            for t, action, links, speed in plan.changes:
                control.schedule(t, action, links, free_speed_mps=speed)
            if plan.casualty_mean is not None:
                self.casualties[plan.group.name] = self._casualty_calls(ctx, plan, rng)
        self.outages = []                   # (kind, name, start_s, end_s) of facilities in the water
        self.running = []                   # their processes' records (see _outage)
        facilities = ctx.port(FacilityControl)
        if facilities is not None:
            flooded = _FloodedSites(ctx.plan(self), ctx.city)
            for kind, index, name, node in facilities.sites():
                for a, b in flooded.out_of_service(node):
                    if a < ctx.until_s:
                        b = b if b < ctx.until_s else math.inf          # back after the run: not modelled
                        self.outages.append((kind, name, a, b))
                        self.running.append(_start_outage(ctx.clock, facilities, [kind, index, a, b, 0, None, False]))

    checkpoints = True      # the floods' link changes are in the traffic's state, their calls in the EMS's

    def snapshot(self, ctx):
        return {"outages": [[r[4], *(ctx.pending(r[5]._target) if r[4] < 2 else [])] for r in self.running],
                "outage_sites": [[r[0], int(r[1]), float(r[2]), float(r[3])] for r in self.running],
                "casualty_calls": {k: list(v) for k, v in self.casualty_idx.items()}}

    def restore(self, ctx, state, time_s):
        """The outages under way or over stay as saved; those still to come are the scenario's
        (a what-if with another flood changes them; the same flood keeps the saved ones)."""
        saved, sites = state["outages"], state.get("outage_sites")
        self.casualty_idx = {k: tuple(int(x) for x in v) for k, v in state.get("casualty_calls", {}).items()}
        if sites is None and len(saved) != len(self.running):
            raise ScenarioError(f"checkpoint: {len(saved)} facility outages; this scenario has {len(self.running)} "
                                f"(a what-if from a snapshot keeps the floods)")
        if sites is None:
            sites = [list(r[:4]) for r in self.running]
        facilities, built, kept, used = ctx.port(FacilityControl), list(self.running), [], set()
        for (step, *entry), (kind, index, a, b) in zip(saved, sites):
            same = next((j for j, r in enumerate(built) if j not in used and [r[0], r[1], r[2], r[3]] ==
                         [kind, int(index), float(a), float(b)]), None)
            if same is None and int(step) == 0:
                continue                     # still to come, and the scenario has it no more
            used.add(same)
            new = [kind, int(index), float(a), float(b), int(step), None, False]
            kept.append(new)
            if int(step) < 2:
                _start_outage(ctx.clock, facilities, new, ctx.wakeup(entry))
        for j, rec in enumerate(built):
            if j in used or rec[2] <= time_s:
                rec[6] = True                # the build's process stops at once (saved, or in the past)
            else:
                kept.append(rec)             # still to come in this scenario only
        self.running = kept
        names = {(k, i): n for k, i, n, _ in facilities.sites()} if facilities is not None else {}
        self.outages = [(r[0], names.get((r[0], r[1]), str(r[1])), r[2], r[3]) for r in kept]

    def harms(self, ctx, result, windows):
        """``people_in_water`` (floods with casualties: persons present at a node whose deepest
        link is in an injury band) and ``roads_cut_off`` (a node from which no hospital can be
        reached over the links open, though one can when all are), at some evaluation time
        in the window (the state holding at its start included)."""
        city = ctx.city
        if city is None:
            return {}
        plans = ctx.plan(self)
        fac = ctx.port(FacilityControl)
        targets = [n for kind, _, _, n in (fac.sites() if fac is not None else ()) if kind == "hospital"]
        water = np.zeros((len(windows), city.n_nodes), dtype=bool)
        cut = np.zeros_like(water)
        dry = _reaching(city, np.ones(city.n_links, dtype=bool), targets) if targets else None
        for p in plans:
            t = p.times_s
            for i, (a, b) in enumerate(windows):
                rows = np.flatnonzero((t >= a) & (t < b))
                j = np.searchsorted(t, a, side="right") - 1
                rows = np.concatenate([[j], rows]) if j >= 0 else rows
                if not len(rows):
                    continue
                if p.casualty_mean is not None:
                    water[i] |= (np.asarray(p.casualty_mean)[rows] > 0).any(axis=0)
                if dry is not None and p.closed is not None:
                    for closed in np.unique(np.asarray(p.closed)[rows], axis=0):
                        if closed.any():
                            cut[i] |= dry & ~_reaching(city, ~closed, targets)
        out = {"roads_cut_off": cut} if dry is not None else {}
        if any(p.casualty_mean is not None for p in plans):
            out["people_in_water"] = water
        return out

    def fork(self, ctx, rng, factors):
        """A forecast member: the injury calls still to come are drawn again from this member's
        floods (its depths) with ``rng``."""
        intake = ctx.port(CallIntake)
        for plan in ctx.plan(self):
            if plan.casualty_mean is None:
                continue
            if plan.group.name in self.casualty_idx:
                intake.withdraw_unreceived(*self.casualty_idx.pop(plan.group.name))
            self._casualty_calls(ctx, plan, rng, from_s=ctx.clock.now)

    def _casualty_calls(self, ctx, plan, rng, from_s=0.0):
        """Poisson injury calls per step and node, at uniform times in the step, into dispatch
        (those from ``from_s`` on)."""
        counts = rng.poisson(plan.casualty_mean)
        step, node = np.nonzero(counts)
        n = counts[step, node]
        t0 = np.repeat(plan.times_s[step], n)
        times = rng.uniform(t0, np.minimum(t0 + plan.group.step_s, ctx.until_s))
        zones = plan.call_plan.zone_of_node()[np.repeat(node, n)]
        keep = (zones >= 0) & (times >= from_s)
        order = np.argsort(times[keep], kind="stable")
        times, zones = times[keep][order], zones[keep][order]
        if len(times):
            idx = ctx.port(CallIntake).add_calls(times, zones, np.full(len(times), plan.casualty_type), rng)
            self.casualty_idx[plan.group.name] = (int(idx[0]), int(idx[-1]) + 1)
        return int(len(times)), float(plan.casualty_mean.sum())

    def finish(self, ctx):
        plans, lines, kpis = ctx.plan(self), [], {}
        for p in plans:
            n_closed = p.closed.sum(axis=1)
            peak = int(np.argmax(n_closed)) if len(n_closed) else 0
            hours = float(n_closed.sum() * p.group.step_s / 3600.0)
            top = int(n_closed.max()) if len(n_closed) else 0
            kpis[f"hazard_{p.group.name}_links_closed_max"] = float(top)
            kpis[f"hazard_{p.group.name}_closed_link_h"] = hours
            label = f"{p.group.kind} {p.group.name!r}"[:34]
            if p.group.kind == "flood":
                what = f"{int((p.depth_mm > 0).any(axis=0).sum())} links wet"
            else:
                what = f"wind up to {float(p.depth_mm.max(initial=0.0)):.0f} m/s"
            lines.append(f"{label:<34} {what}, up to {top} closed (at {p.times_s[peak] / 3600:.1f} h), "
                         f"{hours:.1f} link-hours closed")
            if p.group.name in getattr(self, "casualties", {}):
                n, mean = self.casualties[p.group.name]
                kpis[f"hazard_{p.group.name}_casualty_calls"] = float(n)
                lines.append(f"{'  injury calls in the water':<34} {n} (expected {mean:.1f})")

        outages = getattr(self, "outages", [])
        if outages:
            kpis["hazard_facility_outages"] = float(len(outages))
            lines.append(f"{'  facilities in the water':<34} " + "; ".join(
                f"{kind} {name!r} {a / 3600:.1f}-{'end' if not math.isfinite(b) else f'{b / 3600:.1f}'} h"
                for kind, name, a, b in outages))

        def write(writer):
            if outages:
                writer.write_table("/events/hazard_facility_outages", {
                    "kind": np.array([o[0] for o in outages]).astype(str),
                    "name": np.array([o[1] for o in outages]).astype(str),
                    "start_s": np.array([o[2] for o in outages], dtype=np.float64),
                    "end_s": np.array([o[3] for o in outages], dtype=np.float64)},
                    units={"kind": "", "name": "", "start_s": "s", "end_s": "s"})
            for p in plans:
                name = p.group.name
                group, var, unit, what = ((f"hazard_{name}_link_depth", "depth_mm", "mm", "water depth")
                                          if p.group.kind == "flood" else
                                          (f"hazard_{name}_link_wind", "wind_mps", "m/s", "gradient wind"))
                writer.write_array(f"/timeseries/{group}/{var}", p.depth_mm.astype(np.float32), units=unit,
                                   attrs={"description": f"{what} on each link (columns, City order) at each "
                                                         f"evaluation time (rows)"})
                writer.write_array(f"/timeseries/{group}/time_s", p.times_s, units="s")
                rows = [(t, a, int(k), np.nan if v is None else v) for t, a, links, v in p.changes for k in links]
                if not rows:
                    continue
                writer.write_table(f"/events/hazard_{name}_link_changes", {
                    "time_s": np.array([r[0] for r in rows], dtype=np.float64),
                    "action": np.array([r[1] for r in rows]).astype(str),
                    "link_idx": np.array([r[2] for r in rows], dtype=np.int32),
                    "free_speed_mps": np.array([r[3] for r in rows], dtype=np.float64)},
                    units={"time_s": "s", "action": "", "link_idx": "", "free_speed_mps": "m/s"})

        return FlowResult(self.name, kpis=kpis, lines=lines, write=write)
