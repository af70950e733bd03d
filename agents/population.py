"""Synthetic population and its activity-based day, as struct-of-arrays.

What it models, and at what fidelity
------------------------------------
*Zones.* Each district (``City.zone_ids``) has a resident total and marginals: five age
bands, six household sizes, the share of workers and of students, and a jobs weight
(:func:`default_zone_table`, overridable per zone from a CSV table, :func:`read_zone_table`).

*Synthesis* (:func:`synthesize_population`) follows the IPF method of Beckman, Baggerly &
McKay (1996, "Creating synthetic baseline populations", *Transp. Res. A* 30(6)), reduced to
one zone-level table: per zone, (1) households by size are integerised from the size
shares (largest-remainder rounding, then single-person steps so that the persons add up
exactly); (2) the table *household size x age band* is fitted by iterative proportional
fitting from a documented seed (:data:`IPF_SEED`) to the persons-by-size row totals and the
age-band column totals, until the largest marginal error is below ``1e-10`` of the zone
total; (3) each row is integerised by largest-remainder rounding (row totals exact, so
column totals are within one person per household size, at most 6 persons per band and
zone, of their targets); (4) the persons of each (zone, size) cell are dealt round-robin
into its households, adults first, so each household gets an adult whenever the row has
enough. Ages are uniform within a band; students and workers are drawn per zone without
replacement with age-dependent weights (Efraimidis & Spirakis 2006 weighted sampling), so
their counts match the zone shares exactly.

*Day* (:mod:`twin.agents.activities`): one tour-based day per person; gravity destination
choice on car times (free flow, or the congested link times given as ``link_cost_s``);
tour-level multinomial-logit mode choice; times from clipped normal departure and duration
distributions. Car legs are trips for traffic (:meth:`Population.vehicle_trips`); other
modes move at mode speeds over shortest network distances. No joint household scheduling.

*Congestion feedback* is one step at a time, by the caller: synthesise on link times from a
traffic run (``synthesize_population(..., link_cost_s=...)``: destination and mode choice
and car-leg durations on those times), or keep the choices and re-time the plans from the
observed car-leg times (:meth:`Population.with_travel_times`). No equilibrium loop is run.

*Where is everyone* (:meth:`Population.location_at`): at an activity, its node; while
travelling, the node of the trip's least-cost route reached at the elapsed fraction of the
trip (shortest-path trees per origin, built once and cached).

*Storage*: :meth:`Population.write` to the HDF5 results store and
:func:`read_population` / :meth:`Population.read` back, exactly.

Defaults and sources (all overridable; they are defaults, not local data)
--------------------------------------------------------------------------
The person and household shares are **national** figures for mainland China from the 7th
National Population Census (reference time 1 November 2020), not figures for Anhui
province, Hefei or Baohe District; a real city differs (Hefei, a migrant destination, is
younger than the national mean). Every zone gets the same national shares. Override them
per zone with a zone table (CSV or DataFrame, :func:`read_zone_table`; ``twin population
--zones zones.csv``). :data:`DEFAULT_SOURCES` lists each figure with its scope, source and
status; in short:

- Age bands 0-14 / 15-59 / 60-64 / 65-79 / 80+: 17.95 / 63.35 / 5.20 / 10.96 / 2.54 %.
  0-14, 15-59, 60+ (18.70 %) and 65+ (13.50 %) are the published national shares (NBS,
  Communiqué of the 7th National Population Census No. 5, age composition, 11 May 2021;
  also given at the State Council Information Office press conference that day). 60-64 is
  derived (18.70 - 13.50). The 80+ share is 35.8 million aged 80+ over the census total of
  1,411.78 million; the 35.8 million was entered from memory of the census yearbook's
  national age table and is not checked against it (approximate, about +-0.1 percentage
  point), and 65-79 (13.50 - 2.54) inherits that uncertainty.
- Household sizes 1..6+: 25.39 / 29.68 / 20.99 / 13.17 / 6.19 / 4.58 % of family households
  (national). Only the mean, 2.62 persons per family household (Communiqué No. 2,
  households), is checked against a published source. The distribution was entered from
  memory of the China Population Census Yearbook 2020 (family households by size) and is
  approximate (each share perhaps +-1 percentage point); it is consistent with the mean
  (2.59 with the 6+ class counted as 6; 6+ households are synthesised as 6 persons).
- Sex: 51.24 % male (national), derived from the published sex ratio of 105.07 males per 100
  females (Communiqué No. 4, sex composition; also in Xinhua's census highlights of
  11 May 2021): 105.07 / 205.07. Workers 45 % of residents and students 17 % are assumptions, not census
  figures (national employed persons are about 53 % of the population but include rural
  and 65+ workers; about 240 million enrolled, primary to tertiary, in 2020).
- Chronic condition prevalence by band 2 / 15 / 55 / 70 / 80 % (assumption, in line with
  the National Health Commission's statement that about 78 % of people aged 60+ have at
  least one chronic disease). "Elderly living alone" = aged 65+ in a 1-person household.
- Zone residents: 150,000 in all (about 10,000 residents/km² over the 14.5 km² embedded
  extract) split by road length in each zone; on TNTP cities with a ``*_trips.tntp`` beside
  the net file, residents in proportion to each zone's origin demand and jobs to its
  destination demand (zone demand as a proxy for population and jobs). Jobs elsewhere:
  residents x 1.6 in central zones, x 0.8 in peripheral ones.
- Facilities (:func:`place_facilities`): every zone node is a workplace (the zone's jobs
  spread evenly); schools and markets 1 per 10,000 residents, parks 1 per 20,000, clinics
  (community health centres) 1 per 25,000, elderly-care centres 1 per 30,000 per zone
  (at least one school, market and clinic per zone), hospitals 1 per 200,000 city-wide (at
  least one), on distinct random nodes of the zone (seeded). The service thresholds echo
  the 15-minute life circle of GB 50180-2018 (Standard for urban residential area planning).
"""

# This module re-exports the population API from the modules that implement it, so that
# every name stays importable from here: population_defaults (census defaults and codes),
# population_zones (zone inputs, facilities), population_synth (IPF, synthesize_population),
# population_plans (the day, route trees), population_model (Population and its storage)
# (the ``twin population`` command is twin.cli_population).

from __future__ import annotations

import logging

from twin.agents.population_defaults import (AGE_BANDS, AGE_COLUMNS, CHRONIC, DEFAULT_SOURCES, ELDERLY_ALONE,
                                             HOUSEHOLD_COLUMNS, HOUSEHOLD_SIZES, IPF_SEED, ZONE_COLUMNS)
from twin.agents.population_model import Accessibility, Locations, Population, read_population
from twin.agents.population_synth import ipf, synthesize_population
from twin.agents.population_zones import default_zone_table, place_facilities, read_facilities, read_zone_table

__all__ = [
    "AGE_BANDS", "AGE_COLUMNS", "HOUSEHOLD_COLUMNS", "HOUSEHOLD_SIZES", "ZONE_COLUMNS", "IPF_SEED",
    "CHRONIC", "ELDERLY_ALONE", "DEFAULT_SOURCES",
    "default_zone_table", "read_zone_table", "place_facilities", "read_facilities", "ipf",
    "synthesize_population", "read_population", "Population", "Locations", "Accessibility",
]

logger = logging.getLogger(__name__)
