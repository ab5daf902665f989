"""NVLM 1.0 (arXiv 2409.11402): decoder-only (NVLM-D), cross-attention (NVLM-X) and hybrid (NVLM-H)
vision-language models on the vision core (:mod:`nvrepro.core.vision`).

* :mod:`~nvrepro.nvlm.tile_tags`: the text tags that precede each tile (none, 1-D ``<tile_k>``, 2-D
  grid, 2-D bbox), the cross-attention mask that lets a tag see only its own tile (NVLM-X, NVLM-H),
  and each architecture's token count per image;
* :mod:`~nvrepro.nvlm.model`: :class:`~nvrepro.nvlm.model.NVLMConfig` and the one network class of all
  three architectures; :mod:`~nvrepro.nvlm.module`: its LightningModule (``nvrepro fit``);
* data: :mod:`~nvrepro.nvlm.documents` (forms drawn with Pillow, OCR-like and layout questions),
  :mod:`~nvrepro.nvlm.text_tasks` (text-only instructions), :mod:`~nvrepro.nvlm.prompts` (where tags and
  image tokens go), :mod:`~nvrepro.nvlm.data` (dataset, batches, datamodule, a JSONL source);
* :mod:`~nvrepro.nvlm.evaluation` (exact match), :mod:`~nvrepro.nvlm.training` (the toy's two stages),
  and one experiment module per notebook.
"""
