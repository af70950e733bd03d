"""Gridded flood depths: a depth array over (time, y, x) from an HDF5 or NetCDF file, sampled on links.

What a hydraulic model (HEC-RAS 2D, LISFLOOD-FP, TELEMAC ...) exports, reduced to what the
twin needs. The reader takes one file with these datasets (HDF5, NetCDF-4, which is HDF5, or
NetCDF-3 classic; names are case-sensitive):

``x_m``, ``y_m``
    Cell-centre coordinates in the city's metres, 1-D, strictly increasing; or instead
``lon``, ``lat``
    cell-centre longitude and latitude in degrees (WGS 84), 1-D, strictly increasing.
``time_s``
    Times of the depth grids, seconds from the scenario's start, 1-D, strictly increasing.
``depth_mm`` (or ``depth_m``)
    Water depth, shape ``(time, y, x)``, finite and ``>= 0`` (millimetres, or metres).

**Sampling rule**: a point's depth is the bilinear interpolation of the four surrounding cell
centres, linear in time between grids (the first grid before the first time, the last after
the last); points outside the grid's cell centres are dry. A link's depth is the largest at
points sampled along it (:func:`twin.hazards.link_sample_points`), as for polygons. Bilinear
interpolation reproduces a depth linear in x and y exactly, which the tests use.

Examples
--------
>>> import numpy as np
>>> g = GridField(np.array([0.0, 10.0]), np.array([0.0, 10.0]), np.array([0.0]),
...               np.array([[[0.0, 100.0], [200.0, 300.0]]]))
>>> g.depth_at_points(np.array([5.0, 20.0]), np.array([5.0, 5.0]), 0.0).tolist()   # centre; outside: dry
[150.0, 0.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError
from twin.hazards import city_to_lonlat, link_sample_points

__all__ = ["GridField", "FloodGrid", "read_flood_grid", "GRID_SUFFIXES"]

#: File name endings read as gridded depth files (anything else is GeoJSON).
GRID_SUFFIXES = (".h5", ".hdf5", ".he5", ".nc", ".nc4", ".cdf")


@dataclass(frozen=True)
class GridField:
    """Depth (mm) on cell centres ``x`` (nx,), ``y`` (ny,) at ``times_s`` (nt,): ``depth_mm`` (nt, ny, nx)."""

    x: np.ndarray
    y: np.ndarray
    times_s: np.ndarray
    depth_mm: np.ndarray

    def weights(self, px, py):
        """Bilinear stencils of points: flat cell indices (n, 4), weights (n, 4), inside (n,)."""
        nx, ny = len(self.x), len(self.y)
        inside = (px >= self.x[0]) & (px <= self.x[-1]) & (py >= self.y[0]) & (py <= self.y[-1])
        i = np.clip(np.searchsorted(self.x, px, side="right") - 1, 0, max(nx - 2, 0))
        j = np.clip(np.searchsorted(self.y, py, side="right") - 1, 0, max(ny - 2, 0))
        i1, j1 = np.minimum(i + 1, nx - 1), np.minimum(j + 1, ny - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            fx = np.where(i1 > i, (px - self.x[i]) / (self.x[i1] - self.x[i]), 0.0)
            fy = np.where(j1 > j, (py - self.y[j]) / (self.y[j1] - self.y[j]), 0.0)
        fx, fy = np.clip(fx, 0.0, 1.0), np.clip(fy, 0.0, 1.0)
        idx = np.stack([j * nx + i, j * nx + i1, j1 * nx + i, j1 * nx + i1], axis=1)
        w = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], axis=1)
        return idx, np.where(inside[:, None], w, 0.0), inside

    def grid_at(self, t_s):
        """The depth grid at ``t_s`` (flattened, mm): linear between the two surrounding times."""
        t = self.times_s
        flat = self.depth_mm.reshape(len(t), -1)
        if t_s <= t[0] or len(t) == 1:
            return flat[0]
        if t_s >= t[-1]:
            return flat[-1]
        k = int(np.searchsorted(t, t_s, side="right")) - 1
        f = (t_s - t[k]) / (t[k + 1] - t[k])
        return (1 - f) * flat[k] + f * flat[k + 1]

    def depth_at_points(self, px, py, t_s):
        """Depth at points ``(px, py)`` at ``t_s``, mm (0 outside the grid)."""
        idx, w, _ = self.weights(np.asarray(px, dtype=np.float64), np.asarray(py, dtype=np.float64))
        return (self.grid_at(t_s)[idx] * w).sum(axis=1)


class FloodGrid:
    """Depth per link over time from a :class:`GridField` (the interface of :class:`twin.hazards.Flood`).

    Parameters
    ----------
    city : City
    field : GridField
    lonlat : bool
        The field's x, y are longitude and latitude (degrees), not the city's metres.
    sample_m : float
        Largest spacing of the points sampled along each link, metres.
    """

    def __init__(self, city, field, *, lonlat=False, sample_m=50.0, where="hazard file"):
        self.city, self.field = city, field
        x, y, self.k = link_sample_points(city, sample_m)
        if lonlat:
            x, y = city_to_lonlat(city, x, y, where=where)
        self.idx, self.w, inside = field.weights(x, y)
        wet = np.zeros(city.n_links, dtype=bool)
        ever = field.depth_mm.max(axis=0).ravel()
        wet[np.unique(self.k[inside & ((ever[self.idx] * (self.w > 0)).max(axis=1) > 0)])] = True
        self.touch = wet[None, :]          # links the water ever reaches (one "footprint")

    def link_depth_mm(self, t_s) -> np.ndarray:
        """Water depth on every link at time ``t_s``, mm (0 where dry)."""
        d = (self.field.grid_at(t_s)[self.idx] * self.w).sum(axis=1)
        out = np.zeros(self.city.n_links)
        np.maximum.at(out, self.k, d)
        return out


def _read_arrays(path, where):
    """Datasets of an HDF5 / NetCDF-4 file (h5py) or a NetCDF-3 file (scipy): name -> array."""
    p = Path(path)
    try:
        head = p.open("rb").read(4)
    except OSError as exc:
        raise ScenarioError(f"{where} {path}: cannot read it ({exc.strerror or exc})") from None
    names = ("x_m", "y_m", "lon", "lat", "time_s", "depth_mm", "depth_m")
    if head[:3] == b"CDF":
        from scipy.io import netcdf_file

        with netcdf_file(p, "r", mmap=False) as f:
            return {n: np.array(f.variables[n].data, dtype=np.float64) for n in names if n in f.variables}
    import h5py

    try:
        with h5py.File(p, "r") as f:
            return {n: np.array(f[n], dtype=np.float64) for n in names if n in f and isinstance(f[n], h5py.Dataset)}
    except OSError as exc:
        raise ScenarioError(f"{where} {path}: not an HDF5 / NetCDF file ({exc}); expected datasets x_m, y_m (or "
                            f"lon, lat), time_s and depth_mm (time, y, x)") from None


def _axis(a, name, where):
    if a.ndim != 1 or len(a) < 1 or not np.all(np.isfinite(a)) or np.any(np.diff(a) <= 0):
        raise ScenarioError(f"{where}: {name} must be a 1-D list of finite values in increasing order")
    return a


def read_flood_grid(path, city, *, sample_m=50.0, where="hazard file") -> FloodGrid:
    """A :class:`FloodGrid` from a gridded depth file (layout in the module docstring)."""
    a = _read_arrays(path, where)
    at = f"{where} {path}"
    lonlat = "lon" in a and "lat" in a
    if not lonlat and not ("x_m" in a and "y_m" in a):
        raise ScenarioError(f"{at}: no coordinates; expected datasets x_m and y_m (the city's metres) or lon and lat "
                            f"(degrees); found {', '.join(sorted(a)) or 'none of them'}")
    if "time_s" not in a or not ("depth_mm" in a or "depth_m" in a):
        raise ScenarioError(f"{at}: expected datasets time_s (seconds from the start) and depth_mm (time, y, x)")
    x = _axis(a["lon" if lonlat else "x_m"], "lon" if lonlat else "x_m", at)
    y = _axis(a["lat" if lonlat else "y_m"], "lat" if lonlat else "y_m", at)
    t = _axis(a["time_s"], "time_s", at)
    if lonlat and (np.abs(x).max() > 180 or np.abs(y).max() > 90):
        raise ScenarioError(f"{at}: lon/lat outside [-180, 180] x [-90, 90]: projected coordinates under the "
                            f"names lon and lat? Give them as x_m, y_m in the city's metres")
    d = a["depth_mm"] if "depth_mm" in a else a["depth_m"] * 1000.0
    name = "depth_mm" if "depth_mm" in a else "depth_m"
    if d.shape != (len(t), len(y), len(x)):
        raise ScenarioError(f"{at}: {name} has shape {d.shape}; expected (time, y, x) = {(len(t), len(y), len(x))}")
    bad = np.argwhere(~np.isfinite(d) | (d < 0))
    if len(bad):
        k, j, i = (int(v) for v in bad[0])
        raise ScenarioError(f"{at}: {name}[{k}, {j}, {i}] = {float(d[k, j, i])!r} (time_s {t[k]:g}); expected a depth "
                            f">= 0 (mark dry cells 0, not NaN)")
    flood = FloodGrid(city, GridField(x, y, t, d), lonlat=lonlat, sample_m=sample_m, where=at)
    if not flood.idx.size or not (flood.w > 0).any():
        raise ScenarioError(f"{at}: the grid covers no link of city '{city.name}' (outside the city, or in the wrong "
                            f"coordinates: {'lon/lat' if lonlat else 'the city metres x_m, y_m'})")
    return flood
