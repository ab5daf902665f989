"""Image question-answering data for the NVLM modules: examples, batches and the datamodule.

:class:`DocumentQA` is a map-style dataset of :class:`~nvrepro.nvlm.prompts.Example` s with their images:
by default generated forms (:mod:`nvrepro.nvlm.documents`), optionally blended with text-only
instructions (:mod:`nvrepro.nvlm.text_tasks`, ``text_fraction`` of the examples) for the retention
experiment; with ``source="jsonl"``, records ``{"image": path, "question": ..., "answer": ...}`` from
local files (the full-scale switch: any OCR / document-VQA set converted to that form). Example ``i``
of a split depends only on ``(seed, split, i)``, so it is the same whichever order it is read in.

Batches (:func:`collate`) hold ``input_ids``, ``labels``, ``token_tile`` ``(b, l)`` (right-padded),
``pixel_values (b, n, 3, S, S)`` float32 (ImageNet-normalised), ``image_mask`` and
``image_in_decoder`` ``(b, n)`` bool (``n``: the most images of any example in the batch) and
``is_text (b,)`` bool; exactly what :class:`~nvrepro.nvlm.model.NVLM` takes, plus the labels.
"""

from __future__ import annotations

import random
import zlib
from functools import partial
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from nvrepro.core.data.records import read_jsonl as read_records
from nvrepro.core.data.tokenizers import ByteTokenizer, PretrainedTokenizer
from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.core.vision.tiling import normalize, tile_image
from nvrepro.nvlm.documents import ask, render_document
from nvrepro.nvlm.prompts import Example, build_example
from nvrepro.nvlm.text_tasks import instruction
from nvrepro.nvlm.tile_tags import ARCHITECTURES, TAG_STYLES

SOURCES = ("documents", "jsonl")
SPLITS = ("train", "val", "test")


def example_rng(seed: int, split: str, index: int) -> random.Random:
    """The generator of example ``index`` of ``split``: independent of every other example."""
    return random.Random(zlib.crc32(f"{seed}/{split}/{index}".encode()))


class DocumentQA(Dataset):
    """``num`` examples of ``split`` (module docstring). Each item is ``(Example, images uint8 (n, 3, S,
    S))``; items are built once and kept (a few KiB each at toy scale). ``tokenizer``: default the
    byte tokenizer; at full scale the LLM's own (a
    :class:`~nvrepro.core.data.tokenizers.PretrainedTokenizer`)."""

    def __init__(self, num: int, split: str = "train", *, seed: int = 0, architecture: str = "D",
                 tile_tag: str = "1d", tile_size: int = 32, max_tiles: int = 6, tokens_per_tile: int = 16,
                 image_token_id: int = 260, max_cells: int = 6, question_kind: str | None = None,
                 text_fraction: float = 0.0, text_only: bool = False, records: Sequence[dict] | None = None,
                 tokenizer=None):
        require(split in SPLITS, "split", f"must be one of {SPLITS}, got {split!r}")
        require(architecture in ARCHITECTURES, "architecture", f"must be one of {ARCHITECTURES}, got {architecture!r}")
        require(tile_tag in TAG_STYLES, "tile_tag", f"must be one of {TAG_STYLES}, got {tile_tag!r}")
        for name, value in (("tile_size", tile_size), ("max_tiles", max_tiles), ("tokens_per_tile", tokens_per_tile)):
            require_positive_int(value, name)
        require(0.0 <= text_fraction <= 1.0, "text_fraction", f"must be in [0, 1], got {text_fraction}")
        self.num = len(records) if records is not None else num
        require_positive_int(self.num, "num")
        self.split, self.seed, self.records = split, seed, records
        self.architecture, self.tile_tag = architecture, tile_tag
        self.tile_size, self.max_tiles, self.tokens_per_tile = tile_size, max_tiles, tokens_per_tile
        self.image_token_id, self.max_cells, self.question_kind = image_token_id, max_cells, question_kind
        self.text_fraction, self.text_only = (1.0 if text_only else text_fraction), text_only
        self.tokenizer = tokenizer or ByteTokenizer()
        self._items: dict[int, tuple[Example, torch.Tensor]] = {}

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, index: int) -> tuple[Example, torch.Tensor]:
        if not 0 <= index < self.num:
            raise IndexError(f"index {index} out of range for {self.num} examples")
        if index not in self._items:
            self._items[index] = self._build(index)
        return self._items[index]

    def _build(self, index: int) -> tuple[Example, torch.Tensor]:
        rng = example_rng(self.seed, self.split, index)
        if rng.random() < self.text_fraction:
            item = instruction(rng)
            example = self._example(item.text, item.answer, "text:" + item.kind, None, False)
            return example, torch.zeros(0, 3, self.tile_size, self.tile_size, dtype=torch.uint8)
        if self.records is not None:
            record = self.records[index]
            image = Image.open(record["image"])
            question, answer, kind = record["question"], record["answer"], record.get("kind", "jsonl")
        else:
            document = render_document(rng, self.tile_size, self.max_cells)
            q = ask(document, rng, self.question_kind)
            image, question, answer, kind = document.image, q.text, q.answer, q.kind
        tiles = tile_image(image, self.tile_size, self.max_tiles)
        example = self._example(question, answer, kind, tiles.grid, tiles.thumbnail is not None)
        pixels = np.stack([np.asarray(im, dtype=np.uint8) for im in tiles.images])  # (n, S, S, 3)
        return example, torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()

    def _example(self, question: str, answer: str, kind: str, grid, has_thumbnail: bool) -> Example:
        return build_example(self.tokenizer, question, answer, kind, grid=grid, has_thumbnail=has_thumbnail,
                             architecture=self.architecture, tag_style=self.tile_tag,
                             tokens_per_tile=self.tokens_per_tile, image_token_id=self.image_token_id)


def collate(items: Sequence[tuple[Example, torch.Tensor]], pad_id: int = ByteTokenizer().pad_id) -> dict:
    """Right-pad a list of ``(Example, images)`` into one batch (module docstring)."""
    b = len(items)
    length = max(len(ex.input_ids) for ex, _ in items)
    n = max(len(px) for _, px in items)
    size = items[0][1].shape[-1]
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    token_tile = torch.full((b, length), -1, dtype=torch.long)
    pixels = torch.zeros(b, n, 3, size, size, dtype=torch.uint8)
    image_mask = torch.zeros(b, n, dtype=torch.bool)
    in_decoder = torch.zeros(b, n, dtype=torch.bool)
    for i, (ex, px) in enumerate(items):
        k = len(ex.input_ids)
        input_ids[i, :k] = torch.tensor(ex.input_ids)
        labels[i, :k] = torch.tensor(ex.labels)
        token_tile[i, :k] = torch.tensor(ex.token_tile)
        pixels[i, :len(px)] = px
        image_mask[i, :len(px)] = True
        in_decoder[i, :len(px)] = torch.tensor(ex.image_in_decoder, dtype=torch.bool)
    return {"input_ids": input_ids, "labels": labels, "token_tile": token_tile, "pixel_values": normalize(pixels),
            "image_mask": image_mask, "image_in_decoder": in_decoder,
            "is_text": torch.tensor([ex.kind.startswith("text:") for ex, _ in items])}


def read_jsonl(path: str | Path) -> list[dict]:
    """Records of a JSONL file, each with ``image`` (resolved against the file's folder), ``question`` and
    ``answer``; a clear error naming the line of a bad record."""
    return read_records(path, ("image", "question", "answer"), path_fields=("image",))


class DocumentQADataModule(L.LightningDataModule):
    """Train / val loaders of :class:`DocumentQA` for one architecture and tile-tag style.

    ``architecture``, ``tile_size`` and ``tokens_per_tile`` must match the model's (``architecture``, the
    ViT's ``image_size``, :attr:`~nvrepro.nvlm.model.NVLMConfig.tokens_per_tile`; the module checks).
    ``max_tiles = 1`` is the low-resolution-only baseline (the whole page squeezed into one tile).
    ``max_cells`` bounds the forms' cells and ``question_kind`` fixes the question (``None``: OCR or layout
    at random; ``"read"`` with ``max_cells=1`` is the toy's pretraining task).
    ``source="jsonl"`` reads ``train_path`` / ``val_path`` instead of generating forms; ``tokenizer_path``
    (a local ``tokenizer.json``, with its ``eos_token`` and optional ``pad_token`` / ``sep_token``) replaces
    the byte tokenizer with the LLM's own.
    """

    def __init__(self, architecture: str = "D", tile_tag: str = "1d", tile_size: int = 32, max_tiles: int = 6,
                 tokens_per_tile: int = 16, image_token_id: int = 260, max_cells: int = 6,
                 question_kind: str | None = None, num_train: int = 4000, num_val: int = 256, text_fraction: float = 0.0, batch_size: int = 32,
                 seed: int = 0, source: str = "documents", train_path: str | None = None,
                 val_path: str | None = None, tokenizer_path: str | None = None, eos_token: str | None = None,
                 pad_token: str | None = None, sep_token: str | None = None, num_workers: int = 0):
        super().__init__()
        require(source in SOURCES, "source", f"must be one of {SOURCES}, got {source!r}")
        if source == "jsonl":
            require(train_path is not None and val_path is not None, "train_path",
                    "source='jsonl' needs train_path and val_path")
        require_positive_int(batch_size, "batch_size")
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.architecture, self.tile_size, self.tokens_per_tile = architecture, tile_size, tokens_per_tile
        self.image_token_id = image_token_id
        if tokenizer_path is not None:
            require(eos_token is not None, "eos_token", "a pretrained tokenizer needs its eos_token named")
            self.tokenizer = PretrainedTokenizer(tokenizer_path, eos=eos_token, pad=pad_token, sep=sep_token)
        else:
            self.tokenizer = ByteTokenizer()
        common = dict(seed=seed, tokenizer=self.tokenizer, architecture=architecture, tile_tag=tile_tag, tile_size=tile_size,
                      max_tiles=max_tiles, tokens_per_tile=tokens_per_tile, image_token_id=image_token_id,
                      max_cells=max_cells, question_kind=question_kind)
        train_records = read_jsonl(train_path) if source == "jsonl" else None
        val_records = read_jsonl(val_path) if source == "jsonl" else None
        self.train_dataset = DocumentQA(num_train, "train", text_fraction=text_fraction, records=train_records, **common)
        self.val_dataset = DocumentQA(num_val, "val", records=val_records, **common)

    @property
    def vocab_size(self) -> int:
        return max(self.tokenizer.vocab_size, self.image_token_id + 1)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle, generator=generator,
                          collate_fn=partial(collate, pad_id=self.tokenizer.pad_id), num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, False)
