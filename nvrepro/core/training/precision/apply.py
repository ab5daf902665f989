"""Which linears run in FP8, and :func:`apply_fp8`: the one entry point over the backends.

Nemotron-H (arXiv 2504.03624, Sec. 2.4) keeps every linear layer of the first N and last N
layers of the pattern in BF16 (N = 4 for the 8B and 56B models) and runs all other linear
layers in FP8. The LM head stays in BF16 unless ``include_lm_head``; the embedding is a table
lookup, not a GEMM, and is never quantised.
The selection reads only the layer pattern, so it is the same on a toy model, on the 8B model
built on the meta device (no memory), and for every backend.
"""

from __future__ import annotations

import logging

from torch import nn

from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.precision.config import FP8Config
from nvrepro.core.training.precision.emulated import FP8Linear


def fp8_layer_mask(n_layers: int, cfg: FP8Config) -> list[bool]:
    """``mask[i]`` is True where layer ``i``'s linears run in FP8 (all but the first and last N).

    First and last ranges may overlap on a shallow model; then every layer stays in BF16.
    """
    first, last = cfg.exclude_first_n, cfg.exclude_last_n
    return [cfg.enabled and first <= i < n_layers - last for i in range(n_layers)]


def fp8_linear_names(model: PatternLM, cfg: FP8Config) -> list[str]:
    """Qualified names (``model.named_modules()``) of the linears that ``cfg`` puts in FP8.

    Every ``nn.Linear`` inside an FP8 layer (Mamba-2 in/out projections, attention q/k/v/o,
    FFN up/down), plus ``lm_head`` with ``include_lm_head``; in the model's order.
    """
    if not cfg.enabled:
        return []
    mask = fp8_layer_mask(len(model.layers), cfg)
    names = [f"layers.{i}.{sub}" for i, block in enumerate(model.layers) if mask[i]
             for sub, m in block.named_modules() if isinstance(m, nn.Linear)]
    if cfg.include_lm_head:
        names.append("lm_head")
    return names


def fp8_plan(model: PatternLM, cfg: FP8Config) -> list[dict]:
    """One row per layer: ``{"layer", "kind", "fp8", "linears"}`` (kind is the pattern char)."""
    mask = fp8_layer_mask(len(model.layers), cfg)
    return [{"layer": i, "kind": block.kind, "fp8": mask[i],
             "linears": [sub for sub, m in block.named_modules() if isinstance(m, nn.Linear)]}
            for i, block in enumerate(model.layers)]


def apply_fp8(model: PatternLM, cfg: FP8Config) -> list[str]:
    """Swap the eligible linears of ``model`` (in place) for FP8 ones; return their names.

    * ``emulated``: :class:`FP8Linear` sharing the original Parameters (works on ``meta``);
    * ``torchao``: ``torchao.float8.convert_to_float8_training`` with a filter that selects
      the same names (dynamic per-tensor scaling: E4M3 inputs/weights, E5M2 gradients);
    * ``transformer_engine``: ``transformer_engine.pytorch.Linear`` for the same names (CUDA and
      TE needed; see :mod:`nvrepro.core.training.precision.te` for how Lightning's plugin then runs them);
    * ``none``: nothing.

    Already-converted linears are left alone, so calling it twice converts nothing new.
    """
    names = fp8_linear_names(model, cfg)
    if not names:
        return []
    if cfg.backend == "emulated":
        for name in names:
            linear = model.get_submodule(name)
            if not isinstance(linear, FP8Linear):
                model.set_submodule(name, FP8Linear.from_linear(linear, cfg.recipe, cfg.amax_history_len))
        return names
    if cfg.backend == "torchao":
        return _apply_torchao(model, names)
    from nvrepro.core.training.precision.te import convert_to_te

    return convert_to_te(model, names)


def _apply_torchao(model: nn.Module, names: list[str]) -> list[str]:
    """``torchao.float8`` training on ``names``; returns those now ``Float8Linear``.

    torchao's default config is the paper's recipe: dynamic (current) per-tensor scales, E4M3
    for inputs and weights, E5M2 for the output gradient, all three GEMMs in float8. It runs on
    CPU too (``torch._scaled_mm`` has a CPU kernel in torch >= 2.13).
    """
    float8 = import_torchao_float8()
    wanted = set(names)
    float8.convert_to_float8_training(model, config=float8.Float8LinearConfig(),
                                      module_filter_fn=lambda module, fqn: fqn in wanted)
    return [n for n in names if isinstance(model.get_submodule(n), float8.float8_linear.Float8Linear)]


def import_torchao_float8():
    """``torchao.float8``, imported without the warnings about torchao's CUDA-only kernels (they
    fail to load on a CPU machine and float8 training does not use them there) and about an
    enum torchao registers with torch's pytree."""
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        import torchao.float8 as float8
        import torchao.float8.float8_linear  # noqa: F401 - makes float8.float8_linear available
    except ImportError as err:  # pragma: no cover - torchao is a dependency
        raise ModuleNotFoundError("fp8.backend='torchao' needs the torchao package "
                                  "(pip install torchao)") from err
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return float8
