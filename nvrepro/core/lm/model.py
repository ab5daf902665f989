"""The pattern-built decoder LM (Nemotron-H, Sec. 2.1), with caches and ``generate()``.

``ModelConfig.pattern`` reads left to right, one character per layer: ``M`` Mamba-2, ``*``
self-attention, ``-`` FFN, ``X`` gated cross-attention (the registry of
:mod:`nvrepro.core.lm.layers.kinds` maps each character to its mixer). Each layer is
``x + mixer(RMSNorm(x))``. A pure Transformer (``"*-*-"``) and a pure Mamba-2 model
(``"MMMM"``) are just other patterns, so comparisons between them change one string and
nothing else: hence :class:`PatternLM`, not "HybridLM".

Decoding keeps one cache entry per layer: a :class:`KVCache` for attention (grows with context)
and a :class:`Mamba2State` for Mamba-2 (constant size), the reason a hybrid decodes cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.layers.kinds import layer_kind
from nvrepro.core.lm.layers.norms import RMSNorm
from nvrepro.core.lm.static_decoding import KINDS as STATIC_KINDS, MIN_NEW_TOKENS, StaticDecoder


@dataclass
class LMCache:
    """Per-layer decoding state (``KVCache`` for ``*``, ``Mamba2State`` for ``M``, ``None`` for
    kinds without one), the number of tokens seen and the capacity."""

    layers: list = field(default_factory=list)
    length: int = 0
    capacity: int = 0


class Block(nn.Module):
    """Pre-norm residual block around one mixer of a registered kind. ``(b, l, d) -> (b, l, d)``.

    ``doc_ids`` reaches only kinds that take it (self-attention: Mamba-2 carries its state across
    document boundaries, so it cannot be masked per document); ``context`` only kinds that
    attend to one (cross-attention)."""

    def __init__(self, kind: str, cfg: ModelConfig):
        super().__init__()
        self.kind = kind
        self.spec = layer_kind(kind)
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mixer = self.spec.build(cfg)

    def forward(self, x: torch.Tensor, cache=None, doc_ids: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        # The decoding state goes second, positionally (each mixer names it its own way); the
        # other inputs by keyword, only when set, so a mixer's own defaults hold otherwise.
        state = (cache,) if "cache" in self.spec.inputs else ()
        extra = {n: v for n, v in (("doc_ids", doc_ids), ("context", context))
                 if n in self.spec.inputs and v is not None}
        return x + self.mixer(self.norm(x), *state, **extra)


class PatternLM(nn.Module):
    """Embedding -> blocks from the pattern -> final RMSNorm -> LM head.

    ``forward(input_ids (b, l), cache=None, doc_ids=None, *, inputs_embeds=None, context=None)
    -> logits (b, l, vocab_size)``. ``doc_ids (b, l)`` (optional, no cache) restricts the
    attention layers to a block-diagonal causal mask (a token sees only its own document);
    Mamba-2 layers cannot be masked this way and still carry their state across document
    boundaries. ``context (b, m, d_model)`` is what cross-attention layers (``X``) attend to.
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
        layers = [None if block.spec.new_state is None
                  else block.spec.new_state(block.mixer, self.cfg, batch, capacity, device, dtype)
                  for block in self.layers]
        return LMCache(layers=layers, length=0, capacity=capacity)

    def forward(self, input_ids: torch.Tensor | None = None, cache: LMCache | None = None,
                doc_ids: torch.Tensor | None = None, *,
                inputs_embeds: torch.Tensor | None = None,
                context: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(b, l, vocab)`` for token ids ``input_ids (b, l)``, or for ready-made input
        vectors ``inputs_embeds (b, l, d_model)`` (e.g. projected image tiles next to embedded
        text), continuing ``cache`` when given. Exactly one of the two inputs. ``context
        (b, m, d_model)``: the sequence cross-attention layers attend to (needed iff the pattern
        has one)."""
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
            x = block(x, cache.layers[i] if cache is not None else None, doc_ids, context)
        if cache is not None:
            cache.length = total
        return self.lm_head(self.norm_f(x))

    def static_decoding_default(self, context=None, extra_inputs: dict | None = None, new_tokens: int = 0) -> bool:
        """Whether :meth:`generate` decodes through a :class:`StaticDecoder` by default: on CUDA,
        for patterns of the kinds it knows, without cross-attention context or extra prefill
        inputs, for at least ``MIN_NEW_TOKENS`` new tokens (fewer: capturing the graph costs more
        than it saves), and only where ``forward`` is this class's own (a subclass's forward may
        compute more than the layers). On a CPU never: the cached eager steps stay the default."""
        return (self.embed.weight.is_cuda and set(self.cfg.pattern) <= STATIC_KINDS and context is None
                and not extra_inputs and new_tokens >= MIN_NEW_TOKENS and type(self).forward is PatternLM.forward)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, seed: int | None = None,
                 eos_id: int | None = None, context: torch.Tensor | None = None, suppress: tuple[int, ...] = (),
                 static: bool | None = None, **prefill_inputs) -> torch.Tensor:
        """Prefill the prompt, then decode one token at a time through the caches.

        ``temperature == 0`` is greedy; otherwise sample from ``softmax(logits / T)``, optionally
        restricted to the ``top_k`` most likely tokens, with a generator seeded by ``seed``.
        ``context (b, m, d_model)`` is passed to every step (cross-attention layers);
        ``prefill_inputs`` only to the prefill (a subclass's extra inputs, e.g. a VLM's images).
        ``suppress``: token ids never emitted (e.g. a VLM's image placeholder, which only images fill).
        Returns ``(b, l + new)`` token ids (stops early only if every row emitted ``eos_id``).

        ``static``: decode through a :class:`~nvrepro.core.lm.static_decoding.StaticDecoder`
        (fixed-shape steps, one CUDA graph replay per token on a GPU). Default: on CUDA where it
        applies (:meth:`static_decoding_default`), never on a CPU.
        Both give the same tokens up to float rounding.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens: must be >= 0, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature: must be >= 0, got {temperature}")
        b, l = input_ids.shape
        if static is None:
            static = self.static_decoding_default(context, prefill_inputs, max_new_tokens)
        if static and (context is not None or prefill_inputs):
            raise ValueError("static: static decoding takes token ids only (no context or extra prefill inputs)")
        static = static and max_new_tokens > 0
        generator = None
        if temperature > 0:
            generator = torch.Generator(device=input_ids.device)
            generator.manual_seed(0 if seed is None else seed)
        if static:
            decoder = StaticDecoder(self, b, l + max_new_tokens)
            logits = decoder.prefill(input_ids)
            step = decoder.step
        else:
            cache = self.allocate_cache(b, l + max_new_tokens)
            logits = self(input_ids, cache, context=context, **prefill_inputs)[:, -1]

            def step(ids):
                return self(ids[:, None], cache, context=context)[:, -1]
        out = [input_ids]
        done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
        for n in range(max_new_tokens):
            if suppress:
                logits = logits.index_fill(-1, torch.tensor(suppress, device=logits.device), float("-inf"))
            next_id = _pick(logits, temperature, top_k, generator)
            out.append(next_id[:, None])
            if eos_id is not None:
                done |= next_id == eos_id
                if bool(done.all()):
                    break
            if n + 1 < max_new_tokens:
                logits = step(next_id)
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


# Config class -> model class. A paper whose network extends PatternLM (RETRO adds an encoder)
# registers its pair, so build_model, nvrepro info and weight loading build the right network.
MODEL_CLASSES: dict[type, type] = {ModelConfig: PatternLM}


def register_model_class(config_class: type, model_class: type) -> None:
    """Make :func:`build_model` build ``model_class`` for configs of ``config_class``."""
    if not (isinstance(config_class, type) and issubclass(config_class, ModelConfig)):
        raise TypeError(f"config_class: must be a ModelConfig subclass, got {config_class!r}")
    MODEL_CLASSES[config_class] = model_class


def model_class_for(cfg: ModelConfig) -> type:
    """The registered model class of ``cfg``'s config class (nearest registered base class)."""
    for cls in type(cfg).__mro__:
        if cls in MODEL_CLASSES:
            return MODEL_CLASSES[cls]
    raise TypeError(f"model: no model class registered for {type(cfg).__name__}")


def base_config(cfg: ModelConfig, added_kinds: str, extra_fields: tuple[str, ...] = ()) -> ModelConfig:
    """The plain :class:`ModelConfig` that ``cfg`` extends: its pattern without the characters of
    ``added_kinds`` and without the subclass's ``extra_fields``, the same widths."""
    data = cfg.to_dict()
    for name in extra_fields:
        data.pop(name)
    data["pattern"] = "".join(c for c in cfg.pattern if c not in added_kinds)
    return ModelConfig.from_dict(data)


@torch.no_grad()
def load_base_model(extended: PatternLM, base: PatternLM, added_kinds: str, extra_fields: tuple[str, ...] = ()) -> PatternLM:
    """Copy a trained ``base`` LM into ``extended``, a model that adds layers of ``added_kinds`` (and other
    parts) to it: every other layer in order, the embedding, final norm and head. The added layers and
    parts keep their initialisation (RETRO's retro-fitting, a VLM's LLM from its text model).
    ``base.cfg`` must be :func:`base_config` of ``extended.cfg``. Returns ``extended``."""
    expected = base_config(extended.cfg, added_kinds, extra_fields)
    if base.cfg.to_dict() != expected.to_dict():
        raise ValueError(f"base: its config differs from the extended model's without {added_kinds!r} layers "
                         f"(pattern {base.cfg.pattern!r} vs {expected.pattern!r}, or the widths)")
    blocks = iter(base.layers)
    for block in extended.layers:
        if block.kind not in added_kinds:
            block.load_state_dict(next(blocks).state_dict())
    for name in ("embed", "norm_f", "lm_head"):
        getattr(extended, name).load_state_dict(getattr(base, name).state_dict())
    return extended


def build_model(cfg: ModelConfig | dict, device: torch.device | str | None = None) -> PatternLM:
    """Build the model of ``cfg`` (a :class:`PatternLM` for a plain :class:`ModelConfig`, the
    registered subclass for a paper's config); ``device="meta"`` allocates no memory (for counting)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    model_class = model_class_for(cfg)
    if device is None:
        return model_class(cfg)
    with torch.device(device):
        return model_class(cfg)
