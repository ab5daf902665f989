"""The 2x2 pixel shuffle of NVLM and InternVL (arXiv 2409.11402 Sec. 3.1): each ``2 x 2`` block of
encoder tokens becomes one token with four times the channels, so a 448-pixel tile's 32 x 32 = 1,024
InternViT patch tokens become 256 tokens for the LLM."""

from __future__ import annotations

import torch


def pixel_shuffle(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """``(B, H, W, C) -> (B, H / f, W / f, C f^2)``; output token ``(i, j)`` holds the input tokens
    ``(f i + p, f j + q)`` for ``p, q`` in ``0 .. f - 1``, concatenated in ``(p, q, c)`` order (InternVL's
    ``pixel_shuffle`` with ``ps_version="v2"``, written with reshapes only)."""
    if x.dim() != 4:
        raise ValueError(f"x: expected (B, H, W, C), got shape {tuple(x.shape)}")
    b, h, w, c = x.shape
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor: {factor} must divide the token grid {h} x {w}")
    x = x.reshape(b, h // factor, factor, w // factor, factor, c)  # (b, i, p, j, q, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h // factor, w // factor, factor * factor * c)
