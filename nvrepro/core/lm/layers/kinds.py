"""The layer-kind registry: what each character of a model pattern builds.

A :class:`LayerKind` says, for one pattern character, how to build the mixer from a
:class:`~nvrepro.core.lm.config.ModelConfig`, which config field holds its widths (validated
only when the pattern uses the kind), which per-call inputs the mixer takes besides the hidden
states (``cache``, ``doc_ids``, ``context``) and how to allocate its decoding state. The model
(:mod:`nvrepro.core.lm.model`), the size report (:mod:`nvrepro.core.lm.info`) and the config read
this table instead of comparing characters, so a new kind (RETRO's chunked cross-attention, a
vision adapter) is one mixer class plus one :func:`register_layer_kind` call.

Built in: ``M`` Mamba-2, ``*`` causal self-attention, ``-`` FFN, ``X`` gated cross-attention
to a ``context`` sequence (:mod:`~nvrepro.core.lm.layers.cross_attention`) and ``C`` RETRO's
chunked cross-attention to encoded neighbours
(:mod:`~nvrepro.core.lm.layers.chunked_cross_attention`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

import torch
from torch import nn

from nvrepro.core.lm import config as config_module
from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.layers.attention import CausalSelfAttention
from nvrepro.core.lm.layers.chunked_cross_attention import ChunkedCrossAttention
from nvrepro.core.lm.layers.cross_attention import GatedCrossAttention
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer, Mamba2State
from nvrepro.core.lm.layers.mlp import FFN
from nvrepro.core.tooling.validation import ConfigError

CALL_INPUTS = ("cache", "doc_ids", "context")  # what a mixer may take besides the hidden states


@dataclass(frozen=True)
class LayerKind:
    """One layer kind: pattern ``char``, ``name`` (in reports), ``config_field`` (the ModelConfig
    field with its widths), ``build(cfg) -> mixer`` (``(b, l, d_model) -> (b, l, d_model)``),
    ``inputs`` (subset of :data:`CALL_INPUTS` its ``forward`` accepts as keywords),
    ``new_state(mixer, cfg, batch, capacity, device, dtype)`` (its decoding state; ``None``: none)."""

    char: str
    name: str
    config_field: str
    build: Callable[[ModelConfig], nn.Module]
    inputs: frozenset[str] = frozenset()
    new_state: Callable[..., Any] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.char) != 1:
            raise ConfigError(f"char: a layer kind is one pattern character, got {self.char!r}")
        unknown = set(self.inputs) - set(CALL_INPUTS)
        if unknown:
            raise ConfigError(f"inputs: unknown call inputs {sorted(unknown)}; allowed: {list(CALL_INPUTS)}")
        if self.config_field not in {f.name for f in fields(ModelConfig)}:
            raise ConfigError(f"config_field: ModelConfig has no field {self.config_field!r}")


LAYER_KINDS: dict[str, LayerKind] = {}


def register_layer_kind(kind: LayerKind) -> LayerKind:
    """Add ``kind`` to the registry (and its character to the patterns configs accept)."""
    if kind.char in LAYER_KINDS and LAYER_KINDS[kind.char] != kind:
        raise ConfigError(f"char: {kind.char!r} is already the {LAYER_KINDS[kind.char].name!r} layer kind")
    LAYER_KINDS[kind.char] = kind
    config_module.PATTERN_CHARS[kind.char] = kind.config_field
    config_module.KIND_DESCRIPTIONS[kind.char] = kind.description or kind.name
    return kind


def layer_kind(char: str) -> LayerKind:
    """The registered kind of pattern character ``char``."""
    try:
        return LAYER_KINDS[char]
    except KeyError:
        raise ConfigError(f"pattern: no layer kind {char!r}; registered: {sorted(LAYER_KINDS)}") from None


def _kv_state(mixer: CausalSelfAttention, cfg: ModelConfig, batch: int, capacity: int,
              device: torch.device, dtype: torch.dtype):
    return mixer.allocate_cache(batch, capacity, device, dtype)


def _mamba_state(mixer: Mamba2Mixer, cfg: ModelConfig, batch: int, capacity: int,
                 device: torch.device, dtype: torch.dtype):
    return Mamba2State.zeros(cfg.mamba, batch, device=device, dtype=dtype)


MAMBA = register_layer_kind(LayerKind(
    "M", "mamba", "mamba", lambda cfg: Mamba2Mixer(cfg.d_model, cfg.mamba, cfg.norm_eps),
    frozenset({"cache"}), _mamba_state, "Mamba-2"))
ATTENTION = register_layer_kind(LayerKind(
    "*", "attention", "attention", lambda cfg: CausalSelfAttention(cfg.d_model, cfg.attention),
    frozenset({"cache", "doc_ids"}), _kv_state, "attention"))
FFN_KIND = register_layer_kind(LayerKind(
    "-", "ffn", "ffn", lambda cfg: FFN(cfg.d_model, cfg.ffn), description="FFN"))
CROSS_ATTENTION = register_layer_kind(LayerKind(
    "X", "cross_attention", "attention", lambda cfg: GatedCrossAttention(cfg.d_model, cfg.attention),
    frozenset({"context"}), description="gated cross-attention"))
CHUNKED_CROSS_ATTENTION = register_layer_kind(LayerKind(
    "C", "chunked_cross_attention", "attention", lambda cfg: ChunkedCrossAttention(cfg.d_model, cfg.attention),
    frozenset({"context"}), description="RETRO chunked cross-attention"))
