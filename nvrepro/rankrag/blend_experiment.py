"""Notebook 01 (``notebooks/rankrag/01_idea_and_blend.ipynb``): the synthetic world, RankRAG's blend,
and how far a dense retriever alone gets.

RankRAG's premise (arXiv 2407.02485 Sec. 1, 3): a retriever's top-k is noisy; an LLM reading a
few passages is hurt by irrelevant ones, and reading many is slow and still distracted; so rank a
larger top-``n`` with the LLM itself and keep only ``k``. This notebook sets the stage at toy scale:

* the world (:mod:`~nvrepro.rankrag.world`): invented people with three facet passages each and
  companies with one, questions that need one passage or two, namesakes everywhere;
* the blends (:mod:`~nvrepro.rankrag.blend`): every task in the one (question, context, answer)
  format; how the ranking share changes the blend;
* the retriever (MiniLM, :class:`~nvrepro.core.retrieval.passages.PassageRetriever`): recall@k of
  the gold passages against k on the held-out questions. :data:`ROOM_TO_RERANK` checks that its
  top :data:`K_SHOWN` misses gold passages its top ``n`` holds: the room a re-ranker has.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nvrepro.core.evaluation.ranking import ranking_metrics
from nvrepro.core.tooling.claims import Claim, Judgement, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.paths import BUILD_DIR
from nvrepro.core.tooling.profiles import profile_settings

# The number of passages kept that notebook 02's headline uses, and the smallest gap in recall
# between the top n and the top k that leaves a re-ranker something to do (set before the first run).
K_SHOWN = 1
ROOM_BAR = 0.05
SHARES_SHOWN = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)

# ``world``: RankRAGDataModule's world fields; ``ks``: recall@k measured; ``blend_size``: rows of
# each blend counted; ``examples``: rows of each task printed.
PROFILES = {
    "smoke": dict(world=dict(num_people=30, num_companies=6), ks=[1, 2, 3, 6], blend_size=200, examples=1),
    "paper": dict(world={}, ks=[1, 2, 3, 5, 10, 20], blend_size=8000, examples=1),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def example_rows(world, seed: int = 0, per_task: int = 1) -> dict[str, list[dict]]:
    """``per_task`` rows of every task (stage I and II), as the model sees them."""
    from nvrepro.rankrag.blend import build_blend, build_instructions

    rows = {"instruction": list(build_instructions(per_task, seed, world))}
    blend = build_blend(world, ranking_share=0.5, size=64 * per_task, seed=seed)
    for row in blend:
        bucket = rows.setdefault(row["task"], [])
        if len(bucket) < per_task:
            bucket.append(row)
    return rows


def run(profile: str = "smoke", seed: int = 0) -> dict:
    """Build the world and the blends, retrieve for every held-out question; returns the world's
    sizes, blend compositions per share, example rows and recall@k per number of hops."""
    from nvrepro.core.retrieval.passages import PassageRetriever
    from nvrepro.rankrag.blend import blend_summary, build_blend
    from nvrepro.rankrag.data import RankRAGDataModule, encode_blend

    p = plan(profile)
    dm = RankRAGDataModule(**p["world"])
    world, tok = dm.world, dm.tokenizer
    questions = world.questions["test"]
    retriever = PassageRetriever([x.text for x in world.passages], cache_dir=BUILD_DIR / "rankrag" / "passage_vectors")
    n = max(p["ks"])
    ids, _ = retriever.search([q.text for q in questions], n)
    recall = {}
    for hops in (1, 2):
        sel = [i for i, q in enumerate(questions) if q.hops == hops]
        values = ranking_metrics(ids[sel], [questions[i].gold for i in sel], [f"R@{k}" for k in p["ks"]]) if sel \
            else {f"R@{k}": np.zeros(0) for k in p["ks"]}
        recall[str(hops)] = {"questions": len(sel), **{str(k): values[f"R@{k}"].tolist() for k in p["ks"]}}
    blends = {str(s): blend_summary(build_blend(world, ranking_share=s, size=p["blend_size"], seed=seed))
              for s in SHARES_SHOWN}
    lengths = [len(r.input_ids) for r in encode_blend(build_blend(world, ranking_share=0.5, size=p["blend_size"],
                                                                  seed=seed), tok, 10_000).rows]
    return {"passages": len(world.passages), "people": len(world.people), "companies": len(world.companies),
            "questions": {split: len(qs) for split, qs in world.questions.items()},
            "two_hop": {split: sum(q.hops == 2 for q in qs) for split, qs in world.questions.items()},
            "vocab_size": tok.vocab_size, "tokens_per_row": {"mean": float(np.mean(lengths)), "max": int(max(lengths))},
            "examples": example_rows(world, seed, p["examples"]), "blends": blends, "recall": recall,
            "ks": p["ks"], "n": n, "plan": p, "profile": profile, "seed": seed}


def judge_room(metrics: Mapping[str, Any]) -> Judgement:
    rec = metrics["recall"]["1"]
    if rec["questions"] < 2:
        return not_applicable("fewer than two one-passage questions")
    gap = paired_gain(rec[str(K_SHOWN)], rec[str(metrics["n"])])
    return at_least_threshold(gap, ROOM_BAR, f"recall@{metrics['n']} - recall@{K_SHOWN} (one-passage questions)")


ROOM_TO_RERANK = Claim(
    "rankrag_room_to_rerank",
    "On the held-out one-passage questions, MiniLM's top n holds the gold passage at least 5 points more "
    "often than its top 1: there is something for a re-ranker to recover (RankRAG's premise); paired "
    "bootstrap over questions.",
    judge_room)


def summary_text(metrics: Mapping[str, Any]) -> str:
    """The world's sizes and the retriever's mean recall@k per number of hops."""
    lines = [f"{metrics['people']} people, {metrics['companies']} companies -> {metrics['passages']} passages; "
             f"questions {metrics['questions']} (two-passage: {metrics['two_hop']}); BPE vocabulary "
             f"{metrics['vocab_size']}; a blend row is {metrics['tokens_per_row']['mean']:.0f} tokens on average "
             f"(longest {metrics['tokens_per_row']['max']})",
             "recall@k   " + "".join(f"{'k=' + str(k):>8}" for k in metrics["ks"])]
    for hops, rec in metrics["recall"].items():
        label = f"{'one' if hops == '1' else 'two'}-passage ({rec['questions']})"
        lines.append(f"{label:<22}" + "".join(f"{np.mean(rec[str(k)]) if rec[str(k)] else float('nan'):>8.3f}"
                                              for k in metrics["ks"]))
    return "\n".join(lines)
