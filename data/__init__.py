"""Loaders of foreign network formats and the small embedded data.

Layer: below the core. Imports numpy, scipy, networkx, the standard library, ``twin.errors`` and
``twin.units`` only.
"""

__all__: list[str] = []
