"""Verification of forecasts against synthetic truths held out ([forecast]).

A *truth* is a run of the scenario with its own call-rate and flood-depth factors, drawn from
the same distributions as the members' (:class:`twin.forecast.Perturbation`) under a seed the
forecasts never see, and its own run seed; from each issue time it goes on with its own
traffic demand and re-routing factors (a fork of its snapshot on dice of that seed). Snapshots of the truth at the issue times are the
"city as it is now"; each forecast starts from one with the scenario's *nominal* rates and
depths, assimilates the truth's calls so far (:func:`twin.forecast.fit_call_rate`), perturbs
every member (no control member: the control would be the truth itself) and is scored against
what the truth did next.

The quantity verified is the number of calls per district in each window
``[t0, t0 + h)``: one case per (truth, issue time, horizon, district). Scores
(:mod:`twin.scores`): the mean CRPS per horizon (calls; smaller is better) and the share of
cases whose truth lies inside the members' central 90 % interval (honest: about 90 %).
:func:`lead_time_crps` scores one fixed target window from issue times ever closer to it: a
later issue knows more of the truth's calls, so its CRPS should not be larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.errors import ScenarioError

__all__ = ["truth_overrides", "verify_forecasts", "Verification"]


def truth_overrides(scenario, truth, seed, perturbation) -> tuple:
    """``(overrides, factors)`` of truth ``truth``: the call rate (``calls.rate_per_1000_per_day``
    or a single ``calls.rate_per_h``) times a lognormal factor and each polygon flood's depths
    times another, drawn from ``SeedSequence(seed)`` child ``truth`` exactly as a member's."""
    from twin.forecast import member_plan

    plan = member_plan(scenario, truth + 1, seed, perturbation, control=False)[truth]
    calls = scenario.groups.get("calls")
    rate = getattr(calls, "rate_per_1000_per_day", None)
    if rate is not None:
        over = [f"calls.rate_per_1000_per_day={rate * plan['call_rate']!r}"]
    elif isinstance(getattr(calls, "rate_per_h", None), (int, float)):
        over = [f"calls.rate_per_h={calls.rate_per_h * plan['call_rate']!r}"]
    else:
        raise ScenarioError("verify: the scenario's [calls] need rate_per_1000_per_day or one rate_per_h for a "
                            "synthetic truth's call-rate factor")
    return over + plan["overrides"], {"call_rate": plan["call_rate"], "depths": plan["overrides"],
                                      "demand": plan["demand"], "reroute_logit": plan["reroute_logit"]}


@dataclass
class Verification:
    """Forecasts scored against truths: per horizon, the mean CRPS (calls per district and
    window) and the 90 % interval coverage, over ``cases`` (truth, issue, horizon, district)."""

    horizons_s: list
    crps: np.ndarray           # (horizons,) mean CRPS, calls
    coverage: np.ndarray       # (horizons,) share of cases inside the 90 % interval
    members: np.ndarray        # (forecasts, horizons, districts, members) calls per window
    truth: np.ndarray          # (forecasts, horizons, districts) calls per window
    forecasts: list            # per forecast: {"truth", "t0_s", "call_rate" (the truth's), "fit"}
    target_s: tuple = None     # the fixed target window (s) of :meth:`lead_time_crps`
    target_members: np.ndarray = None   # (forecasts, districts, members) calls in the target window
    target_truth: np.ndarray = None     # (forecasts, districts)

    @property
    def cases(self) -> int:
        return int(self.truth.size)

    def overall_coverage(self) -> float:
        from twin.scores import interval_coverage

        return interval_coverage(self.members, self.truth, 0.9)

    def lead_time_crps(self) -> dict:
        """``{lead time s: mean CRPS}`` of the calls per district in the fixed target window,
        over the truths, for each issue time (lead = window start - issue time)."""
        from twin.scores import crps_ensemble

        if self.target_s is None:
            return {}
        c = crps_ensemble(self.target_members, self.target_truth, fair=True).mean(axis=1)
        leads = np.array([self.target_s[0] - f["t0_s"] for f in self.forecasts])
        return {float(lead): float(c[leads == lead].mean()) for lead in sorted(set(leads.tolist()), reverse=True)}

    def lines(self) -> list:
        out = [f"verification: {len(self.forecasts)} forecasts ({len({f['truth'] for f in self.forecasts})} truths), "
               f"{self.cases} cases (truth, issue, horizon, district), {self.members.shape[-1]} members each",
               f"  {'horizon':<10}{'CRPS (calls)':>14}{'90 % coverage':>16}"]
        for i, h in enumerate(self.horizons_s):
            out.append(f"  +{h / 3600.0:<9.3g}{self.crps[i]:>14.2f}{100 * self.coverage[i]:>15.0f}%")
        out.append(f"  {'all':<10}{float(self.crps.mean()):>14.2f}{100 * self.overall_coverage():>15.0f}%")
        if self.target_s is not None:
            a, b = self.target_s
            out.append(f"  calls {a / 3600:g}-{b / 3600:g} h, CRPS by lead time: "
                       + ", ".join(f"{lead / 3600:g} h {c:.2f}" for lead, c in self.lead_time_crps().items()))
        return out


def verify_forecasts(scenario_text, *, truths, issue_times_s, horizons_s, members, seed=0, truth_seed=7919,
                     perturbation=None, workdir, overrides=None, target_s=None) -> Verification:
    """Run ``truths`` synthetic truths of ``scenario_text`` (with ``overrides``) keeping
    snapshots at ``issue_times_s``, forecast from each snapshot with ``members`` perturbed
    members, and score them (:class:`Verification`). Truth ``k`` runs with seed
    ``truth_seed + k`` and factors from ``SeedSequence(truth_seed)``; the forecasts use ``seed``.
    ``target_s = (a, b)`` (seconds, ``a`` at or after every issue time) is also scored as a fixed
    window from each issue time (:meth:`Verification.lead_time_crps`). Files go to ``workdir``."""
    from pathlib import Path

    from twin.forecast import Perturbation, forecast, run_member
    from twin.runner import load_scenario, run
    from twin.scores import crps_ensemble, interval_coverage

    pert = perturbation if perturbation is not None else Perturbation()
    base = list(overrides or [])
    nominal = load_scenario(scenario_text, overrides=base)
    hs = [float(h) for h in horizons_s]
    if target_s is not None and not (len(target_s) == 2 and max(issue_times_s) <= target_s[0] < target_s[1]):
        raise ScenarioError(f"verify: target window {target_s}; expected (a, b) with every issue time <= a < b")
    end = nominal.run_group.until_s
    if max(issue_times_s) + max(hs) > end or (target_s is not None and target_s[1] > end):
        raise ScenarioError(f"verify: the last issue time plus the longest horizon (or the target window) passes the "
                            f"scenario's end, {end:g} s")
    mem, tru, info, tmem, ttru = [], [], [], [], []
    for k in range(int(truths)):
        over, factors = truth_overrides(nominal, k, truth_seed, pert)
        out = Path(workdir) / f"truth{k}.h5"
        run(scenario_text, seed=truth_seed + k, out=out, overrides=base + over, snapshot_at_s=list(issue_times_s),
            overwrite=True)
        for t0 in issue_times_s:
            at = f"{out}@{t0:.0f}"                         # the snapshot at t0 s
            extra = [] if target_s is None else [x - t0 for x in target_s if x > t0]
            hall = sorted(set(hs) | set(extra))
            # the truth goes on from its snapshot with its own demand and re-routing (its own dice)
            truth = run_member(at, load_scenario(scenario_text, overrides=base + over).resolved_text, [], truth_seed,
                               k + 1, {"call_rate": 1.0, "demand": factors["demand"],
                                       "reroute_logit": factors["reroute_logit"]}, hall, forked=True)
            fc = forecast(at, scenario=nominal.resolved_text, members=members, horizons_s=hall, seed=seed,
                          perturbation=pert, control=False)
            calls, y = np.moveaxis(fc.district_calls, 0, -1), np.asarray(truth["calls"])
            pick = [hall.index(h) for h in hs]
            mem.append(calls[pick])
            tru.append(y[pick])
            if target_s is not None:
                a, b = (hall.index(x - t0) if x > t0 else None for x in target_s)
                tmem.append(calls[b] - (calls[a] if a is not None else 0))
                ttru.append(y[b] - (y[a] if a is not None else 0))
            info.append({"truth": k, "t0_s": float(t0), "call_rate": factors["call_rate"], "fit": fc.fit})
    m, y = np.asarray(mem, dtype=np.float64), np.asarray(tru, dtype=np.float64)
    crps = crps_ensemble(m, y, fair=True)
    return Verification(horizons_s=hs, crps=crps.mean(axis=(0, 2)),
                        coverage=np.array([interval_coverage(m[:, i], y[:, i], 0.9) for i in range(len(hs))]),
                        members=m, truth=y, forecasts=info, target_s=None if target_s is None else tuple(target_s),
                        target_members=np.asarray(tmem, dtype=np.float64) if tmem else None,
                        target_truth=np.asarray(ttru, dtype=np.float64) if ttru else None)
