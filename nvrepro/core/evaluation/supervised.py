"""Next-token loss and accuracy over the supervised positions of labelled batches.

The label convention is the data package's: ``labels[b, t]`` is the target of position ``t``
(already shifted), ``-100`` where nothing is supervised. One pass gives the summed negative log
likelihood, the argmax hits and the number of supervised positions, so callers never average
averages of unequal batches:

* :func:`supervised_scores` -> :class:`SupervisedScores` (loss, accuracy with a Wilson interval,
  optional agreement with a reference model's argmax, counts);
* :func:`position_losses` -> the mean loss at each position of equal-length blocks ``(L,)``
  (loss-by-position curves);
* :func:`answer_loss` -> the teacher-forced loss of answer tokens after their prompts.

``model`` is anything mapping keyword inputs to logits ``(b, l, V)``; ``inputs`` maps a batch to
those keyword inputs (default: ``{"input_ids": batch["input_ids"]}``), the same hook the
LightningModule base uses, so a model that takes ``doc_ids`` or image embeddings evaluates alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F

from nvrepro.core.evaluation.modes import eval_mode
from nvrepro.core.tooling.intervals import Estimate, wilson

IGNORE_INDEX = -100


def ids_only(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The default batch -> model inputs map: token ids only."""
    return {"input_ids": batch["input_ids"]}


def device_of(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (where its inputs must go)."""
    return next(model.parameters()).device


@dataclass(frozen=True)
class SupervisedScores:
    """Totals over supervised positions: ``nll_sum``, ``correct``, ``agree`` (hits against the
    reference predictions, if given) and ``count``; ``loss`` and ``accuracy`` derive from them."""

    nll_sum: float
    correct: int
    count: int
    agree: int | None = None

    @property
    def loss(self) -> float:
        """Mean cross-entropy (nats per supervised token)."""
        return self.nll_sum / self.count

    @property
    def accuracy(self) -> Estimate:
        """Share of supervised positions where the argmax is the label, with Wilson's interval
        (positions counted as independent trials; for per-example intervals pool per example)."""
        return wilson(self.correct, self.count)

    @property
    def agreement(self) -> Estimate | None:
        return None if self.agree is None else wilson(self.agree, self.count)

    def to_dict(self) -> dict[str, Any]:
        out = {"loss": self.loss, "acc": self.correct / self.count, "correct": self.correct,
               "count": self.count, "acc_interval": self.accuracy.to_dict()}
        if self.agree is not None:
            out["agreement"] = self.agree / self.count
        return out


@torch.no_grad()
def supervised_scores(model: torch.nn.Module, batches: Iterable[Mapping[str, Any]], *,
                      reference: Sequence[torch.Tensor] | None = None,
                      inputs: Callable[[Mapping[str, Any]], dict] = ids_only) -> SupervisedScores:
    """Loss and argmax accuracy of ``model`` over the supervised positions of ``batches``.

    Each batch holds ``labels`` ``(b, l)`` and whatever ``inputs(batch)`` needs (default
    ``input_ids`` ``(b, l)``). ``reference``: one ``(b, l)`` prediction tensor per batch (e.g.
    a parent model's argmax, :func:`argmax_predictions`) to count agreement with. Runs under
    :func:`eval_mode`. Raises ``ValueError`` when no position is supervised.
    """
    nll, correct, agree, count = 0.0, 0, 0, 0
    device = device_of(model)
    with eval_mode(model):
        for k, batch in enumerate(batches):
            kwargs = {n: v.to(device) if torch.is_tensor(v) else v for n, v in inputs(batch).items()}
            logits = model(**kwargs).float()
            labels = batch["labels"].to(device)
            mask = labels != IGNORE_INDEX
            pred = logits.argmax(-1)
            nll += F.cross_entropy(logits[mask], labels[mask], reduction="sum").item()
            correct += int((pred[mask] == labels[mask]).sum())
            if reference is not None:
                agree += int((pred[mask] == reference[k].to(device)[mask]).sum())
            count += int(mask.sum())
    if count == 0:
        raise ValueError("batches: no supervised positions (labels != -100) to evaluate")
    return SupervisedScores(nll, correct, count, agree if reference is not None else None)


@torch.no_grad()
def argmax_predictions(model: torch.nn.Module, batches: Iterable[Mapping[str, Any]], *,
                       inputs: Callable[[Mapping[str, Any]], dict] = ids_only) -> list[torch.Tensor]:
    """The argmax next-token prediction ``(b, l)`` of ``model`` for each batch (on CPU)."""
    device = device_of(model)
    with eval_mode(model):
        return [model(**{n: v.to(device) if torch.is_tensor(v) else v
                         for n, v in inputs(b).items()}).argmax(-1).cpu() for b in batches]


@torch.no_grad()
def position_losses(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                    batch_size: int = 1) -> torch.Tensor:
    """Mean cross-entropy at each position over equal-length blocks: ``input_ids``, ``labels``
    ``(n, L)`` -> ``(L,)`` (every position must be supervised in every block)."""
    if input_ids.shape != labels.shape or input_ids.ndim != 2 or len(input_ids) == 0:
        raise ValueError(f"input_ids, labels: need equal (n >= 1, L) shapes, got "
                         f"{tuple(input_ids.shape)} and {tuple(labels.shape)}")
    if bool((labels == IGNORE_INDEX).any()):
        raise ValueError("labels: every position must be supervised for a per-position loss")
    device = device_of(model)
    total = torch.zeros(input_ids.shape[1], dtype=torch.float64)
    with eval_mode(model):
        for i in range(0, len(input_ids), batch_size):
            x, y = input_ids[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
            logits = model(input_ids=x).float()
            loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")  # (b, L)
            total += loss.sum(0).double().cpu()
    return (total / len(input_ids)).float()


@torch.no_grad()
def answer_loss(model: torch.nn.Module, prompts: Sequence[Sequence[int]],
                answers: Sequence[Sequence[int]]) -> float:
    """Mean teacher-forced cross-entropy of each ``answers[i]`` (token ids) after ``prompts[i]``,
    per answer token, pooled over all examples (a smooth measure where exact match is all or
    nothing). Examples of equal total length run as one batch."""
    batches = teacher_forced_batches(prompts, answers)
    return supervised_scores(model, batches).loss


def teacher_forced_batches(prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]]
                           ) -> list[dict[str, torch.Tensor]]:
    """``prompt + answer`` rows grouped by length into ``{"input_ids", "labels"}`` batches whose
    labels supervise only the answer tokens (shifted convention: position ``t`` predicts ``t + 1``)."""
    if len(prompts) != len(answers):
        raise ValueError(f"prompts, answers: lengths differ ({len(prompts)} vs {len(answers)})")
    groups: dict[int, list[tuple[list[int], list[int]]]] = {}
    for i, (p, a) in enumerate(zip(prompts, answers)):
        if len(p) == 0 or len(a) == 0:
            raise ValueError(f"prompts[{i}], answers[{i}]: need a non-empty prompt and answer")
        groups.setdefault(len(p) + len(a), []).append((list(p), list(a)))
    batches = []
    for _, rows in sorted(groups.items()):
        seqs = torch.tensor([p + a for p, a in rows])
        labels = torch.full_like(seqs, IGNORE_INDEX)
        for r, (p, a) in enumerate(rows):
            labels[r, len(p) - 1:len(p) + len(a) - 1] = torch.tensor(a)
        batches.append({"input_ids": seqs, "labels": labels})
    return batches
