"""Continued pretraining for context extension: a :class:`CausalLMModule` that starts from a checkpoint.

UltraLong (Sec. 3) starts from a trained short-context model, changes only its RoPE scaling and
``max_seq_len``, and continues pretraining on long packed documents. The weights are the same
tensors before and after (RoPE frequencies are computed, not stored), so the checkpoint of the
short-context run loads into the extended model unchanged; only the config differs.
"""

from __future__ import annotations

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.training.module import CausalLMModule, OptimConfig
from nvrepro.core.training.weights import init_from as init_from_file


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
            init_from_file(self.model, init_from)
