"""RMSNorm and the grouped, gated RMSNorm of Mamba-2.

RMSNorm (Zhang & Sennrich 2019): ``y = x / sqrt(mean(x^2) + eps) * weight``, computed in
float32 and cast back, as Megatron and HF do, so bf16 training sees the same statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.layers.dtypes import cast


class RMSNorm(nn.Module):
    """RMSNorm over the last dimension. Input/output: ``(..., dim)``."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        # Upcast low precision to float32, but never downcast float64 (exactness tests).
        cdtype = torch.promote_types(dtype, torch.float32)
        # F.rms_norm is the same formula in one call (cheaper per decoded token than four ops).
        x = F.rms_norm(cast(x, cdtype), x.shape[-1:], cast(self.weight, cdtype), self.eps)
        return cast(x, dtype)


class GatedGroupRMSNorm(nn.Module):
    """Mamba-2's output norm: ``RMSNorm_groups(y * silu(z))``.

    Nemotron-H normalises *after* the gate (``norm_before_gate=False`` in mamba_ssm) and over
    ``n_groups`` groups of ``dim / n_groups`` channels each, so that tensor-parallel shards of
    whole groups need no cross-shard reduction.

    Inputs ``y``, ``z``: ``(..., dim)``; output ``(..., dim)``.
    """

    def __init__(self, dim: int, n_groups: int = 1, eps: float = 1e-5):
        super().__init__()
        if dim % n_groups:
            raise ValueError(f"n_groups: must divide dim={dim}, got {n_groups}")
        self.eps = eps
        self.n_groups = n_groups
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        dtype = y.dtype
        # Upcast low precision to float32, but never downcast float64 (exactness tests).
        cdtype = torch.promote_types(dtype, torch.float32)
        y = cast(y, cdtype) * F.silu(cast(z, cdtype))
        shape = y.shape
        y = y.reshape(*shape[:-1], self.n_groups, shape[-1] // self.n_groups)
        y = F.rms_norm(y, y.shape[-1:], eps=self.eps)
        return cast(y.reshape(shape) * cast(self.weight, cdtype), dtype)
