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
    """Where the text comes from (``corpus``, ``paths``, ``max_documents``; ``tokenizer``; a seeded
    ``heldout_fraction`` of the documents is kept out of the database, for evaluation), how it
    is chunked (``chunk_len`` tokens, RETRO's m) and indexed (``factory``, ``train_size``,
    ``embedder_dir``: ``None`` for the packaged MiniLM), how many neighbours to keep (``k``, searched
    among ``k + extra``), the recall check (``recall_queries`` chunks, ``recall_k``), ``seed`` and
    ``out_dir`` (relative paths are under the repository root)."""

    corpus: str = "web_bible"
    paths: list[str] | None = None
    max_documents: int | None = None
    heldout_fraction: float = 0.0
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
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ConfigError(f"heldout_fraction: must be in [0, 1), got {self.heldout_fraction!r}")


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
    from nvrepro.core.data.corpus import load_corpus, split_indices
    from nvrepro.core.data.tokenizers import build_tokenizer
    from nvrepro.core.retrieval.embedder import SentenceEmbedder

    t0 = time.perf_counter()
    docs = load_corpus(cfg.corpus, cfg.paths, max_documents=cfg.max_documents)
    # Chunks keep the corpus index of their document, so held-out documents are never ids here.
    in_db, heldout = split_indices(len(docs), cfg.heldout_fraction, cfg.seed)
    tokenizer = build_tokenizer(cfg.tokenizer, [docs[i] for i in in_db])
    embedder = SentenceEmbedder(cfg.embedder_dir)
    pad = tokenizer.pad_id
    tokens, conts, doc_ids, index_in_doc, vectors = [], [], [], [], []
    embed_seconds = 0.0
    for position, chunks, continuation in iter_document_chunks((tokenizer.encode(docs[i]) for i in in_db),
                                                               cfg.chunk_len, pad):
        doc_id = in_db[position]
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
        "documents": len(in_db), "heldout_documents": heldout, "chunks": len(table), "chunk_len": cfg.chunk_len,
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


@dataclass
class Database:
    """A built database opened for use: ``chunks`` (:class:`ChunkTable`), the faiss ``index`` and
    its :class:`IndexInfo`, the precomputed ``neighbours (n, k)`` rows of every chunk (``-1``:
    none) with their ``scores (n, k)``, the build ``report`` and the ``config`` it was built with.
    """

    chunks: ChunkTable
    index: object
    info: IndexInfo
    neighbours: np.ndarray
    scores: np.ndarray
    report: dict
    config: DatabaseConfig
    path: Path
    _embedder: object = None

    @property
    def heldout_documents(self) -> list[int]:
        """Corpus indices of the documents kept out of the database (``heldout_fraction``)."""
        return list(self.report.get("heldout_documents", []))

    def embedder(self):
        """The frozen encoder that keyed the index (loaded on first use)."""
        from nvrepro.core.retrieval.embedder import SentenceEmbedder

        if self._embedder is None:
            self._embedder = SentenceEmbedder(self.config.embedder_dir)
        return self._embedder

    def retrieve(self, texts, k: int, query_doc_ids=None, extra: int | None = None,
                 nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``(q, k)`` and scores ``(q, k)`` of the ``k`` chunks nearest to each query text.

        With ``query_doc_ids (q,)`` (documents of the database), hits from the query's own document
        are dropped (searching ``k + extra`` candidates); ``-1`` / ``nan`` where too few remain."""
        from nvrepro.core.retrieval.chunks import exclude_same_document

        vectors = self.embedder().embed(list(texts))
        if query_doc_ids is None:
            return search(self.index, vectors, k, nprobe)[::-1]
        extra = self.config.extra if extra is None else extra
        scores, ids = search(self.index, vectors, k + extra, nprobe)
        kept = exclude_same_document(ids, np.asarray(query_doc_ids), self.chunks.doc_ids, k)
        kept_scores = np.full(kept.shape, np.nan, dtype=np.float32)
        for r in range(len(kept)):
            for j, row in enumerate(kept[r]):
                if row >= 0:
                    kept_scores[r, j] = scores[r][list(ids[r]).index(row)]
        return kept, kept_scores

    def neighbour_tokens(self, rows: np.ndarray, pad_id: int) -> np.ndarray:
        """Token ids ``(*rows.shape, 2 m)`` (chunk then continuation) of database ``rows`` of any
        shape; a ``-1`` row is all ``pad_id``."""
        rows = np.asarray(rows)
        flat = rows.reshape(-1)
        out = self.chunks.neighbour_tokens(np.where(flat >= 0, flat, 0))
        out[flat < 0] = pad_id
        return out.reshape(*rows.shape, out.shape[-1])


def open_database(out_dir: str | Path) -> Database:
    """The database that :func:`build_database` wrote under ``out_dir`` (relative: under the
    repository root). A missing part raises ``ConfigError`` naming the file."""
    import datasets

    from nvrepro.core.retrieval.index import load_index

    path = Path(out_dir) if Path(out_dir).is_absolute() else REPO_ROOT / out_dir
    for name in ("report.json", "chunks.npz", "neighbours"):
        if not (path / name).exists():
            raise ConfigError(f"database: {path / name} does not exist; build it with "
                              "nvrepro build-db --config FILE")
    report = json.loads((path / "report.json").read_text())
    cfg = dataclass_from_dict(DatabaseConfig, report["config"], "database")
    arrays = np.load(path / "chunks.npz")
    chunks = ChunkTable(arrays["tokens"], arrays["continuation"], arrays["doc_ids"], arrays["chunk_index"])
    index, info = load_index(path / "chunks.faiss")
    if info.count != len(chunks):
        raise ConfigError(f"database: {path / 'chunks.faiss'} holds {info.count} vectors but "
                          f"{path / 'chunks.npz'} {len(chunks)} chunks")
    table = datasets.load_from_disk(str(path / "neighbours")).with_format("numpy")
    return Database(chunks, index, info, np.asarray(table["neighbours"], dtype=np.int64),
                    np.asarray(table["scores"], dtype=np.float32), report, cfg, path)


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
