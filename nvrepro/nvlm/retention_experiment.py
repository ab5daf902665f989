"""Notebook 03 (``notebooks/nvlm/03_text_retention.ipynb``): does multimodal fine-tuning cost the LLM its
text skills, and does mixing text-only data into the SFT blend keep them (NVLM 1.0, Sec. 4.3 and 6: with a
high-quality text-only SFT set in the blend, NVLM-D 72B's text benchmarks improve by 4.3 points over its
LLM, where other open VLMs lose points)?

One toy NVLM-D per seed: (0) its LLM is trained on text-only instructions (:mod:`nvrepro.nvlm.text_tasks`,
:func:`~nvrepro.nvlm.training.train_text`) and scored on held-out instructions ("before"); (1) the toy's
pretraining stage runs with the LLM frozen, as the paper's does; (2) two SFT arms from there, with the ViT
frozen: ``forms_only`` (forms only) and ``text_blend`` (the same forms with a share of text-only
instructions mixed in). Both are scored on the held-out instructions ("after") and on the held-out forms.

:data:`RETENTION` judges two parts, each a paired bootstrap over held-out instructions (seed-averaged
exact match): without text in the blend the text score drops (before - forms_only > 0), and with it the
score is higher than without (text_blend - forms_only > 0).
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, not_applicable
from nvrepro.core.tooling.intervals import bootstrap_mean, paired_gain, seed_average
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.nvlm.evaluation import score
from nvrepro.nvlm.model import NVLM
from nvrepro.nvlm.training import finetune, pretrain, test_set, toy_yaml, train_text

ARMS = ("forms_only", "text_blend")
ARM_LABELS = {"before": "LLM before (text only)", "forms_only": "SFT on forms only",
              "text_blend": "SFT on forms + text"}

PROFILES = {
    "smoke": dict(text_steps=3, pretrain_steps=3, steps=3, num_train=48, num_test=16, text_fraction=0.25, seeds=[0]),
    "paper": dict(text_steps=600, pretrain_steps=1000, steps=1000, num_train=20000, num_test=512, text_fraction=0.25,
                  seeds=[0, 1]),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def _model(state) -> NVLM:
    from nvrepro.core.lm.config import model_config_from_yaml

    model = NVLM(model_config_from_yaml(toy_yaml("D")))
    model.load_state_dict(state)
    return model


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False) -> dict:
    """``{"text": {stage: [per seed: per instruction 0/1]}, "text_by_kind": {stage: [per seed: {...}]},
    "forms": {arm: [per seed: per question 0/1]}, "plan", ...}`` with stages ``before``, ``forms_only``,
    ``text_blend``."""
    p = plan(profile)
    cache = use_cache(profile, cache)
    seeds = [seed + s for s in p["seeds"]]
    text_set = test_set("D", p["num_test"], text_only=True)
    forms_set = test_set("D", p["num_test"])
    text = {stage: [] for stage in ("before", *ARMS)}
    text_by_kind = {stage: [] for stage in text}
    forms = {arm: [] for arm in ARMS}
    for s in seeds:
        llm = train_text("D", seed=s, steps=p["text_steps"], num_train=p["num_train"], cache=cache, progress=progress)
        result = score(_model(llm[1]), text_set)
        text["before"].append([float(c) for c in result["correct"].tolist()])
        text_by_kind["before"].append(result["by_kind"])
        base = pretrain("D", seed=s, steps=p["pretrain_steps"], num_train=p["num_train"], cache=cache,
                        progress=progress, init=llm, freeze_llm=True)
        for arm in ARMS:
            fraction = p["text_fraction"] if arm == "text_blend" else 0.0
            _, model = finetune("D", base, seed=s, steps=p["steps"], num_train=p["num_train"], text_fraction=fraction,
                                cache=cache, progress=progress)
            result = score(model, text_set)
            text[arm].append([float(c) for c in result["correct"].tolist()])
            text_by_kind[arm].append(result["by_kind"])
            forms[arm].append([float(c) for c in score(model, forms_set)["correct"].tolist()])
    return {"text": text, "text_by_kind": text_by_kind, "forms": forms, "seeds": seeds, "plan": p, "profile": profile}


def text_score(metrics: Mapping[str, Any], stage: str):
    """Exact match on held-out instructions at ``stage`` (seed-averaged), with a bootstrap interval."""
    return bootstrap_mean(seed_average(metrics["text"][stage]))


def forms_score(metrics: Mapping[str, Any], arm: str):
    """Exact match on held-out forms after ``arm``'s SFT (seed-averaged), with a bootstrap interval."""
    return bootstrap_mean(seed_average(metrics["forms"][arm]))


def judge_retention(metrics: Mapping[str, Any]) -> Judgement:
    before, forms_only, blend = (seed_average(metrics["text"][k]) for k in ("before", "forms_only", "text_blend"))
    parts = {}
    for name, low, high, what in (("forms-only SFT loses text skill", forms_only, before, "before - forms only"),
                                  ("text in the blend keeps more", forms_only, blend, "forms + text - forms only")):
        gain = paired_gain(low, high)
        parts[name] = (not_applicable("fewer than two held-out instructions") if gain is None
                       else at_least_threshold(gain, 0.0, f"text exact match, {what}"))
    return all_parts(parts, evidence={stage: text_score(metrics, stage) for stage in metrics["text"]})


RETENTION = Claim(
    "nvlm_text_retention",
    "Multimodal SFT on forms alone lowers the LLM's score on held-out text-only instructions, and mixing "
    "text-only instructions into the SFT blend gives a higher text score than leaving them out (the paper: "
    "NVLM-D keeps and improves its LLM's text skills thanks to the text-only SFT data); paired bootstraps "
    "over held-out instructions.",
    judge_retention)


def summary_table(metrics: Mapping[str, Any]) -> str:
    """Text and forms exact match per stage, with intervals."""
    def fmt(e) -> str:
        return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"

    lines = [f"{'stage':<24}{'text exact match':<24}{'forms exact match':<24}"]
    for stage in ("before", *ARMS):
        forms = fmt(forms_score(metrics, stage)) if stage in metrics["forms"] else "-"
        lines.append(f"{ARM_LABELS[stage]:<24}{fmt(text_score(metrics, stage)):<24}{forms:<24}")
    return "\n".join(lines)
