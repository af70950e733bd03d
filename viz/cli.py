"""The ``twin render`` and ``twin plot`` commands (wired into :mod:`twin.cli`).

``twin.cli`` calls :func:`add_render_parser` and :func:`add_plot_parser` while building its
parser; they import nothing heavy, so ``twin --help`` does not load PyVista or matplotlib.
The commands' functions import them when they run.

Examples
--------
::

    twin traffic hefei-baohe --random-trips 7000 --until 2h --out run.h5
    twin render run.h5 --layer congestion --time 00:40 --out congestion.png
    twin render run.h5 --layer speed --out speed.gif --fps 4
    twin plot run.h5 travel-times --out travel_times.png
    twin render day.h5 --view tilted --calls-by response --out day.png
    twin plot a.h5 compare --other b.h5 --out cmp.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.viz.charts import CHARTS
from twin.viz.layers import LAYER_SERIES, LINK_LAYERS, parse_clock_s

__all__ = ["add_render_parser", "add_plot_parser", "add_view_parser", "add_report_parser", "render_main", "plot_main",
           "view_main", "report_main"]


def _clock_arg(text):
    try:
        return parse_clock_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size_arg(text):
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
        if w > 0 and h > 0:
            return (w, h)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"window size {text!r}; expected WIDTHxHEIGHT in pixels, e.g. 1024x768")


def _every_arg(text):
    try:
        n = int(text)
        if n >= 1:
            return n
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"--every {text!r}; expected a whole number of intervals >= 1")


def _inches_arg(text):
    try:
        w, h = (float(v) for v in str(text).lower().split("x"))
        if 0 < w <= 100 and 0 < h <= 100:
            return (w, h)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"figure size {text!r}; expected WIDTHxHEIGHT in inches (100 dpi), e.g. 11x6")


def add_render_parser(subparsers):
    """Add the ``render`` command to ``subparsers`` (from ``ArgumentParser.add_subparsers``).

    Returns
    -------
    argparse.ArgumentParser
        The new sub-parser; its ``func`` default is :func:`render_main`.
    """
    p = subparsers.add_parser(
        "render", help="draw a results file's network coloured by a link layer (PNG, or a GIF/MP4 movie)",
        description="Draw the road network of a results file coloured by a link layer at one interval (PNG), "
                    "or every interval as a movie (.gif; .mp4 needs imageio-ffmpeg). Renders off-screen.")
    p.add_argument("results", help="results file (HDF5) written by e.g. `twin traffic --out`")
    p.add_argument("--layer", choices=list(LINK_LAYERS), default="congestion",
                   help="colour layer (default congestion: occupancy / critical occupancy)")
    p.add_argument("--time", type=_clock_arg, default=None, metavar="HH:MM",
                   help="time from the scenario start (HH:MM, seconds or e.g. 40min); default the busiest interval")
    p.add_argument("--horizon", type=_duration_arg, default=None, metavar="6h",
                   help="a forecast file (twin forecast --out): draw the risk at this lead time (--layer risk)")
    p.add_argument("--until", type=_clock_arg, default=None, metavar="HH:MM",
                   help="a movie ends at this time (default the end of the run); --time is where it starts")
    p.add_argument("--out", help="output .png, .gif or .mp4 (default <results>_<layer>.png)")
    p.add_argument("--city", help="draw this city's link geometry (the city the run was made on), e.g. hefei-baohe")
    p.add_argument("--fps", type=float, default=4.0, help="movie frames (intervals) per second (default 4)")
    p.add_argument("--every", type=_every_arg, default=1, metavar="N",
                   help="a movie draws every N-th interval (default 1: all)")
    p.add_argument("--size", type=_size_arg, default=None, metavar="WxH",
                   help="image size in pixels (default 1024x768; movies 800x600)")
    p.add_argument("--lines", action="store_true", help="draw 3-pixel lines instead of lane-wide tubes")
    p.add_argument("--series", default="traffic_links", help="link series group under /timeseries "
                   "(default traffic_links)")
    p.add_argument("--view", choices=["top", "tilted"], default="top",
                   help="camera: top (straight down, default) or tilted (hospitals as bars of occupied beds)")
    p.add_argument("--calls-by", choices=["priority", "response"], default="priority",
                   help="colour of an emergency run's call markers (default priority)")
    p.set_defaults(func=render_main)
    return p


def add_plot_parser(subparsers):
    """Add the ``plot`` command to ``subparsers``.

    Returns
    -------
    argparse.ArgumentParser
        The new sub-parser; its ``func`` default is :func:`plot_main`.
    """
    p = subparsers.add_parser("plot", help="matplotlib chart of a results file (travel times, network load ...)")
    p.add_argument("results", help="results file (HDF5)")
    p.add_argument("kind", choices=list(CHARTS), help="; ".join(f"{k}: {d}" for k, (_, d) in CHARTS.items()).replace("%", "%%"))
    p.add_argument("--out", help="output image, format from the suffix (default <results>_<kind>.png)")
    p.add_argument("--prefix", default="traffic", help="prefix of the traffic datasets (default traffic)")
    p.add_argument("--other", help="second results file (the compare chart: KPIs of RESULTS vs OTHER)")
    p.add_argument("--size", type=_inches_arg, default=(8.0, 5.0), metavar="WxH",
                   help="figure size in inches at 100 dpi (default 8x5)")
    p.set_defaults(func=plot_main)
    return p


def render_main(args) -> int:
    """Run ``twin render`` from parsed arguments; returns the exit status.

    Errors of the results file raise :class:`twin.errors.ResultsError` (``twin.cli`` reports
    them); a bad ``--out`` suffix or a missing ``imageio-ffmpeg`` prints a message and returns 2.
    """
    try:
        return _render(args)
    except ModuleNotFoundError:
        raise                                   # twin.cli names the extra to install
    except ImportError as exc:
        sys.stderr.write(f"twin render: error: {exc}\n")
        return 2


def _render(args) -> int:
    from twin.loading import load_city

    out = Path(args.out) if args.out else Path(args.results).with_name(f"{Path(args.results).stem}_{args.layer}.png")
    network = load_city(args.city) if args.city else None
    if getattr(args, "horizon", None) is not None:
        args.time = _horizon_time(args.results, args.horizon)
    series = args.series
    if args.layer in LAYER_SERIES and series == "traffic_links":
        series = _layer_series(args.results, args.layer)
    common = dict(layer=args.layer, network=network, tubes=not args.lines, series=series, view=args.view,
                  calls_by=args.calls_by)
    if out.suffix.lower() in (".gif", ".mp4"):
        from twin.viz.plot import render_movie

        size = args.size or (800, 600)
        start = ((args.time or 0.0, args.until if args.until is not None else float("inf"))
                 if args.time is not None or args.until is not None else None)
        from twin.progress import progress_reporter

        progress, close = progress_reporter(args, "render", "frame")
        try:
            render_movie(args.results, out, fps=args.fps, window_size=size, time_s=start, progress=progress,
                         every=args.every, **common)
        finally:
            close()
    elif out.suffix.lower() == ".png":
        from twin.viz.plot import plot_run

        pl = plot_run(args.results, time_s=args.time, screenshot=out, window_size=args.size or (1024, 768), **common)
        pl.close()
    else:
        sys.stderr.write(f"twin render: error: --out {str(out)!r}: expected a .png image or a .gif/.mp4 movie\n")
        return 2
    sys.stdout.write(f"wrote {out}\n")
    return 0


def _duration_arg(text):
    from twin.units import parse_duration_s

    try:
        return float(parse_duration_s(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (e.g. 6h)") from None


def _horizon_time(path, horizon_s):
    """The time (s) of a forecast file's horizon ``horizon_s``: its t0 plus the horizon."""
    from twin.errors import ResultsError
    from twin.results import open_results

    with open_results(path) as res:
        t0 = res.meta.get("forecast_t0_s")
        hs = res.array("/forecast/horizons_s").tolist() if t0 is not None else []
    if t0 is None:
        raise ResultsError(f"{str(path)!r} is not a forecast file (twin forecast --out); --horizon needs one")
    with open_results(path) as res:
        cut = res.meta.get("forecast_cut_s", [])
        cut = [float(c) for c in (json.loads(cut) if isinstance(cut, str) else cut)]
    if any(abs(c - horizon_s) < 1e-6 for c in cut):          # cut to the scenario's end: its last horizon
        horizon_s = hs[-1]
    if not any(abs(h - horizon_s) < 1e-6 for h in hs):
        raise ResultsError(f"{str(path)!r} has horizons {', '.join(f'{h / 3600:g}h' for h in hs)}; "
                           f"--horizon {horizon_s / 3600:g}h is not one of them")
    return float(t0) + float(horizon_s)


def _layer_series(path, layer):
    """The first series group of the file that ``layer`` reads (e.g. a flood's link depths)."""
    from twin.errors import ResultsError
    from twin.results import open_results

    head, tail = LAYER_SERIES[layer]
    with open_results(path) as res:
        groups = sorted({k.split("/")[2] for k in res.keys("/timeseries") if k.count("/") >= 3})
    found = [g for g in groups if g.startswith(head) and g.endswith(tail)]
    if not found:
        if layer == "risk":
            raise ResultsError(f"{str(path)!r} has no /timeseries/forecast_risk_links series; --layer risk needs a "
                               f"forecast file (twin forecast --out)")
        raise ResultsError(f"{str(path)!r} has no /timeseries/{head}<name>{tail} series; --layer {layer} needs a run "
                           f"with a [[hazards]] flood")
    return found[0]


def plot_main(args) -> int:
    """Run ``twin plot`` from parsed arguments; returns the exit status."""
    from twin.viz.charts import plot_chart

    out = Path(args.out) if args.out else Path(args.results).with_name(f"{Path(args.results).stem}_{args.kind}.png")
    other = getattr(args, "other", None)
    if (args.kind == "compare") != (other is not None):
        sys.stderr.write("twin plot: error: --other B.h5 goes with the compare chart (and only with it)\n")
        return 2
    plot_chart(args.results, args.kind, out, prefix=args.prefix, other=other, figsize=args.size)
    sys.stdout.write(f"wrote {out}\n")
    return 0


def add_report_parser(subparsers):
    """Add the ``report`` command (a one-page HTML report of a run) to ``subparsers``."""
    p = subparsers.add_parser("report", help="one-page HTML report of a run: key figures, map, charts, scenario",
                              description="Write one self-contained HTML page (images embedded) for people who "
                                          "will not open a terminal.")
    p.add_argument("results", help="results file (HDF5) written by `twin run --out`")
    p.add_argument("--out", help="output .html (default <results>_report.html)")
    p.set_defaults(func=report_main)
    return p


def report_main(args) -> int:
    """Run ``twin report``; returns the exit status."""
    from twin.viz.report import write_report

    out = Path(args.out) if args.out else Path(args.results).with_name(f"{Path(args.results).stem}_report.html")
    if out.suffix.lower() not in (".html", ".htm"):
        sys.stderr.write(f"twin report: error: --out {str(out)!r}; the report is an .html file\n")
        return 2
    write_report(args.results, out)
    sys.stdout.write(f"wrote {out}\n")
    return 0


def add_view_parser(subparsers):
    """Add the ``view`` command (an interactive window with a time slider) to ``subparsers``."""
    p = subparsers.add_parser("view", help="open a results file in an interactive 3D window (needs a display)")
    p.add_argument("results", help="results file (HDF5) written by e.g. `twin traffic --out`")
    p.add_argument("--layer", choices=list(LINK_LAYERS), default="congestion", help="colour layer")
    p.add_argument("--time", type=_clock_arg, default=None, help="start at this clock time (HH:MM)")
    p.add_argument("--city", help="draw this city's road geometry")
    p.set_defaults(func=view_main)
    return p


def view_main(args) -> int:
    """Run ``twin view``: the same drawing as ``twin render`` in a window, with a time slider.

    Returns 2 with a message when no display is available (use ``twin render`` instead).
    """
    import os

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        sys.stderr.write("twin view: error: no display (DISPLAY is not set); use `twin render RESULTS --out x.png` "
                         "to draw off-screen\n")
        return 2
    import pyvista as pv

    from twin.loading import load_city
    from twin.results import open_results
    from twin.viz.plot import plot_run

    results = open_results(args.results)
    times = results.array("/timeseries/traffic_links/time_s")
    network = load_city(args.city) if args.city else None
    pl = pv.Plotter(off_screen=False)
    state = {"t": float(args.time) if args.time is not None else None}

    def draw(t):
        pl.clear_actors()
        plot_run(results, time_s=t, layer=args.layer, network=network, plotter=pl)

    draw(state["t"])
    if len(times) > 1:
        pl.add_slider_widget(lambda value: draw(float(value)), [float(times[0]), float(times[-1])],
                             value=float(state["t"] if state["t"] is not None else times[0]),
                             title="time (s)", pointa=(0.1, 0.92), pointb=(0.6, 0.92))
    pl.show()
    return 0
