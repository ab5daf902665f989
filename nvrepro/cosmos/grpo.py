"""GRPO math in plain torch: group-relative advantages, per-token log-probabilities, the k3 KL estimator and
the clipped surrogate loss.

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, Sec. 4.1) is PPO
without a value network: for each prompt q it samples a group of G responses o_1..o_G from the old policy,
scores them, and uses the reward normalised within the group as the advantage of every token of a response
(outcome supervision, Sec. 4.1.2). The objective (eq. 3) it maximises is

    J(θ) = E[ 1/G Σ_i 1/|o_i| Σ_t { min(ρ_{i,t} Â_{i,t}, clip(ρ_{i,t}, 1-ε, 1+ε) Â_{i,t}) - β D_KL[π_θ||π_ref] } ]

with ρ_{i,t} = π_θ(o_{i,t}|q, o_{i,<t}) / π_old(o_{i,t}|q, o_{i,<t}) and the per-token KL estimated by
(eq. 4) π_ref/π_θ - log(π_ref/π_θ) - 1. Cosmos-Reason1 (arXiv 2503.15558) uses GRPO with rule-based
rewards (:mod:`nvrepro.cosmos.rewards`) for its RL stage.

Conventions (the same as TRL's ``GRPOTrainer``, which the tests check against): :func:`grpo_loss` returns the
*loss* -J (minimised); the group std is Bessel-corrected and ``eps`` is added to the std, not under the
square root; the clip band may be asymmetric (``clip_low``/``clip_high``, DAPO's "clip-higher"). No
gradient-accumulation normaliser is applied: divide the loss yourself if you accumulate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["GRPOLoss", "group_advantages", "token_log_probs", "kl_k3", "grpo_loss"]

ADVANTAGE_SCALES = ("group", "batch", "none")
AGGREGATIONS = ("sequence", "token")


class GRPOLoss(NamedTuple):
    """What :func:`grpo_loss` returns."""

    loss: Tensor  # scalar, differentiable w.r.t. log_probs
    kl: Tensor  # scalar, detached: masked mean of the per-token k3 KL (0 when no reference was given)
    clip_fraction: Tensor  # scalar, detached: share of masked tokens whose clipped term was the one kept


def group_advantages(rewards: Tensor, group_size: int, *, scale: str = "group", eps: float = 1e-4) -> Tensor:
    """Group-relative advantages (DeepSeekMath Sec. 4.1.2, outcome supervision).

    Args:
        rewards: ``(P * G,)`` one scalar reward per response, prompt-major: the G responses of prompt 0, then
            the G of prompt 1, and so on.
        group_size: G, the number of responses sampled per prompt (at least 2).
        scale: how the centred reward ``r_i - mean(group of i)`` is divided:
            ``"group"``: by the std of i's group plus ``eps`` (the paper; TRL ``scale_rewards="group"``);
            ``"batch"``: by the std of all P*G rewards plus ``eps`` (TRL ``scale_rewards="batch"``);
            ``"none"``: not at all (Dr. GRPO; TRL ``scale_rewards="none"``).
        eps: added to the std so that a group whose rewards are all equal gets advantage 0, not 0/0 (with
            ``eps=0`` such a group gets 0 too).

    Returns:
        ``(P * G,)`` float tensor (float32 unless ``rewards`` is a wider float), the same layout as ``rewards``.
        The std is the unbiased (Bessel-corrected, divide by G-1) one, as in TRL.
    """
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 2:
        raise ValueError(
            f"group_size must be an int >= 2, got {group_size!r}: GRPO needs at least 2 responses per prompt "
            "(a group of one has no baseline to compare its reward with)"
        )
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"scale must be one of {ADVANTAGE_SCALES}, got {scale!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"rewards must be a 1-D tensor of shape (P * G,), got {shape}")
    if rewards.numel() == 0 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"rewards of shape {tuple(rewards.shape)} cannot be split into groups of group_size={group_size}: "
            "its length must be a positive multiple of group_size (P prompts x G responses)"
        )
    if not torch.isfinite(rewards).all():
        raise ValueError("rewards must be finite (no NaN or inf)")

    # Integer or half-precision rewards are promoted: the std of a few rewards must not be computed in bf16.
    values = rewards if rewards.dtype in (torch.float32, torch.float64) else rewards.float()
    grouped = values.view(-1, group_size)  # (P, G), one row per prompt
    # The group mean is the baseline that replaces PPO's value network.
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "none":
        return centred.reshape(-1)
    if scale == "group":
        std = grouped.std(dim=1, keepdim=True, correction=1)
    else:
        std = values.std(correction=1)
    std = std + eps  # eps on the std, not on the variance (TRL's placement)
    # A group whose rewards are all equal carries no signal: with eps = 0 it would be 0/0, so leave its
    # (zero) centred reward undivided. With eps > 0 the guard never fires.
    return (centred / torch.where(std > 0, std, torch.ones_like(std))).reshape(-1)


def token_log_probs(logits: Tensor, tokens: Tensor) -> Tensor:
    """log π(tokens[b, t] | ...) from next-token logits.

    Args:
        logits: ``(b, t, V)``; ``logits[b, t]`` must already be the distribution that predicted
            ``tokens[b, t]`` (shift a causal LM's logits by one before calling).
        tokens: ``(b, t)`` integer token ids in ``[0, V)``.

    Returns:
        ``(b, t)`` float32 log-probabilities (log-softmax in float32 so that bf16 logits do not lose the
        small differences the importance ratio is made of).
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (b, t, V), got {tuple(logits.shape)}")
    if tokens.shape != logits.shape[:2]:
        raise ValueError(f"tokens must have shape (b, t) = {tuple(logits.shape[:2])}, got {tuple(tokens.shape)}")
    if tokens.is_floating_point() or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    vocab = logits.shape[-1]
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(f"tokens must lie in [0, {vocab}) (the logits' vocabulary size)")
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return log_probs.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)


def kl_k3(log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """Per-token unbiased, always non-negative estimate of KL(π_θ || π_ref) (DeepSeekMath eq. 4; Schulman's k3):
    ``π_ref/π_θ - log(π_ref/π_θ) - 1 = exp(ref - logp) - (ref - logp) - 1``, same shape as the inputs."""
    if log_probs.shape != ref_log_probs.shape:
        raise ValueError(
            f"log_probs and ref_log_probs must have the same shape, got {tuple(log_probs.shape)} "
            f"and {tuple(ref_log_probs.shape)}"
        )
    log_ratio = ref_log_probs - log_probs
    return torch.exp(log_ratio) - log_ratio - 1


def grpo_loss(
    log_probs: Tensor,
    old_log_probs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    ref_log_probs: Tensor | None = None,
    beta: float = 0.0,
    clip_low: float = 0.2,
    clip_high: float | None = None,
    aggregation: str = "sequence",
) -> GRPOLoss:
    """The GRPO clipped surrogate loss, -J of DeepSeekMath eq. 3.

    Per token: ``-min(ρ A, clip(ρ, 1 - clip_low, 1 + clip_high) A) + beta * KL``, with ``ρ = exp(logp -
    old_logp)`` and KL from :func:`kl_k3`.

    Args:
        log_probs: ``(b, t)`` log π_θ of the sampled tokens (carries the gradient).
        old_log_probs: ``(b, t)`` log π_old of the same tokens, from the policy that sampled them (treated as a
            constant). Equal to ``log_probs.detach()`` on the first update after sampling, making ρ = 1.
        advantages: ``(b,)`` one advantage per response (:func:`group_advantages`), shared by its tokens.
        mask: ``(b, t)`` 1 (or True) on the response tokens that count, 0 on prompt and padding.
        ref_log_probs: ``(b, t)`` log π_ref of the tokens; required when ``beta > 0``.
        beta: KL coefficient (>= 0).
        clip_low, clip_high: the band is ``[1 - clip_low, 1 + clip_high]``; ``clip_high=None`` means
            ``clip_low`` (the paper's symmetric ε).
        aggregation: ``"sequence"``: mean over each response's masked tokens, then over responses (eq. 3's
            1/G Σ_i 1/|o_i| Σ_t; TRL ``loss_type="grpo"``); ``"token"``: one mean over all masked tokens of the
            batch, so long responses weigh more (TRL ``loss_type="bnpo"``).

    Returns:
        :class:`GRPOLoss` (``loss``, ``kl``, ``clip_fraction``). A response with no masked token adds 0 to the
        ``"sequence"`` mean but still counts in its denominator (as in TRL).
    """
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must have shape (b, t), got {tuple(log_probs.shape)}")
    shape = tuple(log_probs.shape)
    for name, tensor in (("old_log_probs", old_log_probs), ("mask", mask), ("ref_log_probs", ref_log_probs)):
        if tensor is not None and tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have the shape of log_probs {shape}, got {tuple(tensor.shape)}")
    if tuple(advantages.shape) != shape[:1]:
        raise ValueError(f"advantages must have shape (b,) = {shape[:1]}, got {tuple(advantages.shape)}")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    if beta > 0 and ref_log_probs is None:
        raise ValueError(f"ref_log_probs is required when beta > 0 (got beta={beta})")
    if clip_high is None:
        clip_high = clip_low
    if not (isinstance(clip_low, (int, float)) and 0 <= clip_low < 1):
        raise ValueError(f"clip_low must be in [0, 1) so that the band's lower end 1 - clip_low is > 0, "
                         f"got {clip_low!r}")
    if not (isinstance(clip_high, (int, float)) and math.isfinite(clip_high) and clip_high >= 0):
        raise ValueError(f"clip_high must be a finite number >= 0, got {clip_high!r}")
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must hold only 0 and 1 (or False and True)")

    mask = mask.to(log_probs.dtype)
    # old_log_probs, advantages and the reference come from frozen policies / the reward: constants for the
    # gradient, whatever graph the caller's tensors carry.
    advantage = advantages.detach().to(log_probs.dtype).unsqueeze(1)  # (b, 1): every token gets its response's
    ratio = torch.exp(log_probs - old_log_probs.detach())  # ρ_{i,t} of eq. 3
    clipped_ratio = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
    # Pessimistic bound of PPO: the min keeps the clipped term only where it is the smaller, so the gradient
    # stops once ρ has left the band on the side the advantage pushes it towards.
    per_token = -torch.min(ratio * advantage, clipped_ratio * advantage)

    if ref_log_probs is not None:
        per_token_kl = kl_k3(log_probs, ref_log_probs.detach())
        if beta > 0:
            per_token = per_token + beta * per_token_kl  # eq. 3: the KL is a per-token penalty, not in the reward
    else:
        per_token_kl = None

    if aggregation == "sequence":
        per_sequence = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # 1/|o_i| Σ_t
        loss = per_sequence.mean()  # 1/G Σ_i (over all the batch's responses)
    else:
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)

    with torch.no_grad():
        token_count = mask.sum().clamp(min=1.0)
        kl = (per_token_kl * mask).sum() / token_count if per_token_kl is not None else log_probs.new_zeros(())
        # Clipped = the min picked the clipped term and it differs: ρ below the band with A < 0, or above it with
        # A > 0 (the tokens that get no gradient; TRL's clip_ratio/region_mean).
        clipped = ((ratio < 1 - clip_low) & (advantage < 0)) | ((ratio > 1 + clip_high) & (advantage > 0))
        clip_fraction = (clipped.to(mask.dtype) * mask).sum() / token_count
    return GRPOLoss(loss=loss, kl=kl.detach(), clip_fraction=clip_fraction.detach())
