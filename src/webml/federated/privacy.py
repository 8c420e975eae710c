"""The privacy budget of client-level differential privacy: (ε, δ) from Gaussian DP.

With Flower's client-side fixed clipping (``fixedclipping_mod`` on the
clients, ``DifferentialPrivacyClientSideFixedClipping`` on the server) each
client's update is clipped to L2 norm ``C`` and the server adds Gaussian
noise of standard deviation ``σ C / m`` to the mean of the ``m`` sampled
updates: one round is the Gaussian mechanism with noise multiplier ``σ``
on one client's contribution, i.e. ``1/σ``-GDP (Dong, Roth & Su, "Gaussian
Differential Privacy", 2019, Theorem 2.7).

* ``R`` rounds with every client taking part compose to ``μ = √R / σ``
  (their Corollary 3.3);
* with each client sampled with probability ``q`` per round, the central
  limit theorem for subsampled composition gives
  ``μ = q √(R (e^{1/σ²} − 1))`` (their Theorem 3.4 and Corollary 5.4; Bu,
  Dong, Long & Su 2020 for the same formula for DP-SGD).

A ``μ``-GDP mechanism is (ε, δ(ε))-DP for every ε ≥ 0 with
``δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)`` (their Corollary 2.13);
:func:`privacy_budget` solves it for ε at the δ asked for.

>>> from webml.federated.privacy import privacy_budget
>>> b = privacy_budget(noise_multiplier=1.0, rounds=1, delta=1e-5)
>>> round(b.mu, 3), round(b.epsilon, 2)
(1.0, 4.38)
>>> privacy_budget(noise_multiplier=4.0, rounds=16, delta=1e-5).epsilon == b.epsilon  # sqrt(16)/4 = 1
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr

__all__ = ["PrivacyBudget", "gdp_delta", "gdp_mu", "privacy_budget"]


@dataclass(frozen=True)
class PrivacyBudget:
    """(ε, δ) of a training run, with the GDP ``mu`` it comes from and the run's figures."""

    epsilon: float
    delta: float
    mu: float
    noise_multiplier: float
    rounds: int
    sample_rate: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"privacy_budget: {name} must be a finite number, got {value!r}")
    return float(value)


def gdp_mu(noise_multiplier: float, rounds: int, sample_rate: float = 1.0) -> float:
    """The GDP ``μ`` of ``rounds`` rounds of noise multiplier ``σ`` with client sampling ``q``."""
    sigma = _number(noise_multiplier, "noise_multiplier")
    q = _number(sample_rate, "sample_rate")
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"privacy_budget: rounds must be a positive integer, got {rounds!r}")
    if not 0 < q <= 1:
        raise ValueError(f"privacy_budget: sample_rate must be in (0, 1], got {sample_rate}")
    if sigma < 0:
        raise ValueError(f"privacy_budget: noise_multiplier must be >= 0, got {noise_multiplier}")
    if sigma == 0:
        return math.inf
    if q == 1:
        return math.sqrt(rounds) / sigma
    return q * math.sqrt(rounds * math.expm1(1.0 / sigma**2))


def gdp_delta(epsilon: float, mu: float) -> float:
    """``δ(ε)`` of a ``μ``-GDP mechanism (Dong, Roth & Su 2019, Corollary 2.13)."""
    a = -epsilon / mu + mu / 2
    b = -epsilon / mu - mu / 2
    # e^ε Φ(b) in log space: e^ε overflows long before the product does.
    return float(ndtr(a) - math.exp(epsilon + log_ndtr(b)))


def privacy_budget(noise_multiplier: float, rounds: int, delta: float, sample_rate: float = 1.0) -> PrivacyBudget:
    """The smallest ε such that the run is (ε, ``delta``)-DP at the client level (ε = inf without noise)."""
    d = _number(delta, "delta")
    if not 0 < d < 1:
        raise ValueError(f"privacy_budget: delta must be in (0, 1), got {delta}")
    mu = gdp_mu(noise_multiplier, rounds, sample_rate)
    if math.isinf(mu):
        epsilon = math.inf
    elif gdp_delta(0.0, mu) <= d:
        epsilon = 0.0
    else:
        high = 1.0
        while gdp_delta(high, mu) > d:  # δ(ε) decreases in ε: bracket the root, then solve
            high *= 2
        epsilon = float(brentq(lambda e: gdp_delta(e, mu) - d, 0.0, high, xtol=1e-10, rtol=1e-12))
    return PrivacyBudget(epsilon, d, mu, float(noise_multiplier), rounds, float(sample_rate))
