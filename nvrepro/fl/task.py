"""The learning task shared by the client and the server: a tiny core LM on users' text.

Framework-free (torch and :mod:`nvrepro.core` only): :func:`build_lm` (a seeded
:class:`~nvrepro.core.lm.model.PatternLM` from a :class:`~nvrepro.core.lm.config.ModelConfig`
dict), :func:`user_rows` (a user's sentences as token rows), :func:`local_train` (the client's few
SGD steps), :func:`mean_loss` (next-token loss) and :func:`nats_per_byte` (the loss per UTF-8 byte
of text, the unit that compares models with different tokenizers).

A tokenizer travels between server and clients as a string (:func:`tokenizer_json`: ``""`` for
bytes, else the HF ``tokenizers`` JSON of a BPE), so a client needs nothing but the message.

Local training is a plain torch loop rather than a Lightning ``fit``: a client does only a few
optimizer steps per round, a Trainer costs more to set up than those steps take and adds
loggers, callbacks and its own seeding, while the loop is a dozen lines whose batches come from
one seeded generator (so a client's update is a pure function of its inputs).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import torch

from nvrepro.core.data.tokenizers import BPETokenizer, ByteTokenizer
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.training.module import causal_lm_loss
from nvrepro.fl.users import user_texts

# A 2-layer attention + MLP byte LM (about 35 k parameters): the CPU-friendly default.
DEFAULT_MODEL_CONFIG: dict[str, Any] = {
    "pattern": "*-",
    "d_model": 32,
    "vocab_size": 260,
    "max_seq_len": 64,
    "attention": {"n_heads": 2, "n_kv_heads": 2, "head_dim": 16},
    "ffn": {"hidden": 64},
}

_BYTES = ByteTokenizer()
Tokenizer = ByteTokenizer | BPETokenizer


def derived_seed(*parts: int) -> int:
    """A 32-bit seed that is a pure function of ``parts`` (e.g. run seed, round, user)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def model_config_json(model_config: dict[str, Any] | ModelConfig) -> str:
    """The model config as a JSON string (how it travels in a Flower ``ConfigRecord``)."""
    cfg = model_config if isinstance(model_config, ModelConfig) else ModelConfig.from_dict(dict(model_config))
    return json.dumps(cfg.to_dict(), sort_keys=True)


def build_lm(model_config: dict[str, Any] | str, seed: int = 0) -> PatternLM:
    """A freshly initialised :class:`PatternLM` (same ``seed`` -> same weights); ``model_config``
    is a dict or its JSON string."""
    if isinstance(model_config, str):
        model_config = json.loads(model_config)
    cfg = ModelConfig.from_dict(dict(model_config))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(cfg)


def or_bytes(tokenizer: Tokenizer | None) -> Tokenizer:
    """``tokenizer``, or the byte tokenizer for ``None``."""
    return tokenizer or _BYTES


def tokenizer_json(tokenizer: Tokenizer | None) -> str:
    """How a tokenizer travels in a Flower ``ConfigRecord``: ``""`` for bytes, else its JSON."""
    if tokenizer is None or isinstance(tokenizer, ByteTokenizer):
        return ""
    return tokenizer.backend.to_str()


@functools.lru_cache(maxsize=8)
def tokenizer_from_json(text: str) -> Tokenizer:
    """The tokenizer of :func:`tokenizer_json`'s string (cached: every round sends the same one):
    ``""`` bytes, a JSON string, or else the path of a ``tokenizer.json`` on every machine (for
    large vocabularies, which would weigh on every message); a BPE needs the special tokens
    ``<bos> <eos> <pad> <sep>``."""
    if not text:
        return _BYTES
    if text.lstrip().startswith("{"):
        from tokenizers import Tokenizer as HFTokenizer

        return BPETokenizer(HFTokenizer.from_str(text))
    return BPETokenizer.load(text)


def token_rows(texts: list[str], seq_len: int, tokenizer: Tokenizer | None = None) -> torch.Tensor:
    """Sentences joined by ``<eos>`` into one token stream, cut into rows of ``seq_len + 1`` tokens
    (inputs and pre-shifted labels) that overlap by one token, so every token but the first is
    predicted once; the last row is padded with ``<pad>``. ``(rows, seq_len + 1)`` int64."""
    tok = or_bytes(tokenizer)
    stream: list[int] = []
    for text in texts:
        stream += tok.encode(text) + [tok.eos_id]
    rows = max(1, -(-(len(stream) - 1) // seq_len))
    stream += [tok.pad_id] * (rows * seq_len + 1 - len(stream))
    data = torch.tensor(stream, dtype=torch.long)
    return data.unfold(0, seq_len + 1, seq_len).contiguous()


def texts_of(user_id: int, num_sentences: int, seed: int = 0, user_data: str = "") -> list[str]:
    """User ``user_id``'s sentences: synthetic (:func:`nvrepro.fl.users.user_texts`, population
    ``seed``) or, with ``user_data`` a dataset directory, that user's texts on disk
    (:mod:`nvrepro.fl.user_data`)."""
    if user_data:
        from nvrepro.fl.user_data import user_texts_from_disk

        return user_texts_from_disk(user_data, user_id, num_sentences)
    return user_texts(user_id, num_sentences, seed)


def user_rows(user_id: int, num_sentences: int, seq_len: int, seed: int = 0,
              tokenizer: Tokenizer | None = None, user_data: str = "") -> torch.Tensor:
    """User ``user_id``'s dataset (:func:`texts_of`) as rows."""
    return token_rows(texts_of(user_id, num_sentences, seed, user_data), seq_len, tokenizer)


def next_token_loss(model: PatternLM, rows: torch.Tensor, pad_id: int = _BYTES.pad_id) -> torch.Tensor:
    """Mean cross-entropy of predicting ``rows[:, 1:]`` from ``rows[:, :-1]`` (pad labels ignored)."""
    labels = rows[:, 1:].clone()
    labels[labels == pad_id] = -100
    return causal_lm_loss(model(rows[:, :-1]), labels)


def local_train(model: PatternLM, rows: torch.Tensor, steps: int, lr: float, batch_size: int,
                seed: int, pad_id: int = _BYTES.pad_id) -> float:
    """``steps`` SGD steps on batches of ``batch_size`` rows drawn (with replacement) by a
    generator seeded with ``seed``; returns the mean training loss over the steps."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    total = 0.0
    for _ in range(steps):
        batch = rows[torch.randint(len(rows), (batch_size,), generator=gen)]
        loss = next_token_loss(model, batch, pad_id)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    return total / steps


@torch.no_grad()
def loss_sum(model: PatternLM, rows: torch.Tensor, pad_id: int = _BYTES.pad_id,
             batch_size: int = 64) -> tuple[float, int]:
    """(summed next-token loss in nats, number of supervised tokens) over ``rows``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        n = int((batch[:, 1:] != pad_id).sum())
        total += float(next_token_loss(model, batch, pad_id)) * n
        count += n
    return total, count


def mean_loss(model: PatternLM, rows: torch.Tensor, pad_id: int = _BYTES.pad_id, batch_size: int = 64) -> float:
    """Mean next-token loss (nats per token) over all supervised tokens of ``rows``."""
    total, count = loss_sum(model, rows, pad_id, batch_size)
    return total / count


def text_bytes(texts: list[str]) -> int:
    """What :func:`nats_per_byte` divides by: UTF-8 bytes of ``texts`` plus one per ``<eos>``."""
    return sum(len(t.encode("utf-8")) + 1 for t in texts)


def nats_per_byte(model: PatternLM, texts: list[str], seq_len: int, tokenizer: Tokenizer | None = None) -> float:
    """Next-token loss summed over ``texts`` (joined by ``<eos>``) divided by their bytes
    (:func:`text_bytes`): the same unit whatever the tokenizer (for bytes it is the mean loss per
    token). The stream's first token is never predicted, a negligible bias for long streams."""
    tok = or_bytes(tokenizer)
    total, _ = loss_sum(model, token_rows(texts, seq_len, tok), tok.pad_id)
    return total / text_bytes(texts)
