"""``nvrepro gpu-check``: one prepared script for one GPU (issue 20), budgeted for under 8 minutes.

    nvrepro gpu-check [--only decode|train|ssd ...] [--json FILE] [--budget-s 400] [--tiny]

Prints, side by side, and writes to a JSON file (default ``build/gpu_check.json``):

* ``decode``: ms per step of the Nemotron-H-8B config and the Llama-3.1-8B config (random BF16
  weights) at 16K and 64K tokens of context, batch 1 and 16, through
  :class:`~nvrepro.core.lm.static_decoding.StaticDecoder` (one CUDA graph replay per token),
  against the bandwidth floor: the bytes a step must read (every weight once, the filled keys and
  values, the Mamba-2 states: :func:`~nvrepro.hybrid.inference.decode_bytes`, notebook 03's
  arithmetic and the issue's) over the device's copy bandwidth measured at the start. One row per model at 16K, batch 1, also times the eager
  segment stepper (the issue's baseline) and a compiled graph. Keys, values and states are
  filled with random numbers instead of a prefill (what a step reads does not depend on their
  values; a 64K x 16 prefill would take longer than the whole check). Graph rows also count the
  kernels one replay launches (the step's aten ops, views left out; on CPU, at toy widths, the 8B
  patterns count about 1,600 each): if each costs a few microseconds, that is milliseconds next
  to a floor of about 4 ms, which is what compiling the step fuses away. A row whose cache does
  not fit in the free memory says so (Llama at 64K x 16 needs about 128 GiB of KV cache alone).
* ``train``: tokens/s and model FLOP/s utilisation (MFU) of slices at 8B widths (the first 11
  layers of the Nemotron-H-8B pattern; four layers of Llama-3.1-8B), sequence 4,096, batch 2,
  BF16 weights and AdamW, compiled: BF16 against torchao's FP8 training (the paper's recipe:
  dynamic per-tensor scales, E4M3 forward, E5M2 gradients) on every linear of the slice (the
  interior layers of the full model, where the recipe puts FP8), and Transformer Engine where
  installed. FLOPs: 6 x non-embedding parameters per token plus causal attention.
* ``ssd``: mamba_ssm's Triton ``mamba_chunk_scan_combined`` against the pure-PyTorch
  :func:`~nvrepro.core.lm.layers.ssd.ssd_chunked`, forward + backward at the 8B Mamba-2 widths,
  with the largest difference between their outputs.

Targets (issue 20, one H100/H200-class GPU): decode within 2x of the floor at batch 1; hybrid /
Llama decode throughput >= 1.3x at 16K and >= 2x at 64K or at batch 16; FP8 >= 1.3x BF16 training
throughput; Triton SSD >= 3x the pure-PyTorch chunked SSD. Each section catches its own errors
(recorded in the JSON) so one missing package does not hide the rest, and no new row starts
once its section's share of ``--budget-s`` is spent (decode: up to 55% of it, training: up to
95%). ``--tiny`` runs the same code on tiny widths and contexts in seconds (on a CPU too): for
tests, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import importlib.util
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.core.lm.decoding import decode_stepper
from nvrepro.core.lm.layers.attention import KVCache
from nvrepro.core.lm.model import PatternLM, build_model
from nvrepro.core.lm.static_decoding import StaticDecoder, fill_random_cache
from nvrepro.hybrid.decode_cost import predicted_cache_nbytes, with_max_seq_len
from nvrepro.hybrid.inference import decode_bytes
from nvrepro.core.tooling.paper_facts import paper_fact
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.timing import count_kernels, forward_backward, measure

SECTIONS = ("decode", "train", "ssd")
PACKAGES = ("mamba_ssm", "causal_conv1d", "flash_attn", "transformer_engine", "torchao")
# Dense BF16 / FP8 tensor-core peaks (no sparsity) and HBM bandwidth from NVIDIA's data sheets,
# matched on the device name; the floor uses the *measured* copy bandwidth, these are context.
PEAKS = {"H200": dict(bf16=989e12, fp8=1979e12, hbm=4.8e12),
         "H100": dict(bf16=989e12, fp8=1979e12, hbm=3.35e12),
         "A100": dict(bf16=312e12, fp8=None, hbm=2.0e12)}
TARGETS = {"floor_ratio": 2.0, "hybrid_vs_llama_16k": 1.3, "hybrid_vs_llama_64k_or_b16": 2.0,
           "fp8_vs_bf16": 1.3, "ssd_triton_vs_torch": 3.0}

FULL = dict(models={"nemotron_h_8b": "hybrid/nemotron_h_8b.yaml", "llama_3_1_8b": "hybrid/llama_3_1_8b.yaml"},
            contexts=[16384, 65536], batches=[1, 16], decode_steps=32, warm_steps=3,
            baseline=(16384, 1), compare_modes=["eager", "graph+compile"],
            train_layers={"nemotron_h_8b": 11, "llama_3_1_8b": 4}, train_seq=4096,
            train_batch=2, train_steps=8, train_warmup=3, ssd_len=4096, ssd_batch=2, repeats=5)
TINY = dict(FULL, contexts=[48, 96], batches=[1, 2], decode_steps=3, warm_steps=1, baseline=(48, 1),
            compare_modes=["eager"],
            train_seq=64, train_batch=2, train_steps=2, train_warmup=1, ssd_len=64, ssd_batch=1, repeats=1)


def tiny_config(cfg: ModelConfig) -> ModelConfig:
    """``cfg`` at toy widths (same pattern and kinds): what ``--tiny`` runs."""
    data = cfg.to_dict()
    data.update(d_model=32, vocab_size=64, max_seq_len=256)
    if data.get("mamba"):
        data["mamba"] = {**data["mamba"], "n_heads": 4, "head_dim": 8, "d_state": 8, "n_groups": 2, "chunk_size": 16}
    data["attention"] = {**data["attention"], "n_heads": 4, "n_kv_heads": 2, "head_dim": 8}
    data["ffn"] = {**data["ffn"], "hidden": 64}
    return ModelConfig.from_dict(data)


@dataclass
class Check:
    """What the run found; ``rows`` per section, ``errors`` per section that failed."""

    device: dict = field(default_factory=dict)
    decode: list = field(default_factory=list)
    train: list = field(default_factory=list)
    ssd: list = field(default_factory=list)
    verdicts: dict = field(default_factory=dict)
    paper: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    seconds: float = 0.0


# --- device ------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Seconds per call of ``fn``: :func:`~nvrepro.core.tooling.timing.measure`'s median of
    ``repeats`` calls, each call ended by a device sync (GPU work is asynchronous)."""
    return measure(lambda: (fn(), _sync(device)), repeats=repeats, warmup=0,
                   setup=lambda: _sync(device)).median


def copy_bandwidth(device: torch.device, nbytes: int) -> float:
    """Bytes/s of a device-to-device copy of ``nbytes`` (read + write counted): the achievable
    memory bandwidth that the decode floor divides by."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2 * nbytes / timed(lambda: dst.copy_(src), device, repeats=5)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install is as good as none
        return False


def describe_device(device: torch.device, tiny: bool) -> dict:
    info = {"type": device.type, "torch": torch.__version__, "python": platform.python_version(),
            "packages": {name: _importable(name) for name in PACKAGES}}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_bytes=props.total_memory, capability=f"{props.major}.{props.minor}")
        info["peaks"] = next((v for k, v in PEAKS.items() if k in props.name), None)
    else:
        info.update(name=platform.processor() or "cpu", peaks=None)
    info["copy_bandwidth"] = copy_bandwidth(device, (16 << 20) if tiny else (2 << 30))
    return info


def free_bytes(device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def build_bf16(cfg: ModelConfig, device: torch.device, seed: int = 0) -> PatternLM:
    """``cfg``'s model with random weights, built directly in BF16 on ``device``."""
    torch.manual_seed(seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        return build_model(cfg, device=device).eval()
    finally:
        torch.set_default_dtype(old)


# --- decode ------------------------------------------------------------------------------

def decode_row(name: str, model: PatternLM, context: int, batch: int, sizes: dict, bandwidth: float,
               mode: str = "graph") -> dict:
    """One timed decode setting; ``mode``: ``graph`` (static steps, a CUDA graph on a GPU),
    ``graph+compile`` (the step compiled, then captured), ``eager`` (the segment stepper, no graph)."""
    device = model.embed.weight.device
    steps = sizes["decode_steps"]
    capacity = context + sizes["warm_steps"] + steps + 1
    row = {"model": name, "context": context, "batch": batch, "mode": mode}
    need = predicted_cache_nbytes(model.cfg, capacity, batch, dtype=torch.bfloat16)
    free = free_bytes(device)
    if free is not None and need > 0.9 * free:
        return {**row, "skipped": f"cache of {need / 2**30:.1f} GiB does not fit in {free / 2**30:.1f} GiB free"}
    ids = torch.zeros(batch, dtype=torch.long, device=device)
    if mode == "eager":
        stepper, setup = decode_stepper(model, compile=False), 0.0
        cache = model.allocate_cache(batch, capacity)
        fill_random_cache(cache, context)
        kv_entries = [e for e in cache.layers if isinstance(e, KVCache)]

        def rewind():  # decode the same positions again next repeat
            cache.length -= steps
            for entry in kv_entries:
                entry.length -= steps

        def run():
            for _ in range(steps):
                stepper(ids, cache)
            rewind()
    else:
        decoder = StaticDecoder(model, batch, capacity, compile=mode == "graph+compile")
        setup = decoder.setup_seconds
        decoder.fill_random(context)
        for _ in range(sizes["warm_steps"]):
            decoder.step(ids)
        kv_entries = [e for e in decoder.cache.layers if isinstance(e, KVCache)]

        def run():
            for _ in range(steps):
                decoder.step(ids)
            decoder.cache.length -= steps
            for entry in kv_entries:
                entry.length -= steps
            decoder.position.sub_(steps)
    seconds = timed(run, device, sizes["repeats"]) / steps
    floor = decode_bytes(model.cfg, context, batch).bytes_per_step / bandwidth
    out = {**row, "ms_per_step": seconds * 1e3, "tokens_per_s": batch / seconds, "floor_ms": floor * 1e3,
           "x_floor": seconds / floor, "setup_s": setup}
    if mode == "graph":  # what one replay launches: the uncompiled step's ops, run once outside the graph
        with torch.no_grad():
            out["kernels_per_step"] = sum(count_kernels(decoder._step).values())
    return out


def run_decode(check: Check, sizes: dict, device: torch.device, configs: dict, deadline: float) -> None:
    """Two passes over the models (one model in memory at a time): first the static graph rows
    that the targets read, then the comparison rows (eager stepper, compiled graph), which are
    the first to go when the time budget runs short."""
    bandwidth = check.device["copy_bandwidth"]
    room = max(sizes["contexts"]) + sizes["warm_steps"] + sizes["decode_steps"] + 1
    base_context, base_batch = sizes["baseline"]
    passes = [[(c, b, "graph") for c in sizes["contexts"] for b in sizes["batches"]],
              [(base_context, base_batch, mode) for mode in sizes["compare_modes"]]]
    for settings in passes:
        for name, cfg in configs.items():
            model = None
            for context, batch, mode in settings:
                row = {"model": name, "context": context, "batch": batch, "mode": mode}
                if time.perf_counter() > deadline:
                    check.decode.append({**row, "skipped": "time budget spent"})
                    continue
                try:
                    model = model or build_bf16(with_max_seq_len(cfg, room), device)
                    check.decode.append(decode_row(name, model, context, batch, sizes, bandwidth, mode))
                except Exception as err:  # one failing setting (e.g. out of memory) must not end the check
                    check.decode.append({**row, "error": f"{type(err).__name__}: {err}"})
                release()
            del model
            release()


# --- training ----------------------------------------------------------------------------

def slice_config(cfg: ModelConfig, layers: int, seq: int) -> ModelConfig:
    """The first ``layers`` layers of ``cfg``'s pattern at its widths, for sequences of ``seq``."""
    return dataclasses.replace(cfg, pattern=cfg.pattern[:layers], max_seq_len=seq)


def train_flops_per_token(model: PatternLM, seq: int) -> float:
    """6 x non-embedding parameters (forward + backward) plus causal attention: per attention layer
    and token, ``QK^T`` and ``PV`` over on average ``seq / 2`` keys, 2 FLOPs per multiply-add,
    times 3 for forward and backward: ``6 * seq * n_heads * head_dim``. The SSD scan's own FLOPs
    are left out (small next to the projections at these widths)."""
    params = sum(p.numel() for name, p in model.named_parameters() if name != "embed.weight")
    a = model.cfg.attention
    return 6 * params + model.cfg.count("*") * 6 * seq * a.n_heads * a.head_dim


def train_row(name: str, cfg: ModelConfig, sizes: dict, device: torch.device, precision: str,
              peaks: dict | None) -> dict:
    """Tokens/s of AdamW training steps on random tokens; ``precision``: ``bf16``, ``fp8-torchao``
    or ``fp8-te``; compiled with torch.compile on a GPU (not TE's modules), eager on a CPU."""
    from nvrepro.core.training.precision.apply import apply_fp8
    from nvrepro.core.training.precision.config import FP8Config

    seq, batch = sizes["train_seq"], sizes["train_batch"]
    model = build_bf16(cfg, device).train()
    converted, autocast = [], contextlib.nullcontext
    if precision != "bf16":
        backend = {"fp8-torchao": "torchao", "fp8-te": "transformer_engine"}[precision]
        fp8 = FP8Config(backend=backend, exclude_first_n=0, exclude_last_n=0)
        converted = apply_fp8(model, fp8)
        if backend == "transformer_engine":  # TE's linears run FP8 GEMMs only inside its autocast
            from nvrepro.core.training.precision.te import import_te, te_recipe

            te = import_te()
            autocast = functools.partial(te.fp8_autocast, enabled=True, fp8_recipe=te_recipe(fp8))
    # Compiled on a GPU (TE's modules run eagerly: they bring their own fused kernels).
    compiled = device.type == "cuda" and precision != "fp8-te"
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq + 1), device=device, generator=generator)

    def step():
        with autocast():
            logits = step_model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), ids[:, 1:].flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for _ in range(sizes["train_warmup"]):
        step()
    _sync(device)
    warm = time.perf_counter() - started
    seconds = timed(lambda: [step() for _ in range(sizes["train_steps"])], device, 1) / sizes["train_steps"]
    tokens = batch * seq / seconds
    flops = train_flops_per_token(model, seq) * tokens
    row = {"model": name, "layers": cfg.pattern, "precision": precision, "compiled": compiled, "seq": seq,
           "batch": batch,
           "tokens_per_s": tokens, "model_flops_per_s": flops, "fp8_linears": len(converted),
           "warmup_and_compile_s": warm, "mfu_bf16_peak": flops / peaks["bf16"] if peaks else None}
    return row  # the caller releases the memory once these locals are gone


def run_train(check: Check, sizes: dict, device: torch.device, configs: dict, deadline: float) -> None:
    peaks = check.device.get("peaks")
    precisions = ["bf16", "fp8-torchao"]
    if check.device["packages"]["transformer_engine"] and device.type == "cuda":
        precisions.append("fp8-te")
    for name, cfg in configs.items():
        sliced = slice_config(cfg, sizes["train_layers"][name], sizes["train_seq"])
        for precision in precisions:
            if time.perf_counter() > deadline:
                check.train.append({"model": name, "precision": precision, "skipped": "time budget spent"})
                continue
            try:
                check.train.append(train_row(name, sliced, sizes, device, precision, peaks))
            except Exception as err:
                check.train.append({"model": name, "precision": precision, "error": f"{type(err).__name__}: {err}"})
            release()


# --- SSD -------------------------------------------------------------------------------

def run_ssd(check: Check, sizes: dict, device: torch.device, cfg: ModelConfig) -> None:
    from nvrepro.core.lm.layers import mamba2
    from nvrepro.core.lm.layers.ssd import ssd_chunked
    from nvrepro.hybrid.bench import ssd_inputs

    m = cfg.mamba
    x, dt, A, B, C = (t.to(device) for t in ssd_inputs(sizes["ssd_len"], batch=sizes["ssd_batch"], heads=m.n_heads,
                                                       head_dim=m.head_dim, groups=m.n_groups, state=m.d_state))
    inputs = [t.requires_grad_(True) for t in (x, dt, B, C)]
    cases = {"torch": lambda x, dt, B, C: ssd_chunked(x, dt, A, B, C, m.chunk_size)[0]}
    if mamba2.mamba_chunk_scan_combined is not None and device.type == "cuda":
        cases["triton"] = lambda x, dt, B, C: mamba2.chunk_scan_kernel(x, dt, A, B, C, m.chunk_size, None, None)[0]
    outputs, seconds = {}, {}
    for key, fn in cases.items():
        run, reset = forward_backward(fn, inputs)
        reset()
        run()  # warm-up: Triton compiles its kernels on the first call
        seconds[key] = measure(lambda: (run(), _sync(device)), repeats=sizes["repeats"], warmup=0,
                               setup=lambda: (reset(), _sync(device))).median
        with torch.no_grad():
            outputs[key] = fn(*inputs).float()
    row = {"shape": f"b={sizes['ssd_batch']} L={sizes['ssd_len']} h={m.n_heads} p={m.head_dim} "
                    f"n={m.d_state} g={m.n_groups} Q={m.chunk_size}",
           "torch_ms": seconds["torch"] * 1e3}
    if "triton" in cases:
        diff = (outputs["triton"] - outputs["torch"]).abs().max().item()
        row.update(triton_ms=seconds["triton"] * 1e3, triton_vs_torch=seconds["torch"] / seconds["triton"],
                   max_abs_difference=diff, output_scale=outputs["torch"].abs().max().item())
    else:
        row["triton"] = "mamba_ssm not importable or no CUDA: only the pure-PyTorch path ran"
    check.ssd.append(row)


# --- verdicts and report ---------------------------------------------------------------

def verdicts(check: Check) -> dict:
    """The issue's targets against what was measured (``None``: not measured). Per model, context
    and batch the fastest static path counts (the CUDA graph, compiled or not)."""
    graph = {}
    for r in check.decode:
        key = (r.get("model"), r.get("context"), r.get("batch"))
        if r.get("mode") in ("graph", "graph+compile") and "ms_per_step" in r and (
                key not in graph or r["ms_per_step"] < graph[key]["ms_per_step"]):
            graph[key] = r
    out = {}
    for name in ("nemotron_h_8b", "llama_3_1_8b"):
        b1 = [r["x_floor"] for (m, _, b), r in graph.items() if m == name and b == 1]
        out[f"{name}_within_2x_floor_b1"] = None if not b1 else max(b1) <= TARGETS["floor_ratio"]
    ratios = {}
    for (m, c, b), r in graph.items():
        other = graph.get(("llama_3_1_8b", c, b))
        if m == "nemotron_h_8b" and other:
            ratios[(c, b)] = r["tokens_per_s"] / other["tokens_per_s"]
    out["hybrid_vs_llama"] = {f"{c}x{b}": v for (c, b), v in sorted(ratios.items())}
    small = min((c for c, _ in ratios), default=None)
    out["hybrid_vs_llama_ge_1.3_at_smallest_context_b1"] = (None if (small, 1) not in ratios
                                                           else ratios[(small, 1)] >= TARGETS["hybrid_vs_llama_16k"])
    big = [v for (c, b), v in ratios.items() if c != small or b > 1]
    out["hybrid_vs_llama_ge_2_at_long_context_or_batch"] = (None if not big else
                                                            max(big) >= TARGETS["hybrid_vs_llama_64k_or_b16"])
    fp8 = {}
    for r in check.train:
        if "tokens_per_s" in r and r["precision"] != "bf16":
            base = next((s for s in check.train if s.get("model") == r["model"] and s.get("precision") == "bf16"
                         and "tokens_per_s" in s), None)
            if base:
                fp8[f"{r['model']} {r['precision']}"] = r["tokens_per_s"] / base["tokens_per_s"]
    out["fp8_vs_bf16"] = fp8
    out["fp8_ge_1.3"] = None if not fp8 else max(fp8.values()) >= TARGETS["fp8_vs_bf16"]
    ssd = [r["triton_vs_torch"] for r in check.ssd if "triton_vs_torch" in r]
    out["ssd_triton_ge_3"] = None if not ssd else min(ssd) >= TARGETS["ssd_triton_vs_torch"]
    return out


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return "-" if value is None else str(value)
    body = [[cell(r.get(c)) for c in columns] + [r.get("skipped") or r.get("error") or ""] for r in rows]
    head = columns + ["note"]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def format_report(check: Check) -> str:
    d = check.device
    parts = [f"device: {d.get('name')} ({d.get('type')}), torch {d.get('torch')}, copy bandwidth "
             f"{d.get('copy_bandwidth', 0) / 1e12:.2f} TB/s, packages: "
             + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in d.get("packages", {}).items())]
    if check.decode:
        parts += ["", "decode (ms per step; floor = bytes a step must read / copy bandwidth)",
                  _table(check.decode, ["model", "context", "batch", "mode", "ms_per_step", "floor_ms", "x_floor",
                                        "tokens_per_s", "kernels_per_step", "setup_s"])]
    if check.train:
        parts += ["", "training slices at 8B widths (AdamW, compiled on a GPU)",
                  _table(check.train, ["model", "layers", "precision", "tokens_per_s", "model_flops_per_s",
                                       "mfu_bf16_peak", "warmup_and_compile_s"])]
    if check.ssd:
        parts += ["", "SSD forward + backward",
                  _table(check.ssd, ["shape", "torch_ms", "triton_ms", "triton_vs_torch", "max_abs_difference"])]
    for section, err in check.errors.items():
        parts += ["", f"{section}: failed: {err.splitlines()[-1]}"]
    if check.paper:
        parts += ["", f"paper: Nemotron-H-8B / Llama-3.1-8B throughput {check.paper['hybrid_vs_llama']:g}x "
                      f"({check.paper['source']})"]
    parts += ["targets: " + json.dumps(check.verdicts, default=str), f"total {check.seconds:.0f} s"]
    return "\n".join(parts)


def run(only: list[str] | None = None, tiny: bool = False, budget_s: float = 400.0,
        device: str | None = None) -> Check:
    """Run the chosen sections on ``device`` (default: CUDA if present); returns a :class:`Check`."""
    started = time.perf_counter()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    sizes = TINY if tiny else FULL
    configs = {name: model_config_from_yaml(CONFIGS_DIR / path) for name, path in sizes["models"].items()}
    if tiny:
        configs = {name: tiny_config(cfg) for name, cfg in configs.items()}
    check = Check(device=describe_device(dev, tiny))
    # Decode may use the budget up to 55%, training up to 95%; the SSD comparison takes seconds.
    sections = {"decode": lambda: run_decode(check, sizes, dev, configs, started + 0.55 * budget_s),
                "train": lambda: run_train(check, sizes, dev, configs, started + 0.95 * budget_s),
                "ssd": lambda: run_ssd(check, sizes, dev, configs["nemotron_h_8b"])}
    for name in only or SECTIONS:
        try:
            sections[name]()
        except Exception:
            check.errors[name] = traceback.format_exc()
            release()
    check.verdicts = verdicts(check)
    fact = paper_fact("hybrid", "speedup_8b_vs_llama_3_1_8b")
    check.paper = {"hybrid_vs_llama": fact.value, "source": fact.source}
    check.seconds = time.perf_counter() - started
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    parser.add_argument("--tiny", action="store_true", help="tiny widths and contexts, seconds (numbers mean nothing)")
    parser.add_argument("--budget-s", type=float, default=400.0, help="start no new row after this many seconds")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--json", default="build/gpu_check.json", metavar="FILE", help="where to write the numbers")
    args = parser.parse_args(argv)
    if args.budget_s <= 0:
        parser.error(f"--budget-s: must be positive, got {args.budget_s}")
    if not args.tiny and args.device != "cpu" and not torch.cuda.is_available():
        print("nvrepro gpu-check: no CUDA device here; run it on a GPU machine, or pass --tiny to try the "
              "script's code on this CPU (its numbers then mean nothing)")
        return 2
    check = run(args.only, args.tiny, args.budget_s, args.device)
    print(format_report(check))
    from nvrepro.core.tooling.figures import to_jsonable

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(check.__dict__), indent=2) + "\n")
    print(f"wrote {path}")
    return 1 if check.errors else 0


if __name__ == "__main__":
    sys.exit(main())
