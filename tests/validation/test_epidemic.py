"""The epidemic against closed forms no one here wrote.

- Final size of a major outbreak under homogeneous mixing: z = 1 - exp(-R0 z) (Kermack &
  McKendrick 1927; e.g. Diekmann, Heesterbeek & Britton 2013, ch. 1): R0 = 2 -> 0.7968, with
  or without a latent period.
- Extinction from one case with an exponential infectious period: the offspring number is
  geometric with mean R0, so the branching process dies out with probability 1/R0.
- Early growth rate with a gamma generation interval (mean k theta): the Euler-Lotka equation
  1 = R0 (1 + r theta)^-k (Wallinga & Lipsitch 2007, Proc. R. Soc. B 274: 599).
- An ICU as a loss system: Poisson admissions refused with Erlang's B(c, a).
- Conservation: every person is in exactly one state every day.

The model is in continuous time with daily steps: a contact of a day infects with probability
1 - exp(-beta w) for the infector's infectious time w that day. The homogeneous limit here is 40
community contacts a day drawn anew, so R0 = 40 (1 - exp(-beta w)) summed over the days is 2
less a saturation of at most beta / 2 = 0.5 % (R0 >= 1.99, z >= 0.7941).
"""

import math

import numpy as np
import pytest

from twin.agents.epidemic import Disease, EpidemicRun, Prognoses, erlang_b, final_size
from twin.agents.epidemic_contacts import Contacts, homogeneous_contacts
from twin.kernels import epidemic as K

Z = (0.0,) * 10
ASYMPTOMATIC = Prognoses(susceptibility=(1.0,) * 10, symptomatic=Z, severe=Z, critical=Z, death=Z)


def _sir(n, contacts, beta, latent_d, infectious):
    dis = Disease(beta=beta, layer_weights={"community": 1.0}, prognoses=ASYMPTOMATIC,
                  durations={"latent": latent_d, "asymptomatic": infectious})
    return dis, homogeneous_contacts(n, contacts)


def test_closed_forms_of_the_helpers():
    assert final_size(2.0) == pytest.approx(0.796812, abs=1e-6)
    assert final_size(0.9) == 0.0
    # Erlang B against its direct formula a^c / c! / sum a^k / k!
    for c, a in ((10, 5.0), (90, 80.0), (1, 0.5)):
        direct = (a ** c / math.factorial(c)) / sum(a ** k / math.factorial(k) for k in range(c + 1))
        assert erlang_b(c, a) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("latent_d", [1.0, 4.0])
def test_final_size_under_homogeneous_mixing(latent_d):
    n = 200_000
    dis, c = _sir(n, 40, 0.01, latent_d, ("exponential", 5.0, 0.0))
    run = EpidemicRun(c, dis, np.full(n, 30), np.random.default_rng(11), 300)
    run.seed(np.arange(50), 0)
    res = run.run()
    # R0 between 1.99 and 2.00 (see the module docstring); the final size's sd at this n is
    # about 0.002, so +-0.006 around the band [0.7941, 0.7968] is three sd.
    assert 0.7941 - 0.006 <= res.attack_rate <= 0.7968 + 0.006
    assert res.daily["exposed"].iloc[-1] + res.daily["asymptomatic"].iloc[-1] == 0


def test_extinction_probability_is_one_over_r0():
    n, runs = 3000, 400
    dis, c = _sir(n, 40, 0.01, 1.0, ("exponential", 5.0, 0.0))
    extinct = 0
    for seed in range(runs):
        run = EpidemicRun(c, dis, np.full(n, 30), np.random.default_rng(1000 + seed), 200)
        run.seed([0], 0)
        while True:
            run.step()
            infected = n - int(np.count_nonzero(run.state == K.S))
            active = np.count_nonzero((run.state == K.E) | (run.state == K.IA))
            if infected >= 100:                 # a major outbreak under way
                break
            if active == 0:
                extinct += 1
                break
    # 1 / R0 with R0 in [1.99, 2.00]: 0.50-0.503; binomial sd over 400 runs 0.025
    assert extinct / runs == pytest.approx(0.5, abs=0.05)


def test_early_growth_rate_solves_euler_lotka_for_a_gamma_generation_interval():
    n, r0, mean, sd = 200_000, 3.0, 6.0, 2.5
    dis = Disease(beta=r0 / 40, layer_weights={"community": 1.0}, prognoses=ASYMPTOMATIC, profile_d=(mean, sd),
                  durations={"latent": 0.0, "asymptomatic": 40.0})
    run = EpidemicRun(homogeneous_contacts(n, 40), dis, np.full(n, 30), np.random.default_rng(2), 60)
    run.seed(np.arange(20), 0)
    res = run.run()
    cum = n - res.daily["susceptible"].to_numpy()
    keep = (cum > 0.001 * n) & (cum < 0.01 * n)      # exponential phase, depletion below 1 %
    assert keep.sum() >= 8
    r = np.polyfit(np.flatnonzero(keep), np.log(cum[keep]), 1)[0]
    k, theta = (mean / sd) ** 2, sd ** 2 / mean
    want = (r0 ** (1 / k) - 1) / theta                # 1 = R0 (1 + r theta)^-k: 0.2017 per day
    assert want == pytest.approx(0.2017, abs=1e-4)
    assert r == pytest.approx(want, rel=0.06)


def test_icu_refusals_follow_erlang_b():
    """Poisson admissions of 10 a day to 90 ICU beds, stays exponential with mean 8 days: the
    refused share is B(90, 80). Everyone seeded becomes critical after fixed short steps, so
    ICU arrivals are the seeding's Poisson process shifted by a constant."""
    days, per_day, beds, stay = 3000, 10.0, 90, 8.0
    rng = np.random.default_rng(7)
    arrivals = rng.poisson(per_day, days)
    n = int(arrivals.sum())
    one = (1.0,) * 10
    prog = Prognoses(susceptibility=one, symptomatic=one, severe=one, critical=one, death=Z)
    dis = Disease(beta=0.0, prognoses=prog, durations={"latent": 0.5, "presymptomatic": 0.1, "to_severe": 0.1,
                                                       "to_critical": 0.1, "critical": ("exponential", stay, 0.0)})
    c = homogeneous_contacts(n, 1)
    run = EpidemicRun(c, dis, np.full(n, 40), np.random.default_rng(8), days + 60, icu_beds=beds)
    first = np.r_[0, np.cumsum(arrivals)]
    for d in range(days + 60):
        if d < days:
            run.seed(np.arange(first[d], first[d + 1]), d)
        run.step()
    daily = run.result().daily.iloc[200:days]         # after the ICU has filled (25 stays)
    refused = daily["icu_refused"].sum() / (daily["icu_admissions"].sum() + daily["icu_refused"].sum())
    want = erlang_b(beds, per_day * stay)
    assert 0.02 < want < 0.06
    # busy periods make refusals bursty: the share's sd over such runs is 0.0024 (eight
    # seeds: mean 0.0259 against B = 0.0262), so three sd
    assert refused == pytest.approx(want, abs=0.0072)


def test_every_person_is_in_exactly_one_state_every_day_and_the_flows_add_up():
    n = 20_000
    dis = Disease(beta=0.02, layer_weights={"community": 1.0})
    run = EpidemicRun(homogeneous_contacts(n, 15), dis, np.random.default_rng(3).integers(0, 95, n),
                      np.random.default_rng(4), 150, ward_beds=20, icu_beds=5)
    run.seed(np.arange(30), 0)
    d = run.run().daily
    states = list(K.STATE_NAMES)
    assert (d[states].sum(axis=1) == n).all()
    assert (n - d["susceptible"]).tolist() == (30 + d["new_infections"].cumsum()).tolist()
    assert d["dead"].tolist() == d["deaths"].cumsum().tolist()
    assert d["recovered"].tolist() == d["recoveries"].cumsum().tolist()
    assert (d["severe"] + d["critical"] <= n).all() and d["deaths"].sum() > 0 and d["icu_refused"].sum() > 0
    assert (d["ward_occupied"] <= 20).all() and (d["icu_occupied"] <= 5).all()


def test_next_generation_r0_in_closed_form():
    """Mass action: K = c beta / (n - 1) w^T off the diagonal, spectral radius c beta mean(W)
    (to O(1/n)); households of m with a constant infectious time W: (m - 1)(1 - exp(-beta W))."""
    n = 5000
    dis, c = _sir(n, 40, 0.01, 1.0, ("exponential", 5.0, 0.0))
    run = EpidemicRun(c, dis, np.full(n, 30), np.random.default_rng(5), 10)
    assert run.r0() == pytest.approx(40 * 0.01 * run.infectious_weight().mean(), rel=2e-3)
    m, beta, w = 4, 0.2, 6.0
    hh = np.repeat(np.arange(n // m), m)
    src = np.repeat(np.arange(n), m - 1)
    dst = np.array([j for i in range(n) for j in range(hh[i] * m, hh[i] * m + m) if j != i])
    indptr = np.arange(0, len(src) + 1, m - 1, dtype=np.int64)
    households = Contacts(n, ("household",), indptr, dst.astype(np.int32), np.zeros(len(dst), dtype=np.int8),
                          np.full(len(dst), -1, dtype=np.int32), np.zeros(1, dtype=np.int64),
                          np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(n + 1, dtype=np.int64),
                          np.zeros(0, dtype=np.int32), 0)
    dis = Disease(beta=beta, layer_weights={"household": 1.0}, prognoses=ASYMPTOMATIC,
                  durations={"latent": 1.0, "asymptomatic": w})
    run = EpidemicRun(households, dis, np.full(n, 30), np.random.default_rng(5), 10)
    assert run.r0() == pytest.approx((m - 1) * -math.expm1(-beta * w), rel=1e-5)
    run.calibrate_r0(2.0)
    assert run.r0() == pytest.approx(2.0, rel=1e-3)
    with pytest.raises(Exception, match="cannot be reached"):
        run.calibrate_r0(3.5)                     # 3 contacts each can infect at most 3
