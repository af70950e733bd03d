"""Smoke runs of the gallery scripts (``scenarios/gallery_*.py``): each runs to the end."""

import runpy
from pathlib import Path

import pytest

GALLERY = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("gallery_*.py"))


def test_there_is_a_gallery():
    assert len(GALLERY) >= 2


@pytest.mark.parametrize("script", GALLERY, ids=[p.stem for p in GALLERY])
def test_gallery_script_runs(script, tmp_path, monkeypatch, capsys):
    if "beds" in script.name:
        pytest.importorskip("matplotlib")
    monkeypatch.setenv("TWIN_GALLERY_OUT", str(tmp_path))
    runpy.run_path(str(script), run_name="__main__")
    assert "wrote" in capsys.readouterr().out or any(tmp_path.iterdir())
    assert any(tmp_path.iterdir())
