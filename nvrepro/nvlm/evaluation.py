"""Scoring answers: exact match of teacher-forced argmax, and greedy answering for a look at outputs.

For a question whose answer is ``a_1 .. a_k <eos>``, greedy decoding prints exactly the answer iff the
argmax at every answer position, given the right prefix, is the right token: so :func:`exact_match` on
one teacher-forced forward pass gives greedy decoding's exact-match score without decoding
(:func:`greedy_answer` decodes, and the tests check the two agree).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import torch

from nvrepro.core.vision.tiling import normalize
from nvrepro.nvlm.data import collate


def exact_match(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(b,)`` bool: every supervised position (``labels != -100``) of the row has its label as argmax.
    ``logits (b, l, V)``, ``labels (b, l)``. A row with no supervised position counts as wrong."""
    supervised = labels != -100
    right = (logits.argmax(-1) == labels) | ~supervised
    return right.all(-1) & supervised.any(-1)


@torch.no_grad()
def score(model, dataset, batch_size: int = 64, indices: Iterable[int] | None = None) -> dict:
    """Exact match of ``model`` on ``dataset`` (a :class:`~nvrepro.nvlm.data.DocumentQA`): ``{"correct":
    (N,) bool tensor in index order, "kinds": [question kind per example], "by_kind": {kind: mean}}``."""
    model.eval()
    indices = list(range(len(dataset))) if indices is None else list(indices)
    correct, kinds = [], []
    for start in range(0, len(indices), batch_size):
        items = [dataset[i] for i in indices[start:start + batch_size]]
        batch = collate(items)
        logits = model(**{k: v for k, v in batch.items() if k not in ("labels", "is_text")})
        correct.append(exact_match(logits, batch["labels"]))
        kinds += [ex.kind for ex, _ in items]
    correct = torch.cat(correct)
    groups = defaultdict(list)
    for kind, ok in zip(kinds, correct.tolist()):
        groups[kind].append(ok)
    return {"correct": correct, "kinds": kinds, "by_kind": {k: sum(v) / len(v) for k, v in sorted(groups.items())}}


@torch.no_grad()
def greedy_answer(model, item, max_new_tokens: int = 8) -> list[int]:
    """Greedy decoding of one ``(Example, images)`` item from its prompt (everything up to ``<sep>``),
    re-running the whole sequence each step (no cache: the tag mask covers the full sequence). Returns
    the new token ids, up to and including ``<eos>``."""
    example, pixels = item
    first_target = next(t for t, label in enumerate(example.labels) if label != -100)
    prompt = example.input_ids[:first_target + 1]
    owner = example.token_tile[:first_target + 1]
    eos = example.labels[max(t for t, label in enumerate(example.labels) if label != -100)]
    out: list[int] = []
    model.eval()
    for _ in range(max_new_tokens):
        ids = torch.tensor([prompt + out])
        kwargs = {}
        if len(pixels):
            kwargs = dict(pixel_values=normalize(pixels)[None],
                          image_in_decoder=torch.tensor([example.image_in_decoder]),
                          token_tile=torch.tensor([owner + [-1] * len(out)]))
        next_id = int(model(ids, **kwargs)[0, -1].argmax())
        out.append(next_id)
        if next_id == eos:
            break
    return out
