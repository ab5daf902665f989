"""Generation with retrieval in the loop, and the repetition rate of generated text.

At inference RETRO retrieves as it writes (Borgeaud et al. 2022, Sec. 2.4; the study,
arXiv:2304.06762, Sec. 4.1): whenever a chunk of ``m`` tokens is complete, its neighbours are
looked up and every later token may attend to them (through the shifted CCA). The study finds
that RETRO's generations degenerate less into repetition than GPT's; :func:`repetition_rate`
measures that on the generated text.

* :func:`generate_with_retrieval`: greedy decoding of a :class:`~nvrepro.retro.model.RetroLM`
  (retrieving per completed chunk) or of any LM without neighbours, by running the whole sequence
  each step (no cache: toy lengths; CCA's per-chunk neighbours change as chunks complete);
* :func:`repetition_rate`: the share of word n-grams that repeat an earlier n-gram of the same text.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.evaluation.supervised import device_of

Retriever = Callable[[np.ndarray], np.ndarray]  # chunk tokens (m,) -> neighbour tokens (k, 2 m)


@torch.no_grad()
def generate_with_retrieval(model: torch.nn.Module, prompt: Sequence[int], max_new_tokens: int, *,
                            retrieve: Retriever | None = None, chunk_len: int | None = None,
                            eos_id: int | None = None) -> list[int]:
    """Greedy continuation of ``prompt`` (token ids) by ``max_new_tokens`` tokens.

    With ``retrieve`` (a Retro model), each chunk of ``chunk_len`` tokens of the growing sequence
    (prompt included) gets its neighbours ``retrieve(chunk (m,)) -> (k, 2 m)`` once complete, and
    the model runs with ``neighbours (1, c, k, 2 m)`` for the ``c`` complete chunks. Without, the
    model runs on the ids alone (GPT). Returns the new tokens only (stops after ``eos_id``).
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: must be >= 0, got {max_new_tokens}")
    if retrieve is not None and (chunk_len is None or chunk_len < 1):
        raise ValueError(f"chunk_len: retrieval needs the chunk length, got {chunk_len!r}")
    limit = model.cfg.max_seq_len
    if len(prompt) + max_new_tokens > limit:
        raise ValueError(f"max_new_tokens: prompt ({len(prompt)}) + {max_new_tokens} new tokens exceed "
                         f"the model's max_seq_len={limit}")
    if not prompt:
        raise ValueError("prompt: needs at least one token")
    device = device_of(model)
    ids = list(prompt)
    neighbours: list[np.ndarray] = []
    new: list[int] = []
    with eval_mode(model):
        for _ in range(max_new_tokens):
            inputs = {"input_ids": torch.tensor([ids], device=device)}
            if retrieve is not None:
                while len(neighbours) < len(ids) // chunk_len:
                    u = len(neighbours)
                    neighbours.append(np.asarray(retrieve(np.asarray(ids[u * chunk_len:(u + 1) * chunk_len]))))
                if neighbours:
                    inputs["neighbours"] = torch.as_tensor(np.stack(neighbours)[None], device=device)
            token = int(model(**inputs)[0, -1].argmax())
            ids.append(token)
            new.append(token)
            if eos_id is not None and token == eos_id:
                break
    return new


def repetition_rate(text: str, n: int = 4) -> float:
    """Share of the word ``n``-grams of ``text`` that already occurred earlier in it (0: none
    repeats; close to 1: a loop). ``nan`` when the text has no ``n``-gram."""
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return float("nan")
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for gram in grams:
        repeats += gram in seen
        seen.add(gram)
    return repeats / len(grams)
