"""Precomputed neighbours against an exhaustive search written out with numpy."""

import numpy as np
import pytest

pytest.importorskip("faiss")

from nvrepro.core.retrieval.index import build_index  # noqa: E402
from nvrepro.core.retrieval.neighbours import neighbour_table  # noqa: E402


def test_neighbours_are_the_exact_top_k_from_other_documents(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 12)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    docs = np.repeat(np.arange(30), 10)  # ten chunks per document
    table = neighbour_table(build_index(base), base, docs, docs, k=3, extra=12, batch_size=64)
    sims = base @ base.T
    for row in table:
        q = row["query"]
        order = [c for c in np.argsort(-sims[q], kind="stable") if docs[c] != docs[q]][:3]
        assert row["neighbours"] == [int(c) for c in order]
        np.testing.assert_allclose(row["scores"], sims[q, order], rtol=1e-5)
    table.save_to_disk(str(tmp_path / "nb"))
    import datasets

    assert datasets.load_from_disk(str(tmp_path / "nb"))[5]["neighbours"] == table[5]["neighbours"]


def test_too_few_other_document_candidates_give_minus_one():
    base = np.eye(4, dtype=np.float32)
    docs = np.array([0, 0, 0, 1])
    table = neighbour_table(build_index(base), base, docs, docs, k=2, extra=2)  # every row searched
    assert table[0]["neighbours"] == [3, -1] and np.isnan(table[0]["scores"][1])
    with pytest.raises(ValueError, match="query_doc_ids"):
        neighbour_table(build_index(base), base, docs[:2], docs)
