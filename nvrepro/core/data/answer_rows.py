"""Prompt/answer rows for supervised fine-tuning: token ids with labels on the answer only, and the batch
padding that keeps them causal.

A row is ``prompt + answer`` (the answer usually ending in ``<eos>``); the labels are pre-shifted (``labels[t]``
is the target at position ``t``, i.e. the token at ``t + 1``) and ``-100`` on every position whose target is a
prompt token, so the loss is the answer's alone. Rows are padded on the right per batch (labels ``-100``
there): in a causal model padding after a position cannot change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from nvrepro.core.data.synthetic import IGNORE_INDEX
from nvrepro.core.tooling.validation import ConfigError


@dataclass(frozen=True)
class EncodedRow:
    """One example: ``input_ids (l,)`` and ``labels (l,)`` (pre-shifted: ``labels[t]`` is the token at ``t + 1``
    on answer positions, ``-100`` elsewhere), and ``prompt_len``."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int


def answer_only_row(prompt: Sequence[int], answer: Sequence[int], max_len: int, what: str = "a row") -> EncodedRow:
    """``prompt + answer`` with labels on the answer's tokens only (``prompt`` needs at least one token: the
    first answer token is predicted from the last prompt token). ``ConfigError`` naming ``max_len`` when the
    row is longer; ``what`` says which row in that message."""
    if len(prompt) < 1:
        raise ConfigError(f"prompt: {what} needs at least one prompt token (e.g. <bos>)")
    ids = list(prompt) + list(answer)
    if len(ids) > max_len:
        raise ConfigError(f"max_len: {what} needs {len(ids)} tokens, more than max_len={max_len}")
    labels = [IGNORE_INDEX] * (len(prompt) - 1) + list(answer) + [IGNORE_INDEX]
    return EncodedRow(ids, labels, len(prompt))


class EncodedRows(Dataset):
    """Encoded rows, each a dict of ``input_ids`` and ``labels`` tensors of its own length (:func:`pad_batch`
    pads); ``tags`` is one label per row (e.g. its task) for the caller's bookkeeping."""

    def __init__(self, rows: Sequence[EncodedRow], tags: Sequence[str] | None = None):
        self.rows = list(rows)
        self.tags = list(tags) if tags is not None else [""] * len(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = self.rows[i]
        return {"input_ids": torch.tensor(row.input_ids), "labels": torch.tensor(row.labels)}


def pad_batch(items: Sequence[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack rows of different lengths, padding on the right: ``input_ids`` with ``pad_id``, ``labels`` with
    ``-100``; both ``(b, longest)``."""
    longest = max(len(it["input_ids"]) for it in items)
    ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    labels = torch.full((len(items), longest), IGNORE_INDEX, dtype=torch.long)
    for b, it in enumerate(items):
        ids[b, :len(it["input_ids"])] = it["input_ids"]
        labels[b, :len(it["labels"])] = it["labels"]
    return {"input_ids": ids, "labels": labels}


def rows_loader(ds: Dataset, batch_size: int, shuffle: bool, seed: int, pad_id: int,
                num_workers: int = 0) -> DataLoader:
    """A loader of encoded rows padded per batch (:func:`pad_batch`); shuffled from ``seed`` when ``shuffle``."""
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen, num_workers=num_workers,
                      collate_fn=partial(pad_batch, pad_id=pad_id))
