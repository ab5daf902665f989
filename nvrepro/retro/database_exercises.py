"""Checkers for the exercises of notebook 01 (the retrieval database). Each prints whether the
answer holds and why, and returns a :class:`~nvrepro.core.tooling.verdicts.Check`."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from nvrepro.core.retrieval.chunks import chunk_documents, exclude_same_document
from nvrepro.core.tooling.verdicts import Check, call_student, check_number, report


def check_chunk_count(answer: int | None, length: int = 1000, chunk_len: int = 64, *, verbose: bool = True) -> Check:
    """Exercise (a): how many chunks a document of ``length`` tokens gives with ``chunk_len``
    (counted by the package's chunker on such a document)."""
    truth = len(chunk_documents([list(range(length))], chunk_len, pad_id=-1))
    return check_number(answer, truth, what="a number of chunks", verbose=verbose,
                        slips=((length // chunk_len, "the last, partial chunk is kept (padded)"),),
                        why=f"{length} tokens make {length // chunk_len} full chunks of {chunk_len} and a padded "
                            f"partial one: {truth}.")


def check_exclusion(fn: Callable | None, trials: int = 200, seed: int = 0, *, verbose: bool = True) -> Check:
    """Exercise (b): ``fn(candidates (q, k'), query_doc_ids (q,), chunk_doc_ids (n,), k) -> (q, k)``,
    the first ``k`` candidates of each query from another document (``-1`` where too few), compared
    on random cases with the package's :func:`~nvrepro.core.retrieval.chunks.exclude_same_document`."""
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        n, q, extra, k = int(rng.integers(3, 30)), int(rng.integers(1, 6)), int(rng.integers(1, 8)), int(rng.integers(1, 4))
        chunk_docs = rng.integers(0, 4, n)
        candidates = rng.integers(-1, n, (q, k + extra))
        query_docs = rng.integers(0, 4, q)
        got, failed = call_student(fn, candidates.copy(), query_docs.copy(), chunk_docs.copy(), k,
                                   name="keep_other_documents")
        if failed is not None:
            return report(failed, verbose)
        want = exclude_same_document(candidates, query_docs, chunk_docs, k)
        if np.asarray(got).shape != want.shape or not (np.asarray(got) == want).all():
            return report(Check(False, f"case {trial}: candidates {candidates.tolist()}, query documents "
                                       f"{query_docs.tolist()}, chunk documents {chunk_docs.tolist()}, k={k}: "
                                       f"expected {want.tolist()}, got {np.asarray(got).tolist()}"), verbose)
    return report(Check(True, f"{trials} random cases agree: same-document hits dropped, order kept, -1 padding."),
                  verbose)


def check_recall_prediction(prediction: str | None, result: Mapping[str, Any], *, verbose: bool = True) -> Check:
    """Exercise (c): which index type of this run had the lowest recall (its label), checked
    against the measured table."""
    if prediction is None:
        return report(Check(None, "set `prediction` to an index label of the table."), verbose)
    rows = result["indexes"]
    lowest = min(rows, key=lambda r: r["recall"])
    labels = [r["label"] for r in rows]
    if prediction not in labels:
        return report(Check(False, f"{prediction!r} is not one of {labels}."), verbose)
    return report(Check(prediction == lowest["label"],
                        f"{lowest['label']} ({lowest['factory']}) had the lowest recall@{result['k']} "
                        f"({lowest['recall']:.3f}). IVF searches only some lists, HNSW follows a graph that can "
                        "miss, and PQ codes approximate the distances themselves."), verbose)
