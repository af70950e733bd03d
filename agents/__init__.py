"""Actors of the city: units, hospitals, dispatch centres, population and demand (later issues)."""

__all__: list[str] = []
