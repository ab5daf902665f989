"""Chunking and same-document exclusion against naive loops written out here."""

import numpy as np
import pytest

from nvrepro.core.retrieval.chunks import chunk_documents, exclude_same_document, iter_document_chunks
from nvrepro.core.tooling.validation import ConfigError

PAD = -7


def naive_chunks(docs, m, keep_partial=True):
    rows = []
    for d, doc in enumerate(docs):
        starts = range(0, len(doc), m) if keep_partial else range(0, len(doc) - m + 1, m)
        for c, s in enumerate(starts):
            chunk = list(doc[s:s + m]) + [PAD] * (m - len(doc[s:s + m]))
            nxt = list(doc[s + m:s + 2 * m]) + [PAD] * (m - len(doc[s + m:s + 2 * m]))
            rows.append((d, c, chunk, nxt))
    return rows


@pytest.mark.parametrize("keep_partial", [True, False])
def test_chunks_and_continuations_match_a_naive_split(keep_partial):
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(0, 50, n)) for n in (0, 3, 8, 9, 17, 24)]
    table = chunk_documents(docs, 4, PAD, keep_partial)
    want = naive_chunks(docs, 4, keep_partial)
    assert len(table) == len(want)
    for row, (d, c, chunk, nxt) in enumerate(want):
        assert (table.doc_ids[row], table.chunk_index[row]) == (d, c)
        assert table.tokens[row].tolist() == chunk and table.continuation[row].tolist() == nxt
    assert table.neighbour_tokens([0]).shape == (1, 8)


def test_chunking_streams_one_document_at_a_time_and_checks_input():
    def docs():
        yield [1, 2, 3]
        yield [4, 5, 6, 7, 8]
    assert [d for d, _, _ in iter_document_chunks(docs(), 2, PAD)] == [0, 1]
    with pytest.raises(ConfigError, match="chunk_len"):
        chunk_documents([[1]], 0, PAD)
    with pytest.raises(ValueError, match=r"docs\[0\]"):
        chunk_documents([[[1, 2]]], 2, PAD)
    assert len(chunk_documents([], 3, PAD)) == 0


def naive_exclude(candidates, query_docs, chunk_docs, k):
    out = []
    for cands, qd in zip(candidates, query_docs):
        kept = [c for c in cands if c >= 0 and chunk_docs[c] != qd][:k]
        out.append(kept + [-1] * (k - len(kept)))
    return np.array(out)


def test_same_document_neighbours_are_excluded_in_order():
    rng = np.random.default_rng(1)
    chunk_docs = rng.integers(0, 5, 40)
    candidates = rng.integers(-1, 40, (30, 9))
    query_docs = rng.integers(0, 5, 30)
    for k in (1, 2, 5, 12):
        got = exclude_same_document(candidates, query_docs, chunk_docs, k)
        assert np.array_equal(got, naive_exclude(candidates, query_docs, chunk_docs, k))
        kept = got[got >= 0]
        assert not np.any(chunk_docs[kept] == np.repeat(query_docs, k)[got.ravel() >= 0])
    with pytest.raises(ValueError, match="candidates"):
        exclude_same_document(candidates[:2], query_docs, chunk_docs, 2)
