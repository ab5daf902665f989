"""Feed-forward blocks: squared-ReLU (Nemotron-H, So et al. 2021 "Primer") and SwiGLU (Llama)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.config import FFNConfig


class FFN(nn.Module):
    """``(b, l, d_model) -> (b, l, d_model)``, no biases.

    * ``relu2``: ``down(relu(up(x))^2)`` — non-gated, as in Nemotron-H.
    * ``swiglu``: ``down(silu(gate(x)) * up(x))`` — as in Llama.
    """

    def __init__(self, d_model: int, cfg: FFNConfig):
        super().__init__()
        self.activation = cfg.activation
        self.up_proj = nn.Linear(d_model, cfg.hidden, bias=False)
        if cfg.activation == "swiglu":
            self.gate_proj = nn.Linear(d_model, cfg.hidden, bias=False)
        self.down_proj = nn.Linear(cfg.hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "swiglu":
            h = F.silu(self.gate_proj(x)) * self.up_proj(x)
        else:
            h = F.relu(self.up_proj(x)).square()
        return self.down_proj(h)
