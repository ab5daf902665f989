"""Hybrid Mamba-Transformer language models: Nemotron-H.

NVIDIA, "Nemotron-H: A Family of Accurate and Efficient Hybrid Mamba-Transformer Models",
arXiv:2504.03624, https://arxiv.org/abs/2504.03624.

Nemotron-H replaces most self-attention layers of a Transformer with Mamba-2 layers, keeping a
small number of attention layers (the layer pattern of ``nvrepro.core.config``: ``M`` Mamba-2,
``*`` attention, ``-`` FFN). Its efficiency argument rests on the Mamba-2 mixer: a selective
state-space model whose cost is linear in the sequence length in training (the chunked
"state-space duality" algorithm, Dao & Gu 2024, arXiv:2405.21060) and constant per token in
generation (a fixed-size state instead of a growing KV cache).

Notebooks: ``notebooks/hybrid/01_mamba2_ssd.ipynb`` -- the SSD operator, its recurrent,
quadratic and chunked forms, their equivalence, and how time and activation memory scale.

Where the toy reproduction deviates from the paper:

* Scale: the paper trains 8B and 56B models on trillions of tokens on GPUs; here layers and
  models are toy-sized and run on a laptop CPU in pure PyTorch (no Triton/CUDA kernels, no FP8).
* What is measured: the paper reports GPU inference throughput of whole models against
  Transformers of similar size; ``experiments.ssd_scaling`` measures the *operator* (forward +
  backward time on CPU, and activation memory as bytes saved for backward) of the SSD forms.
  The shape of the curves (linear vs quadratic in length) transfers; absolute numbers do not.
* The SSD code follows the Mamba-2 paper's minimal reference (scalar ``A`` per head, grouped
  ``B``/``C``); Nemotron-H's layer widths and hybrid patterns are model configs
  (``nvrepro.core.config``), not part of this operator-level study.
"""
