"""Colour layers of the link maps, and clock formatting (no PyVista here, so the CLI can list them).

See :mod:`twin.viz.plot` for what each layer means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.units import parse_clock_s  # the one clock parser; re-exported for the viz CLI

__all__ = ["LinkLayer", "LINK_LAYERS", "LAYER_SERIES", "clock_text", "parse_clock_s"]


@dataclass(frozen=True)
class LinkLayer:
    """A colour layer: how one value per link is computed from a link series group.

    Attributes
    ----------
    name : str
        Key in :data:`LINK_LAYERS` (the ``layer=`` argument).
    label : str
        Words for the title.
    units : str
        Units shown in the scalar-bar title ("1" for a ratio).
    variables : tuple of str
        Datasets of the series group that the layer reads.
    cmap : str
        Default matplotlib colormap name.
    clim : tuple of float or None
        Default colour limits; None takes 0 to the 99th percentile over all intervals.
    """

    name: str
    label: str
    units: str
    variables: tuple
    cmap: str
    clim: tuple | None

    @property
    def scalar_bar_title(self) -> str:
        """The scalar-bar title: label and units."""
        return f"{self.label} ({self.units})"


LINK_LAYERS = {
    "congestion": LinkLayer("congestion", "congestion: occupancy / critical occupancy", "1", ("occupancy_veh",),
                            "RdYlGn_r", (0.0, 1.5)),
    "speed": LinkLayer("speed", "speed", "m/s", ("speed_mps",), "RdYlGn", None),
    "occupancy": LinkLayer("occupancy", "occupancy", "veh", ("occupancy_veh",), "viridis", None),
    "flow": LinkLayer("flow", "flow", "veh/h", ("outflow_veh",), "viridis", None),
    # reads a flood's series (/timeseries/hazard_<name>_link_depth); 300 mm closes a road
    "flood-depth": LinkLayer("flood-depth", "flood depth (300 mm closes a road)", "mm", ("depth_mm",), "YlGnBu",
                             (0.0, 450.0)),
}

#: Layers that read another series than the traffic's: layer -> pattern of its group name.
LAYER_SERIES = {"flood-depth": ("hazard_", "_link_depth")}


def clock_text(t_s: float) -> str:
    """Seconds from the scenario start as a clock time ``HH:MM`` (hours may pass 24).

    Examples
    --------
    >>> clock_text(0.0), clock_text(8 * 3600 + 5 * 60 + 59), clock_text(26 * 3600)
    ('00:00', '08:05', '26:00')
    """
    minutes = int(np.floor(float(t_s) / 60.0))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
