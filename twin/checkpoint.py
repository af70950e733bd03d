"""Checkpoints: a run's state as plain HDF5 data, written atomically, read back with clear errors.

While ``twin run ... --out run.h5 --checkpoint-every 10d`` runs, ``run.h5.partial`` holds the
latest checkpoint (no results yet). Each checkpoint is written whole to
``run.h5.partial.tmp``, flushed to disk and moved over ``run.h5.partial`` with ``os.replace``,
so a crash or ``kill -9`` at any moment leaves the previous good checkpoint. ``twin run --resume
run.h5.partial`` continues from it (:func:`twin.runner.resume`).

Layout (format ``twin-checkpoint``, version :data:`VERSION`)::

    /meta                 attributes: format, checkpoint_version, scenario (the resolved TOML),
                          scenario_name, seed, out (the results file to write), flows and
                          streams (JSON lists), until_s
    /checkpoints/state    attribute time_s: the clock at the checkpoint (before any event at it)
        /<flow>/<key>     one dataset per array of the flow's state, as it is (integer arrays
                          that are mostly 0 or -1 as a group: ``index``, ``value``, attrs
                          ``encoding = "sparse"``, ``fill``, ``shape``, ``dtype``)
        /<flow>/_values   the flow's other values (numbers, text, a random generator's state,
                          lists of records) as one JSON object, UTF-8, attribute ``json = 1``

A results file of a run with ``snapshot_at_s`` (``twin run --snapshot-at 06:00,08:00``) keeps
the states at those times in ``/checkpoints/<time in whole seconds>``, the attributes of
``/meta`` above on ``/checkpoints``; ``read_checkpoint("run.h5@08:00")`` reads one of them
(:func:`twin.runner.from_snapshot`, ``twin run --start-from``).

No pickles: every value is plain data that ``h5dump`` shows. docs/results-format.md lists what
each flow's state holds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import zlib
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError

logger = logging.getLogger(__name__)

__all__ = ["VERSION", "FORMAT", "write_checkpoint", "read_checkpoint", "keep_snapshot", "copy_snapshots", "parse_at",
           "generator_state", "set_generator_state", "fork_generators", "member_seed"]

VERSION = 1
FORMAT = "twin-checkpoint"


def generator_state(rng) -> dict:
    """A numpy Generator's bit-generator state as JSON-able data (big integers as text)."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return str(int(v))
        return v
    return {"json_generator": plain(rng.bit_generator.state)}


def set_generator_state(rng, state) -> None:
    """Put a state from :func:`generator_state` back into ``rng``."""
    def back(v):
        if isinstance(v, dict):
            return {k: back(x) for k, x in v.items()}
        if isinstance(v, str) and v.lstrip("-").isdigit():
            return int(v)
        return v
    rng.bit_generator.state = back(state["json_generator"])


def member_seed(seed, member, path) -> np.random.SeedSequence:
    """``SeedSequence(seed, spawn_key=(member, crc32(path)))``: forecast member ``member``'s seed
    for the generator at ``path`` (a place in the state, or a flow's name)."""
    return np.random.SeedSequence(int(seed), spawn_key=(int(member), zlib.crc32(path.encode())))


def fork_generators(states, seed, member) -> dict:
    """The states with every random generator's state replaced by a fresh one of the same kind,
    from :func:`member_seed` (``path``: where it sits in the state, e.g.
    ``ems/streams/calls``); the rest is shared, not copied."""
    def walk(v, path):
        if isinstance(v, dict):
            if "json_generator" in v:
                return _fresh(v, seed, member, path)
            return {k: walk(x, f"{path}/{k}") for k, x in v.items()}
        if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
            return [walk(x, f"{path}/{i}") for i, x in enumerate(v)]
        return v
    return {flow: walk(s, flow) for flow, s in states.items()}


def _fresh(old, seed, member, path):
    kind = old["json_generator"].get("bit_generator", "PCG64")
    bit = getattr(np.random, kind, None)
    if bit is None:
        raise ScenarioError(f"forecast: the generator at {path} is a {kind}, which numpy does not have")
    return generator_state(np.random.Generator(bit(member_seed(seed, member, path))))


def _write_array(group, key, arr):
    if arr.dtype.kind == "O":
        raise ScenarioError(f"checkpoint: value {key!r} is not plain data (dtype object)")
    if arr.dtype.kind in "iu" and arr.size >= 1 << 13 and _sparse(group, key, arr):
        return
    if arr.dtype == np.int64 and arr.size and -2**31 <= arr.min() and arr.max() < 2**31:
        ds = group.create_dataset(key, data=arr.astype(np.int32))      # half the bytes to write
        ds.attrs["dtype"] = "int64"
    else:
        group.create_dataset(key, data=arr)      # (LZF would make them 7x smaller and 2.5x slower to write)


def _sparse(group, key, arr) -> bool:
    """Write an integer array that is mostly 0 or -1 as a group of its other entries (flat
    ``index`` and ``value``, attrs ``encoding = "sparse"``, ``fill``, ``shape``, ``dtype``)."""
    flat = arr.reshape(-1)
    for fill in (0, -1):
        if len(flat) - np.count_nonzero(flat == fill) > len(flat) // 4:      # (counting is cheaper than listing)
            continue
        other = np.flatnonzero(flat != fill)
        g = group.create_group(key)
        g.attrs.update(encoding="sparse", fill=fill, shape=list(arr.shape), dtype=str(arr.dtype))
        g.create_dataset("index", data=other.astype(np.int64 if len(flat) >= 2**31 else np.int32))
        g.create_dataset("value", data=flat[other])
        return True
    return False


#: The dataset of a flow's state that holds its values other than arrays, as one JSON object.
VALUES = "_values"


def _write_state(group, time_s, states):
    group.attrs["time_s"] = float(time_s)
    for flow, state in states.items():
        fg = group.create_group(flow)
        values = {}
        for key, value in state.items():
            if key == VALUES:
                raise ScenarioError(f"checkpoint: flow {flow!r} names a value {VALUES!r}, a name the format reserves")
            if isinstance(value, np.ndarray) and value.ndim:
                _write_array(fg, key, value)
            else:           # numbers, text, None, lists, dicts: one JSON dataset (a dataset each costs 0.2 ms)
                values[key] = value
        if values:
            ds = fg.create_dataset(VALUES, data=json.dumps(values, default=_plain), dtype=h5py_str())
            ds.attrs["json"] = 1


def _plain(v):
    """JSON for numpy numbers and 0-d or small arrays inside a flow's values."""
    if isinstance(v, (np.generic, np.ndarray)):
        if getattr(v, "dtype", None) is not None and v.dtype.kind == "O":
            raise ScenarioError(f"checkpoint: value {v!r} is not plain data (dtype object)")
        return v.tolist()
    raise ScenarioError(f"checkpoint: a value of type {type(v).__name__} is not plain data")


def h5py_str():
    import h5py

    return h5py.string_dtype("utf-8")


def _write_meta(attrs, meta):
    attrs["format"] = FORMAT
    attrs["checkpoint_version"] = VERSION
    for k, v in meta.items():
        attrs[k] = json.dumps(v) if isinstance(v, (list, tuple, dict)) else v


def write_checkpoint(path, *, meta, time_s, states) -> Path:
    """Write a checkpoint file at ``path`` atomically (``path.tmp``, fsync, ``os.replace``).

    ``meta``: the ``/meta`` attributes (scenario text, seed, out ...); ``states``: flow name ->
    {key: value} (arrays, numbers, text, JSON-able lists and dicts)."""
    import h5py

    path = Path(path)
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w") as f:
        _write_meta(f.create_group("meta").attrs, meta)
        _write_state(f.create_group("checkpoints/state"), time_s, states)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def checkpoint_writer(out, meta, every_s, snapshot_at_s, after):
    """The ``on_checkpoint`` of a run writing ``out``: at multiples of ``every_s`` the checkpoint
    file ``<out>.partial``, at the times of ``snapshot_at_s`` a snapshot kept for ``out``;
    ``after(time_s)`` then (fault injection)."""
    partial, kept = Path(str(out) + ".partial"), Path(str(out) + ".snapshots")
    until = float(meta.get("until_s", math.inf))
    bad = [t for t in snapshot_at_s if not 0.0 < t < until]
    if bad:
        raise ScenarioError(f"--snapshot-at {bad[0]:g} s: expected times after the start and before until_s "
                            f"= {until:g} s")

    def write(time_s, states):
        if any(abs(time_s - t) < 1e-6 for t in snapshot_at_s):
            keep_snapshot(kept, meta=meta, time_s=time_s, states=states)
        if every_s and abs(time_s / every_s - round(time_s / every_s)) < 1e-9:
            write_checkpoint(partial, meta=meta, time_s=time_s, states=states)
            logger.info("checkpoint at %.0f s written to %s", time_s, partial)
        after(time_s)
    return write


def keep_snapshot(path, *, meta, time_s, states) -> None:
    """Add the state at ``time_s`` to the snapshots file ``path`` (``<out>.snapshots``, copied
    into the results file's ``/checkpoints`` when the run ends: :func:`copy_snapshots`)."""
    import shutil

    import h5py

    path = Path(path)
    tmp = Path(str(path) + ".tmp")                # whole file, then moved into place: a kill loses nothing
    if path.exists():
        shutil.copyfile(path, tmp)
    with h5py.File(tmp, "a") as f:
        g = f.require_group("checkpoints")
        _write_meta(g.attrs, meta)
        name = snapshot_name(time_s)
        if name in g:
            del g[name]
        _write_state(g.create_group(name), time_s, states)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def snapshot_name(time_s) -> str:
    """The group name of a snapshot in ``/checkpoints``: its time in whole seconds."""
    return f"{float(time_s):.0f}"


def copy_snapshots(path, h5file) -> None:
    """Copy the snapshots of ``path`` (if any) into an open results file's ``/checkpoints``."""
    import h5py

    path = Path(path)
    if not path.exists():
        return
    try:
        src = h5py.File(path, "r")
    except OSError as exc:
        raise ScenarioError(f"snapshots file {str(path)!r} is damaged ({exc}); delete it to finish the run without "
                            f"its snapshots") from None
    with src:
        g = src.get("checkpoints")
        if g is None:
            return
        dst = h5file.require_group("checkpoints")
        for k, v in g.attrs.items():
            dst.attrs[k] = v
        for name in g:
            src.copy(g[name], dst, name=name)


def _read_value(ds):
    if ds.attrs.get("encoding") == "sparse":
        out = np.full(int(np.prod(ds.attrs["shape"])), ds.attrs["fill"], dtype=ds.attrs["dtype"])
        out[ds["index"][()]] = ds["value"][()]
        return out.reshape([int(n) for n in ds.attrs["shape"]])
    if ds.attrs.get("json", 0):
        return json.loads(ds.asstr()[()])
    if ds.dtype.kind in ("O", "S") or h5py_is_str(ds):
        return ds.asstr()[()]
    v = ds[()]
    return v.astype(ds.attrs["dtype"]) if "dtype" in ds.attrs else v


def h5py_is_str(ds) -> bool:
    import h5py

    return h5py.check_string_dtype(ds.dtype) is not None


def parse_at(text):
    """``"run.h5@08:00"`` -> ``("run.h5", 28800.0)``; the time is ``HH:MM`` (hours from the start,
    24 and more allowed), a duration (``6h``, ``2d``) or seconds; no ``@``: ``(text, None)``."""
    from twin.units import parse_duration_s

    text = str(text)
    path, sep, at = text.rpartition("@")
    if not sep or not path or Path(text).exists():
        return text, None
    try:
        if ":" in at:
            parts = [float(x) for x in at.split(":")]
            if len(parts) not in (2, 3) or any(x < 0 for x in parts):
                raise ValueError
            return path, parts[0] * 3600.0 + parts[1] * 60.0 + (parts[2] if len(parts) == 3 else 0.0)
        return path, float(parse_duration_s(at))
    except ValueError:
        if "/" in at or at.endswith((".h5", ".partial", ".json", ".hdf5")):     # an @ inside a file name
            return text, None
        raise ScenarioError(f"snapshot {text!r}: time {at!r}; expected HH:MM (e.g. @08:00), a duration (@6h) or "
                            f"seconds") from None


def read_checkpoint(path):
    """``(meta, time_s, states)`` of a checkpoint: a checkpoint file (``<out>.partial``), or a
    snapshot kept in a results file, ``"run.h5@08:00"`` (``--snapshot-at``). A missing,
    truncated or foreign file, a version mismatch, a missing time or a missing part is a
    :class:`~twin.errors.ScenarioError` naming it."""
    import h5py

    label = str(path)
    path, at = parse_at(path)
    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"checkpoint {str(path)!r}: no such file (a run with --checkpoint-every leaves "
                            f"<out>.partial while it runs; --snapshot-at keeps snapshots in <out>)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ScenarioError(f"checkpoint {label!r}: not a readable HDF5 checkpoint (truncated or damaged?): "
                            f"{exc}") from None
    try:
        with f:
            m = f.get("meta")
            if m is not None and m.attrs.get("format") == FORMAT:
                attrs, g = m.attrs, f.get("checkpoints/state")
                if g is not None and at is not None and abs(float(g.attrs.get("time_s", -1)) - at) > 1e-6:
                    raise ScenarioError(f"checkpoint {label!r}: this checkpoint file holds the state at "
                                        f"{float(g.attrs['time_s']):g} s only")
            else:
                attrs, g = _kept(f, label, at)
            return _read(attrs, g, label)
    except ScenarioError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ScenarioError(f"checkpoint {label!r}: damaged ({type(exc).__name__}: {exc})") from None


def _kept(f, label, at):
    """The attributes and state group of a snapshot kept in a results file."""
    c = f.get("checkpoints")
    if c is None or c.attrs.get("format") != FORMAT:
        raise ScenarioError(f"checkpoint {label!r}: not a twin checkpoint, and no snapshots in /checkpoints (a "
                            f"finished results file needs no resuming; keep snapshots with --snapshot-at)")
    times = sorted(float(c[k].attrs["time_s"]) for k in c)
    if at is None:
        if len(times) != 1:
            raise ScenarioError(f"checkpoint {label!r}: give the time, e.g. {label}@{_hhmm(times[0] if times else 0)}; "
                                f"snapshots at {', '.join(_hhmm(t) for t in times)}")
        at = times[0]
    name = snapshot_name(at)
    if name not in c:
        raise ScenarioError(f"checkpoint {label!r}: no snapshot at {_hhmm(at)}; this file has "
                            f"{', '.join(_hhmm(t) for t in times) or 'none'}")
    return c.attrs, c[name]


def _hhmm(t):
    return f"{int(t // 3600):02d}:{int(t % 3600 // 60):02d}"


def _read(attrs, g, label):
    version = int(attrs.get("checkpoint_version", -1))
    if version != VERSION:
        raise ScenarioError(f"checkpoint {label!r}: checkpoint version {version}; this twin reads version {VERSION}")
    meta = {k: attrs[k] for k in attrs}
    for k in ("flows", "streams", "snapshot_at_s"):
        meta[k] = json.loads(meta[k]) if k in meta else []
    if g is None or "time_s" not in g.attrs:
        raise ScenarioError(f"checkpoint {label!r}: no /checkpoints/state with a time_s")
    states = {}
    for flow in meta["flows"]:
        if flow not in g:
            raise ScenarioError(f"checkpoint {label!r}: the state of flow {flow!r} is missing")
        states[flow] = {k: _read_value(ds) for k, ds in g[flow].items() if k != VALUES}
        if VALUES in g[flow]:
            values = json.loads(g[flow][VALUES].asstr()[()])
            if not isinstance(values, dict):
                raise ScenarioError(f"checkpoint {label!r}: {flow}/{VALUES} is not a JSON object")
            states[flow].update(values)
    return meta, float(g.attrs["time_s"]), states
