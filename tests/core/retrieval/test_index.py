"""The faiss index: exact search against numpy, IVF recall against Flat, save/load checks."""

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from nvrepro.core.retrieval.index import (IndexInfo, build_index, load_index, recall_at_k,  # noqa: E402
                                          save_index, search)
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402


def unit_vectors(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_is_exact_inner_product_search():
    base, queries = unit_vectors(500, 16, 0), unit_vectors(20, 16, 1)
    scores, ids = search(build_index(base, "Flat", batch_size=128), queries, 5)
    naive = np.argsort(-(queries @ base.T), axis=1)[:, :5]  # the independent reference
    assert np.array_equal(ids, naive)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ base.T, naive, 1), rtol=1e-5)


def test_ivf_recall_against_flat_grows_with_nprobe_and_is_deterministic():
    faiss.omp_set_num_threads(1)
    base, queries = unit_vectors(4000, 32, 2), unit_vectors(100, 32, 3)
    _, exact = search(build_index(base, "Flat"), queries, 10)
    ivf = build_index(base, "IVF32,Flat", train_size=2000, seed=0)
    low = recall_at_k(search(ivf, queries, 10, nprobe=1)[1], exact, 10)
    high = recall_at_k(search(ivf, queries, 10, nprobe=32)[1], exact, 10)
    assert low < high and high == pytest.approx(1.0)  # all 32 lists visited: exact
    again = build_index(base, "IVF32,Flat", train_size=2000, seed=0)
    assert np.array_equal(search(again, queries, 10, nprobe=4)[1], search(ivf, queries, 10, nprobe=4)[1])


def test_recall_at_k_counts_by_hand():
    assert recall_at_k(np.array([[1, 2, 3], [4, 5, -1]]), np.array([[3, 2, 9], [4, 7, 8]]), 3) == 3 / 6


def test_save_load_and_clear_errors(tmp_path):
    base = unit_vectors(50, 8, 4)
    index = build_index(base)
    path = save_index(index, tmp_path / "db" / "chunks.faiss", IndexInfo("Flat", 8, "ip", "toy-embedder", 50))
    loaded, info = load_index(path, dim=8, embedder="toy-embedder")
    assert info.count == 50 and np.array_equal(search(loaded, base[:3], 1)[1][:, 0], [0, 1, 2])
    with pytest.raises(ConfigError, match="chunks.faiss holds 8-dimensional vectors, the embedder gives 384"):
        load_index(path, dim=384)
    with pytest.raises(ConfigError, match="built with embedder 'toy-embedder'"):
        load_index(path, embedder="other")
    with pytest.raises(ConfigError, match="missing.faiss does not exist"):
        load_index(tmp_path / "missing.faiss")
    with pytest.raises(ConfigError, match="factory"):
        build_index(base, "NoSuchIndex")
