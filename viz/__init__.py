"""PyVista views and matplotlib charts built from results files.

This package is a side branch: it reads ``twin`` graphs and results files and never drives a
simulation; ``import twin`` never imports it. Importing ``twin.viz`` itself loads neither
PyVista nor matplotlib: the names below resolve on first use, so ``twin --help`` (which
builds the ``render`` and ``plot`` parsers from :mod:`twin.viz.cli`) stays fast.

- :func:`city_mesh`, :func:`zones_mesh`, :func:`points_mesh`, :func:`node_points_mesh` —
  ``pyvista.PolyData`` of links, zones and facilities (:mod:`twin.viz.mesh`);
- :func:`plot_run`, :func:`render_movie`, :func:`add_points` — link maps coloured by a
  layer of :data:`LINK_LAYERS` (:mod:`twin.viz.plot`);
- :func:`plot_chart` — matplotlib charts of :data:`CHARTS` (:mod:`twin.viz.charts`).

Headless rendering (no display, no GPU) is described in ``docs/viz.md``.
"""

import importlib

__all__ = [
    "city_mesh",
    "zones_mesh",
    "points_mesh",
    "node_points_mesh",
    "network_arrays",
    "plot_run",
    "render_movie",
    "add_points",
    "link_layer_values",
    "LINK_LAYERS",
    "plot_chart",
    "CHARTS",
]

_LAZY = {
    "city_mesh": "twin.viz.mesh",
    "zones_mesh": "twin.viz.mesh",
    "points_mesh": "twin.viz.mesh",
    "node_points_mesh": "twin.viz.mesh",
    "network_arrays": "twin.viz.mesh",
    "plot_run": "twin.viz.plot",
    "render_movie": "twin.viz.plot",
    "add_points": "twin.viz.plot",
    "link_layer_values": "twin.viz.plot",
    "LINK_LAYERS": "twin.viz.layers",
    "plot_chart": "twin.viz.charts",
    "CHARTS": "twin.viz.charts",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'twin.viz' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
