"""Retrieval metrics through ir-measures against values worked out by hand."""

import math

import numpy as np
import pytest

pytest.importorskip("ir_measures")

from nvrepro.core.evaluation.ranking import mean_metrics, ranking_metrics  # noqa: E402


def test_hand_computed_recall_rr_ndcg():
    ranked = [[3, 1, 2], [5, 6, -1], [9], [-1, -1]]
    relevant = [[1], [6, 5], [2], [4]]
    got = ranking_metrics(ranked, relevant, ("R@1", "R@2", "RR", "nDCG@2"))
    np.testing.assert_allclose(got["R@1"], [0, 0.5, 0, 0])
    np.testing.assert_allclose(got["R@2"], [1, 1, 0, 0])
    np.testing.assert_allclose(got["RR"], [0.5, 1, 0, 0])
    # nDCG@2: one relevant at rank 2 -> (1/log2(3)) / 1; both relevant in the top 2 -> 1
    np.testing.assert_allclose(got["nDCG@2"], [1 / math.log2(3), 1, 0, 0])
    assert mean_metrics(got)["RR"] == pytest.approx(0.375)


def test_order_is_the_callers_not_the_ids():
    first = ranking_metrics([[10, 2]], [[2]], ("RR",))["RR"]
    second = ranking_metrics([[2, 10]], [[2]], ("RR",))["RR"]
    assert first[0] == 0.5 and second[0] == 1.0


def test_errors():
    with pytest.raises(ValueError, match="ranked, relevant"):
        ranking_metrics([[1]], [[1], [2]])
    with pytest.raises(ValueError, match=r"relevant\[0\]"):
        ranking_metrics([[1]], [[]])
    with pytest.raises(ValueError, match=r"ranked\[0\]"):
        ranking_metrics([[1, 1]], [[1]])
    with pytest.raises(ValueError, match="measures"):
        ranking_metrics([[1]], [[1]], ("NotAMeasure@3",))
