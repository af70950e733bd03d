"""A small EMS scenario on a 6x6 grid, shared by the unit tests of the runner, the scenario loader and the flows.

Registered by ``tests/conftest.py``: ``from twin_small import SMALL, write, with_line``.
``EVACUATION`` adds four hours, empty roads and an evacuation of district 1 at 01:00 to two
shelters (the evacuation tests).
"""

SMALL = """
[city]
name = "grid:6x6"

[run]
until_s = 3600.0
seed = 3

[calls]
rate_per_h = 4.0

[[call_types]]
name = "p1"
priority = 1
on_scene = 300.0

[[stations]]
name = "corner"
node = 1
ambulances = 1

[[hospitals]]
name = "h"
node = 36
beds = 4

[service]
return_mode = "instant"
turnout = 0.0
"""

#: Light load on the same grid for a whole day: one call every two hours, 60 s on scene, no
#: transport, so a call's response is its travel time (plus the rare wait for the busy unit).
#: The optimisation studies run on it.
LIGHT = (SMALL.replace("until_s = 3600.0", "until_s = 86400.0").replace("rate_per_h = 4.0", "rate_per_h = 0.5")
         .replace("on_scene = 300.0", "on_scene = 60.0\ntransport_probability = 0.0"))


def write(tmp_path, text, name="bad.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def with_line(old, new):
    assert old in SMALL
    return SMALL.replace(old, new)



EVACUATION = SMALL.replace("until_s = 3600.0", "until_s = 14400.0") + """
[traffic]
random_trips = 0

[evacuation]
zones = [1]
warning_s = 3600.0
compliance = 0.8
persons = { "1" = 5000 }

[[shelters]]
name = "east"
node = 18
capacity = 3000

[[shelters]]
name = "north"
node = 33
capacity = 3000
"""
