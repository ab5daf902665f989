"""``RetroLMModule``: the Retro LM trained with next-token loss, reachable through ``nvrepro fit``.

A :class:`~nvrepro.core.training.module.CausalLMModule` whose config is a
:class:`~nvrepro.retro.model.RetroConfig` and whose network is a
:class:`~nvrepro.retro.model.RetroLM`; batches add ``neighbours (b, c, k, 2 m)`` to ``input_ids``
and ``labels`` (:class:`nvrepro.retro.data.RetroDataModule`). The GPT baseline is the plain
``CausalLMModule`` on the same data without neighbours. Same class at toy and full scale; only the
YAML changes (``configs/retro/``).
"""

from __future__ import annotations

from nvrepro.core.training.module import CausalLMModule, OptimConfig
from nvrepro.retro.model import RetroConfig, RetroLM


class RetroLMModule(CausalLMModule):
    """Next-token training of a :class:`RetroLM` (loss on every supervised position)."""

    config_class = RetroConfig

    def __init__(self, model: RetroConfig | None = None, optim: OptimConfig | None = None):
        # Own signature: LightningCLI reads the config's type (RetroConfig's fields) from it.
        super().__init__(model, optim)

    def build_model(self, cfg: RetroConfig) -> RetroLM:
        return RetroLM(cfg)
