"""FP8 training: Nemotron-H's recipe (arXiv 2504.03624, Sec. 2.4) behind one switch.

The recipe: per-tensor *current* scaling (scale = format max / amax of the tensor now), E4M3
for weights and activations, E5M2 for gradients, and every linear layer in FP8 except those of
the first N and last N layers of the pattern (N = 4 in the paper), which stay in BF16. The
paper reports a training-loss gap to BF16 typically under 0.1% relative at 8B scale (whether it
also warns about smaller models is not in our facts sheet: unconfirmed).

One config, :class:`FP8Config`, one callback, :class:`FP8Training` (a Lightning callback that
applies the recipe to ``pl_module.model`` at setup: the base module knows nothing of FP8), and
one entry point, :func:`apply_fp8`, over three backends:

* ``emulated`` (:mod:`.emulated`): quantise-dequantise through ``torch.float8_e4m3fn`` /
  ``torch.float8_e5m2`` in the forward and backward GEMMs (a custom autograd function), so the
  numbers are exactly the FP8-rounded ones on any device; plus delayed scaling as an option;
* ``torchao``: ``torchao.float8`` training, a second, independent implementation (runs on CPU);
* ``transformer_engine`` (:mod:`.te`): TE on a GPU through Lightning's precision plugin,
  selected by ``configs/scale/fp8.yaml``.

:func:`fp8_linear_names` / :func:`fp8_plan` tell which linears a config puts in FP8 (on a
meta-device model too); :func:`record_fp8_stats` measures per-layer amax and FP8 underflow.

Full-scale command (8B, multi-node, FP8 through TE; resolves with ``--print_config``)::

    nvrepro fit --config configs/hybrid/nemotron_h_8b.yaml \\
        --config configs/scale/multinode_fsdp.yaml --config configs/scale/fp8.yaml \\
        --trainer.strategy ddp

``--trainer.strategy ddp`` because the recipe is applied through Lightning's
``TransformerEnginePrecision`` plugin, which DDP runs and FSDP does not (see :mod:`.te`). The fp8
overlay sets that precision and adds :class:`FP8Training` with ``backend: transformer_engine``
and the paper's defaults.
"""

from nvrepro.core.training.precision.config import BACKENDS, RECIPES, FP8Config, as_fp8_config
from nvrepro.core.training.precision.emulated import (E4M3, E5M2, FP8Linear, compute_scale, delayed_scale,
                                             dequantize, flushed_fraction, fp8_linear, fp8_max,
                                             quantize, quantize_dequantize)
from nvrepro.core.training.precision.apply import apply_fp8, fp8_layer_mask, fp8_linear_names, fp8_plan
from nvrepro.core.training.precision.stats import record_fp8_stats, tensor_stats
from nvrepro.core.training.precision.plugin import attach_to_trainer
from nvrepro.core.training.precision.callback import FP8Training

__all__ = [
    "BACKENDS", "RECIPES", "FP8Config", "as_fp8_config", "E4M3", "E5M2", "FP8Linear",
    "compute_scale", "delayed_scale", "dequantize", "flushed_fraction", "fp8_linear", "fp8_max",
    "quantize", "quantize_dequantize", "apply_fp8", "fp8_layer_mask", "fp8_linear_names",
    "fp8_plan", "record_fp8_stats", "tensor_stats", "attach_to_trainer", "FP8Training",
]
