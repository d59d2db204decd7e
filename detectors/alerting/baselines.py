"""Streaming detectors over one metric's own history, one value per closed window.

Each is a small class over floats: hyperparameters are constructor arguments, state lives in
private attributes rebuilt by ``reset()``, ``update(x)`` returns ``self``, the read-only
``alarm`` says whether the last value signalled and ``statistic`` is the number compared with
the threshold (river ``river/base/drift_detector.py``). ``direction`` picks the side that
alarms: ``"up"`` (the metric rose), ``"down"`` or ``"both"``. ``to_state()`` gives the
hyperparameters and state as versioned JSON, ``from_state()`` restores them exactly
(``parrotwatch.detectors.alerting.state``). Each is a ``protocols.StreamingDetector``.
"""

from __future__ import annotations

import math

from parrotwatch.detectors.alerting.cusum import Cusum
from parrotwatch.detectors.alerting.standardise import Direction, check_direction, scale, standardise
from parrotwatch.detectors.alerting.state import Snapshot, StateError

__all__ = ["BASELINES", "Cusum", "Direction", "EwmaZScore", "PageHinkley"]

class EwmaZScore(Snapshot):
    """z-score of a value against the exponentially weighted mean and variance of its past.

    The baseline is the exponentially weighted moving average of Roberts (1959), "Control
    chart tests based on geometric moving averages", Technometrics 1(3) (EWMA schemes: Lucas &
    Saccucci 1990, Technometrics 32(1)); each new value is standardised against the EWMA mean
    and variance of its past, i.e. against the one-step-ahead EWMA forecast (Hunter 1986, "The
    exponentially weighted moving average", J. Quality Technology 18(4)). The incremental
    weighted variance is Finch (2009), "Incremental calculation of weighted mean and
    variance". With n the number of values learned, a = max(alpha, 1/n) (so the first values
    give the plain mean and population variance) and d_t = x_t - mu_{t-1}:

        z_t   = d_t / max(sigma_{t-1}, min_sigma, min_rel_sigma * |mu_{t-1}|)
        mu_t  = mu_{t-1} + a d_t
        var_t = (1 - a) (var_{t-1} + a d_t^2)

    ``alarm``: z_t > threshold (up), z_t < -threshold (down) or |z_t| > threshold (both), once
    ``warmup`` values were learned. A value with |z_t| > threshold is not learned, so an
    incident does not leak into its own baseline; after ``relearn_after`` such values in a row
    the new level is taken as normal and the warmup restarts (``None``: never).

    With alpha = 1/2 the two warmup values 10 and 12 give mu = 11 and var = (1/2)(0 + (1/2) 2²) = 1,
    so 15 is z = (15 - 11) / 1 = 4 standard deviations up:

    >>> d = EwmaZScore(alpha=0.5, threshold=3.0, warmup=2).update(10.0).update(12.0)
    >>> d.mean, d.sigma, d.ready
    (11.0, 1.0, True)
    >>> d.update(15.0).statistic, d.alarm
    (4.0, True)
    """

    _PARAMS = {"alpha": "float", "threshold": "float", "warmup": "int", "direction": "str",
               "min_sigma": "float", "min_rel_sigma": "float", "relearn_after": "int?"}
    _VARS = {"_n": "count", "_mean": "float", "_var": "float", "_z": "float", "_alarm": "bool",
             "_outliers": "count"}

    def __init__(
        self,
        alpha: float = 0.05,
        threshold: float = 5.0,
        warmup: int = 15,
        direction: Direction = "both",
        min_sigma: float = 0.0,
        min_rel_sigma: float = 0.0,
        relearn_after: int | None = 60,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        if warmup < 2:
            raise ValueError("warmup must be at least 2 values")
        check_direction(direction)
        self.alpha, self.threshold, self.warmup, self.direction = alpha, threshold, warmup, direction
        self.min_sigma, self.min_rel_sigma, self.relearn_after = min_sigma, min_rel_sigma, relearn_after
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next ``warmup`` values rebuild the baseline."""
        self._n, self._mean, self._var = 0, 0.0, 0.0
        self._z, self._alarm, self._outliers = 0.0, False, 0

    def _check_state(self, where: str) -> None:
        if self._var < 0:
            raise StateError(f"{where}.vars.var: a variance cannot be negative ({self._var})")

    @property
    def alarm(self) -> bool:
        """Whether the last value signalled (see the class docstring)."""
        return self._alarm

    @property
    def ready(self) -> bool:
        """Whether ``warmup`` values were learned, so the next value can alarm."""
        return self._n >= self.warmup

    @property
    def statistic(self) -> float:
        """z_t of the last value (0 during warmup)."""
        return self._z

    @property
    def mean(self) -> float:
        """mu: the EWMA baseline the next value is compared with."""
        return self._mean

    @property
    def sigma(self) -> float:
        """sigma: the square root of the EWMA variance."""
        return math.sqrt(self._var)

    def peek(self, x: float) -> tuple[float, bool]:
        """z_t of ``x`` and whether it would alarm, learning nothing (0 and False in warmup)."""
        unit = scale(self.sigma, self._mean, self.min_sigma, self.min_rel_sigma)
        z = standardise(x - self._mean, unit) if self.ready else 0.0
        up, down = z > self.threshold, z < -self.threshold
        return z, {"up": up, "down": down, "both": up or down}[self.direction]

    def update(self, x: float) -> EwmaZScore:
        """Compare ``x`` with the baseline (z_t above), then learn it unless it is an outlier."""
        d = x - self._mean
        self._z, self._alarm = self.peek(x)
        up, down = self._z > self.threshold, self._z < -self.threshold
        if up or down:
            self._outliers += 1
            if self.relearn_after is not None and self._outliers >= self.relearn_after:
                self.reset()
                self.update(x)
            return self
        self._outliers = 0
        self._n += 1
        a = max(self.alpha, 1.0 / self._n)
        self._mean += a * d
        self._var = (1.0 - a) * (self._var + a * d * d)
        return self


class PageHinkley(Snapshot):
    """Page-Hinkley change detector, as in river ``river/drift/page_hinkley.py``.

    Page (1954), "Continuous inspection schemes", Biometrika 41(1/2); Hinkley (1971),
    "Inference about the change-point from cumulative sum tests", Biometrika 58(3). With
    xbar_t the mean of the values since the last restart and a forgetting factor alpha:

        m+_t = alpha m+_{t-1} + (x_t - xbar_t - delta),   PH+_t = m+_t - min_{i<=t} m+_i
        m-_t = alpha m-_{t-1} + (x_t - xbar_t + delta),   PH-_t = max_{i<=t} m-_i - m-_t

    ``alarm`` when PH+_t > threshold (up), PH-_t > threshold (down) or either (both), once
    ``min_instances`` values were seen. delta and threshold are in the metric's own units.
    After a signal the next value restarts the detector, so a lasting shift signals once: it
    reports a change, not a state.

    delta = 0, alpha = 1: after 0 and 4, xbar = 2, m+ = 0 + (4 - 2) = 2 and its minimum is 0, so
    PH+ = 2 passes the threshold 1:

    >>> d = PageHinkley(delta=0.0, threshold=1.0, alpha=1.0, min_instances=1)
    >>> d.update(0.0).statistic, d.update(4.0).statistic, d.alarm
    (0.0, 2.0, True)
    """

    _PARAMS = {"delta": "float", "threshold": "float", "alpha": "float", "min_instances": "int",
               "direction": "str"}
    _VARS = {"_n": "count", "_mean": "float", "_alarm": "bool", "_stat": "float", "_sum_up": "float",
             "_min_up": "float", "_sum_down": "float", "_max_down": "float"}

    def __init__(
        self,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        min_instances: int = 30,
        direction: Direction = "both",
    ) -> None:
        if delta < 0 or threshold <= 0 or not 0 < alpha <= 1 or min_instances < 1:
            raise ValueError("need delta >= 0, threshold > 0, 0 < alpha <= 1 and min_instances >= 1")
        check_direction(direction)
        self.delta, self.threshold, self.alpha = delta, threshold, alpha
        self.min_instances, self.direction = min_instances, direction
        self.reset()

    def reset(self) -> None:
        """Forget the mean and both cumulative sums."""
        self._n, self._mean, self._alarm, self._stat = 0, 0.0, False, 0.0
        self._sum_up, self._min_up = 0.0, math.inf
        self._sum_down, self._max_down = 0.0, -math.inf

    @property
    def alarm(self) -> bool:
        """Whether the last value signalled (see the class docstring)."""
        return self._alarm

    @property
    def statistic(self) -> float:
        """PH+ (up), PH- (down) or max(PH+, PH-) (both) of the last value."""
        return self._stat

    @property
    def ready(self) -> bool:
        """Whether the next value can alarm (``min_instances`` reached counting it)."""
        return not self._alarm and self._n + 1 >= self.min_instances

    @property
    def mean(self) -> float:
        """xbar: the mean of the values since the last restart."""
        return 0.0 if self._alarm else self._mean

    def update(self, x: float) -> PageHinkley:
        """Add ``x`` to xbar_t, m+_t and m-_t and test PH+_t, PH-_t (formulas above)."""
        if self._alarm:
            self.reset()
        self._n += 1
        self._mean += (x - self._mean) / self._n
        dev = x - self._mean
        self._sum_up = self.alpha * self._sum_up + dev - self.delta
        self._sum_down = self.alpha * self._sum_down + dev + self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._max_down = max(self._max_down, self._sum_down)
        ph_up, ph_down = self._sum_up - self._min_up, self._max_down - self._sum_down
        self._stat = {"up": ph_up, "down": ph_down, "both": max(ph_up, ph_down)}[self.direction]
        self._alarm = self._n >= self.min_instances and self._stat > self.threshold
        return self


#: The streaming detectors by rule ``kind`` (``protocols.StreamingDetector``).
BASELINES: dict[str, type[EwmaZScore] | type[Cusum] | type[PageHinkley]] = {
    "ewma": EwmaZScore,
    "cusum": Cusum,
    "page_hinkley": PageHinkley,
}
