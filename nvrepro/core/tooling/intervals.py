"""Estimates with confidence intervals, so that a toy claim is judged on its interval.

* :func:`wilson` -- a proportion (``successes`` of ``n``: accuracy over examples) with Wilson's
  score interval, computed by ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.
  Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes.
* :func:`bootstrap_mean` -- the mean of any per-example or per-seed values, with a bootstrap
  interval from ``scipy.stats.bootstrap`` (BCa by default; percentile for samples too small or too
  uniform for BCa's acceleration), resampling with a seeded generator: same values, same seed,
  same interval.
* :func:`seed_interval` / :func:`seed_difference` -- the mean of a few per-seed values (Student's
  t) and the difference of two groups of them (Welch's t): with 2-5 seeds a bootstrap has too few
  distinct resamples to give an interval.

An :class:`Estimate` says whether its whole interval lies above or below a threshold
(:meth:`Estimate.above`, :meth:`Estimate.below`); a claim should hold only then. ``to_dict`` gives
the plain data a figure's sidecar records (value, interval, confidence, method, n).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """``value`` with the interval ``[low, high]`` at ``confidence``, from ``n`` observations."""

    value: float
    low: float
    high: float
    confidence: float
    n: int
    method: str

    def above(self, threshold: float) -> bool:
        """True when the whole interval lies above ``threshold`` (the claim "> threshold" holds)."""
        return self.low > threshold

    def below(self, threshold: float) -> bool:
        """True when the whole interval lies below ``threshold``."""
        return self.high < threshold

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] "
                f"({self.confidence:.0%} {self.method}, n={self.n})")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")


def wilson(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """The proportion ``successes / n`` with Wilson's score interval."""
    _check_confidence(confidence)
    if int(n) != n or n < 1:
        raise ValueError(f"n: must be a positive whole number of trials, got {n}")
    if int(successes) != successes or not 0 <= successes <= n:
        raise ValueError(f"successes: must be a whole number in [0, n={n}], got {successes}")
    ci = stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / n, float(ci.low), float(ci.high), confidence, int(n), "wilson")


def bootstrap_mean(values: Sequence[float], confidence: float = 0.95, *, seed: int = 0,
                   n_resamples: int = 9999, method: str = "BCa") -> Estimate:
    """The mean of ``values`` (shape ``(n,)``, n >= 2) with a bootstrap interval.

    ``method``: ``"BCa"`` (default) or ``"percentile"``. All-equal values give a zero-width
    interval at their value. BCa falls back to the percentile interval (named in ``method``)
    where its correction is undefined.
    """
    _check_confidence(confidence)
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size < 2:
        raise ValueError(f"values: need a 1-D sequence of at least 2 numbers, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("values: must all be finite")
    mean = float(data.mean())
    if np.all(data == data[0]):
        return Estimate(mean, mean, mean, confidence, int(data.size), "constant")
    rng = np.random.default_rng(seed)

    def run(kind: str):
        return stats.bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                               method=kind, rng=rng)

    used = method
    with np.errstate(all="ignore"):
        result = run(method)
        if method.lower() == "bca" and not np.all(np.isfinite([result.confidence_interval.low,
                                                                result.confidence_interval.high])):
            rng = np.random.default_rng(seed)
            result, used = run("percentile"), "percentile"
    ci = result.confidence_interval
    return Estimate(mean, float(ci.low), float(ci.high), confidence, int(data.size), f"bootstrap-{used}")


# Seed of every paired bootstrap: the same values always give the same interval.
PAIRED_SEED = 0


def paired_gain(this: Sequence[float], other: Sequence[float], factor: float = 1.0) -> Estimate | None:
    """Bootstrap mean of ``factor * other[i] - this[i]`` over paired units ``i`` (blocks, probes,
    sequences that both models saw; both ``(n,)``): positive means ``this`` is lower, e.g. its loss.
    Pairing removes the unit-to-unit spread both share, which two unpaired intervals would count
    twice. ``None`` for fewer than two units (no interval)."""
    if len(this) != len(other):
        raise ValueError(f"this, other: paired values need equal lengths, got {len(this)} and {len(other)}")
    if len(this) < 2:
        return None
    return bootstrap_mean([factor * b - a for a, b in zip(this, other)], seed=PAIRED_SEED)


def bootstrap_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, *,
                         seed: int = 0, n_resamples: int = 9999) -> Estimate:
    """``mean(a) - mean(b)`` of two independent groups (``(n_a,)``, ``(n_b,)``, each of at least 2
    values) with a percentile bootstrap interval, each group resampled on its own (e.g. a gain on
    held-out documents with vs without near-duplicates in a database). ``n`` of the estimate is
    the smaller group's size."""
    _check_confidence(confidence)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    for name, data in (("a", x), ("b", y)):
        if data.ndim != 1 or data.size < 2:
            raise ValueError(f"{name}: need a 1-D sequence of at least 2 numbers, got shape {data.shape}")
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{name}: must all be finite")
    diff = float(x.mean() - y.mean())
    with np.errstate(all="ignore"):
        result = stats.bootstrap((x, y), lambda u, v, axis=-1: u.mean(axis=axis) - v.mean(axis=axis),
                                 confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                                 vectorized=True, rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Estimate(diff, float(ci.low), float(ci.high), confidence, int(min(x.size, y.size)),
                    "bootstrap-percentile-two-sample")


def seed_average(runs: Sequence[Sequence[float]]) -> list[float]:
    """Per held-out item, its score averaged over training seeds: ``[per seed: [per item score]]`` (every
    run over the same items in the same order) -> ``[per item]``. Experiments that score every arm on the
    same items for every seed resample these per-item averages, which pair up across arms."""
    if not runs or len({len(r) for r in runs}) != 1:
        raise ValueError(f"runs: need one or more runs over the same items, got lengths {[len(r) for r in runs]}")
    return [sum(values) / len(values) for values in zip(*runs)]


def stratified_bootstrap(strata: Sequence[Sequence[int]], statistic, confidence: float = 0.95, *, seed: int = 0,
                         n_resamples: int = 400) -> Estimate:
    """``statistic(all units)`` with a percentile bootstrap interval, resampling units with replacement *within*
    each stratum (``strata``: lists of unit indices, e.g. the probes of each scenario, so every resample keeps
    every scenario and its size). ``statistic(indices) -> float`` takes the resampled unit indices (a list that
    may repeat units). For statistics that are not plain means (a score averaged over scenarios, a maximum over
    samples), where :func:`bootstrap_mean` does not apply."""
    _check_confidence(confidence)
    strata = [list(s) for s in strata]
    if not strata or any(len(s) < 1 for s in strata):
        raise ValueError("strata: need at least one non-empty stratum")
    if n_resamples < 10:
        raise ValueError(f"n_resamples: need at least 10, got {n_resamples}")
    rng = np.random.default_rng(seed)
    value = float(statistic([i for s in strata for i in s]))
    draws = []
    for _ in range(n_resamples):
        picked = [s[j] for s in strata for j in rng.integers(0, len(s), size=len(s))]
        draws.append(float(statistic(picked)))
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return Estimate(value, float(low), float(high), confidence, sum(len(s) for s in strata),
                    "bootstrap-percentile-stratified")


# --- a handful of training seeds ----------------------------------------------------------

def seed_interval(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """The mean of per-seed values ``(n,)``, n >= 2, with a Student-t interval
    ``mean ± t(1/2 + confidence/2, n - 1) * sd / sqrt(n)`` (``sd`` with ``n - 1``).

    Why not a bootstrap: with 3-5 seeds a resampled mean takes few distinct values and its
    percentile interval is too narrow; the t interval widens as it should for few seeds (it
    assumes the per-seed gaps scatter normally). All-equal values give a zero-width interval.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    data = np.asarray([float(v) for v in values], dtype=float)
    if data.ndim != 1 or data.size < 2:
        raise ValueError(f"values: need at least 2 per-seed values, got {data.size}")
    if not np.all(np.isfinite(data)):
        raise ValueError("values: must all be finite")
    mean = float(data.mean())
    sd = float(data.std(ddof=1))
    if sd == 0.0:
        return Estimate(mean, mean, mean, confidence, int(data.size), "constant")
    half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1)) * sd / math.sqrt(data.size)
    return Estimate(mean, mean - half, mean + half, confidence, int(data.size), "student-t")


def seed_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Estimate:
    """``mean(a) - mean(b)`` of two groups of per-seed values (each ``(n,)``, n >= 2) with Welch's
    t interval (unequal variances; scipy's ``ttest_ind(equal_var=False)``). With 2-3 seeds a
    bootstrap has too few distinct resamples to give an interval; Welch's widens as it should."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    for name, data in (("a", x), ("b", y)):
        if data.ndim != 1 or data.size < 2 or not np.all(np.isfinite(data)):
            raise ValueError(f"{name}: need at least 2 finite per-seed values, got {list(data)}")
    diff = float(x.mean() - y.mean())
    if x.std() == 0.0 and y.std() == 0.0:
        return Estimate(diff, diff, diff, confidence, int(min(x.size, y.size)), "constant")
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(confidence)
    return Estimate(diff, float(ci.low), float(ci.high), confidence, int(min(x.size, y.size)), "welch-t")
