"""Causal grouped-query self-attention with a KV cache.

GQA (Ainslie et al. 2023): ``n_heads`` query heads share ``n_kv_heads`` key/value heads, which
shrinks the KV cache by ``n_heads / n_kv_heads``. Positions: none by default (NoPE, as in
Nemotron-H's attention layers, which sit among Mamba-2 layers that already carry order) or RoPE.

Kernels: torch's ``scaled_dot_product_attention`` everywhere; ``flash_attn_func`` for the
cache-free causal path when flash-attn is importable and the tensors are fp16/bf16 on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.config import AttentionConfig
from nvrepro.core.lm.layers.rope import rope_tables, rotate
from nvrepro.core.lm.layers.rope_scaling import scaled_rope_from_config

try:  # optional GPU extra
    from flash_attn import flash_attn_func as _flash_attn_func
except Exception:  # pragma: no cover - not installable on CPU machines
    _flash_attn_func = None


@dataclass
class KVCache:
    """Preallocated keys and values of one attention layer.

    ``k``, ``v``: ``(b, n_kv_heads, capacity, head_dim)``; ``length`` tokens are filled.
    Preallocation keeps decoding O(1) per token in copies (``torch.cat`` would be O(length)).
    """

    k: torch.Tensor
    v: torch.Tensor
    length: int = 0

    @classmethod
    def allocate(cls, batch: int, n_kv_heads: int, head_dim: int, capacity: int,
                 device=None, dtype=torch.float32) -> "KVCache":
        shape = (batch, n_kv_heads, capacity, head_dim)
        return cls(torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(shape, device=device, dtype=dtype))

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def append(self, k_new: torch.Tensor, v_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write ``(b, n_kv, l, hd)`` new keys/values; return views of all filled ones."""
        end = self.length + k_new.shape[2]
        if end > self.capacity:
            raise ValueError(f"KV cache capacity {self.capacity} exceeded: {end} tokens; "
                             "allocate the cache with a larger capacity (max_seq_len)")
        self.k[:, :, self.length:end] = k_new
        self.v[:, :, self.length:end] = v_new
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class CausalSelfAttention(nn.Module):
    """``(b, l, d_model) -> (b, l, d_model)``; with a cache, the l new tokens follow the cached ones."""

    def __init__(self, d_model: int, cfg: AttentionConfig):
        super().__init__()
        self.cfg = cfg
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(d_model, cfg.n_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, d_model, bias=False)
        # Not a buffer: model.to(bfloat16) would round the frequencies. Built lazily per device.
        self._inv_freq: torch.Tensor | None = None
        self.rope_attention_factor = 1.0  # set with the frequencies by inv_freq()

    def inv_freq(self, device) -> torch.Tensor:
        """RoPE inverse frequencies ``(head_dim/2,)`` in float64 on ``device``, after the
        configured scaling (``cfg.rope_scaling``; none by default)."""
        if self._inv_freq is None or self._inv_freq.device != torch.device(device):
            self._inv_freq, self.rope_attention_factor = scaled_rope_from_config(self.cfg, device=device)
        return self._inv_freq

    def allocate_cache(self, batch: int, capacity: int, device=None, dtype=torch.float32) -> KVCache:
        return KVCache.allocate(batch, self.n_kv_heads, self.head_dim, capacity, device, dtype)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                doc_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``doc_ids`` ``(b, l)`` integer (optional, no cache): a token attends only to earlier
        tokens of its own document (block-diagonal causal mask), as if each document ran alone
        from its own first token -- except for RoPE positions, which keep counting across the block
        (relative positions inside a document are unchanged, so the scores are the same)."""
        b, l, _ = x.shape
        offset = cache.length if cache is not None else 0
        positions = torch.arange(offset, offset + l, device=x.device) if self.cfg.rope else None
        q, k, v = self.project(x, positions)

        if doc_ids is not None:
            if cache is not None:
                raise ValueError("doc_ids: a cross-document mask is for training/scoring without a cache")
            if doc_ids.shape != (b, l):
                raise ValueError(f"doc_ids: expected shape {(b, l)}, got {tuple(doc_ids.shape)}")
            causal = torch.ones(l, l, dtype=torch.bool, device=x.device).tril()
            mask = (doc_ids[:, :, None] == doc_ids[:, None, :]) & causal  # (b, l, l)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None],
                                                 enable_gqa=self.n_heads != self.n_kv_heads)
            return self.o_proj(out.transpose(1, 2).reshape(b, l, -1))

        if cache is None and self._use_flash(q):
            out = _flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), causal=True)
            return self.o_proj(out.reshape(b, l, -1))

        if cache is not None:
            return self.o_proj(self.attend_cached(q, k, v, cache))
        out = self._sdpa(q, k, v, offset)  # (b, h, l, hd)
        return self.o_proj(out.transpose(1, 2).reshape(b, l, -1))

    def project(self, x: torch.Tensor, positions: torch.Tensor | None,
                tables: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values of ``x (b, l, d_model)``: ``q (b, n_heads, l, head_dim)``,
        ``k, v (b, n_kv_heads, l, head_dim)``, RoPE applied at ``positions (l,)`` when configured
        (or with ready ``tables``, ``cos, sin`` of :func:`~nvrepro.core.lm.layers.rope.rope_tables`
        for those positions, in x's dtype: a decode step builds them once for every layer).

        Shapes depend on ``l`` only, not on the cache, so a decode step can fuse this with the
        layers before it (:mod:`nvrepro.core.lm.decoding`).
        """
        b, l, _ = x.shape
        q = self.q_proj(x).view(b, l, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, l, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, l, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.cfg.rope:
            if tables is None:
                if positions is None:
                    raise ValueError("positions: required for a RoPE attention layer")
                tables = rope_tables(positions, self.inv_freq(x.device), q.dtype)
            q, k = rotate(q, *tables), rotate(k, *tables)
            if self.rope_attention_factor != 1.0:
                # YaRN temperature: HF multiplies cos and sin, i.e. both q and k (logits x factor^2).
                q, k = q * self.rope_attention_factor, k * self.rope_attention_factor
        return q, k, v

    def attend_cached(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      cache: KVCache) -> torch.Tensor:
        """Append ``k, v`` to ``cache`` and attend from ``q (b, n_heads, l, head_dim)`` to every
        cached token; returns ``(b, l, n_heads * head_dim)``, ready for ``o_proj``."""
        offset = cache.length
        k, v = cache.append(k, v)
        out = self._sdpa(q, k, v, offset)
        return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)

    def _sdpa(self, q, k, v, offset: int) -> torch.Tensor:
        l, total = q.shape[2], k.shape[2]
        gqa = self.n_heads != self.n_kv_heads
        if offset == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        if l == 1:  # one new token sees every cached token: no mask needed
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        # Several new tokens after a cached prefix: query i sits at position offset + i.
        mask = torch.arange(total, device=q.device)[None, :] <= (offset + torch.arange(l, device=q.device))[:, None]
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)

    @staticmethod
    def _use_flash(q: torch.Tensor) -> bool:
        return _flash_attn_func is not None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16)
