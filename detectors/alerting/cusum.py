"""Two-sided tabular CUSUM, self-starting or with a reference, frozen or learning."""

from __future__ import annotations

import math

from scipy.stats import norm
from scipy.stats import t as student_t

from parrotwatch.detectors.alerting.standardise import Direction, check_direction, scale, standardise
from parrotwatch.detectors.alerting.state import Snapshot, StateError


class Cusum(Snapshot):
    """Two-sided tabular CUSUM on standardised values, self-starting when no reference is given.

    Page (1954), "Continuous inspection schemes", Biometrika 41(1/2); tabular form and
    notation of Montgomery, "Introduction to Statistical Quality Control", 6th ed., §9.1:

        C+_t = max(0, C+_{t-1} + z_t - k)        C-_t = max(0, C-_{t-1} - z_t - k)

    ``alarm`` when C+_t > h (up), C-_t > h (down) or either (both); k is half the shift to
    detect, in sigmas. With a known reference, z_t = (x_t - target) / sigma. Otherwise z_t is
    self-starting (Hawkins 1987, "Self-starting CUSUM charts for location and scale", The
    Statistician 36): with the mean m_n and sample sd s_n of the n values learned so far,
    u_t = (x_t - m_n) / s_n * sqrt(n / (n + 1)) follows Student's t with n - 1 degrees of
    freedom, and z_t = Phi^{-1}(F_{t,n-1}(u_t)); testing starts after ``warmup`` values. A value
    that signals or lifts a sum above h / 2 is not learned, so an incident stays out of the
    reference. s_n is floored at max(min_sigma, min_rel_sigma * |m_n|). After a signal that side
    restarts at the fast-initial-response head start ``fir * h`` (Lucas & Crosier 1982, "Fast
    initial response for CUSUM quality-control schemes", Technometrics 24(3)): a shift that
    lasts signals again within a few values, one that ended decays away.

    A slow creep is learned into a self-starting reference as it grows. ``freeze_after`` stops
    the learning after that many values (warmup included): the reference is then frozen at the
    reference period, as in a Phase I / Phase II chart (Montgomery §9.1.6), and a gradual shift
    accumulates in the sums instead of moving the reference. So that a lasting, accepted change
    does not alarm forever, ``relearn_after`` values in a row with the watched sum above h / 2
    forget the reference and learn anew. ``rising`` says whether the last value pushed the
    watched sum up (z_t beyond k on the watched side): the evaluator keeps a firing alert on
    while the shift goes on.

    Known reference 0 and sd 1, k = 0.5, h = 2: each 1.5 adds 1.5 - 0.5 = 1 to C+, which passes h
    at the third value and restarts at fir * h = 1:

    >>> d = Cusum(k=0.5, h=2.0, target=0.0, sigma=1.0)
    >>> [(d.update(1.5).statistic, d.alarm) for _ in range(3)]
    [(1.0, False), (2.0, False), (3.0, True)]
    >>> d.update(0.0).statistic  # 1 + 0 - 0.5 after the restart
    0.5
    """

    STATE_VERSION = 2
    _PARAMS = {"k": "float", "h": "float", "warmup": "int", "direction": "str", "target": "float?",
               "sigma": "float?", "min_sigma": "float", "min_rel_sigma": "float", "fir": "float",
               "freeze_after": "int?", "relearn_after": "int?"}
    _VARS = {"_n": "count", "_mean": "float", "_m2": "float", "_pos": "float", "_neg": "float",
             "_alarm": "bool", "_stat": "float", "_rising": "bool", "_out": "count"}
    _MIGRATIONS = {1: lambda s: {**s, "params": {**s.get("params", {}), "freeze_after": None,
                                                 "relearn_after": None},
                                 "vars": {**s.get("vars", {}), "rising": False, "out": 0}}}

    def __init__(
        self,
        k: float = 0.5,
        h: float = 10.0,
        warmup: int = 10,
        direction: Direction = "both",
        target: float | None = None,
        sigma: float | None = None,
        min_sigma: float = 0.0,
        min_rel_sigma: float = 0.0,
        fir: float = 0.5,
        freeze_after: int | None = None,
        relearn_after: int | None = None,
    ) -> None:
        if k < 0 or h <= 0 or not 0 <= fir < 1:
            raise ValueError("need k >= 0, h > 0 and 0 <= fir < 1")
        if (target is None) != (sigma is None):
            raise ValueError("give both target and sigma, or neither (self-starting)")
        if warmup < 3 and target is None:
            raise ValueError("a self-starting CUSUM needs warmup >= 3 values")
        if freeze_after is not None and freeze_after < warmup:
            raise ValueError("freeze_after must be at least warmup")
        if relearn_after is not None and relearn_after < 1:
            raise ValueError("relearn_after must be at least 1")
        check_direction(direction)
        self.k, self.h, self.warmup, self.direction, self.fir = k, h, warmup, direction, fir
        self.target, self.sigma, self.min_sigma, self.min_rel_sigma = target, sigma, min_sigma, min_rel_sigma
        self.freeze_after, self.relearn_after = freeze_after, relearn_after
        self.reset()

    def reset(self) -> None:
        """Zero both sums and forget the learned values (a given target and sigma stay)."""
        self._n, self._mean, self._m2 = 0, 0.0, 0.0
        self._pos, self._neg, self._alarm, self._stat = 0.0, 0.0, False, 0.0
        self._rising, self._out = False, 0

    def _check_state(self, where: str) -> None:
        if self._m2 < 0:
            raise StateError(f"{where}.vars.m2: a sum of squares cannot be negative ({self._m2})")

    @property
    def alarm(self) -> bool:
        """Whether the last value signalled (see the class docstring)."""
        return self._alarm

    @property
    def rising(self) -> bool:
        """Whether the last value raised the watched sum (z_t beyond k on the watched side)."""
        return self._rising

    @property
    def statistic(self) -> float:
        """The last sum compared with h (before any restart): C+ (up), C- (down), max (both)."""
        return self._stat

    @property
    def ready(self) -> bool:
        """Whether the next value is tested (a reference is given or ``warmup`` values learned)."""
        return self.target is not None or self._n >= self.warmup

    @property
    def mu0(self) -> float:
        """The reference mean: ``target`` or m_n."""
        return self.target if self.target is not None else self._mean

    @property
    def sigma0(self) -> float:
        """The reference sd: ``sigma`` or the floored sample sd sqrt(M2 / (n - 1))."""
        if self.sigma is not None:
            return self.sigma
        sd = math.sqrt(self._m2 / (self._n - 1)) if self._n > 1 else 0.0
        return scale(sd, self._mean, self.min_sigma, self.min_rel_sigma)

    def _z(self, x: float) -> float:
        """z_t: standardised directly, or through Student's t (Hawkins 1987) when self-starting."""
        if self.target is not None:
            return standardise(x - self.target, self.sigma)
        u = standardise(x - self._mean, self.sigma0) * math.sqrt(self._n / (self._n + 1))
        if math.isinf(u) or u == 0:
            return u
        tail = float(student_t.sf(abs(u), self._n - 1))
        return math.copysign(float(norm.isf(tail)), u)

    def _learn(self, x: float) -> None:
        """Welford's update of m_n and M2."""
        self._n += 1
        d = x - self._mean
        self._mean += d / self._n
        self._m2 += d * (x - self._mean)

    def update(self, x: float) -> Cusum:
        """Add z_t to C+_t and C-_t and test them (formulas above); learn ``x`` while in control."""
        self._alarm = self._rising = False
        if self.target is None and self._n < self.warmup:
            self._learn(x)
            return self
        z = self._z(x)
        self._pos = max(0.0, self._pos + z - self.k)
        self._neg = max(0.0, self._neg - z - self.k)
        up = self._pos > self.h and self.direction != "down"
        down = self._neg > self.h and self.direction != "up"
        self._alarm = up or down
        self._stat = {"up": self._pos, "down": self._neg, "both": max(self._pos, self._neg)}[self.direction]
        self._rising = {"up": z > self.k, "down": z < -self.k, "both": abs(z) > self.k}[self.direction]
        frozen = self.freeze_after is not None and self._n >= self.freeze_after
        if self.target is None and not frozen and not self._alarm and max(self._pos, self._neg) <= self.h / 2:
            self._learn(x)
        self._out = self._out + 1 if self._stat > self.h / 2 else 0
        if self.relearn_after is not None and self._out >= self.relearn_after and self.target is None:
            self.reset()  # the new level is the normal one now: learn it
            return self
        restart = self.fir * self.h
        self._pos, self._neg = (restart if up else self._pos), (restart if down else self._neg)
        return self
