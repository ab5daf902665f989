"""RankRAG inference: retrieve top-N, re-rank by the model's P("True"), keep top-k, answer.

arXiv 2407.02485 Sec. 4.2: a retriever returns the top-``N`` passages of a question; the same
instruction-tuned LLM scores each passage by the probability it gives to "True" when asked whether
the passage is relevant (the context-ranking prompt of training); the ``k`` best (``k << N``) go
into the answer prompt; the LLM generates the answer.

* :func:`relevance_scores`: ``P(True) = softmax([z_True, z_False])[0]`` from the next-token logits
  ``z`` at the end of ``render_prompt(ranking_question(q), [passage])``, for many
  (question, passage) pairs in batched forwards (rows right-padded; a causal model's logits at
  a row's last prompt token do not see the padding after it);
* :func:`top_k`: the ``k`` best passages by score, ties broken by passage id, never by the order
  the retriever returned them in;
* :func:`generate_answers`: greedy answers from the prompt with the kept passages (best first);
* :class:`RankRAGPipeline`: the three steps for a batch of questions, with optional separate
  re-ranker and generator models (the baselines: no re-ranking; a dedicated re-ranker feeding
  another generator), timing each stage.

Shapes: ``retrieved (q, N)`` passage ids, best first by the retriever; ``scores (q, N)``;
``kept (q, k)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from nvrepro.core.evaluation.generation import generate_greedy
from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.evaluation.supervised import device_of
from nvrepro.core.tooling.validation import ConfigError, require_positive_int
from nvrepro.rankrag.data import encode_prompt, label_token_ids
from nvrepro.rankrag.prompts import ranking_question

RERANKERS = ("retriever", "model")


@torch.no_grad()
def relevance_scores(model, tokenizer, questions: Sequence[str], passages: Sequence[str],
                     batch_size: int = 64) -> np.ndarray:
    """``P("True")`` of each (question, passage) pair (two sequences of equal length), ``(pairs,)``
    float64, from the ranking prompt's next-token logits restricted to the two label tokens."""
    if len(questions) != len(passages):
        raise ValueError(f"questions, passages: need one passage per question, got {len(questions)} "
                         f"and {len(passages)}")
    true_id, false_id = label_token_ids(tokenizer)
    prompts = [encode_prompt(tokenizer, ranking_question(q), [p]) for q, p in zip(questions, passages)]
    device, out = device_of(model), np.zeros(len(prompts))
    order = np.argsort([len(p) for p in prompts], kind="stable")  # similar lengths share a batch
    with eval_mode(model):
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            lengths = torch.tensor([len(prompts[i]) for i in idx], device=device)
            ids = torch.full((len(idx), int(lengths.max())), tokenizer.pad_id, dtype=torch.long, device=device)
            for row, i in enumerate(idx):
                ids[row, :len(prompts[i])] = torch.tensor(prompts[i], device=device)
            last = model(input_ids=ids)[torch.arange(len(idx), device=device), lengths - 1]  # (b, V)
            pair = torch.stack([last[:, true_id], last[:, false_id]], dim=-1).float()
            out[idx] = torch.softmax(pair, dim=-1)[:, 0].double().cpu().numpy()
    return out


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` ids of each row with the highest scores, best first; equal scores go to the lower
    id. ``ids, scores (q, N)`` (``-1`` ids are never kept) -> ``(q, k)``."""
    ids, scores = np.asarray(ids), np.asarray(scores, dtype=np.float64)
    if ids.shape != scores.shape or ids.ndim != 2:
        raise ValueError(f"ids, scores: need two (q, N) arrays of one shape, got {ids.shape} and {scores.shape}")
    require_positive_int(k, "k")
    if k > ids.shape[1]:
        raise ConfigError(f"k: cannot keep {k} of N = {ids.shape[1]} retrieved passages; need k <= N")
    keyed = np.where(ids >= 0, scores, -np.inf)
    order = np.lexsort((ids, -keyed), axis=1)[:, :k]
    return np.take_along_axis(ids, order, 1)


def generate_answers(model, tokenizer, questions: Sequence[str], contexts: Sequence[Sequence[str]],
                     max_new_tokens: int = 16, batch_size: int = 32) -> list[str]:
    """Greedy answers of ``questions`` given their context passages (in the given order), as text
    up to the first ``<eos>``, stripped."""
    prompts = [encode_prompt(tokenizer, q, c) for q, c in zip(questions, contexts)]
    outputs = generate_greedy(model, prompts, max_new_tokens, batch_size=batch_size, eos_id=tokenizer.eos_id)
    answers = []
    for ids in outputs:
        ids = ids[:ids.index(tokenizer.eos_id)] if tokenizer.eos_id in ids else ids
        answers.append(tokenizer.decode(ids).strip())
    return answers


@dataclass
class PipelineOutput:
    """What :meth:`RankRAGPipeline.run` found: ``retrieved (q, N)``, ``retriever_scores (q, N)``,
    ``relevance (q, N)`` (``P(True)``; ``nan`` when not re-ranked), ``kept (q, k)``, ``answers``
    (``None`` when only ranking) and ``seconds`` per stage (retrieve, rerank, generate)."""

    retrieved: np.ndarray
    retriever_scores: np.ndarray
    relevance: np.ndarray
    kept: np.ndarray
    answers: list[str] | None
    seconds: dict[str, float] = field(default_factory=dict)


class RankRAGPipeline:
    """Retrieve ``n`` passages per question with ``retriever`` (a
    :class:`~nvrepro.core.retrieval.passages.PassageRetriever`), re-rank them by ``reranker``'s
    P("True") (``None``: keep the retriever's order: the retriever-only baseline), keep ``k``, and
    answer with ``generator``. RankRAG is ``reranker = generator = the same model``.
    """

    def __init__(self, retriever, tokenizer, generator=None, reranker=None, *, n: int = 20, k: int = 3,
                 batch_size: int = 64, max_new_tokens: int = 16):
        require_positive_int(n, "n")
        require_positive_int(k, "k")
        if k > n:
            raise ConfigError(f"k: cannot keep {k} of n = {n} retrieved passages; need k <= n")
        if reranker is not None:
            label_token_ids(tokenizer)  # fails early when the tokenizer has no True/False tokens
        self.retriever, self.tokenizer, self.generator, self.reranker = retriever, tokenizer, generator, reranker
        self.n, self.k, self.batch_size, self.max_new_tokens = n, k, batch_size, max_new_tokens

    def rank(self, questions: Sequence[str], retrieved: np.ndarray, retriever_scores: np.ndarray) -> np.ndarray:
        """``relevance (q, N)``: the re-ranker's P(True) of each retrieved passage (``nan`` without one)."""
        if self.reranker is None:
            return np.full(retrieved.shape, np.nan)
        flat = retrieved.reshape(-1)
        valid = flat >= 0
        pairs_q = [q for q, row in zip(questions, retrieved) for i in row if i >= 0]
        scores = np.full(flat.shape, -np.inf)
        scores[valid] = relevance_scores(self.reranker, self.tokenizer, pairs_q,
                                         self.retriever.texts(flat[valid]), self.batch_size)
        return scores.reshape(retrieved.shape)

    def run(self, questions: Sequence[str], answer: bool = True, k: int | None = None) -> PipelineOutput:
        """The pipeline on ``questions``; ``k`` overrides the pipeline's ``k`` (for a sweep over it)."""
        k = self.k if k is None else k
        if k > self.n:
            raise ConfigError(f"k: cannot keep {k} of n = {self.n} retrieved passages; need k <= n")
        seconds = {}
        start = time.perf_counter()
        retrieved, retriever_scores = self.retriever.search(list(questions), self.n)
        seconds["retrieve"] = time.perf_counter() - start
        start = time.perf_counter()
        relevance = self.rank(questions, retrieved, retriever_scores)
        kept = top_k(retrieved, retriever_scores if self.reranker is None else relevance, k)
        seconds["rerank"] = time.perf_counter() - start
        answers = None
        if answer:
            if self.generator is None:
                raise ConfigError("generator: the pipeline has no model to answer with")
            start = time.perf_counter()
            contexts = [self.retriever.texts([i for i in row if i >= 0]) for row in kept]
            answers = generate_answers(self.generator, self.tokenizer, questions, contexts, self.max_new_tokens,
                                       self.batch_size)
            seconds["generate"] = time.perf_counter() - start
        return PipelineOutput(retrieved, retriever_scores, relevance, kept, answers, seconds)
