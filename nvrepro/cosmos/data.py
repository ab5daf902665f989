"""Clip question answering for the Cosmos modules: examples, batches and the datamodules.

:class:`ClipQA` is a map-style dataset over the tasks of :mod:`nvrepro.cosmos.tasks`. Item ``i`` of a
split depends only on ``(seed, split, i)``. One example is ``<bos>``, for each frame its tag
(``image k:``), its ``T`` image placeholders and a newline, the question with its options, ``<sep>``, then the target: the response
(``<think>..</think><answer>..</answer>``) and ``<eos>``; only the target is supervised. With
``stage="caption"`` (the toy's first stage, :mod:`nvrepro.cosmos.training`) an item is one frame and
its caption instead. With ``records`` (the datamodule's ``source="jsonl"``: the full-scale switch), items
come from local JSONL records ``{"frames": [image paths], "question", "options": [texts], "answer": the
right option's text, "reasoning", "task"}`` instead, frames resized to ``frame_size``, options shuffled
per item as for the generated tasks, and a pretrained tokenizer may replace the byte tokenizer.

Batches (:func:`collate`) hold ``input_ids``, ``labels`` ``(b, l)`` (right-padded; padding after the
text never reaches earlier positions, so Mamba-2 layers are safe), ``pixel_values (b, n, 3, S, S)``
(ImageNet-normalised), ``image_mask (b, n)`` and ``prompt_lengths (b,)``; :func:`collate_prompts`
keeps only the prompts (what GRPO samples from) and the questions.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from functools import partial
from typing import Sequence

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from nvrepro.core.data.records import read_jsonl
from nvrepro.core.data.tokenizers import ByteTokenizer, PretrainedTokenizer
from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.core.vision.tiling import normalize
from nvrepro.cosmos.tasks import TASKS, Question, multiple_choice, sample

SPLITS = ("train", "val", "test")
STAGES = ("caption", "sft")
SOURCES = ("generated", "jsonl")
RECORD_FIELDS = ("frames", "question", "options", "answer", "reasoning")


@dataclass
class Example:
    """Token ids, pre-shifted labels (``-100`` where unsupervised), the prompt's length (everything up to
    and including ``<sep>``), and the :class:`~nvrepro.cosmos.tasks.Question` (``None`` for a caption)."""

    input_ids: list[int]
    labels: list[int]
    prompt_length: int
    question: Question | None


def example_rng(seed: int, split: str, index: int) -> random.Random:
    """The generator of item ``index`` of ``split``: independent of every other item."""
    return random.Random(zlib.crc32(f"cosmos/{seed}/{split}/{index}".encode()))


def build_example(tokenizer, frames: int, tokens_per_frame: int, image_token_id: int, prompt: str,
                  target: str, question: Question | None) -> Example:
    """The :class:`Example` of ``frames`` images, a ``prompt`` and its ``target`` text."""
    newline = tokenizer.encode("\n")
    ids = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    for k in range(frames):
        # a text tag per frame (as NVLM's tile tags), so "image 3" in a question or a trace names a frame
        ids += tokenizer.encode(f"image {k + 1}:") + [image_token_id] * tokens_per_frame + newline
    # a pretrained tokenizer without <sep> ends the question with a newline
    ids += tokenizer.encode(prompt) + ([tokenizer.sep_id] if tokenizer.sep_id is not None else newline)
    target_ids = tokenizer.encode(target) + [tokenizer.eos_id]
    labels = [-100] * (len(ids) - 1) + target_ids + [-100]
    return Example(ids + target_ids, labels, len(ids), question)


class ClipQA(Dataset):
    """``num`` items of ``split`` drawn from ``tasks`` in turn (item ``i`` is task ``i mod len(tasks)``,
    so every task has its share). Each item is ``(Example, frames uint8 (n, 3, S, S))``."""

    def __init__(self, num: int, split: str = "train", *, seed: int = 0, tasks: Sequence[str] | None = None,
                 stage: str = "sft", frame_size: int = 32, tokens_per_frame: int = 16, image_token_id: int = 260,
                 records: Sequence[dict] | None = None, tokenizer=None):
        require(split in SPLITS, "split", f"must be one of {SPLITS}, got {split!r}")
        require(stage in STAGES, "stage", f"must be one of {STAGES}, got {stage!r}")
        self.tasks = tuple(tasks or TASKS)
        for name in self.tasks:
            require(name in TASKS, "tasks", f"each must be one of {sorted(TASKS)}, got {name!r}")
        for name, value in (("num", num), ("frame_size", frame_size), ("tokens_per_frame", tokens_per_frame)):
            require_positive_int(value, name)
        require(records is None or stage == "sft", "stage", "JSONL records are questions: use stage='sft'")
        if records is not None:
            num = len(records)
        self.num, self.split, self.seed, self.stage, self.records = num, split, seed, stage, records
        self.frame_size, self.tokens_per_frame, self.image_token_id = frame_size, tokens_per_frame, image_token_id
        self.tokenizer = tokenizer or ByteTokenizer()
        self._items: dict[int, tuple[Example, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.num

    def task_of(self, index: int) -> str:
        if self.records is not None:
            return self.records[index].get("task", "jsonl")
        return self.tasks[index % len(self.tasks)]

    def __getitem__(self, index: int) -> tuple[Example, torch.Tensor]:
        if not 0 <= index < self.num:
            raise IndexError(f"index {index} out of range for {self.num} items")
        if index not in self._items:
            self._items[index] = self._build(index)
        return self._items[index]

    def _build(self, index: int) -> tuple[Example, torch.Tensor]:
        rng = example_rng(self.seed, self.split, index)
        if self.records is not None:
            return self._from_record(self.records[index], rng)
        clip, question = sample(self.task_of(index), rng, self.frame_size)
        frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).contiguous()
        if self.stage == "caption":
            k = rng.randrange(len(frames))
            example = build_example(self.tokenizer, 1, self.tokens_per_frame, self.image_token_id,
                                    "Describe the image.", clip.captions[k], None)
            return example, frames[k:k + 1]
        example = build_example(self.tokenizer, len(frames), self.tokens_per_frame, self.image_token_id,
                                question.prompt, question.response, question)
        return example, frames

    def _from_record(self, record: dict, rng: random.Random) -> tuple[Example, torch.Tensor]:
        question = multiple_choice(record.get("task", "jsonl"), record["question"], list(record["options"]),
                                   record["answer"], record["reasoning"], rng)
        size = (self.frame_size, self.frame_size)
        frames = torch.stack([torch.from_numpy(np.asarray(Image.open(path).convert("RGB").resize(size))).permute(2, 0, 1)
                              for path in record["frames"]])
        example = build_example(self.tokenizer, len(frames), self.tokens_per_frame, self.image_token_id,
                                question.prompt, question.response, question)
        return example, frames


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _pixels(items) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(len(px) for _, px in items)
    size = items[0][1].shape[-1]
    pixels = torch.zeros(len(items), n, 3, size, size, dtype=torch.uint8)
    mask = torch.zeros(len(items), n, dtype=torch.bool)
    for i, (_, px) in enumerate(items):
        pixels[i, :len(px)] = px
        mask[i, :len(px)] = True
    return normalize(pixels), mask


def collate(items: Sequence[tuple[Example, torch.Tensor]], pad_id: int = ByteTokenizer().pad_id) -> dict:
    """Right-pad ``(Example, frames)`` items into one training batch (module docstring)."""
    pixel_values, image_mask = _pixels(items)
    return {"input_ids": _pad([ex.input_ids for ex, _ in items], pad_id),
            "labels": _pad([ex.labels for ex, _ in items], -100),
            "pixel_values": pixel_values, "image_mask": image_mask,
            "prompt_lengths": torch.tensor([ex.prompt_length for ex, _ in items])}


def collate_prompts(items: Sequence[tuple[Example, torch.Tensor]]) -> dict:
    """The prompts of ``items`` (token-id lists of possibly different lengths), their frames and their
    :class:`~nvrepro.cosmos.tasks.Question` s: GRPO's input (it samples the responses)."""
    pixel_values, image_mask = _pixels(items)
    return {"prompts": [ex.input_ids[:ex.prompt_length] for ex, _ in items], "pixel_values": pixel_values,
            "image_mask": image_mask, "questions": [ex.question for ex, _ in items]}


class ClipQADataModule(L.LightningDataModule):
    """Train/val :class:`ClipQA` splits. ``stage``: ``"caption"`` or ``"sft"`` (module docstring);
    ``prompts_only``: batches of prompts for GRPO (:func:`collate_prompts`) instead of training batches.
    ``source="jsonl"`` reads ``train_path`` / ``val_path`` (module docstring) instead of generating clips;
    ``tokenizer_path`` (a local ``tokenizer.json``, with its ``eos_token`` and optional ``pad_token`` /
    ``sep_token``) replaces the byte tokenizer."""

    def __init__(self, tasks: Sequence[str] | None = None, stage: str = "sft", frame_size: int = 32,
                 tokens_per_frame: int = 16, image_token_id: int = 260, num_train: int = 6000, num_val: int = 256,
                 batch_size: int = 16, prompts_only: bool = False, seed: int = 0, source: str = "generated",
                 train_path: str | None = None, val_path: str | None = None, tokenizer_path: str | None = None,
                 eos_token: str | None = None, pad_token: str | None = None, sep_token: str | None = None):
        super().__init__()
        require_positive_int(batch_size, "batch_size")
        require(not (prompts_only and stage != "sft"), "prompts_only", "GRPO samples answers to questions: "
                "use it with stage='sft'")
        require(source in SOURCES, "source", f"must be one of {SOURCES}, got {source!r}")
        if source == "jsonl":
            require(train_path is not None and val_path is not None, "train_path",
                    "source='jsonl' needs train_path and val_path")
        tokenizer = None
        if tokenizer_path is not None:
            require(eos_token is not None, "eos_token", "a pretrained tokenizer needs its eos_token named")
            tokenizer = PretrainedTokenizer(tokenizer_path, eos=eos_token, pad=pad_token, sep=sep_token)
        self.source, self.paths = source, {"train": train_path, "val": val_path}
        self.dataset = partial(ClipQA, tasks=tasks, stage=stage, frame_size=frame_size,
                               tokens_per_frame=tokens_per_frame, image_token_id=image_token_id, seed=seed,
                               tokenizer=tokenizer)
        self.tokenizer = tokenizer or ByteTokenizer()
        self.pad_id = self.tokenizer.pad_id
        self.num_train, self.num_val, self.batch_size = num_train, num_val, batch_size
        self.collate_fn = collate_prompts if prompts_only else partial(collate, pad_id=self.pad_id)
        self.tile_size, self.tokens_per_tile, self.image_token_id = frame_size, tokens_per_frame, image_token_id
        self.vocab_size = None if tokenizer is not None else ByteTokenizer().vocab_size
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        records = {split: read_jsonl(path, RECORD_FIELDS, path_fields=("frames",)) if self.source == "jsonl" else None
                   for split, path in self.paths.items()}
        self.train_set = self.dataset(self.num_train, "train", records=records["train"])
        self.val_set = self.dataset(self.num_val, "val", records=records["val"])

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator,
                          collate_fn=self.collate_fn)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, collate_fn=self.collate_fn)
