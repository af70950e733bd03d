"""twin.cli_run: ``twin run`` prints the KPIs, writes the file, lists the built-ins and the keys."""

import argparse
import sys

import pytest

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
    """Ctrl-C (a real SIGINT) in the middle of writing the results file, while a table is being
    written: the writer notes it and stops before the next dataset; exit status 130, one line on
    stderr and no traceback, no file under the final name, the .partial kept."""
    import os
    import signal

    import twin._results_writer as W

    calls = {"n": 0}
    write_table = W.ResultsWriter.write_table

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)       # (as if pressed while h5py writes this table)
        return write_table(self, *a, **kw)

    monkeypatch.setattr(W.ResultsWriter, "write_table", interrupted)
    out = tmp_path / "run.h5"
    before = signal.signal(signal.SIGINT, signal.default_int_handler)   # (as in a terminal; CI may ignore it)
    try:
        assert main(["run", "hefei_day", "--set", "run.until_s=900", "--out", str(out)]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # the writer's handler is gone
    finally:
        signal.signal(signal.SIGINT, before)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err and "Traceback" not in err
    assert calls["n"] == 3 and not out.exists() and (tmp_path / "run.h5.partial").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.parametrize("command", [["run", "hefei_day", "--set", "run.until_s=900"],
                                     ["traffic", "grid:10x10", "--random-trips", "20000"]])
def test_a_full_disk_is_one_clear_error(tmp_path, command):
    """The file system refuses the results file's writes (here a 300 kB file size limit, as a
    full disk would): exit status 2 and one line naming the file and the reason, no traceback and
    no crash (h5py segfaulted at exit before), and nothing left: neither the file nor its .partial."""
    import resource
    import signal
    import subprocess

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    out = tmp_path / "run.h5"
    p = subprocess.run([sys.executable, "-m", "twin.cli", *command, "--out", str(out)], capture_output=True,
                       text=True, preexec_fn=limit, timeout=600)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.count("\n") == 1 and "could not write results file" in p.stderr and "File too large" in p.stderr
    assert list(tmp_path.iterdir()) == []
