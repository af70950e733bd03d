"""Error types raised by ``twin`` at its boundaries.

Every message says *what* is wrong, *where* (file and line, element id, field name),
what was found and what is accepted. Value problems subclass :class:`ValueError`;
wrong types raise :class:`TypeError` directly.

This module imports nothing of ours, so every layer (``twin.data`` included) may raise
these types.
"""

__all__ = [
    "TwinError",
    "NetworkError",
    "ScenarioError",
    "ResultsError",
    "DemandError",
    "OptimisationError",
    "InfeasibleError",
    "UnknownCityError",
    "UnknownNodeError",
]


class TwinError(Exception):
    """Base class of every error raised on purpose by ``twin``."""


class NetworkError(TwinError, ValueError):
    """A road network (file, graph or arrays) is malformed or violates a constraint."""


class UnknownCityError(NetworkError, LookupError):
    """A city name is neither an embedded city nor a readable path."""


class UnknownNodeError(NetworkError, LookupError):
    """A node id given by the caller is not in the city graph."""


class ScenarioError(TwinError, ValueError):
    """A scenario file or parameter set is malformed."""


class CheckpointNotNow(ScenarioError):
    """The state at this moment cannot be written yet (e.g. a patient boarding in the ED): the
    run skips this checkpoint, keeps the previous one and goes on."""


class ResultsError(TwinError, ValueError):
    """A results file is missing, malformed, or used in a way its format does not allow."""


class DemandError(TwinError, ValueError):
    """Travel demand (trips, OD tables) or a simulation parameter is malformed."""


class OptimisationError(TwinError, ValueError):
    """An optimisation problem (costs, demand, sites, budgets) is malformed."""


class InfeasibleError(OptimisationError):
    """An optimisation problem is well formed but has no feasible plan (e.g. a coverage standard no site meets)."""
