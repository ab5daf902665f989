"""The vision-to-language projector of NVLM (and InternVL's ``mlp1``): LayerNorm, then a 2-layer MLP
with GELU, from the pixel-shuffled encoder width to the LLM's width."""

from __future__ import annotations

import torch
from torch import nn


class MLPProjector(nn.Module):
    """``(..., in_dim) -> (..., out_dim)``: ``Linear(GELU(Linear(LayerNorm(x))))``, hidden width
    ``hidden_dim`` (default ``out_dim``)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.norm = nn.LayerNorm(in_dim)
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(self.norm(x))))
