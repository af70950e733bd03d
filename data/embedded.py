"""The small cities shipped inside the package (no download, no setup).

=================  ==========================================================================
name               what
=================  ==========================================================================
``hefei-baohe``    Real OpenStreetMap extract of Hefei, Baohe District (around Luogang and
                   Hefei South station), drivable roads incl. service, largest strongly
                   connected component, degree-2 nodes collapsed, 3 x 3 grid districts.
                   © OpenStreetMap
                   contributors, ODbL 1.0 (see ``cities/ATTRIBUTION.md``). The default city.
=================  ==========================================================================
"""

from __future__ import annotations

from importlib import resources

from twin.data.network import grid_districts
from twin.errors import UnknownCityError

__all__ = ["EMBEDDED_CITIES", "DEFAULT_CITY", "embedded_city_path", "read_embedded"]

#: Embedded city name -> (file in ``twin/data/cities``, one-line description).
EMBEDDED_CITIES = {
    "hefei-baohe": ("hefei-baohe.osm.gz",
                    "Hefei, Baohe District (OpenStreetMap, (c) OpenStreetMap contributors, ODbL 1.0)"),
}

#: Name of the city used when none is given.
DEFAULT_CITY = "hefei-baohe"


def embedded_city_path(name: str):
    """Path of an embedded city's data file.

    Raises
    ------
    UnknownCityError
        ``name`` is not an embedded city; the message lists the embedded names.
    """
    try:
        fname, _ = EMBEDDED_CITIES[name]
    except KeyError:
        raise UnknownCityError(f"unknown embedded city {name!r}; embedded cities are {sorted(EMBEDDED_CITIES)} "
                               "(or give a path to a *_net.tntp, .osm, .osm.gz or .osm.bz2 file, "
                               "or a synthetic spec such as 'grid:10x10')") from None
    return resources.files("twin.data").joinpath("cities", fname)


def read_embedded(name: str, **options):
    """Read an embedded city into a :class:`~twin.data.network.RawNetwork`."""
    from twin.data.osm import read_osm

    path = embedded_city_path(name)
    with resources.as_file(path) as p:
        raw = read_osm(p, name=name, **options)
    raw.meta["embedded"] = name
    # OSM carries no districts; cut the extent into 3 x 3 (twin.data.network.grid_districts).
    zone_of_node, zone_ids, central = grid_districts(raw.x_m, raw.y_m, 3, 3)
    raw.zone_of_node, raw.zone_ids = zone_of_node, zone_ids
    raw.meta["districts"] = "3 x 3 equal rectangles over the extent"
    raw.meta["central_zone_ids"] = zone_ids[central].tolist()
    raw.meta["peripheral_zone_ids"] = zone_ids[~central].tolist()
    return raw
