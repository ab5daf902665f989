"""``nvrepro build-db`` end to end on a few documents, with the real embedder."""

import json

import datasets
import numpy as np
import pytest

pytest.importorskip("faiss")
pytest.importorskip("sentence_transformers")

from nvrepro.cli import main  # noqa: E402
from nvrepro.core.retrieval.database import DatabaseConfig, build_database, load_database_config  # noqa: E402
from nvrepro.core.retrieval.index import load_index  # noqa: E402
from nvrepro.core.tooling.paths import CONFIGS_DIR  # noqa: E402
from nvrepro.core.tooling.validation import ConfigError  # noqa: E402

DOCS = ["The Lord is my shepherd; I shall not want. He makes me lie down in green pastures.",
        "The LORD is my shepherd, I lack nothing. He lets me lie down in green meadows.",
        "In the beginning was the Word, and the Word was with God, and the Word was God.",
        "Stock markets fell on Monday as investors sold shares in technology companies."]


def test_build_db_writes_a_consistent_database(tmp_path):
    for i, d in enumerate(DOCS):
        (tmp_path / f"doc{i}.txt").write_text(d)
    cfg = DatabaseConfig(corpus="files", paths=[str(tmp_path / f"doc{i}.txt") for i in range(4)], chunk_len=16,
                         k=2, extra=8, recall_queries=8, recall_k=3, out_dir=str(tmp_path / "db"))
    report = build_database(cfg, progress=False)
    chunks = {name: np.concatenate([np.load(p) for p in sorted((tmp_path / "db" / "shards").glob(f"{name}_*.npy"))])
              for name in ("tokens", "doc_ids", "chunk_index")}
    n = len(chunks["tokens"])
    assert report["chunks"] == n == sum(-(-len(d.encode()) // 16) for d in DOCS)  # ceil(bytes / 16) each
    assert report["recall@3"] == 1.0  # Flat is exact
    index, info = load_index(tmp_path / "db" / "chunks.faiss", dim=384, embedder="all-MiniLM-L6-v2")
    assert index.ntotal == n and info.factory == "Flat"
    table = datasets.load_from_disk(str(tmp_path / "db" / "neighbours"))
    docs = chunks["doc_ids"]
    for row in table:
        assert all(docs[c] != docs[row["query"]] for c in row["neighbours"] if c >= 0)
    # the psalm's first chunk finds the other translation of it first
    first = table[0]["neighbours"][0]
    assert docs[first] == 1 and chunks["chunk_index"][first] == 0
    assert json.loads((tmp_path / "db" / "report.json").read_text())["chunks"] == n


def test_config_and_command_errors_name_the_field(tmp_path, capsys):
    cfg = load_database_config(CONFIGS_DIR / "retro" / "toy_db.yaml", max_documents=3)
    assert cfg.max_documents == 3 and cfg.chunk_len == 64
    with pytest.raises(ConfigError, match="chunk_len"):
        DatabaseConfig(chunk_len=0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("database:\n  chunk_size: 64\n")
    assert main(["build-db", "--config", str(bad)]) == 2
    assert "database.chunk_size: unknown config key" in capsys.readouterr().err


def test_open_database_reads_back_what_was_built(tmp_path):
    from nvrepro.core.retrieval.database import open_database

    for i, d in enumerate(DOCS):
        (tmp_path / f"doc{i}.txt").write_text(d)
    cfg = DatabaseConfig(corpus="files", paths=[str(tmp_path / f"doc{i}.txt") for i in range(4)], chunk_len=16,
                         k=2, extra=8, recall_queries=8, recall_k=3, out_dir=str(tmp_path / "db"))
    build_database(cfg, progress=False)
    db = open_database(tmp_path / "db")
    assert db.neighbours.shape == (len(db.chunks), 2) and db.config.chunk_len == 16
    # searching a chunk's own text with its document excluded gives the precomputed neighbours
    row = 0
    text = DOCS[0].encode()[:16].decode()
    rows, scores = db.retrieve([text], 2, query_doc_ids=[db.chunks.doc_ids[row]])
    assert rows[0].tolist() == db.neighbours[row].tolist()
    np.testing.assert_allclose(scores[0], db.scores[row], rtol=1e-5)
    tokens = db.neighbour_tokens(np.array([[rows[0][0], -1]]), pad_id=258)
    assert tokens.shape == (1, 2, 32) and (tokens[0, 1] == 258).all()
    assert tokens[0, 0, :16].tolist() == db.chunks.tokens[rows[0][0]].tolist()
    with pytest.raises(ConfigError, match="report.json"):
        open_database(tmp_path / "nowhere")


def test_heldout_documents_stay_out_of_the_database(tmp_path):
    from nvrepro.core.data.corpus import split_indices
    from nvrepro.core.retrieval.database import open_database

    for i, d in enumerate(DOCS):
        (tmp_path / f"doc{i}.txt").write_text(d)
    cfg = DatabaseConfig(corpus="files", paths=[str(tmp_path / f"doc{i}.txt") for i in range(4)], chunk_len=16,
                         heldout_fraction=0.25, seed=3, k=1, extra=8, recall_queries=4, recall_k=2,
                         out_dir=str(tmp_path / "db"))
    build_database(cfg, progress=False)
    db = open_database(tmp_path / "db")
    kept, heldout = split_indices(4, 0.25, 3)
    assert db.heldout_documents == heldout and len(heldout) == 1
    assert sorted(set(db.chunks.doc_ids.tolist())) == kept  # corpus indices, the held-out one absent
    with pytest.raises(ConfigError, match="heldout_fraction"):
        DatabaseConfig(heldout_fraction=1.0)


def _docs_config(tmp_path, **changes):
    for i, d in enumerate(DOCS):
        (tmp_path / f"doc{i}.txt").write_text(d)
    settings = dict(corpus="files", paths=[str(tmp_path / f"doc{i}.txt") for i in range(4)], chunk_len=8,
                    k=2, extra=8, recall_queries=8, recall_k=3, batch_size=5)
    return DatabaseConfig(**{**settings, **changes})


def test_sharding_changes_nothing_but_the_files(tmp_path):
    """Exact (Flat) search: three-chunk shards give the same chunks, vectors and neighbours as one
    shard; the neighbours are also those of an exhaustive numpy search over the vectors."""
    from nvrepro.core.retrieval.database import open_database

    small = open_database(_db(tmp_path, "small", shard_size=3))
    large = open_database(_db(tmp_path, "large", shard_size=10_000))
    n = len(small.chunks)
    assert small.report["shards"] == -(-n // 3) > 1 and large.report["shards"] == 1
    for name in ("tokens", "continuation", "doc_ids", "chunk_index"):
        np.testing.assert_array_equal(getattr(small.chunks, name), getattr(large.chunks, name))
    vectors = small.vectors().load()
    np.testing.assert_array_equal(vectors, large.vectors().load())
    np.testing.assert_array_equal(small.neighbours, large.neighbours)
    docs = small.chunks.doc_ids
    sims = vectors @ vectors.T
    for q in range(n):  # compared by similarity: float32 rounding may swap two near-equal ones
        others = np.sort(sims[q][docs != docs[q]])[::-1][:2]
        got = small.neighbours[q]
        assert (docs[got] != docs[q]).all()
        np.testing.assert_allclose(sims[q, got], others, atol=1e-6)
        np.testing.assert_allclose(small.scores[q], others, atol=1e-6)


def _db(tmp_path, name, **changes):
    build_database(_docs_config(tmp_path, out_dir=str(tmp_path / name), **changes), progress=False)
    return tmp_path / name


def test_ivf_builds_are_deterministic_for_a_seed(tmp_path):
    from nvrepro.core.retrieval.database import open_database

    cfg = dict(factory="IVF2,Flat", train_size=20, shard_size=4, nprobe=1)
    a, b = (open_database(_db(tmp_path, name, **cfg)) for name in ("a", "b"))
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.report["recall@3"] == b.report["recall@3"] and a.info.factory == "IVF2,Flat"
    open_database(_db(tmp_path, "c", **{**cfg, "keep_vectors": False}))
    with pytest.raises(ConfigError, match="keep_vectors"):
        open_database(tmp_path / "c").vectors()
    with pytest.raises(ConfigError, match="shard_size"):
        DatabaseConfig(shard_size=0)


def test_estimate_matches_the_files_build_db_writes(tmp_path):
    """Token storage (int32 token ids): the closed form n (2 m 4 + 16) equals the shards' data bytes (each .npy has a
    128-byte header); the neighbour table is within 10% plus 8 KiB (Arrow metadata and padding)."""
    from nvrepro.core.retrieval.estimate import estimate

    path = _db(tmp_path, "db", shard_size=7)
    report = json.loads((path / "report.json").read_text())
    n, m = report["chunks"], report["chunk_len"]
    e = estimate(DatabaseConfig(chunk_len=m, k=2), n, report["dim"])
    files = [p for name in ("tokens", "continuation", "doc_ids", "chunk_index")
             for p in (path / "shards").glob(f"{name}_*.npy")]
    assert sum(p.stat().st_size - 128 for p in files) == e["chunk_tokens"] == n * (2 * m * 4 + 16)
    arrow = sum(p.stat().st_size for p in (path / "neighbours").glob("*.arrow"))
    assert abs(arrow - e["neighbours"]) <= 0.1 * e["neighbours"] + 8192, (arrow, e["neighbours"])
    vectors = sum(p.stat().st_size - 128 for p in (path / "shards").glob("vectors_*.npy"))
    assert vectors == e["vector_shards"]
