"""The registry of chart kinds (:data:`CHARTS`, :func:`register_chart`), apart from the charts
so that modules adding kinds (:mod:`twin.viz.forecast_charts`) and :mod:`twin.viz.charts`,
which loads them, do not import each other."""

from __future__ import annotations

__all__ = ["CHARTS", "register_chart"]

#: Chart kinds: name -> (draw function ``draw(res, fig, prefix)``, one-line description).
CHARTS: dict = {}


def register_chart(name, description):
    """Register ``draw(res, fig, prefix)`` as chart kind ``name`` (a decorator)."""
    def decorate(func):
        CHARTS[name] = (func, description)
        return func
    return decorate
