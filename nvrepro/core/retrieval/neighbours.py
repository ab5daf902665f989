"""Neighbours precomputed for every query chunk, stored as an Arrow table (HF ``datasets``).

RETRO retrieves offline: before training, every chunk of the training set gets its ``k`` nearest
database chunks (arXiv:2304.06762, Sec. 2), never from its own document. Training then reads the
neighbour ids from this table instead of searching. The table is a :class:`datasets.Dataset`
built with a batched ``map`` (one faiss search per batch), so it can be saved with
``save_to_disk`` and memory-mapped back; ``num_proc`` stays 1 because faiss already searches a
batch on every core (several processes would each start a full thread pool).

Columns: ``query`` (the query chunk's row), ``neighbours`` (``k`` database rows, ``-1`` where too
few remain after the exclusion), ``scores`` (their similarities, ``nan`` for ``-1``).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from nvrepro.core.retrieval.chunks import exclude_same_document
from nvrepro.core.retrieval.index import search


def neighbour_table(index, query_vectors: np.ndarray, query_doc_ids: np.ndarray, chunk_doc_ids: np.ndarray,
                    k: int = 2, *, extra: int = 16, batch_size: int = 1024, nprobe: int | None = None,
                    progress: bool = False):
    """The :class:`datasets.Dataset` of neighbours of ``query_vectors (q, d)`` in ``index``.

    Each query searches ``k + extra`` candidates; candidates from the query's document
    (``query_doc_ids (q,)`` vs ``chunk_doc_ids (n,)`` of the database rows) are dropped and the
    first ``k`` others kept, in order of similarity.
    """
    import datasets

    query_vectors = np.ascontiguousarray(query_vectors, dtype=np.float32)
    query_doc_ids, chunk_doc_ids = np.asarray(query_doc_ids), np.asarray(chunk_doc_ids)
    if len(query_vectors) != len(query_doc_ids):
        raise ValueError(f"query_vectors, query_doc_ids: {len(query_vectors)} vectors but "
                         f"{len(query_doc_ids)} document ids")

    def find(batch):
        rows = np.asarray(batch["query"])
        kept, scores = neighbours_of(index, query_vectors[rows], query_doc_ids[rows], chunk_doc_ids, k,
                                     extra=extra, nprobe=nprobe)
        return {"query": rows.tolist(), "neighbours": kept.tolist(), "scores": scores.tolist()}

    table = datasets.Dataset.from_dict({"query": np.arange(len(query_vectors), dtype=np.int64)})
    with datasets_progress(progress):
        return table.map(find, batched=True, batch_size=batch_size, desc="neighbours")


def neighbours_of(index, query_vectors: np.ndarray, query_doc_ids: np.ndarray, chunk_doc_ids: np.ndarray,
                  k: int, *, extra: int = 16, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` other-document hits of each of ``query_vectors (q, d)`` among its ``k + extra``
    nearest in ``index``: ``(rows (q, k) int64, scores (q, k) float32)``, ``-1`` / ``nan`` where
    too few remain (see :func:`~nvrepro.core.retrieval.chunks.exclude_same_document`)."""
    scores, ids = search(index, query_vectors, k + extra, nprobe)
    kept = exclude_same_document(ids, np.asarray(query_doc_ids), chunk_doc_ids, k)
    # the score of each kept row: where it sits among the candidates of its query
    match = (ids[:, None, :] == kept[:, :, None]) & (kept[:, :, None] >= 0)  # (q, k, k + extra)
    kept_scores = np.take_along_axis(scores, match.argmax(axis=2), axis=1).astype(np.float32)
    kept_scores[kept < 0] = np.nan
    return kept, kept_scores


@contextlib.contextmanager
def datasets_progress(enabled: bool) -> Iterator[None]:
    """HF ``datasets`` progress bars on or off inside the block, the caller's setting restored after."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    (datasets.enable_progress_bars if enabled else datasets.disable_progress_bars)()
    try:
        yield
    finally:
        (datasets.enable_progress_bars if was_enabled else datasets.disable_progress_bars)()
