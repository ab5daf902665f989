"""Notebook 02 (``notebooks/cosmos/02_sft_then_grpo.ipynb``): supervised fine-tuning, then GRPO with
rule-based rewards, on the three intuitive-physics tasks (Cosmos-Reason1's training stages and intuitive-physics benchmark: for the 8B
model the average accuracy goes 42.3 -> 65.7 after Physical AI SFT -> 68.7 after Physical AI RL).

One toy model per seed, through the three stages of :mod:`nvrepro.cosmos.training`: captioning
("before SFT": it has never seen a question), SFT on rule-written reasoning traces, then GRPO from the
SFT weights. After each stage every held-out question is answered greedily and scored with the reward
rules (:mod:`nvrepro.cosmos.evaluation`): accuracy per task against chance, the format rate, the
per-category table of the ontology; GRPO's per-step reward, accuracy, format and KL are the curves.

Three claims, each on bootstrap intervals over held-out questions (per-question scores averaged over
seeds; paired where two stages answer the same questions):

* :data:`ACCURACY`: after SFT every task is answered above chance, and GRPO's average accuracy is above
  SFT's;
* :data:`FORMAT`: after GRPO at least 95% of responses are well-formed, no fewer than after SFT less
  2 points (the format reward's job);
* :data:`CURVES`: the mean reward of GRPO's sampled responses rises (the last fifth of the steps above
  the first fifth).
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.multimodal.vlm import VisionLM, VisionLMConfig
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import bootstrap_difference, bootstrap_mean, paired_gain, seed_average
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.training.arms import merged_model_config
from nvrepro.cosmos.evaluation import answer_questions
from nvrepro.cosmos.ontology import accuracy_by_category
from nvrepro.cosmos.tasks import TASKS
from nvrepro.cosmos.training import SFT_YAML, caption, rl, sft, test_set

STAGES = ("caption", "sft", "rl")
STAGE_LABELS = {"caption": "before SFT", "sft": "after SFT", "rl": "after GRPO"}

PROFILES = {
    "smoke": dict(caption_steps=3, sft_steps=3, rl_steps=2, num_train=48, num_test=6, max_new_tokens=8,
                  grpo=dict(group_size=2, max_new_tokens=8), seeds=[0]),
    "paper": dict(caption_steps=800, sft_steps=1500, rl_steps=150, num_train=6000, num_test=384, max_new_tokens=96,
                  grpo={}, seeds=[0, 1]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def model_from_state(state: Mapping[str, Any]) -> VisionLM:
    """The toy VLM (``configs/cosmos/toy_sft.yaml``'s model) with the weights ``state``."""
    model = VisionLM(VisionLMConfig.from_dict(merged_model_config(SFT_YAML)))
    model.load_state_dict(state)
    return model.eval()


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False) -> dict:
    """``{"stages": {stage: {"correct": [per seed: per question 0/1], "well_formed": [...]}}, "tasks":
    [task per question], "curves": [per seed: [per step {reward, accuracy, format, kl, length, loss}]],
    "examples": {stage: [first responses of the first seed]}, "chance": {task: 1 / options}, ...}`` with
    stages ``caption`` (before SFT), ``sft`` and ``rl``."""
    p = plan(profile)
    cache = use_cache(profile, cache)
    seeds = [seed + s for s in p["seeds"]]
    test = test_set(p["num_test"])
    stages = {stage: {"correct": [], "well_formed": []} for stage in STAGES}
    curves, examples = [], {}
    for s in seeds:
        states = {"caption": caption(seed=s, steps=p["caption_steps"], num_train=p["num_train"], cache=cache,
                                     progress=progress)}
        states["sft"] = sft(states["caption"], seed=s, steps=p["sft_steps"], num_train=p["num_train"], cache=cache,
                            progress=progress)
        states["rl"], history = rl(states["sft"], seed=s, steps=p["rl_steps"], grpo=p["grpo"], cache=cache,
                                   progress=progress)
        curves.append(history)
        for stage in STAGES:
            records = answer_questions(model_from_state(states[stage][1]), test, max_new_tokens=p["max_new_tokens"])
            stages[stage]["correct"].append([float(r["correct"]) for r in records])
            stages[stage]["well_formed"].append([float(r["well_formed"]) for r in records])
            examples.setdefault(stage, [r["response"] for r in records[:6]])
    tasks = [test.task_of(i) for i in range(len(test))]
    return {"stages": stages, "tasks": tasks, "curves": curves, "examples": examples,
            "chance": {name: t.chance for name, t in TASKS.items()}, "seeds": seeds, "plan": p, "profile": profile}


def trained_models(profile: str = "smoke", seed: int = 0, cache: bool | None = None) -> dict[str, VisionLM]:
    """The first seed's model after each stage (:data:`STAGES`), as :func:`run` trained them (from the weight
    cache in the paper profile): what the notebook's clip viewer shows."""
    p = plan(profile)
    cache = use_cache(profile, cache)
    s = seed + p["seeds"][0]
    states = {"caption": caption(seed=s, steps=p["caption_steps"], num_train=p["num_train"], cache=cache)}
    states["sft"] = sft(states["caption"], seed=s, steps=p["sft_steps"], num_train=p["num_train"], cache=cache)
    states["rl"], _ = rl(states["sft"], seed=s, steps=p["rl_steps"], grpo=p["grpo"], cache=cache)
    return {stage: model_from_state(state[1]) for stage, state in states.items()}


def _items(metrics: Mapping[str, Any], stage: str, what: str = "correct", task: str | None = None) -> list[float]:
    values = seed_average(metrics["stages"][stage][what])
    return [v for v, t in zip(values, metrics["tasks"]) if task is None or t == task]


def accuracy(metrics: Mapping[str, Any], stage: str, task: str | None = None):
    """Accuracy at ``stage`` on ``task``'s held-out questions (all tasks: ``None``), seed-averaged, with a
    bootstrap interval."""
    return bootstrap_mean(_items(metrics, stage, "correct", task))


def format_rate(metrics: Mapping[str, Any], stage: str):
    """Share of well-formed responses at ``stage`` (seed-averaged), with a bootstrap interval."""
    return bootstrap_mean(_items(metrics, stage, "well_formed"))


def judge_accuracy(metrics: Mapping[str, Any]) -> Judgement:
    parts = {}
    for name, chance in metrics["chance"].items():
        values = _items(metrics, "sft", "correct", name)
        parts[f"SFT above chance on {name}"] = (
            not_applicable(f"fewer than two held-out {name} questions") if len(values) < 2
            else at_least_threshold(bootstrap_mean(values), chance, f"{name} accuracy after SFT"))
    gain = paired_gain(_items(metrics, "sft"), _items(metrics, "rl"))
    parts["GRPO above SFT"] = (not_applicable("fewer than two held-out questions") if gain is None
                               else at_least_threshold(gain, 0.0, "average accuracy, GRPO - SFT"))
    return all_parts(parts, evidence={stage: accuracy(metrics, stage) for stage in STAGES})


ACCURACY = Claim(
    "cosmos_accuracy",
    "After SFT on rule-written reasoning traces the toy answers every intuitive-physics task (arrow of time, "
    "spatial puzzle, object permanence) above chance, and after GRPO with accuracy and format rewards its "
    "average accuracy is above SFT's (the paper's direction: 42.3 -> 65.7 -> 68.7 for Cosmos-Reason1-8B); "
    "bootstrap intervals over held-out questions, paired for GRPO - SFT.",
    judge_accuracy)


def judge_format(metrics: Mapping[str, Any]) -> Judgement:
    after = _items(metrics, "rl", "well_formed")
    if len(after) < 2:
        return not_applicable("fewer than two held-out questions")
    kept = paired_gain(_items(metrics, "sft", "well_formed"), after)
    parts = {"well-formed after GRPO": at_least_threshold(bootstrap_mean(after), 0.95, "format rate after GRPO"),
             "no fewer than after SFT": at_least_threshold(kept, -0.02, "format rate, GRPO - SFT")}
    return all_parts(parts, evidence={stage: format_rate(metrics, stage) for stage in STAGES})


FORMAT = Claim(
    "cosmos_format",
    "After GRPO at least 95% of the toy's held-out responses are well-formed <think>...</think><answer>...</answer>, "
    "and the format rate is no more than 2 points below SFT's (the format reward keeps the format); bootstrap "
    "intervals over held-out questions, paired for GRPO - SFT.",
    judge_format)


def reward_windows(metrics: Mapping[str, Any], fraction: float = 0.2) -> tuple[list[float], list[float]]:
    """Per-step mean rewards (all seeds pooled) of the first and the last ``fraction`` of GRPO's steps."""
    first, last = [], []
    for history in metrics["curves"]:
        k = max(1, round(fraction * len(history)))
        first += [h["reward"] for h in history[:k]]
        last += [h["reward"] for h in history[-k:]]
    return first, last


def judge_curves(metrics: Mapping[str, Any]) -> Judgement:
    first, last = reward_windows(metrics)
    if min(len(first), len(last)) < 2:
        return not_applicable("fewer than two GRPO steps in a window")
    rise = bootstrap_difference(last, first)
    kl_end = [h["kl"] for history in metrics["curves"] for h in history[-max(1, len(history) // 5):]]
    judgement = at_least_threshold(rise, 0.0, "mean reward, last fifth - first fifth of GRPO's steps")
    return Judgement(judgement.held, judgement.reason, {**judgement.evidence, "final_kl": sum(kl_end) / len(kl_end)})


CURVES = Claim(
    "cosmos_grpo_curves",
    "During GRPO the mean reward of the sampled responses rises: the last fifth of the steps above the first "
    "fifth (per-step means of all seeds, two-sample bootstrap).",
    judge_curves)


def category_table(metrics: Mapping[str, Any]) -> list[dict]:
    """The ontology's per-category table (:func:`~nvrepro.cosmos.ontology.accuracy_by_category`) with one
    accuracy column per stage (seed-averaged per question)."""
    tags = [TASKS[t].tag for t in metrics["tasks"]]
    columns = {stage: accuracy_by_category(tags, _items(metrics, stage)) for stage in STAGES}
    rows = []
    for i, row in enumerate(columns["sft"]):
        rows.append({"category": row["category"], "subcategory": row["subcategory"], "items": row["items"],
                     **{stage: columns[stage][i]["accuracy"] for stage in STAGES}})
    return rows


def summary_table(metrics: Mapping[str, Any]) -> str:
    """Accuracy per task and stage with intervals, chance, and the format rate."""
    def fmt(e) -> str:
        return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"

    lines = [f"{'task':<20}{'chance':<8}" + "".join(f"{STAGE_LABELS[s]:<24}" for s in STAGES)]
    for name in TASKS:
        lines.append(f"{name:<20}{metrics['chance'][name]:<8.2f}"
                     + "".join(f"{fmt(accuracy(metrics, s, name)):<24}" for s in STAGES))
    lines.append(f"{'average':<20}{'':<8}" + "".join(f"{fmt(accuracy(metrics, s)):<24}" for s in STAGES))
    lines.append(f"{'format rate':<20}{'':<8}" + "".join(f"{fmt(format_rate(metrics, s)):<24}" for s in STAGES))
    return "\n".join(lines)


def format_category_table(metrics: Mapping[str, Any]) -> str:
    """:func:`category_table` as text (``-`` where the toy has no item)."""
    lines = [f"{'category':<22}{'subcategory':<20}{'items':>6}" + "".join(f"{STAGE_LABELS[s]:>13}" for s in STAGES)]
    for row in category_table(metrics):
        cells = "".join(f"{'-' if row[s] is None else f'{row[s]:.3f}':>13}" for s in STAGES)
        lines.append(f"{row['category']:<22}{row['subcategory']:<20}{row['items']:>6}{cells}")
    return "\n".join(lines)
