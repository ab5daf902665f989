"""The retrieval bench on a tiny size: its rows' shape, recall against numpy's exact search."""

import numpy as np
import pytest

pytest.importorskip("faiss")

from nvrepro.core.retrieval import bench  # noqa: E402


def test_clustered_vectors_are_seeded_unit_vectors():
    a, b = bench.clustered_unit_vectors(500, 16, seed=3), bench.clustered_unit_vectors(500, 16, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-5)


def test_compare_indexes_rows_and_recall_against_numpy():
    x = bench.clustered_unit_vectors(2100, 32, clusters=16, seed=0)
    base, queries = x[:2000], x[2000:]
    defaults = bench.default_indexes(2000, 32)
    assert [f for f, _ in defaults.values()] == ["Flat", "IVF32,Flat", "IVF32,PQ32x5", "HNSW32",
                                                 "OPQ32_64,IVF32_HNSW8,PQ32x5"]
    # the quick ones only (OPQ and PQ training take minutes on a busy 2-core CPU)
    picked = {label: defaults[label] for label in ("Flat (exact)", "IVF-Flat", "HNSW32")}
    rows = bench.compare_indexes(base, queries, picked, k=10, repeats=2)
    assert [r["factory"] for r in rows] == ["Flat", "IVF32,Flat", "HNSW32"]
    flat = rows[0]
    assert flat["recall"] == 1.0 and flat["speedup"] == 1.0
    for r in rows:
        assert len(r["search_seconds"]) == 2 and r["queries_per_second"] > 0 and 0 <= r["recall"] <= 1
        assert len(r["per_query_recall"]) == 100
    # IVF-Flat's recall recomputed against numpy's exhaustive top-10 (its own search, rerun)
    import faiss

    from nvrepro.core.retrieval.index import build_index

    factory, params = bench.default_indexes(2000, 32)["IVF-Flat"]
    index = build_index(base, factory, train_size=50_000, seed=0)
    faiss.ParameterSpace().set_index_parameter(index, "nprobe", params["nprobe"])
    exact = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    found = index.search(queries, 10)[1]
    expected = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact)])
    assert rows[1]["recall"] == pytest.approx(expected, abs=0.01)
    with pytest.raises(ValueError, match="Flat"):
        bench.compare_indexes(base, queries, {"HNSW": ("HNSW8", {})}, repeats=1)


def test_scaled_settings_follow_the_size():
    assert bench.scaled_settings(100_000) == {"nlist": 1024, "bits": 8}
    assert bench.scaled_settings(2000) == {"nlist": 32, "bits": 5}
