"""The passage retriever against brute-force cosine similarity in numpy, its vector cache, and errors."""

import numpy as np
import pytest

pytest.importorskip("faiss")

from nvrepro.core.retrieval.passages import PassageRetriever, passage_fingerprint  # noqa: E402
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402


class HashingEmbedder:
    """Bag of words hashed into 64 dimensions, unit length: cheap, deterministic, and counts calls."""

    name, dim = "hashing-64", 64

    def __init__(self):
        self.calls = 0

    def embed(self, texts, progress=False):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) * 31 % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


PASSAGES = [f"passage about topic {w} and {v}" for w in ("red", "green", "blue", "amber", "violet")
            for v in ("stone", "river", "cloud", "field")]


def test_search_equals_brute_force_cosine():
    emb = HashingEmbedder()
    retriever = PassageRetriever(PASSAGES, emb)
    questions = ["topic blue river", "violet field", "green"]
    ids, scores = retriever.search(questions, 5)
    sims = emb.embed(questions) @ emb.embed(PASSAGES).T
    assert ids.shape == scores.shape == (3, 5)
    np.testing.assert_allclose(scores, -np.sort(-sims, axis=1)[:, :5], atol=1e-5)
    for row, q in zip(ids, sims):  # the ids carry those scores (ties may come in either order)
        np.testing.assert_allclose(q[row], -np.sort(-q)[:5], atol=1e-5)
    assert retriever.texts(ids[0][:1])[0] == PASSAGES[ids[0][0]]


def test_more_than_the_corpus_pads_with_minus_one():
    ids, _ = PassageRetriever(PASSAGES[:3], HashingEmbedder()).search(["red"], 5)
    assert sorted(ids[0][:3]) == [0, 1, 2] and list(ids[0][3:]) == [-1, -1]


def test_vectors_are_cached_by_fingerprint(tmp_path):
    emb = HashingEmbedder()
    PassageRetriever(PASSAGES, emb, cache_dir=tmp_path)
    PassageRetriever(PASSAGES, emb, cache_dir=tmp_path)
    assert emb.calls == 1
    assert (tmp_path / f"{passage_fingerprint(PASSAGES, emb.name)}.npy").is_file()
    PassageRetriever(PASSAGES[:-1], emb, cache_dir=tmp_path)  # another corpus: embedded again
    assert emb.calls == 2


def test_errors_name_the_input():
    with pytest.raises(ConfigError, match="passages"):
        PassageRetriever([], HashingEmbedder())
    retriever = PassageRetriever(PASSAGES, HashingEmbedder())
    with pytest.raises(ConfigError, match="n"):
        retriever.search(["red"], 0)
    with pytest.raises(TypeError, match="questions"):
        retriever.search("red", 2)
    with pytest.raises(IndexError, match="ids"):
        retriever.texts([-1])
    with pytest.raises(ConfigError, match="factory"):
        PassageRetriever(PASSAGES, HashingEmbedder(), factory="NotAnIndex")
