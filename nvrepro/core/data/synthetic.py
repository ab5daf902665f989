"""Deterministic synthetic tasks: MQAR, copying and passkey retrieval.

Label convention (shared with :mod:`nvrepro.core.data.datamodules`)
-----------------------------------------------------------------
Every example is a dict ``{"input_ids": LongTensor (L,), "labels": LongTensor (L,)}`` whose
labels are **already shifted**: ``labels[t]`` is the target for the prediction made at
position ``t``, i.e. ``labels[t] == input_ids[t + 1]`` (the last one is the token after the
window) where position ``t`` is supervised, and ``-100`` elsewhere. The LM loss is therefore
``F.cross_entropy(logits.view(-1, V), labels.view(-1), ignore_index=-100)`` with no further
shift. Each generator builds a token stream of length ``L + 1`` and returns
``input_ids = stream[:-1]`` and ``labels = where(supervised, stream[1:], -100)``.

Determinism: each generator draws from ``numpy.random.default_rng(seed)`` only (``seed`` may
be an int or a sequence of ints, e.g. ``(seed, split)``), so the same arguments give
bit-identical tensors on every machine.

Tasks
-----
* :func:`make_mqar`: multi-query associative recall (Arora et al. 2023, "Zoology").
  Stream ``k1 v1 k2 v2 ... kn vn`` then a query region of filler ``0`` in which
  ``num_queries`` of the keys reappear, each followed by its value, at random even offsets.
  Keys are distinct and drawn from ``[1, V//2)``, values from ``[V//2, V)`` (disjoint). Only
  the positions holding a query key are supervised (target: its value). Unlike Zoology, the
  value also follows the query key in the input, so the convention above holds exactly.
* :func:`make_copy`: ``x_1..x_n <sep=1> x_1..x_n <pad=0>...``, tokens from ``[2, V)``; the
  supervised positions are the separator and the first ``n - 1`` copied tokens (targets: the
  copy).
* :func:`make_passkey`: passkey retrieval (Mohtashami & Jaggi 2023) in real text through a
  tokenizer (bytes by default): an intro, repeated filler sentences with the needle
  ``"The pass key is NNNNN. Remember it. NNNNN is the pass key. "`` starting at ``depth`` of
  the filler, then ``"What is the pass key? The pass key is "`` and the digits; the digits
  are the only supervised targets.

:func:`accuracy` scores per-example exact match over the supervised positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from nvrepro.core.tooling.validation import ConfigError

IGNORE_INDEX = -100
TASKS = ("mqar", "copy", "passkey")

MQAR_FILLER = 0
COPY_PAD, COPY_SEP = 0, 1

PASSKEY_INTRO = ("There is an important info hidden inside a lot of irrelevant text. Find it and "
                 "memorize it. I will quiz you about the important information there.\n")
PASSKEY_FILLER = ("The grass is green. The sky is blue. The sun is yellow. Here we go. "
                  "There and back again. ")
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key. "
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is "

Seed = int | Sequence[int]


class SyntheticDataset(Dataset):
    """Examples stored as two ``(N, L)`` LongTensors; item ``i`` is ``{input_ids, labels}``."""

    def __init__(self, input_ids: torch.Tensor, labels: torch.Tensor):
        if input_ids.shape != labels.shape or input_ids.dim() != 2:
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and labels "
                             f"{tuple(labels.shape)} must both be (N, L)")
        self.input_ids = input_ids.long()
        self.labels = labels.long()

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def _check_pos_int(value, field_name: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{field_name}: must be a positive integer, got {value!r}")


def _from_streams(streams: np.ndarray, supervised: np.ndarray) -> SyntheticDataset:
    """``streams`` (N, L+1) and ``supervised`` (N, L) bool -> dataset per the label convention."""
    inputs = torch.from_numpy(np.ascontiguousarray(streams[:, :-1])).long()
    targets = torch.from_numpy(np.ascontiguousarray(streams[:, 1:])).long()
    labels = torch.where(torch.from_numpy(supervised), targets, torch.tensor(IGNORE_INDEX))
    return SyntheticDataset(inputs, labels)


def make_mqar(num_examples: int, vocab_size: int = 8192, seq_len: int = 256,
              num_kv_pairs: int = 8, num_queries: int | None = None,
              seed: Seed = 0) -> SyntheticDataset:
    """Multi-query associative recall; returns ``num_examples`` examples of length ``seq_len``."""
    num_queries = num_kv_pairs if num_queries is None else num_queries
    for v, f in ((num_examples, "num_examples"), (vocab_size, "vocab_size"), (seq_len, "seq_len"),
                 (num_kv_pairs, "num_kv_pairs"), (num_queries, "num_queries")):
        _check_pos_int(v, f)
    n, q, L = num_kv_pairs, num_queries, seq_len
    if q > n:
        raise ConfigError(f"num_queries: at most num_kv_pairs={n} distinct keys can be queried, "
                          f"got {q}")
    n_keys, v0 = vocab_size // 2 - 1, vocab_size // 2
    if n_keys < n or vocab_size - v0 < n:
        raise ConfigError(f"vocab_size: {vocab_size} leaves {n_keys} keys / {vocab_size - v0} "
                          f"values, fewer than num_kv_pairs={n}; need vocab_size >= {2 * n + 2}")
    if L < 2 * (n + q):
        raise ConfigError(f"seq_len: {L} is too short for {n} key-value pairs and {q} queries; "
                          f"need seq_len >= 2 * (num_kv_pairs + num_queries) = {2 * (n + q)}")
    rng = np.random.default_rng(seed)
    slots = (L + 1 - 2 * n) // 2
    streams = np.full((num_examples, L + 1), MQAR_FILLER, dtype=np.int64)
    supervised = np.zeros((num_examples, L), dtype=bool)
    for i in range(num_examples):
        keys = rng.choice(n_keys, size=n, replace=False) + 1
        values = rng.choice(vocab_size - v0, size=n, replace=False) + v0
        streams[i, 0:2 * n:2] = keys
        streams[i, 1:2 * n:2] = values
        which = rng.choice(n, size=q, replace=False)
        pos = 2 * n + 2 * rng.choice(slots, size=q, replace=False)
        streams[i, pos] = keys[which]
        streams[i, pos + 1] = values[which]
        supervised[i, pos] = True
    return _from_streams(streams, supervised)


def make_copy(num_examples: int, vocab_size: int = 256, seq_len: int = 256,
              copy_len: int | None = None, seed: Seed = 0) -> SyntheticDataset:
    """Copying: ``copy_len`` random tokens, ``<sep>``, then the same tokens; default
    ``copy_len = seq_len // 2``."""
    copy_len = seq_len // 2 if copy_len is None else copy_len
    for v, f in ((num_examples, "num_examples"), (vocab_size, "vocab_size"),
                 (seq_len, "seq_len"), (copy_len, "copy_len")):
        _check_pos_int(v, f)
    if vocab_size < 3:
        raise ConfigError(f"vocab_size: copy needs >= 3 ids (pad, sep, a token), got {vocab_size}")
    n, L = copy_len, seq_len
    if L < 2 * n:
        raise ConfigError(f"seq_len: {L} is too short to copy {n} tokens; need seq_len >= "
                          f"2 * copy_len = {2 * n}")
    rng = np.random.default_rng(seed)
    toks = rng.integers(2, vocab_size, size=(num_examples, n), dtype=np.int64)
    streams = np.full((num_examples, L + 1), COPY_PAD, dtype=np.int64)
    streams[:, :n] = toks
    streams[:, n] = COPY_SEP
    streams[:, n + 1:2 * n + 1] = toks
    supervised = np.zeros((num_examples, L), dtype=bool)
    supervised[:, n:2 * n] = True
    return _from_streams(streams, supervised)


def passkey_example(tokenizer, seq_len: int, passkey: str, depth: float
                    ) -> tuple[list[int], int, int]:
    """One passkey stream of ``seq_len + 1`` token ids.

    Returns ``(stream, needle_start, answer_len)``: ``needle_start`` is the token index where
    the needle begins, ``round(depth * F)`` tokens into the ``F`` filler tokens; the last
    ``answer_len`` tokens of ``stream`` are the answer.
    """
    if not 0.0 <= float(depth) <= 1.0:
        raise ConfigError(f"depth: must be in [0, 1], got {depth!r}")
    intro = tokenizer.encode(PASSKEY_INTRO)
    needle = tokenizer.encode(PASSKEY_NEEDLE.format(key=passkey))
    question = tokenizer.encode(PASSKEY_QUESTION)
    answer = tokenizer.encode(passkey)
    fixed = len(intro) + len(needle) + len(question) + len(answer)
    budget = seq_len + 1 - fixed
    if budget < 0:
        raise ConfigError(f"seq_len: {seq_len} is too short for the passkey prompt with this "
                          f"tokenizer; need seq_len >= {fixed - 1}")
    filler = np.resize(np.asarray(tokenizer.encode(PASSKEY_FILLER), dtype=np.int64),
                       budget).tolist()
    k = int(round(float(depth) * budget))
    stream = intro + filler[:k] + needle + filler[k:] + question + answer
    assert len(stream) == seq_len + 1
    return stream, len(intro) + k, len(answer)


def make_passkey(num_examples: int, seq_len: int = 1024, tokenizer=None,
                 depth: float | None = None, num_digits: int = 5,
                 seed: Seed = 0) -> SyntheticDataset:
    """Passkey retrieval; ``depth=None`` draws a depth uniformly in [0, 1] per example.

    ``tokenizer`` defaults to :class:`~nvrepro.core.data.tokenizers.ByteTokenizer`.
    """
    from nvrepro.core.data.tokenizers import ByteTokenizer

    tokenizer = ByteTokenizer() if tokenizer is None else tokenizer
    for v, f in ((num_examples, "num_examples"), (seq_len, "seq_len"),
                 (num_digits, "num_digits")):
        _check_pos_int(v, f)
    rng = np.random.default_rng(seed)
    streams = np.zeros((num_examples, seq_len + 1), dtype=np.int64)
    supervised = np.zeros((num_examples, seq_len), dtype=bool)
    for i in range(num_examples):
        key = str(int(rng.integers(10 ** (num_digits - 1), 10 ** num_digits)))
        d = float(rng.uniform(0.0, 1.0)) if depth is None else depth
        stream, _, m = passkey_example(tokenizer, seq_len, key, d)
        streams[i] = stream
        supervised[i, seq_len - m:] = True
    return _from_streams(streams, supervised)


_MAKERS = {"mqar": make_mqar, "copy": make_copy, "passkey": make_passkey}


def make_task(task: str, num_examples: int, seed: Seed = 0, **kwargs) -> SyntheticDataset:
    """Dispatch to ``make_<task>``; ``task`` is one of :data:`TASKS`."""
    if task not in _MAKERS:
        raise ConfigError(f"task: unknown synthetic task {task!r}; allowed: {', '.join(TASKS)}")
    return _MAKERS[task](num_examples, seed=seed, **kwargs)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-example exact match over supervised positions.

    ``logits`` (B, L, V), ``labels`` (B, L) in the shifted convention -> float (B,): 1.0 where
    every position with ``labels != -100`` has ``argmax(logits) == labels`` (vacuously 1.0 for
    an example with no supervised position).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} + (V,)")
    mask = labels != IGNORE_INDEX
    ok = (logits.argmax(-1) == labels) | ~mask
    return ok.all(dim=-1).float()
