"""Synthetic linear regression with clusters of agents and noisy agents, where every quantity FAA needs
is known in closed form (the paper's linear-model setting, arXiv 2207.10265 Sec. 4).

Inputs ``x ~ N(0, I_d)``. Benign agent ``i`` in cluster ``c`` sees ``y = x . w_c + e``, ``e ~ N(0, s^2)``
with the small ``noise_std``; a noisy agent's labels are pure noise, ``y = e ~ N(0, noisy_std^2)``
(its best model is ``w = 0``). For a linear model ``theta`` the expected loss is then exactly

    L_i(theta) = E (x . theta - y)^2 = ||theta - w_i||^2 + s_i^2,   L_i(theta_i*) = s_i^2,

so an agent's excess loss is ``||theta - w_i||^2`` and FAA needs no estimate. FedAvg with one full-batch
gradient step per round converges to the pooled least-squares solution, which pulls every agent toward
the average of all agents' ``w`` (noisy agents pull toward 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nvrepro.core.tooling.validation import require, require_positive_int
from nvrepro.fl.focus.tasks import FocusTask, rng_for, split_id


@dataclass(frozen=True)
class LinearTask(FocusTask):
    """``clusters`` groups of benign agents with weights ``w_c ~ N(0, I_dim)``, ``samples`` training
    samples per agent (the test split has as many; the closed form needs none)."""

    clusters: int = 2
    dim: int = 8
    samples: int = 40
    noise_std: float = 0.1
    noisy_std: float = 2.0

    name: ClassVar[str] = "linear"
    training: ClassVar[dict] = {"lr": 0.1, "local_steps": 5, "batch_size": 0}

    def __post_init__(self) -> None:
        super().__post_init__()
        for f in ("clusters", "dim", "samples"):
            require_positive_int(getattr(self, f), f)
        require(self.clusters <= self.num_clean, "clusters",
                f"must be <= the {self.num_clean} benign agents, got {self.clusters}")
        require(self.noise_std >= 0, "noise_std", f"must be >= 0, got {self.noise_std}")
        require(self.noisy_std >= 0, "noisy_std", f"must be >= 0, got {self.noisy_std}")

    @property
    def clean_groups(self) -> int:
        return self.clusters

    @property
    def group_names(self) -> list[str]:
        return [f"cluster {c}" for c in range(self.clusters)] + (["noisy"] if self.noisy_agents else [])

    def cluster_weights(self) -> np.ndarray:
        """``(clusters, dim)``: each clean cluster's true weights."""
        return rng_for(self, 0).normal(size=(self.clusters, self.dim))

    def true_weights(self, agent: int) -> np.ndarray:
        """``w_i`` ``(dim,)``: the agent's cluster weights, or zeros for a noisy agent."""
        self._check_agent(agent)
        return np.zeros(self.dim) if self.is_noisy(agent) else self.cluster_weights()[self.group(agent)]

    def label_std(self, agent: int) -> float:
        return self.noisy_std if self.is_noisy(agent) else self.noise_std

    def _make_data(self, agent: int, split: str):
        rng = rng_for(self, 1, agent, split_id(split))
        x = rng.normal(size=(self.samples, self.dim))
        y = x @ self.true_weights(agent) + self.label_std(agent) * rng.normal(size=self.samples)
        return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)

    def build_model(self, seed: int = 0) -> nn.Module:
        """A linear model without bias, ``theta ~ N(0, I)`` (the prior of the clusters' weights)."""
        model = nn.Linear(self.dim, 1, bias=False)
        g = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            model.weight.copy_(torch.randn(1, self.dim, generator=g))
        return model

    def loss(self, model, x, y):
        return ((model(x).squeeze(-1) - y) ** 2).mean()

    @staticmethod
    def weights_of(model: nn.Module) -> np.ndarray:
        return model.weight.detach().double().numpy().reshape(-1)

    def test_loss(self, model, agent: int) -> float:
        """Exact: ``||theta - w_i||^2 + s_i^2``."""
        d = self.weights_of(model) - self.true_weights(agent)
        return float(d @ d + self.label_std(agent) ** 2)

    def optimal_loss(self, agent: int) -> float:
        """Exact: ``s_i^2`` (at ``theta = w_i``)."""
        return float(self.label_std(agent) ** 2)

    def pooled_least_squares(self, agents: list[int] | None = None) -> np.ndarray:
        """``argmin_theta sum_i ||X_i theta - y_i||^2`` over ``agents`` (default all) ``(dim,)``: the fixed
        point of FedAvg with one full-batch gradient step per round, an independent reference for it."""
        agents = list(range(self.num_agents)) if agents is None else agents
        xs, ys = zip(*(self.data(a, "train") for a in agents))
        x, y = torch.cat(xs).double().numpy(), torch.cat(ys).double().numpy()
        return np.linalg.lstsq(x, y, rcond=None)[0]
