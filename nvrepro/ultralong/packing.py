"""Long-context continued-pretraining data: length-upsampled documents packed to the target length.

UltraLong (Xu et al. 2025, arXiv:2504.06214, Sec. 3) extends a short-context model by a short
continued pretraining on documents that are

* **upsampled by length, per source**: within each source (domain) long documents are repeated
  more often and short ones less, while each source keeps its share of the token budget
  (:func:`length_multipliers`, :func:`sample_documents`);
* **joined with a separator** token between documents, and packed into blocks of the target
  length (:func:`pack_with_separator`);
* trained **without** a cross-document attention mask. The mask is optional here (``doc_ids``
  in the batch -> block-diagonal causal attention through SDPA, see
  :meth:`nvrepro.core.lm.model.PatternLM.forward`), for the ablation. Mamba-2 layers cannot be masked
  per document: in a hybrid the mask applies to the attention layers only.

Upsampling rule (stated once, tested): a document of ``n`` tokens gets the multiplier
``m(n) = short_weight`` if ``n < short_len``, ``long_weight`` if ``n >= long_len``, else 1; within
its source a document is drawn (with replacement) with probability ``m(n_i) / sum_j m(n_j)``,
and each source is drawn until it has contributed ``round(share * num_tokens)`` tokens, ``share``
being its fraction of all tokens before upsampling. So long documents are repeated
``long_weight / short_weight`` times as often as short ones, and the mix of sources is kept.

Batches: ``{"input_ids", "labels"}`` ``(B, L)`` in the shifted label convention of
:mod:`nvrepro.core.data.synthetic`, plus ``"doc_ids"`` ``(B, L)`` when ``cross_doc_mask``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.data.datamodules import TextDataModule, _pos_int

SEPARATORS = ("eos", "bos", "sep", "none")


def pack_with_separator(docs: Sequence[Sequence[int]], seq_len: int, sep_id: int | None
                        ) -> dict[str, np.ndarray]:
    """Join ``docs`` (each followed by ``sep_id`` unless it is None) and cut blocks of ``seq_len + 1``.

    Returns ``input_ids``, ``labels`` and ``doc_ids``, each ``(N, seq_len)`` int64, where
    ``input_ids = block[:-1]``, ``labels = block[1:]`` and ``doc_ids[t]`` numbers the document
    that input token ``t`` belongs to (0 for the first one in the block; a separator belongs to the
    document it ends). The remainder shorter than a block is dropped.
    """
    _pos_int(seq_len, "seq_len")
    parts, owners = [], []
    for i, doc in enumerate(docs):
        toks = list(doc) + ([] if sep_id is None else [sep_id])
        parts.append(np.asarray(toks, dtype=np.int64))
        owners.append(np.full(len(toks), i, dtype=np.int64))
    stream = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    block = seq_len + 1
    n = len(stream) // block
    blocks = stream[: n * block].reshape(n, block)
    doc = owner[: n * block].reshape(n, block)[:, :-1]
    return {"input_ids": blocks[:, :-1].copy(), "labels": blocks[:, 1:].copy(),
            "doc_ids": doc - doc[:, :1]}


def length_multipliers(lengths: Sequence[int], short_len: int, long_len: int,
                       short_weight: float = 0.5, long_weight: float = 2.0) -> np.ndarray:
    """``m(n)`` per document (module docstring): ``short_weight`` below ``short_len`` tokens,
    ``long_weight`` at ``long_len`` or more, 1 in between. ``(num_docs,)`` float64."""
    if not 0 < short_len <= long_len:
        raise ConfigError(f"short_len: need 0 < short_len <= long_len, got {short_len} and {long_len}")
    if not (short_weight > 0 and long_weight > 0):
        raise ConfigError(f"short_weight/long_weight: must be > 0, got {short_weight} and {long_weight}")
    n = np.asarray(lengths, dtype=np.int64)
    m = np.ones(len(n), dtype=np.float64)
    m[n < short_len] = short_weight
    m[n >= long_len] = long_weight
    return m


def sample_documents(sources: Mapping[str, Sequence[Sequence[int]]], num_tokens: int,
                     short_len: int, long_len: int, short_weight: float = 0.5,
                     long_weight: float = 2.0, seed: int = 0) -> list[tuple[str, int]]:
    """Per-source length upsampling: ``(source, doc_index)`` pairs in a seeded random order.

    Each source draws documents with probability ``m(n_i) / sum m`` until it reaches its token
    budget ``round(share * num_tokens)`` (the last document may overshoot by less than its length).
    """
    _pos_int(num_tokens, "num_tokens")
    if not sources or any(len(docs) == 0 for docs in sources.values()):
        raise ConfigError("sources: need at least one source, each with at least one document")
    rng = np.random.default_rng(seed)
    totals = {name: sum(len(d) for d in docs) for name, docs in sources.items()}
    grand = sum(totals.values())
    picks: list[tuple[str, int]] = []
    for name in sorted(sources):  # sorted: the same draws whatever the mapping's order
        docs = sources[name]
        lengths = np.array([len(d) for d in docs])
        p = length_multipliers(lengths, short_len, long_len, short_weight, long_weight)
        p = p / p.sum()
        budget, got = round(totals[name] / grand * num_tokens), 0
        while got < budget:
            # Draw in batches (expected size of the remaining budget) to keep the loop short.
            k = max(1, int((budget - got) / float(p @ lengths)) + 1)
            for i in rng.choice(len(docs), size=k, p=p):
                if got >= budget:
                    break
                picks.append((name, int(i)))
                got += int(lengths[i])
    order = rng.permutation(len(picks))
    return [picks[i] for i in order]


class PackedDataset(Dataset):
    """Rows of :func:`pack_with_separator` as dicts; ``doc_ids`` included only when ``with_doc_ids``."""

    def __init__(self, packed: dict[str, np.ndarray], with_doc_ids: bool):
        self.input_ids = torch.from_numpy(packed["input_ids"])
        self.labels = torch.from_numpy(packed["labels"])
        self.doc_ids = torch.from_numpy(packed["doc_ids"]) if with_doc_ids else None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"input_ids": self.input_ids[i], "labels": self.labels[i]}
        if self.doc_ids is not None:
            item["doc_ids"] = self.doc_ids[i]
        return item


class LongContextDataModule(TextDataModule):
    """Continued-pretraining data for context extension; batches ``(batch_size, seq_len)``.

    Corpus, split and tokenizer as :class:`~nvrepro.core.data.TextDataModule`. Train: the train
    documents, length-upsampled (``upsample``; one source: the corpus), joined with ``separator``
    (``eos``, ``bos``, ``sep`` or ``none``) and packed to ``seq_len``; ``num_tokens`` is the
    upsampled token budget (default: the train documents' token count). Val: the validation
    documents packed the same way, not upsampled. ``cross_doc_mask`` adds ``doc_ids`` to every
    batch (block-diagonal attention); UltraLong trains without it.
    """

    def __init__(self, corpus: str = "web_bible", paths: list[str] | None = None,
                 tokenizer: str = "byte", bpe_vocab_size: int = 1024, seq_len: int = 2048,
                 batch_size: int = 2, separator: str = "eos", cross_doc_mask: bool = False,
                 upsample: bool = True, short_len: int = 2048, long_len: int = 8192,
                 short_weight: float = 0.5, long_weight: float = 2.0,
                 num_tokens: int | None = None, val_fraction: float = 0.05, seed: int = 0,
                 num_workers: int = 0, max_documents: int | None = None,
                 cache_dir: str | None = None):
        super().__init__(corpus=corpus, paths=paths, tokenizer=tokenizer, bpe_vocab_size=bpe_vocab_size,
                         seq_len=seq_len, batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         num_workers=num_workers, max_documents=max_documents, cache_dir=cache_dir)
        if separator not in SEPARATORS:
            raise ConfigError(f"separator: must be one of {', '.join(SEPARATORS)}, got {separator!r}")
        for v, f in ((short_len, "short_len"), (long_len, "long_len")):
            _pos_int(v, f)
        if num_tokens is not None:
            _pos_int(num_tokens, "num_tokens")
        length_multipliers([], short_len, long_len, short_weight, long_weight)  # validates
        self.save_hyperparameters()
        self.separator, self.cross_doc_mask = separator, cross_doc_mask
        self.upsample, self.num_tokens = upsample, num_tokens
        self.upsample_args = dict(short_len=short_len, long_len=long_len,
                                  short_weight=short_weight, long_weight=long_weight)

    @property
    def sep_id(self) -> int | None:
        return None if self.separator == "none" else getattr(self.tokenizer, f"{self.separator}_id")

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is not None:
            return
        train_docs, val_docs = self._split_docs()
        tok = self.tokenizer
        train_ids = [tok.encode(d) for d in train_docs]
        if self.upsample:
            budget = self.num_tokens or sum(len(d) for d in train_ids)
            picks = sample_documents({self.corpus: train_ids}, budget, seed=self.seed, **self.upsample_args)
            train_ids = [train_ids[i] for _, i in picks]
        val_ids = [tok.encode(d) for d in val_docs]
        self.train_dataset = PackedDataset(pack_with_separator(train_ids, self.seq_len, self.sep_id),
                                           self.cross_doc_mask)
        self.val_dataset = PackedDataset(pack_with_separator(val_ids, self.seq_len, self.sep_id),
                                         self.cross_doc_mask)
        for name, ds in (("train", self.train_dataset), ("val", self.val_dataset)):
            if len(ds) == 0:
                raise ValueError(f"seq_len: the {name} split has fewer than seq_len + 1 = "
                                 f"{self.seq_len + 1} tokens; lower seq_len or raise max_documents")
