"""Reader of the results store (:mod:`twin.results`): :func:`open_results` and :class:`Results`.

A finished results file is opened read-only after its ``format`` and ``format_version``
root attributes are checked; meta items, arrays, tables (as pandas DataFrames), time
series and KPIs are read back with their units.
"""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from twin._results_format import FORMAT, FORMAT_VERSION, GROUPS, PARTIAL_SUFFIX
from twin._version import __version__
from twin.errors import ResultsError

__all__ = ["open_results", "Results"]


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
        self._refuse_outside_data(name)
        self.created_by = _py(self._file.attrs.get("created_by"))
        self.format_version = version

    def _refuse_outside_data(self, name):
        """Reading a results file never touches another file: external links (to another HDF5
        file) and datasets with external storage (raw bytes of any local file) are refused."""
        bad = []

        def link(path, lnk):
            if isinstance(lnk, h5py.ExternalLink):
                bad.append(f"/{path} is an external link to {lnk.filename!r}")

        def obj(path, o):
            if isinstance(o, h5py.Dataset) and o.external:
                bad.append(f"/{path} keeps its data in external file(s) {[e[0] for e in o.external]}")

        self._file.visititems_links(link)
        self._file.visititems(obj)
        if bad:
            self.close()
            raise ResultsError(f"{name!r}: refused, a results file keeps all its data inside itself: "
                               f"{'; '.join(bad[:3])}")

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
            try:
                out[name] = json.loads(text) if _py(ds.attrs.get("encoding")) == "json" else text
            except (ValueError, RecursionError):
                raise ResultsError(f"{self.path}: /meta/{name} is not valid JSON (or nested too deeply)") from None
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
