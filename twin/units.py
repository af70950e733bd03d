"""Unit conversions, done only here and only at the boundary.

Inside ``twin`` every physical quantity is SI or traffic-engineering standard:
seconds, metres, metres/second, vehicles/hour, vehicles/kilometre. Readers of foreign
formats convert with the factors below.
"""

from __future__ import annotations

import math

__all__ = [
    "SECONDS_PER",
    "METRES_PER",
    "time_factor_s",
    "length_factor_m",
    "kmh_to_mps",
    "mph_to_mps",
    "EARTH_RADIUS_M",
    "haversine_m",
    "parse_duration_s",
    "parse_clock_s",
    "fmt_min",
    "fmt_pct",
]

#: Seconds in one unit of each accepted time unit name.
SECONDS_PER = {
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "0.01h": 36.0,
}

#: Metres in one unit of each accepted length unit name.
METRES_PER = {
    "m": 1.0,
    "km": 1000.0,
    "ft": 0.3048,
    "mi": 1609.344,
}

#: Mean Earth radius used for great-circle lengths, in metres (the IUGG value osmnx uses).
EARTH_RADIUS_M = 6_371_009.0


def _factor(value, table, what):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{what} = {value!r}; expected a positive finite number or one of {sorted(table)}")
        return float(value)
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{what} = {value!r}; expected one of {sorted(table)} or a positive number") from None


def time_factor_s(unit) -> float:
    """Return the number of seconds in one ``unit`` (a name from :data:`SECONDS_PER` or a number)."""
    return _factor(unit, SECONDS_PER, "time_unit")


def length_factor_m(unit) -> float:
    """Return the number of metres in one ``unit`` (a name from :data:`METRES_PER` or a number)."""
    return _factor(unit, METRES_PER, "length_unit")


def kmh_to_mps(speed_kmh: float) -> float:
    """Convert km/h to m/s."""
    return speed_kmh / 3.6


def mph_to_mps(speed_mph: float) -> float:
    """Convert miles/hour to m/s."""
    return speed_mph * 1609.344 / 3600.0


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres between points given in degrees (numpy arrays or floats)."""
    import numpy as np

    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(a, dtype=np.float64)) for a in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def parse_duration_s(text) -> float:
    """Parse ``'10d'``, ``'4h'``, ``'90min'``, ``'30s'``, ``'1h30min'`` or a plain number of seconds into seconds.

    Raises ValueError with the accepted forms.

    Examples
    --------
    >>> parse_duration_s("1h30min"), parse_duration_s("45s"), parse_duration_s(600)
    (5400.0, 45.0, 600.0)
    """
    import re

    t = str(text).strip().lower().replace(" ", "")
    try:
        return float(t)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(d|h|min|m|s)", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise ValueError(f"duration {text!r}; expected e.g. 3600, 10d, 4h, 90min, 1h30min, 45s")
    return sum(float(a) * {"d": 86400.0, "h": 3600.0, "min": 60.0, "m": 60.0, "s": 1.0}[b] for a, b in parts)


def parse_clock_s(text) -> float:
    """Parse a time from the scenario start: ``"08:30"`` (HH:MM, hours may pass 24),
    ``"08:30:15"``, ``"90min"``, ``"1h30min"``, ``"45s"`` or seconds.

    Raises
    ------
    ValueError
        Anything else; the message lists the accepted forms.

    Examples
    --------
    >>> parse_clock_s("08:30"), parse_clock_s("26:00"), parse_clock_s("2h"), parse_clock_s("00:00:30")
    (30600.0, 93600.0, 7200.0, 30.0)
    """
    import re

    t = str(text).strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+):(\d{2})(?::(\d{2}))?", t)
    if m:
        h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if mi < 60 and s < 60:
            return float(h * 3600 + mi * 60 + s)
    else:
        try:
            value = parse_duration_s(t)
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raise ValueError(f"time {text!r}; expected HH:MM from the scenario start (e.g. 08:30), seconds (e.g. 1800), "
                     "or a duration such as 90min, 1h30min, 45s")


def fmt_min(seconds) -> str:
    """A duration in seconds as people read it: ``"7.5 min"``, ``"-"`` for None or NaN.

    >>> fmt_min(450.0), fmt_min(float("nan"))
    ('7.5 min', '-')
    """
    return "-" if seconds is None or not math.isfinite(seconds) else f"{seconds / 60:.1f} min"


def fmt_pct(share) -> str:
    """A share as a percentage: ``"12.5 %"``, ``"-"`` for None or NaN.

    >>> fmt_pct(0.125)
    '12.5 %'
    """
    return "-" if share is None or not math.isfinite(share) else f"{100 * share:.1f} %"
