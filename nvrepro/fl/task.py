"""The learning task shared by the client and the server: a tiny core LM on users' bytes.

Framework-free (torch and :mod:`nvrepro.core` only): :func:`build_lm` (a seeded
:class:`~nvrepro.core.lm.model.PatternLM` from a :class:`~nvrepro.core.lm.config.ModelConfig`
dict), :func:`user_rows` (a user's sentences as byte-token rows), :func:`local_train` (the
client's few SGD steps) and :func:`mean_loss` (next-token loss, the server's evaluation).

Local training is a plain torch loop rather than a Lightning ``fit``: a client does only a few
optimizer steps per round, a Trainer costs more to set up than those steps take and adds
loggers, callbacks and its own seeding, while the loop is a dozen lines whose batches come from
one seeded generator (so a client's update is a pure function of its inputs).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from nvrepro.core.data.tokenizers import ByteTokenizer
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

_TOKENIZER = ByteTokenizer()


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


def token_rows(texts: list[str], seq_len: int) -> torch.Tensor:
    """Sentences joined by ``<eos>`` into one byte stream, cut into rows of ``seq_len + 1`` tokens
    (inputs and pre-shifted labels); the last row is padded with ``<pad>``."""
    stream: list[int] = []
    for text in texts:
        stream += _TOKENIZER.encode(text) + [_TOKENIZER.eos_id]
    width = seq_len + 1
    stream += [_TOKENIZER.pad_id] * (-len(stream) % width)
    return torch.tensor(stream, dtype=torch.long).view(-1, width)


def user_rows(user_id: int, num_sentences: int, seq_len: int, seed: int = 0) -> torch.Tensor:
    """User ``user_id``'s dataset (``num_sentences`` sentences of population ``seed``) as rows."""
    return token_rows(user_texts(user_id, num_sentences, seed), seq_len)


def _loss(model: PatternLM, rows: torch.Tensor) -> torch.Tensor:
    labels = rows[:, 1:].clone()
    labels[labels == _TOKENIZER.pad_id] = -100
    return causal_lm_loss(model(rows[:, :-1]), labels)


def local_train(model: PatternLM, rows: torch.Tensor, steps: int, lr: float, batch_size: int,
                seed: int) -> float:
    """``steps`` SGD steps on batches of ``batch_size`` rows drawn (with replacement) by a
    generator seeded with ``seed``; returns the mean training loss over the steps."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    total = 0.0
    for _ in range(steps):
        batch = rows[torch.randint(len(rows), (batch_size,), generator=gen)]
        loss = _loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach())
    return total / steps


@torch.no_grad()
def mean_loss(model: PatternLM, rows: torch.Tensor, batch_size: int = 64) -> float:
    """Mean next-token loss over all supervised tokens of ``rows``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        n = int((batch[:, 1:] != _TOKENIZER.pad_id).sum())
        total += float(_loss(model, batch)) * n
        count += n
    return total / count
