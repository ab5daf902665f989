"""Notebook 01's claim on hand-made measurements, and its exercise checkers."""

import numpy as np

from nvrepro.core.retrieval.chunks import exclude_same_document
from nvrepro.retro import database_experiment as experiment
from nvrepro.retro.database_exercises import check_chunk_count, check_exclusion, check_recall_prediction


def metrics(recall, ivf_seconds, flat_seconds=(1.0, 1.1, 0.9, 1.0, 1.05)):
    rows = [{"label": "Flat (exact)", "factory": "Flat", "recall": 1.0, "per_query_recall": [1.0] * 50,
             "search_seconds": list(flat_seconds)},
            {"label": "IVF-Flat", "factory": "IVF64,Flat", "recall": float(np.mean(recall)),
             "per_query_recall": list(recall), "search_seconds": list(ivf_seconds)}]
    return {"indexes": rows, "k": 10}


def test_claim_needs_both_recall_and_speed():
    rng = np.random.default_rng(0)
    high = np.clip(rng.normal(0.97, 0.03, 50), 0, 1)
    fast, slow = [0.2, 0.21, 0.19, 0.2, 0.22], [0.9, 1.0, 0.95, 1.1, 0.92]
    assert experiment.APPROXIMATE.judge(metrics(high, fast)).held is True
    assert experiment.APPROXIMATE.judge(metrics(high, slow)).held is False  # not twice as fast
    assert experiment.APPROXIMATE.judge(metrics(high * 0.7, fast)).held is False  # recall below 0.9


def test_exercise_checkers(capsys):
    assert check_chunk_count(16).ok is True and check_chunk_count(15).ok is False and check_chunk_count(None).ok is None
    assert check_exclusion(exclude_same_document).ok is True

    def keeps_own_document(candidates, query_doc_ids, chunk_doc_ids, k):
        out = np.full((len(candidates), k), -1)
        for i, row in enumerate(candidates):
            kept = [c for c in row if c >= 0][:k]
            out[i, :len(kept)] = kept
        return out

    assert check_exclusion(keeps_own_document).ok is False

    def unfinished(*args):
        raise NotImplementedError

    assert check_exclusion(unfinished).ok is None
    m = metrics([0.5] * 50, [0.2] * 5)
    assert check_recall_prediction("IVF-Flat", m).ok is True and check_recall_prediction("Flat (exact)", m).ok is False
