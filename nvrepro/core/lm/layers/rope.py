"""Rotary position embedding (Su et al. 2021, RoFormer).

Nemotron-H uses no position embedding at all (NoPE); Llama-shaped comparison models and the
long-context track use RoPE. Scaled variants (PI, NTK, YaRN) plug in by returning other
inverse frequencies and an attention scale; this module holds the plain form.
"""

from __future__ import annotations

import torch


def rope_inv_freq(head_dim: int, theta: float, device=None) -> torch.Tensor:
    """Inverse frequencies ``theta^(-2i/head_dim)`` for ``i < head_dim/2``. Shape ``(head_dim/2,)``, float64."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim
    return 1.0 / theta**exponent


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos, sin``, each ``(l, head_dim)`` in ``dtype``, of the angles ``positions (l,) x inv_freq
    (head_dim/2,)`` (repeated for the two halves): what :func:`rotate` multiplies by."""
    # Angles in float64: at a million positions float32 angles are off by ~0.1 rad. The table is
    # only (l, hd/2), so the cost is negligible.
    angles = positions.to(torch.float64)[:, None] * inv_freq.to(torch.float64)[None, :]  # (l, hd/2)
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([cos, cos], dim=-1).to(dtype), torch.cat([sin, sin], dim=-1).to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE with ready tables (:func:`rope_tables`): ``x (b, heads, l, head_dim)``, ``cos, sin
    (l, head_dim)``; returns a tensor of x's shape and dtype."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def apply_rope(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of channels by position-dependent angles (half-split layout, as HF Llama).

    x: ``(b, heads, l, head_dim)``; positions: ``(l,)`` integer; inv_freq: ``(head_dim/2,)``.
    Returns a tensor of x's shape and dtype.
    """
    return rotate(x, *rope_tables(positions, inv_freq, x.dtype))
