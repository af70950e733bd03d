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

# Modules and names the single-file twin.results had at module level; kept so that
# attribute access such as twin.results.np or twin.results.Path still resolves.
import difflib  # noqa: F401
import json  # noqa: F401
import logging
import numbers  # noqa: F401
import os  # noqa: F401
from pathlib import Path  # noqa: F401

import h5py  # noqa: F401
import numpy as np  # noqa: F401
import pandas as pd  # noqa: F401

# Everything below was defined here before the split into writer, appenders, reader and
# format helpers; each name, private ones included, is re-exported from where it now lives.
from twin._results_appenders import SeriesAppender, TableAppender, _cast_column  # noqa: F401
from twin._results_format import (  # noqa: F401
    _ACCEPTED_KINDS,
    _CHUNK_BYTES,
    _COMPRESS_MIN_ROWS,
    _DATA_GROUPS,
    _GZIP_LEVEL,
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
    _encode_fixed,
    _group_create_plist,
    _pow2_floor,
    _require_group,
    _table_chunk_rows,
    _utf8_dtype,
)
from twin._results_reader import Results, _py, open_results  # noqa: F401
from twin._results_writer import ResultsWriter, _schema_dtype, _set_table_attrs  # noqa: F401
from twin._version import __version__  # noqa: F401
from twin.errors import ResultsError  # noqa: F401

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
