"""Public data for private federated learning (arXiv 2305.12132, Sec. 3-5): tokenizers, pretraining,
distillation and the distribution-matching sampler, all on public text only.

The paper's levers, each a function here:

* **Tokenizer.** :func:`train_tokenizer` trains a byte-level BPE (HF ``tokenizers``) on the texts
  it is given: public text gives a *public* tokenizer (what an LLM's tokenizer is), the training
  users' text a *private* one (which leaks: its merges spell users' private words).
* **Pretraining.** :func:`pretrain` trains a model centrally on public text before DP-FL starts.
* **Distillation.** :func:`pretrain` with a ``teacher``: the student learns the teacher's
  next-token distributions on public text (KL divergence at temperature ``T``, times ``T^2``,
  Hinton et al. 2015), the paper's route from a large public model to an on-device one.
* **Distribution matching.** :func:`select_public` ranks public sentences by how well a model
  trained with DP-FL on the clients predicts them (:func:`matching_scores`: nats per byte, lower
  is closer to the private distribution) and keeps the best ``budget``; ``"random"`` keeps a
  uniform sample. The scoring model is a DP release, so selecting with it costs no extra privacy
  (post-processing).

:func:`public_pool` is the public corpus as sentences: the World English Bible split at sentence
ends plus template sentences with public words (:func:`nvrepro.fl.users.public_texts`), so the
pool is mostly far from users' chat and a small part close to it, as web text is for a keyboard
model.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nvrepro.core.data.tokenizers import BPETokenizer, train_bpe_tokenizer
from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int
from nvrepro.fl.task import Tokenizer, next_token_loss, build_lm, nats_per_byte, or_bytes, token_rows
from nvrepro.fl.users import public_texts

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SAMPLERS = ("matching", "random")


@functools.lru_cache(maxsize=4)
def _bible_sentences() -> tuple[str, ...]:
    from nvrepro.core.data.corpus import load_corpus

    return tuple(s for chapter in load_corpus("web_bible") for s in _SENTENCE_END.split(chapter) if s.strip())


def public_pool(num_template_sentences: int, seed: int = 0, max_bible_sentences: int | None = None) -> list[str]:
    """Public sentences: the Bible's (the first ``max_bible_sentences``; ``None``: all, about 35 k)
    followed by ``num_template_sentences`` template sentences with public words only."""
    bible = list(_bible_sentences()[:max_bible_sentences])
    return bible + public_texts(num_template_sentences, seed, include_bible=False)


def is_template(pool: list[str], num_template_sentences: int) -> np.ndarray:
    """Which pool entries are template sentences (the pool's last ``num_template_sentences``)."""
    flags = np.zeros(len(pool), dtype=bool)
    flags[len(pool) - num_template_sentences:] = True
    return flags


def train_tokenizer(texts: list[str], vocab_size: int) -> BPETokenizer:
    """A byte-level BPE of ``vocab_size`` ids trained on ``texts`` (deterministic)."""
    return train_bpe_tokenizer(texts, vocab_size)


def pretrain(model_config: dict[str, Any], texts: list[str], *, steps: int, seq_len: int, batch_size: int = 32,
             lr: float = 3e-3, seed: int = 0, tokenizer: Tokenizer | None = None, teacher=None,
             temperature: float = 1.0, init_state: dict | None = None, progress: bool = False,
             desc: str = "pretrain") -> tuple[dict[str, torch.Tensor], list[float]]:
    """Central training on public ``texts``: ``steps`` AdamW steps (cosine decay) on batches of
    ``batch_size`` rows of ``seq_len`` tokens drawn by a generator seeded with ``seed``.

    Without ``teacher`` the loss is next-token cross-entropy. With ``teacher`` (a model over the same
    tokenizer) it is distillation: ``T^2 KL(softmax(teacher / T) || softmax(student / T))`` per
    token, averaged over non-pad tokens. Returns the trained state dict and the loss of every step.
    """
    require_positive_int(steps, "steps")
    require(temperature > 0, "temperature", f"must be > 0, got {temperature}")
    require(len(texts) > 0, "texts", "no public text to train on")
    tok = or_bytes(tokenizer)
    rows = token_rows(texts, seq_len, tok)
    pad_id = tok.pad_id
    model = build_lm(model_config, seed)
    if init_state is not None:
        model.load_state_dict(init_state)
    if teacher is not None:
        teacher.eval()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + np.cos(np.pi * min(i, steps) / steps)))
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc=desc, disable=not progress, mininterval=2.0):
        batch = rows[torch.randint(len(rows), (batch_size,), generator=gen)]
        if teacher is None:
            loss = next_token_loss(model, batch, pad_id)
        else:
            loss = distillation_loss(model(batch[:, :-1]), _teacher_logits(teacher, batch[:, :-1]),
                                     batch[:, 1:] != pad_id, temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, losses


@torch.no_grad()
def _teacher_logits(teacher, inputs: torch.Tensor) -> torch.Tensor:
    return teacher(inputs)


def distillation_loss(student_logits, teacher_logits, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``T^2 KL(p_teacher || p_student)`` at temperature ``T``, summed over the vocabulary and
    averaged over the positions where ``mask`` is true. Logits ``(batch, seq, vocab)``, mask
    ``(batch, seq)``."""
    s, t = student_logits, teacher_logits
    require(s.shape == t.shape, "teacher", f"teacher logits {tuple(t.shape)} differ from the student's {tuple(s.shape)}")
    log_p_s = F.log_softmax(s.float() / temperature, dim=-1)
    log_p_t = F.log_softmax(t.float() / temperature, dim=-1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)
    mask = mask.to(kl.dtype)
    return temperature ** 2 * (kl * mask).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def matching_scores(model_config: dict[str, Any], state: dict, texts: list[str], seq_len: int,
                    tokenizer: Tokenizer | None = None, progress: bool = False) -> np.ndarray:
    """Nats per byte of each text under the model ``state`` (lower: closer to what it was trained
    on). One score per text, shape ``(len(texts),)``."""
    model = build_lm(model_config, 0)
    model.load_state_dict(state)
    return np.array([nats_per_byte(model, [t], seq_len, tokenizer)
                     for t in tqdm(texts, desc="score public text", disable=not progress, mininterval=2.0)])


def select_public(pool: list[str], budget: int, method: Literal["matching", "random"],
                  scores: np.ndarray | None = None, seed: int = 0) -> list[int]:
    """Indices of ``budget`` pool sentences: the lowest ``scores`` (``"matching"``; ties by index)
    or a uniform sample without replacement (``"random"``, seeded). Sorted ascending."""
    require(method in SAMPLERS, "method", f"must be one of {SAMPLERS}, got {method!r}")
    require_positive_int(budget, "budget")
    require(budget <= len(pool), "budget", f"must be <= the pool's {len(pool)} sentences, got {budget}")
    if method == "random":
        return sorted(np.random.default_rng([seed, 3]).choice(len(pool), budget, replace=False).tolist())
    if scores is None or len(scores) != len(pool):
        raise ConfigError(f"scores: the matching sampler needs one score per pool sentence ({len(pool)}), "
                          f"got {None if scores is None else len(scores)}")
    return sorted(np.argsort(np.asarray(scores), kind="stable")[:budget].tolist())
