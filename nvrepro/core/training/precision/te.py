"""Transformer Engine on GPU, through Lightning's ``TransformerEnginePrecision`` plugin.

``configs/scale/fp8.yaml`` sets ``trainer.precision: transformer-engine``. Left alone, that
plugin replaces *every* ``nn.Linear`` of the model by ``te.Linear`` (the first and last layers
and the LM head included) and runs the forward under ``te.fp8_autocast`` with a
``DelayedScaling`` recipe. Nemotron-H's recipe (arXiv 2504.03624, Sec. 2.4) needs two changes,
both made from the model side by :func:`~nvrepro.core.training.precision.plugin.attach_to_trainer`
(called by the :class:`~nvrepro.core.training.precision.FP8Training` callback's ``setup``,
which Lightning runs before the plugin converts the model):

* exclusion of the first / last N layers: we replace only the eligible linears by ``te.Linear``
  ourselves (:func:`convert_to_te`) and turn the plugin's blanket conversion off
  (``replace_layers = False``; it also skips it when the model already holds TE modules).
  ``fp8_autocast`` only affects TE modules, so the excluded layers stay ``torch.nn.Linear``
  and run in BF16 (the plugin's fallback autocast);
* current scaling: the plugin's recipe is replaced by TE's ``Float8CurrentScaling`` (or by
  ``DelayedScaling(amax_history_len=..., amax_compute_algo="max")`` for ``recipe: delayed``);
  both with ``Format.HYBRID`` (E4M3 forward, E5M2 backward).

The overlay's callback carries the paper's recipe with its defaults (N = 4, current scaling).

Limits, said plainly: Lightning's plugin keeps the *weights* in BF16 (``weights_dtype``), not
FP32 master weights as Megatron-LM does; and the recipe is applied only through that plugin,
which the DDP strategy runs. A strategy that brings its own precision plugin (FSDP's) is not
that plugin: :func:`~nvrepro.core.training.precision.plugin.attach_to_trainer` refuses
``precision: transformer-engine`` there rather than let the recipe be skipped (Lightning's FSDP strategy, as of 2.6, also refuses that value itself,
at ``Trainer`` construction). A multi-node FP8 run with TE therefore uses DDP, which holds a
full replica per GPU: for the 8B model about 8 bytes per parameter (BF16 weights,
gradients and both AdamW moments), ~65 GB before activations, so 141 GB-class GPUs or
activation checkpointing. The sharded alternative is the ``torchao`` backend with the FSDP
overlay (``--config configs/scale/fp8_torchao.yaml``). Neither was run here (no GPU); on a CPU,
converting to TE raises an error that says what to use instead.
"""

from __future__ import annotations

from torch import nn

from nvrepro.core.tooling.validation import ConfigError
from nvrepro.core.training.precision.config import FP8Config

INSTALL_HINT = ("fp8.backend='transformer_engine' needs NVIDIA Transformer Engine on a CUDA GPU "
                "(pip install -e '.[gpu]' on a Hopper-class machine); on a CPU use fp8.backend "
                "'emulated' (exact FP8 rounding, no speed-up) or 'torchao'")


def import_te():
    """``transformer_engine.pytorch``, or a ``ModuleNotFoundError`` that says what to do."""
    try:
        import transformer_engine.pytorch as te
    except Exception as err:  # ImportError, or a TE build that fails without CUDA
        raise ModuleNotFoundError(INSTALL_HINT) from err
    return te


def te_recipe(cfg: FP8Config):
    """The TE recipe object for ``cfg``: Float8CurrentScaling or DelayedScaling, Format.HYBRID."""
    import_te()
    from transformer_engine.common import recipe as te_recipes

    if cfg.recipe == "delayed":
        return te_recipes.DelayedScaling(fp8_format=te_recipes.Format.HYBRID,
                                         amax_history_len=cfg.amax_history_len,
                                         amax_compute_algo="max")
    current = getattr(te_recipes, "Float8CurrentScaling", None)
    if current is None:
        raise ConfigError("fp8.recipe: this Transformer Engine has no Float8CurrentScaling "
                          "recipe (a newer TE has it); upgrade TE or use recipe 'delayed'")
    return current(fp8_format=te_recipes.Format.HYBRID)


def convert_to_te(model: nn.Module, names: list[str]) -> list[str]:
    """Replace the ``nn.Linear`` at each name by a ``te.Linear`` with the same weights."""
    te = import_te()
    import torch

    if not torch.cuda.is_available():
        raise ModuleNotFoundError(INSTALL_HINT)
    for name in names:
        old = model.get_submodule(name)
        if not isinstance(old, nn.Linear):
            continue  # already a TE module
        new = te.Linear(old.in_features, old.out_features, bias=old.bias is not None,
                        params_dtype=old.weight.dtype, device="cuda")
        with torch.no_grad():
            new.weight.copy_(old.weight)
            if old.bias is not None:
                new.bias.copy_(old.bias)
        model.set_submodule(name, new)
    return names


def is_te_plugin(plugin) -> bool:
    """Whether a Lightning precision plugin is ``TransformerEnginePrecision``."""
    from lightning.fabric.plugins.precision.transformer_engine import TransformerEnginePrecision

    return isinstance(plugin, TransformerEnginePrecision)
