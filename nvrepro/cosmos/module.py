"""Cosmos-Reason1's LightningModules: supervised fine-tuning and GRPO reinforcement learning of one VLM.

The network of both is a :class:`~nvrepro.core.multimodal.vlm.VisionLM`: ViT -> 2x2 pixel shuffle ->
2-layer MLP projector -> a Nemotron-H-pattern LM (``M``, ``*``, ``-`` layers), frames as images in the
decoder's sequence (Cosmos-Reason1's model section). Same classes at toy and full scale; only the YAML changes
(``configs/cosmos/``).

* :class:`CosmosSFTModule`: response-token cross-entropy (the paper's Physical AI SFT stage).
* :class:`CosmosGRPOModule`: GRPO (the Physical AI RL stage; Shao et al. 2024): per prompt, ``group_size`` responses
  sampled from the current policy, rule-based rewards (answer accuracy + format,
  :mod:`nvrepro.cosmos.rewards`), group-normalised advantages (no critic), the clipped policy-gradient
  loss with a ``beta``-weighted KL penalty to the frozen reference model (the policy at the start of RL).
  One gradient step per batch of samples, so the importance ratio is 1 and clipping is inactive here; the
  loss keeps the clipped form (as TRL's does) so that it stays correct for a caller that reuses a batch. Each step appends its reward, accuracy,
  format rate, KL and response length to :attr:`CosmosGRPOModule.history` (and logs them).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.multimodal.vlm import VisionLM, VisionLMConfig
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict
from nvrepro.core.training.module import InitializedLMModule, OptimConfig
from nvrepro.cosmos.grpo import group_advantages, grpo_loss
from nvrepro.cosmos.rewards import accuracy_reward, format_reward
from nvrepro.cosmos.sampling import response_log_probs, sample_responses


def _check_data(module, dm) -> None:
    cfg: VisionLMConfig = module.model_config
    for field, ours in (("tile_size", cfg.vision.image_size), ("tokens_per_tile", cfg.tokens_per_tile),
                        ("image_token_id", cfg.image_token_id)):
        theirs = getattr(dm, field, ours)
        if theirs != ours:
            raise ConfigError(f"data.{field}: the data builds examples for {theirs!r} but the model has {ours!r}")


class CosmosSFTModule(InitializedLMModule):
    """Response-token cross-entropy training of a :class:`VisionLM` on clip questions (module docstring);
    ``init_from``: a checkpoint to start from (the previous stage)."""

    config_class = VisionLMConfig

    def __init__(self, model: VisionLMConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        super().__init__(model, optim, init_from)

    def build_model(self, cfg: VisionLMConfig) -> VisionLM:
        return VisionLM(cfg)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        _check_data(self, getattr(self.trainer, "datamodule", None) if self._trainer is not None else None)


@dataclass
class GRPOConfig:
    """GRPO's settings: responses per prompt (``group_size``, at least 2: a group of one has no
    baseline), the KL weight ``beta``, the ratio clip ``clip``, the sampling ``temperature``, the longest
    response (``max_new_tokens``) and the reward weights (``accuracy_weight``, ``format_weight``)."""

    group_size: int = 8
    beta: float = 0.005
    clip: float = 0.2
    temperature: float = 1.0
    max_new_tokens: int = 96
    accuracy_weight: float = 1.0
    format_weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.group_size, int) or self.group_size < 2:
            raise ConfigError(f"grpo.group_size: GRPO normalises rewards within a group of responses to one prompt "
                              f"and needs at least 2, got {self.group_size!r}")
        for name in ("beta", "clip", "accuracy_weight", "format_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"grpo.{name}: must be >= 0, got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ConfigError(f"grpo.temperature: sampling needs a temperature > 0, got {self.temperature}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"grpo.max_new_tokens: must be a positive int, got {self.max_new_tokens!r}")


class CosmosGRPOModule(CosmosSFTModule):
    """GRPO on a :class:`VisionLM` (module docstring). Batches are prompts
    (:func:`~nvrepro.cosmos.data.collate_prompts`: ``ClipQADataModule(prompts_only=True)``)."""

    def __init__(self, model: VisionLMConfig | None = None, optim: OptimConfig | None = None,
                 grpo: GRPOConfig | None = None, init_from: str | None = None, seed: int = 0):
        super().__init__(model, optim, init_from)
        self.grpo = dataclass_from_dict(GRPOConfig, grpo, "grpo") if grpo is not None else GRPOConfig()
        self.hparams["grpo"] = asdict(self.grpo)
        self.sample_seed = seed
        self.tokenizer = ByteTokenizer()
        self.reference: VisionLM | None = None
        self.history: list[dict[str, float]] = []

    def setup(self, stage: str) -> None:
        super().setup(stage)
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        # a full-scale run decodes and pads with the data's pretrained tokenizer
        self.tokenizer = getattr(dm, "tokenizer", None) or self.tokenizer

    def on_fit_start(self) -> None:
        # The reference is the policy as RL starts (after init_from or loaded weights): the KL penalty
        # keeps the policy near what SFT taught.
        self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        scores = self._rollout(batch, group_size=1, temperature=0.0)
        self.log("val/accuracy", float(torch.tensor(scores["accuracy"]).mean()), on_epoch=True)
        self.log("val/format", float(torch.tensor(scores["format"]).mean()), on_epoch=True)

    def _rollout(self, batch: dict, group_size: int, temperature: float) -> dict:
        eos = self.tokenizer.eos_id
        responses = sample_responses(self.model, batch["prompts"], batch["pixel_values"], batch["image_mask"],
                                     group_size=group_size, max_new_tokens=self.grpo.max_new_tokens,
                                     temperature=temperature, eos_id=eos,
                                     seed=self.sample_seed * 100_003 + self.global_step)
        texts = [self.tokenizer.decode(r) for r in responses]
        answers = [q.answer for q in batch["questions"] for _ in range(group_size)]
        return {"responses": responses, "texts": texts,
                "accuracy": [accuracy_reward(t, a) for t, a in zip(texts, answers)],
                "format": [format_reward(t) for t in texts]}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        g = self.grpo
        rollout = self._rollout(batch, g.group_size, g.temperature)
        device = batch["pixel_values"].device
        accuracy = torch.tensor(rollout["accuracy"], device=device)
        well_formed = torch.tensor(rollout["format"], device=device)
        rewards = g.accuracy_weight * accuracy + g.format_weight * well_formed
        advantages = group_advantages(rewards, g.group_size)
        prompts = [p for p in batch["prompts"] for _ in range(g.group_size)]
        pixels = batch["pixel_values"].repeat_interleave(g.group_size, 0)
        image_mask = batch["image_mask"].repeat_interleave(g.group_size, 0)
        pad = self.tokenizer.pad_id
        log_probs, mask = response_log_probs(self.model, prompts, rollout["responses"], pixels, image_mask, pad)
        ref_log_probs = None
        if g.beta > 0:
            with torch.no_grad():
                ref_log_probs, _ = response_log_probs(self.reference, prompts, rollout["responses"], pixels,
                                                      image_mask, pad)
        out = grpo_loss(log_probs, log_probs.detach(), advantages, mask, ref_log_probs=ref_log_probs, beta=g.beta,
                        clip_low=g.clip)
        stats = {"reward": float(rewards.mean()), "accuracy": float(accuracy.mean()),
                 "format": float(well_formed.mean()), "kl": float(out.kl),
                 "length": float(mask.sum(1).float().mean()), "loss": float(out.loss.detach())}
        self.history.append(stats)
        for name, value in stats.items():
            self.log(f"train/{name}", value, on_step=True, prog_bar=name in ("reward", "kl"))
        return out.loss

