"""Checkers for the exercises of notebook 01 (the world, the blend, the retriever). Each prints
whether the answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check`
(``ok`` ``None`` when nothing was answered yet). The truths are computed: by ``ir-measures`` on
rankings drawn at random, from the world's own passages, from the run."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nvrepro.core.evaluation.ranking import ranking_metrics
from nvrepro.core.tooling.verdicts import Check, call_student, report


def check_recall_at_k(recall_at_k: Callable, *, trials: int = 200, seed: int = 0, verbose: bool = True) -> Check:
    """Exercise (a): ``recall_at_k(ranked, gold, k) -> float`` (share of the ``gold`` ids among the
    first ``k`` of ``ranked``), compared with ``ir-measures``' ``R@k`` on random rankings."""
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        ranked = [int(i) for i in rng.permutation(20)[:int(rng.integers(1, 11))]]
        gold = [int(i) for i in rng.choice(20, int(rng.integers(1, 3)), replace=False)]
        k = int(rng.integers(1, 11))
        got, failed = call_student(recall_at_k, ranked, gold, k, name="recall_at_k")
        if failed is not None:
            return report(failed, verbose)
        want = float(ranking_metrics([ranked], [gold], (f"R@{k}",))[f"R@{k}"][0])
        if got is None or not np.isclose(float(got), want):
            return report(Check(False, f"recall_at_k({ranked}, gold={gold}, k={k}) gave {got}, ir-measures "
                                       f"gives {want:.3f} (relevant ids in the first k, over all relevant ids)."),
                          verbose)
    return report(Check(True, f"matches ir-measures' R@k on {trials} random rankings, two-passage questions "
                              "included."), verbose)


def check_two_hop_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (b): predicted whether MiniLM's top ``n`` holds *both* gold passages of every
    two-passage question (recall@n = 1)."""
    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    rec = result["recall"]["2"]
    if not rec["questions"]:
        return report(Check(None, "this run has no held-out two-passage question (the smoke world is too "
                                  "small); run the paper profile."), verbose)
    values = np.asarray(rec[str(result["n"])])
    truth = bool(np.all(values == 1.0))
    return report(Check(bool(prediction) == truth,
                        f"recall@{result['n']} of the two-passage questions is {values.mean():.3f}: the company's "
                        "passage never names the person, so a question about the person cannot find it by "
                        "similarity; only a second hop (the employer's name) could."), verbose)
