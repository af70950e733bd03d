"""One KPI vocabulary for what people read: each KPI's label, display unit and scale.

KPIs keep SI units and plain names in results (``response_mean_s``, ``lost_share``); the tables
of ``twin replicate`` / ``twin compare`` and the ``compare`` chart show them in display units, by
these rules on the name:

- ``..._s`` -> minutes (``response_mean`` in min), ``..._h`` -> hours, ``..._mps`` -> km/h,
  ``..._m`` -> km;
- shares (the name holds ``share``, ``within``, ``blocking``, ``utilisation``, ``gridlock`` or
  ``attack_rate``) -> % (a difference of shares in percentage points);
- anything else keeps its value (counts, indices, R0).

Settings echoed back (:func:`is_constant`: the reporting window, response targets, the epidemic's
persons and beds) are not outcomes, so the tables leave them out.
"""

from __future__ import annotations

import math

__all__ = ["kpi_display", "is_constant", "format_value", "SHARE_WORDS"]

#: Words that make a KPI a share in [0, 1] (shown in %).
SHARE_WORDS = ("share", "within", "blocking", "utilisation", "gridlock", "attack_rate")
_CONSTANTS = ("window_start_s", "window_end_s", "epidemic_persons", "epidemic_ward_beds", "epidemic_icu_beds")


def is_constant(name) -> bool:
    """A setting echoed among the KPIs (a window, a target, a capacity), not an outcome
    (``ems_`` prefixed as in a results file's ``/summary``, or not)."""
    return name.removeprefix("ems_") in _CONSTANTS or name.endswith("_target_s")


def kpi_display(name):
    """``(label, unit, factor)``: the KPI's name without its unit suffix, its display unit and
    the factor from the stored value to it.

    >>> kpi_display("response_mean_s")
    ('response_mean', 'min', 0.016666666666666666)
    >>> kpi_display("lost_share")
    ('lost_share', '%', 100.0)
    """
    if any(w in name for w in SHARE_WORDS):
        return name, "%", 100.0
    for suffix, unit, factor in (("_mps", "km/h", 3.6), ("_s", "min", 1.0 / 60.0), ("_h", "h", 1.0),
                                 ("_m", "km", 1e-3)):
        if name.endswith(suffix):
            return name[:-len(suffix)], unit, factor
    return name, "", 1.0


def format_value(value, unit) -> str:
    """A display value: minutes, hours and km to 2 decimals, % to 1, large counts with thousands
    separators, others to 4 significant digits; NaN as ``-``."""
    if isinstance(value, bool):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "-"
    if unit in ("min", "h", "km", "km/h"):
        return f"{v:,.2f}"
    if unit == "%":
        return f"{v:.1f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"
