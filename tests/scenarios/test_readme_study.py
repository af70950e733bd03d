"""The README's optimisation study is what its command prints (seeded, so exactly), line for line
except the solver's wall time; the "..." line stands for rows the README leaves out."""

import re
from pathlib import Path

from twin.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = "twin optimise hefei_day --decide stations -n 10 --out stations.toml"


def _readme_block():
    text = README.read_text(encoding="utf-8")
    assert COMMAND in text, "the README no longer shows the study's command"
    after = text[text.index(COMMAND):]
    block = after.split("```\n", 2)[1]            # the output block that follows the command's block
    return block.rstrip("\n").split("\n")


def _no_time(line):
    return re.sub(r"solved in [0-9.]+ s", "solved in _ s", line)


def test_readme_study_is_reproduced_by_its_command(tmp_path, capsys):
    args = COMMAND.split()[1:]
    args[args.index("stations.toml")] = str(tmp_path / "stations.toml")
    assert main(args) == 0
    printed = [_no_time(ln) for ln in capsys.readouterr().out.split("\n")]
    for line in _readme_block():
        if line == "...":
            continue
        assert _no_time(line) in printed, line
