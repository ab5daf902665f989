"""The Retro language model: a decoder with chunked cross-attention and a neighbour encoder.

RETRO (Borgeaud et al. 2022) as trained in the NVIDIA study (arXiv:2304.06762, Sec. 2) and in
InstructRetro (arXiv:2310.07713): a GPT decoder whose layers at fixed positions gain chunked
cross-attention (CCA, pattern character ``C``, :mod:`nvrepro.core.lm.layers.chunked_cross_attention`)
to the retrieved neighbours of each chunk; the neighbours are encoded by a small bidirectional
encoder that attends to the decoder's hidden states of the chunk they were retrieved for.

* :class:`RetroConfig`: a :class:`~nvrepro.core.lm.config.ModelConfig` plus ``chunk_len`` (m),
  ``num_neighbours`` (k), ``encoder_layers``; a neighbour is ``2 m`` tokens (chunk + continuation);
* :func:`retro_layer_numbers` / :func:`retro_pattern`: where the CCA layers go (Megatron's rule:
  every 3rd layer from layer 6 for decoders of at most 15 layers, from layer 9 otherwise);
* :class:`RetroEncoder`: per neighbour, ``encoder_layers`` pre-norm layers of bidirectional
  self-attention, cross-attention to the decoder states of its chunk, and an FFN;
* :class:`RetroLM`: ``forward(input_ids (b, n), neighbours (b, c, k, 2m) | None) -> logits
  (b, n, V)`` with ``c <= n // m``; without neighbours it is exactly the GPT of its non-CCA layers
  (the CCA layers add zero), which is what InstructRetro's retro-fitting starts from
  (:func:`retrofit_from_gpt`).

The embedding is shared by decoder and encoder (RETRO, Sec. 2.4). Positions: the encoder adds a
learned position embedding over the ``2 m`` neighbour tokens (its attention has no mask and
would otherwise see a bag of tokens); the decoder uses whatever its attention config says.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.layers.chunked_cross_attention import NeighbourContext
from nvrepro.core.lm.layers.cross_attention import CrossAttention
from nvrepro.core.lm.layers.mlp import FFN
from nvrepro.core.lm.layers.norms import RMSNorm
from nvrepro.core.lm.model import PatternLM, base_config, load_base_model, register_model_class
from nvrepro.core.tooling.validation import require, require_positive_int

CCA = "C"


def retro_layer_numbers(n_layers: int) -> list[int]:
    """1-based decoder layers that carry CCA: every 3rd from layer 6 when ``n_layers <= 15``,
    else from layer 9 (the study's Sec. 2 / Megatron-LM's ``retro_layer_numbers``)."""
    require_positive_int(n_layers, "n_layers")
    return list(range(6 if n_layers <= 15 else 9, n_layers + 1, 3))


def retro_pattern(n_layers: int, attention: str = "*", ffn: str = "-") -> str:
    """The pattern of an ``n_layers``-layer Retro decoder: each layer is self-attention then FFN,
    with ``C`` between them in the layers of :func:`retro_layer_numbers`."""
    cca = set(retro_layer_numbers(n_layers))
    return "".join(attention + (CCA if i in cca else "") + ffn for i in range(1, n_layers + 1))


@dataclass
class RetroConfig(ModelConfig):
    """A Retro decoder (``pattern`` with at least one ``C``) and its neighbour encoder: chunks of
    ``chunk_len`` tokens, ``num_neighbours`` per chunk, ``encoder_layers`` encoder layers (the
    encoder uses the decoder's ``d_model``, ``attention`` and ``ffn`` widths)."""

    chunk_len: int = 64
    num_neighbours: int = 2
    encoder_layers: int = 2

    @property
    def neighbour_len(self) -> int:
        """Tokens per neighbour: the retrieved chunk and its continuation."""
        return 2 * self.chunk_len

    def validate(self) -> None:
        super().validate()
        for name in ("chunk_len", "num_neighbours", "encoder_layers"):
            require_positive_int(getattr(self, name), name)
        require(CCA in self.pattern, "pattern",
                f"a Retro decoder needs at least one chunked cross-attention layer 'C', got {self.pattern!r}")
        require(self.max_seq_len >= self.chunk_len, "max_seq_len",
                f"must hold at least one chunk of chunk_len={self.chunk_len}, got {self.max_seq_len}")

    @property
    def gpt_pattern(self) -> str:
        """The pattern without its CCA layers: the GPT this decoder extends."""
        return self.pattern.replace(CCA, "")


class RetroEncoderLayer(nn.Module):
    """``(B, r, d), chunk states (B, m, d) -> (B, r, d)``: bidirectional self-attention, attention to
    the chunk's decoder states, FFN; each pre-RMSNorm with a residual."""

    def __init__(self, cfg: RetroConfig):
        super().__init__()
        self.norm_self = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attention = CrossAttention(cfg.d_model, cfg.attention)
        self.norm_cross = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.cross_attention = CrossAttention(cfg.d_model, cfg.attention)
        self.norm_ffn = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = FFN(cfg.d_model, cfg.ffn)

    def forward(self, x: torch.Tensor, chunk_states: torch.Tensor) -> torch.Tensor:
        h = self.norm_self(x)
        x = x + self.self_attention(h, h)
        x = x + self.cross_attention(self.norm_cross(x), chunk_states)
        return x + self.ffn(self.norm_ffn(x))


class RetroEncoder(nn.Module):
    """Encodes embedded neighbours ``(B, r, d)`` given their chunk's decoder states ``(B, m, d)``."""

    def __init__(self, cfg: RetroConfig):
        super().__init__()
        self.position = nn.Embedding(cfg.neighbour_len, cfg.d_model)
        self.layers = nn.ModuleList(RetroEncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)

    def forward(self, embedded: torch.Tensor, chunk_states: torch.Tensor) -> torch.Tensor:
        x = embedded + self.position.weight[: embedded.shape[1]]
        for layer in self.layers:
            x = layer(x, chunk_states)
        return self.norm(x)


class RetroLM(PatternLM):
    """A :class:`PatternLM` with ``C`` layers and a :class:`RetroEncoder` (module docstring).

    ``forward(input_ids (b, n), cache=None, doc_ids=None, *, inputs_embeds=None, context=None,
    neighbours=None) -> logits (b, n, V)``. ``neighbours (b, c, k, 2 m)`` token ids: the ``k``
    neighbours retrieved for each of the first ``c`` chunks (``c <= n // m``); chunk ``u``'s are
    seen from position ``u m + m - 1`` on. ``None``: the GPT of the non-CCA layers.
    """

    def __init__(self, cfg: RetroConfig):
        super().__init__(cfg)
        self.encoder = RetroEncoder(cfg)
        self._init_weights()

    def forward(self, input_ids: torch.Tensor | None = None, cache=None, doc_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None, context=None,
                neighbours: torch.Tensor | None = None) -> torch.Tensor:
        if neighbours is not None:
            if cache is not None:
                raise ValueError("neighbours: cached decoding does not re-retrieve per chunk; generate with "
                                 "nvrepro.retro.generation, which runs the full sequence each step")
            if context is not None:
                raise ValueError("neighbours, context: give one of the two")
            tokens = input_ids if input_ids is not None else inputs_embeds
            context = self.neighbour_context(neighbours, tokens.shape[0], tokens.shape[1])
        return super().forward(input_ids, cache, doc_ids, inputs_embeds=inputs_embeds, context=context)

    def neighbour_context(self, neighbours: torch.Tensor, batch: int, length: int) -> NeighbourContext:
        """Check ``neighbours (b, c, k, r)`` against the sequence and wrap them for the CCA layers."""
        cfg: RetroConfig = self.cfg
        expected = f"(batch={batch}, chunks<={length // cfg.chunk_len}, k={cfg.num_neighbours}, {cfg.neighbour_len})"
        if (neighbours.dim() != 4 or neighbours.shape[0] != batch or neighbours.shape[1] > length // cfg.chunk_len
                or neighbours.shape[2] != cfg.num_neighbours or neighbours.shape[3] != cfg.neighbour_len):
            raise ValueError(f"neighbours: expected token ids of shape {expected}, got {tuple(neighbours.shape)}")
        b, c, k, r = neighbours.shape
        m, d = cfg.chunk_len, cfg.d_model

        def encode(hidden: torch.Tensor) -> torch.Tensor:
            # Each neighbour attends to the decoder states of the chunk it was retrieved for.
            chunk_states = hidden.reshape(b, c, 1, m, d).expand(b, c, k, m, d).reshape(b * c * k, m, d)
            embedded = self.embed(neighbours.reshape(b * c * k, r))
            return self.encoder(embedded, chunk_states).reshape(b, c, k * r, d)

        return NeighbourContext(m, c, encode)


register_model_class(RetroConfig, RetroLM)


RETRO_FIELDS = ("chunk_len", "num_neighbours", "encoder_layers")


def gpt_config(cfg: RetroConfig) -> ModelConfig:
    """The plain GPT config of a Retro config: its pattern without ``C`` and the same widths."""
    return base_config(cfg, CCA, RETRO_FIELDS)


def retrofit_from_gpt(retro: RetroLM, gpt: PatternLM) -> RetroLM:
    """Copy a trained GPT into the decoder of ``retro`` (InstructRetro, Sec. 3: the decoder starts
    from the pretrained GPT; CCA and encoder start fresh). The GPT's pattern must be
    ``retro.cfg.gpt_pattern`` with the same widths; returns ``retro``."""
    try:
        return load_base_model(retro, gpt, CCA, RETRO_FIELDS)
    except ValueError as err:
        raise ValueError(str(err).replace("base:", "gpt:", 1)) from None
