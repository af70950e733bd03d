"""Scenario spec machinery, free of any domain: settings, tables, validation, overrides, TOML.

A *table* is a frozen dataclass whose fields are :func:`setting` s (a default, a *kind*, a
description with units, bounds); a flow declares the tables it owns with :class:`Table`.
This module turns a parsed TOML document into validated tables (:func:`parse_tables`),
applies dotted ``--set`` overrides (:func:`apply_overrides`), writes plain data back as TOML
(:func:`dump_toml`) and lists every key (:func:`table_fields`). It knows the generic kinds
below; a flow with a domain value (a duration distribution, unit counts ...) passes its own
converter as ``setting(..., convert=fn)``, ``fn(value, where) -> value``.

Kinds: ``str``, ``bool``, ``choice`` (``choices=``), ``int``, ``float`` (``minimum=``,
``maximum=``, ``strict=`` for a strict lower bound), ``floats`` (a list, ``min_len=``,
``max_len=``), ``node`` (a city node id: int or str), ``ids`` (a list of ids), ``table``
(id -> number >= 0), ``rates`` (a number or such a table), ``profiles`` (id -> 24
multipliers). A setting with ``subkeys="create"`` (tables) or ``subkeys="existing"``
accepts overrides of one entry (``calls.rate_per_h.5=2``).

Example: MATSim's ``ConfigGroup`` (one group per module, a described parameter each).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import numbers
import tomllib
from dataclasses import dataclass, field, fields, replace

import numpy as np

from twin.errors import ScenarioError

__all__ = ["resolve_paths", "check_input_files", "parse_toml", "check_nesting", "MAX_NESTING", "input_files", "setting", "Table", "convert", "parse_group", "parse_tables", "apply_overrides", "dump_toml",
           "toml_value", "override_list", "resolved_data", "table_fields", "table_field_details", "field_default_text",
           "did_you_mean", "where"]

_SUBKEY_KINDS = {"table": "create", "rates": "create", "profiles": "create"}


def setting(default, kind, description, **opts):
    """A dataclass field of a scenario table: ``kind`` (see the module docstring), a
    ``description`` with units, and options (``minimum``, ``maximum``, ``strict``,
    ``choices``, ``min_len``, ``max_len``, ``convert``, ``plain``, ``subkeys``; ``path=True``
    marks a file name, resolved against the scenario file's folder, :func:`resolve_paths`)."""
    return field(default=default, metadata={"kind": kind, "description": description, **opts})


@dataclass(frozen=True)
class Table:
    """A top-level scenario table owned by a flow.

    Attributes
    ----------
    name : str
        The TOML name (``traffic`` for ``[traffic]``, ``stations`` for ``[[stations]]``).
    group : type
        Its frozen dataclass of :func:`setting` fields.
    array : bool
        An array of tables (``[[name]]``); items without a ``name`` get ``<name>0`` ...
    optional : bool
        Absent from the document: ``None`` (a plain table) instead of all defaults.
    required : tuple of (str, str)
        Keys each item must give, with what they are: ``(("node", "the city node id"),)``.
    """

    name: str
    group: type
    array: bool = False
    optional: bool = False
    required: tuple = ()


def did_you_mean(key, accepted) -> str:
    close = difflib.get_close_matches(str(key), list(accepted), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def where(source, table, index=None, name=None) -> str:
    """The location of a table in messages: ``hefei_day.toml: [stations.0] ('central')``."""
    label = f"[{table}]" if index is None else f"[{table}.{index}]" + (f" ('{name}')" if name else "")
    return f"{source}: {label}"


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _bound_text(meta):
    lo, hi, strict = meta.get("minimum"), meta.get("maximum"), meta.get("strict", False)
    parts = []
    if lo is not None:
        parts.append(f"{'>' if strict else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"<= {hi:g}")
    return " and ".join(parts)


def _in_bounds(v, meta):
    lo, hi, strict = meta.get("minimum"), meta.get("maximum"), meta.get("strict", False)
    if lo is not None and (v < lo or (strict and v == lo)):
        return False
    return hi is None or v <= hi


def _floats(value, meta, bad):
    lo_n, hi_n = meta.get("min_len", 0), meta.get("max_len")
    n_text = f"{lo_n}" if lo_n == hi_n else f"{lo_n} to {hi_n}"
    if not isinstance(value, (list, tuple)) or not (lo_n <= len(value) <= (hi_n or len(value))):
        bad(f"a list of {n_text} numbers {_bound_text(meta)}")
    for v in value:
        if not _is_number(v) or not math.isfinite(v) or not _in_bounds(v, meta):
            bad(f"a list of {n_text} numbers {_bound_text(meta)} (found {v!r})")
    return tuple(float(v) for v in value)


def _profiles(value, where_, bad):
    if not isinstance(value, dict):
        bad("a table zone id -> list of 24 multipliers >= 0")
    out = {}
    for k, v in value.items():
        if (not isinstance(v, (list, tuple)) or len(v) != 24
                or not all(_is_number(x) and math.isfinite(x) and x >= 0 for x in v)):
            raise ScenarioError(f"{where_}.{k} = {v!r}; expected a list of 24 multipliers >= 0")
        out[str(k)] = tuple(float(x) for x in v)
    return out


def _id_table(value, kind, where_, bad):
    if kind == "rates" and _is_number(value):
        if not math.isfinite(value) or value < 0:
            bad("a number >= 0 or a table zone id -> number >= 0")
        return float(value)
    if not isinstance(value, dict):
        bad("a table zone id -> number >= 0" + (" or one number >= 0" if kind == "rates" else ""))
    out = {}
    for k, v in value.items():
        if not _is_number(v) or not math.isfinite(v) or v < 0:
            raise ScenarioError(f"{where_}.{k} = {v!r}; expected a number >= 0")
        out[str(k)] = float(v)
    return out


def convert(value, meta, where_):
    """Check one value against its setting's kind (or its ``convert``); returns the value."""
    if "convert" in meta:
        return meta["convert"](value, where_)
    kind = meta["kind"]

    def bad(expected):
        raise ScenarioError(f"{where_} = {value!r}; expected {expected}")

    if kind == "str":
        return value if isinstance(value, str) else bad("a string")
    if kind == "bool":
        return value if isinstance(value, bool) else bad("true or false")
    if kind == "choice":
        return value if value in meta["choices"] else bad("one of " + ", ".join(repr(c) for c in meta["choices"]))
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not _in_bounds(value, meta):
            bad(f"an integer {_bound_text(meta)}")
        return int(value)
    if kind == "float":
        if isinstance(value, str) and where_.endswith("_s"):       # a duration: "24h", "90min", "30s"
            from twin.units import parse_duration_s

            try:
                value = parse_duration_s(value)
            except ValueError:
                bad(f"a number of seconds or a duration such as '24h', '90min', '30s' {_bound_text(meta)}")
        if not _is_number(value) or not math.isfinite(value) or not _in_bounds(value, meta):
            bad(f"a finite number {_bound_text(meta)}")
        return float(value)
    if kind == "floats":
        return _floats(value, meta, bad)
    if kind == "node":
        return value if (isinstance(value, str) or (isinstance(value, numbers.Integral)
                                                    and not isinstance(value, bool))) else bad("a node id")
    if kind == "ids":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, numbers.Integral)) for v in value):
            bad("a list of zone ids")
        return tuple(value)
    if kind == "profiles":
        return _profiles(value, where_, bad)
    if kind in ("table", "rates"):
        return _id_table(value, kind, where_, bad)
    raise AssertionError(f"setting kind {kind!r} has no converter; pass convert=")  # pragma: no cover


def parse_group(cls, data, where_):
    """Build a table's group from a TOML table: unknown keys are errors (with a suggestion)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where_}: found {type(data).__name__} {data!r}; expected a table")
    names = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise ScenarioError(f"unknown key '{key}' in {where_}; {did_you_mean(key, names)}"
                                f"accepted keys: {', '.join(names)}")
        kwargs[key] = convert(value, names[key].metadata, f"{where_} {key}")
    return cls(**kwargs)


def _check_renamed(data, renamed, source):
    for old, new in renamed.items():
        table, key = old.split(".", 1)
        if isinstance(data.get(table), dict) and key in data[table]:
            raise ScenarioError(f"{where(source, table)} {key}: this key moved to [{new.split('.')[0]}] "
                                f"{new.split('.', 1)[1]}; write it there")


def _parse_array(table, items, source):
    if isinstance(items, dict) or not isinstance(items, list):
        raise ScenarioError(f"{where(source, table.name)}: expected an array of tables [[{table.name}]]")
    groups = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        g = parse_group(table.group, item, where(source, table.name, i, name))
        if not g.name:
            g = dataclasses.replace(g, name=f"{table.name.rstrip('s')}{i}")
        for key, what in table.required:
            if getattr(g, key) is None:
                raise ScenarioError(f"{where(source, table.name, i, g.name)}: missing '{key}' ({what})")
        groups.append(g)
    return groups


def parse_tables(data: dict, source: str, tables, renamed=None) -> dict:
    """Validate a scenario document into its groups: table name -> group (a list for arrays,
    ``None`` for an absent optional table), in the order of ``tables``.

    ``renamed`` maps moved keys (``"traffic.crash_call_type"``) to their new place
    (``"crashes.call_type"``), so an old file gets a message saying where the key went.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a TOML document of tables; found {type(data).__name__}")
    by_name = {t.name: t for t in tables}
    _check_renamed(data, renamed or {}, source)
    for key in data:
        if key not in by_name:
            raise ScenarioError(f"unknown table '{key}' in {source}; {did_you_mean(key, by_name)}"
                                f"accepted tables: {', '.join(by_name)}")
    out = {}
    for t in tables:
        if t.array:
            out[t.name] = _parse_array(t, data.get(t.name, []), source)
        elif t.optional and t.name not in data:
            out[t.name] = None
        else:
            out[t.name] = parse_group(t.group, data.get(t.name, {}), where(source, t.name))
    return out


def table_fields(tables) -> dict:
    """Every key, ``"table.key" -> description`` (for docs and ``twin run --keys``)."""
    return {f"{t.name}.{f.name}": f.metadata["description"] for t in tables for f in fields(t.group)}


def field_default_text(f) -> str:
    """A setting's default as TOML text (``-`` when it has none: None or empty)."""
    value = f.default
    if value is None or value == () or value == "":
        return "-"
    plain = f.metadata.get("plain")
    try:
        return toml_value(plain(value) if plain else value)
    except TypeError:
        return str(value)


def table_field_details(tables) -> dict:
    """Every key, ``"table.key" -> (kind, default as TOML text, description)``."""
    return {f"{t.name}.{f.name}": (f.metadata["kind"], field_default_text(f), f.metadata["description"])
            for t in tables for f in fields(t.group)}


# --------------------------------------------------------------------------------------
# --set overrides

#: The deepest nesting of arrays and tables a scenario may have (a scenario needs about 4).
MAX_NESTING = 32


def check_nesting(data, where) -> None:
    """A ScenarioError when ``data`` (parsed TOML) nests deeper than :data:`MAX_NESTING`
    levels (walked without recursion, so no RecursionError on hostile input)."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ScenarioError(f"{where}: arrays or tables nested more than {MAX_NESTING} levels deep; a scenario "
                                f"needs a few")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def parse_toml(text, where) -> dict:
    """``tomllib.loads`` with clear errors: invalid TOML, or nesting too deep (checked on the text
    before parsing, so the parser never recurses that far)."""
    depth = 0
    deepest = 0
    for ch in text:                       # brackets in strings count too: a generous upper bound
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    if deepest > 4 * MAX_NESTING:
        raise ScenarioError(f"{where}: arrays or tables nested more than {MAX_NESTING} levels deep; a scenario "
                            f"needs a few")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: arrays or tables nested too deeply") from None
    check_nesting(data, where)
    return data


def _parse_override_value(text, meta):
    kind = meta.get("kind") if meta else None
    try:
        value = parse_toml(f"v = {text}", f"--set value {str(text)[:40]!r}")["v"]
    except ScenarioError as exc:
        if "nested" in str(exc):
            raise
        value = text
    if kind in ("str", "choice") and not isinstance(value, str):
        value = text
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind == "node" and isinstance(value, float):
        value = text
    return value


def _array_item(data, table, rest, where_, source):
    items = data.setdefault(table, [])
    if not rest:
        raise ScenarioError(f"{where_}: expected {table}.<index or name>.<key>")
    sel = rest[0]
    if not items:
        raise ScenarioError(f"{where_}: {source} has no [[{table}]] items to override")
    names = [it.get("name") for it in items]
    if sel.isdigit() and int(sel) < len(items):
        return items[int(sel)]
    if sel in names:
        return items[names.index(sel)]
    raise ScenarioError(f"{where_}: no [[{table}]] item '{sel}' in {source}; expected an index "
                        f"0..{len(items) - 1} or a name in {names}")


def _set_key(parent, cls, table, rest, text, where_, source):
    if not rest:
        raise ScenarioError(f"{where_}: expected a key of [{table}]: {', '.join(f.name for f in fields(cls))}")
    names = {f.name: f for f in fields(cls)}
    if rest[0] not in names:
        raise ScenarioError(f"{where_}: unknown key '{table}.{rest[0]}' in {source}; "
                            f"{did_you_mean(rest[0], names)}accepted keys of [{table}]: {', '.join(names)}")
    meta = names[rest[0]].metadata
    subkeys = meta.get("subkeys", _SUBKEY_KINDS.get(meta["kind"]))
    if len(rest) == 1:
        parent[rest[0]] = _parse_override_value(text, meta)
    elif len(rest) == 2 and subkeys:
        sub = parent.get(rest[0])
        if sub is None and subkeys == "create":
            sub = parent[rest[0]] = {}
        if not isinstance(sub, dict):
            raise ScenarioError(f"{where_}: '{table}.{rest[0]}' is {sub!r}, not a table; set it whole "
                                f"({table}.{rest[0]}=...)")
        sub[rest[1]] = _parse_override_value(text, {"kind": "str" if rest[1] == "kind" else "float"})
    else:
        raise ScenarioError(f"{where_}: '{table}.{rest[0]}' has no sub-key '{'.'.join(rest[1:])}'")


def apply_overrides(data: dict, overrides, tables, source="scenario") -> dict:
    """Apply dotted ``key=value`` overrides to a scenario dict (a deep copy is returned).

    Parameters
    ----------
    data : dict
        A parsed scenario (``tomllib.loads`` output).
    overrides : sequence of str or dict
        ``"run.seed=3"``, ``"hospitals.0.beds=20"``, ``"hospitals.central.beds=20"`` (an
        array item by index or name), ``"calls.rate_per_h.5=2.0"`` (a zone's entry),
        ``"hospitals.0.length_of_stay.mean_s=7200"`` (a field of a distribution table),
        ``"traffic.random_trips=2000"`` (creates ``[traffic]`` when absent). Values are TOML
        values (``3``, ``2.5``, ``true``, ``"x"``, ``[1, 2]``); anything that does not parse
        is taken as a string (``city.name=grid:6x6``). Integers given for float keys become
        floats.
    tables : sequence of Table
        The tables the keys may name.

    Raises
    ------
    ScenarioError
        A malformed override, an unknown table or key (with a suggestion), or an array index
        out of range.

    Examples
    --------
    >>> @dataclass(frozen=True)
    ... class Run:
    ...     seed: int = setting(0, "int", "run seed")
    ...     until_s: float = setting(86400.0, "float", "horizon, seconds")
    >>> apply_overrides({"run": {"seed": 1}}, ["run.seed=3", "run.until_s=3600"], [Table("run", Run)])["run"]
    {'seed': 3, 'until_s': 3600.0}
    """
    data = json.loads(json.dumps(data))  # a deep copy of plain TOML data
    by_name = {t.name: t for t in tables}
    if isinstance(overrides, dict):
        overrides = [f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in overrides.items()]
    for item in overrides or ():
        if not isinstance(item, str) or "=" not in item:
            raise ScenarioError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. run.seed=3")
        key, text = (s.strip() for s in item.split("=", 1))
        parts = key.split(".")
        where_ = f"--set {key}"
        table = parts[0]
        if table not in by_name:
            raise ScenarioError(f"{where_}: unknown table '{table}' in {source}; {did_you_mean(table, by_name)}"
                                f"accepted tables: {', '.join(by_name)}")
        t = by_name[table]
        rest = parts[1:]
        if t.array:
            parent = _array_item(data, table, rest, where_, source)
            rest = rest[1:]
        else:
            parent = data.setdefault(table, {})
        _set_key(parent, t.group, table, rest, text, where_, source)
    return data


def override_list(overrides) -> list:
    """Overrides as a list of ``key=value`` strings (from None, a string, a dict or a list)."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if isinstance(v, str) else toml_value(v)}" for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


# --------------------------------------------------------------------------------------
# TOML writing (for the resolved scenario in /meta)

def _toml_key(k):
    k = str(k)
    return k if k and all(c.isalnum() or c in "_-" for c in k) and k.isascii() else json.dumps(k)


def toml_value(v) -> str:
    """One value as TOML text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        v = float(v)
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as TOML")


def dump_toml(data: dict) -> str:
    """TOML text of a scenario dict: tables, arrays of tables, inline tables below them.

    ``None`` values are left out (TOML has no null). ``tomllib.loads(dump_toml(d))``
    gives ``d`` back for such plain data.

    Examples
    --------
    >>> print(dump_toml({"run": {"seed": 1}, "stations": [{"node": 5, "ambulances": 2}]}))
    [run]
    seed = 1
    <BLANKLINE>
    [[stations]]
    node = 5
    ambulances = 2
    <BLANKLINE>
    """
    lines = []
    for key, value in data.items():
        if value is None or isinstance(value, dict) or (isinstance(value, list) and value
                                                        and all(isinstance(x, dict) for x in value)):
            continue
        lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines += ["" if lines else None, f"[{_toml_key(key)}]"]
            lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items() if v is not None]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            for item in value:
                lines += ["" if lines else None, f"[[{_toml_key(key)}]]"]
                lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in item.items() if v is not None]
    return "\n".join(x for x in lines if x is not None) + "\n"


def _plain(value, meta=None):
    if meta and "plain" in meta and value is not None:
        return meta["plain"](value)
    if isinstance(value, tuple):
        return [_plain(v, meta) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, meta) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_group(g):
    return {f.name: _plain(getattr(g, f.name), f.metadata) for f in fields(g) if getattr(g, f.name) is not None}


def resolve_paths(groups, base_dir) -> dict:
    """Groups with every relative path setting (``setting(..., path=True)``) that names an
    existing file in ``base_dir`` (the scenario file's folder) made absolute, so the resolved
    scenario means the same files wherever it is loaded again (an ensemble's workers, a study).
    A value that names no file there is left as it is (an embedded city name, say)."""
    from pathlib import Path

    def fix(group):
        changes = {}
        for f in fields(group):
            value = getattr(group, f.name)
            if f.metadata.get("path") and isinstance(value, str) and value and not Path(value).is_absolute():
                candidate = Path(base_dir) / value
                if candidate.exists():
                    changes[f.name] = str(candidate.resolve())
        return replace(group, **changes) if changes else group

    return {name: (None if g is None else [fix(x) for x in g] if isinstance(g, list) else fix(g))
            for name, g in groups.items()}


def _path_settings(groups):
    """``(table, item index or None, field, value)`` of every non-empty path setting
    (``setting(..., path=True)``) of validated groups."""
    for name, g in groups.items():
        items = [] if g is None else (list(enumerate(g)) if isinstance(g, list) else [(None, g)])
        for i, group in items:
            for f in fields(group):
                value = getattr(group, f.name)
                if f.metadata.get("path") and isinstance(value, str) and value:
                    yield name, i, f, value


#: The largest input file a scenario may name (bytes): 4 GiB. Larger inputs are refused with a
#: clear error instead of filling memory.
MAX_INPUT_BYTES = 4 * 1024 ** 3


def check_input_files(groups, source, base_dir=None) -> None:
    """Every path setting that names something on disk names a regular file of at most
    :data:`MAX_INPUT_BYTES`: a folder, a pipe, a device (``/dev/zero``) or a socket would hang
    or fill memory when read, so it is a :class:`~twin.errors.ScenarioError` naming the key."""
    import stat
    from pathlib import Path

    for name, i, f, value in _path_settings(groups):
        p = Path(value) if Path(value).is_absolute() or base_dir is None else Path(base_dir) / value
        try:
            st = p.stat()
        except OSError:
            continue                         # names no file: a city name, or an error later
        key = f"[{name}] {f.name}" if i is None else f"[{name}.{i}] {f.name}"
        if stat.S_ISDIR(st.st_mode) and "/" not in value and "\\" not in value:
            continue                         # a bare name (an embedded city) beside a folder of that name
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a pipe" if stat.S_ISFIFO(st.st_mode) else \
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file"
            raise ScenarioError(f"{source}: {key} = {value!r} is {kind}; expected a regular file")
        if st.st_size > MAX_INPUT_BYTES:
            raise ScenarioError(f"{source}: {key} = {value!r} is {st.st_size / 1024 ** 3:.1f} GiB; input files "
                                f"are limited to {MAX_INPUT_BYTES / 1024 ** 3:g} GiB")


def input_files(groups) -> dict:
    """``"table.key" -> {"path", "sha256"}`` for every path setting that names a file (a run's
    ``/meta`` records what it read; items of array tables as ``table.i.key``)."""
    import hashlib
    from pathlib import Path

    out = {}
    for name, i, f, value in _path_settings(groups):
        if Path(value).is_file():
            digest = hashlib.sha256(Path(value).read_bytes()).hexdigest()
            key = f"{name}.{f.name}" if i is None else f"{name}.{i}.{f.name}"
            out[key] = {"path": str(Path(value).resolve()), "sha256": digest}
    return out


def resolved_data(groups) -> dict:
    """Plain TOML data of validated groups (defaults filled in; absent tables left out)."""
    out = {}
    for table, value in groups.items():
        if value is None:
            continue
        out[table] = [_plain_group(g) for g in value] if isinstance(value, list) else _plain_group(value)
    return out
