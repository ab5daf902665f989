"""The vision-to-language projector of NVLM (and InternVL's ``mlp1``): LayerNorm, then a 2-layer MLP
with GELU, from the pixel-shuffled encoder width to the LLM's width. NVLM-X uses a 1-layer one
(LayerNorm, Linear; arXiv 2409.11402 Sec. 4.5); NVLM-D-72B's linears have no bias."""

from __future__ import annotations

import torch
from torch import nn


class MLPProjector(nn.Module):
    """``(..., in_dim) -> (..., out_dim)``: ``Linear(GELU(Linear(LayerNorm(x))))`` with hidden width
    ``hidden_dim`` (default ``out_dim``), or ``Linear(LayerNorm(x))`` with ``layers=1``; ``bias``: whether
    the linears have one."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, layers: int = 2,
                 bias: bool = True) -> None:
        super().__init__()
        if layers not in (1, 2):
            raise ValueError(f"layers: the projector has 1 or 2 linear layers, got {layers}")
        hidden_dim = hidden_dim or out_dim
        self.norm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim if layers == 2 else out_dim, bias=bias)
        self.fc2 = nn.Linear(hidden_dim, out_dim, bias=bias) if layers == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(self.norm(x))
        return x if self.fc2 is None else self.fc2(nn.functional.gelu(x))
