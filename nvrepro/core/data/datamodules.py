"""Lightning datamodules: packed natural text (HF ``datasets``, offline) and synthetic tasks.

Batches are ``{"input_ids": LongTensor (B, L), "labels": LongTensor (B, L)}`` with labels
already shifted (``labels[:, t]`` is the target at position ``t``; ``-100`` is ignored), the
convention of :mod:`nvrepro.core.data.synthetic`. For packed text every position is
supervised, so ``labels[:, :-1] == input_ids[:, 1:]``.

:class:`TextDataModule` loads a corpus (:func:`~nvrepro.core.data.corpus.load_corpus`), splits
it by document with a seed, builds the tokenizer (BPE is trained on the train documents
only), tokenizes with ``Dataset.map(batched=True)``, appends ``<eos>`` after every document,
concatenates and cuts blocks of ``seq_len + 1`` tokens (the remainder of each packing batch
of 1000 documents is dropped), and splits each block into ``input_ids = block[:-1]`` and
``labels = block[1:]``. All ``datasets`` work is in memory (``keep_in_memory=True`` and fixed
fingerprints), offline, and writes nothing to disk.

``vocab_size`` is known at construction (260 for ``byte``; ``bpe_vocab_size`` for ``bpe``, an
upper bound on the trained BPE's size), so LightningCLI can link it into the model config.
"""

from __future__ import annotations

import hashlib
import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from nvrepro.core.tooling.validation import ConfigError  # noqa: E402
from nvrepro.core.data.corpus import load_corpus, split_documents  # noqa: E402
from nvrepro.core.data.synthetic import TASKS, make_task  # noqa: E402
from nvrepro.core.data.tokenizers import TOKENIZERS, ByteTokenizer, build_tokenizer  # noqa: E402

PACK_BATCH_DOCS = 1000


def _pos_int(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name}: must be a positive integer, got {value!r}")


def _loader(ds, batch_size: int, shuffle: bool, seed: int, num_workers: int) -> DataLoader:
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen,
                      num_workers=num_workers, drop_last=False,
                      persistent_workers=num_workers > 0)


def pack_documents(docs: list[str], tokenizer, seq_len: int, fingerprint: str):
    """Tokenize ``docs`` and pack them into an in-memory ``datasets.Dataset`` (torch format)
    with columns ``input_ids`` and ``labels``, each ``(seq_len,)`` per row (stored as int32,
    returned as int64)."""
    import datasets
    from datasets.utils import logging as ds_logging

    block = seq_len + 1
    eos = tokenizer.eos_id
    encode_batch = getattr(tokenizer, "encode_batch", None)
    features = datasets.Features({"input_ids": datasets.List(datasets.Value("int32")),
                                  "labels": datasets.List(datasets.Value("int32"))})

    def tokenize(batch):
        texts = batch["text"]
        ids = encode_batch(texts) if encode_batch else [tokenizer.encode(t) for t in texts]
        return {"ids": [np.asarray(x + [eos], dtype=np.int32) for x in ids]}

    def group(batch):
        parts = [np.ravel(x) for x in batch["ids"]]
        flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        n = len(flat) // block
        blocks = flat[: n * block].reshape(n, block)
        return {"input_ids": blocks[:, :-1], "labels": blocks[:, 1:]}

    bars = ds_logging.is_progress_bar_enabled()
    ds_logging.disable_progress_bar()
    try:
        ds = datasets.Dataset.from_dict({"text": list(docs)})
        ds = ds.map(tokenize, batched=True, remove_columns=["text"], keep_in_memory=True,
                    new_fingerprint=f"{fingerprint}-tok")
        ds = ds.with_format("numpy").map(
            group, batched=True, batch_size=PACK_BATCH_DOCS, remove_columns=["ids"],
            features=features, keep_in_memory=True, new_fingerprint=f"{fingerprint}-pack{seq_len}")
    finally:
        if bars:
            ds_logging.enable_progress_bar()
    ds.set_format("torch", columns=["input_ids", "labels"])
    return ds


class _TrainValDataModule(L.LightningDataModule):
    """Seeded train/val loaders over ``self.train_dataset`` / ``self.val_dataset`` built in setup()."""

    train_dataset = val_dataset = None
    batch_size: int
    seed: int
    num_workers: int

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")  # no-op once set up; lets notebooks skip the explicit call
        return _loader(self.train_dataset, self.batch_size, True, self.seed, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return _loader(self.val_dataset, self.batch_size, False, self.seed, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()


class TextDataModule(_TrainValDataModule):
    """Packed next-token prediction on a local corpus; batches ``(batch_size, seq_len)``."""

    def __init__(self, corpus: str = "web_bible", paths: list[str] | None = None,
                 tokenizer: str = "byte", bpe_vocab_size: int = 1024, seq_len: int = 256,
                 batch_size: int = 16, val_fraction: float = 0.05, seed: int = 0,
                 num_workers: int = 0, max_documents: int | None = None,
                 cache_dir: str | None = None):
        super().__init__()
        if tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer: unknown tokenizer {tokenizer!r}; "
                              f"allowed: {', '.join(TOKENIZERS)}")
        for v, f in ((seq_len, "seq_len"), (batch_size, "batch_size"),
                     (bpe_vocab_size, "bpe_vocab_size")):
            _pos_int(v, f)
        if not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
            raise ConfigError(f"val_fraction: must be in (0, 1), got {val_fraction!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"num_workers: must be a non-negative integer, got {num_workers!r}")
        self.save_hyperparameters()
        self.corpus, self.paths, self.tokenizer_name = corpus, paths, tokenizer
        self.bpe_vocab_size, self.seq_len, self.batch_size = bpe_vocab_size, seq_len, batch_size
        self.val_fraction, self.seed, self.num_workers = val_fraction, seed, num_workers
        self.max_documents, self.cache_dir = max_documents, cache_dir
        self._tokenizer = None
        self._docs: tuple[list[str], list[str]] | None = None
        self.train_dataset = self.val_dataset = None

    @property
    def vocab_size(self) -> int:
        """Embedding size for the model: 260 (byte) or ``bpe_vocab_size`` (an upper bound)."""
        return ByteTokenizer().vocab_size if self.tokenizer_name == "byte" else self.bpe_vocab_size

    def _split_docs(self) -> tuple[list[str], list[str]]:
        if self._docs is None:
            docs = load_corpus(self.corpus, paths=self.paths, max_documents=self.max_documents)
            self._docs = split_documents(docs, self.val_fraction, self.seed)
        return self._docs

    @property
    def tokenizer(self):
        """The tokenizer (built on first access; BPE trains on the train documents)."""
        if self._tokenizer is None:
            train_docs = self._split_docs()[0] if self.tokenizer_name == "bpe" else None
            self._tokenizer = build_tokenizer(self.tokenizer_name, corpus_texts=train_docs,
                                              vocab_size=self.bpe_vocab_size,
                                              cache_dir=self.cache_dir, seed=self.seed)
        return self._tokenizer

    def prepare_data(self) -> None:
        """Load the corpus and build (and cache) the tokenizer; downloads nothing."""
        _ = self.tokenizer

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        train_docs, val_docs = self._split_docs()
        tok = self.tokenizer
        key = hashlib.sha256(repr((self.corpus, self.paths, self.max_documents, self.val_fraction,
                                   self.seed, self.tokenizer_name, tok.vocab_size)).encode()
                             ).hexdigest()[:16]
        self.train_dataset = pack_documents(train_docs, tok, self.seq_len, f"{key}-train")
        self.val_dataset = pack_documents(val_docs, tok, self.seq_len, f"{key}-val")
        for name, ds in (("train", self.train_dataset), ("val", self.val_dataset)):
            if len(ds) == 0:
                raise ValueError(f"seq_len: the {name} split has fewer than seq_len + 1 = "
                                 f"{self.seq_len + 1} tokens; lower seq_len or raise "
                                 f"max_documents / val_fraction")



class SyntheticDataModule(_TrainValDataModule):
    """A synthetic task (``mqar``, ``copy`` or ``passkey``); batches ``(batch_size, seq_len)``.

    Train and val draw from the seeds ``(seed, 0)`` and ``(seed, 1)``. ``passkey`` uses the
    byte tokenizer, so it needs ``vocab_size >= 260``.
    """

    def __init__(self, task: str = "mqar", vocab_size: int = 8192, seq_len: int = 256,
                 num_train: int = 2000, num_val: int = 200, batch_size: int = 32,
                 seed: int = 0, num_workers: int = 0, num_kv_pairs: int = 8,
                 num_queries: int | None = None, copy_len: int | None = None,
                 passkey_depth: float | None = None, passkey_digits: int = 5):
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"task: unknown synthetic task {task!r}; allowed: {', '.join(TASKS)}")
        for v, f in ((vocab_size, "vocab_size"), (seq_len, "seq_len"), (num_train, "num_train"),
                     (num_val, "num_val"), (batch_size, "batch_size")):
            _pos_int(v, f)
        if task == "passkey" and vocab_size < ByteTokenizer().vocab_size:
            raise ConfigError(f"vocab_size: passkey uses the byte tokenizer and needs "
                              f"vocab_size >= 260, got {vocab_size}")
        self.save_hyperparameters()
        self.task, self.vocab_size, self.seq_len = task, vocab_size, seq_len
        self.num_train, self.num_val, self.batch_size = num_train, num_val, batch_size
        self.seed, self.num_workers = seed, num_workers
        if task == "mqar":
            self.task_kwargs = dict(vocab_size=vocab_size, seq_len=seq_len,
                                    num_kv_pairs=num_kv_pairs, num_queries=num_queries)
        elif task == "copy":
            self.task_kwargs = dict(vocab_size=vocab_size, seq_len=seq_len, copy_len=copy_len)
        else:
            self.task_kwargs = dict(seq_len=seq_len, depth=passkey_depth, num_digits=passkey_digits)
        self.train_dataset = self.val_dataset = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        self.train_dataset = make_task(self.task, self.num_train, seed=(self.seed, 0),
                                       **self.task_kwargs)
        self.val_dataset = make_task(self.task, self.num_val, seed=(self.seed, 1),
                                     **self.task_kwargs)

