"""The retrieval index: faiss, built from an ``index_factory`` string, saved with what it indexes.

RETRO's database keys are frozen embeddings of chunks searched with faiss (the study uses
``OPQ32_64,IVF65536_HNSW8,PQ32``; arXiv:2304.06762, Sec. 2). The same code builds the toy index
(``"Flat"``: exact search) and the full-scale one (any factory string; IVF/PQ indexes are trained
on a sample first). Vectors are L2-normalised sentence embeddings, so inner product is cosine
similarity (``metric="ip"``).

* :func:`build_index`: train (when the factory needs it) on a seeded sample (:func:`training_rows`)
  and fill in batches (:func:`fill_index`), with a progress bar; :func:`new_index` alone;
* :func:`save_index` / :func:`load_index`: the index plus a JSON sidecar (factory, dimension,
  metric, embedder, count), checked on load with errors that name the file and the mismatch;
* :func:`search` and :func:`recall_at_k` (approximate against exact neighbours);
  :func:`exact_search_shards`: the exact neighbours over vectors that do not fit in memory.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nvrepro.core.tooling.validation import ConfigError

METRICS = ("ip", "l2")


def _faiss():
    import faiss  # imported on use: the package is only needed where an index is built

    return faiss


@dataclass(frozen=True)
class IndexInfo:
    """What an index holds: ``factory`` string, vector ``dim``, ``metric``, the ``embedder`` that
    made the vectors, and ``count`` of vectors."""

    factory: str
    dim: int
    metric: str
    embedder: str
    count: int


def new_index(dim: int, factory: str = "Flat", metric: str = "ip"):
    """An empty faiss index ``index_factory(dim, factory, metric)``; errors name the bad field."""
    faiss = _faiss()
    if metric not in METRICS:
        raise ConfigError(f"metric: must be one of {METRICS}, got {metric!r}")
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    try:
        return faiss.index_factory(dim, factory, faiss_metric)
    except RuntimeError as err:
        raise ConfigError(f"factory: faiss cannot build {factory!r} for dimension {dim} "
                          f"({str(err).strip().splitlines()[-1]})") from None


def training_rows(n: int, train_size: int | None, seed: int) -> np.ndarray:
    """The rows ``(min(train_size, n),)`` an index is trained on: drawn without replacement with
    ``seed`` (``train_size=None``: all ``n``, in a seeded order)."""
    size = n if train_size is None else min(train_size, n)
    return np.random.default_rng(seed).choice(n, size, replace=False)


def fill_index(index, batches, *, desc: str = "index", total: int | None = None, progress: bool = False):
    """Add every ``(b, d)`` array of ``batches`` to ``index`` in order (ids continue from
    ``index.ntotal``), with a progress bar over the batches; returns ``index``."""
    for batch in tqdm(batches, desc=desc, total=total, disable=not progress, mininterval=1.0, unit="batch"):
        index.add(np.ascontiguousarray(batch, dtype=np.float32))
    return index


def build_index(vectors: np.ndarray, factory: str = "Flat", metric: str = "ip", *, train_size: int | None = None,
                batch_size: int = 65536, seed: int = 0, progress: bool = False):
    """A faiss index over ``vectors (n, d)`` float32, from ``index_factory(d, factory, metric)``.

    Indexes that need training (IVF, PQ, OPQ) are trained on ``train_size`` vectors drawn with
    ``seed`` (default: all; :func:`training_rows`); then the vectors are added in batches of
    ``batch_size``. (:func:`~nvrepro.core.retrieval.database.build_database` does the same from
    vectors in shards on disk.)
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors: expected a non-empty (n, d) array, got shape {vectors.shape}")
    index = new_index(vectors.shape[1], factory, metric)
    if not index.is_trained:
        index.train(vectors[training_rows(len(vectors), train_size, seed)])
    starts = range(0, len(vectors), batch_size)
    return fill_index(index, (vectors[s:s + batch_size] for s in starts), desc=f"index {factory}",
                      total=len(starts), progress=progress)


def exact_search_shards(shards, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-``k`` of ``queries (q, d)`` over database rows given shard by shard
    (``shards``: ``(offset, rows (s, d))`` pairs, e.g. :meth:`ShardedArray.shards`): ``(scores
    (q, k), ids (q, k))``, best first, ties broken by the lower id; only one shard in memory."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for offset, rows in shards:
        sims = queries @ np.asarray(rows, dtype=np.float32).T  # (q, s)
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        scores = np.concatenate([best_s, np.take_along_axis(sims, top, 1)], axis=1)
        ids = np.concatenate([best_i, top + offset], axis=1)
        order = np.lexsort((ids, -scores), axis=1)[:, :k]  # by score, then by id
        best_s, best_i = np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1)
    return best_s, best_i


def search(index, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(scores (q, k), ids (q, k))`` of the ``k`` nearest vectors (ids ``-1`` where fewer exist);
    ``nprobe``: IVF lists visited (more: slower, closer to exact)."""
    faiss = _faiss()
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def recall_at_k(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Share of the exact top-``k`` ids (``exact (q, >=k)``) that ``found (q, >=k)`` has among its top ``k``."""
    if len(found) != len(exact):
        raise ValueError(f"found, exact: need the same number of queries, got {len(found)} and {len(exact)}")
    hits = sum(len(set(f[:k]) & set(e[:k]) - {-1}) for f, e in zip(found, exact))
    return hits / (k * len(exact))


def save_index(index, path: str | Path, info: IndexInfo) -> Path:
    """Write the index to ``path`` and ``info`` to ``path`` + ``.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _faiss().write_index(index, str(path))
    Path(f"{path}.json").write_text(json.dumps(asdict(info), indent=2) + "\n")
    return path


def load_index(path: str | Path, *, dim: int | None = None, embedder: str | None = None):
    """``(index, IndexInfo)`` from :func:`save_index`'s files. A missing file, or an index whose
    dimension or embedder differs from what the caller expects, raises ``ConfigError`` naming the
    file and both values."""
    path = Path(path)
    meta = Path(f"{path}.json")
    for p in (path, meta):
        if not p.is_file():
            raise ConfigError(f"index: {p} does not exist; build the database first")
    info = IndexInfo(**json.loads(meta.read_text()))
    if dim is not None and info.dim != dim:
        raise ConfigError(f"index: {path} holds {info.dim}-dimensional vectors, the embedder gives {dim}")
    if embedder is not None and info.embedder != embedder:
        raise ConfigError(f"index: {path} was built with embedder {info.embedder!r}, not {embedder!r}")
    index = _faiss().read_index(str(path))
    if index.d != info.dim or index.ntotal != info.count:
        raise ConfigError(f"index: {path} does not match {meta.name} (dim {index.d} vs {info.dim}, "
                          f"count {index.ntotal} vs {info.count})")
    return index, info
