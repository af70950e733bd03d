"""Colour layers of the link maps, and clock formatting (no PyVista here, so the CLI can list them).

See :mod:`twin.viz.plot` for what each layer means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.units import parse_clock_s  # the one clock parser; re-exported for the viz CLI

__all__ = ["LinkLayer", "LINK_LAYERS", "LAYER_SERIES", "clock_text", "parse_clock_s", "nice_limit", "nice_label_count"]


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
        Display units shown in the scalar-bar title ("" for a ratio: no unit shown).
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
        """The scalar-bar title: label and display units (none for a ratio)."""
        return f"{self.label} ({self.units})" if self.units and self.units != "1" else self.label


LINK_LAYERS = {
    "congestion": LinkLayer("congestion", "congestion: occupancy / critical occupancy", "", ("occupancy_veh",),
                            "RdYlGn_r", (0.0, 1.5)),
    # the series' m/s shown in km/h (twin.kpi_display's display unit for speeds)
    "speed": LinkLayer("speed", "speed", "km/h", ("speed_mps",), "RdYlGn", None),
    "occupancy": LinkLayer("occupancy", "occupancy", "veh", ("occupancy_veh",), "viridis", None),
    "flow": LinkLayer("flow", "flow", "veh/h", ("outflow_veh",), "viridis", None),
    # reads a flood's series (/timeseries/hazard_<name>_link_depth); 300 mm closes a road
    "flood-depth": LinkLayer("flood-depth", "flood depth (300 mm closes a road)", "mm", ("depth_mm",), "YlGnBu",
                             (0.0, 450.0)),
    # reads a forecast's /timeseries/forecast_risk_links: the highest risk class of any harm in the
    # link's district at a horizon (twin forecast --out; twin render --layer risk --horizon 6h)
    "risk": LinkLayer("risk", "risk, left to right: very low, low, moderate, high, very high", "", ("risk_level",),
                      "twin_risk", (-0.5, 4.5)),
}

#: The five risk classes' colours, lowest first (twin.forecast.RISK_COLOURS; a test keeps them equal).
RISK_COLOURS = ("#2e7d32", "#1565c0", "#f9a825", "#ef6c00", "#c62828")


def register_colormaps() -> None:
    """Register ``twin_risk`` (the five risk colours) with matplotlib, once."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    if "twin_risk" not in matplotlib.colormaps:
        matplotlib.colormaps.register(ListedColormap(list(RISK_COLOURS), name="twin_risk"))

#: Layers that read another series than the traffic's: layer -> pattern of its group name.
LAYER_SERIES = {"flood-depth": ("hazard_", "_link_depth"), "risk": ("forecast_risk", "_links")}


def nice_limit(high, intervals=4):
    """The smallest ``intervals x step`` at or above ``high`` with a round step (1, 2, 2.5 or 5
    times a power of ten), so a colour bar of ``intervals + 1`` labels reads 0/20/40/60/80.

    >>> nice_limit(22.2), nice_limit(80.0), nice_limit(1.37)
    (40.0, 80.0, 2.0)
    """
    high = float(high)
    if not np.isfinite(high) or high <= 0:
        return 1.0
    raw = high / intervals
    power = 10.0 ** np.floor(np.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= raw - 1e-12:
            return float(intervals * m * power)
    return float(intervals * 10.0 * power)


def _is_round(step):
    if not np.isfinite(step) or step <= 0:
        return False
    m = step / 10.0 ** np.floor(np.log10(step) + 1e-12)
    return any(abs(m - r) < 1e-9 for r in (1.0, 2.0, 2.5, 5.0))


def nice_label_count(low, high):
    """How many colour-bar labels (3 to 6) put round numbers on ``[low, high]``: 4 on 0-1.5
    (0, 0.5, 1, 1.5), 5 on 0-80; 5 when none does.

    >>> nice_label_count(0.0, 1.5), nice_label_count(0.0, 80.0), nice_label_count(0.0, 7.0)
    (4, 5, 5)
    """
    for n in (5, 4, 6, 3):
        if _is_round((float(high) - float(low)) / (n - 1)):
            return n
    return 5


def clock_text(t_s: float) -> str:
    """Seconds from the scenario start as a clock time ``HH:MM`` (hours may pass 24).

    Examples
    --------
    >>> clock_text(0.0), clock_text(8 * 3600 + 5 * 60 + 59), clock_text(26 * 3600)
    ('00:00', '08:05', '26:00')
    """
    minutes = int(np.floor(float(t_s) / 60.0))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
