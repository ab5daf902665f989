"""Ultra-long context by RoPE scaling and a short continued pretraining: UltraLong.

C. Xu, W. Ping, P. Xu, Z. Liu, B. Wang, M. Shoeybi, B. Li, B. Catanzaro, "From 128K to 4M:
Efficient Training of Ultra-Long Context Large Language Models", arXiv:2504.06214,
https://arxiv.org/abs/2504.06214.

The recipe: take Llama-3.1-8B-Instruct (128K context), replace its RoPE scaling by YaRN on the
base ``theta`` with scale ``s = 128 / 256 / 512`` (1M / 2M / 4M tokens from the 8K original
context), continue pretraining on ~1B tokens of documents upsampled by length, joined with a
separator and **without** a cross-document attention mask, in one step straight to the target
length; then instruction-tune on short (< 8K) data only. Long-context ability is measured with
needle-in-a-haystack and RULER; short-context ability with standard benchmarks.

Where the pieces live:

* RoPE scaling (none, PI, NTK-aware, YaRN, Llama-3.1's ``llama3``):
  :mod:`nvrepro.core.lm.layers.rope_scaling`, configured by ``AttentionConfig.rope_scaling``;
* packing, separator, cross-document mask, length upsampling: :mod:`nvrepro.ultralong.packing`;
* evaluation: :mod:`nvrepro.ultralong.tasks` (passkey / needle-in-a-haystack and RULER-style
  tasks, generated deterministically) and :mod:`nvrepro.ultralong.evaluate` (greedy generation
  through the caches, exact match with counts, grids over length x depth, per-block losses on
  short and long packed documents);
* continued pretraining from a checkpoint: :class:`nvrepro.ultralong.module.ContextExtensionModule`;
* the toy extension machinery: :mod:`nvrepro.ultralong.mixture` (retrieval-shaped *training*
  documents: marked needles in bible-text haystacks and copy lists, disjoint from the evaluation
  probes), :mod:`nvrepro.ultralong.data` (bible text mixed with them; short-only toy instructions),
  :mod:`nvrepro.ultralong.extension` (the profiles of notebooks 02 and 03, a two-stage pretraining on
  those documents, 128-token rows then ``L``; extend with each method, evaluate; weights cached
  under ``build/ultralong/``).

One experiment module per notebook, named after it (``notebooks/ultralong/NN_<name>.ipynb`` ->
``nvrepro/ultralong/<name>.py``), each with the same shape: ``PROFILES``, ``run(profile, seed)``
returning plain data, ``summary`` / ``summary_text`` (what the notebook prints), and its claims as
module-level :class:`~nvrepro.core.tooling.claims.Claim` s (text, thresholds and predicate together;
the notebook passes them to ``save_figure``):

* :mod:`nvrepro.ultralong.rope_scaling` (01): per-pair RoPE tables; ``ROPE_SCALING`` (exact checks);
* :mod:`nvrepro.ultralong.context_extension` (02): none / PI / NTK-aware / YaRN extension;
  ``NEEDLE``, ``RULER``, ``LATE_LOSS``, ``SHORT_LOSS``;
* :mod:`nvrepro.ultralong.ablations` (03): separator, one vs two steps, short-only SFT; ``ABLATIONS``.

The rules the toy claims are judged by (Wilson intervals over pooled probes, paired bootstrap
intervals over blocks and probes) are :mod:`nvrepro.ultralong.judging`; what the notebooks print
(summary tables, each claim's verdict part by part) is :mod:`nvrepro.core.tooling.report`. The plots of all three
stay in one module, :mod:`nvrepro.ultralong.figures`, in one section per notebook: they share the
house styles per method and the accuracy-vs-length axes, and keeping them apart from the experiment
modules keeps those short. Exercise checkers: :mod:`nvrepro.ultralong.exercises`; the
needle-in-a-haystack explorer of notebook 02 (method x length, with intervals):
:mod:`nvrepro.ultralong.explorer`.

Notebooks: ``notebooks/ultralong/01_rope_scaling.ipynb``, ``02_context_extension.ipynb``,
``03_ablations.ipynb``.

Where the toy reproduction deviates from the paper:

* Scale: a few-layer Llama-like byte-level model pretrained at a few hundred tokens and extended
  8x or more on a laptop CPU, instead of an 8B model extended 128-512x on GPUs with context
  parallelism.
* Data: one local corpus (the World English Bible) as the single "source" of the per-source
  upsampling, instead of a multi-domain pretraining mix; the sampler itself handles many sources.
  The toy base is *taught* retrieval by a synthetic mixture only (copy lists and needles hidden
  in bible text, short rows first), because Llama-3.1, the paper's starting point, already
  retrieves at its trained length and a minutes-long byte-level pretraining on text never does;
  the base is therefore not a text LM. Every arm's continued pretraining is half bible text, half
  that mixture up to the new length.
* Probes: the passkey and multi-key values follow a marker byte (``#12345``) that occurs nowhere
  else in the prompt, and the question ends with it (:mod:`nvrepro.ultralong.tasks`): at byte level
  an unmarked key means matching a multi-byte phrase, which the toy model never learned.
* Evaluation: RULER-*style* tasks (multi-key needles, variable tracking, common-word extraction)
  in the spirit of RULER (Hsieh et al. 2024, arXiv:2404.06654), not its exact templates, scored
  by exact match of the greedy answer tokens; short-context retention is the loss on short
  documents, not MMLU/GSM8K-style benchmarks.
* YaRN's alpha/beta for UltraLong (1 and 4) come from the project's paper sheet and are marked
  unconfirmed there; note they equal Llama-3.1's own ``llama3`` ramp bounds.
"""
