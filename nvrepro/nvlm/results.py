"""Per-item results over training seeds: what the notebooks' bootstrap intervals resample.

Every experiment scores each arm on the same held-out items for every seed, so its results are
``[per seed: [per item score]]``; :func:`seed_average` turns them into one score per item, which pairs up
across arms."""

from __future__ import annotations

from typing import Sequence


def seed_average(runs: Sequence[Sequence[float]]) -> list[float]:
    """Per held-out item, its score averaged over runs (``[per seed: [per item score]]``, every run over the
    same items in the same order)."""
    if not runs or len({len(r) for r in runs}) != 1:
        raise ValueError(f"runs: need one or more runs over the same items, got lengths {[len(r) for r in runs]}")
    return [sum(values) / len(values) for values in zip(*runs)]
