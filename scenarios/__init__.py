"""Built-in scenarios and the flows a scenario can hold (STYLE §15).

Scenarios: ``*.toml`` specs run by :func:`twin.runner.run` (``twin run NAME``):

``hefei_day``
    One day of emergency medical response on the embedded Hefei (Baohe) city: six
    ambulances at three stations, two emergency departments, about 160-190 calls, and a
    morning peak of 10,000 random trips coupled to the clock.
``hefei_people``
    The same EMS system with demand from a synthetic population of 50,000 persons
    (``[population]``): call rates follow the persons present in each district (about 40
    calls/day) and the background traffic is the population's car legs (about 8,500).
``hefei_rush``
    A morning rush through signals with a 10-casualty bus crash at 08:00 and move-up.
``hefei_flood``
    A rainstorm day: the southern districts flood from 10:00 (links slowed, then closed from
    300 mm), their flood plain evacuates at 09:00 to three shelters through the traffic,
    trucks bring water and food to the shelters, and the EMS works around the water.
``hefei_eldercare``
    The ``hefei_people`` day with five community elderly-care stations: day care, home care and
    falls for the residents aged 65+, with 15-minute walking access and its equity.
``hefei_joint``
    One day of the 120, 110 and 119 centres ([[agencies]]), one call taker each, each sending
    its own units (the police in two commands with their own districts and mutual aid), with
    medical, police and fire calls and joint ones (crashes with injuries, fires with
    casualties) transferred to the 120; ``--set coordination.mode=unified`` pools the call
    takers and sends any unit at once. The 12345 hotline's road, water and city-management
    requests are worked by the departments' field teams against service-level targets.
``hefei_epidemic``
    180 days of an epidemic on the contacts of 100,000 synthetic persons (households, classes,
    teams, zone-hours out of home), with the hospitals' ward and ICU beds and calls to 120.

Flows, one module each (the floor between the agents and the runner): ``ems``
(:mod:`twin.scenarios.ems`), ``traffic``, ``population``, ``crashes``, ``incidents``, ``events``
(scripted closures, capacity and speed changes of links), ``hazards`` (floods), ``evacuation``
(districts told to leave, cars to shelters), ``relief`` (trucks from depots to the shelters), ``eldercare`` (care centres, older residents'
visits and home care, fall calls; :mod:`twin.scenarios.eldercare`), ``epidemic`` (an outbreak on the
population's contacts, with hospital and ICU beds; :mod:`twin.scenarios.epidemic`), ``rules``
(``[[rules]]`` acting on the simulated state), ``requests`` (12345 non-emergency requests worked
by departments' field teams; :mod:`twin.scenarios.requests`).
:data:`BUILTIN_FLOWS` is the one ordered list of built-in flows: its order fixes the random
streams' order (new flows go last, so no earlier stream changes) and the order of the
tables and of the report. Gallery scripts (``gallery_*.py``) load a built-in scenario,
change it, run, compare and plot.
"""

from twin.scenarios.crashes import CrashFlow
from twin.scenarios.eldercare import ElderCareFlow
from twin.scenarios.ems import EmsFlow
from twin.scenarios.epidemic import EpidemicFlow
from twin.scenarios.evacuation import EvacuationFlow
from twin.scenarios.events import NetworkEventsFlow
from twin.scenarios.hazards import HazardFlow
from twin.scenarios.incidents import IncidentFlow
from twin.scenarios.population import PopulationFlow
from twin.scenarios.relief import ReliefFlow
from twin.scenarios.requests import RequestsFlow
from twin.scenarios.rules import RulesFlow
from twin.scenarios.traffic import TrafficFlow

__all__ = ["BUILTIN_FLOWS"]

#: The built-in flows, in stream order.
BUILTIN_FLOWS = (EmsFlow, TrafficFlow, PopulationFlow, CrashFlow, IncidentFlow, NetworkEventsFlow, HazardFlow,
                 EvacuationFlow, ReliefFlow, ElderCareFlow, EpidemicFlow, RulesFlow, RequestsFlow)
