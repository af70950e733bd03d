"""Gridded flood depths (twin.flood_grid): a depth array over (time, y, x) from HDF5 / NetCDF.

- Bilinear interpolation reproduces a field linear in x and y exactly, and the time
  interpolation is linear: on the 6 x 6 grid (straight links) a link's depth is then the larger
  of the field at its two end nodes, at every evaluation step, in closed form.
- A NetCDF-3 file in longitude/latitude with one depth over the whole city wets every link of
  the embedded Hefei network at that depth; the city -> lon/lat map inverts the lon/lat -> city
  fit to within a metre.
- Bad grids (NaN or negative depths, a wrong shape, a grid outside the city, projected metres
  named lon/lat) are refused with the dataset and index named.
"""

import h5py
import numpy as np
import pytest
from scipy.io import netcdf_file
from twin_small import SMALL

from twin.errors import ScenarioError
from twin.hazards import city_to_lonlat, lonlat_to_city
from twin.runner import load_scenario

GRID = SMALL.replace("until_s = 3600.0", "until_s = 7200.0") + """
[traffic]
random_trips = 100

[[hazards]]
name = "model"
file = "depth.h5"
step_s = 600.0
"""


def _linear(x, y, t):
    """The test field: 20 mm at the grid corner + 0.1 mm/m east + 0.05 mm/m north, times t / 1 h."""
    return (20.0 + 0.1 * (x + 1600.0) + 0.05 * (y + 1500.0)) * np.minimum(t / 3600.0, 2.0)


def _write_h5(path, x, y, t, depth, names=("x_m", "y_m")):
    with h5py.File(path, "w") as f:
        f[names[0]], f[names[1]], f["time_s"], f["depth_mm"] = x, y, t, depth


def test_a_linear_field_gives_each_link_the_deeper_end_in_closed_form(tmp_path):
    city = load_scenario(SMALL).city
    x = np.linspace(-1600.0, 1700.0, 12)         # coarse, uneven to the nodes: interpolation must be exact
    y = np.linspace(-1500.0, 1650.0, 9)
    t = np.array([0.0, 3600.0, 7200.0])
    gx, gy = np.meshgrid(x, y)
    _write_h5(tmp_path / "depth.h5", x, y, t, np.stack([_linear(gx, gy, s) for s in t]))
    (tmp_path / "s.toml").write_text(GRID)
    (plan,) = load_scenario(tmp_path / "s.toml").plans["hazards"]
    fx, tx = np.asarray(city.x_m)[city.link_from_idx], np.asarray(city.x_m)[city.link_to_idx]
    fy, ty = np.asarray(city.y_m)[city.link_from_idx], np.asarray(city.y_m)[city.link_to_idx]
    for k, s in enumerate(plan.times_s):
        want = np.maximum(_linear(fx, fy, s), _linear(tx, ty, s))
        np.testing.assert_allclose(plan.depth_mm[k], want, rtol=1e-9, atol=1e-9)
    # from 300 mm the links close: the deepest corner reaches it first
    closed = [c for c in plan.changes if c[1] == "close"]
    assert closed and all(np.all(np.maximum(_linear(fx, fy, c[0]), _linear(tx, ty, c[0]))[c[2]] >= 300.0)
                          for c in closed)


def test_a_netcdf3_lonlat_grid_over_the_whole_city_wets_every_link(tmp_path):
    sc = load_scenario("hefei_day")
    city = sc.city
    lon, lat = city_to_lonlat(city, city.x_m, city.y_m)
    assert np.abs(lon - city.lon).max() * 94e3 < 1.0 and np.abs(lat - city.lat).max() * 111e3 < 1.0
    x, y = lonlat_to_city(city, lon, lat)
    assert np.abs(x - city.x_m).max() < 1e-6
    glon = np.linspace(city.lon.min() - 0.01, city.lon.max() + 0.01, 5)
    glat = np.linspace(city.lat.min() - 0.01, city.lat.max() + 0.01, 4)
    with netcdf_file(tmp_path / "depth.nc", "w") as f:
        for name, values in (("lon", glon), ("lat", glat), ("time", [0.0, 3600.0])):
            f.createDimension(name, len(values))
        for name, dim, values in (("lon", "lon", glon), ("lat", "lat", glat), ("time_s", "time", [0.0, 3600.0])):
            f.createVariable(name, "d", (dim,))[:] = values
        f.createVariable("depth_m", "d", ("time", "lat", "lon"))[:] = np.full((2, 4, 5), 0.12)
    (tmp_path / "s.toml").write_text(sc.text + '\n[[hazards]]\nname = "rain"\nfile = "depth.nc"\n')
    (plan,) = load_scenario(tmp_path / "s.toml").plans["hazards"]
    np.testing.assert_allclose(plan.depth_mm, 120.0)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.__setitem__((1, 2, 3), np.nan), r"depth_mm\[1, 2, 3\] = nan \(time_s 3600\); expected a depth >= 0"),
    (lambda d: d.__setitem__((0, 0, 0), -1.0), r"depth_mm\[0, 0, 0\] = -1.0"),
])
def test_bad_depths_are_named(tmp_path, edit, match):
    x, y, t = np.linspace(-1500, 1500, 6), np.linspace(-1500, 1500, 6), np.array([0.0, 3600.0])
    d = np.zeros((2, 6, 6))
    edit(d)
    _write_h5(tmp_path / "depth.h5", x, y, t, d)
    (tmp_path / "s.toml").write_text(GRID)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(tmp_path / "s.toml")


@pytest.mark.parametrize("x, y, depth, names, match", [
    (np.linspace(-1500, 1500, 6), np.linspace(-1500, 1500, 6), np.ones((2, 6, 5)), ("x_m", "y_m"),
     r"depth_mm has shape \(2, 6, 5\); expected \(time, y, x\) = \(2, 6, 6\)"),
    (np.linspace(9e5, 9.1e5, 6), np.linspace(-1500, 1500, 6), np.ones((2, 6, 6)), ("x_m", "y_m"),
     "the grid covers no link"),
    (np.linspace(5e5, 5.1e5, 6), np.linspace(3e6, 3.1e6, 6), np.ones((2, 6, 6)), ("lon", "lat"),
     "lon/lat outside"),
    (np.linspace(-1500, 1500, 6)[::-1], np.linspace(-1500, 1500, 6), np.ones((2, 6, 6)), ("x_m", "y_m"),
     "x_m must be a 1-D list of finite values in increasing order"),
    (np.linspace(-1500, 1500, 6), np.linspace(-1500, 1500, 6), np.ones((2, 6, 6)), ("east", "north"), "no coordinates"),
])
def test_bad_grids_are_named(tmp_path, x, y, depth, names, match):
    _write_h5(tmp_path / "depth.h5", x, y, np.array([0.0, 3600.0]), depth, names)
    (tmp_path / "s.toml").write_text(GRID)
    with pytest.raises(ScenarioError, match=match):
        load_scenario(tmp_path / "s.toml")


def test_a_file_that_is_not_a_grid_is_named(tmp_path):
    (tmp_path / "depth.h5").write_text("not hdf5")
    (tmp_path / "s.toml").write_text(GRID)
    with pytest.raises(ScenarioError, match=r"not an HDF5 / NetCDF file"):
        load_scenario(tmp_path / "s.toml")
