"""Continued pretraining for context extension: a :class:`CausalLMModule` that starts from a checkpoint.

UltraLong (Sec. 3) starts from a trained short-context model, changes only its RoPE scaling and
``max_seq_len``, and continues pretraining on long packed documents. The weights are the same
tensors before and after (RoPE frequencies are computed, not stored), so the checkpoint of the
short-context run loads into the extended model unchanged; only the config differs.
"""

from __future__ import annotations

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.training.module import InitializedLMModule, OptimConfig


class ContextExtensionModule(InitializedLMModule):
    """:class:`~nvrepro.core.training.module.InitializedLMModule` for the extension arms: the LM
    starts from ``init_from`` (the short-context checkpoint; ``None`` trains from scratch, but the
    short-context pretraining run uses the plain module)."""

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        # Own signature: LightningCLI reads the arguments from it.
        super().__init__(model=model, optim=optim, init_from=init_from)
