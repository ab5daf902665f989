"""Shared pieces of the hybrid track's tests."""

import math

import pytest

Z95 = 1.959963984540054  # two-sided 95% standard normal quantile


def wilson_closed_form(k: int, n: int) -> tuple[float, float]:
    """Wilson's 95% score interval for ``k`` of ``n`` written out (Wilson 1927), independent of the
    scipy call behind :func:`nvrepro.core.tooling.intervals.wilson`:
    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)``."""
    p, z2 = k / n, Z95**2
    centre, half = p + z2 / (2 * n), Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - half) / (1 + z2 / n), (centre + half) / (1 + z2 / n)


@pytest.fixture
def wilson_bounds():
    """:func:`wilson_closed_form`: ``(k, n) -> (low, high)``."""
    return wilson_closed_form
