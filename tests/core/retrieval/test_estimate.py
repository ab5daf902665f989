"""The disk estimate against what faiss and build-db actually write."""

import os

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from nvrepro.core.retrieval.database import DatabaseConfig, estimate_config, load_database_config  # noqa: E402
from nvrepro.core.retrieval.estimate import estimate, hnsw_bytes_per_node, parse_factory  # noqa: E402
from nvrepro.core.tooling.paths import CONFIGS_DIR  # noqa: E402
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402

# Within 1% plus 1 KiB of headers: the HNSW term is an expectation over random levels.
REL_TOL, ABS_TOL = 0.01, 1024


# 4-bit codes (16 centroids) keep training quick; one 8-bit PQ checks the 256-centroid codebooks.
@pytest.mark.parametrize("factory, n", [("OPQ8_32,IVF64_HNSW8,PQ8x4", 3_000), ("OPQ8_32,IVF64_HNSW8,PQ8x4", 12_000),
                                        ("IVF64,PQ16x4", 6_000), ("IVF32,Flat", 3_000), ("HNSW16", 3_000),
                                        ("Flat", 1_000), ("PQ2", 3_000)])
def test_index_size_matches_the_file_faiss_writes(tmp_path, factory, n):
    d = 64
    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(x[:2600])  # 39 points per IVF list
    index.add(x)
    faiss.write_index(index, str(tmp_path / "i.faiss"))
    actual = os.path.getsize(tmp_path / "i.faiss")
    predicted = estimate(DatabaseConfig(factory=factory), n, d)["index"]["total"]
    assert abs(predicted - actual) <= REL_TOL * actual + ABS_TOL, (predicted, actual)


def test_hnsw_slots_per_node_follow_the_level_distribution():
    """2m slots at level 0, m per higher level, P(level >= l) = m^-l: checked on a real graph."""
    index = faiss.IndexHNSWFlat(8, 8)
    index.add(np.random.default_rng(1).standard_normal((20_000, 8)).astype(np.float32))
    slots = index.hnsw.neighbors.size() / index.ntotal
    assert slots == pytest.approx((hnsw_bytes_per_node(8) - 12) / 4, rel=0.02)


def test_paper_config_estimate_and_closed_forms():
    cfg = load_database_config(CONFIGS_DIR / "retro" / "paper_db.yaml")
    assert (cfg.chunk_len, cfg.k, cfg.factory) == (64, 2, "OPQ32_64,IVF65536_HNSW8,PQ32")
    e = estimate_config(cfg)
    n = 1_200_000_000_000 // 64
    assert e["chunks"] == n and e["dim"] == 1024
    assert e["index"]["codes"] == 32 * n and e["index"]["ids"] == 8 * n  # PQ32: 32 bytes; int64 ids
    assert e["index"]["opq"] == 4 * 1024 * 64 and e["index"]["pq_codebooks"] == 4 * 256 * 64
    assert e["chunk_tokens"] == n * (2 * 64 * 4 + 16) and e["neighbours"] == n * (16 + 12 * 2)
    layout = parse_factory("OPQ32_64,IVF65536_HNSW8,PQ32", 1024)
    assert (layout.opq, layout.code_dim, layout.nlist, layout.coarse_hnsw, layout.pq) == (32, 64, 65536, 8, 32)
    with pytest.raises(ConfigError, match="factory"):
        parse_factory("LSH", 64)
    with pytest.raises(ConfigError, match="corpus_tokens"):
        estimate_config(DatabaseConfig(embedder_dim=8))


def test_estimate_command_builds_nothing(tmp_path, capsys):
    from nvrepro.cli import main

    out = tmp_path / "db"
    assert main(["build-db", "--config", str(CONFIGS_DIR / "retro" / "paper_db.yaml"), "--estimate",
                 "--out-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "18,750,000,000 chunks" in text and "OPQ32_64,IVF65536_HNSW8,PQ32" in text
    assert not out.exists()
