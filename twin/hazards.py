"""Flood footprints on the road network: water depth per link over time, and what it does to traffic.

A flood is a set of polygons, each with a depth timeline (``times_s``, ``depth_mm``; linear in
between, the first depth before the first time, the last after the last). The depth at a point
is the largest depth of the polygons that contain it (water fills the deepest footprint).

**A link's depth** is the largest depth at points sampled along it: both ends and points at most
``sample_m`` apart on its polyline (the city's link geometry where it has one, else the straight
line between its end nodes). One flooded stretch blocks a road, so the maximum, not the mean.

**Depth to speed** (Pregnolato, Ford, Wilkinson & Dawson 2017, *Transp. Res. D* 55, 67-81, their
fitted curve): ``v(w) = 0.0009 w² - 0.5529 w + 86.9448`` km/h for water depth ``w`` in mm,
and a road impassable from ``w >= 300`` mm. A flooded link's free speed is
``min(nominal, v(w))``: the curve caps speed, it does not raise it above the limit.

Polygons come in the city's metres, or in longitude/latitude (GeoJSON's WGS 84, RFC 7946),
mapped to the city's metres by the affine map fitted to its nodes' coordinates (exact for the
local equirectangular projection of the OpenStreetMap reader; refused when the fit is off by
more than ``max_fit_error_m``).

Examples
--------
>>> pregnolato_speed_kmh([0.0, 100.0, 250.0, 300.0]).round(4).tolist()
[86.9448, 40.6548, 4.9698, 0.0]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError

__all__ = ["CLOSE_DEPTH_MM", "pregnolato_speed_kmh", "flooded_free_speed_mps", "points_in_polygon", "link_sample_points", "lonlat_to_city",
           "city_to_lonlat",
           "FloodPolygon", "Flood", "read_flood_geojson"]

#: Depth from which a road is impassable, mm (Pregnolato et al. 2017).
CLOSE_DEPTH_MM = 300.0


def pregnolato_speed_kmh(depth_mm, close_depth_mm=CLOSE_DEPTH_MM) -> np.ndarray:
    """Safe driving speed (km/h) in water ``depth_mm`` deep; 0 where impassable (``>= close_depth_mm``)."""
    w = np.asarray(depth_mm, dtype=np.float64)
    # the fitted parabola has its minimum at 307 mm and rises beyond; deeper water is no faster
    c = np.minimum(w, 0.5529 / (2 * 0.0009))
    v = 0.0009 * c * c - 0.5529 * c + 86.9448
    return np.where(w >= close_depth_mm, 0.0, v)


def points_in_polygon(x, y, px, py) -> np.ndarray:
    """Whether each point ``(x[i], y[i])`` lies inside the polygon ``(px, py)`` (even-odd rule,
    ray casting; points on an edge count as inside or outside by floating point)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    px, py = np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64)
    inside = np.zeros(x.shape, dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[j], py[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < x_at)
        j = i
    return inside


def link_sample_points(city, sample_m=50.0):
    """Points along every link: ``(x_m, y_m, link_idx)``, both ends and at most ``sample_m`` apart."""
    xs, ys, ks = [], [], []
    nx, ny = np.asarray(city.x_m), np.asarray(city.y_m)
    frm, to = np.asarray(city.link_from_idx), np.asarray(city.link_to_idx)
    for k in range(city.n_links):
        if city.geom_indptr is not None and city.geom_indptr[k + 1] - city.geom_indptr[k] >= 2:
            a, b = city.geom_indptr[k], city.geom_indptr[k + 1]
            lx, ly = np.asarray(city.geom_x_m[a:b]), np.asarray(city.geom_y_m[a:b])
        else:
            lx, ly = nx[[frm[k], to[k]]], ny[[frm[k], to[k]]]
        for s in range(len(lx) - 1):
            seg = math.hypot(lx[s + 1] - lx[s], ly[s + 1] - ly[s])
            n = max(1, int(math.ceil(seg / sample_m)))
            f = np.arange(n + 1) / n if s == len(lx) - 2 else np.arange(n) / n
            xs.append(lx[s] + f * (lx[s + 1] - lx[s]))
            ys.append(ly[s] + f * (ly[s + 1] - ly[s]))
            ks.append(np.full(len(f), k, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ks)


def _lonlat_fit(city, max_fit_error_m, where):
    """The affine map ``[lon, lat, 1] @ coef = [x_m, y_m]`` fitted to the city's nodes (3, 2)."""
    if city.lon is None or city.lat is None or not city.has_coordinates:
        raise ScenarioError(f"{where}: the city '{city.name}' has no longitude/latitude for its nodes; give the "
                            f"coordinates in the city's metres (crs = \"city\")")
    a = np.column_stack([np.asarray(city.lon), np.asarray(city.lat), np.ones(city.n_nodes)])
    coef, _, rank, _ = np.linalg.lstsq(a, np.column_stack([city.x_m, city.y_m]), rcond=None)
    if rank < 3:
        raise ScenarioError(f"{where}: the city's nodes lie on a line in longitude/latitude; the map to metres is "
                            f"not determined: give the coordinates in the city's metres (crs = \"city\")")
    err = float(np.max(np.hypot(*(a @ coef - np.column_stack([city.x_m, city.y_m])).T)))
    if err > max_fit_error_m:
        raise ScenarioError(f"{where}: the city's metres are not a linear map of its nodes' longitude/latitude "
                            f"(fit off by {err:.0f} m); give the coordinates in the city's metres (crs = \"city\")")
    return coef


def lonlat_to_city(city, lon, lat, *, max_fit_error_m=5.0, where="polygon"):
    """Map longitude/latitude (degrees) to the city's metres by the affine fit to its nodes."""
    coef = _lonlat_fit(city, max_fit_error_m, where)
    out = np.column_stack([np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64),
                           np.ones(len(lon))]) @ coef
    return out[:, 0], out[:, 1]


def city_to_lonlat(city, x_m, y_m, *, max_fit_error_m=5.0, where="grid"):
    """The inverse of :func:`lonlat_to_city`: the city's metres to longitude/latitude (degrees)."""
    coef = _lonlat_fit(city, max_fit_error_m, where)
    xy = np.column_stack([np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)]) - coef[2]
    out = xy @ np.linalg.inv(coef[:2])
    return out[:, 0], out[:, 1]


@dataclass(frozen=True)
class FloodPolygon:
    """One footprint: a ring in the city's metres and its depth timeline (seconds, mm)."""

    x_m: np.ndarray
    y_m: np.ndarray
    times_s: np.ndarray
    depth_mm: np.ndarray

    def depth_at(self, t_s) -> float:
        return float(np.interp(t_s, self.times_s, self.depth_mm))


def check_timeline(times_s, depth_mm, where):
    """Validated ``(times_s, depth_mm)`` arrays: equal lengths >= 1, times ascending, depths finite >= 0."""
    try:
        t = np.asarray(times_s, dtype=np.float64)
        d = np.asarray(depth_mm, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ScenarioError(f"{where}: times_s = {times_s!r:.60}, depth_mm = {depth_mm!r:.60}; expected lists of "
                            f"numbers (seconds, mm)") from None
    if t.ndim != 1 or d.shape != t.shape or len(t) < 1:
        raise ScenarioError(f"{where}: times_s and depth_mm must be lists of equal length >= 1; found "
                            f"{len(np.atleast_1d(t))} times and {len(np.atleast_1d(d))} depths")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ScenarioError(f"{where}: times_s = {t.tolist()}; expected finite seconds in increasing order")
    bad = np.flatnonzero(~np.isfinite(d) | (d < 0))
    if len(bad):
        raise ScenarioError(f"{where}: depth_mm[{bad[0]}] = {float(d[bad[0]])!r}; expected a depth >= 0 mm")
    return t, d


class Flood:
    """Depth per link over time for a set of footprints (see the module docstring).

    Parameters
    ----------
    city : City
    polygons : sequence of FloodPolygon
    sample_m : float
        Largest spacing of the points sampled along each link, metres.
    """

    def __init__(self, city, polygons, *, sample_m=50.0):
        self.city, self.polygons = city, list(polygons)
        x, y, k = link_sample_points(city, sample_m)
        # which links each footprint touches (at any sample point), fixed over time
        self.touch = np.zeros((len(self.polygons), city.n_links), dtype=bool)
        for p, poly in enumerate(self.polygons):
            inside = points_in_polygon(x, y, poly.x_m, poly.y_m)
            self.touch[p, np.unique(k[inside])] = True

    def link_depth_mm(self, t_s) -> np.ndarray:
        """Water depth on every link at time ``t_s``, mm (0 where dry)."""
        out = np.zeros(self.city.n_links)
        for p, poly in enumerate(self.polygons):
            d = poly.depth_at(t_s)
            if d > 0:
                out = np.where(self.touch[p], np.maximum(out, d), out)
        return out

    def link_free_speed_mps(self, t_s, close_depth_mm=CLOSE_DEPTH_MM) -> np.ndarray:
        """Every link's free speed at ``t_s`` (m/s): see :func:`flooded_free_speed_mps`."""
        return flooded_free_speed_mps(self.city, self.link_depth_mm(t_s), close_depth_mm)


def flooded_free_speed_mps(city, depth_mm, close_depth_mm=CLOSE_DEPTH_MM) -> np.ndarray:
    """Every link's free speed (m/s) under ``depth_mm`` of water: nominal where dry, capped by the
    depth-speed curve where wet, 0 where impassable."""
    nominal = np.asarray(city.length_m) / np.asarray(city.free_flow_time_s)
    cap = pregnolato_speed_kmh(depth_mm, close_depth_mm) / 3.6
    return np.where(np.asarray(depth_mm) > 0, np.minimum(nominal, cap), nominal)


def read_flood_geojson(path, city, *, where="hazard file"):
    """Footprints from a GeoJSON FeatureCollection of Polygon / MultiPolygon features in WGS 84,
    each with properties ``times_s`` and ``depth_mm`` (lists of equal length); holes are ignored
    (the outer ring floods)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{where} {path}: cannot read it as GeoJSON ({type(exc).__name__}: {exc})") from None
    crs = (doc.get("crs") or {}).get("properties", {}).get("name", "") if isinstance(doc, dict) else ""
    if crs and not any(s in crs for s in ("CRS84", "4326")):
        raise ScenarioError(f"{where} {path}: crs {crs!r}; GeoJSON polygons must be WGS 84 longitude/latitude "
                            f"(EPSG:4326 / CRS84); reproject the file")
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list) or not feats:
        raise ScenarioError(f"{where} {path}: expected a FeatureCollection with at least one feature")
    out = []
    for i, f in enumerate(feats):
        at = f"{where} {path}, feature {i}"
        geom, props = (f or {}).get("geometry") or {}, (f or {}).get("properties") or {}
        kind, coords = geom.get("type"), geom.get("coordinates")
        rings = [coords[0]] if kind == "Polygon" else [p[0] for p in coords] if kind == "MultiPolygon" else None
        if not rings:
            raise ScenarioError(f"{at}: geometry {kind!r}; expected Polygon or MultiPolygon")
        if "times_s" not in props or "depth_mm" not in props:
            raise ScenarioError(f"{at}: properties need 'times_s' and 'depth_mm' (lists of equal length)")
        t, d = check_timeline(props["times_s"], props["depth_mm"], at)
        for ring in rings:
            ring = np.asarray(ring, dtype=np.float64)
            if ring.ndim != 2 or ring.shape[0] < 3 or ring.shape[1] < 2:
                raise ScenarioError(f"{at}: a ring needs at least 3 [lon, lat] positions")
            x, y = lonlat_to_city(city, ring[:, 0], ring[:, 1], where=at)
            out.append(FloodPolygon(x, y, t, d))
    return out


# ---- typhoons -------------------------------------------------------------------------------

#: Air density in the boundary layer, kg/m³ (Holland 1980 uses about 1.15).
AIR_DENSITY_KG_M3 = 1.15
#: Earth's rotation rate, rad/s.
OMEGA_RAD_S = 7.2921e-5


def holland_wind_mps(r_m, pressure_drop_pa, rmw_m, holland_b, latitude_deg=0.0) -> np.ndarray:
    """Gradient wind speed at distance ``r_m`` from a tropical cyclone's centre (Holland 1980).

    ``V(r) = sqrt( (B/ρ) (Rm/r)^B Δp exp(-(Rm/r)^B) + (r f / 2)² ) - r f / 2`` with the
    pressure drop ``Δp`` (Pa), the radius of maximum wind ``Rm`` (m), Holland's shape parameter
    ``B`` (about 1 to 2.5), air density ρ = 1.15 kg/m³ and the Coriolis parameter
    ``f = 2 Ω sin(latitude)``. With ``f = 0`` the maximum is at ``Rm``:
    ``sqrt(B Δp / (ρ e))``.

    Examples
    --------
    >>> v = holland_wind_mps([30e3], 5000.0, 30e3, 1.5)
    >>> round(float(v[0]), 2)                 # sqrt(1.5 * 5000 / (1.15 * e))
    48.98
    """
    r = np.maximum(np.asarray(r_m, dtype=np.float64), 1.0)
    f = 2.0 * OMEGA_RAD_S * abs(math.sin(math.radians(latitude_deg)))     # the speed, either hemisphere
    x = (rmw_m / r) ** holland_b
    return np.sqrt(holland_b / AIR_DENSITY_KG_M3 * x * pressure_drop_pa * np.exp(-x) + (r * f / 2.0) ** 2) - r * f / 2.0


@dataclass(frozen=True)
class TyphoonTrack:
    """A cyclone's track in the city's metres: at each ``times_s``, the centre ``(x_m, y_m)``,
    the pressure drop (Pa) and the radius of maximum wind (m); linear in between, held
    before the first and after the last time."""

    times_s: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    pressure_drop_pa: np.ndarray
    rmw_m: np.ndarray
    holland_b: float
    latitude_deg: float

    def at(self, t_s):
        """Centre x, y (m), pressure drop (Pa) and radius of maximum wind (m) at ``t_s``."""
        return tuple(float(np.interp(t_s, self.times_s, a)) for a in (self.x_m, self.y_m, self.pressure_drop_pa,
                                                                        self.rmw_m))


class Typhoon:
    """Wind per link over time: the largest Holland gradient wind at points sampled along each
    link (as :class:`Flood` samples depth). No surface reduction or asymmetry from the storm's
    motion: a planning-level field, stated as such."""

    def __init__(self, city, track: TyphoonTrack, *, sample_m=50.0):
        self.city, self.track = city, track
        self.x, self.y, self.k = link_sample_points(city, sample_m)

    def link_wind_mps(self, t_s) -> np.ndarray:
        cx, cy, dp, rm = self.track.at(t_s)
        v = holland_wind_mps(np.hypot(self.x - cx, self.y - cy), dp, rm, self.track.holland_b,
                             self.track.latitude_deg)
        out = np.zeros(self.city.n_links)
        np.maximum.at(out, self.k, v)
        return out
