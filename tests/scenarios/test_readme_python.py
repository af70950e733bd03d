"""The README's Python example runs as written, twice in a row (a notebook re-runs cells), and
the names it uses are visible to ``dir(twin)``."""

import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_python_example_runs_twice(tmp_path, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(here)
    assert "from_idx" in capsys.readouterr().out
    import twin

    assert {"open_results", "ResultsWriter", "simulate_traffic", "viz"} <= set(dir(twin))
