"""The retrieval index: faiss, built from an ``index_factory`` string, saved with what it indexes.

RETRO's database keys are frozen embeddings of chunks searched with faiss (the study uses
``OPQ32_64,IVF65536_HNSW8,PQ32``; arXiv:2304.06762, Sec. 2). The same code builds the toy index
(``"Flat"``: exact search) and the full-scale one (any factory string; IVF/PQ indexes are trained
on a sample first). Vectors are L2-normalised sentence embeddings, so inner product is cosine
similarity (``metric="ip"``).

* :func:`build_index`: train (when the factory needs it) and fill in batches, with a progress bar;
* :func:`save_index` / :func:`load_index`: the index plus a JSON sidecar (factory, dimension,
  metric, embedder, count), checked on load with errors that name the file and the mismatch;
* :func:`search` and :func:`recall_at_k` (approximate against exact neighbours).
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


def build_index(vectors: np.ndarray, factory: str = "Flat", metric: str = "ip", *, train_size: int | None = None,
                batch_size: int = 65536, seed: int = 0, progress: bool = False):
    """A faiss index over ``vectors (n, d)`` float32, from ``index_factory(d, factory, metric)``.

    Indexes that need training (IVF, PQ, OPQ) are trained on ``train_size`` vectors drawn with
    ``seed`` (default: all); then the vectors are added in batches of ``batch_size``.
    """
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors: expected a non-empty (n, d) array, got shape {vectors.shape}")
    if metric not in METRICS:
        raise ConfigError(f"metric: must be one of {METRICS}, got {metric!r}")
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2
    try:
        index = faiss.index_factory(vectors.shape[1], factory, faiss_metric)
    except RuntimeError as err:
        raise ConfigError(f"factory: faiss cannot build {factory!r} for dimension {vectors.shape[1]} "
                          f"({str(err).strip().splitlines()[-1]})") from None
    if not index.is_trained:
        n = len(vectors) if train_size is None else min(train_size, len(vectors))
        sample = vectors[np.random.default_rng(seed).choice(len(vectors), n, replace=False)]
        index.train(sample)
    for start in tqdm(range(0, len(vectors), batch_size), desc=f"index {factory}", disable=not progress,
                      mininterval=1.0, unit="batch"):
        index.add(vectors[start:start + batch_size])
    return index


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
