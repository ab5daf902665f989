"""Notebook 01 (``notebooks/retro/01_database.ipynb``): RETRO's retrieval database at toy scale.

RETRO retrieves from a database of chunks (arXiv:2304.06762, Sec. 2; Borgeaud et al. 2022): every
document is cut into chunks of ``m`` tokens, each keyed by a frozen embedding of its text, searched
with an approximate faiss index; a neighbour is the chunk and its continuation, never from the
query's own document. This notebook builds the toy database of the track (the Bible's chapters,
byte tokens, MiniLM keys; :mod:`nvrepro.core.retrieval`), shows what a chunk retrieves, and measures
what approximate search buys and costs on the database's own vectors (:data:`APPROXIMATE`).

The database is the one notebooks 02 and 03 train on: :func:`database_yaml` gives its config per
profile (the smoke profile indexes a few chapters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from nvrepro.core.retrieval.bench import compare_indexes, default_indexes
from nvrepro.core.retrieval.database import load_database_config
from nvrepro.core.tooling.claims import Claim, Judgement, all_parts, at_least_threshold, faster
from nvrepro.core.tooling.intervals import bootstrap_mean
from nvrepro.core.tooling.paths import BUILD_DIR, CONFIGS_DIR
from nvrepro.core.tooling.profiles import profile_settings
from nvrepro.core.tooling.report import table_text
from nvrepro.core.tooling.timing import num_threads

DB_YAML = CONFIGS_DIR / "retro" / "toy_db.yaml"
BUILD = BUILD_DIR / "retro"
# The bar of APPROXIMATE, set before the first run: an IVF index searching a sixteenth of its lists
# keeps 90% of exact search's top-10 and is at least twice as fast.
RECALL_BAR = 0.9
SPEEDUP_BAR = 2.0
APPROXIMATE_LABEL = "IVF-Flat"
K = 10
THREADS = 1  # searches timed on one thread: steadier on a shared machine, and the ratio is the point

# ``database``: overrides of toy_db.yaml; ``queries``: held-out chunks used as queries;
# ``repeats``: timed searches per index; ``indexes``: which of the bench's index types to compare
# (None: all, including the paper's OPQ/IVF-HNSW/PQ form); ``examples``: chunks shown with neighbours.
PROFILES = {
    "smoke": dict(database=dict(max_documents=16, heldout_fraction=0.25, out_dir="build/retro/smoke_db"),
                  queries=200, repeats=3, indexes=["Flat (exact)", "IVF-Flat", "HNSW32"], examples=2),
    "paper": dict(database={}, queries=1000, repeats=5, indexes=None, examples=4),
}


def plan(profile: str) -> dict:
    """The settings of ``profile`` (:data:`PROFILES`); a clear error for an unknown one."""
    return profile_settings(PROFILES, profile)


def database_yaml(profile: str) -> Path:
    """The database YAML of ``profile``: ``configs/retro/toy_db.yaml``, or a copy with the profile's
    overrides written under ``build/retro/`` (the data modules read a YAML path)."""
    overrides = plan(profile)["database"]
    if not overrides:
        return DB_YAML
    data = yaml.safe_load(DB_YAML.read_text())
    data["database"].update(overrides)
    path = BUILD / f"{profile}_db.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def open_database(profile: str, progress: bool = False):
    """The track's database for ``profile`` (built on first use, then reopened)."""
    from nvrepro.retro.data import open_or_build

    return open_or_build(load_database_config(database_yaml(profile)), progress=progress)


def describe_chunk(db, row: int, tokenizer, width: int = 100) -> str:
    """A chunk's text and its precomputed neighbours (document, similarity, text), as lines."""
    pad = tokenizer.pad_id

    def text(tokens) -> str:
        return tokenizer.decode(tokens[tokens != pad]).replace("\n", " ")[:width]

    doc, index = int(db.chunks.doc_ids[row]), int(db.chunks.chunk_index[row])
    lines = [f"chunk {row} (document {doc}, chunk {index}): {text(db.chunks.tokens[row])!r}"]
    for rank, (n, score) in enumerate(zip(db.neighbours[row], db.scores[row]), 1):
        if n < 0:
            lines.append(f"  {rank}. (none left after excluding document {doc})")
            continue
        tokens = db.neighbour_tokens(np.asarray([n]), pad)[0]
        lines.append(f"  {rank}. document {int(db.chunks.doc_ids[n])}, similarity {score:.3f}: {text(tokens)!r}")
    return "\n".join(lines)


def database_explorer(db, tokenizer):
    """An ipywidgets explorer: a slider over chunk rows; shows the chunk and its neighbours."""
    import ipywidgets as widgets
    from IPython.display import display

    out = widgets.Output()
    slider = widgets.IntSlider(value=0, min=0, max=len(db.chunks) - 1, description="chunk",
                               continuous_update=False, layout=widgets.Layout(width="90%"))

    def show(change=None) -> None:
        out.clear_output()
        with out:
            print(describe_chunk(db, slider.value, tokenizer))

    slider.observe(show, names="value")
    show()
    box = widgets.VBox([slider, out])
    display(box)
    return box


def run(profile: str = "smoke", seed: int = 0, progress: bool = True) -> dict:
    """Build (or open) the database, then compare index types on its vectors with held-out chunks
    as queries. Returns ``{"report" (the build's), "examples" (rows), "indexes": [per index:
    label, factory, queries_per_second, speedup, recall, per_query_recall, search_seconds, ...],
    "top1_histogram" (``edges``, ``counts`` of every chunk's top-1 similarity), "queries", "k",
    "plan", ...}``."""
    from nvrepro.retro.data import database_tokenizer, heldout_chunks

    p = plan(profile)
    db = open_database(profile, progress)
    tokenizer = database_tokenizer(db)
    held = heldout_chunks(db)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(held.chunks), min(p["queries"], len(held.chunks)), replace=False)
    texts = [tokenizer.decode(c[c != tokenizer.pad_id]) for c in held.chunks[picked]]
    queries = db.embedder().embed(texts)
    base = np.asarray(db.vectors().load(), dtype=np.float32)
    indexes = default_indexes(len(base), base.shape[1])
    if p["indexes"] is not None:
        indexes = {label: indexes[label] for label in p["indexes"]}
    with num_threads(THREADS):
        rows = compare_indexes(base, queries, indexes, k=K, repeats=p["repeats"], seed=seed)
    with_neighbour = np.flatnonzero(db.neighbours[:, 0] >= 0)
    examples = sorted(rng.choice(with_neighbour, p["examples"], replace=False).tolist())
    return {"report": db.report, "examples": examples, "indexes": rows, "k": K, "queries": len(queries),
            "top1_histogram": top1_histogram(db.scores[:, 0]), "vectors": len(base), "dim": int(base.shape[1]),
            "threads": THREADS, "plan": p, "profile": profile, "seed": seed}


def top1_histogram(scores: np.ndarray, bins: int = 40) -> dict[str, list]:
    """``{"edges" (bins + 1,), "counts" (bins,)}`` of the finite top-1 similarities: what the plot
    needs, without a number per chunk in the figure's sidecar."""
    scores = np.asarray(scores, dtype=float)
    counts, edges = np.histogram(scores[np.isfinite(scores)], bins=bins)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def index_row(metrics: Mapping[str, Any], label: str) -> Mapping[str, Any]:
    """The measurements of index ``label``."""
    return next(r for r in metrics["indexes"] if r["label"] == label)


def judge_approximate(metrics: Mapping[str, Any]) -> Judgement:
    ivf, flat = index_row(metrics, APPROXIMATE_LABEL), index_row(metrics, "Flat (exact)")
    recall = bootstrap_mean(ivf["per_query_recall"])
    return all_parts({
        "recall": at_least_threshold(recall, RECALL_BAR, f"{APPROXIMATE_LABEL} recall@{metrics['k']}"),
        "speed": faster(ivf["search_seconds"], flat["search_seconds"], f"{APPROXIMATE_LABEL} vs exact search",
                        factor=SPEEDUP_BAR),
    })


APPROXIMATE = Claim(
    "retro_approximate_search",
    "On the database's own MiniLM keys, with held-out chunks as queries, an IVF index searching a "
    "sixteenth of its lists finds at least 90% of exact search's top-10 neighbours (bootstrap over "
    "queries) and searches at least twice as fast (timed repeats, one thread): RETRO's reason for "
    "approximate search, which at the paper's scale (billions of chunks) is the only option.",
    judge_approximate)


def summary_text(metrics: Mapping[str, Any]) -> str:
    """The build report and the index comparison, as text."""
    r = metrics["report"]
    head = (f"{r['documents']:,} documents in the database ({len(r.get('heldout_documents', [])):,} held out) -> "
            f"{r['chunks']:,} chunks of {r['chunk_len']} tokens; {r['embedder']} ({r['dim']} dims) at "
            f"{r['embed_chunks_per_second']:,.0f} chunks/s; index {r['index']}; build {r['seconds']['total']:.0f} s")
    rows = {row["label"]: {"qps": row["queries_per_second"], "speedup": row["speedup"], "recall": row["recall"],
                           "build": row["build_seconds"]} for row in metrics["indexes"]}
    table = table_text(rows, [("queries/s", "qps", ",.0f"), ("speed-up", "speedup", ".2f"),
                              (f"recall@{metrics['k']}", "recall", ".3f"), ("build s", "build", ".1f")],
                       first=f"{metrics['vectors']:,} vectors", labels={}, first_width=30)
    return f"{head}\n{table}"
