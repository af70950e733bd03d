"""Tests of the results store (``twin.results``) against docs/results-format.md."""

import shutil
import subprocess

import h5py
import numpy as np
import pandas as pd
import pytest

from twin._version import __version__
from twin.errors import ResultsError
from twin.results import FORMAT, FORMAT_VERSION, GROUPS, ResultsWriter, open_results


@pytest.fixture
def path(tmp_path):
    return tmp_path / "run.h5"


def _calls(rng, n=50):
    return {
        "call_id": np.arange(n, dtype=np.int64),
        "zone_idx": rng.integers(0, 9, n).astype(np.int32),
        "arrive_s": np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 3600.0),
        "served": rng.random(n) < 0.5,
        "kind": np.array(["fire", "médical", "police", ""])[rng.integers(0, 4, n)],
    }


CALL_UNITS = {"call_id": "", "zone_idx": "", "arrive_s": "s", "served": "", "kind": ""}


def _write_sample(path, rng, **kwargs):
    calls = _calls(rng)
    with ResultsWriter(path, meta={"seed": 7, "scenario": "[traffic]\ndt_s = 5\n"}, **kwargs) as out:
        out.write_array("/network/length_m", np.linspace(10.0, 500.0, 40), units="m")
        out.write_table("/events/calls", calls, units=CALL_UNITS)
        series = out.series_appender("links", {"flow_veh_per_h": (4, "veh/h")}, chunk_rows=3)
        for k in range(7):
            series.append(5.0 * k, flow_veh_per_h=np.arange(4) * k)
        out.write_summary("mean_response_s", 431.5, units="s")
    return calls


# --- round trips ---------------------------------------------------------------------


def test_root_attributes_and_groups(path, rng):
    _write_sample(path, rng)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT
        assert f.attrs["format_version"] == FORMAT_VERSION == 1
        assert f.attrs["created_by"] == f"twin {__version__}"
        for group in GROUPS:
            assert isinstance(f[group], h5py.Group)
    with open_results(path) as res:
        assert res.created_by == f"twin {__version__}"


def test_array_round_trip(path):
    data = {
        "/network/x_m": np.linspace(0.0, 1.0, 100),
        "/network/link_idx": np.arange(30, dtype=np.int32),
        "/network/closed": np.array([True, False, True]),
        "/network/grid": np.arange(60, dtype=np.float32).reshape(20, 3),
        "/network/names": np.array(["A", "Bé", ""]),
        "/network/empty_s": np.zeros(0),
        "/network/scalar_s": np.float64(np.nan),
    }
    with ResultsWriter(path) as out:
        for p, arr in data.items():
            out.write_array(p, arr, units="m", attrs={"note": "test", "crs": [1, 2]})
    with open_results(path) as res:
        for p, arr in data.items():
            got = res.array(p)
            assert got.dtype == arr.dtype
            np.testing.assert_array_equal(got, arr)
            assert res.units(p) == "m"
    with h5py.File(path, "r") as f:
        assert f["/network/x_m"].compression == "gzip"
        assert f["/network/x_m"].shuffle
        assert f["/network/closed"].chunks is None  # a few rows stay contiguous
        assert f["/network/names"].attrs["note"] == "test"


def test_table_round_trip_keeps_types_and_nan(path, rng):
    calls = _calls(rng)
    with ResultsWriter(path) as out:
        out.write_table("/events/calls", calls, units=CALL_UNITS)
    with open_results(path) as res:
        df = res.table("/events/calls")
        assert list(df.columns) == list(calls)
        for name, values in calls.items():
            if name == "kind":
                assert df[name].tolist() == values.tolist()
            else:
                assert df[name].dtype == values.dtype
                np.testing.assert_array_equal(df[name].to_numpy(), values)  # NaN == NaN here
        assert df["arrive_s"].isna().sum() == np.isnan(calls["arrive_s"]).sum() > 0
        assert res.units("/events/calls") == CALL_UNITS
    with h5py.File(path, "r") as f:
        ds = f["/events/calls"]
        assert ds.ndim == 1 and ds.maxshape == (None,) and ds.chunks is not None
        assert list(ds.attrs["columns"]) == list(calls)
        assert list(ds.attrs["units"]) == list(CALL_UNITS.values())


def test_table_from_dataframe_and_object_strings(path):
    df = pd.DataFrame({"trip_id": [3, 1, 2], "mode": pd.Series(["car", "bus", "walk"], dtype=object)})
    with ResultsWriter(path) as out:
        out.write_table("/events/trips", df, units={"trip_id": "", "mode": ""})
        out.write_table("/network/empty", {"a_s": np.zeros(0)}, units={"a_s": "s"})
    with open_results(path) as res:
        got = res.table("/events/trips")
        assert got["trip_id"].tolist() == [3, 1, 2]
        assert got["mode"].tolist() == ["car", "bus", "walk"]
        assert len(res.table("/network/empty")) == 0


def test_pandas_reads_table_directly(path, rng):
    calls = _calls(rng)
    with ResultsWriter(path) as out:
        out.write_table("/events/calls", calls, units=CALL_UNITS)
    with h5py.File(path, "r") as f:
        df = pd.DataFrame(f["/events/calls"][...])
    assert list(df.columns) == list(calls)
    np.testing.assert_array_equal(df["call_id"].to_numpy(), calls["call_id"])
    assert df["kind"].str.decode("utf-8").tolist() == calls["kind"].tolist()


def test_appender_across_several_flushes(path):
    schema = {"trip_id": ("int64", ""), "arrive_s": ("float64", "s"), "ok": ("bool", ""),
              "mode": (str, ""), "code": ("S4", "")}
    trip_id, arrive_s = [], []
    with ResultsWriter(path) as out:
        app = out.table_appender("/events/trips", schema, chunk_rows=8)
        for k in range(7):  # 7 x 5 rows: four full blocks of 8 written, 3 rows flushed on close
            ids = np.arange(5) + 5 * k
            arr = np.where(ids % 4 == 0, np.nan, ids * 10.0)
            app.append(trip_id=ids, arrive_s=arr, ok=ids % 2 == 0, mode=["car", "bus", "é", "walk", ""],
                       code=["a", "bb", "ccc", "dddd", "é"])
            trip_id.extend(ids.tolist())
            arrive_s.extend(arr.tolist())
            assert app.n_rows == 5 * (k + 1)
        assert out._h5()["/events/trips"].shape[0] == 32
        app.append({"trip_id": 35, "arrive_s": 1.0, "ok": True, "mode": "x", "code": "y"})  # one row
        trip_id.append(35)
        arrive_s.append(1.0)
    with open_results(path) as res:
        df = res.table("/events/trips")
        assert df["trip_id"].tolist() == trip_id
        np.testing.assert_array_equal(df["arrive_s"].to_numpy(), np.array(arrive_s))
        assert df["mode"].tolist()[:5] == ["car", "bus", "é", "walk", ""]
        assert df["code"].tolist()[:5] == ["a", "bb", "ccc", "dddd", "é"]
        assert df["ok"].dtype == bool
        assert res.units("/events/trips") == {k: v[1] for k, v in schema.items()}


def test_empty_appender_still_creates_table(path):
    with ResultsWriter(path) as out:
        out.table_appender("/events/calls", {"call_id": ("int32", "")})
    with open_results(path) as res:
        assert res.table("/events/calls").shape == (0, 1)


def test_series_round_trip(path, rng):
    _write_sample(path, rng)
    with open_results(path) as res:
        t_s, flow = res.series("/timeseries/links/flow_veh_per_h")
        np.testing.assert_array_equal(t_s, 5.0 * np.arange(7))
        assert flow.dtype == np.float32 and flow.shape == (7, 4)
        np.testing.assert_array_equal(flow, np.outer(np.arange(7), np.arange(4)))
        assert res.units("/timeseries/links/time_s") == "s"
        assert res.units("/timeseries/links/flow_veh_per_h") == "veh/h"


def test_meta_round_trip(path):
    scenario = "[traffic]\ndt_s = 5\n"
    with ResultsWriter(path, meta={"seed": 7, "scenario": scenario}) as out:
        out.write_meta(streams=["demand", "population"], params={"b": 1.5, "a": [1, 2]},
                       name="tiny", dt_s=5.0, flag=True, seed_np=np.int64(3), long="x" * 2000)
    with open_results(path) as res:
        meta = res.meta
    assert meta == {"seed": 7, "scenario": scenario, "streams": ["demand", "population"],
                    "params": {"a": [1, 2], "b": 1.5}, "name": "tiny", "dt_s": 5.0, "flag": True,
                    "seed_np": 3, "long": "x" * 2000}
    assert type(meta["seed"]) is int and type(meta["flag"]) is bool
    with h5py.File(path, "r") as f:
        assert f["/meta"].attrs["seed"] == 7
        assert f["/meta/scenario"].attrs["encoding"] == "text"
        assert f["/meta/params"].attrs["encoding"] == "json"


def test_summary_round_trip(path):
    with ResultsWriter(path) as out:
        out.write_summary("mean_response_s", 431.5, units="s")
        out.write_summary("n_calls", 12, units="1")
        out.write_summary("unfinished_s", float("nan"), units="s")
    with open_results(path) as res:
        df = res.summary()
        assert df["name"].tolist() == ["mean_response_s", "n_calls", "unfinished_s"]
        assert df["units"].tolist() == ["s", "1", "s"]
        assert df["value"].iloc[:2].tolist() == [431.5, 12]
        assert np.isnan(df["value"].iloc[2])
        assert res.array("/summary/n_calls") == 12


def test_every_dataset_has_units(path, rng):
    _write_sample(path, rng)
    with ResultsWriter(path, overwrite=True, meta={"streams": ["a"]}) as out:
        out.table_appender("/events/trips", {"trip_id": ("int64", "")}).append(trip_id=[1, 2])
        out.write_table("/events/calls", _calls(rng), units=CALL_UNITS)
        out.write_summary("n", 1, units="1")
        out.write_array("/checkpoints/x", np.zeros(3), units="")
    missing = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            units = obj.attrs.get("units")
            if units is None:
                missing.append(name)
            elif obj.dtype.names is not None:
                assert len(units) == len(obj.dtype.names), name
                assert all(isinstance(u, str) for u in units), name
            else:
                assert isinstance(units, str), name

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    assert missing == []


def test_same_data_gives_identical_bytes(tmp_path):
    paths = [tmp_path / "a.h5", tmp_path / "b.h5"]
    for p in paths:
        rng = np.random.default_rng(5)
        _write_sample(p, rng)
        with ResultsWriter(p, overwrite=True, meta={"streams": ["demand"]}) as out:
            app = out.table_appender("/events/trips", {"m": (str, ""), "t_s": ("float64", "s")}, chunk_rows=4)
            for _ in range(3):
                app.append(m=["car", "bus", "walk"], t_s=rng.random(3))
            out.write_table("/events/calls", _calls(rng), units=CALL_UNITS)
    assert paths[0].read_bytes() == paths[1].read_bytes()


# --- the .partial rule and overwriting -----------------------------------------------


def test_partial_left_and_final_missing_when_block_raises(path):
    partial = path.with_name(path.name + ".partial")
    with pytest.raises(RuntimeError, match="boom"):
        with ResultsWriter(path) as out:
            out.table_appender("/events/trips", {"trip_id": ("int64", "")}).append(trip_id=[1, 2, 3])
            assert partial.exists() and not path.exists()
            raise RuntimeError("boom")
    assert partial.exists()
    assert not path.exists()
    with h5py.File(partial, "r") as f:  # closed cleanly, buffered rows kept for inspection
        assert f["/events/trips"].shape == (3,)
    with pytest.raises(ResultsError, match=r"run\.h5\.partial.*exists, so the run did not finish"):
        open_results(path)
    with pytest.raises(ResultsError, match="unfinished results file"):
        open_results(partial)


def test_clean_close_renames(path):
    out = ResultsWriter(path)
    assert out.partial_path.exists() and not path.exists()
    out.close()
    out.close()  # idempotent
    assert path.exists() and not out.partial_path.exists()
    with pytest.raises(ResultsError, match="is closed"):
        out.write_summary("n", 1, units="1")


def test_existing_file_needs_overwrite(path, rng):
    _write_sample(path, rng)
    before = path.read_bytes()
    with pytest.raises(ResultsError, match="already exists; pass overwrite=True"):
        ResultsWriter(path)
    assert path.read_bytes() == before
    with pytest.raises(RuntimeError):
        with ResultsWriter(path, overwrite=True) as out:
            out.write_summary("n", 1, units="1")
            raise RuntimeError("crash")
    assert path.read_bytes() == before  # a failed overwrite leaves the old file alone
    with ResultsWriter(path, overwrite=True) as out:
        out.write_summary("n", 2, units="1")
    with open_results(path) as res:
        assert res.keys() == ["/summary/n"]


def test_stale_partial_is_replaced(path):
    path.with_name(path.name + ".partial").write_bytes(b"garbage")
    with ResultsWriter(path) as out:
        out.write_summary("n", 1, units="1")
    with open_results(path) as res:
        assert res.summary()["value"].tolist() == [1]


# --- writer validation ---------------------------------------------------------------


def test_table_column_without_units(path):
    with ResultsWriter(path) as out:
        with pytest.raises(ResultsError, match=r"table '/events/calls': column 'arrive_s' has no units; give units=\{'arrive_s'"):
            out.write_table("/events/calls", {"call_id": [1], "arrive_s": [2.0]}, units={"call_id": ""})
        with pytest.raises(ResultsError, match=r"units given for unknown column\(s\) \['arive_s'\]"):
            out.write_table("/events/calls", {"arrive_s": [2.0]}, units={"arrive_s": "s", "arive_s": "s"})
        with pytest.raises(TypeError, match="units must be a str"):
            out.write_table("/events/calls", {"arrive_s": [2.0]}, units={"arrive_s": 1})


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ({"a": np.array(["x", None], dtype=object)}, r"column 'a': object values must all be str; found NoneType"),
        ({"a": [1.0, 2.0], "b": [1.0]}, r"columns differ in length \('a': 2, 'b': 1\)"),
        ({"a": np.zeros((2, 2))}, r"column 'a': expected a 1-D array; got shape \(2, 2\)"),
        ({"a": np.array([1 + 2j])}, r"column 'a': dtype complex128 cannot be stored; accepted: bool"),
        ({"a": np.array(["2024-01-01"], dtype="datetime64[D]")}, "cannot be stored"),
        ({}, "no columns given"),
    ],
)
def test_table_rejects_bad_columns(path, columns, match):
    with ResultsWriter(path) as out:
        with pytest.raises(ResultsError, match=match):
            out.write_table("/events/t", columns, units={k: "" for k in columns})


def test_dataframe_with_missing_strings_is_rejected(path):
    df = pd.DataFrame({"mode": ["car", None]})
    with ResultsWriter(path) as out:
        with pytest.raises(ResultsError, match="column 'mode': object values must all be str"):
            out.write_table("/events/trips", df, units={"mode": ""})


@pytest.mark.parametrize("bad", ["/meta/x", "/elsewhere/x", "network", "/network/../x", "/network/"])
def test_write_array_rejects_paths(path, bad):
    with ResultsWriter(path) as out:
        with pytest.raises(ResultsError, match=r"expected '/<group>/<name>' with <group> one of /network"):
            out.write_array(bad, [1.0], units="m")


def test_write_once_and_units_required(path):
    with ResultsWriter(path) as out:
        out.write_array("/network/x_m", [1.0], units="m")
        with pytest.raises(ResultsError, match="'/network/x_m' is already written"):
            out.write_array("network/x_m", [2.0], units="m")
        with pytest.raises(TypeError, match="units must be a str"):
            out.write_array("/network/y_m", [1.0], units=None)
        with pytest.raises(ResultsError, match="attribute 'units' is reserved"):
            out.write_array("/network/z_m", [1.0], units="m", attrs={"units": "km"})
        out.write_meta(seed=1)
        with pytest.raises(ResultsError, match="meta item 'seed' is already written"):
            out.write_meta(seed=2)
        with pytest.raises(TypeError, match="meta item 'where': value of type PosixPath"):
            out.write_meta(where=path)
        with pytest.raises(ResultsError, match="meta item 'bad': cannot encode as JSON"):
            out.write_meta(bad={"x": float("nan")})
        with pytest.raises(TypeError, match="summary 'x': value 'a' of type str"):
            out.write_summary("x", "a", units="")


def test_appender_validation(path):
    with ResultsWriter(path) as out:
        with pytest.raises(ResultsError, match="dtype 'datetime64' is not accepted"):
            out.table_appender("/events/a", {"t": ("datetime64", "s")})
        app = out.table_appender("/events/b", {"n": ("int8", ""), "code": ("S2", "")}, chunk_rows=4)
        with pytest.raises(ResultsError, match=r"lacks \['code'\]"):
            app.append(n=[1])
        with pytest.raises(ResultsError, match="values 0..300 overflow int8"):
            app.append(n=[0, 300], code=["a", "b"])
        with pytest.raises(ResultsError, match="float64 cannot be stored in a int8 column"):
            app.append(n=[1.5], code=["a"])
        with pytest.raises(ResultsError, match=r"'abc' is 3 bytes in UTF-8; the column holds at most 2 bytes"):
            app.append(n=[1], code=["abc"])
        series = out.series_appender("links", {"q_veh": (3, "veh")})
        series.append(0.0, q_veh=[1, 2, 3])
        with pytest.raises(ResultsError, match="strictly increasing"):
            series.append(0.0, q_veh=[1, 2, 3])
        with pytest.raises(ResultsError, match=r"variable 'q_veh' has shape \(1, 2\); expected \(3,\)"):
            series.append(5.0, q_veh=[1, 2])


# --- reader errors -------------------------------------------------------------------


def test_open_missing_file(tmp_path):
    with pytest.raises(ResultsError, match="no results file at"):
        open_results(tmp_path / "nope.h5")


def test_open_not_hdf5(tmp_path):
    p = tmp_path / "run.h5"
    p.write_text("not hdf5")
    with pytest.raises(ResultsError, match="is not an HDF5 file"):
        open_results(p)


def test_open_wrong_format_and_version(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ResultsError, match="format = 'something-else'; expected 'twin-results'"):
        open_results(other)
    newer = tmp_path / "newer.h5"
    with h5py.File(newer, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = 2
    with pytest.raises(ResultsError, match="format_version = 2; .* reads format_version 1"):
        open_results(newer)


def test_reader_lookup_errors(path, rng):
    _write_sample(path, rng)
    with open_results(path) as res:
        assert res.keys("events") == ["/events/calls"]
        assert "/network/length_m" in res.keys()
        with pytest.raises(ResultsError, match=r"no dataset '/network/lenght_m'.*did you mean '/network/length_m'"):
            res.array("/network/lenght_m")
        with pytest.raises(ResultsError, match="no group '/evnts'"):
            res.keys("/evnts")
        with pytest.raises(ResultsError, match="is not a table"):
            res.table("/network/length_m")
    with pytest.raises(ResultsError, match="is closed"):
        res.meta


# --- other readers -------------------------------------------------------------------


def test_h5dump_shows_groups_and_compound(path, rng):
    h5dump = shutil.which("h5dump")
    if h5dump is None:
        pytest.skip("h5dump not installed (apt package hdf5-tools)")
    _write_sample(path, rng)
    header = subprocess.run([h5dump, "-H", str(path)], capture_output=True, text=True, check=True).stdout
    for group in GROUPS:
        assert f'GROUP "{group.strip("/")}"' in header
    assert 'DATASET "calls"' in header
    assert "H5T_COMPOUND" in header
    for field in CALL_UNITS:
        assert f'"{field}";' in header
    assert "CSET H5T_CSET_UTF8" in header
    data = subprocess.run([h5dump, "-d", "/events/calls", str(path)], capture_output=True, text=True, check=True).stdout
    assert '"units"' in data and '"arrive_s"' in data


# --- large arrays: chunks compressed in threads --------------------------------------


def test_large_arrays_are_stored_as_hdf5_own_filters_store_them(tmp_path, monkeypatch):
    """Tables and arrays above ``_PARALLEL_MIN_BYTES`` are compressed chunk by chunk in threads and
    written with ``write_direct_chunk``; every stored chunk (the short edge chunk too) must be the
    bytes HDF5's own shuffle + deflate filters write for the same data, and read back exactly."""
    import twin._results_format as F

    rng = np.random.default_rng(3)
    n = 100_003                                      # not a whole number of chunks
    table = {"person": rng.integers(0, 10**6, n).astype(np.int32), "mode": rng.integers(0, 4, n).astype(np.int8),
             "depart_s": (rng.random(n) * 86400).round(1), "served": rng.random(n) < 0.4}
    units = {"person": "", "mode": "", "depart_s": "s", "served": ""}
    grid = rng.random((80_011, 9)).astype(np.float32)
    paths = {}
    for name, threshold in (("threads", 1 << 16), ("h5py", 1 << 62)):
        monkeypatch.setattr(F, "_PARALLEL_MIN_BYTES", threshold)
        paths[name] = tmp_path / f"{name}.h5"
        with ResultsWriter(paths[name], meta={}) as out:
            out.write_table("/events/trips", table, units=units)
            out.write_array("/timeseries/grid", grid, units="veh")
    with h5py.File(paths["threads"], "r") as f, h5py.File(paths["h5py"], "r") as g:
        a = f["timeseries/grid"]
        with h5py.File(tmp_path / "same_chunks.h5", "w") as h:         # HDF5's filters, the same chunks
            h.create_dataset("grid", data=grid, chunks=a.chunks, compression="gzip",
                             compression_opts=F._GZIP_LEVEL, shuffle=True)
        with h5py.File(tmp_path / "same_chunks.h5", "r") as h:
            pairs = [(f["events/trips"], g["events/trips"]), (a, h["grid"])]
            for a, b in pairs:
                assert a.compression == "gzip" and a.shuffle and a.chunks == b.chunks
                assert a.chunks[0] < a.shape[0] and a.id.get_num_chunks() > 1
                np.testing.assert_array_equal(a[()], b[()])
                for i in range(a.id.get_num_chunks()):
                    offset = a.id.get_chunk_info(i).chunk_offset
                    assert a.id.read_direct_chunk(offset) == b.id.read_direct_chunk(offset), (a.name, offset)
        np.testing.assert_array_equal(f["timeseries/grid"][()], grid)
    with open_results(paths["threads"]) as res:
        got = res.table("/events/trips")
    np.testing.assert_array_equal(np.asarray(got["depart_s"]), table["depart_s"])
    np.testing.assert_array_equal(np.asarray(got["served"]), table["served"])
