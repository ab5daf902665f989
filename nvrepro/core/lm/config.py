"""Typed model configs, validated with messages that name the bad field.

A model is described by one :class:`ModelConfig`: a Nemotron-H layer pattern string plus the
widths of the mixer kinds it may contain (the registry of :mod:`nvrepro.core.lm.layers.kinds`
says which character builds what and which field holds its widths):

* ``M``: a Mamba-2 mixer (:class:`MambaConfig`),
* ``*``: causal grouped-query self-attention (:class:`AttentionConfig`),
* ``-``: a feed-forward network (:class:`FFNConfig`),
* ``X``: gated cross-attention to a context sequence (widths of :class:`AttentionConfig`),
* ``C``: RETRO's chunked cross-attention to encoded neighbours (widths of :class:`AttentionConfig`).

A pure Transformer is ``"*-*-*-"``; a pure Mamba-2 model is ``"MMMM"``. The same dataclasses
are what LightningCLI YAMLs under ``configs/`` fill in, so a typo in a YAML key and a typo in
Python fail with the same message.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from nvrepro.core.tooling.validation import ConfigError, require, require_positive_int
from nvrepro.core.tooling.validation import dataclass_from_dict as _from_dict

# Pattern character -> the ModelConfig field holding that layer kind's widths, and a name for
# messages. Filled by nvrepro.core.lm.layers.kinds.register_layer_kind (importing nvrepro.core.lm
# registers the built-in kinds: M, *, -, X).
PATTERN_CHARS: dict[str, str] = {}
KIND_DESCRIPTIONS: dict[str, str] = {}
ROPE_SCALINGS = ("none", "linear", "ntk", "yarn", "llama3")  # see nvrepro.core.lm.layers.rope_scaling


@dataclass
class MambaConfig:
    """Mamba-2 mixer widths (Nemotron-H, Sec. 2.1; Dao & Gu 2024).

    ``d_inner = n_heads * head_dim``; B and C are shared by the heads of each of ``n_groups``
    groups; the gated RMSNorm normalises groups of ``d_inner / n_groups`` channels.
    """

    n_heads: int = 8
    head_dim: int = 16
    d_state: int = 16
    n_groups: int = 1
    d_conv: int = 4
    chunk_size: int = 64
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    dt_limit: tuple[float, float] = (0.0, math.inf)
    conv_bias: bool = True

    @property
    def d_inner(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def conv_dim(self) -> int:
        """Channels through the causal conv: x, B and C together."""
        return self.d_inner + 2 * self.n_groups * self.d_state

    def validate(self, prefix: str = "mamba") -> None:
        for name in ("n_heads", "head_dim", "d_state", "n_groups", "d_conv", "chunk_size"):
            require_positive_int(getattr(self, name), f"{prefix}.{name}")
        require(self.n_heads % self.n_groups == 0, f"{prefix}.n_groups",
                 f"must divide n_heads={self.n_heads}, got {self.n_groups}")
        require(0 < self.dt_min <= self.dt_max, f"{prefix}.dt_min",
                 f"need 0 < dt_min <= dt_max, got dt_min={self.dt_min}, dt_max={self.dt_max}")
        lo, hi = self.dt_limit
        require(0.0 <= lo < hi, f"{prefix}.dt_limit", f"need 0 <= low < high, got {self.dt_limit}")


@dataclass
class AttentionConfig:
    """Causal grouped-query attention. NoPE by default (Nemotron-H); ``rope=True`` for Llama.

    RoPE scaling (context extension, :mod:`nvrepro.core.lm.layers.rope_scaling`): ``rope_scaling``
    one of ``none`` (default), ``linear`` (PI), ``ntk``, ``yarn``, ``llama3``; ``rope_factor`` is
    the scale s; ``rope_original_max_len`` the pre-extension context L (``yarn``, ``llama3``);
    ``rope_alpha``/``rope_beta`` the YaRN ramp bounds in rotations (HF ``beta_slow``/``beta_fast``);
    ``rope_attention_factor`` overrides YaRN's ``0.1 ln s + 1``.
    """

    n_heads: int = 4
    n_kv_heads: int = 4
    head_dim: int = 32
    rope: bool = False
    rope_theta: float = 10000.0
    rope_scaling: str = "none"
    rope_factor: float = 1.0
    rope_original_max_len: int | None = None
    rope_alpha: float = 1.0
    rope_beta: float = 32.0
    rope_attention_factor: float | None = None

    def validate(self, prefix: str = "attention") -> None:
        for name in ("n_heads", "n_kv_heads", "head_dim"):
            require_positive_int(getattr(self, name), f"{prefix}.{name}")
        require(self.n_heads % self.n_kv_heads == 0, f"{prefix}.n_kv_heads",
                 f"must divide n_heads={self.n_heads}, got {self.n_kv_heads}")
        require(not self.rope or self.head_dim % 2 == 0, f"{prefix}.head_dim",
                 f"must be even with rope=True, got {self.head_dim}")
        require(self.rope_theta > 0, f"{prefix}.rope_theta", f"must be > 0, got {self.rope_theta}")
        self._validate_rope_scaling(prefix)

    def _validate_rope_scaling(self, prefix: str) -> None:
        require(self.rope_scaling in ROPE_SCALINGS, f"{prefix}.rope_scaling",
                 f"must be one of {', '.join(ROPE_SCALINGS)}, got {self.rope_scaling!r}")
        if self.rope_scaling == "none":
            require(self.rope_factor == 1.0, f"{prefix}.rope_factor",
                     f"must be 1.0 with rope_scaling='none', got {self.rope_factor}")
            return
        require(self.rope, f"{prefix}.rope_scaling", f"{self.rope_scaling!r} needs rope=True")
        require(self.rope_factor >= 1.0, f"{prefix}.rope_factor",
                 f"the scale s must be >= 1, got {self.rope_factor}")
        if self.rope_scaling in ("yarn", "llama3"):
            require_positive_int(self.rope_original_max_len, f"{prefix}.rope_original_max_len")
            require(0 < self.rope_alpha < self.rope_beta, f"{prefix}.rope_alpha",
                     f"need 0 < rope_alpha < rope_beta, got {self.rope_alpha} and {self.rope_beta}")
        require(self.rope_attention_factor is None or self.rope_attention_factor > 0,
                 f"{prefix}.rope_attention_factor", f"must be > 0 or null, got {self.rope_attention_factor}")


@dataclass
class FFNConfig:
    """Feed-forward block: squared ReLU, non-gated (Nemotron-H) or SwiGLU (Llama)."""

    hidden: int = 256
    activation: Literal["relu2", "swiglu"] = "relu2"

    def validate(self, prefix: str = "ffn") -> None:
        require_positive_int(self.hidden, f"{prefix}.hidden")
        require(self.activation in ("relu2", "swiglu"), f"{prefix}.activation",
                 f"must be 'relu2' or 'swiglu', got {self.activation!r}")


@dataclass
class ModelConfig:
    """A decoder LM: embedding -> blocks from ``pattern`` -> final RMSNorm -> LM head.

    Each block is pre-RMSNorm -> mixer -> residual (Nemotron-H, Sec. 2.1).
    """

    pattern: str = "M-M*-"
    d_model: int = 128
    vocab_size: int = 256
    max_seq_len: int = 1024
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    init_std: float = 0.02
    mamba: MambaConfig = field(default_factory=MambaConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    ffn: FFNConfig = field(default_factory=FFNConfig)

    def __post_init__(self) -> None:
        # Nested dicts (from YAML or a checkpoint) become typed sub-configs.
        for name, cls in (("mamba", MambaConfig), ("attention", AttentionConfig), ("ffn", FFNConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _from_dict(cls, value, name))
        if isinstance(self.mamba.dt_limit, list):
            self.mamba.dt_limit = tuple(self.mamba.dt_limit)
        self.validate()

    # ----------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.pattern)

    def count(self, kind: str) -> int:
        """Number of layers of one kind (its pattern character, e.g. 'M', '*', '-')."""
        return self.pattern.count(kind)

    def validate(self) -> None:
        require(isinstance(self.pattern, str) and len(self.pattern) > 0, "pattern",
                 f"must be a non-empty string of {sorted(PATTERN_CHARS)}, got {self.pattern!r}")
        bad = sorted({c for c in self.pattern if c not in PATTERN_CHARS})
        allowed = ", ".join(f"{c!r} ({KIND_DESCRIPTIONS[c]})" for c in PATTERN_CHARS)
        require(not bad, "pattern", f"unknown layer character(s) {bad} in {self.pattern!r}; allowed: {allowed}")
        for name in ("d_model", "vocab_size", "max_seq_len"):
            require_positive_int(getattr(self, name), name)
        require(self.norm_eps > 0, "norm_eps", f"must be > 0, got {self.norm_eps}")
        # the widths of the kinds in use, in registration order
        for name in dict.fromkeys(field for c, field in PATTERN_CHARS.items() if c in self.pattern):
            getattr(self, name).validate(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able dict (safe for ``torch.load(weights_only=True)``)."""
        d = dataclasses.asdict(self)
        d["mamba"]["dt_limit"] = list(self.mamba.dt_limit)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a plain dict; an unknown key raises :class:`ConfigError` naming it."""
        return _from_dict(cls, data, "")


def model_config_from_yaml(path) -> ModelConfig:
    """The :class:`ModelConfig` inside a LightningCLI YAML (``model.init_args.model``) or a bare one.

    This is how notebooks and ``nvrepro info`` build the very model that ``nvrepro fit
    --config PATH`` trains. When ``model.class_path`` names a LightningModule with its own
    ``config_class`` (a :class:`ModelConfig` subclass, e.g. RETRO's), the config has that class.
    """
    import pathlib

    import yaml

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config: no such file {str(path)!r}")
    data = yaml.safe_load(path.read_text()) or {}
    node = data.get("model", data)
    config_class = ModelConfig
    if isinstance(node, dict) and isinstance(node.get("class_path"), str):
        config_class = _module_config_class(node["class_path"], path)
    if isinstance(node, dict) and "init_args" in node:
        node = node["init_args"]
    if isinstance(node, dict) and isinstance(node.get("model"), dict):
        node = node["model"]
    if not isinstance(node, dict) or "pattern" not in node:
        raise ConfigError(f"model: {str(path)!r} holds no model config "
                          "(expected model.init_args.model with a 'pattern')")
    return config_class.from_dict(node)


def _module_config_class(class_path: str, path) -> type:
    """``config_class`` of the LightningModule at ``class_path`` (``ModelConfig`` if it has none)."""
    import importlib

    module_name, _, name = class_path.rpartition(".")
    try:
        module_class = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"model.class_path: {str(path)!r} names {class_path!r}, which cannot be imported") from None
    config_class = getattr(module_class, "config_class", ModelConfig)
    return config_class if isinstance(config_class, type) and issubclass(config_class, ModelConfig) else ModelConfig
