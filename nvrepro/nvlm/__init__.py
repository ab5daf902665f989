"""NVLM 1.0 (arXiv 2409.11402): decoder-only (NVLM-D), cross-attention (NVLM-X) and hybrid (NVLM-H)
vision-language models on the vision core (:mod:`nvrepro.core.vision`).

* :mod:`~nvrepro.nvlm.tile_tags`: the text tags that precede each tile (none, 1-D ``<tile_k>``, 2-D
  grid, 2-D bbox), the cross-attention mask that lets a tag see only its own tile (NVLM-X, NVLM-H),
  and each architecture's token count per image.
"""
