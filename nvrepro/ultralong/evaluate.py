"""Scoring long-context probes: greedy answers through the caches, exact match, grids, retention.

A *predictor* maps ``(prompt_ids, max_new_tokens)`` to the generated token ids. The model's is
:func:`greedy_predictor` (``PatternLM.generate`` at temperature 0: prefill the prompt into the KV
caches, then one token at a time); :func:`oracle_predictor` returns the true answers, so a
scorer can be checked to give exactly 100%. An example counts as correct when the first
``len(answer_ids)`` generated tokens equal the answer (token-level exact match).

* :func:`niah_grid`: passkey accuracy over context lengths x needle depths (the heatmap);
* :func:`ruler_scores`: accuracy per RULER-style task and length, and their average;
* :func:`short_context_loss`: mean next-token loss on short documents packed at the original
  context (did the extension keep short-context ability?);
* :func:`context_reach`: wall time of one passkey generation per length, up to a time budget --
  the longest context this machine evaluates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nvrepro.ultralong.packing import pack_with_separator
from nvrepro.core.evaluation import eval_mode
from nvrepro.core.lm.info import kv_cache_bytes
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.training.module import causal_lm_loss
from nvrepro.core.tooling.timing import num_threads
from nvrepro.ultralong.tasks import RULER_TASKS, TaskExample, make_examples, passkey

Predictor = Callable[[Sequence[int], int], Sequence[int]]


def greedy_predictor(model: PatternLM) -> Predictor:
    """Greedy decoding of ``model`` (one sequence at a time, so no padding is involved)."""

    def predict(prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        device = model.embed.weight.device
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
        with eval_mode(model):
            out = model.generate(ids, max_new_tokens)
        return out[0, ids.shape[1]:].tolist()

    return predict


def oracle_predictor(examples: Sequence[TaskExample]) -> Predictor:
    """Answers every prompt of ``examples`` correctly (a scorer's sanity check)."""
    answers = {tuple(e.prompt_ids): list(e.answer_ids) for e in examples}
    return lambda prompt_ids, max_new_tokens: answers[tuple(prompt_ids)][:max_new_tokens]


def exact_match(example: TaskExample, predicted_ids: Sequence[int]) -> bool:
    """The first ``len(answer_ids)`` predicted tokens are the answer."""
    n = len(example.answer_ids)
    return [int(t) for t in predicted_ids[:n]] == list(example.answer_ids)


def score(examples: Sequence[TaskExample], predict: Predictor) -> float:
    """Fraction of ``examples`` answered exactly (0.0 for no examples)."""
    if not examples:
        return 0.0
    hits = [exact_match(e, predict(e.prompt_ids, len(e.answer_ids))) for e in examples]
    return float(np.mean(hits))


def niah_grid(predict: Predictor, lengths: Sequence[int], depths: Sequence[float],
              num_samples: int = 4, seed: int = 0, tokenizer=None, progress: bool = True) -> dict:
    """Passkey accuracy ``accuracy[d][l]`` for each depth ``d`` and length ``l``.

    Sample ``k`` at (length, depth) uses the seed ``(seed, length, round(1000 * depth), k)``.
    Returns ``{"lengths", "depths", "accuracy" (depths x lengths), "mean", "per_length"}``.
    """
    acc = np.zeros((len(depths), len(lengths)))
    cells = [(i, j) for i in range(len(depths)) for j in range(len(lengths))]
    for i, j in tqdm(cells, desc="needle grid", disable=not progress, leave=False):
        L, d = lengths[j], depths[i]
        examples = [passkey(L, d, (seed, L, int(round(1000 * d)), k), tokenizer) for k in range(num_samples)]
        acc[i, j] = score(examples, predict)
    return {"lengths": list(lengths), "depths": [float(d) for d in depths], "accuracy": acc.tolist(),
            "mean": float(acc.mean()), "per_length": acc.mean(axis=0).tolist()}


def ruler_scores(predict: Predictor, lengths: Sequence[int], tasks: Sequence[str] = RULER_TASKS,
                 num_samples: int = 4, seed: int = 0, tokenizer=None, progress: bool = True) -> dict:
    """``{"lengths", "tasks": {task: [accuracy per length]}, "average": [per length]}``."""
    out = {task: [] for task in tasks}
    for task in tqdm(tasks, desc="RULER-style tasks", disable=not progress, leave=False):
        for L in lengths:
            out[task].append(score(make_examples(task, L, num_samples, seed, tokenizer), predict))
    average = np.mean([out[t] for t in tasks], axis=0).tolist() if tasks else []
    return {"lengths": list(lengths), "tasks": out, "average": average}


@torch.no_grad()
def short_context_loss(model: PatternLM, docs: Sequence[Sequence[int]], seq_len: int,
                       sep_id: int | None, max_blocks: int = 32, batch_size: int = 8) -> float:
    """Mean next-token loss over up to ``max_blocks`` blocks of ``seq_len`` tokens packed from
    ``docs`` (token id lists) with ``sep_id`` between them."""
    packed = pack_with_separator(docs, seq_len, sep_id)
    ids = torch.from_numpy(packed["input_ids"][:max_blocks])
    labels = torch.from_numpy(packed["labels"][:max_blocks])
    if len(ids) == 0:
        raise ValueError(f"docs: fewer than seq_len + 1 = {seq_len + 1} tokens to score")
    device = model.embed.weight.device
    total, count = 0.0, 0
    with eval_mode(model):
        for k in range(0, len(ids), batch_size):
            x, y = ids[k:k + batch_size].to(device), labels[k:k + batch_size].to(device)
            total += causal_lm_loss(model(x), y).item() * y.numel()
            count += y.numel()
    return total / count


def context_reach(model: PatternLM, lengths: Sequence[int], time_budget_s: float = 60.0,
                  threads: int | None = None, tokenizer=None, progress: bool = True) -> list[dict]:
    """Time one greedy passkey answer (prefill + decode) per length, shortest first, stopping
    after the first length that takes longer than ``time_budget_s``.

    Each row: ``length``, ``seconds``, ``correct`` and the ``kv_cache_bytes`` at that length
    (fp32 cache, as on this CPU). ``model.cfg.max_seq_len`` must cover the lengths.
    """
    predict = greedy_predictor(model)
    rows = []
    with num_threads(threads):
        for L in tqdm(sorted(lengths), desc="context reach", disable=not progress, leave=False):
            ex = passkey(L, 0.5, (0, L), tokenizer)
            t0 = time.perf_counter()
            pred = predict(ex.prompt_ids, len(ex.answer_ids))
            seconds = time.perf_counter() - t0
            rows.append({"length": L, "seconds": seconds, "correct": exact_match(ex, pred),
                         "kv_cache_bytes": kv_cache_bytes(model.cfg, L, 1, bytes_per_elem=4)})
            if seconds > time_budget_s:
                break
    return rows
