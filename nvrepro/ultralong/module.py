"""Continued pretraining for context extension: a :class:`CausalLMModule` that starts from a checkpoint.

UltraLong (Sec. 3) starts from a trained short-context model, changes only its RoPE scaling and
``max_seq_len``, and continues pretraining on long packed documents. The weights are the same
tensors before and after (RoPE frequencies are computed, not stored), so the checkpoint of the
short-context run loads into the extended model unchanged; only the config differs.
"""

from __future__ import annotations

import torch

from nvrepro.core.config import ModelConfig
from nvrepro.core.lm import HybridLM
from nvrepro.core.module import CausalLMModule, OptimConfig


def load_lm_weights(model: HybridLM, path: str) -> None:
    """Load the LM weights of a Lightning checkpoint (keys ``model.*``) or a bare state dict.

    The checkpoint's own model config is ignored on purpose: the extended model keeps every
    weight shape and changes only position handling. A missing or unexpected key is an error.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(state, strict=True)


class ContextExtensionModule(CausalLMModule):
    """:class:`CausalLMModule` whose LM is initialised from ``init_from`` (a checkpoint path).

    ``init_from=None`` trains from scratch (the short-context pretraining run uses the plain
    module; this one is for the extension arms).
    """

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        super().__init__(model=model, optim=optim)
        # init_from is deliberately not a saved hyperparameter: reloading this module's own
        # checkpoint must not need the parent checkpoint file.
        if init_from is not None:
            load_lm_weights(self.model, init_from)
