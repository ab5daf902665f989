"""RETRO's chunked cross-attention (CCA), pattern character ``C``.

RETRO (Borgeaud et al. 2022, Sec. 2.4; the NVIDIA study arXiv:2304.06762, Sec. 2) splits a
sequence of ``n`` tokens into chunks of ``m``; every chunk ``u`` has ``k`` retrieved neighbours of
``r`` tokens each, encoded into ``E_u (k r, d)``. Causality: the neighbours of chunk ``u`` were
retrieved with chunk ``u``'s own text, so a token may use them only once it has seen the whole
chunk. CCA therefore shifts the sequence by ``m - 1``: the token at position ``p >= m - 1``
attends to ``E_u`` with ``u = (p - m + 1) // m`` (the last token of chunk ``u`` and the first
``m - 1`` tokens of chunk ``u + 1``); the first ``m - 1`` tokens attend to nothing (zero output).
In a pattern the layer sits between a self-attention and an FFN layer, as in Megatron's Retro
decoder layer (self-attention, CCA, MLP).

The neighbours arrive as a :class:`NeighbourContext` (``context=`` of the model): it holds the
chunk length and encodes the neighbours on first use, conditioned on the hidden states that
reach the first CCA layer (RETRO's encoder attends to the decoder's chunk states); later CCA
layers reuse that encoding. Without a context the layer adds nothing, so a decoder with ``C``
layers computes exactly the GPT made of its other layers.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from nvrepro.core.lm.config import AttentionConfig
from nvrepro.core.lm.layers.cross_attention import CrossAttention


class NeighbourContext:
    """The retrieved neighbours of a batch, for the CCA layers of one forward pass.

    ``chunk_len``: RETRO's ``m``. ``encode(hidden (b, c m, d)) -> (b, c, k r, d)``: encodes the
    neighbours of the ``c`` chunks given the decoder's hidden states of those chunks; called once,
    by the first CCA layer, with its (normalised) input cut to the first ``c m`` positions.
    ``num_chunks``: ``c``, the chunks that have neighbours.
    """

    def __init__(self, chunk_len: int, num_chunks: int,
                 encode: Callable[[torch.Tensor], torch.Tensor]):
        if chunk_len < 1 or num_chunks < 0:
            raise ValueError(f"chunk_len, num_chunks: need chunk_len >= 1 and num_chunks >= 0, "
                             f"got {chunk_len} and {num_chunks}")
        self.chunk_len = chunk_len
        self.num_chunks = num_chunks
        self._encode = encode
        self._encoded: torch.Tensor | None = None

    def encoded(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(b, c, k r, d)``, computed from ``hidden (b, >= c m, d)`` on the first call."""
        if self._encoded is None:
            need = self.num_chunks * self.chunk_len
            if hidden.shape[1] < need:
                raise ValueError(f"neighbours: {self.num_chunks} chunks of {self.chunk_len} tokens have "
                                 f"neighbours but the sequence has only {hidden.shape[1]} tokens")
            self._encoded = self._encode(hidden[:, :need])
        return self._encoded


def shifted_chunk_of(position: int, chunk_len: int) -> int:
    """The chunk whose neighbours the token at ``position`` attends to (``-1``: none)."""
    return -1 if position < chunk_len - 1 else (position - chunk_len + 1) // chunk_len


class ChunkedCrossAttention(nn.Module):
    """``forward(x (b, n, d), context: NeighbourContext | None) -> (b, n, d)`` (module docstring).

    Positions whose shifted chunk has no neighbours (``u >= context.num_chunks``) get zero output.
    """

    def __init__(self, d_model: int, cfg: AttentionConfig):
        super().__init__()
        self.attention = CrossAttention(d_model, cfg)

    def forward(self, x: torch.Tensor, context: NeighbourContext | None = None) -> torch.Tensor:
        if context is None:
            return torch.zeros_like(x)
        if not isinstance(context, NeighbourContext):
            raise TypeError(f"context: a chunked cross-attention layer ('C') needs a NeighbourContext, "
                            f"got {type(context).__name__}")
        b, n, d = x.shape
        m = context.chunk_len
        encoded = context.encoded(x)  # (b, c, k r, d)
        c = encoded.shape[1]
        # Shift by m - 1 and regroup into chunks: row u holds positions u m + m - 1 ... u m + 2 m - 2.
        shifted = x[:, m - 1:]
        used = min(c, -(-shifted.shape[1] // m))  # chunks that both have neighbours and queries
        out = torch.zeros_like(x)
        if used == 0:
            return out
        span = min(shifted.shape[1], used * m)
        queries = F.pad(shifted[:, :span], (0, 0, 0, used * m - span)).reshape(b * used, m, d)
        keys = encoded[:, :used].reshape(b * used, encoded.shape[2], d)
        attended = self.attention(queries, keys).reshape(b, used * m, d)[:, :span]
        out[:, m - 1:m - 1 + span] = attended
        return out
