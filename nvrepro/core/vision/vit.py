"""A small ViT encoder (InternViT's shape at toy width): a strided-convolution patch embedding,
learned position embeddings, pre-norm Transformer blocks (PyTorch's ``nn.TransformerEncoderLayer``
with ``norm_first=True``: bidirectional attention, GELU MLP) and a final LayerNorm.

``(N, 3, S, S)`` images -> ``(N, S / P, S / P, D)`` patch tokens on their grid (no class token: NVLM
feeds every patch token, after the pixel shuffle, to the LLM)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nvrepro.core.tooling.validation import require, require_positive_int


@dataclass
class ViTConfig:
    """``image_size`` S and ``patch_size`` P (S divisible by P), width ``d_model``, ``n_layers`` blocks
    of ``n_heads`` heads and an MLP ``mlp_ratio`` times wider."""

    image_size: int = 64
    patch_size: int = 8
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        for name in ("image_size", "patch_size", "d_model", "n_layers", "n_heads"):
            require_positive_int(getattr(self, name), name)
        require(self.image_size % self.patch_size == 0, "patch_size",
                f"must divide image_size={self.image_size}, got {self.patch_size}")
        require(self.d_model % self.n_heads == 0, "n_heads", f"must divide d_model={self.d_model}, got {self.n_heads}")
        require(self.mlp_ratio > 0, "mlp_ratio", f"must be > 0, got {self.mlp_ratio}")

    @property
    def grid(self) -> int:
        """Patch tokens per side."""
        return self.image_size // self.patch_size


class ViTEncoder(nn.Module):
    """``(N, 3, S, S) -> (N, S / P, S / P, d_model)`` (module docstring)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(3, cfg.d_model, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.grid * cfg.grid, cfg.d_model))
        nn.init.normal_(self.pos_embed, std=0.02)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.n_heads, int(cfg.mlp_ratio * cfg.d_model), dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        s = self.cfg.image_size
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2:] != (s, s):
            raise ValueError(f"images: expected (N, 3, {s}, {s}), got {tuple(images.shape)}")
        x = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed  # (N, G*G, D)
        x = self.norm(self.blocks(x))
        return x.reshape(len(images), self.cfg.grid, self.cfg.grid, self.cfg.d_model)
