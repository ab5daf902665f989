"""Notebook 01 (``notebooks/nvlm/01_tiles_and_tags.ipynb``): does dynamic high resolution help reading small
text, and do tile tags help on top (NVLM 1.0, Table 1: OCRBench 622 low-resolution / 728 tiles without tags
/ 806 tiles with 1-D tags, 787 and 791 with the 2-D grid and bbox tags)?

Five NVLM-D arms, each pretrained the same way (:func:`~nvrepro.nvlm.training.pretrain`, shared) and then
fine-tuned on the same forms (:func:`~nvrepro.nvlm.training.finetune`), differing only in what the decoder
sees: ``low_res`` (the page squeezed into one tile), ``none`` (tiles + thumbnail, no tags), ``1d``,
``2d_grid`` and ``2d_bbox`` (tiles + thumbnail with that tag style). All are scored by exact match on the
same held-out forms (:func:`~nvrepro.nvlm.training.test_set`), over several training seeds.

:data:`TILE_TAGS` judges the paper's ordering for the arms it names (low resolution < no tags < 1-D tags),
each step a paired bootstrap over held-out questions of the difference in exact match (each question's
score averaged over seeds). The 2-D variants are reported next to them, not judged.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import bootstrap_mean, paired_gain, seed_average
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.nvlm.evaluation import score
from nvrepro.nvlm.training import finetune, pretrain, test_set

ARMS = {  # arm -> (tile_tag, max_tiles)
    "low_res": ("none", 1),
    "none": ("none", 6),
    "1d": ("1d", 6),
    "2d_grid": ("2d_grid", 6),
    "2d_bbox": ("2d_bbox", 6),
}
ARM_LABELS = {"low_res": "low resolution", "none": "tiles, no tags", "1d": "1-D tags", "2d_grid": "2-D grid tags",
              "2d_bbox": "2-D bbox tags"}
PAPER_OCRBENCH = {"low_res": 622, "none": 728, "1d": 806, "2d_grid": 787, "2d_bbox": 791}  # Table 1

PROFILES = {
    "smoke": dict(pretrain_steps=3, steps=3, num_train=48, num_test=16, seeds=[0]),
    "paper": dict(pretrain_steps=1000, steps=1000, num_train=20000, num_test=512, seeds=[0, 1]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False) -> dict:
    """Train and score every arm for every seed: ``{"arms": {arm: {"correct": [per seed: per question 0/1],
    "by_kind": [per seed: {kind: exact match}]}}, "kinds": [kind per question], "plan": ...}``."""
    p = plan(profile)
    cache = use_cache(profile, cache)
    seeds = [seed + s for s in p["seeds"]]
    arms: dict[str, dict[str, list]] = {arm: {"correct": [], "by_kind": []} for arm in ARMS}
    kinds: list[str] = []
    for s in seeds:
        base = pretrain("D", seed=s, steps=p["pretrain_steps"], num_train=p["num_train"], cache=cache,
                        progress=progress)
        for arm, (tag, tiles) in ARMS.items():
            _, model = finetune("D", base, seed=s, steps=p["steps"], num_train=p["num_train"], tile_tag=tag,
                                max_tiles=tiles, cache=cache, progress=progress)
            result = score(model, test_set("D", p["num_test"], tile_tag=tag, max_tiles=tiles))
            arms[arm]["correct"].append([float(c) for c in result["correct"].tolist()])
            arms[arm]["by_kind"].append(result["by_kind"])
            kinds = result["kinds"]
    return {"arms": arms, "kinds": kinds, "seeds": seeds, "plan": p, "profile": profile}


def per_question(metrics: Mapping[str, Any], arm: str) -> list[float]:
    """Each held-out question's exact match for ``arm``, averaged over seeds."""
    return seed_average(metrics["arms"][arm]["correct"])


def accuracy(metrics: Mapping[str, Any], arm: str):
    """Exact match of ``arm`` over held-out questions (seed-averaged), with a bootstrap interval."""
    return bootstrap_mean(per_question(metrics, arm))


def judge_tile_tags(metrics: Mapping[str, Any]) -> Judgement:
    parts = {}
    for low, high in (("low_res", "none"), ("none", "1d")):
        gain = paired_gain(per_question(metrics, low), per_question(metrics, high))
        what = f"exact match {ARM_LABELS[high]} - {ARM_LABELS[low]}"
        parts[f"{ARM_LABELS[high]} > {ARM_LABELS[low]}"] = (
            not_applicable("fewer than two held-out questions") if gain is None else at_least_threshold(gain, 0.0, what))
    return all_parts(parts, evidence={arm: accuracy(metrics, arm) for arm in ARMS})


TILE_TAGS = Claim(
    "nvlm_tile_tags",
    "On reading generated forms, NVLM-D with dynamic high-resolution tiles beats the same model shown only "
    "a low-resolution page, and 1-D tile tags beat tiles without tags (the direction of the paper's Table 1); "
    "each step a paired bootstrap over held-out questions of the difference in exact match lies above 0.",
    judge_tile_tags)


def summary_table(metrics: Mapping[str, Any]) -> str:
    """One line per arm: exact match with its interval, per question kind, and the paper's OCRBench score."""
    lines = [f"{'arm':<16} {'exact match [95% CI]':<22} {'OCRBench (paper)':>16}   by kind, per seed"]
    for arm in ARMS:
        e = accuracy(metrics, arm)
        kinds = "; ".join(", ".join(f"{k} {v:.2f}" for k, v in run.items()) for run in metrics["arms"][arm]["by_kind"])
        lines.append(f"{ARM_LABELS[arm]:<16} {f'{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]':<22} "
                     f"{PAPER_OCRBENCH[arm]:>16}   {kinds}")
    return "\n".join(lines)
