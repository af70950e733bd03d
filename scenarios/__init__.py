"""Built-in scenarios: ``*.toml`` specs run by :func:`twin.runner.run` (``twin run NAME``).

``hefei_day``
    One day of emergency medical response on the embedded Hefei (Baohe) city: six
    ambulances at three stations, two emergency departments, about 160-190 calls, and a
    morning peak of 10,000 random trips coupled to the EMS clock.

``hefei_people``
    The same EMS system with demand from a synthetic population of 50,000 persons
    (``[population]``): call rates follow the persons present in each district (about 40
    calls/day) and the background traffic is the population's car legs (about 8,500).

List them with :func:`twin.runner.builtin_scenarios` or ``twin run --list``; the file
layout is documented in :mod:`twin.runner`.
"""

__all__: list[str] = []
