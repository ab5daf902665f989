"""Notebook 02 (``notebooks/rankrag/02_experiment.ipynb``): RankRAG against a retriever-only pipeline
and a dedicated re-ranker, on the synthetic world at toy scale.

The recipe of arXiv 2407.02485, scaled down (every arm the same model class and size):

1. **Stage I**: instruction following (``configs/rankrag/toy_instruct.yaml``), trained once;
2. **Stage II** from it (``configs/rankrag/toy_rankrag.yaml``), one arm per ranking share of the
   blend: the main share is **RankRAG**; share 0 is a **ChatQA-like generator** (no ranking data);
   share 1 is a **dedicated re-ranker** (ranking data only); the other shares trace the curve of
   "a small fraction of ranking data suffices";
3. **Evaluation** on the held-out people's questions: MiniLM retrieves the top ``n`` passages
   (:class:`~nvrepro.core.retrieval.passages.PassageRetriever`); a re-ranker scores each by P(True)
   (:mod:`~nvrepro.rankrag.pipeline`); the top ``k`` go to a generator (greedy). Systems:

   - ``chatqa``: retriever top-k -> the share-0 generator (the paper's ChatQA-1.5 comparison);
   - ``rankrag_no_rerank``: retriever top-k -> RankRAG's generator (re-ranking switched off);
   - ``reranker``: the dedicated re-ranker's top-k -> RankRAG's generator;
   - ``rankrag``: RankRAG re-ranks its own retrieval and answers.

   Retrieval metrics (recall@k, MRR, nDCG) by ``ir-measures``; answers by exact match and token F1
   with SQuAD's normalisation; the time per question of each stage against ``n``.

Claims (paired bootstraps over the test questions, thresholds set before the first run):
:data:`BEATS_RETRIEVER` (RankRAG's EM above ChatQA's at the main ``k``), :data:`MATCHES_RERANKER`
(RankRAG's recall@k at least the dedicated re-ranker's less :data:`RERANKER_MARGIN`),
:data:`RERANK_RECALL` (re-ranking raises recall@k over the retriever's) and
:data:`SMALL_SHARE` (the smallest positive ranking share already beats share 0 on EM);
:data:`RERANK_COST` (re-ranking time grows with ``n``, judged over timed repeats).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from nvrepro.core.evaluation.answers import exact_match, token_f1
from nvrepro.core.evaluation.ranking import ranking_metrics
from nvrepro.core.tooling.claims import Claim, Judgement, at_least_threshold, exceeds, not_applicable
from nvrepro.core.tooling.intervals import paired_gain
from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.report import table_text
from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.training.arms import train_arm

STAGE_ONE_YAML = CONFIGS_DIR / "rankrag" / "toy_instruct.yaml"
STAGE_TWO_YAML = CONFIGS_DIR / "rankrag" / "toy_rankrag.yaml"
RETRIEVAL_YAML = CONFIGS_DIR / "rankrag" / "toy_retrieval.yaml"
CACHE = BUILD_DIR / "rankrag"
TRAINING_CODE = ("nvrepro.core", "nvrepro.rankrag")
THREADS = 2  # torch threads while training and evaluating (the laptop-CPU budget of the paper profile)
# The cost claim's bar: from the smallest to the largest n of the sweep, re-ranking time grows at
# least half as fast as n (scoring is batched forwards over n prompts, linear in n, less the fixed
# cost of a batch that the smallest n cannot amortise).
COST_FRACTION = 0.5
# "Matches the dedicated re-ranker", read as: recall@k at most 3 points below it (set before the
# first run; the paper reports RankRAG above its dedicated re-rankers).
RERANKER_MARGIN = 0.03
SYSTEMS = {"chatqa": "retriever -> ChatQA-like generator", "rankrag_no_rerank": "retriever -> RankRAG generator",
           "reranker": "dedicated re-ranker -> RankRAG generator", "rankrag": "RankRAG (re-ranks itself)"}
RANKERS = {"retriever": "MiniLM retriever", "reranker": "dedicated re-ranker", "rankrag": "RankRAG"}

# ``world``: RankRAGDataModule's world fields; ``stage_one_steps``/``stage_two_steps``: optimizer
# steps (None: the YAMLs'); ``batch``: rows a step (None: the YAML's); ``shares``: stage II ranking
# shares trained (0 and the main one always); ``main_share``: RankRAG's; ``n``: passages retrieved;
# ``k``: the headline number kept (None: toy_retrieval.yaml's); ``ks``: the EM-vs-k sweep;
# ``time_ns``: the cost sweep, on ``time_questions`` questions, timed ``time_repeats`` times;
# ``questions``: test questions evaluated (None: all).
PROFILES = {
    "smoke": dict(world=dict(num_people=30, num_companies=6), stage_one_steps=2, stage_two_steps=3, batch=4,
                  shares=[0.0, 0.25], main_share=0.25, n=6, k=1, ks=[1, 2], time_ns=[3, 6], time_questions=4, time_repeats=2,
                  questions=12),
    "paper": dict(world={}, stage_one_steps=None, stage_two_steps=None, batch=None,
                  shares=[0.0, 0.05, 0.1, 0.25], main_share=0.25, n=None, k=None, ks=[1, 2, 3, 5],
                  time_ns=[5, 10, 20, 40], time_questions=64, time_repeats=5, questions=None),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`; ``n``/``k`` left ``None`` come from
    :data:`RETRIEVAL_YAML`); a clear error for an unknown one."""
    from nvrepro.rankrag.retrieval_settings import load_retrieval_settings

    p = profile_settings(PROFILES, profile)
    settings = load_retrieval_settings(RETRIEVAL_YAML)
    return {**p, "n": p["n"] or settings.n, "k": p["k"] or settings.k}


def _data(p: Mapping[str, Any], steps: int | None, yaml, **extra) -> dict:
    from nvrepro.core.training.yaml_fit import read_cli_yaml

    cfg = read_cli_yaml(yaml)
    steps = steps or int(cfg["trainer"]["max_steps"])
    batch = p["batch"] or int(cfg["data"]["init_args"]["batch_size"])
    out = {**p["world"], "size": steps * batch, "batch_size": batch, **extra}
    if p["batch"]:
        out["val_size"] = 2 * batch
    return out


def train_models(profile: str, seed: int, cache: bool, progress: bool) -> dict[float, Any]:
    """Stage I once, then one stage II model per share of :func:`plan` plus share 1 (the dedicated
    re-ranker), each from the stage I weights: ``{share: model}``."""
    p = plan(profile)
    key, base = train_arm(STAGE_ONE_YAML, seed=seed, cache_dir=CACHE, steps=p["stage_one_steps"],
                          data_overrides=_data(p, p["stage_one_steps"], STAGE_ONE_YAML), cache=cache,
                          progress=progress, code=TRAINING_CODE, threads=THREADS)
    init = (key, {k: v.clone() for k, v in base.state_dict().items()})
    models = {}
    for share in sorted({*p["shares"], p["main_share"], 1.0}):
        data = _data(p, p["stage_two_steps"], STAGE_TWO_YAML, ranking_share=share)
        _, model = train_arm(STAGE_TWO_YAML, seed=seed, cache_dir=CACHE, steps=p["stage_two_steps"], init=init,
                             data_overrides=data, cache=cache, progress=progress, code=TRAINING_CODE,
                             threads=THREADS)
        models[share] = model.eval()
    return models


def world_and_tokenizer(profile: str):
    """The world and tokenizer every arm of ``profile`` shares (the datamodule's)."""
    from nvrepro.rankrag.data import RankRAGDataModule

    dm = RankRAGDataModule(**plan(profile)["world"])
    return dm.world, dm.tokenizer


def rankrag_pipeline(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False):
    """``(pipeline, test questions)``: the RankRAG pipeline of ``profile``'s main model (trained, or
    loaded from the weight cache of the paper profile) on the world's retriever, for the explorer."""
    from nvrepro.core.retrieval.passages import PassageRetriever
    from nvrepro.rankrag.pipeline import RankRAGPipeline

    p = plan(profile)
    models = train_models(profile, seed, use_cache(profile, cache), progress)
    world, tok = world_and_tokenizer(profile)
    retriever = PassageRetriever([x.text for x in world.passages], cache_dir=CACHE / "passage_vectors")
    main = models[p["main_share"]]
    return RankRAGPipeline(retriever, tok, main, main, n=p["n"], k=p["k"]), world.questions["test"]


def answer_scores(answers: list[str], questions) -> dict[str, list[float]]:
    """Per question exact match and token F1 of ``answers`` against each question's gold answers."""
    return {"em": [exact_match(a, q.answers) for a, q in zip(answers, questions)],
            "f1": [token_f1(a, q.answers) for a, q in zip(answers, questions)]}


def _recalls(order: np.ndarray, questions, ks) -> dict[str, list[float]]:
    names = [f"R@{k}" for k in ks] + ["RR", f"nDCG@{max(ks)}"]
    values = ranking_metrics(order, [q.gold for q in questions], names)
    return {name: v.tolist() for name, v in values.items()}


def time_per_question(pipeline, questions: list[str], ns, k: int, repeats: int = 1) -> dict[str, dict[str, Any]]:
    """Seconds per question of each stage, for each ``n`` of ``ns``, over ``repeats`` timed runs:
    ``{str(n): {stage: mean s, ..., "total": mean s, "repeats": {stage: [s per run]}}}``."""
    out = {}
    for n in ns:
        pipeline.n = n
        runs: dict[str, list[float]] = {}
        for _ in range(repeats):
            start = time.perf_counter()
            result = pipeline.run(questions, k=k)
            total = time.perf_counter() - start
            for stage, seconds in {**result.seconds, "total": total}.items():
                runs.setdefault(stage, []).append(seconds / len(questions))
        out[str(n)] = {**{stage: float(np.mean(v)) for stage, v in runs.items()}, "repeats": runs}
    return out


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = True) -> dict:
    """Train the arms and evaluate every system (module docstring). Returns plain data: per
    question ``em``/``f1`` per system and ``k``, ``recall`` per ranker, the share sweep, timings."""
    from nvrepro.core.retrieval.passages import PassageRetriever
    from nvrepro.rankrag.pipeline import RankRAGPipeline, generate_answers, top_k

    p = plan(profile)
    cache = use_cache(profile, cache)
    models = train_models(profile, seed, cache, progress)
    world, tok = world_and_tokenizer(profile)
    questions = world.questions["test"][:p["questions"]] if p["questions"] else world.questions["test"]
    texts = [q.text for q in questions]
    retriever = PassageRetriever([x.text for x in world.passages], cache_dir=CACHE / "passage_vectors")
    main, chatqa, reranker = models[p["main_share"]], models[0.0], models[1.0]
    with num_threads(THREADS):
        retrieved, retriever_scores = retriever.search(texts, p["n"])
        scorers = {share: m for share, m in models.items() if share > 0}
        relevance = {share: RankRAGPipeline(retriever, tok, reranker=m, n=p["n"]).rank(texts, retrieved,
                                                                                         retriever_scores)
                     for share, m in scorers.items()}
        orders = {"retriever": top_k(retrieved, retriever_scores, p["n"]),
                  "reranker": top_k(retrieved, relevance[1.0], p["n"]),
                  "rankrag": top_k(retrieved, relevance[p["main_share"]], p["n"])}

        def answers(model, order, k):
            contexts = [retriever.texts([i for i in row[:k] if i >= 0]) for row in order]
            return answer_scores(generate_answers(model, tok, texts, contexts), questions)

        systems = {"chatqa": (chatqa, "retriever"), "rankrag_no_rerank": (main, "retriever"),
                   "reranker": (main, "reranker"), "rankrag": (main, "rankrag")}
        scores = {name: {str(k): answers(model, orders[ranker], k) for k in p["ks"]}
                  for name, (model, ranker) in systems.items()}
        shares = {}
        for share, model in sorted(models.items()):
            if share == 1.0:
                continue  # the dedicated re-ranker is not trained to answer
            order = orders["retriever"] if share == 0 else top_k(retrieved, relevance[share], p["n"])
            shares[str(share)] = {**answers(model, order, p["k"]),
                                  "recall": _recalls(order, questions, [p["k"]])[f"R@{p['k']}"]}
        timing_questions = texts[:p["time_questions"]]
        timing = {"rankrag": time_per_question(RankRAGPipeline(retriever, tok, main, main, n=p["n"]),
                                               timing_questions, p["time_ns"], p["k"], p["time_repeats"]),
                  "retriever_only": time_per_question(RankRAGPipeline(retriever, tok, main, None, n=p["n"]),
                                                      timing_questions, p["time_ns"], p["k"], p["time_repeats"])}
    return {"systems": scores, "recall": {r: _recalls(o, questions, p["ks"]) for r, o in orders.items()},
            "shares": shares, "timing": timing, "questions": texts, "answers": [q.answers[0] for q in questions],
            "hops": [q.hops for q in questions], "attributes": [q.attribute for q in questions],
            "n": p["n"], "k": p["k"], "ks": p["ks"], "main_share": p["main_share"], "plan": p,
            "profile": profile, "seed": seed}


# --- claims ----------------------------------------------------------------------------------

def gain(values: Mapping[str, list[float]] | None, this: str, other: str):
    """Paired bootstrap over questions of ``values[this] - values[other]`` (``None`` below two)."""
    return paired_gain(values[other], values[this])


def judge_beats_retriever(metrics: Mapping[str, Any]) -> Judgement:
    k = str(metrics["k"])
    em = {name: metrics["systems"][name][k]["em"] for name in ("rankrag", "chatqa")}
    est = gain(em, "rankrag", "chatqa")
    return not_applicable("fewer than two test questions") if est is None else \
        at_least_threshold(est, 0.0, f"EM@k={k} RankRAG - ChatQA-like")


def judge_matches_reranker(metrics: Mapping[str, Any]) -> Judgement:
    name = f"R@{metrics['k']}"
    recall = {r: metrics["recall"][r][name] for r in ("rankrag", "reranker")}
    est = gain(recall, "rankrag", "reranker")
    return not_applicable("fewer than two test questions") if est is None else \
        at_least_threshold(est, -RERANKER_MARGIN, f"{name} RankRAG - dedicated re-ranker")


def judge_rerank_recall(metrics: Mapping[str, Any]) -> Judgement:
    name = f"R@{metrics['k']}"
    recall = {r: metrics["recall"][r][name] for r in ("rankrag", "retriever")}
    est = gain(recall, "rankrag", "retriever")
    return not_applicable("fewer than two test questions") if est is None else \
        at_least_threshold(est, 0.0, f"{name} after RankRAG's re-ranking - before")


def judge_small_share(metrics: Mapping[str, Any]) -> Judgement:
    shares = sorted(metrics["shares"], key=float)
    positive = [s for s in shares if float(s) > 0]
    if "0.0" not in metrics["shares"] or not positive:
        return not_applicable("the sweep lacks share 0 or a positive share")
    smallest = positive[0]
    est = gain({s: metrics["shares"][s]["em"] for s in ("0.0", smallest)}, smallest, "0.0")
    return not_applicable("fewer than two test questions") if est is None else \
        at_least_threshold(est, 0.0, f"EM with ranking share {smallest} - share 0")


def judge_rerank_cost(metrics: Mapping[str, Any]) -> Judgement:
    timing = metrics["timing"]["rankrag"]
    low, high = sorted(timing, key=int)[0], sorted(timing, key=int)[-1]
    if low == high:
        return not_applicable("the sweep has one n")
    return exceeds(timing[high]["repeats"]["rerank"], timing[low]["repeats"]["rerank"],
                   f"re-ranking seconds per question at n = {high} vs n = {low}",
                   factor=COST_FRACTION * int(high) / int(low))


BEATS_RETRIEVER = Claim(
    "rankrag_beats_retriever",
    "RankRAG (re-ranking its own top-n retrieval, keeping k) answers more held-out questions exactly than "
    "a ChatQA-like generator (the same model trained without ranking data) on the retriever's top-k "
    "(the paper: NQ EM 50.6 vs 42.7 for 8B); paired bootstrap over questions.",
    judge_beats_retriever)
MATCHES_RERANKER = Claim(
    "rankrag_matches_reranker",
    "RankRAG's re-ranking keeps the gold passage in its top k at least as often as a dedicated "
    "re-ranker of the same size trained only on the ranking data (less 3 points of recall@k); paired "
    "bootstrap over questions.",
    judge_matches_reranker)
RERANK_RECALL = Claim(
    "rankrag_rerank_recall",
    "Re-ranking the retriever's top-n by RankRAG's P(True) raises recall@k over the retriever's own "
    "order; paired bootstrap over questions.",
    judge_rerank_recall)
RERANK_COST = Claim(
    "rankrag_rerank_cost",
    "Re-ranking costs time in proportion to the passages scored: from the smallest to the largest n of "
    "the sweep, RankRAG's re-ranking time per question grows at least half as fast as n (one-sided "
    "Mann-Whitney test over timed repeats).",
    judge_rerank_cost)
SMALL_SHARE = Claim(
    "rankrag_small_share",
    "A small share of ranking data in the stage II blend (the smallest positive share of the sweep) "
    "already raises exact match over no ranking data, each model answering from its own top-k "
    "(share 0: the retriever's order); paired bootstrap over questions.",
    judge_small_share)


def em_table(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Mean EM and F1 of each system at each k."""
    rows = {}
    for name, by_k in metrics["systems"].items():
        row = {}
        for k, v in by_k.items():
            row[f"EM@{k}"], row[f"F1@{k}"] = float(np.mean(v["em"])), float(np.mean(v["f1"]))
        rows[name] = row
    return rows


def summary_text(metrics: Mapping[str, Any]) -> str:
    """The EM/F1 table per system and k, and the recall table per ranker."""
    ks = metrics["ks"]
    em = table_text(em_table(metrics), [(f"EM@{k}", f"EM@{k}", ".3f") for k in ks] +
                    [(f"F1@{k}", f"F1@{k}", ".3f") for k in ks], first="system", labels=SYSTEMS, first_width=44)
    def heading(name: str) -> str:
        return f"MRR@{metrics['n']}" if name == "RR" else name.replace("R@", "recall@")

    rec_rows = {r: {name: float(np.mean(v)) for name, v in values.items()} for r, values in metrics["recall"].items()}
    names = list(next(iter(metrics["recall"].values())))
    rec = table_text(rec_rows, [(heading(n), n, ".3f") for n in names], first="ranker", labels=RANKERS,
                     first_width=24)
    return f"{len(metrics['questions'])} test questions, n = {metrics['n']} retrieved\n{em}\n\n{rec}"
