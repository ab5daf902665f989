"""One-token decoding with fixed shapes end to end, replayed as one CUDA graph on a GPU.

Issue 20 measured the eager decode step of the Nemotron-H-8B config at 70.8 ms/token on an H200
where reading the weights takes 3.8 ms. One step of its 52 layers dispatches about 1,700 small
ops (counted on CPU by :func:`~nvrepro.core.tooling.timing.count_kernels`: about 50 per Mamba-2
layer), each launched from Python with microseconds of host time whatever the GPU does -- the
likely cost, not yet profiled on a GPU. The segment stepper (:mod:`nvrepro.core.lm.decoding`)
cannot be captured whole, because its attention cores read ``cache.length``, a Python int that
changes every token (so the shapes change too).

:class:`StaticDecoder` removes both obstacles:

* The position lives in a device tensor ``position (1,)``. Keys and values are written into
  the preallocated :class:`~nvrepro.core.lm.layers.attention.KVCache` buffers at that slot
  (``index_copy_``), and attention reads the whole buffer with the slots after the position
  masked out (:func:`decode_attention`). Mamba-2 states are updated in place. So every tensor
  of a step has the same shape and address for a whole generation: nothing is allocated, and
  nothing is read back to the host.
* On CUDA the step is then captured once with :class:`torch.cuda.CUDAGraph` and each token is
  one ``replay()``: one launch instead of thousands. ``compile=True`` first fuses the step's
  elementwise work with ``torch.compile`` (then captures the compiled step).

On a CPU there are no graphs; the same static step runs eagerly (or compiled), which is what the
CPU tests check against the model's own forward. The reads per step are the weights, the whole
KV buffer (``capacity`` slots, so size the capacity to the generation) and the Mamba-2 states.

Optional kernels: on CUDA with mamba_ssm (and causal-conv1d) importable the Mamba-2 layers step
through their fused kernels (the mixer selects them), which update the state buffers in place.
"""

from __future__ import annotations

import time
import warnings

import torch
from torch import Tensor, nn

from nvrepro.core.tooling.compiling import compile_available
from nvrepro.core.lm.layers.attention import KVCache
from nvrepro.core.lm.layers.mamba2 import Mamba2State
from nvrepro.core.lm.layers.rope import rope_tables

KINDS = frozenset("M*-")  # the layer kinds a static step knows
# PatternLM.generate captures a graph only for this many new tokens or more: the capture costs
# three warm-up steps and a recording. A guess, not yet measured on a GPU.
MIN_NEW_TOKENS = 32


def decode_attention(q: Tensor, k_cache: Tensor, v_cache: Tensor, position: Tensor) -> Tensor:
    """Attention of one new token over a fixed-size cache whose first ``position + 1`` slots count.

    Args:
        q: ``(b, n_heads, 1, head_dim)``, the new token's queries (RoPE already applied).
        k_cache, v_cache: ``(b, n_kv_heads, capacity, head_dim)``, the new token's keys and values
            already written at slot ``position``.
        position: ``(1,)`` integer tensor, the new token's slot.

    Returns ``(b, 1, n_heads * head_dim)``, ready for ``o_proj``. Grouped-query attention without
    repeating the keys: the queries of one KV head are batched against it, so K and V are read
    once (a repeat would copy the whole cache every step). Softmax in float32 at least, scale
    ``1 / sqrt(head_dim)`` (as ``scaled_dot_product_attention``).
    """
    b, h, one, hd = q.shape
    if one != 1:
        raise ValueError(f"q: one new token expected, got shape {tuple(q.shape)}")
    kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    if h % kv_heads:
        raise ValueError(f"q: {h} heads is not a multiple of the cache's {kv_heads} KV heads")
    q = q.reshape(b, kv_heads, h // kv_heads, hd)
    scores = torch.matmul(q, k_cache.transpose(-1, -2))  # (b, kv, g, capacity)
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32)) * hd ** -0.5
    future = torch.arange(capacity, device=q.device) > position  # (capacity,)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1).to(v_cache.dtype)
    return torch.matmul(weights, v_cache).reshape(b, 1, h * hd)


class StaticDecoder:
    """Prefill, then decode one token per call with fixed-shape steps (module docstring), for a
    :class:`~nvrepro.core.lm.model.PatternLM` ``model`` of the layer kinds in :data:`KINDS`.

    ``decoder = StaticDecoder(model, batch, capacity)``; ``logits = decoder.prefill(ids (b, l))``
    gives the last position's logits ``(b, vocab)``; each ``decoder.step(next_ids (b,))`` appends
    one token and returns its logits ``(b, vocab)``. ``decoder.cache`` is an ordinary
    :class:`~nvrepro.core.lm.model.LMCache` over the static buffers (its ``length`` follows the
    steps), so the model's own forward can continue from it.

    ``graph``: capture the step as a CUDA graph (default: when the model is on CUDA; ``True``
    on a CPU is an error). ``compile``: fuse the step with ``torch.compile`` first (where
    :func:`~nvrepro.core.tooling.compiling.compile_available` says it cannot run: a warning and eager
    steps). Capture and compilation happen in the constructor; ``setup_seconds`` says how long.
    """

    def __init__(self, model: nn.Module, batch: int, capacity: int, graph: bool | None = None,
                 compile: bool = False):
        other = sorted(set(model.cfg.pattern) - KINDS)
        if other:
            raise ValueError(f"pattern: static decoding handles layer kinds {sorted(KINDS)}, not {other}; "
                             "decode with model.generate's cached steps instead")
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch: must be a positive integer, got {batch!r}")
        param = model.embed.weight
        self.device = param.device
        if graph is None:
            graph = self.device.type == "cuda"
        if graph and self.device.type != "cuda":
            raise ValueError(f"graph: CUDA graphs need the model on a CUDA device, it is on {self.device}")
        if compile and not compile_available()[0]:
            warnings.warn(f"torch.compile is not available here ({compile_available()[1]}); static steps "
                          "run eagerly and compute the same logits", stacklevel=2)
            compile = False
        self.model, self.batch, self.graphed, self.compiled = model, batch, bool(graph), compile
        self.cache = model.allocate_cache(batch, capacity)  # an LMCache over preallocated buffers
        self.capacity = self.cache.capacity
        # Owned buffers of the Mamba-2 states: the mixer may hand back new tensors; they are
        # copied into these, whose addresses a graph replays.
        self.states: dict[int, tuple[Tensor, Tensor]] = {}
        for i, entry in enumerate(self.cache.layers):
            if isinstance(entry, Mamba2State):
                self.states[i] = (entry.conv_state, entry.ssm_state)
        # RoPE: cos/sin of every position up to the capacity, built once (angles in float64, as
        # the model's forward builds them); every attention layer has the model's one attention
        # config, so a step gathers one row for all of them instead of recomputing the angles.
        self.rope_table: tuple[Tensor, Tensor] | None = None
        attention = next((b.mixer for b in model.layers if b.kind == "*"), None)
        if attention is not None and attention.cfg.rope:
            slots = torch.arange(self.capacity, device=self.device)
            for block in model.layers:  # each layer's YaRN temperature is set with its frequencies
                if block.kind == "*":
                    block.mixer.inv_freq(self.device)
            self.rope_table = rope_tables(slots, attention.inv_freq(self.device), param.dtype)
        self.position = torch.zeros(1, dtype=torch.long, device=self.device)
        self.ids = torch.zeros(batch, dtype=torch.long, device=self.device)
        # Not fullgraph: mamba_ssm's Triton launchers may break the graph; a CUDA graph still
        # captures every kernel of the pieces.
        step = torch.compile(self._step, dynamic=False) if compile else self._step
        self._run = step
        self.logits: Tensor | None = None
        self._graph = None
        started = time.perf_counter()
        if self.graphed:
            self._capture(step)
        elif compile:
            with torch.no_grad():
                step()  # compile now, not inside the first timed step
        self.reset()
        self.setup_seconds = time.perf_counter() - started

    # ------------------------------------------------------------------------------------
    def _step(self) -> Tensor:
        """One token, all shapes fixed: reads ``self.ids`` and ``self.position``, updates the
        buffers in place, advances ``position``; returns the logits ``(b, vocab)``."""
        model, position = self.model, self.position
        rows = None if self.rope_table is None else tuple(t.index_select(0, position) for t in self.rope_table)
        x = model.embed(self.ids)
        for i, block in enumerate(model.layers):
            h = block.norm(x)
            if block.kind == "M":
                conv, ssm = self.states[i]
                state = Mamba2State(conv, ssm, filled=True)
                out = block.mixer(h[:, None], state)[:, 0]
                # Pure-PyTorch steps return new tensors, the kernels update in place.
                if state.conv_state is not conv:
                    conv.copy_(state.conv_state)
                if state.ssm_state is not ssm:
                    ssm.copy_(state.ssm_state)
            elif block.kind == "*":
                attention, kv = block.mixer, self.cache.layers[i]
                q, k, v = attention.project(h[:, None], None, rows)
                kv.k.index_copy_(2, position, k)
                kv.v.index_copy_(2, position, v)
                out = attention.o_proj(decode_attention(q, kv.k, kv.v, position))[:, 0]
            else:
                out = block.mixer(h)
            x = x + out
        position.add_(1)
        return model.lm_head(model.norm_f(x))

    @torch.no_grad()
    def _capture(self, step) -> None:
        # Warm-up on a side stream (cuBLAS workspaces, compilation, the allocator's pools), as
        # torch.cuda.graphs asks; the buffers hold nothing yet, and reset() clears them after.
        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.position.zero_()  # every warm-up step at slot 0: any capacity will do
                step()
        self.position.zero_()
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self.logits = step()

    # ------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the cache (position 0, zero states); the buffers keep their addresses."""
        self.position.zero_()
        for i, entry in enumerate(self.cache.layers):
            if isinstance(entry, KVCache):
                entry.length = 0
            elif isinstance(entry, Mamba2State):
                for t in self.states[i]:
                    t.zero_()
                entry.conv_state, entry.ssm_state = self.states[i]
                entry.filled = False
        self.cache.length = 0

    @property
    def length(self) -> int:
        """Tokens in the cache (host-side bookkeeping; the device's ``position`` agrees)."""
        return self.cache.length

    @torch.no_grad()
    def prefill(self, ids: Tensor, chunk: int | None = None) -> Tensor:
        """Reset, then run the model's own forward over ``ids (b, l)`` into the static buffers
        (``chunk`` tokens at a time, to bound activation memory on long prompts). Returns the
        last position's logits ``(b, vocab)``."""
        if ids.dim() != 2 or ids.shape[0] != self.batch:
            raise ValueError(f"ids: expected shape ({self.batch}, length), got {tuple(ids.shape)}")
        if not 0 < ids.shape[1] < self.capacity:
            raise ValueError(f"ids: {ids.shape[1]} tokens; a prompt needs 1 .. capacity - 1 = "
                             f"{self.capacity - 1} tokens (one slot left to decode)")
        self.reset()
        chunk = chunk or ids.shape[1]
        for start in range(0, ids.shape[1], chunk):
            logits = self.model(ids[:, start:start + chunk], self.cache)[:, -1]
        self._adopt_states()
        return logits

    def _adopt_states(self) -> None:
        # The forward replaced the Mamba-2 state tensors: copy them into the owned buffers and
        # point the cache back at those.
        for i, (conv, ssm) in self.states.items():
            entry = self.cache.layers[i]
            if entry.conv_state is not conv:
                conv.copy_(entry.conv_state)
            if entry.ssm_state is not ssm:
                ssm.copy_(entry.ssm_state)
            entry.conv_state, entry.ssm_state, entry.filled = conv, ssm, True
        self.position.fill_(self.cache.length)

    def fill_random(self, length: int, seed: int = 0) -> None:
        """For timing only: pretend ``length`` tokens were prefilled (:func:`fill_random_cache`)."""
        if not 0 < length < self.capacity:
            raise ValueError(f"length: must be in 1 .. capacity - 1 = {self.capacity - 1}, got {length}")
        self.reset()
        fill_random_cache(self.cache, length, seed)
        self.position.fill_(length)

    @torch.no_grad()
    def step(self, ids: Tensor) -> Tensor:
        """Append ``ids (b,)`` (or ``(b, 1)``) and return their logits ``(b, vocab)`` (a new tensor)."""
        if ids.dim() == 2 and ids.shape[1] == 1:
            ids = ids[:, 0]
        if ids.shape != (self.batch,):
            raise ValueError(f"ids: expected shape ({self.batch},) or ({self.batch}, 1), got {tuple(ids.shape)}")
        if self.cache.length == 0:
            raise ValueError("step: prefill the prompt first (the cache is empty)")
        if self.cache.length >= self.capacity:
            raise ValueError(f"cache: full at {self.cache.length} tokens (capacity {self.capacity})")
        self.ids.copy_(ids)
        if self._graph is not None:
            self._graph.replay()
            logits = self.logits.clone()  # the next replay overwrites the graph's output
        else:
            logits = self._run()
        self.cache.length += 1
        for entry in self.cache.layers:
            if isinstance(entry, KVCache):
                entry.length += 1
        return logits


@torch.no_grad()
def fill_random_cache(cache, length: int, seed: int = 0) -> None:
    """For timing only: make ``cache`` look as if ``length`` tokens were prefilled, with random
    keys, values and states written into its tensors in place (what a decode step reads does not
    depend on their values). Skips a prefill that at 64K tokens and batch 16 would take longer
    than a whole benchmark."""
    if not 0 < length <= cache.capacity:
        raise ValueError(f"length: must be in 1 .. capacity = {cache.capacity}, got {length}")
    generator = None
    for entry in cache.layers:
        if isinstance(entry, KVCache):
            tensors, scale = (entry.k[:, :, :length], entry.v[:, :, :length]), 1.0
            entry.length = length
        elif isinstance(entry, Mamba2State):
            tensors, scale = (entry.conv_state, entry.ssm_state), 0.1
            entry.filled = True
        else:
            continue
        for t in tensors:
            if generator is None:
                generator = torch.Generator(device=t.device).manual_seed(seed)
            t.copy_(torch.randn(t.shape, generator=generator, device=t.device) * scale)
    cache.length = length
