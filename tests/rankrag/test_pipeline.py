"""The RankRAG pipeline: relevance as a softmax over two logits (checked row by row, unpadded),
order invariance, top-k ties, and errors."""

import math

import numpy as np
import pytest
import torch

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.core.tooling.validation import ConfigError
from nvrepro.rankrag.data import label_token_ids
from nvrepro.rankrag.pipeline import RankRAGPipeline, relevance_scores, top_k
from nvrepro.rankrag.prompts import ranking_question, render_prompt


class FixedRetriever:
    """Returns the same passages for every question, in an order given at construction."""

    def __init__(self, passages, order):
        self.passages, self.order = list(passages), list(order)

    def search(self, questions, n):
        ids = np.array([self.order[:n]] * len(questions), dtype=np.int64)
        return ids, np.linspace(1.0, 0.5, n, dtype=np.float32)[None].repeat(len(questions), 0)

    def texts(self, ids):
        return [self.passages[int(i)] for i in ids]


def test_relevance_is_the_softmax_of_the_true_and_false_logits(small_world, small_tokenizer, tiny_model):
    tok = small_tokenizer
    true_id, false_id = label_token_ids(tok)
    questions = [q.text for q in small_world.questions["test"][:5]]
    passages = [p.text for p in small_world.passages[:5]]
    got = relevance_scores(tiny_model, tok, questions, passages, batch_size=2)  # padded batches
    for q, p, score in zip(questions, passages, got):
        ids = torch.tensor([tok.encode(render_prompt(ranking_question(q), [p]))])
        with torch.no_grad():
            z = tiny_model(input_ids=ids)[0, -1].double()
        zt, zf = float(z[true_id]), float(z[false_id])
        assert score == pytest.approx(math.exp(zt) / (math.exp(zt) + math.exp(zf)), abs=1e-5)


def test_output_depends_on_scores_not_on_retrieval_order(small_world, small_tokenizer, tiny_model):
    passages = [p.text for p in small_world.passages[:8]]
    questions = [q.text for q in small_world.questions["test"][:3]]
    runs = []
    for order in ([0, 1, 2, 3, 4, 5, 6, 7], [7, 3, 5, 0, 6, 2, 4, 1]):
        pipe = RankRAGPipeline(FixedRetriever(passages, order), small_tokenizer, generator=tiny_model,
                               reranker=tiny_model, n=8, k=3, max_new_tokens=4)
        runs.append(pipe.run(questions))
    assert np.array_equal(runs[0].kept, runs[1].kept)
    assert runs[0].answers == runs[1].answers
    by_id = [dict(zip(r.retrieved[0], r.relevance[0])) for r in runs]
    assert all(by_id[0][i] == pytest.approx(by_id[1][i], abs=1e-6) for i in range(8))


def test_without_a_reranker_the_retriever_order_is_kept(small_world, small_tokenizer, tiny_model):
    passages = [p.text for p in small_world.passages[:6]]
    pipe = RankRAGPipeline(FixedRetriever(passages, [4, 2, 5, 0, 1, 3]), small_tokenizer, generator=tiny_model,
                           n=6, k=2)
    out = pipe.run(["Who?"], answer=False)
    assert out.kept.tolist() == [[4, 2]] and np.isnan(out.relevance).all()


def test_top_k_breaks_ties_by_passage_id_and_skips_missing():
    ids = np.array([[9, 3, 5, -1]])
    scores = np.array([[0.5, 0.5, 0.9, 1.0]])
    assert top_k(ids, scores, 3).tolist() == [[5, 3, 9]]


def test_errors(small_world, small_tokenizer, tiny_model):
    retriever = FixedRetriever([p.text for p in small_world.passages[:4]], [0, 1, 2, 3])
    with pytest.raises(ConfigError, match="k"):
        RankRAGPipeline(retriever, small_tokenizer, tiny_model, tiny_model, n=2, k=3)
    with pytest.raises(ConfigError, match="tokenizer"):
        RankRAGPipeline(retriever, ByteTokenizer(), tiny_model, tiny_model, n=4, k=2)
    with pytest.raises(ConfigError, match="k"):
        top_k(np.array([[1, 2]]), np.array([[0.1, 0.2]]), 3)
    with pytest.raises(ValueError, match="questions, passages"):
        relevance_scores(tiny_model, small_tokenizer, ["a"], [], batch_size=2)
