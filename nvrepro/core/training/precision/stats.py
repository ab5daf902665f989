"""What FP8 would do to a model's tensors: per-linear amax and the fraction flushed to zero.

:func:`record_fp8_stats` hooks linear layers and, for every forward/backward that passes
through them, measures the three tensors an FP8 GEMM quantises -- the input and the weight
(E4M3 in the paper's recipe) and the output gradient (E5M2) -- in the precision they arrive in,
before any rounding: their amax, and the fraction of their non-zero entries that current
scaling would flush to zero in E4M3 and in E5M2 (underflow below the smallest subnormal).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Iterator

from torch import Tensor, nn

from nvrepro.core.training.precision.emulated import FORMATS, amax, flushed_fraction

ROLES = ("input", "weight", "grad")


def tensor_stats(t: Tensor) -> dict[str, float]:
    """``{"amax", "flushed_e4m3", "flushed_e5m2"}`` of one tensor (current scaling)."""
    t = t.detach()
    out = {"amax": float(amax(t))}
    for fmt, dtype in FORMATS.items():
        out[f"flushed_{fmt}"] = flushed_fraction(t, dtype)
    return out


@contextlib.contextmanager
def record_fp8_stats(model: nn.Module, names: list[str] | None = None) -> Iterator[dict]:
    """Collect :func:`tensor_stats` of each linear's input, weight and output gradient.

    ``names``: qualified module names to watch (default: every ``nn.Linear``). Yields a dict
    filled as the model runs, ``{name: {role: {stat: mean over calls}}}`` with roles
    ``input``, ``weight``, ``grad`` (``grad`` only after a backward pass). Hooks are removed
    on exit.
    """
    modules = dict(model.named_modules())
    if names is None:
        names = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    sums: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    counts: dict = defaultdict(lambda: defaultdict(int))
    result: dict = {}

    def add(name: str, role: str, t: Tensor) -> None:
        for key, value in tensor_stats(t).items():
            sums[name][role][key] += value
        counts[name][role] += 1
        result.setdefault(name, {})[role] = {k: v / counts[name][role] for k, v in sums[name][role].items()}

    def make_hook(name: str):
        def hook(module, args, output):
            add(name, "input", args[0])
            add(name, "weight", module.weight)
            if output.requires_grad:  # the gradient that arrives at this output is g = dL/dy
                output.register_hook(lambda g: add(name, "grad", g))
        return hook

    handles = [modules[n].register_forward_hook(make_hook(n)) for n in names]
    try:
        yield result
    finally:
        for h in handles:
            h.remove()
