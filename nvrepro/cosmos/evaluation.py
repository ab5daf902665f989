"""Scoring the VLM on held-out clip questions: greedy answers, accuracy per task and category, format.

:func:`answer_questions` decodes every question greedily (temperature 0, prompts of one length batched
together) and scores the response with the same rules GRPO rewards: the answer letter against the
right one (:func:`~nvrepro.cosmos.rewards.accuracy_reward`) and the ``<think>..</think><answer>..</answer>``
format (:func:`~nvrepro.cosmos.rewards.format_reward`). A response without a readable answer is wrong.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import torch

from nvrepro.core.data.tokenizers import ByteTokenizer
from nvrepro.cosmos.data import collate_prompts
from nvrepro.cosmos.ontology import accuracy_by_category
from nvrepro.cosmos.rewards import accuracy_reward, format_reward, parse_answer
from nvrepro.cosmos.sampling import sample_responses
from nvrepro.cosmos.tasks import TASKS


@torch.no_grad()
def answer_questions(model, dataset, *, max_new_tokens: int = 96, batch_size: int = 96,
                     indices: Iterable[int] | None = None) -> list[dict]:
    """One record per item of ``dataset`` (a :class:`~nvrepro.cosmos.data.ClipQA`): ``{"index", "task",
    "response", "answer" (parsed letter or None), "right" (the correct letter), "correct", "well_formed"}``."""
    tokenizer = ByteTokenizer()
    indices = list(range(len(dataset))) if indices is None else list(indices)
    records = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch = collate_prompts([dataset[i] for i in chunk])
        responses = sample_responses(model, batch["prompts"], batch["pixel_values"], batch["image_mask"],
                                     max_new_tokens=max_new_tokens, temperature=0.0, seed=0,
                                     eos_id=tokenizer.eos_id, max_rows=batch_size)
        for i, question, response in zip(chunk, batch["questions"], responses):
            text = tokenizer.decode(response)
            records.append({"index": i, "task": question.task, "response": text, "answer": parse_answer(text),
                            "right": question.answer, "correct": bool(accuracy_reward(text, question.answer)),
                            "well_formed": bool(format_reward(text))})
    return records


def summarize(records: list[dict]) -> dict:
    """``{"accuracy": {task: mean}, "format": {task: mean}, "overall": mean accuracy, "categories": rows}``
    (``rows`` from :func:`~nvrepro.cosmos.ontology.accuracy_by_category`)."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    accuracy = {t: sum(r["correct"] for r in rs) / len(rs) for t, rs in by_task.items()}
    well_formed = {t: sum(r["well_formed"] for r in rs) / len(rs) for t, rs in by_task.items()}
    tags = [TASKS[r["task"]].tag for r in records]
    return {"accuracy": accuracy, "format": well_formed,
            "overall": sum(r["correct"] for r in records) / len(records),
            "categories": accuracy_by_category(tags, [r["correct"] for r in records])}
