"""Checkers for the exercises of notebook 03 (RETRO++ and InstructRetro). Each prints whether the
answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check` (``ok`` ``None``
when nothing was answered yet).
The truths are computed: from the layer-kind registry, from a retro-fitted model, from the run."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from nvrepro.core.lm.layers.kinds import LAYER_KINDS
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.verdicts import Check, check_claim_prediction, report
from nvrepro.core.training.arms import merged_model_config
from nvrepro.retro import study


def check_answer_path(layer: str | None, *, verbose: bool = True) -> Check:
    """Exercise (a): the pattern character of the only layers of the RETRO-format model that read
    the neighbours (the layer kinds in its pattern that take a ``context``)."""
    from nvrepro.retro.instruct import QA_YAMLS

    if layer is None:
        return report(Check(None, "set `layer` to one pattern character."), verbose)
    pattern = merged_model_config(QA_YAMLS["retro"])["pattern"]
    readers = sorted({c for c in pattern if "context" in LAYER_KINDS[c].inputs})
    names = ", ".join(LAYER_KINDS[c].name for c in readers)
    return report(Check([layer] == readers, f"in {pattern!r} only {readers} ({names}) takes the neighbours; the "
                                            "answer's bytes must cross it."), verbose)


@torch.no_grad()
def check_retrofit_equivalence(prediction: bool | None, *, verbose: bool = True) -> Check:
    """Exercise (b): whether a freshly retro-fitted model without neighbours computes its GPT's logits."""
    from nvrepro.retro.instruct import retrofit
    from nvrepro.retro.model import RetroConfig, RetroLM, gpt_config

    if prediction is None:
        return report(Check(None, "set `prediction` to True or False."), verbose)
    cfg = RetroConfig.from_dict(merged_model_config(study.ARM_YAMLS["retro"], study.width_overrides(32)))
    torch.manual_seed(0)
    gpt = PatternLM(gpt_config(cfg)).eval()
    _, state = retrofit("probe", gpt, 32, seed=0)
    retro = RetroLM(cfg).eval()
    retro.load_state_dict(state)
    ids = torch.randint(0, cfg.vocab_size, (2, 128))
    gap = (retro(ids) - gpt(ids)).abs().max().item()
    same = gap == 0.0
    return report(Check(bool(prediction) == same,
                        f"without neighbours the CCA layers add exactly zero, so the logits are "
                        f"{'equal' if same else 'different'} (max difference {gap:.1e}); with neighbours they "
                        "differ from the start."), verbose)


def check_ablation_prediction(prediction: bool | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (c): predicted whether the decoder alone stays within the margin of the full model."""
    from nvrepro.retro.instruct import ENCODER_ABLATION

    return check_claim_prediction(prediction, ENCODER_ABLATION, result, verbose=verbose)
