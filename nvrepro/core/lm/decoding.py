"""One-token decoding as a few fused segments between attention cores.

A decode step of a pattern-built LM is, per layer, a handful of tiny operations on one token:
a Mamba-2 layer alone is about fifty (projections, conv-window roll, softplus, the recurrent
SSD update, gated norm). At toy widths each costs microseconds of dispatch, not arithmetic, so
an eager step measures per-op overhead rather than what the architecture reads and writes --
which is what Nemotron-H's inference claim is about (Sec. 3: the hybrid's constant-size state
against a KV cache that grows with the context).

Only one piece of a step depends on the context length: each attention layer's core, the
softmax over its cached keys and values. :class:`DecodeStepper` cuts the step there::

    [embed, blocks ..., q/k/v of attention 1]  ->  SDPA over cache 1  ->
    [o_proj 1, blocks ..., q/k/v of attention 2]  ->  SDPA over cache 2  ->  ...
    [o_proj n, blocks ..., final norm, LM head]

Every bracket has fixed shapes for a whole generation, so ``compile=True`` hands each one to
``torch.compile`` (static shapes: it compiles once and never recompiles as the cache grows) and
the C++/Triton kernels it generates replace the per-op dispatch. The attention cores stay
torch's ``scaled_dot_product_attention`` over the cache, eager, for both model families alike.
A model runs one segment more than it has attention layers.

The eager stepper (``compile=False``) computes exactly what ``model(ids[:, None], cache)`` does;
the compiled one agrees to float rounding. Both update ``cache`` like the model's forward.
"""

from __future__ import annotations

import types
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from nvrepro.core.lm.layers.mamba2 import Mamba2State
from nvrepro.core.lm.model import PatternLM, LMCache
from nvrepro.core.tooling.compiling import compile_available


@dataclass(frozen=True)
class Segment:
    """Blocks between two attention cores.

    ``start_attn``: attention layer whose output projection opens the segment (None: the
    segment starts from the token embedding). ``blocks``: Mamba-2 and FFN layers run whole.
    ``end_attn``: attention layer whose q/k/v projection closes it (None: the segment ends with
    the final norm and the LM head).
    """

    start_attn: int | None
    blocks: tuple[int, ...]
    end_attn: int | None


def split_segments(pattern: str) -> list[Segment]:
    """Cut a layer pattern at its attention layers, e.g. ``"M-*-M-"`` ->
    ``[Segment(None, (0, 1), 2), Segment(2, (3, 4, 5), None)]``."""
    segments, start, blocks = [], None, []
    for i, kind in enumerate(pattern):
        if kind == "*":
            segments.append(Segment(start, tuple(blocks), i))
            start, blocks = i, []
        else:
            blocks.append(i)
    segments.append(Segment(start, tuple(blocks), None))
    return segments


def _own_code(fn, name: str):
    """A copy of ``fn`` with its own code object. torch.compile keeps one cache (and one
    recompile budget) per code object, so segments built from one Python function would count
    as recompiles of each other; each copy compiles once instead."""
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def _segment_function(model: PatternLM, seg: Segment):
    layers = model.layers

    def segment(x: Tensor, attn_out: Tensor | None, states: list[Tensor], positions: Tensor | None):
        """``x``: token ids ``(b,)`` for the first segment, else the residual ``(b, d_model)``;
        ``attn_out (b, n_heads * head_dim)`` of ``start_attn``; ``states``: conv window and SSM
        state of each Mamba-2 layer in ``blocks``, in order. Returns the residual, the new
        states, ``(q, k, v)`` of ``end_attn`` (each ``(b, heads, 1, head_dim)``) or None, and
        the logits ``(b, vocab)`` or None."""
        if seg.start_attn is None:
            x = model.embed(x)
        else:
            x = x + layers[seg.start_attn].mixer.o_proj(attn_out)
        new_states: list[Tensor] = []
        for i in seg.blocks:
            block = layers[i]
            if block.kind == "M":
                conv, ssm = states[len(new_states)], states[len(new_states) + 1]
                h, conv, ssm = block.mixer.decode_step(block.norm(x), conv, ssm)
                new_states += [conv, ssm]
            else:
                h = block.mixer(block.norm(x))
            x = x + h
        if seg.end_attn is None:
            return x, new_states, None, model.lm_head(model.norm_f(x))
        block = layers[seg.end_attn]
        return x, new_states, block.mixer.project(block.norm(x)[:, None], positions), None

    return segment


class DecodeStepper:
    """Decode one token per call through a :class:`PatternLM`'s cache, segment by segment.

    ``stepper(ids, cache) -> logits (b, vocab_size)`` for ``ids`` of shape ``(b,)`` or
    ``(b, 1)``; ``cache`` (from ``model.allocate_cache``, usually after a prefill) advances by
    one token. ``compile=True`` compiles each segment with ``torch.compile`` on the first call
    (seconds per segment; the attention cores stay eager); where :func:`compile_available` says
    it cannot run, it warns and steps eagerly instead (``compiled`` says which). Pure-PyTorch
    paths only: on CUDA with mamba_ssm installed, ``model(ids, cache)`` uses its fused kernels.
    """

    KINDS = frozenset("M*-")  # the layer kinds whose one-token steps the segments know

    def __init__(self, model: PatternLM, compile: bool = False):
        other = sorted(set(model.cfg.pattern) - self.KINDS)
        if other:
            raise ValueError(f"pattern: the fixed-shape decode step handles layer kinds {sorted(self.KINDS)}, "
                             f"not {other}; decode with model.generate (cached, eager) instead")
        if compile and not compile_available()[0]:
            warnings.warn(f"torch.compile is not available here ({compile_available()[1]}); "
                          "decoding with eager steps, which compute the same logits", stacklevel=2)
            compile = False
        self.model, self.compiled = model, compile
        self.segments = split_segments(model.cfg.pattern)
        self.mamba_layers = [[i for i in s.blocks if model.layers[i].kind == "M"] for s in self.segments]
        self.uses_rope = any(b.kind == "*" and b.mixer.cfg.rope for b in model.layers)
        self.functions = []
        for n, seg in enumerate(self.segments):
            fn = _own_code(_segment_function(model, seg), f"decode_segment_{n}")
            self.functions.append(torch.compile(fn, fullgraph=True, dynamic=False) if compile else fn)

    def _prime_rope(self, device) -> None:
        # Attention layers build their RoPE frequencies lazily; build them outside the traced
        # region so that tracing sees no module attribute being written.
        for block in self.model.layers:
            if block.kind == "*" and block.mixer.cfg.rope:
                block.mixer.inv_freq(device)

    @torch.no_grad()
    def __call__(self, ids: Tensor, cache: LMCache) -> Tensor:
        if ids.dim() == 2 and ids.shape[1] == 1:
            ids = ids[:, 0]
        if ids.dim() != 1:
            raise ValueError(f"ids: expected shape (batch,) or (batch, 1), got {tuple(ids.shape)}")
        if len(cache.layers) != len(self.model.layers):
            raise ValueError(f"cache: has {len(cache.layers)} layers, the model {len(self.model.layers)}")
        if cache.length + 1 > min(cache.capacity, self.model.cfg.max_seq_len):
            raise ValueError(f"cache: full at {cache.length} tokens (capacity {cache.capacity}, "
                             f"max_seq_len {self.model.cfg.max_seq_len})")
        positions = None
        if self.uses_rope:
            self._prime_rope(ids.device)
            positions = torch.full((1,), cache.length, device=ids.device, dtype=torch.long)
        x, attn_out, logits = ids, None, None
        for seg, fn, mamba in zip(self.segments, self.functions, self.mamba_layers):
            # Contiguous inputs: compiled code is specialised to strides, and a prefill may leave views.
            states = [t.contiguous() for i in mamba for t in (cache.layers[i].conv_state, cache.layers[i].ssm_state)]
            x, new_states, qkv, logits = fn(x, attn_out, states, positions)
            for j, i in enumerate(mamba):
                entry: Mamba2State = cache.layers[i]
                entry.conv_state, entry.ssm_state = new_states[2 * j], new_states[2 * j + 1]
                entry.filled = True
            if seg.end_attn is not None:
                attention = self.model.layers[seg.end_attn].mixer
                attn_out = attention.attend_cached(*qkv, cache.layers[seg.end_attn])[:, 0]
        cache.length += 1
        return logits


def decode_stepper(model: PatternLM, compile: bool = False) -> DecodeStepper:
    """``model``'s :class:`DecodeStepper`, built once per ``compile`` setting and kept on the
    model, so that compiling happens once per model. (A function here rather than a method of
    the LM, so that the LM module does not import this one back.)"""
    steppers = model.__dict__.setdefault("_decode_steppers", {})
    if compile not in steppers:
        steppers[compile] = DecodeStepper(model, compile=compile)
    return steppers[compile]
