"""The causal-LM LightningModule every paper extends.

One class serves the toy run on a laptop CPU and the full-scale run on many GPU nodes; only the
YAML changes (widths in ``model``, devices/strategy/precision in ``trainer``, FP8 as the
:class:`~nvrepro.core.training.precision.FP8Training` callback). Batches are dicts holding
``labels (b, l)``, already shifted (``labels[t]`` is the target at position t, ``-100`` where
unsupervised; the convention of ``nvrepro.core.data``), plus the model's inputs.

Two hooks make it generic over the model, so a paper subclasses instead of copying:

* :meth:`CausalLMModule.build_model` (``config -> nn.Module`` with ``forward(**inputs) -> logits
  (b, l, V)``; default :class:`PatternLM`) with :attr:`CausalLMModule.config_class` for its config;
* :meth:`CausalLMModule.model_inputs` (``batch -> keyword inputs``; default: the batch entries
  that the model's ``forward`` names, e.g. ``input_ids`` and, when the data packs documents,
  ``doc_ids``). A vision-language module maps images to ``inputs_embeds`` here.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict


@dataclass
class OptimConfig:
    """AdamW with linear warmup then cosine decay to ``min_lr_ratio * lr``."""

    lr: float = 3e-3
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    warmup_steps: int = 50
    min_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        if not self.lr > 0:
            raise ConfigError(f"optim.lr: must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"optim.warmup_steps: must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"optim.min_lr_ratio: must be in [0, 1], got {self.min_lr_ratio}")


def lr_lambda(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak LR at ``step``: linear warmup, then cosine to ``min_lr_ratio``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy. logits ``(b, l, V)``, labels ``(b, l)`` (pre-shifted, -100 ignored)."""
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


class CausalLMModule(L.LightningModule):
    """Trains ``self.model`` (a :class:`PatternLM` unless :meth:`build_model` says otherwise) with
    next-token cross-entropy.

    Logs ``train/loss``, ``train/ppl``, ``train/tokens_per_sec``, ``lr``, ``val/loss``,
    ``val/ppl``, ``val/acc`` (next-token accuracy on supervised positions).
    """

    config_class: type = ModelConfig

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None):
        super().__init__()
        # Hyperparameters are stored as plain dicts so checkpoints load with weights_only=True.
        model_cfg = _as_config(self.config_class, model, "model")
        optim_cfg = _as_config(OptimConfig, optim, "optim")
        self.save_hyperparameters({"model": model_cfg.to_dict(), "optim": asdict(optim_cfg)})
        self.model_config = model_cfg
        self.optim_config = optim_cfg
        self.model = self.build_model(model_cfg)
        self._input_names = _keyword_inputs(self.model)
        self._t_last: float | None = None

    def build_model(self, cfg) -> nn.Module:
        """The network this module trains, from its config (``config_class``)."""
        return PatternLM(cfg)

    def model_inputs(self, batch: dict) -> dict[str, Any]:
        """Keyword inputs of ``self.model`` for ``batch``: the batch's entries that the model's
        ``forward`` names (``labels`` never). Override to map other batch shapes."""
        return {k: v for k, v in batch.items() if k in self._input_names}

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.model(*args, **kwargs)

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        vocab = getattr(dm, "vocab_size", None)
        if vocab is not None and vocab > self.model_config.vocab_size:
            raise ConfigError(f"model.vocab_size: the data's tokenizer has {vocab} tokens but the model "
                              f"only {self.model_config.vocab_size}; set model.vocab_size >= {vocab}")

    def _step(self, batch: dict, stage: str, logits: torch.Tensor | None = None) -> torch.Tensor:
        # ``logits`` lets a subclass that already ran the model (e.g. distillation) reuse them.
        if logits is None:
            logits = self.model(**self.model_inputs(batch))
        labels = batch["labels"]
        loss = causal_lm_loss(logits, labels)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=on_step, on_epoch=not on_step, sync_dist=not on_step)
        self.log(f"{stage}/ppl", torch.exp(loss.detach().clamp(max=30)), on_step=on_step, on_epoch=not on_step,
                 sync_dist=not on_step)
        if stage != "train":
            mask = labels != -100
            acc = (logits.argmax(-1)[mask] == labels[mask]).float().mean()
            self.log(f"{stage}/acc", acc, on_epoch=True, sync_dist=True)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        now = time.perf_counter()
        if self._t_last is not None:
            tokens = batch["labels"].numel() * self.trainer.world_size
            self.log("train/tokens_per_sec", tokens / max(now - self._t_last, 1e-9), on_step=True)
        self._t_last = now
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        cfg = self.optim_config
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            # No decay on norms, biases and Mamba's dt_bias / A_log / D (mamba_ssm's convention).
            if p.ndim < 2 or getattr(p, "_no_weight_decay", False):
                no_decay.append(p)
            else:
                decay.append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        total = self._total_steps()
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_lambda(s, cfg.warmup_steps, total, cfg.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _total_steps(self) -> int:
        try:
            total = int(self.trainer.estimated_stepping_batches)
        except Exception:
            total = 0
        return total if 0 < total < 10**12 else max(1, self.optim_config.warmup_steps * 20)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.trainer.optimizers:
            self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True)


class InitializedLMModule(CausalLMModule):
    """:class:`CausalLMModule` whose LM starts from the weights of ``init_from`` (a checkpoint path;
    ``None``: from scratch). What every second stage of training needs: UltraLong's context
    extension from the short-context model, RankRAG's stage II from its stage I model.

    ``init_from`` is deliberately not a saved hyperparameter: reloading this module's own checkpoint
    must not need the parent checkpoint file.
    """

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        super().__init__(model=model, optim=optim)
        if init_from is not None:
            from nvrepro.core.training.weights import init_from as load_weights

            load_weights(self.model, init_from)


def _as_config(cls, value, name: str):
    if value is None:
        return cls()
    return dataclass_from_dict(cls, value, name)


def _keyword_inputs(model: nn.Module) -> frozenset[str]:
    """Names ``model.forward`` takes that a batch may fill (not the decoding cache)."""
    params = inspect.signature(model.forward).parameters
    return frozenset(n for n, p in params.items()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("cache", "labels"))
