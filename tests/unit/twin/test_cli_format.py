"""``--format csv|json`` of ``twin run``, ``replicate`` and ``compare``: the KPIs for programs,
in the results file's names and SI units, equal to what the library returns for the same seed."""

import csv
import io
import json
import math

import pytest

from twin.cli import main
from twin.ensemble import replicate
from twin.runner import run

SHORT = ["--set", "run.until_s=3600", "--set", "traffic.random_trips=300"]


def _same(a, b):
    return (a is None and (b is None or (isinstance(b, float) and math.isnan(b)))) or a == pytest.approx(b)


def test_run_csv_and_json_hold_every_kpi_and_the_districts(capsys):
    res = run("hefei_day", overrides=["run.until_s=3600", "traffic.random_trips=300"])
    assert main(["run", "hefei_day", *SHORT, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["kpi", "value"]
    got = dict(rows[1:])
    assert all(_same(float(got[k]) if got[k] != "" else None, float(v)) for k, v in res.kpis.items())
    assert "district_5_response_mean_s" in got and "district_5_central" in got
    assert main(["run", "hefei_day", *SHORT, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == res.seed and set(doc["kpis"]) == set(res.kpis)
    assert all(_same(doc["kpis"][k], float(v)) for k, v in res.kpis.items())
    assert [d["name"] for d in doc["districts"]] == [str(i) for i in range(1, 10)]


def test_replicate_and_compare_csv_and_json_are_the_tables_in_si_units(capsys):
    rep = replicate("hefei_day", replications=2, overrides=["run.until_s=3600", "traffic.random_trips=300"])
    assert main(["replicate", "hefei_day", "-n", "2", *SHORT, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by = {r["kpi"]: r for r in rows}
    assert set(by) == set(rep.summary.index)
    m = rep.summary.loc["response_mean_s", "mean"]
    assert float(by["response_mean_s"]["mean"]) == pytest.approx(m) and m > 60        # seconds, not minutes
    short = [a.replace("--set", "--set-a") for a in SHORT]
    assert main(["compare", "hefei_day", "-n", "2", *short, "--set-b", "run.until_s=3600",
                 "--set-b", "traffic.random_trips=300", "--set-b", "stations.0.ambulances=1", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["set_b"][-1] == "stations.0.ambulances=1" and doc["replications"] == 2
    assert {"A", "B", "mean", "half_width", "significant"} <= set(doc["kpis"]["response_mean_s"])
    assert doc["kpis"]["response_mean_s"]["A"] == pytest.approx(m)


def test_replicate_table_names_each_interval_method(capsys):
    """The table says which interval each KPI got (t or bootstrap), as the library's summary has it."""
    rep = replicate("hefei_day", replications=3, overrides=["run.until_s=3600", "traffic.random_trips=300"])
    assert main(["replicate", "hefei_day", "-n", "3", *SHORT]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("kpi (unit)"))
    assert header.split()[-1] == "method"
    rows = [line.split() for line in out.splitlines()[out.splitlines().index(header) + 1:] if line.strip()]
    methods = [r[-1] for r in rows if r[-1] in ("t", "bootstrap")]
    from twin.kpi_display import is_constant

    expected = [m for k, m in rep.summary["method"].items() if not is_constant(k)]
    assert methods == expected and "(method: t = Student t" in out
