"""The toy continued pretraining that extends the text-and-retrieval base (UltraLong Sec. 3.1).

The extension arms of notebooks 02 and 03 (``configs/ultralong/toy_extend_*.yaml``) start from the
base of ``configs/ultralong/toy_base.yaml`` and train on the same two sources, now at ``s L``:

* :class:`ExtensionDataModule`: :class:`~nvrepro.ultralong.data.TextRetrievalDataModule` whose
  plain-text rows are packed from **length-upsampled** train chapters (``upsample``, UltraLong's
  recipe; :func:`~nvrepro.ultralong.packing.sample_documents`: chapters shorter than ``short_len``
  tokens are drawn at half weight, those of ``long_len`` or more at twice the weight). Only the
  text rows change: the retrieval documents and their haystacks are the same with and without
  upsampling, so the length-upsampling ablation changes nothing else;
* :class:`ExtensionLMModule`: the base's per-source loss
  (:class:`~nvrepro.ultralong.module.TextRetrievalLMModule`), starting from the weights of
  ``init_from`` (the base checkpoint when run with ``nvrepro fit``; the notebooks pass the cached
  base's weights instead).

Kept apart from :mod:`~nvrepro.ultralong.data` and :mod:`~nvrepro.ultralong.module` on purpose: those
modules train the base, and their code is part of the base's weight-cache key
(:data:`nvrepro.ultralong.base.TRAINING_CODE`), so the extension recipe can change without
retraining the base.
"""

from __future__ import annotations

from torch.utils.data import Dataset

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.training.module import OptimConfig
from nvrepro.ultralong.data import TextRetrievalDataModule
from nvrepro.ultralong.module import TextRetrievalLMModule
from nvrepro.ultralong.packing import pack_with_separator, sample_documents


class ExtensionDataModule(TextRetrievalDataModule):
    """:class:`~nvrepro.ultralong.data.TextRetrievalDataModule` with length-upsampled text rows.

    ``upsample`` (default ``True``), ``short_len``, ``long_len``, ``short_weight``, ``long_weight``
    and ``num_tokens`` are :class:`~nvrepro.ultralong.packing.LongContextDataModule`'s: the train
    chapters are resampled by length within their token budget, then packed with the separator
    into the text rows of every curriculum stage. Batches as the parent's: ``{"input_ids",
    "labels"}`` ``(B, seq_len)`` and ``"is_text"`` ``(B,)``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("upsample", True)
        super().__init__(*args, **kwargs)

    def upsampled(self, ids: list[list[int]]) -> list[list[int]]:
        """``ids`` (train chapters as token ids) resampled by length (seeded by ``seed``)."""
        budget = self.num_tokens or sum(len(d) for d in ids)
        picks = sample_documents({self.corpus: ids}, budget, seed=self.seed, **self.upsample_args)
        return [ids[i] for _, i in picks]

    def train_rows(self, ids: list[list[int]]) -> Dataset:
        batches = super().train_rows(ids)  # retrieval documents over the original chapters
        if self.upsample:
            text = self.upsampled(ids)
            batches.text = {n: pack_with_separator(text, n, self.sep_id) for n in batches.text}
        return batches


class ExtensionLMModule(TextRetrievalLMModule):
    """:class:`~nvrepro.ultralong.module.TextRetrievalLMModule` whose LM starts from ``init_from``
    (a checkpoint path; ``None``: the weights it is given, as the notebooks load the cached base).
    ``init_from`` is not a saved hyperparameter, as in
    :class:`~nvrepro.core.training.module.InitializedLMModule`."""

    def __init__(self, model: ModelConfig | None = None, optim: OptimConfig | None = None,
                 text_weight: float = 0.5, record_every: int = 0, init_from: str | None = None):
        super().__init__(model=model, optim=optim, text_weight=text_weight, record_every=record_every)
        if init_from is not None:
            from nvrepro.core.training.weights import init_from as load_weights

            load_weights(self.model, init_from)


__all__ = ["ExtensionDataModule", "ExtensionLMModule"]
