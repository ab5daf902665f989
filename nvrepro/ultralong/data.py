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
* :class:`TextRetrievalDataModule`: the base that is both a language model and a retriever (issue
  19): every batch holds an exact number of plain-text rows and of mixture rows (no random batch
  composition, so no step is text-only by chance), with a per-row ``is_text`` flag so that
  :class:`~nvrepro.ultralong.module.TextRetrievalLMModule` can weigh the two sources' mean losses
  (:class:`InterleavedBatches`); a ``curriculum`` of stages changes row length, batch size and
  share on the way (short rows first grow the copy heads cheaply).
* :class:`InstructionRows` / :class:`ShortInstructionDataModule`: a toy instruction format on
  short text only (UltraLong Sec. 3.2 tunes on < 8K-token data only), loss on the response.

Batches: ``{"input_ids", "labels"}`` ``(B, seq_len)`` (plus ``doc_ids`` with ``cross_doc_mask``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.datamodules import _pos_int
from nvrepro.ultralong.packing import LongContextDataModule, pack_with_separator
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.ultralong.mixture import KINDS, MixtureRows

IGNORE = -100
INSTRUCTION_TEMPLATE = "### Instruction:\nRepeat the text below.\n{text}\n### Response:\n"


def _retrieval_kinds(kinds: list[str] | None, min_len: int, supervise: str) -> list[str]:
    """The mixture settings shared by the data modules, validated: returns the kinds (default: all)."""
    _pos_int(min_len, "retrieval_min_len")
    kinds = list(kinds or KINDS)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConfigError(f"retrieval_kinds: unknown {bad} (allowed: {', '.join(KINDS)})")
    if supervise not in ("all", "answer"):
        raise ConfigError(f"retrieval_supervise: must be 'all' or 'answer', got {supervise!r}")
    return kinds


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
        if retrieval_max_len is not None:
            _pos_int(retrieval_max_len, "retrieval_max_len")
        kinds = _retrieval_kinds(retrieval_kinds, retrieval_min_len, retrieval_supervise)
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


STAGE_KEYS = ("steps", "seq_len", "batch_size", "retrieval_share")


def validate_curriculum(curriculum, seq_len: int) -> list[dict]:
    """``curriculum`` as a list of stage dicts with exactly :data:`STAGE_KEYS`; a ConfigError names
    the bad stage and field. The last stage must train at ``seq_len`` (the trained context ``L``)."""
    if not curriculum:
        raise ConfigError("curriculum: needs at least one stage")
    stages = []
    for n, stage in enumerate(curriculum):
        where = f"curriculum[{n}]"
        if not isinstance(stage, dict) or set(stage) != set(STAGE_KEYS):
            raise ConfigError(f"{where}: needs exactly the keys {', '.join(STAGE_KEYS)}, got {stage!r}")
        for key in ("steps", "seq_len", "batch_size"):
            _pos_int(stage[key], f"{where}.{key}")
        share = stage["retrieval_share"]
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{where}.retrieval_share: must be in [0, 1], got {share!r}")
        if stage["seq_len"] > seq_len:
            raise ConfigError(f"{where}.seq_len: {stage['seq_len']} exceeds seq_len={seq_len}")
        stages.append(dict(stage))
    if stages[-1]["seq_len"] != seq_len:
        raise ConfigError(f"curriculum[{len(stages) - 1}].seq_len: the last stage trains at seq_len={seq_len}, "
                          f"got {stages[-1]['seq_len']}")
    return stages


class InterleavedBatches(Dataset):
    """Whole training batches, one per optimizer step: item ``i`` is step ``i``'s batch.

    Step ``i`` belongs to the curriculum stage that covers it (stages run in order, ``steps`` each).
    Its batch has ``B = batch_size`` rows of ``seq_len`` tokens: first ``B - round(retrieval_share * B)``
    plain-text rows (packed train text with the separator, drawn uniformly with the seed
    ``(seed, i)``), then the mixture rows ``i * B, ..., i * B + k - 1`` of the stage's
    :class:`~nvrepro.ultralong.mixture.MixtureRows` (documents up to the stage's length). Returns
    ``{"input_ids", "labels"}`` ``(B, seq_len)`` int64 and ``"is_text"`` ``(B,)`` bool. Load with
    ``DataLoader(batch_size=None)``: the items are batches already.
    """

    def __init__(self, stages: list[dict], text_ids: list[list[int]], mixture_rows, sep_id: int | None,
                 seed: int = 0):
        self.stages, self.seed = stages, seed
        self.starts = np.cumsum([0] + [s["steps"] for s in stages])
        self.text = {}
        for s in stages:
            if s["seq_len"] not in self.text:
                packed = pack_with_separator(text_ids, s["seq_len"], sep_id)
                if len(packed["input_ids"]) == 0 and s["retrieval_share"] < 1.0:
                    raise ConfigError(f"seq_len: the train text has fewer than {s['seq_len'] + 1} tokens")
                self.text[s["seq_len"]] = packed
        self.mixture = {s["seq_len"]: mixture_rows(s["seq_len"]) for s in stages}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def stage(self, i: int) -> dict:
        """The curriculum stage of step ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"step {i} outside the curriculum's {len(self)} steps")
        return self.stages[int(np.searchsorted(self.starts, i, side="right")) - 1]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        stage = self.stage(i)
        bsz, seq = stage["batch_size"], stage["seq_len"]
        n_mix = int(round(stage["retrieval_share"] * bsz))
        n_text = bsz - n_mix
        text = self.text[seq]
        idx = np.random.default_rng((self.seed, i)).integers(len(text["input_ids"]), size=n_text)
        xs, ys = [torch.from_numpy(text["input_ids"][idx])], [torch.from_numpy(text["labels"][idx])]
        rows = [self.mixture[seq][i * bsz + j] for j in range(n_mix)]
        if rows:
            xs.append(torch.stack([r["input_ids"] for r in rows]))
            ys.append(torch.stack([r["labels"] for r in rows]))
        return {"input_ids": torch.cat(xs), "labels": torch.cat(ys),
                "is_text": torch.tensor([True] * n_text + [False] * n_mix)}


class _OwnTrainRows(LongContextDataModule):
    """A :class:`LongContextDataModule` whose train split is ``train_rows(ids)`` of the train
    documents' token ids instead of the packed text (val stays the parent's packed text)."""

    def train_rows(self, ids: list[list[int]]) -> Dataset:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        super().setup(stage)
        train_docs, _ = self._split_docs()
        self.train_dataset = self.train_rows([self.tokenizer.encode(d) for d in train_docs])


class TextRetrievalDataModule(_OwnTrainRows):
    """Train batches that interleave plain text and retrieval documents in fixed shares
    (:class:`InterleavedBatches`); val: the validation text packed at ``seq_len`` as in the parent.

    ``curriculum``: stages ``{steps, seq_len, batch_size, retrieval_share}`` run in order, the last at
    ``seq_len``; their steps should add up to the trainer's ``max_steps`` (Lightning starts the
    curriculum over if it runs longer). ``batch_size`` is the validation batch size. Mixture
    documents are as in :class:`RetrievalMixDataModule` (``retrieval_kinds``,
    ``retrieval_min_len``, up to each stage's length, ``retrieval_supervise``), seeded per stage
    length so that stages never share rows.
    """

    def __init__(self, *args, curriculum: list[dict] | None = None, retrieval_kinds: list[str] | None = None,
                 retrieval_min_len: int = 24, retrieval_supervise: str = "answer", **kwargs):
        kwargs.setdefault("upsample", False)
        super().__init__(*args, **kwargs)
        self.curriculum = validate_curriculum(curriculum, self.seq_len)
        kinds = _retrieval_kinds(retrieval_kinds, retrieval_min_len, retrieval_supervise)
        self.retrieval_kinds, self.retrieval_min_len = kinds, retrieval_min_len
        self.retrieval_supervise = retrieval_supervise

    @property
    def total_steps(self) -> int:
        """The curriculum's optimizer steps."""
        return sum(s["steps"] for s in self.curriculum)

    def train_rows(self, ids: list[list[int]]) -> Dataset:
        def mixture_rows(seq_len: int) -> MixtureRows:
            # rows are built on demand from (seed, row); the count only bounds the index
            return MixtureRows(10**9, seq_len, ids, min(self.retrieval_min_len, seq_len), seq_len,
                               self.retrieval_kinds, self.sep_id, self.tokenizer.pad_id,
                               seed=self.seed + 17 * seq_len, supervise=self.retrieval_supervise,
                               tokenizer=self.tokenizer)

        return InterleavedBatches(self.curriculum, ids, mixture_rows, self.sep_id, seed=self.seed)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return DataLoader(self.train_dataset, batch_size=None, shuffle=False, num_workers=self.num_workers)


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


class ShortInstructionDataModule(_OwnTrainRows):
    """Short-only instruction tuning (UltraLong Sec. 3.2): ``num_rows`` :class:`InstructionRows`
    from the train documents; val is the text loss at ``seq_len`` as in the parent."""

    def __init__(self, *args, num_rows: int = 4096, **kwargs):
        kwargs.setdefault("upsample", False)
        super().__init__(*args, **kwargs)
        _pos_int(num_rows, "num_rows")
        self.num_rows = num_rows

    def train_rows(self, ids: list[list[int]]) -> Dataset:
        return InstructionRows(ids, self.num_rows, self.seq_len, seed=self.seed, tokenizer=self.tokenizer)


__all__ = ["RetrievalMixDataModule", "TextRetrievalDataModule", "InterleavedBatches", "validate_curriculum", "InstructionRows", "ShortInstructionDataModule"]
