"""The pattern-built decoder LM (Nemotron-H, Sec. 2.1), with caches and ``generate()``.

``ModelConfig.pattern`` reads left to right, one character per layer: ``M`` Mamba-2, ``*``
self-attention, ``-`` FFN. Each layer is ``x + mixer(RMSNorm(x))``. A pure Transformer
(``"*-*-"``) and a pure Mamba-2 model (``"MMMM"``) are just other patterns, so comparisons
between them change one string and nothing else.

Decoding keeps one cache entry per layer: a :class:`KVCache` for attention (grows with context)
and a :class:`Mamba2State` for Mamba-2 (constant size) — the reason a hybrid decodes cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.layers.attention import CausalSelfAttention
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer, Mamba2State
from nvrepro.core.lm.layers.mlp import FFN
from nvrepro.core.lm.layers.norms import RMSNorm


@dataclass
class LMCache:
    """Per-layer decoding state: ``KVCache`` for ``*``, ``Mamba2State`` for ``M``, ``None`` for ``-``."""

    layers: list = field(default_factory=list)
    length: int = 0
    capacity: int = 0


class Block(nn.Module):
    """Pre-norm residual block around one mixer. ``(b, l, d) -> (b, l, d)``."""

    def __init__(self, kind: str, cfg: ModelConfig):
        super().__init__()
        self.kind = kind
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        if kind == "M":
            self.mixer = Mamba2Mixer(cfg.d_model, cfg.mamba, cfg.norm_eps)
        elif kind == "*":
            self.mixer = CausalSelfAttention(cfg.d_model, cfg.attention)
        else:
            self.mixer = FFN(cfg.d_model, cfg.ffn)

    def forward(self, x: torch.Tensor, cache=None, doc_ids: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        if self.kind == "-":
            h = self.mixer(h)
        elif self.kind == "*" and doc_ids is not None:
            h = self.mixer(h, cache, doc_ids=doc_ids)
        else:  # Mamba-2 carries its state across document boundaries: doc_ids cannot apply
            h = self.mixer(h, cache)
        return x + h


class PatternLM(nn.Module):
    """Embedding -> blocks from the pattern -> final RMSNorm -> LM head.

    ``forward(input_ids (b, l), cache=None, doc_ids=None) -> logits (b, l, vocab_size)``.
    ``doc_ids (b, l)`` (optional, no cache) restricts the attention layers to a block-diagonal
    causal mask (a token sees only its own document); Mamba-2 layers cannot be masked this way
    and still carry their state across document boundaries.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(kind, cfg) for kind in cfg.pattern)
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self._init_weights()

    def _init_weights(self) -> None:
        # Linear and embedding weights ~ N(0, init_std); Mamba-2's dt_bias, A_log, D and the conv
        # keep the mixer's own initialisation (mamba_ssm's recipe).
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=self.cfg.init_std)

    # ----------------------------------------------------------------------------------
    def allocate_cache(self, batch: int, capacity: int | None = None, device=None,
                       dtype: torch.dtype | None = None) -> LMCache:
        """Empty decoding state for ``batch`` sequences of up to ``capacity`` tokens."""
        capacity = capacity or self.cfg.max_seq_len
        if capacity > self.cfg.max_seq_len:
            raise ValueError(f"max_seq_len: cache capacity {capacity} exceeds the configured "
                             f"max_seq_len={self.cfg.max_seq_len}")
        param = self.embed.weight
        device = device or param.device
        dtype = dtype or param.dtype
        layers = []
        for block in self.layers:
            if block.kind == "*":
                layers.append(block.mixer.allocate_cache(batch, capacity, device, dtype))
            elif block.kind == "M":
                layers.append(Mamba2State.zeros(self.cfg.mamba, batch, device=device, dtype=dtype))
            else:
                layers.append(None)
        return LMCache(layers=layers, length=0, capacity=capacity)

    def forward(self, input_ids: torch.Tensor | None = None, cache: LMCache | None = None,
                doc_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(b, l, vocab)`` for token ids ``input_ids (b, l)``, or for ready-made input
        vectors ``inputs_embeds (b, l, d_model)`` (e.g. projected image tiles next to embedded
        text), continuing ``cache`` when given. Exactly one of the two inputs."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("input_ids, inputs_embeds: give exactly one of the two")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"input_ids: expected shape (batch, length), got {tuple(input_ids.shape)}")
        if inputs_embeds is not None and (inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.cfg.d_model):
            raise ValueError(f"inputs_embeds: expected shape (batch, length, d_model={self.cfg.d_model}), "
                             f"got {tuple(inputs_embeds.shape)}")
        length = (input_ids if input_ids is not None else inputs_embeds).shape[1]
        offset = cache.length if cache is not None else 0
        total = offset + length
        if total > self.cfg.max_seq_len:
            raise ValueError(f"max_seq_len: sequence of {total} tokens is longer than the configured "
                             f"max_seq_len={self.cfg.max_seq_len}; raise model.max_seq_len or shorten the input")
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        for i, block in enumerate(self.layers):
            x = block(x, cache.layers[i] if cache is not None else None, doc_ids)
        if cache is not None:
            cache.length = total
        return self.lm_head(self.norm_f(x))

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, seed: int | None = None,
                 eos_id: int | None = None) -> torch.Tensor:
        """Prefill the prompt, then decode one token at a time through the caches.

        ``temperature == 0`` is greedy; otherwise sample from ``softmax(logits / T)``, optionally
        restricted to the ``top_k`` most likely tokens, with a generator seeded by ``seed``.
        Returns ``(b, l + new)`` token ids (stops early only if every row emitted ``eos_id``).
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens: must be >= 0, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {temperature}")
        b, l = input_ids.shape
        cache = self.allocate_cache(b, l + max_new_tokens)
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=input_ids.device)
            generator.manual_seed(0 if seed is None else seed)
        logits = self(input_ids, cache)[:, -1]
        out = [input_ids]
        done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
        for step in range(max_new_tokens):
            next_id = _pick(logits, temperature, top_k, generator)
            out.append(next_id[:, None])
            if eos_id is not None:
                done |= next_id == eos_id
                if bool(done.all()):
                    break
            if step + 1 < max_new_tokens:
                logits = self(next_id[:, None], cache)[:, -1]
        return torch.cat(out, dim=1)


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, generator) -> torch.Tensor:
    """Next token ids ``(b,)`` from last-position logits ``(b, vocab)``."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def build_model(cfg: ModelConfig | dict, device: torch.device | str | None = None) -> PatternLM:
    """Build a :class:`PatternLM`; ``device="meta"`` allocates no memory (for counting)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    if device is None:
        return PatternLM(cfg)
    with torch.device(device):
        return PatternLM(cfg)
