"""Approximate faiss indexes against exact search: queries/s, speed-up and recall@k, side by side.

RETRO searches billions of chunks with an approximate index (``OPQ32_64,IVF65536_HNSW8,PQ32`` in
the study, arXiv:2304.06762): exact search would read every vector for every query. What the
approximation buys (speed) and costs (recall against exact search) is measured here on one set of
vectors, with the same queries for every index:

* ``IVF{nlist},Flat``: vectors in ``nlist`` k-means lists, ``nprobe`` of them searched exactly;
* ``IVF{nlist},PQ{M}``: the same lists, vectors compressed to ``M``-byte product-quantizer codes;
* ``HNSW32``: a navigable small-world graph over the full vectors;
* ``OPQ{M}_{d'},IVF{nlist}_HNSW8,PQ{M}``: the paper's form, scaled down (a learned rotation to
  ``d'`` dims, an HNSW graph over the IVF centroids, PQ codes).

``nlist`` follows the size (a power of two <= min(4 sqrt(n), n / 39): faiss wants 39 training
vectors per list), as does the PQ code width (8 bits at >= 256 x 39 training vectors, fewer below).
:func:`compare_indexes` works on any vectors (the notebook uses a database's own);
:func:`clustered_unit_vectors` makes seeded synthetic ones for ``nvrepro bench --only retrieval``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from nvrepro.core.retrieval.index import build_index


def clustered_unit_vectors(n: int, dim: int, *, clusters: int = 256, spread: float = 0.5,
                           seed: int = 0) -> np.ndarray:
    """``(n, dim)`` float32 unit vectors: ``clusters`` random unit centres plus Gaussian noise of
    ``spread`` (per-dimension scale ``spread / sqrt(dim)``), renormalised; seeded."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(clusters, size=n)] + rng.standard_normal((n, dim)) * spread / math.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def scaled_settings(n: int) -> dict:
    """``nlist`` and PQ ``bits`` for ``n`` vectors (module docstring)."""
    nlist = 2 ** max(0, int(math.log2(max(1.0, min(4 * math.sqrt(n), n / 39)))))
    bits = max(1, min(8, int(math.log2(max(2.0, n / 39)))))
    return {"nlist": nlist, "bits": bits}


def default_indexes(n: int, dim: int) -> dict[str, tuple[str, dict]]:
    """``{label: (factory, search parameters)}`` of the compared indexes for ``n`` vectors of ``dim``
    (``nprobe`` = nlist / 16 for the IVF ones, ``efSearch`` 64 for HNSW)."""
    s = scaled_settings(n)
    nlist, bits = s["nlist"], s["bits"]
    m = 32 if dim % 32 == 0 else 8
    pq = f"PQ{m}" + ("" if bits == 8 else f"x{bits}")
    nprobe = {"nprobe": max(1, nlist // 16)}
    return {
        "Flat (exact)": ("Flat", {}),
        "IVF-Flat": (f"IVF{nlist},Flat", nprobe),
        f"IVF-PQ{m}": (f"IVF{nlist},{pq}", nprobe),
        "HNSW32": ("HNSW32", {"efSearch": 64}),
        "OPQ+IVF-HNSW+PQ (paper form)": (f"OPQ{m}_64,IVF{nlist}_HNSW8,{pq}", nprobe),
    }


def per_query_recall(found: np.ndarray, exact: np.ndarray, k: int) -> np.ndarray:
    """``(q,)``: the share of each query's exact top-``k`` that ``found`` has in its top ``k``."""
    return np.array([len(set(f[:k]) & set(e[:k]) - {-1}) / k for f, e in zip(found, exact)])


def compare_indexes(base: np.ndarray, queries: np.ndarray, indexes: dict[str, tuple[str, dict]], *, k: int = 10,
                    repeats: int = 3, train_size: int | None = 50_000, seed: int = 0) -> list[dict]:
    """Build every index of ``indexes`` (:func:`default_indexes`' form; one must be ``"Flat"``) over
    ``base (n, d)`` and search ``queries (q, d)`` for ``k`` neighbours ``repeats`` times, rounds
    interleaved. One dict per index: ``label``, ``factory``, ``params``, ``build_seconds``,
    ``search_seconds`` (each repeat), ``queries_per_second`` (median), ``speedup`` (Flat's median
    time / this one's), ``recall`` (mean recall@k against Flat) and ``per_query_recall (q,)``."""
    import faiss

    built, rows = {}, []
    for label, (factory, params) in indexes.items():
        start = time.perf_counter()
        index = build_index(base, factory, train_size=train_size, seed=seed)
        for name, value in params.items():
            faiss.ParameterSpace().set_index_parameter(index, name, value)
        built[label] = index
        rows.append({"label": label, "factory": factory, "params": params,
                     "build_seconds": time.perf_counter() - start, "search_seconds": []})
    flat = next((r["label"] for r in rows if r["factory"] == "Flat"), None)
    if flat is None:
        raise ValueError("indexes: include the exact 'Flat' index, the reference for recall and speed-up")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    found = {}
    for _ in range(repeats):
        for row in rows:
            start = time.perf_counter()
            found[row["label"]] = built[row["label"]].search(queries, k)[1]
            row["search_seconds"].append(time.perf_counter() - start)
    reference = float(np.median(next(r for r in rows if r["label"] == flat)["search_seconds"]))
    for row in rows:
        median = float(np.median(row["search_seconds"]))
        recall = per_query_recall(found[row["label"]], found[flat], k)
        row.update(queries_per_second=len(queries) / median, speedup=reference / median,
                   recall=float(recall.mean()), per_query_recall=recall.tolist())
    return rows


def run(n: int = 100_000, dim: int = 384, n_queries: int = 1000, *, k: int = 10, repeats: int = 3,
        seed: int = 0, labels: list[str] | None = None) -> dict:
    """:func:`compare_indexes` on :func:`clustered_unit_vectors` (``n`` base vectors and
    ``n_queries`` held-out queries from the same clusters), for the :func:`default_indexes` named
    in ``labels`` (default: all): ``{"n", "dim", "queries", "k", "data", "rows"}``."""
    x = clustered_unit_vectors(n + n_queries, dim, seed=seed)
    indexes = default_indexes(n, dim)
    if labels is not None:
        indexes = {label: indexes[label] for label in labels}
    rows = compare_indexes(x[:n], x[n:], indexes, k=k, repeats=repeats, seed=seed)
    return {"n": n, "dim": dim, "queries": n_queries, "k": k, "rows": rows,
            "data": f"synthetic: {n:,} clustered unit vectors of dimension {dim} (seed {seed}), not text embeddings"}
