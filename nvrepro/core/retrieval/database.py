"""``nvrepro build-db``: a RETRO retrieval database from a corpus, and a report of how it went.

Documents are tokenized and cut into chunks one document at a time (:mod:`.chunks`); each chunk's
text is embedded by the frozen encoder (:mod:`.embedder`) in batches; the vectors go into a faiss
index built from the config's factory string (:mod:`.index`); every chunk's top-k neighbours from
other documents are precomputed into an Arrow table (:mod:`.neighbours`). The database is the
chunk table, the index and the neighbour table, written under ``out_dir``.

The report: documents and chunks, embedding throughput (chunks/s), the index type, its recall@k
against exact search on a seeded sample of chunks, and the time of each stage.

The build streams (:func:`build_database`): vectors go to disk in shards of ``shard_size`` chunks
(:mod:`.shards`) as they are embedded, the index is trained on a seeded sample of them and filled
shard by shard, and neighbours are searched one shard of queries at a time, so a paper-size
database (billions of chunks) needs memory for one shard, the index and the chunks' document ids.
What it needs on disk and in memory, before building anything, is :mod:`.estimate`'s job
(``--estimate``). The corpus itself is still read whole by :func:`~nvrepro.core.data.corpus.load_corpus`.

    nvrepro build-db --config configs/retro/toy_db.yaml [--max-documents N] [--out-dir DIR]
    nvrepro build-db --config configs/retro/paper_db.yaml --estimate [--chunks N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import yaml
from tqdm.auto import tqdm

from nvrepro.core.retrieval.chunks import ChunkTable, iter_document_chunks
from nvrepro.core.retrieval.estimate import TOKEN_DTYPE, format_estimate
from nvrepro.core.retrieval.index import (IndexInfo, exact_search_shards, fill_index, new_index, recall_at_k,
                                          save_index, search, training_rows)
from nvrepro.core.retrieval.neighbours import datasets_progress, neighbours_of
from nvrepro.core.retrieval.shards import ShardedArray, write_shards
from nvrepro.core.tooling.paths import REPO_ROOT
from nvrepro.core.tooling.validation import ConfigError, dataclass_from_dict, require_positive_int


@dataclass
class DatabaseConfig:
    """Where the text comes from (``corpus``, ``paths``, ``max_documents``; ``tokenizer``; a seeded
    ``heldout_fraction`` of the documents is kept out of the database, for evaluation), how it
    is chunked (``chunk_len`` tokens, RETRO's m) and indexed (``factory``, ``train_size``,
    ``embedder_dir``: ``None`` for the packaged MiniLM), how many neighbours to keep (``k``, searched
    among ``k + extra``; ``nprobe``: IVF lists visited, ``None``: faiss's default), the recall check
    (``recall_queries`` chunks, ``recall_k``), ``seed`` and ``out_dir`` (relative paths are under the
    repository root). Streaming: ``batch_size`` chunks are embedded (and searched) at a time,
    ``shard_size`` chunks form a shard on disk, ``keep_vectors`` keeps the vector shards after the
    build. For the estimate only: ``embedder_dim`` (the embedder's dimension when it is not at hand)
    and ``corpus_tokens`` (the corpus size the paper states)."""

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
    shard_size: int = 65536
    keep_vectors: bool = True
    nprobe: int | None = None
    embedder_dim: int | None = None
    corpus_tokens: int | None = None
    seed: int = 0
    out_dir: str = "build/retro/db"

    def __post_init__(self) -> None:
        for name in ("chunk_len", "k", "recall_queries", "recall_k", "batch_size", "shard_size"):
            require_positive_int(getattr(self, name), name)
        for name in ("train_size", "nprobe", "embedder_dim", "corpus_tokens"):
            if getattr(self, name) is not None:
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


def _database_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) if Path(out_dir).is_absolute() else REPO_ROOT / out_dir


def _embedded_batches(cfg: DatabaseConfig, documents, tokenizer, embedder, timer: dict) -> Iterator[dict]:
    """Chunks of ``documents`` (``(corpus index, text)`` pairs) with their vectors, in batches of
    ``cfg.batch_size`` rows cut across documents (``tokens``, ``continuation``, ``doc_ids``,
    ``chunk_index``, ``vectors (b, dim)``). The embedder sees the same batches whatever the shard
    size, so the vectors do not depend on it; ``timer["embed"]`` accumulates embedding seconds."""
    pad = tokenizer.pad_id
    ids = [i for i, _ in documents]
    pending: dict[str, list] = {"tokens": [], "continuation": [], "doc_ids": [], "chunk_index": []}
    held = 0

    def embed(rows: int) -> dict:
        nonlocal held
        batch = {name: np.concatenate(parts) for name, parts in pending.items()}
        out = {name: a[:rows] for name, a in batch.items()}
        for name, a in batch.items():
            pending[name] = [a[rows:]]
        held -= rows
        start = time.perf_counter()
        out["vectors"] = embedder.embed([tokenizer.decode(c[c != pad]) for c in out["tokens"]])
        timer["embed"] += time.perf_counter() - start
        return out

    encoded = (tokenizer.encode(text) for _, text in documents)
    for position, chunks, continuation in iter_document_chunks(encoded, cfg.chunk_len, pad):
        # Token ids are stored as int32 (vocabularies up to 2^31): half of int64 on disk, which
        # at the paper's 1.9e10 chunks is terabytes. Readers get int64 (neighbour_tokens).
        pending["tokens"].append(chunks.astype(TOKEN_DTYPE))
        pending["continuation"].append(continuation.astype(TOKEN_DTYPE))
        pending["doc_ids"].append(np.full(len(chunks), ids[position], dtype=np.int64))
        pending["chunk_index"].append(np.arange(len(chunks), dtype=np.int64))
        held += len(chunks)
        while held >= cfg.batch_size:
            yield embed(cfg.batch_size)
    if held:
        yield embed(held)


def build_database(cfg: DatabaseConfig, progress: bool = True) -> dict:
    """Build the database of ``cfg`` under ``cfg.out_dir``, streamed; returns the report (plain data).

    1. chunk and embed the documents in batches, writing every ``shard_size`` chunks as shards
       (``shards/``: ``tokens``, ``continuation``, ``doc_ids``, ``chunk_index`` and ``vectors``, float32
       ``(s, dim)``; the vectors are deleted at the end unless ``keep_vectors``);
    2. train the index on ``train_size`` vectors drawn with ``seed`` from the memory-mapped shards,
       then fill it shard by shard;
    3. recall@k of the index against exact search (itself over the shards) on a seeded sample;
    4. the neighbours of every chunk, one shard of queries at a time, into the Arrow table.

    At most one shard of vectors (plus the index and the document id of every chunk) is in memory.
    """
    import datasets
    from datasets.arrow_writer import ArrowWriter

    from nvrepro.core.data.corpus import load_corpus, split_indices
    from nvrepro.core.data.tokenizers import build_tokenizer
    from nvrepro.core.retrieval.embedder import SentenceEmbedder

    t0 = time.perf_counter()
    out = _database_dir(cfg.out_dir)
    for part in ("shards", "neighbours"):  # a rebuild must not read a previous build's shards
        shutil.rmtree(out / part, ignore_errors=True)
    docs = load_corpus(cfg.corpus, cfg.paths, max_documents=cfg.max_documents)
    # Chunks keep the corpus index of their document, so held-out documents are never ids here.
    in_db, heldout = split_indices(len(docs), cfg.heldout_fraction, cfg.seed)
    tokenizer = build_tokenizer(cfg.tokenizer, [docs[i] for i in in_db])
    embedder = SentenceEmbedder(cfg.embedder_dir)
    timer = {"embed": 0.0}
    documents = tqdm([(i, docs[i]) for i in in_db], desc="chunk+embed", unit="doc", disable=not progress,
                     mininterval=1.0)
    batches = _embedded_batches(cfg, documents, tokenizer, embedder, timer)
    shard_sizes = write_shards(out / "shards", batches, cfg.shard_size)
    vectors, doc_ids = ShardedArray(out / "shards", "vectors"), ShardedArray(out / "shards", "doc_ids").load()
    n = len(vectors)
    t_embed = time.perf_counter()

    index = new_index(embedder.dim, cfg.factory)
    if not index.is_trained:
        index.train(vectors.take(training_rows(n, cfg.train_size, cfg.seed)))
    t_train = time.perf_counter()
    fill_index(index, (rows for _, rows in vectors.shards()), desc=f"index {cfg.factory}", total=len(shard_sizes),
               progress=progress)
    t_index = time.perf_counter()

    sample = np.random.default_rng(cfg.seed).choice(n, min(cfg.recall_queries, n), replace=False)
    k = min(cfg.recall_k, n)
    queries = vectors.take(sample)
    exact = exact_search_shards(vectors.shards(), queries, k)[1]
    recall = recall_at_k(search(index, queries, k, cfg.nprobe)[1], exact, k)
    t_recall = time.perf_counter()

    features = datasets.Features({"query": datasets.Value("int64"),
                                  "neighbours": datasets.Sequence(datasets.Value("int64")),
                                  "scores": datasets.Sequence(datasets.Value("float32"))})
    missing = 0
    scratch = out / "neighbours.arrow"
    with ArrowWriter(features=features, path=str(scratch)) as writer:
        for offset, rows in tqdm(vectors.shards(), desc="neighbours", total=len(shard_sizes), disable=not progress,
                                 mininterval=1.0, unit="shard"):
            for start in range(0, len(rows), cfg.batch_size):
                block = np.asarray(rows[start:start + cfg.batch_size])
                query = np.arange(offset + start, offset + start + len(block))
                kept, scores = neighbours_of(index, block, doc_ids[query], doc_ids, cfg.k, extra=cfg.extra,
                                             nprobe=cfg.nprobe)
                missing += int((kept < 0).sum())
                writer.write_batch({"query": query.tolist(), "neighbours": kept.tolist(),
                                    "scores": scores.tolist()})
        writer.finalize()
    with datasets_progress(progress):
        datasets.Dataset.from_file(str(scratch)).save_to_disk(str(out / "neighbours"))
    scratch.unlink()
    t_neighbours = time.perf_counter()

    save_index(index, out / "chunks.faiss", IndexInfo(cfg.factory, embedder.dim, "ip", embedder.name, n))
    if not cfg.keep_vectors:
        del vectors
        for path in (out / "shards").glob("vectors_*.npy"):
            path.unlink()
    report = {
        "documents": len(in_db), "heldout_documents": heldout, "chunks": n, "chunk_len": cfg.chunk_len,
        "embedder": embedder.name, "dim": embedder.dim,
        "embed_chunks_per_second": n / max(timer["embed"], 1e-9),
        "index": cfg.factory, f"recall@{k}": recall, "recall_queries": len(sample),
        "neighbours_per_chunk": cfg.k, "missing_neighbours": missing,
        "shards": len(shard_sizes), "shard_size": cfg.shard_size,
        "seconds": {"chunk_and_embed": t_embed - t0, "embed": timer["embed"], "train": t_train - t_embed,
                    "fill": t_index - t_train, "index": t_index - t_embed, "recall": t_recall - t_index,
                    "neighbours": t_neighbours - t_recall, "recall_and_neighbours": t_neighbours - t_index,
                    "total": time.perf_counter() - t0},
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
        vectors = self.embedder().embed(list(texts))
        if query_doc_ids is None:
            return search(self.index, vectors, k, self.config.nprobe if nprobe is None else nprobe)[::-1]
        extra = self.config.extra if extra is None else extra
        nprobe = self.config.nprobe if nprobe is None else nprobe
        return neighbours_of(self.index, vectors, np.asarray(query_doc_ids), self.chunks.doc_ids, k,
                             extra=extra, nprobe=nprobe)

    def vectors(self) -> ShardedArray:
        """The chunk vectors ``(n, dim)``, memory-mapped from the shards (``keep_vectors``)."""
        try:
            return ShardedArray(self.path / "shards", "vectors")
        except FileNotFoundError:
            raise ConfigError(f"database: {self.path / 'shards'} holds no vectors; build with keep_vectors: true") from None

    def neighbour_tokens(self, rows: np.ndarray, pad_id: int) -> np.ndarray:
        """Token ids ``(*rows.shape, 2 m)`` int64 (chunk then continuation) of database ``rows`` of
        any shape; a ``-1`` row is all ``pad_id``."""
        rows = np.asarray(rows)
        flat = rows.reshape(-1)
        out = self.chunks.neighbour_tokens(np.where(flat >= 0, flat, 0)).astype(np.int64)
        out[flat < 0] = pad_id
        return out.reshape(*rows.shape, out.shape[-1])


def open_database(out_dir: str | Path) -> Database:
    """The database that :func:`build_database` wrote under ``out_dir`` (relative: under the
    repository root). A missing part raises ``ConfigError`` naming the file."""
    import datasets

    from nvrepro.core.retrieval.index import load_index

    path = _database_dir(out_dir)
    for name in ("report.json", "shards", "neighbours"):
        if not (path / name).exists():
            raise ConfigError(f"database: {path / name} does not exist; build it with "
                              "nvrepro build-db --config FILE")
    report = json.loads((path / "report.json").read_text())
    cfg = dataclass_from_dict(DatabaseConfig, report["config"], "database")
    chunks = ChunkTable(*(ShardedArray(path / "shards", name).load()
                          for name in ("tokens", "continuation", "doc_ids", "chunk_index")))
    index, info = load_index(path / "chunks.faiss")
    if info.count != len(chunks):
        raise ConfigError(f"database: {path / 'chunks.faiss'} holds {info.count} vectors but "
                          f"{path / 'shards'} {len(chunks)} chunks")
    table = datasets.load_from_disk(str(path / "neighbours")).with_format("numpy")
    return Database(chunks, index, info, np.asarray(table["neighbours"], dtype=np.int64),
                    np.asarray(table["scores"], dtype=np.float32), report, cfg, path)


def estimate_config(cfg: DatabaseConfig, chunks: int | None = None) -> dict:
    """:func:`~.estimate.estimate` for ``cfg``: ``chunks`` or ``ceil(corpus_tokens / chunk_len)``
    chunks; the dimension from ``embedder_dim`` or else the embedder itself (loaded)."""
    from nvrepro.core.retrieval.estimate import estimate

    if chunks is None:
        if cfg.corpus_tokens is None:
            raise ConfigError("corpus_tokens: needed for --estimate (or pass --chunks N)")
        chunks = -(-cfg.corpus_tokens // cfg.chunk_len)
    dim = cfg.embedder_dim
    if dim is None:
        from nvrepro.core.retrieval.embedder import SentenceEmbedder

        dim = SentenceEmbedder(cfg.embedder_dir).dim
    return estimate(cfg, chunks, dim)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nvrepro build-db", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a YAML with a `database` section (configs/retro/)")
    parser.add_argument("--max-documents", type=int, default=None, help="keep the first N documents")
    parser.add_argument("--out-dir", default=None, help="where to write the database")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--estimate", action="store_true",
                        help="print the disk and memory the database needs; build nothing")
    parser.add_argument("--chunks", type=int, default=None,
                        help="with --estimate: the number of chunks (default: corpus_tokens / chunk_len)")
    args = parser.parse_args(argv)
    try:
        cfg = load_database_config(args.config, max_documents=args.max_documents, out_dir=args.out_dir)
        if args.estimate:
            print(format_estimate(estimate_config(cfg, args.chunks)))
            return 0
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
