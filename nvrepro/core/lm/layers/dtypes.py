"""Dtype helpers for the per-token decode path.

Generating one token runs a few hundred tiny PyTorch operations, so their fixed per-call cost,
not arithmetic, sets the speed on a CPU. ``t.to(dtype)`` costs a full dispatcher round trip
(about 1.5 us) even when ``t`` already has that dtype; :func:`cast` skips it in Python.
"""

from __future__ import annotations

import torch


def cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t.to(dtype)``, without the call when ``t`` already has ``dtype`` (returns ``t`` itself)."""
    return t if t.dtype == dtype else t.to(dtype)
