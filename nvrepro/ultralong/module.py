"""Continued pretraining for context extension: a :class:`CausalLMModule` that starts from a checkpoint.

UltraLong (Sec. 3) starts from a trained short-context model, changes only its RoPE scaling and
``max_seq_len``, and continues pretraining on long packed documents. The weights are the same
tensors before and after (RoPE frequencies are computed, not stored), so the checkpoint of the
short-context run loads into the extended model unchanged; only the config differs.

:class:`TextRetrievalLMModule` trains the toy base that is both a language model and a retriever
(``configs/ultralong/toy_base.yaml``): the loss weighs the mean of each source, plain text and
retrieval documents (:func:`source_weighted_loss`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.module import CausalLMModule, InitializedLMModule, OptimConfig

IGNORE = -100


class ContextExtensionModule(InitializedLMModule):
    """:class:`~nvrepro.core.training.module.InitializedLMModule` for the extension arms: the LM
    starts from ``init_from`` (the short-context checkpoint; ``None`` trains from scratch, but the
    short-context pretraining run uses the plain module)."""

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 init_from: str | None = None):
        # Own signature: LightningCLI reads the arguments from it.
        super().__init__(model=model, optim=optim, init_from=init_from)


def source_weighted_loss(logits: torch.Tensor, labels: torch.Tensor, is_text: torch.Tensor, text_weight: float
                         ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``w * mean(text) + (1 - w) * mean(retrieval)`` over the supervised targets of each source.

    ``logits`` ``(B, T, V)``, ``labels`` ``(B, T)`` (``-100`` = no target), ``is_text`` ``(B,)`` bool
    (which rows are plain text), ``w = text_weight``. Each source keeps its weight whatever its
    number of targets: in a token-mean loss a text row (every token a target) outweighs a retrieval
    row (only answers are targets) about ten to one, which is how an earlier 50/50 mix drowned the
    retrieval signal. A batch with one source only returns that source's mean. Returns
    ``(loss, text_mean, retrieval_mean)``, the means ``None`` for an absent source.
    """
    nll = F.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    supervised = (labels != IGNORE).float()
    text_mask = supervised * is_text[:, None].float()
    retrieval_mask = supervised - text_mask
    means = []
    for mask in (text_mask, retrieval_mask):
        n = mask.sum()
        means.append((nll * mask).sum() / n if n > 0 else None)
    text_mean, retrieval_mean = means
    if text_mean is None or retrieval_mean is None:
        loss = text_mean if retrieval_mean is None else retrieval_mean
        if loss is None:
            raise ValueError("labels: the batch has no supervised target")
    else:
        loss = text_weight * text_mean + (1 - text_weight) * retrieval_mean
    return loss, text_mean, retrieval_mean


class TextRetrievalLMModule(CausalLMModule):
    """The text-and-retrieval base (issue 19): batches from
    :class:`~nvrepro.ultralong.data.TextRetrievalDataModule` carry ``is_text``, and training
    minimises :func:`source_weighted_loss` with ``text_weight``; validation (text only) is the plain
    token mean. Logs ``train/text_loss`` and ``train/retrieval_loss``; with ``record_every > 0`` it
    also keeps their means over each window of that many steps in ``self.curve`` (a list of
    ``{"step", "text_loss", "retrieval_loss", "lr"}``, cached with the weights by
    :func:`~nvrepro.core.training.arms.train_arm`'s ``record``)."""

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 text_weight: float = 0.5, record_every: int = 0):
        super().__init__(model=model, optim=optim)
        if not 0.0 <= text_weight <= 1.0:
            raise ConfigError(f"text_weight: must be in [0, 1], got {text_weight!r}")
        if record_every < 0:
            raise ConfigError(f"record_every: must be >= 0, got {record_every!r}")
        self.text_weight, self.record_every = text_weight, record_every
        self.curve: list[dict[str, float]] = []
        self._window: list[tuple[float, float]] = []

    def _step(self, batch: dict, stage: str, logits: torch.Tensor | None = None) -> torch.Tensor:
        if stage != "train" or "is_text" not in batch:
            return super()._step(batch, stage, logits)
        logits = self.model(**self.model_inputs(batch)) if logits is None else logits
        loss, text_mean, retrieval_mean = source_weighted_loss(logits, batch["labels"], batch["is_text"],
                                                               self.text_weight)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        nan = float("nan")
        means = tuple(nan if m is None else float(m.detach()) for m in (text_mean, retrieval_mean))
        for name, value in zip(("text_loss", "retrieval_loss"), means):
            if value == value:
                self.log(f"train/{name}", value, on_step=True, on_epoch=False)
        if self.record_every:
            self._window.append(means)
            if len(self._window) == self.record_every:
                cols = np.array(self._window, dtype=np.float64)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a window of one source only
                    text, retrieval = np.nanmean(cols, axis=0)
                self.curve.append({"step": float(self.global_step + 1), "text_loss": float(text),
                                   "retrieval_loss": float(retrieval),
                                   "lr": float(self.optimizers().param_groups[0]["lr"])})
                self._window = []
        return loss
