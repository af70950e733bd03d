"""Writer of the results store (:mod:`twin.results`): one run's HDF5 file, written atomically.

:class:`ResultsWriter` creates ``<path>.partial`` with the top-level groups, writes meta
items, arrays, tables and KPIs, hands out buffered appenders, and renames the file to
``<path>`` only on a clean close.
"""

from __future__ import annotations

import errno
import json
import logging
import numbers
import os
import re
import signal
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from twin._results_appenders import SeriesAppender, TableAppender
from twin._results_format import (
    _CHUNK_BYTES,
    _COMPRESS_MIN_ROWS,
    _META_ATTR_MAX_CHARS,
    _RESERVED_ATTRS,
    FORMAT,
    FORMAT_VERSION,
    GROUPS,
    PARTIAL_SUFFIX,
    _as_storable,
    _attr_value,
    _check_name,
    _check_units,
    _create_dataset,
    _data_path,
    _require_group,
    _table_chunk_rows,
    _utf8_dtype,
)
from twin._version import __version__
from twin.errors import ResultsError

__all__ = ["ResultsWriter"]

# Log under the public module's name, as before the split, so logging set up for
# "twin.results" still applies.
logger = logging.getLogger("twin.results")


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
        # errors h5py cannot raise (an object's release after a failed write) are held until the
        # block ends: dropped when a failed write is reported, shown as usual otherwise
        # (Cython prints them through sys.excepthook, then sys.unraisablehook)
        # (the hooks are the process's: only the main thread's writers hold them)
        # Ctrl-C while HDF5 writes could be lost in h5py's C code: it is noted, and raised as
        # KeyboardInterrupt before the next dataset (a second Ctrl-C raises at once)
        self._held, self._hooks, self._sigint, self._interrupted = [], None, None, False
        if threading.current_thread() is threading.main_thread():
            self._hooks = (sys.unraisablehook, sys.excepthook)
            sys.unraisablehook = lambda u: self._held.append((0, u))
            sys.excepthook = lambda *e: self._held.append((1, e))
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:    # (not when ignored, as
                self._sigint = signal.signal(signal.SIGINT, self._note_interrupt)  # under nohup, or handled)
        return self

    def _note_interrupt(self, signum, frame):
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True

    def __exit__(self, exc_type, exc, tb):
        failed = None
        try:
            if exc_type is None and getattr(self, "_interrupted", False):
                self._abort()
                raise KeyboardInterrupt
            if exc_type is None:
                try:
                    self.close()
                except (OSError, RuntimeError) as err:
                    if _write_failure(err) is None:
                        raise
                    failed = err
            elif isinstance(exc, (OSError, RuntimeError)) and _write_failure(exc) is not None:
                failed = exc
            else:
                self._abort()
            if failed is not None:
                self._fail(failed)
        finally:
            if getattr(self, "_sigint", None) is not None:
                signal.signal(signal.SIGINT, self._sigint)
            if getattr(self, "_hooks", None) is not None:
                sys.unraisablehook, sys.excepthook = self._hooks
            if failed is None:
                for kind, held in self._held:
                    sys.excepthook(*held) if kind else sys.unraisablehook(held)
        return False

    def _fail(self, exc):
        """The file system refused a write (disk full, file size limit, I/O error): drop the
        partial file, which holds no usable results and takes the space, and say so."""
        import gc

        try:
            if self._file is not None:
                self._file.close()
        except Exception:                   # (HDF5 cannot flush either; the file is dropped anyway)
            pass
        finally:
            self._file = None
            gc.collect()
        self.partial_path.unlink(missing_ok=True)
        err = ResultsError(f"could not write results file {str(self.path)!r}: {_write_failure(exc)} (is the disk "
                           f"full?); the unfinished {str(self.partial_path)!r} was removed; free some space and run "
                           f"again")
        # HDF5 may still hold the failed file's objects: a process should end soon after this
        # error (twin's commands exit at once) rather than write more HDF5 files
        err.hdf5_unusable = True
        raise err from None

    @property
    def closed(self):
        """bool: True once :meth:`close` (or a failed ``with`` block) closed the file."""
        return self._file is None

    def _h5(self):
        if self._file is None:
            raise ResultsError(f"results writer for {str(self.path)!r} is closed; open a new ResultsWriter")
        if getattr(self, "_interrupted", False):
            raise KeyboardInterrupt
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


def _write_failure(exc):
    """Why the file system refused HDF5's write, from h5py's error (None: another error)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO):
        return os.strerror(exc.errno)
    text = str(exc)
    if "write failed" in text or "No space left" in text or "File too large" in text:
        m = re.search(r"error message = '([^']*)'", text)
        return m.group(1) if m else "the write failed"
    return None


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
