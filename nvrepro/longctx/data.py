"""Toy pretraining and instruction data for the UltraLong notebooks: text mixed with retrieval probes.

A byte-level model pretrained on bible chapters alone never learns to retrieve a passkey, so the
needle-in-a-haystack heatmaps would be all zeros whatever the RoPE scaling. Real pretraining
mixes hold plenty of "look something up earlier in the context" text; here a fraction of the
training rows is made of the synthetic probes of :mod:`nvrepro.longctx.tasks` instead.

* :class:`RetrievalRows`: row ``i`` is built from the seed ``(seed, i)`` on demand: probes of
  random task and random length in ``[min_len, max_len]`` placed back to back (each followed by
  the separator, if any) while they fit in ``seq_len + 1`` tokens; the rest is ``pad_id`` with
  label -100. By default only the answers are targets (``supervise="answer"``, as the synthetic
  tasks of :mod:`nvrepro.core.data.synthetic` do); ``"all"`` trains on every probe token. At the
  toy budget (800 steps of 4 x 384 tokens) neither setting taught the 4-layer byte model to copy
  a 5-digit passkey exactly (measured while building notebook 02): induction-style retrieval
  needs far more examples than a shared laptop CPU affords in minutes.
* :class:`RetrievalMixDataModule`: :class:`~nvrepro.core.data.longctx.LongContextDataModule`
  (length-upsampled text packed with a separator) whose train split gets
  ``retrieval_fraction`` of its rows from :class:`RetrievalRows`. ``max_len`` stays at the
  *short* pretraining length in the extension runs, so a long-context probe is never trained
  on: long retrieval has to come from the RoPE scaling plus the long text.
* :class:`InstructionRows` / :class:`ShortInstructionDataModule`: a toy instruction format on
  short text only (UltraLong Sec. 3.2 tunes on < 8K-token data only), loss on the response.

Batches: ``{"input_ids", "labels"}`` ``(B, seq_len)`` (plus ``doc_ids`` with ``cross_doc_mask``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from nvrepro.core.config import ConfigError
from nvrepro.core.data.datamodules import _pos_int
from nvrepro.core.data.longctx import LongContextDataModule
from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.longctx.tasks import TASKS, make_examples

IGNORE = -100
INSTRUCTION_TEMPLATE = "### Instruction:\nRepeat the text below.\n{text}\n### Response:\n"


@lru_cache(maxsize=None)
def min_task_length(task: str, step: int = 8) -> int:
    """The shortest length (a multiple of ``step``) at which the byte tokenizer fits eight ``task``
    probes (a few random draws, e.g. long made-up words, can still need more: those are redrawn)."""
    for length in range(step, 1 << 16, step):
        try:
            make_examples(task, length, 8)
            return length
        except ConfigError:
            continue
    raise ConfigError(f"task: {task!r} does not fit in any length")


def _check_tasks(tasks) -> tuple[str, ...]:
    tasks = tuple(tasks)
    bad = [t for t in tasks if t not in TASKS]
    if not tasks or bad:
        raise ConfigError(f"retrieval_tasks: unknown {bad} (allowed: {', '.join(TASKS)}); need at least one")
    return tasks


class RetrievalRows(Dataset):
    """``num_rows`` rows of back-to-back retrieval probes (module docstring); deterministic per index."""

    def __init__(self, num_rows: int, seq_len: int, tasks=TASKS, min_len: int = 0,
                 max_len: int | None = None, sep_id: int | None = None, pad_id: int = 258,
                 with_doc_ids: bool = False, seed: int = 0, supervise: str = "answer"):
        self.tasks = _check_tasks(tasks)
        if supervise not in ("answer", "all"):
            raise ConfigError(f"retrieval_supervise: must be 'answer' or 'all', got {supervise!r}")
        self.supervise = supervise
        self.max_len = seq_len if max_len is None else max_len
        self.lo = {t: max(min_len, min_task_length(t)) for t in self.tasks}
        if any(lo > self.max_len for lo in self.lo.values()) or self.max_len > seq_len:
            raise ConfigError(f"retrieval_max_len: {self.max_len} must be <= seq_len={seq_len} and >= the "
                              f"shortest probe of every task {self.lo}")
        self.num_rows, self.seq_len, self.sep_id, self.pad_id = num_rows, seq_len, sep_id, pad_id
        self.with_doc_ids, self.seed = with_doc_ids, seed

    def __len__(self) -> int:
        return self.num_rows

    def row(self, i: int) -> tuple[list[int], list[bool], list[int]]:
        """``(tokens, supervised, doc)`` of ``seq_len + 1`` entries for row ``i``; ``supervised``
        marks the answers (``supervise="answer"``) or every probe token (``"all"``)."""
        rng = np.random.default_rng((self.seed, i))
        extra = 0 if self.sep_id is None else 1
        toks, owner, sup, misses = [], [], [], 0
        while misses < 16:
            task = self.tasks[int(rng.integers(len(self.tasks)))]
            length = int(rng.integers(self.lo[task], self.max_len + 1))
            if len(toks) + length + extra > self.seq_len + 1:
                break
            try:
                ex = make_examples(task, length, 1, seed=int(rng.integers(2**31)))[0]
            except ConfigError:  # this draw does not fit at this length: draw again
                misses += 1
                continue
            doc = ex.prompt_ids + ex.answer_ids + ([] if self.sep_id is None else [self.sep_id])
            owner += [owner[-1] + 1 if owner else 0] * len(doc)
            toks += doc
            n_ans = len(ex.answer_ids)
            sup += [True] * len(doc) if self.supervise == "all" else \
                [False] * len(ex.prompt_ids) + [True] * n_ans + [False] * (len(doc) - len(ex.prompt_ids) - n_ans)
        n = len(toks)
        pad = self.seq_len + 1 - n
        return (toks + [self.pad_id] * pad, sup + [False] * pad, owner + [owner[-1] if owner else 0] * pad)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        toks, sup, doc = self.row(i)
        t = torch.tensor(toks, dtype=torch.long)
        labels = t[1:].clone()
        labels[~torch.tensor(sup[1:])] = IGNORE  # labels[t] is the target token t + 1
        item = {"input_ids": t[:-1], "labels": labels}
        if self.with_doc_ids:
            item["doc_ids"] = torch.tensor(doc[:-1], dtype=torch.long)
        return item


class RetrievalMixDataModule(LongContextDataModule):
    """:class:`LongContextDataModule` whose train rows are ``retrieval_fraction`` retrieval probes.

    With ``n`` text rows, ``round(n * f / (1 - f))`` probe rows are added (so ``f`` of all rows).
    Probes use ``retrieval_tasks`` at lengths in ``[retrieval_min_len, retrieval_max_len]``
    (default: up to ``seq_len``), joined with the same separator as the text. Val: text only, so
    ``val/loss`` is the plain-text loss.
    """

    def __init__(self, *args, retrieval_fraction: float = 0.5, retrieval_tasks: list[str] | None = None,
                 retrieval_min_len: int = 0, retrieval_max_len: int | None = None,
                 retrieval_supervise: str = "answer", **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 <= retrieval_fraction < 1.0:
            raise ConfigError(f"retrieval_fraction: must be in [0, 1), got {retrieval_fraction!r}")
        if retrieval_max_len is not None:
            _pos_int(retrieval_max_len, "retrieval_max_len")
        self.retrieval_fraction = retrieval_fraction
        self.retrieval_tasks = _check_tasks(retrieval_tasks or TASKS)
        self.retrieval_min_len, self.retrieval_max_len = retrieval_min_len, retrieval_max_len
        self.retrieval_supervise = retrieval_supervise

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        super().setup(stage)
        f = self.retrieval_fraction
        num = round(len(self.train_dataset) * f / (1 - f))
        if num:
            probes = RetrievalRows(num, self.seq_len, self.retrieval_tasks, self.retrieval_min_len,
                                   self.retrieval_max_len, self.sep_id, self.tokenizer.pad_id,
                                   self.cross_doc_mask, seed=self.seed, supervise=self.retrieval_supervise)
            self.train_dataset = ConcatDataset([self.train_dataset, probes])


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


__all__ = ["RetrievalRows", "RetrievalMixDataModule", "InstructionRows", "ShortInstructionDataModule",
           "min_task_length"]
