"""Sampling responses from the VLM, and the log-probabilities GRPO needs of them.

Prompts of different lengths never share a padded batch for decoding (a Mamba-2 layer would run the
padding through its recurrence), so :func:`sample_responses` groups prompts by length and decodes each
group whole, every prompt repeated ``group_size`` times; responses stop after ``<eos>``.
:func:`response_log_probs` scores prompt + response rows in one right-padded forward pass (padding
after a row's text cannot change that row's earlier positions).
"""

from __future__ import annotations

from typing import Sequence

import torch

from nvrepro.cosmos.grpo import token_log_probs


def _by_length(prompts: Sequence[Sequence[int]]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    return [groups[k] for k in sorted(groups)]


@torch.no_grad()
def sample_responses(model, prompts: Sequence[Sequence[int]], pixel_values: torch.Tensor, image_mask: torch.Tensor,
                     *, group_size: int = 1, max_new_tokens: int, temperature: float, seed: int, eos_id: int,
                     max_rows: int = 128) -> list[list[int]]:
    """``len(prompts) * group_size`` responses (token ids up to and including ``<eos>``), prompt-major:
    the ``group_size`` responses of prompt 0, then of prompt 1, ... ``temperature`` 0 is greedy.
    ``pixel_values (P, n, 3, S, S)`` and ``image_mask (P, n)`` are the prompts' frames; at most
    ``max_rows`` rows decode at once."""
    if group_size < 1:
        raise ValueError(f"group_size: must be >= 1, got {group_size}")
    if len(prompts) != pixel_values.shape[0]:
        raise ValueError(f"pixel_values: {pixel_values.shape[0]} frame stacks for {len(prompts)} prompts")
    device = pixel_values.device
    out: list[list[int] | None] = [None] * (len(prompts) * group_size)
    was_training = model.training
    model.eval()
    per_call = max(1, max_rows // group_size)
    call = 0
    for same_length in _by_length(prompts):
        for start in range(0, len(same_length), per_call):
            idx = same_length[start:start + per_call]
            ids = torch.tensor([prompts[i] for i in idx], device=device).repeat_interleave(group_size, 0)
            rows = torch.tensor(idx, device=device).repeat_interleave(group_size)
            # the image placeholder is never sampled: only images fill it (a response holding one could not
            # be scored or continued)
            new = model.generate(ids, max_new_tokens, temperature=temperature, seed=seed * 1009 + call, eos_id=eos_id,
                                 suppress=(model.cfg.image_token_id,), pixel_values=pixel_values[rows],
                                 image_mask=image_mask[rows])[:, ids.shape[1]:]
            call += 1
            for r, (i, row) in enumerate(zip(rows.tolist(), new.tolist())):
                if eos_id in row:
                    row = row[:row.index(eos_id) + 1]
                out[i * group_size + r % group_size] = row
    model.train(was_training)
    return out  # type: ignore[return-value]


def response_log_probs(model, prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]],
                       pixel_values: torch.Tensor, image_mask: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log_probs (N, T), mask (N, T))``: the log-probability of each response token given the prompt
    and the response so far (``T``: the longest response; ``mask`` marks real tokens). Row ``r`` is
    ``prompts[r] + responses[r]`` with frames ``pixel_values[r]``; differentiable through ``model``."""
    if len(prompts) != len(responses):
        raise ValueError(f"responses: {len(responses)} responses for {len(prompts)} prompts")
    device = pixel_values.device
    longest = max(len(p) + len(c) for p, c in zip(prompts, responses))
    t = max(len(c) for c in responses)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long, device=device)
    targets = torch.full((len(prompts), t), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros(len(prompts), t, dtype=torch.bool, device=device)
    positions = torch.zeros(len(prompts), t, dtype=torch.long, device=device)
    for r, (p, c) in enumerate(zip(prompts, responses)):
        ids[r, :len(p) + len(c)] = torch.tensor(list(p) + list(c), device=device)
        targets[r, :len(c)] = torch.tensor(list(c), device=device)
        mask[r, :len(c)] = True
        # logits at position len(p) - 1 + k predict response token k
        positions[r] = torch.arange(len(p) - 1, len(p) - 1 + t, device=device).clamp(max=longest - 1)
    logits = model(input_ids=ids, pixel_values=pixel_values, image_mask=image_mask)
    picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    return token_log_probs(picked, targets) * mask, mask
