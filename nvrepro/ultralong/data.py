"""Toy pretraining and instruction data for the UltraLong notebooks: text mixed with retrieval-shaped documents.

A byte-level model pretrained on bible chapters alone never learns to retrieve a passkey, so the
needle-in-a-haystack heatmaps would be all zeros whatever the RoPE scaling (and so they were, in a
first version that mixed in short copies of the evaluation probes themselves, answers only
supervised). Real pretraining mixes hold plenty of "look something up earlier in the context"
text; here a fraction of the training rows is made of the *training-only* documents of
:mod:`nvrepro.ultralong.mixture` (needles in bible-text haystacks, copy lists), whose templates,
keys and fillers are disjoint from the evaluation probes of :mod:`nvrepro.ultralong.tasks`.

* :class:`RetrievalMixDataModule`: :class:`~nvrepro.ultralong.packing.LongContextDataModule`
  (length-upsampled text packed with a separator) whose train split gets ``retrieval_fraction``
  of its rows from :class:`~nvrepro.ultralong.mixture.MixtureRows` (``1.0``: mixture rows only, the
  first stage of the toy pretraining curriculum). Document lengths run from ``retrieval_min_len``
  to ``retrieval_max_len`` (default: ``seq_len``, so the continued pretraining at ``s L`` also
  sees long needle documents, as the paper's long documents hold long-range dependencies).
* :class:`InstructionRows` / :class:`ShortInstructionDataModule`: a toy instruction format on
  short text only (UltraLong Sec. 3.2 tunes on < 8K-token data only), loss on the response.

Batches: ``{"input_ids", "labels"}`` ``(B, seq_len)`` (plus ``doc_ids`` with ``cross_doc_mask``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.datamodules import _pos_int
from nvrepro.ultralong.packing import LongContextDataModule
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.ultralong.mixture import KINDS, MixtureRows

IGNORE = -100
INSTRUCTION_TEMPLATE = "### Instruction:\nRepeat the text below.\n{text}\n### Response:\n"


class RetrievalMixDataModule(LongContextDataModule):
    """:class:`LongContextDataModule` whose train rows are ``retrieval_fraction`` mixture rows.

    With ``n`` text rows, ``round(n * f / (1 - f))`` mixture rows are added (so ``f`` of all rows;
    ``f = 1``: ``n`` mixture rows and no text). Mixture documents (kinds ``retrieval_kinds``, a
    kind listed twice is drawn twice as often) use the *train* documents as haystacks and the same
    separator as the text. Val: text only, so ``val/loss`` is the plain-text loss.
    """

    def __init__(self, *args, retrieval_fraction: float = 0.5, retrieval_kinds: list[str] | None = None,
                 retrieval_min_len: int = 32, retrieval_max_len: int | None = None,
                 retrieval_supervise: str = "all", **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= retrieval_fraction <= 1.0:
            raise ConfigError(f"retrieval_fraction: must be in [0, 1], got {retrieval_fraction!r}")
        _pos_int(retrieval_min_len, "retrieval_min_len")
        if retrieval_max_len is not None:
            _pos_int(retrieval_max_len, "retrieval_max_len")
        kinds = list(retrieval_kinds or KINDS)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ConfigError(f"retrieval_kinds: unknown {bad} (allowed: {', '.join(KINDS)})")
        if retrieval_supervise not in ("all", "answer"):
            raise ConfigError(f"retrieval_supervise: must be 'all' or 'answer', got {retrieval_supervise!r}")
        self.retrieval_fraction, self.retrieval_kinds = retrieval_fraction, kinds
        self.retrieval_min_len, self.retrieval_max_len = retrieval_min_len, retrieval_max_len
        self.retrieval_supervise = retrieval_supervise

    def mixture_rows(self, num_rows: int) -> MixtureRows:
        """``num_rows`` mixture rows over this module's train documents (seeded by ``seed``)."""
        train_docs, _ = self._split_docs()
        hay = [self.tokenizer.encode(d) for d in train_docs]
        return MixtureRows(num_rows, self.seq_len, hay, self.retrieval_min_len, self.retrieval_max_len,
                           self.retrieval_kinds, self.sep_id, self.tokenizer.pad_id, self.cross_doc_mask,
                           seed=self.seed, supervise=self.retrieval_supervise, tokenizer=self.tokenizer)

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        super().setup(stage)
        f, n = self.retrieval_fraction, len(self.train_dataset)
        if f == 1.0:
            self.train_dataset = self.mixture_rows(n)
        elif f > 0.0 and round(n * f / (1 - f)):
            self.train_dataset = ConcatDataset([self.train_dataset, self.mixture_rows(round(n * f / (1 - f)))])


class InstructionRows(Dataset):
    """Short instruction examples: ``INSTRUCTION_TEMPLATE`` around a span of one document, then the
    span again as the response and ``eos``; loss on the response only; padded to ``seq_len``."""

    def __init__(self, docs: list[list[int]], num_rows: int, seq_len: int, min_span: int = 32,
                 max_span: int = 96, seed: int = 0, tokenizer=None):
        self.tok = tokenizer or ByteTokenizer()
        head, tail = INSTRUCTION_TEMPLATE.split("{text}")
        self.head, self.tail = self.tok.encode(head), self.tok.encode(tail)
        if len(self.head) + len(self.tail) + 2 * max_span + 1 > seq_len + 1:
            raise ConfigError(f"max_span: {max_span} too long for seq_len={seq_len}")
        self.docs = [d for d in docs if len(d) >= max_span]
        if not self.docs:
            raise ConfigError(f"docs: none has at least max_span={max_span} tokens")
        self.num_rows, self.seq_len, self.min_span, self.max_span, self.seed = \
            num_rows, seq_len, min_span, max_span, seed

    def __len__(self) -> int:
        return self.num_rows

    def example(self, i: int) -> tuple[list[int], list[int]]:
        """``(prompt_ids, response_ids)`` of row ``i`` (the response without the closing eos)."""
        rng = np.random.default_rng((self.seed, i))
        doc = self.docs[int(rng.integers(len(self.docs)))]
        n = int(rng.integers(self.min_span, self.max_span + 1))
        a = int(rng.integers(len(doc) - n + 1))
        span = list(doc[a:a + n])
        return self.head + span + self.tail, span

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        prompt, response = self.example(i)
        stream = prompt + response + [self.tok.eos_id]
        pad = self.seq_len + 1 - len(stream)
        t = torch.tensor(stream + [self.tok.pad_id] * pad, dtype=torch.long)
        labels = t[1:].clone()
        labels[: len(prompt) - 1] = IGNORE  # targets before the response
        labels[len(stream) - 1:] = IGNORE
        return {"input_ids": t[:-1], "labels": labels}


class ShortInstructionDataModule(LongContextDataModule):
    """Short-only instruction tuning (UltraLong Sec. 3.2): ``num_rows`` :class:`InstructionRows`
    from the train documents; val is the text loss at ``seq_len`` as in the parent."""

    def __init__(self, *args, num_rows: int = 4096, **kwargs):
        kwargs.setdefault("upsample", False)
        super().__init__(*args, **kwargs)
        _pos_int(num_rows, "num_rows")
        self.num_rows = num_rows

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        super().setup(stage)
        train_docs, _ = self._split_docs()
        ids = [self.tokenizer.encode(d) for d in train_docs]
        self.train_dataset = InstructionRows(ids, self.num_rows, self.seq_len, seed=self.seed,
                                             tokenizer=self.tokenizer)


__all__ = ["RetrievalMixDataModule", "InstructionRows", "ShortInstructionDataModule"]
