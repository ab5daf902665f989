"""Decoding cost of a pattern-built LM, measured through its caches.

Generation runs in two phases (Nemotron-H Sec. 2.1 and Sec. 3's inference comparison):

* **prefill**: the whole prompt of ``context`` tokens in one forward pass, which fills every
  attention layer's KV cache (``2 * n_kv_heads * head_dim`` numbers per token per layer) and
  leaves every Mamba-2 layer's constant-size state;
* **decode**: one token per step; each attention layer reads its whole KV cache, each Mamba-2
  layer reads and rewrites its fixed state.

:func:`time_decode` prefills, then times single-token steps (of one sequence or of a batch
decoded together) and reports seconds per step and generated tokens per second,
together with the bytes the cache actually holds (:func:`cache_nbytes`) and what the
arithmetic of :mod:`nvrepro.core.lm.info` says it should hold (:func:`predicted_cache_nbytes`).
:func:`transformer_twin` gives the Transformer of the same width and depth that a hybrid is
compared with.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

import torch

from nvrepro.core.lm.config import ModelConfig
from nvrepro.core.lm.decoding import decode_stepper
from nvrepro.core.lm.info import kv_cache_bytes, ssm_state_bytes
from nvrepro.core.lm.layers.attention import KVCache
from nvrepro.core.lm.layers.mamba2 import Mamba2State
from nvrepro.core.lm.model import PatternLM, LMCache, build_model
from nvrepro.core.tooling.timing import measure, measure_side_by_side


def transformer_twin(cfg: ModelConfig) -> ModelConfig:
    """The Transformer of the same width and depth: every ``M`` of the pattern becomes ``*``.

    Attention, FFN, embedding and every width stay as they are, so the two models differ only
    in what their sequence-mixing layers remember while decoding.
    """
    return dataclasses.replace(cfg, pattern=cfg.pattern.replace("M", "*"))


def with_max_seq_len(cfg: ModelConfig, n: int) -> ModelConfig:
    """``cfg`` with ``max_seq_len`` raised to at least ``n`` (NoPE/RoPE need no other change)."""
    return dataclasses.replace(cfg, max_seq_len=max(cfg.max_seq_len, n))


def cache_tensors(cache: LMCache) -> list[torch.Tensor]:
    """Every tensor the cache holds: keys and values of each ``KVCache``, conv window and SSM
    state of each ``Mamba2State``."""
    out: list[torch.Tensor] = []
    for entry in cache.layers:
        if isinstance(entry, KVCache):
            out += [entry.k, entry.v]
        elif isinstance(entry, Mamba2State):
            out += [entry.conv_state, entry.ssm_state]
    return out


def cache_nbytes(cache: LMCache) -> int:
    """Bytes allocated for the cache's tensors, each underlying storage counted once.

    This is memory actually held (a KV cache is preallocated to its capacity), measured from
    the tensors, not computed from the config.
    """
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in cache_tensors(cache)}
    return sum(storages.values())


def predicted_cache_nbytes(cfg: ModelConfig, capacity: int, batch: int = 1,
                           dtype: torch.dtype = torch.float32) -> int:
    """:mod:`nvrepro.core.lm.info`'s arithmetic for a cache allocated by ``PatternLM.allocate_cache``:
    KV caches of ``capacity`` tokens in ``dtype``; Mamba-2 conv windows in ``dtype`` and SSM
    states in ``promote(dtype, float32)``."""
    nbytes = dtype.itemsize
    ssm = torch.promote_types(dtype, torch.float32).itemsize
    return (kv_cache_bytes(cfg, capacity, batch, bytes_per_elem=nbytes)
            + ssm_state_bytes(cfg, batch, conv_bytes=nbytes, ssm_bytes=ssm))


@dataclass
class DecodeTiming:
    """One model at one context and batch: median seconds per decode step (``seconds_per_token``:
    a step yields one token per sequence, so at ``batch`` 1 it is seconds per token; ``step_times``
    the same for every timed block) and the cache it held."""

    context: int
    batch: int
    steps: int
    seconds_per_token: float
    step_times: list[float]
    prefill_seconds: float
    cache_bytes: int
    predicted_cache_bytes: int
    compiled: bool = False
    compile_seconds: float = 0.0  # first (compiling) step, untimed in seconds_per_token

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second over the whole batch."""
        return self.batch / self.seconds_per_token


def _snapshot(cache: LMCache):
    """What decoding changes: cache length, KV lengths, and the (small) Mamba-2 tensors."""
    saved = []
    for entry in cache.layers:
        if isinstance(entry, KVCache):
            saved.append(entry.length)  # later tokens only overwrite slots past this length
        elif isinstance(entry, Mamba2State):
            saved.append((entry.conv_state.clone(), entry.ssm_state.clone()))
        else:
            saved.append(None)
    return cache.length, saved


def copy_to_every_row(source: LMCache, target: LMCache) -> None:
    """Fill every sequence (row) of ``target``, a cache of batch ``b``, with the one sequence of
    ``source`` (batch 1, same capacity): KV caches, Mamba-2 windows and states, and lengths.

    A batch then decodes from the same prefilled context in every row without prefilling ``b``
    prompts: the tensors (and so the bytes each decode step reads) are those of ``b`` distinct
    sequences, and no decode step's cost depends on the values it reads."""
    if len(source.layers) != len(target.layers) or source.capacity != target.capacity:
        raise ValueError("source: needs the same layers and capacity as target")
    for src, dst in zip(source.layers, target.layers):
        if isinstance(src, KVCache):
            dst.k.copy_(src.k.expand_as(dst.k))
            dst.v.copy_(src.v.expand_as(dst.v))
            dst.length = src.length
        elif isinstance(src, Mamba2State):
            batch = dst.ssm_state.shape[0]
            dst.conv_state = src.conv_state.expand(batch, *src.conv_state.shape[1:]).clone()
            dst.ssm_state = src.ssm_state.expand(batch, *src.ssm_state.shape[1:]).clone()
            dst.filled = src.filled
    target.length = source.length


def _restore(cache: LMCache, snapshot) -> None:
    cache.length, saved = snapshot
    for entry, s in zip(cache.layers, saved):
        if isinstance(entry, KVCache):
            entry.length = s
        elif isinstance(entry, Mamba2State):
            entry.conv_state, entry.ssm_state = s[0].clone(), s[1].clone()


class _Decoder:
    """One model, prefilled to ``context`` tokens, ready to decode ``steps`` tokens repeatedly."""

    def __init__(self, model: PatternLM, context: int, steps: int, batch: int, seed: int,
                 compile: bool = False, shared_prompt: bool = False):
        capacity = context + steps
        if capacity > model.cfg.max_seq_len:
            raise ValueError(f"context: {context} + {steps} decode steps exceed max_seq_len="
                             f"{model.cfg.max_seq_len}; build the model with with_max_seq_len()")
        self.model, self.steps = model.eval(), steps
        gen = torch.Generator().manual_seed(seed)
        device = model.embed.weight.device
        prompt = torch.randint(model.cfg.vocab_size, (batch, context), generator=gen).to(device)
        self.tokens = torch.randint(model.cfg.vocab_size, (batch, steps), generator=gen).to(device)
        self.cache = model.allocate_cache(batch, capacity)
        with torch.no_grad():
            if shared_prompt and batch > 1:
                # Prefill one sequence and copy it into every row: a batch-b prefill would cost b
                # times as much and change nothing the decode steps read.
                one = model.allocate_cache(1, capacity)
                self.prefill_seconds = measure(lambda: model(prompt[:1], one), repeats=1, warmup=0).median
                copy_to_every_row(one, self.cache)
            else:
                self.prefill_seconds = measure(lambda: model(prompt, self.cache), repeats=1, warmup=0).median
        self._after_prefill = _snapshot(self.cache)
        self.step = decode_stepper(model, compile)
        # The first step compiles (compile=True); time it apart, then start again from the prefill.
        self.compile_seconds = 0.0
        if compile:
            self.compile_seconds = measure(lambda: self.step(self.tokens[:, 0], self.cache),
                                           repeats=1, warmup=0).median
            self.reset()

    def reset(self) -> None:
        _restore(self.cache, self._after_prefill)

    @torch.no_grad()
    def block(self) -> None:
        for i in range(self.steps):
            self.step(self.tokens[:, i], self.cache)


def time_decode(models: dict[str, PatternLM], context: int, steps: int = 16, repeats: int = 3,
                warmup: int = 1, batch: int = 1, seed: int = 0,
                compile: bool = False, shared_prompt: bool = False) -> dict[str, DecodeTiming]:
    """Prefill ``context`` random tokens into each model's cache, then time ``steps`` decode steps.

    The models are measured side by side: every repeat times one block of ``steps`` tokens per
    model, in turn, so a load spike on a shared machine hits them alike. Each block starts from
    the same prefilled cache (restored untimed), i.e. decodes positions ``context ..
    context + steps - 1``. Per model: ``seconds_per_token`` = median over repeats of block time /
    ``steps``, the prefill time, and the cache's allocated bytes (:func:`cache_nbytes`, capacity
    ``context + steps``) next to :func:`predicted_cache_nbytes`.

    Steps go through the model's :class:`~nvrepro.core.lm.decoding.DecodeStepper`;
    ``compile=True`` fuses each model's fixed-shape work between attention cores with
    torch.compile (compiled once per model, before the first timing; the first step's time is
    reported as ``compile_seconds``: seconds at the first context, near zero afterwards).

    ``batch`` sequences decode together (one step yields ``batch`` tokens); with
    ``shared_prompt`` only the first sequence is prefilled and copied into every row
    (:func:`copy_to_every_row`; ``prefill_seconds`` is then that one sequence's), which keeps a
    large-batch sweep from spending its time in prefill. Each row still decodes its own tokens.
    """
    for name, value in (("context", context), ("steps", steps), ("batch", batch)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")
    decoders = {name: _Decoder(m, context, steps, batch, seed, compile, shared_prompt)
                for name, m in models.items()}
    timings = measure_side_by_side({name: (d.block, d.reset) for name, d in decoders.items()},
                                   repeats=repeats, warmup=warmup)
    out = {}
    for name, d in decoders.items():
        per_token = [t / steps for t in timings[name].times]
        out[name] = DecodeTiming(
            context=context, batch=batch, steps=steps,
            seconds_per_token=statistics.median(per_token), step_times=per_token,
            prefill_seconds=d.prefill_seconds, cache_bytes=cache_nbytes(d.cache),
            predicted_cache_bytes=predicted_cache_nbytes(d.model.cfg, context + steps, batch,
                                                         d.model.embed.weight.dtype),
            compiled=d.step.compiled, compile_seconds=d.compile_seconds)
    return out


def build_pair(cfg: ModelConfig, max_context: int, seed: int = 0) -> dict[str, PatternLM]:
    """``{"hybrid": cfg's model, "transformer": its twin}``, both able to hold ``max_context``
    tokens, each built with ``torch.manual_seed(seed)``."""
    cfg = with_max_seq_len(cfg, max_context)
    models = {}
    for name, c in (("hybrid", cfg), ("transformer", transformer_twin(cfg))):
        torch.manual_seed(seed)
        models[name] = build_model(c).eval()
    return models


def weight_nbytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters (each shared tensor once): what one decode step reads."""
    return sum(p.numel() * p.element_size() for p in model.parameters())
