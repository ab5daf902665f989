"""RETRO and InstructRetro (arXiv:2304.06762, arXiv:2310.07713): the Retro model, its data and its experiments.

* :mod:`~nvrepro.retro.model`: ``RetroConfig``, ``RetroLM`` (decoder with chunked cross-attention
  at the paper's layers, neighbour encoder), ``retrofit_from_gpt``; :mod:`~nvrepro.retro.module`:
  the ``RetroLMModule`` LightningModule;
* :mod:`~nvrepro.retro.data`: ``RetroDataModule`` (windows of database documents with each
  chunk's neighbours; held-out documents for evaluation); :mod:`~nvrepro.retro.overlap`: how much
  of a held-out document its neighbours already contain;
* :mod:`~nvrepro.retro.generation`: generation with retrieval in the loop, repetition rate.

The retrieval database itself (chunks, embedder, faiss index, neighbours) is shared with RankRAG
and lives in :mod:`nvrepro.core.retrieval`.
"""
