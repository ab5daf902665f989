"""Claims of several parts: three-valued comparisons, the timing test, their conjunction.

References are worked by hand: exact rank-test p-values are counts of orderings (complete
separation of m vs n repeats: 1 / C(m + n, m)), interval comparisons are on hand-made Estimates.
"""

from __future__ import annotations

import math

import pytest

from nvrepro.core.tooling.claims import (Judgement, all_parts, at_least_estimate, at_least_threshold, beats, exact,
                                        faster, format_judgement)
from nvrepro.core.tooling.intervals import Estimate


def estimate(value: float, low: float, high: float) -> Estimate:
    return Estimate(value, low, high, 0.95, 100, "hand-made")


def test_faster_on_completely_separated_repeats():
    j = faster([1.0, 1.1, 1.2], [2.0, 2.1, 2.2], "x")
    assert j.held is True and j.evidence["p_greater"] == pytest.approx(1 / math.comb(6, 3))  # 0.05
    assert j.evidence["median_ratio"] == pytest.approx(2.1 / 1.1)
    assert faster([2.0, 2.1, 2.2], [1.0, 1.1, 1.2], "x").held is False  # the other way round
    # at least 3x: 3 x fast = [3.0, 3.3, 3.6] is not below slow = [2.0, 2.1, 2.2]: separated the other way
    assert faster([1.0, 1.1, 1.2], [2.0, 2.1, 2.2], "x", factor=3.0).held is False
    assert faster([0.5, 0.55, 0.6], [2.0, 2.1, 2.2], "x", factor=3.0).held is True  # 3 x 0.6 = 1.8 < 2.0


def test_faster_undecided_on_too_few_or_overlapping_repeats():
    two = faster([1.0, 1.1], [2.0, 2.1], "x")  # best possible: 1 / C(4, 2) = 1/6 > 0.05
    assert two.held is None and two.evidence["p_greater"] == pytest.approx(1 / 6)
    # 7 vs 7 with one inversion: 2 of C(14, 7) = 3432 orderings are as extreme -> p = 2/3432, holds
    fast, slow = [1, 2, 3, 4, 5, 6, 8], [7, 9, 10, 11, 12, 13, 14]
    j = faster(fast, slow, "x")
    assert j.held is True and j.evidence["p_greater"] == pytest.approx(2 / 3432)
    interleaved = faster([1, 3, 5], [2, 4, 6], "x")
    assert interleaved.held is None
    assert faster([], [1.0], "x").held is None


def test_interval_comparisons_are_three_valued():
    assert at_least_threshold(estimate(0.8, 0.76, 0.84), 0.75, "x").held is True
    assert at_least_threshold(estimate(0.7, 0.66, 0.74), 0.75, "x").held is False
    assert at_least_threshold(estimate(0.75, 0.70, 0.80), 0.75, "x").held is None
    b = estimate(0.5, 0.45, 0.55)
    assert at_least_estimate(estimate(0.52, 0.50, 0.54), b, "x").held is True  # low 0.50 >= b's 0.5
    assert at_least_estimate(estimate(0.46, 0.44, 0.49), b, "x").held is False  # high 0.49 < 0.5
    assert at_least_estimate(estimate(0.52, 0.48, 0.56), b, "x").held is None
    assert at_least_estimate(estimate(0.46, 0.44, 0.49), b, "x", margin=0.06).held is True  # 0.44 >= 0.44
    assert beats(estimate(0.7, 0.56, 0.8), b, "x").held is True
    assert beats(b, estimate(0.7, 0.56, 0.8), "x").held is False
    assert beats(estimate(0.6, 0.54, 0.66), b, "x").held is None


def test_all_parts_is_a_three_valued_and():
    yes, no, unsure = exact(True, "a"), exact(False, "b"), Judgement(None, "c")
    assert all_parts({"p": yes, "q": yes}).held is True
    assert all_parts({"p": yes, "q": unsure}).held is None
    assert all_parts({"p": unsure, "q": no, "r": yes}).held is False
    mixed = all_parts({"p": unsure, "q": no, "r": yes})
    assert "q (b)" in mixed.reason and "p" not in mixed.reason.split(":", 1)[1]
    assert set(mixed.to_dict()["evidence"]["parts"]) == {"p", "q", "r"}
    text = format_judgement(mixed.to_dict())
    assert text.splitlines()[0] == "claim DID NOT HOLD, part by part:" and len(text.splitlines()) == 4
