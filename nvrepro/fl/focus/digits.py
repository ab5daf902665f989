"""Images: scikit-learn's handwritten digits (1,797 8x8 images, shipped with scikit-learn, nothing to
download) split across agents, with two groups of benign agents and a group of label-noise agents.

Benign agents alternate between upright images and images rotated by 180 degrees (two input
distributions a single linear classifier serves worse than one model each, as in IFCA's rotated-MNIST
setting); noisy agents hold upright images whose labels were replaced, each with probability
``label_noise``, by a uniformly random digit (also on their test split: it is their distribution).
Every agent keeps its own disjoint shard of the images, ``test_share`` of it for testing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nvrepro.core.tooling.validation import require
from nvrepro.fl.focus.tasks import ClassificationTask, rng_for


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


@dataclass(frozen=True)
class DigitsTask(ClassificationTask):
    """Softmax regression (64 -> 10) on the agents' digit shards."""

    label_noise: float = 0.8
    test_share: float = 0.3

    name: ClassVar[str] = "digits"
    training: ClassVar[dict] = {"lr": 0.5, "local_steps": 5, "batch_size": 32}

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0.0 <= self.label_noise <= 1.0, "label_noise", f"must be in [0, 1], got {self.label_noise}")
        require(0.0 < self.test_share < 1.0, "test_share", f"must be in (0, 1), got {self.test_share}")
        require(self.num_agents <= 180, "num_agents", f"1,797 images allow at most 180 agents, got {self.num_agents}")

    @property
    def clean_groups(self) -> int:
        return 2

    @property
    def group_names(self) -> list[str]:
        return ["upright", "rotated"] + (["label noise"] if self.noisy_agents else [])

    def _make_data(self, agent: int, split: str):
        images, labels = _digits()
        order = rng_for(self, 0).permutation(len(labels))
        shard = np.array_split(order, self.num_agents)[agent]
        cut = int(round(len(shard) * (1 - self.test_share)))
        idx = shard[:cut] if split == "train" else shard[cut:]
        x, y = images[idx], labels[idx].copy()
        if self.group(agent) == 1:
            x = x[:, ::-1, ::-1]
        if self.is_noisy(agent):
            rng = rng_for(self, 2, agent, 0 if split == "train" else 1)
            flip = rng.random(len(y)) < self.label_noise
            y[flip] = rng.integers(0, 10, flip.sum())
        return torch.tensor(np.ascontiguousarray(x).reshape(len(idx), 64)), torch.tensor(y)

    def build_model(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(int(seed))
        return nn.Linear(64, 10)

    def fit_optimum(self, x, y) -> nn.Module:
        """scikit-learn's multinomial logistic regression (L-BFGS, its default L2 penalty ``C = 1``: the
        group's pooled shards are still small enough to overfit without one), copied into the model."""
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(max_iter=2000).fit(x.numpy(), y.numpy())
        model = nn.Linear(64, 10)
        coef = np.zeros((10, 64), dtype=np.float32)
        bias = np.full(10, -30.0, dtype=np.float32)  # a class absent from the pooled labels gets ~0 probability
        coef[fit.classes_] = fit.coef_
        bias[fit.classes_] = fit.intercept_
        with torch.no_grad():
            model.weight.copy_(torch.from_numpy(coef))
            model.bias.copy_(torch.from_numpy(bias))
        return model.eval()
