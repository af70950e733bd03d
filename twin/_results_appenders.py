"""Buffered appenders of the results store (:mod:`twin.results`): table rows and time steps.

:class:`TableAppender` appends rows to a resizable compound dataset and
:class:`SeriesAppender` appends time steps to 2-D float32 series sharing one ``time_s``
axis; both buffer in memory and write whole blocks. Obtain them from
:class:`twin.results.ResultsWriter`.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from twin._results_format import _encode_fixed
from twin.errors import ResultsError

__all__ = ["TableAppender", "SeriesAppender"]


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
