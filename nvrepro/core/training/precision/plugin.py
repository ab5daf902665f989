"""Make the model's FP8 config and the trainer's precision plugin agree (see :mod:`.te`).

Apart from :mod:`.te` because it needs both the recipe (:func:`~.recipe.apply_fp8`) and TE's
pieces, while the recipe itself reaches TE only to convert layers: so neither of those two
imports the other back.
"""

from __future__ import annotations

from torch import nn

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.precision.config import FP8Config
from nvrepro.core.training.precision.apply import apply_fp8
from nvrepro.core.training.precision.te import is_te_plugin, te_recipe


def attach_to_trainer(model: nn.Module, cfg: FP8Config | None, plugin) -> list[str]:
    """Make the model's FP8 config and the trainer's precision plugin agree; see module doc.

    Returns the names of the linears converted to ``te.Linear`` (empty unless TE is in use).
    Raises :class:`ConfigError` for the contradictory combinations: TE asked of the model but not
    of the trainer (or of a plugin other than TransformerEnginePrecision), or a second FP8 backend
    under the TE plugin.
    """
    te_trainer = is_te_plugin(plugin)
    if not te_trainer and str(getattr(plugin, "precision", "")).startswith("transformer-engine"):
        raise ConfigError(f"trainer.strategy: its precision plugin {type(plugin).__name__} is not "
                          "Lightning's TransformerEnginePrecision, through which alone nvrepro applies "
                          "Nemotron-H's FP8 recipe; use --trainer.strategy ddp, or fp8.backend "
                          "'torchao' with the FSDP overlay")
    if not te_trainer:
        if cfg is not None and cfg.backend == "transformer_engine":
            raise ConfigError("fp8.backend: 'transformer_engine' runs through Lightning's "
                              "TransformerEnginePrecision plugin; add --config "
                              "configs/scale/fp8.yaml (trainer.precision: transformer-engine)")
        return []
    if cfg is None:
        cfg = FP8Config(backend="transformer_engine")  # the overlay alone: the paper's recipe
    if cfg.backend in ("emulated", "torchao"):
        raise ConfigError(f"fp8.backend: {cfg.backend!r} would quantise a second time under "
                          "trainer.precision: transformer-engine; use backend "
                          "'transformer_engine' with that overlay, or drop the overlay")
    if cfg.backend == "none":
        return []  # the plugin converts every linear itself
    names = apply_fp8(model, cfg)
    plugin.replace_layers = False  # never the blanket conversion, even when no layer is FP8
    plugin.recipe = te_recipe(cfg)
    return names
