"""Chunks of tokenized documents, RETRO's unit of retrieval, and same-document exclusion.

RETRO (Borgeaud et al. 2022; the NVIDIA study arXiv:2304.06762, Sec. 2) splits every document
into chunks of ``m`` tokens (64 in the paper: a config value). A database entry is a chunk
together with its **continuation**, the next ``m`` tokens of the same document, so a retrieved
neighbour is ``2 m`` tokens; the last chunk of a document has no continuation (pad tokens). A
query chunk never retrieves from its own document (that would leak the text it is asked to
predict), so neighbours are chosen from search results after dropping same-document hits.

* :func:`iter_document_chunks` / :func:`chunk_documents`: per-document chunk arrays, streamed, or
  collected into a :class:`ChunkTable`;
* :func:`exclude_same_document`: from ``k + extra`` search results per query, the first ``k``
  whose document differs from the query's (``-1`` where too few remain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from nvrepro.core.tooling.validation import require_positive_int


@dataclass(frozen=True)
class ChunkTable:
    """Chunks of a corpus, one row each: ``tokens (n, m)``, ``continuation (n, m)`` (the next
    chunk of the same document, ``pad_id`` after its end), ``doc_ids (n,)`` (index of the document
    in the input order), ``chunk_index (n,)`` (position of the chunk within its document)."""

    tokens: np.ndarray
    continuation: np.ndarray
    doc_ids: np.ndarray
    chunk_index: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)

    def neighbour_tokens(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Chunk and continuation of each row, ``(len(rows), 2 m)``: what a neighbour contributes."""
        rows = np.asarray(rows)
        return np.concatenate([self.tokens[rows], self.continuation[rows]], axis=1)


def iter_document_chunks(docs: Iterable[Sequence[int]], chunk_len: int, pad_id: int,
                         keep_partial: bool = True) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each document (token ids) in order: ``(doc_id, chunks (c, m), continuations (c, m))``.

    A partial last chunk is padded with ``pad_id`` (``keep_partial=False`` drops it); documents
    with no chunk are skipped (their id is still counted). One document in memory at a time.
    """
    require_positive_int(chunk_len, "chunk_len")
    for doc_id, doc in enumerate(docs):
        ids = np.asarray(doc, dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"docs[{doc_id}]: expected a 1-D sequence of token ids, got shape {ids.shape}")
        n_full, rest = divmod(len(ids), chunk_len)
        n = n_full + (1 if rest and keep_partial else 0)
        if n == 0:
            continue
        padded = np.full((n + 1) * chunk_len, pad_id, dtype=np.int64)  # one spare chunk: the last continuation
        used = min(len(ids), (n + 1) * chunk_len)  # a dropped partial chunk still continues the last
        padded[:used] = ids[:used]
        blocks = padded.reshape(n + 1, chunk_len)
        yield doc_id, blocks[:n], blocks[1:]


def chunk_documents(docs: Iterable[Sequence[int]], chunk_len: int, pad_id: int,
                    keep_partial: bool = True) -> ChunkTable:
    """All chunks of ``docs`` as one :class:`ChunkTable` (see :func:`iter_document_chunks`)."""
    tokens, conts, doc_ids, index = [], [], [], []
    for doc_id, chunks, continuation in iter_document_chunks(docs, chunk_len, pad_id, keep_partial):
        tokens.append(chunks)
        conts.append(continuation)
        doc_ids.append(np.full(len(chunks), doc_id, dtype=np.int64))
        index.append(np.arange(len(chunks), dtype=np.int64))
    if not tokens:
        empty = np.zeros((0, chunk_len), dtype=np.int64)
        return ChunkTable(empty, empty.copy(), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return ChunkTable(np.concatenate(tokens), np.concatenate(conts), np.concatenate(doc_ids),
                      np.concatenate(index))


def exclude_same_document(candidates: np.ndarray, query_doc_ids: np.ndarray, chunk_doc_ids: np.ndarray,
                          k: int) -> np.ndarray:
    """The first ``k`` candidates of each query that come from another document.

    ``candidates (q, k')``: database rows in order of similarity (``-1``: no result, as faiss
    returns); ``query_doc_ids (q,)``; ``chunk_doc_ids (n,)``: the document of every database row.
    Returns ``(q, k)`` rows, ``-1`` where fewer than ``k`` candidates remain: search with ``k'``
    comfortably above ``k`` (a document contributes many chunks that look alike).
    """
    candidates = np.asarray(candidates)
    query_doc_ids = np.asarray(query_doc_ids)
    if candidates.ndim != 2 or len(candidates) != len(query_doc_ids):
        raise ValueError(f"candidates, query_doc_ids: need (q, k') and (q,), got {candidates.shape} "
                         f"and {query_doc_ids.shape}")
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    valid = candidates >= 0
    cand_docs = np.where(valid, np.asarray(chunk_doc_ids)[np.where(valid, candidates, 0)], -1)
    keep = valid & (cand_docs != query_doc_ids[:, None])
    # Stable order of kept candidates: rank of each kept entry among the kept ones of its row.
    rank = np.cumsum(keep, axis=1) - 1
    out = np.full((len(candidates), k), -1, dtype=np.int64)
    rows, cols = np.nonzero(keep & (rank < k))
    out[rows, rank[rows, cols]] = candidates[rows, cols]
    return out
