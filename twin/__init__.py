"""twin — a city-operations digital twin.

Population, mesoscopic traffic, hospitals and emergency response on one city road graph
and one clock. The core API:

- :func:`load_city` — read a road network (TNTP, OpenStreetMap, networkx, synthetic, or an
  embedded city) into a compiled :class:`City`;
- :meth:`City.travel_times`, :meth:`City.path` — routing on free-flow or any link costs;
- :func:`simulate_traffic` — mesoscopic per-vehicle traffic; :func:`static_assignment` —
  static user equilibrium (bi-conjugate Frank-Wolfe);
- :class:`ResultsWriter`, :func:`open_results` — the HDF5 results store.

``import twin`` never loads PyVista or VTK: ``twin.viz`` is imported on first use.
"""

from twin._version import __version__
from twin.errors import NetworkError, ResultsError, ScenarioError, TwinError, UnknownCityError, UnknownNodeError
from twin.graph import City, write_network
from twin.loading import load_city

__all__ = [
    "__version__",
    "City",
    "load_city",
    "write_network",
    "open_results",
    "simulate_traffic",
    "static_assignment",
    "fixed_time_plan",
    "synthesize_population",
    "read_population",
    "run",
    "resume",
    "from_snapshot",
    "replicate",
    "compare",
    "SignalPlan",
    "ResultsWriter",
    "TwinError",
    "NetworkError",
    "ScenarioError",
    "ResultsError",
    "UnknownCityError",
    "UnknownNodeError",
]

_LAZY = {
    "open_results": ("twin.results", "open_results"),
    "simulate_traffic": ("twin.traffic", "simulate_traffic"),
    "static_assignment": ("twin.assignment", "static_assignment"),
    "fixed_time_plan": ("twin.signals", "fixed_time_plan"),
    "synthesize_population": ("twin.agents.population", "synthesize_population"),
    "read_population": ("twin.agents.population", "read_population"),
    "run": ("twin.runner", "run"),
    "resume": ("twin.runner", "resume"),
    "from_snapshot": ("twin.runner", "from_snapshot"),
    "replicate": ("twin.ensemble", "replicate"),
    "compare": ("twin.ensemble", "compare"),
    "SignalPlan": ("twin.signals", "SignalPlan"),
    "ResultsWriter": ("twin.results", "ResultsWriter"),
}


def __dir__():
    """The eager names and the lazy ones (:data:`_LAZY`, ``viz``), so tab completion and
    ``dir(twin)`` show everything ``twin.<name>`` gives."""
    return sorted(set(globals()) | set(_LAZY) | {"viz"})


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name == "viz":
        import importlib

        return importlib.import_module("twin.viz")
    raise AttributeError(f"module 'twin' has no attribute {name!r}")
