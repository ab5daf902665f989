"""Checkers for the exercises of notebook 03 (RETRO++ and InstructRetro). Each prints whether the
answer holds and why, and returns ``True``/``False`` (``None`` when nothing was answered yet).
The truths are computed: from the layer-kind registry, from a retro-fitted model, from the run."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from nvrepro.core.lm.layers.kinds import LAYER_KINDS
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.arms import merged_model_config
from nvrepro.retro import study


def _report(ok: bool, message: str) -> bool:
    print(("Correct. " if ok else "Not yet. ") + message)
    return ok


def check_answer_path(layer: str | None) -> bool | None:
    """Exercise (a): the pattern character of the only layers of the RETRO-format model that read
    the neighbours (the layer kinds in its pattern that take a ``context``)."""
    from nvrepro.retro.instruct import QA_YAMLS

    if layer is None:
        print("Set `layer` to one pattern character, then rerun the cell.")
        return None
    pattern = merged_model_config(QA_YAMLS["retro"])["pattern"]
    readers = sorted({c for c in pattern if "context" in LAYER_KINDS[c].inputs})
    return _report([layer] == readers, f"in {pattern!r} only {readers} ({', '.join(LAYER_KINDS[c].name for c in readers)}) "
                                       "takes the neighbours; the answer bytes must cross it.")


@torch.no_grad()
def check_retrofit_equivalence(prediction: bool | None) -> bool | None:
    """Exercise (b): whether a freshly retro-fitted model without neighbours computes its GPT's logits."""
    from nvrepro.retro.instruct import retrofit
    from nvrepro.retro.model import RetroConfig, RetroLM, gpt_config

    if prediction is None:
        print("Set `prediction` to True or False, then rerun the cell.")
        return None
    cfg = RetroConfig.from_dict(merged_model_config(study.ARM_YAMLS["retro"], study.width_overrides(32)))
    torch.manual_seed(0)
    gpt = PatternLM(gpt_config(cfg)).eval()
    _, state = retrofit("probe", gpt, 32, seed=0)
    retro = RetroLM(cfg).eval()
    retro.load_state_dict(state)
    ids = torch.randint(0, cfg.vocab_size, (2, 128))
    same = bool(torch.equal(retro(ids), gpt(ids)))
    return _report(bool(prediction) == same,
                   f"without neighbours the CCA layers add exactly zero, so the logits are {'equal' if same else 'different'}"
                   " (max difference "
                   f"{(retro(ids) - gpt(ids)).abs().max().item():.1e}); with neighbours they differ from the start.")


def check_ablation_prediction(prediction: bool | None, result: Mapping[str, Any]) -> bool | None:
    """Exercise (c): predicted whether the decoder alone stays within the margin of the full model."""
    from nvrepro.retro.instruct import ENCODER_ABLATION

    if prediction is None:
        print("Set `prediction` to True or False, then rerun the cell.")
        return None
    verdict = ENCODER_ABLATION.judge(result)
    if verdict.held is None:
        print(f"This run cannot decide it ({verdict.reason}); try the paper profile.")
        return None
    return _report(bool(prediction) == verdict.held, f"the run says {verdict.reason}")
