"""``NVLMModule``: NVLM-D, -X or -H trained on image question answering, reachable through ``nvrepro fit``.

A :class:`~nvrepro.core.training.module.CausalLMModule` whose config is an
:class:`~nvrepro.nvlm.model.NVLMConfig` (``architecture`` picks D, X or H) and whose network is an
:class:`~nvrepro.nvlm.model.NVLM`; batches come from :class:`~nvrepro.nvlm.data.DocumentQADataModule`.
Validation adds ``val/exact_match``: the share of answers whose every token is the argmax (which is
what greedy decoding would print). Same class at toy and full scale; only the YAML changes
(``configs/nvlm/``).
"""

from __future__ import annotations

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.module import CausalLMModule, OptimConfig
from nvrepro.nvlm.evaluation import exact_match
from nvrepro.nvlm.model import NVLM, NVLMConfig


class NVLMModule(CausalLMModule):
    """Answer-token cross-entropy training of an :class:`NVLM` (module docstring)."""

    config_class = NVLMConfig

    def __init__(self, model: NVLMConfig | None = None, optim: OptimConfig | None = None):
        # Own signature: LightningCLI reads the config's type (NVLMConfig's fields) from it.
        super().__init__(model, optim)

    def build_model(self, cfg: NVLMConfig) -> NVLM:
        return NVLM(cfg)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        cfg: NVLMConfig = self.model_config
        for field, ours in (("architecture", cfg.architecture), ("tile_size", cfg.vision.image_size),
                            ("tokens_per_tile", cfg.tokens_per_tile), ("image_token_id", cfg.image_token_id)):
            theirs = getattr(dm, field, ours)
            if theirs != ours:
                raise ConfigError(f"data.{field}: the data builds examples for {theirs!r} but the model has {ours!r}")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.model(**self.model_inputs(batch))
        self._step(batch, "val", logits)
        self.log("val/exact_match", exact_match(logits, batch["labels"]).float().mean(), on_epoch=True, sync_dist=True)
