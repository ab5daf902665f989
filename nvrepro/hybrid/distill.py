"""MiniPuzzle, part 3: knowledge distillation of a pruned student from its frozen parent.

Nemotron-H (arXiv:2504.03624, Sec. 4) distils the pruned 47B candidate from the 56B parent with
the forward KL divergence on the logits at temperature 1:

    L_KD = mean over supervised positions t of  KL(p_teacher(. | x_<=t) || p_student(. | x_<=t))

:class:`DistillationModule` is :class:`~nvrepro.core.training.module.CausalLMModule` (same optimizer,
schedule, metrics and YAML) with that loss. The teacher is a checkpoint path in the YAML
(``teacher:``; a Lightning ``.ckpt`` of a ``CausalLMModule`` or a file from :func:`~nvrepro.core.training.weights.save_lm`),
loaded with ``torch.load(weights_only=True)`` when training starts; it is frozen (no gradients,
always in eval mode), is not handed to the optimizer, and is left out of saved checkpoints. The
student starts from ``student_init`` (the pruned model, also a checkpoint path) or from random
weights when it is omitted. The distilled student is read back with :func:`~nvrepro.core.training.weights.load_lm` (a checkpoint
of this module holds the student alone).

At full scale the float32 ``(b, l, vocab)`` logits of both models dominate activation memory; a
fused or chunked KL is the production fix and is not attempted here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.module import CausalLMModule, OptimConfig, causal_lm_loss
from nvrepro.core.training.weights import init_from, load_lm

TEACHER_PREFIX = "teacher."


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
            temperature: float = 1.0) -> torch.Tensor:
    """Forward KL(teacher || student) per position, averaged over supervised positions.

    ``student_logits``, ``teacher_logits``: ``(b, l, V)``; ``labels`` ``(b, l)`` only selects the
    positions (``-100`` = skipped; ``None`` = all). Both are softened by ``temperature`` and the
    result is scaled by ``temperature**2`` (Hinton et al. 2015) so gradients keep their size;
    at the paper's temperature 1 this is the plain KL. Zero iff the two distributions agree.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"teacher_logits: shape {tuple(teacher_logits.shape)} differs from the "
                         f"student's {tuple(student_logits.shape)}")
    if not temperature > 0:
        raise ConfigError(f"temperature: must be > 0, got {temperature}")
    log_s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction="none").sum(-1)  # (b, l)
    if labels is not None:
        mask = labels != -100
        if not mask.any():
            raise ValueError("labels: no supervised positions (all -100)")
        kl = kl[mask]
    return kl.mean() * temperature**2


class DistillationModule(CausalLMModule):
    """Train the student ``model`` to match a frozen ``teacher``'s next-token distributions.

    Training loss: ``kd_loss`` (forward KL at ``temperature``) plus ``ce_weight`` times the
    usual cross-entropy on the labels (0 in the paper). Logs ``train/loss``, ``train/kd``,
    ``train/ce``; validation logs the student's ``val/loss`` (cross-entropy), ``val/ppl``,
    ``val/acc`` as :class:`CausalLMModule` does, plus ``val/kd`` and ``val/agreement`` (fraction
    of positions where the student's argmax is the teacher's).
    """

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 teacher: str | None = None, student_init: str | None = None, temperature: float = 1.0,
                 ce_weight: float = 0.0):
        # FP8 (the FP8Training callback) converts ``self.model``: the student only.
        super().__init__(model=model, optim=optim)
        if not temperature > 0:
            raise ConfigError(f"temperature: must be > 0, got {temperature}")
        if not ce_weight >= 0:
            raise ConfigError(f"ce_weight: must be >= 0, got {ce_weight}")
        self.save_hyperparameters({"teacher": teacher, "student_init": student_init,
                                   "temperature": temperature, "ce_weight": ce_weight})
        self.teacher_path, self.temperature, self.ce_weight = teacher, temperature, ce_weight
        self.teacher: PatternLM | None = None
        if student_init is not None:
            init_from(self.model, student_init, same_config=True, field="student_init")

    @classmethod
    def from_models(cls, student: PatternLM, teacher: PatternLM, **kwargs) -> "DistillationModule":
        """A module whose student is a copy of ``student``'s weights and whose teacher is ``teacher``."""
        module = cls(model=student.cfg.to_dict(), **kwargs)
        module.model.load_state_dict(student.state_dict())
        module.set_teacher(teacher)
        return module

    def set_teacher(self, teacher: PatternLM) -> None:
        """Freeze ``teacher`` (no grad, eval mode) and attach it; its vocabulary must match."""
        if teacher.cfg.vocab_size != self.model_config.vocab_size:
            raise ConfigError(f"teacher: vocab_size {teacher.cfg.vocab_size} differs from the student's "
                              f"model.vocab_size {self.model_config.vocab_size}")
        teacher.requires_grad_(False)
        teacher.eval()
        self.teacher = teacher

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()  # dropout-free today, but a frozen parent must never be in train mode
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.teacher is None:
            if self.teacher_path is None:
                raise ConfigError("teacher: DistillationModule needs a teacher checkpoint path "
                                  "(model.init_args.teacher)")
            self.set_teacher(load_lm(self.teacher_path).to(self.device))

    def _step(self, batch: dict, stage: str, logits: torch.Tensor | None = None) -> torch.Tensor:
        labels, inputs = batch["labels"], self.model_inputs(batch)
        logits = self.model(**inputs) if logits is None else logits
        with torch.no_grad():
            teacher_logits = self.teacher(**inputs)
        kd = kd_loss(logits, teacher_logits, labels, self.temperature)
        if stage != "train":
            super()._step(batch, stage, logits=logits)
            mask = labels != -100
            agreement = (logits.argmax(-1)[mask] == teacher_logits.argmax(-1)[mask]).float().mean()
            self.log(f"{stage}/kd", kd, on_epoch=True, sync_dist=True)
            self.log(f"{stage}/agreement", agreement, on_epoch=True, sync_dist=True)
            return kd
        ce = causal_lm_loss(logits, labels)
        loss = kd + self.ce_weight * ce if self.ce_weight else kd
        self.log("train/loss", loss, prog_bar=True, on_step=True)
        self.log("train/kd", kd, on_step=True)
        self.log("train/ce", ce.detach(), on_step=True)
        return loss

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The teacher is an input, not a result: keep checkpoints the student's size.
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith(TEACHER_PREFIX)]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Resuming after setup() attached the teacher: give strict loading the keys it expects.
        if self.teacher is not None:
            checkpoint["state_dict"].update(
                {TEACHER_PREFIX + k: v for k, v in self.teacher.state_dict().items()})
