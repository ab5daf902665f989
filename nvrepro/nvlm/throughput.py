"""Training throughput of NVLM-D, -X and -H, measured side by side (NVLM 1.0, Table 3: with 6 tiles +
thumbnail, X 50.6 > H 36.2 > D 28.8 samples/s, because D's decoder carries every image token).

Each architecture trains on the same forms, laid out its own way (:func:`~nvrepro.nvlm.training.test_set`
style datasets), for ``steps`` optimizer steps per round; rounds alternate between the architectures so
that a busy machine slows all of them alike. The models are copies: measuring does not change them.
"""

from __future__ import annotations

import copy
import time
from typing import Mapping, Sequence

import torch

from nvrepro.core.tooling.timing import num_threads
from nvrepro.core.training.module import causal_lm_loss
from nvrepro.nvlm.data import DocumentQA, collate


def _step(model, optimizer, batch: dict) -> None:
    logits = model(**{k: v for k, v in batch.items() if k not in ("labels", "is_text")})
    causal_lm_loss(logits, batch["labels"]).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def training_throughput(models: Mapping[str, torch.nn.Module], datasets: Mapping[str, DocumentQA], *,
                        batch_size: int, steps: int, rounds: int, threads: int = 2) -> dict[str, list[float]]:
    """``{architecture: [samples/s per round]}``: AdamW training steps (forward, backward, update) on
    batches of ``batch_size`` examples, the same examples for every architecture. One warm-up step each
    before the first round is not timed."""
    if steps < 1 or rounds < 1 or batch_size < 1:
        raise ValueError(f"steps, rounds, batch_size: must be >= 1, got {steps}, {rounds}, {batch_size}")
    if set(models) != set(datasets):
        raise ValueError(f"models, datasets: need the same architectures, got {sorted(models)} and {sorted(datasets)}")
    needed = batch_size * steps
    for name, ds in datasets.items():
        if len(ds) < needed:
            raise ValueError(f"datasets[{name!r}]: needs {needed} examples (batch_size x steps), has {len(ds)}")
    batches = {name: [collate([ds[i] for i in range(s * batch_size, (s + 1) * batch_size)]) for s in range(steps)]
               for name, ds in datasets.items()}
    trainers = {}
    for name, model in models.items():
        clone = copy.deepcopy(model).train()
        optimizer = torch.optim.AdamW([p for p in clone.parameters() if p.requires_grad], lr=1e-4)
        trainers[name] = (clone, optimizer)
    rates: dict[str, list[float]] = {name: [] for name in models}
    with num_threads(threads):
        for name, (clone, optimizer) in trainers.items():
            _step(clone, optimizer, batches[name][0])
        for _ in range(rounds):
            for name, (clone, optimizer) in trainers.items():
                start = time.perf_counter()
                for batch in batches[name]:
                    _step(clone, optimizer, batch)
                rates[name].append(needed / (time.perf_counter() - start))
    return rates


def sequence_lengths(datasets: Mapping[str, DocumentQA], count: int) -> dict[str, float]:
    """Mean decoder sequence length (tokens) over the first ``count`` examples of each dataset."""
    return {name: sum(len(ds[i][0].input_ids) for i in range(count)) / count for name, ds in datasets.items()}


def ratios(rates: Mapping[str, Sequence[float]], reference: str = "D") -> dict[str, float]:
    """Median samples/s of each architecture over ``reference``'s."""
    import statistics

    base = statistics.median(rates[reference])
    return {name: statistics.median(r) / base for name, r in rates.items()}
