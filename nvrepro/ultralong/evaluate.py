"""Scoring long-context probes: greedy answers through the caches, exact match, grids, retention.

A *predictor* maps ``(prompt_ids, max_new_tokens)`` to the generated token ids. The model's is
:func:`greedy_predictor` (``PatternLM.generate`` at temperature 0: prefill the prompt into the KV
caches, then one token at a time); :func:`oracle_predictor` returns the true answers, so a
scorer can be checked to give exactly 100%. An example counts as correct when the first
``len(answer_ids)`` generated tokens equal the answer (token-level exact match).

* :func:`niah_grid`: passkey accuracy over context lengths x needle depths (the heatmap), with
  the number of probes answered in each cell (claims pool them into Wilson intervals);
* :func:`ruler_scores`: accuracy per RULER-style task and length, and their average (with counts);
* :func:`block_losses`: the next-token loss at every position of documents packed into blocks,
  per block (through :func:`nvrepro.core.evaluation.position_losses`), behind
  :func:`short_context_loss` (mean loss on short documents packed at the original context: did
  the extension keep short-context ability?) and :func:`loss_by_position` (the loss per position
  bin of long blocks); both keep the per-block values, the units a bootstrap interval resamples;
* :func:`context_reach`: wall time of one passkey generation per length, up to a time budget --
  the longest context this machine evaluates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from nvrepro.core.evaluation import eval_mode, position_losses
from nvrepro.core.lm.info import kv_cache_bytes
from nvrepro.core.lm.model import PatternLM
from nvrepro.core.tooling.timing import num_threads
from nvrepro.ultralong.packing import pack_with_separator
from nvrepro.ultralong.tasks import RULER_TASKS, TaskExample, make_examples, passkey

Predictor = Callable[[Sequence[int], int], Sequence[int]]


def greedy_predictor(model: PatternLM) -> Predictor:
    """Greedy decoding of ``model`` (one sequence at a time, so no padding is involved).

    Not :func:`nvrepro.core.evaluation.generate_greedy`: the probes of one grid cell share a
    length, and batching them gave the same answers on the smoke model but no speed-up on one CPU
    thread (10 passkeys at 3,072 tokens: 2.06 s one by one, 2.03-2.37 s in batches of 2 to 10).
    """

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


def count_correct(examples: Sequence[TaskExample], predict: Predictor) -> int:
    """How many of ``examples`` ``predict`` answers exactly."""
    return sum(exact_match(e, predict(e.prompt_ids, len(e.answer_ids))) for e in examples)


def score(examples: Sequence[TaskExample], predict: Predictor) -> float:
    """Fraction of ``examples`` answered exactly (0.0 for no examples)."""
    return count_correct(examples, predict) / len(examples) if examples else 0.0


def niah_grid(predict: Predictor, lengths: Sequence[int], depths: Sequence[float],
              num_samples: int = 4, seed: int = 0, tokenizer=None, progress: bool = True) -> dict:
    """Passkey accuracy ``accuracy[d][l]`` for each depth ``d`` and length ``l``.

    Sample ``k`` at (length, depth) uses the seed ``(seed, length, round(1000 * depth), k)``.
    Returns ``{"lengths", "depths", "samples" (probes per cell), "correct" (depths x lengths,
    probes answered), "accuracy" (depths x lengths), "mean", "per_length"}``.
    """
    correct = np.zeros((len(depths), len(lengths)), dtype=int)
    cells = [(i, j) for i in range(len(depths)) for j in range(len(lengths))]
    for i, j in tqdm(cells, desc="needle grid", disable=not progress, leave=False):
        L, d = lengths[j], depths[i]
        examples = [passkey(L, d, (seed, L, int(round(1000 * d)), k), tokenizer) for k in range(num_samples)]
        correct[i, j] = count_correct(examples, predict)
    acc = correct / num_samples
    return {"lengths": list(lengths), "depths": [float(d) for d in depths], "samples": num_samples,
            "correct": correct.tolist(), "accuracy": acc.tolist(), "mean": float(acc.mean()),
            "per_length": acc.mean(axis=0).tolist()}


def ruler_scores(predict: Predictor, lengths: Sequence[int], tasks: Sequence[str] = RULER_TASKS,
                 num_samples: int = 4, seed: int = 0, tokenizer=None, progress: bool = True) -> dict:
    """``{"lengths", "samples" (probes per task and length), "correct": {task: [probes answered
    per length]}, "tasks": {task: [accuracy per length]}, "average": [per length]}``."""
    correct = {task: [] for task in tasks}
    for task in tqdm(tasks, desc="RULER-style tasks", disable=not progress, leave=False):
        for L in lengths:
            correct[task].append(count_correct(make_examples(task, L, num_samples, seed, tokenizer), predict))
    accuracy = {task: [c / num_samples for c in counts] for task, counts in correct.items()}
    average = np.mean([accuracy[t] for t in tasks], axis=0).tolist() if tasks else []
    return {"lengths": list(lengths), "samples": num_samples, "correct": correct, "tasks": accuracy,
            "average": average}


def block_losses(model: PatternLM, docs: Sequence[Sequence[int]], seq_len: int, sep_id: int | None,
                 max_blocks: int) -> torch.Tensor:
    """Next-token loss ``(n, seq_len)`` of ``model`` at every position of the first
    ``n <= max_blocks`` blocks of ``seq_len`` tokens packed from ``docs`` (token id lists) with
    ``sep_id`` between them (:func:`~nvrepro.ultralong.packing.pack_with_separator`; every
    position is supervised). One block per forward, through
    :func:`nvrepro.core.evaluation.position_losses`, so each block keeps its own losses."""
    packed = pack_with_separator(docs, seq_len, sep_id)
    ids = torch.from_numpy(packed["input_ids"][:max_blocks])
    labels = torch.from_numpy(packed["labels"][:max_blocks])
    if len(ids) == 0:
        raise ValueError(f"docs: fewer than seq_len + 1 = {seq_len + 1} tokens to score")
    return torch.stack([position_losses(model, ids[b:b + 1], labels[b:b + 1]) for b in range(len(ids))])


def short_context_loss(model: PatternLM, docs: Sequence[Sequence[int]], seq_len: int,
                       sep_id: int | None, max_blocks: int = 32) -> dict:
    """Next-token loss over up to ``max_blocks`` blocks of ``seq_len`` tokens packed from ``docs``
    with ``sep_id`` between them: ``{"loss": mean over all tokens, "per_block": [mean per
    block]}`` (blocks are equally long, so ``loss`` is also the mean of ``per_block``)."""
    per_block = block_losses(model, docs, seq_len, sep_id, max_blocks).double().mean(1)
    return {"loss": per_block.mean().item(), "per_block": per_block.tolist()}


def loss_by_position(model: PatternLM, docs: Sequence[Sequence[int]], seq_len: int, sep_id: int | None,
                     num_bins: int = 8, max_blocks: int = 4) -> dict:
    """Mean next-token loss of ``model`` on up to ``max_blocks`` blocks of ``seq_len`` tokens packed
    from ``docs``, in ``num_bins`` equal bins of position: ``{"edges" (num_bins + 1), "loss"
    (num_bins, mean over blocks), "loss_per_block" (blocks x num_bins)}``. A model that cannot use
    positions past ``L`` gets worse in the late bins (YaRN Sec. 4.2's perplexity-vs-length view,
    here on whole long blocks instead of a sliding window)."""
    losses = block_losses(model, docs, seq_len, sep_id, max_blocks)  # (blocks, seq_len)
    edges = [round(k * seq_len / num_bins) for k in range(num_bins + 1)]
    per_block = torch.stack([losses[:, a:b].double().mean(1) for a, b in zip(edges, edges[1:])], dim=1)
    return {"edges": edges, "loss": per_block.mean(0).tolist(), "loss_per_block": per_block.tolist()}


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
