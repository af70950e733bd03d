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

This module is the public face of the store: the code lives in ``twin._results_writer``
(:class:`ResultsWriter`), ``twin._results_appenders`` (:class:`TableAppender`,
:class:`SeriesAppender`), ``twin._results_reader`` (:func:`open_results`, :class:`Results`)
and ``twin._results_format`` (constants and encoding helpers), and every name is
re-exported here; import from ``twin.results``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from twin._results_appenders import SeriesAppender, TableAppender
from twin._results_format import FORMAT, FORMAT_VERSION, GROUPS, PARTIAL_SUFFIX
from twin._results_reader import Results, open_results
from twin._results_writer import ResultsWriter
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
    "check_out_path",
]

logger = logging.getLogger(__name__)


def check_out_path(out, *, overwrite=False) -> None:
    """Refuse, before any work, a results path that cannot be written: a folder, an existing file
    without ``overwrite``, a missing or read-only folder (:class:`ResultsError` naming it)."""
    out = Path(out)
    if out.is_dir():
        raise ResultsError(f"cannot write results to {str(out)!r}: it is a folder; give a file name such as "
                           f"{str(out / 'run.h5')!r}")
    if out.exists() and not overwrite:
        raise ResultsError(f"results file {str(out)!r} already exists; pass overwrite=True (--overwrite)")
    if not out.parent.is_dir():
        raise ResultsError(f"cannot write results to {str(out)!r}: folder {str(out.parent)!r} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise ResultsError(f"cannot write results to {str(out)!r}: folder {str(out.parent)!r} is not writable "
                           f"(read-only or no permission)")
