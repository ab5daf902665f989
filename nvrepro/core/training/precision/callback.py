"""FP8 training as a Lightning callback: the recipe is applied to the module's model at ``setup``.

Any LightningModule whose network is ``self.model`` trains in FP8 by adding the callback, so
the base module carries no FP8 code::

    trainer:
      callbacks:
        - class_path: nvrepro.core.training.precision.FP8Training
          init_args: {fp8: {backend: emulated, recipe: current, exclude_first_n: 1, exclude_last_n: 1}}

``setup`` runs before the optimizer is built and before a precision plugin converts the model,
which is what both paths need: the emulated / torchao backends swap the eligible linears here;
under Lightning's ``TransformerEnginePrecision`` plugin
(:func:`~nvrepro.core.training.precision.plugin.attach_to_trainer`) the eligible linears become
``te.Linear`` and the plugin's blanket conversion is turned off. FP8 and BF16 checkpoints hold the
same keys (the amax history is not persistent), so a checkpoint loads with or without the callback.
"""

from __future__ import annotations

import lightning as L

from nvrepro.core.training.precision.apply import apply_fp8
from nvrepro.core.training.precision.config import FP8Config, as_fp8_config
from nvrepro.core.training.precision.plugin import attach_to_trainer
from nvrepro.core.training.precision.te import is_te_plugin


class FP8Training(L.Callback):
    """Apply :class:`FP8Config` ``fp8`` (default: the paper's recipe) to ``pl_module.model``.

    After ``setup``, :attr:`linears` lists the qualified names of the linears running in FP8.
    """

    def __init__(self, fp8: FP8Config | dict | None = None):
        super().__init__()
        self.config = as_fp8_config(fp8) or FP8Config()
        self.linears: list[str] = []
        self._applied_to: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        model = getattr(pl_module, "model", None)
        if model is None:
            raise AttributeError(f"{type(pl_module).__name__}: FP8Training converts the module's "
                                 "`model` attribute; this module has none")
        if self._applied_to == id(model):
            return  # fit then validate on the same module: convert once
        plugin = trainer.precision_plugin
        if is_te_plugin(plugin) or self.config.backend == "transformer_engine":
            self.linears = attach_to_trainer(model, self.config, plugin)
        elif self.config.backend != "none":
            attach_to_trainer(model, None, plugin)  # refuses a TE precision it cannot drive
            self.linears = apply_fp8(model, self.config)
        self._applied_to = id(model)


def fp8_section(callbacks: list | None) -> dict | None:
    """The ``fp8`` init args of the :class:`FP8Training` entry in a YAML's ``trainer.callbacks``
    (``None`` when there is none)."""
    for entry in callbacks or []:
        if isinstance(entry, dict) and str(entry.get("class_path", "")).endswith("FP8Training"):
            return dict((entry.get("init_args") or {}).get("fp8") or {})
    return None
