"""Notebook 02 (``notebooks/nvlm/02_d_x_h.ipynb``): NVLM-D, -X and -H side by side (NVLM 1.0, Sec. 4 and
5): accuracy on the forms and training throughput.

Each architecture (``configs/nvlm/toy_{d,x,h}.yaml``, the same LLM, ViT and projector widths; X and H add
two gated cross-attention layers) is pretrained and fine-tuned the toy's way
(:mod:`nvrepro.nvlm.training`) with 1-D tile tags and up to 6 tiles + thumbnail, over several seeds, and
scored on the same held-out forms. Throughput is measured after training, side by side in one process
(:func:`~nvrepro.nvlm.throughput.training_throughput`).

* :data:`THROUGHPUT`: the paper's ordering, X > H > D in training samples/s (Table 3: 50.6 / 36.2 / 28.8),
  each step a one-sided exact Mann-Whitney test over the timed rounds.
* :data:`OCR`: NVLM-D reads the forms better than NVLM-X (the paper: "NVLM-D ... better OCR", OCRBench 853
  vs 828 at 72B), a paired bootstrap over held-out questions (seed-averaged) of the difference.
"""

from __future__ import annotations

from typing import Any, Mapping

from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, exceeds, not_applicable
from nvrepro.core.tooling.intervals import bootstrap_mean, paired_gain, seed_average
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.nvlm.evaluation import score
from nvrepro.nvlm.throughput import ratios, sequence_lengths, training_throughput
from nvrepro.nvlm.training import finetune, pretrain, test_set

ARCHITECTURES = ("D", "X", "H")
PAPER_SAMPLES_PER_S = {"D": 28.8, "X": 50.6, "H": 36.2}  # Table 3, 34B on 128 H100s
PAPER_OCRBENCH_72B = {"D": 853, "X": 828, "H": 831}  # Table 7

PROFILES = {
    "smoke": dict(pretrain_steps=3, steps=3, num_train=48, num_test=16, seeds=[0],
                  throughput=dict(batch_size=4, steps=1, rounds=3)),
    "paper": dict(pretrain_steps=1000, steps=1000, num_train=20000, num_test=512, seeds=[0, 1],
                  throughput=dict(batch_size=16, steps=4, rounds=7)),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def run(profile: str = "smoke", seed: int = 0, cache: bool | None = None, progress: bool = False) -> dict:
    """Train, score and time every architecture: ``{"arms": {arch: {"correct": [per seed: per question
    0/1], "by_kind": [...]}}, "kinds", "samples_per_s": {arch: [per round]}, "ratios", "sequence_length":
    {arch: mean decoder tokens}, "plan", ...}``."""
    p = plan(profile)
    cache = use_cache(profile, cache)
    seeds = [seed + s for s in p["seeds"]]
    arms: dict[str, dict[str, list]] = {a: {"correct": [], "by_kind": []} for a in ARCHITECTURES}
    kinds: list[str] = []
    last = {}
    for s in seeds:
        for arch in ARCHITECTURES:
            base = pretrain(arch, seed=s, steps=p["pretrain_steps"], num_train=p["num_train"], cache=cache,
                            progress=progress)
            _, model = finetune(arch, base, seed=s, steps=p["steps"], num_train=p["num_train"], cache=cache,
                                progress=progress)
            result = score(model, test_set(arch, p["num_test"]))
            arms[arch]["correct"].append([float(c) for c in result["correct"].tolist()])
            arms[arch]["by_kind"].append(result["by_kind"])
            kinds = result["kinds"]
            last[arch] = model
    t = p["throughput"]
    timing_sets = {a: test_set(a, t["batch_size"] * t["steps"]) for a in ARCHITECTURES}
    rates = training_throughput(last, timing_sets, batch_size=t["batch_size"], steps=t["steps"], rounds=t["rounds"])
    return {"arms": arms, "kinds": kinds, "seeds": seeds, "samples_per_s": rates, "ratios": ratios(rates),
            "sequence_length": sequence_lengths(timing_sets, t["batch_size"] * t["steps"]), "plan": p,
            "profile": profile}


def per_question(metrics: Mapping[str, Any], arch: str) -> list[float]:
    """Each held-out question's exact match for ``arch``, averaged over seeds."""
    return seed_average(metrics["arms"][arch]["correct"])


def accuracy(metrics: Mapping[str, Any], arch: str):
    """Exact match of ``arch`` over held-out questions (seed-averaged), with a bootstrap interval."""
    return bootstrap_mean(per_question(metrics, arch))


def judge_throughput(metrics: Mapping[str, Any]) -> Judgement:
    rates = metrics["samples_per_s"]
    return all_parts({
        "X > H": exceeds(rates["X"], rates["H"], "samples/s NVLM-X over NVLM-H"),
        "H > D": exceeds(rates["H"], rates["D"], "samples/s NVLM-H over NVLM-D"),
    }, evidence={"ratios_to_D": metrics["ratios"], "sequence_length": metrics["sequence_length"]})


def judge_ocr(metrics: Mapping[str, Any]) -> Judgement:
    gain = paired_gain(per_question(metrics, "X"), per_question(metrics, "D"))
    part = (not_applicable("fewer than two held-out questions") if gain is None
            else at_least_threshold(gain, 0.0, "exact match NVLM-D - NVLM-X"))
    return all_parts({"D reads better than X": part},
                     evidence={a: accuracy(metrics, a) for a in ARCHITECTURES})


THROUGHPUT = Claim(
    "nvlm_throughput",
    "Training throughput orders the architectures as in the paper's Table 3: NVLM-X > NVLM-H > NVLM-D in "
    "samples/s (D's decoder carries every image token, H only the thumbnail's, X none); one-sided exact "
    "Mann-Whitney tests over rounds timed side by side.",
    judge_throughput)

OCR = Claim(
    "nvlm_ocr_d_vs_x",
    "NVLM-D reads the forms better than NVLM-X trained the same way (the paper: the decoder-only model is "
    "better at OCR); a paired bootstrap over held-out questions of the difference in exact match lies above 0.",
    judge_ocr)


def summary_table(metrics: Mapping[str, Any]) -> str:
    """One line per architecture: exact match, decoder length, samples/s and the paper's numbers."""
    import statistics

    lines = [f"{'arch':<8}{'exact match [95% CI]':<24}{'decoder tokens':>15}{'samples/s':>11}{'vs D':>7}"
             f"{'paper samples/s':>17}{'paper OCRBench':>16}"]
    for a in ARCHITECTURES:
        e = accuracy(metrics, a)
        lines.append(f"NVLM-{a:<3}{f'{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]':<24}"
                     f"{metrics['sequence_length'][a]:>15.1f}{statistics.median(metrics['samples_per_s'][a]):>11.1f}"
                     f"{metrics['ratios'][a]:>7.2f}{PAPER_SAMPLES_PER_S[a]:>17}{PAPER_OCRBENCH_72B[a]:>16}")
    return "\n".join(lines)
