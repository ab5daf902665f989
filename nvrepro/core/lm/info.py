"""Parameter counts and decoding-cache memory, computed on the meta device (no memory used).

``nvrepro info --config configs/hybrid/nemotron_h_8b.yaml --context 65536 --batch 1`` builds the
8B model without allocating a byte and prints its parameter count by layer type, the KV cache of
its attention layers and the constant-size state of its Mamba-2 layers at that context.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.lm.layers.kinds import LAYER_KINDS
from nvrepro.core.lm.layers.mamba2 import mamba2_state_bytes
from nvrepro.core.lm.model import build_model

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass
class ModelInfo:
    total_params: int
    params_by_type: dict[str, int]
    layers_by_type: dict[str, int]
    context: int
    batch: int
    kv_cache_bytes: int
    ssm_state_bytes: int

    @property
    def cache_bytes(self) -> int:
        return self.kv_cache_bytes + self.ssm_state_bytes


def count_parameters(cfg: ModelConfig) -> tuple[int, dict[str, int]]:
    """Total parameters and a breakdown: embedding, one entry per registered layer kind (mamba,
    attention, ffn, cross_attention, ...; 0 when the pattern has none), final_norm, lm_head, and
    one entry per other part of a registered model subclass (e.g. RETRO's ``encoder``).

    A layer's pre-norm counts with its layer type; tied embeddings are counted once.
    """
    model = build_model(cfg, device="meta")
    breakdown = {"embedding": model.embed.weight.numel(), **{k.name: 0 for k in LAYER_KINDS.values()}}
    for block in model.layers:
        breakdown[block.spec.name] += sum(p.numel() for p in block.parameters())
    breakdown["final_norm"] = model.norm_f.weight.numel()
    breakdown["lm_head"] = 0 if cfg.tie_embeddings else model.lm_head.weight.numel()
    for name, child in model.named_children():
        if name not in ("embed", "layers", "norm_f", "lm_head"):
            breakdown[name] = sum(p.numel() for p in child.parameters())
    total = sum(p.numel() for p in model.parameters())  # parameters() de-duplicates tied weights
    assert total == sum(breakdown.values()), "parameter breakdown does not add up"
    return total, breakdown


def kv_cache_bytes(cfg: ModelConfig, context: int, batch: int = 1, bytes_per_elem: int = 2) -> int:
    """Keys + values of every attention layer: ``2 * n_attn * b * context * n_kv * head_dim``."""
    a = cfg.attention
    return 2 * cfg.count("*") * batch * context * a.n_kv_heads * a.head_dim * bytes_per_elem


def ssm_state_bytes(cfg: ModelConfig, batch: int = 1, conv_bytes: int = 2, ssm_bytes: int = 4) -> int:
    """Conv window + SSM state of every Mamba-2 layer; independent of context length."""
    return cfg.count("M") * mamba2_state_bytes(cfg.mamba, batch, conv_bytes, ssm_bytes)


def model_info(cfg: ModelConfig, context: int = 8192, batch: int = 1, cache_dtype: str = "bf16") -> ModelInfo:
    if context <= 0:
        raise ValueError(f"context: must be a positive number of tokens, got {context}")
    if batch <= 0:
        raise ValueError(f"batch: must be positive, got {batch}")
    if cache_dtype not in DTYPE_BYTES:
        raise ValueError(f"cache_dtype: must be one of {sorted(DTYPE_BYTES)}, got {cache_dtype!r}")
    total, breakdown = count_parameters(cfg)
    nbytes = DTYPE_BYTES[cache_dtype]
    return ModelInfo(
        total_params=total,
        params_by_type=breakdown,
        layers_by_type={k.name: cfg.count(c) for c, k in LAYER_KINDS.items()},
        context=context,
        batch=batch,
        kv_cache_bytes=kv_cache_bytes(cfg, context, batch, nbytes),
        # SSM states stay in fp32 for accuracy (as mamba_ssm and HF keep them); the conv window
        # is stored in the cache dtype.
        ssm_state_bytes=ssm_state_bytes(cfg, batch, conv_bytes=nbytes, ssm_bytes=4),
    )


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError


def format_info(info: ModelInfo, cfg: ModelConfig, title: str = "") -> str:
    lines = []
    if title:
        lines.append(title)
    layers = ", ".join(f"{n} {name}" for name, n in info.layers_by_type.items())
    lines.append(f"layers: {cfg.n_layers} ({layers}); d_model {cfg.d_model}; vocab {cfg.vocab_size}")
    lines.append(f"parameters: {info.total_params:,} ({info.total_params / 1e9:.2f}B)")
    name_width = max(map(len, info.params_by_type))
    for name, n in info.params_by_type.items():
        share = 100 * n / info.total_params
        lines.append(f"  {name:<{name_width}} {n:>16,}  {share:5.1f}%")
    lines.append(f"cache at context {info.context:,}, batch {info.batch}:")
    rows = [(f"KV cache ({info.layers_by_type['attention']} attention layers)", info.kv_cache_bytes),
            (f"SSM+conv state ({info.layers_by_type['mamba']} Mamba layers)", info.ssm_state_bytes),
            ("total", info.cache_bytes)]
    width = max(len(label) for label, _ in rows)
    lines += [f"  {label:<{width}} {human_bytes(n):>12}" for label, n in rows]
    # A paper's config may say more about itself (e.g. NVLM: image tokens per architecture).
    extra = getattr(cfg, "info_lines", None)
    if callable(extra):
        lines += extra()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro info", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a YAML under configs/ (LightningCLI or bare model)")
    parser.add_argument("--context", type=int, default=8192, help="tokens in the cache (default 8192)")
    parser.add_argument("--batch", type=int, default=1, help="sequences decoded at once (default 1)")
    parser.add_argument("--cache-dtype", default="bf16", choices=sorted(DTYPE_BYTES))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    cfg = model_config_from_yaml(args.config)
    info = model_info(cfg, args.context, args.batch, args.cache_dtype)
    if args.json:
        print(json.dumps({**asdict(info), "cache_bytes": info.cache_bytes}, indent=2))
    else:
        print(format_info(info, cfg, title=f"config: {args.config}"))
    return 0
