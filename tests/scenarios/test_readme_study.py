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


def test_readme_fleet_sentence_is_what_the_fleet_study_finds():
    """README: "Every station reaches 99.8 % of the demand within the standard ... all 6 at one
    station ... worse by 0.87 ± 0.09 min" (twin optimise hefei_day --decide fleet -n 10)."""
    from twin.optimise import optimise

    text = README.read_text(encoding="utf-8")
    assert "99.8 %" in text and "0.87 ± 0.09 min" in text
    res = optimise("hefei_day", "fleet", replications=10)
    opt = res.ranking.loc["optimum"]
    assert [k for _, k in res.chosen.stations] == [2, 2, 2] and res.chosen.name == "current"
    assert [k for _, k in next(p for p in res.plans if p.name == "optimum").stations] == [6]
    assert opt["verdict"] == "worse"
    assert f"{opt['diff'] / 60:.2f} ± {opt['diff_half_width'] / 60:.2f} min" == "0.87 ± 0.09 min"
    assert {f"{100 * v:.1f}" for v in res.ranking["model_objective"]} == {"99.8"}
