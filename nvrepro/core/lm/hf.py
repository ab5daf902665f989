"""Hugging Face interop: a :class:`PatternLM` as a transformers ``NemotronHForCausalLM`` directory.

    nvrepro export-hf --config configs/hybrid/toy_hybrid.yaml [--ckpt run.ckpt] --out hf_toy/
    nvrepro import-hf --hf hf_toy/ --out toy.ckpt

``export_hf`` writes ``config.json`` + ``model.safetensors`` that
``transformers.NemotronHForCausalLM.from_pretrained(dir)`` loads; ``import_hf`` reads such a
directory back with only ``json`` and ``safetensors`` (no transformers needed). Parameter names
map 1:1 (``embed`` <-> ``model.embeddings``, ``layers.i.*`` / ``norm_f`` <-> ``model.layers.i.*`` /
``model.norm_f``, ``lm_head`` unchanged; NVIDIA's released checkpoints say ``backbone.`` where
transformers says ``model.``, and both are read).

What transformers' NemotronH (checked against 5.x, ``models/nemotron_h``) computes, and how each
piece lines up with ours:

* layer pattern: ``hybrid_override_pattern`` uses our alphabet (``M``, ``*``, ``-``; ``E`` is MoE,
  which we do not have). 5.x stores it as ``layers_block_type`` (``linear_attention`` /
  ``full_attention`` / ``mlp`` / ``moe``; older files say ``mamba`` / ``attention``) and still reads
  the string, so the string is what we write: every version understands it.
* Mamba-2 mixer: same ``in_proj`` split ``[z, xBC, dt]``, depthwise causal conv + SiLU,
  ``softplus(dt + dt_bias)``, ``A = -exp(A_log)``, ``D`` skip, gated RMSNorm *after* the gate over
  ``n_groups`` groups of ``d_inner / n_groups`` channels, eps = ``layer_norm_epsilon`` everywhere.
  The clamp on Δ is where transformers versions differ, so nvrepro measures it at run time
  (:func:`transformers_time_step_rule`, pure-PyTorch path) instead of assuming one. Seen so far:
  5.24's mixer clamps Δ from below at ``time_step_min`` in the chunked (prefill) path and ignores
  ``time_step_limit``; 5.25's clamps Δ to ``time_step_limit`` there instead; neither clamps in its
  one-token decode path (read in their source, not measured). We export ``time_step_min = 0``
  and ``time_step_limit = (0, inf)``: softplus is positive, so either rule is a no-op and every
  version computes Δ unclamped, as ours does with ``dt_limit = (0, inf)``; our init-only
  ``dt_min`` goes under ``nvrepro_mamba_dt_min``. Any other ``mamba.dt_limit`` is refused (no value
  means the same to every version), and importing a file with ``time_step_min > 0`` warns when
  the measured rule says the installed transformers clamps at it (nvrepro does not).
* attention: GQA with scale ``head_dim ** -0.5`` and no positional encoding (NoPE); RoPE is refused.
* FFN: ``down(relu(up(x))**2)``, no biases (``mlp_hidden_act = relu2``); SwiGLU is refused.
* ``lm_head`` is never tied to the embedding (``_tied_weights_keys`` is empty); tied models are
  refused. ``residual_in_fp32`` and ``rescale_prenorm_residual`` do not enter its forward pass
  (the latter is an init recipe); we write both as False, matching our model.
* a pattern without attention (pure Mamba-2) exports and loads, but transformers' cache cannot
  hold it (``get_seq_length`` needs an attention layer), so its config says ``use_cache: false``
  and transformers decodes it by recomputing the prefix.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch

from nvrepro.core.lm.config import ConfigError, ModelConfig
from nvrepro.core.lm.model import PatternLM

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Layer names in transformers' layers_block_type, current and legacy, and our pattern character.
BLOCK_TYPES = {"linear_attention": "M", "mamba": "M", "full_attention": "*", "attention": "*",
               "mlp": "-", "moe": "E"}
HF_PREFIXES = ("model.", "backbone.")


# Fields to_hf_config maps or refuses by value. Any other field (one added to ModelConfig later)
# must keep its default, so a new option can never be exported silently as if it were absent.
# Attention's rope_* fields only act with rope=True, which is refused.
MAPPED_FIELDS = {
    "": {"pattern", "d_model", "vocab_size", "max_seq_len", "norm_eps", "tie_embeddings",
         "init_std", "mamba", "attention", "ffn"},
    "mamba": {"n_heads", "head_dim", "d_state", "n_groups", "d_conv", "chunk_size", "dt_min",
              "dt_max", "dt_init_floor", "dt_limit", "conv_bias"},
    "attention": {"n_heads", "n_kv_heads", "head_dim", "rope", "rope_*"},
    "ffn": {"hidden", "activation"},
}


def _refuse(ok: bool, field_name: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"{field_name}: cannot be expressed as a transformers NemotronH model: {why}")


def _refuse_unmapped(cfg: ModelConfig) -> None:
    """Refuse a non-default value in any field :data:`MAPPED_FIELDS` does not know."""
    used = {"mamba": "M", "attention": "*", "ffn": "-"}
    for section, known in MAPPED_FIELDS.items():
        if section and used[section] not in cfg.pattern:
            continue
        obj = getattr(cfg, section) if section else cfg
        for f in dataclasses.fields(obj):
            if f.name in known or ("rope_*" in known and f.name.startswith("rope_")):
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            where = f"{section}.{f.name}" if section else f.name
            _refuse(getattr(obj, f.name) == default, where,
                    f"no NemotronH equivalent for a non-default value {getattr(obj, f.name)!r}")


# ---------------------------------------------------------------------------------------------
def to_hf_config(cfg: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` dict of a transformers ``NemotronHConfig`` equivalent to ``cfg``.

    Raises :class:`ConfigError` naming the field when ``cfg`` has no NemotronH equivalent.
    """
    m, a, f = cfg.mamba, cfg.attention, cfg.ffn
    _refuse_unmapped(cfg)
    _refuse(not cfg.tie_embeddings, "tie_embeddings",
            "NemotronHForCausalLM never ties lm_head to the embedding; train with tie_embeddings: false")
    if "*" in cfg.pattern:
        _refuse(not a.rope, "attention.rope", "its attention layers have no positional encoding (NoPE)")
    if "-" in cfg.pattern:
        _refuse(f.activation == "relu2", "ffn.activation",
                f"its FFN is non-gated squared ReLU ('relu2'), got {f.activation!r}")
    if "M" in cfg.pattern:
        if tuple(m.dt_limit) != (0.0, math.inf):
            rule = transformers_time_step_rule()
            installed = rule.describe() if rule else "no transformers NemotronH is installed here"
            _refuse(False, "mamba.dt_limit",
                    "transformers versions clamp Δ differently (some at time_step_min, ignoring "
                    "time_step_limit; others at time_step_limit, in prefill only), so only (0, inf), "
                    f"a no-op for all, means the same to each ({installed}); got {m.dt_limit}")
    hf: dict[str, Any] = {
        "architectures": ["NemotronHForCausalLM"],
        "model_type": "nemotron_h",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "hybrid_override_pattern": cfg.pattern,
        "num_hidden_layers": cfg.n_layers,
        "max_position_embeddings": cfg.max_seq_len,
        "layer_norm_epsilon": cfg.norm_eps,
        "initializer_range": cfg.init_std,
        "tie_word_embeddings": False,
        "residual_in_fp32": False,
        "rescale_prenorm_residual": False,
        # attention
        "num_attention_heads": a.n_heads,
        "num_key_value_heads": a.n_kv_heads,
        "head_dim": a.head_dim,
        "attention_bias": False,
        "attention_dropout": 0.0,
        # FFN
        "intermediate_size": f.hidden,
        "mlp_hidden_act": "relu2",
        "mlp_bias": False,
        # Mamba-2
        "mamba_num_heads": m.n_heads,
        "mamba_head_dim": m.head_dim,
        "ssm_state_size": m.d_state,
        "n_groups": m.n_groups,
        "conv_kernel": m.d_conv,
        "chunk_size": m.chunk_size,
        "use_conv_bias": m.conv_bias,
        "use_bias": False,
        "mamba_proj_bias": False,
        "mamba_hidden_act": "silu",
        "mamba_ssm_cache_dtype": "float32",
        # time_step_min doubles as the prefill clamp on Δ in transformers: 0 disables it (module doc).
        "time_step_min": 0.0,
        "time_step_max": m.dt_max,
        "time_step_floor": m.dt_init_floor,
        "time_step_limit": [0.0, math.inf],
        "nvrepro_mamba_dt_min": m.dt_min,
        # Token ids depend on the tokenizer, which a model config does not know.
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
        # transformers 5.x's hybrid cache needs an attention layer (get_seq_length raises
        # without one), so an attention-free model is written to run uncached by default.
        "use_cache": "*" in cfg.pattern,
    }
    if m.d_inner % cfg.d_model == 0:  # informational only: NemotronH sizes d_inner by heads
        hf["expand"] = m.d_inner // cfg.d_model
    return hf


def from_hf_config(hf: dict[str, Any]) -> ModelConfig:
    """The :class:`ModelConfig` of a NemotronH ``config.json`` dict (the inverse of :func:`to_hf_config`).

    Raises :class:`ConfigError` naming the HF field when the model uses something PatternLM lacks
    (MoE layers, biases, other activations).
    """
    pattern = _hf_pattern(hf)
    _refuse("E" not in pattern, "hybrid_override_pattern", f"MoE layers ('E') are not supported, got {pattern!r}")
    for name in ("use_bias", "mamba_proj_bias", "attention_bias", "mlp_bias"):
        _refuse(not hf.get(name, False), name, "nvrepro's layers have no biases there")
    _refuse(hf.get("mlp_hidden_act", "relu2") == "relu2", "mlp_hidden_act",
            f"only 'relu2' is supported, got {hf.get('mlp_hidden_act')!r}")
    _refuse(hf.get("mamba_hidden_act", "silu") == "silu", "mamba_hidden_act",
            f"only 'silu' is supported, got {hf.get('mamba_hidden_act')!r}")
    limit = tuple(_json_float(v) for v in hf.get("time_step_limit", (0.0, math.inf)))
    t_min = float(hf.get("time_step_min", 0.001))
    if "M" in pattern and t_min > 0:
        rule = transformers_time_step_rule()
        if rule is None or rule.clamps_at_time_step_min:  # measured to clamp, or unmeasurable
            installed = rule.describe() if rule else (
                "no transformers NemotronH is installed here to measure; versions that clamp Δ >= "
                "time_step_min exist")
            warnings.warn(f"time_step_min={t_min}: {installed}; nvrepro clamps Δ only to time_step_limit="
                          f"{limit}, so its outputs differ from those of a transformers that clamps at "
                          "time_step_min wherever softplus(dt + dt_bias) < time_step_min", stacklevel=2)
    defaults = ModelConfig().mamba
    mamba = {
        "n_heads": hf["mamba_num_heads"], "head_dim": hf["mamba_head_dim"],
        "d_state": hf["ssm_state_size"], "n_groups": hf["n_groups"],
        "d_conv": hf.get("conv_kernel", 4), "chunk_size": hf.get("chunk_size", 128),
        "dt_min": hf.get("nvrepro_mamba_dt_min", t_min if t_min > 0 else defaults.dt_min),
        "dt_max": hf.get("time_step_max", 0.1), "dt_init_floor": hf.get("time_step_floor", 1e-4),
        "dt_limit": limit, "conv_bias": hf.get("use_conv_bias", True),
    }
    attention = {"n_heads": hf["num_attention_heads"],
                 "n_kv_heads": hf.get("num_key_value_heads") or hf["num_attention_heads"],
                 "head_dim": hf.get("head_dim") or hf["hidden_size"] // hf["num_attention_heads"],
                 "rope": False}
    return ModelConfig(
        pattern=pattern, d_model=hf["hidden_size"], vocab_size=hf["vocab_size"],
        max_seq_len=hf.get("max_position_embeddings", 4096), norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        tie_embeddings=False, init_std=hf.get("initializer_range", 0.02), mamba=mamba,
        attention=attention, ffn={"hidden": hf["intermediate_size"], "activation": "relu2"})


def _hf_pattern(hf: dict[str, Any]) -> str:
    """Our pattern string from ``hybrid_override_pattern`` or a ``layers_block_type`` list."""
    if isinstance(hf.get("layers_block_type"), list):
        bad = sorted(set(hf["layers_block_type"]) - set(BLOCK_TYPES))
        _refuse(not bad, "layers_block_type", f"unknown layer types {bad}; known: {sorted(BLOCK_TYPES)}")
        return "".join(BLOCK_TYPES[t] for t in hf["layers_block_type"])
    if isinstance(hf.get("hybrid_override_pattern"), str):
        return hf["hybrid_override_pattern"]
    raise ConfigError("hybrid_override_pattern: config.json has neither hybrid_override_pattern "
                      "nor layers_block_type")


def _json_float(value) -> float:
    """A float from config.json: a number, ``Infinity``, or transformers 5's ``{"__float__": "Infinity"}``."""
    return float(value["__float__"]) if isinstance(value, dict) else float(value)


# ---------------------------------------------------------------------------------------------
def to_hf_state_dict(model: PatternLM) -> dict[str, torch.Tensor]:
    """Our parameters under transformers' names (``embed`` -> ``model.embeddings``, ``lm_head`` kept)."""
    out = {}
    for name, tensor in model.state_dict().items():
        if name.startswith("embed."):
            out["model.embeddings." + name[len("embed."):]] = tensor
        elif name.startswith("lm_head."):
            out[name] = tensor
        else:
            out["model." + name] = tensor
    return out


def from_hf_state_dict(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_hf_state_dict`; also reads NVIDIA's ``backbone.`` prefix.

    Multi-token-prediction weights (``mtp.*``) are dropped, as transformers drops them.
    """
    out = {}
    for name, tensor in hf_state.items():
        if name.startswith("mtp."):
            continue
        for prefix in HF_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        if name.startswith("embeddings.") or name.startswith("embedding."):
            name = "embed." + name.split(".", 1)[1]
        out[name] = tensor
    return out


def export_hf(model: PatternLM, out_dir, dtype: torch.dtype | str | None = None) -> Path:
    """Write ``model`` as a transformers NemotronH directory: ``config.json`` + ``model.safetensors``.

    ``dtype``: the stored weight dtype (``torch.float32``, ``torch.bfloat16`` or their names);
    None keeps the model's. Returns the directory. Raises :class:`ConfigError` (naming the field)
    for configs NemotronH cannot express.
    """
    from safetensors.torch import save_file

    hf = to_hf_config(model.cfg)
    dtype = DTYPES.get(dtype, dtype) if isinstance(dtype, str) else (dtype or model.embed.weight.dtype)
    hf["dtype"] = next((name for name, value in DTYPES.items() if value == dtype), None)
    if hf["dtype"] is None:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
    tensors = {k: v.detach().to("cpu", dtype).contiguous().clone() for k, v in to_hf_state_dict(model).items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Plain JSON with Infinity for time_step_limit, as NVIDIA's own config files have it.
    (out / CONFIG_FILE).write_text(json.dumps(hf, indent=2) + "\n")
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    return out


def import_hf(path, dtype: torch.dtype | None = None) -> PatternLM:
    """Read a NemotronH directory (``config.json`` + ``*.safetensors``) into a :class:`PatternLM`.

    Needs only ``json`` and ``safetensors``. Weights keep their values; the model is float32
    unless ``dtype`` is given. Raises :class:`ConfigError` for configs PatternLM cannot express
    and ``KeyError`` naming missing or unexpected weights.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"hf: no {CONFIG_FILE} in {str(path)!r}")
    cfg = from_hf_config(json.loads((path / CONFIG_FILE).read_text()))
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"hf: no *.safetensors weights in {str(path)!r}")
    hf_state: dict[str, torch.Tensor] = {}
    for file in files:  # sharded checkpoints: model-0000k-of-0000n.safetensors
        hf_state.update(load_file(str(file)))
    state = from_hf_state_dict(hf_state)
    # Built on the CPU, not the meta device: assign=True would drop the per-parameter
    # attributes the mixers set (e.g. Mamba-2's _no_weight_decay).
    model = PatternLM(cfg)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(f"hf: weights do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.load_state_dict(state)
    return model.to(dtype or torch.float32)


# ---------------------------------------------------------------------------------------------
class TimeStepRule(NamedTuple):
    """Which settings the installed transformers' NemotronH reads to clamp Δ in prefill."""

    version: str
    clamps_at_time_step_min: bool  # Δ >= time_step_min
    applies_time_step_limit: bool  # Δ clamped into time_step_limit

    def describe(self) -> str:
        read = [name for name, used in (("time_step_min", self.clamps_at_time_step_min),
                                        ("time_step_limit", self.applies_time_step_limit)) if used]
        return (f"transformers {self.version}'s NemotronH clamps Δ in prefill at "
                f"{' and '.join(read) or 'neither time_step_min nor time_step_limit'} (measured)")


# One Mamba-2 layer, 8 tokens = two chunks: the chunked (prefill) path.
PROBE_CONFIG = ModelConfig(pattern="M", d_model=16, vocab_size=8, max_seq_len=8,
                           mamba={"n_heads": 2, "head_dim": 8, "d_state": 4, "chunk_size": 4})


@functools.cache
def transformers_time_step_rule() -> TimeStepRule | None:
    """Measure, once per process, which clamp the installed transformers applies to Δ in prefill.

    A one-layer Mamba-2 model with N(0, 1) weights, zero dt rows in ``in_proj`` and
    ``dt_bias = -10`` has Δ = softplus(-10) ≈ 4.5e-5 at every position. It is exported by
    :func:`export_hf` and loaded by ``NemotronHForCausalLM.from_pretrained`` three times: as
    exported, with ``time_step_min = 0.5`` and with ``time_step_limit = (0.5, inf)``. A clamp that
    lifts Δ to 0.5 moves the logits by O(1), so a change of more than 1e-3 of their scale says the
    setting is read. None when transformers has no NemotronH. The global RNG is left untouched.
    """
    try:
        from transformers import NemotronHForCausalLM, __version__
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp, torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        model = PatternLM(PROBE_CONFIG)
        for p in model.parameters():
            p.normal_()
        mixer = model.layers[0].mixer
        mixer.in_proj.weight[-mixer.n_heads:] = 0.0
        mixer.dt_bias.fill_(-10.0)
        export_hf(model, tmp)
        ids = torch.arange(PROBE_CONFIG.vocab_size)[None]

        def logits(**change):
            return NemotronHForCausalLM.from_pretrained(tmp, **change).eval()(ids).logits

        base = logits()

        def moved(out):
            return bool((out - base).abs().max() > 1e-3 * base.abs().max())

        return TimeStepRule(__version__, moved(logits(time_step_min=0.5)),
                            moved(logits(time_step_limit=(0.5, math.inf))))
