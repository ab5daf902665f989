"""Retrieval building blocks shared by RETRO / InstructRetro and RankRAG (issue 11, in progress).

* :mod:`~nvrepro.core.retrieval.chunks`: tokenized documents cut into fixed-length chunks with their
  continuations and document ids (RETRO's database entries and query chunks), streamed per
  document; and the choice of the top-k neighbours that are not from the query's own document.

Still to come (see issue 11): the frozen embedder, the faiss index built from an ``index_factory``
string, neighbours precomputed into an Arrow table, and ``nvrepro retro build-db``.

Imports :mod:`nvrepro.core.tooling` only (numpy; no torch, no Lightning).
"""
