"""PyVista views built from results files (issue [viz]; nothing here yet).

This package is a side branch: it reads ``twin`` graphs and results files and never drives a
simulation; ``import twin`` never imports it.
"""

__all__: list[str] = []
