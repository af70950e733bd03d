"""Reader of road networks as two CSV tables (nodes and links).

``*_links.csv`` columns: ``from_node``, ``to_node``, ``length_m``, ``speed_mps``,
``lanes`` and optionally ``link_id``, ``capacity_veh_per_h`` (whole link) and
``jam_density_veh_per_km_per_lane``. ``*_nodes.csv`` beside it (same prefix) columns:
``node_id``, ``x_m``, ``y_m``. This is the neutral format of the shared traffic anchor
workload, which UXsim and SUMO read too.

When a link has no capacity, ``capacity_per_lane_veh_per_h`` (default 1,800 veh/h/lane,
the value used by the shared anchor measurements; HCM 6th ed. base saturation flow is
1,900 pc/h/ln) times lanes is used.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from twin.data.network import RawNetwork
from twin.errors import NetworkError

__all__ = ["read_csv_network"]

REQUIRED_LINK_COLUMNS = ("from_node", "to_node", "length_m", "speed_mps", "lanes")


def _read(path):
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise NetworkError(f"{path}: empty file; expected a header row")
            rows = list(reader)
    except FileNotFoundError:
        raise NetworkError(f"CSV file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise NetworkError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a CSV file") from None
    except csv.Error as exc:
        raise NetworkError(f"{path}: not a readable CSV file: {exc}") from None
    return [h.strip() for h in header], rows


def _column(path, header, rows, name, conv=float):
    j = header.index(name)
    out = []
    for i, r in enumerate(rows, start=2):
        try:
            v = conv(r[j])
        except (ValueError, IndexError):
            raise NetworkError(f"{path}, line {i}: column {name!r} = {r[j] if j < len(r) else ''!r}; "
                               f"expected a number") from None
        if conv is int and not _INT64_MIN <= v <= _INT64_MAX:
            raise NetworkError(f"{path}, line {i}: column {name!r} = {v}; expected an integer id in "
                               f"{_INT64_MIN}..{_INT64_MAX} (64-bit)")
        out.append(v)
    return np.array(out, dtype=np.int64 if conv is int else np.float64)


_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def read_csv_network(links_path, *, nodes_path=None, capacity_per_lane_veh_per_h=1800.0, name=None) -> RawNetwork:
    """Read ``*_links.csv`` and its ``*_nodes.csv`` (see the module docstring).

    Raises
    ------
    NetworkError
        Missing file or column (the message lists the required columns), a
        non-numeric value (file and line), or a link naming an unknown node.
    """
    links_path = Path(links_path)
    if nodes_path is None:
        stem = links_path.name
        if not stem.endswith("_links.csv"):
            raise NetworkError(f"{links_path}: expected a file named *_links.csv with *_nodes.csv beside it "
                               f"(or pass nodes_path=)")
        nodes_path = links_path.with_name(stem[: -len("_links.csv")] + "_nodes.csv")
    nh, nrows = _read(nodes_path)
    for c in ("node_id", "x_m", "y_m"):
        if c not in nh:
            raise NetworkError(f"{nodes_path}: no column {c!r}; expected node_id, x_m, y_m")
    if not nrows:
        raise NetworkError(f"{nodes_path}: no node rows after the header; expected node_id, x_m, y_m rows")
    node_ids = _column(nodes_path, nh, nrows, "node_id", int)
    x = _column(nodes_path, nh, nrows, "x_m")
    y = _column(nodes_path, nh, nrows, "y_m")
    lh, lrows = _read(links_path)
    missing = [c for c in REQUIRED_LINK_COLUMNS if c not in lh]
    if missing:
        raise NetworkError(f"{links_path}: missing column(s) {missing}; required {list(REQUIRED_LINK_COLUMNS)}")
    frm = _column(links_path, lh, lrows, "from_node", int)
    to = _column(links_path, lh, lrows, "to_node", int)
    order = np.argsort(node_ids)
    pos_f = np.searchsorted(node_ids[order], frm)
    pos_t = np.searchsorted(node_ids[order], to)
    for pos, ids, what in ((pos_f, frm, "from_node"), (pos_t, to, "to_node")):
        pos = np.minimum(pos, len(order) - 1)
        bad = np.flatnonzero(node_ids[order][pos] != ids)
        if len(bad):
            raise NetworkError(f"{links_path}, line {bad[0] + 2}: {what} {ids[bad[0]]} is not in {nodes_path.name}")
    tail = order[np.minimum(pos_f, len(order) - 1)]
    head = order[np.minimum(pos_t, len(order) - 1)]
    lanes = _column(links_path, lh, lrows, "lanes")
    cap = (_column(links_path, lh, lrows, "capacity_veh_per_h") if "capacity_veh_per_h" in lh
           else lanes * float(capacity_per_lane_veh_per_h))
    kj = (_column(links_path, lh, lrows, "jam_density_veh_per_km_per_lane")
          if "jam_density_veh_per_km_per_lane" in lh else None)
    attrs = {"source_line": np.arange(2, len(lrows) + 2)}
    if "link_id" in lh:
        j = lh.index("link_id")
        attrs["link_id"] = np.array([r[j] for r in lrows], dtype=object)
    return RawNetwork(
        name=name or links_path.name[: -len("_links.csv")], source=str(links_path), node_ids=node_ids, x_m=x, y_m=y,
        link_from_idx=tail, link_to_idx=head, length_m=_column(links_path, lh, lrows, "length_m"),
        free_speed_mps=_column(links_path, lh, lrows, "speed_mps"), lanes=lanes, capacity_veh_per_h=cap,
        jam_density_veh_per_km_per_lane=kj, link_attrs=attrs, meta={"format": "csv"},
    )
