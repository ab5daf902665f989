"""Cross-attention from the token stream to a ``context`` sequence (pattern character ``X``).

Queries come from the hidden states ``x (b, l, d_model)``, keys and values from ``context
(b, m, d_model)`` (projected image tiles in NVLM-X, retrieved neighbours in RETRO); every token
sees the whole context (no causal mask, no positions). With ``gated=True`` (the ``X`` layer kind)
the output is multiplied by ``tanh(gate)`` with ``gate`` initialised to 0, so inserting the layer
into a trained LM leaves its function unchanged at the start of training (Flamingo, Alayrac et
al. 2022, Sec. 3.1; NVLM, Dai et al. 2024, Sec. 4.2 for NVLM-X). Ungated, the same module is
RETRO's encoder attention: bidirectional self-attention (``context = x``) and the encoder's
attention to the decoder's chunk states. Widths: an :class:`AttentionConfig` (GQA heads).

A :class:`MaskedContext` adds a per-query mask ``allowed (b, l, m)`` to the context: NVLM-X's
tile-tag tokens see only their own tile (:func:`nvrepro.nvlm.tile_tags.tag_cross_attention_mask`). A
query that may see no context position at all (a text-only sample, a tag whose tile is in the decoder)
gets a zero output, not the NaN a fully masked softmax would give.

No decoding state: the context does not grow, so each step attends to it afresh.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.config import AttentionConfig


class MaskedContext(NamedTuple):
    """A context sequence with a per-query mask: ``states (b, m, d_model)`` and ``allowed (b, l, m)`` bool,
    ``True`` where query position ``t`` may attend to context position ``j``."""

    states: torch.Tensor
    allowed: torch.Tensor


class CrossAttention(nn.Module):
    """``forward(x (b, l, d), context (b, m, d)) -> (b, l, d)``: ``o(attn(q(x), k(c), v(c)))``,
    times ``tanh(gate)`` when ``gated``. ``key_padding (b, m)`` bool, optional: ``True`` marks
    context positions no query may see. ``context`` may be a :class:`MaskedContext` (per-query mask);
    queries that see nothing get 0."""

    def __init__(self, d_model: int, cfg: AttentionConfig, gated: bool = False):
        super().__init__()
        self.cfg = cfg
        self.q_proj = nn.Linear(d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, d_model, bias=False)
        self.gate = nn.Parameter(torch.zeros(1)) if gated else None
        if gated:
            self.gate._no_weight_decay = True

    def forward(self, x: torch.Tensor, context: torch.Tensor | MaskedContext | None = None,
                key_padding: torch.Tensor | None = None) -> torch.Tensor:
        if context is None:
            raise ValueError("context: a cross-attention layer ('X' in the pattern) needs context "
                             "(batch, m, d_model); pass context= to the model")
        allowed = None
        if isinstance(context, MaskedContext):
            context, allowed = context
        if context.dim() != 3 or context.shape[0] != x.shape[0] or context.shape[-1] != x.shape[-1]:
            raise ValueError(f"context: expected shape (batch={x.shape[0]}, m, d_model={x.shape[-1]}), "
                             f"got {tuple(context.shape)}")
        b, l, _ = x.shape
        m, h, kv, hd = context.shape[1], self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.head_dim
        if allowed is not None and (allowed.shape != (b, l, m) or allowed.dtype != torch.bool):
            raise ValueError(f"context.allowed: expected a bool mask of shape (batch={b}, length={l}, m={m}), "
                             f"got {allowed.dtype} {tuple(allowed.shape)}")
        if key_padding is not None:
            keep = ~key_padding[:, None, :]
            allowed = keep.expand(b, l, m) if allowed is None else allowed & keep
        q = self.q_proj(x).view(b, l, h, hd).transpose(1, 2)
        k = self.k_proj(context).view(b, m, kv, hd).transpose(1, 2)
        v = self.v_proj(context).view(b, m, kv, hd).transpose(1, 2)
        if kv != h:  # GQA: each key/value head serves h / kv query heads
            k, v = k.repeat_interleave(h // kv, dim=1), v.repeat_interleave(h // kv, dim=1)
        mask = blind = None
        if allowed is not None:
            # A query with nothing to see would softmax over -inf only (NaN): let it see everything,
            # then zero its output.
            blind = ~allowed.any(-1)  # (b, l)
            mask = (allowed | blind[..., None])[:, None]  # (b, 1, l, m), True: may attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (b, h, l, hd)
        out = out.transpose(1, 2).reshape(b, l, h * hd)
        if blind is not None:
            out = out.masked_fill(blind[..., None], 0.0)
        out = self.o_proj(out)
        return out if self.gate is None else torch.tanh(self.gate) * out


class GatedCrossAttention(CrossAttention):
    """The ``X`` layer kind: :class:`CrossAttention` with a ``tanh`` gate initialised at 0."""

    def __init__(self, d_model: int, cfg: AttentionConfig):
        super().__init__(d_model, cfg, gated=True)
