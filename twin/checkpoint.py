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
        /<flow>/<key>     one dataset per value of the flow's state: arrays as they are,
                          numbers as 0-d datasets, text as UTF-8 strings; values that are
                          JSON (a random generator's state, lists of records) as UTF-8 strings
                          with attribute ``json = 1``

No pickles: every value is plain data that ``h5dump`` shows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from twin.errors import ScenarioError

__all__ = ["VERSION", "FORMAT", "write_checkpoint", "read_checkpoint", "generator_state", "set_generator_state"]

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


def _write_value(group, key, value):
    import h5py

    if value is None or isinstance(value, (dict, list, tuple)):
        ds = group.create_dataset(key, data=json.dumps(value), dtype=h5py.string_dtype("utf-8"))
        ds.attrs["json"] = 1
    elif isinstance(value, str):
        group.create_dataset(key, data=value, dtype=h5py.string_dtype("utf-8"))
    else:
        arr = np.asarray(value)
        if arr.dtype.kind == "O":
            raise ScenarioError(f"checkpoint: value {key!r} is not plain data (dtype object)")
        group.create_dataset(key, data=arr)


def write_checkpoint(path, *, meta, time_s, states) -> Path:
    """Write a checkpoint file at ``path`` atomically (``path.tmp``, fsync, ``os.replace``).

    ``meta``: the ``/meta`` attributes (scenario text, seed, out ...); ``states``: flow name ->
    {key: value} (arrays, numbers, text, JSON-able lists and dicts)."""
    import h5py

    path = Path(path)
    tmp = Path(str(path) + ".tmp")
    with h5py.File(tmp, "w") as f:
        m = f.create_group("meta")
        m.attrs["format"] = FORMAT
        m.attrs["checkpoint_version"] = VERSION
        for k, v in meta.items():
            m.attrs[k] = json.dumps(v) if isinstance(v, (list, tuple, dict)) else v
        g = f.create_group("checkpoints/state")
        g.attrs["time_s"] = float(time_s)
        for flow, state in states.items():
            fg = g.create_group(flow)
            for key, value in state.items():
                _write_value(fg, key, value)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def _read_value(ds):
    if ds.attrs.get("json", 0):
        return json.loads(ds.asstr()[()])
    if ds.dtype.kind in ("O", "S") or h5py_is_str(ds):
        return ds.asstr()[()]
    v = ds[()]
    return v


def h5py_is_str(ds) -> bool:
    import h5py

    return h5py.check_string_dtype(ds.dtype) is not None


def read_checkpoint(path):
    """``(meta, time_s, states)`` of a checkpoint file; a missing, truncated or foreign file, a
    version mismatch or a missing part is a :class:`~twin.errors.ScenarioError` naming it."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise ScenarioError(f"--resume {str(path)!r}: no such file (a run with --checkpoint-every leaves "
                            f"<out>.partial while it runs)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ScenarioError(f"--resume {str(path)!r}: not a readable HDF5 checkpoint (truncated or damaged?): "
                            f"{exc}") from None
    with f:
        m = f.get("meta")
        if m is None or m.attrs.get("format") != FORMAT:
            raise ScenarioError(f"--resume {str(path)!r}: not a twin checkpoint (no /meta format "
                                f"'{FORMAT}'); a finished results file needs no resuming")
        version = int(m.attrs.get("checkpoint_version", -1))
        if version != VERSION:
            raise ScenarioError(f"--resume {str(path)!r}: checkpoint version {version}; this twin reads version "
                                f"{VERSION}")
        meta = {k: m.attrs[k] for k in m.attrs}
        for k in ("flows", "streams"):
            meta[k] = json.loads(meta[k]) if k in meta else []
        g = f.get("checkpoints/state")
        if g is None or "time_s" not in g.attrs:
            raise ScenarioError(f"--resume {str(path)!r}: no /checkpoints/state with a time_s")
        states = {}
        for flow in meta["flows"]:
            if flow not in g:
                raise ScenarioError(f"--resume {str(path)!r}: the state of flow {flow!r} is missing")
            states[flow] = {k: _read_value(ds) for k, ds in g[flow].items()}
        return meta, float(g.attrs["time_s"]), states
