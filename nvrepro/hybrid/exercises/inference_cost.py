"""Exercises of notebooks/hybrid/03_inference_cost.ipynb."""

from __future__ import annotations

from typing import Callable

import torch

from nvrepro.core.tooling.verdicts import Check
from nvrepro.core.tooling.verdicts import report as _report
from nvrepro.core.tooling.verdicts import check_number


# --- (a) the KV cache of a real config -----------------------------------------------------

KV_QUESTION = dict(config="llama_3_1_8b", context=8192, batch=1, bytes_per_elem=2)
"""Question: bytes of the BF16 KV cache of Llama-3.1-8B holding ``context`` tokens (batch 1)."""


def measured_kv_cache_bytes(config: str, context: int, batch: int = 1, dtype=torch.bfloat16) -> int:
    """Bytes of real ``KVCache`` tensors: one layer's cache allocated at the config's widths,
    times the number of attention layers (every layer's cache has the same shape)."""
    from nvrepro.core.lm.layers.attention import KVCache
    from nvrepro.hybrid.inference import full_scale_config

    cfg = full_scale_config(config)
    a = cfg.attention
    one = KVCache.allocate(batch, a.n_kv_heads, a.head_dim, context, dtype=dtype)
    return cfg.count("*") * (one.k.nbytes + one.v.nbytes)


def check_kv_cache_bytes(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (a): predicted KV-cache bytes for :data:`KV_QUESTION`, checked against allocated
    tensors (:func:`measured_kv_cache_bytes`) to 1%."""
    q = KV_QUESTION
    from nvrepro.hybrid.inference import full_scale_config

    cfg = full_scale_config(q["config"])
    a, n_attn = cfg.attention, cfg.count("*")
    actual = measured_kv_cache_bytes(q["config"], q["context"], q["batch"])
    why = (f"K and V, for each of {n_attn} attention layers, {a.n_kv_heads} KV heads (GQA: not the "
           f"{a.n_heads} query heads) x head_dim {a.head_dim} x {q['context']:,} tokens x "
           f"{q['bytes_per_elem']} bytes = 2 x {n_attn} x {a.n_kv_heads} x {a.head_dim} x {q['context']:,} x "
           f"{q['bytes_per_elem']} = {actual:,} bytes ({actual / 2**30:.2f} GiB).")
    slips = ((actual / 2, "you counted only K or only V"),
             (actual * a.n_heads / a.n_kv_heads, "you used the query heads; GQA shares each K/V head "
              "among several query heads"),
             (actual * 2, "4-byte elements? the cache is BF16"))
    return check_number(answer, actual, what="your prediction (bytes)", rel_tol=0.01, variable="kv_bytes",
                        unit="bytes", why=why, slips=slips, verbose=verbose)


# --- (b) at which context does the Transformer's cache match the hybrid's? ------------------

BREAK_EVEN_QUESTION = dict(hybrid="nemotron_h_8b", transformer="llama_3_1_8b", hybrid_context=65536)
"""Question: at what context does the Transformer's cache equal the hybrid's cache at
``hybrid_context`` tokens (batch 1; BF16 KV cache and conv window, FP32 SSM state)?"""


def check_break_even_context(answer: float | None, *, verbose: bool = True) -> Check:
    """Exercise (b): the context (tokens) at which the two caches of :data:`BREAK_EVEN_QUESTION`
    are equal; checked to 2% against :func:`nvrepro.hybrid.inference.decode_bytes`."""
    from nvrepro.hybrid.inference import decode_bytes, full_scale_config

    q = BREAK_EVEN_QUESTION
    hyb = decode_bytes(q["hybrid"], q["hybrid_context"])
    per_token = decode_bytes(q["transformer"], 1).kv_cache_bytes
    actual = hyb.cache_bytes / per_token
    kv_only = hyb.kv_cache_bytes / per_token
    n_h, n_t = (full_scale_config(q[k]).count("*") for k in ("hybrid", "transformer"))
    why = (f"the hybrid holds {hyb.kv_cache_bytes / 2**20:,.0f} MiB of KV cache ({n_h} attention layers) plus "
           f"{hyb.ssm_state_bytes / 2**20:,.1f} MiB of Mamba state at {q['hybrid_context']:,} tokens; the "
           f"Transformer adds {per_token // 1024} KiB per token ({n_t} attention layers), so it reaches the "
           f"same {hyb.cache_bytes / 2**30:.2f} GiB after {actual:,.0f} tokens: the hybrid's cache at "
           f"{q['hybrid_context'] // 1024}K tokens is the Transformer's at about {actual / 1024:.1f}K.")
    slips = ((kv_only, "close: you left out the Mamba layers' constant state, which the hybrid also keeps"),)
    return check_number(answer, actual, what="your prediction (tokens)", rel_tol=0.02, variable="break_even",
                        unit="tokens", why=why, slips=slips, verbose=verbose)


# --- (c) implement the cache arithmetic for any pattern -------------------------------------

def _cache_cases():
    """Tiny configs covering each cache kind: attention only (GQA), Mamba only (2 groups), mixed."""
    from nvrepro.core.lm.config import AttentionConfig, MambaConfig, ModelConfig

    att = AttentionConfig(n_heads=4, n_kv_heads=2, head_dim=8)
    mam = MambaConfig(n_heads=4, head_dim=8, d_state=6, n_groups=2, d_conv=3)
    return [(ModelConfig(pattern="*-*-", d_model=32, max_seq_len=64, attention=att), 50, 2),
            (ModelConfig(pattern="MM-", d_model=32, max_seq_len=64, mamba=mam), 50, 3),
            (ModelConfig(pattern="M-*M-", d_model=32, max_seq_len=64, mamba=mam, attention=att), 17, 1)]


def check_cache_bytes_fn(student_fn: Callable, *, verbose: bool = True) -> Check:
    """Exercise (c): ``student_fn(cfg, context, batch) -> int``, the bytes of the float32 cache
    ``PatternLM.allocate_cache(batch, context)`` allocates, for any pattern. Checked against the
    bytes of the tensors actually allocated for several tiny models."""
    from nvrepro.hybrid.decode_cost import cache_nbytes
    from nvrepro.core.lm.model import build_model

    for cfg, context, batch in _cache_cases():
        actual = cache_nbytes(build_model(cfg).allocate_cache(batch, context))
        try:
            got = student_fn(cfg, context, batch)
        except NotImplementedError:
            return _report(Check(None, "implement `cache_bytes(cfg, context, batch)` and run the cell again."), verbose)
        except Exception as exc:  # noqa: BLE001 - report the student's error, do not crash
            return _report(Check(False, f"cache_bytes raised {type(exc).__name__}: {exc}"), verbose)
        if got != actual:
            m, a = cfg.mamba, cfg.attention
            parts = {"KV cache": 2 * cfg.count("*") * batch * context * a.n_kv_heads * a.head_dim * 4,
                     "conv windows": cfg.count("M") * batch * m.conv_dim * m.d_conv * 4,
                     "SSM states": cfg.count("M") * batch * m.n_heads * m.head_dim * m.d_state * 4}
            missing = [k for k, v in parts.items() if v and got == actual - v]
            hint = f" -- exactly the {missing[0]} short" if missing else ""
            return _report(Check(False, f"pattern {cfg.pattern!r}, context {context}, batch {batch}: you gave "
                                 f"{got!r} bytes, the allocated cache holds {actual:,}{hint}. Per sequence: K and V "
                                 "(n_kv_heads x head_dim per token) for each '*'; for each 'M' a conv window "
                                 "(conv_dim x d_conv, conv_dim = n_heads*head_dim + 2*n_groups*d_state) and an "
                                 "SSM state (n_heads x head_dim x d_state); 4 bytes each in float32."), verbose)
    return _report(Check(True, "matches the allocated caches of every test model: only the attention term "
                         "depends on the context, the Mamba terms do not."), verbose)
