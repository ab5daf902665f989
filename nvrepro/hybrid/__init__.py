"""Hybrid Mamba-Transformer language models: Nemotron-H.

NVIDIA, "Nemotron-H: A Family of Accurate and Efficient Hybrid Mamba-Transformer Models",
arXiv:2504.03624, https://arxiv.org/abs/2504.03624.

Nemotron-H replaces most self-attention layers of a Transformer with Mamba-2 layers, keeping a
small number of attention layers (the layer pattern of ``nvrepro.core.lm.config``: ``M`` Mamba-2,
``*`` attention, ``-`` FFN). Its efficiency argument rests on the Mamba-2 mixer: a selective
state-space model whose cost is linear in the sequence length in training (the chunked
"state-space duality" algorithm, Dao & Gu 2024, arXiv:2405.21060) and constant per token in
generation (a fixed-size state instead of a growing KV cache).

Layout: one experiment module per notebook, holding its profiles (``PROFILES``), a
``run(profile, seed)`` that returns plain data, the summary the notebook prints, and the claims of
its figures as module-level :class:`~nvrepro.core.tooling.claims.Claim` s (text, thresholds and
predicate together; the notebook passes them to ``save_figure``):

* ``01_mamba2_ssd``: ``mamba2_ssd`` (the decay mask and chunk explorer too), ``mamba2_block`` (one
  forward pass of the Mamba-2 block, stage by stage); claim ``SSD_SCALING``;
* ``02_why_hybrid``: ``why_hybrid`` (patterns and equal parameters: ``arms``, the MQAR grid:
  ``mqar_mixture``); claims ``RECALL``, ``LM_CURVES``; ``state_sweep`` (the recall arms with a
  smaller Mamba-2 state), claim ``STATE_SWEEP``;
* ``03_inference_cost``: ``inference`` (decode timing against context and batch, cache bytes:
  ``decode_cost``); claims ``DECODE_COST``, ``FULL_SCALE_DECODE_BYTES``;
* ``04_fp8_training``: ``fp8_experiment``; claims ``FP8_LOSS_GAP``, ``FP8_UNDERFLOW``;
* ``05_minipuzzle``: ``minipuzzle_experiment`` (importance and pruning: ``minipuzzle``, candidates:
  ``search``, distillation: ``distill``); claims ``LAYER_IMPORTANCE``, ``RECOVERY``.

The plots of all five are in ``figures.py``, one section per notebook (a plot only draws a result;
keeping them together keeps the experiment modules to a few hundred lines). The rules every
predicate uses are core's (:mod:`nvrepro.core.tooling.claims`): exact properties are plain comparisons; accuracies and losses are
judged on Wilson / bootstrap intervals (three-valued: held, did not hold, undecided when the
interval straddles the bar); timings on every timed repeat with an exact rank test. Exercise
checkers are in ``exercises/``, one module per notebook; ``bench.py`` is ``nvrepro bench``.

Where the toy reproduction deviates from the paper:

* Scale: the paper trains 8B and 56B models on trillions of tokens on GPUs; here layers and
  models are toy-sized and run on a laptop CPU in pure PyTorch (no Triton/CUDA kernels, no FP8
  hardware).
* What is measured: the paper reports GPU inference throughput of whole models against
  Transformers of similar size; ``mamba2_ssd.ssd_scaling`` measures the *operator* (forward +
  backward time on CPU, and activation memory as bytes saved for backward) of the SSD forms.
  The shape of the curves (linear vs quadratic in length) transfers; absolute numbers do not.
* The SSD code follows the Mamba-2 paper's minimal reference (scalar ``A`` per head, grouped
  ``B``/``C``); Nemotron-H's layer widths and hybrid patterns are model configs
  (``nvrepro.core.lm.config``), not part of this operator-level study.
* MiniPuzzle (``05_minipuzzle``; ``minipuzzle.py``, ``search.py``, ``distill.py``): importance,
  the budgeted candidate search and forward-KL distillation run on a toy parent trained here for
  a few hundred thousand byte tokens; only the top candidate is distilled (briefly, over a few
  seeds, beside the pruned model without training, random layer drops and scratch training),
  and the 56B -> 47B search runs on the meta device with a placeholder layer order and an *assumed* memory
  budget (the paper's exact budget is not in our facts sheet).
* FP8 (``04_fp8_training``; ``fp8_experiment.py``, recipe in ``nvrepro.core.training.precision``): FP8 is
  emulated (exact FP8 rounding of every GEMM operand, no FP8 speed); the toy hybrid has 11
  layers, so the recipe keeps N = 1 (not 4) at each end in BF16; a few seeds of a hundred-odd
  steps, each arm judged against the gap between BF16 runs of different seeds (the toy cannot
  resolve the paper's 0.1%).
* Inference cost (``03_inference_cost``; ``inference.py``): decode latency, throughput against
  batch size and cache memory are measured on toy models (float32, one CPU thread, decode steps
  timed after the prefill), not H100 throughput; the full-scale comparisons (8B vs Llama-3.1-8B
  and Qwen-2.5-7B, 56B and 47B vs Llama-3.1-70B, 47B vs 56B) are bytes-read arithmetic from the
  configs, set beside, not reproducing, the paper's measured factors (``paper_facts.yaml``).
* Why a hybrid (``02_why_hybrid``; ``arms.py``, ``why_hybrid.py``): the recall-vs-LM argument
  the paper builds on (Waleffe et al. 2024, arXiv:2406.07887: 8B models, trillions of tokens,
  real benchmarks) is tested with sub-million-parameter models, three training seeds each, on one
  CPU thread, on synthetic MQAR and byte-level text. The Transformer arm uses RoPE (as the
  Llama-style baselines), the hybrid's attention is NoPE (as Nemotron-H), and the pure Mamba-2 arm
  has no FFN layers (as in Waleffe et al.). For recall each arm has its own depth and width within
  one parameter budget (a 2-layer Transformer, deep Mamba-2 and hybrid stacks); whether lookup
  forms varies from seed to seed, and a claim whose prerequisite fails is reported as not judged
  rather than tuned.
"""
