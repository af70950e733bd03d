"""Format constants and HDF5 encoding helpers of the results store (:mod:`twin.results`).

The constants name what a results file holds (root attributes, top-level groups, the
``.partial`` suffix); the helpers check names and paths and turn numbers, bool and str into
values h5py stores without pickling, with no timestamps. Writer and appenders share them.
"""

from __future__ import annotations

import numbers
import os
import zlib
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pandas as pd

from twin.errors import ResultsError

__all__ = ["FORMAT", "FORMAT_VERSION", "GROUPS", "PARTIAL_SUFFIX"]

#: Value of the root attribute ``format``.
FORMAT = "twin-results"
#: Value of the root attribute ``format_version`` that this module writes and reads.
FORMAT_VERSION = 1
#: Top-level groups, created in every file.
GROUPS = ("/meta", "/network", "/timeseries", "/events", "/summary", "/checkpoints")
#: Suffix of the file a writer works on until its clean close.
PARTIAL_SUFFIX = ".partial"

# Groups that write_array / write_table / appenders may write into (/meta has write_meta).
_DATA_GROUPS = ("network", "timeseries", "events", "summary", "checkpoints", "forecast")   # (/forecast: when written)
# Arrays with more rows than this are chunked and compressed; smaller ones stay contiguous.
_COMPRESS_MIN_ROWS = 16
# gzip (deflate) level: 1 compresses the results tables to within ~3 % of level 4 in ~70 % of the time.
_GZIP_LEVEL = 1
# Arrays of at least this many bytes are compressed chunk by chunk in threads (zlib releases the GIL).
_PARALLEL_MIN_BYTES = 4 << 20
# Upper bound on the bytes in one HDF5 chunk: the default chunk cache holds 1 MiB.
_CHUNK_BYTES = 1 << 20
# Meta strings longer than this (or holding a newline) become text datasets, not attributes.
_META_ATTR_MAX_CHARS = 1024
_RESERVED_ATTRS = ("units", "columns")
_ACCEPTED_KINDS = "bool, signed or unsigned integer, float, str"


def _group_create_plist():
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return gcpl


def _require_group(h5file, path):
    """Return the group at absolute ``path``, creating missing levels without timestamps."""
    grp = h5file["/"]
    for part in path.strip("/").split("/"):
        if part in grp:
            obj = grp[part]
            if not isinstance(obj, h5py.Group):
                raise ResultsError(f"cannot create group '{path}': '{obj.name}' is a dataset")
            grp = obj
        else:
            gid = h5py.h5g.create(grp.id, part.encode("utf-8"), gcpl=_group_create_plist())
            grp = h5py.Group(gid)
    return grp


def _check_name(name, what):
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str; got {type(name).__name__} {name!r}")
    if not name or "/" in name or name in (".", ".."):
        raise ResultsError(f"{what} {name!r} is not a valid name; expected a non-empty str without '/'")
    return name


def _data_path(path):
    """Normalise a dataset path and check that it lies in one of the data groups."""
    if not isinstance(path, str):
        raise TypeError(f"dataset path must be a str; got {type(path).__name__} {path!r}")
    parts = [p for p in path.strip().split("/") if p]
    if len(parts) < 2 or parts[0] not in _DATA_GROUPS or any(p in (".", "..") for p in parts):
        groups = ", ".join(f"/{g}" for g in _DATA_GROUPS)
        raise ResultsError(f"dataset path {path!r} is not accepted; expected '/<group>/<name>' with <group> one of {groups}")
    return "/" + "/".join(parts)


def _pow2_floor(n):
    return 1 << (max(1, int(n)).bit_length() - 1)


def _table_chunk_rows(itemsize, cap):
    """Rows per HDF5 chunk: at most ``cap`` and at most about 1 MiB (a power of two)."""
    return max(1, min(int(cap), _pow2_floor(_CHUNK_BYTES // max(1, itemsize))))


def _utf8_dtype(length=None):
    return h5py.string_dtype("utf-8", length)


def _encode_fixed(arr, where):
    """Return ``arr`` (str, bytes or all-str object) as fixed-length UTF-8 bytes for HDF5."""
    if arr.dtype.kind == "O":
        flat = arr.reshape(-1)
        for i, value in enumerate(flat):
            if not isinstance(value, str):
                raise ResultsError(
                    f"{where}: object values must all be str; found {type(value).__name__} {value!r} "
                    f"at position {i}; accepted: {_ACCEPTED_KINDS}"
                )
        arr = arr.astype(str) if arr.size else np.zeros(arr.shape, dtype="U1")
    if arr.dtype.kind == "U":
        arr = np.char.encode(arr, "utf-8")
    elif arr.dtype.kind == "S":
        try:
            np.char.decode(arr, "utf-8")
        except UnicodeDecodeError as exc:
            raise ResultsError(f"{where}: bytes values are not valid UTF-8 ({exc}); give str or UTF-8 bytes") from None
    return arr.astype(_utf8_dtype(max(1, arr.dtype.itemsize)))


def _as_storable(values, where, *, ndim=None):
    """Check an array-like and return it as an ndarray HDF5 stores without pickling."""
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    arr = np.asarray(values)
    if ndim is not None and arr.ndim != ndim:
        raise ResultsError(f"{where}: expected a {ndim}-D array; got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind in "biuf":
        return arr
    if kind in "USO":
        return _encode_fixed(arr, where)
    raise ResultsError(f"{where}: dtype {arr.dtype} cannot be stored; accepted: {_ACCEPTED_KINDS}")


def _check_units(units, where):
    if not isinstance(units, str):
        raise TypeError(f"{where}: units must be a str such as 's', 'm', 'veh/h', '1' or ''; got {type(units).__name__} {units!r}")
    return units


def _attr_value(value, where):
    """Return ``value`` as something h5py writes as a plain attribute (no pickles)."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, numbers.Integral):
        return np.int64(value)
    if isinstance(value, numbers.Real):
        return np.float64(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" and arr.ndim == 1:
            return arr
        if arr.dtype.kind in "UO" and arr.ndim == 1 and all(isinstance(v, str) for v in arr.tolist()):
            return np.array(arr.tolist(), dtype=_utf8_dtype())
    raise TypeError(
        f"{where}: attribute value {value!r} of type {type(value).__name__} cannot be stored; "
        "accepted: str, int, float, bool, or a 1-D list/array of numbers or of str"
    )


def _create_dataset(parent, name, **kwargs):
    if kwargs.get("chunks") is not None:
        kwargs.update(compression="gzip", compression_opts=_GZIP_LEVEL, shuffle=True)
        data = kwargs.get("data")
        if isinstance(data, np.ndarray) and data.nbytes >= _PARALLEL_MIN_BYTES and data.dtype.kind != "O" and all(
                data.dtype.fields[f][0].kind != "O" for f in (data.dtype.names or ())):
            return _create_compressed(parent, name, kwargs)
    return parent.create_dataset(name, track_times=False, **kwargs)


def _create_compressed(parent, name, kwargs):
    """A large array written as h5py would with shuffle + gzip, its chunks compressed in threads.

    Each chunk is padded to its full size with zeros (the fill value), byte-shuffled by the
    element size and deflated with zlib at ``_GZIP_LEVEL``: what HDF5's own shuffle and deflate
    filters write, byte for byte, so every HDF5 reader (h5dump, pandas, h5py) reads it as usual.
    Chunks run along the first axis only; anything else goes through h5py.
    """
    arr = np.ascontiguousarray(kwargs.pop("data"))
    row_bytes = arr.dtype.itemsize * int(np.prod(arr.shape[1:], dtype=np.int64))
    chunks = kwargs.get("chunks")
    if chunks is True:
        chunks = (max(1, min(len(arr), _CHUNK_BYTES // max(1, row_bytes))),) + arr.shape[1:]
    kwargs.update(shape=arr.shape, chunks=chunks)
    ds = parent.create_dataset(name, track_times=False, **kwargs)
    if tuple(ds.chunks[1:]) != arr.shape[1:] or ds.id.get_type().get_size() != arr.dtype.itemsize:
        ds[...] = arr
        return ds
    c, item = ds.chunks[0], arr.dtype.itemsize
    raw = arr.reshape(-1).view(np.uint8)
    chunk_bytes = c * row_bytes

    def pack(i):
        part = raw[i * chunk_bytes:(i + 1) * chunk_bytes]
        if len(part) < chunk_bytes:                      # the edge chunk is stored whole
            part = np.concatenate([part, np.zeros(chunk_bytes - len(part), dtype=np.uint8)])
        return zlib.compress(part.reshape(-1, item).T.tobytes(), _GZIP_LEVEL)

    n_chunks = -(-len(arr) // c)
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
    try:
        for i, packed in enumerate(pool.map(pack, range(n_chunks))):
            ds.id.write_direct_chunk((i * c,) + (0,) * (arr.ndim - 1), packed)
    finally:                                    # (an error or Ctrl-C: the chunks not started are dropped)
        pool.shutdown(wait=True, cancel_futures=True)
    return ds
