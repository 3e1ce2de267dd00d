"""Expectations under the forecast's normal log-return, by fixed Gauss-Legendre rules.

Fixed nodes make the answers deterministic and fast (no sampling noise, no adaptive loop); the
integration is split at the kinks of the integrand (an LP range's bounds), where a global rule
would converge slowly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise

import numpy as np
from scipy.special import ndtr

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(32)
_TAIL_SIGMAS = 10.0  # beyond +-10 sigma lies less than 1e-22 of the mass


def normal_expectation(
    f: Callable[[float], float], mean: float, std: float, kinks: Iterable[float] = ()
) -> float:
    """E[f(X)] for X ~ N(mean, std^2); `kinks` are the x where f is not smooth."""
    inner = sorted(z for z in ((k - mean) / std for k in kinks) if -_TAIL_SIGMAS < z < _TAIL_SIGMAS)
    edges = [-_TAIL_SIGMAS, *inner, _TAIL_SIGMAS]
    total = 0.0
    for low, high in pairwise(edges):
        half = (high - low) / 2
        z = low + half * (_NODES + 1)
        density = np.exp(-z * z / 2) / np.sqrt(2 * np.pi)
        values = np.fromiter((f(mean + std * zi) for zi in z), dtype=np.float64, count=z.size)
        total += half * float(_WEIGHTS @ (values * density))
    return total


def occupation_fraction(low: float, high: float, mean: float, std: float) -> float:
    """Expected share of the horizon a Brownian log-return path spends inside [low, high].

    The path starts at 0 and ends distributed N(mean, std^2); at time share u it is
    N(mean*u, std^2*u), and by Fubini the expected time inside is the integral over u of the
    probability of being inside. Substituting u = w^2 removes the sqrt(u) singularity at 0.
    """
    w = (_NODES + 1) / 2
    u = w * w
    spread = std * w
    inside = ndtr((high - mean * u) / spread) - ndtr((low - mean * u) / spread)
    return float(_WEIGHTS @ (inside * w))  # the interval [0, 1] halves the weights; 2w doubles
