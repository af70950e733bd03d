"""An observed state: what an operations centre knows at a time, as one JSON document ([state]).

Format ``twin-observed-state``, version 1 (UTF-8 JSON; ``pandas.json_normalize`` reads each
list)::

    {"format": "twin-observed-state", "version": 1,
     "time_s": 28800.0,                  # the time of the state, seconds from the scenario start
     "scenario": "hefei_rush",           # optional: the scenario it belongs to (name or file)
     "seed": 1, "scenario_toml": "...",  # optional: the run seed and resolved scenario of the prior
     "units": [{"unit": "central-1", "status": "on_scene", "node": 8131109677,
                "call": "c17", "since_s": 28650.0}, ...],
     "hospitals": [{"hospital": "north-ed", "ed_beds_occupied": 12, "ed_waiting": 0,
                    "in_service": true}, ...],
     "calls": [{"call": "c17", "time_s": 28600.0, "node": 8131109677,
                "type": "life-threatening", "status": "assigned"}, ...],
     "links": [{"from_node": 1, "to_node": 2, "speed_kmh": 31.2}, ...]}

``units.status`` is one of :data:`twin.emergency.UNIT_EVENTS` (``available``, ``at_station``,
``dispatched``, ``en_route``, ``on_scene``, ``transporting``, ``at_hospital``, ``handover``,
``returning``, ``relocating``); ``node`` is where the unit is (a city node id; for a unit on the
road, the place it left); ``call`` the open call it serves (none for ``available``,
``at_station``, ``returning``, ``relocating``); ``since_s`` when it entered the status.
``calls`` lists the open calls (received, not yet finished): ``status`` ``waiting`` (no unit
yet) or ``assigned``; ``call`` ids are the feed's own (``c<k>`` is call ``k`` of the twin's
call table). ``links`` gives live speeds (km/h; 0 for a closed link).

Loading (:func:`load_observed`) starts from the twin's own state at that time (the *prior*: a
run of the document's scenario -- ``scenario_toml``, else ``scenario`` -- from its start to
``time_s`` with ``seed``, or a given snapshot) and makes it agree with the observation; a
changed scenario or ``--set`` then applies from ``time_s`` on:

* a unit listed idle (``available``, ``at_station``) is put there, idle; a busy unit must be
  on the call and in the status the twin has (it keeps the twin's timing) -- other busy units
  are a clear error in this version;
* a hospital's ED occupancy and queue take the observed counts: extra patients get a length of
  stay drawn from the ward's distribution (stream ``observed``), the twin's patients with the
  least stay left leave first (patients boarding for a ward or ICU bed stay); ``in_service``
  sets the out-of-service flag;
* an open call the twin has (``c<k>`` with the same node and type) keeps its state; another
  call listed ``waiting`` joins the dispatch queue with its own dice (stream ``observed``), and
  idle units take the waiting calls when the run starts;
* link speeds are compared with the twin's (the fit is reported: mean absolute error and the
  links off by more than 10 km/h); the traffic state is the prior's.

What the format omits comes from the prior: every vehicle in traffic and its queue position,
remaining times (on scene, in a bed, on the road), the calls to come, the random streams'
states. Parts the document does not list (a unit, a hospital) keep the prior's state.
Contradictions are errors naming the row: an unknown unit, hospital, node or call type, an idle
unit with a call or a busy one without, an ``assigned`` call no unit serves, more patients
than beds.
"""

from __future__ import annotations

import json
from pathlib import Path

from twin.errors import ScenarioError
from twin.agents.ems_observed import FORMAT, VERSION, apply_observed, observed_state, read_observed, spin_up

__all__ = ["FORMAT", "VERSION", "observed_state", "read_observed", "export_observed", "load_observed"]


def export_observed(snapshot, path) -> dict:
    """Write the observed state of a snapshot (``"run.h5@08:00"`` or a checkpoint file) to the
    JSON file ``path``; returns the document."""
    from twin.checkpoint import read_checkpoint
    from twin.scenario import load_scenario

    meta, time_s, states = read_checkpoint(snapshot)
    seed = int(meta["seed"])
    sc = load_scenario(meta["scenario"]).replanned(seed)
    doc = observed_state(sc, seed, time_s, states)
    doc["scenario"] = str(meta.get("scenario_name") or sc.name)        # (scenario_toml: the resolved text)
    Path(path).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return doc


def load_observed(path_or_doc, scenario=None, *, overrides=None, seed=None, prior=None):
    """``(scenario, seed, time_s, states, report)``: the twin's state made to agree with an
    observed state (see the module docstring), and the scenario to run from it.

    The prior is the document's own scenario (``scenario_toml``, else ``scenario`` by name) run
    with the document's ``seed`` up to ``time_s``, or the snapshot ``prior``. ``scenario`` and
    ``overrides`` change what is run from ``time_s`` on (a what-if from an observed state);
    they default to the document's scenario unchanged."""
    from twin.checkpoint import read_checkpoint
    from twin.scenario import load_scenario

    doc = read_observed(path_or_doc)
    own = doc.get("scenario_toml") or doc.get("scenario") or scenario
    if not own:
        raise ScenarioError("observed state: name the scenario (the document has no \"scenario\")")
    base = load_scenario(own)
    seed = int(seed if seed is not None else doc.get("seed", base.run_group.seed))
    base = base.replanned(seed)
    t = float(doc["time_s"])
    if prior is not None:
        meta, t_prior, states = read_checkpoint(prior)
        if abs(t_prior - t) > 1e-6:
            raise ScenarioError(f"observed state at {t:g} s; the prior snapshot is at {t_prior:g} s")
    else:
        states = spin_up(base, seed, t)
    report = apply_observed(doc, base, seed, states)
    sc = base
    if scenario is not None or overrides:
        sc = load_scenario(scenario if scenario is not None else own, overrides=overrides).replanned(seed)
        if [f.name for f in sc.flows] != [f.name for f in base.flows]:
            raise ScenarioError(f"observed state: the scenario's flows {[f.name for f in sc.flows]} are not those "
                                f"of the state's scenario {[f.name for f in base.flows]}")
    return sc, seed, t, states, report
