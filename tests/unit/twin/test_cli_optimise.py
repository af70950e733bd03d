"""twin.cli_optimise: ``twin optimise`` prints the model and the ranking in display units, writes the
chosen plan atomically, refuses to overwrite, and names bad options."""

import pytest
from twin_small import SMALL, write

from twin.cli import main
from twin.runner import load_scenario

FAST = ["--set", "run.until_s=3600"]


def test_cli_optimise_prints_the_ranking_and_writes_the_plan(tmp_path, capsys):
    path = write(tmp_path, SMALL, "small.toml")
    out = tmp_path / "chosen.toml"
    rc = main(["optimise", str(path), "--decide", "stations", "-n", "2", "--plans", "2", "--out", str(out), *FAST])
    text = capsys.readouterr().out
    assert rc == 0
    for needle in ("decide stations; 2 replications a plan (seed 0), common random numbers",
                   "model: p-median on free-flow costs: 1 site(s) among 36 candidates", "MILP gap 0.00 % (optimal)",
                   "ranking by response_mean_s (lower is better, min)", "model column: the model's mean travel (min)",
                   "plan         verdict", "current", "optimum", "chosen: ", f"wrote {out}"):
        assert needle in text, needle
    sc = load_scenario(out)
    assert len(sc.data["stations"]) == 1
    assert not (tmp_path / "chosen.toml.partial").exists()
    rc = main(["optimise", str(path), "--decide", "stations", "-n", "2", "--plans", "1", "--out", str(out), *FAST])
    assert rc == 2
    assert "--out" in capsys.readouterr().err



def test_cli_optimise_checks_out_before_the_study(tmp_path, capsys, monkeypatch):
    import twin.cli_optimise as cli

    calls = []
    monkeypatch.setattr(cli, "optimise", lambda *a, **k: calls.append(a))
    path = write(tmp_path, SMALL, "small.toml")
    rc = main(["optimise", str(path), "--decide", "stations", "--out", str(tmp_path / "no" / "x.toml")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "x.toml").write_text("")
    rc = main(["optimise", str(path), "--decide", "stations", "--out", str(tmp_path / "x.toml")])
    assert rc == 2 and "exists; give --overwrite" in capsys.readouterr().err
    assert calls == []                                   # no study ran


def test_cli_optimise_stock_and_errors(tmp_path, capsys):
    path = write(tmp_path, SMALL.replace('on_scene = 300.0', 'on_scene = 300.0\ntransport_probability = 1.0'))
    assert main(["optimise", str(path), "--decide", "stock", "-n", "2", "--shortage-cost", "4", *FAST]) == 0
    text = capsys.readouterr().out
    assert "two-stage SAA" in text and "h/kit:" in text and "ranking by stock_cost" in text
    assert main(["optimise", str(path), "--decide", "stations", "--keep", "999", "-n", "2", *FAST]) == 2
    assert "kept site 999: not a candidate node" in capsys.readouterr().err
    assert main(["optimise", str(path), "--decide", "stations", "--kpi", "nope", "-n", "2", "--plans", "1",
                 *FAST]) == 2
    assert "rank KPI 'nope' is not a KPI of these runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["optimise", str(path), "--decide", "stations", "--at", "8 o'clock"])
    assert "expected HH:MM" in capsys.readouterr().err
