"""Default inputs and codes of the synthetic population: census shares, bands and sizes.

This module holds the documented default figures the population is synthesised from (the
age bands and household sizes and their national 2020-census shares, sex, worker and student
shares, chronic-condition prevalence, with :data:`DEFAULT_SOURCES` giving scope, source and
status of each), the zone-table columns, the seed of the household-size x age-band IPF, the
health-flag bits and the residents-per-facility rates. Their sources are discussed in the
docstring of :mod:`twin.agents.population`.
"""

from __future__ import annotations

import numpy as np

#: Age bands: (zone-table column, first age, last age + 1).
AGE_BANDS = (("age_0_14", 0, 15), ("age_15_59", 15, 60), ("age_60_64", 60, 65), ("age_65_79", 65, 80),
             ("age_80_plus", 80, 95))
AGE_COLUMNS = tuple(b[0] for b in AGE_BANDS)
CENSUS_2020_AGE_SHARES = (0.1795, 0.6335, 0.0520, 0.1096, 0.0254)
#: Every default person/household figure: (figure, value, scope, source, status). "published"
#: = checked against the source named; "derived" = arithmetic on published figures;
#: "approximate" = entered from memory of the source, not checked; "assumption" = no source.
DEFAULT_SOURCES = (
    ("age 0-14 share", 0.1795, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 15-59 share", 0.6335, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 60+ share", 0.1870, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 65+ share", 0.1350, "China (national)", "NBS, 7th census Communique No. 5 (age), 11 May 2021", "published"),
    ("age 60-64 share", 0.0520, "China (national)", "60+ minus 65+", "derived"),
    ("age 80+ share", 0.0254, "China (national)",
     "35.8 million aged 80+ (China Population Census Yearbook 2020) / 1,411.78 million", "approximate"),
    ("age 65-79 share", 0.1096, "China (national)", "65+ minus 80+", "approximate"),
    ("persons per family household", 2.62, "China (national)",
     "NBS, 7th census Communique No. 2 (households), 11 May 2021", "published"),
    ("family households by size 1..6+", (0.2539, 0.2968, 0.2099, 0.1317, 0.0619, 0.0458), "China (national)",
     "China Population Census Yearbook 2020, family households by size", "approximate"),
    ("male share", 0.5124, "China (national)",
     "sex ratio 105.07 (NBS, 7th census Communique No. 4, sex composition): 105.07 / 205.07", "derived"),
    ("workers share of residents", 0.45, "model", "assumption (see module docstring)", "assumption"),
    ("students share of residents", 0.17, "model", "assumption (see module docstring)", "assumption"),
    ("chronic condition by age band", (0.02, 0.15, 0.55, 0.70, 0.80), "model",
     "assumption, in line with the National Health Commission's ~78 % of 60+ with a chronic disease",
     "assumption"),
)
#: Household sizes synthesised (the 6+ class as 6) and their zone-table columns.
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_COLUMNS = ("hh_1", "hh_2", "hh_3", "hh_4", "hh_5", "hh_6plus")
CENSUS_2020_HOUSEHOLD_SHARES = (0.2539, 0.2968, 0.2099, 0.1317, 0.0619, 0.0458)
MALE_SHARE = 0.5124
DEFAULT_WORKERS_SHARE = 0.45
DEFAULT_STUDENTS_SHARE = 0.17
DEFAULT_TOTAL_PERSONS = 150_000
CHRONIC_SHARE_BY_BAND = (0.02, 0.15, 0.55, 0.70, 0.80)
ZONE_COLUMNS = ("zone_id", "persons", *AGE_COLUMNS, *HOUSEHOLD_COLUMNS, "workers", "students", "jobs")
#: Seed of the (household size x age band) IPF: no child lives alone; the elderly are
#: over-represented in 1-2 person households; children and three-generation households in
#: larger ones. An assumption; only its zero pattern and ratios matter.
IPF_SEED = np.array([
    # 0-14 15-59 60-64 65-79 80+
    [0.0, 1.0, 1.0, 1.5, 2.0],   # 1 person
    [0.3, 1.0, 1.5, 2.0, 2.0],   # 2
    [1.0, 1.0, 0.6, 0.5, 0.5],   # 3
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 4
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 5
    [1.2, 1.0, 0.8, 0.8, 0.8],   # 6+
])
#: Health flag bits (uint8).
CHRONIC, ELDERLY_ALONE = 1, 2
#: Residents per facility by kind, and whether every populated zone gets at least one.
PERSONS_PER_FACILITY = {"school": (10_000, True), "market": (10_000, True), "park": (20_000, False),
                        "clinic": (25_000, True), "elderly_care": (30_000, False)}
PERSONS_PER_HOSPITAL = 200_000
