"""Results store: one HDF5 file per run, readable by h5py, pandas and ``h5dump``.

A run writes its outputs through a :class:`ResultsWriter` and a reader opens them with
:func:`open_results`. The layout, the units convention and the encoding of tables are
specified in ``docs/results-format.md``; this module is the reference implementation.

Layout (root attributes ``format = "twin-results"``, ``format_version = 1``,
``created_by = "twin <version>"``)::

    /meta          run description: scalars as attributes, long text and JSON as datasets
    /network       static arrays and node/link tables
    /timeseries    2-D float32 (time x item) series, each with a float64 ``time_s`` companion
    /events        per-record tables (trips, calls, ...) as 1-D compound datasets
    /summary       scalar KPIs, one scalar dataset per KPI
    /checkpoints   reserved for engine checkpoints (empty in format version 1)

Every dataset has a ``units`` attribute. A table is one resizable compound dataset with one
field per column; its ``units`` attribute is an array of strings (one per field, in field
order) and its ``columns`` attribute repeats the field names.

The writer works on ``<path>.partial`` and renames it to ``<path>`` with :func:`os.replace`
only on a clean close, so a crashed run never leaves a truncated file under the final name.
Datasets are written without timestamps (``track_times=False``), so the same data written
the same way gives the same file bytes.
"""

from __future__ import annotations

import difflib
import json
import logging
import numbers
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from twin._version import __version__
from twin.errors import ResultsError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GROUPS",
    "PARTIAL_SUFFIX",
    "ResultsWriter",
    "TableAppender",
    "SeriesAppender",
    "Results",
    "open_results",
]

logger = logging.getLogger(__name__)

#: Value of the root attribute ``format``.
FORMAT = "twin-results"
#: Value of the root attribute ``format_version`` that this module writes and reads.
FORMAT_VERSION = 1
#: Top-level groups, created in every file.
GROUPS = ("/meta", "/network", "/timeseries", "/events", "/summary", "/checkpoints")
#: Suffix of the file a writer works on until its clean close.
PARTIAL_SUFFIX = ".partial"

# Groups that write_array / write_table / appenders may write into (/meta has write_meta).
_DATA_GROUPS = ("network", "timeseries", "events", "summary", "checkpoints")
# Arrays with more rows than this are chunked and compressed; smaller ones stay contiguous.
_COMPRESS_MIN_ROWS = 16
_GZIP_LEVEL = 4
# Upper bound on the bytes in one HDF5 chunk: the default chunk cache holds 1 MiB.
_CHUNK_BYTES = 1 << 20
# Meta strings longer than this (or holding a newline) become text datasets, not attributes.
_META_ATTR_MAX_CHARS = 1024
_RESERVED_ATTRS = ("units", "columns")
_ACCEPTED_KINDS = "bool, signed or unsigned integer, float, str"


# --------------------------------------------------------------------------------------
# small helpers shared by writer and reader


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
    return parent.create_dataset(name, track_times=False, **kwargs)


# --------------------------------------------------------------------------------------
# writer


class ResultsWriter:
    """Write one run's results to an HDF5 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Final path of the results file, conventionally ``*.h5``. The writer works on
        ``<path>.partial`` and renames it to ``path`` on a clean :meth:`close`.
    meta : dict, optional
        Items passed to :meth:`write_meta` right after the file is created.
    overwrite : bool, default False
        Replace an existing file at ``path`` on close. A stale ``<path>.partial`` is always
        replaced.

    Raises
    ------
    ResultsError
        If ``path`` exists and ``overwrite`` is False, if ``path`` ends in ``.partial``, if its
        folder does not exist, or if the partial file cannot be created (for example because
        another writer holds it open).

    Notes
    -----
    Use the writer as a context manager. When the ``with`` block raises, the writer flushes
    what it can, closes ``<path>.partial`` and leaves it there for inspection; ``path`` is
    not created or replaced.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from twin.results import ResultsWriter, open_results
    >>> path = os.path.join(tempfile.mkdtemp(), "run.h5")
    >>> with ResultsWriter(path, meta={"seed": 7}) as out:
    ...     out.write_array("/network/length_m", np.array([120.0, 80.5]), units="m")
    ...     out.write_summary("mean_response_s", 431.5, units="s")
    >>> with open_results(path) as res:
    ...     res.meta["seed"], res.units("/network/length_m"), res.array("/network/length_m").tolist()
    (7, 'm', [120.0, 80.5])
    """

    def __init__(self, path, *, meta=None, overwrite=False):
        self.path = Path(os.fspath(path))
        self.partial_path = Path(str(self.path) + PARTIAL_SUFFIX)
        self.overwrite = bool(overwrite)
        self._appenders = []
        self._file = None
        if self.path.name.endswith(PARTIAL_SUFFIX):
            raise ResultsError(f"results path {str(self.path)!r} ends in '{PARTIAL_SUFFIX}'; give the final name (e.g. 'run.h5')")
        if not self.path.parent.is_dir():
            raise ResultsError(f"cannot write results to {str(self.path)!r}: folder {str(self.path.parent)!r} does not exist")
        if self.path.exists() and not self.overwrite:
            raise ResultsError(f"results file {str(self.path)!r} already exists; pass overwrite=True to replace it")
        if self.partial_path.exists():
            logger.info("replacing stale partial results file %s", self.partial_path)
        try:
            self._file = h5py.File(self.partial_path, "w")
        except OSError as exc:
            raise ResultsError(f"cannot create results file {str(self.partial_path)!r}: {exc}") from exc
        attrs = self._file.attrs
        attrs["format"] = FORMAT
        attrs["format_version"] = np.int64(FORMAT_VERSION)
        attrs["created_by"] = f"twin {__version__}"
        for group in GROUPS:
            _require_group(self._file, group)
        logger.info("writing results to %s", self.partial_path)
        if meta:
            try:
                if not isinstance(meta, dict):
                    raise TypeError(f"meta must be a dict; got {type(meta).__name__}")
                self.write_meta(**meta)
            except BaseException:
                self._abort()
                raise

    # context manager -----------------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._abort()
        return False

    @property
    def closed(self):
        """bool: True once :meth:`close` (or a failed ``with`` block) closed the file."""
        return self._file is None

    def _h5(self):
        if self._file is None:
            raise ResultsError(f"results writer for {str(self.path)!r} is closed; open a new ResultsWriter")
        return self._file

    def _new_dataset_parent(self, path):
        h5file = self._h5()
        if path in h5file:
            raise ResultsError(f"dataset '{path}' is already written; each dataset is written once")
        parent_path, name = path.rsplit("/", 1)
        return _require_group(h5file, parent_path), name

    # writing ---------------------------------------------------------------------------

    def write_meta(self, **items):
        """Record run metadata in ``/meta``.

        Parameters
        ----------
        **items
            ``name=value`` pairs, written in the order given. ``bool``, integers, floats and
            short one-line ``str`` become attributes of ``/meta``. A ``str`` holding a newline
            or longer than 1024 characters (scenario text) becomes a scalar UTF-8 dataset
            ``/meta/<name>`` with ``encoding = "text"``. ``dict``, ``list`` and ``tuple``
            values are JSON-encoded (sorted keys) into a dataset with ``encoding = "json"``.

        Raises
        ------
        ResultsError
            If a name was already written, or a dict/list holds NaN, inf or values JSON
            cannot encode.
        TypeError
            If a value has another type (``None``, paths, arrays ...).
        """
        h5file = self._h5()
        meta = h5file["/meta"]
        for name, value in items.items():
            _check_name(name, "meta name")
            if name in meta.attrs or name in meta:
                raise ResultsError(f"meta item '{name}' is already written; each meta item is written once")
            if isinstance(value, (dict, list, tuple)):
                try:
                    text = json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as exc:
                    raise ResultsError(
                        f"meta item '{name}': cannot encode as JSON ({exc}); accepted: str, finite numbers, bool, "
                        "None, and lists/dicts of those"
                    ) from None
                self._write_text(meta, name, text, "json")
            elif isinstance(value, str) and ("\n" in value or len(value) > _META_ATTR_MAX_CHARS):
                self._write_text(meta, name, value, "text")
            elif isinstance(value, (str, bool, np.bool_, numbers.Real)):
                meta.attrs[name] = _attr_value(value, f"meta item '{name}'")
            else:
                raise TypeError(
                    f"meta item '{name}': value of type {type(value).__name__} cannot be stored; "
                    "accepted: str, int, float, bool, dict, list, tuple"
                )

    @staticmethod
    def _write_text(group, name, text, encoding):
        raw = text.encode("utf-8")
        dtype = _utf8_dtype(max(1, len(raw)))
        ds = _create_dataset(group, name, data=np.array(raw, dtype=dtype), dtype=dtype)
        ds.attrs["units"] = ""
        ds.attrs["encoding"] = encoding

    def write_array(self, path, data, *, units, attrs=None):
        """Write an n-D array (numbers, bool or str) as one dataset.

        Parameters
        ----------
        path : str
            Absolute dataset path in a data group, e.g. ``"/network/length_m"``.
        data : array_like
            Values of kind bool, integer, float or str (str is stored as fixed-length UTF-8).
            Stored with its dtype; NaN and inf are kept.
        units : str
            Units of the values (``"s"``, ``"m"``, ``"veh/h"``; ``"1"`` for dimensionless
            numbers, ``""`` for ids, codes and text).
        attrs : dict, optional
            Extra attributes (str, numbers, bool, 1-D lists of numbers or str). ``units`` and
            ``columns`` are reserved. A 2-D series under ``/timeseries`` should carry
            ``time_path``, the path of its ``time_s`` companion.

        Raises
        ------
        ResultsError
            If the path is outside the data groups or already written, if ``data`` has
            another dtype (object arrays must hold only str), or an attribute is reserved.
        TypeError
            If ``units`` is not a str or an attribute value cannot be stored.
        """
        path = _data_path(path)
        where = f"array '{path}'"
        _check_units(units, where)
        arr = _as_storable(data, where)
        extra = {}
        for key, value in (attrs or {}).items():
            _check_name(key, f"{where}: attribute name")
            if key in _RESERVED_ATTRS:
                raise ResultsError(f"{where}: attribute '{key}' is reserved; give units with units=...")
            extra[key] = _attr_value(value, f"{where}: attribute '{key}'")
        parent, name = self._new_dataset_parent(path)
        chunked = arr.ndim >= 1 and arr.shape[0] > _COMPRESS_MIN_ROWS and arr.size > 0
        ds = _create_dataset(parent, name, data=arr, dtype=arr.dtype, chunks=True if chunked else None)
        ds.attrs["units"] = units
        for key, value in extra.items():
            ds.attrs[key] = value

    def write_table(self, path, columns, *, units):
        """Write a table as one 1-D compound dataset, one field per column.

        Parameters
        ----------
        path : str
            Absolute dataset path in a data group, e.g. ``"/events/calls"``.
        columns : dict of str to array_like, or pandas.DataFrame
            Equal-length 1-D columns of kind bool, integer, float or str, in field order.
            A DataFrame's index is not stored (call ``reset_index()`` to keep it). NaN is a
            valid float value (an unfinished trip); missing values in str columns are not.
        units : dict of str to str
            Units of every column, e.g. ``{"call_id": "", "arrive_s": "s"}``.

        Raises
        ------
        ResultsError
            If a column lacks units, ``units`` names an unknown column, lengths differ, a
            column is not 1-D, or its dtype is not storable.
        TypeError
            If ``columns`` or ``units`` has the wrong type.
        """
        path = _data_path(path)
        where = f"table '{path}'"
        names, arrays = self._table_columns(columns, where)
        units_list = self._table_units(names, units, where)
        n_rows = {len(a) for a in arrays}
        if len(n_rows) > 1:
            lengths = ", ".join(f"'{n}': {len(a)}" for n, a in zip(names, arrays))
            raise ResultsError(f"{where}: columns differ in length ({lengths}); all columns need the same number of rows")
        n = n_rows.pop()
        dtype = np.dtype([(name, arr.dtype) for name, arr in zip(names, arrays)])
        rows = np.empty(n, dtype=dtype)
        for name, arr in zip(names, arrays):
            rows[name] = arr
        parent, name = self._new_dataset_parent(path)
        ds = _create_dataset(
            parent, name, data=rows, dtype=dtype, maxshape=(None,), chunks=(_table_chunk_rows(dtype.itemsize, max(1, n)),)
        )
        _set_table_attrs(ds, names, units_list)

    @staticmethod
    def _table_columns(columns, where):
        if isinstance(columns, pd.DataFrame):
            if not columns.columns.is_unique:
                dup = sorted({str(c) for c in columns.columns[columns.columns.duplicated()]})
                raise ResultsError(f"{where}: duplicate column names {dup}; column names must be unique")
            items = [(name, columns[name]) for name in columns.columns]
        elif isinstance(columns, dict):
            items = list(columns.items())
        else:
            raise TypeError(f"{where}: columns must be a dict of str to array-like or a pandas.DataFrame; got {type(columns).__name__}")
        if not items:
            raise ResultsError(f"{where}: no columns given; a table needs at least one column")
        names, arrays = [], []
        for name, values in items:
            _check_name(name, f"{where}: column name")
            names.append(name)
            arrays.append(_as_storable(values, f"{where}: column '{name}'", ndim=1))
        return names, arrays

    @staticmethod
    def _table_units(names, units, where):
        if not isinstance(units, dict):
            raise TypeError(f"{where}: units must be a dict of column name to str; got {type(units).__name__}")
        for name in names:
            if name not in units:
                raise ResultsError(
                    f"{where}: column '{name}' has no units; give units={{'{name}': 's', ...}} with a str for "
                    f"every column of {names} ('' for ids, codes and text)"
                )
            _check_units(units[name], f"{where}: column '{name}'")
        unknown = [k for k in units if k not in names]
        if unknown:
            raise ResultsError(f"{where}: units given for unknown column(s) {unknown}; the columns are {names}")
        return [units[name] for name in names]

    def table_appender(self, path, schema, *, chunk_rows=65536):
        """Create an empty table and return a buffered appender for it.

        Parameters
        ----------
        path : str
            Absolute dataset path in a data group, e.g. ``"/events/trips"``.
        schema : dict of str to (dtype, str)
            ``column -> (dtype, units)`` in field order. dtype is a numpy bool, integer or
            float dtype, ``"S<n>"`` for fixed-length UTF-8 of at most n bytes, or ``str``
            for variable-length UTF-8.
        chunk_rows : int, default 65536
            Rows buffered in memory before a block is written. HDF5 chunks hold at most
            ``chunk_rows`` rows and at most about 1 MiB.

        Returns
        -------
        TableAppender

        Raises
        ------
        ResultsError
            If the path is not accepted or already written, a dtype is not accepted, or
            ``chunk_rows < 1``.
        TypeError
            If ``schema`` is not a dict of ``(dtype, units)`` pairs.
        """
        path = _data_path(path)
        where = f"table '{path}'"
        if not isinstance(schema, dict) or not schema:
            raise TypeError(f"{where}: schema must be a non-empty dict of column -> (dtype, units)")
        if not isinstance(chunk_rows, numbers.Integral) or chunk_rows < 1:
            raise ResultsError(f"{where}: chunk_rows = {chunk_rows!r}; expected an integer >= 1")
        fields, units_list = [], []
        for name, spec in schema.items():
            _check_name(name, f"{where}: column name")
            if not (isinstance(spec, tuple) and len(spec) == 2):
                raise TypeError(f"{where}: schema['{name}'] = {spec!r}; expected a (dtype, units) tuple such as ('float64', 's')")
            fields.append((name, _schema_dtype(spec[0], f"{where}: column '{name}'")))
            units_list.append(_check_units(spec[1], f"{where}: column '{name}'"))
        dtype = np.dtype(fields)
        parent, name = self._new_dataset_parent(path)
        h5_chunk = _table_chunk_rows(dtype.itemsize, chunk_rows)
        ds = _create_dataset(parent, name, shape=(0,), dtype=dtype, maxshape=(None,), chunks=(h5_chunk,))
        _set_table_attrs(ds, [f[0] for f in fields], units_list)
        appender = TableAppender(ds, int(chunk_rows))
        self._appenders.append(appender)
        return appender

    def series_appender(self, group, variables, *, chunk_rows=256):
        """Create time series sharing one time axis and return a buffered appender.

        Parameters
        ----------
        group : str
            Group name under ``/timeseries`` (``"links"`` or ``"/timeseries/links"``).
        variables : dict of str to (int, str)
            ``name -> (n_items, units)``. Each variable becomes a 2-D float32 dataset
            ``/timeseries/<group>/<name>`` of shape ``(n_times, n_items)``.
        chunk_rows : int, default 256
            Time steps buffered before a block is written (chunks are cut along time).

        Returns
        -------
        SeriesAppender

        Raises
        ------
        ResultsError
            If a dataset exists already, ``time_s`` is used as a variable name, ``n_items``
            is below 1, or ``chunk_rows < 1``.
        """
        if isinstance(group, str) and group.strip("/").startswith("timeseries/"):
            group = group.strip("/")[len("timeseries/"):]
        base = _data_path(f"/timeseries/{group}")
        where = f"series group '{base}'"
        if not isinstance(variables, dict) or not variables:
            raise TypeError(f"{where}: variables must be a non-empty dict of name -> (n_items, units)")
        if not isinstance(chunk_rows, numbers.Integral) or chunk_rows < 1:
            raise ResultsError(f"{where}: chunk_rows = {chunk_rows!r}; expected an integer >= 1")
        time_path = f"{base}/time_s"
        parent, _ = self._new_dataset_parent(time_path)
        specs = []
        for name, spec in variables.items():
            _check_name(name, f"{where}: variable name")
            if name == "time_s":
                raise ResultsError(f"{where}: 'time_s' is the time axis; choose another variable name")
            if not (isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], numbers.Integral)):
                raise TypeError(f"{where}: variables['{name}'] = {spec!r}; expected (n_items, units) such as (120, 'veh/h')")
            if spec[0] < 1:
                raise ResultsError(f"{where}: variables['{name}'] has n_items = {spec[0]}; expected an integer >= 1")
            if f"{base}/{name}" in self._h5():
                raise ResultsError(f"dataset '{base}/{name}' is already written; each dataset is written once")
            specs.append((name, int(spec[0]), _check_units(spec[1], f"{where}: variable '{name}'")))
        rows = int(chunk_rows)
        time_ds = _create_dataset(
            parent, "time_s", shape=(0,), dtype="float64", maxshape=(None,), chunks=(min(rows, _CHUNK_BYTES // 8),)
        )
        time_ds.attrs["units"] = "s"
        datasets = []
        for name, n_items, units in specs:
            item_chunk = max(1, min(n_items, _CHUNK_BYTES // 4))
            time_chunk = max(1, min(rows, _CHUNK_BYTES // (4 * item_chunk)))
            ds = _create_dataset(
                parent, name, shape=(0, n_items), dtype="float32", maxshape=(None, n_items), chunks=(time_chunk, item_chunk)
            )
            ds.attrs["units"] = units
            ds.attrs["time_path"] = time_path
            datasets.append(ds)
        appender = SeriesAppender(time_ds, datasets, rows)
        self._appenders.append(appender)
        return appender

    def write_summary(self, name, value, *, units):
        """Write one scalar KPI as the scalar dataset ``/summary/<name>``.

        Parameters
        ----------
        name : str
            KPI name with its unit in it where physical, e.g. ``"mean_response_s"``.
        value : bool, int or float
            The KPI value (NaN allowed). Stored as bool, int64 or float64.
        units : str
            Units of the value.

        Raises
        ------
        ResultsError
            If the name is invalid or already written.
        TypeError
            If ``value`` is not a real number or bool, or ``units`` not a str.
        """
        _check_name(name, "summary name")
        where = f"summary '{name}'"
        _check_units(units, where)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value.item()
        if not isinstance(value, (bool, np.bool_, numbers.Real)):
            raise TypeError(f"{where}: value {value!r} of type {type(value).__name__} is not storable; accepted: bool, int, float")
        parent, _ = self._new_dataset_parent(f"/summary/{name}")
        ds = _create_dataset(parent, name, data=_attr_value(value, where))
        ds.attrs["units"] = units

    # closing ---------------------------------------------------------------------------

    def close(self):
        """Flush appenders, close the file and rename ``<path>.partial`` to ``<path>``.

        Closing twice does nothing.

        Raises
        ------
        ResultsError
            If ``path`` appeared meanwhile and ``overwrite`` is False (the partial file is
            then kept).
        """
        if self._file is None:
            return
        try:
            for appender in self._appenders:
                appender.flush()
        except BaseException:
            self._abort()
            raise
        self._file.close()
        self._file = None
        # Make the bytes durable before the rename makes them visible under the final name.
        with open(self.partial_path, "rb") as fh:
            os.fsync(fh.fileno())
        if self.path.exists() and not self.overwrite:
            raise ResultsError(
                f"results file {str(self.path)!r} appeared while writing; results kept in {str(self.partial_path)!r}"
            )
        os.replace(self.partial_path, self.path)
        logger.info("results written to %s", self.path)

    def _abort(self):
        if self._file is None:
            return
        for appender in self._appenders:
            try:
                appender.flush()
            except Exception:  # the run already failed; keep what can be kept
                logger.exception("could not flush %s while closing a failed run", appender.path)
        self._file.close()
        self._file = None
        logger.warning("run did not finish; partial results left in %s", self.partial_path)


def _set_table_attrs(ds, names, units_list):
    ds.attrs["units"] = np.array(units_list, dtype=_utf8_dtype())
    ds.attrs["columns"] = np.array(names, dtype=_utf8_dtype())


def _schema_dtype(spec, where):
    if spec is str or spec == "str":
        return _utf8_dtype()
    try:
        dtype = np.dtype(spec)
    except TypeError:
        dtype = None
    if dtype is not None:
        if dtype.kind in "biuf":
            return dtype
        if dtype.kind == "S" and dtype.itemsize > 0:
            return _utf8_dtype(dtype.itemsize)
        info = h5py.check_string_dtype(dtype)
        if info is not None and info.length is None:
            return _utf8_dtype()
    raise ResultsError(
        f"{where}: dtype {spec!r} is not accepted; accepted: bool, int8..int64, uint8..uint64, float32, float64, "
        "'S<n>' (fixed-length UTF-8, n bytes) or str (variable-length UTF-8)"
    )


def _cast_column(values, dtype, where):
    """Cast appended values to the column's stored dtype, refusing lossy kind changes."""
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    arr = np.atleast_1d(np.asarray(values))
    if arr.ndim != 1:
        raise ResultsError(f"{where}: expected a scalar or a 1-D array; got shape {arr.shape}")
    info = h5py.check_string_dtype(dtype)
    if info is None:
        if arr.dtype.kind not in "biuf" or not np.can_cast(arr.dtype, dtype, "same_kind"):
            raise ResultsError(f"{where}: values of dtype {arr.dtype} cannot be stored in a {dtype} column without changing kind")
        if dtype.kind in "iu" and arr.dtype.kind in "iu" and arr.size:
            lim = np.iinfo(dtype)
            if arr.min() < lim.min or arr.max() > lim.max:
                raise ResultsError(f"{where}: values {arr.min()}..{arr.max()} overflow {dtype} ({lim.min}..{lim.max})")
        return arr.astype(dtype)
    if arr.dtype.kind not in "USO":
        raise ResultsError(f"{where}: values of dtype {arr.dtype} cannot be stored in a str column; give str values")
    enc = _encode_fixed(arr, where)
    if info.length is None:
        return np.array([b.decode("utf-8") for b in enc.tolist()], dtype=object)
    too_long = np.char.str_len(enc) > info.length
    if too_long.any():
        i = int(np.argmax(too_long))
        raise ResultsError(
            f"{where}: value {enc[i].decode('utf-8')!r} is {len(enc[i])} bytes in UTF-8; the column holds at most "
            f"{info.length} bytes (schema dtype 'S{info.length}'); widen it or use str"
        )
    return enc.astype(dtype)


class TableAppender:
    """Buffered appender of rows to a resizable compound dataset.

    Obtain one from :meth:`ResultsWriter.table_appender`. Rows are buffered and written in
    blocks of ``chunk_rows``; the rest is written by :meth:`flush`, which the writer calls
    on close.

    Examples
    --------
    ``app.append(trip_id=[0, 1], arrive_s=[12.5, float("nan")])`` or
    ``app.append({"trip_id": 2, "arrive_s": 30.0})`` (scalars append one row).
    """

    def __init__(self, dataset, chunk_rows):
        self._ds = dataset
        self.path = dataset.name
        self.columns = list(dataset.dtype.names)
        self.chunk_rows = chunk_rows
        self._blocks = []
        self._pending = 0

    @property
    def n_rows(self):
        """int: Rows appended so far, written or still buffered."""
        return self._ds.shape[0] + self._pending

    def append(self, columns=None, /, **kwargs):
        """Append rows given as ``column=values`` keywords or as one dict.

        Parameters
        ----------
        columns : dict of str to array_like, optional
            Values of every column (1-D arrays of equal length, or scalars for one row).
        **kwargs
            The same, as keywords (not together with ``columns``).

        Raises
        ------
        ResultsError
            If a column is missing or unknown, lengths differ, a value's kind does not match
            its column (float into int, number into str), an integer overflows, or a str is
            longer than a fixed-length column.
        """
        where = f"table '{self.path}'"
        if columns is not None and kwargs:
            raise TypeError(f"{where}: give columns as one dict or as keywords, not both")
        values = dict(columns) if columns is not None else kwargs
        missing = [c for c in self.columns if c not in values]
        unknown = [c for c in values if c not in self.columns]
        if missing or unknown:
            raise ResultsError(f"{where}: append got unknown columns {unknown} and lacks {missing}; the columns are {self.columns}")
        dtype = self._ds.dtype
        arrays = {c: _cast_column(values[c], dtype.fields[c][0], f"{where}: column '{c}'") for c in self.columns}
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) > 1:
            found = ", ".join(f"'{c}': {len(a)}" for c, a in arrays.items())
            raise ResultsError(f"{where}: appended columns differ in length ({found})")
        n = lengths.pop()
        if n == 0:
            return
        block = np.empty(n, dtype=dtype)
        for c, arr in arrays.items():
            block[c] = arr
        self._blocks.append(block)
        self._pending += n
        if self._pending >= self.chunk_rows:
            self._write(full_blocks_only=True)

    def _write(self, *, full_blocks_only):
        if not self._pending:
            return
        rows = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
        n_write = (len(rows) // self.chunk_rows) * self.chunk_rows if full_blocks_only else len(rows)
        if n_write:
            start = self._ds.shape[0]
            self._ds.resize((start + n_write,))
            self._ds[start:start + n_write] = rows[:n_write]
        rest = rows[n_write:]
        self._blocks = [rest] if len(rest) else []
        self._pending = len(rest)

    def flush(self):
        """Write every buffered row."""
        self._write(full_blocks_only=False)


class SeriesAppender:
    """Buffered appender of time steps to 2-D float32 series sharing one ``time_s`` axis.

    Obtain one from :meth:`ResultsWriter.series_appender`.

    Examples
    --------
    ``app.append(60.0, flow_veh_per_h=flow)`` with ``flow`` of shape ``(n_items,)``, or
    ``app.append(t_s, flow_veh_per_h=block)`` with ``t_s`` of shape ``(k,)`` and ``block`` of
    shape ``(k, n_items)``.
    """

    def __init__(self, time_ds, datasets, chunk_rows):
        self._time = time_ds
        self._ds = {ds.name.rsplit("/", 1)[1]: ds for ds in datasets}
        self.path = time_ds.parent.name
        self.chunk_rows = chunk_rows
        self._t_blocks = []
        self._blocks = {name: [] for name in self._ds}
        self._pending = 0
        self._last_t = -np.inf

    @property
    def n_times(self):
        """int: Time steps appended so far, written or still buffered."""
        return self._time.shape[0] + self._pending

    def append(self, time_s, **values):
        """Append one time step (scalar ``time_s``) or several (1-D ``time_s``).

        Parameters
        ----------
        time_s : float or array_like of float, shape (k,)
            Simulation time of each step in seconds; strictly increasing across calls.
        **values : array_like
            One array per variable, of shape ``(n_items,)`` for a scalar ``time_s`` or
            ``(k, n_items)``; cast to float32.

        Raises
        ------
        ResultsError
            If a variable is missing or unknown, a shape does not match, a value is not
            numeric, or time is not finite and strictly increasing.
        """
        where = f"series group '{self.path}'"
        t = np.asarray(time_s, dtype=float)
        single = t.ndim == 0
        t = np.atleast_1d(t)
        if t.ndim != 1:
            raise ResultsError(f"{where}: time_s must be a scalar or 1-D; got shape {t.shape}")
        if t.size and (not np.all(np.isfinite(t)) or t[0] <= self._last_t or np.any(np.diff(t) <= 0)):
            raise ResultsError(f"{where}: time_s must be finite and strictly increasing (last written {self._last_t} s); got {t.tolist()[:5]}")
        missing = [c for c in self._ds if c not in values]
        unknown = [c for c in values if c not in self._ds]
        if missing or unknown:
            raise ResultsError(f"{where}: append got unknown variables {unknown} and lacks {missing}; the variables are {list(self._ds)}")
        blocks = {}
        for name, ds in self._ds.items():
            arr = np.asarray(values[name])
            if arr.dtype.kind not in "biuf":
                raise ResultsError(f"{where}: variable '{name}' has dtype {arr.dtype}; expected numbers")
            if single:
                arr = arr[np.newaxis]
            expected = (len(t), ds.shape[1])
            if arr.shape != expected:
                raise ResultsError(f"{where}: variable '{name}' has shape {arr.shape}; expected {expected[1:] if single else expected}")
            blocks[name] = arr.astype(np.float32)
        if not t.size:
            return
        self._t_blocks.append(t)
        for name, arr in blocks.items():
            self._blocks[name].append(arr)
        self._pending += len(t)
        self._last_t = t[-1]
        if self._pending >= self.chunk_rows:
            self.flush()

    def flush(self):
        """Write every buffered time step."""
        if not self._pending:
            return
        start = self._time.shape[0]
        stop = start + self._pending
        self._time.resize((stop,))
        self._time[start:stop] = np.concatenate(self._t_blocks)
        for name, ds in self._ds.items():
            ds.resize((stop, ds.shape[1]))
            ds[start:stop] = np.concatenate(self._blocks[name])
            self._blocks[name] = []
        self._t_blocks = []
        self._pending = 0


# --------------------------------------------------------------------------------------
# reader


def open_results(path):
    """Open a finished results file read-only.

    Parameters
    ----------
    path : str or os.PathLike
        Path of a file written by :class:`ResultsWriter`.

    Returns
    -------
    Results

    Raises
    ------
    ResultsError
        If the file is missing, is a ``.partial`` file, is not HDF5, or its ``format`` or
        ``format_version`` attribute is not the one this version reads.
    """
    return Results(path)


def _py(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Results:
    """Read-only view of a results file; see :func:`open_results`.

    Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, path):
        self.path = Path(os.fspath(path))
        self._file = None
        name = str(self.path)
        if name.endswith(PARTIAL_SUFFIX):
            raise ResultsError(
                f"{name!r} is an unfinished results file (its run did not close cleanly); "
                "inspect it with h5py or h5dump, or rerun the scenario"
            )
        if not self.path.is_file():
            hint = ""
            if Path(name + PARTIAL_SUFFIX).exists():
                hint = f"; {name + PARTIAL_SUFFIX!r} exists, so the run did not finish"
            raise ResultsError(f"no results file at {name!r}{hint}")
        if not h5py.is_hdf5(self.path):
            raise ResultsError(f"{name!r} is not an HDF5 file; expected a twin results file (format '{FORMAT}')")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise ResultsError(f"cannot open results file {name!r}: {exc}") from exc
        fmt = _py(self._file.attrs.get("format"))
        version = _py(self._file.attrs.get("format_version"))
        if fmt != FORMAT:
            self.close()
            raise ResultsError(f"{name!r}: root attribute format = {fmt!r}; expected {FORMAT!r}")
        if version != FORMAT_VERSION:
            self.close()
            raise ResultsError(
                f"{name!r}: format_version = {version!r}; this twin {__version__} reads format_version {FORMAT_VERSION}"
            )
        self.created_by = _py(self._file.attrs.get("created_by"))
        self.format_version = version

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def close(self):
        """Close the file. Closing twice does nothing."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _h5(self):
        if self._file is None:
            raise ResultsError(f"results file {str(self.path)!r} is closed; open it again with open_results")
        return self._file

    def _dataset(self, path):
        if not isinstance(path, str):
            raise TypeError(f"dataset path must be a str; got {type(path).__name__}")
        full = "/" + path.strip("/")
        obj = self._h5().get(full)
        if not isinstance(obj, h5py.Dataset):
            close = difflib.get_close_matches(full, self.keys(), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else "; list them with keys()"
            raise ResultsError(f"no dataset '{full}' in {str(self.path)!r}{hint}")
        return obj

    @property
    def meta(self):
        """dict: ``/meta`` attributes and text/JSON datasets, by name (JSON decoded)."""
        group = self._h5()["/meta"]
        out = {name: _py(value) for name, value in group.attrs.items()}
        for name, ds in group.items():
            text = ds.asstr()[()]
            out[name] = json.loads(text) if _py(ds.attrs.get("encoding")) == "json" else text
        return dict(sorted(out.items()))

    def keys(self, group=None):
        """Return the absolute paths of all datasets, sorted, optionally under ``group``.

        Raises
        ------
        ResultsError
            If ``group`` is not a group of the file.
        """
        root = self._h5()
        if group is not None:
            gpath = "/" + str(group).strip("/")
            if not isinstance(root.get(gpath), h5py.Group):
                raise ResultsError(f"no group '{gpath}' in {str(self.path)!r}; top-level groups are {list(GROUPS)}")
            root = root[gpath]
        found = []
        root.visititems(lambda name, obj: found.append(obj.name) if isinstance(obj, h5py.Dataset) else None)
        return sorted(found)

    def array(self, path):
        """Return a dataset's values: str datasets as str arrays, tables as structured arrays."""
        ds = self._dataset(path)
        if h5py.check_string_dtype(ds.dtype) is not None:
            data = ds.asstr()[()]
            return data.astype(str) if isinstance(data, np.ndarray) else data
        return ds[()]

    def units(self, path):
        """Return the units of a dataset (str), or of each column of a table (dict)."""
        ds = self._dataset(path)
        units = ds.attrs.get("units")
        if ds.dtype.names is not None:
            return dict(zip(ds.dtype.names, _py(units)))
        return _py(units)

    def table(self, path):
        """Return a table as a pandas.DataFrame, str columns decoded from UTF-8.

        Raises
        ------
        ResultsError
            If the dataset is not a table (a 1-D compound dataset).
        """
        ds = self._dataset(path)
        if ds.dtype.names is None or ds.ndim != 1:
            raise ResultsError(f"dataset '{ds.name}' is not a table (a 1-D compound dataset); read it with array()")
        rows = ds[()]
        data = {}
        for name in ds.dtype.names:
            col = rows[name]
            info = h5py.check_string_dtype(ds.dtype.fields[name][0])
            if info is not None:
                if info.length is None:
                    col = np.array([_py(v) for v in col.tolist()], dtype=object)
                else:
                    col = np.char.decode(col, "utf-8")
            data[name] = col
        return pd.DataFrame(data)

    def series(self, path):
        """Return ``(time_s, values)`` of a 2-D time series written with a ``time_path``."""
        ds = self._dataset(path)
        time_path = _py(ds.attrs.get("time_path"))
        if time_path is None:
            raise ResultsError(f"dataset '{ds.name}' has no 'time_path' attribute; it is not a time series")
        return self.array(time_path), ds[()]

    def summary(self):
        """Return the scalar KPIs of ``/summary`` as a DataFrame with columns name, value, units."""
        group = self._h5()["/summary"]
        rows = [
            {"name": name, "value": _py(obj[()]), "units": _py(obj.attrs.get("units"))}
            for name, obj in sorted(group.items())
            if isinstance(obj, h5py.Dataset) and obj.shape == ()
        ]
        return pd.DataFrame(rows, columns=["name", "value", "units"])
