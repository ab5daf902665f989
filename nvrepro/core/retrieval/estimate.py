"""What a database of ``n`` chunks needs on disk and in memory, before anything is built.

``nvrepro build-db --config configs/retro/paper_db.yaml --estimate`` prints :func:`estimate`'s
numbers for the RETRO study's setting (``OPQ32_64,IVF65536_HNSW8,PQ32``, 64-token chunks, k = 2).
The index size follows faiss's own layout, term by term (``write_index`` stores exactly these
arrays, plus headers of a few hundred bytes):

* per vector: the code (``PQ{M}x{b}``: ``ceil(M b / 8)`` bytes, ``b = 8`` by default; ``Flat``:
  ``4 d``) and, in an IVF index, its 8-byte id in the inverted list;
* ``OPQ{M}_{d'}``: the ``d x d'`` float32 rotation; ``PQ{M}x{b}``: ``2^b`` centroids of ``d'/M``
  floats per sub-quantizer, i.e. ``2^b d' x 4`` bytes;
* ``IVF{nlist}``: ``nlist`` float32 centroids of ``d'`` dims and one 8-byte list size each;
  ``_HNSW{m}`` on the centroids adds the graph: ``2m`` neighbour slots at level 0 and ``m`` per
  higher level, a node reaching level ``l`` with probability ``m^-l``, so ``2m + m/(m-1)`` int32
  slots expected per node, plus a 4-byte level and an 8-byte offset.

Chunk tokens as ``build-db`` stores them (:mod:`.shards`): tokens and continuation, int32,
``2 m x 4`` bytes per chunk, plus 16 bytes of document id and position. The neighbour table
(Arrow): an int64 query id, ``k`` int64 rows and ``k`` float32 scores in two lists with int32
offsets: ``16 + 12 k`` bytes per chunk. Build scratch: the vector shards, ``4 d`` bytes per
chunk, deleted at the end unless ``keep_vectors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from nvrepro.core.tooling.validation import ConfigError, require_positive_int

ID_BYTES = 8  # faiss idx_t in an inverted list
TOKEN_DTYPE = np.int32  # how build-db stores token ids (any vocabulary below 2^31)
TOKEN_BYTES = np.dtype(TOKEN_DTYPE).itemsize
_FACTORY = re.compile(r"^(?:OPQ(?P<opq_m>\d+)(?:_(?P<opq_d>\d+))?,)?"
                      r"(?:(?P<ivf>IVF(?P<nlist>\d+)(?:_HNSW(?P<coarse_m>\d+))?,)(?P<code>Flat|PQ(?P<pq_m>\d+)(?:x(?P<pq_bits>\d+))?)"
                      r"|(?P<top>Flat|HNSW(?P<hnsw_m>\d+)(?:,Flat)?|PQ(?P<top_pq_m>\d+)(?:x(?P<top_pq_bits>\d+))?))$")


@dataclass(frozen=True)
class IndexLayout:
    """The parts of a factory string that set its size: input ``dim``, ``opq`` (sub-quantizers or
    ``None``) and the dimension after it (``code_dim``), ``nlist`` (IVF lists or ``None``),
    ``coarse_hnsw`` (HNSW ``m`` over the IVF centroids), ``pq`` (sub-quantizers or ``None``: flat
    float32 codes) of ``pq_bits`` bits each, ``hnsw`` (``m`` of a top-level HNSW index)."""

    dim: int
    code_dim: int
    opq: int | None = None
    nlist: int | None = None
    coarse_hnsw: int | None = None
    pq: int | None = None
    hnsw: int | None = None
    pq_bits: int = 8


def parse_factory(factory: str, dim: int) -> IndexLayout:
    """The :class:`IndexLayout` of ``factory`` for ``dim``-dimensional vectors. Understood forms:
    ``Flat``, ``PQ{M}[x{bits}]``, ``HNSW{m}``, ``[OPQ{M}[_{d'}],]IVF{n}[_HNSW{m}],{Flat|PQ{M}[x{bits}]}``."""
    require_positive_int(dim, "dim")
    match = _FACTORY.match(factory.replace(" ", ""))
    if match is None:
        raise ConfigError(f"factory: cannot estimate {factory!r}; understood: Flat, PQ<M>, HNSW<m>, "
                          "[OPQ<M>[_<d>],]IVF<n>[_HNSW<m>],Flat|PQ<M>")
    g = {k: int(v) if v and v.isdigit() else v for k, v in match.groupdict().items()}
    code_dim = g["opq_d"] or dim
    pq = g["pq_m"] or g["top_pq_m"]
    if pq and code_dim % pq:
        raise ConfigError(f"factory: PQ{pq} needs a dimension divisible by {pq}, got {code_dim}")
    return IndexLayout(dim, code_dim, g["opq_m"], g["nlist"], g["coarse_m"], pq, g["hnsw_m"],
                       g["pq_bits"] or g["top_pq_bits"] or 8)


def hnsw_bytes_per_node(m: int) -> float:
    """Expected bytes of an HNSW graph per node: ``(2m + m/(m-1))`` int32 neighbour slots, its
    level (int32) and its offset (int64); see the module docstring."""
    return 4 * (2 * m + m / (m - 1)) + 4 + 8


def index_bytes(layout: IndexLayout, n: int) -> dict[str, float]:
    """Bytes of each part of the index for ``n`` vectors: ``codes``, ``ids``, ``opq``, ``pq_codebooks``,
    ``coarse`` (IVF centroids, their graph, list sizes), ``graph`` (top-level HNSW) and ``total``."""
    code = -(-layout.pq * layout.pq_bits // 8) if layout.pq else 4 * layout.code_dim
    parts = {
        "codes": float(n * code),
        "ids": float(n * ID_BYTES) if layout.nlist else 0.0,
        "opq": float(4 * layout.dim * layout.code_dim) if layout.opq else 0.0,
        "pq_codebooks": float(4 * 2**layout.pq_bits * layout.code_dim) if layout.pq else 0.0,
        "coarse": 0.0,
        "graph": n * hnsw_bytes_per_node(layout.hnsw) if layout.hnsw else 0.0,
    }
    if layout.nlist:
        per_list = 4 * layout.code_dim + 8 + (hnsw_bytes_per_node(layout.coarse_hnsw) if layout.coarse_hnsw else 0)
        parts["coarse"] = float(layout.nlist * per_list)
    parts["total"] = sum(parts.values())
    return parts


def estimate(cfg, n_chunks: int, dim: int) -> dict:
    """Disk and memory of the database of ``cfg`` (a ``DatabaseConfig``) with ``n_chunks`` chunks
    of ``dim``-dimensional vectors, in bytes: ``index`` (its parts, :func:`index_bytes`),
    ``chunk_tokens``, ``neighbours``, ``vector_shards`` (build scratch), ``disk`` (what stays:
    index + tokens + neighbours, + vectors if kept), and ``memory``: ``search`` (the index, loaded
    whole by faiss) and ``build`` (index + training sample + one shard of vectors + the document
    id of every chunk)."""
    require_positive_int(n_chunks, "n_chunks")
    layout = parse_factory(cfg.factory, dim)
    index = index_bytes(layout, n_chunks)
    tokens = n_chunks * (2 * cfg.chunk_len * TOKEN_BYTES + 16)
    neighbours = n_chunks * (16 + 12 * cfg.k)
    vectors = 4 * dim * n_chunks
    train = min(cfg.train_size or n_chunks, n_chunks) if layout.nlist or layout.pq else 0
    build = index["total"] + 4 * dim * (train + min(cfg.shard_size, n_chunks)) + 8 * n_chunks
    return {"chunks": n_chunks, "dim": dim, "factory": cfg.factory, "layout": layout.__dict__,
            "index": index, "chunk_tokens": float(tokens), "neighbours": float(neighbours),
            "vector_shards": float(vectors),
            "disk": index["total"] + tokens + neighbours + (vectors if cfg.keep_vectors else 0),
            "memory": {"search": index["total"], "build": float(build)}}


def human(n: float) -> str:
    """Bytes in binary units (``1.5 TiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024
    raise AssertionError


def format_estimate(e: dict) -> str:
    """The estimate as printed lines."""
    i = e["index"]
    return "\n".join([
        f"{e['chunks']:,} chunks, {e['dim']}-dimensional vectors, index {e['factory']}",
        f"index: {human(i['total'])} (codes {human(i['codes'])}, ids {human(i['ids'])}, coarse quantizer "
        f"{human(i['coarse'])}, OPQ {human(i['opq'])}, PQ codebooks {human(i['pq_codebooks'])}, "
        f"HNSW graph {human(i['graph'])})",
        f"chunk tokens ({np.dtype(TOKEN_DTYPE).name}, chunk + continuation): {human(e['chunk_tokens'])}",
        f"neighbour table: {human(e['neighbours'])}",
        f"vector shards (build scratch, float32): {human(e['vector_shards'])}",
        f"disk after the build: {human(e['disk'])}",
        f"memory: search {human(e['memory']['search'])}, build {human(e['memory']['build'])}",
    ])
