"""The language model: configs, layers, the pattern-built decoder, caches, decoding, sizes, HF interop.

* :mod:`~nvrepro.core.lm.config`: :class:`ModelConfig` (pattern string + widths per layer kind);
* :mod:`~nvrepro.core.lm.layers`: Mamba-2/SSD, attention, FFN, norms, RoPE and its scalings, and
  the layer-kind registry that maps a pattern character to a block;
* :mod:`~nvrepro.core.lm.model`: :class:`PatternLM` (any pattern: hybrid, pure Transformer, pure
  Mamba-2) with its per-layer caches;
* :mod:`~nvrepro.core.lm.decoding`: the fixed-shape (optionally compiled) one-token decode step;
* :mod:`~nvrepro.core.lm.static_decoding`: decode steps with every shape fixed, replayed as one
  CUDA graph per token on a GPU (what ``PatternLM.generate`` uses there);
* :mod:`~nvrepro.core.lm.info`: parameter counts and cache bytes on the meta device;
* :mod:`~nvrepro.core.lm.hf`: export to / import from transformers' NemotronH.

Imports :mod:`nvrepro.core.tooling` only (no Lightning).
"""

# Registers the built-in layer kinds (M, *, -, X, C) before any config is validated.
from nvrepro.core.lm.layers import kinds as _kinds  # noqa: E402,F401
