"""Checkers for the exercises of notebook 02 (RankRAG against its baselines). Each prints whether
the answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok``
``None`` when nothing was answered yet). The truths are computed: from a model's own logits
through the pipeline, from the run's verdicts."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from nvrepro.core.tooling.verdicts import Check, call_student, check_claim_prediction, report


def check_relevance(relevance: Callable, *, trials: int = 100, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise (a): ``relevance(true_logit, false_logit) -> float``, the probability of "True"
    when the model may answer only "True" or "False", against a two-way softmax in torch on random
    logits (large ones included, where ``exp`` overflows unless the formula is stable)."""
    rng = np.random.default_rng(seed)
    pairs = [tuple(float(x) for x in rng.normal(0, 4, 2)) for _ in range(trials)] + [(800.0, 790.0), (-900.0, 0.0)]
    for zt, zf in pairs:
        got, failed = call_student(relevance, zt, zf, name="relevance")
        if failed is not None:
            return report(failed, verbose)
        want = float(torch.softmax(torch.tensor([zt, zf], dtype=torch.float64), 0)[0])
        if got is None or not np.isfinite(float(got)) or not np.isclose(float(got), want, atol=1e-9):
            return report(Check(False, f"relevance({zt:g}, {zf:g}) gave {got}, the softmax gives {want:.6g}; "
                                       "hint: it is a sigmoid of the difference of the two logits."), verbose)
    return report(Check(True, "equals softmax([z_True, z_False])[0] = sigmoid(z_True - z_False), stable for large "
                              "logits; the other logits of the vocabulary play no part."), verbose)


def check_share_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (b): predicted whether the smallest ranking share already beats share 0 on EM."""
    from nvrepro.rankrag.experiment import SMALL_SHARE

    return check_claim_prediction(prediction, SMALL_SHARE, result, verbose=verbose)


def check_reranker_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (c): predicted whether RankRAG's re-ranking matches the dedicated re-ranker."""
    from nvrepro.rankrag.experiment import MATCHES_RERANKER

    return check_claim_prediction(prediction, MATCHES_RERANKER, result, verbose=verbose)
