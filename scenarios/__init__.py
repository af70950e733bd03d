"""Scenario specs and gallery scripts (later issues)."""

__all__: list[str] = []
