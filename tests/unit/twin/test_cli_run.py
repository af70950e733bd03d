"""twin.cli_run: ``twin run`` prints the KPIs, writes the file, lists the built-ins and the keys."""

import argparse

from twin_small import SMALL, write

from twin.cli import main
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


def test_ctrl_c_while_writing_leaves_no_final_file(tmp_path, capsys, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) in the middle of writing the results file: exit status 130, one
    line on stderr and no traceback, no file under the final name, the .partial kept."""
    import twin._results_writer as W

    calls = {"n": 0}
    write_table = W.ResultsWriter.write_table

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return write_table(self, *a, **kw)

    monkeypatch.setattr(W.ResultsWriter, "write_table", interrupted)
    out = tmp_path / "run.h5"
    assert main(["run", "hefei_day", "--set", "run.until_s=900", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    assert calls["n"] == 3 and not out.exists() and (tmp_path / "run.h5.partial").exists()
