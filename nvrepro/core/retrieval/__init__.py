"""Retrieval building blocks shared by RETRO / InstructRetro and RankRAG.

* :mod:`~nvrepro.core.retrieval.chunks`: tokenized documents cut into fixed-length chunks with their
  continuations and document ids (RETRO's database entries and query chunks), streamed per
  document; and the choice of the top-k neighbours that are not from the query's own document;
* :mod:`~nvrepro.core.retrieval.embedder`: the frozen sentence encoder (packaged MiniLM through
  sentence-transformers) that keys the database;
* :mod:`~nvrepro.core.retrieval.index`: faiss indexes from an ``index_factory`` string, trained and
  filled in batches, saved and reloaded with checks; search and recall@k;
* :mod:`~nvrepro.core.retrieval.neighbours`: the top-k other-document neighbours of every query
  chunk, precomputed into an Arrow table (HF ``datasets``);
* :mod:`~nvrepro.core.retrieval.shards`: row arrays in fixed-size ``.npy`` shards on disk,
  memory-mapped back (what lets a build stream over a corpus bigger than memory);
* :mod:`~nvrepro.core.retrieval.database`: ``nvrepro build-db --config``: a corpus through all of
  the above, streamed shard by shard, with a report (chunks, embed throughput, index, recall@k
  against exact search, stage times);
* :mod:`~nvrepro.core.retrieval.bench`: approximate indexes (IVF-Flat, IVF-PQ, HNSW, the study's
  OPQ,IVF_HNSW,PQ form scaled down) against exact search: queries/s, speed-up, recall@10
  (``nvrepro bench --only retrieval``);
* :mod:`~nvrepro.core.retrieval.estimate`: disk and memory of a database of ``n`` chunks (index
  by faiss's layout, chunk tokens, neighbour table), ``nvrepro build-db --estimate``.

* :mod:`~nvrepro.core.retrieval.passages`: a dense passage retriever (whole passages as text, for
  RAG prompts such as RankRAG's): top-``n`` passages of a question by the same embedder and indexes.

Imports :mod:`nvrepro.core.tooling` only (no Lightning; faiss and sentence-transformers on use).
"""
