"""Fuzz tests of the scenario format and ``--set`` overrides ([reliability] #16).

Three targets, each asserting through :func:`twin_fuzz.ours` that loading (and planning, and
for some examples a short run) works or raises a ``twin`` error, never another exception or a
hang:

- overrides: one to three ``KEY=VALUE`` strings on every documented key (``twin run --keys``),
  array tables at index 0, 1 or a name, with values that break parsers (huge, negative, NaN,
  inf, nested TOML, text), mostly on the tables the scenario has: a small EMS scenario and a
  small evacuation (the examples that load are planned and, one in three, run) and four
  built-in scenarios (loaded and planned);
- scenario text: the small scenarios cut, duplicated and spliced with stray tokens;
- raw ``--set`` strings.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twin_fuzz import campaign_settings, ci_settings, ours
from twin_small import EVACUATION, SMALL

from twin.runner import load_scenario, run
from twin.scenario import scenario_tables

def _builtin(name):
    from importlib import resources

    return resources.files("twin.scenarios").joinpath(f"{name}.toml").read_text(encoding="utf-8")


#: Small scenarios (loaded, planned and sometimes run) and built-in ones (loaded and planned).
SMALL_BASES = (SMALL, EVACUATION)
BASES = SMALL_BASES + tuple(_builtin(n) for n in ("hefei_joint", "hefei_flood", "hefei_eldercare", "hefei_rush"))


def _keys(tables=None):
    import dataclasses

    out = []
    for t in scenario_tables():
        if tables is None or t.name in tables:
            for f in dataclasses.fields(t.group):
                out.append(f"{t.name}.{{i}}.{f.name}" if t.array else f"{t.name}.{f.name}")
    return sorted(out)


KEYS = _keys()
#: The keys of the tables each base has (most overrides change what is there).
BASE_KEYS = tuple(_keys({k for k, v in load_scenario(b).groups.items() if v}) for b in BASES)
VALUES = ["0", "1", "-1", "2.5", "1e9", "1e12", "1e400", "-1e400", "nan", "inf", "-inf", "9223372036854775808",
          "1e-300", "true", "false", '""', '"x"', '"24h"', "24h", "[]", "[1, 2]", "[[1]]", '["a"]', "{}",
          '{ kind = "exponential", mean_s = 60.0 }', '{ kind = "lognormal", mean_s = -1.0, cv = 9 }',
          '{ "1" = 5 }', '{ "99" = 1 }', "[" * 40 + "]" * 40, "{ a = { b = { c = 1 } } }", '"hefei-baohe"',
          '"grid:2x2"', '"grid:100000x100000"', '"/dev/zero"', '"nowhere.csv"', "08:00", '"time >= 01:00"',
          '["close link 1 2"]', '["warn evacuation"]', '"centroid"', '"door"', '"unified"', '"rule"', "3"]


def _override(keys):
    return st.tuples(st.one_of(st.sampled_from(keys), st.sampled_from(KEYS)),
                     st.sampled_from(["0", "0", "0", "1", "5", "h", "-1"]),
                     st.one_of(st.sampled_from(VALUES), st.text(max_size=8))).map(
        lambda kiv: f"{kiv[0].format(i=kiv[1])}={kiv[2]}")


examples = st.integers(0, len(BASES) - 1).flatmap(
    lambda b: st.tuples(st.just(b), st.lists(_override(BASE_KEYS[b]), min_size=1, max_size=3), st.integers(0, 2)))


def _overrides(case):
    base, overrides, go = case
    text = BASES[base]
    sc = ours(lambda: load_scenario(text, overrides=overrides).replanned(1))
    if sc is not None and go == 0 and base < len(SMALL_BASES):
        ours(run, text, overrides=["run.until_s=1800"] + overrides, seed=1)


@ci_settings(80)
@given(examples)
def test_overrides(case):
    _overrides(case)


@pytest.mark.slow
@campaign_settings()
@given(examples)
def test_overrides_campaign(case):
    _overrides(case)


STRAY = ["[", "]", "[[", "]]", "=", '"', "'''", "\\", "\x00", "[run]", "[[stations]]", "until_s = ", "é",
         "a.b.c = 1", "= 2", "#", "\n", "[calls]\nrate_per_h = 1e9\n"]


@st.composite
def mangled(draw):
    text = BASES[draw(st.integers(0, len(BASES) - 1))]
    for _ in range(draw(st.integers(1, 3))):
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, min(len(text), a + 80)))
        how = draw(st.sampled_from(["cut", "dup", "stray"]))
        piece = {"cut": "", "dup": text[a:b] * 2, "stray": draw(st.sampled_from(STRAY))}[how]
        text = text[:a] + piece + text[b:]
    return text


def _text(text):
    ours(lambda: load_scenario(text).replanned(1))


@ci_settings(80)
@given(mangled())
def test_scenario_text(text):
    _text(text)


@pytest.mark.slow
@campaign_settings()
@given(mangled())
def test_scenario_text_campaign(text):
    _text(text)


def _set(s):
    ours(load_scenario, SMALL, overrides=[s])


@ci_settings()
@given(st.one_of(st.text(max_size=30), st.tuples(st.sampled_from(KEYS), st.text(max_size=10)).map(
    lambda kv: kv[0].format(i="0") + kv[1])))
def test_raw_set_strings(s):
    _set(s)


@pytest.mark.slow
@campaign_settings()
@given(st.one_of(st.text(max_size=30), st.tuples(st.sampled_from(KEYS), st.text(max_size=10)).map(
    lambda kv: kv[0].format(i="0") + kv[1])))
def test_raw_set_strings_campaign(s):
    _set(s)
