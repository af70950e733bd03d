"""twin.cli_run: ``twin run`` prints the KPIs, writes the file, lists the built-ins and the keys."""

import argparse

from twin_small import SMALL, write

from twin.cli_run import add_run_parser, run_main


def test_cli_run_prints_kpis_and_writes(tmp_path, capsys):
    ap = argparse.ArgumentParser(prog="twin")
    add_run_parser(ap.add_subparsers(dest="command"))
    path = write(tmp_path, SMALL, "small.toml")
    out = tmp_path / "run.h5"
    args = ap.parse_args(["run", str(path), "--out", str(out), "--seed", "2", "--set", "run.until_s=1800",
                          "--set", "calls.rate_per_h=8"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    for needle in ("scenario small on grid_6x6", "seed 2", "calls", "response time mean", "P1 within 8 min",
                   "unit utilisation", "hospital blocking", "equity gap", f"wrote {out}"):
        assert needle in text
    assert out.exists()
    assert run_main(ap.parse_args(["run", "--list"])) == 0
    assert "hefei_day" in capsys.readouterr().out
    assert run_main(ap.parse_args(["run", "--keys"])) == 0
    assert "traffic.sync_s" in capsys.readouterr().out
