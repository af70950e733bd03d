"""Maps of a traffic run: links coloured by a link time series, one interval at a time.

:func:`plot_run` draws one interval of a results file (a top-down map with a labelled
scalar bar and the clock time in the title); :func:`render_movie` writes every interval as
a GIF (or MP4 where ``imageio-ffmpeg`` is installed). The colour layers, in
:data:`LINK_LAYERS`, turn the ``/timeseries/<series>/*`` arrays written by
:meth:`twin.traffic.TrafficResult.write` into one value per link:

``congestion``
    ``occupancy_veh / (capacity_veh_per_h / 3600 * free_flow_time_s)``: the vehicles on the
    link over the vehicles it holds when flowing at capacity at free speed (the critical
    occupancy of a triangular fundamental diagram). Below 1 it equals the volume/capacity
    ratio of a free-flowing link; above 1 vehicles are queued. Defined for every link in
    every interval (unlike a travel-time ratio, which is undefined when no vehicle left the
    link, e.g. in gridlock). Dimensionless; drawn green to red over 0..1.5.
``speed``
    ``speed_mps``, mean speed of the vehicles that left the link in the interval (m/s);
    NaN (grey) where none left.
``occupancy``
    ``occupancy_veh``, mean vehicles on the link (veh).
``flow``
    ``outflow_veh * 3600 / interval_s``, vehicles leaving per hour (veh/h).

Nothing here runs a simulation: it reads results files (and optionally a
:class:`twin.City` for link geometry).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
import pyvista as pv

from twin.errors import ResultsError
from twin.results import Results, open_results
from twin.viz.headless import prepare_offscreen
from twin.viz.layers import LINK_LAYERS, LinkLayer, clock_text, nice_label_count, nice_limit
from twin.viz.mesh import NetworkArrays, _diagonal_m, city_mesh, network_arrays
from twin.viz.overlays import (BAR_SHARE_OF_DIAGONAL, PRIORITY_COLORS, _draw_facility, _facilities,  # noqa: F401
                               active_calls, hospital_bars_mesh)

__all__ = ["link_layer_values", "plot_run", "render_movie", "add_points", "active_calls", "hospital_bars_mesh",
           "PRIORITY_COLORS", "BAR_SHARE_OF_DIAGONAL"]

logger = logging.getLogger(__name__)

NAN_COLOR = "#c8c8c8"
BACKGROUND = "white"
DEFAULT_WINDOW_SIZE = (1024, 768)
VIEWS = ("top", "tilted")
CALLS_BY = ("priority", "response")


class _LinkSeries:
    """One link series group of an open results file, as arrays (time x link)."""

    def __init__(self, res: Results, series: str, n_links: int):
        group = "/timeseries/" + series.strip("/").removeprefix("timeseries/")
        keys = res.keys("/timeseries")
        if f"{group}/time_s" not in keys:
            found = sorted({k.rsplit("/", 1)[0] for k in keys if k.endswith("/time_s")})
            raise ResultsError(f"{str(res.path)!r} has no link series group {group!r}; series groups: {found}")
        self.res, self.group, self.n_links = res, group, n_links
        self.time_s = np.asarray(res.array(f"{group}/time_s"), dtype=np.float64)
        self.variables = [k.rsplit("/", 1)[1] for k in keys if k.startswith(group + "/") and not k.endswith("/time_s")]
        meta = res.meta
        if len(self.time_s) > 1:                # the series' own spacing (a flood's steps are not the traffic's)
            self.interval_s = float(np.median(np.diff(self.time_s)))
        elif "interval_s" in meta:
            self.interval_s = float(meta["interval_s"])
        else:
            self.interval_s = float(meta.get("until_s", 3600.0))
        self._cache = {}

    def __call__(self, name):
        if name not in self._cache:
            if name not in self.variables:
                raise ResultsError(f"link series {self.group!r} has no variable {name!r}; it has {self.variables}")
            arr = np.asarray(self.res.array(f"{self.group}/{name}"))
            if arr.ndim != 2 or arr.shape[1] != self.n_links:
                raise ResultsError(f"{self.group}/{name} has shape {arr.shape}; expected (n_times, {self.n_links}) "
                                   "to match the network's links")
            self._cache[name] = arr
        return self._cache[name]

    def units(self, name):
        return self.res.units(f"{self.group}/{name}")

    def interval_of(self, time_s):
        t = float(time_s)
        end = self.time_s[-1] + self.interval_s
        if not (self.time_s[0] <= t < end):
            raise ResultsError(f"time_s = {t} is outside the recorded intervals [{self.time_s[0]}, {end}) s "
                               f"({clock_text(self.time_s[0])} to {clock_text(end)})")
        return int(np.searchsorted(self.time_s, t, side="right") - 1)


def _layer_all(layer: LinkLayer, series: _LinkSeries, net: NetworkArrays):
    """The layer's values for every interval, shape (n_times, n_links), float64."""
    if layer.name == "congestion":
        critical_veh = net.capacity_veh_per_h / 3600.0 * net.free_flow_time_s
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(critical_veh > 0, series("occupancy_veh") / critical_veh, np.nan)
    if layer.name == "flow":
        return series("outflow_veh").astype(np.float64) * (3600.0 / series.interval_s)
    if layer.name == "speed":
        return series("speed_mps").astype(np.float64) * 3.6          # km/h
    return series(layer.variables[0]).astype(np.float64)


def _resolve_layer(layer, scalars, series):
    """(LinkLayer, values of shape (n_times, n_links))."""
    if scalars is None:
        if layer not in LINK_LAYERS:
            raise ValueError(f"unknown layer {layer!r}; accepted: {', '.join(LINK_LAYERS)} "
                             "(or give scalars= the name of a variable of the link series)")
        return LINK_LAYERS[layer], None
    if isinstance(scalars, str):
        values = series(scalars).astype(np.float64)
        return LinkLayer(scalars, scalars, series.units(scalars) or "1", (scalars,), "viridis", None), values
    arr = np.asarray(scalars, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (len(series.time_s), len(arr)))
    if arr.shape != (len(series.time_s), series.n_links):
        raise ValueError(f"scalars has shape {np.shape(scalars)}; expected ({series.n_links},) or "
                         f"({len(series.time_s)}, {series.n_links}) (one value per link, or per interval and link)")
    return LinkLayer("scalars", "value", "1", (), "viridis", None), arr


def _auto_clim(values):
    finite = values[np.isfinite(values)]
    if not finite.size:
        return (0.0, 1.0)
    hi = float(np.percentile(finite, 99))
    lo = min(0.0, float(finite.min()))
    return (lo, hi if hi > lo else lo + 1.0)


def link_layer_values(results, layer="congestion", time_s=None, *, series="traffic_links"):
    """One value per link for one interval of a results file.

    Parameters
    ----------
    results : twin.results.Results, str or os.PathLike
        An open results file or its path.
    layer : str, default "congestion"
        A key of :data:`LINK_LAYERS`.
    time_s : float, optional
        A time in seconds from the scenario start; the interval containing it is used.
        None picks the busiest interval (the largest total link occupancy).
    series : str, default "traffic_links"
        Link series group under ``/timeseries``.

    Returns
    -------
    values : ndarray of float64, shape (n_links,)
    interval_idx : int

    Raises
    ------
    ResultsError
        No such series group or variable, or ``time_s`` outside the recorded intervals.
    ValueError
        Unknown ``layer``.
    """
    with _opened(results) as res:
        net = network_arrays(res)
        ser = _LinkSeries(res, series, net.n_links)
        lay, _ = _resolve_layer(layer, None, ser)
        values = _layer_all(lay, ser, net)
        i = _pick_interval(ser, time_s)
        return values[i].copy(), i


def _pick_interval(ser: _LinkSeries, time_s):
    if not len(ser.time_s):
        raise ResultsError(f"link series {ser.group!r} has no intervals")
    if time_s is None:
        if "occupancy_veh" in ser.variables:
            return int(np.argmax(np.nansum(ser("occupancy_veh"), axis=1)))
        return 0
    return ser.interval_of(time_s)


class _opened:
    """Context manager: an open Results as is, or open (and later close) a path."""

    def __init__(self, results):
        self.results = results
        self.owned = None

    def __enter__(self) -> Results:
        if isinstance(self.results, Results):
            return self.results
        if isinstance(self.results, (str, os.PathLike)):
            self.owned = open_results(self.results)
            return self.owned
        raise TypeError(f"expected a results file (twin.open_results) or its path; got {type(self.results).__name__}")

    def __exit__(self, *exc):
        if self.owned is not None:
            self.owned.close()
        return False


def _two_way(net: NetworkArrays):
    """True for links whose reverse link (head -> tail) also exists."""
    n = np.int64(max(net.n_nodes, 1))
    fwd = net.link_from_idx.astype(np.int64) * n + net.link_to_idx
    rev = net.link_to_idx.astype(np.int64) * n + net.link_from_idx
    return np.isin(rev, fwd)


class _LinkView:
    """Everything a link map needs: mesh, layer values for all intervals, labels."""

    def __init__(self, res, *, layer, scalars, cmap, clim, series, network, tubes, tube_radius_m):
        self.net = network_arrays(network if network is not None else res)
        if network is not None:
            own = network_arrays(res)
            if own.n_links != self.net.n_links or not (np.array_equal(own.link_from_idx, self.net.link_from_idx)
                                                       and np.array_equal(own.link_to_idx, self.net.link_to_idx)):
                raise ResultsError(f"network= has {self.net.n_links} links that do not match the {own.n_links} links "
                                   f"of {str(res.path)!r}; give the city the run was made on")
        self.series = _LinkSeries(res, series, self.net.n_links)
        self.layer, values = _resolve_layer(layer, scalars, self.series)
        self.values = _layer_all(self.layer, self.series, self.net) if values is None else values
        self.cmap = cmap or self.layer.cmap
        if self.cmap == "twin_risk":
            from twin.viz.layers import register_colormaps

            register_colormaps()
        self.forecast_t0_s = res.meta.get("forecast_t0_s") if self.layer.name == "risk" else None
        self.clim = tuple(clim) if clim is not None else (self.layer.clim or _auto_clim(self.values))
        if self.layer.name == "speed" and clim is None:
            with np.errstate(invalid="ignore", divide="ignore"):
                free = self.net.length_m / self.net.free_flow_time_s * 3.6          # km/h
            free = free[np.isfinite(free)]
            self.clim = (0.0, nice_limit(free.max()) if free.size else self.clim[1])
        elif clim is None and self.layer.clim is None:
            self.clim = (self.clim[0], nice_limit(self.clim[1])) if self.clim[0] == 0 else self.clim
        radius = tube_radius_m if tube_radius_m is not None else 0.002 * _diagonal_m(self.net)
        # Two-way roads: each direction sits on its own side (right-hand traffic) without overlap.
        offset = np.where(_two_way(self.net), radius * np.asarray(self.net.lanes) * 1.1, 0.0) if tubes else 0.0
        self.mesh = city_mesh(self.net, tubes=tubes, tube_radius_m=radius, offset_m=offset)
        self.link_of_cell = np.asarray(self.mesh.cell_data["link_idx"])
        self.name = str(res.meta.get("city", "")) or self.net.name

    def set_interval(self, i):
        self.mesh.cell_data[self.layer.name] = self.values[i][self.link_of_cell]

    def title(self, i):
        if self.forecast_t0_s is not None:            # a forecast's horizon i: the window [t0, t0 + h)
            t0, t1 = float(self.forecast_t0_s), float(self.series.time_s[i])
            where = f"{self.name}: " if self.name else ""
            return f"{where}forecast risk {clock_text(t0)}-{clock_text(t1)} (+{(t1 - t0) / 3600:g} h)"
        t0 = self.series.time_s[i]
        t1 = t0 + self.series.interval_s
        where = f"{self.name}: " if self.name else ""
        return f"{where}{self.layer.name} {clock_text(t0)}-{clock_text(t1)}"


def _draw(pl, view: _LinkView, i, title, camera="top"):
    view.set_interval(i)
    pl.set_background(BACKGROUND)
    pl.add_mesh(view.mesh, scalars=view.layer.name, cmap=view.cmap, clim=view.clim, nan_color=NAN_COLOR,
                lighting=False, line_width=3, name="links",
                scalar_bar_args=dict(title=view.layer.scalar_bar_title, vertical=False,
                                     n_labels=0 if view.layer.name == "risk" else nice_label_count(*view.clim),
                                     fmt="%.4g",
                                     position_x=0.2, position_y=0.045, width=0.6, height=0.10,
                                     title_font_size=16, label_font_size=14, color="black",
                                     nan_annotation=bool(np.isnan(view.values).any()), below_label=None))
    _set_title(pl, title if title is not None else view.title(i))
    if camera == "tilted":
        _fit_tilted(pl, view.mesh.bounds, _diagonal_m(view.net))
    else:
        _fit_top_down(pl, view.mesh.bounds)
        _scale_and_north(pl)


def _nice_length_m(target_m):
    """A round scale-bar length (1, 2 or 5 times a power of ten metres) at most ``target_m``."""
    power = 10.0 ** np.floor(np.log10(max(target_m, 1e-9)))
    return float(max(m * power for m in (1.0, 2.0, 5.0) if m * power <= target_m))


def _scale_and_north(pl, *, bar_share=0.14):
    """A scale bar (bottom right, beside the colour bar) and a north arrow (top right) on a
    top-down map (north up, parallel projection), placed in screen fractions."""
    cam = pl.camera
    w_px, h_px = pl.window_size
    scale = cam.parallel_scale                              # half the window height, metres
    cx, cy = cam.focal_point[0], cam.focal_point[1]
    aspect = w_px / h_px

    def world(sx, sy):
        return cx + (sx - 0.5) * 2.0 * scale * aspect, cy + (sy - 0.5) * 2.0 * scale

    length = _nice_length_m(bar_share * 2.0 * scale * aspect)
    x0, y0 = world(0.83, 0.07)
    z = 20.0
    pl.add_mesh(pv.Line((x0, y0, z), (x0 + length, y0, z)), color="black", line_width=4, lighting=False,
                name="scale_bar")
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    pl.add_text(text, position=(0.83 * w_px, 0.08 * h_px), font_size=10, color="black", name="scale_text")
    ax, ay = world(0.965, 0.80)
    _, top = world(0.965, 0.87)
    pl.add_mesh(pv.Arrow(start=(ax, ay, z), direction=(0.0, 1.0, 0.0), scale=top - ay, tip_length=0.35, tip_radius=0.12,
                         shaft_radius=0.03), color="black", lighting=False, name="north_arrow")
    pl.add_text("N", position=(0.957 * w_px, 0.875 * h_px), font_size=11, color="black", name="north_text")


def _fit_tilted(pl, bounds, diagonal_m, *, elevation_deg=40.0):
    """Look north from the south at ``elevation_deg`` above the horizon (perspective), so bars stand up."""
    x0, x1, y0, y1 = bounds[0], bounds[1], bounds[2], bounds[3]
    top = BAR_SHARE_OF_DIAGONAL * diagonal_m
    pl.reset_camera(bounds=(x0, x1, y0, y1, 0.0, top))
    cam = pl.camera
    cam.parallel_projection = False
    fx, fy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    d = float(np.linalg.norm(np.subtract(cam.position, cam.focal_point)))
    el = np.radians(elevation_deg)
    cam.focal_point = (fx, fy, 0.0)
    cam.position = (fx, fy - d * np.cos(el), d * np.sin(el))
    cam.up = (0.0, 0.0, 1.0)
    cam.zoom(1.3)
    pl.renderer.ResetCameraClippingRange()


def _set_title(pl, text):
    """Centre ``text`` at the top, sized to the window (fixed pixels, unlike a corner annotation)."""
    w_px, h_px = pl.window_size
    size = max(8, min(int(0.045 * h_px), int(0.9 * w_px / max(len(text), 1))))
    actor = pl.add_text(text, position=(w_px / 2.0, h_px - 0.015 * h_px), font_size=size, color="black",
                        name="title")
    actor.prop.justification_horizontal = "center"
    actor.prop.justification_vertical = "top"
    return actor


def _fit_top_down(pl, bounds, *, bottom=0.2, top=0.91, side=0.09):
    """Look straight down (north up) with the network filling the band between the bar and the title."""
    x0, x1, y0, y1 = bounds[0], bounds[1], bounds[2], bounds[3]
    w_px, h_px = pl.window_size
    band = top - bottom
    dx, dy = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    # parallel_scale is half the window height in world units.
    scale = max(dy / band, dx * h_px / (w_px * (1.0 - 2.0 * side))) / 2.0
    cx = (x0 + x1) / 2.0
    cy = (y0 + y1) / 2.0 - ((bottom + top) / 2.0 - 0.5) * 2.0 * scale
    cam = pl.camera
    cam.parallel_projection = True
    cam.focal_point = (cx, cy, 0.0)
    cam.position = (cx, cy, 10.0 * scale + 1.0)
    cam.up = (0.0, 1.0, 0.0)
    cam.parallel_scale = scale
    pl.renderer.ResetCameraClippingRange()


def plot_run(results, *, time_s=None, layer="congestion", scalars=None, cmap=None, clim=None, off_screen=True,
             plotter=None, screenshot=None, title=None, series="traffic_links", network=None, tubes=True,
             tube_radius_m=None, window_size=DEFAULT_WINDOW_SIZE, facilities=True, view="top",
             calls_by="priority"):
    """Draw the road network coloured by a link time series at one interval.

    Parameters
    ----------
    results : twin.results.Results, str or os.PathLike
        A results file with ``/network/nodes``, ``/network/links`` and a link series group.
    time_s : float, optional
        Seconds from the scenario start; the interval containing it is drawn. None draws
        the busiest interval (the largest total link occupancy).
    layer : str, default "congestion"
        One of :data:`LINK_LAYERS` (see the module docstring for what each means).
    scalars : str or ndarray, optional
        Instead of a layer: the name of a variable of the link series (e.g. ``"inflow_veh"``),
        or values of shape ``(n_links,)`` or ``(n_intervals, n_links)``.
    cmap : str, optional
        Matplotlib colormap name; the layer's default when omitted.
    clim : (float, float), optional
        Colour limits; the layer's default, else 0 to the 99th percentile of all intervals.
    off_screen : bool, default True
        Render without a window (used only when this function creates the plotter).
    plotter : pyvista.Plotter, optional
        Draw into this plotter instead of a new one (then ``off_screen`` and
        ``window_size`` are the plotter's own).
    screenshot : str or os.PathLike, optional
        Save a PNG here after drawing.
    title : str, optional
        Replaces the default title (city, layer, clock time ``HH:MM-HH:MM`` of the interval).
    series : str, default "traffic_links"
        Link series group under ``/timeseries``.
    network : twin.City, optional
        Draw this city's links (with their polyline geometry) instead of the straight links
        of the results file's tables; must have the same links as the run.
    tubes : bool, default True
        Draw links as flat-shaded tubes as wide as their lanes, each direction of a two-way
        road on its own side; False draws 3-pixel lines.
    tube_radius_m : float, optional
        Tube radius per lane, metres; 0.2 % of the network diagonal when omitted (roads are
        drawn wider than they are, as on a printed map).
    window_size : (int, int), default (1024, 768)
        Pixels of a new plotter.
    facilities : bool, default True
        Where the file has them (an emergency run), draw hospitals as markers coloured by
        bed occupancy at the drawn interval (occupied / beds) and ambulance stations as
        black markers, both labelled; and the calls active in the interval (see
        :func:`active_calls`) as small markers coloured by ``calls_by``.
    view : {"top", "tilted"}, default "top"
        ``"top"`` looks straight down, north up (parallel projection). ``"tilted"`` looks
        north from the south, 40 degrees above the horizon (perspective), and also draws
        each hospital as a vertical bar (actor ``"facility_hospital_bars"``) whose height
        is proportional to the beds occupied at the interval's middle, coloured by the
        occupied share, inside a translucent bar as tall as all its beds. Scale: the
        hospital with the most beds, all occupied, is :data:`BAR_SHARE_OF_DIAGONAL`
        (25 %) of the network's diagonal (:func:`hospital_bars_mesh`).
    calls_by : {"priority", "response"}, default "priority"
        Colour of the call markers (actor ``"facility_calls"``, ``point_data``
        ``call_id``, ``priority``, ``response_time_s``): by priority (P1 red, P2 orange,
        P3 yellow, with a legend), or by response time (``plasma`` colour map, 0 to the
        run's longest response, with a scalar bar in s; calls not yet reached grey).

    Returns
    -------
    pyvista.Plotter
        The plotter, with the link mesh as actor ``"links"`` (and, for an emergency run,
        hospitals, stations and the ambulances where they are at the interval's middle,
        red markers) (its ``cell_data`` hold the
        drawn values under the layer name). Call ``show()`` on an on-screen plotter, and
        ``close()`` when done.

    Raises
    ------
    ResultsError
        Missing network tables, series group or variable, ``time_s`` outside the run, or
        a ``network`` that does not match.
    ValueError
        Unknown ``layer`` or ``scalars`` of the wrong shape.

    Examples
    --------
    >>> pl = plot_run("run.h5", time_s=1800, layer="congestion", screenshot="congestion.png")  # doctest: +SKIP
    >>> pl.close()  # doctest: +SKIP
    """
    _check_view(view, calls_by)
    if plotter is None and off_screen:
        prepare_offscreen()
    camera = view
    with _opened(results) as res:
        view = _LinkView(res, layer=layer, scalars=scalars, cmap=cmap, clim=clim, series=series, network=network,
                         tubes=tubes, tube_radius_m=tube_radius_m)
        i = _pick_interval(view.series, time_s)
        marks = _facilities(res, view, i, calls_by=calls_by, bars=camera == "tilted") if facilities else []
    pl = plotter if plotter is not None else pv.Plotter(off_screen=off_screen, window_size=list(window_size))
    _draw(pl, view, i, title, camera)
    for j, mark in enumerate(marks):
        _draw_facility(pl, **mark, prefix=f"facility_{j}_")
    if screenshot is not None:
        pl.screenshot(os.fspath(screenshot))
        logger.info("wrote %s", screenshot)
    return pl


def render_movie(results, out_path, *, layer="congestion", fps=4, scalars=None, cmap=None, clim=None,
                 series="traffic_links", network=None, tubes=True, tube_radius_m=None, time_s=None,
                 window_size=(800, 600), progress=None, facilities=True, view="top", calls_by="priority", every=1):
    """Write one frame per interval of a link layer as an animated GIF or an MP4.

    Parameters
    ----------
    results : twin.results.Results, str or os.PathLike
    out_path : str or os.PathLike
        Ends in ``.gif`` (imageio) or ``.mp4`` (needs the ``imageio-ffmpeg`` package).
    layer, scalars, cmap, clim, series, network, tubes, tube_radius_m
        As in :func:`plot_run`; the colour limits are fixed across frames.
    fps : float, default 4
        Frames (intervals) per second.
    time_s : (float, float), optional
        Only the intervals overlapping ``[start, end)`` seconds; all when omitted.
    window_size : (int, int), default (800, 600)
    progress : callable(done, total), optional
        Called after each frame.
    every : int, default 1
        Draw every ``every``-th of those intervals (the first always). Each frame changes the
        link colours, title and overlays, then renders once.
    facilities, view, calls_by
        As in :func:`plot_run` (facilities, units and calls move with the frames).

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    ValueError
        ``out_path`` does not end in ``.gif`` or ``.mp4``, or ``fps <= 0``.
    ImportError
        ``.mp4`` without ``imageio-ffmpeg`` installed (write a ``.gif`` instead).
    ResultsError
        As :func:`plot_run`.
    """
    _check_view(view, calls_by)
    camera = view
    out = Path(os.fspath(out_path))
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"movie path {str(out)!r} ends in {suffix!r}; accepted: .gif, .mp4")
    if not fps > 0:
        raise ValueError(f"fps = {fps!r}; expected frames per second > 0")
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ValueError(f"every = {every!r}; expected a whole number of intervals >= 1")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ImportError(f"writing {str(out)!r} needs the imageio-ffmpeg package, which is not installed; "
                          "pip install imageio-ffmpeg, or write a .gif instead")
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} does not exist")
    prepare_offscreen()
    with _opened(results) as res:
        view = _LinkView(res, layer=layer, scalars=scalars, cmap=cmap, clim=clim, series=series, network=network,
                         tubes=tubes, tube_radius_m=tube_radius_m)
    t = view.series.time_s
    frames = np.arange(len(t))
    if time_s is not None:
        start, end = (float(v) for v in time_s)
        frames = frames[(t + view.series.interval_s > start) & (t < end)]
        if not len(frames):
            raise ResultsError(f"no interval overlaps time_s = ({start}, {end}) s; the run records "
                               f"[{t[0]}, {t[-1] + view.series.interval_s}) s")
    frames = frames[::int(every)]
    pl = pv.Plotter(off_screen=True, window_size=list(window_size))
    res_path = results if not hasattr(results, "table") else None
    try:
        _draw(pl, view, int(frames[0]), None, camera)
        if suffix == ".gif":
            pl.open_gif(os.fspath(out), fps=fps)
        else:
            pl.open_movie(os.fspath(out), framerate=int(round(fps)))
        with _opened(results if res_path is None else res_path) as res:     # one open for all frames
            for n, i in enumerate(frames, 1):
                # change everything first, then render once (each add or remove would render)
                pl.suppress_rendering = True
                try:
                    view.set_interval(int(i))
                    _set_title(pl, view.title(int(i)))
                    # hospitals, stations and ambulances of an emergency run move with the frames
                    marks = (_facilities(res, view, int(i), calls_by=calls_by, bars=camera == "tilted")
                             if facilities else [])
                    for name in [k for k in pl.actors if str(k).startswith("facility_")]:
                        pl.remove_actor(name)
                    for j, mark in enumerate(marks):
                        _draw_facility(pl, **mark, prefix=f"facility_{j}_")
                finally:
                    pl.suppress_rendering = False
                pl.write_frame()
                if progress is not None:
                    progress(n, len(frames))
    finally:
        pl.close()
    logger.info("wrote %s (%d frames)", out, len(frames))
    return out


def add_points(plotter, points, *, scalars=None, cmap="plasma", clim=None, point_size=14.0, color="black",
               scalar_bar_title=None, name=None):
    """Draw facilities or units (a :func:`twin.viz.mesh.points_mesh`) as round markers.

    Parameters
    ----------
    plotter : pyvista.Plotter
        E.g. the one :func:`plot_run` returned.
    points : pyvista.PolyData
        From :func:`~twin.viz.mesh.points_mesh` or :func:`~twin.viz.mesh.node_points_mesh`.
    scalars : str, optional
        A ``point_data`` array to colour by (e.g. ``"occupancy"``); plain ``color`` when
        omitted.
    cmap, clim
        As in :func:`plot_run`.
    point_size : float, default 14
        Marker diameter in pixels.
    color : str, default "black"
        Marker colour without ``scalars``.
    scalar_bar_title : str, optional
        Title (with units) of the vertical scalar bar drawn at the right with ``scalars``.
    name : str, optional
        Actor name (re-adding a name replaces the actor, as in PyVista).

    Returns
    -------
    pyvista.Actor
    """
    kwargs = dict(point_size=point_size, render_points_as_spheres=True, lighting=False, name=name)
    if scalars is None:
        return plotter.add_mesh(points, color=color, **kwargs)
    return plotter.add_mesh(points, scalars=scalars, cmap=cmap, clim=clim, **kwargs,
                            scalar_bar_args=dict(title=scalar_bar_title or scalars, vertical=True, position_x=0.86,
                                                 position_y=0.25, height=0.5, width=0.06, color="black",
                                                 title_font_size=14, label_font_size=12))


def _check_view(view, calls_by):
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; accepted: {', '.join(VIEWS)}")
    if calls_by not in CALLS_BY:
        raise ValueError(f"unknown calls_by {calls_by!r}; accepted: {', '.join(CALLS_BY)}")
