"""Batched greedy generation and multiple-choice scoring for evaluation.

Prompts of different lengths cannot share a batch by padding when the model has Mamba-2 layers:
pad tokens would run through the recurrence and change its state (left padding) or the
positions the answer starts at (right padding). So both functions here group rows by length
and batch each group whole: the results equal running every row alone (a test checks), at the
cost of one forward per distinct length.

* :func:`generate_greedy`: the continuation of each prompt, ``max_new_tokens`` long (a list of
  token-id lists, in input order), via the model's ``generate`` (prefill + cached decode).
* :func:`option_logprobs`: for a prompt and candidate continuations, the summed log-probability
  of each continuation's tokens (teacher-forced); :func:`choose_option` takes the argmax, with
  an optional per-token normalisation.
"""

from __future__ import annotations

from typing import Sequence

import torch

from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.evaluation.supervised import device_of


def _by_length(rows: Sequence[Sequence[int]], batch_size: int) -> list[list[int]]:
    """Indices of ``rows`` grouped by length, each group split into chunks of ``batch_size``."""
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(len(row), []).append(i)
    return [idx[k:k + batch_size] for _, idx in sorted(groups.items()) for k in range(0, len(idx), batch_size)]


@torch.no_grad()
def generate_greedy(model: torch.nn.Module, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                    batch_size: int = 32, eos_id: int | None = None) -> list[list[int]]:
    """Greedy continuations of ``prompts`` (token-id lists, any lengths >= 1): one list of
    ``max_new_tokens`` ids per prompt, in input order (shorter only if the whole batch hit
    ``eos_id``). ``model.generate(ids (b, l), n) -> (b, l + n)`` does the decoding."""
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: must be >= 0, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompts[{i}]: empty prompt")
    device = device_of(model)
    out: list[list[int] | None] = [None] * len(prompts)
    with eval_mode(model):
        for idx in _by_length(prompts, batch_size):
            ids = torch.tensor([list(prompts[i]) for i in idx], device=device)
            gen = model.generate(ids, max_new_tokens, eos_id=eos_id)[:, ids.shape[1]:].tolist()
            for i, row in zip(idx, gen):
                out[i] = row
    return out  # type: ignore[return-value]


@torch.no_grad()
def option_logprobs(model: torch.nn.Module, prompt: Sequence[int], options: Sequence[Sequence[int]],
                    batch_size: int = 32) -> torch.Tensor:
    """``(n_options,)`` summed log-probabilities ``log p(option | prompt)`` of each option's
    tokens, teacher-forced, float64. ``model(input_ids=(b, l)) -> (b, l, V)`` logits."""
    if len(prompt) == 0:
        raise ValueError("prompt: empty")
    if len(options) == 0 or any(len(o) == 0 for o in options):
        raise ValueError("options: need at least one option, each with at least one token")
    device = device_of(model)
    rows = [list(prompt) + list(o) for o in options]
    scores = torch.empty(len(options), dtype=torch.float64)
    start = len(prompt) - 1  # logits at t predict token t + 1
    with eval_mode(model):
        for idx in _by_length(rows, batch_size):
            ids = torch.tensor([rows[i] for i in idx], device=device)
            logp = model(input_ids=ids).double().log_softmax(-1)[:, start:-1]
            targets = ids[:, start + 1:]
            scores[idx] = logp.gather(-1, targets[..., None]).squeeze(-1).sum(-1).cpu()
    return scores


def choose_option(model: torch.nn.Module, prompt: Sequence[int], options: Sequence[Sequence[int]],
                  per_token: bool = False) -> int:
    """Index of the most likely option (ties: the first). ``per_token`` divides each option's
    log-probability by its length, so long options are not penalised for their length."""
    scores = option_logprobs(model, prompt, options)
    if per_token:
        scores = scores / torch.tensor([len(o) for o in options], dtype=torch.float64)
    return int(torch.argmax(scores))
