"""RankRAG claims on hand-made per-question vectors, the exercises' truths, and the explorer's text."""

import math

import numpy as np
import pytest

from nvrepro.rankrag import blend_experiment, experiment
from nvrepro.rankrag.blend_exercises import check_recall_at_k, check_two_hop_prediction
from nvrepro.rankrag.experiment_exercises import check_relevance, check_share_prediction


def metrics(em_rankrag, em_chatqa, recall_rankrag, recall_reranker, recall_retriever, share_em):
    k = "1"
    systems = {name: {k: {"em": list(em), "f1": list(em)}} for name, em in
               (("rankrag", em_rankrag), ("chatqa", em_chatqa), ("rankrag_no_rerank", em_chatqa),
                ("reranker", em_rankrag))}
    recall = {r: {"R@1": list(v)} for r, v in (("rankrag", recall_rankrag), ("reranker", recall_reranker),
                                                ("retriever", recall_retriever))}
    shares = {s: {"em": list(v), "f1": list(v), "recall": list(v)} for s, v in share_em.items()}
    return {"systems": systems, "recall": recall, "shares": shares, "k": 1, "ks": [1], "n": 20,
            "questions": ["q"] * len(em_rankrag)}


def test_claims_follow_paired_intervals():
    rng = np.random.default_rng(0)
    good = (rng.random(300) < 0.9).astype(float)
    weak = good * (rng.random(300) < 0.6)
    m = metrics(good, weak, good, good, weak, {"0.0": weak, "0.05": good, "0.25": good})
    assert experiment.BEATS_RETRIEVER.judge(m).held is True
    assert experiment.MATCHES_RERANKER.judge(m).held is True  # identical recall: gap 0 > -margin
    assert experiment.RERANK_RECALL.judge(m).held is True
    assert experiment.SMALL_SHARE.judge(m).held is True
    m = metrics(weak, good, weak, good, good, {"0.0": good, "0.05": weak})
    for claim in (experiment.BEATS_RETRIEVER, experiment.MATCHES_RERANKER, experiment.RERANK_RECALL,
                  experiment.SMALL_SHARE):
        assert claim.judge(m).held is False, claim.name
    # a re-ranker 1 point behind on recall still "matches" only if the interval stays above -3 points
    almost = good.copy()
    almost[np.flatnonzero(good)[:3]] = 0.0
    held = experiment.MATCHES_RERANKER.judge(metrics(good, good, almost, good, good, {"0.0": good})).held
    assert held in (True, None)
    assert experiment.SMALL_SHARE.judge(metrics(good, good, good, good, good, {"0.0": good})).held is None


def test_room_to_rerank_claim():
    hit_at_1 = np.array([1.0] * 70 + [0.0] * 30)
    hit_at_n = np.ones(100)
    m = {"recall": {"1": {"questions": 100, "1": hit_at_1.tolist(), "20": hit_at_n.tolist()}}, "n": 20}
    assert blend_experiment.ROOM_TO_RERANK.judge(m).held is True
    m["recall"]["1"]["1"] = hit_at_n.tolist()
    assert blend_experiment.ROOM_TO_RERANK.judge(m).held is False


def test_exercise_truths():
    def reference(ranked, gold, k):
        return len(set(ranked[:k]) & set(gold)) / len(set(gold))

    def off_by_one(ranked, gold, k):
        return len(set(ranked[:k + 1]) & set(gold)) / len(set(gold))

    assert check_recall_at_k(reference).ok is True
    assert check_recall_at_k(off_by_one).ok is False

    def stable(zt, zf):
        return 1.0 / (1.0 + math.exp(-(zt - zf))) if zt - zf > -700 else 0.0

    def naive(zt, zf):
        return math.exp(zt) / (math.exp(zt) + math.exp(zf))

    assert check_relevance(stable).ok is True
    assert check_relevance(naive).ok is False  # overflows at the large logits

    def todo(zt, zf):
        raise NotImplementedError

    assert check_relevance(todo).ok is None
    assert check_share_prediction(None, {}).ok is None
    two_hop = {"recall": {"2": {"questions": 2, "20": [0.5, 0.5]}}, "n": 20}
    assert check_two_hop_prediction(False, two_hop).ok is True
    assert check_two_hop_prediction(True, two_hop).ok is False


def test_explorer_lists_every_passage_and_the_answer(small_world, small_tokenizer, tiny_model):
    from nvrepro.rankrag.explorer import explain
    from nvrepro.rankrag.pipeline import RankRAGPipeline

    from .test_pipeline import FixedRetriever

    passages = [p.text for p in small_world.passages[:5]]
    pipe = RankRAGPipeline(FixedRetriever(passages, [3, 1, 4, 0, 2]), small_tokenizer, tiny_model, tiny_model,
                           n=5, k=2, max_new_tokens=3)
    text = explain(pipe, "Who is it?", gold=[4])
    lines = text.splitlines()
    assert lines[0] == "Q: Who is it?" and lines[-1].startswith("A: ")
    assert len(lines) == 2 + 5 + 1 and sum("yes" in ln for ln in lines[2:-1]) == 2
    assert sum(" * " in ln for ln in lines[2:-1]) == 1


@pytest.mark.parametrize("module", [experiment, blend_experiment])
def test_unknown_profile_is_named(module):
    with pytest.raises(Exception, match="profile"):
        module.plan("huge")


def test_rerank_cost_claim_over_repeats():
    def timing(low, high):
        return {"timing": {"rankrag": {"5": {"repeats": {"rerank": low}}, "40": {"repeats": {"rerank": high}}}}}

    linear = timing([0.003, 0.0031, 0.0029, 0.003, 0.0032], [0.024, 0.025, 0.023, 0.026, 0.024])
    assert experiment.RERANK_COST.judge(linear).held is True  # 8x, above half of 40 / 5
    flat = timing([0.003, 0.0031, 0.0029, 0.003, 0.0032], [0.006, 0.0061, 0.0059, 0.006, 0.0062])
    assert experiment.RERANK_COST.judge(flat).held is False  # 2x, below 4x
    assert experiment.RERANK_COST.judge(timing([0.003], [0.024])).held is None  # one run each: no test
