"""``nvrepro build-db``: a RETRO retrieval database from a corpus, and a report of how it went.

Documents are tokenized and cut into chunks one document at a time (:mod:`.chunks`); each chunk's
text is embedded by the frozen encoder (:mod:`.embedder`) in batches; the vectors go into a faiss
index built from the config's factory string (:mod:`.index`); every chunk's top-k neighbours from
other documents are precomputed into an Arrow table (:mod:`.neighbours`). The database is the
chunk table, the index and the neighbour table, written under ``out_dir``.

The report: documents and chunks, embedding throughput (chunks/s), the index type, its recall@k
against exact search on a seeded sample of chunks, and the time of each stage.

At toy scale the vectors of all chunks are held in memory before indexing (384 floats a chunk);
a paper-size database (billions of chunks) trains the index on a sample and fills it shard by
shard, which :func:`~.index.build_index`'s batched ``add`` is the first half of.

    nvrepro build-db --config configs/retro/toy_db.yaml [--max-documents N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

from nvrepro.core.retrieval.chunks import ChunkTable, iter_document_chunks
from nvrepro.core.retrieval.index import IndexInfo, build_index, recall_at_k, save_index, search
from nvrepro.core.retrieval.neighbours import datasets_progress, neighbour_table
from nvrepro.core.tooling.paths import REPO_ROOT
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require_positive_int


@dataclass
class DatabaseConfig:
    """Where the text comes from (``corpus``, ``paths``, ``max_documents``; ``tokenizer``), how it
    is chunked (``chunk_len`` tokens, RETRO's m) and indexed (``factory``, ``train_size``,
    ``embedder_dir``: ``None`` for the packaged MiniLM), how many neighbours to keep (``k``, searched
    among ``k + extra``), the recall check (``recall_queries`` chunks, ``recall_k``), ``seed`` and
    ``out_dir`` (relative paths are under the repository root)."""

    corpus: str = "web_bible"
    paths: list[str] | None = None
    max_documents: int | None = None
    tokenizer: str = "byte"
    chunk_len: int = 64
    factory: str = "Flat"
    train_size: int | None = None
    embedder_dir: str | None = None
    k: int = 2
    extra: int = 16
    recall_queries: int = 256
    recall_k: int = 10
    batch_size: int = 256
    seed: int = 0
    out_dir: str = "build/retro/db"

    def __post_init__(self) -> None:
        for name in ("chunk_len", "k", "recall_queries", "recall_k", "batch_size"):
            require_positive_int(getattr(self, name), name)


def load_database_config(path: str | Path, **overrides) -> DatabaseConfig:
    """The ``database`` section of a YAML (or the whole file), with non-``None`` overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config: {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    data = dict(data.get("database", data))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return dataclass_from_dict(DatabaseConfig, data, "database")


def build_database(cfg: DatabaseConfig, progress: bool = True) -> dict:
    """Build the database of ``cfg`` under ``cfg.out_dir``; returns the report (plain data)."""
    from nvrepro.core.data.corpus import load_corpus
    from nvrepro.core.data.tokenizers import build_tokenizer
    from nvrepro.core.retrieval.embedder import SentenceEmbedder

    t0 = time.perf_counter()
    docs = load_corpus(cfg.corpus, cfg.paths, max_documents=cfg.max_documents)
    tokenizer = build_tokenizer(cfg.tokenizer, docs)
    embedder = SentenceEmbedder(cfg.embedder_dir)
    pad = tokenizer.pad_id
    tokens, conts, doc_ids, index_in_doc, vectors = [], [], [], [], []
    embed_seconds = 0.0
    for doc_id, chunks, continuation in iter_document_chunks((tokenizer.encode(d) for d in docs),
                                                             cfg.chunk_len, pad):
        texts = [tokenizer.decode(c[c != pad]) for c in chunks]
        start = time.perf_counter()
        vectors.append(embedder.embed(texts))
        embed_seconds += time.perf_counter() - start
        tokens.append(chunks)
        conts.append(continuation)
        doc_ids.append(np.full(len(chunks), doc_id))
        index_in_doc.append(np.arange(len(chunks)))
    table = ChunkTable(np.concatenate(tokens), np.concatenate(conts), np.concatenate(doc_ids),
                       np.concatenate(index_in_doc))
    vectors = np.concatenate(vectors)
    t_embed = time.perf_counter()

    index = build_index(vectors, cfg.factory, train_size=cfg.train_size, seed=cfg.seed, progress=progress)
    t_index = time.perf_counter()
    sample = np.random.default_rng(cfg.seed).choice(len(table), min(cfg.recall_queries, len(table)), replace=False)
    k = min(cfg.recall_k, len(table))
    exact = build_index(vectors, "Flat")
    recall = recall_at_k(search(index, vectors[sample], k)[1], search(exact, vectors[sample], k)[1], k)
    neighbours = neighbour_table(index, vectors, table.doc_ids, table.doc_ids, cfg.k, extra=cfg.extra,
                                 batch_size=cfg.batch_size, progress=progress)
    t_neighbours = time.perf_counter()

    out = Path(cfg.out_dir) if Path(cfg.out_dir).is_absolute() else REPO_ROOT / cfg.out_dir
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "chunks.npz", tokens=table.tokens, continuation=table.continuation,
             doc_ids=table.doc_ids, chunk_index=table.chunk_index)
    save_index(index, out / "chunks.faiss", IndexInfo(cfg.factory, embedder.dim, "ip", embedder.name, len(table)))
    with datasets_progress(progress):
        neighbours.save_to_disk(str(out / "neighbours"))
    report = {
        "documents": len(docs), "chunks": len(table), "chunk_len": cfg.chunk_len,
        "embedder": embedder.name, "dim": embedder.dim,
        "embed_chunks_per_second": len(table) / max(embed_seconds, 1e-9),
        "index": cfg.factory, f"recall@{k}": recall, "recall_queries": len(sample),
        "neighbours_per_chunk": cfg.k, "missing_neighbours": int(sum(n < 0 for row in neighbours["neighbours"] for n in row)),
        "seconds": {"chunk_and_embed": t_embed - t0, "index": t_index - t_embed,
                    "recall_and_neighbours": t_neighbours - t_index, "total": time.perf_counter() - t0},
        "out_dir": str(out), "config": asdict(cfg),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro build-db", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a YAML with a `database` section (configs/retro/)")
    parser.add_argument("--max-documents", type=int, default=None, help="keep the first N documents")
    parser.add_argument("--out-dir", default=None, help="where to write the database")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = load_database_config(args.config, max_documents=args.max_documents, out_dir=args.out_dir)
        report = build_database(cfg, progress=not args.no_progress)
    except ConfigError as err:
        print(f"nvrepro build-db: {err}", file=sys.stderr)
        return 2
    s = report["seconds"]
    recall_key = next(k for k in report if k.startswith("recall@"))
    print(f"{report['documents']:,} documents -> {report['chunks']:,} chunks of {report['chunk_len']} tokens\n"
          f"embedder {report['embedder']} ({report['dim']} dims): {report['embed_chunks_per_second']:,.0f} chunks/s\n"
          f"index {report['index']}: {recall_key} vs exact search {report[recall_key]:.3f} "
          f"({report['recall_queries']} queries)\n"
          f"neighbours: {report['neighbours_per_chunk']} per chunk, {report['missing_neighbours']} missing\n"
          f"time: chunk+embed {s['chunk_and_embed']:.1f} s, index {s['index']:.1f} s, recall+neighbours "
          f"{s['recall_and_neighbours']:.1f} s, total {s['total']:.1f} s\nwrote {report['out_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
