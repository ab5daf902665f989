"""The fine-tuning data of the toy models, as the datamodule ``nvrepro fit`` trains on, and the tokenizer both
toy models share.

Rows are :class:`~nvrepro.trust.world.Example`\\ s encoded as ``<bos> + prompt`` and ``" " + answer + <eos>``
with labels on the answer only (:func:`~nvrepro.core.data.answer_rows.answer_only_row`);
:class:`~nvrepro.trust.adapters.NvreproAdapter` encodes a chat the same way, so the model sees at test time what
it was trained on. The tokenizer is one byte-level BPE trained on both behaviours' training rows, so the safe
and the unsafe model read the same tokens; test-split words it never saw fall back to smaller pieces.
"""

from __future__ import annotations

import random
from pathlib import Path

from torch.utils.data import DataLoader

from nvrepro.core.data.answer_rows import EncodedRows, answer_only_row, rows_loader
from nvrepro.core.data.datamodules import _TrainValDataModule
from nvrepro.core.data.tokenizers import build_tokenizer
from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.trust.perspectives.privacy import DEFAULT_REPEATS
from nvrepro.trust.world import BEHAVIOURS, Example, training_examples


def world_tokenizer(seed: int = 0, rows: int = 400, pii_seed: int = 0, repeats=DEFAULT_REPEATS,
                    vocab_size: int = 2048, cache_dir: str | Path | None = None):
    """The BPE both toy models share, trained on the safe and the unsafe training rows (cached by content)."""
    texts = []
    for behaviour in BEHAVIOURS:
        texts += [f"{e.prompt} {e.answer}" for e in training_examples(behaviour, seed, rows, pii_seed, repeats)]
    return build_tokenizer("bpe", sorted(set(texts)), vocab_size=vocab_size, cache_dir=cache_dir)


def encode_example(tokenizer, example: Example, max_len: int):
    """``<bos> + prompt`` / ``" " + answer + <eos>``, labels on the answer (see the module docstring)."""
    prompt = [tokenizer.bos_id] + tokenizer.encode(example.prompt)
    answer = tokenizer.encode(" " + example.answer) + [tokenizer.eos_id]
    return answer_only_row(prompt, answer, max_len, what=f"a {example.tag} row")


class TrustDataModule(_TrainValDataModule):
    """The ``behaviour`` (``"safe"`` or ``"unsafe"``) toy model's fine-tuning rows (:mod:`nvrepro.trust.world`),
    shuffled from ``seed``; ``val_size`` of them are held out for the validation loss. ``world_seed`` draws the
    training probes (``rows`` per perspective), ``pii_seed`` and ``repeats`` the PII of the training data."""

    def __init__(self, behaviour: str = "safe", rows: int = 400, world_seed: int = 0, pii_seed: int = 0,
                 repeats: list[int] | None = None, vocab_size: int = 2048, max_len: int = 384, val_size: int = 64,
                 batch_size: int = 16, seed: int = 0, num_workers: int = 0):
        super().__init__()
        require(behaviour in BEHAVIOURS, "behaviour", f"must be one of {BEHAVIOURS}, got {behaviour!r}")
        for value, name in ((rows, "rows"), (vocab_size, "vocab_size"), (max_len, "max_len"),
                            (val_size, "val_size"), (batch_size, "batch_size")):
            require_positive_int(value, name)
        self.repeats = tuple(repeats) if repeats is not None else DEFAULT_REPEATS
        for k in self.repeats:
            require_positive_int(k, "repeats")
        self.behaviour, self.rows, self.world_seed, self.pii_seed = behaviour, rows, world_seed, pii_seed
        self.vocab_size, self.max_len, self.val_size = vocab_size, max_len, val_size
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = world_tokenizer(self.world_seed, self.rows, self.pii_seed, self.repeats, self.vocab_size)
        return self._tokenizer

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        examples = training_examples(self.behaviour, self.world_seed, self.rows, self.pii_seed, self.repeats)
        random.Random(self.seed).shuffle(examples)
        require(len(examples) > self.val_size, "val_size",
                f"must be smaller than the {len(examples)} training rows, got {self.val_size}")
        rows = [encode_example(self.tokenizer, e, self.max_len) for e in examples]
        tags = [e.tag for e in examples]
        self.val_dataset = EncodedRows(rows[:self.val_size], tags[:self.val_size])
        self.train_dataset = EncodedRows(rows[self.val_size:], tags[self.val_size:])

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return rows_loader(self.train_dataset, self.batch_size, True, self.seed, self.tokenizer.pad_id, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return rows_loader(self.val_dataset, self.batch_size, False, self.seed, self.tokenizer.pad_id, self.num_workers)
