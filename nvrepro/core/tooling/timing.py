"""Wall-clock timing done one way everywhere: thread control, warm-up, median of repeats.

CPU timings on a shared machine are noisy. Three habits make them comparable:

* a fixed number of intra-op threads for the whole measurement (:func:`num_threads`), recorded
  next to the numbers;
* untimed warm-up calls first (allocator, caches, lazy initialisation);
* the *median* of several timed repeats, which ignores the occasional slow run that another
  process caused (a mean would not).

Speed claims are then stated as *ratios* of two things measured side by side in the same run.
``nvrepro bench`` and the hybrid track's decode experiment both time through this module.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import torch


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; ``os.cpu_count()`` as fallback)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def last_level_cache_bytes() -> int | None:
    """Size of the CPU's largest cache (usually L3) from Linux sysfs; None where unknown.

    Memory-bound timings change regime when the working set outgrows it: below, data streams
    from the cache; above, from DRAM, several times slower.
    """
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = entry.read_text().strip()
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        try:
            sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
        except (ValueError, IndexError):
            continue
    return max(sizes) if sizes else None


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave as is); yields the count.

    The previous setting is restored on exit, so a notebook or test is not left single-threaded.
    """
    if n is not None and (not isinstance(n, int) or n <= 0):
        raise ValueError(f"threads: must be a positive integer or None, got {n!r}")
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


@dataclass
class Timing:
    """Result of :func:`measure`: per-call seconds of every timed repeat, and their median."""

    times: list[float] = field(default_factory=list)
    warmup: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def repeats(self) -> int:
        return len(self.times)


def measure(fn: Callable[[], object], repeats: int = 3, warmup: int = 1,
            setup: Callable[[], object] | None = None) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed ones.

    ``setup`` (untimed) runs before every call, e.g. to reset gradients or restore a cache, so
    each timed call does the same work.
    """
    if not isinstance(repeats, int) or repeats <= 0:
        raise ValueError(f"repeats: must be a positive integer, got {repeats!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup: must be a non-negative integer, got {warmup!r}")
    timing = Timing(warmup=warmup)
    for i in range(warmup + repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        if i >= warmup:
            timing.times.append(elapsed)
    return timing


Case = Callable[[], object] | tuple[Callable[[], object], Callable[[], object] | None]


def measure_side_by_side(cases: dict[str, Case], repeats: int | dict[str, int] = 3,
                         warmup: int | dict[str, int] = 1) -> dict[str, Timing]:
    """Time several functions *interleaved*: round k times call k of every case in turn.

    A case is ``fn`` or ``(fn, setup)`` as in :func:`measure`. Interleaving matters on a shared
    machine: a burst of load from another process slows the cases of one round alike instead of
    all repeats of one case, so their *ratio* stays meaningful. ``repeats`` and ``warmup`` may be
    per-case dicts (e.g. one repeat of a slow reference, several of the fast code); a case
    simply sits out the rounds after its last repeat.
    """
    def per_case(value, name):
        return value[name] if isinstance(value, dict) else value

    plan = {name: (per_case(warmup, name), per_case(repeats, name)) for name in cases}
    out = {name: Timing(warmup=w) for name, (w, _) in plan.items()}
    for k in range(max(w + r for w, r in plan.values())):
        for name, case in cases.items():
            w, r = plan[name]
            if k >= w + r:
                continue
            fn, setup = case if isinstance(case, tuple) else (case, None)
            t = measure(fn, repeats=1, warmup=0, setup=setup).times[0]
            if k >= w:
                out[name].times.append(t)
    return out


def forward_backward(fn: Callable[..., torch.Tensor], inputs: Sequence[torch.Tensor],
                     params: Sequence[torch.Tensor] = ()) -> tuple[Callable[[], None], Callable[[], None]]:
    """``(run, reset)`` for timing a training step of ``fn``: ``fn(*inputs).sum().backward()``.

    ``reset`` clears the gradients of ``inputs`` and ``params`` (pass it as ``setup`` to
    :func:`measure`) so every call accumulates into fresh buffers.
    """
    tensors = [*inputs, *params]

    def reset() -> None:
        for t in tensors:
            t.grad = None

    def run() -> None:
        fn(*inputs).sum().backward()

    return run, reset


# Aten ops that only make views or ask about types: no kernel runs for them.
VIEW_OPS = frozenset({"alias", "as_strided", "detach", "expand", "lift_fresh", "permute", "promote_types",
                      "reshape", "result_type", "select", "slice", "split", "split_with_sizes", "squeeze",
                      "t", "transpose", "unsqueeze", "view", "_unsafe_view", "is_same_size", "sym_size"})


def count_kernels(fn: Callable[[], object]) -> dict[str, int]:
    """Run ``fn()`` once and count the aten ops it dispatches, views left out: on a GPU each is
    at least one kernel launch, so a decode step of N tiny ops costs N launches whatever it
    computes (a CUDA graph makes each launch cheap, fusing makes them fewer). ``{op: count}``
    sorted by count; ``sum(...values())`` is the total."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts: dict[str, int] = {}

    class _Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name not in VIEW_OPS:
                counts[name] = counts.get(name, 0) + 1
            return func(*args, **(kwargs or {}))

    with _Count():
        fn()
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))
