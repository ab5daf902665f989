"""Compile a model's layers for training, as a Lightning callback (issue 20, deliverable 3).

torchao's FP8 training pays off only compiled: eager, each FP8 linear adds separate kernels for
the amax, the scale and the casts around its GEMMs, and was measured slower than BF16 (issue
20: 0.76x eager, 1.14x compiled on an H200). Compiling fuses them into the neighbouring work.

:class:`CompileLayers` compiles every block of ``pl_module.model.layers`` in place with
``nn.Module.compile`` (per block, as TorchTitan does; the parameter names -- hence checkpoints --
stay the same). List it *after* :class:`~nvrepro.core.training.precision.FP8Training` in
``trainer.callbacks``, so that it compiles the converted linears::

    trainer:
      callbacks:
        - class_path: nvrepro.core.training.precision.FP8Training
          init_args: {fp8: {backend: torchao}}
        - class_path: nvrepro.core.training.compile.CompileLayers

Where :func:`~nvrepro.core.tooling.compiling.compile_available` says torch.compile cannot run (a CPU
without a C++ compiler), it warns and trains eagerly.
"""

from __future__ import annotations

import warnings

import lightning as L

from nvrepro.core.tooling.compiling import compile_available
from nvrepro.core.tooling.validation import ConfigError


class CompileLayers(L.Callback):
    """Compile each block of ``pl_module.model.layers`` at ``setup`` (module docstring).

    ``mode``: torch.compile's mode (``None``: the default; ``"max-autotune"`` searches GEMM
    configurations for longer). After ``setup``, :attr:`compiled` counts the compiled blocks.
    """

    def __init__(self, mode: str | None = None):
        super().__init__()
        self.mode = mode
        self.compiled = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from nvrepro.core.training.precision.callback import FP8Training

        names = [type(c).__name__ for c in trainer.callbacks]
        mine = next(i for i, c in enumerate(trainer.callbacks) if c is self)
        if any(isinstance(c, FP8Training) for c in trainer.callbacks[mine + 1:]):
            raise ConfigError(f"trainer.callbacks: CompileLayers must come after FP8Training (order: {names}), "
                              "or it compiles the layers before their linears become FP8")
        layers = getattr(getattr(pl_module, "model", None), "layers", None)
        if layers is None:
            raise AttributeError(f"{type(pl_module).__name__}: CompileLayers compiles `model.layers`; "
                                 "this module has none")
        if self.compiled:
            return  # fit then validate: compile once
        ok, why = compile_available()
        if not ok:
            warnings.warn(f"torch.compile is not available here ({why}); training runs eagerly", stacklevel=2)
            return
        for block in layers:
            block.compile(mode=self.mode, dynamic=False)
        self.compiled = len(layers)
