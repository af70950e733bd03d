"""``twin.load_city``: one entry point for every kind of road-network source."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

from twin.data.network import RawNetwork
from twin.errors import NetworkError, UnknownCityError
from twin.graph import City

__all__ = ["load_city", "city_sources"]

logger = logging.getLogger(__name__)

_SYNTH_RE = re.compile(r"^(grid|ring):(\d+)x(\d+)$")


def city_sources() -> str:
    """A one-paragraph description of what ``load_city`` accepts (used in errors and help)."""
    from twin.data.embedded import EMBEDDED_CITIES

    return ("a TNTP *_net.tntp path, an OpenStreetMap .osm/.osm.gz/.osm.bz2 path, a *_links.csv path (with "
            "*_nodes.csv beside it), a networkx DiGraph or "
            "MultiDiGraph, a synthetic spec 'grid:NXxNY' or 'ring:RINGSxSPOKES', or an embedded city name "
            f"({', '.join(sorted(EMBEDDED_CITIES))})")


def _check_options(reader, options, what, exclude=()):
    """Refuse options ``reader`` does not take as keywords, listing those it does."""
    params = inspect.signature(reader).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [k for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k not in exclude]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NetworkError(f"unknown option(s) {unknown} for {what}; accepted: {accepted}")


def _call(reader, args, options, what):
    _check_options(reader, options, what)
    return reader(*args, **options)


def load_city(source, **options) -> City:
    """Load a road network and compile it into a :class:`~twin.graph.City`.

    Parameters
    ----------
    source : str, Path, networkx.DiGraph, RawNetwork or City
        - a TNTP ``*_net.tntp`` path (options of :func:`twin.data.tntp.read_tntp_net`:
          ``time_unit``, ``length_unit``, ``coord_unit``, ``duplicates``, ``name``);
        - an OpenStreetMap XML path ``.osm``, ``.osm.gz`` or ``.osm.bz2`` (options of
          :func:`twin.data.osm.read_osm`: ``include_service``, ``keep``, ``simplify``, ...);
        - a networkx ``DiGraph``/``MultiDiGraph`` with ``length_m``, ``free_speed_mps``,
          ``lanes``, ``capacity_veh_per_h`` on edges and ``x``, ``y`` (metres) on nodes;
        - a synthetic spec ``"grid:NXxNY"`` or ``"ring:RINGSxSPOKES"`` (options of
          :func:`twin.data.synthetic.grid_city` / ``ring_radial_city``, e.g. ``seed``);
        - the name of an embedded city (``"hefei-baohe"``, the default city).
    **options
        Passed to the reader; an option it does not take is an error.

    Returns
    -------
    City

    Raises
    ------
    UnknownCityError
        ``source`` names no embedded city and no existing file.
    NetworkError
        The source is malformed or violates a constraint (the message says where).
    TypeError
        ``source`` is of an unsupported type.

    Examples
    --------
    >>> import twin
    >>> city = twin.load_city("grid:3x3")
    >>> city.n_nodes, city.n_links
    (9, 24)
    """
    if isinstance(source, City):
        if options:
            raise NetworkError(f"options {sorted(options)} cannot apply to an already compiled City")
        return source
    if isinstance(source, RawNetwork):
        return City.from_raw(source)
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a hard dependency
        nx = None
    if nx is not None and isinstance(source, nx.Graph):
        from twin.data.nxgraph import read_networkx

        return City.from_raw(_call(read_networkx, (source,), options, "a networkx graph"))
    if not isinstance(source, (str, Path)):
        raise TypeError(f"load_city(source): got {type(source).__name__}; expected {city_sources()}")

    text = str(source)
    from twin.data.embedded import EMBEDDED_CITIES

    if isinstance(source, str) and text in EMBEDDED_CITIES:
        return City.from_raw(_read_embedded_checked(text, options))
    mt = _SYNTH_RE.match(text) if isinstance(source, str) else None
    if mt:
        from twin.data import synthetic

        kind, a, b = mt.group(1), int(mt.group(2)), int(mt.group(3))
        reader = synthetic.grid_city if kind == "grid" else synthetic.ring_radial_city
        return City.from_raw(_call(reader, (a, b), options, f"synthetic city {text!r}"))

    path = Path(source)
    if not path.exists():
        import difflib

        close = difflib.get_close_matches(text, list(EMBEDDED_CITIES), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownCityError(f"{text!r} is neither an existing file nor an embedded city; {hint}expected "
                               f"{city_sources()}")
    lower = path.name.lower()
    if lower.endswith(".tntp"):
        from twin.data.tntp import read_tntp_net

        return City.from_raw(_call(read_tntp_net, (path,), options, "a TNTP network"))
    if lower.endswith("_links.csv"):
        from twin.data.csvnet import read_csv_network

        return City.from_raw(_call(read_csv_network, (path,), options, "a CSV network"))
    if lower.endswith((".osm", ".osm.gz", ".osm.bz2", ".osm.xml")):
        from twin.data.osm import read_osm

        return City.from_raw(_call(read_osm, (path,), options, "an OpenStreetMap file"))
    raise NetworkError(f"{path}: unrecognised network file type; expected {city_sources()}")


def _read_embedded_checked(name, options):
    from twin.data.embedded import read_embedded
    from twin.data.osm import read_osm

    _check_options(read_osm, options, f"embedded city {name!r}", exclude=("name",))
    return read_embedded(name, **options)
