"""The hazards flow: ``[[hazards]]``, floods whose depth over time slows and closes the links.

Each table is one flood (:mod:`twin.hazards` has the model)::

    [[hazards]]
    name = "river"
    kind = "flood"
    polygon = [[117.268, 31.833], [117.284, 31.833], [117.284, 31.845], [117.268, 31.845]]
    crs = "lonlat"                 # polygon in longitude/latitude (default), or "city" metres
    times_s = [36000, 43200, 57600, 72000]
    depth_mm = [0, 350, 350, 100]  # the water rises from 10:00, stands, then recedes
    step_s = 600                   # links re-evaluated every 10 min

or ``file = "flood.geojson"``: a FeatureCollection of Polygon / MultiPolygon features in WGS 84,
each with properties ``times_s`` and ``depth_mm``. Every ``step_s`` the flow samples each
link's depth, caps its free speed by Pregnolato et al.'s (2017) depth-speed curve and closes it
from ``close_depth_mm`` (300 mm) on; it reopens when the water falls below. The changes reach
the traffic through :class:`~twin.ports.LinkControl` (vehicles and units re-route around
closures), so a flood needs live traffic. ``twin run`` prints a line per flood; the results
file gets ``/timeseries/hazard_link_depth`` (mm per link and step) and
``/events/hazard_link_changes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError
from twin.flows import Flow, FlowResult
from twin.hazards import CLOSE_DEPTH_MM, Flood, FloodPolygon, check_timeline, lonlat_to_city, read_flood_geojson
from twin.ports import LinkControl, link_control
from twin.spec import Table, setting, where

__all__ = ["HazardGroup", "HazardFlow", "plan_flood"]


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
    kind: str = setting("flood", "choice", "what it is (floods today)", choices=("flood",))
    file: str = setting("", "str", "GeoJSON of footprints (WGS 84), each feature with properties times_s and "
                                   "depth_mm (relative to the scenario file)", path=True)
    polygon: tuple | None = setting(None, "polygon", "one footprint instead of a file: [[x, y], ...] in the crs",
                                    convert=_polygon)
    crs: str = setting("lonlat", "choice", "coordinates of polygon: 'lonlat' (degrees) or 'city' (the city's metres)",
                       choices=("lonlat", "city"))
    times_s: tuple = setting((), "floats", "depth timeline of polygon: times, seconds from the start, increasing")
    depth_mm: tuple = setting((), "floats", "depth timeline of polygon: water depth at those times, mm")
    step_s: float = setting(600.0, "float", "how often the links' depths are re-evaluated, seconds", minimum=0.0,
                            strict=True)
    sample_m: float = setting(50.0, "float", "largest spacing of the points sampled along each link, metres",
                              minimum=0.0, strict=True)
    close_depth_mm: float = setting(CLOSE_DEPTH_MM, "float", "depth from which a link is impassable, mm "
                                                            "(Pregnolato et al. 2017: 300)", minimum=0.0, strict=True)


def _footprints(g, city, at):
    if bool(g.file) == (g.polygon is not None):
        raise ScenarioError(f"{at}: give either file (a GeoJSON) or polygon with times_s and depth_mm")
    if g.file:
        if g.times_s or g.depth_mm:
            raise ScenarioError(f"{at}: times_s and depth_mm belong to polygon; a file's features carry their own")
        return read_flood_geojson(g.file, city, where=f"{at} file")
    t, d = check_timeline(g.times_s, g.depth_mm, at)
    ring = np.asarray(g.polygon)
    if g.crs == "lonlat":
        x, y = lonlat_to_city(city, ring[:, 0], ring[:, 1], where=f"{at} polygon")
    else:
        x, y = ring[:, 0], ring[:, 1]
    return [FloodPolygon(x, y, t, d)]


@dataclass(frozen=True)
class FloodPlan:
    """A flood's effect, worked out at load time: the evaluation times, each link's depth and
    free speed at them, and the link changes to schedule ``(time_s, action, links, speed)``."""

    group: HazardGroup
    times_s: np.ndarray
    depth_mm: np.ndarray
    changes: tuple


def plan_flood(g, city, until_s, at):
    """The flood of table ``g`` over ``[0, until_s)``: its :class:`FloodPlan` (located errors)."""
    flood = Flood(city, _footprints(g, city, at), sample_m=g.sample_m)
    if not flood.touch.any():
        raise ScenarioError(f"{at}: the footprint touches no link of city '{city.name}' (outside the city, or "
                            f"in the wrong coordinates: crs = {g.crs!r})")
    times = np.arange(0.0, until_s, g.step_s)
    nominal = np.asarray(city.length_m) / np.asarray(city.free_flow_time_s)
    depth = np.array([flood.link_depth_mm(t) for t in times])
    changes, closed, speed = [], np.zeros(city.n_links, dtype=bool), nominal.copy()
    for i, t in enumerate(times):
        v = flood.link_free_speed_mps(t, g.close_depth_mm)
        shut = depth[i] >= g.close_depth_mm
        if (shut & ~closed).any():
            changes.append((float(t), "close", np.flatnonzero(shut & ~closed), None))
        if (~shut & closed).any():
            changes.append((float(t), "open", np.flatnonzero(~shut & closed), None))
        moved = ~shut & (np.abs(v - speed) > 1e-6 * nominal)
        for value in np.unique(v[moved]):                    # one event per new speed
            changes.append((float(t), "speed", np.flatnonzero(moved & (v == value)), float(value)))
        closed, speed = shut, np.where(moved, v, speed)
    return FloodPlan(g, times, depth, tuple(changes))


class HazardFlow(Flow):
    """Floods on the links, applied to the traffic as they rise and fall."""

    name = "hazards"
    tables = (Table("hazards", HazardGroup, array=True),)
    uses = (LinkControl,)

    def plan(self, ctx):
        until = ctx.groups["run"].until_s
        return tuple(plan_flood(g, ctx.city, until, where(ctx.source, "hazards", i, g.name))
                     for i, g in enumerate(ctx.groups["hazards"]))

    def build(self, ctx):
        control = link_control(ctx, "hazards")
        for plan in ctx.plan(self):
            for t, action, links, speed in plan.changes:
                control.schedule(t, action, links, free_speed_mps=speed)

    def finish(self, ctx):
        plans, lines, kpis = ctx.plan(self), [], {}
        for p in plans:
            shut = p.depth_mm >= p.group.close_depth_mm
            n_closed = shut.sum(axis=1)
            peak = int(np.argmax(n_closed)) if len(n_closed) else 0
            hours = float(n_closed.sum() * p.group.step_s / 3600.0)
            wet = int((p.depth_mm > 0).any(axis=0).sum())
            kpis[f"hazard_{p.group.name}_links_closed_max"] = float(n_closed.max()) if len(n_closed) else 0.0
            kpis[f"hazard_{p.group.name}_closed_link_h"] = hours
            lines.append(f"{('flood ' + repr(p.group.name))[:34]:<34} {wet} links wet, up to {int(n_closed.max())} "
                         f"closed (at {p.times_s[peak] / 3600:.1f} h), {hours:.1f} link-hours closed")

        def write(writer):
            for p in plans:
                name = p.group.name
                writer.write_array(f"/timeseries/hazard_{name}_link_depth/depth_mm", p.depth_mm.astype(np.float32),
                                   units="mm", attrs={"description": "water depth on each link (columns, City "
                                                                      "order) at each evaluation time (rows)"})
                writer.write_array(f"/timeseries/hazard_{name}_link_depth/time_s", p.times_s, units="s")
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
