"""A dense passage retriever: whole passages keyed by the frozen sentence embedder, searched with faiss.

RETRO's database (:mod:`~nvrepro.core.retrieval.database`) stores fixed-length token chunks for a
model that reads them through cross-attention. RAG systems such as RankRAG retrieve *passages* as
text, to paste into a prompt (arXiv 2407.02485 Sec. 4: a retriever returns the top-``N`` passages
of a corpus for a question). :class:`PassageRetriever` is that retriever: every passage is one
row, embedded by :class:`~nvrepro.core.retrieval.embedder.SentenceEmbedder` (unit vectors, so inner
product is cosine similarity), indexed by :func:`~nvrepro.core.retrieval.index.build_index` from any
``index_factory`` string (``"Flat"``: exact; IVF/PQ/HNSW strings for a large corpus; a sharded or GPU
faiss index is the way past one machine), and searched by question text.

With ``cache_dir`` the passage vectors are stored as ``<fingerprint>.npy`` (the fingerprint hashes
the passages and the embedder's name), so a notebook rerun does not embed the corpus again.

Shapes: ``ids (q, n)`` int64 passage indices, best first (``-1`` where the corpus has fewer than
``n`` passages); ``scores (q, n)`` float32 similarities (``-inf`` with ``-1``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from nvrepro.core.retrieval.index import build_index, search
from nvrepro.core.tooling.validation import ConfigError, require_positive_int


def passage_fingerprint(passages: Sequence[str], embedder_name: str) -> str:
    """SHA-256 (hex, 16 characters) of the embedder's name and the passages, length-prefixed."""
    h = hashlib.sha256(embedder_name.encode())
    for text in passages:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:16]


class PassageRetriever:
    """Top-``n`` passages of a corpus for question texts.

    ``passages``: the corpus (passage ``i`` is id ``i``); ``embedder``: a
    :class:`~nvrepro.core.retrieval.embedder.SentenceEmbedder` (default: the packaged MiniLM);
    ``factory``: the faiss ``index_factory`` string; ``seed``: the training sample of trained
    indexes; ``cache_dir``: where passage vectors are kept between runs (``None``: not kept).
    """

    def __init__(self, passages: Sequence[str], embedder=None, factory: str = "Flat", *, seed: int = 0,
                 cache_dir: str | Path | None = None, nprobe: int | None = None, progress: bool = False):
        if isinstance(passages, str):
            raise TypeError("passages: pass a sequence of strings, not one string")
        self.passages = list(passages)
        if not self.passages:
            raise ConfigError("passages: the corpus is empty")
        if embedder is None:
            from nvrepro.core.retrieval.embedder import SentenceEmbedder

            embedder = SentenceEmbedder()
        self.embedder, self.factory, self.nprobe = embedder, factory, nprobe
        self.vectors = self._passage_vectors(cache_dir, progress)
        self.index = build_index(self.vectors, factory, seed=seed)

    def _passage_vectors(self, cache_dir: str | Path | None, progress: bool) -> np.ndarray:
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"{passage_fingerprint(self.passages, self.embedder.name)}.npy"
            if path.is_file():
                vectors = np.load(path)
                if vectors.shape == (len(self.passages), self.embedder.dim):
                    return vectors
        vectors = self.embedder.embed(self.passages, progress=progress)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, vectors)
        return vectors

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, questions: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (q, n), scores (q, n))`` of the ``n`` passages most similar to each question."""
        require_positive_int(n, "n")
        if isinstance(questions, str):
            raise TypeError("questions: pass a sequence of strings, not one string")
        if not len(questions):
            return np.zeros((0, n), dtype=np.int64), np.zeros((0, n), dtype=np.float32)
        scores, ids = search(self.index, self.embedder.embed(list(questions)), n, self.nprobe)
        return ids.astype(np.int64), scores.astype(np.float32)

    def texts(self, ids: Sequence[int]) -> list[str]:
        """The passages of ``ids`` (``-1`` is not allowed)."""
        bad = [i for i in ids if not 0 <= int(i) < len(self.passages)]
        if bad:
            raise IndexError(f"ids: {bad[:5]} outside the corpus of {len(self.passages)} passages")
        return [self.passages[int(i)] for i in ids]
