"""The ablations of notebook 03 (UltraLong Sec. 4.3 / Table 3 and Sec. 3.2), on the YaRN arm.

All arms start from the base of :func:`nvrepro.ultralong.extension.pretrain_base` and use
``configs/ultralong/toy_extend_yarn.yaml`` with the same seed (so the same data order):

* **separator**: the recipe (documents joined by ``<eos>``, no cross-document mask);
* **no separator**: the same documents concatenated with nothing between them
  (``data.separator = "none"``; the probes are joined the same way);
* **two-step**: first ``s/2`` at ``s L / 2`` tokens for half the steps, then ``s`` at ``s L`` for
  the other half (the paper compares one step straight to the target with going through an
  intermediate length). Same number of optimizer steps; the first half sees shorter rows;
* **short-only instruction tuning**: the separator arm tuned with
  ``configs/ultralong/toy_instruct_yarn.yaml`` (a toy "Repeat the text below." format on short
  spans only), then long-context retrieval measured again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nvrepro.core.tooling.weight_cache import use_cache
from nvrepro.core.evaluation import eval_mode
from nvrepro.core.training.yaml_fit import init_args_from_yaml, read_cli_yaml
from nvrepro.core.tooling.timing import num_threads
from nvrepro.ultralong.data import InstructionRows
from nvrepro.ultralong.evaluate import greedy_predictor, score
from nvrepro.ultralong.extension import (CONFIGS, arm_yaml, data_overrides, evaluate, plan, pretrain_base, short_docs,
                                       short_len, train)
from nvrepro.ultralong.tasks import TaskExample

INSTRUCT_YAML = CONFIGS / "toy_instruct_yarn.yaml"
ARMS = ("separator", "no_separator", "two_step", "instruct")


def instruction_examples(docs: list[list[int]], num: int, seed: int = 0) -> list[TaskExample]:
    """``num`` held-out toy instruction probes (prompt, then the span to repeat as the answer)."""
    rows = InstructionRows(docs, num, short_len(), seed=seed)
    out = []
    for i in range(num):
        prompt, response = rows.example(i)
        out.append(TaskExample("instruction", prompt, response, ""))
    return out


@torch.no_grad()
def response_loss(model, examples: list[TaskExample]) -> float:
    """Mean next-token loss on the answer tokens of ``examples``, teacher-forced (a smooth measure
    of following the instruction format, where exact match of a long span is all-or-nothing)."""
    total, count = 0.0, 0
    with eval_mode(model):
        for e in examples:
            ids = torch.tensor([e.prompt_ids + e.answer_ids])
            logits = model(ids)[0, len(e.prompt_ids) - 1:-1]  # predictions of the answer tokens
            total += F.cross_entropy(logits, torch.tensor(e.answer_ids), reduction="sum").item()
            count += len(e.answer_ids)
    return total / count


def ablation_experiment(profile: str = "smoke", seed: int = 0, cache: bool | None = None,
                        progress: bool = True) -> dict:
    """Train and evaluate the four arms (module docstring).

    Returns ``{"arms": {arm: evaluate(...) + {"instruction_acc", "instruction_loss"}}, "factor", "lengths", ...}``.
    """
    p = plan(profile)
    cache = use_cache(profile, cache)
    yaml = arm_yaml("yarn")
    steps = p["extend_steps"] or int(read_cli_yaml(yaml)["trainer"]["max_steps"])
    factor = float(init_args_from_yaml(yaml, "model")[1]["model"]["attention"]["rope_factor"])
    L0 = short_len()
    base_key, base = pretrain_base(profile, seed, cache, progress)
    init = (base_key, base.state_dict())
    docs = short_docs(seed, p["max_documents"])
    data = data_overrides(p)
    probes = instruction_examples(docs[0], 4 * p["samples"], seed=1000 + seed)

    models = {}
    key_sep, models["separator"] = train(yaml, seed=seed, steps=p["extend_steps"], init=init, cache=cache,
                                         progress=progress, data_overrides=data)
    _, models["no_separator"] = train(yaml, seed=seed, steps=p["extend_steps"], init=init, cache=cache,
                                      progress=progress, data_overrides=data | {"separator": "none"})
    half = int(L0 * factor / 2)
    key_half, mid = train(yaml, seed=seed, steps=max(1, steps // 2), init=init, cache=cache, progress=progress,
                          model_overrides={"max_seq_len": half, "attention": {"rope_factor": factor / 2}},
                          data_overrides=data | {"seq_len": half})
    _, models["two_step"] = train(yaml, seed=seed, steps=max(1, steps - steps // 2), data_overrides=data,
                                  init=(key_half, mid.state_dict()), cache=cache, progress=progress)
    sft_steps = None if p["extend_steps"] is None else p["extend_steps"]
    _, models["instruct"] = train(INSTRUCT_YAML, seed=seed, steps=sft_steps,
                                  init=(key_sep, models["separator"].state_dict()), data_overrides=data,
                                  cache=cache, progress=progress)
    arms = {}
    for arm, model in models.items():
        arms[arm] = evaluate(model, profile, seed, docs)
        with num_threads(1):
            arms[arm]["instruction_acc"] = score(probes, greedy_predictor(model))
            arms[arm]["instruction_loss"] = response_loss(model, probes)
    return {"arms": arms, "factor": factor, "short_len": L0, "lengths": arms["separator"]["niah"]["lengths"],
            "steps": steps, "profile": profile, "seed": seed}


def ablation_summary(result: dict) -> dict:
    """Per arm: needle accuracy at ``s L`` and overall, RULER average at ``s L``, short loss, the
    loss in the last position bin of ``s L`` blocks, instruction exact match and response loss."""
    return {arm: {"niah_at_sL": r["niah"]["per_length"][-1], "niah_mean": r["niah"]["mean"],
                  "ruler_at_sL": r["ruler"]["average"][-1], "short_loss": r["short_loss"],
                  "late_loss": r["loss_by_position"]["loss"][-1],
                  "instruction_acc": r["instruction_acc"], "instruction_loss": r["instruction_loss"]}
            for arm, r in result["arms"].items()}


def ablation_claims(s: dict, tolerance: float = 0.1, loss_tolerance: float = 0.05) -> dict[str, bool]:
    """The paper's directions, from :func:`ablation_summary`: the separator arm at least as good
    as no separator, one step at least as good as two (loss in the last position bin, and accuracy
    at ``s L``), and short-only SFT keeping the needle accuracy at ``s L`` within ``tolerance`` and
    the late-position loss within ``loss_tolerance`` (relative) while learning the instruction format.

    The accuracy comparisons are left out when no arm retrieves anything (all accuracies 0):
    ``0 >= 0`` would "hold" without testing anything.
    """
    def long_score(arm):
        return (s[arm]["niah_at_sL"] + s[arm]["ruler_at_sL"]) / 2

    out = {
        "separator <= no separator (late-position loss)": s["separator"]["late_loss"] <= s["no_separator"]["late_loss"],
        "one-step <= two-step (late-position loss)": s["separator"]["late_loss"] <= s["two_step"]["late_loss"],
        f"short SFT keeps late-position loss (within {loss_tolerance:.0%})":
            s["instruct"]["late_loss"] <= (1 + loss_tolerance) * s["separator"]["late_loss"],
        "short SFT learns the instruction format (response loss drops)":
            s["instruct"]["instruction_loss"] < s["separator"]["instruction_loss"],
    }
    if any(long_score(arm) > 0 for arm in s):
        out |= {
            "separator >= no separator (needle + RULER at sL)": long_score("separator") >= long_score("no_separator"),
            "one-step >= two-step (needle + RULER at sL)": long_score("separator") >= long_score("two_step"),
            f"short SFT keeps needle at sL (within {tolerance})":
                s["instruct"]["niah_at_sL"] >= s["separator"]["niah_at_sL"] - tolerance,
        }
    return out
