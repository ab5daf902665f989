"""``nvrepro bench``: speed ratios measured side by side in one run (not a test).

    nvrepro bench [--only ssd|mixer|decode|retrieval ...] [--quick] [--threads N] [--no-compile] [--json FILE]

Four comparisons, each a ratio "how many times faster is the first than the second", with
both sides timed interleaved in the same process (:mod:`nvrepro.core.tooling.timing`):

* ``ssd``: chunked SSD (Mamba-2 Sec. 6) vs the token-by-token recurrence, forward + backward,
  float32, at L in {512, 2048, 8192} (the recurrence runs once at 8192: tens of seconds);
* ``mixer``: our :class:`~nvrepro.core.lm.layers.mamba2.Mamba2Mixer` vs HF transformers'
  ``Mamba2Mixer`` (its pure-PyTorch path: no mamba_ssm / causal_conv1d kernels on CPU) at the
  same shapes, forward + backward, with our weights copied into theirs and the outputs compared
  (the max difference is printed; a ratio between two different functions would mean nothing);
* ``decode``: the toy hybrid (``configs/hybrid/toy_hybrid.yaml``) vs the Transformer of the same
  width and depth (every ``M`` replaced by ``*``) decoding through their caches: prefill the
  context, then time single-token steps; tokens/s at 1K, 4K and 16K context, once with eager
  steps and once with compiled ones (:mod:`nvrepro.core.lm.decoding`: the fixed-shape work
  between attention cores fused by torch.compile, for both models alike). At toy widths an
  eager step is mostly per-op dispatch, which hides the difference in what the two models read.
* ``retrieval``: approximate faiss indexes (IVF-Flat, IVF-PQ, HNSW, the RETRO study's
  OPQ,IVF_HNSW,PQ form scaled down) vs exact Flat search, queries/s on 1,000 queries over 10^5
  seeded synthetic clustered unit vectors of dimension 384, with each index's recall@10 against
  Flat (:mod:`nvrepro.core.retrieval.bench`; faiss uses its own threads). No target: the ratio
  and the recall are read together.

Targets (on a 2-core laptop CPU): chunked >= 10x the recurrence at L=2048; ours not slower than
transformers'; hybrid >= 3x the Transformer's tokens/s at 16K (compiled steps). ``--quick`` runs tiny sizes in
seconds (for tests); its ratios mean nothing and no target applies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from nvrepro.core.lm.config import ModelConfig, model_config_from_yaml
from nvrepro.hybrid.decode_cost import build_pair, time_decode
from nvrepro.core.tooling.compiling import compile_available
from nvrepro.core.lm.layers.mamba2 import Mamba2Mixer
from nvrepro.core.lm.layers.ssd import ssd_chunked, ssd_naive
from nvrepro.core.tooling.paths import CONFIGS_DIR
from nvrepro.core.tooling.timing import available_cores, forward_backward, measure_side_by_side, num_threads

DEFAULT_CONFIG = CONFIGS_DIR / "hybrid" / "toy_hybrid.yaml"
BENCHES = ("ssd", "mixer", "decode", "retrieval")

# Sizes per mode. "targets": the length/context at which the target is judged.
SIZES = {
    "full": dict(ssd_lengths=[512, 2048, 8192], ssd_batch=1, naive_single_from=8192,
                 mixer_lengths=[512, 2048], mixer_batch=2,
                 contexts=[1024, 4096, 16384], decode_steps=16, decode_modes=["eager", "compiled"],
                 repeats=5, warmup=1, retrieval_n=100_000, retrieval_queries=1000,
                 # decode: judged on the compiled steppers (the eager rows show the overhead).
                 targets={"ssd": (2048, 10.0), "mixer": (None, 1.0), "decode": (16384, 3.0, "compiled")}),
    "quick": dict(ssd_lengths=[64, 128], ssd_batch=1, naive_single_from=128,
                  mixer_lengths=[64], mixer_batch=1,
                  contexts=[32, 64], decode_steps=2, decode_modes=["eager"],
                  repeats=1, warmup=0, retrieval_n=2000, retrieval_queries=50,
                  # OPQ and PQ training take minutes on a busy CPU: the quick run skips them
                  retrieval_indexes=["Flat (exact)", "IVF-Flat", "HNSW32"], targets={}),
}


@dataclass
class Row:
    """One line of the table: ``ours`` vs ``reference`` at one size; ``ratio`` = how many times
    faster ours is (reference time / our time, or our tokens/s / theirs)."""

    bench: str
    size: str
    ours: str
    reference: str
    unit: str  # "ms" (fwd+bwd time, median) or "tok/s"
    ours_value: float
    reference_value: float
    ratio: float
    target: float | None = None
    repeats: dict = field(default_factory=dict)
    note: str = ""

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.ratio >= self.target


def _target(sizes: dict, bench: str, size: int) -> float | None:
    at, value = sizes["targets"].get(bench, (None, None))[:2]
    if value is None or (at is not None and at != size):
        return None
    return value


# --- SSD: chunked vs recurrence ----------------------------------------------------------

def ssd_inputs(length: int, *, batch: int, heads: int, head_dim: int, groups: int, state: int,
               dtype: torch.dtype = torch.float32, seed: int = 0,
               requires_grad: bool = False) -> tuple[torch.Tensor, ...]:
    """Random SSD inputs: ``x (b, l, h, p)``, ``dt (b, l, h) > 0``, ``A (h,) < 0``,
    ``B, C (b, l, g, n)`` (scaled by ``1/sqrt(n)`` so ``C·B`` stays O(1))."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, head_dim, generator=gen, dtype=dtype)
    dt = 0.01 + 0.1 * torch.rand(batch, length, heads, generator=gen, dtype=dtype)
    A = -(0.5 + torch.rand(heads, generator=gen, dtype=dtype))
    B = torch.randn(batch, length, groups, state, generator=gen, dtype=dtype) / state**0.5
    C = torch.randn(batch, length, groups, state, generator=gen, dtype=dtype) / state**0.5
    if requires_grad:
        for t in (x, dt, B, C):
            t.requires_grad_(True)
    return x, dt, A, B, C


def bench_ssd(cfg: ModelConfig, sizes: dict, seed: int = 0) -> list[Row]:
    """Chunked SSD vs ``ssd_naive``, fwd+bwd, at the Mamba-2 widths of ``cfg``."""
    m = cfg.mamba
    shape = dict(batch=sizes["ssd_batch"], heads=m.n_heads, head_dim=m.head_dim, groups=m.n_groups,
                 state=m.d_state)
    rows = []
    for length in sizes["ssd_lengths"]:
        x, dt, A, B, C = ssd_inputs(length, **shape, seed=seed + length, requires_grad=True)
        inputs = [x, dt, B, C]
        cases = {
            "chunked": forward_backward(lambda x, dt, B, C: ssd_chunked(x, dt, A, B, C, m.chunk_size)[0], inputs),
            "naive": forward_backward(lambda x, dt, B, C: ssd_naive(x, dt, A, B, C)[0], inputs),
        }
        single = length >= sizes["naive_single_from"]
        repeats = {"chunked": sizes["repeats"], "naive": 1 if single else sizes["repeats"]}
        warmup = {"chunked": sizes["warmup"], "naive": 0 if single else sizes["warmup"]}
        t = measure_side_by_side({k: (run, reset) for k, (run, reset) in cases.items()}, repeats, warmup)
        fast, slow = t["chunked"].median, t["naive"].median
        rows.append(Row("ssd", f"b={shape['batch']} L={length}", f"chunked (Q={m.chunk_size})",
                        "recurrence", "ms", fast * 1e3, slow * 1e3, slow / fast,
                        _target(sizes, "ssd", length), {k: v.repeats for k, v in t.items()},
                        "recurrence timed once (no warm-up)" if single else ""))
    return rows


# --- Mamba-2 mixer: ours vs HF transformers ------------------------------------------------

@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' one-time "falling back to the PyTorch implementation" warnings:
    the fallback is exactly the path we mean to compare with."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(old)


def hf_kernel_packages() -> list[str]:
    """Kernel packages transformers' Mamba-2 would pick up instead of its PyTorch fallbacks."""
    import importlib.util

    return [name for name in ("mamba_ssm", "causal_conv1d") if importlib.util.find_spec(name) is not None]


def hf_mamba2_twin(ours: Mamba2Mixer, norm_eps: float):
    """transformers' ``Mamba2Mixer`` with the same widths as ``ours`` and a copy of its weights.

    Parameter names match one to one (``in_proj``, ``conv1d``, ``dt_bias``, ``A_log``, ``D``,
    ``norm.weight``, ``out_proj``); ``strict=True`` loading proves it.
    """
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer as HFMamba2Mixer

    m, d = ours.cfg, ours.d_model
    if m.d_inner % d:
        raise ValueError(f"mamba.n_heads * head_dim = {m.d_inner} must be a multiple of d_model={d}: "
                         "transformers' Mamba2Config takes an integer `expand`")
    hf_cfg = Mamba2Config(hidden_size=d, num_heads=m.n_heads, head_dim=m.head_dim, expand=m.d_inner // d,
                          state_size=m.d_state, n_groups=m.n_groups, conv_kernel=m.d_conv,
                          chunk_size=m.chunk_size, use_conv_bias=m.conv_bias, use_bias=False,
                          layer_norm_epsilon=norm_eps, time_step_limit=tuple(m.dt_limit),
                          num_hidden_layers=1, vocab_size=8)
    theirs = HFMamba2Mixer(hf_cfg, layer_idx=0)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return theirs.to(ours.in_proj.weight.dtype)


def bench_mixer(cfg: ModelConfig, sizes: dict, seed: int = 0) -> list[Row]:
    """Our Mamba-2 mixer vs transformers' at ``cfg``'s widths, fwd+bwd, float32.

    Both run in eval mode (no dropout in either; in train mode transformers first tries a fused
    kernel that does not exist on CPU and falls through to the same path). Before timing, the
    outputs and input gradients of the two are compared on the timed input.
    """
    kernels = hf_kernel_packages()
    if kernels:  # they would replace the pure-PyTorch path we mean to compare with
        print(f"nvrepro bench: mixer skipped: {', '.join(kernels)} importable, so transformers would run "
              "its kernels, not its pure-PyTorch path; compare in an environment without them", file=sys.stderr)
        return []
    torch.manual_seed(seed)
    ours = Mamba2Mixer(cfg.d_model, cfg.mamba, cfg.norm_eps).eval()
    rows = []
    with _quiet_transformers():
        theirs = hf_mamba2_twin(ours, cfg.norm_eps).eval()
        for length in sizes["mixer_lengths"]:
            gen = torch.Generator().manual_seed(seed + length)
            x = torch.randn(sizes["mixer_batch"], length, cfg.d_model, generator=gen, requires_grad=True)
            diff = _max_difference(ours, theirs, x)
            cases = {name: forward_backward(mod, [x], list(mod.parameters()))
                     for name, mod in (("ours", ours), ("hf", theirs))}
            t = measure_side_by_side(cases, sizes["repeats"], sizes["warmup"])
            fast, slow = t["ours"].median, t["hf"].median
            rows.append(Row("mixer", f"b={sizes['mixer_batch']} L={length}", "nvrepro Mamba2Mixer",
                            "transformers Mamba2Mixer", "ms", fast * 1e3, slow * 1e3, slow / fast,
                            _target(sizes, "mixer", length), {k: v.repeats for k, v in t.items()},
                            f"max|dy| {diff['y']:.1e}, max|dx| {diff['grad']:.1e}"))
    return rows


def _max_difference(ours: torch.nn.Module, theirs: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Max |difference| of outputs and of input gradients (of ``sum(y)``) between two modules."""
    outs, grads = [], []
    for mod in (ours, theirs):
        xi = x.detach().clone().requires_grad_(True)
        y = mod(xi)
        y.sum().backward()
        outs.append(y.detach())
        grads.append(xi.grad)
        mod.zero_grad(set_to_none=True)
    return {"y": (outs[0] - outs[1]).abs().max().item(), "grad": (grads[0] - grads[1]).abs().max().item()}


# --- decode: toy hybrid vs Transformer twin -----------------------------------------------

def bench_decode(cfg: ModelConfig, sizes: dict, seed: int = 0) -> list[Row]:
    """Tokens/s of the hybrid and its Transformer twin, decoding through their caches."""
    contexts = sizes["contexts"]
    models = build_pair(cfg, max(contexts) + sizes["decode_steps"], seed=seed)
    judged = sizes["targets"].get("decode", (None, None, None))[2:]
    modes = list(sizes["decode_modes"])
    if "compiled" in modes and not compile_available()[0]:
        print(f"note: torch.compile is not available here ({compile_available()[1]}); "
              "decode is measured with eager steps only", file=sys.stderr)
        modes.remove("compiled")
    rows = []
    for mode in modes:
        for context in contexts:
            r = time_decode(models, context, steps=sizes["decode_steps"], repeats=sizes["repeats"],
                            warmup=sizes["warmup"], seed=seed, compile=mode == "compiled")
            hyb, tr = r["hybrid"], r["transformer"]
            note = f"cache {hyb.cache_bytes / 2**20:.2f} vs {tr.cache_bytes / 2**20:.2f} MiB"
            if mode == "compiled":
                note += f"; compiling took {hyb.compile_seconds:.0f} s / {tr.compile_seconds:.0f} s"
            rows.append(Row("decode", f"context={context} {mode}", f"hybrid {cfg.pattern}",
                            f"transformer {models['transformer'].cfg.pattern}", "tok/s",
                            hyb.tokens_per_second, tr.tokens_per_second,
                            hyb.tokens_per_second / tr.tokens_per_second,
                            _target(sizes, "decode", context) if mode in judged else None,
                            {"steps": sizes["decode_steps"], "blocks": len(hyb.step_times)}, note))
    return rows


# --- retrieval: approximate faiss indexes vs exact search ----------------------------------

def bench_retrieval(cfg: ModelConfig, sizes: dict, seed: int = 0) -> list[Row]:
    """Queries/s of each approximate index of :mod:`nvrepro.core.retrieval.bench` against exact
    ``Flat`` search on seeded synthetic clustered unit vectors (384 dims, MiniLM's), with its
    recall@10 against Flat in the note. ``cfg`` is unused (the other benches' signature)."""
    from nvrepro.core.retrieval import bench as retrieval

    result = retrieval.run(sizes["retrieval_n"], 384, sizes["retrieval_queries"], repeats=max(3, sizes["repeats"]),
                           seed=seed, labels=sizes.get("retrieval_indexes"))
    flat = next(r for r in result["rows"] if r["factory"] == "Flat")
    print(f"retrieval: {result['data']}")
    return [Row("retrieval", f"n={result['n']:,} d={result['dim']}", f"{r['factory']} {_params(r['params'])}".strip(),
                "Flat (exact)", "q/s", r["queries_per_second"], flat["queries_per_second"], r["speedup"], None,
                {"search": len(r["search_seconds"])},
                f"recall@{result['k']} {r['recall']:.3f}, built in {r['build_seconds']:.1f} s")
            for r in result["rows"] if r is not flat]


def _params(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


# --- report --------------------------------------------------------------------------------

def format_table(rows: list[Row]) -> str:
    """A fixed-width table: one row per comparison, ratio and whether the target was met."""
    head = ("bench", "size", "ours", "reference", "ours", "ref", "ratio", "target", "note")
    lines = []
    for r in rows:
        fmt = (lambda v: f"{v:,.1f}") if r.unit == "ms" else (lambda v: f"{v:,.0f}")
        target = "-" if r.target is None else f">={r.target:g}x {'met' if r.met else 'MISSED'}"
        lines.append((r.bench, r.size, r.ours, r.reference, f"{fmt(r.ours_value)} {r.unit}",
                      f"{fmt(r.reference_value)} {r.unit}", f"{r.ratio:.2f}x", target, r.note))
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def run(only: list[str] | None = None, quick: bool = False, threads: int | None = None,
        config: str | Path = DEFAULT_CONFIG, seed: int = 0, compile: bool = True) -> dict:
    """Run the chosen benchmarks; returns ``{"threads", "cores", "load_average", "quick", "config",
    "seed", "versions", "rows"}`` (``load_average``: the 1-minute load when the run started).
    ``compile=False`` measures decode with eager steps only."""
    sizes = SIZES["quick" if quick else "full"]
    if not compile:
        sizes = {**sizes, "decode_modes": [m for m in sizes["decode_modes"] if m != "compiled"]}
    cfg = model_config_from_yaml(config)
    threads = threads or available_cores()
    load = _load_average()  # before we add our own
    rows: list[Row] = []
    benches = {"ssd": bench_ssd, "mixer": bench_mixer, "decode": bench_decode, "retrieval": bench_retrieval}
    with num_threads(threads) as used:
        for name in only or BENCHES:
            rows += benches[name](cfg, sizes, seed)
    import transformers

    return {"threads": used, "cores": available_cores(), "load_average": load,
            "quick": quick, "config": str(config), "seed": seed,
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "rows": rows}


def _load_average() -> float | None:
    """1-minute system load average (Unix), recorded because other processes skew timings."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHES,
                        help="run only this benchmark (repeat the flag for several)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds (ratios not meaningful)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch intra-op threads (default: all cores, here {available_cores()})")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="model YAML (default: the toy hybrid)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", action="store_true",
                        help="decode: eager steps only (skip the torch.compile'd ones)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads <= 0:
        parser.error(f"--threads: must be a positive integer, got {args.threads}")
    result = run(args.only, args.quick, args.threads, args.config, args.seed, compile=not args.no_compile)
    load = result["load_average"]
    print(f"nvrepro bench: {result['threads']} thread(s) of {result['cores']} cores"
          f"{f' (load average {load:.1f} at start)' if load is not None else ''}, torch "
          f"{result['versions']['torch']}, transformers {result['versions']['transformers']}, config "
          f"{Path(args.config).name}{' (--quick: tiny sizes, ratios not meaningful)' if args.quick else ''}")
    if load is not None and load > result["cores"] - 0.5 and result["threads"] > 1:
        print(f"note: load average {load:.1f} on {result['cores']} cores: other processes compete for them, and a "
              f"{result['threads']}-thread pool waits for its slowest thread; --threads 1 gives steadier ratios")
    print(format_table(result["rows"]))
    if args.json:
        from nvrepro.core.tooling.figures import to_jsonable

        rows = [{**asdict(r), "met": r.met} for r in result["rows"]]
        Path(args.json).write_text(json.dumps(to_jsonable({**result, "rows": rows}), indent=2) + "\n")
    missed = [r for r in result["rows"] if r.met is False]
    if missed:
        print(f"{len(missed)} target(s) missed: " + "; ".join(f"{r.bench} {r.size} {r.ratio:.2f}x < {r.target:g}x"
                                                           for r in missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
