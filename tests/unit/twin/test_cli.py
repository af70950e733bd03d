"""Tests of the ``twin`` command line (``twin.cli.main``), in process and as ``python -m``.

Route times printed by the CLI are checked against networkx's Dijkstra on the city's own
free-flow times (code we did not write). The CLI prints seconds with one decimal, so the
tolerance is 0.05 s, half the last printed digit.
"""

import re
import subprocess
import sys

import networkx as nx
import pytest

import twin
from twin.cli import main


@pytest.fixture(scope="module")
def hefei():
    return twin.load_city("hefei-baohe")


def _two_ids(city):
    """A pair of real node ids some links apart: the first node and the one at index 50."""
    return city.node_ids[0].item(), city.node_ids[50].item()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"twin {twin.__version__}"


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "usage: twin" in out and "info" in out and "route" in out


def test_info_default_city(capsys, hefei):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "hefei-baohe" in out
    assert re.search(rf"^nodes\s+{hefei.n_nodes:,}\s+links {hefei.n_links:,}", out, re.M)
    for name in hefei.road_class_names:
        assert re.search(rf"^{re.escape(name)}\s+\d", out, re.M), name


def test_info_out_writes_a_results_file(tmp_path, capsys):
    out_path = tmp_path / "grid.h5"
    assert main(["info", "grid:5x5", "--out", str(out_path)]) == 0
    assert f"wrote {out_path}" in capsys.readouterr().out
    city = twin.load_city("grid:5x5")
    with twin.open_results(out_path) as res:
        links = res.table("/network/links")
        nodes = res.table("/network/nodes")
        summary = dict(zip(res.summary()["name"], res.summary()["value"]))
        meta = res.meta
    assert len(links) == city.n_links == 80 and len(nodes) == city.n_nodes == 25
    assert list(links["length_m"]) == city.length_m.tolist()
    assert summary["n_nodes"] == 25 and summary["n_links"] == 80
    assert meta["command"] == "info" and meta["city"] == city.name


def test_info_out_refuses_to_overwrite(tmp_path, capsys):
    out_path = tmp_path / "grid.h5"
    assert main(["info", "grid:3x3", "--out", str(out_path)]) == 0
    capsys.readouterr()
    assert main(["info", "grid:3x3", "--out", str(out_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["info", "grid:3x3", "--out", str(out_path), "--overwrite"]) == 0


def test_route_between_real_nodes(capsys, hefei):
    o, d = _two_ids(hefei)
    assert main(["route", "hefei-baohe", str(o), str(d)]) == 0
    out = capsys.readouterr().out
    m = re.search(rf"^route {o} -> {d} in hefei-baohe: (\d+) links, ([\d,.]+) km, free-flow time ([\d,.]+) s",
                  out, re.M)
    assert m, out
    G = hefei.to_networkx()
    expected_s = nx.dijkstra_path_length(G, o, d, weight="free_flow_time_s")
    assert abs(float(m.group(3).replace(",", "")) - expected_s) <= 0.05
    nodes_line = re.search(r"^nodes: (.*)$", out, re.M).group(1).split()
    assert nodes_line[0] == str(o) and nodes_line[-1] == str(d)
    assert len(nodes_line) == int(m.group(1)) + 1


def test_route_links_table(capsys, hefei):
    o, d = _two_ids(hefei)
    assert main(["route", "hefei-baohe", str(o), str(d), "--links"]) == 0
    out = capsys.readouterr().out
    n_links = int(re.search(r": (\d+) links,", out).group(1))
    assert re.search(r"^\s+link\s+from\s+to\s+length_m\s+time_s\s+name$", out, re.M)
    rows = re.findall(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)", out, re.M)
    assert len(rows) == n_links
    assert rows[0][1] == str(o) and rows[-1][2] == str(d)
    for (_, _, head, *_), (_, tail, *_) in zip(rows, rows[1:]):
        assert head == tail  # consecutive links join up


def test_route_unknown_node_id(capsys, hefei):
    o, _ = _two_ids(hefei)
    assert 12345 not in set(hefei.node_ids.tolist())
    assert main(["route", "hefei-baohe", str(o), "12345"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin route: error: ")
    assert "unknown node id(s) [12345]" in err


def test_route_non_integer_node_id(capsys, hefei):
    o, _ = _two_ids(hefei)
    assert main(["route", "hefei-baohe", "abc", str(o)]) == 2
    assert "node id 'abc' is not an integer" in capsys.readouterr().err


def test_route_unreachable_node(tmp_path, capsys):
    """Node 4 only leaves (4 -> 1); nothing enters it."""
    path = tmp_path / "cut_net.tntp"
    path.write_text("<NUMBER OF ZONES> 0\n<NUMBER OF NODES> 4\n<FIRST THRU NODE> 1\n<END OF METADATA>\n"
                    "1 2 1000 1 1 ;\n2 3 1000 1 1 ;\n3 1 1000 1 1 ;\n4 1 1000 1 1 ;\n")
    assert main(["route", str(path), "1", "4"]) == 2
    err = capsys.readouterr().err
    assert "node 4 cannot be reached from node 1" in err
    assert main(["route", str(path), "4", "3"]) == 0  # the other way works: 4 -> 1 -> 2 -> 3
    assert "3 links" in capsys.readouterr().out


def test_unknown_city(capsys):
    assert main(["info", "atlantis"]) == 2
    err = capsys.readouterr().err
    assert "twin info: error: 'atlantis' is neither an existing file nor an embedded city" in err
    assert "hefei-baohe" in err


def test_python_m_twin_cli_version():
    done = subprocess.run([sys.executable, "-m", "twin.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"twin {twin.__version__}"


def test_cli_habits(capsys):
    """-v / -q after the command, a closed pipe is no error, a near-miss city gets a suggestion,
    and replicate explains -n."""
    import subprocess
    import sys

    from twin.cli import main

    assert main(["info", "hefei-bahoe"]) == 2
    assert "did you mean 'hefei-baohe'?" in capsys.readouterr().err
    assert main(["info", "grid:3x3", "-q"]) == 0
    assert main(["info", "grid:3x3", "-v"]) == 0
    p = subprocess.run(f"{sys.executable} -m twin.cli run --keys | head -1", shell=True, capture_output=True,
                       text=True)
    assert p.returncode == 0 and "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr
    with pytest.raises(SystemExit):
        main(["replicate", "--help"])
    assert "replications (default 10)" in capsys.readouterr().out
    import argparse

    from twin.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in sub.choices:            # every command's help formats (a bare % in a help text would not)
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0, name
    assert "forecast-risk" in capsys.readouterr().out
    assert main(["run", "--keys"]) == 0
    keys = {line.split()[0]: line.split()[1:3] for line in capsys.readouterr().out.splitlines()[1:]}
    assert keys["run.until_s"] == ["float", "86400.0"] and keys["hospitals.mode"][0] == "choice"


def test_a_missing_extra_is_named_in_one_line(tmp_path):
    """A command-1 install has no viz or dist extra: render, plot and replicate --dask say which
    extra to install, with no traceback."""
    import subprocess
    import sys

    from twin.runner import run

    run("hefei_day", out=tmp_path / "r.h5", overrides=["run.until_s=1800"])
    code = ("import sys; sys.modules['pyvista'] = sys.modules['matplotlib'] = None; "
            "sys.modules['dask'] = sys.modules['distributed'] = None; "
            "from twin.cli import main; sys.exit(main(sys.argv[1:]))")
    for args, extra in ((["render", str(tmp_path / "r.h5"), "--out", str(tmp_path / "x.png")], "viz"),
                        (["plot", str(tmp_path / "r.h5"), "response-times", "--out", str(tmp_path / "x.png")], "viz"),
                        (["report", str(tmp_path / "r.h5"), "--out", str(tmp_path / "x.html")], "viz"),
                        (["replicate", "hefei_day", "-n", "2", "--dask", "--set", "run.until_s=600"], "dist")):
        p = subprocess.run([sys.executable, "-c", code] + args, capture_output=True, text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert f'pip install -e ".[{extra}]"' in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_run_refuses_an_existing_out_before_building(tmp_path, capsys, monkeypatch):
    """An --out that exists (without --overwrite) is refused before the scenario is built: a
    city day of a million persons took 7 s to build before saying so."""
    import twin.cli_run as cli_run

    out_path = tmp_path / "run.h5"
    out_path.write_bytes(b"kept")

    def no_build(*a, **kw):
        raise AssertionError("the scenario was built before the --out check")

    monkeypatch.setattr(cli_run, "load_scenario", no_build)
    assert main(["run", "hefei_day", "--out", str(out_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["run", "hefei_day", "--out", str(tmp_path / "no" / "run.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert out_path.read_bytes() == b"kept"


def test_a_tiny_traffic_tick_is_refused_with_the_memory_figure(capsys):
    """[reliability] #16 item 3: --dt 1e-6 would make 8.6e10 ticks of per-tick counters; the
    pre-flight estimate refuses it at once, with the figure, before any allocation."""
    assert main(["traffic", "grid:5x5", "--dt", "1e-6", "--random-trips", "10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs about" in err and "GiB of memory; this machine has" in err
