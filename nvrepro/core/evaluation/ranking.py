"""Retrieval metrics of ranked passage lists, computed by ``ir-measures`` (``pytrec_eval`` inside).

A ranking system (a retriever, a re-ranker) returns, for each question, passage ids best first;
the relevance judgements (qrels) say which passages answer it (one, or two for a two-hop
question). :func:`ranking_metrics` turns both into per-question values of

* ``R@k`` (recall at ``k``: share of a question's relevant passages among its top ``k``),
* ``RR`` (reciprocal rank of the first relevant passage; its mean is MRR),
* ``nDCG@k`` (binary gains),

so that a caller can put intervals on their means. The ranking is passed in order, without
scores: ids get descending scores by position, so ``pytrec_eval`` (which sorts by score) keeps the
caller's order. A question whose list holds no relevant passage scores 0 on every measure (a
question the list leaves out entirely is an error, not silently dropped as ``pytrec_eval`` would).
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np


def _measures(names: Iterable[str]):
    import ir_measures

    try:
        return [ir_measures.parse_measure(n) for n in names]
    except (ValueError, NameError, SyntaxError) as err:
        raise ValueError(f"measures: cannot parse {list(names)} ({err})") from None


def ranking_metrics(ranked: Sequence[Sequence[int]], relevant: Sequence[Iterable[int]],
                    measures: Sequence[str] = ("R@1", "R@5", "RR", "nDCG@5")) -> dict[str, np.ndarray]:
    """Per-question values ``{measure: (q,)}`` of each ranking in ``ranked`` (passage ids, best
    first; ``-1`` entries are skipped) against the ``relevant`` ids of the same question."""
    import ir_measures

    if len(ranked) != len(relevant):
        raise ValueError(f"ranked, relevant: need one entry per question, got {len(ranked)} and {len(relevant)}")
    parsed = _measures(measures)
    qrels, run = [], []
    for q, (ids, gold) in enumerate(zip(ranked, relevant)):
        gold = {int(g) for g in gold}
        if not gold:
            raise ValueError(f"relevant[{q}]: a question needs at least one relevant passage")
        qrels += [ir_measures.Qrel(str(q), str(g), 1) for g in sorted(gold)]
        ids = [int(i) for i in ids if int(i) >= 0]
        if len(set(ids)) != len(ids):
            raise ValueError(f"ranked[{q}]: passage ids repeat ({ids})")
        run += [ir_measures.ScoredDoc(str(q), str(i), float(len(ids) - r)) for r, i in enumerate(ids)]
    values = {str(m): np.zeros(len(ranked)) for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        values[str(metric.measure)][int(metric.query_id)] = metric.value
    return values


def mean_metrics(values: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The mean of every measure of :func:`ranking_metrics` (``RR`` -> MRR)."""
    return {name: float(np.mean(v)) if len(v) else float("nan") for name, v in values.items()}
